"""Tests of the LAMMPS SNAP descriptor against independent oracles.

Oracles: LAMMPS's own ``pair_style snap`` (read from the potential's include
file by LAMMPS itself) for energy, forces, stress and per-atom energies of
published potentials (linear W+ZBL, two-element W-Be+ZBL, quadratic Mo);
central finite differences of the energy rows for force and stress rows; ASE's
numerical stress for the sign convention.
"""

from __future__ import annotations

import json
import pickle
from typing import ClassVar

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.fd import calculate_numerical_stress

from uqcalc._lammps import lammps_module, load_structure, new_lammps, potentials_dir
from uqcalc.descriptors.snap import SNAP, n_bispectrum

try:
    from uqcalc.descriptors import from_spec
except ImportError:  # pragma: no cover - only while a sibling module cannot import

    def from_spec(spec):
        return SNAP(**{k: v for k, v in spec.items() if k != "type"})


A_W = 3.165
ZBL_W = {"pair_style": "zbl 4.0 4.8", "pair_coeff": ["1 1 74 74"]}


# -- structures ------------------------------------------------------------------
def rattled(seed=0):
    atoms = bulk("W", "bcc", a=A_W, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.08, seed=seed)
    return atoms


def strained():
    atoms = rattled(1)
    eps = np.array([[0.02, 0.01, -0.015], [0.01, -0.03, 0.005], [-0.015, 0.005, 0.01]])
    atoms.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
    return atoms


def triclinic_rotated():
    """Primitive bcc cell, sheared and rotated so LAMMPS must rotate the frame."""
    atoms = bulk("W", "bcc", a=A_W).repeat((2, 2, 2))
    atoms.set_cell(
        atoms.cell @ (np.eye(3) + [[0, 0.04, 0], [0, 0, -0.03], [0.02, 0, 0]]),
        scale_atoms=True,
    )
    atoms.rotate(37, (1, 2, 3), rotate_cell=True)
    atoms.rattle(0.06, seed=2)
    return atoms


def vacancy():
    atoms = bulk("W", "bcc", a=A_W, cubic=True).repeat((3, 3, 3))
    del atoms[13]
    atoms.rattle(0.03, seed=3)
    return atoms


def cluster():
    atoms = bulk("W", "bcc", a=A_W, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=4)
    atoms.positions -= atoms.positions.mean(axis=0)
    atoms.cell = np.zeros((3, 3))
    atoms.pbc = False
    return atoms


W_STRUCTURES = [rattled, strained, triclinic_rotated, vacancy]


# -- the LAMMPS oracle -----------------------------------------------------------
def lammps_oracle(atoms, potential, species, monkeypatch):
    """Energy, forces, ASE stress, per-atom energies from ``include <potential>.snap``."""
    lammps = lammps_module()
    monkeypatch.setenv("LAMMPS_POTENTIALS", str(potentials_dir()))
    lmp = new_lammps()
    prism = load_structure(lmp, atoms, species).prism
    lmp.commands_list(
        [
            f"include {potentials_dir() / (potential + '.snap')}",
            "compute e_atom all pe/atom",
            "compute e_sum all reduce sum c_e_atom",
            "thermo_style custom step pe pxx pyy pzz pxy pxz pyz c_e_sum",
            "run 0",
        ]
    )
    n = len(atoms)
    order = np.argsort(lmp.numpy.extract_atom("id")[:n])
    forces = np.array(lmp.numpy.extract_atom("f")[:n])[order]
    p = [lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")]
    tensor = np.array([[p[0], p[3], p[4]], [p[3], p[1], p[5]], [p[4], p[5], p[2]]])
    # ASE stress is minus the pressure tensor; LAMMPS's own bar -> eV/Å^3 factor
    sigma = -prism.tensor2_to_ase(tensor) / lmp.extract_global("nktv2p")
    e_atom = lmp.numpy.extract_compute("e_atom", lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_VECTOR)
    out = {
        "energy": lmp.get_thermo("pe"),
        # not prism.vector_to_ase: with a reduced cell it wraps its input like positions
        "forces": forces @ prism.rot_mat.T,
        "stress": sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]],
        "energies": np.array(e_atom[:n])[order],
    }
    lmp.close()
    return out


def assert_matches(pred, ref, rtol=1e-8):
    for key, value in ref.items():
        if key not in pred:
            continue
        scale = np.max(np.abs(value))
        np.testing.assert_allclose(pred[key], value, rtol=rtol, atol=rtol * scale, err_msg=key)


