"""POPS bound constructions as the box dimension R grows (W teacher, held-out configurations).

For SNAP students of growing capacity (linear 2J = 2, 4, 6, 8 and quadratic 2J = 4) fitted to the
W teacher's small training set, three bounds on held-out configurations:

* ``sampled``: min/max over M uniform members of the box (M = 1000, the package default);
* ``exact``: the exact box bounds (corners, ``METHODS.md`` §3);
* ``calibrated``: the exact bounds of ``POPS.calibrate`` (target 0.95), calibrated on the
  ``vacancy`` and ``gsf_110`` groups, which are then left out of that fit;
* ``stable``: the exact bounds of the box shrunk along the axes that make members mechanically
  unstable (:func:`uqcalc.propagate.stability.stable_box`, margin 0.1), with the count of
  Born-unstable members (own lattice) before and after.

Test groups: the teacher study's held-out groups (divacancy, interstitial, (112) surface, (112)
fault), never used for any choice. Printed per student: P, box rank R, and per construction the
coverage and median half-width/abs(err) of held-out energies (per atom) and forces (noise floor
0.1 meV/atom, 1 meV/Å).

The same comparison on real DFT (the Wood W set, up to the paper's quadratic 2J = 8, with
natural-temperature MCMC beside it): ``comparisons/bound_constructions.py``.

Run:  python benchmarks/bench_pops_bounds_vs_rank.py [--members 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

CALIBRATION = ("vacancy", "gsf_110")
STUDENTS = [(2, False), (4, False), (6, False), (8, False), (4, True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from uqcalc.backends import POPS
    from uqcalc.coverage.constructions import score_bounds as scores
    from uqcalc.coverage.teacher import VALIDATION_GROUPS, teacher_student
    from uqcalc.data import split_by_group
    from uqcalc.datasets import tungsten
    from uqcalc.design import DesignMatrix

    frames = tungsten.teacher_training_set(size="small", seed=0)
    train, test = split_by_group(frames, VALIDATION_GROUPS)
    fit_frames, calib_frames = split_by_group(train, CALIBRATION)
    rows = []
    for twojmax, quadratic in STUDENTS:
        t0 = time.perf_counter()
        snap = teacher_student(twojmax)
        if quadratic:
            snap = type(snap)(**{**{k: v for k, v in snap.spec().items() if k != "type"}, "quadratic": True})
        d_train, d_fit, d_calib, d_test = (DesignMatrix.build(f, snap, progress=False)
                                           for f in (train, fit_frames, calib_frames, test))
        pops = POPS(random_state=0, n_members=args.members)
        ens = pops.fit(d_train)
        row = {"twojmax": twojmax, "quadratic": quadratic, "P": d_train.n_params, "R": int(ens.axes.shape[1])}
        row["sampled"] = scores(ens.predict(d_test.X, bounds="sampled", return_members=False), d_test)
        row["exact"] = scores(ens.predict(d_test.X, bounds="exact", return_members=False), d_test)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            chosen, report = pops.calibrate(d_fit, d_calib, target=0.95)
        cal = chosen.fit(d_fit)
        row["calibrated"] = scores(cal.predict(d_test.X, bounds="exact", return_members=False), d_test)
        row["calibration"] = {"settings": {k: (list(v) if isinstance(v, tuple) else v)
                                           for k, v in report.chosen["settings"].items()},
                              "box_scale": chosen.box_scale, "reached": report.reached, "warnings": len(caught)}
        from uqcalc.model import LinearModel
        from uqcalc.propagate.stability import mechanical_stability, stable_box

        model = LinearModel(snap, ens)
        try:
            stable, info = stable_box(model, "W", "bcc")
            row["stable"] = scores(stable.predict(d_test.X, bounds="exact", return_members=False), d_test)
            row["stability"] = {"before": mechanical_stability(model, "W", "bcc").n_unstable,
                                "after": mechanical_stability(LinearModel(snap, stable), "W", "bcc").n_unstable,
                                "n_shrunk": info["n_shrunk"]}
        except (ValueError, RuntimeError) as err:
            row["stable"] = None
            row["stability"] = {"error": str(err)[:200]}
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        print(f"2J={twojmax}{' quadratic' if quadratic else ''}: P={row['P']} R={row['R']} "
              f"({row['wall_s']:.0f} s; calibrated {row['calibration']}; Born-unstable members {row['stability']})",
              flush=True)

    print()
    print("| student | P | R | bounds | E coverage | E median half-width/abs(err) | F coverage | F median half-width/abs(err) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        label = f"2J={r['twojmax']}{' quadratic' if r['quadratic'] else ''}"
        for b in ("sampled", "exact", "calibrated", "stable"):
            if r.get(b) is None:
                print(f"| {label} | {r['P']} | {r['R']} | {b} | {r['stability']} | | | |")
                continue
            e, f = r[b]["energy"], r[b]["force"]
            print(f"| {label} | {r['P']} | {r['R']} | {b} | {e['coverage']:.3f} | "
                  f"{e['median_half_width_over_abs_error']:.2f} | {f['coverage']:.3f} | "
                  f"{f['median_half_width_over_abs_error']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
