"""Execute every tutorial and check one number per tutorial against an expectation.

The sources are the jupytext percent-format files ``tutorials/NN_name.py``; the committed
``.ipynb`` are generated from them (``make notebooks``). Each test converts its source with
jupytext and executes that notebook, and :func:`test_committed_notebook_matches_source`
checks that the committed notebook has the same cells, so neither can drift.

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

from .conftest import SHARED_DATA

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
jupytext = pytest.importorskip("jupytext")

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
KERNEL = "uqcalc-tutorials-test"

# source -> (expression printed by the extra cell, check on its value)
CHECKS = {
    "01_uqcalculator_relaxation.py": (
        ("{'E': float(E), 'lo': float(E_lo), 'hi': float(E_hi), 'fmax': float(np.abs(atoms.get_forces()).max()),"
         " 'lo_file': float(back['energy_lower']), 'hi_file': float(back['energy_upper'])}"),
        lambda v: (v["lo"] < v["E"] < v["hi"] and v["fmax"] < 0.01
                   and v["lo_file"] == pytest.approx(v["lo"]) and v["hi_file"] == pytest.approx(v["hi"])),
    ),
    "02_backends_toy_and_tungsten.py": (
        "{'toy': {k: float(c) for k, c in toy_coverage.items()}, 'W': {k: float(c) for k, c in w_coverage.items()}}",
        # POPS brackets the truth on the toy and the held-out W energies; the noise-free toy
        # defeats the Bayesian ±2σ band (misspecification, not noise)
        lambda v: v["toy"]["POPS"] >= 0.95 and v["W"]["POPS"] >= 0.9 and v["toy"]["BayesianRidge"] < v["toy"]["POPS"],
    ),
    "03_elastic_constants.py": (
        ("{'c11': float(point[0]), 'c11_uqcalc': float(c11_uqcalc), 'n': len(members),"
         " 'lo': float(members[:, 0].min()), 'hi': float(members[:, 0].max())}"),
        # matscipy's regression vs uqcalc's own strain fit of the same potential
        lambda v: v["c11"] == pytest.approx(v["c11_uqcalc"], rel=0.02) and v["n"] == 8 and v["lo"] < v["hi"],
    ),
    "04_defects_implicit_vs_resample.py": (
        "{'max_dev': float(max_dev), 'spread': float(spread), 'value': float(results['resample'].value)}",
        # second-order expansion: member deviations far below the ensemble spread
        lambda v: v["max_dev"] < 0.05 * v["spread"] and 1.0 < v["value"] < 6.0,
    ),
    "05_dask_coverage.py": (
        ("{'same': bool(np.array_equal(on_dask.members, serial.members)), 'failed': len(on_dask.failed),"
         " 'n': int(on_dask.n_members)}"),
        lambda v: v["same"] and v["failed"] == 0 and v["n"] == 8,
    ),
    "06_uncertainty_of_ta06a.py": (
        ("{'coverage': coverage['POPS about Ta06A'], 'a0': table[('a0', 'POPS')][0], 'lo': float(a0_lower),"
         " 'hi': float(a0_upper), 'n': len(manifest['members']), 'd': float(meta['point_estimate_mahalanobis'])}"),
        # POPS about Ta06A covers the rows that built it; Ta06A's own a0 (3.316 Å) inside its bounds
        lambda v: (v["coverage"] >= 0.97 and v["lo"] <= v["a0"] <= v["hi"] and 3.30 < v["a0"] < 3.33
                   and v["n"] == 8 and v["d"] > 10),
    ),
    "07_lattice_trapping.py": (
        ("{'up': brackets['advance'].value, 'down': brackets['heal'].value, 'kg': brackets['advance'].k_griffith,"
         " 'failed': sum(len(r.failed) for r in result['resample'].values()),"
         " 'inside': all(r.lower <= r.value <= r.upper for r in result['resample'].values())}"),
        # the student's tip is trapped on both sides of its Griffith load; every member brackets
        lambda v: v["up"] > v["kg"] > v["down"] and v["failed"] == 0 and v["inside"],
    ),
}

# tutorials that read the public DFT sets of ../shared/data (skipped where it is absent)
NEEDS_DATA = {"06_uncertainty_of_ta06a.py": "tantalum_thompson2015.extxyz.gz"}


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


def sources():
    return sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))


def test_notebook_list_matches_checks():
    assert sources() == sorted(CHECKS)
    # one committed notebook per source, no orphans
    assert sorted(p.name for p in TUTORIALS.glob("*.ipynb")) == [Path(n).with_suffix(".ipynb").name for n in sources()]


def _cells(nb):
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_committed_notebook_matches_source(name):
    """The committed .ipynb is what ``make notebooks`` generates from the source, without outputs."""
    committed = nbformat.read(TUTORIALS / Path(name).with_suffix(".ipynb"), as_version=4)
    generated = jupytext.read(TUTORIALS / name)
    assert _cells(committed) == _cells(generated), f"regenerate with `make notebooks` ({name} changed)"
    assert committed.metadata.get("kernelspec") == generated.metadata.get("kernelspec")
    assert all(not c.outputs and c.execution_count is None for c in committed.cells if c.cell_type == "code")
    nbformat.validate(committed)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_tutorial(name, kernel_path, tmp_path, monkeypatch):
    if name in NEEDS_DATA:
        path = SHARED_DATA / NEEDS_DATA[name]
        if not path.is_file():
            pytest.skip(f"{path} not present")
        monkeypatch.setenv("UQCALC_TA_DATA", str(path))
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = jupytext.read(TUTORIALS / name)  # the source, not the committed .ipynb
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