@pytest.fixture(scope="module")
def w_potential():
    return SNAP.from_lammps_potential("W_2940_2017_2")


@pytest.mark.parametrize("make", W_STRUCTURES)
def test_w_2940_reproduces_lammps(make, w_potential, monkeypatch):
    snap, theta = w_potential
    atoms = make()
    rows = snap.rows(atoms, per_atom=True)
    ref = lammps_oracle(atoms, "W_2940_2017_2", ["W"], monkeypatch)
    assert_matches(rows.evaluate(theta), ref)


def test_from_lammps_potential_reads_zbl_and_files(w_potential):
    snap, theta = w_potential
    assert snap.species == ("W",) and snap.twojmax == 8 and not snap.quadratic
    assert snap.reference == {"pair_style": "zbl 4 4.8", "pair_coeff": ["1 1 74 74"]}
    assert theta.shape == (snap.n_params,) == (56,)
    assert theta[0] == pytest.approx(0.781170857801)  # beta0 of the published file
    assert not snap.bzeroflag  # the param file says 0


def test_two_elements_and_shorter_reference_cutoff(monkeypatch):
    # W-Be: SNAP cutoff 4.8123 Å > ZBL's 4.8 Å, so the reference is run under
    # hybrid/overlay with a zero style; bzeroflag is on; per-atom order matters
    snap, theta = SNAP.from_lammps_potential("WBe_Wood_PRB2019")
    assert snap.species == ("W", "Be") and snap.bzeroflag
    atoms = rattled(5)
    atoms.symbols[[1, 6, 7, 12]] = "Be"
    rows = snap.rows(atoms, per_atom=True)
    ref = lammps_oracle(atoms, "WBe_Wood_PRB2019", ["W", "Be"], monkeypatch)
    assert_matches(rows.evaluate(theta), ref)


def test_quadratic_snap_reproduces_lammps(monkeypatch):
    # checks LAMMPS's quadratic column order and its 1/2 on the squares
    snap, theta = SNAP.from_lammps_potential("Mo_Zuo_JPCA2020.quadratic")
    k = n_bispectrum(snap.twojmax)
    assert snap.quadratic and snap.n_params == 1 + k + k * (k + 1) // 2
    atoms = bulk("Mo", "bcc", a=3.16).repeat((2, 2, 2))
    atoms.rotate(20, "z", rotate_cell=True)
    atoms.rattle(0.05, seed=6)
    ref = lammps_oracle(atoms, "Mo_Zuo_JPCA2020.quadratic", ["Mo"], monkeypatch)
    assert_matches(snap.rows(atoms, per_atom=True).evaluate(theta), ref)


def test_cluster_has_no_stress_and_matches_lammps(w_potential, monkeypatch):
    snap, theta = w_potential
    atoms = cluster()
    rows = snap.rows(atoms)
    assert rows.stress is None and rows.ref_stress is None
    ref = lammps_oracle(atoms, "W_2940_2017_2", ["W"], monkeypatch)
    del ref["stress"]
    assert_matches(rows.evaluate(theta), ref)
    slab = rattled(7)
    slab.pbc = [True, True, False]
    assert snap.rows(slab).stress is None


# -- finite differences ----------------------------------------------------------
FD_DESCRIPTORS = {
    "linear": {"twojmax": 4},
    "quadratic": {"twojmax": 2, "quadratic": True},
    "zbl": {"twojmax": 4, "reference": ZBL_W},
    "two-species": {
        "species": ["W", "Mo"],
        "twojmax": 2,
        "radii": [0.5, 0.45],
        "weights": [1.0, 0.8],
        "bzeroflag": True,
        "quadratic": True,
    },
}


def fd_structure(species):
    atoms = triclinic_rotated()
    if len(species) > 1:
        atoms.symbols[[0, 3, 5]] = species[1]
    return atoms


def all_rows(rows):
    """Energy rows with the reference part as a last column."""
    return np.append(rows.energy, rows.ref_energy)


@pytest.mark.parametrize("name", FD_DESCRIPTORS)
def test_force_rows_are_energy_gradients(name):
    snap = SNAP(**FD_DESCRIPTORS[name])
    atoms = fd_structure(snap.species)
    rows = snap.rows(atoms)
    analytic = np.concatenate([rows.forces, rows.ref_forces[..., None]], axis=-1)
    h = 1e-4
    for i in (0, 3, 6):
        for c in range(3):
            fd = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, c] += sign * h
                fd.append(all_rows(snap.rows(moved)))
            numeric = -(fd[0] - fd[1]) / (2 * h)
            np.testing.assert_allclose(
                analytic[i, c], numeric, rtol=1e-6, atol=1e-6 * np.abs(analytic).max()
            )


