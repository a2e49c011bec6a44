"""Calibrated POPS (``POPS.calibrate``), box scale, box diagnostics and the metrics' noise floor."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from uqcalc.backends import POPS
from uqcalc.backends.calibration import _row_intervals
from uqcalc.backends.pops import pops_corrections
from uqcalc.coverage.metrics import interval_errors, summarize
from uqcalc.design import DesignMatrix


def toy(n, rng, lo=-1.0, hi=1.0, group="g"):
    """A misspecified linear model: sin(3x) on a cubic polynomial basis (no noise)."""
    x = rng.uniform(lo, hi, n)
    X = np.vander(x, 4, increasing=True)
    return DesignMatrix(X=X, y=np.sin(3 * x), w=np.ones(n), kind=np.array(["energy"] * n),
                        config=np.arange(n), group=np.array([group] * n))


def test_row_intervals_match_direct_evaluation():
    """[s⁻, s⁺] from the closed form equals the set of grid scales at which the row is covered."""
    rng = np.random.default_rng(3)
    n = 400
    a = rng.normal(size=n) * (rng.random(n) < 0.9)  # some exact zeros (one-sided or empty bounds)
    b = rng.normal(size=n) * (rng.random(n) < 0.9)
    d = rng.normal(size=n)
    tol = rng.uniform(0, 0.3, n)
    lo, hi = _row_intervals(a, b, d, tol)
    s = np.linspace(0, 20, 4001)
    covered = (s[:, None] * a - tol <= d) & (d <= s[:, None] * b + tol)
    predicted = (lo <= s[:, None]) & (s[:, None] <= hi)
    # grid points within 1e-9 of an interval end may round either way
    near = (np.abs(s[:, None] - lo) < 1e-9) | (np.abs(s[:, None] - hi) < 1e-9)
    assert np.array_equal(covered[~near], predicted[~near])


def test_box_scale_scales_the_bounds_about_the_point():
    rng = np.random.default_rng(0)
    train, test = toy(200, rng), toy(50, rng)
    one = POPS(random_state=0).fit(train).predict(test.X, return_members=False)
    three = POPS(random_state=0, box_scale=3.0).fit(train).predict(test.X, return_members=False)
    np.testing.assert_allclose(three.mean, one.mean)
    np.testing.assert_allclose(three.upper - three.mean, 3 * (one.upper - one.mean), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(three.lower - three.mean, 3 * (one.lower - one.mean), rtol=1e-12, atol=1e-14)
    # the ensemble posterior: every member's offset from θ̄ is scaled
    e1 = POPS(posterior="ensemble", box_scale=1.0).fit(train)
    e2 = POPS(posterior="ensemble", box_scale=0.5).fit(train)
    np.testing.assert_allclose(e2.members - e2.theta, 0.5 * (e1.members - e1.theta))
    with pytest.raises(ValueError, match="box_scale"):
        POPS(box_scale=0.0).fit(train)


def test_calibration_reaches_its_target_on_a_misspecified_toy():
    """Calibrated on one sample, the coverage of a fresh sample from the same distribution is the
    target. Tolerance 0.05: with 400 calibration rows the calibrated quantile itself moves by
    ~√(0.9·0.1/400) = 0.015, and the 4000-row test sample by ~0.005; three of those is 0.05."""
    rng = np.random.default_rng(1)
    train, valid, test = toy(300, rng), toy(400, rng), toy(4000, rng)
    pops, report = POPS(random_state=0).calibrate(train, valid, target=0.9)
    assert report.reached and pops.box_scale == report.chosen["scale"]
    assert report.chosen["coverage"]["energy"] >= 0.9
    pred = pops.fit(train).predict(test.X, return_members=False)
    covered = np.mean((pred.lower - 1e-4 <= test.y) & (test.y <= pred.upper + 1e-4))
    assert covered == pytest.approx(0.9, abs=0.05)
    # the published box covers ~everything here, at a width the calibration does not need
    default = POPS(random_state=0).fit(train).predict(test.X, return_members=False)
    assert np.mean(pred.upper - pred.lower) < np.mean(default.upper - default.lower)
    # the chosen candidate is the narrowest (by score) of those that reach the target
    assert report.chosen["score"] == min(r["score"] for r in report.candidates if r.get("reached"))
    assert "(chosen)" in report.to_markdown()


def test_calibration_on_a_held_out_group_split():
    """Groups held out (as in the studies): calibrated on one group, the box covers the target
    fraction of that group's rows exactly, and the calibrated setting is reproducible."""
    rng = np.random.default_rng(2)
    train = toy(300, rng, -1.0, 0.6, "inner")
    valid = toy(200, rng, 0.6, 0.8, "edge")
    pops, _ = POPS(random_state=0).calibrate(train, valid, target=0.95)
    pred = pops.fit(train).predict(valid.X, return_members=False)
    covered = np.mean((pred.lower - 1e-4 <= valid.y) & (valid.y <= pred.upper + 1e-4))
    assert covered >= 0.95
    again, _ = POPS(random_state=0).calibrate(train, valid, target=0.95)
    assert again.get_params() == pops.get_params()


