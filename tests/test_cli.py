"""The ``uqcalc`` command line: fit, predict, errors and help (the demo itself is `make demo`)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from uqcalc import UQCalculator
from uqcalc.cli import main
from uqcalc.data import read, write

from .conftest import SHARED_DATA
from .models import labelled_frames

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frames():
    return labelled_frames()


def test_fit_then_predict_round_trip(tmp_path, frames, capsys):
    write(tmp_path / "train.xyz.gz", frames[:-3])
    write(tmp_path / "test.xyz", frames[-3:])
    model = tmp_path / "model.npz"
    assert main(["fit", str(tmp_path / "train.xyz.gz"), "--out", str(model), "--descriptor", "pair",
                 "--backend", "bayes", "--r-cut", "5.0"]) == 0
    assert "energy RMSE" in capsys.readouterr().out
    out = tmp_path / "pred.xyz"
    assert main(["predict", str(model), str(tmp_path / "test.xyz"), "--out", str(out)]) == 0
    predicted = read(out)
    calc = UQCalculator.load(model)
    for atoms, original in zip(predicted, frames[-3:]):
        ref = atoms.copy()  # positions as predicted: extxyz keeps 8 decimals
        ref.calc = calc
        # the file holds the calculator's point estimate and uncertainties, not a new calculation
        assert atoms.info["uq_energy"] == pytest.approx(ref.get_potential_energy(), rel=1e-12)
        assert atoms.info["energy_std"] == pytest.approx(calc.results["energy_std"], rel=1e-12)
        assert atoms.info["energy_lower"] <= atoms.info["uq_energy"] <= atoms.info["energy_upper"]
        np.testing.assert_allclose(atoms.arrays["forces_std"], calc.results["forces_std"], atol=1e-8)
        assert atoms.info["REF_energy"] == pytest.approx(original.info["REF_energy"])


def test_bad_input_exits_nonzero_with_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "absent.npz"), str(tmp_path / "x.xyz"), "--out", "y.xyz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"uqcalc: error: no such model file: {tmp_path / 'absent.npz'}"]
    assert main(["fit", str(tmp_path / "absent.xyz"), "--out", "m.npz"]) == 2
    assert "no such training file" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["demo"], ["coverage"], ["fit"], ["predict"]])
def test_help_on_every_command(command):
    done = subprocess.run([sys.executable, "-m", "uqcalc.cli", *command, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "usage: uqcalc" in done.stdout


def test_unknown_executor_is_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["coverage", "tungsten_teacher", "--executor", "threads:3"])
    assert exit_info.value.code == 2
    assert "unknown executor" in capsys.readouterr().err


def test_coverage_studies_reject_what_does_not_apply_in_one_line(tmp_path, capsys):
    assert main(["coverage", "capacity_sweep", "--names", "a0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["uqcalc: error: capacity_sweep takes no --names"]
    assert main(["coverage", "tungsten_teacher", "--data", "x.xyz"]) == 2
    assert "--data applies to tungsten_dft, heldout and foundation only, not tungsten_teacher" in capsys.readouterr().err
    assert main(["coverage", "tungsten_dft", "--names", "a0"]) == 2
    assert "tungsten_dft takes no --names" in capsys.readouterr().err
    assert main(["coverage", "tungsten_dft", "--model", "ace"]) == 2
    assert "tungsten_dft --model 'ace': choose one of snap, qsnap" in capsys.readouterr().err
    assert main(["coverage", "capacity_sweep", "--model", "qsnap"]) == 2
    assert "--model applies to" in capsys.readouterr().err
    # lattice trapping in a full teacher study would re-bracket every POPS member: refused before any work
    assert main(["coverage", "tungsten_teacher", "--full", "--names", "K_plus_100", "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resample-members" in err[0] and "K_plus_100" in err[0]
    absent = tmp_path / "absent.extxyz.gz"
    assert main(["coverage", "tungsten_dft", "--data", str(absent)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{absent} not found" in err[0] and "fetch" in err[0]


@pytest.mark.skipif(not (SHARED_DATA / "tungsten_wood2017.extxyz.gz").exists(), reason="shared DFT data absent")
def test_coverage_tungsten_dft_finds_the_shared_data_from_a_checkout(tmp_path, monkeypatch, capsys):
    """Run from the repository root, the CLI finds ../shared/data by itself and hands it to the study."""
    from uqcalc.coverage import dft

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("UQCALC_SHARED_DATA", raising=False)
    seen = {}
    monkeypatch.setattr(dft, "run_dft_study",
                        lambda out, data, **kw: seen.update(out=out, data=data, **kw) or {"markdown": "| table |"})
    assert main(["coverage", "tungsten_dft", "--out", str(tmp_path), "--seed", "3"]) == 0
    assert seen["data"].resolve() == (SHARED_DATA / "tungsten_wood2017.extxyz.gz").resolve()
    assert seen["out"] == tmp_path and seen["quick"] is True and seen["seed"] == 3 and seen["twojmax"] == 6
    assert seen["quadratic"] is False
    assert "| table |" in capsys.readouterr().out  # the study's table goes to stdout
    # the paper's model: quadratic SNAP, 2J = 8 unless given
    assert main(["coverage", "tungsten_dft", "--model", "qsnap", "--resample-members", "5", "--out", str(tmp_path)]) == 0
    assert seen["quadratic"] is True and seen["twojmax"] == 8 and seen["resample_members"] == 5


def test_only_user_errors_become_one_line_messages(monkeypatch):
    """A bug (here a KeyError deep inside a study) keeps its traceback instead of exit 2."""
    from uqcalc import coverage

    def broken(*args, **kwargs):
        raise KeyError("an internal lookup")

    monkeypatch.setattr(coverage, "run_teacher_study", broken)
    with pytest.raises(KeyError, match="internal lookup"):
        main(["demo"])


def test_coverage_heldout_on_user_data(tmp_path, frames, capsys):
    """`uqcalc coverage heldout`: the user's groups held out, tables and the parity figure written;
    the held-out coverage reported is that of the fitted ensemble's bounds on those rows."""
    data = [a.copy() for a in frames]
    for i, atoms in enumerate(data):
        atoms.info["group"] = "held" if i % 3 == 0 else "train"
    write(tmp_path / "mine.xyz", data)
    out = tmp_path / "ho"
    assert main(["coverage", "heldout", "--data", str(tmp_path / "mine.xyz"), "--holdout", "held",
                 "--descriptor", "pair", "--backends", "pops", "bayes", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "groups held held out" in text and "| POPS | exact | held | energy |" in text
    assert (out / "coverage.md").is_file() and (out / "coverage_heldout_parity.png").is_file()
    assert "## Per property" not in (out / "coverage.md").read_text()  # no property tables without properties
    # the bad-input paths
    assert main(["coverage", "heldout", "--data", str(tmp_path / "mine.xyz"), "--descriptor", "pair"]) == 2
    assert "heldout needs --holdout" in capsys.readouterr().err
    assert main(["coverage", "capacity_sweep", "--holdout", "held"]) == 2
    assert "--holdout apply to `uqcalc coverage heldout` only" in capsys.readouterr().err
