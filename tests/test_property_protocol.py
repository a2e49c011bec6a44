"""The Property protocol: names and units follow the settings, states say what they are.

The first tests reproduce a bug of the earlier design: names and units were fields set once in
``__post_init__``, so a copy with a changed setting (``dataclasses.replace``,
``tungsten_suite(**overrides)``) kept the old name — a property *named*
``sia_formation_energy_111`` computed the ⟨100⟩ dumbbell, and studies, which key results and
references by name, would have scored it against the ⟨111⟩ reference.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from ase.build import bulk

from uqcalc.errors import InputError, UnknownNameError
from uqcalc.properties import (
    DivacancyBindingEnergy,
    ElasticConstant,
    GriffithToughness,
    InterstitialFormationEnergy,
    PhaseEnergy,
    ShearModulus,
    State,
    StateProperty,
    SurfaceEnergy,
    VacancyRelaxationVolume,
    tungsten_suite,
)
from uqcalc.properties.surfaces import LAYERS

from .models import A0


def test_suite_override_renames_the_interstitial():
    (prop,) = tungsten_suite(["sia_formation_energy_111"], quick=True, configuration="100")
    assert prop.configuration == "100"
    assert prop.name == "sia_formation_energy_100"
    assert len(prop.states()[0].atoms) == 2 * 3**3 + 1


@pytest.mark.parametrize(("prop", "change", "name", "unit"), [
    (DivacancyBindingEnergy(neighbor=1, size=3, lattice_constant=A0), {"neighbor": 2}, "divacancy_binding_energy_2nn", "eV"),
    (InterstitialFormationEnergy(size=3, lattice_constant=A0), {"configuration": "<110>"}, "sia_formation_energy_110", "eV"),
    (VacancyRelaxationVolume(size=3, in_atomic_volumes=True, lattice_constant=A0), {"in_atomic_volumes": False},
     "vacancy_relaxation_volume", "Å^3"),
    (VacancyRelaxationVolume(size=3, lattice_constant=A0), {"in_atomic_volumes": True}, "vacancy_relaxation_volume", "Ω0"),
    (PhaseEnergy("fcc", "energy"), {"kind": "volume"}, "dV_fcc", "Å^3/atom"),
    (PhaseEnergy("fcc"), {"phase": "hcp"}, "dE_hcp", "eV/atom"),
    (ElasticConstant("C11"), {"component": "C44"}, "C44", "GPa"),
    (ShearModulus("voigt"), {"average": "hill"}, "G_H", "GPa"),
    (SurfaceEnergy((1, 0, 0), lattice_constant=A0), {"miller": (1, 1, 1)}, "gamma_111", "J/m^2"),
    (GriffithToughness((1, 0, 0)), {"crack_surface": (1, 1, 0)}, "K_Ic_110", "MPa m^1/2"),
])
def test_replaced_settings_carry_their_name_and_unit(prop, change, name, unit):
    new = dataclasses.replace(prop, **change)
    assert (new.name, new.unit) == (name, unit)


def test_defaults_derived_from_settings_follow_them():
    # layers=None and crack_front=None mean "the default for this orientation", also after replace
    surface = dataclasses.replace(SurfaceEnergy((1, 0, 0), lattice_constant=A0), miller=(1, 1, 1))
    assert surface.n_layers == LAYERS[(1, 1, 1)]
    assert len(surface.states()[0].atoms) == LAYERS[(1, 1, 1)]
    crack = dataclasses.replace(GriffithToughness((1, 0, 0)), crack_surface=(1, 1, 0))
    assert crack.front == (0, 0, 1)


def test_label_overrides_the_name_and_survives_replace():
    prop = SurfaceEnergy((1, 1, 0), label="gamma_110_thin", layers=6, lattice_constant=A0)
    assert prop.name == "gamma_110_thin"
    assert dataclasses.replace(prop, layers=8).name == "gamma_110_thin"
    assert SurfaceEnergy((1, 1, 0), lattice_constant=A0).name == "gamma_110"


def test_suite_errors_name_what_is_wrong():
    with pytest.raises(UnknownNameError, match="unknown properties"):
        tungsten_suite(["gamma_999"])
    with pytest.raises(InputError, match="no selected property accepts"):
        tungsten_suite(["a0"], layers=4)
    with pytest.raises(InputError, match="label"):  # one label for many properties: names would collide
        tungsten_suite(["gamma_100", "gamma_110"], label="x")


def test_suite_names_are_unique():
    names = [p.name for p in tungsten_suite()]
    assert len(names) == len(set(names)) == 45


def test_teacher_studies_run_lattice_trapping_only_when_named():
    from uqcalc.coverage.teacher import demo_names, study_properties

    demo = demo_names()
    assert len(demo) == 41 and not any(n.startswith(("K_plus", "K_minus")) for n in demo)
    named = tungsten_suite(["K_plus_100", "a0"], quick=True)
    assert study_properties(named, named=True, quick=True) == named
    with pytest.raises(ValueError, match="resample_members"):
        study_properties(named, named=True, quick=False)


# -- states ------------------------------------------------------------------------------


def test_state_validates_kind_and_measures_its_quantity(pair):
    with pytest.raises(ValueError, match="kind"):
        State("x", bulk("W", "bcc", a=A0, cubic=True), kind="maximum")
    atoms = bulk("W", "bcc", a=A0, cubic=True)
    atoms.calc = pair
    assert State("bcc", atoms).measure() == pytest.approx(atoms.get_potential_energy())
    assert State("bcc", atoms, quantity="volume").measure() == pytest.approx(A0**3)


@dataclasses.dataclass
class _SaddleOnly(StateProperty):
    def states(self):
        return [State("top", bulk("W", "bcc", a=A0, cubic=True), "positions", kind="saddle")]


def test_a_saddle_is_never_handed_to_a_minimiser(pair):
    with pytest.raises(NotImplementedError, match="saddle is not found by minimisation"):
        _SaddleOnly().stationary_states(pair)


def test_stationary_states_are_relaxed_copies_with_the_calculator(pair):
    prop = DivacancyBindingEnergy(size=3, fmax=1e-4, lattice_constant=A0)
    states = prop.stationary_states(pair)
    assert [s.name for s in states] == [s.name for s in prop.states()]
    for s in states:
        assert s.atoms.calc is pair
        if s.relax == "positions":
            assert np.abs(s.atoms.get_forces()).max() < 1e-4
    assert prop.evaluate(pair) == pytest.approx(prop.combine([s.measure() for s in states], states), abs=1e-9)
