"""Tests of the point-defect and migration properties.

Oracles: a constant-only PairBasis (every energy difference is exactly 0); hand formulas for
unrelaxed defects under a pure pair potential (vacancy E_f = -E_bulk/N, divacancy
E_b = -φ(r_12) with φ from a dimer); invariance under a rigid translation and under the
supercell size where it is exact; the states recombined by hand; the teacher's independent
128-site figures (slow). Cells are 54 sites (size=3); relaxations keep the default
fmax = 1e-3 eV/Å (the pair model makes them cheap) except the NEB, run with 3 images to
0.05 eV/Å (enough to resolve the barrier of the test model to ~1 meV, and the tests compare a
band with itself).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase import Atoms

from uqcalc import LinearPotential
from uqcalc.properties.base import TUNGSTEN_A0, relax
from uqcalc.properties.defects import (
    SIA_CONFIGURATIONS,
    DivacancyBindingEnergy,
    InterstitialFormationEnergy,
    PointSymmetry,
    VacancyFormationEnergy,
    VacancyRelaxationVolume,
    bcc_supercell,
)
from uqcalc.properties.migration import VacancyMigrationEnergy

from .models import fitted_model, recombine

pytestmark = pytest.mark.filterwarnings("ignore:logm result may be inaccurate")


@pytest.fixture(scope="module")
def pure_pair():
    """The same pair potential with the constant beta0 removed: E = Σ_pairs φ(r)."""
    descriptor, ensemble = fitted_model()
    theta = ensemble.theta.copy()
    theta[0] = 0.0
    return LinearPotential(descriptor, theta)


def dimer_energy(calc, r: float) -> float:
    atoms = Atoms("W2", positions=[[0, 0, 0], [r, 0, 0]], cell=[20, 20, 20], pbc=False)
    atoms.calc = calc
    return atoms.get_potential_energy()


SHIFT = np.array([0.731, -1.412, 2.05])  # an arbitrary, non-lattice translation (Å)


# -- exact values on trivial and pure pair potentials ---------------------------------------


@pytest.mark.parametrize(
    "prop",
    [
        VacancyFormationEnergy(size=3, lattice_constant=TUNGSTEN_A0),
        VacancyFormationEnergy(size=3, pressure="zero", lattice_constant=TUNGSTEN_A0),
        VacancyRelaxationVolume(size=3, lattice_constant=TUNGSTEN_A0),
        DivacancyBindingEnergy(size=3, neighbor=1, lattice_constant=TUNGSTEN_A0),
        InterstitialFormationEnergy(size=3, configuration="octahedral", lattice_constant=TUNGSTEN_A0),
        InterstitialFormationEnergy(size=3, configuration="111", pressure="zero", lattice_constant=TUNGSTEN_A0),
    ],
    ids=lambda p: f"{p.name}-{p.pressure}",
)
def test_constant_only_potential_gives_zero(prop, constant_only):
    assert prop.evaluate(constant_only) == pytest.approx(0.0, abs=1e-9)


def test_unrelaxed_vacancy_is_minus_bulk_energy_per_atom_in_any_cell(pure_pair):
    # removing one atom breaks its bonds: E_f = e - Σφ = -Σφ/2 = -E_bulk/N (no β0)
    bulk = bcc_supercell(3)
    bulk.calc = pure_pair
    expected = -bulk.get_potential_energy() / len(bulk)
    for size in (3, 4):
        value = VacancyFormationEnergy(size=size, relaxed=False, lattice_constant=TUNGSTEN_A0).evaluate(pure_pair)
        assert value == pytest.approx(expected, abs=1e-9)
    assert expected > 0


@pytest.mark.parametrize("neighbor, distance", [(1, np.sqrt(3) / 2), (2, 1.0)])
def test_unrelaxed_divacancy_binding_is_minus_the_pair_bond(neighbor, distance, pure_pair):
    value = DivacancyBindingEnergy(size=3, neighbor=neighbor, relaxed=False, lattice_constant=TUNGSTEN_A0).evaluate(pure_pair)
    assert value == pytest.approx(-dimer_energy(pure_pair, distance * TUNGSTEN_A0), abs=1e-9)


# -- physical sanity and finite size --------------------------------------------------------


def test_relaxed_vacancy_size_effect_is_small_and_relaxation_lowers_it(pair):
    e3 = VacancyFormationEnergy(size=3, lattice_constant=TUNGSTEN_A0).evaluate(pair)
    e4 = VacancyFormationEnergy(size=4, lattice_constant=TUNGSTEN_A0).evaluate(pair)
    unrelaxed = VacancyFormationEnergy(size=3, relaxed=False, lattice_constant=TUNGSTEN_A0).evaluate(pair)
    assert 1.0 < e3 < unrelaxed
    assert abs(e3 - e4) < 0.05  # elastic image interaction of a short-ranged potential


def test_relaxation_volume_units(pair):
    in_a3 = VacancyRelaxationVolume(size=3, lattice_constant=TUNGSTEN_A0)
    in_omega = VacancyRelaxationVolume(size=3, in_atomic_volumes=True, lattice_constant=TUNGSTEN_A0)
    bulk = relax(in_a3.states()[1].atoms, pair, "cell")
    omega0 = bulk.get_volume() / len(bulk)
    assert in_omega.unit == "Ω0" and in_a3.unit == "Å^3"
    value = in_omega.evaluate(pair)
    assert value * omega0 == pytest.approx(in_a3.evaluate(pair), abs=1e-6)
    assert abs(value) < 1.0


# -- states, translation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "prop",
    [
        VacancyFormationEnergy(size=3, lattice_constant=TUNGSTEN_A0),
        VacancyFormationEnergy(size=3, pressure="zero", lattice_constant=TUNGSTEN_A0),
        VacancyRelaxationVolume(size=3, lattice_constant=TUNGSTEN_A0),
        DivacancyBindingEnergy(size=3, neighbor=2, lattice_constant=TUNGSTEN_A0),
        *[InterstitialFormationEnergy(size=3, configuration=c, lattice_constant=TUNGSTEN_A0) for c in SIA_CONFIGURATIONS],
    ],
    ids=lambda p: f"{p.name}-{p.pressure}",
)
def test_states_recombine_to_evaluate_and_are_translation_invariant(prop, pair):
    value = prop.evaluate(pair)
    assert recombine(prop, pair) == pytest.approx(value, abs=1e-9)
    # a rigid shift changes the relaxation path, not the stationary point
    tol = 1e-6 if prop.unit == "eV" else 1e-4
    assert recombine(prop, pair, translate=SHIFT) == pytest.approx(value, abs=tol)


def test_state_coefficients():
    n = 54
    vac = VacancyFormationEnergy(size=3, lattice_constant=TUNGSTEN_A0).states()
    assert [s.coefficient for s in vac] == [1.0, -(n - 1) / n]
    assert [len(s.atoms) for s in vac] == [n - 1, n]
    assert [s.relax for s in vac] == ["positions", "none"]
    assert [s.relax for s in VacancyFormationEnergy(size=3, pressure="zero", lattice_constant=TUNGSTEN_A0).states()] == ["both", "cell"]
    assert [s.relax for s in VacancyFormationEnergy(size=3, relaxed=False, lattice_constant=TUNGSTEN_A0).states()] == ["none", "none"]
    div = DivacancyBindingEnergy(size=3, lattice_constant=TUNGSTEN_A0).states()
    assert [s.coefficient for s in div] == [2.0, -1.0, -1.0]
    assert [len(s.atoms) for s in div] == [n - 1, n - 2, n]
    sia = InterstitialFormationEnergy(size=3, lattice_constant=TUNGSTEN_A0).states()
    assert [s.coefficient for s in sia] == [1.0, -(n + 1) / n]
    assert {s.quantity for s in VacancyRelaxationVolume(size=3, lattice_constant=TUNGSTEN_A0).states()} == {"volume"}
    assert len(VacancyFormationEnergy(lattice_constant=TUNGSTEN_A0).states()[1].atoms) == 128  # the default cell


@pytest.mark.parametrize(
    "configuration, order", [("111", 12), ("110", 8), ("100", 16), ("octahedral", 16), ("tetrahedral", 8)]
)
def test_sia_symmetry_is_kept_and_is_a_true_stationary_point(configuration, order, pair):
    prop = InterstitialFormationEnergy(size=3, configuration=configuration, lattice_constant=TUNGSTEN_A0)
    atoms = prop.defect_structure()
    assert len(atoms) == 55
    assert len(atoms.constraints[0]) == order  # the site's point group
    relaxed = relax(atoms, pair, "positions")
    # the symmetric structure is stationary without the constraint too
    assert np.abs(relaxed.get_forces(apply_constraint=False)).max() < 2e-3
    relaxed.set_constraint()
    assert len(PointSymmetry.from_structure(relaxed, atoms.info["defect_centre"], tol=1e-6)) == order
    assert np.abs(relaxed.positions - atoms.positions).max() > 0.05  # it did relax


def test_point_symmetry_projects():
    atoms = InterstitialFormationEnergy(size=3, configuration="110", lattice_constant=TUNGSTEN_A0).defect_structure()
    sym = atoms.constraints[0]
    v = np.random.default_rng(0).normal(size=(len(atoms), 3))
    once = sym.symmetrize(v)
    assert np.allclose(sym.symmetrize(once), once)  # a projector
    for rot, perm in zip(sym.rotations, sym.permutations):  # onto symmetric fields
        assert np.allclose(once[perm], once @ rot.T)
    stress = np.array([1.0, 2.0, 3.0, 0.4, 0.5, 0.6])
    sym.adjust_stress(atoms, stress)
    assert stress[0] == pytest.approx(stress[1])  # the [110] dumbbell maps x <-> y


def test_invalid_settings():
    with pytest.raises(ValueError, match="size"):
        VacancyFormationEnergy(size=1, lattice_constant=TUNGSTEN_A0)
    with pytest.raises(ValueError, match="pressure"):
        VacancyFormationEnergy(pressure="high", lattice_constant=TUNGSTEN_A0)
    with pytest.raises(ValueError, match="pressure='zero'"):
        VacancyRelaxationVolume(pressure=None, lattice_constant=TUNGSTEN_A0)
    with pytest.raises(ValueError, match="neighbor"):
        DivacancyBindingEnergy(neighbor=3, lattice_constant=TUNGSTEN_A0)
    with pytest.raises(ValueError, match="configuration"):
        InterstitialFormationEnergy(configuration="split", lattice_constant=TUNGSTEN_A0)
    assert InterstitialFormationEnergy(configuration="<110>", lattice_constant=TUNGSTEN_A0).name == "sia_formation_energy_110"
    assert DivacancyBindingEnergy(neighbor=2, lattice_constant=TUNGSTEN_A0).name == "divacancy_binding_energy_2nn"


# -- migration -----------------------------------------------------------------------------


def small_neb(**kwargs) -> VacancyMigrationEnergy:
    return VacancyMigrationEnergy(size=3, n_images=3, neb_fmax=0.05, **kwargs, lattice_constant=TUNGSTEN_A0)


def test_migration_endpoints_are_one_1nn_jump():
    initial, final = small_neb().endpoints()
    moved = np.linalg.norm(final.positions - initial.positions, axis=1)
    assert len(initial) == 53 and np.count_nonzero(moved) == 1
    assert moved.max() == pytest.approx(np.sqrt(3) / 2 * TUNGSTEN_A0)


def test_migration_barrier_zero_for_constant_potential(constant_only):
    assert small_neb().evaluate(constant_only) == pytest.approx(0.0, abs=1e-9)


def test_migration_states_reproduce_evaluate_and_saddle_is_the_midpoint(pair):
    prop = small_neb()
    assert prop.states() is None  # a saddle is not known before the search
    barrier = prop.evaluate(pair)
    assert 0.5 < barrier < 4.0
    states = prop.stationary_states(pair)
    assert [(s.name, s.relax, s.coefficient, s.kind) for s in states] == [
        ("saddle", "positions", 1.0, "saddle"), ("initial", "positions", -1.0, "minimum")]
    # the saddle is stationary: its residual forces are those of the converged climbing image
    assert np.abs(states[0].atoms.get_forces()).max() < prop.neb_fmax
    assert recombine(prop, pair, states=states) == pytest.approx(barrier, abs=1e-9)
    assert recombine(prop, pair, translate=SHIFT, states=states) == pytest.approx(barrier, abs=1e-6)
    # symmetric jump: the climbing image is the band's mid-point
    initial, final = prop.endpoints()
    hopper = int(np.argmax(np.linalg.norm(final.positions - initial.positions, axis=1)))
    midpoint = 0.5 * (initial.positions[hopper] + final.positions[hopper])
    assert np.linalg.norm(states[0].atoms.positions[hopper] - midpoint) < 0.05


# -- the teacher at the default settings (independent figures) -------------------------------


@pytest.mark.slow
def test_teacher_reproduces_independent_128_site_values():
    from uqcalc.datasets.tungsten import teacher

    calc = teacher()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert VacancyFormationEnergy(lattice_constant=TUNGSTEN_A0).evaluate(calc) == pytest.approx(3.235, abs=0.005)
        assert VacancyFormationEnergy(relaxed=False, lattice_constant=TUNGSTEN_A0).evaluate(calc) == pytest.approx(3.310, abs=0.005)
        assert InterstitialFormationEnergy(configuration="111", lattice_constant=TUNGSTEN_A0).evaluate(calc) == pytest.approx(9.93, abs=0.01)
        assert InterstitialFormationEnergy(configuration="110", lattice_constant=TUNGSTEN_A0).evaluate(calc) == pytest.approx(10.00, abs=0.01)
