"""Execute every tutorial notebook and check one number per notebook against an expectation.

The kernel is the interpreter running pytest (``sys.executable``): a temporary kernelspec on
``JUPYTER_PATH`` points at it, so no ``ipykernel install`` step is needed (fresh CI venvs).
Each notebook runs in a temporary directory (files it writes stay there). After the last cell,
one extra cell (not stored in the notebook) prints the checked variables as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
KERNEL = "uqcalc-tutorials-test"

# notebook -> (expression printed by the extra cell, check on its value)
CHECKS = {
    "01_uqcalculator_relaxation.ipynb": (
        ("{'E': float(E), 'lo': float(E_lo), 'hi': float(E_hi), 'fmax': float(np.abs(atoms.get_forces()).max()),"
         " 'lo_file': float(back['energy_lower']), 'hi_file': float(back['energy_upper'])}"),
        lambda v: (v["lo"] < v["E"] < v["hi"] and v["fmax"] < 0.01
                   and v["lo_file"] == pytest.approx(v["lo"]) and v["hi_file"] == pytest.approx(v["hi"])),
    ),
    "02_backends_toy_and_tungsten.ipynb": (
        "{'toy': {k: float(c) for k, c in toy_coverage.items()}, 'W': {k: float(c) for k, c in w_coverage.items()}}",
        # POPS brackets the truth on the toy and the held-out W energies; the noise-free toy
        # defeats the Bayesian ±2σ band (misspecification, not noise)
        lambda v: v["toy"]["POPS"] >= 0.95 and v["W"]["POPS"] >= 0.9 and v["toy"]["BayesianRidge"] < v["toy"]["POPS"],
    ),
    "03_elastic_constants.ipynb": (
        ("{'c11': float(point[0]), 'c11_uqcalc': float(c11_uqcalc), 'n': len(members),"
         " 'lo': float(members[:, 0].min()), 'hi': float(members[:, 0].max())}"),
        # matscipy's regression vs uqcalc's own strain fit of the same potential
        lambda v: v["c11"] == pytest.approx(v["c11_uqcalc"], rel=0.02) and v["n"] == 8 and v["lo"] < v["hi"],
    ),
    "04_defects_implicit_vs_resample.ipynb": (
        "{'max_dev': float(max_dev), 'spread': float(spread), 'value': float(results['resample'].value)}",
        # second-order expansion: member deviations far below the ensemble spread
        lambda v: v["max_dev"] < 0.05 * v["spread"] and 1.0 < v["value"] < 6.0,
    ),
    "05_dask_coverage.ipynb": (
        ("{'same': bool(np.array_equal(on_dask.members, serial.members)), 'failed': len(on_dask.failed),"
         " 'n': int(on_dask.n_members)}"),
        lambda v: v["same"] and v["failed"] == 0 and v["n"] == 8,
    ),
}


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory):
    """A kernelspec that runs ipykernel with the interpreter running the tests."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"uqcalc tests ({sys.executable})",
        "language": "python",
    }))
    return root


def test_notebook_list_matches_checks():
    assert sorted(p.name for p in TUTORIALS.glob("*.ipynb")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_tutorial(name, kernel_path, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(TUTORIALS / name, as_version=4)
    expr, check = CHECKS[name]
    nb.cells.append(nbformat.v4.new_code_cell(f"import json as _json\nprint(_json.dumps({expr}))"))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    values = json.loads(out.strip().splitlines()[-1])
    assert check(values), values
