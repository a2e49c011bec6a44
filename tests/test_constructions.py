"""POPS bound constructions (uqcalc.coverage.constructions) on a cheap grouped design.

The pair-model design of tests/models.py with its configurations put in three groups; the box
construction is checked against an independent oracle (brute force over the corners of the box for
a few rows), the rest against what the constructions are: nested sample ranges inside the box.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from uqcalc.coverage.constructions import CONSTRUCTIONS, _subset, main, parse_student, score_student

from .models import fitted_design


def grouped_split():
    _, design = fitted_design()
    design.group = np.array(["md_bulk", "a", "b"])[design.config % 3]
    held = design.config % 4 == 0
    return design.select(~held), design.select(held)


def test_every_construction_is_scored_and_the_sampled_ranges_nest_inside_the_box():
    d_train, d_held = grouped_split()
    out = score_student(d_train, d_held, seed=0, quick=True, calibration_groups=("md_bulk",))
    assert list(out["constructions"]) == list(CONSTRUCTIONS)
    c = out["constructions"]
    for kind in ("energy", "force"):
        widths = [c[name][kind]["mean_width"] for name in ("members M=100", "members M=500", "corners")]
        # more samples of the same box widen the range; the exact extent contains every sample
        assert widths[0] <= widths[1] <= widths[2] * (1 + 1e-12)
        assert c["members M=100"][kind]["coverage"] <= c["corners"][kind]["coverage"]
    assert out["calibration"]["box_scale"] > 0
    assert out["R"] <= d_train.n_params


def test_exact_bounds_are_the_extreme_corners_of_the_box():
    """Oracle: every one of the 2^R corners evaluated for a few held-out rows."""
    from uqcalc.backends import POPS

    d_train, d_held = grouped_split()
    pops = POPS(random_state=0, n_members=50).fit(d_train)
    R = pops.axes.shape[1]
    assert R <= 12  # 4096 corners at most
    rows = d_held.X[:5]
    pred = pops.predict(rows, bounds="exact", return_members=False)
    corners = np.array([np.where(z, pops.upper, pops.lower) for z in itertools.product([0, 1], repeat=R)])
    values = rows @ (pops.theta[:, None] + pops.axes @ corners.T)
    np.testing.assert_allclose(pred.lower, values.min(axis=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pred.upper, values.max(axis=1), rtol=1e-10, atol=1e-12)
    # and a member subset keeps the box it was drawn from
    sub = _subset(pops, 10)
    assert sub.n_members == 10 and np.array_equal(sub.axes, pops.axes)


def test_student_labels_and_missing_data(tmp_path, capsys):
    assert parse_student("6") == (6, False)
    assert parse_student("q8") == (8, True)
    with pytest.raises(ValueError, match="q2J"):
        parse_student("quad")
    assert main(["--data", str(tmp_path / "absent.extxyz"), "--out", str(tmp_path)]) is None
    assert "not found" in capsys.readouterr().out
