"""Configuration bootstrap: sampling distribution, whole-frame resampling, exact refits, seeding."""

import json

import numpy as np
import pytest

from uqcalc.backends.bayes import evidence_ridge
from uqcalc.backends.bootstrap import Bootstrap
from uqcalc.design import DesignMatrix
from uqcalc.ensemble import ParameterEnsemble


def frames_design(n_configs=40, p=4, seed=0):
    """Configurations with 1–7 rows each, mixed kinds and weights."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, n_configs)
    config = np.repeat(np.arange(n_configs) * 3 + 5, sizes)  # non-contiguous labels on purpose
    n = config.size
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + 0.3 * rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    rng.shuffle(order := np.arange(n))  # rows of a frame need not be adjacent
    return DesignMatrix(X=X[order], y=y[order], w=w[order], config=config[order])


def whitened(cov, ref):
    L = np.linalg.cholesky(ref)
    return np.linalg.solve(L, np.linalg.solve(L, cov).T)


def test_spread_matches_ols_sampling_distribution():
    # one row per configuration, homoscedastic Gaussian noise, OLS (ridge = 0)
    rng = np.random.default_rng(1)
    n, p, sigma, B = 1000, 3, 0.5, 2000
    X = rng.normal(size=(n, p)) * [1.0, 0.5, 2.0] + [0.3, 0.0, 0.0]
    y = X @ np.array([1.0, -2.0, 0.5]) + sigma * rng.normal(size=n)
    ens = Bootstrap(n_members=B, ridge=0.0, random_state=1).fit(DesignMatrix(X=X, y=y))
    np.testing.assert_allclose(ens.theta, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-10)
    # (a) against its own estimand, the sandwich (XᵀX)⁻¹ Σ x xᵀ e² (XᵀX)⁻¹ of these data: only
    # resampling noise remains, s.e. √(2/B) = 0.032 on the whitened diagonal; tolerance 5 s.e.
    e = y - X @ ens.theta
    H = np.linalg.inv(X.T @ X)
    sandwich = H @ (X.T * e**2) @ X @ H
    assert np.max(np.abs(whitened(ens.covariance, sandwich) - np.eye(p))) < 5 * np.sqrt(2 / B)
    # (b) against the true sampling covariance σ²(XᵀX)⁻¹ of repeated experiments: adds the
    # data's own variability (the sandwich varies by ~√(2/N) = 0.045 per element). Over 30 seeds
    # the largest whitened deviation averaged 0.12 ± 0.04 (max 0.21); tolerance 0.3
    assert np.max(np.abs(whitened(ens.covariance, sigma**2 * H) - np.eye(p))) < 0.3


def test_rows_of_a_frame_move_together():
    # frame 0 as 10 identical rows of weight 1 vs one row of weight 10: identical statistics
    # per frame and the same number of frames, so the same seed gives the same members
    rng = np.random.default_rng(2)
    F, p = 30, 3
    X, y = rng.normal(size=(F, p)), rng.normal(size=F)
    many = DesignMatrix(X=np.vstack([np.repeat(X[:1], 10, 0), X[1:]]), y=np.r_[np.repeat(y[:1], 10), y[1:]],
                        config=np.r_[np.zeros(10, int), np.arange(1, F)])
    one = DesignMatrix(X=X, y=y, w=np.r_[10.0, np.ones(F - 1)])
    a = Bootstrap(n_members=50, ridge=0.1, random_state=3)
    b = Bootstrap(n_members=50, ridge=0.1, random_state=3)
    ea, eb = a.fit(many), b.fit(one)
    assert a.counts_.shape == (50, F) and np.array_equal(a.counts_, b.counts_)
    assert np.all(a.counts_.sum(axis=1) == F)
    np.testing.assert_allclose(ea.members, eb.members, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ea.theta, eb.theta, rtol=1e-10)


@pytest.mark.parametrize("memory_limit", [1e9, 1.0])
def test_refit_equals_direct_refit_on_resampled_rows(memory_limit):
    # memory_limit=1 forces the streaming path (no per-frame G stored)
    design = frames_design(seed=4)
    ridge = 0.05
    backend = Bootstrap(n_members=25, ridge=ridge, random_state=5, memory_limit=memory_limit)
    ens = backend.fit(design)
    assert ens.metadata["streaming"] == (memory_limit < 1e3)
    for k, theta in zip(backend.counts_, ens.members):
        # k copies of every row of each frame, then an ordinary weighted ridge fit on those rows
        reps = k[np.searchsorted(backend.configs_, design.config)]
        Xr, yr, wr = (np.repeat(a, reps, axis=0) for a in (design.X, design.y, design.w))
        direct = np.linalg.solve(Xr.T @ (wr[:, None] * Xr) + ridge * np.eye(design.n_params), Xr.T @ (wr * yr))
        np.testing.assert_allclose(theta, direct, rtol=1e-10, atol=1e-12)


def test_streaming_equals_in_memory():
    design = frames_design(n_configs=60, seed=6)
    a = Bootstrap(n_members=40, ridge=0.01, random_state=7).fit(design)
    # a budget of ~3 matrices: member batches of 1 and frame chunks of 1
    b = Bootstrap(n_members=40, ridge=0.01, random_state=7, memory_limit=3 * 8 * 16).fit(design)
    assert b.metadata["streaming"] and not a.metadata["streaming"]
    np.testing.assert_allclose(b.members, a.members, rtol=1e-10, atol=1e-12)


def test_default_ridge_from_evidence_and_theta_is_full_fit():
    design = frames_design(seed=8)
    ens = Bootstrap(n_members=10, random_state=0).fit(design)
    fit = evidence_ridge(*design.gram(), design.n_rows)
    ridge = fit.lambda_ / fit.alpha
    assert ens.metadata["ridge_used"] == pytest.approx(ridge, rel=1e-12)
    XtX, Xty, _ = design.gram()
    np.testing.assert_allclose(ens.theta, np.linalg.solve(XtX + ridge * np.eye(4), Xty), rtol=1e-10)
    assert not np.allclose(ens.theta, ens.members.mean(0))  # point estimate, not the bootstrap mean
    np.testing.assert_allclose(ens.covariance, np.cov(ens.members, rowvar=False), rtol=1e-12)


def test_same_seed_identical_and_contract(tmp_path):
    design = frames_design(seed=9)
    a = Bootstrap(n_members=30, random_state=11).fit(design)
    b = Bootstrap(n_members=30, random_state=11).fit(design)
    c = Bootstrap(n_members=30, random_state=12).fit(design)
    assert np.array_equal(a.members, b.members) and not np.allclose(a.members, c.members)
    assert isinstance(a, ParameterEnsemble) and a.members.shape == (30, 4)
    json.dumps(a.metadata)
    a.save(tmp_path / "b.npz")
    assert np.array_equal(ParameterEnsemble.load(tmp_path / "b.npz").members, a.members)
    assert Bootstrap(n_members=7).get_params()["n_members"] == 7
    with pytest.raises(ValueError, match="ridge"):
        Bootstrap(ridge=-1.0).fit(design)


def test_rank_deficient_resample_falls_back_to_least_squares():
    # 3 frames, 4 parameters, no ridge: every resample is singular; minimum-norm solutions
    rng = np.random.default_rng(10)
    design = DesignMatrix(X=rng.normal(size=(3, 4)), y=rng.normal(size=3))
    backend = Bootstrap(n_members=5, ridge=0.0, random_state=0)
    ens = backend.fit(design)
    for k, theta in zip(backend.counts_, ens.members):
        # an interpolating solution on the drawn frames, of moderate norm (round-off tolerance)
        np.testing.assert_allclose((design.X @ theta - design.y)[k > 0], 0.0, atol=1e-12)
        assert np.linalg.norm(theta) < 10
