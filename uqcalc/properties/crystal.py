"""Crystal structures of elemental metals: ground states, cells, supercells and neighbour shells.

Every property takes a chemical ``symbol`` and the ground-state ``structure`` (one of
:data:`STRUCTURES`); this module builds their cells. Ground states and starting lattice
constants come from ASE's reference data (:data:`ase.data.reference_states`), except W, whose
starting value is the 3.1805 Å of this package's W teacher (``W_2940_2017_2``): the W suite is
defined at it.

Cells
-----
* bcc, fcc: the conventional cube (2 and 4 atoms); supercells ``size``³ cubes.
* hcp: the 2-atom primitive cell for bulk properties and, for supercells, ASE's orthohexagonal
  4-atom cell (``bulk(..., orthorhombic=True)``) repeated ``(size, size, size)`` — nearly
  isotropic for c/a ≈ 1.6 (edges a, √3·a, c).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, reference_states

from .base import TUNGSTEN_A0, relax

__all__ = [
    "CUBIC",
    "IDEAL_CA",
    "STRUCTURES",
    "FixedCell",
    "Material",
    "atomic_volume",
    "cached_lattice",
    "check_structure",
    "ground_state",
    "neighbour_vector",
    "reference_lattice",
    "relaxed_lattice",
    "supercell",
    "unit_cell",
]

STRUCTURES = ("bcc", "fcc", "hcp")
CUBIC = ("bcc", "fcc")
IDEAL_CA = float(np.sqrt(8.0 / 3.0))

# starting lattice constants that differ from ASE's reference data (see the module docstring)
_PREFERRED = {("W", "bcc"): (TUNGSTEN_A0, None)}


def check_structure(structure: str, allowed: tuple[str, ...] = STRUCTURES, what: str = "") -> str:
    """``structure`` if it is one of ``allowed``, else a ValueError naming both."""
    if structure not in allowed:
        raise ValueError(f"{what + ': ' if what else ''}structure must be one of {allowed}, got {structure!r}")
    return structure


def _z(symbol: str) -> int:
    if symbol not in atomic_numbers:
        raise ValueError(f"unknown chemical symbol {symbol!r}")
    return atomic_numbers[symbol]


def ground_state(symbol: str) -> str:
    """The ground-state structure of an element from ASE's reference data (bcc, fcc or hcp).

    Raises
    ------
    ValueError
        For elements whose reference structure is none of :data:`STRUCTURES` (Si: diamond):
        pass ``structure=`` explicitly if a metastable metal structure is meant.
    """
    state = reference_states[_z(symbol)] or {}
    structure = state.get("symmetry")
    if structure not in STRUCTURES:
        raise ValueError(f"{symbol}: ASE's reference structure is {structure!r}, not one of {STRUCTURES}; "
                         "pass structure= explicitly")
    return structure


def reference_lattice(symbol: str, structure: str) -> tuple[float, float | None]:
    """Starting (a, c/a) for ``symbol`` in ``structure`` (c/a None for cubic structures).

    From ASE's reference data when its structure is the one asked for; otherwise a is scaled
    from the reference atomic volume (close-packed and bcc volumes differ by ~1 %), and hcp
    starts at the ideal c/a.
    """
    check_structure(structure)
    if (symbol, structure) in _PREFERRED:
        return _PREFERRED[(symbol, structure)]
    state = reference_states[_z(symbol)] or {}
    ref_structure, a = state.get("symmetry"), state.get("a")
    if ref_structure == structure and a:
        return float(a), (float(state.get("c/a", IDEAL_CA)) if structure == "hcp" else None)
    if ref_structure in STRUCTURES and a:
        covera = float(state.get("c/a", IDEAL_CA)) if ref_structure == "hcp" else None
        volume = atomic_volume(ref_structure, float(a), covera)
        return _a_from_volume(structure, volume), (IDEAL_CA if structure == "hcp" else None)
    raise ValueError(f"{symbol}: no reference lattice constant for {structure}; pass lattice_constant=")


def atomic_volume(structure: str, a: float, covera: float | None = None) -> float:
    """Volume per atom (Å^3) of the structure with lattice constant ``a`` (hcp: and c/a)."""
    if structure == "bcc":
        return a**3 / 2.0
    if structure == "fcc":
        return a**3 / 4.0
    check_structure(structure)
    return np.sqrt(3.0) / 4.0 * a**3 * (IDEAL_CA if covera is None else covera)


def _a_from_volume(structure: str, volume: float, covera: float = IDEAL_CA) -> float:
    if structure == "bcc":
        return (2.0 * volume) ** (1 / 3)
    if structure == "fcc":
        return (4.0 * volume) ** (1 / 3)
    return (4.0 * volume / (np.sqrt(3.0) * covera)) ** (1 / 3)


def unit_cell(symbol: str, structure: str, a: float, covera: float | None = None, orthorhombic: bool = False) -> Atoms:
    """The conventional cube (bcc 2, fcc 4 atoms) or the hcp cell (2 atoms; 4 if ``orthorhombic``)."""
    check_structure(structure)
    if not a > 0:
        raise ValueError(f"lattice constant must be positive, got {a!r}")
    if structure in CUBIC:
        return bulk(symbol, structure, a=float(a), cubic=True)
    covera = IDEAL_CA if covera is None else float(covera)
    return bulk(symbol, "hcp", a=float(a), c=covera * float(a), orthorhombic=orthorhombic)


def supercell(symbol: str, structure: str, a: float, size: int, covera: float | None = None) -> Atoms:
    """``size``³ repeats of the cubic (or orthohexagonal) cell, fully periodic."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    return unit_cell(symbol, structure, a, covera, orthorhombic=True).repeat(int(size))


