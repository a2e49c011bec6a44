"""Which POPS bound construction as the box dimension R grows? Held-out configurations of the Wood W set.

A POPS ensemble is a box θ̄ + A z, z ∈ [l, u] (Swinburne & Perez, Mach. Learn.: Sci. Technol. 6,
015008 (2025)). A prediction x·θ is linear in z, so its bounds over the box are exact at two
corners (``bounds="exact"``), while the POPS tungsten paper (Perez et al., npj Comput. Mater. 11,
263 (2025)) takes the min/max over M = 500 uniform samples of the box. In R dimensions uniform
samples concentrate away from the corners, so the sampled range shrinks relative to the box as R
grows; calibration (:meth:`uqcalc.backends.POPS.calibrate`) rescales the box on validation
configurations. This comparison fits each student once and bounds the held-out energies and
forces of the Wood et al. VASP-PBE W set (the groups :data:`~.dft.HELDOUT_GROUPS`, never fitted) by

* ``members M=100`` and ``members M=500``: min/max over uniform box samples;
* ``corners``: the exact box extent;
* ``calibrated corners``: POPS calibrated on the training groups :data:`~.dft.CALIBRATION_GROUPS`
  (left out of the box only to choose it), exact extent;
* ``MCMC natural-T ±2σ``: the Gaussian reference the issue compares against;

for linear SNAP 2J = 2, 4, 6, 8 and quadratic SNAP (qSNAP) students, with coverage (within the
noise floor of :data:`uqcalc.design.NOISE_FLOOR`), median half-width/|err| and mean width per row
kind. Nothing here looks at a property. ``benchmarks/bench_pops_bounds_vs_rank.py`` is the same
comparison on the W teacher (well specified at 2J = 8), with the stability-shrunk box.

Run:  python comparisons/bound_constructions.py [--quick] [--students 2 4 6 8 q6 q8]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from .._logging import show_progress
from .metrics import noise_floor, summarize

__all__ = ["CONSTRUCTIONS", "run", "score_bounds", "score_student", "to_markdown"]

logger = logging.getLogger(__name__)

CONSTRUCTIONS = ("members M=100", "members M=500", "corners", "calibrated corners", "MCMC natural-T ±2σ")
KINDS = ("energy", "force")


def parse_student(label: str) -> tuple[int, bool]:
    """``"6"`` → (6, False) (linear SNAP 2J = 6); ``"q8"`` → (8, True) (quadratic)."""
    quadratic = label.startswith("q")
    try:
        twojmax = int(label[1:] if quadratic else label)
    except ValueError:
        raise ValueError(f"student {label!r}: give 2J (e.g. 6) or q2J for quadratic SNAP (e.g. q8)") from None
    return twojmax, quadratic


def score_bounds(pred, design) -> dict:
    """Coverage (within the noise floor), median half-width/|err|, mean width and mean |err| of a
    prediction's bounds (``ensemble.predict(design.X, ...)``) per row kind of ``design``."""
    out = {}
    for kind in KINDS:
        m = design.kind == kind
        s = summarize(pred.mean[m], pred.lower[m], pred.upper[m], design.y[m], tolerance=noise_floor(design.kind[m]))
        out[kind] = {k: s[k] for k in ("n", "coverage", "median_half_width_over_abs_error", "mean_width",
                                       "mean_abs_error")}
    return out


def _subset(ens, n: int):
    from ..ensemble import ParameterEnsemble

    return ParameterEnsemble(ens.theta, members=ens.members[:n], axes=ens.axes, lower=ens.lower, upper=ens.upper)


def score_student(d_train, d_held, seed: int = 0, quick: bool = False, calibration_groups=None) -> dict:
    """Every construction of :data:`CONSTRUCTIONS` for one student's designs.

    ``calibration_groups``: training groups the calibrated box is chosen on (default
    :data:`~.dft.CALIBRATION_GROUPS`).
    """
    from ..backends import MCMC, POPS
    from .dft import CALIBRATION_GROUPS
    from .study import BackendSpec, calibrate_on_groups

    calibration_groups = CALIBRATION_GROUPS if calibration_groups is None else tuple(calibration_groups)
    rows = {}
    t0 = time.perf_counter()
    pops = POPS(random_state=seed, n_members=500).fit(d_train)
    rows["fit POPS"] = time.perf_counter() - t0
    out = {"R": int(pops.axes.shape[1]), "constructions": {}, "wall_s": rows}
    for n in (100, 500):
        pred = _subset(pops, n).predict(d_held.X, bounds="sampled", return_members=False)
        out["constructions"][f"members M={n}"] = score_bounds(pred, d_held)
    pred = pops.predict(d_held.X, bounds="exact", return_members=False)
    out["constructions"]["corners"] = score_bounds(pred, d_held)
    t0 = time.perf_counter()
    spec = calibrate_on_groups(BackendSpec("POPS calibrated", POPS(random_state=seed, n_members=500), bounds="box",
                                           calibrate=0.95), d_train, calibration_groups)
    calibrated = spec.fit(d_train)
    rows["calibrate and fit POPS"] = time.perf_counter() - t0
    pred = calibrated.predict(d_held.X, bounds="exact", return_members=False)
    out["constructions"]["calibrated corners"] = score_bounds(pred, d_held)
    out["calibration"] = {"box_scale": spec.backend.box_scale, "settings": spec.chosen}
    t0 = time.perf_counter()
    mcmc_kw = {"n_steps": 600, "burn_in": 200, "n_members": 50} if quick else {}
    mcmc = MCMC(temperature="natural", random_state=seed, **mcmc_kw).fit(d_train)
    rows["fit MCMC"] = time.perf_counter() - t0
    pred = mcmc.predict(d_held.X, bounds="gaussian", z=2.0, return_members=False)
    out["constructions"]["MCMC natural-T ±2σ"] = score_bounds(pred, d_held)
    return out


