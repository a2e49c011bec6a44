"""Generalised coordinates of a relaxed state: atoms and/or homogeneous strain, with constraints.

A state relaxed in ``"positions"`` moves its atoms, one relaxed in ``"cell"`` deforms its cell at
fixed scaled positions, ``"both"`` does both. With the reference structure (positions ``u``, cell
``C``) and a symmetric strain ``ε`` the deformed structure is ``r_i = (I + ε) u_i``, cell
``C (I + ε)``, and the coordinates are ``q = (u − u₀ [3N], L·e [6])``: ``e`` is ε in Voigt order
(xx yy zz yz xz xy) with engineering shears (``ε_yz = e₄/2``), and ``L = V^(1/3)`` makes every
coordinate a length, so that one finite-difference step (Å) and one eigenvalue tolerance
(eV/Å²) serve atoms and strains alike. Rotations are not coordinates (the strain is
symmetric), so the only zero modes are translations (and rotations of a non-periodic cluster).

The gradient ``g = ∂U/∂q`` is linear in θ at fixed q:

    ∂U/∂u_i = −(I + ε)ᵀ F_i
    ∂U/∂ε   = V σ (I + ε)⁻ᵀ          (σ = ASE stress; symmetrised for the Voigt pairs)

so one descriptor evaluation gives it for every parameter column at once: ``G(q)`` (n_dof,
P + 1) with the reference part in the last column, ``g(q, θ) = G(q) @ [θ, 1]``. Its θ-derivative
at the relaxed structure is the paper's Mᵀ (``METHODS.md`` §5; Maliyov, Grigorev & Swinburne,
arXiv:2407.02414).

Constraints that the relaxation obeys (ASE FixAtoms, FixedLine, ..., the point-symmetry
projection of :mod:`uqcalc.properties.defects`) restrict the displacements to a subspace:
:meth:`Coordinates.free_space` gives an orthonormal basis of the allowed displacements minus the
zero modes, the space in which H is inverted.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from .symmetry import find_symmetry

__all__ = ["Coordinates"]

# ASE Voigt order xx yy zz yz xz xy
_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def _strain_tensor(e: np.ndarray) -> np.ndarray:
    """Symmetric strain tensor from Voigt components with engineering shears."""
    eps = np.zeros((3, 3))
    for k, (a, b) in enumerate(_VOIGT):
        if a == b:
            eps[a, a] = e[k]
        else:
            eps[a, b] = eps[b, a] = 0.5 * e[k]
    return eps


class Coordinates:
    """Generalised coordinates (atoms and/or homogeneous strain) around a reference structure.

    Parameters
    ----------
    atoms : Atoms
        Reference structure (the state relaxed at θ̄); copied, calculator dropped.
    mode : {"positions", "cell", "both"}
        Which degrees of freedom the state relaxes.
    """

    def __init__(self, atoms: Atoms, mode: str):
        if mode not in ("positions", "cell", "both"):
            raise ValueError(f"no coordinates for relax mode {mode!r}")
        self.atoms = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        # "cell" relaxations drop the structure's own constraints (they fix every atom instead)
        self.constraints = [c.copy() for c in atoms.constraints] if mode != "cell" else []
        self.mode = mode
        self.n_atoms = len(atoms)
        self.has_positions = mode in ("positions", "both")
        self.has_strain = mode in ("cell", "both")
        if self.has_strain and not np.all(atoms.pbc):
            raise ValueError(f"relax mode {mode!r} needs a cell periodic in all three directions")
        self.n_pos = 3 * self.n_atoms if self.has_positions else 0
        self.n_dof = self.n_pos + (6 if self.has_strain else 0)
        self.volume = float(atoms.get_volume()) if np.all(atoms.pbc) else float("nan")
        self.length = self.volume ** (1.0 / 3.0) if self.has_strain else 1.0

    # -- structures --------------------------------------------------------------------------

    def split(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(atomic displacements (N, 3), deformation I + ε) of coordinates ``q``."""
        du = q[: self.n_pos].reshape(-1, 3) if self.has_positions else np.zeros((self.n_atoms, 3))
        F = np.eye(3)
        if self.has_strain:
            F = F + _strain_tensor(q[self.n_pos :] / self.length)
        return du, F

    def structure(self, q: np.ndarray) -> Atoms:
        """The structure at coordinates ``q`` (no calculator)."""
        du, F = self.split(np.asarray(q, dtype=float))
        out = self.atoms.copy()
        # F is symmetric, so row vectors transform with F itself
        out.set_cell(np.asarray(self.atoms.cell) @ F, scale_atoms=False)
        out.positions = (self.atoms.positions + du) @ F
        return out

    # -- gradients ---------------------------------------------------------------------------

    def gradient_rows(self, rows, F: np.ndarray, volume: float) -> np.ndarray:
        """``G`` (n_dof, P + 1): ∂U/∂q per parameter column, reference part last."""
        P = rows.energy.shape[0]
        out = np.empty((self.n_dof, P + 1))
        if self.has_positions:
            forces = np.concatenate([rows.forces, rows.ref_forces[:, :, None]], axis=2)  # (N, 3, P+1)
            # ∂U/∂u_i = −Fᵀ f_i; F symmetric
            out[: self.n_pos] = -np.einsum("ab,iap->ibp", F, forces).reshape(self.n_pos, P + 1)
        if self.has_strain:
            if rows.stress is None:
                raise ValueError("cell relaxation needs stress rows (3-D periodic cell)")
            stress = np.concatenate([rows.stress, rows.ref_stress[:, None]], axis=1)  # (6, P+1)
            sigma = np.empty((3, 3, P + 1))
            for k, (a, b) in enumerate(_VOIGT):
                sigma[a, b] = sigma[b, a] = stress[k]
            G = volume * np.einsum("acp,bc->abp", sigma, np.linalg.inv(F))  # V σ F⁻ᵀ
            for k, (a, b) in enumerate(_VOIGT):
                out[self.n_pos + k] = G[a, a] if a == b else 0.5 * (G[a, b] + G[b, a])
            out[self.n_pos :] /= self.length
        return out

    def evaluate(self, descriptor, q: np.ndarray):
        """(rows, G) at coordinates ``q``: one descriptor call."""
        q = np.asarray(q, dtype=float)
        atoms = self.structure(q)
        rows = descriptor.rows(atoms)
        _, F = self.split(q)
        volume = float(atoms.get_volume()) if self.has_strain else self.volume
        return rows, self.gradient_rows(rows, F, volume)

    def gradient(self, descriptor, theta_aug: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``g(q, θ) = G(q) @ [θ, 1]``."""
        return self.evaluate(descriptor, q)[1] @ theta_aug

    # -- geometry of the coordinates -----------------------------------------------------------

    def zero_modes(self) -> np.ndarray:
        """Orthonormal zero modes (n_dof, k): translations; rotations too for a cluster.

        A cell periodic along exactly one vector keeps the rotation about that vector.
        """
        if not self.has_positions:
            return np.zeros((self.n_dof, 0))
        n = self.n_atoms
        modes = []
        for a in range(3):
            t = np.zeros((n, 3))
            t[:, a] = 1.0
            modes.append(t)
        pbc = np.asarray(self.atoms.pbc, dtype=bool)
        if pbc.sum() <= 1:
            r = self.atoms.positions - self.atoms.positions.mean(axis=0)
            axes = np.eye(3) if not pbc.any() else [np.asarray(self.atoms.cell)[pbc.argmax()]]
            for axis in axes:
                modes.append(np.cross(np.asarray(axis, dtype=float), r))
        Z = np.zeros((self.n_dof, len(modes)))
        for k, m in enumerate(modes):
            Z[: self.n_pos, k] = m.ravel()
        # QR drops nothing here: translations and rotations of ≥ 3 non-collinear atoms are independent
        q, r = np.linalg.qr(Z)
        keep = np.abs(np.diag(r)) > 1e-8 * max(1.0, np.abs(r).max())
        return q[:, keep]

    def allowed(self) -> np.ndarray | None:
        """Orthonormal basis (n_dof, n_a) of the displacements the state's constraints allow.

        None when unconstrained. ASE constraints that act as linear projections of the forces
        (FixAtoms, FixCartesian, FixedLine, FixedPlane, point-symmetry projections) are supported:
        the relaxation then minimises U on an affine subspace, and the implicit derivative lives
        in it. For strains, ``adjust_stress`` (if a constraint has one) restricts them the same way.

        Raises
        ------
        ValueError
            For a constraint that is not a linear projection (bond lengths, Hookean springs, ...).
        """
        if hasattr(self, "_allowed"):
            return self._allowed
        self._allowed = None
        if not self.constraints:
            return None
        from ase.constraints import FixAtoms

        blocks = []
        if self.has_positions:
            if all(isinstance(c, FixAtoms) for c in self.constraints):
                free = np.ones((self.n_atoms, 3), dtype=bool)
                for c in self.constraints:
                    free[c.index] = False
                pos = np.eye(self.n_pos)[:, free.ravel()]
            else:
                pos = self._projection_range(self.n_pos, self._adjust_forces)
            blocks.append(pos)
        if self.has_strain:
            if any(hasattr(c, "adjust_stress") for c in self.constraints):
                blocks.append(self._projection_range(6, self._adjust_strain))
            else:
                blocks.append(np.eye(6))
        A = np.zeros((self.n_dof, sum(b.shape[1] for b in blocks)))
        r = c = 0
        for b in blocks:
            A[r : r + b.shape[0], c : c + b.shape[1]] = b
            r, c = r + b.shape[0], c + b.shape[1]
        self._allowed = A
        return A

    def _constrained_atoms(self) -> Atoms:
        atoms = self.atoms.copy()
        atoms.set_constraint([c.copy() for c in self.constraints])
        return atoms

    def _adjust_forces(self, v: np.ndarray) -> np.ndarray:
        atoms = self._constrained_atoms() if not hasattr(self, "_catoms") else self._catoms
        self._catoms = atoms
        f = v.reshape(self.n_atoms, 3).copy()
        for c in self.constraints:
            c.adjust_forces(atoms, f)
        return f.ravel()

    def _adjust_strain(self, e: np.ndarray) -> np.ndarray:
        atoms = self._constrained_atoms() if not hasattr(self, "_catoms") else self._catoms
        self._catoms = atoms
        eps = _strain_tensor(e)
        s = np.array([eps[a, b] for a, b in _VOIGT])
        for c in self.constraints:
            if hasattr(c, "adjust_stress"):
                c.adjust_stress(atoms, s)
        return np.array([s[k] if k < 3 else 2.0 * s[k] for k in range(6)])

    @staticmethod
    def _projection_range(n: int, apply) -> np.ndarray:
        """Orthonormal basis of the range of a linear projection given as a function."""
        Pi = np.stack([apply(col) for col in np.eye(n)], axis=1)
        rng = np.random.default_rng(0)
        v = rng.normal(size=n)
        scale = max(np.abs(Pi).max(), 1e-300)
        if not (np.allclose(apply(v), Pi @ v, atol=1e-8 * scale * np.abs(v).sum())
                and np.allclose(Pi @ Pi, Pi, atol=1e-8 * scale)):
            raise ValueError(
                "a constraint of this state is not a linear projection of the forces/stress; implicit "
                "propagation supports FixAtoms, FixCartesian, FixedLine, FixedPlane and symmetry "
                "projections — use method='resample'"
            )
        u, sv, _ = np.linalg.svd(Pi)
        return u[:, sv > 1e-8]

    def free_space(self) -> tuple[np.ndarray | None, np.ndarray]:
        """(B, Z): an orthonormal basis B of the allowed displacements without zero modes, and Z,
        the zero modes inside the allowed space. ``B`` is None when unconstrained (then the free
        space is the complement of Z, applied as a projection: no dense basis for large cells)."""
        if hasattr(self, "_free"):
            return self._free
        Z = self.zero_modes()
        A = self.allowed()
        if A is None:
            self._free = (None, Z)
        elif Z.shape[1] == 0:
            self._free = (A, Z)
        else:
            u, sv, _ = np.linalg.svd(A.T @ Z, full_matrices=True)
            # a zero mode must lie wholly in the allowed space: a translation that moves a fixed
            # atom is pinned (not a symmetry of the constrained problem), however few atoms are fixed
            inside = int((sv > 1.0 - 1e-8).sum())
            self._free = (A @ u[:, inside:], A @ u[:, :inside])
        return self._free

    def symmetry(self, symprec: float = 1e-5) -> list:
        """Space-group operations of the reference structure (cached)."""
        cache = self.__dict__.setdefault("_symmetry", {})
        if symprec not in cache:
            cache[symprec] = find_symmetry(self.atoms, symprec)
        return cache[symprec]

    def volume_gradient(self) -> np.ndarray:
        """∂V/∂q at the reference structure (zero without strain coordinates)."""
        out = np.zeros(self.n_dof)
        if self.has_strain:
            out[self.n_pos : self.n_pos + 3] = self.volume / self.length
        return out

    def cartesian(self, dq: np.ndarray) -> np.ndarray:
        """First-order Cartesian displacements (N, 3) of coordinate changes ``dq``."""
        du, F = self.split(dq)
        return du + self.atoms.positions @ (F - np.eye(3))
