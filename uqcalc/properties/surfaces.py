"""Surface energies: ``γ = (E_slab − N_slab e_bulk) / (2A)`` in J/m², for bcc, fcc and hcp metals.

Geometry
--------
The slab is cut by :func:`ase.build.surface` from the unit cell of the structure (the
conventional cube for bcc and fcc, the 2-atom hexagonal cell for hcp, whose basal and
prismatic planes are (001) and (100) there), with a 1×1 in-plane
cell (``repeat`` enlarges it) and ``layers`` *atomic planes*: ase's own ``layers`` counts
repeats of the oriented cell, which hold one plane for (110), (112), (310) and two for (100),
(111), (210), so the plane count is the comparable thickness. The slab is periodic in all three
directions with a ``vacuum`` gap (Å, total) between it and its image. The bulk reference is
the perfect crystal in the *same in-plane cell* (one oriented cell, 2 atoms) at the same
lattice constant, with its true oblique period along the normal — ``ase.build.surface`` with
``vacuum=None`` makes the third vector normal to the surface, which is not a lattice vector for
(111), (112), (210) or (310) and would put a stacking fault at the cell boundary.

Defaults (converged for the teacher)
------------------------------------
* ``layers``: :data:`LAYERS` atomic planes (15–20 Å), twice what the teacher needs for
  0.001 J/m² (its γ does not move by more than 1e-4 J/m² up to three times the default);
  :data:`QUICK_LAYERS` for tests (within 0.003 J/m²). fcc and hcp defaults
  (:data:`LAYERS_BY_STRUCTURE`) give the same ~15–25 Å thickness.
* ``vacuum = 12`` Å (the teacher's cutoff is 4.8 Å; DFT needs ~10 Å).
* Positions relaxed with LBFGS to ``fmax = 1e-3`` eV/Å; 1×1 cells, so reconstructions such as
  the c(2×2) of W(100) are excluded.
* In-plane cell fixed at ``lattice_constant`` (the W suite: :data:`~.base.TUNGSTEN_A0`).
  ``None`` uses the calculator's own relaxed lattice (then :meth:`SurfaceEnergy.states` is
  undefined: it needs a fixed cell).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import gcd
from typing import ClassVar

import numpy as np
from ase import Atoms, units
from ase.build import surface
from ase.build.general_surface import ext_gcd

from .base import TUNGSTEN_A0, Property, State, StateProperty
from .crystal import FixedCell, Material, unit_cell

__all__ = ["EV_PER_A2", "LAYERS", "LAYERS_BY_STRUCTURE", "QUICK_LAYERS", "QUICK_LAYERS_BY_STRUCTURE", "SurfaceEnergy",
           "oriented_bulk", "slab", "suite"]

#: 1 eV/Å² in J/m² (16.0218)
EV_PER_A2 = float(1.0 / (units.J / units.m**2))

#: default atomic planes per orientation (thickness 15–20 Å): about twice what the teacher needs
#: for 0.001 J/m² (its γ is the same to 1e-4 J/m² from 8 (100) / 4 (110) / 12 (111) / 8 (112) /
#: 16 (210) / 10 (310) planes up to 3× the default), a margin for calculators whose relaxation
#: reaches deeper (DFT relaxes the first W(100) interlayer spacing by ~ −7 %)
LAYERS = {(1, 0, 0): 12, (1, 1, 0): 10, (1, 1, 1): 20, (1, 1, 2): 14, (2, 1, 0): 24, (3, 1, 0): 16}
#: planes for the quick suite (teacher: within 0.003 J/m² of the converged values)
QUICK_LAYERS = {(1, 0, 0): 8, (1, 1, 0): 6, (1, 1, 1): 12, (1, 1, 2): 8, (2, 1, 0): 12, (3, 1, 0): 8}
#: default and quick plane counts per structure (bcc: the tables above); fcc (100) (110) (111)
#: and hcp basal (001) / prismatic (100) slabs of ~20 Å (quick: ~12 Å)
LAYERS_BY_STRUCTURE = {
    "bcc": LAYERS,
    "fcc": {(1, 0, 0): 12, (1, 1, 0): 16, (1, 1, 1): 10},
    "hcp": {(0, 0, 1): 10, (1, 0, 0): 16},
}
QUICK_LAYERS_BY_STRUCTURE = {
    "bcc": QUICK_LAYERS,
    "fcc": {(1, 0, 0): 8, (1, 1, 0): 10, (1, 1, 1): 6},
    "hcp": {(0, 0, 1): 6, (1, 0, 0): 10},
}
_HCP_NAMES = {(0, 0, 1): "basal", (1, 0, 0): "prismatic"}


def _miller(indices: Sequence[int] | str) -> tuple[int, int, int]:
    if isinstance(indices, str):
        indices = [int(c) for c in indices]
    out = tuple(int(i) for i in indices)
    if len(out) != 3 or not any(out):
        raise ValueError(f"Miller indices must be three integers, not all zero; got {indices!r}")
    g = gcd(gcd(out[0], out[1]), out[2])
    return tuple(i // g for i in out)


def _surface_basis(lattice: Atoms, indices: tuple[int, int, int]) -> np.ndarray:
    """Integer basis (c1, c2, c3) of the cubic lattice used by :func:`ase.build.surface`.

    A transcription of ase's choice (``ase/build/general_surface.py``), needed because ase
    does not return it; :func:`slab` checks that the in-plane vectors agree with ase's slab.
    """
    h, k, l = indices
    h0, k0, l0 = (h == 0, k == 0, l == 0)
    if (h0 and k0) or (h0 and l0) or (k0 and l0):
        if not h0:
            c1, c2, c3 = (0, 1, 0), (0, 0, 1), (1, 0, 0)
        if not k0:
            c1, c2, c3 = (0, 0, 1), (1, 0, 0), (0, 1, 0)
        if not l0:
            c1, c2, c3 = (1, 0, 0), (0, 1, 0), (0, 0, 1)
    else:
        p, q = ext_gcd(k, l)
        a1, a2, a3 = lattice.cell
        k1 = np.dot(p * (k * a1 - h * a2) + q * (l * a1 - h * a3), l * a2 - k * a3)
        k2 = np.dot(l * (k * a1 - h * a2) - k * (l * a1 - h * a3), l * a2 - k * a3)
        if abs(k2) > 1e-10:
            i = -int(round(k1 / k2))  # noqa: RUF046 (numpy floats)
            p, q = p + i * l, q - i * k
        a, b = ext_gcd(p * k + q * l, h)
        c1 = (p * k + q * l, -p * h, -q * h)
        c2 = np.array((0, l, -k)) // abs(gcd(l, k))
        c3 = (b, a * p, a * q)
    return np.array([c1, c2, c3], dtype=int)


def oriented_bulk(indices: Sequence[int] | str, lattice_constant: float = TUNGSTEN_A0, symbol: str = "W",
                  structure: str = "bcc", covera: float | None = None) -> Atoms:
    """Perfect crystal (one unit cell) in the in-plane cell of the ``indices`` surface.

    The first two cell vectors are those of the 1×1 slab of :func:`slab` (a1 along x, a2 in
    the xy plane); the third is the lattice vector c3 of the surface basis, generally oblique.
    """
    indices = _miller(indices)
    cube = unit_cell(symbol, structure, lattice_constant, covera)
    basis = _surface_basis(cube, indices)
    if np.linalg.det(basis) < 0:  # right-handed, so the standard form keeps z along +normal
        basis[2] *= -1
    scaled = np.linalg.solve(basis.T, cube.get_scaled_positions().T).T
    atoms = Atoms([symbol] * len(cube), scaled_positions=scaled % 1.0, cell=basis @ cube.cell[:], pbc=True)
    rcell, _ = atoms.cell.standard_form()
    atoms.set_cell(rcell, scale_atoms=True)
    atoms.wrap()
    return atoms


def _planes(z: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Plane index of each height (planes counted from the bottom)."""
    order = np.argsort(z)
    labels = np.empty(len(z), dtype=int)
    label, last = -1, -np.inf
    for i in order:
        if z[i] - last > tol:
            label += 1
            last = z[i]
        labels[i] = label
    return labels