@pytest.mark.parametrize("name", FD_DESCRIPTORS)
def test_stress_rows_are_strain_derivatives(name):
    snap = SNAP(**FD_DESCRIPTORS[name])
    atoms = fd_structure(snap.species)
    rows = snap.rows(atoms)
    analytic = np.concatenate([rows.stress, rows.ref_stress[:, None]], axis=-1)
    h, volume, cell = 1e-5, atoms.get_volume(), atoms.get_cell()
    # ASE Voigt order, symmetric strain for shear as in ase.calculators.fd
    for v, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        fd = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[i, j] += sign * h
            strain[j, i] += sign * h if i != j else 0.0
            deformed = atoms.copy()
            deformed.set_cell(cell @ strain, scale_atoms=True)
            fd.append(all_rows(snap.rows(deformed)))
        numeric = (fd[0] - fd[1]) / ((2 if i == j else 4) * h * volume)
        np.testing.assert_allclose(
            analytic[v], numeric, rtol=1e-5, atol=1e-6 * np.abs(analytic).max()
        )


class _RowsCalculator(Calculator):
    implemented_properties: ClassVar[list[str]] = ["energy", "stress"]

    def __init__(self, snap, theta):
        super().__init__()
        self.snap, self.theta = snap, theta

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        out = self.snap.rows(self.atoms).evaluate(self.theta)
        self.results = {"energy": out["energy"], "stress": out["stress"]}


def test_stress_follows_ase_convention(w_potential):
    snap, theta = w_potential
    atoms = strained()
    atoms.calc = _RowsCalculator(snap, theta)
    np.testing.assert_allclose(
        atoms.get_stress(),
        calculate_numerical_stress(atoms, eps=1e-5, force_consistent=False),
        atol=1e-7,
    )
    compressed = bulk("W", "bcc", a=0.97 * A_W, cubic=True)
    compressed.calc = _RowsCalculator(snap, theta)
    assert np.all(compressed.get_stress()[:3] < 0)  # compression: ASE stress is negative


