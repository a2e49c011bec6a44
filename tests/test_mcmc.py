"""MCMC backend: the collapsed marginal, both samplers against analytic posteriors, tempering,
seeding and chain storage.

Statistical checks are seeded. Monte-Carlo tolerances come from each run's own effective sample
size (ESS): a posterior mean is compared within 4.5 standard errors sd/√ESS and a variance within
5·√(2/ESS) relative (the standard error of a Gaussian variance estimate is √(2/ESS)); at these
multiples a false failure has probability < 1e-4 per compared quantity. (emcee's ESS of an
ensemble can be optimistic: against a 2-D quadrature of the collapsed marginal, errors of log α
means reached ~3.4 of its standard errors in 6 long runs, so 4.5 leaves headroom.)
"""

import json
import warnings

import numpy as np
import pytest
from scipy import stats

from uqcalc.backends.bayes import evidence_ridge, log_evidence
from uqcalc.backends.mcmc import (
    MCMC,
    LinearGaussianPosterior,
    natural_temperature,
    read_chain,
)
from uqcalc.design import DesignMatrix
from uqcalc.ensemble import ParameterEnsemble


def well_specified(n=200, p=4, alpha=25.0, lam=1.0, seed=0, w=None):
    """y = Xθ + ε with θ ~ N(0, 1/λ), ε ~ N(0, 1/(α w))."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * np.linspace(1.0, 0.3, p)
    theta = rng.normal(size=p) / np.sqrt(lam)
    w = np.ones(n) if w is None else w
    y = X @ theta + rng.normal(size=n) / np.sqrt(alpha * w)
    return DesignMatrix(X=X, y=y, w=w), theta


def analytic(design, alpha, lam, T=1.0):
    """Posterior N(m, A⁻¹) of θ for known α, λ and temperature T (weighted rows)."""
    Xw, yw = design.weighted()
    A = lam * np.eye(design.n_params) + alpha / T * Xw.T @ Xw
    cov = np.linalg.inv(A)
    return cov @ (alpha / T * Xw.T @ yw), cov


def posterior(design, theta_ref=None, T=1.0):
    XtX, Xty, _ = design.gram()
    theta_ref = np.zeros(design.n_params) if theta_ref is None else theta_ref
    Xw, yw = design.weighted()
    r = yw - Xw @ theta_ref
    return LinearGaussianPosterior(XtX, Xty, design.n_rows, theta_ref, r @ r, temperature=T)


def check_moments(theta, cov, ess, mean_ref, cov_ref):
    """Mean within 4.5 s.e. and covariance within 5√(2/ESS), in the whitened frame of cov_ref."""
    sd = np.sqrt(np.diag(cov_ref))
    assert np.all(np.abs(theta - mean_ref) <= 4.5 * sd / np.sqrt(ess)), (theta - mean_ref) / sd * np.sqrt(ess)
    L = np.linalg.cholesky(cov_ref)
    white = np.linalg.solve(L, np.linalg.solve(L, cov).T)
    assert np.max(np.abs(white - np.eye(len(theta)))) <= 5 * np.sqrt(2 / ess), white


# -- the collapsed marginal likelihood ----------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_log_marginal_matches_dense(weighted):
    n, p = 30, 5
    rng = np.random.default_rng(1)
    w = rng.uniform(0.2, 3.0, n) if weighted else None
    design, _ = well_specified(n, p, seed=1, w=w)
    Xw, yw = design.weighted()
    model = posterior(design, theta_ref=np.linalg.lstsq(Xw, yw, rcond=None)[0])
    XtX, Xty, yty = design.gram()
    s, V = np.linalg.eigh(XtX)
    # hyperparameters where the dense N×N covariance is well conditioned (cond ≲ 1e5): at α = 1e3,
    # λ = 1e-3 (cond ~ 1e8) the dense Cholesky itself is off by ~1e-6, not the eigenbasis formula
    for alpha, lam in [(25.0, 1.0), (0.3, 40.0), (200.0, 0.05), (5.0, 3.0)]:
        dense = stats.multivariate_normal(np.zeros(n), np.eye(n) / alpha + Xw @ Xw.T / lam).logpdf(yw)
        ours = model.log_marginal(np.array([alpha]), np.array([lam]))[0]
        # values are O(10–100) sums of O(1) terms: 1e-8 absolute leaves room for round-off only
        assert abs(ours - dense) < 1e-8
        assert abs(log_evidence(alpha, lam, s, V.T @ Xty, yty, n) - dense) < 1e-8


def test_tempered_log_marginal_matches_dense():
    # p(y|θ,α)^(1/T) = N(y; Xθ, T/α) · (α/2π)^(N/2T) (2πT/α)^(N/2): a Gaussian in y up to constants
    n, p, T = 25, 3, 2.5
    design, _ = well_specified(n, p, seed=2)
    model = posterior(design, T=T)
    X, y = design.X, design.y
    for alpha, lam in [(25.0, 1.0), (2.0, 0.1)]:
        dense = stats.multivariate_normal(np.zeros(n), T / alpha * np.eye(n) + X @ X.T / lam).logpdf(y)
        dense += 0.5 * n / T * np.log(alpha / (2 * np.pi)) + 0.5 * n * np.log(2 * np.pi * T / alpha)
        assert abs(model.log_marginal(np.array([alpha]), np.array([lam]))[0] - dense) < 1e-8


def test_residual_is_reference_independent():
    # ‖y − Xθ‖² expanded about any reference equals the direct sum of squares (round-off only)
    design, _ = well_specified(50, 4, seed=3)
    rng = np.random.default_rng(3)
    t = rng.normal(size=(6, 4))
    direct = np.sum((design.y[None] - t @ design.X.T) ** 2, axis=1)
    for ref in (np.zeros(4), rng.normal(size=4)):
        model = posterior(design, theta_ref=ref)
        np.testing.assert_allclose(model.residual(t @ model.V), direct, rtol=1e-11)


# -- known hyperparameters: analytic posterior ------------------------------------------------------


def test_collapsed_fixed_hyperparameters_is_exact():
    alpha, lam = 25.0, 1.0
    design, _ = well_specified(seed=4)
    m, cov = analytic(design, alpha, lam)
    ens = MCMC(fix_hyperparameters=(alpha, lam), n_members=4000, random_state=0).fit(design)
    # no chain: theta and covariance are the closed form (round-off tolerance)
    np.testing.assert_allclose(ens.theta, m, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ens.covariance, cov, rtol=1e-9, atol=1e-14)
    assert ens.noise_variance == pytest.approx(1 / alpha)
    # the members are i.i.d. draws: ESS = n_members
    check_moments(ens.members.mean(0), np.cov(ens.members, rowvar=False), 4000, m, cov)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_full_fixed_hyperparameters_matches_analytic(T):
    alpha, lam = 25.0, 1.0
    design, _ = well_specified(seed=5)
    m, cov = analytic(design, alpha, lam, T)
    backend = MCMC(mode="full", fix_hyperparameters=(alpha, lam), temperature=T, n_walkers=16,
                   n_steps=3000, burn_in=300, random_state=1)
    ens = backend.fit(design)
    diag = ens.metadata["diagnostics"]
    assert diag["rhat_max"] < 1.05
    check_moments(ens.theta, ens.covariance, diag["ess_min"], m, cov)


# -- free hyperparameters: full and collapsed agree ----------------------------------------------------


def test_full_and_collapsed_agree_on_hyperparameter_marginals():
    # few rows and parameters: the λ marginal is broad and skewed, a real test of the collapse
    design, _ = well_specified(n=30, p=3, alpha=4.0, lam=0.5, seed=6)
    fits = {}
    for mode, steps in (("collapsed", 4000), ("full", 6000)):
        backend = MCMC(mode=mode, n_walkers=24, n_steps=steps, burn_in=500, random_state=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ens = backend.fit(design)
        diag = ens.metadata["diagnostics"]
        ess = dict(zip(diag["names"], diag["ess"]))
        fits[mode] = (ens, backend, ess, diag)
    for name, attr in (("log_alpha", "alpha_"), ("log_lambda", "lambda_")):
        (c, cb, ce, _), (f, fb, fe, _) = fits["collapsed"], fits["full"]
        xc, xf = np.log(getattr(cb, attr)), np.log(getattr(fb, attr))
        se = np.sqrt(xc.var() / ce[name] + xf.var() / fe[name])
        assert abs(xc.mean() - xf.mean()) < 4.5 * se, (name, xc.mean(), xf.mean(), se)
        # standard deviations: relative s.e. of an sd is √(1/(2 ESS)) per run
        rel = np.sqrt(1 / (2 * ce[name]) + 1 / (2 * fe[name]))
        assert abs(xc.std() / xf.std() - 1) < 5 * rel, (name, xc.std(), xf.std())
    # θ moments of the two agree too (full's ESS governs the tolerance)
    c, f = fits["collapsed"][0], fits["full"][0]
    check_moments(f.theta, f.covariance, fits["full"][3]["ess_min"], c.theta, c.covariance)
    assert f.noise_variance == pytest.approx(c.noise_variance, rel=0.1)


# -- tempering --------------------------------------------------------------------------------------


def test_natural_temperature():
    design, _ = well_specified(n=100, p=4, seed=7)
    Xw, yw = design.weighted()
    # α fixed to 1: KLIFF's T₀ = 2C₀/P with C₀ = ½‖y − Xθ̂‖² at the ridge optimum
    lam = 0.1
    theta_hat = np.linalg.solve(Xw.T @ Xw + lam * np.eye(4), Xw.T @ yw)
    T0 = np.sum((yw - Xw @ theta_hat) ** 2) / 4
    ens = MCMC(fix_hyperparameters=(1.0, lam), temperature="natural", random_state=0).fit(design)
    assert ens.metadata["temperature_used"] == pytest.approx(T0, rel=1e-10)
    assert natural_temperature(2 * ens.metadata["C0"], 4) == pytest.approx(T0, rel=1e-10)
    # α free: the cost carries α̂ of the evidence fit, C₀ = ½ α̂ ‖y − Xθ̂‖²
    fit = evidence_ridge(*design.gram(), design.n_rows)
    T0 = fit.alpha * np.sum((yw - Xw @ fit.theta) ** 2) / 4
    backend = MCMC(temperature="natural", n_steps=300, burn_in=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ens = backend.fit(design)
    assert ens.metadata["temperature_used"] == pytest.approx(T0, rel=1e-8)
    assert T0 == pytest.approx(100 / 4, rel=0.2)  # ≈ (N − γ)/P for a well-specified model
    # α is held at the evidence optimum and the prior tempered with the likelihood, so the
    # posterior is N(θ̂, T₀ A⁻¹) exactly (no chain): a free λ would shrink θ towards 0 at N/T ≈ P rows
    Xw, yw = design.weighted()
    A = fit.lambda_ * np.eye(4) + fit.alpha * Xw.T @ Xw
    np.testing.assert_allclose(ens.theta, fit.theta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ens.covariance, T0 * np.linalg.inv(A), rtol=1e-8, atol=1e-12)
    assert ens.metadata["diagnostics"] == {"exact": True}


def test_tempered_covariance_scales_with_temperature():
    # with a negligible prior, (λI + αXᵀX/T)⁻¹ → T (αXᵀX)⁻¹; λ = 1e-8 makes the prior's share < 1e-6
    alpha, lam = 25.0, 1e-8
    design, _ = well_specified(seed=8)
    cov1 = MCMC(fix_hyperparameters=(alpha, lam), random_state=0).fit(design).covariance
    hot = MCMC(fix_hyperparameters=(alpha, lam), temperature="natural", random_state=0).fit(design)
    T = hot.metadata["temperature_used"]
    assert T > 10
    np.testing.assert_allclose(hot.covariance, T * cov1, rtol=1e-5)


# -- reproducibility, storage, warnings, contract -----------------------------------------------------


@pytest.mark.parametrize("mode", ["collapsed", "full"])
def test_same_seed_bit_identical(mode):
    design, _ = well_specified(n=60, p=3, seed=9)

    def run(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return MCMC(mode=mode, n_steps=200, burn_in=50, n_members=20, random_state=seed).fit(design)

    a, b, c = run(11), run(11), run(12)
    assert np.array_equal(a.members, b.members) and np.array_equal(a.theta, b.theta)
    assert np.array_equal(a.covariance, b.covariance)
    assert not np.allclose(a.members, c.members)


@pytest.mark.parametrize("suffix", [".h5", ".nc"])
@pytest.mark.parametrize("mode", ["collapsed", "full"])
def test_chain_store_round_trips(tmp_path, suffix, mode):
    design, _ = well_specified(n=60, p=3, seed=10)
    path = tmp_path / f"chain{suffix}"
    backend = MCMC(mode=mode, n_steps=150, burn_in=50, n_walkers=12, random_state=3, store=path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ens = backend.fit(design)
    stored = read_chain(path)
    # the file holds the very numbers the sampler produced (float64 both ways)
    assert np.array_equal(stored["chain"], backend.sampler_.get_chain())
    assert np.array_equal(stored["log_prob"], backend.sampler_.get_log_prob())
    assert stored["names"] == ens.metadata["diagnostics"]["names"]
    assert stored["attrs"]["mode"] == mode and ens.metadata["chain_file"] == str(path)
    if mode == "full" and suffix == ".h5":
        # the whitening stored alongside maps the chain back to θ: the posterior mean is recovered
        a = stored["attrs"]
        u = stored["chain"][a["burn_in"]:, :, :3].reshape(-1, 3)
        np.testing.assert_allclose(a["V"] @ (a["t_center"] + u.mean(0) / a["scale"]), ens.theta, rtol=1e-12)


def test_short_chains_warn_and_long_ones_do_not():
    design, _ = well_specified(n=60, p=3, seed=11)
    with pytest.warns(UserWarning, match="chains are short"):
        MCMC(mode="full", n_steps=60, burn_in=10, random_state=0).fit(design)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ens = MCMC(n_steps=2000, burn_in=200, random_state=0).fit(design)
    assert not [w for w in caught if "chains are short" in str(w.message)]
    assert 2000 >= 50 * ens.metadata["diagnostics"]["tau_max"]


def test_contract_and_metadata(tmp_path):
    import emcee

    backend = MCMC(mode="full", n_steps=100, burn_in=20, moves=emcee.moves.DEMove(), random_state=0)
    assert backend.get_params()["n_steps"] == 100
    assert backend.clone(n_steps=50).n_steps == 50
    design, _ = well_specified(n=40, p=3, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ens = backend.fit(design)
    assert isinstance(ens, ParameterEnsemble) and ens.members.shape == (100, 3)
    json.dumps(ens.metadata)  # JSON-able: emcee move objects recorded by repr
    ens.save(tmp_path / "e.npz")
    assert np.array_equal(ParameterEnsemble.load(tmp_path / "e.npz").members, ens.members)
    diag = ens.metadata["diagnostics"]
    assert len(diag["tau"]) == len(diag["ess_bulk"]) == len(diag["rhat"]) == 5
    with pytest.raises(ValueError, match="mode"):
        MCMC(mode="gibbs").fit(design)
