"""Propagators as objects: the registry, the façade's mapping onto them, a new method and a new
saddle-type property that need no change in ``uqcalc.propagate``, and LinearModel."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from ase.build import bulk

from uqcalc import LinearModel, LinearPotential, UQCalculator, propagate
from uqcalc.descriptors.base import Descriptor
from uqcalc.ensemble import ParameterEnsemble
from uqcalc.propagate import (
    METHODS,
    PROPAGATORS,
    Affine,
    BoxCorners,
    HessianSolver,
    Implicit,
    Linear,
    PropagationWarning,
    Propagator,
    PropertyEnsemble,
    Resample,
    VerifyExtremes,
    build_propagator,
)
from uqcalc.propagate.base import require_members, result_metadata
from uqcalc.properties import Property, VacancyFormationEnergy, VacancyMigrationEnergy

from .models import A0, fitted_model


@pytest.fixture(scope="module")
def model():
    return LinearModel(*fitted_model(8))


# -- LinearModel ----------------------------------------------------------------------------


def test_linear_model_views_and_identity(model):
    d, ens = model.descriptor, model.ensemble
    assert LinearModel.of((d, ens)).spec() == model.spec() == LinearModel.of(UQCalculator(d, ens)).spec()
    assert LinearModel.of(model) is model
    atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    for theta in (None, ens.members[3]):
        atoms.calc = model.potential(theta)
        e = atoms.get_potential_energy()
        atoms.calc = LinearPotential(d, ens.theta if theta is None else theta)
        assert e == atoms.get_potential_energy()
    assert isinstance(model.calculator(bounds="sampled"), UQCalculator)
    json.dumps(model.spec())  # workers and stores need it JSON-able
    # the spec changes with any array of the ensemble
    moved = ParameterEnsemble(ens.theta, ens.members + 1e-9, covariance=ens.covariance)
    assert model.with_ensemble(moved).spec() != model.spec()
    sub = model.subsample(3, seed=0)
    assert sub.ensemble.n_members == 3 and model.subsample(None) is model and model.subsample(100) is model
    np.testing.assert_array_equal(sub.theta, ens.theta)


def test_linear_model_rejects_what_does_not_belong_together(model):
    from uqcalc.descriptors import PairBasis

    with pytest.raises(ValueError, match="parameters"):
        LinearModel(PairBasis(n_basis=3), model.ensemble)
    with pytest.raises(TypeError, match="UQCalculator"):
        LinearModel.of(model.potential())


# -- the registry and the façade -------------------------------------------------------------


def test_every_registered_method_is_a_propagator_with_json_params():
    assert METHODS == tuple(PROPAGATORS)
    for name, cls in PROPAGATORS.items():
        p = cls()
        assert isinstance(p, Propagator) and p.name == name
        assert json.loads(json.dumps(p.params()))["class"] == cls.__name__


def test_facade_builds_the_documented_propagators():
    p = build_propagator("implicit", exact_corners=True, member_hessian=False, corner_step=0.2)
    assert isinstance(p, BoxCorners) and p.step == 0.2
    assert isinstance(p.inner, VerifyExtremes) and isinstance(p.inner.inner, Implicit)
    assert p.inner.inner.solver == HessianSolver(member_hessian=False)
    assert isinstance(build_propagator("linear"), Linear)  # no extreme-member check by default
    assert isinstance(build_propagator("resample", max_members=3), Resample)
    # settings reach params(), which stores key on
    assert build_propagator("implicit").params() != build_propagator("implicit", fd_step=2e-3).params()
    with pytest.raises(ValueError, match="refine"):
        build_propagator("linear", refine=True)
    with pytest.raises(ValueError, match="max_members"):
        build_propagator("implicit", max_members=3)
    with pytest.raises(ValueError, match="hessian method"):
        build_propagator("implicit", hessian="sparse")


def test_propagator_objects_and_facade_agree(model):
    prop = VacancyFormationEnergy(size=3, fmax=1e-4, lattice_constant=A0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropagationWarning)
        by_name = propagate(prop, model, "implicit", progress=False, verify_extremes=False)
        by_object = propagate(prop, model, Implicit(), progress=False)
        direct = Implicit()(prop, model, progress=False)
    np.testing.assert_array_equal(by_name.members, by_object.members)
    np.testing.assert_array_equal(direct.members, by_object.members)
    assert by_object.metadata["propagator"]["class"] == "Implicit"
    with pytest.raises(TypeError, match="settings of the propagator"):
        propagate(prop, model, Implicit(), progress=False, fd_step=2e-3)


# -- a new method: one class, nothing else changes -------------------------------------------


class MemberMedian(Propagator):
    """A toy method written outside the package: resample, then report the median member as the
    value (a different point estimate). Exercises the whole extension surface."""

    name = "member-median"

    def __init__(self, *, max_members: int | None = None):
        self.max_members = max_members

    def supports(self, prop) -> bool:
        return True

    def __call__(self, prop, model, executor=None, *, progress=True) -> PropertyEnsemble:
        require_members(model)
        out = Resample(max_members=self.max_members)(prop, model, executor, progress=progress)
        return PropertyEnsemble(name=prop.name, unit=prop.unit, method=self.name,
                                value=float(np.nanmedian(out.members)), members=out.members,
                                metadata=result_metadata(prop, model, self))


def test_a_new_method_runs_through_propagate_and_a_study(model, tmp_path):
    from uqcalc.coverage import BackendSpec, CalculatorReference, CoverageStudy

    prop = VacancyFormationEnergy(size=3, fmax=1e-3, lattice_constant=A0)
    out = propagate(prop, model, MemberMedian(max_members=4), progress=False)
    assert out.method == "member-median" and out.n_members == 4
    assert out.value == pytest.approx(np.median(out.members))

    calls = []

    class CountingReference(CalculatorReference):
        def value(self, p):
            calls.append(p.name)
            return super().value(p)

    def study(max_members):
        return CoverageStudy(
            _design(), model.descriptor, [BackendSpec("given", _Given(model.ensemble))], [prop],
            CountingReference(model.potential, "θ̄"), propagation=[MemberMedian(max_members=max_members)],
            fallback=None, store=tmp_path, progress=False)

    first = study(3).run().records[0]
    assert first["method"] == "member-median" and first["n_members"] == 3
    again = study(3)
    again.run()
    assert again.counts["propagations"] == 0  # same propagator settings: stored result reused
    changed = study(4)
    assert changed.run().records[0]["n_members"] == 4 and changed.counts["propagations"] == 1
    assert calls == [prop.name]  # the reference did not depend on the propagator


def test_a_study_uses_the_first_propagator_that_supports_the_property(model, tmp_path):
    from uqcalc.coverage import BackendSpec, CoverageStudy, TableReference

    props = [VacancyFormationEnergy(size=3, fmax=1e-3, lattice_constant=A0), _FixedEnergy()]
    ref = TableReference({p.name: {"value": 0.0, "unit": p.unit} for p in props})
    study = CoverageStudy(_design(), model.descriptor, [BackendSpec("given", _Given(model.ensemble))], props, ref,
                          propagation=[Affine(), Linear()], fallback=None, store=None, progress=False)
    methods = {r["property"]: r["method"] for r in study.run().records}
    assert methods == {"vacancy_formation_energy": "linear", "fixed_energy": "affine"}
    nothing = CoverageStudy(_design(), model.descriptor, [BackendSpec("given", _Given(model.ensemble))],
                            [VacancyFormationEnergy(size=3, lattice_constant=A0)], ref, propagation=[Affine()], fallback=None,
                            progress=False)
    (rec,) = nothing.run().records
    assert rec["method"] == "failed" and rec["notes"] == ["no propagator supports 'vacancy_formation_energy'"]


@dataclasses.dataclass
class _FixedEnergy(Property):
    """Energy of a fixed rattled cell: affine in θ."""

    affine_in_theta = True
    unit = "eV"

    def _default_name(self) -> str:
        return "fixed_energy"

    def evaluate(self, calc):
        atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=2)
        atoms.calc = calc
        return atoms.get_potential_energy()


class _Given:
    """A 'backend' that returns a given ensemble (the study needs something to fit)."""

    def __init__(self, ensemble):
        self.ensemble = ensemble

    def get_params(self):
        return {"ensemble": "fitted_model(8)"}

    def fit(self, design):
        return self.ensemble


def _design():
    from uqcalc.design import DesignMatrix

    return DesignMatrix(X=np.eye(3), y=np.zeros(3))


# -- a saddle-type property: no change in propagate --------------------------------------------


def test_a_searched_saddle_state_needs_no_special_case(model):
    """The NEB barrier's top is a ``kind="saddle"`` state found by the property's own search:
    implicit expands it like any state (no flag or mode in propagate knows about NEB) and agrees
    with re-running the NEB for every member. The curvature check tells the truth about it: for
    this pair model the climbing image sits on a shallow local minimum between two humps (a
    split vacancy; lowest eigenvalue ≈ +0.03 eV/Å²), not on a first-order saddle."""
    prop = VacancyMigrationEnergy(size=3, n_images=3, neb_fmax=1e-3, lattice_constant=A0)
    small = model.subsample(4, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropagationWarning)  # the flags are checked below
        imp = propagate(prop, small, "implicit", progress=False, verify_extremes=False)
    assert any("is a saddle but its Hessian has 0 negative eigenvalues" in f for f in imp.flags)
    saddle = imp.diagnostics["states"][0]
    assert saddle["kind"] == "saddle" and saddle["relax"] == "positions" and saddle["lowest_eigenvalue"] > 0
    ref = propagate(prop, small, "resample", progress=False)
    # NEB converged to 1e-3 eV/Å: the members' barriers agree to a small fraction of their spread
    assert np.abs(imp.members - ref.members).max() < 0.01 * ref.std, (imp.members, ref.members)
    assert imp.value == pytest.approx(ref.value, abs=1e-5)


# -- descriptors without force and stress rows (a foundation model's last layer, say) --------


class _EnergyRowsOnly(Descriptor):
    """The pair model with its force and stress rows withheld, as ``LastLayer(derivatives=False)``
    does: the rows are zero placeholders and the reference part holds the forces and stress at
    a fixed θ (``with_reference_theta``)."""

    def __init__(self, inner, theta):
        self.inner, self.theta, self.species = inner, np.asarray(theta, dtype=float), inner.species

    @property
    def n_params(self) -> int:
        return self.inner.n_params

    def spec(self) -> dict:
        return {"type": "energy-rows-only", "inner": self.inner.spec(), "theta": self.theta.tolist()}

    def with_reference_theta(self, theta):
        return _EnergyRowsOnly(self.inner, theta)

    def rows(self, atoms, per_atom=False):
        r = self.inner.rows(atoms, per_atom)
        return dataclasses.replace(
            r, forces=np.zeros_like(r.forces), stress=None if r.stress is None else np.zeros_like(r.stress),
            ref_forces=r.forces @ self.theta + r.ref_forces,
            ref_stress=None if r.stress is None else r.stress @ self.theta + r.ref_stress, kinds=("energy",))


def test_energies_of_states_need_no_force_rows_and_responses_refuse_placeholders():
    """First-order state energies (envelope theorem) are the same with or without force rows;
    anything built from dq*/dθ (a relaxation volume, elastic constants) must not read zero
    placeholder rows as "θ moves nothing" — before the check it returned a std of exactly 0."""
    from uqcalc.properties import VacancyRelaxationVolume
    from uqcalc.propagate.stability import mechanical_stability

    descriptor, ens = fitted_model(8)
    energy_only = _EnergyRowsOnly(descriptor, ens.theta)
    prop = VacancyFormationEnergy(size=3, fmax=1e-4, lattice_constant=A0)
    full = propagate(prop, (descriptor, ens), "linear", progress=False)
    partial = propagate(prop, (energy_only, ens), "linear", progress=False)
    assert np.ptp(full.members) > 1e-4  # the members differ: a comparison that can fail
    np.testing.assert_allclose(partial.members, full.members, rtol=0, atol=1e-6 * np.ptp(full.members))
    with pytest.raises(ValueError, match="force rows"):
        propagate(VacancyRelaxationVolume(size=3, fmax=1e-4, lattice_constant=A0), (energy_only, ens), "linear",
                  progress=False)
    with pytest.raises(ValueError, match="stress rows"):
        mechanical_stability((energy_only, ens), "W", n_grid=5)


# -- a property that differentiates itself: Gradient -----------------------------------------


@dataclasses.dataclass
class RattledCellEnergy(Property):
    """Energy of one fixed rattled cell, with its exact parameter gradient (descriptor energy row);
    ``offset`` shifts the value reported with the gradient, as a bisection's rounding would."""

    offset: float = 0.0
    resolution: float = 0.0

    unit = "eV"

    def _atoms(self):
        atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=3)
        return atoms

    def evaluate(self, calc):
        atoms = self._atoms()
        atoms.calc = calc
        return atoms.get_potential_energy()

    def parameter_gradient(self, descriptor, theta, directions, executor=None, progress=False):
        rows = descriptor.rows(self._atoms())
        value = float(rows.energy @ theta + rows.ref_energy) + self.offset
        return value, directions @ rows.energy, {"resolution": self.resolution}


