"""Tests of LinearPotential, UQCalculator, CommitteeCalculator and save_model.

Oracles: finite differences of each calculator's own energy (forces, stress);
LinearPotential per member (ensemble keys); brute force over the box corners
(exact bounds); the ensemble's rows evaluated by hand (std convention); LAMMPS's
own ``pair_style snap`` for the SNAP point estimate. The test model is a
PairBasis fitted by BayesianRidge to a few frames labelled by the tungsten
teacher, so structures, strains and elastic constants are physical.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from uqcalc import LinearPotential, UQCalculator, save_model
from uqcalc.calculator import (
    POINT_KEYS,
    UNCERTAINTY_KEYS,
    CommitteeCalculator,
    UncertaintyExceeded,
    UncertaintyWarning,
)
from uqcalc.descriptors import Descriptor, PairBasis
from uqcalc.ensemble import ParameterEnsemble

from .models import A0, fitted_design, fitted_model


def box_ensemble(ens: ParameterEnsemble, n_members: int = 64, rank: int = 3) -> ParameterEnsemble:
    """An asymmetric box along the top covariance directions, members drawn inside it.

    Asymmetric on purpose: the member mean is then not theta.
    """
    s, V = np.linalg.eigh(ens.covariance)
    axes, scale = V[:, -rank:], 3 * np.sqrt(s[-rank:])
    box = ParameterEnsemble(ens.theta, axes=axes, lower=-scale, upper=2 * scale)
    return ParameterEnsemble(
        ens.theta, members=box.sample_box(n_members, random_state=1),
        axes=axes, lower=-scale, upper=2 * scale,
    )


@pytest.fixture(scope="module")
def model():
    return fitted_model()


@pytest.fixture(scope="module")
def boxed(model):
    return box_ensemble(model[1])


def rattled(repeat=2, seed=0, shear=True):
    atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(repeat)
    if shear:
        eps = np.array([[0.01, 0.02, 0.0], [0.0, -0.01, 0.015], [0.01, 0.0, 0.005]])
        atoms.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
    atoms.rattle(0.08, seed=seed)
    return atoms


def cluster():
    atoms = rattled(shear=False)
    atoms.center(vacuum=0.0)
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    return atoms


def all_results(calc, atoms):
    """Read every key through ASE's get_property (one at a time, as ASE clients do)."""
    out = {}
    for key in calc.implemented_properties:
        try:
            out[key] = calc.get_property(key, atoms)
        except PropertyNotImplementedError:
            pass
    return out


class CountingDescriptor(Descriptor):
    """Wraps a descriptor and records every ``rows`` call (its ``per_atom`` flag)."""

    def __init__(self, inner: Descriptor):
        self.inner = inner
        self.species = inner.species
        self.calls: list[bool] = []

    @property
    def n_params(self) -> int:
        return self.inner.n_params

    def spec(self) -> dict:
        return self.inner.spec()

    def rows(self, atoms, per_atom=False):
        self.calls.append(bool(per_atom))
        return self.inner.rows(atoms, per_atom=per_atom)


# -- LinearPotential and finite differences ----------------------------------------------


def assert_fd_consistent(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    forces, stress = atoms.get_forces(), atoms.get_stress()
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-5), atol=2e-6)
    np.testing.assert_allclose(stress, calculate_numerical_stress(atoms, eps=1e-6), atol=2e-7)
    np.testing.assert_allclose(atoms.get_potential_energies().sum(), atoms.get_potential_energy(), rtol=1e-12)


def test_point_estimate_and_every_member_match_finite_differences(model):
    descriptor, ens = model
    calc = UQCalculator(descriptor, ens)
    atoms = rattled()
    assert_fd_consistent(calc, atoms)
    members = list(calc.members())
    assert len(members) == ens.n_members
    for member in members:
        assert isinstance(member, LinearPotential)
        assert_fd_consistent(member, atoms)


def test_linear_potential_stress_only_for_3d_periodic(model):
    descriptor, ens = model
    for atoms in (cluster(), rattled()):
        atoms.pbc = [True, True, False] if atoms.cell.rank == 3 else False
        for calc in (LinearPotential(descriptor, ens.theta), UQCalculator(descriptor, ens)):
            atoms.calc = calc
            assert np.isfinite(atoms.get_potential_energy())
            assert atoms.get_forces().shape == (len(atoms), 3)
            with pytest.raises(PropertyNotImplementedError):
                atoms.get_stress()
            if isinstance(calc, UQCalculator):
                with pytest.raises(PropertyNotImplementedError):
                    calc.get_property("stress_std", atoms)
                assert "stress" not in calc.results


