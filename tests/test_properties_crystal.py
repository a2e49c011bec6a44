"""Element- and structure-agnostic properties: ground states, the calculator's own lattice,
fcc and hcp cells, against oracles that do not use uqcalc's cell builders (an equation-of-state
fit, broken-bond counting for a nearest-neighbour pair potential, the axial-Ising relation
between the intrinsic stacking fault and the hcp phase)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.eos import EquationOfState

from uqcalc.properties import (
    IntrinsicStackingFaultEnergy,
    SurfaceEnergy,
    VacancyFormationEnergy,
    suite,
    tungsten_suite,
)
from uqcalc.properties.crystal import (
    FixedCell,
    cached_lattice,
    ground_state,
    reference_lattice,
    relaxed_lattice,
)
from uqcalc.properties.surfaces import EV_PER_A2


@pytest.mark.parametrize(("symbol", "structure"), [("W", "bcc"), ("Ta", "bcc"), ("Cu", "fcc"), ("Ni", "fcc"),
                                                    ("Mg", "hcp"), ("Ti", "hcp")])
def test_ground_state_from_ase_reference_data(symbol, structure):
    assert ground_state(symbol) == structure


def test_ground_state_of_a_non_metal_asks_for_structure():
    with pytest.raises(ValueError, match="Si.*diamond.*structure="):
        ground_state("Si")
    with pytest.raises(ValueError, match="unknown chemical symbol 'Xx'"):
        ground_state("Xx")


def test_w_keeps_the_teacher_lattice_and_other_elements_use_ase():
    assert reference_lattice("W", "bcc") == (3.1805, None)
    assert reference_lattice("Cu", "fcc") == (pytest.approx(3.61), None)
    # Cu in bcc: the same atomic volume as its fcc reference
    a_bcc, _ = reference_lattice("Cu", "bcc")
    assert a_bcc**3 / 2 == pytest.approx(3.61**3 / 4, rel=1e-12)


def test_relaxed_lattice_matches_an_equation_of_state_fit():
    """Oracle: ASE's EOS fit to a volume scan of the fcc cube (EMT Cu); the minimum of the fit
    agrees with the zero-stress cell to the fit's accuracy (~1e-4 Å for ±1 % strains)."""
    calc = EMT()
    a, covera = relaxed_lattice(calc, "Cu", "fcc")
    assert covera is None
    scan = np.linspace(0.99, 1.01, 7) * 3.59
    volumes, energies = [], []
    for x in scan:
        cube = bulk("Cu", "fcc", a=x, cubic=True)
        cube.calc = EMT()
        volumes.append(cube.get_volume())
        energies.append(cube.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    assert a == pytest.approx(v0 ** (1 / 3), abs=2e-4)


def test_relaxed_lattice_is_computed_once_per_calculator():
    calls = []

    def compute():
        calls.append(1)
        return 1.0, None

    first, second = EMT(), EMT()
    assert cached_lattice(first, ("k",), compute) == (1.0, None)
    assert cached_lattice(first, ("k",), compute) == (1.0, None)
    assert len(calls) == 1
    cached_lattice(second, ("k",), compute)
    assert len(calls) == 2  # a new calculator (an ensemble member) is computed afresh


def test_hcp_relaxed_lattice_relaxes_c_over_a():
    """A Lennard-Jones hcp crystal (cutoff beyond the third shell) relaxes to a c/a within
    0.5 % of ideal (pair potentials give nearly ideal c/a); the volume is the EOS minimum."""
    calc = LennardJones(sigma=2.85, epsilon=0.05, rc=6.5, smooth=True)
    a, covera = relaxed_lattice(calc, "Mg", "hcp")
    assert covera == pytest.approx(np.sqrt(8 / 3), rel=5e-3)
    cell = bulk("Mg", "hcp", a=a, c=covera * a)
    cell.calc = calc
    assert np.abs(cell.get_stress()).max() < 1e-5  # eV/Å^3 (≈ 1.6 MPa)


def test_own_lattice_equals_fixed_cells_at_that_lattice():
    calc = EMT()
    own = VacancyFormationEnergy(size=2, symbol="Cu", fmax=1e-3)
    assert own.lattice_constant is None and not own.combines_states
    with pytest.raises(ValueError, match="fixed lattice_constant"):
        own.states()
    a, _ = relaxed_lattice(calc, "Cu", "fcc")
    fixed = VacancyFormationEnergy(size=2, symbol="Cu", fmax=1e-3, lattice_constant=a)
    assert fixed.combines_states
    assert own.evaluate(calc) == pytest.approx(fixed.evaluate(EMT()), abs=1e-9)
    assert own.at_own_lattice(calc).lattice_constant == a


def _nn_pair():
    """fcc at a = 3.6 Å with a Lennard-Jones pair cut between the first (2.55 Å) and second
    (3.6 Å) shells, unsmoothed: every bond is one first-neighbour bond of energy φ."""
    a, rc = 3.6, 3.1
    lj = {"sigma": 2.3, "epsilon": 0.1}
    phi = 4 * lj["epsilon"] * ((lj["sigma"] / (a / np.sqrt(2))) ** 12 - (lj["sigma"] / (a / np.sqrt(2))) ** 6)
    phi -= 4 * lj["epsilon"] * ((lj["sigma"] / rc) ** 12 - (lj["sigma"] / rc) ** 6)  # ASE shifts by φ(rc)
    return a, phi, LennardJones(rc=rc, smooth=False, **lj)


@pytest.mark.parametrize(("miller", "n_cross", "area"), [
    ((1, 1, 1), 3, np.sqrt(3) / 4),  # bonds cut per primitive surface cell, its area / a²
    ((1, 0, 0), 4, 1 / 2),
    ((1, 1, 0), 6, np.sqrt(2) / 2),
])
def test_fcc_unrelaxed_surface_energy_is_broken_bond_count(miller, n_cross, area):
    """Oracle: cutting the crystal breaks n_cross first-neighbour bonds per primitive cell of
    area A and makes two surfaces, so γ = n_cross·(−φ)/(2A) exactly for a nearest-neighbour
    pair potential and bulk-terminated (unrelaxed) slabs."""
    a, phi, calc = _nn_pair()
    gamma = SurfaceEnergy(miller, symbol="Cu", lattice_constant=a, relaxed=False).evaluate(calc)
    expected = n_cross * (-phi) / (2 * area * a**2) * EV_PER_A2
    assert gamma == pytest.approx(expected, rel=1e-10)


def test_fcc_surface_ordering_emt():
    """EMT Cu: γ(111) < γ(100) < γ(110), the broken-bond order every fcc metal follows."""
    calc = EMT()
    g = {p.name: p.evaluate(calc) for p in suite("Cu", names=["gamma_111", "gamma_100", "gamma_110"], quick=True)}
    assert g["gamma_111"] < g["gamma_100"] < g["gamma_110"]


def test_intrinsic_stacking_fault_is_twice_the_hcp_energy_per_area():
    """Oracle: the axial next-nearest-neighbour Ising model, γ_isf ≈ 2(E_hcp − E_fcc)/A with
    A = √3a²/4 the (111) area per atom, both at the fcc nearest-neighbour distance and ideal
    stacking. EMT's interactions reach the third shell only, where the ANNNI relation holds
    closely; tolerance 2 % allows the small relaxation of the faulted cell normal to the fault."""
    calc = EMT()
    a, _ = relaxed_lattice(calc, "Ni", "fcc")
    isf = IntrinsicStackingFaultEnergy(symbol="Ni", lattice_constant=a).evaluate(calc)
    fcc = bulk("Ni", "fcc", a=a)
    fcc.calc = EMT()
    hcp = bulk("Ni", "hcp", a=a / np.sqrt(2), c=a / np.sqrt(2) * np.sqrt(8 / 3))
    hcp.calc = EMT()
    d_e = hcp.get_potential_energy() / len(hcp) - fcc.get_potential_energy() / len(fcc)
    expected = 2 * d_e / (np.sqrt(3) * a**2 / 4) * EV_PER_A2
    # (EMT puts hcp Ni slightly below fcc, so both are small and negative: an EMT artefact,
    # not the code's; the relation is what is tested)
    assert isf == pytest.approx(expected, rel=2e-2)


def test_suite_sets_per_structure():
    fcc = [p.name for p in suite("Cu", quick=True)]
    hcp = [p.name for p in suite("Mg", quick=True)]
    for name in ["gamma_111", "intrinsic_stacking_fault_energy_111", "unstable_stacking_fault_energy_111",
                 "sia_formation_energy_100", "sia_formation_energy_octahedral", "dE_bcc", "K_Ic_111"]:
        assert name in fcc
    assert "dE_fcc" not in fcc and "sia_formation_energy_111" not in fcc
    for name in ["gamma_basal", "gamma_prismatic", "sia_formation_energy_basal_split", "dE_fcc", "ca_hcp",
                 "divacancy_binding_energy_basal", "divacancy_binding_energy_out_of_plane"]:
        assert name in hcp
    assert not any(n.startswith(("C11", "K_Ic")) for n in hcp)  # cubic-only properties
    assert all(p.symbol == "Mg" for p in suite("Mg"))
    # the W suite is the bcc suite at the teacher's lattice
    assert [p.name for p in suite("W", lattice_constant=3.1805)] == [p.name for p in tungsten_suite()]
    fixed = [p for p in tungsten_suite() if isinstance(p, FixedCell)]
    assert len(fixed) == 18 and all(p.lattice_constant == 3.1805 for p in fixed)


def test_hcp_point_defects_and_surfaces_evaluate():
    """hcp cells are built and relaxed at the calculator's own (a, c/a): vacancy and surface
    energies of a Lennard-Jones crystal are positive, basal below prismatic (close packed)."""
    calc = LennardJones(sigma=2.85, epsilon=0.05, rc=6.5, smooth=True)
    values = {p.name: p.evaluate(calc)
              for p in suite("Mg", "hcp", names=["vacancy_formation_energy", "gamma_basal", "gamma_prismatic"],
                             quick=True)}
    assert values["vacancy_formation_energy"] > 0
    assert 0 < values["gamma_basal"] < values["gamma_prismatic"]


def test_ta_suite_has_no_tungsten_in_it():
    props = suite("Ta")
    assert all(p.symbol == "Ta" for p in props)
    assert all(p.crystal == "bcc" for p in props)
    assert all(p.lattice_constant is None for p in props if isinstance(p, FixedCell))


@pytest.mark.parametrize(("symbol", "structure", "a"), [("Ta", "bcc", 3.32), ("Cu", "fcc", 3.61), ("Mg", "hcp", 3.21)])
def test_every_state_of_a_suite_is_made_of_its_element(symbol, structure, a):
    """States are what implicit propagation and box corners evaluate: a tungsten cell hiding in
    a Ta suite (as the unstable-fault states once were) would propagate the wrong material."""
    for prop in suite(symbol, structure, quick=True, lattice_constant=a):
        if not getattr(prop, "combines_states", False):
            continue
        for state in prop.states() or []:  # None: states found with a calculator (the NEB saddle)
            assert set(state.atoms.get_chemical_symbols()) == {symbol}, (prop.name, state.name)
    from uqcalc.properties import GSFCurve

    if structure != "hcp":
        curve = GSFCurve(symbol=symbol, structure=structure, lattice_constant=a)
        assert all(p.symbol == symbol and p.crystal == structure for p in curve.points())