def neighbour_vector(structure: str, shell: int, a: float, covera: float | None = None) -> np.ndarray:
    """A lattice vector (Å) to a neighbour in the given shell (1: nearest, 2: second).

    bcc: a/2[111], a[100]; fcc: a/2[110], a[100]; hcp: a[100] (in the basal plane) and the
    out-of-plane neighbour at (a/2, a/(2√3), c/2) — for ideal c/a the two first shells coincide.
    """
    check_structure(structure)
    if shell not in (1, 2):
        raise ValueError(f"shell must be 1 or 2, got {shell!r}")
    if structure == "bcc":
        return a * (np.full(3, 0.5) if shell == 1 else np.array([1.0, 0.0, 0.0]))
    if structure == "fcc":
        return a * (np.array([0.5, 0.5, 0.0]) if shell == 1 else np.array([1.0, 0.0, 0.0]))
    c = a * (IDEAL_CA if covera is None else covera)
    return np.array([a, 0.0, 0.0]) if shell == 1 else np.array([0.5 * a, a / (2 * np.sqrt(3.0)), 0.5 * c])


@dataclass(kw_only=True)
class Material:
    """The element and ground-state structure a property is about (keyword-only fields).

    Parameters
    ----------
    symbol : str, default "W"
        Chemical symbol.
    structure : {"bcc", "fcc", "hcp"} or None, default None
        Ground-state structure; None: ASE's reference structure of ``symbol``
        (:func:`ground_state`). Kept as given, so a copy with another ``symbol`` follows it.
    """

    symbol: str = "W"
    structure: str | None = None

    @property
    def crystal(self) -> str:
        """The structure in use: ``structure``, else the element's ground state."""
        return check_structure(self.structure) if self.structure is not None else ground_state(self.symbol)


# -- the calculator's own lattice, computed once per calculator -------------------------------

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_lattice(calc, key: tuple, compute):
    """``compute()`` once per (calculator, key): the relaxed lattice of a calculator is needed by
    many properties (B, every C_ij, K_Ic, cells at its own a0). Calculators that cannot be
    weakly referenced are not cached. A calculator whose parameters are changed in place keeps
    its cached value: build a new calculator instead (ensemble members always are new)."""
    try:
        per_calc = _CACHE.setdefault(calc, {})
    except TypeError:
        return compute()
    if key not in per_calc:
        per_calc[key] = compute()
    return per_calc[key]


