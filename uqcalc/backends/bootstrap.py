"""Bootstrap by configuration: resample frames with replacement and refit ridge (METHODS §4).

A resample with multiplicities k_f (multinomial, Σk_f = F) solves

    (Σ_f k_f G_f + ridge·I) θ = Σ_f k_f g_f,   G_f = X_fᵀW_fX_f,  g_f = X_fᵀW_fy_f,

so all rows of a frame move together and no resample touches the rows: with the per-frame
statistics in memory a batch of B resamples costs one (B, F) × (F, P²) product plus B Cholesky
solves, O(F·P² + P³) per member.

When F·P² doubles would exceed ``memory_limit`` (qSNAP: P = 1596 and 10⁴ frames is ~200 GB), the
per-frame statistics are never stored: members are processed in batches whose accumulators fit the
budget, and for each batch the frames are streamed in chunks, each chunk's G_f computed from its
rows and added with the batch's counts. The rows are then read once per member batch instead of
once, and the result is the same to round-off.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy import linalg
from tqdm.auto import tqdm

from ..ensemble import ParameterEnsemble
from .base import Backend, check_theta
from .bayes import evidence_ridge, n_effective_rows
from .params import Interval, RandomStateLike

__all__ = ["Bootstrap"]


def _solve(A, b, ridge):
    """Solve (A + ridge·I) θ = b for a batch: Cholesky, least squares if singular."""
    P = A.shape[-1]
    out = np.empty(b.shape)
    eps = np.finfo(float).eps
    for i in range(A.shape[0]):
        M = A[i] + ridge * np.eye(P)
        try:
            factor = linalg.cho_factor(M, lower=True, check_finite=False)
            d = np.abs(np.diag(factor[0]))
            # round-off can let Cholesky of a singular matrix "succeed" with a tiny pivot
            if d.min() ** 2 <= P * eps * d.max() ** 2:
                raise linalg.LinAlgError("numerically singular")
            out[i] = linalg.cho_solve(factor, b[i], check_finite=False)
        except linalg.LinAlgError:
            # a resample can be rank deficient (ridge = 0, few frames): minimum-norm solution
            out[i] = linalg.lstsq(M, b[i], cond=P * eps, check_finite=False)[0]
    return out


class Bootstrap(Backend):
    """Configuration bootstrap of a ridge fit.

    Parameters
    ----------
    n_members : int
        Number of resamples, ≥ 1.
    ridge : float, optional
        Ridge ≥ 0 added to XᵀWX. ``None`` (default) uses λ/α of the Bayesian evidence fit
        (:func:`~uqcalc.backends.bayes.evidence_ridge`) of the full data in the weighted space,
        the same regularisation :class:`~uqcalc.backends.BayesianRidge` and POPS use; it is held
        fixed across resamples. ``0`` gives ordinary least squares.
    random_state : int, Generator, SeedSequence or None
        Seeds the multinomial counts; same seed ⇒ identical members.
    progress : bool
        Progress bar over member batches.
    memory_limit : float
        Bytes (> 0) allowed for per-frame statistics and batch accumulators (default 1 GB); above it the
        streaming path described in the module docstring is used.

    Notes
    -----
    ``theta`` is the full-data ridge fit (not the bootstrap mean); ``covariance`` is the sample
    covariance of the members; ``noise_variance`` is the mean squared weighted residual of the
    full-data fit, ‖y − Xθ‖²_W / (N − P) (floored at one degree of freedom). Fitted attribute
    ``counts_`` (n_members, F) holds the multiplicities, in the order of ``configs_``. With a
    given ``fit(design, theta=θ₀)`` the members are θ₀ + (θ_b − θ̂) and ``theta`` is θ₀.
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "ridge": [Interval(Real, 0, None, closed="left"), None],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        "memory_limit": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        n_members: int = 100,
        ridge: float | None = None,
        random_state: RandomStateLike = None,
        progress: bool = False,
        memory_limit: float = 1e9,
    ):
        self._store_params(locals())

    def fit(self, design, *, theta=None, prior_mean=None) -> ParameterEnsemble:
        """Resample the frames of ``design`` and return the ensemble of refits.

        Parameters
        ----------
        design : DesignMatrix
        theta : (P,) array, optional
            A given point estimate θ₀. The refits are unchanged (same seed, same counts);
            members become θ₀ + (θ_b − θ̂), the bootstrap distribution of the refit's deviation
            from the full-data refit θ̂, moved to θ₀; ``theta`` = θ₀. ``covariance`` (the
            refits' sample covariance) and ``noise_variance`` (the refit's residual) are
            unchanged (``docs/fixed_point_estimate.md``).
        prior_mean : (P,) array, optional
            Centre the ridge / prior on this vector (e.g. a pretrained readout) instead of
            zero: the fit is of δ = θ − θ₀ on targets y − Xθ₀ (:meth:`Backend._fit_about`).
        """
        if prior_mean is not None:
            return self._fit_about(design, prior_mean, theta)
        self._validate_params()
        theta0 = check_theta(theta, design.n_params)
        rng = self._rng(self.random_state)
        XtX, Xty, yty = design.gram()
        n = n_effective_rows(design)
        P = design.n_params
        if self.ridge is None:
            fit = evidence_ridge(XtX, Xty, yty, n)
            ridge = float(fit.lambda_ / fit.alpha)
        else:
            ridge = float(self.ridge)
        theta = _solve(XtX[None], Xty[None], ridge)[0]
        residual = 0.0  # over the rows: yᵀy − 2θᵀXᵀy + θᵀXᵀXθ cancels badly for a good fit
        for _, Xc, yc in design.iter_weighted():
            r = yc - Xc @ theta
            residual += float(r @ r)

        configs, inverse = np.unique(design.config, return_inverse=True)
        F = configs.size
        counts = rng.multinomial(F, np.full(F, 1.0 / F), size=self.n_members).astype(float)
        matrix_bytes = 8.0 * P * P
        streaming = F * matrix_bytes > self.memory_limit
        batch = int(max(1, min(self.n_members, (self.memory_limit / 2 if streaming else self.memory_limit / 4) // matrix_bytes)))
        bar = tqdm(total=self.n_members, desc="bootstrap", unit="member", disable=not self.progress)
        members = np.empty((self.n_members, P))
        if not streaming:
            _, G, g, _ = design.config_statistics()
            G = G.reshape(F, P * P)
            for start in range(0, self.n_members, batch):
                k = counts[start:start + batch]
                A = (k @ G).reshape(-1, P, P)
                members[start:start + batch] = _solve(A, k @ g, ridge)
                bar.update(len(k))
        else:
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(F + 1))
            chunk = int(max(1, (self.memory_limit / 2) // matrix_bytes))
            for start in range(0, self.n_members, batch):
                k = counts[start:start + batch]
                A, b = np.zeros((len(k), P * P)), np.zeros((len(k), P))
                for f0 in range(0, F, chunk):
                    f1 = min(f0 + chunk, F)
                    Gc, gc = np.empty((f1 - f0, P, P)), np.empty((f1 - f0, P))
                    for j, f in enumerate(range(f0, f1)):
                        rows = order[bounds[f]:bounds[f + 1]]
                        s = np.sqrt(design.w[rows])
                        Xf = design.X[rows] * s[:, None]
                        Gc[j], gc[j] = Xf.T @ Xf, Xf.T @ (design.y[rows] * s)
                    A += k[:, f0:f1] @ Gc.reshape(f1 - f0, P * P)
                    b += k[:, f0:f1] @ gc
                members[start:start + batch] = _solve(A.reshape(-1, P, P), b, ridge)
                bar.update(len(k))
        bar.close()
        self.counts_, self.configs_ = counts.astype(np.int64), configs

        cov = np.atleast_2d(np.cov(members, rowvar=False)) if self.n_members > 1 else np.zeros((P, P))
        if theta0 is None:
            point = self._point_estimate_metadata(design, theta)
        else:
            point = self._point_estimate_metadata(design, theta0, theta)
            members = theta0 + (members - theta)  # the refits' deviations, about θ₀
            theta = theta0
        return ParameterEnsemble(
            theta=theta,
            members=members,
            covariance=cov,
            noise_variance=residual / max(n - P, 1),
            metadata=self._metadata(design, ridge_used=ridge, n_configs=int(F), streaming=bool(streaming), **point),
        )
