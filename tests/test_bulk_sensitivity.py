"""Parameter gradients of a0, B and the cubic C_ij (uqcalc.properties.bulk_sensitivity).

Oracles: central finite differences of each property's own ``evaluate`` (relaxed cell, EOS fit,
matscipy's stress–strain regression) along member directions, and members re-evaluated one by
one (``resample``). Models: the teacher-fitted PairBasis of tests/models.py (bcc and fcc W) and
the Ta06A SNAP (a cutoff inside the ±2 % volume scan makes its EOS-fit B differ from the local
curvature by 2 %, the case where a slope of the wrong definition shows).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from uqcalc import LinearPotential
from uqcalc.model import LinearModel
from uqcalc.properties import BulkModulus, ElasticConstant, LatticeConstant, ShearModulus
from uqcalc.propagate import Gradient, build_propagator, propagate

from .models import fitted_model


def bulk_properties(symbol: str, structure: str) -> list:
    m = {"symbol": symbol, "structure": structure}
    return [LatticeConstant(**m), BulkModulus(**m), ElasticConstant(component="C11", **m),
            ElasticConstant(component="C12", **m), ElasticConstant(component="C44", **m),
            ElasticConstant(component="C'", **m), ShearModulus(average="hill", **m)]


def tight(prop, calc):
    """``prop`` at ``calc``'s own a0 relaxed far tighter than the properties' fmax 1e-4, whose
    ~1e-7 Å of noise in a0 moves C12 by ~3e-3 GPa: 1 % of its change over a tenth of a member."""
    a0 = LatticeConstant(symbol=prop.symbol, structure=prop.structure, fmax=1e-8).evaluate(calc)
    return a0 if isinstance(prop, LatticeConstant) else dataclasses.replace(prop, lattice_constant=a0).evaluate(calc)


def finite_difference(prop, descriptor, theta, direction, h):
    up = tight(prop, LinearPotential(descriptor, theta + h * direction))
    down = tight(prop, LinearPotential(descriptor, theta - h * direction))
    return (up - down) / (2 * h)


@pytest.mark.parametrize("structure", ["bcc", "fcc"])
def test_bulk_slopes_match_finite_differences_of_the_properties(structure):
    descriptor, ens = fitted_model()
    theta = ens.theta
    deltas = ens.members[:2] - theta
    # a tenth of a member's deviation: linear to ~1e-4 of the slope there (measured on fcc C')
    h = 0.1
    props = bulk_properties("W", structure)
    if structure == "fcc":
        # fcc relaxations of this model take ~10 s each: a0 and C' (through both C11 and C12)
        props, deltas = [props[0], props[5]], deltas[:1]
    for prop in props:
        value, slopes, info = prop.parameter_gradient(descriptor, theta, deltas)
        assert value == pytest.approx(prop.evaluate(LinearPotential(descriptor, theta)), rel=1e-12)
        fd = np.array([finite_difference(prop, descriptor, theta, d, h) for d in deltas])
        # 1 % of the larger slope: the FD steps of the gradient (0.1 % in a, ±0.1 % strain) and of
        # the oracle are O(h²) apart from the derivative
        np.testing.assert_allclose(slopes, fd, rtol=0, atol=1e-2 * np.abs(fd).max(),
                                   err_msg=f"{structure} {prop.name}")


def test_bulk_modulus_slope_follows_the_eos_fit_not_the_local_curvature():
    from uqcalc.descriptors import SNAP

    snap, theta = SNAP.from_lammps_potential("Ta06A")
    rng = np.random.default_rng(0)
    u = rng.normal(size=theta.size)
    u /= np.linalg.norm(u)
    prop = BulkModulus(symbol="Ta")
    value, slopes, info = prop.parameter_gradient(snap, theta, u[None])
    fd = finite_difference(prop, snap, theta, u, 1e-5)
    # measured: −7370.9 against −7372.5; the local curvature −(a/3) ∂p/∂a would be 2 % off in
    # value (194.0 against 189.8 GPa) and 20 % off in slope
    assert slopes[0] == pytest.approx(fd, rel=2e-3)
    assert info["local"] == pytest.approx(value, rel=1e-9)


def test_hcp_has_no_parameter_gradient():
    prop = LatticeConstant(symbol="Ti", structure="hcp")
    assert not prop.has_parameter_gradient
    assert not Gradient().supports(prop)
    assert Gradient().supports(LatticeConstant(symbol="Ta"))


def test_gradient_propagation_of_bulk_properties_agrees_with_re_evaluated_members():
    from .models import stretched

    descriptor, ens = fitted_model()
    # a twentieth of the Bayesian spread: the second-order term relative to the std grows in
    # proportion to the spread (measured for B's worst member: 7 % at 0.3, 2.4 % at 0.1) and is
    # ~1.2 % here
    small = stretched(ens, 0.05)
    model = LinearModel(descriptor, small)
    for prop in bulk_properties("W", "bcc")[:5]:
        first = propagate(prop, model, "gradient", progress=False, verify_extremes=False)
        assert first.method == "gradient"
        # oracle: every member re-evaluated at its tightly relaxed a0, as a change from θ̄
        centre = tight(prop, LinearPotential(descriptor, small.theta))
        exact = np.array([tight(prop, LinearPotential(descriptor, m)) for m in small.members]) - centre
        np.testing.assert_allclose(first.members - first.value, exact, rtol=0, atol=0.02 * exact.std(),
                                   err_msg=prop.name)


@pytest.mark.parametrize("method", ["gradient", "resample"])
def test_box_corners_of_a_bulk_property_come_from_its_gradient(method):
    from uqcalc.ensemble import ParameterEnsemble

    descriptor, ens = fitted_model()
    deltas = ens.members - ens.theta
    axes = np.linalg.qr(deltas.T)[0][:, :4]
    box = ParameterEnsemble(ens.theta, members=ens.members, axes=axes, lower=-np.ones(4) * 0.5,
                            upper=np.ones(4) * 0.5)
    model = LinearModel(descriptor, box)
    prop = ElasticConstant(component="C44")
    out = build_propagator(method, exact_corners=True)(prop, model, progress=False)
    info = out.diagnostics["box"]
    # no finite differences along the box axes: the slope is the property's gradient
    assert info.get("slope_method", "parameter_gradient") == "parameter_gradient"
    # oracle: the maximising corner found by brute force over all 16 corners of the 4-d box
    corners = np.array(np.meshgrid(*[[-0.5, 0.5]] * 4)).reshape(4, -1).T
    values = [prop.evaluate(LinearPotential(descriptor, ens.theta + axes @ z)) for z in corners]
    assert info["exact_at_corners"][1] == pytest.approx(max(values), rel=1e-9)
    assert info["exact_at_corners"][0] == pytest.approx(min(values), rel=1e-9)
