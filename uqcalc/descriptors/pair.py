"""A pure-numpy linear pair potential: the light model for tests, tutorials and cheap propagation.

Model
-----
For species ``S = (s_0, ..., s_{n-1})`` and ``K = n_basis`` radial functions::

    E   = sum_s n_s beta0_s + sum_{i<j} sum_k theta_{ab,k} phi_k(r_ij)
    E_i = beta0_{s_i} + 1/2 sum_{j != i} sum_k theta_{ab,k} phi_k(r_ij)

with one block of ``K`` coefficients per unordered species pair ``(a, b)``.
The radial basis is a set of Gaussians multiplied by a polynomial cutoff::

    phi_k(r) = exp(-(r - mu_k)^2 / (2 w^2)) * f_c(r)
    f_c(r)   = (1 - (r / r_cut)^2)^3   for r < r_cut, else 0
    mu_k     = r_min + k (r_cut - r_min) / (K - 1)       (mu_0 = r_min when K == 1)

``f_c`` has a triple zero at ``r_cut``, so energy, forces and the force
constants (Hessian) are continuous there (C2): implicit differentiation of
relaxed structures needs a continuous Hessian.

Parameter layout
----------------
``theta = [beta0_{s_0}, ..., beta0_{s_{n-1}},   (only when constant=True)
           block(s_0, s_0), block(s_0, s_1), ..., block(s_0, s_{n-1}),
           block(s_1, s_1), ..., block(s_{n-1}, s_{n-1})]``
each block holding ``K`` coefficients in order of increasing centre ``mu_k``.
:attr:`PairBasis.param_labels` names every column.
"""

from __future__ import annotations

import numbers

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from matscipy.neighbours import neighbour_list

from .base import Descriptor, Rows

__all__ = ["PairBasis"]

# Voigt order used by ASE: xx yy zz yz xz xy.
_VOIGT = (np.array([0, 1, 2, 1, 0, 0]), np.array([0, 1, 2, 2, 2, 1]))

# Two atoms closer than this have no defined pair direction.
_OVERLAP = 1e-10


