"""The property protocol: what a material property is, to evaluation and to propagation.

A :class:`Property` has a ``name`` and a ``unit`` — both computed from its fields, so a copy with
a changed field (``dataclasses.replace``, :func:`~uqcalc.properties.tungsten_suite` overrides)
can never carry a stale name; ``label`` overrides the name — and ``evaluate(calc)`` with any ASE
calculator. Properties that are combinations of stationary states say so (``combines_states``)
and provide

* ``states()``: the states as they are known before any calculation (starting structures, what
  relaxes, coefficients), or None when they must be searched for (a NEB saddle);
* ``stationary_states(calc)``: the states made stationary with ``calc`` — minima relaxed, saddles
  located by the property's own search — as :class:`State` objects whose ``atoms`` are the
  stationary structures with ``calc`` attached and whose ``kind`` says ``"minimum"`` or
  ``"saddle"``;
* ``combine(quantities, states)``: the value from the states' relaxed quantities (energy or
  volume); by default ``scale · Σ_i c_i q_i``.

Propagation (:mod:`uqcalc.propagate`) relies on nothing else: implicit differentiation calls
``stationary_states`` once at θ̄ and expands every state about its stationary structure; a saddle
is expanded like a minimum, with one negative curvature expected. A property that is affine in
the parameters (``affine_in_theta = True``, e.g. an energy of fixed structures) is propagated
exactly from rank(δ) + 1 evaluations.
"""

from __future__ import annotations

import dataclasses
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.filters import FrechetCellFilter
from ase.optimize import LBFGS

__all__ = [
    "RELAX_MODES",
    "STATE_KINDS",
    "TUNGSTEN_A0",
    "Property",
    "RelaxationError",
    "State",
    "StateProperty",
    "relax",
]

RELAX_MODES = ("none", "positions", "cell", "both")
STATE_KINDS = ("minimum", "saddle")

TUNGSTEN_A0 = 3.1805
"""bcc lattice constant (Å) of the W_2940_2017_2 teacher: the default fixed cell of W properties."""


class RelaxationError(RuntimeError):
    """A relaxation did not reach its force tolerance within its step budget."""


@dataclass
class State:
    """One stationary state of a property.

    Parameters
    ----------
    name : str
        Label, e.g. ``"vacancy"`` or ``"bulk"``.
    atoms : Atoms
        The structure: the starting point in :meth:`Property.states`, the stationary structure
        (calculator attached) in :meth:`Property.stationary_states`.
    relax : {"none", "positions", "cell", "both"}
        Degrees of freedom in which the state is stationary: ``"cell"`` is the cell at fixed
        scaled positions (zero stress), ``"both"`` positions and cell.
    coefficient : float
        Weight of this state's quantity in the property.
    quantity : {"energy", "volume"}
        What the state contributes (eV or Å^3).
    kind : {"minimum", "saddle"}
        What the state is in its ``relax`` degrees of freedom. Minima are found by relaxation;
        a saddle (one negative curvature, e.g. a migration barrier's top) must be located by the
        property itself and is never handed to a minimiser.
    """

    name: str
    atoms: Atoms
    relax: str = "positions"
    coefficient: float = 1.0
    quantity: str = "energy"
    kind: str = "minimum"

    def __post_init__(self):
        if self.relax not in RELAX_MODES:
            raise ValueError(f"state {self.name!r}: relax must be one of {RELAX_MODES}, got {self.relax!r}")
        if self.quantity not in ("energy", "volume"):
            raise ValueError(f"state {self.name!r}: quantity must be 'energy' or 'volume', got {self.quantity!r}")
        if self.kind not in STATE_KINDS:
            raise ValueError(f"state {self.name!r}: kind must be one of {STATE_KINDS}, got {self.kind!r}")

    def measure(self) -> float:
        """The state's quantity from its atoms' calculator (eV or Å^3)."""
        return float(self.atoms.get_potential_energy() if self.quantity == "energy" else self.atoms.get_volume())


def relax(
    atoms: Atoms,
    calc: Calculator,
    mode: str = "positions",
    fmax: float = 1e-3,
    steps: int = 2000,
    name: str = "structure",
    optimizer=None,
) -> Atoms:
    """Relax a copy of ``atoms`` with ``calc``; return the relaxed copy (calculator attached).

    LBFGS (or ``optimizer``, an ASE optimizer class) on the positions, or on ASE's
    :class:`~ase.filters.FrechetCellFilter` for anything involving the cell (``"cell"`` keeps
    scaled positions fixed by constraining every atom). ``fmax`` is in eV/Å (and the filter's
    stress equivalent).

    Raises
    ------
    RelaxationError
        If the force tolerance is not reached within ``steps``.
    """
    if mode not in RELAX_MODES:
        raise ValueError(f"relax mode must be one of {RELAX_MODES}, got {mode!r}")
    work = atoms.copy()
    work.calc = calc
    if mode == "none":
        return work
    if mode == "positions":
        target = work
    else:
        if mode == "cell":
            from ase.constraints import FixAtoms

            work.set_constraint(FixAtoms(indices=range(len(work))))
        target = FrechetCellFilter(work)
    # LBFGS also for cell relaxations: on a 127-atom vacancy at zero pressure it took
    # 15 steps (0.7 s) where FIRE took 63 (11 s)
    opt = (optimizer or LBFGS)(target, logfile=None)
    with warnings.catch_warnings():
        # FrechetCellFilter's matrix logarithm reports ~1e-13 "inaccuracies" on every step
        warnings.filterwarnings("ignore", message="logm result may be inaccurate", category=RuntimeWarning)
        converged = opt.run(fmax=fmax, steps=steps)
    if not converged:
        forces = target.get_forces()
        raise RelaxationError(
            f"{name}: relaxation ({mode}) not converged in {steps} steps, "
            f"max force {np.linalg.norm(forces, axis=1).max():.2e} > fmax {fmax}"
        )
    if mode == "cell":
        work.set_constraint()
    return work