def test_unreachable_target_is_reported_not_hidden():
    """Validation rows the model cannot move (x = 0, y ≠ 0) cap the coverage below the target:
    calibrate warns, names their group, and does not return the widest box."""
    rng = np.random.default_rng(4)
    train = toy(300, rng)
    valid = toy(160, rng)
    stuck = DesignMatrix(X=np.zeros((40, 4)), y=np.full(40, 0.5), w=np.ones(40), kind=np.array(["energy"] * 40),
                         config=np.arange(160, 200), group=np.array(["frozen"] * 40))
    valid = DesignMatrix(X=np.vstack([valid.X, stuck.X]), y=np.r_[valid.y, stuck.y], w=np.ones(200),
                         kind=np.r_[valid.kind, stuck.kind], config=np.r_[valid.config, stuck.config],
                         group=np.r_[valid.group, stuck.group])
    with pytest.warns(RuntimeWarning, match="no candidate reaches coverage 0.95.*frozen 40"):
        _, report = POPS(random_state=0).calibrate(train, valid, target=0.95)
    assert not report.reached
    assert report.chosen["coverage_cap"]["energy"] == pytest.approx(0.8)
    assert report.chosen["coverage"]["energy"] < 0.95
    assert report.chosen["uncoverable_groups"]["energy"] == {"frozen": 40}
    widest = max(r["mean_width"]["energy"] for r in report.candidates if "error" not in r)
    assert report.chosen["mean_width"]["energy"] < widest
    assert "not reached" in report.to_markdown()


def test_calibrate_rejects_bad_input():
    rng = np.random.default_rng(5)
    train, valid = toy(50, rng), toy(50, rng)
    with pytest.raises(ValueError, match="target"):
        POPS().calibrate(train, valid, target=1.5)
    with pytest.raises(ValueError, match="box_scale is what calibrate chooses"):
        POPS().calibrate(train, valid, candidates=[{"box_scale": 2.0}])
    with pytest.raises(ValueError, match="no rows of kinds"):
        POPS().calibrate(train, valid, kinds="force")
    with pytest.raises(ValueError, match="unknown row kinds"):
        POPS().calibrate(train, valid, kinds="forces")


def test_diagnose_finds_the_rows_that_set_each_axis():
    """Oracle: the corrections materialised by pops_corrections, projected on the box axes."""
    rng = np.random.default_rng(6)
    base = toy(200, rng)
    # planted: a small group far out in x with large residuals dominates the box
    far = toy(5, rng, 1.6, 1.8, "far")
    design = DesignMatrix(X=np.vstack([base.X, far.X]), y=np.r_[base.y, far.y], w=np.ones(205),
                          kind=np.r_[base.kind, far.kind], config=np.arange(205), group=np.r_[base.group, far.group])
    pops = POPS(percentile_clipping=0.0, random_state=0)
    diag = pops.diagnose(design)
    ens = pops.fit(design)
    np.testing.assert_allclose(diag.lower, ens.lower)
    np.testing.assert_allclose(diag.upper, ens.upper)
    T, h, _ = pops_corrections(design, ens.theta, ens.metadata["ridge"])
    z = T @ diag.axes
    for r in range(diag.axes.shape[1]):
        assert z[diag.lower_rows[r]["index"], r] == pytest.approx(z[:, r].min(), rel=1e-9, abs=1e-14)
        assert z[diag.upper_rows[r]["index"], r] == pytest.approx(z[:, r].max(), rel=1e-9, abs=1e-14)
        assert diag.upper_rows[r]["leverage"] == pytest.approx(h[diag.upper_rows[r]["index"]])
    x = toy(30, rng).X
    parts = diag.width_contributions(x)
    assert sum(p["share"] for p in parts) == pytest.approx(1.0)
    pred = ens.predict(x, return_members=False)
    assert sum(p["width"] for p in parts) == pytest.approx(np.sum(pred.upper - pred.lower), rel=1e-9)
    assert "far" in diag.summary(x)
    assert "| axis |" in diag.to_markdown(x)