def test_gradient_propagates_members_and_hands_its_slope_to_the_box_corners():
    from uqcalc.backends import POPS
    from uqcalc.propagate import Gradient

    from .models import fitted_design

    descriptor, design = fitted_design()
    ens = POPS(n_members=50, random_state=0).fit(design)
    prop = RattledCellEnergy()
    p = build_propagator("gradient", exact_corners=True)
    assert isinstance(p, BoxCorners) and isinstance(p.inner, VerifyExtremes) and isinstance(p.inner.inner, Gradient)
    assert not Gradient().supports(VacancyFormationEnergy())
    out = p(prop, LinearModel(descriptor, ens), progress=False)
    exact = [prop.evaluate(LinearPotential(descriptor, m)) for m in ens.members]
    np.testing.assert_allclose(out.members, exact, rtol=1e-10)
    box = out.diagnostics["box"]
    assert "slope_info" not in box  # the property's own slope, not 2R+1 finite differences
    # affine: the exact corners are the first-order ones, and no member is flagged
    np.testing.assert_allclose(box["exact_at_corners"], box["linear_at_corners"], rtol=1e-10)
    assert not out.flags


def test_extreme_members_are_held_to_the_resolution_the_property_reports():
    from .models import fitted_design

    descriptor, design = fitted_design()
    from uqcalc.backends import BayesianRidge

    model = LinearModel(descriptor, BayesianRidge(n_members=20, random_state=0).fit(design))
    spread = np.ptp(propagate(RattledCellEnergy(), model, "gradient", progress=False).members)
    offset = 0.5 * spread  # far above the 5 %-of-std tolerance
    flagged = propagate(RattledCellEnergy(offset=offset), model, "gradient", progress=False)
    assert any("extreme member" in f for f in flagged.flags)
    within = propagate(RattledCellEnergy(offset=offset, resolution=2 * offset), model, "gradient", progress=False)
    assert not within.flags


