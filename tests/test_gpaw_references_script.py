"""comparisons/gpaw_references.py: references are checkpointed, resumed and tabulated.

The DFT code is replaced by the cheap pair model (the script's ``calc_factory``): what is tested
is the bookkeeping a multi-hour GPAW run relies on. Oracle: each property evaluated directly
with the same model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from uqcalc.calculator import LinearPotential
from uqcalc.properties import tungsten_suite

from .models import fitted_model

SCRIPT = Path(__file__).resolve().parents[1] / "comparisons" / "gpaw_references.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpaw_references", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_references_are_checkpointed_resumed_and_tabulated(tmp_path):
    script = _script()
    descriptor, ens = fitted_model(8)
    built = []

    def factory():
        built.append(1)
        return LinearPotential(descriptor, ens.theta)

    names = ["a0", "dE_fcc"]
    table_path = tmp_path / "table.json"
    table = script.references(names, tmp_path / "run", table_path, calc_factory=factory,
                              settings={"model": "pair"}, code_version="test")
    assert built == [1]  # one calculator for every property
    for prop in tungsten_suite(names, quick=True):
        direct = prop.evaluate(LinearPotential(descriptor, ens.theta))
        assert table[prop.name]["value"] == pytest.approx(direct, rel=1e-10)
        assert table[prop.name]["unit"] == prop.unit and table[prop.name]["settings"] == {"model": "pair"}
    assert json.loads(table_path.read_text()) == table

    def broken():
        raise AssertionError("a stored property was recomputed")

    again = script.references(names, tmp_path / "run", table_path, calc_factory=broken, settings={"model": "pair"},
                              code_version="test")
    assert {k: v["value"] for k, v in again.items()} == {k: v["value"] for k, v in table.items()}
    with pytest.raises(AssertionError, match="recomputed"):  # other settings: not the stored entries
        script.references(names, tmp_path / "run", table_path, calc_factory=broken, settings={"model": "other"},
                          code_version="test")


def test_another_element_fcc_copper(tmp_path):
    """``symbol=`` takes the element's own suite (fcc Cu here, EMT in place of the DFT code)."""
    from ase.calculators.emt import EMT

    from uqcalc.properties import suite

    table = _script().references(["a0", "dE_bcc"], tmp_path / "run", tmp_path / "cu.json", calc_factory=EMT,
                                 settings={"model": "EMT"}, code_version="test", symbol="Cu")
    for prop in suite("Cu", names=["a0", "dE_bcc"], quick=True):
        assert table[prop.name]["value"] == pytest.approx(prop.evaluate(EMT()), rel=1e-10)
    assert 3.5 < table["a0"]["value"] < 3.7 and table["a0"]["cells"] == "suite('Cu', quick=True)"
