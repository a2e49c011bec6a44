"""Competing crystal phases: energy and volume per atom relative to the ground state, hcp c/a.

Each phase is relaxed at its own zero-stress cell and compared with the ground-state structure
(bcc for W, fcc for Cu, ...; ``symbol``/``structure`` as in :mod:`.crystal`) at its own. The phases
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

from .base import Property, RelaxationError, State, StateProperty, relax
from .crystal import Material, reference_lattice, unit_cell

__all__ = ["PHASES", "HcpAxialRatio", "PhaseEnergy", "phase_cell", "suite"]

#: starting volume per atom relative to bcc; near both the PBE and the teacher minima of W
PHASES = {
    "bcc": 1.00,
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

    bcc (2 atoms), fcc (4), hcp (2, ideal c/a), A15/Cr3Si (8), simple cubic (1), diamond (8) and the
    C15 Laves phase MgCu2 with one species (24).
    """
    v = float(volume_per_atom)
    if phase == "bcc":
        return bulk(symbol, "bcc", a=(2 * v) ** (1 / 3), cubic=True)
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
class PhaseEnergy(Material, StateProperty):
    """Energy (eV/atom) or volume (Å^3/atom) of a phase minus that of the ground state, each at zero stress.

    States: the phase cell (relax "cell", coefficient 1/N_phase) and the ground-state cell
    (relax "cell", coefficient −1/N), both contributing their energy (``kind="energy"``,
    name ``dE_<phase>``) or volume (``kind="volume"``, name ``dV_<phase>``).

    Parameters
    ----------
    phase
        One of :data:`PHASES`.
    kind
        ``"energy"`` or ``"volume"``.
    lattice_constant
        Lattice constant (Å) of the starting ground-state cell (None: the reference value of
        :mod:`.crystal`); the phase starts at ``PHASES[phase] / PHASES[ground state]`` (or
        ``volume_ratio``) times its volume per atom. Both cells relax, so this only sets the start.
    volume_ratio
        Override of the starting volume ratio.
    shape_tol
        Relative tolerance of the symmetry check after relaxing.
    symbol, structure
        Element and ground-state structure (keyword-only; see :mod:`.crystal`).
    """

    phase: str = "fcc"
    kind: str = "energy"
    lattice_constant: float | None = None
    volume_ratio: float | None = None
    shape_tol: float = 1e-3

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}; known: {tuple(PHASES)}")
        if self.kind not in ("energy", "volume"):
            raise ValueError(f"kind must be 'energy' or 'volume', got {self.kind!r}")
        if self.structure is not None and self.phase == self.structure:
            raise ValueError(f"phase {self.phase!r} is the ground state itself")

    def _default_name(self) -> str:
        return f"{'dE' if self.kind == 'energy' else 'dV'}_{self.phase}"

    @property
    def unit(self) -> str:
        return "eV/atom" if self.kind == "energy" else "Å^3/atom"

    def states(self) -> list[State]:
        ground = self.crystal
        ref = _ground_cell(self)
        ratio = PHASES[self.phase] / PHASES[ground] if self.volume_ratio is None else self.volume_ratio
        cell = phase_cell(self.phase, ratio * ref.get_volume() / len(ref), self.symbol)
        return [
            State(self.phase, cell, relax="cell", coefficient=1.0 / len(cell), quantity=self.kind),
            State(ground, ref, relax="cell", coefficient=-1.0 / len(ref), quantity=self.kind),
        ]

    def stationary_states(self, calc: Calculator) -> list[State]:
        """Relax both cells with ``calc`` and check that each kept its phase's shape."""
        out = super().stationary_states(calc)
        for start, relaxed in zip(self.states(), out):
            _check_shape(start.name, start.atoms, relaxed.atoms, self.shape_tol, f"{self.name}/{start.name}")
        return out


def _ground_cell(material: Material, lattice_constant: float | None = None) -> Atoms:
    """The ground-state unit cell at ``lattice_constant`` (default: the material's reference lattice)."""
    a_ref, covera = reference_lattice(material.symbol, material.crystal)
    a = getattr(material, "lattice_constant", None) if lattice_constant is None else lattice_constant
    return unit_cell(material.symbol, material.crystal, a_ref if a is None else a, covera)


@dataclass
class HcpAxialRatio(Material, Property):
    """c/a of hcp at zero stress (2-atom cell, cell relaxed from the ideal 1.633).

    For an hcp ground state this is its own c/a; otherwise that of the competing hcp phase.

    Parameters
    ----------
    lattice_constant
        Ground-state lattice constant (Å) that sets the starting volume
        (``PHASES["hcp"] / PHASES[ground state]`` times its volume per atom); None: reference.
    fmax, steps
        Cell-filter tolerance and step budget.
    symbol, structure
        Element and ground-state structure (keyword-only).
    """

    lattice_constant: float | None = None
    fmax: float = 1e-4
    steps: int = 2000

    def _default_name(self) -> str:
        return "ca_hcp"

    def evaluate(self, calc: Calculator) -> float:
        ref = _ground_cell(self)
        ratio = PHASES["hcp"] / PHASES[self.crystal]
        start = phase_cell("hcp", ratio * ref.get_volume() / len(ref), self.symbol)
        relaxed = relax(start, calc, "cell", self.fmax, self.steps, name=self.name)
        _check_shape("hcp", start, relaxed, 1e-3, self.name)
        a, _, c = relaxed.cell.cellpar()[:3]
        return float(c / a)


def suite(quick: bool = False, **material) -> list[Property]:
    """Phase entries of a suite: every phase of :data:`PHASES` but the ground state, and hcp c/a.

    (Cells are already minimal; ``quick`` changes nothing.) ``material``: symbol, structure.
    """
    ground = Material(**material).crystal
    out: list[Property] = []
    for phase in PHASES:
        if phase != ground:
            out += [PhaseEnergy(phase, "energy", **material), PhaseEnergy(phase, "volume", **material)]
    out.append(HcpAxialRatio(**material))
    return out