@dataclass(kw_only=True)
class Property(ABC):
    """A material property computable with any ASE calculator.

    Subclasses are dataclasses whose fields are the property's settings. They implement
    :meth:`evaluate` and :meth:`_default_name` (the name implied by the fields) and set ``unit``
    (a class attribute, or a property where a field changes it). Neither ``name`` nor ``unit``
    is a field: a field ``name: str`` without a default would take this class's ``name``
    property as its default, and a ``unit`` field would be ordered before the subclass's own
    fields; a fixed name comes from ``_default_name`` or ``label``.

    Parameters
    ----------
    label : str, optional
        Name to use instead of the default one derived from the fields.
    """

    label: str | None = None

    unit: ClassVar[str] = ""
    #: True for properties that are combinations of stationary states (see the module docstring)
    combines_states: ClassVar[bool] = False
    #: True for properties affine in the parameters θ of a linear model (exact propagation
    #: from rank(δ) + 1 evaluations); a declaration, checked once per propagation
    affine_in_theta: ClassVar[bool] = False
    #: False for properties that are piecewise constant in θ on the scale of a finite-difference
    #: step (a bisected load that jumps between lattice traps): box corners are then located only
    #: from a slope the propagator provides, never from differences of ``evaluate``
    smooth_in_theta: ClassVar[bool] = True

    @property
    def name(self) -> str:
        """``label`` if given, else the name implied by the settings."""
        return self.label or self._default_name()

    def _default_name(self) -> str:
        return type(self).__name__

    @abstractmethod
    def evaluate(self, calc: Calculator) -> float | np.ndarray:
        """The property's value with ``calc`` (the teacher, a DFT code, one ensemble member)."""

    def states(self) -> list[State] | None:
        """The states as known before any calculation, or None (not a state property, or states
        that must be searched for with a calculator)."""
        return None

    def stationary_states(self, calc: Calculator) -> list[State] | None:
        """The states made stationary with ``calc`` (None if not a state property)."""
        return None

    def combine(self, quantities: Sequence[float], states: Sequence[State]) -> float:
        """The value from the quantities of ``states`` (state properties only)."""
        raise TypeError(f"{self.name!r} is not a combination of states")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, unit={self.unit!r})"


@dataclass(kw_only=True)
class StateProperty(Property):
    """A property ``scale · Σ_i c_i q_i`` over stationary states; subclasses provide :meth:`states`.

    ``fmax`` and ``steps`` are the relaxation tolerance (eV/Å) and budget; ``scale``
    converts the combination to the property's unit (e.g. eV/Å² → J/m²). These fields are
    keyword-only, so a subclass's own fields come first in its positional signature.
    """

    fmax: float = 1e-3
    steps: int = 2000
    scale: float = 1.0

    unit: ClassVar[str] = "eV"
    combines_states: ClassVar[bool] = True

    def stationary_states(self, calc: Calculator) -> list[State]:
        """Relax every minimum of :meth:`states` with ``calc`` (a saddle needs an override)."""
        states = self.states()
        if states is None:
            raise NotImplementedError(f"{self.name}: states() is None; override stationary_states to find them")
        out = []
        for state in states:
            if state.kind == "saddle" and state.relax != "none":
                raise NotImplementedError(
                    f"{self.name}/{state.name}: a saddle is not found by minimisation; "
                    "override stationary_states to locate it"
                )
            atoms = relax(state.atoms, calc, state.relax, self.fmax, self.steps, name=f"{self.name}/{state.name}")
            out.append(dataclasses.replace(state, atoms=atoms))
        return out

    @staticmethod
    def quantity(state: State, atoms: Atoms) -> float:
        """The quantity of ``state`` measured on ``atoms`` (calculator attached)."""
        return atoms.get_potential_energy() if state.quantity == "energy" else atoms.get_volume()

    def combine(self, quantities: Sequence[float], states: Sequence[State]) -> float:
        """``scale · Σ c_i q_i`` for the quantities of ``states``, in order."""
        if len(quantities) != len(states):
            raise ValueError(f"{self.name}: {len(quantities)} quantities for {len(states)} states")
        return self.scale * float(sum(s.coefficient * q for s, q in zip(states, quantities)))

    def evaluate(self, calc: Calculator) -> float:
        states = self.stationary_states(calc)
        return self.combine([s.measure() for s in states], states)
