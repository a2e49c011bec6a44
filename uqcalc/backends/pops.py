"""POPS: pointwise optimal parameter sets (Swinburne & Perez, MLST 6, 015008, 2025).

``METHODS.md`` §3. A ridge fit θ̄ = C⁻¹Xᵀy with C = XᵀX + (λ/α)I (λ, α from the evidence fit of
§1, MacKay 1992, or a given ridge); for each row n, a_n = C⁻¹x_n, leverage h_n = x_n·a_n,
residual e_n = y_n − x_n·θ̄ and the pointwise correction Δθ_n = (e_n/h_n)a_n, the smallest change
in the C-norm after which x_n·(θ̄ + Δθ_n) = y_n. The kept corrections T define the posterior:

* ``"hypercube"``: U = eigenvectors of TᵀT (uncentred) with eigenvalue > τ·max; z_n = UᵀΔθ_n;
  per-axis [min, max] of z (or percentiles [q, 100 − q]); the ensemble carries this exact box,
  members drawn in it, and covariance = box second moment + Bayesian posterior covariance;
* ``"ensemble"``: the raw θ̄ + Δθ_n (optionally a seeded subsample), covariance = TᵀT/K + the
  Bayesian covariance.

With a given point estimate, ``fit(design, theta=θ₀)`` (UQ around a published potential), the
residuals are those of θ₀, e_n = y_n − x_n·θ₀, and everything else (C, a_n, h_n, the filters) is
unchanged: Δθ_n is still the smallest C-norm change with x_n·(θ₀ + Δθ_n) = y_n, and the box is
about θ₀ (``docs/fixed_point_estimate.md``).

Everything runs over row chunks: memory O(P² + chunk·P) plus O(N) scalars (h_n, e_n); the
N × P matrix of corrections is never formed. The Gram pass, a leverage pass, a TᵀT pass and a
projection pass each cost ~2NP² flops (the last 2NPR).

Which rows build the box matters as much as the formula (``METHODS.md`` §3): a correction has
C-norm |e_n|/√h_n, so low-leverage rows with finite residuals inflate the box. Row selection is
explicit (``row_kinds``, ``leverage_percentile``, ``min_residual``, ``percentile_clipping``);
:meth:`POPS.calibrate` chooses it together with a box scale on held-out configurations
(:mod:`.calibration`), :meth:`POPS.select` the selection alone (:mod:`.selection`), and
:meth:`POPS.diagnose` shows which rows set the box (:mod:`.box_diagnostics`).

The module stays at ~450 lines because the four passes share one ridge state (θ̄, C⁻¹, h, e)
and the row mask; split further they would pass that state across modules for no gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.linalg import eigh

from ..design import KINDS
from ..ensemble import _SAMPLERS, ParameterEnsemble
from . import box_diagnostics, calibration, selection
from .base import Backend, check_theta
from .bayes import EVIDENCE, canonical_signs, evidence_ridge, gram_eigh, n_effective_rows
from .params import Interval, Options, RandomStateLike, Satisfies, fill_doc

__all__ = ["POPS", "pops_corrections"]

_NONNEGATIVE = Interval(Real, 0, None, closed="left")
# hyperparameters that change θ̄ / C (the rest only change which rows build the posterior)
_RIDGE_PARAMS = ("ridge", *EVIDENCE.names)


def _is_kinds(value) -> bool:
    """A non-empty tuple/list of row kinds (a single kind is accepted as a plain string)."""
    return isinstance(value, tuple | list) and len(value) > 0 and all(k in KINDS for k in value)


@dataclass
class _RidgeState:
    theta: np.ndarray  # the point estimate the corrections start from: θ̄, or a given θ₀
    Cinv: np.ndarray  # (XᵀX + ridge·I)⁻¹
    ridge: float
    alpha: float
    lambda_: float
    bayes_cov: np.ndarray  # (λI + αXᵀX)⁻¹
    h: np.ndarray  # (N,) leverages
    e: np.ndarray  # (N,) weighted residuals of ``theta``
    info: dict
    fused: dict  # {(row_kinds, min_leverage): TᵀT} accumulated during the leverage pass
    theta_fitted: np.ndarray | None = None  # θ̄ when ``theta`` is a given θ₀, else None


def pops_corrections(design, theta, ridge, rows=None, chunk_rows: int = 65536):
    """Pointwise corrections of the given rows (materialised: for tests and diagnostics).

    Parameters
    ----------
    design : DesignMatrix
    theta : (P,) array
        The ridge solution θ̄.
    ridge : float
        C = XᵀWX + ridge·I.
    rows : index array or mask, optional
        Rows to return (default all).

    Returns
    -------
    corrections (n, P), leverage (n,), residual (n,), in the weighted space.
    """
    XtX, _, _ = design.gram(chunk_rows)
    s, V = gram_eigh(XtX)
    Cinv = (V / (s + ridge)) @ V.T
    sub = design if rows is None else design.select(rows)
    X, y = sub.weighted()
    A = X @ Cinv
    h = np.einsum("ij,ij->i", A, X)
    e = y - X @ np.asarray(theta, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        T = (e / h)[:, None] * A
    return T, h, e


class _Extremes:
    """Streaming k smallest and k largest values per column (exact order statistics).

    Stored transposed, (R, k), so partitions run along contiguous memory.
    """

    def __init__(self, k: int):
        self.k = k
        self.low = None
        self.high = None

    def add(self, z: np.ndarray) -> None:
        zt = np.ascontiguousarray(z.T)
        if self.k == 1:
            lo, hi = zt.min(axis=1, keepdims=True), zt.max(axis=1, keepdims=True)
            self.low = lo if self.low is None else np.minimum(self.low, lo)
            self.high = hi if self.high is None else np.maximum(self.high, hi)
            return
        low = zt if self.low is None else np.concatenate([self.low, zt], axis=1)
        high = zt if self.high is None else np.concatenate([self.high, zt], axis=1)
        k, m = self.k, low.shape[1]
        if m > k:
            low = np.partition(low, k - 1, axis=1)[:, :k]
            high = np.partition(high, m - k, axis=1)[:, m - k :]
        self.low, self.high = low, high

    def percentiles(self, n: int, q: float) -> tuple[np.ndarray, np.ndarray]:
        """np.percentile(z, q) and (100 − q) of the n streamed rows, exactly."""
        if q == 0:
            return self.low.min(axis=1), self.high.max(axis=1)
        R, k = self.low.shape
        lo, hi = np.empty(R), np.empty(R)
        column = np.empty(n)
        for r in range(R):
            # an array with the same order statistics at the positions np.percentile reads
            column[:k] = self.low[r]
            column[k : n - k] = self.low[r].max()
            column[n - k :] = self.high[r]
            lo[r], hi[r] = np.percentile(column, [q, 100.0 - q])
        return lo, hi


@fill_doc(evidence=EVIDENCE.doc)
class POPS(Backend):
    """Pointwise optimal parameter sets (Swinburne & Perez 2025) on a design matrix.

    Parameters
    ----------
    posterior : {"hypercube", "ensemble"}
        Exact box in the PCA frame of the corrections, or the raw corrected parameter sets.
    sampler : {"uniform", "sobol", "halton", "lhs"}
        How hypercube members are drawn (scrambled and seeded for the quasi-random ones).
    n_members : int or None
        Hypercube: members drawn in the box (None: one per kept row). Ensemble: members kept
        (a seeded subsample of the kept rows; None keeps them all, K × P memory). ≥ 0.
    percentile_clipping : float
        q in [0, 50). q > 0: box = [q, 100 − q] percentiles of the projected corrections per
        axis (then the box no longer covers every kept row); 0: [min, max], the method as
        published. Default 1 (see Notes).
    row_kinds : tuple of str, str or None
        Row kinds (``"energy"``, ``"force"``, ``"stress"``) whose corrections build the posterior
        (None: all kinds). θ̄ always uses every row.
    leverage_percentile : float
        In [0, 100). Keep rows whose leverage is ≥ this percentile of the candidate rows'
        leverages (0: keep all).
    min_residual : float
        Keep rows with |e_n| ≥ min_residual × RMSE of the candidate rows (0: keep all); ≥ 0.
    min_leverage : float
        Tiny-h clamp: rows with h_n ≤ min_leverage are dropped; their correction (e/h)a is
        numerically undefined (x_n ≈ 0, e.g. a force component fixed by symmetry). Training
        rows have 0 < h_n < 1. ≥ 0.
    mode_threshold : float
        τ in [0, 1): keep box axes with TᵀT eigenvalue > τ·max (τ ≥ 1 would keep none).
    box_scale : float
        s > 0: the box limits (hypercube) or the corrections (ensemble) are multiplied by s
        about the point estimate, θ̄ + s·U z. 1 is the method as published; :meth:`calibrate`
        chooses s on held-out configurations.
    ridge : float or None
        C = XᵀWX + ridge·I, ridge ≥ 0. None: λ/α of the evidence fit (the hyperparameters
        below, :func:`~uqcalc.backends.bayes.evidence_ridge`). With a given ridge, α is
        re-estimated as (N − γ)/‖y − Xθ̄‖² and λ = ridge·α for the Bayesian covariance term.
    {evidence}
    chunk_rows : int
        Rows per block in every pass, ≥ 1.
    random_state : int, Generator, SeedSequence or None
        Seed of the member draws / subsample.

    Notes
    -----
    Default row selection: every row, no leverage filter, 1–99 % percentile clipping. Chosen
    on held-out teacher configurations (``comparisons/pops_row_selection.py``: W teacher, SNAP
    2J=6 student, held-out divacancy/interstitial/(112)-surface/(112)-fault groups; 36
    candidates, two training sets of 233 and 981 frames): it is the narrowest setting that
    covers ≥ 90 % of held-out energies *and* forces in both runs (energies 1.00/1.00, forces
    0.96/0.96, mean energy width 8× the point-estimate RMSE). The published min/max box covers
    everything at 3× that width; energy rows alone miss 95 % of held-out forces; 5 % clipping
    halves the width but covers only 0.83 of forces; a 50th-percentile leverage filter is 6 %
    narrower at 0.94 force coverage — within the run-to-run noise, so the default keeps the
    simpler filter-free box. Re-choose with :meth:`select` on your own validation groups. The
    ensemble's ``noise_variance`` is None: α of the evidence fit absorbs the
    misspecification, which the box already describes (α is in the metadata).
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "posterior": [Options(str, ("hypercube", "ensemble"))],
        "sampler": [Options(str, _SAMPLERS)],
        "n_members": [Interval(Integral, 0, None, closed="left"), None],
        "percentile_clipping": [Interval(Real, 0, 50, closed="left")],
        "row_kinds": [None, Options(str, KINDS), Satisfies(_is_kinds, f"a tuple of row kinds from {KINDS}")],
        "leverage_percentile": [Interval(Real, 0, 100, closed="left")],
        "min_residual": [_NONNEGATIVE],
        "min_leverage": [_NONNEGATIVE],
        # τ ≥ 1 keeps no axis (eigenvalue > τ·max never holds): a zero-width box, always a mistake
        "mode_threshold": [Interval(Real, 0, 1, closed="left")],
        "box_scale": [Interval(Real, 0, None, closed="neither")],
        "ridge": [_NONNEGATIVE, None],
        **EVIDENCE.constraints,
        "chunk_rows": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        posterior: str = "hypercube",
        sampler: str = "uniform",
        n_members: int | None = 1000,
        percentile_clipping: float = 1.0,
        row_kinds: tuple[str, ...] | str | None = None,
        leverage_percentile: float = 0.0,
        min_residual: float = 0.0,
        min_leverage: float = 1e-12,
        mode_threshold: float = 1e-8,
        box_scale: float = 1.0,
        ridge: float | None = None,
        alpha_1: float = EVIDENCE.alpha_1, alpha_2: float = EVIDENCE.alpha_2,
        lambda_1: float = EVIDENCE.lambda_1, lambda_2: float = EVIDENCE.lambda_2,
        alpha_init: float | None = EVIDENCE.alpha_init, lambda_init: float | None = EVIDENCE.lambda_init,
        max_iter: int = EVIDENCE.max_iter, tol: float = EVIDENCE.tol,
        chunk_rows: int = 8192, random_state: RandomStateLike = None,
    ):
        self._store_params(locals())

    # -- passes ------------------------------------------------------------------------------

    def _local_selection(self) -> bool:
        """True when the kept rows are decided row by row (no percentile/RMSE over rows)."""
        return self.leverage_percentile == 0 and self.min_residual == 0

    def _fuse_key(self):
        kinds = None if self.row_kinds is None else tuple(sorted([self.row_kinds] if isinstance(self.row_kinds, str) else self.row_kinds))
        return (kinds, float(self.min_leverage))

    def _ridge_state(self, design, fuse: bool = False, theta0: np.ndarray | None = None) -> _RidgeState:
        """Gram pass, evidence (or fixed-ridge) fit, and the leverage/residual pass.

        With ``fuse`` (and a row-local selection) the same pass also accumulates TᵀT of the
        kept rows, saving one pass over the data. With a given (validated) ``theta0`` the
        residuals, and so the corrections, are those of θ₀; C, the leverages and the Bayesian
        covariance are still those of the ridge fit (they do not depend on the point).
        """
        chunk = int(self.chunk_rows)
        XtX, Xty, yty = design.gram(chunk)
        n = n_effective_rows(design)
        s, V = gram_eigh(XtX)
        if self.ridge is None:
            res, info = evidence_ridge(
                XtX, Xty, yty, n, eig=(s, V), full_output=True, **EVIDENCE.values(self),
            )
            theta, alpha, lam = res.theta, res.alpha, res.lambda_
            ridge = lam / alpha
        else:
            ridge = float(self.ridge)
            if ridge == 0 and s.min() <= 0:
                raise ValueError("ridge=0 with a singular XᵀWX: give a positive ridge")
            b = V.T @ Xty
            mt = b / (s + ridge)
            theta = V @ mt
            sse = max(yty - 2.0 * mt @ b + (s * mt) @ mt, np.finfo(float).tiny)
            gamma = float(np.sum(s / (s + ridge)))
            alpha = max(n - gamma, 1.0) / sse
            lam = ridge * alpha
            info = {"gamma": gamma, "sse": sse}
        Cinv = (V / (s + ridge)) @ V.T
        bayes_cov = (V / (lam + alpha * s)) @ V.T
        theta_fitted = None
        if theta0 is not None:
            theta_fitted, theta = theta, theta0
        h = np.empty(design.n_rows)
        e = np.empty(design.n_rows)
        fuse = fuse and self._local_selection()
        if fuse:
            candidate = self._candidates(design)
            G = np.zeros((design.n_params, design.n_params))
        for sl, Xc, yc in design.iter_weighted(chunk):
            A = Xc @ Cinv
            hc = h[sl] = np.einsum("ij,ij->i", A, Xc)
            ec = e[sl] = yc - Xc @ theta
            if fuse:
                # dropped rows get a zero scale instead of a copy of the kept rows
                local = candidate[sl] & (hc > self.min_leverage)
                scale = np.divide(ec, hc, out=np.zeros_like(ec), where=local)
                A *= scale[:, None]  # A becomes the chunk's corrections T
                G += A.T @ A
        fused = {self._fuse_key(): G} if fuse else {}
        return _RidgeState(theta, Cinv, float(ridge), float(alpha), float(lam), bayes_cov, h, e, info, fused,
                           theta_fitted)

    def _candidates(self, design) -> np.ndarray:
        return design.rows_of(self.row_kinds) & (design.w > 0)

    def _kept_rows(self, design, state: _RidgeState) -> tuple[np.ndarray, dict]:
        candidate = self._candidates(design)
        if not candidate.any():
            raise ValueError(f"no rows of kinds {self.row_kinds} with positive weight")
        kept = candidate & (state.h > self.min_leverage)
        stats = {"n_candidate": int(candidate.sum()), "n_tiny_leverage": int((candidate & ~kept).sum())}
        if self.leverage_percentile > 0:
            threshold = float(np.percentile(state.h[candidate], self.leverage_percentile))
            kept &= state.h >= threshold
            stats["leverage_threshold"] = threshold
        if self.min_residual > 0:
            rmse = float(np.sqrt(np.mean(state.e[candidate] ** 2)))
            kept &= np.abs(state.e) >= self.min_residual * rmse
            stats["residual_threshold"] = self.min_residual * rmse
        if not kept.any():
            raise ValueError("POPS row selection kept no rows; relax the filters")
        stats["n_kept"] = int(kept.sum())
        stats["kept_by_kind"] = {
            kind: int(np.count_nonzero(kept & (design.kind == kind)))
            for kind in ("energy", "force", "stress")
            if np.any(kept & (design.kind == kind))
        }
        return kept, stats

    def _kept_chunks(self, design, kept, state, chunk):
        """Yield (kept rows of the chunk as global indices, their weighted X, scale e/h)."""
        for sl, Xc, _ in design.iter_weighted(chunk):
            local = kept[sl]
            if local.all():
                yield sl, Xc, state.e[sl] / state.h[sl]
            elif local.any():
                idx = np.flatnonzero(local) + sl.start
                yield idx, Xc[local], state.e[idx] / state.h[idx]

    def _second_moment(self, design, kept, state) -> np.ndarray:
        """TᵀT of the kept corrections (from the fused leverage pass when available)."""
        if self._local_selection() and self._fuse_key() in state.fused:
            return state.fused[self._fuse_key()]
        P = design.n_params
        G = np.zeros((P, P))
        for _, Xk, scale in self._kept_chunks(design, kept, state, int(self.chunk_rows)):
            T = Xk @ state.Cinv
            T *= scale[:, None]
            G += T.T @ T
        return G

    def _box(self, design, kept, state):
        """Axes (P, R) and per-axis limits of the kept corrections."""
        chunk = int(self.chunk_rows)
        P = design.n_params
        G = self._second_moment(design, kept, state)
        evals, evecs = eigh(0.5 * (G + G.T))
        evals, evecs = evals[::-1], evecs[:, ::-1]
        keep = evals > self.mode_threshold * evals[0] if evals[0] > 0 else np.zeros(P, bool)
        U = canonical_signs(evecs[:, keep])
        R = U.shape[1]
        K = int(kept.sum())
        if R == 0:
            return U, np.zeros(0), np.zeros(0), G, evals
        q = float(self.percentile_clipping)
        k = 1 if q == 0 else int(np.floor(q / 100.0 * (K - 1))) + 3
        B = state.Cinv @ U  # z_n = (e/h) x_n·C⁻¹U
        if 4 * k >= K:
            zs = [scale[:, None] * (Xk @ B) for _, Xk, scale in self._kept_chunks(design, kept, state, chunk)]
            z = np.concatenate(zs)
            lower, upper = np.percentile(z, q, axis=0), np.percentile(z, 100.0 - q, axis=0)
        else:
            extremes = _Extremes(k)
            for _, Xk, scale in self._kept_chunks(design, kept, state, chunk):
                z = Xk @ B
                z *= scale[:, None]
                extremes.add(z)
            lower, upper = extremes.percentiles(K, q)
        return U, lower, upper, G, evals

    # -- fit -------------------------------------------------------------------------------

    def fit(self, design, *, theta=None, prior_mean=None) -> ParameterEnsemble:
        """Fit to a DesignMatrix; return an ensemble with the exact box (hypercube posterior).

        Parameters
        ----------
        design : DesignMatrix
        theta : (P,) array, optional
            A given point estimate θ₀ (a published potential): the corrections are built from
            its residuals, Δθ_n = ((y_n − x_n·θ₀)/h_n) C⁻¹x_n, so x_n·(θ₀ + Δθ_n) = y_n for every
            kept row; the box (or the corrected sets) is about θ₀ and ``theta`` is θ₀. C, the
            leverages and the Bayesian covariance term are those of the ridge fit, which is still
            run (``docs/fixed_point_estimate.md``).
        prior_mean : (P,) array, optional
            Centre the ridge / prior on this vector (e.g. a pretrained readout) instead of
            zero: the fit is of δ = θ − θ₀ on targets y − Xθ₀ (:meth:`Backend._fit_about`).
        """
        if prior_mean is not None:
            return self._fit_about(design, prior_mean, theta)
        self._validate_params()
        theta0 = check_theta(theta, design.n_params)
        return self._fit_from_state(design, self._ridge_state(design, fuse=True, theta0=theta0))

    def _ridge_key(self) -> tuple:
        """Equal for two settings that share θ̄, C and the leverage pass (``select`` reuses them)."""
        return tuple(repr(getattr(self, k)) for k in _RIDGE_PARAMS)

    def _fit_from_state(self, design, state: _RidgeState) -> ParameterEnsemble:
        """The posterior from a ridge state; hyperparameters already validated by the caller."""
        kept, stats = self._kept_rows(design, state)
        rng = self._rng(self.random_state)
        K = stats["n_kept"]
        meta_common = {
            "alpha": state.alpha, "lambda_": state.lambda_, "ridge": state.ridge,
            "rmse_weighted": float(np.sqrt(np.mean(state.e**2))) if state.e.size else 0.0,
            "rows": stats,
            **self._point_estimate_metadata(design, state.theta, state.theta_fitted),
        }
        if self.posterior == "hypercube":
            U, lower, upper, _, evals = self._box(design, kept, state)
            lower, upper = self.box_scale * lower, self.box_scale * upper
            box = ParameterEnsemble(state.theta, axes=U, lower=lower, upper=upper)
            n = K if self.n_members is None else int(self.n_members)
            members = box.sample_box(n, rng, self.sampler)
            covariance = box.box_second_moment() + state.bayes_cov
            meta = self._metadata(
                design, **meta_common, rank=int(U.shape[1]),
                pca_eigenvalues=evals.tolist(),
            )
            return ParameterEnsemble(
                state.theta, members=members, axes=U, lower=lower, upper=upper,
                covariance=covariance, metadata=meta,
            )
        # ensemble posterior: the corrected parameter sets themselves
        chunk = int(self.chunk_rows)
        P = design.n_params
        G = self._second_moment(design, kept, state)
        kept_idx = np.flatnonzero(kept)
        if self.n_members is not None and int(self.n_members) < K:
            chosen = np.zeros(design.n_rows, bool)
            chosen[np.sort(rng.choice(kept_idx, int(self.n_members), replace=False))] = True
        else:
            chosen = kept
        s = float(self.box_scale)
        blocks = [
            state.theta + (s * scale)[:, None] * (Xk @ state.Cinv)
            for _, Xk, scale in self._kept_chunks(design, chosen, state, chunk)
        ]
        members = np.concatenate(blocks) if blocks else np.zeros((0, P))
        meta = self._metadata(design, **meta_common)
        return ParameterEnsemble(state.theta, members=members, covariance=s * s * G / K + state.bayes_cov,
                                 metadata=meta)

    # -- row-selection study (in .selection) ------------------------------------------------

    @staticmethod
    def default_candidates(design) -> list[dict]:
        """A small grid over row kinds × leverage percentile × percentile clipping."""
        return selection.default_candidates(design)

    def select(
        self,
        design,
        validation_design,
        candidates: list[dict] | None = None,
        target_coverage: float = 0.9,
        validation_kinds=None,
        *,
        theta=None,
    ) -> tuple[POPS, list[dict]]:
        """Choose row selection / clipping on held-out rows (:func:`.selection.select`).

        Each candidate (a dict of hyperparameter overrides on ``self``) is fitted on
        ``design``; its bounds (exact for a hypercube, sampled for an ensemble) are evaluated on
        the rows of ``validation_design`` (optionally only ``validation_kinds``). The narrowest
        candidate (mean upper − lower) whose coverage reaches ``target_coverage`` wins; if none
        does, the one with the highest coverage (with a warning). Invalid hyperparameters in
        ``self`` or any candidate raise before anything is fitted. ``theta``: a given point
        estimate every candidate is built around (as in :meth:`fit`).

        Returns
        -------
        chosen : POPS
            A new unfitted POPS with the chosen settings.
        table : list of dict
            Per candidate: ``settings``, ``coverage``, ``mean_width``, ``n_kept``, ``rank``,
            ``error`` (if the candidate could not be fitted).
        """
        return selection.select(self, design, validation_design, candidates, target_coverage, validation_kinds,
                                theta=theta)

    def diagnose(self, design, *, theta=None) -> box_diagnostics.BoxDiagnostics:
        """Which training rows set each axis of the box, and their share of a prediction's width.

        Refits the hypercube on ``design`` (with ``theta`` as in :meth:`fit`) and returns a
        :class:`~uqcalc.backends.box_diagnostics.BoxDiagnostics`: per axis the rows (kind, group,
        configuration, leverage, residual) that set its lower and upper limit;
        ``.width_contributions(x)`` / ``.summary(x)`` / ``.plot(x)`` split the exact width of a
        prediction x among them.
        """
        return box_diagnostics.diagnose(self, design, theta=theta)

    def calibrate(
        self,
        train_design,
        validation_design,
        target: float = 0.95,
        candidates: list[dict] | None = None,
        kinds=("energy", "force"),
        tolerance: dict | None = None,
        max_scale: float = 100.0,
        *,
        theta=None,
    ) -> tuple[POPS, calibration.CalibrationReport]:
        """Calibrated POPS: row selection and box scale chosen on validation configurations.

        For each candidate row selection (``candidates``, default :meth:`default_candidates`)
        the box is fitted on ``train_design`` and scaled about the point estimate by the
        smallest factor at which the coverage of every scored row kind of
        ``validation_design`` reaches ``target`` (within each kind's noise floor
        ``tolerance``, default :data:`uqcalc.design.NOISE_FLOOR`); the candidate
        whose scaled intervals are narrowest (mean width over validation RMSE, averaged over
        kinds) wins. ``validation_design`` must hold configurations of groups left out of the
        training set (``uqcalc.data.split_by_group``), never the properties that are scored
        later. When no candidate reaches the target within ``max_scale`` a RuntimeWarning
        says so and the best achievable is returned with its coverage in the report.
        Method and limits: :mod:`uqcalc.backends.calibration`, ``docs/pops_calibration.md``.

        Returns
        -------
        pops : POPS
            A new unfitted POPS with the chosen settings and ``box_scale``:
            ``pops.fit(train_design)`` gives the calibrated ensemble.
        report : CalibrationReport
            Every candidate's scale, coverage (scaled and at scale 1), widths and score;
            ``report.reached``, ``report.chosen``, ``report.to_markdown()``.
        """
        return calibration.calibrate(self, train_design, validation_design, target, candidates, kinds, tolerance,
                                     max_scale, theta=theta)