# -- per-atom rows ---------------------------------------------------------------
def test_per_atom_rows_sum_to_energy(w_potential):
    snap, theta = w_potential
    atoms = vacancy()
    rows = snap.rows(atoms, per_atom=True)
    assert rows.per_atom.shape == (len(atoms), snap.n_params)
    np.testing.assert_allclose(rows.per_atom.sum(axis=0), rows.energy, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(rows.per_atom[:, 0], 1.0)  # the beta0 column
    out = rows.evaluate(theta)
    assert out["energies"].sum() == pytest.approx(out["energy"], rel=1e-12)
    assert rows.ref_per_atom.sum() == pytest.approx(rows.ref_energy, rel=1e-12)
    plain = snap.rows(atoms)
    assert plain.per_atom is None
    np.testing.assert_allclose(plain.energy, rows.energy, rtol=1e-12)
    np.testing.assert_allclose(plain.forces, rows.forces, rtol=1e-12, atol=1e-12)


def test_energy_rows_count_atoms_per_species():
    snap = SNAP(species=["W", "Mo"], twojmax=2)
    atoms = fd_structure(snap.species)
    rows = snap.rows(atoms)
    k = 1 + snap.ncoeff
    assert rows.energy[0] == 5 and rows.energy[k] == 3
    assert np.all(rows.forces[:, :, [0, k]] == 0) and np.all(rows.stress[:, [0, k]] == 0)


# -- spec, pickling, reuse -------------------------------------------------------
def test_spec_round_trip_and_pickle():
    snap = SNAP(
        species=["W", "Mo"],
        twojmax=4,
        rcutfac=4.6,
        radii=[0.5, 0.48],
        weights=[1.0, 0.9],
        quadratic=True,
        switchflag=True,
        reference={"pair_style": "zbl 4.0 4.8", "pair_coeff": ["* * 74 74"]},
    )
    spec = snap.spec()
    assert spec["type"] == "SNAP" and spec["species"] == ["W", "Mo"]
    rebuilt = from_spec(json.loads(json.dumps(spec)))
    assert rebuilt == snap and rebuilt.spec() == spec
    atoms = fd_structure(snap.species)
    a, b = snap.rows(atoms), rebuilt.rows(atoms)
    np.testing.assert_array_equal(a.energy, b.energy)
    np.testing.assert_array_equal(a.stress, b.stress)
    clone = pickle.loads(pickle.dumps(snap))  # after use: the LAMMPS instance is dropped
    c = clone.rows(atoms)
    np.testing.assert_array_equal(a.forces, c.forces)
    assert c.ref_energy == a.ref_energy != 0.0


def test_reused_instance_matches_fresh_ones(w_potential):
    snap, _ = w_potential
    structures = [
        vacancy(),
        triclinic_rotated(),
        cluster(),
        rattled(8),
        triclinic_rotated(),
    ]
    reused = [snap.rows(s, per_atom=bool(k % 2)) for k, s in enumerate(structures)]
    for k, (s, r) in enumerate(zip(structures, reused)):
        fresh = SNAP(**{k_: v for k_, v in snap.spec().items() if k_ != "type"})
        f = fresh.rows(s, per_atom=bool(k % 2))
        np.testing.assert_allclose(r.energy, f.energy, rtol=1e-12)
        np.testing.assert_allclose(r.forces, f.forces, rtol=1e-12, atol=1e-12)
        assert r.ref_energy == pytest.approx(f.ref_energy, rel=1e-12)
        if f.stress is not None:
            np.testing.assert_allclose(r.stress, f.stress, rtol=1e-12, atol=1e-12)
        fresh.close()


# -- files and errors ------------------------------------------------------------
def test_from_lammps_files(tmp_path):
    param = tmp_path / "x.snapparam"
    param.write_text("# my model\n\nrcutfac 4.6  # Å\ntwojmax 2\nrfac0 0.99\nquadraticflag 0\n")
    coeff = tmp_path / "x.snapcoeff"
    values = np.arange(2 * 6) * 0.1
    lines = [
        "# coefficients",
        "",
        "2 6",
        "Mo 0.45 0.9",
        *map(str, values[:6]),
        "W 0.5 1.0",
        *map(str, values[6:]),
    ]
    coeff.write_text("\n".join(lines) + "\n")
    snap, theta = SNAP.from_lammps_files(param, coeff)
    assert snap.species == ("Mo", "W") and snap.radii == (0.45, 0.5)
    assert snap.weights == (0.9, 1.0) and snap.bzeroflag  # LAMMPS's default when absent
    np.testing.assert_array_equal(theta, values)
    param.write_text("rcutfac 4.6\ntwojmax 4\n")
    with pytest.raises(ValueError, match="coefficients per element"):
        SNAP.from_lammps_files(param, coeff)
    param.write_text("rcutfac 4.6\ntwojmax 2\nchemflag 1\n")
    with pytest.raises(ValueError, match="chemflag"):
        SNAP.from_lammps_files(param, coeff)
    param.write_text("rcutfac 4.6\ntwojmax 2\nfoo 1\n")
    with pytest.raises(ValueError, match="foo"):
        SNAP.from_lammps_files(param, coeff)


def test_unknown_species_in_atoms():
    snap = SNAP(twojmax=2)
    with pytest.raises(ValueError, match="Mo"):
        snap.rows(bulk("Mo", "bcc", a=3.15))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"twojmax": -2}, "twojmax"),
        ({"twojmax": 2.5}, "twojmax"),
        ({"twojmax": "six"}, "twojmax"),
        ({"species": ["W", "Qq"]}, "species"),
        ({"species": ["W", "W"]}, "species"),
        ({"rcutfac": -1.0}, "rcutfac"),
        ({"rfac0": 1.5}, "rfac0"),
        ({"radii": [0.5, 0.5]}, "radii"),
        ({"weights": [np.nan]}, "weights"),
        ({"reference": {"pair_style": "zbl 4 4.8"}}, "reference"),
        ({"quadratic": "yes"}, "quadratic"),
    ],
)
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        SNAP(**kwargs)


def test_short_reference_without_cross_terms_is_refused():
    snap = SNAP(
        species=["W", "Be"],
        rcutfac=4.8123,
        twojmax=2,
        reference={"pair_style": "zbl 4 4.8", "pair_coeff": ["1 1 74 74", "2 2 4 4"]},
    )
    atoms = Atoms("WBe", positions=[[0, 0, 0], [2.2, 0, 0]], cell=[8, 8, 8], pbc=True)
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        snap.rows(atoms)
    with pytest.raises(ValueError, match=r"\(1, 2\)"):  # and again, once the wrap is learnt
        snap.rows(atoms)
