"""Bayesian ridge regression with evidence maximisation (MacKay 1992), on sufficient statistics.

Model (``METHODS.md`` §1): y = Xθ + ε, ε ~ N(0, α⁻¹I), θ ~ N(0, λ⁻¹I), Gamma(α₁, α₂) and
Gamma(λ₁, λ₂) hyperpriors. Everything is computed from the weighted Gram matrix XᵀWX, XᵀWy and
yᵀWy and one eigendecomposition XᵀWX = V diag(s) Vᵀ, so memory is O(P²) whatever the number of
rows, and each iteration costs O(P²).

References
----------
D. J. C. MacKay, "Bayesian interpolation", Neural Computation 4, 415 (1992).
M. E. Tipping, "Sparse Bayesian learning and the relevance vector machine", JMLR 1, 211 (2001).
scikit-learn's ``BayesianRidge`` (same iteration, on the SVD of X).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import ClassVar, NamedTuple

import numpy as np
from scipy.linalg import eigh

from ..ensemble import ParameterEnsemble
from .base import Backend, check_theta
from .params import Interval, ParameterGroup, RandomStateLike, fill_doc, validate_params

__all__ = [
    "EVIDENCE",
    "GAMMA_PRIOR",
    "BayesianRidge",
    "EvidenceResult",
    "canonical_signs",
    "evidence_ridge",
    "gram_eigh",
    "log_evidence",
    "n_effective_rows",
]

_NONNEGATIVE = Interval(Real, 0, None, closed="left")
_POSITIVE = Interval(Real, 0, None, closed="neither")

#: Gamma hyperpriors on the precisions (``METHODS.md`` §1), declared once for every backend that
#: uses them: :class:`BayesianRidge`, POPS (its evidence ridge) and MCMC (its hyperposterior).
GAMMA_PRIOR = ParameterGroup(
    """
    alpha_1, alpha_2 : float
        Gamma hyperprior (shape, rate) on the noise precision α, each ≥ 0 (0, 0: the scale-free
        prior 1/α, flat in log α).
    lambda_1, lambda_2 : float
        Gamma hyperprior (shape, rate) on the prior precision λ, each ≥ 0.
    """,
    alpha_1=(1e-6, [_NONNEGATIVE]),
    alpha_2=(1e-6, [_NONNEGATIVE]),
    lambda_1=(1e-6, [_NONNEGATIVE]),
    lambda_2=(1e-6, [_NONNEGATIVE]),
)

#: The evidence (MacKay) iteration's start and stopping rule.
EVIDENCE_ITERATION = ParameterGroup(
    """
    alpha_init : float, optional
        Initial α > 0; default N/yᵀy (1/the uncentred second moment of y: there is no intercept.
        sklearn uses 1/Var(y), which needs Σy; pass it to reproduce sklearn's path exactly).
    lambda_init : float, optional
        Initial λ > 0; default 1.
    max_iter : int
        Iteration limit, ≥ 1 (a ``RuntimeWarning`` is issued if reached).
    tol : float
        Convergence threshold on Σ|m_new − m_old| (sklearn's criterion), ≥ 0.
    """,
    alpha_init=(None, [_POSITIVE, None]),
    lambda_init=(None, [_POSITIVE, None]),
    max_iter=(300, [Interval(Integral, 1, None, closed="left")]),
    tol=(1e-6, [_NONNEGATIVE]),
)

#: Every hyperparameter of :func:`evidence_ridge`: the Gamma prior and the iteration.
EVIDENCE = GAMMA_PRIOR | EVIDENCE_ITERATION


class EvidenceResult(NamedTuple):
    """Result of :func:`evidence_ridge` (unpacks as a 6-tuple)."""

    theta: np.ndarray
    """(P,) posterior mean m = αA⁻¹Xᵀy."""
    alpha: float
    """Noise precision α (noise variance 1/α)."""
    lambda_: float
    """Prior precision λ (the ridge of the point estimate is λ/α)."""
    covariance: np.ndarray
    """(P, P) posterior covariance A⁻¹ = (λI + αXᵀX)⁻¹."""
    eigvals: np.ndarray
    """(P,) eigenvalues s of XᵀX, ascending, clipped at 0."""
    eigvecs: np.ndarray
    """(P, P) eigenvectors V (columns)."""


def canonical_signs(V: np.ndarray) -> np.ndarray:
    """Eigenvectors (columns) with the largest-|.| entry of each made positive.

    LAPACK builds differ in the sign they give an eigenvector; members drawn as z @ Vᵀ from a
    seeded z would then differ between machines. Fixing the sign makes a seed reproducible.
    """
    V = np.asarray(V, dtype=float)
    if V.size == 0:
        return V
    pivot = V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])]
    return V * np.where(pivot < 0, -1.0, 1.0)


def gram_eigh(XtX: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigendecomposition of a Gram matrix, eigenvalues clipped at 0 (rounding), signs canonical."""
    XtX = np.asarray(XtX, dtype=float)
    s, V = eigh(0.5 * (XtX + XtX.T))
    return np.maximum(s, 0.0), canonical_signs(V)


def n_effective_rows(design) -> int:
    """Rows that carry information (w > 0): the N of the evidence α-update."""
    return int(np.count_nonzero(design.w > 0))


def log_evidence(alpha, lambda_, eigvals, b, yty, n_rows) -> float:
    """Log marginal likelihood log p(y | α, λ) in the eigenbasis (``METHODS.md`` §2).

    Parameters
    ----------
    alpha, lambda_ : float
        Noise and prior precisions.
    eigvals : (P,) array
        Eigenvalues s of XᵀX.
    b : (P,) array
        VᵀXᵀy.
    yty : float
        yᵀy.
    n_rows : int
        Number of rows N.

    Notes
    -----
    O(P) per call: m̃ = αb/(λ + αs), ‖y − Xm‖² = yᵀy − 2m̃·b + Σ s m̃², ‖m‖² = Σ m̃².
    No hyperprior term is included.
    """
    s = np.asarray(eigvals, dtype=float)
    d = lambda_ + alpha * s
    mt = alpha * b / d
    sse = max(yty - 2.0 * mt @ b + (s * mt) @ mt, 0.0)
    P = s.size
    return float(
        0.5 * P * np.log(lambda_)
        + 0.5 * n_rows * np.log(alpha)
        - 0.5 * alpha * sse
        - 0.5 * lambda_ * (mt @ mt)
        - 0.5 * np.sum(np.log(d))
        - 0.5 * n_rows * np.log(2.0 * np.pi)
    )


@fill_doc(evidence=EVIDENCE.doc)
def evidence_ridge(
    XtX,
    Xty,
    yty: float,
    n_rows: int,
    *,
    alpha_1: float = EVIDENCE.alpha_1, alpha_2: float = EVIDENCE.alpha_2,
    lambda_1: float = EVIDENCE.lambda_1, lambda_2: float = EVIDENCE.lambda_2,
    alpha_init: float | None = EVIDENCE.alpha_init, lambda_init: float | None = EVIDENCE.lambda_init,
    max_iter: int = EVIDENCE.max_iter, tol: float = EVIDENCE.tol,
    eig: tuple[np.ndarray, np.ndarray] | None = None,
    full_output: bool = False,
):
    """MacKay evidence maximisation for ridge regression from sufficient statistics.

    The iteration is scikit-learn's ``BayesianRidge(fit_intercept=False)`` step for step
    (posterior mean at (α, λ); γ = Σ αs/(λ + αs); λ ← (γ + 2λ₁)/(‖m‖² + 2λ₂);
    α ← (N − γ + 2α₁)/(‖y − Xm‖² + 2α₂); stop when Σ|Δm| < tol; final mean at the updated
    (α, λ)), so with the same ``alpha_init`` it reproduces sklearn's coef_, alpha_, lambda_.

    Parameters
    ----------
    XtX : (P, P) array
        XᵀX of the (weighted) rows.
    Xty : (P,) array
        Xᵀy.
    yty : float
        yᵀy.
    n_rows : int
        N in the α-update.
    {evidence}
    eig : (eigvals, eigvecs), optional
        A precomputed :func:`gram_eigh` of ``XtX`` (reuse across refits).
    full_output : bool
        Also return a dict with ``n_iter``, ``converged``, ``gamma``, ``sse``, ``b``
        (= VᵀXᵀy) and ``log_evidence``.

    Returns
    -------
    EvidenceResult (theta, alpha, lambda_, covariance, eigvals, eigvecs)[, info]

    Notes
    -----
    ‖y − Xm‖² is computed as yᵀy − 2m·Xᵀy + mᵀXᵀXm, which loses relative precision
    ~1e-16·yᵀy/‖y − Xm‖²; it is clipped at a tiny positive value. For data fitted to
    ~1e-7 of ‖y‖ this still leaves ~1e-9 relative accuracy in α.
    """
    # the arguments so far are exactly the keywords; only those in the table are checked
    validate_params("evidence_ridge", EVIDENCE.constraints, locals())
    Xty = np.asarray(Xty, dtype=float)
    yty = float(yty)
    n_rows = int(n_rows)
    if eig is None:
        s, V = gram_eigh(XtX)
    else:
        s, V = (np.asarray(a, dtype=float) for a in eig)
        s = np.maximum(s, 0.0)
    b = V.T @ Xty
    eps = np.finfo(float).eps
    alpha = float(alpha_init) if alpha_init is not None else n_rows / (yty + eps)
    lam = float(lambda_init) if lambda_init is not None else 1.0
    sse_floor = eps * max(yty, np.finfo(float).tiny)
    # a ridge below rounding of the largest eigenvalue regularises nothing; with dead feature
    # columns (s ≈ 0, e.g. saturated activations of a foundation model) λ/α → 0 overflows mt
    ridge_floor = eps * max(float(s.max(initial=0.0)), np.finfo(float).tiny)

    def solve(alpha, lam):
        mt = b / (s + max(lam / alpha, ridge_floor))  # coefficients in the eigenbasis
        sse = max(yty - 2.0 * mt @ b + (s * mt) @ mt, sse_floor)
        return mt, sse

    converged = False
    mt_old = None
    n_iter = 0
    for it in range(int(max_iter)):
        n_iter = it + 1
        mt, sse = solve(alpha, lam)
        gamma = float(np.sum(alpha * s / (lam + alpha * s)))
        lam = (gamma + 2.0 * lambda_1) / (mt @ mt + 2.0 * lambda_2)
        alpha = (n_rows - gamma + 2.0 * alpha_1) / (sse + 2.0 * alpha_2)
        # Σ|Δm| in the original basis, as sklearn does
        if it != 0 and np.sum(np.abs(V @ (mt_old - mt))) < tol:
            converged = True
            break
        mt_old = mt
    if not converged:
        warnings.warn(f"evidence maximisation did not converge in {max_iter} iterations", RuntimeWarning, stacklevel=2)
    mt, sse = solve(alpha, lam)
    theta = V @ mt
    covariance = (V / (lam + alpha * s)) @ V.T
    result = EvidenceResult(theta, float(alpha), float(lam), covariance, s, V)
    if not full_output:
        return result
    info = {
        "n_iter": n_iter,
        "converged": converged,
        "gamma": float(np.sum(alpha * s / (lam + alpha * s))),
        "sse": float(sse),
        "b": b,
        "log_evidence": log_evidence(alpha, lam, s, b, yty, n_rows),
    }
    return result, info


@fill_doc(evidence=EVIDENCE.doc)
class BayesianRidge(Backend):
    """Bayesian ridge regression with MacKay evidence maximisation.

    Parameters
    ----------
    {evidence}
    n_members : int
        Members drawn from the Gaussian posterior N(m, A⁻¹), ≥ 0.
    random_state : int, Generator, SeedSequence or None
        Seed for the members.
    chunk_rows : int
        Rows per block when accumulating XᵀWX, ≥ 1.

    Notes
    -----
    Works on rows scaled by √w; N in the α-update counts rows with w > 0. The ensemble's
    ``covariance`` is the parameter posterior A⁻¹ (what propagates to derived properties) and
    ``noise_variance`` is 1/α; under misspecification α absorbs the model error as noise and
    xᵀA⁻¹x shrinks like 1/N, so parameter bands are far too narrow (``METHODS.md`` §1).
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        **EVIDENCE.constraints,
        "n_members": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "chunk_rows": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        alpha_1: float = EVIDENCE.alpha_1, alpha_2: float = EVIDENCE.alpha_2,
        lambda_1: float = EVIDENCE.lambda_1, lambda_2: float = EVIDENCE.lambda_2,
        alpha_init: float | None = EVIDENCE.alpha_init, lambda_init: float | None = EVIDENCE.lambda_init,
        max_iter: int = EVIDENCE.max_iter, tol: float = EVIDENCE.tol,
        n_members: int = 100, random_state: RandomStateLike = None, chunk_rows: int = 8192,
    ):
        self._store_params(locals())

    def fit_evidence(self, design, gram=None) -> tuple[EvidenceResult, dict]:
        """Run the evidence iteration on ``design``; returns ``(EvidenceResult, info)``.

        ``gram`` is an optional precomputed ``design.gram()`` (XᵀWX, XᵀWy, yᵀWy).
        """
        XtX, Xty, yty = design.gram(self.chunk_rows) if gram is None else gram
        return evidence_ridge(XtX, Xty, yty, n_effective_rows(design), full_output=True, **EVIDENCE.values(self))

    def fit(self, design, *, theta=None, prior_mean=None) -> ParameterEnsemble:
        """Fit to a DesignMatrix and draw ``n_members`` from the Gaussian posterior.

        Parameters
        ----------
        design : DesignMatrix
        theta : (P,) array, optional
            A given point estimate θ₀. The evidence fit (α, λ, m, A⁻¹) is unchanged; the
            ensemble is the posterior's spread moved to θ₀: members θ₀ + (θ_m − m), i.e.
            N(θ₀, A⁻¹), with ``theta`` = θ₀ and ``covariance`` = A⁻¹ (the draws are the ones
            the same seed gives without ``theta``). ``noise_variance`` stays 1/α of the evidence
            fit; ``metadata["noise_variance_given"]`` = ‖y − Xθ₀‖²_W/(N − γ) and
            ``metadata["point_estimate_mahalanobis"]`` = √((θ₀ − m)ᵀA(θ₀ − m)) say how far θ₀
            is from what this data supports (``docs/fixed_point_estimate.md``).
        prior_mean : (P,) array, optional
            Centre the ridge / prior on this vector (e.g. a pretrained readout) instead of
            zero: the fit is of δ = θ − θ₀ on targets y − Xθ₀ (:meth:`Backend._fit_about`).
        """
        if prior_mean is not None:
            return self._fit_about(design, prior_mean, theta)
        self._validate_params()
        theta0 = check_theta(theta, design.n_params)
        res, info = self.fit_evidence(design)
        rng = self._rng(self.random_state)
        zs = rng.standard_normal((int(self.n_members), res.theta.size))
        centre = res.theta if theta0 is None else theta0
        # θ = m + V z / √(λ + αs): exact draws from N(m, A⁻¹) (moved to θ₀ when given)
        members = centre + (zs / np.sqrt(res.lambda_ + res.alpha * res.eigvals)) @ res.eigvecs.T
        given = {}
        if theta0 is not None:
            given = self._point_estimate_metadata(design, theta0, res.theta)
            delta = res.eigvecs.T @ (theta0 - res.theta)
            gamma = info["gamma"]
            n = n_effective_rows(design)
            sse0 = (given["rmse_weighted_given"] ** 2) * n
            given["point_estimate_mahalanobis"] = float(np.sqrt(np.sum((res.lambda_ + res.alpha * res.eigvals) * delta**2)))
            given["noise_variance_given"] = float(sse0 / max(n - gamma, 1.0))
        meta = self._metadata(
            design,
            alpha=res.alpha,
            lambda_=res.lambda_,
            ridge=res.lambda_ / res.alpha,
            n_iter=info["n_iter"],
            converged=info["converged"],
            effective_n_params=info["gamma"],
            log_evidence=info["log_evidence"],
            **(given or self._point_estimate_metadata(design, res.theta)),
        )
        return ParameterEnsemble(
            theta=centre,
            members=members,
            covariance=res.covariance,
            noise_variance=1.0 / res.alpha,
            metadata=meta,
        )