@dataclasses.dataclass
class SteppedCellEnergy(RattledCellEnergy):
    """The same energy rounded to 10 meV: piecewise constant in θ, as a bisected load is."""

    smooth_in_theta = False

    def evaluate(self, calc):
        return round(super().evaluate(calc), 2)


def test_box_corners_are_not_located_by_differences_of_a_stepped_property():
    from uqcalc.backends import POPS

    from .models import fitted_design

    descriptor, design = fitted_design()
    model = LinearModel(descriptor, POPS(n_members=10, random_state=0).fit(design))
    out = build_propagator("resample", exact_corners=True)(SteppedCellEnergy(), model, progress=False)
    assert "skipped" in out.diagnostics["box"] and "exact_at_corners" not in out.diagnostics["box"]
    # a slope the propagator provides is still used
    out = build_propagator("gradient", exact_corners=True)(SteppedCellEnergy(), model, progress=False)
    assert len(out.diagnostics["box"]["exact_at_corners"]) == 2


def test_box_corners_refuse_a_finite_difference_slope_beyond_their_budget():
    """2R + 1 property evaluations for the slope: a qSNAP box (R ≈ 1600) would spend thousands of
    relaxations on it, so above the budget the corners are skipped, flagged, and nothing is evaluated."""
    from uqcalc.backends import POPS

    from .models import fitted_design

    descriptor, design = fitted_design()
    model = LinearModel(descriptor, POPS(n_members=10, random_state=0).fit(design))
    R = model.ensemble.axes.shape[1]
    calls = []

    @dataclasses.dataclass
    class Counted(RattledCellEnergy):
        parameter_gradient = None  # no gradient of its own: the slope needs finite differences

        def evaluate(self, calc):
            calls.append(1)
            return super().evaluate(calc)

    out = BoxCorners(Resample(), max_slope_evaluations=2 * R)(Counted(), model, progress=False)
    assert len(calls) == model.ensemble.n_members + 1  # θ̄ and the members only
    assert f"{2 * R + 1} evaluations" in out.diagnostics["box"]["skipped"]
    assert any("box corners skipped" in f for f in out.flags)
    calls.clear()
    out = BoxCorners(Resample(), max_slope_evaluations=2 * R + 1)(Counted(), model, progress=False)
    assert len(calls) == model.ensemble.n_members + 1 + 2 * R + 1 + 2  # + the slope and the two corners
    assert len(out.diagnostics["box"]["exact_at_corners"]) == 2


