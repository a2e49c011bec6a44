"""Bulk and phase properties (uqcalc.properties.bulk, .phases) and the suite helpers.

Calculators: the teacher-fitted PairBasis of tests/models.py (a stable bcc pair potential, C_ij of
the order of W's) and trivial pair potentials whose values are known by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from matscipy.neighbours import neighbour_list

from uqcalc import LinearPotential
from uqcalc.descriptors import PairBasis
from uqcalc.properties import (
    BulkModulus,
    CohesiveEnergy,
    ElasticConstant,
    HcpAxialRatio,
    LatticeConstant,
    PhaseEnergy,
    RelaxationError,
    ShearModulus,
    relax,
    run_suite,
    tungsten_suite,
)
from uqcalc.properties.bulk import (
    bcc_cell,
    cubic_elastic_constants,
    relaxed_lattice_constant,
    shear_moduli,
)
from uqcalc.properties.phases import PHASES, _check_shape, phase_cell


def constant_only(beta0: float = -7.5) -> LinearPotential:
    """A potential with only beta0 nonzero: E = N beta0, no forces, no stress."""
    d = PairBasis(r_cut=5.0, n_basis=4)
    theta = np.zeros(d.n_params)
    theta[0] = beta0
    return LinearPotential(d, theta)


def combine_by_hand(prop, calc) -> float:
    """Relax every state of ``prop`` independently and recombine: must equal evaluate()."""
    quantities = []
    for state in prop.states():
        atoms = relax(state.atoms, calc, state.relax, prop.fmax, prop.steps)
        quantities.append(atoms.get_potential_energy() if state.quantity == "energy" else atoms.get_volume())
    return prop.scale * sum(s.coefficient * q for s, q in zip(prop.states(), quantities))


# -- bulk ---------------------------------------------------------------------------------------


def test_lattice_constant_is_zero_stress(pair):
    a0 = LatticeConstant().evaluate(pair)
    assert 3.1 < a0 < 3.25
    atoms = bcc_cell(a0)
    atoms.calc = pair
    assert np.abs(atoms.get_stress()[:3]).max() < 2e-5  # eV/Å^3 (3 MPa)
    assert np.abs(atoms.get_stress()[3:]).max() < 1e-10


def test_bulk_modulus_matches_elastic_constants(pair):
    c = cubic_elastic_constants(pair)
    b = BulkModulus().evaluate(pair)
    assert b == pytest.approx((c["C11"] + 2 * c["C12"]) / 3, rel=3e-3)


def test_bulk_modulus_of_a_known_energy_volume_curve():
    # E(V) of a Birch-Murnaghan solid is fitted back exactly: B in GPa from eV/Å^3
    from ase.calculators.calculator import Calculator, all_changes

    v0, b0, bp = 16.0, 300.0 * units.GPa, 4.2

    class Murnaghan(Calculator):
        implemented_properties = ("energy", "free_energy")

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            v = self.atoms.get_volume() / len(self.atoms)
            eta = (v0 / v) ** (2 / 3)
            e = 9 * v0 * b0 / 16 * ((eta - 1) ** 3 * bp + (eta - 1) ** 2 * (6 - 4 * eta))
            self.results = {"energy": e * len(self.atoms), "free_energy": e * len(self.atoms)}

    a = (2 * v0) ** (1 / 3)
    assert BulkModulus(lattice_constant=a).evaluate(Murnaghan()) == pytest.approx(300.0, rel=1e-6)


def test_pair_potential_obeys_cauchy_relation(pair):
    # central pair forces on a Bravais lattice at zero pressure: C12 = C44
    c = cubic_elastic_constants(pair)
    assert c["C12"] == pytest.approx(c["C44"], rel=1e-3)
    assert c["C11"] > c["C12"] > 0


def test_elastic_constants_do_not_depend_on_cell_size(pair):
    a0 = relaxed_lattice_constant(pair)
    small = cubic_elastic_constants(pair, a0, size=1)
    large = cubic_elastic_constants(pair, a0, size=2)
    for key in small:
        assert small[key] == pytest.approx(large[key], abs=1e-6)


def test_elastic_constant_and_shear_modulus_objects(pair):
    a0 = relaxed_lattice_constant(pair)
    c = cubic_elastic_constants(pair, a0)
    for comp in ("C11", "C12", "C44", "C'"):
        prop = ElasticConstant(comp, lattice_constant=a0)
        assert prop.name == comp and prop.unit == "GPa"
        assert prop.evaluate(pair) == pytest.approx(c[comp], rel=1e-12)
    g = {avg: ShearModulus(avg, lattice_constant=a0).evaluate(pair) for avg in ("voigt", "reuss", "hill")}
    assert g["voigt"] == pytest.approx((c["C11"] - c["C12"] + 3 * c["C44"]) / 5)
    assert g["reuss"] <= g["hill"] <= g["voigt"]
    assert g["hill"] == pytest.approx(0.5 * (g["voigt"] + g["reuss"]))
    # isotropic crystal: all averages agree
    iso = shear_moduli(500.0, 200.0, 150.0)
    assert iso["G_V"] == pytest.approx(150.0) and iso["G_R"] == pytest.approx(150.0)
    with pytest.raises(ValueError):
        ElasticConstant("C13")
    with pytest.raises(ValueError):
        ShearModulus("median")


def test_cohesive_energy_states_and_trivial_potential(pair):
    prop = CohesiveEnergy()
    assert prop.evaluate(pair) == pytest.approx(combine_by_hand(prop, pair), abs=1e-10)
    assert [(s.name, s.relax) for s in prop.states()] == [("bcc", "cell")]
    # beta0 only: E/atom = beta0 everywhere, the free atom included
    flat = constant_only(-7.5)
    assert CohesiveEnergy().evaluate(flat) == pytest.approx(7.5, abs=1e-12)
    assert CohesiveEnergy(isolated_atom=True).evaluate(flat) == pytest.approx(0.0, abs=1e-12)
    # a PairBasis free atom has energy beta0
    beta0 = pair.theta[0]
    with_atom = CohesiveEnergy(isolated_atom=True).evaluate(pair)
    assert with_atom - prop.evaluate(pair) == pytest.approx(beta0, abs=1e-8)


# -- phases -------------------------------------------------------------------------------------


def coordination(atoms, cutoff):
    i = neighbour_list("i", atoms, cutoff)
    return np.bincount(i, minlength=len(atoms))


@pytest.mark.parametrize(
    "phase, natoms, cutoff_over_a, expected",
    [
        ("fcc", 4, 0.75, {12: 4}),
        ("sc", 1, 1.2, {6: 1}),
        ("diamond", 8, 0.5, {4: 8}),
        ("a15", 8, 0.62, {12: 2, 14: 6}),  # Frank-Kasper CN12 (2a) and CN14 (6c)
        ("c15", 24, 0.44, {16: 8, 12: 16}),  # CN16 (8a) and CN12 (16d)
    ],
)
def test_phase_cells_have_the_right_coordination(phase, natoms, cutoff_over_a, expected):
    atoms = phase_cell(phase, 16.0)
    assert len(atoms) == natoms
    assert atoms.get_volume() / len(atoms) == pytest.approx(16.0)
    counts = coordination(atoms, cutoff_over_a * atoms.cell[0, 0])
    assert dict(zip(*np.unique(counts, return_counts=True))) == expected


def test_hcp_cell_is_ideal():
    atoms = phase_cell("hcp", 16.0)
    a, _, c = atoms.cell.cellpar()[:3]
    assert c / a == pytest.approx(np.sqrt(8 / 3))
    assert set(coordination(atoms, 1.05 * a)) == {12}


def test_phase_energies_vanish_for_constant_potential():
    flat = constant_only()
    for phase in PHASES:
        assert PhaseEnergy(phase).evaluate(flat) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("phase, kind", [("fcc", "energy"), ("hcp", "volume"), ("a15", "energy")])
def test_phase_states_reproduce_evaluate(pair, phase, kind):
    prop = PhaseEnergy(phase, kind)
    assert prop.name == ("dE_" if kind == "energy" else "dV_") + phase
    assert prop.evaluate(pair) == pytest.approx(combine_by_hand(prop, pair), abs=1e-8)


def test_phase_energy_invariant_under_translation_and_supercell(pair):
    prop = PhaseEnergy("a15")
    reference = prop.evaluate(pair)
    phase_state, bcc_state = prop.states()
    bcc = relax(bcc_state.atoms, pair, "cell", prop.fmax).get_potential_energy() / len(bcc_state.atoms)
    for atoms in (phase_state.atoms.copy(), phase_state.atoms.repeat((2, 1, 1))):
        atoms.translate([0.37, -1.1, 2.3])
        atoms.wrap()
        e = relax(atoms, pair, "cell", prop.fmax).get_potential_energy() / len(atoms)
        assert e - bcc == pytest.approx(reference, abs=1e-7)


def test_phase_order_and_hcp_ratio(pair):
    # the pair model keeps bcc lowest; every other phase lies above it
    assert all(PhaseEnergy(p).evaluate(pair) > 0 for p in ("fcc", "sc", "diamond"))
    ca = HcpAxialRatio().evaluate(pair)
    relaxed_hcp = relax(PhaseEnergy("hcp").states()[0].atoms, pair, "cell", 1e-4)
    a, _, c = relaxed_hcp.cell.cellpar()[:3]
    assert ca == pytest.approx(c / a, abs=1e-4)


def test_shape_check_catches_a_collapsed_phase():
    start = phase_cell("fcc", 16.0)
    bain = start.copy()
    bain.set_cell(start.cell[:] @ np.diag([0.9, 0.9, 1.2]), scale_atoms=True)
    with pytest.raises(RelaxationError, match="lost its symmetry"):
        _check_shape("fcc", start, bain, 1e-3, "dE_fcc")
    _check_shape("fcc", start, start, 1e-3, "dE_fcc")  # unchanged: passes
    hcp = phase_cell("hcp", 16.0)
    taller = hcp.copy()
    taller.set_cell(hcp.cell[:] @ np.diag([1.0, 1.0, 1.05]), scale_atoms=True)
    _check_shape("hcp", hcp, taller, 1e-3, "ca")  # c/a is free in hcp


# -- suite --------------------------------------------------------------------------------------


def test_suite_names_and_overrides():
    names = [p.name for p in tungsten_suite()]
    for required in (
        "a0",
        "E_coh",
        "B",
        "C11",
        "C12",
        "C44",
        "G_V",
        "G_H",
        "dE_fcc",
        "dE_a15",
        "gamma_110",
        "K_Ic_100",
    ):
        assert required in names
    assert len(names) == len(set(names))
    chosen = tungsten_suite(["C44", "a0"], fmax=1e-2)
    assert [p.name for p in chosen] == ["C44", "a0"]
    assert chosen[1].fmax == 1e-2
    with pytest.raises(KeyError):
        tungsten_suite(["no_such_property"])
    with pytest.raises(ValueError, match="accepts"):
        tungsten_suite(["a0"], layers=3)
    # quick only shrinks cells: the same entries
    assert [p.name for p in tungsten_suite(quick=True)] == names


def test_run_suite_subset(pair):
    props = tungsten_suite(["a0", "E_coh", "dE_fcc"], quick=True)
    results = run_suite(props, pair, names=["a0", "dE_fcc"])
    assert list(results) == ["a0", "dE_fcc"]
    value, seconds = results["a0"]
    assert value == pytest.approx(relaxed_lattice_constant(pair), abs=1e-6) and seconds >= 0
    with pytest.raises(KeyError):
        run_suite(props, pair, names=["B"])


def test_run_suite_records_failures_as_nan(pair):
    bad = LatticeConstant(steps=1)  # cannot converge in one step from a strained start
    bad.guess = 3.0
    with pytest.warns(RuntimeWarning, match="a0 failed"):
        results = run_suite([bad], pair, on_error="nan")
    assert np.isnan(results["a0"][0])
    with pytest.raises(RelaxationError):
        run_suite([bad], pair)
