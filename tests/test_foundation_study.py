"""The foundation-model coverage study on a small subset of the shared DFT sets (skips without them).

Checks behaviour a user relies on: the split (no held-out group among the training frames; the
calibration groups inside training), the zero-shot offset (a least-squares oracle on the
training energies), the prior-centred refit never fitting worse on training data than the
zero-shot model, and the CLI path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the 'foundation' extra is not installed")
pytest.importorskip("chgnet", reason="the 'foundation' extra is not installed")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
W = DATA / "tungsten_wood2017.extxyz.gz"
TA = DATA / "tantalum_thompson2015.extxyz.gz"
needs_w = pytest.mark.skipif(not W.exists(), reason=f"{W} absent (shared DFT data)")
needs_ta = pytest.mark.skipif(not TA.exists(), reason=f"{TA} absent (shared DFT data)")


@needs_w
def test_w_study_end_to_end_on_a_subset(tmp_path):
    from uqcalc.coverage.foundation import load_split, run_foundation_study

    train, held, heldout, calibration, _ = load_split(W, quick=True, max_per_group=2)
    groups_train = {a.info["group"] for a in train}
    assert not groups_train & set(heldout) and set(calibration) <= groups_train
    r = run_foundation_study(tmp_path, model="chgnet-0.3.0", data=W, quick=True, max_per_group=2)
    assert set(r["heldout"]) >= {"POPS about pretrained", "POPS refit", "POPS refit calibrated", "BayesianRidge ±2σ"}
    for name, v in r["heldout"].items():
        assert 0.0 <= v["all"]["coverage"] <= 1.0, name
        assert set(v["group"]) == set(heldout), name
    rmse = r["rmse_meV_per_atom"]
    # a least-squares refit of all P columns cannot fit the training energies worse than the
    # zero-shot model (which refits only the per-species columns)
    assert rmse["refit (least squares)"]["train"] <= rmse["pretrained + offset"]["train"] + 1e-9
    assert all(Path(p).exists() for p in r["paths"])
    assert "| POPS refit |" in r["markdown"]

    # property level: POPS about the pretrained readout has the downloaded model as its point
    # estimate, so its E(fcc) − E(bcc) is the model's own, relaxed here by ASE with the package's
    # calculator (an independent path: no descriptor rows, no uqcalc relaxation)
    records = {rec["backend"]: rec for rec in r["properties"]["records"] if rec["property"] == "dE_fcc"}
    assert set(records) == set(r["heldout"])
    own = _relaxed_energy_per_atom("fcc") - _relaxed_energy_per_atom("bcc")
    assert records["POPS about pretrained"]["value"] == pytest.approx(own, abs=1e-3)  # float32 model, fmax 1e-3
    for name, rec in records.items():
        assert rec["lower"] <= rec["value"] <= rec["upper"], name
        assert rec["bracketed"] == (rec["lower"] <= rec["reference"] <= rec["upper"]), name
    assert "Property level" in r["markdown"]
    assert {Path(f).name for f in r["properties"]["figures"]} == {
        f"foundation_chgnet-0.3.0_tungsten_wood2017_quick_properties.{ext}" for ext in ("png", "svg")}


def _relaxed_energy_per_atom(structure: str) -> float:
    from ase.build import bulk
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    from uqcalc.descriptors import LastLayer

    atoms = bulk("W", structure, a=3.18 if structure == "bcc" else 4.0)
    atoms.calc = LastLayer.pretrained("chgnet-0.3.0", species=("W",))[0].calculator()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-3, steps=200)
    return atoms.get_potential_energy() / len(atoms)


@needs_ta
def test_zero_shot_offset_is_the_least_squares_per_species_shift(tmp_path):
    from uqcalc.coverage.foundation import zero_shot_theta
    from uqcalc.data import read
    from uqcalc.descriptors import LastLayer
    from uqcalc.design import DesignMatrix

    frames = read(TA)[:12]
    for a in frames:
        a.arrays.pop("REF_forces", None)
        a.info.pop("REF_stress", None)
    desc, theta0 = LastLayer.pretrained("chgnet-0.3.0", species=("Ta",), dtype="float32", forces=False)
    design = DesignMatrix.build(frames, desc)
    theta = zero_shot_theta(design, theta0, 1)
    # oracle: one species, energies per atom: the offset is the mean per-atom residual
    residual = design.y - design.X @ theta0
    assert theta[-1] - theta0[-1] == pytest.approx(np.mean(residual), rel=1e-10, abs=1e-12)
    np.testing.assert_array_equal(theta[:-1], theta0[:-1])


@needs_ta
def test_cli_foundation_rejects_bad_input_by_name(tmp_path, capsys):
    from uqcalc.cli import main

    assert main(["coverage", "foundation", "--model", "mace-x", "--data", str(TA), "--out", str(tmp_path)]) == 2
    assert "--model 'mace-x'" in capsys.readouterr().err
    assert main(["coverage", "foundation", "--data", str(TA), "--holdout", "NoSuchGroup", "--out", str(tmp_path)]) == 2
    assert "NoSuchGroup" in capsys.readouterr().err
    # tungsten_dft's --model names a SNAP student, not a foundation model
    assert main(["coverage", "tungsten_dft", "--model", "chgnet-0.3.0", "--out", str(tmp_path)]) == 2
    assert "tungsten_dft --model 'chgnet-0.3.0': choose one of snap, qsnap" in capsys.readouterr().err
    assert main(["coverage", "capacity_sweep", "--no-properties", "--out", str(tmp_path)]) == 2
    assert "--no-properties applies to tungsten_dft and foundation only" in capsys.readouterr().err
