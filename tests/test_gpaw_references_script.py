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


def test_elastic_kpoint_runs_are_checkpointed_and_adopted_with_their_settings(tmp_path):
    """Oracle: cubic_elastic_constants of the same model at the same lattice constant."""
    from uqcalc.properties.bulk import cubic_elastic_constants

    script = _script()
    descriptor, ens = fitted_model(8)
    meshes = []

    def factory(mesh):
        meshes.append(mesh)
        return LinearPotential(descriptor, ens.theta)

    table_path = tmp_path / "table.json"
    table_path.write_text(json.dumps({"a0": {"value": 3.18}, "_about": "C_ij not converged"}))
    kw = {"lattice_constant": 3.18, "out": tmp_path / "kpoints.json", "store_dir": tmp_path / "store",
          "settings": {"model": "pair"}, "code_version": "test"}
    run = script.elastic_kpoints((6.0, 8.0), calc_factory=factory, **kw)
    assert meshes == [[12, 12, 12], [16, 16, 16]]  # Γ-centred meshes of the unstrained 2-atom cube
    direct = cubic_elastic_constants(LinearPotential(descriptor, ens.theta), lattice_constant=3.18,
                                     relax_positions=False)
    for row in run["rows"]:
        for name in ("C11", "C12", "C44"):
            assert row[name] == pytest.approx(direct[name], rel=1e-10)

    def broken(mesh):
        raise AssertionError("a stored density was recomputed")

    assert script.elastic_kpoints((6.0, 8.0), calc_factory=broken, **kw)["rows"] == run["rows"]
    # a series at another smearing width keeps its own checkpoints and file
    script.elastic_kpoints((6.0,), calc_factory=factory, width=0.2, **(kw | {"out": tmp_path / "wide.json"}))
    assert (tmp_path / "store" / "elastic_kpoints_width0.2" / "density_6.json").exists()
    assert script.elastic_kpoints((6.0, 8.0), calc_factory=broken, **kw)["rows"] == run["rows"]
    assert script.elastic_series_path(0.2).name == "gpaw_w_elastic_kpoints_width0.2.json"
    assert script.elastic_series_path(None) == script.ELASTIC_OUT
    table = script.adopt_elastic(8.0, kpoints=tmp_path / "kpoints.json", table_path=table_path)
    assert table["C44"]["value"] == pytest.approx(direct["C44"], rel=1e-10)
    assert table["C44"]["settings"] == {"model": "pair", "kpt_density": 8.0, "kpts": [16, 16, 16]}
    assert set(table["C11"]["convergence"]) == {"6", "8"}
    assert "not converged" not in table["_about"] and table["a0"] == {"value": 3.18}
    assert "converged" not in table["C44"]
    table = script.adopt_elastic(6.0, kpoints=tmp_path / "kpoints.json", table_path=table_path, converged=False)
    assert table["C44"]["converged"] is False and table["C44"]["settings"]["kpt_density"] == 6.0
    with pytest.raises(ValueError, match="not in"):
        script.adopt_elastic(10.0, kpoints=tmp_path / "kpoints.json", table_path=table_path)


