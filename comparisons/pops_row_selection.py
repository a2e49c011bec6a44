"""Which training rows should build the POPS box? Evidence on held-out teacher configurations.

A W teacher–student problem: the student (linear SNAP, 2J=6, with the teacher's ZBL) is fitted
to the teacher training set without the validation groups; every POPS row-selection candidate
(row kinds × leverage filter × percentile clipping) is scored on the held-out groups' energy
rows (eV/atom): coverage (fraction of teacher values inside the exact bounds) and width. No
material property enters, so the choice cannot be tuned on the properties the coverage bench
reports (``METHODS.md`` §3, issue protocol).

Run:  python comparisons/pops_row_selection.py [--size small|full] [--seed 0] [--out results/]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from uqcalc.backends import POPS
from uqcalc.data import split_by_group
from uqcalc.datasets import tungsten
from uqcalc.descriptors import SNAP
from uqcalc.design import DesignMatrix

VALIDATION_GROUPS = ("divacancy", "interstitial", "surface_112", "gsf_112")

CANDIDATES = [
    {"row_kinds": kinds, "leverage_percentile": lev, "percentile_clipping": clip}
    for kinds in (None, ("energy",), ("energy", "stress"), ("energy", "force"))
    for lev in (0.0, 50.0, 90.0)
    for clip in (0.0, 1.0, 5.0)
]


def run(size: str, seed: int, twojmax: int, target: float) -> dict:
    t0 = time.perf_counter()
    frames = tungsten.teacher_training_set(size=size, seed=seed)
    train, valid = split_by_group(frames, VALIDATION_GROUPS)
    teacher, _ = SNAP.from_lammps_potential("W_2940_2017_2")
    student = SNAP(twojmax=twojmax, rcutfac=4.73442, rfac0=0.99363, reference=teacher.reference)
    d_train = DesignMatrix.build(train, student)
    d_valid = DesignMatrix.build(valid, student)
    chosen, table = POPS(random_state=seed).select(
        d_train, d_valid, candidates=CANDIDATES, target_coverage=target, validation_kinds=["energy"]
    )
    # the same boxes scored on held-out force rows, for the record
    forces = d_valid.rows_of("force")
    for row in table:
        if np.isfinite(row["coverage"]):
            ens = POPS(random_state=seed, **row["settings"]).fit(d_train)
            pred = ens.predict(d_valid.X[forces], return_members=False)
            y = d_valid.y[forces]
            row["force_coverage"] = float(np.mean((pred.lower <= y) & (y <= pred.upper)))
            row["force_mean_width"] = float(np.mean(pred.upper - pred.lower))
    energy = d_valid.rows_of("energy")
    rmse = float(np.sqrt(np.mean((d_valid.X[energy] @ POPS().fit(d_train).theta - d_valid.y[energy]) ** 2)))
    return {
        "size": size, "seed": seed, "twojmax": twojmax, "target_coverage": target,
        "n_train_rows": d_train.n_rows, "n_valid_energy_rows": int(energy.sum()),
        "validation_groups": list(VALIDATION_GROUPS), "energy_rmse_eV_per_atom": rmse,
        "chosen": {k: getattr(chosen, k) for k in ("row_kinds", "leverage_percentile", "percentile_clipping")},
        "table": table, "wall_s": time.perf_counter() - t0,
    }


def print_result(result: dict) -> None:
    print(f"\nsize={result['size']} seed={result['seed']} 2J={result['twojmax']}: "
          f"{result['n_train_rows']} training rows, {result['n_valid_energy_rows']} held-out energies, "
          f"point-estimate RMSE {1e3 * result['energy_rmse_eV_per_atom']:.1f} meV/atom")
    print("| row kinds | leverage pct | clipping pct | rows kept | energy coverage | energy mean width meV/atom "
          "| mean width / RMSE | force coverage | force mean width eV/A |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in result["table"]:
        s = row["settings"]
        kinds = "all" if s["row_kinds"] is None else "+".join(s["row_kinds"])
        if not np.isfinite(row["coverage"]):
            print(f"| {kinds} | {s['leverage_percentile']:g} | {s['percentile_clipping']:g} | – | failed: {row['error']} |")
            continue
        print(f"| {kinds} | {s['leverage_percentile']:g} | {s['percentile_clipping']:g} | {row['n_kept']} "
              f"| {row['coverage']:.2f} | {1e3 * row['mean_width']:.1f} "
              f"| {row['mean_width'] / result['energy_rmse_eV_per_atom']:.1f} "
              f"| {row.get('force_coverage', np.nan):.2f} | {row.get('force_mean_width', np.nan):.2f} |")
    print(f"chosen (narrowest with energy coverage >= {result['target_coverage']}): {result['chosen']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small", choices=["small", "full"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--twojmax", type=int, default=6)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=Path("results/pops_row_selection"))
    args = parser.parse_args()
    result = run(args.size, args.seed, args.twojmax, args.target)
    print_result(result)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.size}_seed{args.seed}_2j{args.twojmax}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"written {path}")


if __name__ == "__main__":
    main()
