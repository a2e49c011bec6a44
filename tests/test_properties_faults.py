"""Tests of the generalized stacking fault properties.

Oracles: bond counting for the unrelaxed γ(s) of a short-ranged pair potential (each pair of
planes p apart straddles the fault p times per column, so γ A = Σ_p p Σ_m [φ(|p a3 + m + s a1|)
− φ(|p a3 + m|)] over in-plane lattice vectors m); a constant-only potential (γ = 0); the
two-fold symmetry of {110} (γ(s) = γ(1 − s)); lattice periodicity (γ(1) = 0); invariance under
in-plane repetition and rigid translation; the states recombined by hand. Relaxations keep
the default fmax = 1e-3 eV/Å: the primitive slabs have 24–36 atoms.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list

from uqcalc import LinearPotential
from uqcalc.descriptors import PairBasis
from uqcalc.properties.base import TUNGSTEN_A0, relax
from uqcalc.properties.faults import (
    EV_PER_A2_IN_J_PER_M2,
    GSF_PLANES,
    GSFCurve,
    StackingFaultEnergy,
    UnstableStackingFaultEnergy,
    fault_slab,
)

from .models import recombine


@pytest.fixture(scope="module")
def short_pair():
    """A nearest-neighbour pair potential: cut at 3.1 Å, between the 1NN (2.75) and 2NN (3.18) shells.

    Repulsive below 2.55 Å, φ(1NN) = −1 eV; large coefficients because the C2 cutoff is steep.
    """
    descriptor = PairBasis(r_cut=3.1, r_min=2.2, n_basis=3)
    return LinearPotential(descriptor, np.array([-3.0, 400.0, -300.0, 0.0]))


def phi(calc, r: float) -> float:
    """Pair energy φ(r) = E(dimer) − 2 β0."""
    if r >= calc.descriptor.r_cut:
        return 0.0
    dimer = Atoms("W2", positions=[[0, 0, 0], [r, 0, 0]], cell=[20, 20, 20], pbc=False)
    single = Atoms("W", cell=[20, 20, 20], pbc=False)
    dimer.calc = single.calc = calc
    return dimer.get_potential_energy() - 2 * single.get_potential_energy()


def bond_counting_gamma(calc, plane: str, shift: float) -> float:
    a1, a2, a3 = (TUNGSTEN_A0 * v for v in GSF_PLANES[plane])
    r_cut = calc.descriptor.r_cut
    spacing = np.dot(a3, np.cross(a1, a2)) / np.linalg.norm(np.cross(a1, a2))
    total = 0.0
    for p in range(1, int(r_cut / spacing) + 1):
        for m1 in range(-4, 5):
            for m2 in range(-4, 5):
                bond = p * a3 + m1 * a1 + m2 * a2
                total += p * (phi(calc, np.linalg.norm(bond + shift * a1)) - phi(calc, np.linalg.norm(bond)))
    return EV_PER_A2_IN_J_PER_M2 * total / np.linalg.norm(np.cross(a1, a2))


# -- geometry ------------------------------------------------------------------------------


@pytest.mark.parametrize("plane", ["110", "112"])
def test_slab_is_bcc_with_a_rigidly_shifted_upper_half(plane):
    slab = fault_slab(plane, 0.0)
    a1, a2, a3 = GSF_PLANES[plane]
    assert abs(np.linalg.det([a1, a2, a3])) == pytest.approx(0.5)  # primitive bcc cell
    assert slab.cell[2, :2] == pytest.approx([0, 0]) and slab.cell[:2, 2] == pytest.approx([0, 0])
    i, d = neighbor_list("id", slab, 3.0)
    coordination = np.bincount(i, minlength=len(slab))
    interior = np.abs(slab.positions[:, 2] - slab.info["fault_z"]) < 8.0
    assert set(coordination[interior]) == {8} and d.min() == pytest.approx(np.sqrt(3) / 2 * TUNGSTEN_A0)
    shifted = fault_slab(plane, 0.3)
    upper = slab.positions[:, 2] > slab.info["fault_z"]
    assert upper.sum() == len(slab) // 2
    b = np.sqrt(3) / 2 * TUNGSTEN_A0
    delta = shifted.get_scaled_positions() - slab.get_scaled_positions()
    delta -= np.round(delta)
    assert np.allclose(delta[~upper], 0) and np.allclose(delta[upper] @ slab.cell, [0.3 * b, 0, 0])
    assert fault_slab(plane, repeat=(2, 3)).info["area"] == pytest.approx(6 * slab.info["area"])


# -- exact values --------------------------------------------------------------------------


@pytest.mark.parametrize("plane", ["110", "112"])
@pytest.mark.parametrize("shift", [0.5, 0.3, 0.8])
def test_unrelaxed_gamma_is_bond_counting(plane, shift, short_pair):
    value = StackingFaultEnergy(plane=plane, shift=shift, relaxed=False, lattice_constant=TUNGSTEN_A0).evaluate(short_pair)
    assert value == pytest.approx(bond_counting_gamma(short_pair, plane, shift), abs=1e-9)
    assert abs(value) > 0.1


@pytest.mark.parametrize("plane", ["110", "112"])
def test_constant_potential_and_lattice_shift_give_zero(plane, constant_only, pair):
    assert StackingFaultEnergy(plane=plane, shift=0.4, lattice_constant=TUNGSTEN_A0).evaluate(constant_only) == pytest.approx(0, abs=1e-9)
    assert StackingFaultEnergy(plane=plane, shift=1.0, lattice_constant=TUNGSTEN_A0).evaluate(pair) == pytest.approx(0, abs=1e-7)


# -- symmetry, invariances, states ---------------------------------------------------------


def test_110_curve_is_symmetric_and_its_maximum_is_half(pair):
    curve = GSFCurve(plane="110", shifts=(0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0), lattice_constant=TUNGSTEN_A0).evaluate(pair)
    assert curve[0] == 0.0 and curve[-1] == 0.0
    assert curve == pytest.approx(curve[::-1], abs=1e-6)
    assert np.argmax(curve) == 3
    assert UnstableStackingFaultEnergy(plane="110", lattice_constant=TUNGSTEN_A0).evaluate(pair) == pytest.approx(curve[3], abs=1e-9)


def test_112_unstable_fault_is_located_off_half(pair):
    prop = UnstableStackingFaultEnergy(plane="112", shift_tol=0.02, lattice_constant=TUNGSTEN_A0)
    shift, gamma = prop.locate(pair)
    grid = GSFCurve(plane="112", shifts=np.arange(0.3, 0.81, 0.05), lattice_constant=TUNGSTEN_A0).evaluate(pair)
    assert gamma >= grid.max() - 1e-9
    assert abs(shift - 0.5) > 0.01  # asymmetric (twinning vs antitwinning)
    assert StackingFaultEnergy(plane="112", shift=1 - shift, lattice_constant=TUNGSTEN_A0).evaluate(pair) < gamma - 0.01
    assert prop.evaluate(pair) == pytest.approx(gamma, abs=1e-9)
    assert prop.states()[0].atoms.info["shift"] == UnstableStackingFaultEnergy.TEACHER_SHIFT_112


def test_curve_points_match_the_curve(pair):
    curve = GSFCurve(plane="112", shifts=(0.25, 0.7), lattice_constant=TUNGSTEN_A0)
    values = curve.evaluate(pair)
    assert values == pytest.approx([p.evaluate(pair) for p in curve.points()], abs=1e-9)
    assert curve.name == "gsf_112" and curve.unit == "J/m^2"


@pytest.mark.parametrize(
    "prop",
    [
        StackingFaultEnergy(plane="110", shift=0.35, lattice_constant=TUNGSTEN_A0),
        StackingFaultEnergy(plane="112", shift=0.6, lattice_constant=TUNGSTEN_A0),
        UnstableStackingFaultEnergy(plane="110", lattice_constant=TUNGSTEN_A0),
        UnstableStackingFaultEnergy(plane="112", shift=0.45, lattice_constant=TUNGSTEN_A0),
    ],
    ids=lambda p: p.name,
)
def test_states_recombine_to_evaluate_translation_and_repeat_invariant(prop, pair):
    value = prop.evaluate(pair)
    states = prop.states()
    assert [s.relax for s in states] == ["positions", "positions"]
    area = states[0].atoms.info["area"]
    assert [s.coefficient for s in states] == pytest.approx([1 / area, -1 / area])
    assert recombine(prop, pair) == pytest.approx(value, abs=1e-9)
    assert recombine(prop, pair, translate=[0.37, -1.21, 0.8]) == pytest.approx(value, abs=1e-5)
    # every atom of a plane is equivalent: a larger in-plane cell changes nothing
    bigger = type(prop)(plane=prop.plane, shift=prop.shift, repeat=(2, 1), lattice_constant=TUNGSTEN_A0)
    assert bigger.evaluate(pair) == pytest.approx(value, abs=1e-5)


def test_relaxation_is_normal_only_and_thickness_converged(pair):
    prop = StackingFaultEnergy(plane="110", shift=0.5, lattice_constant=TUNGSTEN_A0)
    fault = relax(prop.states()[0].atoms, pair, "positions")
    start = prop.states()[0].atoms
    assert np.allclose(fault.positions[:, :2], start.positions[:, :2])
    assert np.abs(fault.positions[:, 2] - start.positions[:, 2]).max() > 1e-3
    thin = StackingFaultEnergy(plane="110", shift=0.5, layers=12, lattice_constant=TUNGSTEN_A0).evaluate(pair)
    assert thin == pytest.approx(prop.evaluate(pair), abs=2e-3)


def test_invalid_settings():
    with pytest.raises(ValueError, match="plane"):
        StackingFaultEnergy(plane="111", lattice_constant=TUNGSTEN_A0)
    with pytest.raises(ValueError, match="layers"):
        StackingFaultEnergy(layers=7, lattice_constant=TUNGSTEN_A0)
    assert StackingFaultEnergy(plane="{112}", lattice_constant=TUNGSTEN_A0).plane == "112"
    assert UnstableStackingFaultEnergy(plane="112", lattice_constant=TUNGSTEN_A0).name == "unstable_stacking_fault_energy_112"
