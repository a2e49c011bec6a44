"""Implicit differentiation of a relaxed state with respect to the linear parameters.

For U(q, θ) = E_ref(q) + θ·D(q) relaxed at θ̄ to q* (``METHODS.md`` §5; Maliyov, Grigorev &
Swinburne, arXiv:2407.02414), with ``g₀ = ∂U/∂q`` (≈ 0, the relaxation residual),
``M = ∂²U/∂q∂θ`` (n_dof, P; the negative force rows) and ``H = ∂²U/∂q²``, the relaxed state
for θ = θ̄ + δ is, to second order,

    s(δ)    = g₀ + M δ                                the gradient at q* for θ (exact: linear in θ)
    dq*(δ)  = −H⁺ s(δ)                                positions/strain: error O(|δ|²)
    E*(δ)   = U₀ + D(q*)·δ − ½ s(δ)ᵀ H⁺ s(δ)          energy:           error O(|δ|³)
    V*(δ)   = volume of the cell at q* + dq*(δ)       volume:           error O(|δ|²)

With ``H = H(θ̄)`` this is the paper's expansion, ``E* + D·δ − ½ δᵀ Mᵀ H⁺ M δ``. Because U is
linear in θ, the Hessian at q* is known exactly for every member too,
``H(θ) = Σ_p θ_p ∇²D_p + ∇²E_ref``, and the finite-difference calls that build H(θ̄) give every
``∇²D_p`` at no extra cost. Using each member's own ``H(θ_m)`` (``member_hessian``, the default
when memory allows) makes the prediction a Newton step from q* for that member: the
θ-dependence of the curvature (the ``U_qqθ`` part of the third-order term) is included and only
the anharmonicity ``U_qqq`` is left. The member solves are Galerkin projections on the small
subspace spanned by H(θ̄)⁺[g₀, M] and the softest modes of H(θ̄) (:meth:`StateExpansion._reduce`):
exact to the same order, (P + 17)³ instead of n_dof³ operations per member. On the 54-site
SNAP <111> SIA with a 200-member POPS ensemble (``benchmarks/bench_propagate.py``) this cut
the largest member error against re-relaxation from 0.054 eV (12% of the ensemble std) to
0.0011 eV (0.24%), with no extra descriptor call. Members whose ``H(θ_m)`` is no longer
positive definite at q* (the structure is not a minimum for them) are listed in
``info["unstable_members"]``.

Keeping g₀ is a Newton correction of the imperfect relaxation at θ̄: without it the relaxation
tolerance leaves an O(fmax·|δ|) error that masks the O(|δ|³) convergence. ``linear`` propagation
keeps the first-order (envelope-theorem) energy term ``U₀ + D·δ`` only, which needs no Hessian;
a volume's first-order term does need dq*/dθ, hence H.

States whose gradient rows vanish identically (perfect crystals relaxed in positions: every
atom is an inversion centre, so forces are zero for every θ) do not move; their Hessian is skipped.

Size: ~430 lines for one class, :class:`StateExpansion`; its dense, member-Hessian and
matrix-free branches share the solves and are not separable without passing their state around.
"""

from __future__ import annotations

import time

import numpy as np
from ase import Atoms

from ..ensemble import deviation_basis
from .coordinates import Coordinates
from .hessian import (
    HessianOperator,
    HessianSolver,
    PseudoInverse,
    complement_basis,
    dense_hessian,
    directional_hessian,
    n_dense_columns,
)

__all__ = ["StateExpansion"]

# n_dof above which hessian="auto" goes matrix-free (a dense FD Hessian costs up to 2·n_dof calls)
_AUTO_DENSE_MAX_DOF = 3000
# largest Hessian tensor (floats) kept for member Hessians (n_dof × columns × components)
_TENSOR_BUDGET = 3e7
# members per batched solve
_CHUNK = 64
# softest modes of H(θ̄) added to the member-Hessian subspace (the members' solves are most sensitive there)
_SOFT_MODES = 16


