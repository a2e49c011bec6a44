"""Coverage metrics (hand-computed), checkpoint/resume, and a tiny end-to-end study on PairBasis."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from uqcalc.coverage import (
    BackendSpec,
    CalculatorReference,
    CoverageResults,
    CoverageStudy,
    TableReference,
    calibration_curve,
    grouped_summary,
    interval_errors,
    miscalibration_area,
    summarize,
)

from uqcalc.properties import Property

from .models import A0, fitted_design, labelled_frames

# -- metrics --------------------------------------------------------------------------------

# three quantities: p, [L, U], r, σ — worked by hand below
P = [1.0, 2.0, 3.0]
L = [0.0, 2.5, 2.0]
U = [2.0, 3.0, 5.0]
R = [1.5, 2.0, 4.0]
S = [0.5, 1.0, 1.0]


def test_interval_errors_by_hand():
    e = interval_errors(P, L, U, R, S)
    np.testing.assert_allclose(e["error"], [-0.5, 0.0, -1.0])
    np.testing.assert_allclose(e["low_error"], [-1.5, 0.5, -2.0])
    np.testing.assert_allclose(e["high_error"], [0.5, 1.0, 1.0])
    assert e["bracketed"].tolist() == [True, False, True]  # 2.5 ≤ 2 fails
    np.testing.assert_allclose(e["width"], [2.0, 0.5, 3.0])
    np.testing.assert_allclose(e["abs_error_over_std"], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(e["abs_error_over_width"], [0.25, 0.0, 1 / 3])
    np.testing.assert_allclose(e["half_width_over_abs_error"], [2.0, np.inf, 1.5])


def test_summarize_by_hand():
    s = summarize(P, L, U, R, S, levels=[0.5, 0.95])
    assert s["n"] == 3
    assert s["coverage"] == pytest.approx(2 / 3)
    assert s["violation_rate"] == pytest.approx(1 / 3)
    assert s["mean_abs_error_over_std"] == pytest.approx(2 / 3)
    assert s["mean_abs_error_over_width"] == pytest.approx((0.25 + 0 + 1 / 3) / 3)
    assert s["median_half_width_over_abs_error"] == pytest.approx(2.0)  # median of {1.5, 2, inf}
    assert s["mean_abs_error"] == pytest.approx(0.5)
    # z(0.5) = 0.674: only |err|/σ = 0 is inside; z(0.95) = 1.96: all three
    np.testing.assert_allclose(s["calibration"]["coverage"], [1 / 3, 1.0])
    assert s["miscalibration_area"] == pytest.approx((abs(1 / 3 - 0.5) + 0.05) / 2)


def test_nan_bounds_count_as_not_bracketed():
    s = summarize([1.0, 1.0], [0.0, np.nan], [2.0, np.nan], [1.0, 1.0])
    assert s["coverage"] == 0.5
    assert "calibration" not in s  # no σ given


def test_calibration_of_gaussian_errors_is_nominal():
    # seeded: 20000 standard-normal errors with σ = 1; tolerance ~4 binomial standard errors
    t = np.abs(np.random.default_rng(0).standard_normal(20000))
    levels, cov = calibration_curve(t)
    np.testing.assert_allclose(cov, levels, atol=0.015)
    assert miscalibration_area(levels, cov) < 0.01


def test_grouped_summary_by_group_and_kind():
    g = grouped_summary(P, L, U, R, S, group=["a", "a", "b"], kind=["energy", "force", "energy"])
    assert g["all"]["coverage"] == pytest.approx(2 / 3)
    assert g["group"]["a"]["coverage"] == 0.5 and g["group"]["b"]["coverage"] == 1.0
    assert g["kind"]["energy"]["n"] == 2 and g["kind"]["force"]["coverage"] == 0.0
    assert set(g["group×kind"]) == {"a|energy", "a|force", "b|energy"}


# -- checkpoint / resume ----------------------------------------------------------------------

CALLS = {"n": 0, "interrupt_on": None, "kill_on": None}


@dataclasses.dataclass
class CountingEnergy(Property):
    """bcc energy per atom at a fixed lattice constant: cheap, no relaxation; counts evaluations."""

    key: str
    a: float
    per: str = "atom"

    def _default_name(self) -> str:
        return self.key

    @property
    def unit(self) -> str:
        return f"eV/{self.per}" if self.per else "eV"

    def evaluate(self, calc) -> float:
        CALLS["n"] += 1
        if CALLS["interrupt_on"] == (self.name, CALLS["n"]):
            raise KeyboardInterrupt
        if CALLS["kill_on"] == (self.name, CALLS["n"]):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a killed job
        atoms = bulk("W", "bcc", a=self.a, cubic=True)
        atoms.calc = calc
        return atoms.get_potential_energy() / len(atoms)


class CountingBackend:
    """Wraps a backend to count fits."""

    fits = 0

    def __init__(self, inner):
        self.inner = inner

    def get_params(self):
        return {"inner": type(self.inner).__name__, **self.inner.get_params()}

    def fit(self, design):
        CountingBackend.fits += 1
        return self.inner.fit(design)


def _study(store, descriptor, design):
    from uqcalc.backends import BayesianRidge, Bootstrap
    from uqcalc.calculator import LinearPotential

    theta = BayesianRidge().fit(design).theta
    # a reference calculator different from the student's point estimate (a stand-in teacher)
    ref = CalculatorReference(lambda: LinearPotential(descriptor, 1.01 * theta), "stand-in")
    props = [CountingEnergy("A", A0), CountingEnergy("B", 1.01 * A0), CountingEnergy("C", 0.99 * A0)]
    backends = [BackendSpec("BR", CountingBackend(BayesianRidge(n_members=4, random_state=0)), bounds="gaussian"),
                BackendSpec("Boot", CountingBackend(Bootstrap(n_members=4, random_state=0)))]
    return CoverageStudy(design, descriptor, backends, props, ref, propagation="resample", store=store,
                         progress=False)


def test_interrupted_study_resumes_without_recomputing(tmp_path):
    descriptor, design = fitted_design()
    per_pair = 4 + 1  # resample evaluates θ̄ and each of the 4 members
    n_refs, n_pairs = 3, 6

    CALLS.update(n=0, interrupt_on=None)
    CountingBackend.fits = 0
    fresh = _study(tmp_path / "fresh", descriptor, design).run()
    assert CALLS["n"] == n_refs + n_pairs * per_pair and CountingBackend.fits == 2

    # interrupted on the 2nd member of (BR, C): references, (BR, A) and (BR, B) are stored
    store = tmp_path / "store"
    CALLS.update(n=0, interrupt_on=("C", n_refs + 2 * per_pair + 2))
    CountingBackend.fits = 0
    with pytest.raises(KeyboardInterrupt):
        _study(store, descriptor, design).run()
    assert CountingBackend.fits == 1
    stored = {p.name: p.read_bytes() for p in (store / "results").glob("*.json")}
    assert sorted(stored) == ["BR__A.json", "BR__B.json"]
    assert not list(store.rglob("*.tmp"))  # atomic writes leave no torn files

    CALLS.update(n=0, interrupt_on=None)
    CountingBackend.fits = 0
    resumed = _study(store, descriptor, design).run()
    assert CALLS["n"] == 4 * per_pair  # (BR, C), (Boot, A/B/C); no reference recomputed
    assert CountingBackend.fits == 1  # BR loaded from the store, Boot fitted
    assert resumed.meta["counts"] == {"fits": 1, "references": 0, "propagations": 4}
    for name, data in stored.items():
        assert (store / "results" / name).read_bytes() == data  # untouched
    for a, b in zip(fresh.records, resumed.records):
        assert (a["backend"], a["property"]) == (b["backend"], b["property"])
        np.testing.assert_allclose([a["value"], a["lower"], a["upper"], a["reference"]],
                                   [b["value"], b["lower"], b["upper"], b["reference"]], rtol=1e-12)

    CALLS.update(n=0)
    CountingBackend.fits = 0
    again = _study(store, descriptor, design).run()
    assert CALLS["n"] == 0 and CountingBackend.fits == 0
    assert again.meta["counts"] == {"fits": 0, "references": 0, "propagations": 0}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_study_resumes_without_recomputing(tmp_path):
    """SIGKILL a study process midway (as a batch scheduler would); the rerun recomputes nothing stored."""
    per_pair, n_refs = 5, 3
    store = tmp_path / "store"
    root = Path(__file__).resolve().parents[1]
    code = (f"import sys; sys.path.insert(0, {str(root)!r})\n"
            "from tests.test_coverage import CALLS, _study\n"
            "from tests.models import fitted_design\n"
            "descriptor, design = fitted_design()\n"
            f"CALLS.update(n=0, kill_on=('C', {n_refs + 2 * per_pair + 2}))\n"
            f"_study({str(store)!r}, descriptor, design).run()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    stored = {p.name: p.read_bytes() for p in (store / "results").glob("*.json")}
    assert sorted(stored) == ["BR__A.json", "BR__B.json"]

    descriptor, design = fitted_design()
    CALLS.update(n=0, interrupt_on=None, kill_on=None)
    CountingBackend.fits = 0
    resumed = _study(store, descriptor, design).run()
    assert CALLS["n"] == 4 * per_pair and CountingBackend.fits == 1
    assert resumed.meta["counts"] == {"fits": 1, "references": 0, "propagations": 4}
    for name, data in stored.items():
        assert (store / "results" / name).read_bytes() == data


def test_changed_property_setting_is_recomputed(tmp_path):
    descriptor, design = fitted_design()
    CALLS.update(n=0, interrupt_on=None)
    study = _study(tmp_path, descriptor, design)
    study.run()
    study = _study(tmp_path, descriptor, design)
    study.properties[0] = CountingEnergy("A", 1.02 * A0)
    CALLS.update(n=0)
    res = study.run()
    assert res.meta["counts"] == {"fits": 0, "references": 1, "propagations": 2}
    assert CALLS["n"] == 1 + 2 * 5


def test_table_reference(tmp_path):
    path = tmp_path / "refs.json"
    path.write_text(json.dumps({"A": {"value": -8.9, "unit": "eV/atom", "citation": "made up"}}))
    ref = TableReference(path)
    assert ref.value(CountingEnergy("A", A0)) == (-8.9, {"source": "made up", "unit": "eV/atom"})
    with pytest.raises(KeyError):
        ref.value(CountingEnergy("B", A0))
    with pytest.raises(ValueError, match="unit"):
        ref.value(CountingEnergy("A", A0, per=""))


# -- end to end --------------------------------------------------------------------------------


def test_tiny_end_to_end_study(tmp_path):
    """PairBasis on teacher-labelled frames, two real properties, teacher references, held-out frames."""
    from uqcalc.backends import POPS, BayesianRidge
    from uqcalc.coverage import teacher_reference
    from uqcalc.descriptors import PairBasis
    from uqcalc.properties import tungsten_suite

    frames = labelled_frames()
    for i, a in enumerate(frames):
        a.info["group"] = "rattled" if i >= len(frames) - 2 else "bulk"
    train, valid = frames[:-2], frames[-2:]
    study = CoverageStudy(
        train, PairBasis(r_cut=5.0, n_basis=8),
        [BackendSpec("POPS", POPS(n_members=50, random_state=0)),
         BackendSpec("POPS box", POPS(n_members=50, random_state=0), bounds="box"),
         BackendSpec("BR", BayesianRidge(n_members=20, random_state=0), bounds="gaussian")],
        tungsten_suite(["E_coh", "a0"], quick=True), teacher_reference(),
        propagation="implicit", store=tmp_path / "store", validation=valid, progress=False, resample_members=5,
    )
    res = study.run()
    methods = {(r["backend"], r["property"]): r["method"] for r in res.records}
    assert methods[("POPS", "E_coh")] == "implicit"
    assert methods[("POPS", "a0")] == "resample"  # no stationary states: recorded fallback
    assert all(r["n_members"] == 5 for r in res.records if r["property"] == "a0")
    e_coh = next(r for r in res.records if r["property"] == "E_coh")
    assert e_coh["reference"] == pytest.approx(11.0283, abs=2e-3)  # the teacher's value
    # box bounds: the member range widened by the property re-evaluated at the two box corners
    # that extremise the first-order term (the corners lie farther out than any sampled member);
    # a0 (resample) gets its corners from finite differences
    stored = [json.loads(p.read_text()) for p in (tmp_path / "store" / "results").glob("*.json")]
    for name, plain in (("E_coh", e_coh), ("a0", next(r for r in res.records if r["property"] == "a0"))):
        boxed = next(r for r in res.records if r["backend"] == "POPS box" and r["property"] == name)
        ensemble = next(r for r in stored if r["backend"] == "POPS box" and r["property"] == name)["ensemble"]
        box = ensemble["diagnostics"]["box"]
        corners = box["exact_at_corners"]
        # E_coh: the cell re-relaxed at each corner agrees with the second-order expansion there
        # (this model's box is small; the expansion's error is third order)
        if name == "E_coh":
            assert corners == pytest.approx(box["implicit_at_corners"], rel=1e-4)
        members = np.asarray(ensemble["members"], dtype=float)
        assert boxed["lower"] == pytest.approx(min(members.min(), *corners), rel=1e-12)
        assert boxed["upper"] == pytest.approx(max(members.max(), *corners), rel=1e-12)
        assert boxed["lower"] <= plain["lower"] and boxed["upper"] >= plain["upper"]
        assert boxed["upper"] - boxed["lower"] > plain["upper"] - plain["lower"]
    # a calibration curve only for the backend whose interval claims a Gaussian probability
    assert "miscalibration_area" in res.summary("BR") and "miscalibration_area" not in res.summary("POPS box")
    assert set(res.heldout) == {"POPS", "POPS box", "BR"} and res.heldout["POPS"]["bounds"] == "exact"
    # every backend's members are checked for Born stability at their own lattice (bcc W here)
    st = res.backends["BR"]["stability"]
    assert st["n_members"] == 20 and st["structure"] == "bcc" and 0 <= st["n_unstable"] <= 20
    assert "mechanically stable" in res.comparison_markdown()
    assert res.heldout["POPS"]["group×kind"]["rattled|force"]["n"] == 2 * 54 * 3
    paths = res.write(tmp_path / "out")
    names = {p.name for p in paths}
    assert {"coverage.md", "coverage.csv", "coverage.json", "coverage_properties.png",
            "coverage_heldout_parity.svg", "coverage_calibration.png"} <= names
    back = CoverageResults.from_json(tmp_path / "out" / "coverage.json")
    assert back.summary("BR")["n"] == 2
    assert "| POPS |" in res.to_markdown()


def test_a_subset_or_an_other_array_design_is_refitted_not_served_the_stored_ensemble(tmp_path):
    """Reproduces two key bugs: a selected subset claimed its parent's identity, and designs
    made from arrays were keyed by the column sums of X only, so either got a stored ensemble
    fitted to other data."""
    from uqcalc.backends import BayesianRidge

    descriptor, design = fitted_design()
    ref = TableReference({})

    def fits(d):
        CountingBackend.fits = 0
        study = CoverageStudy(d, descriptor, [BackendSpec("BR", CountingBackend(BayesianRidge(n_members=2)))], [],
                              ref, store=tmp_path, progress=False)
        study.ensemble(study.backends[0])
        return CountingBackend.fits

    assert fits(design) == 1 and fits(design) == 0  # stored, then reused
    assert fits(design.select(design.config < 10)) == 1
    X, y = design.X, design.y
    from uqcalc.design import DesignMatrix

    assert fits(DesignMatrix(X=X, y=y)) == 1 and fits(DesignMatrix(X=X, y=y)) == 0
    assert fits(DesignMatrix(X=X, y=1.01 * y)) == 1

    # the public key derived results are stored under follows the same identity
    def key(d, n_members=2):
        spec = BackendSpec("BR", BayesianRidge(n_members=n_members))
        return CoverageStudy(d, descriptor, [spec], [], ref, progress=False).ensemble_key(spec)

    assert key(design) == key(design)
    assert len({key(design), key(design.select(design.config < 10)), key(design, n_members=3)}) == 3


def test_store_reuses_on_matching_keys_and_recomputes_otherwise(tmp_path):
    from uqcalc.coverage.store import Store

    store, calls = Store(tmp_path), []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert store.record("r/x.json", "k1", compute) == ({"key": "k1", "value": 1}, False)
    assert store.record("r/x.json", "k1", compute) == ({"key": "k1", "value": 1}, True)
    assert store.record("r/x.json", "k2", compute)[0]["value"] == 2  # another key: recomputed
    (tmp_path / "r" / "x.json").write_text('{"key": "k2", "val')  # a torn file is not trusted
    assert store.record("r/x.json", "k2", compute) == ({"key": "k2", "value": 3}, False)

    def save(obj, path):
        path.write_text(obj)

    def load(path):
        return path.read_text()

    assert store.artifact("a/y.txt", "k", lambda: "fitted", save, load) == ("fitted", False)
    assert store.artifact("a/y.txt", "k", lambda: "refit", save, load) == ("fitted", True)
    (tmp_path / "a" / "y.json").unlink()  # a crash between the file and its key
    assert store.artifact("a/y.txt", "k", lambda: "refit", save, load) == ("refit", False)
    assert Store(None).record("r/x.json", "k1", compute)[1] is False  # no root: always computed


def test_a_reference_that_cannot_relax_leaves_the_property_unscored(tmp_path):
    """A phase unstable for the reference potential (diamond Mo, say) must not end the study."""
    from uqcalc.properties import RelaxationError

    class FailingReference:
        key = "failing"

        def value(self, prop):
            if prop.name == "B":
                raise RelaxationError("B/cell: relaxation (cell) not converged in 2000 steps")
            return 1.0, {"source": "stand-in"}

    descriptor, design = fitted_design()
    CALLS.update(n=0, interrupt_on=None, kill_on=None)
    study = _study(tmp_path, descriptor, design)
    study.reference = FailingReference()
    refs = study.references()
    assert np.isnan(refs["B"]["value"]) and "reference failed: B/cell" in refs["B"]["source"]
    assert refs["A"]["value"] == 1.0
    results = study.run()
    assert {r["property"] for r in results.records} == {"A", "B", "C"}


def test_a_calibrated_pops_backend_in_a_study(tmp_path):
    """BackendSpec(calibrate=target): POPS.calibrate on the study's training and validation
    designs, then fitted on training; the same scale as calling calibrate directly."""
    from uqcalc.backends import POPS
    from uqcalc.coverage import teacher_reference
    from uqcalc.descriptors import PairBasis
    from uqcalc.design import DesignMatrix
    from uqcalc.properties import tungsten_suite

    frames = labelled_frames()
    for i, a in enumerate(frames):
        a.info["group"] = "rattled" if i >= len(frames) - 2 else "bulk"
    train, valid = frames[:-2], frames[-2:]
    descriptor = PairBasis(r_cut=5.0, n_basis=8)
    spec = BackendSpec("POPS calibrated", POPS(n_members=20, random_state=0), bounds="box", calibrate=0.9)
    study = CoverageStudy(train, descriptor, [spec], tungsten_suite(["E_coh"], quick=True), teacher_reference(),
                          store=tmp_path / "store", validation=valid, progress=False)
    res = study.run()
    direct, report = POPS(n_members=20, random_state=0).calibrate(
        DesignMatrix.build(train, descriptor, progress=False), DesignMatrix.build(valid, descriptor, progress=False),
        target=0.9)
    cal = res.backends["POPS calibrated"]["calibration"]
    assert cal["box_scale"] == pytest.approx(direct.box_scale)
    assert cal["settings"] == json.loads(json.dumps(report.chosen["settings"]))  # tuples come back as lists
    assert study.ensemble(spec).metadata["calibration"]["reached"] == report.reached
    text = res.to_markdown()
    assert "rattled (calibration set)" in text and "box scale" in text
    with pytest.raises(ValueError, match="validation="):
        CoverageStudy(train, descriptor, [spec], [], teacher_reference(), progress=False).ensemble(spec)


def test_a_prior_centred_spec_fits_about_its_mean_and_is_stored_under_its_own_key(tmp_path):
    """BackendSpec(prior_mean=θ₀, theta=θ̄): the study's ensemble is ``backend.fit(design,
    prior_mean=θ₀, theta=θ̄)`` (oracle: the backend called directly), and a different θ₀ is a
    different stored ensemble, not the one fitted about zero."""
    from uqcalc.backends import POPS, BayesianRidge

    descriptor, design = fitted_design()
    theta0 = np.linspace(-0.5, 0.5, design.n_params)
    specs = [BackendSpec("BR", BayesianRidge(n_members=3, random_state=0)),
             BackendSpec("BR about θ0", BayesianRidge(n_members=3, random_state=0), prior_mean=theta0),
             BackendSpec("POPS at θ0", POPS(n_members=5, random_state=0), prior_mean=theta0, theta=theta0)]
    study = CoverageStudy(design, descriptor, specs, [], TableReference({}), store=tmp_path / "store", progress=False)
    plain, about, pops = (study.ensemble(s) for s in specs)
    direct = BayesianRidge(n_members=3, random_state=0).fit(design, prior_mean=theta0)
    np.testing.assert_allclose(about.theta, direct.theta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(about.members, direct.members, rtol=1e-12, atol=1e-12)
    assert not np.allclose(about.theta, plain.theta)  # the ridge prior matters on this design
    np.testing.assert_array_equal(pops.theta, theta0)
    assert len({s.key() for s in specs}) == 3
    again = CoverageStudy(design, descriptor, specs[1:2], [], TableReference({}), store=tmp_path / "store",
                          progress=False)
    np.testing.assert_array_equal(again.ensemble(specs[1]).members, about.members)
