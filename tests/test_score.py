"""``uqcalc score``: stored uncertainties against REF_* labels."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from ase.build import bulk

from uqcalc.cli import main
from uqcalc.data import read, write
from uqcalc.errors import InputError
from uqcalc.score import score_frames

from .models import labelled_frames


def _frame(group, ref, pred, lower, upper, std, n=2):
    atoms = bulk("W", "bcc", a=3.18, cubic=True)[:n]
    atoms.info.update({"group": group, "REF_energy": ref, "uq_energy": pred, "energy_lower": lower,
                       "energy_upper": upper, "energy_std": std})
    return atoms


def test_hand_made_scores():
    """Two atoms per frame: errors per atom are half the total-energy errors."""
    frames = [
        _frame("a", 0.0, 0.2, -1.0, 1.0, 0.05),   # inside bounds, outside ±2σ
        _frame("a", 0.0, -0.4, 0.1, 0.5, 0.5),   # outside bounds, inside ±2σ
        _frame("b", 1.0, 1.0, 0.9, 1.1, 0.1),    # inside both
    ]
    rows = {(r["group"], r["kind"]): r for r in score_frames(frames)}
    a = rows[("a", "energy")]
    assert a["n"] == 2
    assert a["rmse"] == pytest.approx(np.sqrt((0.1**2 + 0.2**2) / 2))
    assert a["mae"] == pytest.approx(0.15)
    assert a["coverage"] == 0.5 and a["coverage_2sigma"] == 0.5
    assert a["mean_half_width"] == pytest.approx((0.5 + 0.1) / 2)
    assert rows[("all", "energy")]["coverage"] == pytest.approx(2 / 3)
    assert list(rows)[-1][0] == "all"


def test_frames_without_predictions_are_an_error():
    atoms = bulk("W", "bcc", a=3.18)
    atoms.info["REF_energy"] = -1.0
    with pytest.raises(InputError, match="no frame has both REF_\\* labels and stored predictions"):
        score_frames([atoms])


def test_score_of_predictions_matches_fit_holdout_report(tmp_path, capsys):
    """Two paths to the same numbers: `fit --holdout` scores design rows, `predict` + `score`
    scores the calculator's stored results."""
    frames = labelled_frames()
    for i, atoms in enumerate(frames):
        # held-out frames with forces: zero-by-symmetry components sit on 1e-10-wide bounds,
        # which the file's 8 decimals cannot resolve (score_frames' atol)
        moving = np.abs(atoms.arrays["REF_forces"]).max() > 1e-3
        atoms.info["group"] = "held" if i % 3 == 0 and moving else "train"
    write(tmp_path / "all.xyz", frames)
    model = tmp_path / "m.npz"
    assert main(["fit", str(tmp_path / "all.xyz"), "--out", str(model), "--descriptor", "pair", "--backend", "bayes",
                 "--holdout", "held"]) == 0
    fit_out = capsys.readouterr().out
    write(tmp_path / "held.xyz", [a for a in frames if a.info["group"] == "held"])
    assert main(["predict", str(model), str(tmp_path / "held.xyz"), "--out", str(tmp_path / "pred.xyz")]) == 0
    assert main(["score", str(tmp_path / "pred.xyz"), "--json", str(tmp_path / "score.json")]) == 0
    rows = {(r["group"], r["kind"]): r for r in json.loads((tmp_path / "score.json").read_text())}
    for kind in ("energy", "force"):
        line = next(l for l in fit_out.splitlines() if re.search(rf"held out held\s+{kind}\b", l))
        rmse = float(line.split("RMSE")[1].split()[0]) / 1e3
        inside = float(line.split("inside bounds")[1])
        assert rows[("held", kind)]["rmse"] == pytest.approx(rmse, rel=2e-3, abs=2e-6)  # 3 printed decimals
        assert rows[("held", kind)]["coverage"] == pytest.approx(inside, abs=0.006)


def test_predict_plot_along_a_trajectory(tmp_path, capsys):
    """A short MD run written as an ASE trajectory: per-frame values are the calculator's."""
    import ase.io
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from uqcalc import UQCalculator
    from uqcalc.trajectory import trajectory_uncertainty

    frames = labelled_frames()
    write(tmp_path / "train.xyz", frames)
    model = tmp_path / "m.npz"
    assert main(["fit", str(tmp_path / "train.xyz"), "--out", str(model), "--descriptor", "pair",
                 "--backend", "bayes"]) == 0
    calc = UQCalculator.load(model)
    atoms = bulk("W", "bcc", a=3.18, cubic=True).repeat(2)
    atoms.calc = calc
    atoms.set_velocities(np.random.default_rng(0).normal(scale=0.02, size=(len(atoms), 3)))  # Å/(ASE time)
    traj = []
    md = VelocityVerlet(atoms, 2 * units.fs)
    for _ in range(5):
        md.run(2)
        traj.append(atoms.copy())
    ase.io.write(tmp_path / "md.traj", traj)
    assert main(["predict", str(model), str(tmp_path / "md.traj"), "--out", str(tmp_path / "p.xyz"),
                 "--plot", str(tmp_path / "md.png")]) == 0
    assert (tmp_path / "md.png").is_file() and (tmp_path / "md.svg").is_file()
    values = trajectory_uncertainty(read(tmp_path / "p.xyz"))
    for k, frame in enumerate(traj):
        frame.calc = calc
        assert values["energy"][k] == pytest.approx(frame.get_potential_energy() / len(frame), rel=1e-10)
        assert values["max_force_std"][k] == pytest.approx(np.linalg.norm(calc.results["forces_std"], axis=1).max(),
                                                           rel=1e-6)
