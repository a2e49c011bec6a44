"""Training-data I/O, FitSNAP conversion, validation and splits (uqcalc.data)."""

import collections
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.units import GPa, bar

from uqcalc import data

from .conftest import SHARED_DATA


def labelled(n_frames=4, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_frames):
        atoms = bulk("W", "bcc", a=3.18, cubic=True).repeat(2)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.info["REF_energy"] = float(-8.9 * len(atoms) + rng.normal())
        atoms.arrays["REF_forces"] = rng.normal(size=(len(atoms), 3))
        atoms.info["REF_stress"] = rng.normal(scale=1e-3, size=6)
        atoms.info["group"] = "bulk" if i % 2 else "rattled"
        frames.append(atoms)
    return frames


@pytest.mark.parametrize("name", ["set.extxyz", "set.xyz.gz"])
def test_extxyz_round_trip_keeps_ref_labels(tmp_path, name):
    frames = labelled()
    frames[1].calc = None
    path = tmp_path / name
    data.write(path, frames)
    back = data.read(path)
    assert len(back) == len(frames)
    for a, b in zip(frames, back):
        assert b.calc is None  # REF_* keys never become a calculator
        np.testing.assert_array_equal(a.numbers, b.numbers)
        # extxyz writes per-atom columns with 8 decimals (ASE's fixed format)
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-8)
        assert b.info["REF_energy"] == pytest.approx(a.info["REF_energy"], abs=1e-12)
        np.testing.assert_allclose(b.arrays["REF_forces"], a.arrays["REF_forces"], atol=1e-8)
        assert b.info["REF_stress"].shape == (6,)
        np.testing.assert_allclose(b.info["REF_stress"], a.info["REF_stress"], atol=1e-15)
        assert b.info["group"] == a.info["group"]
    assert data.frames_digest(back) == data.frames_digest(data.read(path))


def test_read_missing_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such training file"):
        data.read(tmp_path / "absent.xyz")


def _fitsnap_file(path, atoms, energy, forces, stress, comment=True):
    payload = {
        "Dataset": {
            "Data": [
                {
                    "Positions": atoms.positions.tolist(),
                    "Lattice": np.array(atoms.cell).tolist(),
                    "AtomTypes": atoms.get_chemical_symbols(),
                    "NumAtoms": len(atoms),
                    "Energy": energy,
                    "Forces": forces.tolist(),
                    "Stress": stress.tolist(),
                }
            ],
            "EnergyStyle": "electronvolt",
            "StressStyle": "bar",
        }
    }
    text = json.dumps(payload)
    if comment:
        text = "# written by a test\n" + text
    path.write_text(text)


def test_read_fitsnap_units_sign_and_absent_labels(tmp_path):
    atoms = bulk("W", "bcc", a=3.18, cubic=True)
    raw = np.array([[10.0, 1.0, 2.0], [1.0, 20.0, 3.0], [2.0, 3.0, 30.0]])
    (tmp_path / "EOS").mkdir()
    (tmp_path / "slices").mkdir()
    _fitsnap_file(tmp_path / "EOS" / "a.json", atoms, -17.8, np.zeros((2, 3)), raw)
    forces = np.array([[0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]])
    _fitsnap_file(tmp_path / "slices" / "b.json", atoms, -17.7, forces, np.zeros((3, 3)), comment=False)
    frames = data.read_fitsnap(tmp_path, stress_unit={"EOS": "kbar", "slices": "bar"})
    assert [f.info["group"] for f in frames] == ["EOS", "slices"]
    eos, sl = frames
    assert eos.info["source"] == "a.json"
    assert "REF_forces" not in eos.arrays  # all-zero forces mean "absent" in FitSNAP
    assert "REF_stress" not in sl.info
    np.testing.assert_allclose(sl.arrays["REF_forces"], forces)
    # VASP sign (compression positive) -> ASE sign, kbar -> eV/A^3; Voigt xx yy zz yz xz xy
    expected = -1000 * bar * np.array([10.0, 20.0, 30.0, 3.0, 2.0, 1.0])
    np.testing.assert_allclose(eos.info["REF_stress"], expected, rtol=1e-12)
    # 10 kbar = 1 GPa
    assert -eos.info["REF_stress"][0] / GPa == pytest.approx(1.0)
    with pytest.raises(data.DataError, match="group 'EOS': no stress unit"):
        data.read_fitsnap(tmp_path, stress_unit={"slices": "bar"})


