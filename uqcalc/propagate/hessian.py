"""Hessians of U(q, θ) = E_ref + θ·D at a relaxed structure, and their (pseudo-)inverses.

Finite differences
------------------
``H = ∂g/∂q`` by central differences of the generalised gradient (:mod:`.coordinates`): column
``j`` is ``(G(q + h e_j) − G(q − h e_j)) / 2h`` — two descriptor calls. Each call returns
``G`` for *every* parameter column, so the same calls give the Hessian of every descriptor
component, ``∇²D_p``, and of the reference part: the Hessian for any θ is the exact linear
combination ``H(θ) = Σ_p θ_p ∇²D_p + ∇²E_ref`` (U is linear in θ). The functions here contract
those columns with a matrix ``T`` (P + 1, K) as they arrive, returning a tensor
(n, n, K): ``T = [θ̄, 1]ᵀ`` gives H(θ̄) alone; ``T = I`` every component.

The truncation error is ``h²/6 ∂³g`` and round-off ``~1e-13 |F| / h``; with ``h = 1e-3`` Å
both are ~1e-6 of the entries for SNAP and the pair basis (measured: h = 1e-2, 1e-3, 1e-4 give
Hessians that differ by 7e-5 and 7e-7 relative), far below the O(|δ|³) truncation of the
expansion. Space-group symmetry (:mod:`.symmetry`) reduces the atomic columns to one atom per
orbit, ``H_{π(a) π(b)} = R H_{ab} Rᵀ`` (each ∇²D_p obeys it, the descriptors being
rotation-invariant), and each representative is displaced along as few directions as its site
symmetry allows (phonopy's minimal displacements): the 53-atom vacancy cell needs 14 descriptor
calls instead of 318, the 127-atom one 30 instead of 762. Constrained states are differenced
along an orthonormal basis of their allowed space when that is cheaper.

Inverses
--------
:class:`PseudoInverse` restricts H to the free space (no zero modes, no constrained directions)
and eigendecomposes it (symmetric indefinite: saddle points allowed, no Cholesky); an eigenvalue
near zero there raises :class:`SingularHessianError`. :class:`HessianOperator` is the
matrix-free alternative: Hessian–vector products from two gradient calls, solved by MINRES.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..descriptors import worker_descriptor
from .coordinates import Coordinates
from .executors import batch_size, map_batches
from .symmetry import orbits

__all__ = [
    "HESSIAN_METHODS",
    "HessianOperator",
    "HessianSolver",
    "PseudoInverse",
    "SingularHessianError",
    "complement_basis",
    "dense_hessian",
    "directional_hessian",
    "n_dense_columns",
]


class SingularHessianError(RuntimeError):
    """The Hessian of a relaxed state is singular beyond its zero modes and constraints."""


# --------------------------------------------------------------------------- finite differences


def _difference_columns(descriptor, coords: Coordinates, T: np.ndarray, directions: np.ndarray,
                        step: float) -> np.ndarray:
    """``(G(+h d) − G(−h d)) / 2h @ T`` for unit-norm directions (n_c, n_dof) → (n_dof, n_c, K)."""
    out = np.empty((coords.n_dof, directions.shape[0], T.shape[1]))
    for k, d in enumerate(directions):
        plus = coords.evaluate(descriptor, step * d)[1]
        minus = coords.evaluate(descriptor, -step * d)[1]
        out[:, k, :] = ((plus - minus) @ T) / (2.0 * step)
    return out


def _fd_task(spec, coords, T, directions, step):
    """Executor task: difference columns with the worker's descriptor for ``spec``."""
    return _difference_columns(worker_descriptor(spec), coords, T, directions, step)


def hessian_columns(descriptor, coords: Coordinates, T: np.ndarray, directions: np.ndarray,
                    step: float = 1e-3, executor=None) -> np.ndarray:
    """``H d_k`` contracted with T, for every row of ``directions`` → (n_dof, n_c, K).

    With an executor the directions are split into about four tasks per worker; tasks receive
    the descriptor spec, the coordinates and a block of directions.
    """
    if executor is None or len(directions) < 2:
        return _difference_columns(descriptor, coords, T, directions, step)
    per = batch_size(len(directions), executor)
    spec = descriptor.spec()
    blocks = [directions[i : i + per] for i in range(0, len(directions), per)]
    results = map_batches(_fd_task, [(spec, coords, T, b, step) for b in blocks], executor)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return np.concatenate(results, axis=1)


# a direction with no special orientation in a cubic crystal: its images under a site group
# span space as soon as the group allows it
_GENERIC = np.array([1.0, 0.53, 0.29]) / np.linalg.norm([1.0, 0.53, 0.29])


