"""Competing crystal phases of W: energy and volume per atom relative to bcc, hcp c/a.

Each phase is relaxed at its own zero-stress cell and compared with bcc at its own. The phases
here (fcc, hcp, A15, simple cubic, diamond, C15 Laves) have no free internal coordinate: every
atom sits on a Wyckoff position without a parameter, so forces vanish by symmetry for any cell
of the phase's shape, and relaxing "cell" (scaled positions fixed) is the same as relaxing
"both". Using "cell" matters: fcc, sc and diamond W are saddle points (fcc has C' < 0 along the
Bain path, sc and diamond have unstable phonons), and a position relaxation seeded by round-off
could drift towards bcc. After relaxing, :meth:`PhaseEnergy.stationary_states` checks that each
cell kept the shape of its phase and raises :class:`~.base.RelaxationError` if it did not, so a
collapsed phase is never reported as a small energy difference.

Known teacher behaviour: the ``W_2940_2017_2`` teacher puts A15 only ~0.013 eV/atom above bcc
(DFT: 0.090) and far-from-bcc phases (sc, diamond) are extrapolations of the potential.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.spacegroup import crystal

from .base import TUNGSTEN_A0, Property, RelaxationError, State, StateProperty, relax
from .bulk import bcc_cell

__all__ = ["PHASES", "HcpAxialRatio", "PhaseEnergy", "phase_cell", "suite"]

#: starting volume per atom relative to bcc; near both the PBE and the teacher minima
PHASES = {
    "fcc": 1.04,
    "hcp": 1.05,
    "a15": 1.00,
    "sc": 1.20,
    "diamond": 1.60,
    "c15": 1.04,
}
_IDEAL_CA = float(np.sqrt(8.0 / 3.0))


def phase_cell(phase: str, volume_per_atom: float, symbol: str = "W") -> Atoms:
    """Conventional cell of ``phase`` with the given volume per atom (Å^3).

    fcc (4 atoms), hcp (2, ideal c/a), A15/Cr3Si (8), simple cubic (1), diamond (8) and the
    C15 Laves phase MgCu2 with one species (24).
    """
    v = float(volume_per_atom)
    if phase == "fcc":
        return bulk(symbol, "fcc", a=(4 * v) ** (1 / 3), cubic=True)
    if phase == "hcp":
        a = (4 * v / (np.sqrt(3.0) * _IDEAL_CA)) ** (1 / 3)
        return bulk(symbol, "hcp", a=a, c=_IDEAL_CA * a)
    if phase == "sc":
        return bulk(symbol, "sc", a=v ** (1 / 3))
    if phase == "diamond":
        return bulk(symbol, "diamond", a=(8 * v) ** (1 / 3), cubic=True)
    if phase == "a15":
        a = (8 * v) ** (1 / 3)
        return crystal([symbol, symbol], [(0, 0, 0), (0.25, 0, 0.5)], spacegroup=223, cellpar=[a] * 3 + [90] * 3)
    if phase == "c15":
        a = (24 * v) ** (1 / 3)
        return crystal(
            [symbol, symbol],
            [(0, 0, 0), (0.625, 0.625, 0.625)],
            spacegroup=227,
            setting=1,
            cellpar=[a] * 3 + [90] * 3,
        )
    raise ValueError(f"unknown phase {phase!r}; known: {tuple(PHASES)}")


def _check_shape(phase: str, initial: Atoms, relaxed: Atoms, tol: float, name: str) -> None:
    """Raise if the relaxed cell left its phase's shape (cubic stays cubic, hcp stays hexagonal)."""
    p0, p = initial.cell.cellpar(), relaxed.cell.cellpar()
    lengths = p[:3] / np.cbrt(relaxed.get_volume())
    lengths0 = p0[:3] / np.cbrt(initial.get_volume())
    if phase == "hcp":  # c/a is free; a = b and the angles are not
        bad = abs(lengths[0] - lengths[1]) > tol * lengths[0]
    else:
        bad = np.abs(lengths - lengths0).max() > tol * lengths0.max()
    bad = bad or np.abs(p[3:] - p0[3:]).max() > np.degrees(tol)
    if bad:
        raise RelaxationError(
            f"{name}: {phase} lost its symmetry during the cell relaxation "
            f"(cellpar {np.round(p0, 4)} -> {np.round(p, 4)}); it is unstable with this calculator"
        )


