"""uqcalc.datasets.small: the 17-frame bulk set of the tutorials and tests/models.py."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT

from uqcalc.datasets import small_bulk_set
from uqcalc.datasets.tungsten import A0


def _same(a, b) -> bool:
    return (np.array_equal(a.positions, b.positions) and np.array_equal(a.cell.array, b.cell.array)
            and a.info["REF_energy"] == b.info["REF_energy"]
            and np.array_equal(a.arrays["REF_forces"], b.arrays["REF_forces"])
            and np.array_equal(a.info["REF_stress"], b.info["REF_stress"]))


@pytest.fixture(scope="module")
def copper():
    return small_bulk_set(EMT(), symbol="Cu", structure="fcc")


def test_layout_fcc(copper):
    assert len(copper) == 17
    assert [len(a) for a in copper] == [4] * 13 + [108] * 4
    assert all(set(a.get_chemical_symbols()) == {"Cu"} and a.calc is None for a in copper)
    # default lattice constant of a non-W crystal: ASE's reference value (Cu: 3.61 Å)
    assert copper[3].cell[0, 0] == pytest.approx(3.61)
    np.testing.assert_allclose([a.cell[0, 0] / 3.61 for a in copper[:7]], np.linspace(0.96, 1.04, 7))


def test_labels_come_from_the_given_calculator(copper):
    for atoms in (copper[0], copper[9], copper[-1]):
        fresh = atoms.copy()
        fresh.calc = EMT()
        assert atoms.info["REF_energy"] == pytest.approx(fresh.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(atoms.arrays["REF_forces"], fresh.get_forces(), atol=1e-12)
        np.testing.assert_allclose(atoms.info["REF_stress"], fresh.get_stress(), atol=1e-12)
    # rattled frames have forces, the strained ones stress
    assert np.abs(copper[-1].arrays["REF_forces"]).max() > 0.1
    assert np.abs(copper[9].info["REF_stress"]).max() > 1e-4


def test_seed_reproducible_and_seed_matters(copper):
    again = small_bulk_set(EMT(), symbol="Cu", structure="fcc")
    assert all(_same(a, b) for a, b in zip(copper, again, strict=True))
    other = small_bulk_set(EMT(), symbol="Cu", structure="fcc", seed=1)
    assert all(_same(a, b) for a, b in zip(copper[:7], other[:7], strict=True))  # volume scan: no randomness
    assert not any(_same(a, b) for a, b in zip(copper[7:], other[7:], strict=True))


def test_lattice_constant_parameter():
    frames = small_bulk_set(EMT(), symbol="Cu", structure="fcc", lattice_constant=3.7)
    assert frames[3].cell[0, 0] == pytest.approx(3.7)
    assert frames[-1].cell[0, 0] == pytest.approx(3 * 3.7)


def test_default_is_the_tungsten_teacher_set():
    frames = small_bulk_set()
    assert len(frames) == 17
    assert [len(a) for a in frames] == [2] * 13 + [54] * 4
    assert frames[3].cell[0, 0] == pytest.approx(A0)
    # the teacher's perfect bcc crystal at A0: -11.0283 eV/atom, stress-free
    assert frames[3].info["REF_energy"] / 2 == pytest.approx(-11.0283, abs=1e-4)
    assert np.abs(frames[3].info["REF_stress"]).max() < 1e-4


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"structure": "hcp"}, "bcc or fcc"),
    ({"symbol": "Cu", "structure": "fcc"}, "pass calc="),
    ({"calc": EMT(), "symbol": "Cu", "structure": "bcc"}, "lattice_constant="),
    ({"calc": EMT(), "symbol": "Cu", "structure": "fcc", "lattice_constant": -1.0}, "positive"),
    ({"seed": -1}, "non-negative"),
])
def test_clear_errors(kwargs, match):
    calc = kwargs.pop("calc", None)
    with pytest.raises(ValueError, match=match):
        small_bulk_set(calc, **kwargs)
