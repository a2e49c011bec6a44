"""The ``uqcalc`` command.

``uqcalc demo`` is the README's main job. Until the property coverage bench lands it
runs the end-to-end configuration-level study that exists: label the tungsten teacher
set, fit a lower-capacity SNAP student with every UQ backend, and report per-group
errors and how often each backend's bounds contain held-out teacher energies.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["main"]

# Held-out groups: defect, surface and fault configurations the student never sees.
DEMO_TEST_GROUPS = ("divacancy", "interstitial", "surface_112", "gsf_112")


def _print_table(headers: list[str], rows: list[list], out=sys.stdout) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    print(line, file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for row in rows:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(row, widths)) + " |", file=out)


def run_demo(size: str = "small", twojmax: int = 6, seed: int = 0, test_groups=DEMO_TEST_GROUPS) -> dict:
    """Teacher–student configuration-level comparison of the UQ backends.

    Returns the numbers it prints (per-backend coverage and width of energy bounds on
    held-out groups) so tests can check them.
    """
    from .backends import MCMC, POPS, BayesianRidge, Bootstrap
    from .data import split_by_group
    from .datasets import tungsten
    from .descriptors import SNAP
    from .design import DesignMatrix

    t0 = time.perf_counter()
    frames = tungsten.teacher_training_set(size=size, seed=seed)
    held_out = list(test_groups)
    train, test = split_by_group(frames, held_out)
    print(f"teacher set: {len(frames)} frames ({time.perf_counter() - t0:.1f} s); "
          f"training on {len(train)}, holding out {len(test)} in groups {sorted(held_out)}")

    teacher_snap, _ = SNAP.from_lammps_potential("W_2940_2017_2")
    student = SNAP(twojmax=twojmax, rcutfac=4.73442, rfac0=0.99363, reference=teacher_snap.reference)
    print(f"student: SNAP 2J={twojmax} ({student.n_params} parameters) + the teacher's ZBL; "
          f"teacher: SNAP 2J=8 ({teacher_snap.n_params} parameters)")
    d_train = DesignMatrix.build(train, student)
    d_test = DesignMatrix.build(test, student)

    backends = {
        "POPS (hypercube)": POPS(random_state=seed),
        "BayesianRidge": BayesianRidge(random_state=seed),
        "MCMC (collapsed)": MCMC(random_state=seed),
        "MCMC (T=natural)": MCMC(temperature="natural", random_state=seed),
        "Bootstrap": Bootstrap(random_state=seed),
    }
    energy = d_test.rows_of("energy")
    X, y = d_test.X[energy], d_test.y[energy]
    results, rows = {}, []
    for name, backend in backends.items():
        t = time.perf_counter()
        ensemble = backend.fit(d_train)
        mode = "exact" if ensemble.has_box else ("gaussian" if name != "Bootstrap" else "sampled")
        pred = ensemble.predict(X, bounds=mode, return_members=False)
        inside = (pred.lower <= y) & (y <= pred.upper)
        err = np.abs(pred.mean - y)
        width = pred.upper - pred.lower
        results[name] = {
            "coverage": float(inside.mean()),
            "mean_err_over_width": float(np.mean(err / width)),
            "rmse_meV_per_atom": float(1e3 * np.sqrt(np.mean((pred.mean - y) ** 2))),
            "median_half_width_meV": float(1e3 * np.median(width / 2)),
        }
        rows.append([
            name, mode, f"{results[name]['coverage']:.2f}", f"{results[name]['rmse_meV_per_atom']:.2f}",
            f"{results[name]['median_half_width_meV']:.2f}", f"{results[name]['mean_err_over_width']:.3f}",
            f"{time.perf_counter() - t:.2f}",
        ])

    print("\nPer-group RMSE of the point estimate (BayesianRidge mean), train and held-out:")
    theta = backends["BayesianRidge"].fit(d_train).theta
    err_rows = []
    for label, design in (("train", d_train), ("test", d_test)):
        for (group, kind), e in sorted(design.errors(theta).items()):
            scale, unit = (1e3, "meV/atom") if kind == "energy" else ((1e3, "meV/A") if kind == "force" else (160.2177, "GPa"))
            err_rows.append([label, group, kind, f"{scale * e['rmse']:.2f} {unit}", e["n_rows"]])
    _print_table(["set", "group", "kind", "RMSE", "rows"], err_rows)

    print(f"\nHeld-out energies per atom ({int(energy.sum())} frames): do the bounds contain the teacher?")
    _print_table(["backend", "bounds", "coverage", "RMSE meV/atom", "median half-width meV/atom",
                  "mean |err|/width", "fit s"], rows)
    print("\nCoverage alone is cheap; read it next to the width. Bayesian bands here are the "
          "parameter posterior ±2σ without the noise term, as they propagate to properties.")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``uqcalc`` console script."""
    parser = argparse.ArgumentParser(prog="uqcalc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="teacher–student tungsten comparison of the UQ backends")
    demo.add_argument("--size", choices=["small", "full"], default="small", help="teacher training-set size")
    demo.add_argument("--twojmax", type=int, default=6, help="student SNAP capacity (teacher: 8)")
    demo.add_argument("--seed", type=int, default=0, help="seed for data generation and sampling")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            run_demo(size=args.size, twojmax=args.twojmax, seed=args.seed)
    except (ValueError, FileNotFoundError) as err:
        print(f"uqcalc: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
