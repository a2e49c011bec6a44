"""Smoke + physics checks of the capacity sweep and the DFT study (uqcalc.coverage.capacity, .dft).

Both run in quick mode on tiny settings. Independent physical check: a student with the teacher's
capacity (SNAP 2J=8, the W_2940_2017_2 teacher's own basis and ZBL) reproduces held-out teacher
energies to round-off (< 1 meV/atom), while 2J=2 (6 parameters) cannot (tens of meV/atom).
"""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
MODULES = {"capacity_sweep": "uqcalc.coverage.capacity", "tungsten_dft": "uqcalc.coverage.dft"}


def _load(name: str):
    return importlib.import_module(MODULES[name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_comparison_scripts_wrap_the_package_studies(name):
    done = subprocess.run([sys.executable, str(ROOT / "comparisons" / f"{name}.py"), "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "--seed" in done.stdout, done.stderr


@pytest.fixture(scope="module")
def capacity(tmp_path_factory):
    pytest.importorskip("matplotlib")
    mod = _load("capacity_sweep")
    out = tmp_path_factory.mktemp("capacity_sweep")
    result = mod.main(["--quick", "--twojmax", "2", "8", "--nop-twojmax", "2", "--fractions", "0.5", "1",
                       "--out", str(out)])
    return mod, out, result


def test_capacity_sweep_writes_tables(capacity):
    _, out, result = capacity
    md = out / "capacity_sweep_seed0_quick.md"
    assert md.exists() and "| 2J |" in md.read_text()
    for ext in (".json", ".png", ".svg"):
        assert (out / f"capacity_sweep_seed0_quick{ext}").exists()
    assert [r["twojmax"] for r in result["capacity"]] == [2, 8]
    assert len(result["n_over_p"]) == 2
    for row in result["capacity"]:
        assert set(row["backends"]) == {"POPS", "BayesianRidge ±2σ", "MCMC natural-T ±2σ", "Bootstrap"}
        for name, s in row["backends"].items():
            assert "error" not in s, (row["twojmax"], name, s)
            for kind in ("energy", "force"):
                assert 0.0 <= s[kind]["coverage"] <= 1.0


def test_capacity_well_specified_student_is_exact(capacity):
    _, _, result = capacity
    rmse = {r["twojmax"]: r["lsq_energy_rmse_meV_per_atom"] for r in result["capacity"]}
    assert rmse[8] < 1.0, rmse  # teacher capacity: exact up to round-off
    assert rmse[2] > 20.0, rmse  # 6-parameter student: misspecified
    p = {r["twojmax"]: r["P"] for r in result["capacity"]}
    assert p == {2: 6, 8: 56}


def test_capacity_misspecified_intervals_are_not_all_degenerate(capacity):
    # at 2J=2 the model error is large: every backend must report a finite, non-zero width
    _, _, result = capacity
    row = next(r for r in result["capacity"] if r["twojmax"] == 2)
    for s in row["backends"].values():
        assert math.isfinite(s["energy"]["mean_width"]) and s["energy"]["mean_width"] > 0


def test_tungsten_dft_skips_without_data(tmp_path, capsys):
    mod = _load("tungsten_dft")
    assert mod.main(["--data", str(tmp_path / "absent.extxyz.gz"), "--out", str(tmp_path)]) is None
    assert "skipping" in capsys.readouterr().err  # a logged warning


@pytest.mark.skipif(not (SHARED_DATA / "tungsten_wood2017.extxyz.gz").exists(), reason="shared DFT data absent")
def test_tungsten_dft_quick(tmp_path):
    mod = _load("tungsten_dft")
    result = mod.main(["--quick", "--data", str(SHARED_DATA / "tungsten_wood2017.extxyz.gz"), "--max-train", "6",
                       "--max-heldout", "4", "--out", str(tmp_path)])
    assert result is not None
    md = tmp_path / "tungsten_dft_2j6_seed0_quick.md"
    assert md.exists() and "Configuration level" in md.read_text() and "Property level" in md.read_text()
    fr = result["frames"]
    assert fr["n_after_dedup"] < fr["n_read"]
    assert fr["n_after_bad_frame"] == fr["n_after_dedup"] - 1
    assert not any(g.startswith("BCC_ForceLib_") for g in fr["train_groups"])
    assert set(fr["heldout_groups"]) == set(mod.HELDOUT_GROUPS)
    assert set(result["heldout"]) == {"POPS", "POPS calibrated", "BayesianRidge ±2σ", "MCMC natural-T ±2σ",
                                      "Bootstrap"}
    for h in result["heldout"].values():
        assert "error" not in h, h
    assert "box scale" in result["settings_chosen"]["POPS calibrated"]
    from uqcalc.coverage.dft import GPAW_TABLE, gpaw_references

    names = {r["property"] for r in result["properties"]["records"]}
    gpaw_only = set(gpaw_references(GPAW_TABLE)) - set(mod.PROPERTY_MAP)  # γ(110), E(hcp)−E(bcc), ...
    assert names == set(mod.PROPERTY_MAP) | gpaw_only
    for r in result["properties"]["records"]:
        assert "gpaw" in r or r["property"] not in gpaw_only
    # point estimate of a real-DFT fit: tens of meV/atom at most on held-out defects
    assert result["lsq_rmse"]["heldout_energy"] < 0.1
    assert result["stress_offsets_GPa"] == {}  # no stress rows fitted by default


@pytest.mark.skipif(not (SHARED_DATA / "tungsten_wood2017.extxyz.gz").exists(), reason="shared DFT data absent")
def test_tungsten_dft_fits_stresses_with_an_offset_per_sub_campaign(tmp_path):
    mod = _load("tungsten_dft")
    result = mod.main(["--quick", "--data", str(SHARED_DATA / "tungsten_wood2017.extxyz.gz"), "--max-train", "6",
                       "--max-heldout", "2", "--no-properties", "--stress-weight", "10", "--out", str(tmp_path)])
    offsets = result["stress_offsets_GPa"]
    assert set(offsets) == {"EOS_Data", "Disordered_Struc", "Wood2017"}
    # the data README: EOS_Data carries a −0.4…−0.9 GPa pressure offset, i.e. +0.4…+0.9 GPa in ASE's sign,
    # relative to the Wood-2017 campaign (whose own absolute offset the energies fix)
    assert 0.2 < offsets["EOS_Data"] - offsets["Wood2017"] < 3.0
    assert "Stress offsets per sub-campaign" in (tmp_path / "tungsten_dft_2j6_seed0_quick.md").read_text()


def test_tungsten_dft_literature_references_match_the_suite():
    """Every cited value names a suite property in that property's unit (a typo would silently drop it)."""
    from uqcalc.properties import tungsten_suite

    mod = _load("tungsten_dft")
    props = tungsten_suite(list(mod.LITERATURE), quick=True)
    table = mod.literature_table(props)
    assert set(table) == set(mod.LITERATURE) and all(v["source"] == "literature" for v in table.values())
    props[0].unit = "meV"
    with pytest.raises(ValueError, match="unit"):
        mod.literature_table(props)


@pytest.mark.skipif(not (SHARED_DATA / "tungsten_wood2017.extxyz.gz").exists(), reason="shared DFT data absent")
def test_tungsten_dft_qsnap_student_caches_its_design(tmp_path, monkeypatch):
    """`--quadratic` fits qSNAP (linear bispectrum + pairwise products, the paper's model; 2J = 4 here
    to stay small) and builds each design once: a rerun computes no descriptor rows at all, and
    neither calibrates nor fits a backend again (their held-out scores come back unchanged)."""
    from uqcalc.coverage import study
    from uqcalc.descriptors import SNAP

    mod = _load("tungsten_dft")
    argv = ["--quick", "--quadratic", "--twojmax", "4", "--data", str(SHARED_DATA / "tungsten_wood2017.extxyz.gz"),
            "--max-train", "3", "--max-heldout", "2", "--no-properties", "--pops-members", "40", "--out", str(tmp_path)]
    first = mod.main(argv)
    n = SNAP(twojmax=4).n_params - 1  # bispectrum components of the linear model (plus its constant)
    assert first["P"] == 1 + n + n * (n + 1) // 2 and first["model"] == "qSNAP 2J=4"
    assert "qSNAP 2J=4 student" in (tmp_path / "tungsten_dft_q2j4_seed0_quick.md").read_text()
    assert len(list((tmp_path / "store_q2j4_quick" / "design").glob("design-*.npz"))) == 2  # training, held out
    assert all(step["wall_s"] >= 0 and step["peak_rss_gb"] > 0 for step in first["steps"].values())

    def no_rows(*args, **kwargs):
        raise AssertionError("descriptor rows computed again: the design cache missed")

    def no_fit(*args, **kwargs):
        raise AssertionError("a backend was calibrated or fitted again: the store missed")

    monkeypatch.setattr(SNAP, "rows", no_rows)
    monkeypatch.setattr(SNAP, "rows_batch", no_rows, raising=False)
    monkeypatch.setattr(study.BackendSpec, "fit", no_fit)
    monkeypatch.setattr(study, "calibrate_spec", no_fit)
    second = mod.main(argv)
    assert second["lsq_rmse"] == first["lsq_rmse"]
    assert {k: v["kind"] for k, v in second["heldout"].items()} == {k: v["kind"] for k, v in first["heldout"].items()}
    assert all("error" not in h for h in second["heldout"].values())


def test_gpaw_references_score_beside_the_data_references(tmp_path):
    """Direct GPAW values are read from the table without the entries it marks unconverged, and a
    record says whether its interval contains the GPAW value."""
    import json

    mod = _load("tungsten_dft")
    table = tmp_path / "gpaw.json"
    table.write_text(json.dumps({"_about": "test", "a0": {"value": 3.18}, "C44": {"value": 154.0, "converged": False},
                                 "C11": {"value": 520.0, "converged": True},
                                 "dE_fcc": {"value": 0.486, "uncertainty": 0.04}}))
    gpaw = mod.gpaw_references(table)
    assert gpaw == {"a0": 3.18, "C11": 520.0, "dE_fcc": 0.486}
    assert mod.gpaw_references(tmp_path / "absent.json") == {}
    assert mod.gpaw_uncertainties(table) == {"dE_fcc": 0.04}

    class Result:
        records = [{"property": "a0", "backend": "POPS", "value": 3.17, "reference": 3.1826, "lower": 3.16,
                    "upper": 3.19, "std": 0.01, "bracketed": True, "method": "implicit"},
                   {"property": "dE_fcc", "backend": "POPS", "value": 0.40, "reference": 0.483, "lower": 0.38,
                    "upper": 0.45, "std": 0.02, "bracketed": False, "method": "implicit"},
                   {"property": "C44", "backend": "POPS", "value": 140.0, "reference": 143.0, "lower": None,
                    "upper": None, "std": None, "bracketed": False, "method": "resample", "error": "failed"}]

    recs = {r["property"]: r for r in mod.property_records(Result(), {}, gpaw, mod.gpaw_uncertainties(table))}
    assert recs["a0"]["gpaw_bracketed"] is True and recs["dE_fcc"]["gpaw_bracketed"] is False
    # 0.45 misses 0.486 but meets its ±0.04
    assert recs["dE_fcc"]["gpaw_within_uncertainty"] is True and recs["a0"]["gpaw_within_uncertainty"] is True
    assert "gpaw" not in recs["C44"]
    md = "\n".join(mod.property_tables(list(recs.values())))
    # width: |3.17 − 3.18| / 0.03 and |0.40 − 0.486| / 0.07, mean 0.781
    assert "GPAW-PBE" in md and "| POPS | 2 | 0.50 | 1.00 | 0.781 |" in md
    # the paper's columns: errors of the point estimate and of each bound against the reference
    assert "| dE_fcc | POPS | -0.083 | 0.02 | -0.103 | -0.033 | False |" in md


def test_a_bound_within_the_references_own_uncertainty_is_counted_apart():
    """``bracketed_within_uncertainty``: [L, U] meets [ref − u, ref + u]. Oracle: the intervals by
    hand (a miss by 0.02 eV against ±0.3 meets; a miss by 0.5 does not; no uncertainty is the
    strict test); the summary table gives both coverages."""
    mod = _load("tungsten_dft")

    class Result:
        records = [{"property": "vacancy", "backend": "POPS", "value": 3.3, "reference": 3.56, "lower": 3.1,
                    "upper": 3.54, "std": 0.1, "bracketed": False},
                   {"property": "sia", "backend": "POPS", "value": 9.0, "reference": 9.55, "lower": 8.8,
                    "upper": 9.05, "std": 0.1, "bracketed": False},
                   {"property": "a0", "backend": "POPS", "value": 3.17, "reference": 3.1826, "lower": 3.16,
                    "upper": 3.18, "std": 0.01, "bracketed": False}]

    table = {"vacancy": {"uncertainty": 0.3}, "sia": {"uncertainty": 0.2}, "a0": {}}
    recs = {r["property"]: r for r in mod.property_records(Result(), table)}
    assert recs["vacancy"]["bracketed_within_uncertainty"] is True
    assert recs["sia"]["bracketed_within_uncertainty"] is False  # 9.05 < 9.55 − 0.2
    assert recs["a0"]["bracketed_within_uncertainty"] is False  # no uncertainty: strict
    md = "\n".join(mod.property_tables(list(recs.values())))
    assert "| POPS |  | 3 | 0.00 | 0.33 |" in md


def test_gpaw_only_entries_join_the_study_in_the_cells_gpaw_computed():
    """A GPAW entry is scored only on the property it was computed for (the quick suite's cells):
    γ(110) and the 54-site vacancy join the study; where the study already scores a different
    vacancy (the literature's 128 sites) the 54-site one joins under its own name, and the
    128-site one gets no GPAW value. Oracle: the cell sizes of the properties themselves."""
    import math

    from uqcalc.coverage.dft import LITERATURE, PROPERTY_MAP, gpaw_scored_properties
    from uqcalc.properties import tungsten_suite

    wood = tungsten_suite(["a0", "gamma_100"], quick=True)
    gpaw = {"a0": 3.1828, "gamma_110": 3.2655, "vacancy_formation_energy": 3.3, "not_a_property": 1.0}
    props, scored, unc = gpaw_scored_properties(wood, gpaw, {"vacancy_formation_energy": 0.1})
    assert [p.name for p in props] == ["a0", "gamma_100", "gamma_110", "vacancy_formation_energy"]
    assert props[-1].n_sites == 54 and scored["vacancy_formation_energy"] == 3.3 and "not_a_property" not in scored
    assert unc == {"vacancy_formation_energy": 0.1}

    full = tungsten_suite(list(PROPERTY_MAP), quick=True) + tungsten_suite(list(LITERATURE), quick=False)
    props, scored, unc = gpaw_scored_properties(full, gpaw, {"vacancy_formation_energy": 0.1})
    by_name = {p.name: p for p in props}
    assert by_name["vacancy_formation_energy"].n_sites == 128 and "vacancy_formation_energy" not in scored
    assert by_name["vacancy_formation_energy_54sites"].n_sites == 54
    assert scored["vacancy_formation_energy_54sites"] == 3.3 and unc == {"vacancy_formation_energy_54sites": 0.1}

    # such a property has no data reference: out of the data/literature coverage, in GPAW's and the paper rows
    mod = _load("tungsten_dft")

    class Result:
        records = [{"property": "gamma_110", "backend": "POPS", "value": 3.2, "reference": math.nan, "lower": 3.1,
                    "upper": 3.3, "std": 0.05, "bracketed": False},
                   {"property": "a0", "backend": "POPS", "value": 3.17, "reference": 3.1826, "lower": 3.16,
                    "upper": 3.19, "std": 0.01, "bracketed": True}]

    recs = mod.property_records(Result(), {}, {"gamma_110": 3.2655, "a0": 3.1828})
    md = "\n".join(mod.property_tables(recs))
    assert "| POPS |  | 1 | 1.00 |" in md  # a0 alone in the data coverage
    assert "| POPS | 2 | 1.00 | 1.00 | 0.377 |" in md  # both against GPAW: 0.0655 / 0.2 and 0.0128 / 0.03
    assert "| gamma_110 (GPAW) | POPS | -0.0655 | 0.05 | -0.165 | +0.0345 | True |" in md