def _site_directions(rotations: list[np.ndarray]) -> np.ndarray:
    """Fewest displacement directions (k, 3) whose images under the site group span space.

    Phonopy's trick: for an atom whose site symmetry has rotations, H_{·b} d for one direction
    d gives H_{·b} R d for every site rotation R, so a generic direction often suffices (a
    3-fold axis, as at the vacancy's first neighbours) instead of three.
    """
    if len(rotations) == 1:
        return np.eye(3)
    chosen, images, rank = [], np.zeros((3, 0)), 0
    for c in [_GENERIC, *np.eye(3)]:
        trial = np.concatenate([images, np.stack([R @ c for R in rotations], axis=1)], axis=1)
        r = np.linalg.matrix_rank(trial, tol=1e-6)
        if r > rank:
            chosen.append(c)
            images, rank = trial, r
        if rank == 3:
            break
    return np.array(chosen)


def _plan(coords: Coordinates, symmetry: bool, symprec: float):
    """(ops, representatives, reach, {rep: stabiliser op indices}, {rep: directions})."""
    from .symmetry import SymmetryOperation

    N = coords.n_atoms
    ops = coords.symmetry(symprec) if (symmetry and coords.has_positions) else None
    if ops is None or len(ops) == 1:
        ops = [SymmetryOperation(np.eye(3), np.arange(N))]
    reps, reach = orbits(ops, N)
    stab = {int(b): [k for k, op in enumerate(ops) if op.perm[b] == b] for b in reps}
    dirs = {b: _site_directions([ops[k].rotation for k in stab[b]]) for b in stab}
    return ops, reps, reach, stab, dirs


def n_dense_columns(coords: Coordinates, symmetry: bool, symprec: float = 1e-5) -> int:
    """Difference columns (two descriptor calls each) a dense, symmetry-reduced Hessian needs."""
    n = coords.n_dof - coords.n_pos
    if coords.has_positions:
        n += sum(len(d) for d in _plan(coords, symmetry, symprec)[4].values())
    return n


def dense_hessian(descriptor, coords: Coordinates, T: np.ndarray, step: float = 1e-3, symmetry: bool = True,
                  symprec: float = 1e-5, executor=None) -> tuple[np.ndarray, dict]:
    """Central-difference Hessian tensor (n_dof, n_dof, K) at the reference structure.

    Parameters
    ----------
    descriptor : Descriptor
    coords : Coordinates
    T : (P + 1, K) ndarray
        Contraction of the parameter columns (see the module docstring).
    step : float, default 1e-3
        Finite-difference step (Å, also for the scaled strain coordinates).
    symmetry : bool, default True
        Difference one atom per symmetry orbit only, along as few directions as its site
        symmetry allows (periodic cells).
    symprec : float
        Tolerance (Å) of the symmetry search.
    executor : concurrent.futures.Executor, optional
        Evaluates the columns in parallel.

    Returns
    -------
    H : ndarray
        Symmetrised in its first two axes.
    info : dict
        ``n_evaluations``, ``n_symmetry_ops``, ``asymmetry`` (max |H − Hᵀ| / max |H| before
        symmetrising: a finite-difference quality check).
    """
    n, npos, N = coords.n_dof, coords.n_pos, coords.n_atoms
    K = T.shape[1]
    directions, owners = [], []
    if coords.has_positions:
        ops, reps, reach, stab, dirs = _plan(coords, symmetry, symprec)
        for b in reps:
            for d in dirs[int(b)]:
                v = np.zeros(n)
                v[3 * b : 3 * b + 3] = d
                directions.append(v)
                owners.append(int(b))
    directions += list(np.eye(n)[npos:])  # strain columns
    cols = hessian_columns(descriptor, coords, T, np.array(directions), step, executor)  # (n, n_c, K)
    H = np.zeros((n, n, K))
    H[:, npos:, :] = cols[:, len(owners) :, :]
    if coords.has_positions:
        # representative blocks: H_{·b} R d = (rotated column of d) for every site rotation R
        for b in reps:
            b = int(b)
            D, C = [], []
            for c, owner, v in zip(np.moveaxis(cols[:npos, : len(owners)], 1, 0), owners, directions):
                if owner != b:
                    continue
                d, block = v[3 * b : 3 * b + 3], c.reshape(N, 3, K)
                for k in stab[b]:
                    R, perm = ops[k].rotation, ops[k].perm
                    image = np.empty_like(block)
                    image[perm] = np.einsum("ij,ajK->aiK", R, block)
                    D.append(R @ d)
                    C.append(image.reshape(npos, K))
            H[:npos, 3 * b : 3 * b + 3, :] = np.einsum("mpK,mi->piK", np.array(C), np.linalg.pinv(np.array(D).T))
        # the other atoms of each orbit: H_{π(a) π(b)} = R H_{ab} Rᵀ
        for j in range(N):
            b, k = reach[j]
            if b == j:
                continue
            R, perm = ops[k].rotation, ops[k].perm
            block = H[:npos, 3 * b : 3 * b + 3, :].reshape(N, 3, 3, K)  # [atom a, i, k, K]
            rotated = np.einsum("aikK,lk->ailK", np.einsum("ij,ajkK->aikK", R, block), R)
            new = np.empty_like(rotated)
            new[perm] = rotated
            H[:npos, 3 * j : 3 * j + 3, :] = new.reshape(npos, 3, K)
        if n > npos:
            # atom–strain coupling from the strain columns (H is symmetric)
            H[npos:, :npos, :] = H[:npos, npos:, :].transpose(1, 0, 2)
    scale = max(np.abs(H).max(), 1e-300)
    asym = float(np.abs(H - H.transpose(1, 0, 2)).max() / scale)
    H = 0.5 * (H + H.transpose(1, 0, 2))
    info = {"n_evaluations": 2 * len(directions), "n_symmetry_ops": len(ops) if coords.has_positions else 1,
            "asymmetry": asym, "step": step}
    return H, info


