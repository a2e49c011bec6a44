"""Mechanical stability of every ensemble member at its own lattice constant (cubic crystals).

A member θ_m of a POPS box need not be a valid potential: its ground state may be mechanically
unstable. For a linear-in-parameter model the check costs no relaxation per member. On a grid
of lattice constants a_k around θ̄'s, the stress rows of the unit cell give, exactly and linearly
in θ, the pressure P(a_k; θ) and — from cells strained by ±δ (ε_xx for C11 and C12, the
engineering shear γ_yz for C44) — the elastic constants C_ij(a_k; θ) = ∂σ_i/∂ε_j. Each member's
own zero-pressure lattice a_m is the root of a cubic spline of P(a; θ_m), and its C_ij are the
splines of C_ij(a; θ_m) at a_m. bcc and fcc cells have no internal relaxation under
homogeneous strain (every atom is an inversion centre), so these are the relaxed-ion constants.

Born criteria (cubic): C11 − C12 > 0, C44 > 0, B = (C11 + 2 C12)/3 > 0; a member without a
zero-pressure lattice within the grid is flagged as well.

:func:`stable_box` shrinks a POPS box along the axes that carry an instability. At θ̄'s lattice
each criterion is affine in θ, c_j(θ̄ + Uz) = c_j0 + h_j·z (h_j = Uᵀg_j from the same stress
rows), so its minimum over the box [l, u] is c_j0 + Σ_r min(h_jr l_r, h_jr u_r). Per-axis factors
t_r ∈ (0, 1] that maximise the box volume Σ_r log t_r subject to c_j0 + Σ_r t_r min(h_jr l_r,
h_jr u_r) ≥ margin·c_j0 — for every criterion on a small grid of lattice constants around θ̄'s,
plus a pressure that brackets the own lattice within that grid — shrink the axes an instability
needs, as little as possible. Between grid points and at a member's exact own lattice the
check is approximate: :func:`mechanical_stability` says what is left.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import units
from scipy.interpolate import CubicSpline

from ..model import LinearModel
from ..properties.crystal import (
    CUBIC,
    check_structure,
    ground_state,
    relaxed_lattice,
    unit_cell,
)

__all__ = ["StabilityReport", "mechanical_stability", "stable_box"]


def _strained(atoms, voigt_index: int, step: float):
    out = atoms.copy()
    e = np.zeros((3, 3))
    if voigt_index == 0:
        e[0, 0] = step
    else:  # yz shear: engineering strain γ = step split over both off-diagonal entries
        e[1, 2] = e[2, 1] = 0.5 * step
    out.set_cell(atoms.cell[:] @ (np.eye(3) + e), scale_atoms=True)
    return out


def _rows(descriptor, atoms) -> tuple[np.ndarray, np.ndarray]:
    """Stress rows (6, P) and reference stress (6,) of one cell."""
    rows = descriptor.rows(atoms)
    rows.require("stress", "elastic constants from stress rows")
    ref = np.zeros(6) if rows.ref_stress is None else np.asarray(rows.ref_stress, dtype=float)
    return np.asarray(rows.stress, dtype=float), ref


def _elastic_rows(descriptor, symbol, structure, a, strain) -> tuple[np.ndarray, np.ndarray]:
    """Rows (4, P) and reference (4,) of pressure, C11, C12, C44 (eV/Å³) of the unit cell at ``a``."""
    X = np.zeros((4, descriptor.n_params))
    ref = np.zeros(4)
    cell = unit_cell(symbol, structure, a)
    S, s0 = _rows(descriptor, cell)
    X[0], ref[0] = -S[:3].mean(axis=0), -s0[:3].mean()
    plus, p0 = _rows(descriptor, _strained(cell, 0, strain))
    minus, m0 = _rows(descriptor, _strained(cell, 0, -strain))
    X[1], ref[1] = (plus[0] - minus[0]) / (2 * strain), (p0[0] - m0[0]) / (2 * strain)
    X[2], ref[2] = (plus[1] - minus[1]) / (2 * strain), (p0[1] - m0[1]) / (2 * strain)
    plus, p0 = _rows(descriptor, _strained(cell, 3, strain))
    minus, m0 = _rows(descriptor, _strained(cell, 3, -strain))
    X[3], ref[3] = (plus[3] - minus[3]) / (2 * strain), (p0[3] - m0[3]) / (2 * strain)
    return X, ref


@dataclasses.dataclass
class StabilityReport:
    """Per-member ground-state lattice constant, cubic elastic constants and Born criteria.

    Attributes
    ----------
    symbol, structure : str
    lattice_constant : (M,) ndarray
        Zero-pressure lattice constant of each member (NaN: none within the grid).
    C11, C12, C44, B : (M,) ndarray
        GPa, at each member's own lattice constant.
    unstable : (M,) bool ndarray
        Any criterion violated (or no zero-pressure lattice).
    reasons : dict
        Criterion -> member indices violating it (``"C11-C12<=0"``, ``"C44<=0"``, ``"B<=0"``,
        ``"no zero-pressure lattice"``).
    point : dict
        The same quantities for θ̄.
    """

    symbol: str
    structure: str
    lattice_constant: np.ndarray
    C11: np.ndarray
    C12: np.ndarray
    C44: np.ndarray
    B: np.ndarray
    unstable: np.ndarray
    reasons: dict
    point: dict

    @property
    def n_unstable(self) -> int:
        return int(np.count_nonzero(self.unstable))

    @property
    def fraction_unstable(self) -> float:
        return self.n_unstable / self.unstable.size if self.unstable.size else 0.0

    def summary(self) -> dict:
        """JSON-able counts: members, unstable, per criterion, and θ̄'s values."""
        return {"symbol": self.symbol, "structure": self.structure, "n_members": int(self.unstable.size),
                "n_unstable": self.n_unstable, "fraction_unstable": self.fraction_unstable,
                "by_criterion": {k: len(v) for k, v in self.reasons.items()}, "point": self.point}


