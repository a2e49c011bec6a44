"""MCMC posterior of a Bayesian linear model with unknown noise and prior precisions.

Model (``METHODS.md`` §1–2), in the weighted space (rows scaled by √w)::

    y = Xθ + ε,  ε ~ N(0, α⁻¹I),  θ ~ N(0, λ⁻¹I),  α ~ Γ(α₁, α₂),  λ ~ Γ(λ₁, λ₂)

Everything is evaluated from the sufficient statistics (XᵀWX, XᵀWy, N) in the eigenbasis
XᵀWX = V diag(s) Vᵀ, so one log-density evaluation costs O(P) whatever the number of rows.
Residuals are measured from a reference fit θ̂ whose residual ‖y − Xθ̂‖² is computed once over the
rows; expanding around it avoids the cancellation in yᵀy − 2θᵀXᵀy + θᵀXᵀXθ when the fit is good.

Two samplers (emcee, Foreman-Mackey et al., PASP 125, 306, 2013), both vectorized over walkers:

* ``"collapsed"`` samples (log α, log λ) from the closed-form marginal likelihood p(y | α, λ)
  times the hyperprior (with the log-Jacobian), then draws θ | α, λ exactly. Fast for any P.
* ``"full"`` samples (θ, log α, log λ) from the joint density itself, with θ in fixed whitened
  coordinates u = diag(√(λ* + α*s/T)) (Vᵀθ − t*) around the hyperposterior mode, where the walkers
  start near equilibrium. It never uses the marginal formula, so agreement with ``"collapsed"``
  validates it; use it for checks and small P (its autocorrelation time grows roughly like P).

Both use emcee's differential-evolution move by default (see ``moves``). Chain files and
convergence diagnostics are in :mod:`.chains`.

Tempering divides the log-likelihood by T. ``temperature="natural"`` is the temperature of
Frederiksen et al., PRL 93, 165501 (2004) as used by KLIFF, T₀ = 2C₀/P with C₀ the cost at the
optimum. KLIFF's cost is ½‖y − Xθ̂‖² with the noise scale folded into the weights (α ≡ 1); here the
cost is that of our likelihood, C₀ = ½ α₀ ‖y − Xθ̂‖²_W, with α₀ the fixed α if one is given (so
``fix_hyperparameters=(1, λ)`` is exactly KLIFF's T₀) and otherwise the evidence optimum α̂ — the
only choice that makes T₀ dimensionless (T₀ ≈ (N − γ)/P) so the result does not depend on the units
of y. Unless ``fix_hyperparameters`` says otherwise, the natural-temperature posterior holds α at its
evidence optimum (as KLIFF holds the noise scale) and tempers the prior too, so
θ ~ N(θ̂, T₀ A⁻¹) exactly, centred on the evidence fit θ̂.
"""

from __future__ import annotations

import time
from numbers import Integral, Real
from typing import ClassVar

import emcee
import numpy as np
from scipy import optimize

from ..ensemble import ParameterEnsemble
from .base import Backend, check_theta
from .bayes import GAMMA_PRIOR, evidence_ridge, n_effective_rows
from .chains import (
    CHAIN_SUFFIXES,
    chain_diagnostics,
    hdf_backend,
    read_chain,
    write_chain,
)
from .params import (
    Interval,
    Options,
    PathLike,
    RandomStateLike,
    Relation,
    Satisfies,
    fill_doc,
)
from .posterior import LinearGaussianPosterior, natural_temperature

__all__ = ["MCMC", "LinearGaussianPosterior", "natural_temperature", "read_chain"]

_POSITIVE = Interval(Real, 0, None, closed="neither")


def _is_hyperparameter_pair(value) -> bool:
    """(α or None, λ or None), each given value positive."""
    return (isinstance(value, tuple | list | np.ndarray) and len(value) == 2
            and all(v is None or _POSITIVE.is_satisfied_by(v) for v in value))


