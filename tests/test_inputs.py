"""Bad and unusual input files: each gives one line naming the file and what is wrong."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from uqcalc import UQCalculator, data
from uqcalc.cli import main
from uqcalc.errors import FileFormatError, InputError


@pytest.mark.parametrize(("name", "fmt"), [("POSCAR", "vasp"), ("ta.cif", "cif"), ("ta.traj", "traj")])
def test_any_format_ase_reads(tmp_path, name, fmt):
    atoms = bulk("Ta", "bcc", a=3.3, cubic=True)
    ase.io.write(tmp_path / name, atoms, format=fmt)
    (back,) = data.read(tmp_path / name)
    assert back.get_chemical_symbols() == ["Ta", "Ta"]
    np.testing.assert_allclose(back.cell[:], atoms.cell[:], atol=1e-6)


def test_corrupt_gzip_names_the_file(tmp_path):
    (tmp_path / "bad.xyz.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match=r"bad\.xyz\.gz: not a valid gzip file"):
        data.read(tmp_path / "bad.xyz.gz")


def test_unknown_format_names_the_file(tmp_path):
    (tmp_path / "frames.qqq").write_text("hello\n")
    with pytest.raises(InputError, match=r"frames\.qqq: ASE does not recognise this file's format"):
        data.read(tmp_path / "frames.qqq")


def test_malformed_extxyz_names_the_file_in_one_line(tmp_path, capsys):
    (tmp_path / "t.xyz").write_text("3\ncomment\nTa 0 0 0\n")
    with pytest.raises(InputError, match=r"t\.xyz: could not be read as extxyz") as err:
        data.read(tmp_path / "t.xyz")
    assert "\n" not in str(err.value)


def test_a_non_model_npz_is_not_a_uqcalc_model(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", a=np.ones(3))
    with pytest.raises(FileFormatError, match=r"x\.npz is not a uqcalc model"):
        UQCalculator.load(tmp_path / "x.npz")
    (tmp_path / "f.xyz").write_text("")
    assert main(["predict", str(tmp_path / "x.npz"), str(tmp_path / "f.xyz"), "--out", str(tmp_path / "o.xyz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a uqcalc model" in err[0]


def _plain_frames(tmp_path):
    from ase.calculators.emt import EMT

    frames = []
    for a in (3.55, 3.6, 3.65):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.rattle(0.05, seed=1)
        atoms.calc = EMT()
        atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        frames.append(atoms)
    ase.io.write(tmp_path / "plain.xyz", frames)  # ASE's usual way: a SinglePointCalculator
    return frames


def test_plain_ase_labels_are_refused_with_the_mapping_or_mapped(tmp_path, capsys):
    from uqcalc.data import DataError
    from uqcalc.descriptors import PairBasis
    from uqcalc.design import DesignMatrix

    original = _plain_frames(tmp_path)
    plain = data.read(tmp_path / "plain.xyz")
    with pytest.raises(DataError, match=r"frame 0.*plain energy/forces.*labels='plain'"):
        DesignMatrix.build(plain, PairBasis(species=["Cu"]), progress=False)
    mapped = data.read(tmp_path / "plain.xyz", labels="plain")
    for atoms, ref in zip(mapped, original):
        assert atoms.calc is None
        assert atoms.info["REF_energy"] == pytest.approx(ref.get_potential_energy())
        np.testing.assert_allclose(atoms.arrays["REF_forces"], ref.get_forces(), atol=1e-8)
        np.testing.assert_allclose(atoms.info["REF_stress"], ref.get_stress(), atol=1e-10)
    assert main(["fit", str(tmp_path / "plain.xyz"), "--out", str(tmp_path / "m.npz"), "--descriptor", "pair"]) == 2
    assert "--labels plain" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "plain.xyz"), "--out", str(tmp_path / "m.npz"), "--descriptor", "pair",
                 "--labels", "plain"]) == 0


def test_underdetermined_design_and_unknown_weight_groups_warn(tmp_path):
    from uqcalc.descriptors import PairBasis
    from uqcalc.design import DesignMatrix

    _plain_frames(tmp_path)
    frames = data.read(tmp_path / "plain.xyz", labels="plain")
    one = [frames[0]]
    for atoms in one:
        del atoms.arrays["REF_forces"], atoms.info["REF_stress"]
    basis = PairBasis(species=["Cu"], n_basis=8)
    with pytest.warns(UserWarning, match=rf"1 rows for {basis.n_params} parameters"):
        DesignMatrix.build(one, basis, progress=False)
    with pytest.warns(UserWarning, match=r"weights name groups that no frame has: \['Liquid'\]"):
        DesignMatrix.build(frames, PairBasis(species=["Cu"]), weights={"groups": {"Liquid": {"energy": 2}}},
                           progress=False)