@dataclass
class PhaseEnergy(StateProperty):
    """Energy (eV/atom) or volume (Å^3/atom) of a phase minus that of bcc, each at zero stress.

    States: the phase cell (relax "cell", coefficient 1/N_phase) and the 2-atom bcc cube
    (relax "cell", coefficient −1/N_bcc), both contributing their energy (``kind="energy"``,
    name ``dE_<phase>``) or volume (``kind="volume"``, name ``dV_<phase>``).

    Parameters
    ----------
    phase
        One of :data:`PHASES`.
    kind
        ``"energy"`` or ``"volume"``.
    lattice_constant
        bcc lattice constant (Å) of the starting cells; the phase starts at
        ``PHASES[phase]`` (or ``volume_ratio``) times the bcc volume per atom.
    volume_ratio
        Override of the starting volume ratio.
    shape_tol
        Relative tolerance of the symmetry check after relaxing.
    """

    phase: str = "fcc"
    kind: str = "energy"
    lattice_constant: float = TUNGSTEN_A0
    volume_ratio: float | None = None
    shape_tol: float = 1e-3

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}; known: {tuple(PHASES)}")
        if self.kind not in ("energy", "volume"):
            raise ValueError(f"kind must be 'energy' or 'volume', got {self.kind!r}")

    def _default_name(self) -> str:
        return f"{'dE' if self.kind == 'energy' else 'dV'}_{self.phase}"

    @property
    def unit(self) -> str:
        return "eV/atom" if self.kind == "energy" else "Å^3/atom"

    def states(self) -> list[State]:
        ref = bcc_cell(self.lattice_constant)
        ratio = PHASES[self.phase] if self.volume_ratio is None else self.volume_ratio
        cell = phase_cell(self.phase, ratio * ref.get_volume() / len(ref))
        return [
            State(self.phase, cell, relax="cell", coefficient=1.0 / len(cell), quantity=self.kind),
            State("bcc", ref, relax="cell", coefficient=-1.0 / len(ref), quantity=self.kind),
        ]

    def stationary_states(self, calc: Calculator) -> list[State]:
        """Relax both cells with ``calc`` and check that each kept its phase's shape."""
        out = super().stationary_states(calc)
        for start, relaxed in zip(self.states(), out):
            phase = self.phase if start.name == self.phase else "bcc"
            _check_shape(phase, start.atoms, relaxed.atoms, self.shape_tol, f"{self.name}/{start.name}")
        return out


@dataclass
class HcpAxialRatio(Property):
    """c/a of hcp at zero stress (2-atom cell, cell relaxed from the ideal 1.633).

    Parameters
    ----------
    lattice_constant
        bcc lattice constant (Å) that sets the starting volume (``PHASES["hcp"]`` × bcc).
    fmax, steps
        Cell-filter tolerance and step budget.
    """

    lattice_constant: float = TUNGSTEN_A0
    fmax: float = 1e-4
    steps: int = 2000

    def _default_name(self) -> str:
        return "ca_hcp"

    def evaluate(self, calc: Calculator) -> float:
        start = phase_cell("hcp", PHASES["hcp"] * self.lattice_constant**3 / 2)
        relaxed = relax(start, calc, "cell", self.fmax, self.steps, name=self.name)
        _check_shape("hcp", start, relaxed, 1e-3, self.name)
        a, _, c = relaxed.cell.cellpar()[:3]
        return float(c / a)


def suite(quick: bool = False) -> list[Property]:
    """The phase entries of :func:`uqcalc.properties.tungsten_suite` (cells are already minimal)."""
    out: list[Property] = []
    for phase in PHASES:
        out.append(PhaseEnergy(phase, "energy"))
        out.append(PhaseEnergy(phase, "volume"))
    out.append(HcpAxialRatio())
    return out
