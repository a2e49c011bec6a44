"""Space-group operations of a periodic structure, to build finite-difference Hessians from a few columns.

A relaxed defect keeps the point symmetry of its starting structure (a vacancy in bcc: Oh, 48
operations; a <111> dumbbell: D3d, 12), and the Hessian of a rotation-invariant potential obeys
``H_{π(a) π(b)} = R H_{ab} Rᵀ`` for every operation ``r → R r + t`` that permutes the atoms by π.
Displacing one representative atom per orbit therefore gives the whole Hessian: for the 53-atom
vacancy cell 5 orbits (30 force calls) instead of 53 (318).

No spglib: the lattice automorphisms are enumerated as integer matrices with entries in
{-1, 0, 1} in the cell basis (complete for Minkowski/Niggli-reduced cells and for the
orthogonal supercells used here; a missed operation only costs speed, never correctness), and the
translations are tried atom by atom.
"""

from __future__ import annotations

import itertools

import numpy as np
from ase import Atoms

__all__ = ["SymmetryOperation", "find_symmetry", "orbits"]

_ALL_W = np.array(list(itertools.product((-1, 0, 1), repeat=9)), dtype=float).reshape(-1, 3, 3)
_ALL_W = _ALL_W[np.abs(np.abs(np.linalg.det(_ALL_W)) - 1.0) < 1e-9]


class SymmetryOperation:
    """``r → R r + t`` mapping atom ``a`` onto atom ``perm[a]`` (modulo the lattice).

    Attributes
    ----------
    rotation : (3, 3) ndarray
        Cartesian orthogonal matrix ``R`` (column-vector convention).
    perm : (N,) int ndarray
        Image of every atom.
    """

    __slots__ = ("perm", "rotation")

    def __init__(self, rotation: np.ndarray, perm: np.ndarray):
        self.rotation = rotation
        self.perm = perm


def find_symmetry(atoms: Atoms, tol: float = 1e-5) -> list[SymmetryOperation]:
    """Every space-group operation of a 3-D periodic structure (identity first).

    Parameters
    ----------
    atoms : Atoms
        Structure; non-periodic or partially periodic structures get the identity only.
    tol : float, default 1e-5
        Largest Cartesian mismatch (Å) of a mapped atom. Relaxation keeps symmetric structures
        symmetric to round-off, so a tight tolerance only excludes genuinely broken symmetries.

    Returns
    -------
    list of SymmetryOperation
    """
    from scipy.spatial import cKDTree

    n = len(atoms)
    identity = SymmetryOperation(np.eye(3), np.arange(n))
    if not np.all(atoms.pbc) or n == 0:
        return [identity]
    cell = np.asarray(atoms.cell)
    metric = cell @ cell.T
    # fractional rows s with r = s @ cell; the operation s → s @ Wᵀ + t preserves distances
    # iff Wᵀ G W = G for the metric G = cell cellᵀ
    mapped = np.einsum("kji,jl,klm->kim", _ALL_W, metric, _ALL_W)
    ok = np.all(np.abs(mapped - metric) < 1e-6 * np.abs(metric).max(), axis=(1, 2))
    frac = _wrap(atoms.get_scaled_positions(wrap=True))
    numbers = atoms.numbers
    tree = cKDTree(frac, boxsize=1.0)
    # An operation maps the anchor atom onto an atom with the same local fingerprint; anchoring
    # on the rarest fingerprint (next to the defect) leaves a handful of candidate translations.
    fp = _fingerprints(atoms)
    _, inverse, counts = np.unique(fp, axis=0, return_inverse=True, return_counts=True)
    anchor = int(np.flatnonzero(inverse.ravel() == counts.argmin())[0])
    same = np.flatnonzero(inverse.ravel() == inverse.ravel()[anchor])
    cell_inv = np.linalg.inv(cell)
    ops = [identity]
    for W in _ALL_W[ok]:
        rotated = frac @ W.T
        # rotation in Cartesian rows: r' = r @ cell⁻¹ @ Wᵀ @ cell → column form R = (cell⁻¹ Wᵀ cell)ᵀ
        R = (cell_inv @ W.T @ cell).T
        is_identity = np.allclose(R, np.eye(3), atol=1e-9)
        for k in same:
            shift = frac[k] - rotated[anchor]
            perm = _match(rotated + shift, frac, cell, numbers, tree, tol)
            if perm is None or (is_identity and k == anchor):
                continue
            ops.append(SymmetryOperation(R, perm))
    return ops


def _wrap(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates in [0, 1) (``-1e-17 % 1.0`` is 1.0, which a periodic KD-tree rejects)."""
    out = frac % 1.0
    out[out >= 1.0] = 0.0
    return out


def _fingerprints(atoms: Atoms) -> np.ndarray:
    """(N, 3) rotation-invariant local fingerprint: species, neighbours and their summed distance.

    The cutoff 1.5 (V/N)^(1/3) spans the first two shells of bcc and fcc; the summed distance is
    rounded to 0.01 Å, far coarser than the symmetry tolerance. Two equivalent atoms on either
    side of a rounding edge would only cost operations (speed), never correctness.
    """
    from ase.neighborlist import neighbor_list

    cutoff = 1.5 * (atoms.get_volume() / len(atoms)) ** (1.0 / 3.0)
    i, d = neighbor_list("id", atoms, cutoff)
    count = np.bincount(i, minlength=len(atoms))
    total = np.bincount(i, weights=d, minlength=len(atoms))
    return np.stack([atoms.numbers, count, np.round(total, 2)], axis=1)


def _match(images, frac, cell, numbers, tree, tol):
    """Permutation taking ``frac`` onto ``images`` (atom a → perm[a]), or None."""
    # the KD-tree works in fractional coordinates (periodic box 1); the Cartesian check follows
    dist_frac, perm = tree.query(_wrap(images), distance_upper_bound=0.5)
    if not np.all(np.isfinite(dist_frac)):
        return None
    diff = images - frac[perm]
    diff -= np.round(diff)
    if np.linalg.norm(diff @ cell, axis=1).max() > tol:
        return None
    if len(np.unique(perm)) != len(perm) or np.any(numbers[perm] != numbers):
        return None
    return perm


def orbits(ops: list[SymmetryOperation], n: int) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """Representatives of the atom orbits and, for every atom, how to reach it.

    Returns
    -------
    representatives : (K,) int ndarray
        One atom per orbit (the lowest index).
    reach : dict
        ``reach[j] = (b, k)`` with ``ops[k].perm[b] == j`` and ``b`` a representative.
    """
    reach: dict[int, tuple[int, int]] = {}
    reps = []
    for b in range(n):
        if b in reach:
            continue
        reps.append(b)
        for k, op in enumerate(ops):
            reach.setdefault(int(op.perm[b]), (b, k))
    return np.array(reps, dtype=int), reach