def run(students=("2", "4", "6", "8", "q8"), quick: bool = True, seed: int = 0, data: Path | None = None,
        out: Path = Path("results/bound_constructions"), executor=None) -> dict | None:
    """The comparison; ``None`` when the Wood data are absent. Designs are cached under ``out``."""
    from ..design import DesignMatrix
    from .dft import default_data, load_frames
    from .teacher import teacher_student

    data = default_data() if data is None else Path(data)
    if data is None or not Path(data).exists():
        logger.warning("bound constructions: the Wood W data are not found; skipping")
        return None
    t0 = time.perf_counter()
    train, held, log = load_frames(Path(data), quick, seed)
    result = {"seed": seed, "quick": quick, "frames": log, "students": []}
    for label in students:
        twojmax, quadratic = parse_student(label)
        desc = teacher_student(twojmax, quadratic)
        cache = Path(out) / f"store_{'q' if quadratic else ''}2j{twojmax}{'_quick' if quick else ''}" / "design"
        # the weights of the tungsten_dft study: energies per atom ×100, forces ×1, no stress rows
        d_train = DesignMatrix.build(train, desc, weights={"energy": 100.0, "force": 1.0, "stress": 0.0},
                                     executor=executor, progress=False, cache_dir=cache)
        d_held = DesignMatrix.build(held, desc, weights={"energy": 1.0, "force": 1.0, "stress": 0.0},
                                    executor=executor, progress=False, cache_dir=cache)
        row = {"student": label, "model": f"{'qSNAP' if quadratic else 'SNAP'} 2J={twojmax}", "P": d_train.n_params,
               **score_student(d_train, d_held, seed, quick)}
        result["students"].append(row)
        logger.info("%s: P=%d, R=%d, %s", row["model"], row["P"], row["R"],
                    {k: round(v["energy"]["coverage"], 2) for k, v in row["constructions"].items()})
    result["wall_s"] = time.perf_counter() - t0
    return result


def _f(x, spec=".2f") -> str:
    return "–" if x is None or not np.isfinite(x) else format(x, spec)


def to_markdown(result: dict) -> str:
    lines = ["# POPS bound constructions as the box dimension grows: Wood W set, held-out groups", "",
             f"{'Quick split' if result['quick'] else 'All frames'} (seed {result['seed']}): training groups "
             f"{', '.join(result['frames']['train_groups'])}; held out {', '.join(result['frames']['heldout_groups'])}. "
             "cov = coverage of held-out rows (within the noise floor); h/|e| = median half-width/|err|; width = "
             "mean U − L (energy meV/atom, force eV/Å). POPS: 500 uniform box samples; *members M* = min/max of the "
             "first M; *corners* = exact box extent; *calibrated corners* = box chosen on md_bulk and "
             "Disordered_Struc (training groups) for 0.95 coverage.", "",
             "| student | P | R | construction | E cov | E h/\\|e\\| | E width | F cov | F h/\\|e\\| | F width |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["students"]:
        for name, s in row["constructions"].items():
            E, F = s["energy"], s["force"]
            lines.append(f"| {row['model']} | {row['P']} | {row['R']} | {name} | {_f(E['coverage'])} "
                         f"| {_f(E['median_half_width_over_abs_error'], '.3g')} | {_f(1e3 * E['mean_width'], '.3g')} "
                         f"| {_f(F['coverage'])} | {_f(F['median_half_width_over_abs_error'], '.3g')} "
                         f"| {_f(F['mean_width'], '.3g')} |")
    lines += ["", "Box scale chosen by calibration: " + ", ".join(
        f"{r['model']} {r['calibration']['box_scale']:.3g}" for r in result["students"]),
        "", f"wall time {result['wall_s']:.0f} s"]
    return "\n".join(lines)


def main(argv=None) -> dict | None:
    """``python comparisons/bound_constructions.py``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", nargs="+", default=["2", "4", "6", "8", "q8"],
                        help="2J of linear SNAP students, q2J for quadratic (default 2 4 6 8 q8)")
    parser.add_argument("--quick", action="store_true", help="per-group frame subsample, as tungsten_dft --quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("results/bound_constructions"))
    args = parser.parse_args(argv)
    show_progress()
    result = run(args.students, args.quick, args.seed, args.data, args.out)
    if result is None:
        print("Wood W data not found (../shared/data or uqcalc.datasets.fetch('tungsten-wood2017')): nothing to do")
        return None
    md = to_markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bound_constructions_seed{args.seed}{'_quick' if args.quick else ''}"
    stem.with_suffix(".md").write_text(md + "\n")
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    print("\n" + md)
    return result
