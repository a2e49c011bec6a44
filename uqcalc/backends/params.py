"""The parameter table of the backends: declarative hyperparameter constraints and their check.

scikit-learn's ``_parameter_constraints`` idea. A backend class maps every constructor keyword to
a list of allowed forms (any one suffices) — :class:`Interval`, :class:`Options`,
:class:`InstanceOf`, :class:`PathLike`, :class:`Satisfies`, the strings ``"random_state"`` and
``"boolean"``, or ``None`` — and lists the constraints between keywords as :class:`Relation` objects;
:func:`validate_params` checks values against them and raises :class:`InvalidParameterError` with
a message naming the backend, the parameter, the value and what is allowed. Hyperparameters that
several backends share (the evidence prior of ``METHODS.md`` §1) are declared once as a
:class:`ParameterGroup`: defaults, constraints and docstring text (:func:`fill_doc`).
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "Constraint",
    "InstanceOf",
    "Interval",
    "InvalidParameterError",
    "Options",
    "ParameterGroup",
    "PathLike",
    "RandomStateLike",
    "Relation",
    "Satisfies",
    "fill_doc",
    "validate_params",
]


# -- constraints ----------------------------------------------------------------------------


class InvalidParameterError(ValueError, TypeError):
    """A hyperparameter outside its declared constraints.

    Both a ``ValueError`` and a ``TypeError`` (scikit-learn's ``InvalidParameterError`` does the
    same), so callers may catch whichever fits the mistake: a wrong value or a wrong type.
    """


class Constraint:
    """One allowed form of a hyperparameter: a predicate and the words that describe it."""

    def is_satisfied_by(self, value: Any) -> bool:
        raise NotImplementedError

    def __str__(self) -> str:
        raise NotImplementedError


def _is_number(value: Any, kind: type) -> bool:
    # bool is an Integral, but True as a count or a threshold is always a mistake
    return isinstance(value, kind) and not isinstance(value, bool | np.bool_)


def _bound(value: float | None, sign: str) -> str:
    return f"{sign}inf" if value is None else f"{value:g}"


class Interval(Constraint):
    """A number of ``type`` (``numbers.Integral`` or ``numbers.Real``) between ``low`` and ``high``.

    Parameters
    ----------
    type : numbers.Integral or numbers.Real
        ``Real`` also accepts integers; neither accepts ``bool``.
    low, high : float or None
        Bounds; ``None`` is unbounded on that side.
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval.
    """

    def __init__(self, type: type, low: float | None, high: float | None, *,
                 closed: Literal["left", "right", "both", "neither"]):
        if type not in (Integral, Real):
            raise ValueError(f"Interval type must be numbers.Integral or numbers.Real, got {type!r}")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"Interval closed must be 'left', 'right', 'both' or 'neither', got {closed!r}")
        self.type, self.low, self.high, self.closed = type, low, high, closed

    def is_satisfied_by(self, value: Any) -> bool:
        if not _is_number(value, self.type):
            return False
        # written as "not below" / "not above" so that NaN fails both
        above_low = self.low is None or (value >= self.low if self.closed in ("left", "both") else value > self.low)
        below_high = self.high is None or (value <= self.high if self.closed in ("right", "both") else value < self.high)
        return bool(above_low and below_high)

    def __str__(self) -> str:
        kind = "an int" if self.type is Integral else "a float"
        left = "[" if self.low is not None and self.closed in ("left", "both") else "("
        right = "]" if self.high is not None and self.closed in ("right", "both") else ")"
        return f"{kind} in {left}{_bound(self.low, '-')}, {_bound(self.high, '')}{right}"


class Options(Constraint):
    """One of a fixed set of values of ``type`` (e.g. the strings naming a method)."""

    def __init__(self, type: type, options: Iterable[Any]):
        self.type, self.options = type, tuple(options)

    def is_satisfied_by(self, value: Any) -> bool:
        # the type check first: ``array in options`` would be ambiguous
        return isinstance(value, self.type) and value in self.options

    def __str__(self) -> str:
        if len(self.options) == 1:
            return repr(self.options[0])
        return "one of " + ", ".join(repr(o) for o in self.options)


class InstanceOf(Constraint):
    """An instance of any of ``types``; ``description`` names them for the error message."""

    def __init__(self, *types: type, description: str | None = None):
        self.types = types
        self.description = description or "an instance of " + " or ".join(t.__name__ for t in types)

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.description


class PathLike(Constraint):
    """A ``str`` or ``os.PathLike`` path, optionally with one of the given suffixes."""

    def __init__(self, suffixes: Sequence[str] | None = None):
        self.suffixes = None if suffixes is None else tuple(suffixes)

    def is_satisfied_by(self, value: Any) -> bool:
        if not isinstance(value, str | os.PathLike):
            return False
        return self.suffixes is None or Path(value).suffix in self.suffixes

    def __str__(self) -> str:
        if self.suffixes is None:
            return "a path"
        *head, last = self.suffixes
        return "a path ending in " + (f"{', '.join(head)} or {last}" if head else last)


class Satisfies(Constraint):
    """Anything ``predicate`` accepts; for structured values (a pair, a list of moves).

    A predicate that raises ``TypeError`` or ``ValueError`` (``len`` of a number, say) rejects.
    """

    def __init__(self, predicate: Callable[[Any], bool], description: str):
        self.predicate, self.description = predicate, description

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return self.description


class _NoneConstraint(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


class _Boolean(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, bool | np.bool_)

    def __str__(self) -> str:
        return "a bool"


class _RandomState(Constraint):
    """What ``np.random.default_rng`` accepts as a seed (sequences of ints left out: not JSON-recorded)."""

    _SEED = Interval(Integral, 0, None, closed="left")

    def is_satisfied_by(self, value: Any) -> bool:
        return (value is None or self._SEED.is_satisfied_by(value)
                or isinstance(value, np.random.Generator | np.random.BitGenerator | np.random.SeedSequence))

    def __str__(self) -> str:
        return f"{self._SEED}, a numpy Generator, BitGenerator or SeedSequence, or None"


def _make_constraint(spec: Any) -> Constraint:
    if isinstance(spec, Constraint):
        return spec
    if spec is None:
        return _NoneConstraint()
    if spec == "boolean":
        return _Boolean()
    if spec == "random_state":
        return _RandomState()
    raise ValueError(f"unknown parameter constraint {spec!r}")


@dataclass(frozen=True)
class Relation:
    """A constraint between hyperparameters, checked once each of them is valid on its own.

    ``predicate`` receives the values of ``names`` in order; ``description`` says what must hold
    (e.g. ``"burn_in < n_steps"``).
    """

    names: tuple[str, ...]
    predicate: Callable[..., bool]
    description: str


def validate_params(owner: str, constraints: Mapping[str, Sequence[Any]], params: Mapping[str, Any],
                    relations: Iterable[Relation] = ()) -> None:
    """Check ``params`` against a constraint table; raise :class:`InvalidParameterError` if not.

    Parameters
    ----------
    owner : str
        Named first in the message (the backend class).
    constraints : mapping of name to list of constraints
        Any one of a parameter's constraints suffices. Names without an entry are not checked.
    params : mapping
        The values, e.g. ``backend.get_params()``.
    relations : iterable of Relation
        Checked after every single parameter passed.

    Raises
    ------
    InvalidParameterError
        "``<owner>: <name> must be <allowed>, got <value>``", naming the first offending parameter.
    """
    for name, value in params.items():
        if name not in constraints:
            continue
        allowed = [_make_constraint(c) for c in constraints[name]]
        if not any(c.is_satisfied_by(value) for c in allowed):
            words = [str(c) for c in allowed]
            text = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
            raise InvalidParameterError(f"{owner}: {name} must be {text}, got {value!r}")
    for rel in relations:
        values = [params[n] for n in rel.names]
        if not rel.predicate(*values):
            got = ", ".join(f"{n}={v!r}" for n, v in zip(rel.names, values))
            raise InvalidParameterError(f"{owner}: need {rel.description}, got {got}")


# -- hyperparameters shared by several backends -----------------------------------------------


class ParameterGroup:
    """Hyperparameters shared by several backends, declared once: defaults, constraints, docs.

    Each backend still writes the keywords in its ``__init__`` signature (``get_params`` reads the
    signature), taking the default from the group (``alpha_1: float = EVIDENCE.alpha_1``); its
    constraint table includes ``**group.constraints`` and its docstring the group's text through
    :func:`fill_doc`.

    Parameters
    ----------
    doc : str
        numpydoc ``Parameters`` entries for the group.
    **params : (default, constraints)
        One pair per hyperparameter, in signature order.
    """

    def __init__(self, doc: str, **params: tuple[Any, list]):
        self.doc = textwrap.dedent(doc).strip("\n")
        self.defaults: dict[str, Any] = {name: default for name, (default, _) in params.items()}
        self.constraints: dict[str, list] = {name: list(allowed) for name, (_, allowed) in params.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.defaults)

    def __getattr__(self, name: str) -> Any:
        # signature defaults read as GROUP.name; __dict__ lookup avoids recursion before __init__
        try:
            return self.__dict__["defaults"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __or__(self, other: ParameterGroup) -> ParameterGroup:
        params = {n: (self.defaults[n], self.constraints[n]) for n in self.names}
        params.update({n: (other.defaults[n], other.constraints[n]) for n in other.names})
        return ParameterGroup(self.doc + "\n" + other.doc, **params)

    def values(self, obj: Any) -> dict[str, Any]:
        """``{name: obj.name}`` for the group's names, in declaration order."""
        return {name: getattr(obj, name) for name in self.names}


def _insert_block(doc: str, key: str, block: str) -> str:
    pattern = re.compile(r"^([ \t]*)\{" + re.escape(key) + r"\}[ \t]*$", re.MULTILINE)
    return pattern.sub(lambda match: textwrap.indent(block, match.group(1)), doc)


def fill_doc(**blocks: str) -> Callable:
    """Decorator: replace each line ``{key}`` of a docstring by ``blocks[key]``, indented to match."""

    def decorate(obj):
        doc = obj.__doc__
        if doc:  # None under python -OO
            for key, text in blocks.items():
                doc = _insert_block(doc, key, textwrap.dedent(text).strip("\n"))
            obj.__doc__ = doc
        return obj

    return decorate


#: What ``random_state`` accepts (the ``"random_state"`` constraint), for type hints.
RandomStateLike = int | np.integer | np.random.Generator | np.random.BitGenerator | np.random.SeedSequence | None