def directional_hessian(descriptor, coords: Coordinates, T: np.ndarray, B: np.ndarray, step: float = 1e-3,
                        executor=None) -> tuple[np.ndarray, dict]:
    """``Bᵀ H B`` (n_b, n_b, K) by central differences along the orthonormal columns of B.

    Cheaper than the full Hessian when constraints leave a small allowed space (a
    symmetry-constrained defect, atoms fixed to lines).
    """
    HB = hessian_columns(descriptor, coords, T, B.T, step, executor)
    Hc = np.einsum("ia,ibK->abK", B, HB)
    scale = max(np.abs(Hc).max(), 1e-300)
    asym = float(np.abs(Hc - Hc.transpose(1, 0, 2)).max() / scale)
    return 0.5 * (Hc + Hc.transpose(1, 0, 2)), {"n_evaluations": 2 * B.shape[1], "n_symmetry_ops": 1,
                                                  "asymmetry": asym, "step": step}


def complement_basis(Z: np.ndarray, n: int) -> np.ndarray:
    """Orthonormal basis (n, n − k) of the complement of the orthonormal columns Z (n, k)."""
    k = Z.shape[1]
    if k == 0:
        return np.eye(n)
    full, _ = np.linalg.qr(np.concatenate([Z, np.eye(n)], axis=1))
    return full[:, k:n]


# --------------------------------------------------------------------------- solves


class PseudoInverse:
    """H⁺ on the free space from ``H_c = Bᵀ H B`` (B: orthonormal basis of the free space).

    ``H_c`` is eigendecomposed (symmetric, possibly indefinite: a saddle point has one negative
    eigenvalue, so no Cholesky) and ``H⁺ = B V Λ⁻¹ Vᵀ Bᵀ``; the zero modes and constrained
    directions, being outside B, are projected out explicitly.

    Raises
    ------
    SingularHessianError
        If an eigenvalue of ``H_c`` is below ``max(atol, rtol·max|λ|)`` in magnitude: a further
        zero mode (a detached atom or cluster, a missing rotation for a non-periodic structure,
        an unstable strain) makes the response to θ undefined.
    """

    def __init__(self, Hc: np.ndarray, B: np.ndarray, atol: float = 1e-5, rtol: float = 1e-9, name: str = ""):
        lam, V = np.linalg.eigh(0.5 * (Hc + Hc.T))
        limit = max(atol, rtol * np.abs(lam).max(initial=0.0))
        small = np.abs(lam) < limit
        if small.any():
            raise SingularHessianError(
                f"{name}: Hessian singular beyond its zero modes: {int(small.sum())} eigenvalue(s) "
                f"with |λ| < {limit:.1e} eV/Å² (smallest {lam[np.abs(lam).argmin()]:.2e}); the relaxed "
                "structure has a free direction (detached atoms, an unconstrained rotation or strain), "
                "so its response to the parameters is undefined"
            )
        self.basis = B @ V
        self.eigenvalues = lam

    def __call__(self, rhs: np.ndarray) -> np.ndarray:
        coef = self.basis.T @ rhs
        coef = coef / (self.eigenvalues[:, None] if rhs.ndim == 2 else self.eigenvalues)
        return self.basis @ coef

    @property
    def n_negative(self) -> int:
        return int((self.eigenvalues < 0).sum())

    @property
    def min_eigenvalue(self) -> float:
        return float(self.eigenvalues[np.abs(self.eigenvalues).argmin()])


