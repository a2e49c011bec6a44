"""Lattice trapping (uqcalc.properties.fracture): clusters, brackets, members and the gradient.

The cheap crack model is a 4 Å PairBasis fitted to teacher-labelled bcc W (tests/models.py):
< 1 s per bracket in the quick 9 Å cluster, and its tips are trapped on both sides of K_G.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.optimize import BFGS

from uqcalc import LinearPotential
from uqcalc.ensemble import ParameterEnsemble
from uqcalc.properties import LatticeTrapping, suite, tungsten_suite
from uqcalc.properties.base import relax
from uqcalc.properties.fracture import QUICK_TRAPPING, CrackCluster, TrappingError, parse_system
from uqcalc.properties.fracture.griffith import K_UNIT
from uqcalc.properties.fracture.sensitivity import critical_bond

from .models import short_pair_model

# the 4 Å model needs a clamped shell wider than its cutoff
QUICK = dict(QUICK_TRAPPING, clamp=5.0, layers=6)


def quick(system="(110)[1-10]", bound="advance", **settings):
    return LatticeTrapping(system, bound, **(QUICK | settings))


@pytest.fixture(scope="module")
def model():
    return short_pair_model()


@pytest.fixture(scope="module")
def theta_calc(model):
    descriptor, ensemble = model
    return LinearPotential(descriptor, ensemble.theta)


@pytest.fixture(scope="module")
def brackets(theta_calc):
    """Both quick (110)[1-10] bounds of the 4 Å model at θ̄ (its (100)[010] tip does not open a bond
    past 1.4 of its length below 2.5 K_G: it fails with TrappingError)."""
    return {b: quick("(110)[1-10]", b).bracket(theta_calc) for b in ("advance", "heal")}


# -- names, systems, suites -----------------------------------------------------------------


def test_names_and_systems():
    assert LatticeTrapping("(100)[010]", "advance").name == "K_plus_100"
    assert LatticeTrapping("(110)[1-10]", "heal").name == "K_minus_110"
    # a non-default system keeps its front in the name
    assert LatticeTrapping("(110)[001]", "advance").name == "K_plus_110_001"
    assert parse_system("(1 1 0)[1 -1 0]") == ((1, 1, 0), (1, -1, 0))
    with pytest.raises(ValueError, match=r"\(110\)\[100\]"):
        LatticeTrapping("(110)[100]")  # front not in the plane: the message names the system
    with pytest.raises(ValueError, match="bound"):
        LatticeTrapping("(100)[010]", "open")
    with pytest.raises(ValueError, match="k_tol"):
        LatticeTrapping(k_tol=0.1, k_step=0.05)


def test_suites_hold_the_trapping_bounds_of_cubic_metals():
    w = [p.name for p in tungsten_suite()]
    assert [n for n in w if n.startswith(("K_plus", "K_minus"))] == ["K_plus_100", "K_minus_100", "K_plus_110",
                                                                     "K_minus_110"]
    cu = [p for p in suite("Cu") if isinstance(p, LatticeTrapping)]
    assert [(p.name, p.front) for p in cu] == [("K_plus_100", (0, 1, 0)), ("K_minus_100", (0, 1, 0)),
                                               ("K_plus_111", (1, -1, 0)), ("K_minus_111", (1, -1, 0))]
    assert not any(isinstance(p, LatticeTrapping) for p in suite("Mg"))  # hcp: no cubic crack field


# -- the cluster ----------------------------------------------------------------------------


@pytest.mark.parametrize("symbol, structure, a, system", [("W", "bcc", 3.18, "(100)[010]"),
                                                         ("W", "bcc", 3.18, "(110)[1-10]"),
                                                         ("Cu", "fcc", 3.61, "(111)[1-10]")])
def test_cluster_regions_and_crossing_bonds(symbol, structure, a, system):
    plane, front = parse_system(system)
    cluster = CrackCluster.build(symbol, structure, a, plane, front, radius=9.0, clamp=5.0)
    atoms = cluster.reference
    r = np.hypot(*(atoms.positions[:, :2] - cluster.centre).T)
    assert np.all(r[cluster.free] < 9.0) and np.all((r[~cluster.free] >= 9.0) & (r[~cluster.free] < 14.0))
    assert set(atoms.constraints[0].index) == set(np.flatnonzero(~cluster.free))
    assert atoms.pbc.tolist() == [False, False, True]
    # one atom of every crossing bond on either side of the crack plane, all free, nearest neighbours
    y = atoms.positions[cluster.bonds, 1]
    assert np.all(y[:, 0] > cluster.centre[1]) and np.all(y[:, 1] < cluster.centre[1])
    assert cluster.free[cluster.bonds].all()
    d1 = {"bcc": np.sqrt(3) / 2, "fcc": 1 / np.sqrt(2)}[structure] * a
    np.testing.assert_allclose(cluster.bond_length, d1, rtol=1e-6)
    np.testing.assert_allclose(cluster.bond_stretch(atoms), 1.0, atol=1e-12)


def test_tip_column_follows_the_load(theta_calc):
    prop = quick("(100)[010]")
    c = prop.ingredients(theta_calc)
    from uqcalc.properties.fracture.trapping import cubic_crack

    crack = cubic_crack(prop.plane, prop.front, c["C11"], c["C12"], c["C44"])
    cluster = prop.cluster(c["a0"])
    columns = [cluster.tip_column(cluster.loaded(crack, k)) for k in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert columns == sorted(columns) and columns[-1] > columns[0]  # more load, more open bonds


# -- brackets -------------------------------------------------------------------------------


def test_bounds_straddle_griffith(brackets):
    up, down = brackets["advance"], brackets["heal"]
    assert up.k_griffith == down.k_griffith
    assert up.value > up.k_griffith > down.value
    for b in (up, down):
        assert abs(b.k_high - b.k_low) <= QUICK["k_tol"] * b.k_griffith + 1e-12


@pytest.mark.parametrize("bound", ["advance", "heal"])
def test_trapped_state_is_stationary_and_clamped_on_the_field(theta_calc, brackets, bound):
    b = brackets[bound]
    cluster, load = b.load.cluster, b.load
    atoms = b.trapped.copy()
    atoms.set_constraint()
    atoms.calc = theta_calc
    forces = atoms.get_forces()
    assert np.abs(forces[cluster.free]).max() < QUICK["fmax"]  # a relaxed state of the free atoms
    expected = cluster.reference.positions + load.field(b.k_low / K_UNIT)
    np.testing.assert_allclose(atoms.positions[~cluster.free], expected[~cluster.free], atol=1e-9)
    # the bracket's ends: trapped at k_low, the tip one column further (or back) at k_high
    sign = 1 if bound == "advance" else -1
    assert cluster.tip_column(b.trapped) == b.start_column
    assert sign * (cluster.tip_column(b.moved) - b.start_column) > 0


def test_out_of_range_is_an_error_that_names_the_property(theta_calc):
    with pytest.raises(TrappingError, match="K_plus_110"):
        quick(k_range=(0.5, 1.05), k_step=0.04, k_tol=0.01).bracket(theta_calc)


def test_member_values_match_a_direct_relaxation(model):
    """Resampled member values are each member's own bracket, and a different minimiser (BFGS,
    to 1e-5 eV/Å, ten times tighter than the bracket's confirmation) confirms each bracket:
    trapped at its k_low, healed at its k_high. (Before the confirmation step, FIRE stopped at
    5e-3 eV/Å on the flat slope past the trap: this check healed member 1's "trapped" state.)"""
    from uqcalc.propagate import propagate

    descriptor, ensemble = model
    prop = quick("(110)[1-10]", "heal")
    out = propagate(prop, (descriptor, ParameterEnsemble(ensemble.theta, members=ensemble.members[:3])),
                    method="resample", progress=False)
    assert not out.failed
    for m, value in enumerate(out.members):
        calc = LinearPotential(descriptor, ensemble.members[m])
        b = prop.bracket(calc)
        assert value == pytest.approx(b.value, abs=1e-12)
        cluster, load = b.load.cluster, b.load
        state = relax(b.trapped, calc, "positions", fmax=1e-5, steps=5000, optimizer=BFGS)
        assert cluster.tip_column(state) == b.start_column
        state.positions += load.field(b.k_high / K_UNIT) - load.field(b.k_low / K_UNIT)
        moved = relax(state, calc, "positions", fmax=1e-5, steps=5000, optimizer=BFGS)
        assert cluster.tip_column(moved) < b.start_column  # healed by at least a column
    assert out.lower < out.value < out.upper or np.ptp(out.members) < 3 * QUICK["k_tol"] * b.k_griffith


# -- implicit differentiation ---------------------------------------------------------------


def test_gradient_agrees_with_finite_differences_of_the_trapped_state(model):
    """dK/dθ from the trapped state's linear response against finite differences: the critical
    bond's stretch relaxed at the same absolute K with each perturbed θ's own a0 and C_ij,
    divided by its finite-difference response to K. Steps are small enough (|ΔK| ≈ 1e-3
    MPa m^1/2, a tenth of the bracket's margin) that the perturbed state stays trapped; the
    relaxations are converged to 1e-6 eV/Å, so the stretch differences (~1e-4) carry < 1 %
    error; 5 % tolerance."""
    descriptor, ensemble = model
    theta = ensemble.theta
    prop = quick("(110)[1-10]", "heal", fmax=1e-6, steps=100000)
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((2, theta.size))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    value, slopes, info = prop.parameter_gradient(descriptor, theta, directions)
    b = prop.bracket(LinearPotential(descriptor, theta))
    load, k = b.load, b.k_low / K_UNIT
    relaxation = load.relaxation(b.trapped, k)
    bond = critical_bond(load.cluster, b.trapped, b.moved, "heal")

    def stretch(th, k_abs):
        calc = LinearPotential(descriptor, th)
        c = prop.ingredients(calc)
        atoms = load.configuration(relaxation, k_abs, c["a0"], (c["C11"], c["C12"], c["C44"]))
        relaxed = relax(atoms, calc, "positions", fmax=1e-6, steps=100000, optimizer=BFGS)
        return load.cluster.bond_stretch(relaxed)[bond]

    hk = 1e-3 * k
    ds_dk = (stretch(theta, k + hk) - stretch(theta, k - hk)) / (2 * hk)
    assert info["boundary_derivatives"]["K"] == pytest.approx(ds_dk, rel=0.05)
    for j, d in enumerate(directions):
        h = 1e-3 / abs(slopes[j])
        ds = (stretch(theta + h * d, k) - stretch(theta - h * d, k)) / (2 * h)
        assert -ds / ds_dk * K_UNIT == pytest.approx(slopes[j], rel=0.05)


@pytest.mark.slow
def test_teacher_100_crack_is_trapped_and_snaps():
    """The W teacher (W_2940_2017_2 SNAP) in the quick cluster: K− < K_G < K+ for (100)[010],
    and the tip leaves its trap by an instability (a jump of ~0.5 Å, not a continuous opening)."""
    from uqcalc.datasets import tungsten

    calc = tungsten.teacher()
    for bound in ("advance", "heal"):
        b = LatticeTrapping("(100)[010]", bound, **QUICK_TRAPPING, layers=6).bracket(calc)
        assert (b.value > 1.1 * b.k_griffith) if bound == "advance" else (b.value < 0.95 * b.k_griffith)
        assert b.jump > 0.3


def test_fcc_cracks_with_emt():
    """No tungsten assumption: the fcc Cu suite's heal bounds with ASE's EMT lie below K_G."""
    from ase.calculators.emt import EMT

    calc = EMT()
    for prop in suite("Cu", quick=True):
        if isinstance(prop, LatticeTrapping) and prop.bound == "heal":
            b = prop.bracket(calc)
            assert b.value < b.k_griffith and b.load.cluster.reference.get_chemical_symbols()[0] == "Cu"


# -- energy release of one step of growth ---------------------------------------------------


def test_tip_energy_release_grows_with_the_load_and_matches_the_relaxed_states(theta_calc):
    """G_tip = −ΔE/ΔA between the trapped tip and the tip one column ahead, both relaxed at the
    same load: re-relaxing the two states with BFGS to 1e-5 eV/Å and recomputing the energy
    difference by hand agrees to 1e-3 J/m² (relaxation tolerance: 1e-4 eV/Å over ~1 Å of
    soft-mode travel, over a 7 Å² area); more load releases more energy (G ∝ K²)."""
    from uqcalc.properties import TipEnergyRelease
    from uqcalc.properties.surfaces import EV_PER_A2

    settings = {k: v for k, v in QUICK.items()}
    values = {}
    for k in (1.2, 1.4):
        prop = TipEnergyRelease("(110)[1-10]", k=k, trapping=settings)
        assert prop.name == "tip_energy_release_110"
        values[k] = prop.evaluate(theta_calc)
    assert values[1.4] > values[1.2]
    trapped, advanced, bracket = TipEnergyRelease("(110)[1-10]", k=1.2, trapping=settings).states(theta_calc)
    cluster = bracket.load.cluster
    energies = []
    for atoms in (trapped, advanced):
        tight = relax(atoms, theta_calc, "positions", fmax=1e-5, steps=5000, optimizer=BFGS)
        energies.append(tight.get_potential_energy())
    columns = cluster.tip_column(advanced) - cluster.tip_column(trapped)
    assert columns >= 1 and cluster.tip_column(trapped) == bracket.start_column
    area = columns * cluster.spacing * trapped.cell[2, 2]
    assert -(energies[1] - energies[0]) / area * EV_PER_A2 == pytest.approx(values[1.2], abs=1e-3)


def test_tip_energy_release_outside_the_trapping_range_is_an_error(theta_calc):
    from uqcalc.properties import TipEnergyRelease

    with pytest.raises(TrappingError, match="healed back"):
        TipEnergyRelease("(110)[1-10]", k=0.9, trapping=dict(QUICK)).evaluate(theta_calc)
    with pytest.raises(ValueError, match="trapping settings"):
        TipEnergyRelease(trapping={"bound": "heal"})