def relaxed_lattice(
    calc,
    symbol: str = "W",
    structure: str = "bcc",
    guess: float | None = None,
    fmax: float = 1e-4,
    steps: int = 1000,
) -> tuple[float, float | None]:
    """Zero-stress lattice ``(a, c/a)`` of ``symbol`` in ``structure`` with ``calc`` (c/a None if cubic).

    Relaxes the cell of the unit cell (cube or 2-atom hcp) at fixed scaled positions from
    ``guess`` (default :func:`~.crystal.reference_lattice`) and returns ``a`` from the volume —
    well defined even if round-off breaks the shape slightly — and, for hcp, c/a from the cell.
    Computed once per calculator and arguments (:func:`~.crystal.cached_lattice`).

    Parameters
    ----------
    calc
        Any ASE calculator with stress.
    symbol, structure
        Element and structure (bcc, fcc, hcp).
    guess
        Starting lattice constant (Å).
    fmax
        Tolerance of the cell filter (eV/Å units; ``1e-4`` is |σ| ≲ 1 MPa for bcc W).
    steps
        Optimizer step budget.
    """
    check_structure(structure)
    a_ref, covera = reference_lattice(symbol, structure)
    a_start = a_ref if guess is None else float(guess)

    def compute() -> tuple[float, float | None]:
        cell = unit_cell(symbol, structure, a_start, covera)
        relaxed = relax(cell, calc, "cell", fmax=fmax, steps=steps, name=f"{structure} {symbol} a0")
        if structure in CUBIC:
            per_cube = len(cell)
            return float((per_cube * relaxed.get_volume() / len(relaxed)) ** (1.0 / 3.0)), None
        a, _, c = relaxed.cell.cellpar()[:3]
        ratio = float(c / a)
        return float((4.0 * relaxed.get_volume() / len(relaxed) / (np.sqrt(3.0) * ratio)) ** (1.0 / 3.0)), ratio

    return cached_lattice(calc, ("lattice", symbol, structure, a_start, fmax, steps), compute)


@dataclass(kw_only=True)
class FixedCell(Material):
    """Properties computed in cells fixed at a lattice constant (defects, surfaces, faults, migration).

    The class using it has a ``lattice_constant`` field: a number fixes the cells (the same
    geometry for every calculator: the protocol of DFT defect tables, and what implicit
    propagation needs, since its states must not move with θ); None evaluates each calculator
    at its own zero-stress lattice (:func:`relaxed_lattice`, computed once per calculator) —
    then the states are only defined through a calculator and ``combines_states`` is False.

    Parameters
    ----------
    covera : float, optional
        hcp c/a of the fixed cells (None: the calculator's own with ``lattice_constant=None``,
        else the reference value).
    """

    covera: float | None = None

    @property
    def combines_states(self) -> bool:
        return self.lattice_constant is not None

    def cell_lattice(self) -> tuple[float, float | None]:
        """(a, c/a) of the fixed cells (c/a None for cubic structures)."""
        if self.lattice_constant is None:
            raise ValueError(f"{self.name}: the cells need a fixed lattice_constant; lattice_constant=None "
                             "(the calculator's own) is only defined through evaluate(calc)")
        if not self.lattice_constant > 0:
            raise ValueError(f"lattice_constant must be positive, got {self.lattice_constant!r}")
        covera = None
        if self.crystal == "hcp":
            covera = self.covera if self.covera is not None else reference_lattice(self.symbol, "hcp")[1]
        return float(self.lattice_constant), covera

    def at_own_lattice(self, calc):
        """A copy with the cells fixed at ``calc``'s own zero-stress lattice."""
        import dataclasses

        a, covera = relaxed_lattice(calc, self.symbol, self.crystal)
        return dataclasses.replace(self, lattice_constant=a, covera=covera)

    def evaluate(self, calc):
        if self.lattice_constant is None:
            return self.at_own_lattice(calc).evaluate(calc)
        return super().evaluate(calc)