class StateExpansion:
    """Second-order expansion of one relaxed state's energy, volume and structure in θ.

    Build with :meth:`build`; predict with :meth:`energy`, :meth:`volume`, :meth:`quantity`,
    :meth:`displacements`, :meth:`structure`, :meth:`refine`.

    Attributes
    ----------
    name, relax, quantity_kind : str
        State label, relax mode and the quantity (``"energy"`` / ``"volume"``) it contributes.
    atoms : Atoms
        The relaxed structure at θ̄ (no calculator, no constraints).
    theta : (P,) ndarray
    energy0, volume0 : float
        Energy and volume of the relaxed structure at θ̄ (no Newton correction).
    D : (P,) ndarray
        Energy rows at the relaxed structure (dE*/dθ by the envelope theorem).
    coords : Coordinates or None
        The state's generalised coordinates (None when nothing relaxes).
    info : dict
        Diagnostics: ``n_dof``, ``hessian`` (method), ``member_hessian``, ``n_evaluations``
        (descriptor calls), ``n_zero_modes``, ``n_negative`` (1 at a saddle point),
        ``min_eigenvalue`` (smallest in magnitude), ``lowest_eigenvalue``, ``asymmetry``,
        ``unstable_members``, timings.
    """

    def __init__(self, name, relax, quantity_kind, atoms, theta, energy0, volume0, D, info):
        self.name, self.relax, self.quantity_kind = name, relax, quantity_kind
        self.atoms, self.theta = atoms, theta
        self.energy0, self.volume0, self.D = energy0, volume0, D
        self.info = info
        self.coords: Coordinates | None = None
        self.M = self.g0 = None
        self.kind = "fixed"  # "fixed" (no coordinates move), "dense", "matrix-free"
        self._E = self._S = self._Hs = self._Hfree = self._T_mode = self._W = self._inv0 = self._op = None
        self._z0 = self._Zb = self._basis = None

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        descriptor,
        theta: np.ndarray,
        atoms: Atoms,
        relax: str,
        name: str = "state",
        quantity: str = "energy",
        need_hessian: bool = True,
        solver: HessianSolver | None = None,
        deviations: np.ndarray | None = None,
        executor=None,
    ) -> StateExpansion:
        """Expansion of ``atoms`` (already stationary at ``theta`` in mode ``relax``).

        Parameters
        ----------
        descriptor : Descriptor
        theta : (P,) ndarray
        atoms : Atoms
            The stationary structure; its constraints (if any) are the relaxation's.
        relax : {"none", "positions", "cell", "both"}
        name, quantity : str
            State label and its quantity (``"energy"`` or ``"volume"``).
        need_hessian : bool, default True
            False for first-order energy propagation: skips H (and dq*/dθ).
        solver : HessianSolver, optional
            How H is built and applied (default :class:`~.hessian.HessianSolver()`).
        deviations : (M, P) ndarray, optional
            θ_m − θ̄ of the members to be predicted: the subspace for member Hessians when all
            components do not fit, and for the matrix-free solves.
        executor : concurrent.futures.Executor, optional
            Evaluates the dense Hessian's difference columns in parallel.
        """
        solver = HessianSolver() if solver is None else solver
        theta = np.asarray(theta, dtype=float)
        P = theta.size
        start = time.perf_counter()
        base = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        rows = descriptor.rows(base)
        energy0 = float(rows.energy @ theta + rows.ref_energy)
        volume0 = float(base.get_volume()) if np.all(base.pbc) else float("nan")
        info = {"name": name, "relax": relax, "quantity": quantity, "n_atoms": len(base), "n_dof": 0,
                "hessian": "none", "member_hessian": False, "n_evaluations": 1}
        exp = cls(name, relax, quantity, base, theta, energy0, volume0, rows.energy.copy(), info)
        if relax == "none" or (quantity == "volume" and relax == "positions"):
            # nothing relaxes (or nothing that changes the quantity): exactly linear in θ
            info["hessian"] = "none (not relaxed)" if relax == "none" else "none (fixed cell)"
            return exp
        coords = exp.coords = Coordinates(atoms, relax)  # keeps the state's constraints
        _, G = coords.evaluate(descriptor, np.zeros(coords.n_dof))
        aug = np.append(theta, 1.0)
        B, Z = coords.free_space()
        free = (lambda X: B @ (B.T @ X)) if B is not None else (lambda X: X - Z @ (Z.T @ X))
        # the residual along zero modes or constrained directions is not a force on the state
        exp.M, exp.g0 = G[:, :P], free(G @ aug)
        info.update(n_dof=coords.n_dof, n_evaluations=2, residual_gradient=float(np.abs(exp.g0).max()),
                    n_zero_modes=Z.shape[1],
                    n_constrained=0 if B is None else coords.n_dof - B.shape[1] - Z.shape[1])
        if not (need_hessian or quantity == "volume"):
            return exp
        # dq*/dθ is built from the gradient rows: zero placeholder rows would read as "no response"
        if coords.has_positions:
            rows.require("force", f"the response of state {name!r} to θ")
        if coords.has_strain:
            rows.require("stress", f"the response of state {name!r}'s cell to θ")
        row_scale = max(1.0, np.abs(rows.energy).max() / max(len(base), 1))
        if relax == "positions" and np.abs(free(exp.M)).max() <= 1e-9 * row_scale:
            # symmetric state: no parameter moves it (perfect crystal), dq*/dθ = 0 exactly
            info["hessian"] = "none (gradient rows vanish by symmetry)"
            return exp
        step, symmetry, member_hessian = solver.step, solver.symmetry, solver.member_hessian
        method = solver.method
        if method == "auto":
            method = "dense" if coords.n_dof <= _AUTO_DENSE_MAX_DOF else "matrix-free"
        if method == "matrix-free":
            if member_hessian:
                raise ValueError("member_hessian needs the dense Hessian (a matrix-free solve per member is too costly)")
            exp.kind, exp._op = "matrix-free", HessianOperator(descriptor, coords, aug, step=step, rtol=solver.rtol,
                                                                name=f"state {name!r}")
            info.update(hessian="matrix-free", step=step)
            exp._prepare_matrix_free(deviations)
            info["time_hessian"] = time.perf_counter() - start
            return exp
        directional = B is not None and B.shape[1] < n_dense_columns(coords, symmetry)
        n_cols = B.shape[1] if directional else n_dense_columns(coords, symmetry)
        size = coords.n_dof * (n_cols if directional else coords.n_dof)  # floats per Hessian component
        T, mode = exp._contraction(aug, member_hessian, deviations, size)
        # The Hessian tensor is computed in "x" coordinates: all n_dof, or the constrained basis B
        # (directional differences); E maps x to the full coordinates (None: identity).
        if directional:
            Hx, hinfo = directional_hessian(descriptor, coords, T, B, step=step, executor=executor)
            E, Bx, kind = B, np.eye(B.shape[1]), "dense (constrained directions)"
        else:
            Hx, hinfo = dense_hessian(descriptor, coords, T, step=step, symmetry=symmetry, executor=executor)
            Bx = B if B is not None else complement_basis(Z, coords.n_dof)
            E, kind = None, "dense"
        exp.kind, exp._E, exp._T_mode = "dense", E, mode
        Hbar = Hx @ exp._coef(theta[None, :])[0]
        pinv = PseudoInverse(Bx.T @ Hbar @ Bx, np.eye(Bx.shape[1]), atol=solver.singular_atol, name=f"state {name!r}")
        V = Bx @ pinv.basis  # eigenvectors of H(θ̄) on the free space, x coordinates
        exp._inv0 = (V / pinv.eigenvalues) @ V.T  # H(θ̄)⁺
        if mode != "fixed":
            exp._reduce(Hx, V[:, np.argsort(pinv.eigenvalues)[:_SOFT_MODES]], Bx)
        del Hx, Hbar
        info.update(hessian=kind, member_hessian=mode != "fixed", member_hessian_mode=mode,
                    n_evaluations=info["n_evaluations"] + hinfo["n_evaluations"],
                    n_symmetry_ops=hinfo["n_symmetry_ops"], asymmetry=hinfo["asymmetry"], step=step,
                    n_negative=pinv.n_negative, min_eigenvalue=pinv.min_eigenvalue,
                    lowest_eigenvalue=float(pinv.eigenvalues.min()),
                    max_eigenvalue=float(np.abs(pinv.eigenvalues).max()), n_free=int(Bx.shape[1]),
                    n_reduced=0 if exp._S is None else int(exp._S.shape[1]))
        info["time_hessian"] = time.perf_counter() - start
        return exp

    def _contraction(self, aug, member_hessian, deviations, size):
        """(T, mode): which Hessian components to keep (module docstring of :mod:`.hessian`)."""
        P = aug.size - 1
        if member_hessian is False:
            return aug[:, None], "fixed"
        if size * (P + 1) <= _TENSOR_BUDGET:
            return np.eye(P + 1), "full"
        if deviations is not None:
            W = deviation_basis(deviations).T  # (P, r)
            if size * (W.shape[1] + 1) <= _TENSOR_BUDGET:
                self._W = W
                return np.concatenate([aug[:, None], np.vstack([W, np.zeros((1, W.shape[1]))])], axis=1), "subspace"
        if member_hessian:
            raise MemoryError(f"state {self.name!r}: member Hessians need more than {_TENSOR_BUDGET:.0e} floats; "
                              "pass member_hessian=False")
        return aug[:, None], "fixed"

    def _reduce(self, Hx: np.ndarray, soft: np.ndarray, free: np.ndarray) -> None:
        """Member Hessians on the subspace S = span(H(θ̄)⁺[g₀, M], softest modes of H(θ̄)).

        A member's solve H(θ_m) x = s_m is done by Galerkin projection on S: S contains the
        fixed-Hessian response H(θ̄)⁺s_m, so the prediction is exact for H(θ_m) = H(θ̄) and its
        first-order change in H (the ``U_qqθ`` third-order term) is captured exactly; what is lost
        is O(|δ|⁴). It replaces an n_dof³ solve per member by a (≤ P + 1 + 16)³ one.

        Whether H(θ_m) is positive definite is decided on the whole free space (basis ``free``),
        not on S: far from θ̄ a member can turn a mode negative that is stiff at θ̄.
        """
        rhs = np.concatenate([self.g0[:, None], self.M], axis=1)
        if self._E is not None:
            rhs = self._E.T @ rhs
        cols = np.concatenate([self._inv0 @ rhs, soft], axis=1)
        u, sv, _ = np.linalg.svd(cols, full_matrices=False)
        S = u[:, sv > 1e-10 * sv.max()]
        tmp = np.tensordot(S.T, Hx, axes=(1, 0))  # (d, m, K)
        Hs = np.tensordot(tmp, S, axes=(1, 0)).transpose(0, 2, 1)  # (d, d, K)
        self._S, self._Hs = S, 0.5 * (Hs + Hs.transpose(1, 0, 2))
        Hf = np.tensordot(np.tensordot(free.T, Hx, axes=(1, 0)), free, axes=(1, 0)).transpose(0, 2, 1)
        self._Hfree = 0.5 * (Hf + Hf.transpose(1, 0, 2))

    def _coef(self, thetas: np.ndarray) -> np.ndarray:
        """Weights (K_m, K) of the Hessian components for parameter vectors (K_m, P)."""
        if self._T_mode == "full":
            return np.concatenate([thetas, np.ones((thetas.shape[0], 1))], axis=1)
        if self._T_mode == "subspace":
            # H is exact on the span of the members' deviations; other directions are projected out
            return np.concatenate([np.ones((thetas.shape[0], 1)), (thetas - self.theta) @ self._W], axis=1)
        return np.ones((thetas.shape[0], 1))

    def _prepare_matrix_free(self, deviations) -> None:
        """Solve H z₀ = g₀ and H Z = M on the span of the deviations (one MINRES per direction)."""
        start = time.perf_counter()
        P = self.theta.size
        basis = np.eye(P)
        if deviations is not None:
            basis = deviation_basis(deviations).T
        sol = self._op(np.concatenate([self.g0[:, None], self.M @ basis], axis=1))
        self._z0, self._Zb, self._basis = sol[:, 0], sol[:, 1:], basis
        self.info.update(n_evaluations=self.info["n_evaluations"] + self._op.n_evaluations,
                         minres_iterations=list(self._op.iterations), n_directions=int(basis.shape[1]),
                         time_solve=time.perf_counter() - start)

    # -- solves ---------------------------------------------------------------------------------

    @property
    def moves(self) -> bool:
        """Whether the state has coordinates that respond to θ."""
        return self.kind != "fixed"

    def _solve(self, G: np.ndarray, thetas: np.ndarray, fixed: bool = False) -> np.ndarray:
        """H(θ)⁺ G for gradients G (K_m, n_dof) at parameter vectors θ (K_m, P) → (K_m, n_dof).

        ``fixed``: H(θ̄)⁺ whatever θ (the chord step of :meth:`refine`).
        """
        if self.kind == "matrix-free":
            return self._op(G.T).T
        E = self._E
        Gx = G if E is None else G @ E
        if fixed or self._S is None:
            X = Gx @ self._inv0
        else:
            R = Gx @ self._S
            Y = np.empty_like(R)
            coef = self._coef(thetas)
            unstable = []
            check = self.info.get("n_negative") == 0
            for a in range(0, len(R), _CHUNK):
                Hm = np.einsum("abK,mK->mab", self._Hs, coef[a : a + _CHUNK])
                Y[a : a + _CHUNK] = np.linalg.solve(Hm, R[a : a + _CHUNK, :, None])[..., 0]
                if check:
                    Hf = np.einsum("abK,mK->mab", self._Hfree, coef[a : a + _CHUNK])
                    unstable.extend(a + k for k in _not_positive_definite(Hf))
            self._last_unstable = (thetas.shape[0], unstable)
            X = Y @ self._S.T
        return X if E is None else X @ E.T

    def _response(self, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s, H⁺s) with s = g₀ + M δ, for deltas (K_m, P)."""
        s = self.g0[None, :] + deltas @ self.M.T
        if self.kind == "matrix-free":
            c = deltas @ self._basis
            z = self._z0[None, :] + c @ self._Zb.T
            rest = deltas - c @ self._basis.T
            if np.abs(rest).max(initial=0.0) > 1e-12 * max(np.abs(deltas).max(initial=0.0), 1e-300):
                z += self._op(self.M @ rest.T).T  # a direction outside the prepared subspace
            return s, z
        return s, self._solve(s, self.theta + deltas)

    # -- predictions ------------------------------------------------------------------------------

    def energy(self, thetas: np.ndarray, order: int = 2) -> np.ndarray:
        """Relaxed energy (K,) at parameter vectors ``thetas`` (K, P), to first or second order."""
        deltas = np.atleast_2d(thetas) - self.theta
        linear = self.energy0 + deltas @ self.D
        if order == 1 or not self.moves:
            return linear
        s, z = self._response(deltas)
        return linear - 0.5 * np.einsum("ki,ki->k", s, z)

    def volume(self, thetas: np.ndarray) -> np.ndarray:
        """Relaxed volume (K,): the volume of the predicted cell (first order in the strain)."""
        deltas = np.atleast_2d(thetas) - self.theta
        if not self.moves or not self.coords.has_strain:
            return np.full(deltas.shape[0], self.volume0)
        dq = -self._response(deltas)[1]
        return self.volume0 * np.array([np.linalg.det(self.coords.split(d)[1]) for d in dq])

    def quantity(self, thetas: np.ndarray, order: int = 2) -> np.ndarray:
        """The state's quantity (energy or volume) at ``thetas``."""
        return self.energy(thetas, order) if self.quantity_kind == "energy" else self.volume(thetas)

    def unstable_members(self, thetas: np.ndarray, reuse: bool = False) -> list[int]:
        """Indices of ``thetas`` for which H(θ) at q* is not positive definite (member Hessians only).

        ``reuse=True`` takes the answer of the last prediction if it was for as many vectors
        (the caller vouches that they were these).
        """
        if self.kind != "dense" or self._S is None or self.info.get("n_negative") != 0:
            return []
        thetas = np.atleast_2d(thetas)
        last = getattr(self, "_last_unstable", None)
        if not (reuse and last is not None and last[0] == thetas.shape[0]):
            self._response(thetas - self.theta)
        return list(self._last_unstable[1])

    def displacements(self, thetas: np.ndarray) -> np.ndarray:
        """Predicted coordinate changes dq* (K, n_dof) (Å; strains scaled by V^(1/3))."""
        deltas = np.atleast_2d(thetas) - self.theta
        if not self.moves:
            return np.zeros((deltas.shape[0], 0 if self.coords is None else self.coords.n_dof))
        return -self._response(deltas)[1]

    def structure(self, theta: np.ndarray) -> Atoms:
        """The relaxed structure predicted at ``theta`` (positions and cell)."""
        if not self.moves:
            return self.atoms.copy()
        return self.coords.structure(self.displacements(np.asarray(theta)[None, :])[0])

    def position_derivative(self) -> np.ndarray:
        """dX*/dθ = −H(θ̄)⁺M at θ̄ as Cartesian displacements per parameter (N, 3, P)."""
        P = self.theta.size
        if not self.moves:
            return np.zeros((len(self.atoms), 3, P))
        if self.kind == "matrix-free":
            Z = -self._op(self.M)
        else:
            Z = -self._solve(self.M.T, np.tile(self.theta, (self.M.shape[1], 1)), fixed=True).T
        return np.stack([self.coords.cartesian(Z[:, p]) for p in range(P)], axis=-1)

    def refine(self, descriptor, thetas: np.ndarray) -> dict[str, np.ndarray]:
        """One more Newton step per parameter vector, from the predicted structure.

        At ``q₁ = q* + dq*(δ)`` one descriptor call gives ``U(q₁, θ)`` and ``g(q₁, θ)``;
        ``E ≈ U − ½ gᵀH(θ̄)⁺g`` (a chord step: H(θ)⁻¹ − H(θ̄)⁻¹ = O(|δ|) only enters at
        O(|δ|·|g|²)). ``q₁`` is off the minimum by O(|δ|²), so the energy error drops from
        O(|δ|³) to O(|δ|⁵) for one call per member (a re-relaxation takes tens). Volumes come from the corrected cell
        ``q₂ = q₁ − H⁺g``.

        Returns
        -------
        dict
            ``energy``, ``volume`` (K,) and ``residual`` (K,), the largest |g| at ``q₁`` (eV/Å):
            the size of the predicted structure's error.
        """
        thetas = np.atleast_2d(thetas)
        K = thetas.shape[0]
        out = {"energy": np.empty(K), "volume": np.full(K, self.volume0), "residual": np.zeros(K)}
        if not self.moves:
            out["energy"] = self.energy(thetas, order=1)
            return out
        dq1 = self.displacements(thetas)
        B, Z = self.coords.free_space()
        for k in range(K):
            aug = np.append(thetas[k], 1.0)
            rows, G = self.coords.evaluate(descriptor, dq1[k])
            g = G @ aug
            g = B @ (B.T @ g) if B is not None else g - Z @ (Z.T @ g)
            z = self._solve(g[None, :], thetas[k : k + 1], fixed=True)[0]
            out["energy"][k] = rows.energy @ thetas[k] + rows.ref_energy - 0.5 * g @ z
            out["residual"][k] = np.abs(g).max()
            if self.coords.has_strain:
                out["volume"][k] = self.volume0 * np.linalg.det(self.coords.split(dq1[k] - z)[1])
        self.info["n_evaluations"] = self.info.get("n_evaluations", 0) + K
        return out


def _not_positive_definite(H: np.ndarray) -> list[int]:
    """Indices of the stacked symmetric matrices that are not positive definite."""
    try:
        np.linalg.cholesky(H)
        return []
    except np.linalg.LinAlgError:
        bad = []
        for k, h in enumerate(H):
            try:
                np.linalg.cholesky(h)
            except np.linalg.LinAlgError:
                bad.append(k)
        return bad