def slab(
    indices: Sequence[int] | str,
    layers: int,
    lattice_constant: float = TUNGSTEN_A0,
    vacuum: float = 12.0,
    symbol: str = "W",
    structure: str = "bcc",
    covera: float | None = None,
) -> Atoms:
    """Periodic 1×1 slab with ``layers`` atomic planes and a ``vacuum`` gap (Å, total).

    Cut with :func:`ase.build.surface` (enough oriented cells, then the top planes beyond
    ``layers`` removed), centred in a cell whose third vector is normal to the surface.
    """
    indices = _miller(indices)
    if int(layers) < 1:
        raise ValueError(f"layers must be a positive number of atomic planes, got {layers!r}")
    cube = unit_cell(symbol, structure, lattice_constant, covera)
    one = surface(cube, indices, 1, vacuum=None, periodic=True)
    per_cell = _planes(one.positions[:, 2]).max() + 1
    atoms = surface(cube, indices, -(-int(layers) // per_cell), vacuum=None, periodic=True)
    atoms = atoms[_planes(atoms.positions[:, 2]) < int(layers)]
    ref = oriented_bulk(indices, lattice_constant, symbol, structure, covera)
    if not np.allclose(atoms.cell[:2], ref.cell[:2], atol=1e-8):
        raise RuntimeError(f"in-plane cells of the {indices} slab and bulk reference differ (ase changed?)")
    atoms.pbc = True
    atoms.center(vacuum=0.5 * vacuum, axis=2)
    return atoms


@dataclass
class SurfaceEnergy(FixedCell, StateProperty):
    """Relaxed surface energy (J/m²) of a bcc, fcc or hcp surface.

    States: the slab (positions relaxed, coefficient ``1/(2A)``) and the perfect crystal in
    the same in-plane cell (not relaxed, coefficient ``−N_slab/(N_bulk 2A)``); ``scale`` =
    :data:`EV_PER_A2` converts eV/Å² to J/m².

    Parameters
    ----------
    miller
        Surface normal, e.g. ``(1, 1, 0)`` or ``"110"`` (hcp: ``(0, 0, 1)`` basal,
        ``(1, 0, 0)`` prismatic, in the hexagonal cell).
    layers
        Atomic planes in the slab; None: :data:`LAYERS_BY_STRUCTURE` (bcc: converged to
        < 0.001 J/m² for the teacher).
    vacuum
        Vacuum gap between the slab and its periodic image (Å).
    repeat
        In-plane repeats of the 1×1 cell.
    lattice_constant
        Lattice constant of both states (Å); ``None``: each calculator's own relaxed lattice.
    relaxed
        Relax the slab's positions (``False``: unrelaxed, bulk-terminated γ).
    symbol, structure, covera
        Element, ground-state structure and hcp c/a (keyword-only; :mod:`.crystal`).
    """

    miller: tuple[int, int, int] = (1, 0, 0)
    layers: int | None = None
    vacuum: float = 12.0
    repeat: tuple[int, int] = (1, 1)
    lattice_constant: float | None = None
    relaxed: bool = True
    scale: float = field(default=EV_PER_A2, kw_only=True)

    unit: ClassVar[str] = "J/m^2"

    def __post_init__(self):
        self.miller = _miller(self.miller)  # idempotent: "110" and (1, 1, 0) are the same surface
        if self.structure is not None or self.layers is None:
            _ = self.n_layers  # validates that a default exists

    @property
    def n_layers(self) -> int:
        """Atomic planes of the slab: ``layers``, else the default of :data:`LAYERS_BY_STRUCTURE`."""
        if self.layers is not None:
            return int(self.layers)
        table = LAYERS_BY_STRUCTURE[self.crystal]
        if self.miller not in table:
            raise ValueError(f"no default layer count for {self.crystal} {self.miller}; pass layers=")
        return table[self.miller]

    def _default_name(self) -> str:
        if self.crystal == "hcp" and self.miller in _HCP_NAMES:
            return f"gamma_{_HCP_NAMES[self.miller]}"
        return "gamma_" + "".join(str(i) for i in self.miller)

    def structures(self, lattice_constant: float | None = None) -> tuple[Atoms, Atoms]:
        """(slab, bulk reference), repeated ``repeat`` in plane (default: the fixed lattice)."""
        a, covera = self.cell_lattice() if lattice_constant is None else (lattice_constant, self.covera)
        reps = (*self.repeat, 1)
        return (
            slab(self.miller, self.n_layers, a, self.vacuum, self.symbol, self.crystal, covera).repeat(reps),
            oriented_bulk(self.miller, a, self.symbol, self.crystal, covera).repeat(reps),
        )

    def states(self) -> list[State]:
        top, ref = self.structures()
        two_area = 2.0 * np.linalg.norm(np.cross(top.cell[0], top.cell[1]))
        return [
            State("slab", top, "positions" if self.relaxed else "none", 1.0 / two_area),
            State("bulk", ref, "none", -len(top) / len(ref) / two_area),
        ]


def suite(quick: bool = False, lattice_constant: float | None = None, **material) -> list[Property]:
    """Surface entries of a suite: bcc (100) (110) (111) (112) (210) (310); fcc (100) (110) (111);
    hcp basal and prismatic."""
    crystal = Material(**material).crystal
    table = (QUICK_LAYERS_BY_STRUCTURE if quick else LAYERS_BY_STRUCTURE)[crystal]
    return [SurfaceEnergy(m, layers=n, lattice_constant=lattice_constant, **material) for m, n in table.items()]