def mechanical_stability(model, symbol: str, structure: str | None = None, span: float = 0.06, n_grid: int = 25,
                         strain: float = 2e-3) -> StabilityReport:
    """Born stability of every member of a linear model's ensemble (module docstring).

    Parameters
    ----------
    model : LinearModel, UQCalculator or (descriptor, ParameterEnsemble)
    symbol : str
        Element.
    structure : {"bcc", "fcc"}, optional
        Default: ASE's reference structure of ``symbol``.
    span : float
        The lattice grid covers a_θ̄ × (1 ± span).
    n_grid : int
        Grid points (≥ 5).
    strain : float
        Finite-difference strain δ (the stress is linear in θ, so δ only sets the O(δ²) error).

    Returns
    -------
    StabilityReport
    """
    model = LinearModel.of(model)
    structure = check_structure(structure or ground_state(symbol), CUBIC, "mechanical stability")
    if n_grid < 5:
        raise ValueError(f"n_grid must be >= 5, got {n_grid}")
    descriptor = model.descriptor
    a_point = relaxed_lattice(model.potential(), symbol, structure)[0]
    grid = a_point * np.linspace(1.0 - span, 1.0 + span, int(n_grid))
    # per grid point: rows (P,) and reference values of pressure, C11, C12, C44 (eV/Å³)
    X = np.zeros((grid.size, 4, descriptor.n_params))
    ref = np.zeros((grid.size, 4))
    for k, a in enumerate(grid):
        X[k], ref[k] = _elastic_rows(descriptor, symbol, structure, a, strain)

    thetas = np.concatenate([model.theta[None, :], model.members])
    values = np.einsum("kqp,mp->mkq", X, thetas) + ref[None]  # (M + 1, n_grid, 4)
    fine = np.linspace(grid[0], grid[-1], 40 * grid.size)
    spline = CubicSpline(grid, values, axis=1)
    on_fine = spline(fine)  # (M + 1, n_fine, 4)
    a_own = np.full(thetas.shape[0], np.nan)
    pressure = on_fine[:, :, 0]
    for m in range(thetas.shape[0]):
        # zero crossings of P(a), P falling through zero as a grows (a stable minimum of E(V))
        idx = np.flatnonzero((pressure[m, :-1] > 0) & (pressure[m, 1:] <= 0))
        if idx.size == 0:
            continue
        i = idx[np.argmin(np.abs(fine[idx] - a_point))]
        p0, p1 = pressure[m, i], pressure[m, i + 1]
        a_own[m] = fine[i] + (fine[i + 1] - fine[i]) * p0 / (p0 - p1)
    C = np.full((thetas.shape[0], 3), np.nan)
    ok = np.isfinite(a_own)
    for m in np.flatnonzero(ok):
        C[m] = CubicSpline(grid, values[m, :, 1:], axis=0)(a_own[m])
    C /= units.GPa
    B = (C[:, 0] + 2 * C[:, 1]) / 3
    member = slice(1, None)
    reasons = {
        "no zero-pressure lattice": np.flatnonzero(~ok[member]).tolist(),
        "C11-C12<=0": np.flatnonzero(ok[member] & (C[member, 0] - C[member, 1] <= 0)).tolist(),
        "C44<=0": np.flatnonzero(ok[member] & (C[member, 2] <= 0)).tolist(),
        "B<=0": np.flatnonzero(ok[member] & (B[member] <= 0)).tolist(),
    }
    unstable = np.zeros(model.members.shape[0], bool)
    for v in reasons.values():
        unstable[v] = True
    point = {"lattice_constant": float(a_own[0]), "C11": float(C[0, 0]), "C12": float(C[0, 1]),
             "C44": float(C[0, 2]), "B": float(B[0])}
    return StabilityReport(symbol, structure, a_own[member], C[member, 0], C[member, 1], C[member, 2], B[member],
                           unstable, reasons, point)