def test_validate_names_the_bad_frame():
    frames = labelled()
    data.validate(frames, species=["W"])

    bad = labelled()
    bad[2].info["REF_energy"] = float("nan")
    with pytest.raises(data.DataError, match=r"frame 2 \(group 'rattled'\).*REF_energy is nan"):
        data.validate(bad)

    bad = labelled()
    bad[1].arrays["REF_forces"][3, 1] = np.inf
    with pytest.raises(data.DataError, match=r"frame 1 .*non-finite REF_forces on atoms \[3\]"):
        data.validate(bad)

    bad = labelled()
    bad[0].info["REF_stress"] = np.zeros(5)
    with pytest.raises(data.DataError, match=r"frame 0 .*REF_stress has shape \(5,\)"):
        data.validate(bad)

    bad = labelled()
    bad[3].pbc = [True, True, False]
    with pytest.raises(data.DataError, match=r"frame 3 .*zero volume or without 3-D periodicity"):
        data.validate(bad)

    bad = labelled()
    bad[3].cell = np.zeros((3, 3))
    with pytest.raises(data.DataError, match="frame 3"):
        data.validate(bad)

    bad = labelled()
    bad[1].symbols[0] = "Be"
    with pytest.raises(data.DataError, match=r"frame 1 .*species \['Be'\] not supported"):
        data.validate(bad, species=["W"])


def test_validate_rejects_wrong_force_shape():
    frames = labelled()
    frames[1].info["REF_forces_bad"] = None
    atoms = Atoms("W2", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[3, 3, 3], pbc=True)
    atoms.info["REF_energy"] = -17.0
    atoms.new_array("REF_forces", np.zeros((2, 2)))
    with pytest.raises(data.DataError, match=r"frame 0: REF_forces has shape \(2, 2\)"):
        data.validate([atoms])


def test_splits():
    frames = labelled(10)
    train, test = data.split_by_group(frames, ["bulk"])
    assert {data.group_of(a) for a in test} == {"bulk"}
    assert len(train) + len(test) == 10
    with pytest.raises(ValueError, match="not found"):
        data.split_by_group(frames, ["bulkk"])

    tr1, te1 = data.random_split(frames, 0.4, seed=3)
    tr2, te2 = data.random_split(frames, 0.4, seed=3)
    assert [id(a) for a in te1] == [id(a) for a in te2]
    assert collections.Counter(data.group_of(a) for a in te1) == {"bulk": 2, "rattled": 2}
    _, te3 = data.random_split(frames, 0.4, seed=4)
    assert [id(a) for a in te1] != [id(a) for a in te3]


@pytest.mark.skipif(not (SHARED_DATA / "tungsten_wood2017.extxyz.gz").exists(), reason="shared DFT data absent")
def test_read_wood_tungsten_set():
    frames = data.read(SHARED_DATA / "tungsten_wood2017.extxyz.gz")
    # figures from shared/data/README.md
    assert len(frames) == 9902
    counts = collections.Counter(data.group_of(a) for a in frames)
    assert counts["gamma_surface"] == 6183 and counts["slice_sample"] == 2000 and counts["vacancy"] == 420
    assert sum(len(a) for a in frames) == 164895
    assert sum("REF_forces" in a.arrays for a in frames) == 7777
    assert sum("REF_stress" in a.info for a in frames) == 2389
    assert all(a.calc is None for a in frames)
    data.validate(frames, species=["W"])
    # slice_sample cells at a = 3.1805 A sit near zero pressure (-0.057 GPa in the README)
    perfect = [a for a in frames if data.group_of(a) == "slice_sample"]
    pressures = [-np.mean(a.info["REF_stress"][:3]) / GPa for a in perfect]
    assert min(abs(p) for p in pressures) < 0.1
    assert len(data.deduplicate(frames)) == 9902 - 235
