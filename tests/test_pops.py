"""POPS backend (Swinburne & Perez, MLST 6, 015008, 2025; METHODS.md §3)."""

import numpy as np
import pytest

from uqcalc.backends import POPS, BayesianRidge
from uqcalc.backends.pops import pops_corrections
from uqcalc.design import DesignMatrix


def _toy(n, seed, f=lambda x: np.sin(2 * x) + 0.3 * np.exp(x / 2)):
    """Cubic polynomial features fitted noise-free to a smooth non-polynomial on [0, 3]."""
    x = np.random.default_rng(seed).uniform(0, 3, n)
    return np.vander(x, 4, increasing=True), f(x)


def _mixed(n_frames=200, P=10, seed=0):
    """A misspecified energy+force design with weights: 1 energy row and 6 force rows per frame."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=P)
    rows, kinds, configs = [], [], []
    for f in range(n_frames):
        rows.append(rng.normal(size=(1, P)))
        rows.append(0.3 * rng.normal(size=(6, P)))
        kinds += ["energy"] + ["force"] * 6
        configs += [f] * 7
    X = np.concatenate(rows)
    y = X @ truth + 0.2 * np.tanh(X[:, 0] * X[:, 1])  # not linear in X: misspecified
    w = np.where(np.array(kinds) == "energy", 4.0, 1.0)
    return DesignMatrix(X=X, y=y, w=w, kind=np.array(kinds), config=np.array(configs))


def test_each_kept_row_fitted_exactly_by_its_correction():
    d = _mixed()
    ens = POPS(random_state=0).fit(d)
    T, h, _e = pops_corrections(d, ens.theta, ens.metadata["ridge"])
    assert np.all((h > 0) & (h < 1))  # training rows, ridge > 0
    Xw, yw = d.weighted()
    fitted = np.einsum("ij,ij->i", Xw, ens.theta + T)
    # x·(θ̄ + (e/h)a) = x·θ̄ + e: exact up to rounding of O(|y|)
    np.testing.assert_allclose(fitted, yw, rtol=0, atol=1e-10 * np.abs(yw).max())


@pytest.mark.parametrize(
    "settings",
    [{}, {"row_kinds": ("energy",)}, {"leverage_percentile": 50.0}, {"min_residual": 0.5}],
)
def test_exact_box_contains_every_row_that_built_it(settings):
    d = _mixed()
    # the guarantee holds for the published min/max box (the default clips 1 %)
    ens = POPS(random_state=0, percentile_clipping=0.0, **settings).fit(d)
    _T, h, e = pops_corrections(d, ens.theta, ens.metadata["ridge"])
    kept = d.rows_of(settings.get("row_kinds"))
    if "leverage_percentile" in settings:
        kept &= h >= np.percentile(h[kept], settings["leverage_percentile"])
    if "min_residual" in settings:
        kept &= np.abs(e) >= settings["min_residual"] * np.sqrt(np.mean(e[kept] ** 2))
    assert ens.metadata["rows"]["n_kept"] == kept.sum()
    pred = ens.predict(d.X[kept])
    y = d.y[kept]
    tol = 1e-10 * np.abs(y).max()
    assert np.all(pred.lower <= y + tol) and np.all(y <= pred.upper + tol)
    assert ens.axes.shape[1] == d.n_params  # full-rank box on this design
    # the covariance is box second moment + Bayesian posterior covariance
    bayes = BayesianRidge().fit(d)
    np.testing.assert_allclose(ens.covariance, ens.box_second_moment() + bayes.covariance, rtol=1e-8, atol=1e-14)


def test_agrees_with_popsregression():
    popsregression = pytest.importorskip("popsregression")
    X, y = _toy(300, seed=1)
    X = np.hstack([X, 0.1 * np.random.default_rng(9).normal(size=(300, 2))])
    ref = popsregression.POPSRegression(leverage_percentile=0, tol=1e-12).fit(X, y)
    d = DesignMatrix(X=X, y=y)
    ens = POPS(tol=1e-12, alpha_init=1.0 / y.var(), percentile_clipping=0.0, random_state=0).fit(d)
    # evidence hyperparameters: theirs from ‖y − Xm‖² on rows, ours from XᵀX: ~1e-10 relative
    assert ens.metadata["alpha"] == pytest.approx(ref.alpha_, rel=1e-8)
    assert ens.metadata["ridge"] == pytest.approx(ref.lambda_ / ref.alpha_, rel=1e-8)
    T, h, _ = pops_corrections(d, ens.theta, ens.metadata["ridge"])
    np.testing.assert_allclose(ens.theta, ref.coef_, rtol=0, atol=1e-10 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(h, ref._leverage_scores, rtol=1e-10)
    scale = np.abs(ref._pointwise_correction).max()
    np.testing.assert_allclose(T, ref._pointwise_correction, rtol=0, atol=1e-10 * scale)
    # the same box: exact bounds from their axes/limits equal ours (independent of axis signs)
    U, (lo, hi) = ref._hypercube_support, ref._hypercube_bounds
    Xs = np.random.default_rng(2).normal(size=(50, X.shape[1]))
    c = Xs @ U
    theirs = Xs @ ref.coef_ + np.minimum(c * lo, c * hi).sum(axis=1)
    ours = ens.predict(Xs).lower
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9 * np.abs(theirs).max())


def test_misspecified_toy_pops_covers_bayes_does_not():
    X, y = _toy(200, seed=0)
    Xt, yt = _toy(2000, seed=1)  # held out, same interval
    d = DesignMatrix(X=X, y=y)
    pops = POPS(random_state=0).fit(d).predict(Xt, return_members=False)
    bayes_ens = BayesianRidge(random_state=0).fit(d)
    bayes = bayes_ens.predict(Xt, bounds="gaussian", return_members=False)  # parameter posterior ±2σ
    noisy = bayes_ens.predict(Xt, bounds="gaussian", include_noise=True, return_members=False)

    def cover(p):
        return np.mean((p.lower <= yt) & (yt <= p.upper))

    print(
        f"\nheld-out coverage: POPS exact {cover(pops):.3f} (mean width {np.mean(pops.width):.3f}); "
        f"Bayes parameter ±2σ {cover(bayes):.3f} (width {np.mean(bayes.width):.4f}); "
        f"Bayes ±2σ incl. noise 1/α {cover(noisy):.3f} (width {np.mean(noisy.width):.3f})"
    )
    assert cover(pops) >= 0.95
    assert cover(bayes) < 0.5
    # With the noise term the band looks calibrated in-distribution: 1/α has absorbed the
    # model error as if it were noise. That band is not a parameter uncertainty, though: a
    # property derived from θ has no noise term, and its parameter part is the 1/√N band above.
    assert cover(noisy) > 0.9


@pytest.mark.parametrize("sampler", ["uniform", "sobol", "halton", "lhs"])
def test_same_seed_identical_ensemble(sampler):
    d = _mixed(n_frames=60)
    a = POPS(sampler=sampler, n_members=64, random_state=3).fit(d)
    b = POPS(sampler=sampler, n_members=64, random_state=3).fit(d)
    c = POPS(sampler=sampler, n_members=64, random_state=4).fit(d)
    for name in ("theta", "members", "axes", "lower", "upper", "covariance"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert not np.array_equal(a.members, c.members)
    np.testing.assert_array_equal(a.lower, c.lower)  # the box itself is not random


def test_chunked_fit_equals_single_chunk_and_streamed_percentiles_are_exact():
    d = _mixed(n_frames=1000)  # 7000 rows: percentile clipping takes the streaming path
    kw = {"percentile_clipping": 1.0, "n_members": 10, "random_state": 0}
    small = POPS(chunk_rows=97, **kw).fit(d)
    big = POPS(chunk_rows=10**6, **kw).fit(d)
    # accumulation order differs between chunkings: agreement to rounding, not bitwise
    for name in ("theta", "axes", "lower", "upper", "covariance"):
        np.testing.assert_allclose(getattr(small, name), getattr(big, name), rtol=1e-9, atol=1e-12)
    T, _, _ = pops_corrections(d, big.theta, big.metadata["ridge"])
    z = T @ big.axes
    np.testing.assert_allclose(big.lower, np.percentile(z, 1.0, axis=0), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(big.upper, np.percentile(z, 99.0, axis=0), rtol=1e-10, atol=1e-14)


def test_ensemble_posterior():
    d = _mixed(n_frames=50)
    full = POPS(posterior="ensemble", n_members=None, row_kinds=("energy",)).fit(d)
    T, _, _ = pops_corrections(d, full.theta, full.metadata["ridge"], rows=d.rows_of("energy"))
    np.testing.assert_allclose(full.members, full.theta + T, rtol=1e-12, atol=1e-14)
    assert not full.has_box and full.predict(d.X).bounds == "sampled"
    bayes = BayesianRidge().fit(d)
    np.testing.assert_allclose(full.covariance, T.T @ T / len(T) + bayes.covariance, rtol=1e-8, atol=1e-14)
    sub = POPS(posterior="ensemble", n_members=20, row_kinds=("energy",), random_state=1).fit(d)
    assert sub.n_members == 20
    # each subsampled member is one of the corrected parameter sets
    dist = np.abs(sub.members[:, None, :] - full.members[None, :, :]).max(axis=2).min(axis=1)
    assert dist.max() < 1e-12


def test_tiny_leverage_rows_are_dropped():
    d = _mixed(n_frames=40)
    X = d.X.copy()
    X[3] = 0.0  # a force component fixed by symmetry: x = 0, h = 0
    y = d.y.copy()
    y[3] = 0.05
    d0 = DesignMatrix(X=X, y=y, w=d.w, kind=d.kind, config=d.config)
    ens = POPS().fit(d0)
    rows = ens.metadata["rows"]
    assert rows["n_tiny_leverage"] == 1 and rows["n_kept"] == d0.n_rows - 1
    assert np.all(np.isfinite(ens.lower)) and np.all(np.isfinite(ens.upper))


def test_select_picks_narrowest_reaching_target():
    X, y = _toy(200, seed=0)
    Xv, yv = _toy(300, seed=5)
    train, valid = DesignMatrix(X=X, y=y), DesignMatrix(X=Xv, y=yv)
    candidates = [{"percentile_clipping": q} for q in (0.0, 2.0, 10.0, 30.0)]
    chosen, table = POPS(random_state=0).select(train, valid, candidates=candidates, target_coverage=0.9)
    assert isinstance(chosen, POPS) and len(table) == 4
    widths = [row["mean_width"] for row in table]
    assert widths == sorted(widths, reverse=True)  # clipping narrows the box
    ok = [row for row in table if row["coverage"] >= 0.9]
    assert ok and chosen.percentile_clipping == min(ok, key=lambda r: r["mean_width"])["settings"]["percentile_clipping"]
    with pytest.warns(RuntimeWarning, match="no candidate reached"):
        POPS().select(train, valid, candidates=candidates[-1:], target_coverage=1.01)


def test_validation_in_fit_not_constructor():
    POPS(posterior="nope")  # stored only
    with pytest.raises(ValueError, match="posterior"):
        POPS(posterior="nope").fit(_mixed(n_frames=5))
    with pytest.raises(ValueError, match="kept no rows"):
        POPS(min_residual=1e9).fit(_mixed(n_frames=5))


def test_fit_memory_is_chunked():
    """No N × P (or N × M) intermediate: peak allocation of a fit ≪ the design matrix."""
    import tracemalloc

    rng = np.random.default_rng(0)
    N, P = 100_000, 20
    X = rng.normal(size=(N, P))
    d = DesignMatrix(X=X, y=X @ rng.normal(size=P) + np.tanh(X[:, 0]), kind=np.full(N, "force"))
    POPS(n_members=10, chunk_rows=1000).fit(d.select(np.arange(100)))  # warm-up imports
    for clipping, bound in ((0.0, 0.25), (1.0, 0.4)):
        tracemalloc.start()
        POPS(n_members=1000, chunk_rows=1000, percentile_clipping=clipping, random_state=0).fit(d)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # O(N) scalars (h, e, masks: ~25 bytes/row) + O(chunk·P + M·P); X alone is 160 bytes/row.
        # Clipping at q % also streams the q % extreme projections per axis: 2·(q/100)·N·R values
        assert peak < bound * X.nbytes, (clipping, peak / X.nbytes)
