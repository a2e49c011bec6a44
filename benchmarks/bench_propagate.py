"""Resample vs implicit vs linear propagation of a SNAP/POPS ensemble to W point-defect energies.

Model: a SNAP student (2J_max = 6, 31 parameters, plus the ZBL reference of W_2940_2017_2) fitted
by POPS (hypercube, ``--members`` members, default 200) to the tungsten teacher's small training
set. Properties: the vacancy formation energy and the <111> dumbbell SIA formation energy of
:mod:`uqcalc.properties.defects` (constant volume at the teacher's a0; ``--size 3``: 54-site cells,
``--size 4``: 128 sites). For each property, in the same run:

* ``resample`` — every member relaxes every state (the reference);
* ``implicit`` — relax once at θ̄, dense symmetry-reduced finite-difference Hessian, each member's
  own Hessian (default), extreme members re-relaxed as a spot check (included in the time);
* ``implicit (fixed H)`` — the paper's expansion ``E* + D·δ − ½ δᵀMᵀH(θ̄)⁺Mδ``;
* ``implicit + refine`` — one more Newton step per member (one descriptor call each);
* ``linear`` — the first-order (envelope-theorem) term.

Printed: wall time, speed-up over resample, descriptor calls, and the max / mean |deviation|
of each member from resample, in eV, as a fraction of the resampled std and of its range
(upper − lower). Timings are single-process wall clock with single-threaded BLAS on a possibly
shared machine: compare within one run.

At the POPS tungsten paper's scale (``--twojmax 8 --quadratic --members 500``: quadratic SNAP,
P = 1596, fitted to the quick training split of the Wood et al. W DFT set; 2-core development
machine, single process), per member against re-relaxation:

==========================  ==========  ==========  ================  ============
54-site cell                resample    implicit    speed-up          max |Δ|/std
==========================  ==========  ==========  ================  ============
vacancy (std 0.041 eV)      462 s       14.2 s      33×               0.0002
<111> SIA (std 0.098 eV)    780 s       7.9 s       99×               0.0032
==========================  ==========  ==========  ================  ============

(peak RSS 1.5 GB; ``linear`` is 0.05 and 0.21 of the std off.) The member Hessians are kept
on the span of the 500 members' deviations (``member_hessian_mode="subspace"``), never as P
per-parameter Hessians.

Run: ``python benchmarks/bench_propagate.py [--size 3|4] [--members 200] [--twojmax 8 --quadratic]
[--resample-members K] [--json out.json]``. Takes about 3 minutes at size 3 with the defaults
(resample dominates), ~10 at size 4, ~25 at the paper's scale. Exits 0 with a "skipped" line
without LAMMPS (or, for ``--data wood``, without the shared W data).
"""

from __future__ import annotations

import os

# Both methods run serially; multi-threaded OpenBLAS on a shared machine spin-waits and made one
# 378×378 eigendecomposition take 0.6 s instead of 0.01 s. Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
import warnings

import numpy as np


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux ru_maxrss is in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def build_model(members: int, seed: int, twojmax: int = 6, quadratic: bool = False, data: str = "teacher"):
    """(descriptor, POPS ensemble, label of the training data), or None when the data are absent.

    ``data="teacher"``: the W teacher's small training set (233 frames labelled by
    W_2940_2017_2, itself a linear 2J=8 SNAP: a quadratic 2J=8 student contains it, so its POPS
    box collapses and the comparison says nothing). ``data="wood"``: the quick training split of
    the Wood et al. VASP-PBE W set used by ``uqcalc coverage tungsten_dft`` (every EOS_Data cell,
    25 frames per other group, 200 slice_sample; energy weight 100, no stress rows): real
    misspecification at the paper's model size.
    """
    from uqcalc.backends import POPS
    from uqcalc.coverage.teacher import teacher_student
    from uqcalc.design import DesignMatrix

    descriptor = teacher_student(twojmax, quadratic)
    if data == "wood":
        from uqcalc.coverage.dft import default_data, load_frames

        path = default_data()
        if path is None or not path.exists():
            return None
        frames, _, log = load_frames(path, quick=True, seed=seed)
        label = f"Wood et al. W DFT, quick training split ({len(frames)} frames)"
        weights = {"energy": 100.0, "force": 1.0, "stress": 0.0}
    else:
        from uqcalc.datasets.tungsten import teacher_training_set

        frames = teacher_training_set("small")
        label = f"W teacher small set ({len(frames)} frames)"
        weights = None
    design = DesignMatrix.build(frames, descriptor, weights=weights, progress=False)
    label += f", {design.n_rows} rows"
    return descriptor, POPS(n_members=members, random_state=seed).fit(design), label