def test_noise_floor_counts_near_misses_and_does_not_divide_by_zero():
    point, lower, upper = np.zeros(3), np.zeros(3), np.zeros(3)  # zero-width rows (symmetry zeros)
    reference = np.array([5e-4, -5e-4, 5e-3])
    e = interval_errors(point, lower, upper, reference, tolerance=1e-3)
    assert e["bracketed"].tolist() == [True, True, False]
    assert np.all(np.isfinite(e["abs_error_over_width"]))
    np.testing.assert_allclose(e["abs_error_over_width"], np.abs(reference) / 2e-3)
    # an exact symmetry zero (error 1e-15) has ratio 1 (floor over floor), not 1e12
    exact = interval_errors(0.0, 0.0, 0.0, 1e-15, tolerance=1e-3)
    assert exact["half_width_over_abs_error"] == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize(point, lower, upper, reference, tolerance=1e-3)
    assert s["coverage"] == pytest.approx(2 / 3)
    assert s["mean_abs_error_over_mean_width"] == pytest.approx(np.mean(np.abs(reference)) / 2e-3)
    assert s["median_abs_error_over_width"] == pytest.approx(0.25)
    # without the floor the same rows are outside and the ratio is infinite
    assert interval_errors(point, lower, upper, reference)["bracketed"].sum() == 0
    with pytest.raises(ValueError, match="tolerance"):
        interval_errors(point, lower, upper, reference, tolerance=-1.0)


def test_a_model_that_reproduces_the_validation_rows_gets_a_zero_box_and_a_warning():
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, 200)
    X = np.vander(x, 4, increasing=True)
    y = X @ np.array([0.3, -1.0, 0.5, 2.0])  # exactly representable: no misspecification
    d = DesignMatrix(X=X, y=y, w=np.ones(200), kind=np.array(["energy"] * 200), config=np.arange(200),
                     group=np.array(["g"] * 200))
    train, valid = d.select(np.arange(200) < 120), d.select(np.arange(200) >= 120)
    with pytest.warns(RuntimeWarning, match="zero width"):
        pops, report = POPS(random_state=0).calibrate(train, valid, target=0.95)
    assert report.reached and pops.box_scale == 1e-12


def test_calibration_on_groups_is_kept_in_the_store(tmp_path, monkeypatch):
    """calibrate_on_groups(store=...): the second call takes the choice from the disk and gives
    the same POPS as POPS.calibrate on the same split (oracle: the direct call); another design
    is calibrated afresh."""
    from uqcalc.coverage import study

    rng = np.random.default_rng(2)
    inner, edge = toy(300, rng, -1.0, 0.6, "inner"), toy(200, rng, 0.6, 0.8, "edge")
    design = DesignMatrix(X=np.vstack([inner.X, edge.X]), y=np.concatenate([inner.y, edge.y]), w=np.ones(500),
                          kind=np.array(["energy"] * 500), config=np.arange(500),
                          group=np.concatenate([inner.group, edge.group]))
    spec = study.BackendSpec("POPS calibrated", POPS(random_state=0), bounds="box", calibrate=0.95)
    first = study.calibrate_on_groups(spec, design, ["edge"], store=tmp_path)
    direct, _ = POPS(random_state=0).calibrate(design.select(design.group == "inner"),
                                              design.select(design.group == "edge"), target=0.95)
    assert first.backend.get_params() == direct.get_params() and first.calibrate is None

    def never(*args, **kwargs):
        raise AssertionError("calibrated again")

    monkeypatch.setattr(study, "calibrate_spec", never)
    again = study.calibrate_on_groups(spec, design, ["edge"], store=tmp_path)
    assert again.backend.get_params() == direct.get_params() and again.chosen == first.chosen
    shifted = DesignMatrix(X=design.X, y=design.y + 0.1, w=design.w, kind=design.kind, config=design.config,
                           group=design.group)
    with pytest.raises(AssertionError, match="calibrated again"):
        study.calibrate_on_groups(spec, shifted, ["edge"], store=tmp_path)