def test_linear_potential_rejects_wrong_theta(model):
    with pytest.raises(ValueError, match="theta must have shape"):
        LinearPotential(model[0], np.zeros(3))


# -- ensemble keys -----------------------------------------------------------------------


def test_all_keys_implemented_with_shapes(boxed, model):
    atoms = rattled()
    calc = UQCalculator(model[0], boxed, per_atom=True)
    res = all_results(calc, atoms)
    assert set(res) == set(POINT_KEYS) | set(UNCERTAINTY_KEYS)
    N, M = len(atoms), boxed.n_members
    shapes = {"energy": (), "forces": (N, 3), "stress": (6,), "energies": (N,)}
    for p, shape in shapes.items():
        for key in (p, f"{p}_std", f"{p}_lower", f"{p}_upper"):
            assert np.shape(res[key]) == shape, key
        assert res[f"{p}_ensemble"].shape == (M,) + shape
    assert isinstance(res["energy"], float) and res["free_energy"] == res["energy"]
    # ASE's experimental Properties API sees the standard keys only
    atoms.calc = calc
    props = atoms.get_properties(["energy", "forces", "stress", "energies"])
    assert props["energy"] == res["energy"] and props["energies"].shape == (N,)


def test_ensemble_keys_match_member_potentials(boxed, model):
    atoms = rattled(seed=3)
    calc = UQCalculator(model[0], boxed, bounds="sampled", per_atom=True)
    atoms.calc = calc
    atoms.get_potential_energy()
    res = dict(calc.results)
    for m, member in enumerate(calc.members()):
        a = atoms.copy()
        a.calc = member
        assert a.get_potential_energy() == pytest.approx(res["energy_ensemble"][m], rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(a.get_forces(), res["forces_ensemble"][m], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a.get_stress(), res["stress_ensemble"][m], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(a.get_potential_energies(), res["energies_ensemble"][m], rtol=1e-10, atol=1e-12)
    for p in ("energy", "forces", "stress", "energies"):
        ens = res[f"{p}_ensemble"]
        # sampled bounds are exactly the member extremes
        np.testing.assert_array_equal(res[f"{p}_lower"], ens.min(axis=0))
        np.testing.assert_array_equal(res[f"{p}_upper"], ens.max(axis=0))
        assert np.all(res[f"{p}_lower"] <= ens) and np.all(ens <= res[f"{p}_upper"])


def test_exact_bounds_are_the_box_corners_and_contain_sampled(boxed, model):
    descriptor = model[0]
    atoms = rattled(seed=4)
    exact = all_results(UQCalculator(descriptor, boxed, bounds="exact", per_atom=True), atoms)
    sampled = all_results(UQCalculator(descriptor, boxed, bounds="sampled", per_atom=True), atoms)
    R = boxed.axes.shape[1]
    corners = np.array(np.meshgrid(*[[lo, hi] for lo, hi in zip(boxed.lower, boxed.upper)])).reshape(R, -1).T
    corner_values = {p: [] for p in ("energy", "forces", "stress", "energies")}
    for z in corners:
        a = atoms.copy()
        a.calc = LinearPotential(descriptor, boxed.theta + boxed.axes @ z)
        corner_values["energy"].append(a.get_potential_energy())
        corner_values["forces"].append(a.get_forces())
        corner_values["stress"].append(a.get_stress())
        corner_values["energies"].append(a.get_potential_energies())
    for p, vals in corner_values.items():
        vals = np.array(vals)
        tol = 1e-9 * max(1.0, np.abs(vals).max())
        np.testing.assert_allclose(exact[f"{p}_lower"], vals.min(axis=0), atol=tol)
        np.testing.assert_allclose(exact[f"{p}_upper"], vals.max(axis=0), atol=tol)
        assert np.all(exact[f"{p}_lower"] <= sampled[f"{p}_lower"] + tol)
        assert np.all(sampled[f"{p}_upper"] <= exact[f"{p}_upper"] + tol)
        # same point estimate and members whatever the bounds mode
        np.testing.assert_array_equal(exact[p], sampled[p])
        np.testing.assert_allclose(exact[f"{p}_ensemble"], sampled[f"{p}_ensemble"], rtol=1e-12, atol=tol)


def test_pops_ensemble_bounds_envelope_its_members():
    import uqcalc.backends

    if not hasattr(uqcalc.backends, "POPS"):
        pytest.skip("POPS backend not available")
    descriptor, design = fitted_design()
    ens = uqcalc.backends.POPS(n_members=64, random_state=0).fit(design)
    assert ens.has_box
    atoms = rattled(seed=12)
    exact = all_results(UQCalculator(descriptor, ens, per_atom=True), atoms)
    sampled = all_results(UQCalculator(descriptor, ens, bounds="sampled", per_atom=True), atoms)
    for p in ("energy", "forces", "stress", "energies"):
        members = exact[f"{p}_ensemble"]
        tol = 1e-9 * max(1.0, np.abs(members).max())
        assert np.all(exact[f"{p}_lower"] <= members.min(axis=0) + tol)
        assert np.all(members.max(axis=0) <= exact[f"{p}_upper"] + tol)
        assert np.all(exact[f"{p}_lower"] <= sampled[f"{p}_lower"] + tol)
        assert np.all(sampled[f"{p}_upper"] <= exact[f"{p}_upper"] + tol)
        # the point estimate is θ̄ (least squares), inside the box
        assert np.all(exact[f"{p}_lower"] <= exact[p] + tol) and np.all(exact[p] <= exact[f"{p}_upper"] + tol)


def test_exact_falls_back_to_sampled_without_a_box(model):
    descriptor, ens = model
    calc = UQCalculator(descriptor, ens)  # BayesianRidge: members + covariance, no box
    assert calc.bounds == "exact" and calc.effective_bounds == "sampled"
    no_members = ParameterEnsemble(ens.theta, covariance=ens.covariance)
    calc = UQCalculator(descriptor, no_members)
    assert calc.effective_bounds == "gaussian"
    atoms = rattled()
    atoms.calc = calc
    e = atoms.get_potential_energy()
    assert calc.results["energy_upper"] == pytest.approx(e + 2 * calc.results["energy_std"])
    assert "energy_ensemble" not in calc.results
    with pytest.raises(PropertyNotImplementedError):
        calc.get_property("forces_ensemble", atoms)


def test_invalid_bounds_requests(model):
    descriptor, ens = model
    with pytest.raises(ValueError, match="bounds"):
        UQCalculator(descriptor, ens, bounds="corners")
    with pytest.raises(ValueError, match="members"):
        UQCalculator(descriptor, ParameterEnsemble(ens.theta, covariance=ens.covariance), bounds="sampled")
    with pytest.raises(ValueError, match="no uncertainty"):
        UQCalculator(descriptor, ParameterEnsemble(ens.theta))
    with pytest.raises(ValueError, match="parameters"):
        UQCalculator(PairBasis(n_basis=3), ens)


# -- std convention and point estimate ---------------------------------------------------


def test_std_is_parameter_covariance_when_present(model):
    descriptor, ens = model
    atoms = rattled(seed=5)
    res = all_results(UQCalculator(descriptor, ens, per_atom=True), atoms)
    rows = descriptor.rows(atoms, per_atom=True)
    S = ens.covariance
    assert res["energy_std"] == pytest.approx(np.sqrt(rows.energy @ S @ rows.energy), rel=1e-10)
    f_std = np.sqrt(np.einsum("iap,pq,iaq->ia", rows.forces, S, rows.forces))
    np.testing.assert_allclose(res["forces_std"], f_std, rtol=1e-9, atol=1e-15)
    s_std = np.sqrt(np.einsum("ap,pq,aq->a", rows.stress, S, rows.stress))
    np.testing.assert_allclose(res["stress_std"], s_std, rtol=1e-9, atol=1e-15)
    e_std = np.sqrt(np.einsum("ip,pq,iq->i", rows.per_atom, S, rows.per_atom))
    np.testing.assert_allclose(res["energies_std"], e_std, rtol=1e-9)
    # with a covariance the std is NOT the sample std of the (8) members
    assert res["energy_std"] != pytest.approx(res["energy_ensemble"].std(ddof=1), rel=1e-3)


def test_std_is_member_std_ddof1_without_covariance(model):
    descriptor, ens = model
    members_only = ParameterEnsemble(ens.theta, members=ens.members)
    res = all_results(UQCalculator(descriptor, members_only, per_atom=True), rattled(seed=6))
    for p in ("energy", "forces", "stress", "energies"):
        np.testing.assert_allclose(
            res[f"{p}_std"], res[f"{p}_ensemble"].std(axis=0, ddof=1), rtol=1e-8, atol=1e-14
        )


def test_point_estimate_is_theta_not_member_mean(boxed, model):
    descriptor = model[0]
    atoms = rattled(seed=7)
    res = all_results(UQCalculator(descriptor, boxed), atoms)
    a = atoms.copy()
    a.calc = LinearPotential(descriptor, boxed.theta)
    assert res["energy"] == pytest.approx(a.get_potential_energy(), rel=1e-12)
    a.calc = LinearPotential(descriptor, boxed.members.mean(axis=0))
    # linearity: the mean of the member predictions is the prediction of the mean member ...
    assert res["energy_ensemble"].mean() == pytest.approx(a.get_potential_energy(), rel=1e-12)
    # ... which is not the point estimate: the box is asymmetric about theta
    gap = abs(res["energy_ensemble"].mean() - res["energy"])
    assert gap > 0.1 * res["energy_std"]


def elastic_constants(calc):
    from matscipy.elasticity import fit_elastic_constants

    atoms = bulk("W", "bcc", a=A0, cubic=True)
    atoms.calc = calc
    C, _ = fit_elastic_constants(atoms, symmetry="cubic", N_steps=5, delta=1e-2, verbose=False)
    return C


def test_elastic_constants_linear_in_theta(model):
    from ase.units import GPa

    descriptor, ens = model
    calc = UQCalculator(descriptor, ens)
    C = elastic_constants(calc)
    np.testing.assert_array_equal(C, elastic_constants(LinearPotential(descriptor, ens.theta)))
    C_members = np.array([elastic_constants(m) for m in calc.members()])
    # homogeneous strain, no relaxation: stresses and so the regression slopes are linear in θ
    C_of_mean = elastic_constants(LinearPotential(descriptor, ens.members.mean(axis=0)))
    np.testing.assert_allclose(C_members.mean(axis=0), C_of_mean, atol=1e-6 * GPa)
    spread = C_members.std(axis=0, ddof=1)
    for i, j in [(0, 0), (0, 1), (3, 3)]:
        assert 0 < spread[i, j] < 0.2 * abs(C[i, j])
        assert C_members[:, i, j].min() < C_of_mean[i, j] < C_members[:, i, j].max()
    assert 300 * GPa < C[0, 0] < 700 * GPa  # tungsten-like (teacher C11 ~ 520 GPa)


# -- evaluation count --------------------------------------------------------------------


def test_one_descriptor_evaluation_per_geometry(boxed, model):
    descriptor = CountingDescriptor(model[0])
    calc = UQCalculator(descriptor, boxed)
    atoms = rattled()
    atoms.calc = calc
    atoms.get_potential_energy()
    for key in calc.implemented_properties:
        if not key.startswith("energies"):
            calc.get_property(key, atoms)
    atoms.get_forces(), atoms.get_stress()
    assert descriptor.calls == [False]
    # per-atom energies after a cached energy call: exactly one more evaluation ...
    energies = atoms.get_potential_energies()
    assert descriptor.calls == [False, True]
    for key in calc.implemented_properties:
        calc.get_property(key, atoms)
    assert descriptor.calls == [False, True]  # ... and then none
    assert energies.sum() == pytest.approx(atoms.get_potential_energy(), rel=1e-12)
    # the per-atom pass leaves the other keys as they were
    np.testing.assert_array_equal(calc.results["forces"], atoms.get_forces())
    # new positions: one new evaluation; per_atom=True asks for per-atom rows up front
    atoms.positions[0, 0] += 0.01
    atoms.get_forces()
    assert descriptor.calls == [False, True, False]
    calc2 = UQCalculator(descriptor, boxed, per_atom=True)
    atoms.calc = calc2
    atoms.get_potential_energy(), atoms.get_potential_energies(), calc2.get_property("energies_std", atoms)
    assert descriptor.calls == [False, True, False, True]


def test_linear_potential_counts_evaluations(model):
    descriptor = CountingDescriptor(model[0])
    atoms = rattled()
    atoms.calc = LinearPotential(descriptor, model[1].theta)
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.get_potential_energies(), atoms.get_potential_energies()
    assert descriptor.calls == [False, True]


def test_failed_evaluation_leaves_no_stale_results(model):
    calc = UQCalculator(*model)
    atoms = rattled()
    atoms.calc = calc
    atoms.get_potential_energy()
    atoms.positions[1] = atoms.positions[0]  # overlapping atoms: the descriptor refuses
    with pytest.raises(ValueError, match="overlap"):
        atoms.get_potential_energy()
    with pytest.raises(ValueError, match="overlap"):
        atoms.get_potential_energies()


# -- thresholds --------------------------------------------------------------------------


def test_threshold_off_by_default(model):
    atoms = rattled()
    atoms.calc = UQCalculator(*model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        atoms.get_potential_energy()


def test_threshold_warn_raise_and_callback(model):
    descriptor, ens = model
    atoms = rattled()
    atoms.calc = UQCalculator(descriptor, ens, threshold={"energy_std_per_atom": 1e-6})
    with pytest.warns(UncertaintyWarning, match="energy_std_per_atom"):
        atoms.get_potential_energy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the per-atom pass does not repeat the energy warning
        atoms.get_potential_energies()
    metrics = atoms.calc.uncertainty_metrics()
    assert metrics["energy_std_per_atom"] == pytest.approx(atoms.calc.results["energy_std"] / len(atoms))
    assert metrics["forces_std"] == pytest.approx(atoms.calc.results["forces_std"].max())

    atoms.calc = UQCalculator(descriptor, ens, threshold={"forces_std": 1e-9}, on_exceed="raise")
    with pytest.raises(UncertaintyExceeded, match="forces_std"):
        atoms.get_forces()

    seen = []
    atoms.calc = UQCalculator(
        descriptor, ens, threshold={"energy_range": 1e-9, "forces_std": 1e9},
        on_exceed=lambda calc, a, key, value, limit: seen.append((key, value, limit)),
    )
    atoms.get_potential_energy()
    assert [s[0] for s in seen] == ["energy_range"] and seen[0][1] > 1e-9
    with pytest.raises(ValueError, match="unknown threshold"):
        UQCalculator(descriptor, ens, threshold={"energy_sd": 1.0})
    with pytest.raises(ValueError, match="on_exceed"):
        UQCalculator(descriptor, ens, threshold={"energy_std": 1.0}, on_exceed="ignore")


# -- committee ---------------------------------------------------------------------------


def test_committee_of_member_potentials_matches_sampled_ensemble(model):
    descriptor, ens = model
    members_only = ParameterEnsemble(ens.theta, members=ens.members)
    uq = UQCalculator(descriptor, members_only, bounds="sampled", per_atom=True)
    committee = UQCalculator.from_calculators(list(uq.members()), per_atom=True)
    assert isinstance(committee, CommitteeCalculator)
    atoms = rattled(seed=8)
    a, b = all_results(uq, atoms), all_results(committee, atoms)
    assert set(a) == set(b)
    for p in ("energy", "forces", "stress", "energies"):
        tol = {"rtol": 1e-9, "atol": 1e-12}
        np.testing.assert_allclose(b[f"{p}_ensemble"], a[f"{p}_ensemble"], **tol)
        np.testing.assert_allclose(b[p], a[f"{p}_ensemble"].mean(axis=0), **tol)  # committee mean
        np.testing.assert_allclose(b[f"{p}_std"], a[f"{p}_std"], **tol)  # ddof=1 on both sides
        np.testing.assert_allclose(b[f"{p}_lower"], a[f"{p}_lower"], **tol)
        np.testing.assert_allclose(b[f"{p}_upper"], a[f"{p}_upper"], **tol)


def test_committee_of_arbitrary_calculators(model):
    from uqcalc.datasets.tungsten import teacher

    committee = UQCalculator.from_calculators([teacher(), UQCalculator(*model).point_estimate()])
    for atoms in (rattled(), cluster()):
        atoms.calc = committee
        e = atoms.get_potential_energy()
        res = committee.results
        assert res["energy_lower"] <= e <= res["energy_upper"]
        assert res["energy_ensemble"].shape == (2,)
        assert atoms.get_potential_energies().shape == (len(atoms),)
        assert ("stress" in res) == atoms.pbc.all()
    assert len(list(committee.members())) == 2


# -- persistence -------------------------------------------------------------------------


def test_save_model_round_trip(boxed, model, tmp_path):
    descriptor = model[0]
    path = tmp_path / "model.npz"
    save_model(path, descriptor, boxed, bounds="sampled")
    assert "descriptor" not in boxed.metadata  # the ensemble passed in is untouched
    loaded = UQCalculator.load(path)
    assert loaded.descriptor == descriptor and loaded.bounds == "sampled"
    atoms = rattled(seed=9)
    original = all_results(UQCalculator(descriptor, boxed, bounds="sampled", per_atom=True), atoms)
    loaded.per_atom = True
    again = all_results(loaded, atoms)
    assert set(original) == set(again)
    for key in original:
        np.testing.assert_array_equal(again[key], original[key], err_msg=key)
    assert UQCalculator.load(path, bounds="exact").effective_bounds == "exact"


def test_save_model_checks(model, tmp_path):
    ens = model[1]
    with pytest.raises(ValueError, match="fitted with descriptor"):
        save_model(tmp_path / "m.npz", PairBasis(r_cut=4.5, n_basis=8), ens)
    with pytest.raises(ValueError, match="parameters"):
        save_model(tmp_path / "m.npz", PairBasis(n_basis=3), ens)
    bare = tmp_path / "bare.npz"
    ParameterEnsemble(ens.theta, members=ens.members).save(bare)
    with pytest.raises(ValueError, match="no descriptor spec"):
        UQCalculator.load(bare)


# -- SNAP --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def snap_model():
    from uqcalc.descriptors import SNAP

    snap, theta = SNAP.from_lammps_potential("W_2940_2017_2")
    rng = np.random.default_rng(2)
    members = theta + 1e-3 * np.abs(theta).mean() * rng.standard_normal((5, theta.size))
    return snap, ParameterEnsemble(theta, members=members)


def test_snap_point_estimate_matches_pair_style_snap(snap_model):
    from uqcalc.datasets.tungsten import teacher

    snap, ens = snap_model
    atoms = rattled(seed=10)
    res = all_results(UQCalculator(snap, ens, per_atom=True), atoms)
    ref = teacher()  # LAMMPS pair_style snap + zbl of the same published potential
    atoms.calc = ref
    assert res["energy"] == pytest.approx(atoms.get_potential_energy(), rel=1e-9)
    np.testing.assert_allclose(res["forces"], atoms.get_forces(), atol=1e-8)
    np.testing.assert_allclose(res["stress"], atoms.get_stress(), atol=1e-9)
    np.testing.assert_allclose(res["energies"], atoms.get_potential_energies(), atol=1e-8)


def test_snap_members_fd_and_single_evaluation(snap_model):
    snap, ens = snap_model
    counting = CountingDescriptor(snap)
    calc = UQCalculator(counting, ens)
    atoms = rattled(seed=11)
    all_results(calc, atoms)
    assert counting.calls == [False, True]  # energies* asked last: one per-atom pass
    member = next(calc.members())
    a = atoms.copy()
    a.calc = member
    assert a.get_potential_energy() == pytest.approx(calc.results["energy_ensemble"][0], rel=1e-12)
    np.testing.assert_allclose(a.get_forces(), calculate_numerical_forces(a, eps=1e-5), atol=1e-5)
    np.testing.assert_allclose(a.get_stress(), calculate_numerical_stress(a, eps=1e-6), atol=1e-6)


# -- one cache policy (uqcalc._calcbase) ------------------------------------------------


def test_cache_policy_table():
    from uqcalc._calcbase import plan

    full = ("energy", "forces", "stress")
    cached = {"energy": -1.0, "free_energy": -1.0, "forces": 0, "stress": 0}
    assert plan(["energy"], ["positions"], cached) == full  # new geometry: everything again
    assert plan(["forces_std"], [], {}) == full  # nothing computed (or a failed evaluation)
    assert plan(["energies"], ["cell"], cached) == full + ("energies",)
    assert plan(["energy"], ["positions"], {}, per_atom=True) == full + ("energies",)
    assert plan(["energy"], ["pbc"], {}, stress=False) == ("energy", "forces")
    for key in ("energy", "free_energy", "forces", "stress_upper", "forces_ensemble"):
        assert plan([key], [], cached) == ()  # served from results
    for key in ("energies", "energies_std", "energies_ensemble"):
        assert plan([key], [], cached) == ("energies",)  # only the per-atom block is new
        assert plan([key], [], {**cached, "energies": 0}) == ()


def committee_of(descriptor, thetas, **kwargs):
    return CommitteeCalculator([LinearPotential(descriptor, t) for t in thetas], **kwargs)


KINDS = {
    # name: (calculator on a descriptor, evaluations per calculator evaluation)
    "linear": (lambda d, ens: LinearPotential(d, ens.theta), 1),
    "uq": (lambda d, ens: UQCalculator(d, ens), 1),
    "committee": (lambda d, ens: committee_of(d, ens.members[:3]), 3),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_cache_policy_counts_descriptor_evaluations(model, kind):
    make, factor = KINDS[kind]
    descriptor = CountingDescriptor(model[0])
    calc = make(descriptor, model[1])
    atoms = rattled()
    atoms.calc = calc

    def step(action, expected):
        before = len(descriptor.calls)
        action()
        assert descriptor.calls[before:] == expected * factor, action

    def move():
        atoms.positions[0, 0] += 0.01
        atoms.get_forces()

    def strain():
        atoms.set_cell(atoms.cell * 1.001, scale_atoms=True)
        atoms.get_potential_energies()

    def same_values():
        atoms.positions = atoms.positions.copy()  # a new array with the same geometry
        atoms.get_forces()

    def get_properties():
        atoms.positions[1, 1] -= 0.01
        atoms.get_properties(["energy", "forces"])

    step(atoms.get_potential_energy, [False])
    step(atoms.get_forces, [])
    step(atoms.get_stress, [])
    step(lambda: atoms.get_potential_energy(force_consistent=True), [])
    if kind != "linear":
        step(lambda: [calc.get_property(k, atoms) for k in UNCERTAINTY_KEYS if not k.startswith("energies")], [])
    step(atoms.get_potential_energies, [True])  # one more evaluation, per-atom rows only
    step(atoms.get_potential_energies, [])
    step(atoms.get_forces, [])
    step(move, [False])
    step(strain, [True])  # energies asked first on a new geometry: one evaluation with them
    step(atoms.get_stress, [])
    step(same_values, [])
    step(get_properties, [False])
    step(atoms.get_potential_energy, [])
    twin = atoms.copy()
    twin.calc = calc
    step(twin.get_forces, [])  # another Atoms object with the same geometry
    assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy(), rel=1e-12)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_failed_evaluation_leaves_nothing_for_any_calculator(model, kind):
    calc = KINDS[kind][0](model[0], model[1])
    atoms = rattled()
    atoms.calc = calc
    atoms.get_potential_energies()
    atoms.positions[1] = atoms.positions[0]
    for get in (atoms.get_potential_energy, atoms.get_forces, atoms.get_potential_energies):
        with pytest.raises(ValueError, match="overlap"):
            get()
        assert calc.results == {}


def test_lammps_potential_shares_the_cache_policy():
    from uqcalc.datasets.tungsten import teacher

    calc = teacher()
    runs = []
    evaluate = calc._evaluate
    calc._evaluate = lambda blocks: (runs.append(blocks), evaluate(blocks))
    atoms = rattled()
    atoms.calc = calc
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(), atoms.get_potential_energies()
    assert runs == [("energy", "forces", "stress", "energies")]  # one run 0 gives every key
    atoms.positions[0, 0] += 0.01
    atoms.get_potential_energies(), atoms.get_forces()
    assert len(runs) == 2
    small = cluster()
    small.calc = calc
    small.get_potential_energy()
    assert runs[-1] == ("energy", "forces", "energies")
    with pytest.raises(PropertyNotImplementedError, match="volume"):
        small.get_stress()
    assert len(runs) == 3
    calc.close()


# -- the result assembler: committee of member potentials as an oracle ----------------


def test_committee_and_linear_ensemble_assemble_identical_keys(model):
    descriptor, ens = model
    # theta = member mean and a member-only ensemble: every key of the linear ensemble then
    # has the committee's definition (mean, ddof=1 std, min/max, members)
    members = ens.members
    linear = UQCalculator(descriptor, ParameterEnsemble(members.mean(axis=0), members=members), bounds="sampled")
    committee = committee_of(descriptor, members)
    atoms = rattled(seed=13)
    a, b = all_results(linear, atoms), all_results(committee, atoms)  # energies* last: a per-atom pass
    assert set(a) == set(b) == set(POINT_KEYS) | set(UNCERTAINTY_KEYS)
    for key in a:
        assert type(a[key]) is type(b[key]), key
        assert np.shape(a[key]) == np.shape(b[key]), key
        scale = max(1.0, float(np.abs(b[key]).max()))
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-10 * scale, err_msg=key)
    assert isinstance(a["energy_std"], float) and a["free_energy"] == a["energy"]
    assert a["forces_ensemble"].shape == (len(members), len(atoms), 3)


def test_store_block_and_member_spread():
    from uqcalc._results import member_spread, store_block

    results = {}
    store_block(results, "energy", *member_spread(np.array([1.0, 2.0, 4.0])))
    assert results["energy"] == results["free_energy"] == pytest.approx(7 / 3)
    assert all(isinstance(results[k], float) for k in ("energy", "energy_std", "energy_lower", "energy_upper"))
    assert (results["energy_lower"], results["energy_upper"]) == (1.0, 4.0)
    assert results["energy_std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    store_block(results, "forces", np.zeros((2, 3)))  # a point value alone: no uncertainty keys
    assert "forces_std" not in results and "forces_ensemble" not in results
    one = member_spread(np.ones((1, 2, 3)))
    assert one[1].shape == (2, 3) and np.all(np.isnan(one[1]))


# -- the threshold monitor ---------------------------------------------------------------


def test_threshold_monitor_alone():
    from uqcalc.calculator import ThresholdMonitor

    results = {
        "energy_std": 0.4, "energy_lower": -1.0, "energy_upper": 1.0,
        "forces_std": np.array([[0.1, 0.3, 0.2]]), "energies_std": np.array([np.nan]),
    }  # fmt: skip
    monitor = ThresholdMonitor({"energy_std_per_atom": 0.1, "energy_range": 5.0, "forces_std": 0.25, "energies_std": 0})
    assert monitor.exceeded(results, 2, ["energy", "forces"]) == [("energy_std_per_atom", 0.2, 0.1), ("forces_std", 0.3, 0.25)]
    assert monitor.exceeded(results, 2, ["energies"]) == []  # NaN: no information is no alarm
    assert monitor.exceeded(results, 8, ["energy"]) == []  # 0.4 / 8 atoms
    assert ThresholdMonitor().exceeded(results, 2, ["energy"]) == []
    with pytest.raises(ValueError, match="unknown threshold"):
        ThresholdMonitor({"forces_sd": 1.0})
    with pytest.raises(ValueError, match="on_exceed"):
        ThresholdMonitor({}, on_exceed=print.__name__)


def test_calculators_hold_the_monitor(model):
    from uqcalc.calculator import ThresholdMonitor

    descriptor, ens = model
    calc = UQCalculator(descriptor, ens, threshold={"forces_std": 1e-9}, on_exceed="raise")
    assert isinstance(calc.monitor, ThresholdMonitor)
    assert calc.threshold == {"forces_std": 1e-9} and calc.on_exceed == "raise"
    calc.threshold = {"energies_std": 1e-9}  # validated like the keyword
    calc.on_exceed = "warn"
    with pytest.raises(ValueError, match="unknown threshold"):
        calc.threshold = {"nonsense": 1.0}
    atoms = rattled()
    atoms.calc = calc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        atoms.get_forces()  # no energies yet: nothing to check
    with pytest.warns(UncertaintyWarning, match="energies_std") as record:
        atoms.get_potential_energies()
    assert record[0].filename == __file__  # the warning names the caller's line, not ASE's
    committee = committee_of(descriptor, ens.members, threshold={"energy_range": 1e-9}, on_exceed="raise")
    atoms.calc = committee
    with pytest.raises(UncertaintyExceeded, match="CommitteeCalculator: energy_range"):
        atoms.get_potential_energy()
    assert committee.uncertainty_metrics()["energy_range"] > 1e-9


# -- ASE BaseCalculator integration ---------------------------------------------------------


def test_base_calculator_integration(model, tmp_path):
    import pickle

    from ase.calculators.calculator import BaseCalculator
    from ase.db import connect

    descriptor, ens = model
    calcs = [LinearPotential(descriptor, ens.theta), UQCalculator(descriptor, ens), committee_of(descriptor, ens.members)]
    for calc in calcs:
        assert isinstance(calc, BaseCalculator)
        atoms = rattled()
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        clone = pickle.loads(pickle.dumps(atoms))  # the calculator travels with the Atoms
        assert clone.calc.results.keys() == calc.results.keys()
        assert clone.get_potential_energy() == energy
        clone.positions[0, 0] += 0.02
        assert clone.get_potential_energy() != energy  # and computes anew in the copy
        calc.reset()
        assert calc.results == {} and calc.atoms is None
    linear, uq, _ = calcs
    assert linear.parameters.descriptor == descriptor.spec() == uq.todict()["descriptor"]
    atoms = rattled()
    atoms.calc = linear
    atoms.get_forces()
    with connect(tmp_path / "rows.db") as db:
        uid = db.write(atoms)
    row = connect(tmp_path / "rows.db").get(id=uid)
    assert row.calculator == "linearpotential" and row.calculator_parameters["descriptor"] == descriptor.spec()
    np.testing.assert_array_equal(row.forces, atoms.get_forces())


@pytest.mark.parametrize("kind", ["linear", "uq"])
def test_neb_with_a_shared_calculator(model, kind):
    from ase.mep import NEB
    from ase.optimize import FIRE

    descriptor, ens = model
    make = KINDS[kind][0]
    start = bulk("W", "bcc", a=A0, cubic=True).repeat(2)
    del start[0]
    end = start.copy()
    end.positions[0] = [0.0, 0.0, 0.0]  # a neighbour hops into the vacancy
    images = [start] + [start.copy() for _ in range(3)] + [end]
    for image in images:
        image.calc = LinearPotential(descriptor, ens.theta)
    NEB(images, method="improvedtangent").interpolate()
    separate = [image.copy() for image in images]
    for image in separate:
        image.calc = make(descriptor, ens)
    shared_calc = make(descriptor, ens)
    shared = [image.copy() for image in images]
    for image in shared:
        image.calc = shared_calc
    f_separate = NEB(separate, method="improvedtangent").get_forces()
    neb = NEB(shared, allow_shared_calculator=True, method="improvedtangent")
    np.testing.assert_allclose(neb.get_forces(), f_separate, rtol=1e-12, atol=1e-12)
    FIRE(neb, logfile=None).run(fmax=0.5, steps=5)
    assert np.isfinite(neb.get_forces()).all()