def test_box_corners_of_a_resampled_defect_take_the_first_order_state_slope(model):
    """A defect that fell back to resampling (an implicit expansion contradicted by re-relaxation)
    still gets its box corners without 2R + 1 evaluations: the slope is the envelope theorem at θ̄.
    Oracles: central differences of the re-relaxed property along each box axis (fmax 1e-6: the
    relaxation noise, ~fmax²/k per atom, must stay far below the change over a tenth of the box),
    and the extreme corners found by brute force over all 16 corners of a 4-d box."""
    from uqcalc.propagate.corners import finite_difference_slope

    ens = model.ensemble
    axes = np.linalg.qr((ens.members - ens.theta).T)[0][:, :4]
    box = LinearModel(model.descriptor, ParameterEnsemble(ens.theta, members=ens.members, axes=axes,
                                                          lower=-np.full(4, 0.5), upper=np.full(4, 0.5)))
    prop = VacancyFormationEnergy(size=3, fmax=1e-6, lattice_constant=A0)
    calls = []

    @dataclasses.dataclass
    class Counted(VacancyFormationEnergy):
        def evaluate(self, calc):
            calls.append(1)
            return super().evaluate(calc)

    counted = Counted(size=3, fmax=1e-6, lattice_constant=A0)
    out = BoxCorners(Resample(), max_slope_evaluations=0)(counted, box, progress=False)
    info = out.diagnostics["box"]
    assert info["slope_method"] == "first-order implicit at θ̄" and "skipped" not in info
    assert len(calls) == ens.n_members + 1 + 2  # θ̄, the members and the two corners: no differences
    fd, _ = finite_difference_slope(prop, box, step=0.1)
    np.testing.assert_allclose(info["slope"], fd, rtol=0.02, atol=1e-3 * np.abs(fd).max())
    corners = np.array(np.meshgrid(*[[-0.5, 0.5]] * 4)).reshape(4, -1).T
    values = [prop.evaluate(LinearPotential(model.descriptor, ens.theta + axes @ z)) for z in corners]
    assert info["exact_at_corners"][0] == pytest.approx(min(values), rel=1e-9)
    assert info["exact_at_corners"][1] == pytest.approx(max(values), rel=1e-9)
    # the old route stays available
    old = BoxCorners(Resample(), state_slope=False)(prop, box, progress=False)
    assert old.diagnostics["box"]["slope_method"] == "central differences"
