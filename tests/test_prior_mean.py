"""Priors centred on a given vector (``fit(design, prior_mean=θ₀)``) and the leverage gate.

Oracles: the closed-form ridge solution θ₀ + (XᵀWX + rI)⁻¹XᵀW(y − Xθ₀); a parameter no row
constrains must stay at θ₀ (the failure mode of a refit readout far from its data); the
hat-matrix diagonal for the training leverages.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk

from uqcalc.backends import MCMC, POPS, BayesianRidge, Bootstrap
from uqcalc.calculator import UQCalculator
from uqcalc.descriptors import PairBasis
from uqcalc.design import DesignMatrix
from uqcalc.extrapolation import LeverageGate


def _design(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 5))
    X[:, 4] = 0.0  # a parameter the data say nothing about
    theta_true = np.array([1.0, -0.5, 0.2, 0.3, 0.0])
    y = X @ theta_true + 0.05 * rng.normal(size=60) + 0.1 * np.sin(3 * X[:, 0])  # misspecified
    return DesignMatrix(X=X, y=y, config=np.arange(60) // 3)


THETA0 = np.array([0.9, -0.4, 0.25, 0.2, 7.0])


def test_pops_ridge_prior_is_centred_on_prior_mean():
    design = _design()
    ridge = 0.7
    ens = POPS(ridge=ridge).fit(design, prior_mean=THETA0)
    X, y, w = design.X, design.y, design.w
    expected = THETA0 + np.linalg.solve(X.T @ (w[:, None] * X) + ridge * np.eye(5), X.T @ (w * (y - X @ THETA0)))
    np.testing.assert_allclose(ens.theta, expected, rtol=1e-10, atol=1e-12)
    # the unconstrained parameter stays at the prior mean in θ̄, in every member and in the box
    assert ens.theta[4] == pytest.approx(7.0, abs=1e-12)
    assert np.allclose(ens.members[:, 4], 7.0, atol=1e-9)
    assert ens.metadata["prior_mean_digest"]
    plain = POPS(ridge=ridge).fit(design)
    assert plain.theta[4] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "backend",
    [
        BayesianRidge(n_members=50, random_state=1),
        Bootstrap(n_members=30, random_state=2),
        MCMC(n_steps=600, burn_in=200, n_members=100, random_state=3),
    ],
    ids=["bayes", "bootstrap", "mcmc"],
)
def test_every_backend_keeps_unconstrained_parameters_at_the_prior_mean(backend):
    design = _design()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short MCMC chains warn about their ESS
        ens = backend.fit(design, prior_mean=THETA0)
        plain = backend.clone().fit(design)
    # constrained parameters barely move: the data dominate the prior
    np.testing.assert_allclose(ens.theta[:4], plain.theta[:4], atol=0.05)
    # the one the data do not see is at the prior mean (0 for the plain fit); the spread of
    # the members around it is the prior's, i.e. unchanged by the shift
    assert ens.theta[4] == pytest.approx(7.0, abs=0.05 * (1 + np.std(plain.members[:, 4])))
    assert plain.theta[4] == pytest.approx(0.0, abs=0.05 * (1 + np.std(plain.members[:, 4])))
    np.testing.assert_allclose(np.mean(ens.members[:, 4]) - np.mean(plain.members[:, 4]), 7.0, atol=0.5)


def test_prior_mean_with_a_given_point_estimate():
    design = _design()
    theta = THETA0 + 0.01
    ens = POPS(ridge=0.5).fit(design, theta=theta, prior_mean=THETA0)
    np.testing.assert_allclose(ens.theta, theta, atol=1e-12)


def test_prior_mean_shape_is_checked():
    with pytest.raises(ValueError, match="shape"):
        POPS().fit(_design(), prior_mean=np.zeros(3))


def test_leverage_gate_grades_training_rows_and_flags_new_directions():
    design = _design()
    design.kind[:] = "energy"
    gate = LeverageGate.from_design(design, rcond=1e-10)
    X = design.X
    hat = np.diag(X[:, :4] @ np.linalg.inv(X[:, :4].T @ X[:, :4]) @ X[:, :4].T)
    assert gate.h_max == pytest.approx(hat.max(), rel=1e-6)
    n = 1  # rows of this design are not per atom in any sense: grade with n_atoms = 1
    grades = [gate.grade(x, n) for x in X]
    assert max(grades) == pytest.approx(1.0, rel=1e-9)
    inside = X[:10].mean(0)
    assert gate.grade(inside, n) < 1.0
    assert gate.grade(3 * X[np.argmax(grades)], n) == pytest.approx(9.0, rel=1e-6)
    unseen = np.zeros(5)
    unseen[4] = 0.1  # a feature no training row has: enormous leverage, not zero
    assert gate.grade(unseen, n) > 1e3


def test_uq_calculator_reports_and_warns_on_extrapolation():
    from uqcalc.design import DesignMatrix as DM

    desc = PairBasis(n_basis=4)
    rng = np.random.default_rng(5)
    frames = []
    for i in range(12):
        atoms = bulk("W", "bcc", a=3.16, cubic=True) * (2, 2, 2)
        atoms.rattle(0.05, seed=i)
        atoms.info["REF_energy"] = -8.9 * len(atoms) + rng.normal()
        frames.append(atoms)
    design = DM.build(frames, desc)
    ens = BayesianRidge(n_members=20, random_state=0).fit(design)
    gate = LeverageGate.from_design(design)
    calc = UQCalculator(desc, ens, extrapolation=gate)
    near = frames[0].copy()
    near.calc = calc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        near.get_potential_energy()  # a training structure: no warning
    assert calc.get_property("energy_extrapolation", near) <= 1.0 + 1e-9
    squeezed = bulk("W", "bcc", a=2.6, cubic=True) * (2, 2, 2)  # nearest neighbours at 2.25 Å
    squeezed.calc = calc
    with pytest.warns(UserWarning, match="energy_extrapolation"):
        squeezed.get_potential_energy()
    assert calc.results["energy_extrapolation"] > 1.0
    # an ungated calculator does not claim the grade (ASE would raise asking for it)
    assert "energy_extrapolation" in calc.implemented_properties
    assert "energy_extrapolation" not in UQCalculator(desc, ens).implemented_properties
    with pytest.raises(ValueError, match="parameters"):
        UQCalculator(PairBasis(n_basis=5), ens.__class__(np.zeros(5), members=np.zeros((2, 5))), extrapolation=gate)
