"""Mechanical stability of ensemble members (uqcalc.propagate.stability) against direct relaxations."""

from __future__ import annotations

import numpy as np
import pytest

from uqcalc.calculator import LinearPotential
from uqcalc.ensemble import ParameterEnsemble
from uqcalc.properties.bulk import cubic_elastic_constants
from uqcalc.properties.crystal import relaxed_lattice
from uqcalc.propagate.stability import mechanical_stability

from .models import fitted_model


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
    """A box stretched 30×: some members lose C' or C44 — the direct calculation agrees on the sign."""
    d, ens = model
    wide = ParameterEnsemble(ens.theta, members=ens.theta + 30.0 * (ens.members - ens.theta))
    report = mechanical_stability((d, wide), "W", "bcc")
    assert 0 < report.n_unstable < wide.n_members
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