def test_dft_relaxation_tolerance_and_fixed_lattice_enter_the_entries(tmp_path):
    """``fmax`` replaces the relaxed properties' tolerance, ``lattice_constant`` fixes the defect
    cells; both are in the entries (and keys). Oracle: the property evaluated directly so."""
    import dataclasses

    script = _script()
    descriptor, ens = fitted_model(8)
    calc = LinearPotential(descriptor, ens.theta)
    table = script.references(["vacancy_formation_energy"], tmp_path / "run", tmp_path / "t.json",
                              calc_factory=lambda: calc, settings={"model": "pair"}, code_version="test",
                              fmax=0.01, lattice_constant=3.17)
    (prop,) = tungsten_suite(["vacancy_formation_energy"], quick=True)
    direct = dataclasses.replace(prop, fmax=0.01, lattice_constant=3.17).evaluate(calc)
    entry = table["vacancy_formation_energy"]
    assert entry["value"] == pytest.approx(direct, rel=1e-12)
    assert entry["settings"] == {"model": "pair", "relax_fmax": 0.01} and "a = 3.1700 Å" in entry["cells"]
    tight = script.references(["vacancy_formation_energy"], tmp_path / "run", tmp_path / "t.json",
                              calc_factory=lambda: calc, settings={"model": "pair"}, code_version="test",
                              fmax=1e-4, lattice_constant=3.17)
    assert tight["vacancy_formation_energy"]["value"] != entry["value"]  # recomputed, not the stored one
    stated = script.references(["vacancy_formation_energy"], tmp_path / "run", tmp_path / "t.json",
                               calc_factory=lambda: calc, settings={"model": "pair"}, code_version="test",
                               fmax=0.01, lattice_constant=3.17, uncertainty=0.1)
    assert stated["vacancy_formation_energy"]["uncertainty"] == 0.1 and "uncertainty" not in entry


def test_vacancy_settings_scan_is_the_unrelaxed_small_cell_and_checkpointed(tmp_path):
    """Each (cutoff, density) point is the unrelaxed size-2 vacancy of that point's calculator.
    Oracle: VacancyFormationEnergy evaluated directly; a second run recomputes nothing."""
    from uqcalc.properties import VacancyFormationEnergy

    script = _script()
    descriptor, ens = fitted_model(8)
    asked = []

    def factory(ecut, density):
        asked.append((ecut, density))
        # a stand-in whose answer depends on the settings, so a mixed-up point would show
        return LinearPotential(descriptor, ens.theta * (1 + 1e-3 * ecut / 100 + 1e-2 * density))

    kw = {"lattice_constant": 3.18, "out": tmp_path / "vac.json", "store_dir": tmp_path / "store",
          "settings": {"model": "pair"}, "code_version": "test"}
    grid = ((600.0, 4.0), (400.0, 6.0))
    run = script.vacancy_settings(grid, calc_factory=factory, **kw)
    assert asked == list(grid) and run["sites"] == 16 and run["relaxed"] is False
    for row, (ecut, density) in zip(run["rows"], grid):
        direct = VacancyFormationEnergy(size=2, lattice_constant=3.18, relaxed=False).evaluate(
            LinearPotential(descriptor, ens.theta * (1 + 1e-3 * ecut / 100 + 1e-2 * density)))
        assert row["value"] == pytest.approx(direct, rel=1e-12)
    assert run["rows"][0]["value"] != run["rows"][1]["value"]

    def broken(ecut, density):
        raise AssertionError("a stored point was recomputed")

    assert script.vacancy_settings(grid, calc_factory=broken, **kw)["rows"] == run["rows"]
    assert json.loads((tmp_path / "vac.json").read_text())["rows"] == run["rows"]


def test_an_oscillating_elastic_series_is_adopted_as_its_range(tmp_path):
    """Every row at k density ≥ the threshold, over both widths, bounds the constant: the entry is
    the middle ± half the range (oracle: by hand), and it lists the rows it rests on."""
    script = _script()

    def series(width, rows):
        return {"lattice_constant": 3.18, "settings": {"ecut": 600.0, "kpt_density": 6.0, "width": width},
                "gpaw_version": "test", "uqcalc_version": "0", "strains": "±0.2 %",
                "rows": [{"kpt_density": d, "kpts": [2 * int(d)] * 3, "C11": c11, "C12": 200.0, "C44": 140.0 + d,
                          "wall_s": 1.0} for d, c11 in rows]}

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(series(0.1, [(6.0, 400.0), (10.0, 517.0), (12.0, 506.0), (14.0, 526.0)])))
    b.write_text(json.dumps(series(0.2, [(8.0, 450.0), (10.0, 520.0)])))
    table_path = tmp_path / "table.json"
    table_path.write_text(json.dumps({"a0": {"value": 3.18}}))
    table = script.adopt_elastic_range(10.0, (a, b), table_path)
    assert table["C11"]["value"] == pytest.approx(516.0) and table["C11"]["uncertainty"] == pytest.approx(10.0)
    assert table["C44"]["value"] == pytest.approx(152.0) and table["C44"]["uncertainty"] == pytest.approx(2.0)
    assert table["C12"]["uncertainty"] == 0.0 and "converged" not in table["C11"]
    assert len(table["C11"]["convergence"]) == 4 and table["C11"]["settings"]["width"] == [0.1, 0.2]
    assert json.loads(table_path.read_text())["a0"] == {"value": 3.18}
    with pytest.raises(ValueError, match="no row"):
        script.adopt_elastic_range(20.0, (a, b), table_path)