def _real(name: str, value, *, allow_none: bool = False) -> float | None:
    """Coerce a finite real number (rejecting bools) or raise a ValueError naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


class PairBasis(Descriptor):
    """Linear pair potential on a smooth Gaussian radial basis (pure numpy).

    Parameters
    ----------
    species : sequence of str or str, default ("W",)
        Chemical symbols the model knows, in parameter order. A single string
        is one species.
    r_cut : float, default 5.0
        Cutoff radius in Å; every basis function and its first two
        derivatives vanish there.
    r_min : float, default 1.5
        Centre of the first Gaussian in Å, ``0 <= r_min < r_cut``.
    n_basis : int, default 8
        Number of radial functions ``K`` per species pair.
    width : float or None, default None
        Gaussian width ``w`` in Å. ``None`` uses the spacing of the centres,
        ``(r_cut - r_min) / (n_basis - 1)`` (``r_cut - r_min`` when ``n_basis == 1``).
    constant : bool, default True
        Keep one per-species constant energy ``beta0_s`` (first in theta).

    Raises
    ------
    ValueError
        If a parameter is out of range; the message names the parameter.

    Examples
    --------
    >>> from ase.build import bulk
    >>> d = PairBasis(species=["W"], r_cut=5.0, n_basis=8)
    >>> rows = d.rows(bulk("W", "bcc", a=3.16, cubic=True))
    >>> rows.energy.shape, rows.forces.shape, rows.stress.shape
    ((9,), (2, 3, 9), (6, 9))
    """

    def __init__(
        self,
        species: tuple[str, ...] | list[str] | str = ("W",),
        r_cut: float = 5.0,
        r_min: float = 1.5,
        n_basis: int = 8,
        width: float | None = None,
        constant: bool = True,
    ) -> None:
        if isinstance(species, str):
            species = (species,)
        try:
            species = tuple(species)
        except TypeError:
            raise ValueError(
                f"species must be a sequence of chemical symbols, got {species!r}"
            ) from None
        if not species:
            raise ValueError("species must name at least one element")
        for s in species:
            if not isinstance(s, str) or s not in chemical_symbols[1:]:
                raise ValueError(f"species contains {s!r}, which is not a chemical symbol")
        if len(set(species)) != len(species):
            raise ValueError(f"species contains duplicates: {list(species)}")

        r_cut = _real("r_cut", r_cut)
        r_min = _real("r_min", r_min)
        if r_cut <= 0:
            raise ValueError(f"r_cut must be positive, got {r_cut}")
        if not 0 <= r_min < r_cut:
            raise ValueError(f"r_min must satisfy 0 <= r_min < r_cut={r_cut}, got {r_min}")
        if isinstance(n_basis, (bool, np.bool_)) or not isinstance(n_basis, numbers.Integral):
            raise ValueError(f"n_basis must be an integer, got {n_basis!r}")
        n_basis = int(n_basis)
        if n_basis < 1:
            raise ValueError(f"n_basis must be >= 1, got {n_basis}")
        width = _real("width", width, allow_none=True)
        if width is None:
            # Spacing of the centres: neighbouring Gaussians overlap at about
            # exp(-1/2), enough for a well-conditioned smooth basis.
            width = (r_cut - r_min) / (n_basis - 1) if n_basis > 1 else r_cut - r_min
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        if not isinstance(constant, (bool, np.bool_)):
            raise ValueError(f"constant must be a bool, got {constant!r}")

        self.species = species
        self.r_cut = r_cut
        self.r_min = r_min
        self.n_basis = n_basis
        self.width = float(width)
        self.constant = bool(constant)
        self.centres = (
            np.linspace(r_min, r_cut, n_basis) if n_basis > 1 else np.array([r_min])
        )

        n = len(species)
        # Symmetric lookup (a, b) -> block number, blocks in row-major upper-triangle order.
        self._block = np.empty((n, n), dtype=np.intp)
        self._pairs: list[tuple[str, str]] = []
        for a in range(n):
            for b in range(a, n):
                self._block[a, b] = self._block[b, a] = len(self._pairs)
                self._pairs.append((species[a], species[b]))
        self._index = {s: k for k, s in enumerate(species)}

    # ------------------------------------------------------------------ layout
    @property
    def n_const(self) -> int:
        """Number of constant (``beta0``) columns: ``len(species)`` or 0."""
        return len(self.species) if self.constant else 0

    @property
    def n_params(self) -> int:
        """Number of linear parameters ``P = n_const + n_pairs * n_basis``."""
        return self.n_const + len(self._pairs) * self.n_basis

    @property
    def param_labels(self) -> list[str]:
        """Human-readable name of every parameter column, e.g. ``"pair[W-Ta][3]"``."""
        labels = [f"beta0[{s}]" for s in self.species] if self.constant else []
        for a, b in self._pairs:
            labels += [f"pair[{a}-{b}][{k}]" for k in range(self.n_basis)]
        return labels

    def spec(self) -> dict:
        """JSON-able constructor arguments (with the resolved ``width``) plus ``"type"``."""
        return {
            "type": "PairBasis",
            "species": list(self.species),
            "r_cut": self.r_cut,
            "r_min": self.r_min,
            "n_basis": self.n_basis,
            "width": self.width,
            "constant": self.constant,
        }

    # ------------------------------------------------------------------ basis
    def radial(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radial functions and their derivatives.

        Parameters
        ----------
        r : array_like, shape (...)
            Distances in Å.

        Returns
        -------
        phi, dphi : ndarray, shape (..., n_basis)
            ``phi_k(r)`` and ``d phi_k / dr``; both zero for ``r >= r_cut``.
        """
        r = np.asarray(r, dtype=float)[..., None]
        x2 = (r / self.r_cut) ** 2
        inside = x2 < 1.0
        u = np.where(inside, 1.0 - x2, 0.0)
        fc = u**3
        dfc = -6.0 * r / self.r_cut**2 * u**2
        dx = r - self.centres
        g = np.exp(-0.5 * (dx / self.width) ** 2)
        dg = -dx / self.width**2 * g
        return g * fc, dg * fc + g * dfc

    # ------------------------------------------------------------------ rows
    def _species_index(self, atoms: Atoms) -> np.ndarray:
        symbols = np.array(atoms.get_chemical_symbols())
        unknown = sorted(set(symbols.tolist()) - set(self.species))
        if unknown:
            raise ValueError(
                f"atoms contain species {unknown} unknown to this PairBasis "
                f"(species={list(self.species)})"
            )
        return np.array([self._index[s] for s in symbols], dtype=np.intp)

    def _neighbours(self, atoms: Atoms):
        """Full neighbour list ``i, j, d, D`` (every pair both ways, images included)."""
        pos = atoms.positions
        pbc = np.asarray(atoms.pbc, dtype=bool)
        cell = np.array(atoms.cell.array, dtype=float)
        if not np.all(np.isfinite(pos)):
            raise ValueError("atoms have non-finite positions")
        if len(atoms) == 0:
            empty = np.zeros(0, dtype=np.intp)
            return empty, empty, np.zeros(0), np.zeros((0, 3))

        periodic = cell[pbc]
        if len(periodic) and np.linalg.matrix_rank(periodic, tol=1e-8) < len(periodic):
            raise ValueError(
                f"periodic cell vectors are degenerate (pbc={pbc.tolist()}, cell={cell.tolist()})"
            )
        if pbc.all():
            origin = np.zeros(3)
        else:
            # matscipy needs an invertible cell even along open directions, and
            # bins atoms by it: replace the open vectors by a box spanning the
            # atoms, orthogonal to the periodic ones (ASE clusters often have a
            # zero cell).
            if len(periodic):
                comp = np.linalg.svd(periodic)[2][len(periodic):]
            else:
                comp = np.eye(3)
            proj = pos @ comp.T
            lo, hi = proj.min(axis=0), proj.max(axis=0)
            cell[~pbc] = comp * np.maximum(hi - lo, self.r_cut)[:, None]
            origin = lo @ comp
        i, j, d, D = neighbour_list(
            "ijdD", positions=pos, cell=cell, pbc=pbc, cutoff=self.r_cut,
            cell_origin=origin, numbers=atoms.numbers.astype(np.int32),
        )
        if len(d) and d.min() < _OVERLAP:
            k = int(np.argmin(d))
            raise ValueError(f"atoms {i[k]} and {j[k]} overlap (distance {d[k]:.3g} Å)")
        return i, j, d, D

    def rows(self, atoms: Atoms, per_atom: bool = False) -> Rows:
        """Design rows of one structure.

        Parameters
        ----------
        atoms : ase.Atoms
            Any structure: periodic, partly periodic or a cluster. Every
            species must be in :attr:`species`.
        per_atom : bool, default False
            Also return the per-atom energy rows.

        Returns
        -------
        Rows
            ``energy (P,)``, ``forces (N, 3, P)`` (``-dE/dr``), ``stress (6, P)``
            (ASE Voigt order and sign, ``(1/V) dE/d strain``; ``None`` unless
            the cell is periodic in all three directions) and, if asked,
            ``per_atom (N, P)``.

        Raises
        ------
        ValueError
            Unknown species, overlapping atoms, degenerate periodic cell.
        """
        n_atoms = len(atoms)
        sidx = self._species_index(atoms)
        pbc3 = bool(np.all(atoms.pbc))
        if pbc3:
            volume = abs(np.linalg.det(atoms.cell.array))
            if volume < 1e-8:
                raise ValueError(f"periodic cell has zero volume ({volume:.3g} Å^3)")
        i, j, d, D = self._neighbours(atoms)

        K, P, n0 = self.n_basis, self.n_params, self.n_const
        nbk = len(self._pairs) * K  # pair columns
        phi, dphi = self.radial(d)  # (n_pairs, K)
        # Column (within the pair part) of every (pair, k).
        col = self._block[sidx[i], sidx[j]][:, None] * K + np.arange(K)

        # The full list holds each pair twice (i->j and j->i): weight 1/2.
        energy = np.zeros(P)
        if n0:
            energy[:n0] = np.bincount(sidx, minlength=n0)
        energy[n0:] = np.bincount(col.ravel(), weights=0.5 * phi.ravel(), minlength=nbk)

        # dE/dr_j of the listed term 1/2 phi(|D|) is g = 1/2 phi' D/|D| and
        # dE/dr_i = -g. The reversed entry j->i carries -g on the same atoms, so
        # summing over the i side alone gives F_i = sum_j phi'(d_ij) D_ij/d_ij.
        unit = D / d[:, None]
        fidx = (i[:, None, None] * 3 + np.arange(3)[None, :, None]) * P + (n0 + col)[:, None, :]
        fw = dphi[:, None, :] * unit[:, :, None]
        forces = np.bincount(fidx.ravel(), weights=fw.ravel(), minlength=n_atoms * 3 * P)
        forces = forces.reshape(n_atoms, 3, P)

        stress = None
        if pbc3:
            # Virial of a pair term: dE/d eps_ab = 1/2 phi'(d) D_a D_b / d per listed pair.
            a, b = _VOIGT
            w = D[:, a] * unit[:, b]  # (n_pairs, 6)
            vidx = np.arange(6)[None, :, None] * nbk + col[:, None, :]
            sw = 0.5 * dphi[:, None, :] * w[:, :, None]
            stress = np.zeros((6, P))
            stress[:, n0:] = np.bincount(
                vidx.ravel(), weights=sw.ravel(), minlength=6 * nbk
            ).reshape(6, nbk)
            stress /= volume

        pa = None
        if per_atom:
            pa = np.zeros((n_atoms, P))
            if n0:
                pa[np.arange(n_atoms), sidx] = 1.0
            pidx = i[:, None] * nbk + col
            pa[:, n0:] = np.bincount(
                pidx.ravel(), weights=0.5 * phi.ravel(), minlength=n_atoms * nbk
            ).reshape(n_atoms, nbk)

        return Rows(energy=energy, forces=forces, stress=stress, per_atom=pa)
