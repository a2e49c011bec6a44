"""Clamped crack-tip clusters of cubic metals: geometry, the anisotropic K field, the tip.

A :class:`CrackCluster` is a cylinder of perfect crystal, periodic along the crack front (one
lattice period: a straight front, no kinks), cut about a cleavage bond by matscipy's
:func:`~matscipy.fracture_mechanics.clusters.cluster` and
:func:`~matscipy.fracture_mechanics.clusters.centred_shift`. Atoms within ``radius`` of the tip
are free; a shell of width ``clamp`` outside it is clamped (``FixAtoms``) on the near-tip
displacement field of :class:`~matscipy.fracture_mechanics.crack.CubicCrystalCrack` — the fixed
boundary of Sinclair & Lawn's lattice-trapping clusters. ``clamp`` must exceed the calculator's
cutoff, so that no free atom sees the vacuum outside the cylinder.

Frame: x is the direction of propagation (``crack_surface × crack_front``), y the crack-plane
normal, z the front, as in matscipy. The crack plane lies between the two atomic planes at the
cylinder's centre; the field's tip sits half a bond column ahead of the centre bond.

The tip is read from the *crossing bonds*: first-neighbour pairs of the reference crystal with
one atom on either side of the crack plane. A crossing bond is open when stretched beyond
``open_ratio`` times its reference length; the tip is the furthest open bond column inside the
free region, counted in columns (``spacing`` apart along x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

from ..crystal import CUBIC, check_structure

__all__ = ["NEAREST_NEIGHBOUR", "CrackCluster", "crystal_frame"]

#: first-neighbour distance / a of the cubic structures
NEAREST_NEIGHBOUR = {"bcc": float(np.sqrt(3.0) / 2.0), "fcc": float(1.0 / np.sqrt(2.0))}


def _lattice(structure: str):
    from ase.lattice.cubic import BodyCenteredCubic, FaceCenteredCubic

    return {"bcc": BodyCenteredCubic, "fcc": FaceCenteredCubic}[check_structure(structure, CUBIC, "crack cluster")]


def crystal_frame(crack_surface, crack_front) -> np.ndarray:
    """Rows x (propagation), y (plane normal), z (front) as integer cubic directions, right-handed."""
    surface, front = np.asarray(crack_surface, int), np.asarray(crack_front, int)
    if surface.shape != (3,) or front.shape != (3,) or not surface.any() or not front.any():
        raise ValueError(f"crack plane and front must be nonzero cubic directions, got {crack_surface}, {crack_front}")
    if int(surface @ front) != 0:
        raise ValueError(f"crack front {tuple(front)} does not lie in the crack plane {tuple(surface)}")
    third = np.cross(surface, front)
    frame = np.array([third, surface, front])
    if np.linalg.det(frame) < 0:
        frame[0] = -third
    return frame


@dataclass(frozen=True)
class CrackCluster:
    """An unloaded clamped cylinder and the bookkeeping that locates its crack tip.

    Build with :meth:`build`; load with :meth:`loaded` / :meth:`field`.

    Attributes
    ----------
    reference : Atoms
        The perfect-crystal cylinder (pbc along z only, ``FixAtoms`` on the clamped shell).
    centre : ndarray, shape (2,)
        (x, y) of the field's crack tip.
    free : ndarray of bool
        Atoms inside ``radius`` (the relaxed region).
    bonds : ndarray, shape (n, 2)
        Crossing bonds (atom above, atom below the crack plane) with midpoints in the free region.
    bond_x : ndarray
        Reference x of each crossing bond's midpoint, relative to ``centre[0]``.
    bond_length : ndarray
        Reference length of each crossing bond (Å).
    spacing : float
        Distance between bond columns along x (Å).
    open_ratio : float
        Stretch beyond which a crossing bond counts as broken.
    """

    reference: Atoms
    centre: np.ndarray
    free: np.ndarray
    bonds: np.ndarray
    bond_x: np.ndarray
    bond_length: np.ndarray
    spacing: float
    open_ratio: float

    @classmethod
    def build(
        cls,
        symbol: str,
        structure: str,
        lattice_constant: float,
        crack_surface,
        crack_front,
        radius: float = 15.0,
        clamp: float = 6.0,
        open_ratio: float = 1.4,
    ) -> CrackCluster:
        """The clamped cylinder of ``symbol`` in ``structure`` (bcc or fcc) about a cleavage bond.

        Parameters
        ----------
        symbol, structure, lattice_constant
            The crystal (Å).
        crack_surface, crack_front
            Cleavage plane and front (cubic directions, perpendicular).
        radius
            Radius of the free region about the tip (Å).
        clamp
            Width of the clamped shell (Å); must exceed the calculator's cutoff.
        open_ratio
            Stretch (current / reference length) beyond which a crossing bond is broken.
        """
        from matscipy.fracture_mechanics.clusters import centred_shift, cluster
        from matscipy.neighbours import neighbour_list

        if not radius > 0 or not clamp > 0:
            raise ValueError(f"radius and clamp must be positive, got {radius}, {clamp}")
        if not open_ratio > 1:
            raise ValueError(f"open_ratio must exceed 1, got {open_ratio}")
        frame = crystal_frame(crack_surface, crack_front)
        lattice = _lattice(structure)
        a = float(lattice_constant)
        d1 = NEAREST_NEIGHBOUR[structure] * a
        periods = np.linalg.norm(frame, axis=1) * a  # the oriented cell's edges (≥ the true periods)
        outer = radius + clamp
        n = [2 * int(np.ceil((outer + d1) / periods[0])) + 2, 2 * int(np.ceil((outer + d1) / periods[1])) + 2, 1]
        surface, front = [int(i) for i in frame[1]], [int(i) for i in frame[2]]
        shift = centred_shift(symbol, a, n, surface, front, lattice=lattice, bond_cutoff=1.05 * d1, grid=48)
        block = cluster(symbol, a, n, surface, front, lattice=lattice, shift=shift)
        cx, cy = block.cell[0, 0] / 2, block.cell[1, 1] / 2
        i, j, D = neighbour_list("ijD", block, 1.05 * d1)
        pos = block.positions
        cross = (pos[i, 1] > cy) & (pos[j, 1] < cy)
        mid = pos[i[cross]] - 0.5 * D[cross]
        columns = np.unique(np.round(mid[:, 0], 3))
        gaps = np.diff(columns)
        spacing = float(gaps[gaps > 1e-2].min())  # columns equal to rounding are one column
        # the field's tip half a column ahead of the bond column nearest the block centre
        x_centre = columns[np.argmin(np.abs(columns - cx))]
        centre = np.array([x_centre + 0.5 * spacing, cy])

        r = np.hypot(pos[:, 0] - centre[0], pos[:, 1] - centre[1])
        keep = r < outer
        index = -np.ones(len(block), int)
        index[keep] = np.arange(keep.sum())
        atoms = block[keep]
        atoms.set_pbc([False, False, True])
        free = r[keep] < radius
        atoms.set_constraint(FixAtoms(mask=~free))
        atoms.info.update(crack_surface=tuple(surface), crack_front=tuple(front), radius=float(radius),
                          clamp=float(clamp), lattice_constant=a)

        bonds = np.column_stack([index[i[cross]], index[j[cross]]])
        r_mid = np.hypot(mid[:, 0] - centre[0], mid[:, 1] - centre[1])
        inside = (bonds >= 0).all(axis=1) & (r_mid < radius - 0.5 * d1)
        inside &= free[np.where(bonds >= 0, bonds, 0)].all(axis=1)
        return cls(
            reference=atoms,
            centre=centre,
            free=free,
            bonds=bonds[inside],
            bond_x=mid[inside, 0] - centre[0],
            bond_length=np.linalg.norm(D[cross][inside], axis=1),
            spacing=spacing,
            open_ratio=float(open_ratio),
        )

    @property
    def n_free(self) -> int:
        return int(self.free.sum())

    def field(self, crack, k: float) -> np.ndarray:
        """Displacements (n, 3) of the near-tip field of ``crack`` (a matscipy
        ``CubicCrystalCrack``) at stress intensity ``k`` (eV/Å^2.5) about :attr:`centre`."""
        ref = self.reference.positions
        ux, uy = crack.displacements(ref[:, 0], ref[:, 1], self.centre[0], self.centre[1], k)
        return np.column_stack([ux, uy, np.zeros_like(ux)])

    def loaded(self, crack, k: float) -> Atoms:
        """The reference cylinder displaced by the field at ``k`` (constraints kept)."""
        atoms = self.reference.copy()
        atoms.positions = self.reference.positions + self.field(crack, k)
        return atoms

    def bond_stretch(self, atoms: Atoms) -> np.ndarray:
        """Current / reference length of every crossing bond (minimum image along the front)."""
        d = atoms.positions[self.bonds[:, 0]] - atoms.positions[self.bonds[:, 1]]
        lz = atoms.cell[2, 2]
        d[:, 2] -= lz * np.round(d[:, 2] / lz)
        return np.linalg.norm(d, axis=1) / self.bond_length

    def tip_column(self, atoms: Atoms) -> int:
        """The crack tip in bond columns from the field's tip: the furthest broken column (its
        reference x over :attr:`spacing`, rounded); the column just behind the field tip is −1
        (the centre bond column sits half a column behind it)."""
        broken = self.bond_stretch(atoms) > self.open_ratio
        # no broken bond in the free region: the crack healed behind it (one column behind the last)
        x = self.bond_x[broken].max() if broken.any() else self.bond_x.min() - self.spacing
        return int(np.round(x / self.spacing - 0.5))