def test_vacancy_settings_scan_for_an_fcc_metal(tmp_path):
    """No tungsten assumption: fcc Cu's 2³ cell has 32 sites. Oracle: the property directly (EMT)."""
    from ase.calculators.emt import EMT

    from uqcalc.properties import VacancyFormationEnergy

    run = _script().vacancy_settings(((400.0, 4.0),), symbol="Cu", lattice_constant=3.59, out=tmp_path / "cu.json",
                                     store_dir=tmp_path / "store", calc_factory=lambda ecut, density: EMT(),
                                     settings={"model": "EMT"}, code_version="test")
    direct = VacancyFormationEnergy(size=2, lattice_constant=3.59, relaxed=False, symbol="Cu",
                                    structure="fcc").evaluate(EMT())
    assert run["sites"] == 32 and run["rows"][0]["value"] == pytest.approx(direct, rel=1e-12)


def test_an_entry_carries_the_time_of_its_single_points(tmp_path):
    """A checkpointed calculator's points' own times go into the entry (``single_points_s``).

    Oracle: each computed point sleeps 0.02 s, and the points are part of the property's wall time.
    """
    import time

    from ase.calculators.emt import EMT

    from uqcalc.datasets.single_points import CheckpointedCalculator

    class SlowEMT(EMT):
        def calculate(self, *args, **kwargs):
            time.sleep(0.02)
            super().calculate(*args, **kwargs)

    made = []

    def factory():
        made.append(CheckpointedCalculator(lambda atoms: SlowEMT(), tmp_path / "points"))
        return made[-1]

    table = _script().references(["a0"], tmp_path / "run", tmp_path / "cu.json", calc_factory=factory,
                                 settings={"model": "EMT"}, code_version="test", symbol="Cu")
    entry = table["a0"]
    assert made[0].n_computed > 1 and "untimed_single_points" not in entry
    assert 0.02 * made[0].n_computed <= entry["single_points_s"] <= entry["wall_s"]


def test_the_table_writer_reproduces_the_committed_table_byte_for_byte(tmp_path):
    """The script writes through the store's atomic writer (sorted keys, "Å" kept): oracle is the
    committed table itself, so rewriting it changes nothing a diff would show."""
    script = _script()
    committed = script.TABLE.read_bytes()
    script._write_json(tmp_path / "table.json", json.loads(committed), sort_keys=True)
    assert (tmp_path / "table.json").read_bytes() == committed


def test_an_unknown_name_is_refused_before_anything_is_computed(tmp_path):
    """fcc Cu has no ``dE_fcc`` (fcc is its ground state): the run stops at once, naming it and the
    available ones, instead of after the properties listed before it."""
    from uqcalc.errors import UnknownNameError

    def factory():
        raise AssertionError("a calculator was built for a run that cannot finish")

    with pytest.raises(UnknownNameError, match="dE_fcc.*available.*dE_bcc"):
        _script().references(["a0", "dE_fcc"], tmp_path / "run", tmp_path / "cu.json", calc_factory=factory,
                             settings={"model": "EMT"}, code_version="test", symbol="Cu")
    assert not (tmp_path / "cu.json").exists()