def _is_moves(value) -> bool:
    """What ``emcee.EnsembleSampler(moves=...)`` takes: a Move, or a list of Moves or (Move, weight)."""
    if isinstance(value, emcee.moves.Move):
        return True

    def weighted(m) -> bool:
        return (isinstance(m, tuple | list) and len(m) == 2 and isinstance(m[0], emcee.moves.Move)
                and _POSITIVE.is_satisfied_by(m[1]))

    return (isinstance(value, tuple | list) and len(value) > 0
            and all(isinstance(m, emcee.moves.Move) or weighted(m) for m in value))


@fill_doc(gamma_prior=GAMMA_PRIOR.doc)
class MCMC(Backend):
    """Posterior sampling of a linear model with emcee (collapsed or full).

    Parameters
    ----------
    mode : {"collapsed", "full"}
        ``"collapsed"``: emcee over (log α, log λ) with θ drawn exactly given them (default).
        ``"full"``: emcee over (θ, log α, log λ) jointly; a validation sampler for small P.
    n_walkers : int, optional
        Walkers, ≥ 2 (default 32 for ``"collapsed"``, 2·ndim + 2 for ``"full"``).
    n_steps, burn_in, thin : int
        Steps per walker (≥ 1), steps discarded (0 ≤ burn_in < n_steps), and thinning of the
        retained chain (≥ 1).
    n_members : int
        Members drawn (without replacement where possible) from the retained chain, ≥ 1.
    temperature : float or "natural"
        Divide the log-likelihood by T > 0; ``"natural"`` uses T₀ = 2C₀/P (module docstring).
    fix_hyperparameters : (alpha, lambda), optional
        Hold α and/or λ fixed at a positive value (``None`` in a slot leaves it sampled). With
        both fixed the collapsed mode needs no chain: members are exact draws.
    {gamma_prior}
    moves : emcee move(s), optional
        A Move or a list of Moves or (Move, weight) pairs. Default ``emcee.moves.DEMove()``
        (differential evolution). On a P = 56, N = 12 000 design its integrated autocorrelation
        time was ~7 steps collapsed and ~150–190 full, against ~29 and ~400 for emcee's default
        stretch move (even in whitened coordinates).
    random_state : int, Generator, SeedSequence or None
        Seeds the walker start, emcee's RandomState, the member choice and the θ draws.
    store : path, optional
        Write the chain: ``.h5``/``.hdf5``/``.hdf`` (emcee HDF backend, written while sampling) or
        ``.nc`` (arviz netCDF). Read it back with :func:`read_chain`.
    progress : bool
        emcee progress bar.

    Notes
    -----
    The ensemble's ``theta`` is the posterior mean of θ (a given ``fit(design, theta=θ₀)``
    translates the posterior onto θ₀: members θ₀ + (θ_m − posterior mean), ``theta`` = θ₀), ``covariance`` its posterior covariance,
    ``noise_variance`` the posterior mean of 1/α. In collapsed mode both moments are
    Rao-Blackwellised over the whole retained chain, E[m(α,λ)] and E[Σ(α,λ)] + Cov[m(α,λ)], which
    has less Monte-Carlo noise than the sample moments of the members; in full mode they are sample
    moments of the retained chain. Diagnostics go to ``metadata["diagnostics"]``, per column of the
    sampler's coordinates (``names``): emcee's integrated autocorrelation time ``tau`` and
    ``ess`` = walkers × retained steps / τ; arviz's rank-normalised ``ess_bulk``, ``ess_tail`` and
    ``rhat`` (each walker a chain; computed on at most 500 draws per walker, ``arviz_thin``, for
    speed); acceptance fraction, ``wall_time_s`` of the sampling and ``ess_per_second``. Fitted attributes:
    ``sampler_`` (emcee), ``chain_`` (retained flat chain), ``alpha_``/``lambda_`` (their samples).
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "mode": [Options(str, ("collapsed", "full"))],
        "n_walkers": [Interval(Integral, 2, None, closed="left"), None],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "burn_in": [Interval(Integral, 0, None, closed="left")],
        "thin": [Interval(Integral, 1, None, closed="left")],
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "temperature": [_POSITIVE, Options(str, ("natural",))],
        "fix_hyperparameters": [None, Satisfies(_is_hyperparameter_pair,
                                                "a pair (alpha or None, lambda or None) of positive floats")],
        **GAMMA_PRIOR.constraints,
        "moves": [None, Satisfies(_is_moves, "an emcee Move or a list of Moves or (Move, weight) pairs")],
        "random_state": ["random_state"],
        "store": [None, PathLike(CHAIN_SUFFIXES)],
        "progress": ["boolean"],
    }
    # at least one retained step
    _parameter_relations = (Relation(("burn_in", "n_steps"), lambda burn_in, n_steps: burn_in < n_steps,
                                     "burn_in < n_steps"),)

    def __init__(
        self,
        *,
        mode: str = "collapsed",
        n_walkers: int | None = None,
        n_steps: int = 2000,
        burn_in: int = 500,
        thin: int = 1,
        n_members: int = 100,
        temperature: float | str = 1.0,
        fix_hyperparameters: tuple[float | None, float | None] | None = None,
        alpha_1: float = GAMMA_PRIOR.alpha_1, alpha_2: float = GAMMA_PRIOR.alpha_2,
        lambda_1: float = GAMMA_PRIOR.lambda_1, lambda_2: float = GAMMA_PRIOR.lambda_2,
        moves=None,
        random_state: RandomStateLike = None,
        store=None,
        progress: bool = False,
    ):
        self._store_params(locals())

    # -- setup ---------------------------------------------------------------------------------

    def _fixed(self) -> tuple[float | None, float | None]:
        """``fix_hyperparameters`` as (α or None, λ or None) floats."""
        fixed = (None, None) if self.fix_hyperparameters is None else self.fix_hyperparameters
        return tuple(None if v is None else float(v) for v in fixed)

    def _model(self, design, fixed):
        """Sufficient statistics, reference fit, temperature, and the tempered posterior."""
        XtX, Xty, yty = design.gram()
        n = n_effective_rows(design)
        prior = GAMMA_PRIOR.values(self)  # alpha_1, alpha_2, lambda_1, lambda_2 in this order
        fit = evidence_ridge(XtX, Xty, yty, n, **prior)
        eig = (fit.eigvals, fit.eigvecs)
        alpha0 = fit.alpha if fixed[0] is None else fixed[0]
        lam0 = fit.lambda_ if fixed[1] is None else fixed[1]
        if fixed == (None, None):
            theta_hat = fit.theta
        else:  # the optimum is the MAP at the hyperparameters actually used
            s, V = eig
            s = np.clip(s, 0.0, None)
            theta_hat = V @ (alpha0 * (V.T @ Xty) / (lam0 + alpha0 * s))
        residual = 0.0
        for _, Xc, yc in design.iter_weighted():
            r = yc - Xc @ theta_hat
            residual += float(r @ r)
        info = {"theta_hat": theta_hat, "alpha_hat": float(alpha0), "lambda_hat": float(lam0),
                "C0": 0.5 * float(alpha0) * residual, "residual_hat": residual}
        if isinstance(self.temperature, str):
            T = natural_temperature(residual, design.n_params, alpha0)
        else:
            T = float(self.temperature)
        model = LinearGaussianPosterior(XtX, Xty, n, theta_hat, residual, T, tuple(prior.values()), eig=eig)
        return model, info

    @staticmethod
    def _hyper(h, fixed):
        """(log α, log λ, α, λ) arrays from the free coordinates h (K, n_free)."""
        K = h.shape[0]
        cols = iter(range(h.shape[1]))
        out = []
        for value in fixed:
            if value is None:
                out.append(np.clip(h[:, next(cols)], -700.0, 700.0))
            else:
                out.append(np.full(K, np.log(value)))
        la, ll = out
        return la, ll, np.exp(la), np.exp(ll)

    def _mode(self, model, info, fixed):
        """Mode and Laplace covariance of the free log-hyperparameters of the tempered marginal."""
        free = tuple(v is None for v in fixed)
        start = np.array([np.log(info["alpha_hat"]), np.log(info["lambda_hat"])])[list(free)]
        if not any(free):
            return start, np.zeros((0, 0))

        def neg(h):
            la, ll, a, l = self._hyper(np.atleast_2d(h), fixed)
            value = model.log_marginal(a, l) + model.log_hyperprior(la, ll, free)
            return -float(value[0]) if np.isfinite(value[0]) else np.inf

        mode = optimize.minimize(neg, start, method="Nelder-Mead",
                                 options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 2000}).x
        step = 1e-3
        k = mode.size
        H = np.zeros((k, k))
        for i in range(k):
            for j in range(k):
                ei, ej = np.eye(k)[i] * step, np.eye(k)[j] * step
                H[i, j] = (neg(mode + ei + ej) - neg(mode + ei - ej) - neg(mode - ei + ej) + neg(mode - ei - ej)) / (4 * step**2)
        try:
            cov = np.linalg.inv(H)
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            cov = np.eye(k) * 0.01
        return mode, cov

    # -- fit -------------------------------------------------------------------------------------

    def fit(self, design, *, theta=None, prior_mean=None) -> ParameterEnsemble:
        """Sample the posterior of ``design`` and return the ensemble.

        Parameters
        ----------
        design : DesignMatrix
        theta : (P,) array, optional
            A given point estimate θ₀. Sampling is unchanged (the chain, temperature, α and λ
            are those of the data; same seed, same draws); the posterior is moved to θ₀:
            members θ₀ + (θ_m − θ̄) with θ̄ the posterior mean (Rao-Blackwellised in collapsed
            mode), ``theta`` = θ₀, ``covariance`` and ``noise_variance`` unchanged. ``chain_``
            and a stored chain hold the unshifted posterior (``docs/fixed_point_estimate.md``).
        prior_mean : (P,) array, optional
            Centre the ridge / prior on this vector (e.g. a pretrained readout) instead of
            zero: the fit is of δ = θ − θ₀ on targets y − Xθ₀ (:meth:`Backend._fit_about`).
        """
        if prior_mean is not None:
            return self._fit_about(design, prior_mean, theta)
        self._validate_params()
        theta0 = check_theta(theta, design.n_params)
        fixed = self._fixed()
        rng = self._rng(self.random_state)
        model, info = self._model(design, fixed)
        if self.temperature == "natural" and fixed == (None, None):
            # KLIFF's tempered posterior keeps the noise scale fixed. With α free the tempered
            # likelihood acts like N/T ≈ P rows, the λ prior then dominates and shrinks θ towards 0
            # (on the W teacher demo the posterior mean lost 8 eV/atom). Hold α at the evidence
            # optimum and temper the prior with the likelihood (KLIFF's prior is flat), so the
            # mean stays at θ̂: θ ~ N(θ̂, T₀ (λ̂I + α̂XᵀWX)⁻¹), drawn exactly.
            fixed = (info["alpha_hat"], info["lambda_hat"] / model.T)
        free = tuple(v is None for v in fixed)
        n_free = sum(free)
        P = model.P
        h_mode, h_cov = self._mode(model, info, fixed)
        _, _, a_star, l_star = self._hyper(h_mode[None, :], fixed)
        t_center, prec_center = model.conditional(a_star, l_star)
        t_center, scale = t_center[0], np.sqrt(prec_center[0])
        extra = {
            "mode": self.mode,
            "temperature_used": model.T,
            "natural_temperature": natural_temperature(info["residual_hat"], P, info["alpha_hat"]),
            "C0": info["C0"],
            "alpha_hat": info["alpha_hat"],
            "lambda_hat": info["lambda_hat"],
            "theta_estimate": "posterior_mean",
        }

        if self.mode == "collapsed" and n_free == 0:
            # α, λ known: θ | α, λ is Gaussian, so draws are exact and no chain is needed
            alpha = np.full(1, a_star[0])
            mean, prec = model.conditional(alpha, l_star)
            z = rng.standard_normal((self.n_members, P))
            members = (mean + z / np.sqrt(prec)) @ model.V.T
            theta = model.V @ mean[0]
            cov = (model.V / prec[0]) @ model.V.T
            self.sampler_, self.chain_, self.alpha_, self.lambda_ = None, None, alpha, l_star
            extra["diagnostics"] = {"exact": True}
            return self._ensemble(design, theta, members, cov, 1.0 / alpha[0], extra, theta0)

        ndim = n_free + (P if self.mode == "full" else 0)
        n_walkers = self.n_walkers or (32 if self.mode == "collapsed" else 2 * ndim + 2)
        # walkers start from the Laplace approximation at the mode: burn-in is short
        h0 = h_mode + rng.standard_normal((n_walkers, n_free)) @ np.linalg.cholesky(h_cov).T
        if self.mode == "collapsed":
            p0 = h0

            def log_prob(x):
                la, ll, a, l = self._hyper(x, fixed)
                lp = model.log_marginal(a, l) + model.log_hyperprior(la, ll, free)
                return np.where(np.isfinite(lp), lp, -np.inf)

            names, slices, dims = self._names(free, 0)
        else:
            p0 = np.concatenate([rng.standard_normal((n_walkers, P)), h0], axis=1)

            def log_prob(x):
                la, ll, a, l = self._hyper(x[:, P:], fixed)
                t = t_center + x[:, :P] / scale
                lp = model.log_joint(t, a, l) + model.log_hyperprior(la, ll, free)
                return np.where(np.isfinite(lp), lp, -np.inf)

            names, slices, dims = self._names(free, P)
        moves = self.moves if self.moves is not None else emcee.moves.DEMove()

        seed = int(rng.integers(2**32))
        backend = hdf_backend(self.store, n_walkers, ndim)
        sampler = emcee.EnsembleSampler(n_walkers, ndim, log_prob, moves=moves, backend=backend, vectorize=True)
        sampler.random_state = np.random.RandomState(seed).get_state()
        start = time.perf_counter()
        sampler.run_mcmc(p0, self.n_steps, progress=self.progress)
        wall = time.perf_counter() - start

        flat = sampler.get_chain(discard=self.burn_in, thin=self.thin, flat=True)
        _, _, alpha, lam = self._hyper(flat[:, P:] if self.mode == "full" else flat, fixed)
        K = flat.shape[0]
        idx = rng.choice(K, size=self.n_members, replace=K < self.n_members)
        if self.mode == "collapsed":
            mean, prec = model.conditional(alpha[idx], lam[idx])
            z = rng.standard_normal((self.n_members, P))
            members = (mean + z / np.sqrt(prec)) @ model.V.T
            theta, cov = self._rao_blackwell(model, alpha, lam)
        else:
            u = flat[:, :P]  # t = t_center + u / scale is affine: take moments of u
            members = (t_center + u[idx] / scale) @ model.V.T
            theta = model.V @ (t_center + u.mean(axis=0) / scale)
            cov_t = np.atleast_2d(np.cov(u, rowvar=False)) / np.outer(scale, scale)
            cov = model.V @ cov_t @ model.V.T
        cov = 0.5 * (cov + cov.T)
        self.sampler_, self.chain_, self.alpha_, self.lambda_ = sampler, flat, alpha, lam

        idata, diagnostics = chain_diagnostics(sampler, names, slices, dims, wall,
                                               burn_in=self.burn_in, thin=self.thin, n_steps=self.n_steps)
        extra["diagnostics"] = diagnostics
        if self.store is not None:
            extra["chain_file"] = str(self.store)
            self._write_store(idata, names, model, t_center, scale, free, slices)
        return self._ensemble(design, theta, members, cov, float(np.mean(1.0 / alpha)), extra, theta0)

    # -- pieces ----------------------------------------------------------------------------------

    @staticmethod
    def _names(free, P):
        """Column names, arviz variable names/slices/dims for the sampler's coordinates."""
        hyper = [n for n, f in zip(("log_alpha", "log_lambda"), free) if f]
        columns = ([f"u_{i}" for i in range(P)] if P else []) + hyper
        var_names = (["u"] if P else []) + hyper
        slices = ([slice(0, P)] if P else []) + [P + i for i in range(len(hyper))]
        dims = {"u": ["eigenmode"]} if P else None
        return {"columns": columns, "var_names": var_names}, slices, dims

    @staticmethod
    def _rao_blackwell(model, alpha, lam, chunk=2048, max_between=4096):
        """E[θ] and Cov[θ] = E[Σ(α,λ)] + Cov[m(α,λ)] over the retained hyperparameter samples.

        E[m] and E[Σ] (diagonal in the eigenbasis) use every sample, O(KP); the between-sample
        covariance Cov[m], O(KP²), uses at most ``max_between`` evenly spaced samples, which keeps
        P = 1596 affordable and is still more than the chain's effective sample size.
        """
        K, P = alpha.size, model.P
        ref = model.conditional(alpha[:1], lam[:1])[0][0]
        s1, v = np.zeros(P), np.zeros(P)
        for start in range(0, K, chunk):
            mean, prec = model.conditional(alpha[start:start + chunk], lam[start:start + chunk])
            s1 += (mean - ref).sum(axis=0)  # centred on one sample to avoid cancellation
            v += (1.0 / prec).sum(axis=0)
        mu = s1 / K
        sub = np.arange(0, K, int(np.ceil(K / max_between)))
        d = model.conditional(alpha[sub], lam[sub])[0] - ref
        dm = d.mean(axis=0)
        between = (d - dm).T @ (d - dm) / max(sub.size - 1, 1)
        cov_t = between + np.diag(v / K)
        return model.V @ (ref + mu), model.V @ cov_t @ model.V.T

    def _write_store(self, idata, names, model, t_center, scale, free, slices):
        attrs = {"mode": self.mode, "temperature": model.T, "names": names["columns"],
                 "var_names": names["var_names"], "free": list(free),
                 "burn_in": int(self.burn_in), "thin": int(self.thin)}
        # the full sampler's whitening maps the stored u back to θ = V (t_center + u / scale)
        arrays = {"V": model.V, "t_center": t_center, "scale": scale} if self.mode == "full" else None
        write_chain(self.store, idata, attrs, arrays)

    def _ensemble(self, design, theta, members, cov, noise_variance, extra, theta0=None):
        """The ensemble; with a given θ₀ the posterior (mean ``theta``) is translated onto it."""
        theta = np.asarray(theta, dtype=float)
        members = np.asarray(members, dtype=float)
        if theta0 is None:
            extra = {**extra, **self._point_estimate_metadata(design, theta)}
        else:
            extra = {**extra, **self._point_estimate_metadata(design, theta0, theta), "theta_estimate": "given"}
            evals, evecs = np.linalg.eigh(cov)
            delta = evecs.T @ (theta0 - theta)
            positive = evals > 1e-12 * max(evals.max(initial=0.0), 1e-300)
            extra["point_estimate_mahalanobis"] = float(np.sqrt(np.sum(delta[positive] ** 2 / evals[positive])))
            members = theta0 + (members - theta)
            theta = theta0
        metadata = self._metadata(design, **extra)
        if metadata["params"].get("moves") is not None:  # emcee move objects are not JSON
            metadata["params"]["moves"] = repr(metadata["params"]["moves"])
        return ParameterEnsemble(
            theta=theta,
            members=members,
            covariance=np.asarray(cov, dtype=float),
            noise_variance=float(noise_variance),
            metadata=metadata,
        )
