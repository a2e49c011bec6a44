"""Tests of the pure-numpy pair descriptor against independent oracles.

Oracles: central finite differences of the energy rows (forces, stress), ASE's
own numerical stress (sign convention), a hand-written basis formula (dimer),
extensivity and symmetry of the energy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.fd import calculate_numerical_stress

from uqcalc.descriptors import PairBasis, from_spec

A_W = 3.165


# ---------------------------------------------------------------- helpers
def energy_row(desc, atoms):
    return desc.rows(atoms).energy


def fd_forces(desc, atoms, h=1e-4):
    """-dE/dr for every parameter column by central differences, shape (N, 3, P)."""
    out = np.zeros((len(atoms), 3, desc.n_params))
    for a in range(len(atoms)):
        for c in range(3):
            at = atoms.copy()
            at.positions[a, c] += h
            ep = energy_row(desc, at)
            at.positions[a, c] -= 2 * h
            em = energy_row(desc, at)
            out[a, c] = -(ep - em) / (2 * h)
    return out


def fd_stress(desc, atoms, h=1e-5):
    """(1/V) dE/d(strain) by central differences, ASE Voigt order, shape (6, P)."""
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    cell = atoms.cell.array
    out = np.zeros((6, desc.n_params))
    for v, (a, b) in enumerate(voigt):
        e = {}
        for sgn in (1, -1):
            eps = np.zeros((3, 3))
            # symmetric strain with d(eps_ab) = h for the Voigt component
            eps[a, b] += sgn * h / (1 if a == b else 2)
            eps[b, a] += 0 if a == b else sgn * h / 2
            at = atoms.copy()
            at.set_cell(cell @ (np.eye(3) + eps), scale_atoms=True)
            e[sgn] = energy_row(desc, at)
        out[v] = (e[1] - e[-1]) / (2 * h) / atoms.get_volume()
    return out


def phi_by_hand(r, r_min, r_cut, n, width=None):
    """Independent statement of the documented basis."""
    mu = np.array([r_min + k * (r_cut - r_min) / (n - 1) for k in range(n)])
    w = (r_cut - r_min) / (n - 1) if width is None else width
    fc = (1 - (r / r_cut) ** 2) ** 3 if r < r_cut else 0.0
    return np.exp(-((r - mu) ** 2) / (2 * w**2)) * fc


def rattled_bcc():
    at = bulk("W", "bcc", a=A_W, cubic=True) * (2, 2, 2)
    at.rattle(0.08, seed=3)
    return at


def triclinic():
    at = bulk("W", "bcc", a=A_W)  # primitive: 1 atom, many periodic images
    cell = at.cell.array @ np.array([[1.03, 0.02, -0.04], [0.01, 0.97, 0.05], [0.06, -0.03, 1.02]])
    at.set_cell(cell, scale_atoms=True)
    at = at * (2, 2, 1)
    at.rattle(0.05, seed=4)
    return at


def binary():
    at = bulk("W", "bcc", a=A_W, cubic=True) * (2, 2, 1)
    at.symbols[[1, 4, 6]] = "Ta"
    at.rattle(0.06, seed=5)
    return at


def cluster():
    rng = np.random.default_rng(6)
    at = bulk("W", "bcc", a=A_W, cubic=True) * (2, 2, 2)
    at.pbc = False
    at.cell = np.zeros((3, 3))  # ASE clusters often have no cell at all
    at.positions += rng.normal(scale=0.08, size=at.positions.shape)
    at.symbols[[0, 3]] = "Ta"
    return at


WT = PairBasis(species=["W", "Ta"], r_cut=4.5, r_min=2.0, n_basis=5)
W = PairBasis(species=["W"], r_cut=4.5, r_min=2.0, n_basis=6)

CASES = {
    "rattled_bcc": (W, rattled_bcc),
    "triclinic": (W, triclinic),
    "binary": (WT, binary),
    "cluster": (WT, cluster),
}


# ---------------------------------------------------------------- derivatives
@pytest.mark.parametrize("name", list(CASES))
def test_forces_match_finite_differences(name):
    desc, make = CASES[name]
    atoms = make()
    rows = desc.rows(atoms)
    assert rows.forces.shape == (len(atoms), 3, desc.n_params)
    np.testing.assert_allclose(rows.forces, fd_forces(desc, atoms), atol=2e-7, rtol=1e-6)
    # Newton's third law: pair forces sum to zero in every column.
    np.testing.assert_allclose(rows.forces.sum(axis=0), 0.0, atol=1e-10)


@pytest.mark.parametrize("name", ["rattled_bcc", "triclinic", "binary"])
def test_stress_matches_finite_differences(name):
    desc, make = CASES[name]
    atoms = make()
    rows = desc.rows(atoms)
    assert rows.stress.shape == (6, desc.n_params)
    np.testing.assert_allclose(rows.stress, fd_stress(desc, atoms), atol=1e-8, rtol=1e-6)


class _Linear(Calculator):
    implemented_properties = ["energy", "free_energy"]

    def __init__(self, desc, theta):
        super().__init__()
        self.desc, self.theta = desc, theta

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        e = self.desc.rows(self.atoms).energy @ self.theta
        self.results["energy"] = self.results["free_energy"] = e


def test_stress_sign_matches_ase_numerical_stress():
    atoms = triclinic()
    theta = np.random.default_rng(0).normal(size=W.n_params)
    atoms.calc = _Linear(W, theta)
    ase_stress = calculate_numerical_stress(atoms, eps=1e-5)
    np.testing.assert_allclose(W.rows(atoms).stress @ theta, ase_stress, atol=1e-7)


def test_no_stress_without_3d_periodicity():
    assert W.rows(_all_w(cluster())).stress is None
    slab = rattled_bcc()
    slab.pbc = [True, True, False]
    rows = W.rows(slab)
    assert rows.stress is None
    np.testing.assert_allclose(rows.forces, fd_forces(W, slab), atol=2e-7, rtol=1e-6)


def _all_w(at):
    at.symbols[:] = "W"
    return at


@pytest.mark.parametrize("name", list(CASES))
def test_per_atom_rows_sum_to_energy(name):
    desc, make = CASES[name]
    atoms = make()
    rows = desc.rows(atoms, per_atom=True)
    assert rows.per_atom.shape == (len(atoms), desc.n_params)
    np.testing.assert_allclose(rows.per_atom.sum(axis=0), rows.energy, rtol=1e-12, atol=1e-12)
    assert desc.rows(atoms).per_atom is None


# ---------------------------------------------------------------- hand values
@pytest.mark.parametrize("r", [1.0, 2.3, 3.7, 4.9])
def test_dimer_energy_row_is_the_basis(r):
    desc = PairBasis(species=["W"], r_cut=5.0, r_min=1.5, n_basis=8, constant=False)
    dimer = Atoms("W2", positions=[[0, 0, 0], [0.3 * r, 0.4 * r, np.sqrt(0.75) * r]])
    np.testing.assert_allclose(
        desc.rows(dimer).energy, phi_by_hand(r, 1.5, 5.0, 8), rtol=1e-12, atol=1e-15
    )

    with_const = PairBasis(species=["W"], r_cut=5.0, r_min=1.5, n_basis=8)
    row = with_const.rows(dimer).energy
    assert row[0] == 2.0  # two atoms, one beta0 each
    np.testing.assert_allclose(row[1:], phi_by_hand(r, 1.5, 5.0, 8), rtol=1e-12, atol=1e-15)


def test_heterodimer_fills_only_its_block():
    desc = PairBasis(species=["W", "Ta", "Mo"], r_cut=5.0, r_min=1.5, n_basis=4, width=0.7)
    r = 2.8
    dimer = Atoms("MoW", positions=[[0, 0, 0], [r, 0, 0]])
    row = desc.rows(dimer).energy
    labels = desc.param_labels
    expected = np.zeros(desc.n_params)
    expected[labels.index("beta0[W]")] = expected[labels.index("beta0[Mo]")] = 1.0
    start = labels.index("pair[W-Mo][0]")
    expected[start : start + 4] = phi_by_hand(r, 1.5, 5.0, 4, width=0.7)
    np.testing.assert_allclose(row, expected, rtol=1e-12, atol=1e-15)
    assert desc.n_params == 3 + 6 * 4


def test_isolated_atom_gives_only_beta0():
    desc = PairBasis(species=["W", "Ta"])
    rows = desc.rows(Atoms("Ta", positions=[[1.0, 2.0, 3.0]]), per_atom=True)
    expected = np.zeros(desc.n_params)
    expected[1] = 1.0
    np.testing.assert_array_equal(rows.energy, expected)
    np.testing.assert_array_equal(rows.forces, 0.0)
    np.testing.assert_array_equal(rows.per_atom, expected[None])
    assert rows.stress is None
    assert PairBasis(constant=False).rows(Atoms("W")).energy.tolist() == [0.0] * 8


# ---------------------------------------------------------------- invariances
def test_supercell_is_extensive():
    desc = PairBasis(r_cut=6.0)  # cutoff larger than the 1-atom primitive cell
    prim = bulk("W", "bcc", a=A_W)
    strain = np.array([[1.0, 0.03, 0.0], [0.0, 1.02, 0.0], [0.0, 0.0, 0.98]])
    prim.set_cell(prim.cell.array @ strain, scale_atoms=True)
    sup = prim * (2, 3, 2)
    rp, rs = desc.rows(prim, per_atom=True), desc.rows(sup, per_atom=True)
    np.testing.assert_allclose(rs.energy, 12 * rp.energy, rtol=1e-11)
    np.testing.assert_allclose(rs.stress, rp.stress, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        rs.per_atom, np.repeat(rp.per_atom, 12, axis=0), rtol=1e-11, atol=1e-13
    )
    np.testing.assert_allclose(rs.forces, 0.0, atol=1e-10)  # perfect lattice: no force


@pytest.mark.parametrize("name", ["triclinic", "binary", "cluster"])
def test_translation_and_rotation_invariance(name):
    desc, make = CASES[name]
    atoms = make()
    ref = desc.rows(atoms)

    moved = atoms.copy()
    moved.translate([0.37, -1.21, 2.05])
    np.testing.assert_allclose(desc.rows(moved).energy, ref.energy, rtol=1e-11)

    rotated = atoms.copy()
    rotated.rotate(37.0, (1, 2, -0.5), rotate_cell=True)
    R = rotated.cell.array.T @ np.linalg.inv(atoms.cell.array.T) if atoms.pbc.any() else None
    rot = desc.rows(rotated)
    np.testing.assert_allclose(rot.energy, ref.energy, rtol=1e-11)
    if R is not None:  # forces rotate with the structure
        np.testing.assert_allclose(rot.forces, np.einsum("ab,nbp->nap", R, ref.forces), atol=1e-10)


def test_wrapping_atoms_changes_nothing():
    atoms = triclinic()
    shifted = atoms.copy()
    shifted.positions += 2.5 * atoms.cell.array[0] - 1.0 * atoms.cell.array[2]
    a, b = W.rows(atoms), W.rows(shifted)
    np.testing.assert_allclose(b.energy, a.energy, rtol=1e-11)
    np.testing.assert_allclose(b.forces, a.forces, atol=1e-10)
    np.testing.assert_allclose(b.stress, a.stress, atol=1e-12)


# ---------------------------------------------------------------- smoothness
def test_energy_and_forces_vanish_smoothly_at_cutoff():
    desc = PairBasis(r_cut=5.0, r_min=1.5, n_basis=8, constant=False)

    def dimer_rows(r):
        return desc.rows(Atoms("W2", positions=[[0, 0, 0], [0, 0, r]]))

    # C2: E ~ delta^3 and F ~ delta^2 as r -> r_cut - delta (small delta, so the
    # Gaussian factor is nearly constant over [r_cut - delta, r_cut]).
    for delta in (1e-3, 1e-4):
        e1, e2 = dimer_rows(5.0 - delta).energy, dimer_rows(5.0 - delta / 2).energy
        f1, f2 = dimer_rows(5.0 - delta).forces, dimer_rows(5.0 - delta / 2).forces
        np.testing.assert_allclose(e1 / e2, 8.0, rtol=0.02)
        np.testing.assert_allclose(f1[1, 2] / f2[1, 2], 4.0, rtol=0.02)
    assert np.abs(dimer_rows(5.0 - 1e-4).energy).max() < 1e-11
    assert np.abs(dimer_rows(5.0 - 1e-4).forces).max() < 1e-7
    for r in (5.0, 5.0 + 1e-9, 6.0):
        rows = dimer_rows(r)
        assert not rows.energy.any() and not rows.forces.any()

    # Dense scan: the force curve has no jumps (second differences stay tiny).
    rs = np.linspace(3.5, 5.5, 801)
    fz = np.array([dimer_rows(r).forces[1, 2] for r in rs])
    assert np.abs(np.diff(fz, 2, axis=0)).max() < 1e-3


# ---------------------------------------------------------------- spec
def test_spec_round_trip():
    desc = PairBasis(
        species=("W", "Ta"), r_cut=4.8, r_min=1.9, n_basis=6, width=0.45, constant=False
    )
    spec = desc.spec()
    assert spec["type"] == "PairBasis"
    again = from_spec(json.loads(json.dumps(spec)))
    assert again == desc and hash(again) == hash(desc)
    atoms = binary()
    np.testing.assert_array_equal(again.rows(atoms).forces, desc.rows(atoms).forces)
    # the default width is resolved, so the spec is self-contained
    assert PairBasis().spec()["width"] == pytest.approx(0.5)
    assert PairBasis() == PairBasis(width=0.5)
    assert len(PairBasis(species="W").param_labels) == PairBasis().n_params == 9


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"species": []}, "species"),
        ({"species": ["W", "W"]}, "species"),
        ({"species": ["Wx"]}, "species"),
        ({"species": 3}, "species"),
        ({"r_cut": 0.0}, "r_cut"),
        ({"r_cut": float("nan")}, "r_cut"),
        ({"r_cut": "5"}, "r_cut"),
        ({"r_min": -0.1}, "r_min"),
        ({"r_min": 5.0}, "r_min"),
        ({"n_basis": 0}, "n_basis"),
        ({"n_basis": 2.5}, "n_basis"),
        ({"n_basis": True}, "n_basis"),
        ({"width": 0.0}, "width"),
        ({"width": -1.0}, "width"),
        ({"constant": "yes"}, "constant"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PairBasis(**kwargs)


def test_bad_structures():
    with pytest.raises(ValueError, match="Mo"):
        W.rows(Atoms("WMo", positions=[[0, 0, 0], [2.5, 0, 0]]))
    with pytest.raises(ValueError, match="overlap"):
        W.rows(Atoms("W2", positions=[[0, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="volume|degenerate"):
        W.rows(Atoms("W", cell=[[3, 0, 0], [0, 3, 0], [0, 0, 0]], pbc=True))
    with pytest.raises(ValueError, match="non-finite"):
        W.rows(Atoms("W2", positions=[[0, 0, 0], [np.nan, 0, 0]]))


def test_edge_structures():
    empty = W.rows(Atoms(cell=np.eye(3) * 5, pbc=True), per_atom=True)
    assert empty.energy.shape == (W.n_params,) and not empty.energy.any()
    assert empty.forces.shape == (0, 3, W.n_params) and empty.per_atom.shape == (0, W.n_params)
    # A molecule without a cell.
    mol = molecule("CO")
    mol.symbols[:] = "W"
    rows = PairBasis().rows(mol)
    r = mol.get_distance(0, 1)
    np.testing.assert_allclose(rows.energy[1:], phi_by_hand(r, 1.5, 5.0, 8), atol=1e-15)
    # A periodic chain with zero open cell vectors: one neighbour each side at 2.7 Å
    # (5.4 Å is beyond the cutoff), so E per atom = beta0 + phi(2.7).
    chain = Atoms(
        "W", positions=[[0.4, 1.0, -2.0]], cell=[[2.7, 0, 0], [0, 0, 0], [0, 0, 0]],
        pbc=[True, False, False],
    )
    rows = PairBasis().rows(chain)
    assert rows.stress is None
    np.testing.assert_allclose(rows.energy, np.r_[1.0, phi_by_hand(2.7, 1.5, 5.0, 8)], atol=1e-15)
    np.testing.assert_allclose(rows.forces, 0.0, atol=1e-14)