def stable_box(model, symbol: str, structure: str | None = None, margin: float = 0.1, span: float = 0.03,
               n_lattice: int = 5, strain: float = 2e-3, random_state=0):
    """Shrink a POPS box along the axes that make members mechanically unstable (module docstring).

    Constraints, all affine in the box coordinates and imposed at every corner: on a grid of
    ``n_lattice`` lattice constants a_θ̄(1 ± span), each Born criterion ≥ ``margin`` × its θ̄
    value there (where θ̄ itself is stable), and the pressure positive at the smallest and
    negative at the largest grid lattice, so every member's own lattice lies in the grid. The
    per-axis factors maximise Σ_r log t_r (the box volume) subject to them.

    Parameters
    ----------
    model : LinearModel, UQCalculator or (descriptor, ParameterEnsemble with a box)
    symbol, structure
        Element and cubic ground state (default: ASE's reference structure).
    margin : float
        Fraction of θ̄'s criteria every corner keeps (0: just stable).
    span, n_lattice : float, int
        Lattice grid of the constraints.
    strain : float
        Finite-difference strain of the elastic rows.
    random_state
        Seed of the members redrawn in the shrunk box (as many as before, uniform).

    Returns
    -------
    (ParameterEnsemble, dict)
        The ensemble with box [t l, t u] (θ̄ and axes kept; covariance = the new box's second
        moment) and ``{"factors": t, "n_shrunk", "lattice_constant", "n_constraints",
        "violated_before"}``.
    """
    from scipy.optimize import minimize

    from ..ensemble import ParameterEnsemble

    model = LinearModel.of(model)
    ens = model.ensemble
    if not ens.has_box:
        raise ValueError("stable_box needs a box ensemble (POPS posterior='hypercube')")
    structure = check_structure(structure or ground_state(symbol), CUBIC, "mechanical stability")
    a0 = relaxed_lattice(model.potential(), symbol, structure)[0]
    U, lo, hi = ens.axes, ens.lower, ens.upper
    rows, bound = [], []  # constraint: value(θ̄) + Σ_r t_r worst_r ≥ bound
    grid = a0 * (1.0 + np.linspace(-span, span, int(n_lattice)))
    for k, a in enumerate(grid):
        X, ref = _elastic_rows(model.descriptor, symbol, structure, a, strain)
        G = np.array([X[1] - X[2], X[3], (X[1] + 2 * X[2]) / 3])
        g0 = np.array([ref[1] - ref[2], ref[3], (ref[1] + 2 * ref[2]) / 3])
        c = G @ ens.theta + g0
        for j in np.flatnonzero(c > 0):
            rows.append((c[j], G[j] @ U))
            bound.append(margin * c[j])
        if k in (0, grid.size - 1):  # pressure brackets the own lattice: P(small a) > 0 > P(large a)
            sign = 1.0 if k == 0 else -1.0
            p = sign * (X[0] @ ens.theta + ref[0])
            if p > 0:
                rows.append((p, sign * (X[0] @ U)))
                bound.append(0.0)
    c0 = np.array([r[0] for r in rows])
    worst = np.array([np.minimum(h * lo, h * hi) for _, h in rows])  # (n_constraints, R)
    bound = np.array(bound)
    violated = int(np.count_nonzero(c0 + worst.sum(axis=1) < bound))
    R = U.shape[1]
    if violated == 0:
        t = np.ones(R)
    else:
        res = minimize(lambda t: -np.sum(np.log(t)), np.full(R, 1e-3), jac=lambda t: -1.0 / t, method="SLSQP",
                       bounds=[(1e-9, 1.0)] * R,
                       constraints=[{"type": "ineq", "fun": lambda t: c0 + worst @ t - bound, "jac": lambda t: worst}],
                       options={"maxiter": 500, "ftol": 1e-12})
        t = np.clip(res.x, 0.0, 1.0)
        slack = c0 + worst @ t - bound
        if np.any(slack < -1e-9 * np.abs(c0).max()):
            raise RuntimeError(f"stable_box: no feasible shrink found ({res.message})")
    lower, upper = lo * t, hi * t
    box = ParameterEnsemble(ens.theta, axes=U, lower=lower, upper=upper)
    members = box.sample_box(ens.n_members, np.random.default_rng(random_state))
    n_shrunk = int(np.count_nonzero(t < 1 - 1e-9))
    meta = dict(ens.metadata) | {"stable_box": {"margin": margin, "span": span, "lattice_constant": a0,
                                                "n_shrunk": n_shrunk}}
    out = ParameterEnsemble(ens.theta, members=members, axes=U, lower=lower, upper=upper,
                            covariance=box.box_second_moment(), metadata=meta)
    return out, {"factors": t, "n_shrunk": n_shrunk, "lattice_constant": a0, "n_constraints": len(rows),
                 "violated_before": violated}
