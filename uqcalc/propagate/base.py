"""Propagators: strategy objects that turn a parameter ensemble into a property ensemble.

A propagator is configured once (its constructor keywords are its settings, as for an sklearn
estimator or an emcee move) and then called on any number of (property, model) pairs:

    propagator.supports(prop)                      -> bool, cheap, never evaluates anything
    propagator(prop, model, executor, progress=…)  -> PropertyEnsemble

``params()`` gives the settings as a JSON-able dict; a study keys its stored results on it, so
changing a setting recomputes exactly what it affects. :class:`Check` is the base of wrappers
that run an inner propagator and then test or widen its result (re-relaxing extreme members,
evaluating box corners); a wrapper supports what its inner propagator supports.

A new method is one module with a :class:`Propagator` subclass plus its line in
:data:`uqcalc.propagate.registry.PROPAGATORS`.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from concurrent.futures import Executor
from typing import Any, ClassVar

from ..model import LinearModel
from .result import PropertyEnsemble

__all__ = ["Check", "Propagator", "require_members", "result_metadata"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Propagator):
        return value.params()
    if hasattr(value, "__dataclass_fields__"):  # settings objects such as HessianSolver
        return {"class": type(value).__name__, **{k: _jsonable(getattr(value, k)) for k in value.__dataclass_fields__}}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class Propagator(ABC):
    """Base class: settings in keyword-only constructor arguments, stored under their own names."""

    #: the method name results are labelled with
    name: ClassVar[str] = ""

    @abstractmethod
    def supports(self, prop) -> bool:
        """Whether this propagator can propagate ``prop`` (decided from declarations only)."""

    @abstractmethod
    def __call__(self, prop, model: LinearModel, executor: Executor | None = None, *,
                 progress: bool = True) -> PropertyEnsemble:
        """Propagate ``model``'s ensemble to ``prop``."""

    def _param_names(self) -> list[str]:
        return [p.name for p in inspect.signature(type(self).__init__).parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def params(self) -> dict:
        """JSON-able settings (class name and constructor arguments, nested propagators included)."""
        return {"class": type(self).__name__, **{k: _jsonable(getattr(self, k)) for k in self._param_names()}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._param_names())
        return f"{type(self).__name__}({args})"


class Check(Propagator):
    """A wrapper: runs ``inner`` and then checks or widens its result (:meth:`check`)."""

    def __init__(self, inner: Propagator):
        self.inner = inner

    @property
    def name(self) -> str:  # results keep the inner method's name
        return self.inner.name

    def supports(self, prop) -> bool:
        return self.inner.supports(prop)

    def __call__(self, prop, model: LinearModel, executor: Executor | None = None, *,
                 progress: bool = True) -> PropertyEnsemble:
        out = self.inner(prop, model, executor, progress=progress)
        self.check(out, prop, model, executor, progress)
        out.metadata["propagator"] = self.params()
        return out

    @abstractmethod
    def check(self, out: PropertyEnsemble, prop, model: LinearModel, executor: Executor | None,
              progress: bool) -> None:
        """Test or widen ``out`` in place (flags, diagnostics)."""


def result_metadata(prop, model: LinearModel, propagator: Propagator) -> dict:
    """What every :class:`PropertyEnsemble` records about how it was made."""
    ens = model.ensemble
    return {
        "descriptor": model.descriptor.spec(),
        "ensemble": {k: ens.metadata.get(k) for k in ("backend", "seed", "random_state") if k in ens.metadata},
        "n_members": ens.n_members,
        "property": repr(prop),
        "propagator": propagator.params(),
    }


def require_members(model: LinearModel) -> None:
    """Every propagator works on members: an ensemble without them is an input error."""
    if model.ensemble.n_members == 0:
        raise ValueError(
            "the ensemble has no members to propagate; draw some first "
            "(e.g. ParameterEnsemble(theta, members=ens.sample_box(200, random_state=0), ...))"
        )
