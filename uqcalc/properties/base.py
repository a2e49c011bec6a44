"""The property contract: ``name``, ``unit``, ``evaluate(calc)`` and, for combinations of
stationary states, ``states()``.

A *state* is a structure plus what relaxes in it (nothing, positions, cell, or both) and a
coefficient; a state property's value is ``Σ_i c_i q_i`` with ``q_i`` the relaxed energy (or
volume) of state ``i``. Propagation (``uqcalc.propagate``) uses ``states()`` to relax each state
once and differentiate the relaxed quantity with respect to the parameters, instead of
re-relaxing for every ensemble member.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.filters import FrechetCellFilter
from ase.optimize import LBFGS

__all__ = ["RELAX_MODES", "TUNGSTEN_A0", "Property", "RelaxationError", "State", "StateProperty", "relax"]

RELAX_MODES = ("none", "positions", "cell", "both")

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
        Starting structure (not relaxed).
    relax : {"none", "positions", "cell", "both"}
        Degrees of freedom relaxed: ``"cell"`` relaxes the cell at fixed scaled positions
        (zero stress), ``"both"`` positions and cell.
    coefficient : float
        Weight of this state's quantity in the property.
    quantity : {"energy", "volume"}
        What the state contributes (eV or Å^3).
    """

    name: str
    atoms: Atoms
    relax: str = "positions"
    coefficient: float = 1.0
    quantity: str = "energy"

    def __post_init__(self):
        if self.relax not in RELAX_MODES:
            raise ValueError(f"state {self.name!r}: relax must be one of {RELAX_MODES}, got {self.relax!r}")
        if self.quantity not in ("energy", "volume"):
            raise ValueError(f"state {self.name!r}: quantity must be 'energy' or 'volume'")


def relax(
    atoms: Atoms,
    calc: Calculator,
    mode: str = "positions",
    fmax: float = 1e-3,
    steps: int = 2000,
    name: str = "structure",
) -> Atoms:
    """Relax a copy of ``atoms`` with ``calc``; return the relaxed copy (calculator attached).

    LBFGS on the positions, or on ASE's :class:`~ase.filters.FrechetCellFilter` for anything
    involving the cell (``"cell"`` keeps scaled positions fixed by
    constraining every atom). ``fmax`` is in eV/Å (and the filter's stress equivalent).

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
    optimizer = LBFGS
    opt = optimizer(target, logfile=None)
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


class Property(ABC):
    """A material property computable with any ASE calculator.

    Subclasses set ``name`` and ``unit`` and implement :meth:`evaluate`. Properties that are
    combinations of stationary states also implement :meth:`states` (see :class:`StateProperty`).
    """

    name: str = ""
    unit: str = ""

    @abstractmethod
    def evaluate(self, calc: Calculator) -> float | np.ndarray:
        """The property's value with ``calc`` (the teacher, a DFT code, one ensemble member)."""

    def states(self) -> list[State] | None:
        """Stationary states whose quantities combine to the value, or None if not such a property."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, unit={self.unit!r})"


@dataclass(kw_only=True)
class StateProperty(Property):
    """A property ``Σ_i c_i q_i`` over relaxed states; subclasses provide :meth:`states`.

    ``fmax`` and ``steps`` are the relaxation tolerance (eV/Å) and budget; ``scale``
    converts the combination to the property's unit (e.g. eV/Å² → J/m²). These fields are
    keyword-only, so a subclass's own fields come first in its positional signature.
    """

    name: str = ""
    unit: str = "eV"
    fmax: float = 1e-3
    steps: int = 2000
    scale: float = 1.0
    _cache: dict = field(default=None, init=False, repr=False, compare=False)

    def relaxed_states(self, calc: Calculator) -> list[tuple[State, Atoms]]:
        """Relax every state with ``calc``: list of (state, relaxed atoms)."""
        return [
            (state, relax(state.atoms, calc, state.relax, self.fmax, self.steps, name=f"{self.name}/{state.name}"))
            for state in self.states()
        ]

    @staticmethod
    def quantity(state: State, atoms: Atoms) -> float:
        return atoms.get_potential_energy() if state.quantity == "energy" else atoms.get_volume()

    def combine(self, quantities: list[float]) -> float:
        """Σ c_i q_i × scale for quantities in the order of :meth:`states`."""
        states = self.states()
        if len(quantities) != len(states):
            raise ValueError(f"{self.name}: {len(quantities)} quantities for {len(states)} states")
        return self.scale * float(sum(s.coefficient * q for s, q in zip(states, quantities)))

    def evaluate(self, calc: Calculator) -> float:
        return self.combine([self.quantity(s, a) for s, a in self.relaxed_states(calc)])
