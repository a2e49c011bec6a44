"""UQ around a given point estimate: ``fit(design, theta=θ₀)`` for every backend.

Oracles: the POPS corrections recomputed here in dense numpy from their definition
(METHODS.md §3) at θ₀; the exact-box guarantee (every kept row's target inside the bounds);
for the posterior backends, the translation identity members(θ₀) − members(fitted) = θ₀ − θ̂
at the same seed, and θ₀ = θ̂ reproducing the fitted ensemble.
"""

from __future__ import annotations

import numpy as np
import pytest

from uqcalc.backends import POPS, BayesianRidge, Bootstrap
from uqcalc.backends.base import check_theta
from uqcalc.backends.mcmc import MCMC
from uqcalc.design import DesignMatrix


def _design(n_frames=120, P=6, seed=0):
    """Misspecified energy+force rows with weights (as tests/test_pops.py's ``_mixed``)."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=P)
    X = np.concatenate([np.concatenate([rng.normal(size=(1, P)), 0.3 * rng.normal(size=(3, P))])
                        for _ in range(n_frames)])
    kind = np.tile(["energy", "force", "force", "force"], n_frames)
    y = X @ truth + 0.2 * np.tanh(X[:, 0] * X[:, 1])
    w = np.where(kind == "energy", 4.0, 1.0)
    return DesignMatrix(X=X, y=y, w=w, kind=kind, config=np.repeat(np.arange(n_frames), 4))


@pytest.fixture(scope="module")
def design():
    return _design()


@pytest.fixture(scope="module")
def theta0(design):
    """A 'published' potential: a fit perturbed well outside the posterior."""
    fitted = BayesianRidge().fit(design).theta
    return fitted + 0.05 * np.random.default_rng(7).normal(size=fitted.size)


def test_pops_corrections_are_those_of_the_given_theta(design, theta0):
    ens = POPS(posterior="ensemble", percentile_clipping=0.0, random_state=0).fit(design, theta=theta0)
    assert np.array_equal(ens.theta, theta0)
    # dense oracle: C = XᵀWX + ridge·I, h_n = x̃ₙᵀC⁻¹x̃ₙ, Δθₙ = (ẽₙ/hₙ)C⁻¹x̃ₙ with ẽ the weighted
    # residual of θ₀ (not of a refit)
    Xw, yw = design.weighted()
    C = Xw.T @ Xw + ens.metadata["ridge"] * np.eye(design.n_params)
    A = np.linalg.solve(C, Xw.T).T
    h = np.einsum("ij,ij->i", Xw, A)
    T = ((yw - Xw @ theta0) / h)[:, None] * A
    expected = np.sort(theta0 + T, axis=0)
    np.testing.assert_allclose(np.sort(ens.members, axis=0), expected, rtol=1e-9, atol=1e-12)
    # each member fits its row exactly: x·(θ₀ + Δθ) = y
    np.testing.assert_allclose(np.einsum("ij,ij->i", Xw, theta0 + T), yw, atol=1e-10 * np.abs(yw).max())


def test_pops_box_about_given_theta_contains_every_row(design, theta0):
    ens = POPS(percentile_clipping=0.0, random_state=0).fit(design, theta=theta0)
    assert np.array_equal(ens.theta, theta0)
    pred = ens.predict(design.X)
    tol = 1e-10 * np.abs(design.y).max()
    assert np.all(pred.lower <= design.y + tol) and np.all(design.y <= pred.upper + tol)
    # the box is about θ₀, not θ̄: the given estimate's predictions lie inside it
    p0 = design.X @ theta0
    assert np.all(pred.lower <= p0 + tol) and np.all(p0 <= pred.upper + tol)


@pytest.mark.parametrize("make", [
    lambda: POPS(random_state=0),
    lambda: BayesianRidge(n_members=50, random_state=0),
    lambda: Bootstrap(n_members=40, random_state=0),
    lambda: MCMC(n_steps=400, burn_in=100, n_members=50, random_state=0),
], ids=["pops", "bayes", "bootstrap", "mcmc"])
def test_given_theta_equal_to_the_fit_reproduces_the_fit(design, make):
    fitted = make().fit(design)
    again = make().fit(design, theta=fitted.theta)
    np.testing.assert_allclose(again.theta, fitted.theta, rtol=0, atol=0)
    np.testing.assert_allclose(again.members, fitted.members, rtol=1e-10, atol=1e-12)
    assert fitted.metadata["point_estimate"] == "fitted"
    assert again.metadata["point_estimate"] == "given"
    assert again.metadata["fitted_theta_distance"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("make", [
    lambda: BayesianRidge(n_members=50, random_state=3),
    lambda: Bootstrap(n_members=40, random_state=3),
    lambda: MCMC(n_steps=400, burn_in=100, n_members=50, random_state=3),
], ids=["bayes", "bootstrap", "mcmc"])
def test_posterior_backends_translate_their_spread_onto_theta0(design, theta0, make):
    """Same seed, same draws: only the centre moves, so the spread (covariance) is the data's."""
    fitted = make().fit(design)
    given = make().fit(design, theta=theta0)
    assert np.array_equal(given.theta, theta0)
    np.testing.assert_allclose(given.members - theta0, fitted.members - fitted.theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(given.covariance, fitted.covariance, rtol=1e-12)
    assert given.noise_variance == fitted.noise_variance


def test_given_theta_metadata_says_how_far_it_is_from_the_data(design, theta0):
    ens = BayesianRidge(random_state=0).fit(design, theta=theta0)
    meta = ens.metadata
    assert meta["point_estimate"] == "given"
    assert meta["rmse_weighted_given"] > meta["rmse_weighted_fitted"]
    # Mahalanobis distance √(δᵀAδ) in the posterior metric, recomputed densely
    fitted = BayesianRidge(random_state=0).fit(design)
    delta = theta0 - fitted.theta
    assert meta["point_estimate_mahalanobis"] == pytest.approx(
        np.sqrt(delta @ np.linalg.solve(fitted.covariance, delta)), rel=1e-6)
    assert meta["point_estimate_mahalanobis"] > 3  # θ₀ was put well outside the posterior


@pytest.mark.parametrize(("theta", "match"), [
    (np.zeros(5), r"shape \(6,\).*got shape \(5,\)"),
    (np.zeros((6, 1)), r"got shape \(6, 1\)"),
    (np.array([0, 1, np.nan, 0, np.inf, 0]), r"2 non-finite entries at indices \[2, 4\]"),
    (np.array(list("abcdef")), "dtype"),
])
def test_bad_theta_is_named(design, theta, match):
    with pytest.raises(ValueError, match=match):
        check_theta(theta, design.n_params)
    for backend in (POPS(), BayesianRidge(), Bootstrap(n_members=2)):
        with pytest.raises(ValueError, match=match):
            backend.fit(design, theta=theta)


def test_given_theta_is_copied(design, theta0):
    mine = theta0.copy()
    ens = POPS(random_state=0).fit(design, theta=mine)
    mine[:] = 0.0
    assert np.array_equal(ens.theta, theta0)