class HessianOperator:
    """Matrix-free H(θ̄)⁺: Hessian–vector products by central differences, solved by MINRES.

    ``H v ≈ |v| (g(q + h v̂) − g(q − h v̂)) / 2h`` (two descriptor calls). The operator and
    right-hand sides are projected onto the free space, so MINRES (symmetric, indefinite
    allowed) started from zero stays there and returns the H⁺ solution. A solve that does not
    converge — the matrix-free sign of a singular or near-singular Hessian — raises
    :class:`SingularHessianError`. Unlike the dense eigendecomposition, MINRES cannot see a
    singular H whose null space the right-hand sides avoid (e.g. two fragments out of each
    other's range: their relative motions are free, but no θ pushes along them); it then returns
    the minimum-norm response.
    """

    def __init__(self, descriptor, coords: Coordinates, theta_aug: np.ndarray,
                 step: float = 1e-3, rtol: float = 1e-8, maxiter: int | None = None, name: str = ""):
        self.descriptor, self.coords, self.theta_aug = descriptor, coords, theta_aug
        self.B, self.Z = coords.free_space()
        self.step, self.rtol, self.name = step, rtol, name
        self.maxiter = maxiter if maxiter is not None else 10 * coords.n_dof
        self.n_evaluations = 0
        self.iterations: list[int] = []

    def project(self, v: np.ndarray) -> np.ndarray:
        if self.B is not None:
            return self.B @ (self.B.T @ v)
        return v - self.Z @ (self.Z.T @ v) if self.Z.shape[1] else v

    def matvec(self, v: np.ndarray) -> np.ndarray:
        v = self.project(np.asarray(v, dtype=float).ravel())
        norm = np.linalg.norm(v)
        if norm == 0.0:
            return np.zeros_like(v)
        d = self.step * v / norm
        gp = self.coords.gradient(self.descriptor, self.theta_aug, d)
        gm = self.coords.gradient(self.descriptor, self.theta_aug, -d)
        self.n_evaluations += 2
        return self.project((gp - gm) * (norm / (2.0 * self.step)))

    def __call__(self, rhs: np.ndarray) -> np.ndarray:
        from scipy.sparse.linalg import LinearOperator, minres

        n = self.coords.n_dof
        op = LinearOperator((n, n), matvec=self.matvec, dtype=float)
        cols = rhs[:, None] if rhs.ndim == 1 else rhs
        out = np.zeros_like(cols, dtype=float)
        for k in range(cols.shape[1]):
            b = self.project(cols[:, k])
            if not np.any(b):
                continue
            count = [0]

            def callback(_x, count=count):
                count[0] += 1

            x, info = minres(op, b, rtol=self.rtol, maxiter=self.maxiter, callback=callback)
            self.iterations.append(count[0])
            resid = np.linalg.norm(op.matvec(x) - b) / np.linalg.norm(b)
            if info != 0 or resid > 1e3 * self.rtol:
                raise SingularHessianError(
                    f"{self.name}: matrix-free Hessian solve did not converge (MINRES info {info}, "
                    f"relative residual {resid:.1e} after {count[0]} iterations): the Hessian is singular "
                    "or nearly so beyond its zero modes"
                )
            out[:, k] = self.project(x)
        return out[:, 0] if rhs.ndim == 1 else out


# --------------------------------------------------------------------------- settings


HESSIAN_METHODS = ("auto", "dense", "matrix-free")


@dataclass(frozen=True)
class HessianSolver:
    """How implicit differentiation builds and applies H⁺ at a relaxed state.

    Parameters
    ----------
    method : {"auto", "dense", "matrix-free"}, default "auto"
        Dense central differences (2 descriptor calls per coordinate, fewer with symmetry or
        constraints) or MINRES on finite-difference Hessian–vector products (H(θ̄) only).
        ``"auto"``: dense up to 3000 coordinates.
    member_hessian : bool, optional
        Expand each member with its own exact H(θ_m) (:mod:`.expansion`). Default: whenever
        the Hessian is dense and its per-component tensor fits in memory. False gives the
        paper's fixed-Hessian expansion.
    step : float, default 1e-3
        Finite-difference step (Å; strains scaled by V^(1/3)).
    symmetry : bool, default True
        Use space-group symmetry for the dense Hessian.
    singular_atol : float, default 1e-5
        Eigenvalue (eV/Å²) below which H is singular beyond its zero modes (an error).
    rtol : float, default 1e-8
        MINRES relative tolerance of the matrix-free solves.
    """

    method: str = "auto"
    member_hessian: bool | None = None
    step: float = 1e-3
    symmetry: bool = True
    singular_atol: float = 1e-5
    rtol: float = 1e-8

    def __post_init__(self) -> None:
        if self.method not in HESSIAN_METHODS:
            raise ValueError(f"hessian method must be one of {HESSIAN_METHODS}, got {self.method!r}")
        if self.member_hessian and self.method == "matrix-free":
            raise ValueError("member_hessian needs the dense Hessian (a matrix-free solve per member is too costly)")
        if not self.step > 0:
            raise ValueError(f"finite-difference step must be > 0, got {self.step!r}")
