"""Surface energies (uqcalc.properties.surfaces) and Griffith toughness (.fracture)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from uqcalc import LinearPotential
from uqcalc.descriptors import PairBasis
from uqcalc.properties import GriffithToughness, SurfaceEnergy, relax
from uqcalc.properties.base import TUNGSTEN_A0
from uqcalc.properties.bulk import (
    bcc_cell,
    cubic_elastic_constants,
    relaxed_lattice_constant,
)
from uqcalc.properties.fracture import griffith_k1c
from uqcalc.properties.surfaces import (
    EV_PER_A2,
    QUICK_LAYERS,
    _planes,
    oriented_bulk,
    slab,
)

ORIENTATIONS = list(QUICK_LAYERS)


@pytest.fixture(scope="module")
def nearest_neighbour():
    """Pair term acting only between first neighbours of bcc at TUNGSTEN_A0 (2.754 Å < 3.0 < 3.18 Å)."""
    d = PairBasis(r_cut=3.0, r_min=2.0, n_basis=1)
    return LinearPotential(d, np.array([-3.0, -1.7]))


def quick(miller, **kwargs) -> SurfaceEnergy:
    kwargs.setdefault("lattice_constant", TUNGSTEN_A0)
    return SurfaceEnergy(miller, layers=QUICK_LAYERS[miller], **kwargs)


# -- geometry -----------------------------------------------------------------------------------


@pytest.mark.parametrize("miller", ORIENTATIONS)
def test_bulk_reference_is_the_perfect_crystal(pair, miller):
    ref = oriented_bulk(miller)
    ref.calc = pair
    cube = bcc_cell()
    cube.calc = pair
    assert ref.get_potential_energy() / len(ref) == pytest.approx(cube.get_potential_energy() / 2, abs=1e-10)
    assert np.abs(ref.get_forces()).max() < 1e-10
    assert ref.get_volume() == pytest.approx(cube.get_volume())


@pytest.mark.parametrize("miller", ORIENTATIONS)
def test_slab_geometry(miller):
    layers = QUICK_LAYERS[miller]
    top = slab(miller, layers, vacuum=12.0)
    ref = oriented_bulk(miller)
    assert _planes(top.positions[:, 2]).max() + 1 == layers
    assert np.allclose(top.cell[:2], ref.cell[:2])
    z = top.positions[:, 2]
    assert top.cell[2, 2] - (z.max() - z.min()) == pytest.approx(12.0)
    assert np.allclose(top.cell[2, :2], 0.0)
    assert top.pbc.all()
    # every plane holds the same number of atoms (1x1 cell: 1 or 2)
    assert len(set(np.bincount(_planes(z)))) == 1


def test_states_and_lattice_constant_default():
    # the default is each calculator's own lattice: no states without a calculator
    assert SurfaceEnergy((1, 1, 0)).lattice_constant is None
    assert not SurfaceEnergy((1, 1, 0)).combines_states
    prop = SurfaceEnergy((1, 1, 0), lattice_constant=TUNGSTEN_A0)
    assert prop.combines_states
    assert prop.name == "gamma_110" and prop.unit == "J/m^2" and prop.scale == pytest.approx(16.0218, abs=1e-4)
    slab_state, bulk_state = prop.states()
    assert (slab_state.relax, bulk_state.relax) == ("positions", "none")
    area = np.linalg.norm(np.cross(*slab_state.atoms.cell[:2]))
    assert slab_state.coefficient == pytest.approx(1 / (2 * area))
    assert bulk_state.coefficient == pytest.approx(-len(slab_state.atoms) / len(bulk_state.atoms) / (2 * area))
    assert SurfaceEnergy("112").miller == (1, 1, 2)
    assert SurfaceEnergy((2, 2, 0)).name == "gamma_110"
    with pytest.raises(ValueError, match="fixed lattice_constant"):
        SurfaceEnergy((1, 0, 0), lattice_constant=None).states()


# -- hand-computed values -----------------------------------------------------------------------


def test_constant_potential_has_no_surface_energy():
    d = PairBasis(r_cut=5.0, n_basis=4)
    theta = np.zeros(d.n_params)
    theta[0] = -4.2
    flat = LinearPotential(d, theta)
    for miller in ORIENTATIONS:
        assert quick(miller).evaluate(flat) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("miller", ORIENTATIONS)
def test_unrelaxed_surface_energy_is_a_broken_bond_count(nearest_neighbour, miller):
    a = TUNGSTEN_A0
    cube = bcc_cell(a)
    cube.calc = nearest_neighbour
    bond = (cube.get_potential_energy() / 2 - nearest_neighbour.theta[0]) / 4  # 8 bonds per atom, halved
    normal = np.asarray(miller, float) / np.linalg.norm(miller)
    vectors = 0.5 * a * np.array(list(itertools.product((1, -1), repeat=3)))
    # bonds crossing a lattice plane per area: density × Σ over bonds pointing up of their normal extent
    crossing = (2 / a**3) * sum(v @ normal for v in vectors if v @ normal > 0)
    expected = -bond * crossing / 2 * EV_PER_A2
    value = quick(miller, relaxed=False).evaluate(nearest_neighbour)
    assert value == pytest.approx(expected, rel=1e-10)


def test_nearest_neighbour_surface_energies_order(nearest_neighbour):
    # the densest plane breaks the fewest bonds: (110) lowest, as in W
    values = {m: quick(m, relaxed=False).evaluate(nearest_neighbour) for m in ORIENTATIONS}
    assert min(values, key=values.get) == (1, 1, 0)


# -- relaxed values with the pair model ---------------------------------------------------------


@pytest.mark.parametrize("miller", [(1, 0, 0), (1, 1, 1)])
def test_states_reproduce_evaluate(pair, miller):
    prop = quick(miller)
    energies = [relax(s.atoms, pair, s.relax, prop.fmax, prop.steps).get_potential_energy() for s in prop.states()]
    assert prop.evaluate(pair) == pytest.approx(prop.combine(energies, prop.states()), abs=1e-10)
    assert prop.evaluate(pair) <= quick(miller, relaxed=False).evaluate(pair) + 1e-6


@pytest.mark.parametrize("miller", [(1, 1, 0), (2, 1, 0)])
def test_translation_and_in_plane_supercell_invariance(pair, miller):
    prop = quick(miller)
    reference = prop.evaluate(pair)
    assert quick(miller, repeat=(2, 1)).evaluate(pair) == pytest.approx(reference, abs=2e-4)
    slab_state, bulk_state = prop.states()
    for shift in ([0.4, 1.3, 0.0], [0.0, 0.0, 2.1]):
        atoms = slab_state.atoms.copy()
        atoms.translate(shift)
        atoms.wrap()
        e_slab = relax(atoms, pair, "positions", prop.fmax).get_potential_energy()
        e_bulk = relax(bulk_state.atoms, pair, "none").get_potential_energy()
        assert prop.combine([e_slab, e_bulk], prop.states()) == pytest.approx(reference, abs=2e-4)


def test_thickness_and_vacuum_convergence(pair):
    thin = quick((1, 0, 0)).evaluate(pair)
    thick = SurfaceEnergy((1, 0, 0), lattice_constant=TUNGSTEN_A0).evaluate(pair)
    assert thin == pytest.approx(thick, abs=0.01)
    assert quick((1, 0, 0), vacuum=16.0).evaluate(pair) == pytest.approx(thin, abs=1e-8)


def test_own_lattice_constant(pair):
    a0 = relaxed_lattice_constant(pair)
    own = quick((1, 1, 0), lattice_constant=None).evaluate(pair)
    assert own == pytest.approx(quick((1, 1, 0), lattice_constant=a0).evaluate(pair), abs=1e-10)


# -- fracture -----------------------------------------------------------------------------------


def test_griffith_isotropic_limit():
    # C44 = (C11 - C12)/2: plane-strain K = sqrt(2 γ E / (1 - ν²)) in any orientation
    c11, c12 = 500.0, 200.0
    c44 = (c11 - c12) / 2
    young = c44 * (3 * c12 + 2 * c44) / (c12 + c44)
    nu = c12 / (2 * (c12 + c44))
    gamma = 3.0
    expected = np.sqrt(2 * gamma * young * 1e9 / (1 - nu**2)) / 1e6
    for surface, front in [((1, 0, 0), (0, 1, 0)), ((1, 1, 0), (0, 0, 1)), ((1, 1, 1), (1, -1, 0))]:
        assert griffith_k1c(c11, c12, c44, gamma, surface, front) == pytest.approx(expected, rel=1e-10)
    # K scales as sqrt(γ)
    assert griffith_k1c(c11, c12, c44, 4 * gamma) == pytest.approx(2 * expected, rel=1e-10)
    with pytest.raises(ValueError, match="not in the crack plane"):
        griffith_k1c(c11, c12, c44, gamma, (1, 0, 0), (1, 1, 0))


def test_griffith_toughness_combines_its_ingredients(pair):
    prop = GriffithToughness((1, 1, 0), layers=QUICK_LAYERS[(1, 1, 0)])
    assert prop.name == "K_Ic_110" and prop.front == (0, 0, 1)
    parts = prop.ingredients(pair)
    a0 = relaxed_lattice_constant(pair)
    assert parts["a0"] == pytest.approx(a0)
    c = cubic_elastic_constants(pair, a0)
    assert parts["C44"] == pytest.approx(c["C44"])
    assert parts["gamma"] == pytest.approx(quick((1, 1, 0), lattice_constant=a0).evaluate(pair))
    value = prop.evaluate(pair)
    assert value == pytest.approx(
        griffith_k1c(parts["C11"], parts["C12"], parts["C44"], parts["gamma"], (1, 1, 0), (0, 0, 1))
    )
    assert 0.5 < value < 5.0  # MPa m^1/2, the W range
