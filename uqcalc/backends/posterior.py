"""The tempered Gaussian linear model's posterior, evaluated in the eigenbasis of XᵀWX (``METHODS.md`` §1–2).

Pure numpy: the densities the :class:`~uqcalc.backends.mcmc.MCMC` samplers evaluate, each O(P)
per call whatever the number of rows, and the natural temperature of Frederiksen et al. (2004).
"""

from __future__ import annotations

import numpy as np

from .bayes import gram_eigh

__all__ = ["LinearGaussianPosterior", "natural_temperature"]

_LOG2PI = float(np.log(2.0 * np.pi))


class LinearGaussianPosterior:
    """Tempered posterior of the Gaussian linear model in the eigenbasis of XᵀWX.

    Parameters
    ----------
    XtX, Xty
        Weighted sufficient statistics XᵀWX (P, P) and XᵀWy (P,).
    n_rows
        Number of rows N (rows with positive weight).
    theta_ref, residual_ref
        A reference parameter vector and its weighted residual ‖y − Xθ_ref‖², computed over the rows.
    temperature
        The log-likelihood is divided by this.
    hyperprior
        Gamma shape/rate (α₁, α₂, λ₁, λ₂).
    eig
        Optional precomputed (s, V) of XᵀWX.

    Notes
    -----
    Log densities omit the constant ½Σ log w_n of a weighted likelihood.
    """

    def __init__(self, XtX, Xty, n_rows, theta_ref, residual_ref, temperature=1.0,
                 hyperprior=(1e-6, 1e-6, 1e-6, 1e-6), eig=None):
        if eig is None:
            eig = gram_eigh(XtX)
        s, V = eig
        self.s = np.clip(np.asarray(s, dtype=float), 0.0, None)  # round-off can make zero modes negative
        self.V = np.asarray(V, dtype=float)
        self.P = self.s.size
        self.n = float(n_rows)
        self.b = self.V.T @ np.asarray(Xty, dtype=float)
        self.t_ref = self.V.T @ np.asarray(theta_ref, dtype=float)
        self.g = self.b - self.s * self.t_ref  # Vᵀ(Xᵀy − XᵀXθ_ref)
        self.residual_ref = float(residual_ref)
        self.T = float(temperature)
        self.hyperprior = tuple(float(v) for v in hyperprior)

    def residual(self, t):
        """‖y − Xθ‖²_W for eigen-coordinates t = Vᵀθ, shape (..., P)."""
        d = t - self.t_ref
        r = self.residual_ref + (d * d) @ self.s - 2.0 * (d @ self.g)
        return np.maximum(r, 0.0)

    def conditional(self, alpha, lam):
        """Mean (K, P) and precision (K, P) of Vᵀθ given α, λ (arrays of shape (K,))."""
        a = np.asarray(alpha, dtype=float)[:, None] / self.T
        prec = np.asarray(lam, dtype=float)[:, None] + a * self.s
        return a * self.b / prec, prec

    def log_marginal(self, alpha, lam):
        """Tempered log p(y | α, λ) (METHODS §2; T = 1 gives the exact evidence)."""
        alpha = np.asarray(alpha, dtype=float)
        lam = np.asarray(lam, dtype=float)
        mean, prec = self.conditional(alpha, lam)
        return (
            0.5 * self.n / self.T * (np.log(alpha) - _LOG2PI)
            + 0.5 * self.P * np.log(lam)
            - 0.5 * alpha / self.T * self.residual(mean)
            - 0.5 * lam * np.sum(mean * mean, axis=-1)
            - 0.5 * np.sum(np.log(prec), axis=-1)
        )

    def log_joint(self, t, alpha, lam):
        """Tempered log p(y | θ, α) + log p(θ | λ) for eigen-coordinates t (K, P)."""
        return (
            0.5 * self.n / self.T * (np.log(alpha) - _LOG2PI)
            - 0.5 * alpha / self.T * self.residual(t)
            + 0.5 * self.P * (np.log(lam) - _LOG2PI)
            - 0.5 * lam * np.sum(t * t, axis=-1)
        )

    def log_hyperprior(self, log_alpha, log_lam, free=(True, True)):
        """Gamma hyperpriors on the free hyperparameters, as densities of their logarithms."""
        a1, a2, l1, l2 = self.hyperprior
        out = 0.0
        if free[0]:
            out = out + a1 * log_alpha - a2 * np.exp(log_alpha)
        if free[1]:
            out = out + l1 * log_lam - l2 * np.exp(log_lam)
        return out


def natural_temperature(residual, n_params, alpha=1.0):
    """T₀ = 2C₀/P with C₀ = ½ α ‖y − Xθ̂‖²_W (Frederiksen et al. 2004; KLIFF with α = 1)."""
    return float(alpha) * float(residual) / int(n_params)