VARIANTS = {
    "resample": {"method": "resample"},
    "implicit": {"method": "implicit"},
    "implicit (fixed H)": {"method": "implicit", "member_hessian": False},
    "implicit + refine": {"method": "implicit", "refine": True},
    "linear": {"method": "linear"},
}


def run(prop, model, variants, resample_members: int | None = None) -> dict:
    from uqcalc import propagate

    out = {}
    for label in variants:
        kwargs = dict(VARIANTS[label])
        if label == "resample" and resample_members is not None:
            kwargs["max_members"] = resample_members
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = propagate(prop, model, kwargs.pop("method"), progress=False, **kwargs)
        out[label] = (result, time.perf_counter() - start, [str(w.message) for w in caught])
    return out


def report(prop, results, n_members: int, resample_members: int | None = None, seed: int = 0) -> list[dict]:
    ref, t_ref, _ = results["resample"]
    # a seeded subset of the members is resampled (the same draw as LinearModel.subsample): the
    # other methods are compared on those members, and resampling's time is scaled to all of them
    idx = np.arange(n_members)
    if resample_members is not None and resample_members < n_members:
        idx = np.sort(np.random.default_rng(seed).choice(n_members, resample_members, replace=False))
        t_ref *= n_members / resample_members
        results = {**results, "resample": (ref, t_ref, results["resample"][2])}
    rows = []
    print(f"\n{prop.name} ({len(prop.states()[0].atoms)} atoms in the defect cell): resample value "
          f"{ref.value:.4f} eV, std {ref.std:.4f}, range [{ref.lower:.4f}, {ref.upper:.4f}] eV, "
          f"{len(ref.failed)} failed" + (f"; {len(idx)} of {n_members} members resampled, its time scaled "
                                        f"by {n_members / len(idx):.1f}" if len(idx) < n_members else ""))
    header = (f"{'method':<20} {'time (s)':>9} {'speed-up':>9} {'calls':>7} {'max|Δ| eV':>10} {'mean|Δ| eV':>11} "
              f"{'max/std':>8} {'max/range':>9} {'>5% std':>8}  flags")
    print(header)
    print("-" * len(header))
    for label, (res, t, caught) in results.items():
        members = res.members if label == "resample" else res.members[idx]
        dev = np.abs(members - ref.members)
        calls = res.diagnostics.get("n_descriptor_calls")
        if label != "resample" and "verify" in res.diagnostics:
            calls = f"{calls}+{len(res.diagnostics['verify'])}r"  # + re-relaxed extreme members
        row = {
            "property": prop.name, "method": label, "time_s": t, "speedup": t_ref / t,
            "max_dev": float(np.nanmax(dev)), "mean_dev": float(np.nanmean(dev)),
            "max_dev_over_std": float(np.nanmax(dev) / ref.std),
            "max_dev_over_range": float(np.nanmax(dev) / (ref.upper - ref.lower)),
            "n_over_5pct_std": int(np.sum(dev > 0.05 * ref.std)), "flags": res.flags,
            "value": res.value, "std": res.std, "lower": res.lower, "upper": res.upper,
        }
        rows.append(row)
        flags = "; ".join(f[:70] for f in res.flags) if res.flags else "-"
        print(f"{label:<20} {t:>9.2f} {row['speedup']:>8.1f}x {calls if calls is not None else '-':>7} "
              f"{row['max_dev']:>10.2e} {row['mean_dev']:>11.2e} {row['max_dev_over_std']:>8.4f} "
              f"{row['max_dev_over_range']:>9.4f} {row['n_over_5pct_std']:>8d}  {flags}")
    imp = results["implicit"][0]
    for info in imp.diagnostics["states"]:
        if info.get("hessian", "none").startswith("dense"):
            print(f"  implicit/{info['name']}: {info['hessian']}, {info['n_dof']} coordinates, "
                  f"{info['n_evaluations']} descriptor calls ({info.get('n_symmetry_ops', 1)} symmetry ops), "
                  f"λ_min {info['min_eigenvalue']:.3g} eV/Å², Hessian {info.get('time_hessian', 0):.2f} s")
    times = {k[5:]: round(v, 2) for k, v in imp.diagnostics.items() if k.startswith("time_")}
    print(f"  implicit time split (s): {times}")
    if "box" in imp.diagnostics:
        box = imp.diagnostics["box"]
        print(f"  POPS box corners: linear term in [{box['linear_lower']:.3f}, {box['linear_upper']:.3f}] eV, "
              f"implicit at those corners {[round(v, 3) for v in box['implicit_at_corners']]}; corners at "
              f"|δ| = {[round(v, 2) for v in box['corner_distance']]} vs farthest member {box['max_member_distance']:.2f}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3, help="supercell edge in cubic cells (3: 54 sites, 4: 128)")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--properties", default="vacancy,sia", help="comma list of vacancy, sia")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ", ".join(VARIANTS))
    parser.add_argument("--twojmax", type=int, default=6, help="SNAP 2J_max of the student (8: 55 bispectrum components)")
    parser.add_argument("--quadratic", action="store_true",
                        help="quadratic SNAP (2J=8: 1 + 55 + 1540 = 1596 parameters, the POPS tungsten paper's model)")
    parser.add_argument("--data", choices=("teacher", "wood"),
                        help="training data (default: teacher; wood with --quadratic, see build_model)")
    parser.add_argument("--resample-members", type=int,
                        help="resample a seeded subset of this many members (its time scaled to all members)")
    parser.add_argument("--json", help="write the table rows to this file")
    args = parser.parse_args(argv)
    try:
        import lammps  # noqa: F401
    except ImportError:
        print("skipped: the lammps module is not installed")
        return 0
    from uqcalc.properties.base import TUNGSTEN_A0
    from uqcalc.properties.defects import (
        InterstitialFormationEnergy,
        VacancyFormationEnergy,
    )

    variants = [v.strip() for v in args.variants.split(",")]
    if "resample" not in variants:
        variants.insert(0, "resample")
    start = time.perf_counter()
    data = args.data or ("wood" if args.quadratic else "teacher")
    built = build_model(args.members, args.seed, args.twojmax, args.quadratic, data)
    if built is None:
        print("skipped: the Wood et al. W data (../shared/data/tungsten_wood2017.extxyz.gz) is not present")
        return 0
    model, label = built[:2], built[2]
    print(f"model: {'quadratic ' if args.quadratic else ''}SNAP 2J={args.twojmax} + ZBL on {label}; POPS "
          f"M={model[1].n_members} (P={model[1].n_params}); design + fit {time.perf_counter() - start:.1f} s, "
          f"peak RSS {peak_rss_gb():.2f} GB")
    props = {"vacancy": VacancyFormationEnergy(size=args.size, lattice_constant=TUNGSTEN_A0),
             "sia": InterstitialFormationEnergy(size=args.size, configuration="111", lattice_constant=TUNGSTEN_A0)}
    rows = []
    for key in args.properties.split(","):
        prop = props[key.strip()]
        rows += report(prop, run(prop, model, variants, args.resample_members), model[1].n_members,
                       args.resample_members)
        print(f"  peak RSS so far {peak_rss_gb():.2f} GB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
