"""Mechanical stability of ensemble members (uqcalc.propagate.stability) against direct relaxations."""

from __future__ import annotations

import numpy as np
import pytest

from uqcalc.calculator import LinearPotential
from uqcalc.ensemble import ParameterEnsemble
from uqcalc.propagate.stability import mechanical_stability
from uqcalc.properties.bulk import cubic_elastic_constants
from uqcalc.properties.crystal import relaxed_lattice

from .models import fitted_model, stretched_until


@pytest.fixture(scope="module")
def model():
    return fitted_model()


def test_member_lattice_and_elastic_constants_match_direct_relaxation(model):
    """Oracle: each member as its own calculator, cell relaxed by ASE, C_ij by matscipy's
    stress–strain fit. Tolerances: 1e-5 Å (the cell filter's fmax) and 0.1 GPa (the direct
    fit's 5-point regression against the grid spline's O(δ²) difference)."""
    d, ens = model
    report = mechanical_stability((d, ens), "W", "bcc")
    for m in (0, 3):
        calc = LinearPotential(d, ens.members[m])
        a = relaxed_lattice(calc, "W", "bcc")[0]
        c = cubic_elastic_constants(calc, symbol="W", structure="bcc")
        assert report.lattice_constant[m] == pytest.approx(a, abs=1e-5)
        assert report.C11[m] == pytest.approx(c["C11"], abs=0.1)
        assert report.C12[m] == pytest.approx(c["C12"], abs=0.1)
        assert report.C44[m] == pytest.approx(c["C44"], abs=0.1)
    assert report.n_unstable == 0 and report.summary()["n_members"] == ens.n_members


def test_unstable_members_are_flagged_by_criterion(model):
    """A box stretched until some members lose C' or C44 — the direct calculation agrees on the sign."""
    d, ens = model

    def some_shear_unstable(wide):
        r = mechanical_stability((d, wide), "W", "bcc")
        return 0 < r.n_unstable < wide.n_members and r.reasons["C11-C12<=0"] + r.reasons["C44<=0"]

    wide = stretched_until(ens, some_shear_unstable)
    report = mechanical_stability((d, wide), "W", "bcc")
    shear = report.reasons["C11-C12<=0"] + report.reasons["C44<=0"]
    assert shear
    for m in shear[:2]:
        c = cubic_elastic_constants(LinearPotential(d, wide.members[m]), symbol="W", structure="bcc",
                                    lattice_constant=report.lattice_constant[m])
        assert min(c["C11"] - c["C12"], c["C44"]) <= 0.5  # GPa: unstable (or marginal) directly too
    stable = np.flatnonzero(~report.unstable)
    assert np.all(report.C11[stable] - report.C12[stable] > 0) and np.all(report.C44[stable] > 0)
    with pytest.raises(ValueError, match="structure must be one of"):
        mechanical_stability((d, wide), "Mg", "hcp")


def test_stable_box_removes_the_unstable_members_and_keeps_the_rest():
    """Oracle: Born criteria from direct elastic constants of the shrunk box's worst corner, and
    mechanical_stability of the redrawn members at their own lattice."""
    from uqcalc.backends import POPS
    from uqcalc.propagate.stability import stable_box

    from .models import fitted_design

    d, design = fitted_design()
    ens = POPS(random_state=0, n_members=300).fit(design)
    wide = ParameterEnsemble(ens.theta, axes=ens.axes, lower=30 * ens.lower, upper=30 * ens.upper,
                             members=ens.theta + 30 * (ens.members - ens.theta))
    assert mechanical_stability((d, wide), "W").n_unstable > 0
    out, info = stable_box((d, wide), "W", margin=0.1)
    assert info["violated_before"] > 0 and 0 < info["n_shrunk"] <= wide.axes.shape[1]
    t = info["factors"]
    np.testing.assert_allclose(out.lower, t * wide.lower)
    np.testing.assert_allclose(out.upper, t * wide.upper)
    assert mechanical_stability((d, out), "W").n_unstable == 0
    # the corner that minimises C44 at θ̄'s lattice, evaluated directly, keeps ≥ 10 % of θ̄'s C44
    a0 = info["lattice_constant"]
    base = cubic_elastic_constants(LinearPotential(d, out.theta), symbol="W", structure="bcc", lattice_constant=a0)
    step = 1e-3
    grad = np.array([(cubic_elastic_constants(LinearPotential(d, out.theta + step * out.axes[:, r]), symbol="W",
                                              structure="bcc", lattice_constant=a0)["C44"] - base["C44"]) / step
                     for r in range(out.axes.shape[1])])
    corner = np.where(grad > 0, out.lower, out.upper)
    c44 = cubic_elastic_constants(LinearPotential(d, out.theta + out.axes @ corner), symbol="W", structure="bcc",
                                  lattice_constant=a0)["C44"]
    assert c44 >= 0.1 * base["C44"] - 0.5  # GPa: the regression's own error
    # a box that is stable already is returned unchanged
    small = ParameterEnsemble(ens.theta, axes=ens.axes, lower=1e-3 * ens.lower, upper=1e-3 * ens.upper,
                              members=ens.theta + 1e-3 * (ens.members - ens.theta))
    same, info = stable_box((d, small), "W")
    assert info["n_shrunk"] == 0 and np.array_equal(same.lower, small.lower)
