"""Whose error bars can I trust? The W teacher–student coverage study (POPS paper format).

A linear SNAP student (2J=6, teacher's ZBL) is fitted to the teacher training set without the
validation groups (divacancy, interstitial, (112) surface, (112) fault) by five backends: POPS
(default row selection, chosen on held-out configurations), BayesianRidge (parameter posterior
±2σ, no noise term), collapsed MCMC (T=1 and KLIFF's natural temperature, ±2σ) and a bootstrap
by configuration. Every property of the W suite is propagated (implicit differentiation;
resample for properties without stationary states) and scored against the teacher's own value:
per property the MLE error, std and low/high bound errors; per backend coverage next to width
(mean |err|/(U−L), median half-width/|err|); configuration-level coverage on the held-out groups.
Results are checkpointed in ``<out>/store``: an interrupted run resumes.

Run:  python comparisons/tungsten_teacher.py [--full] [--size small|full] [--twojmax 6] [--seed 0]
      [--propagation implicit|linear|resample] [--names a0 C44 ...] [--out results/coverage_teacher]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# one BLAS thread per process (see comparisons/teacher_properties.py: tiny LAPACK calls in cell
# relaxations are much slower with a multithreaded OpenBLAS on a busy machine)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from uqcalc._logging import show_progress
from uqcalc.coverage import run_teacher_study


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="default property cells, all members (slow)")
    parser.add_argument("--size", default="small", choices=["small", "full"])
    parser.add_argument("--twojmax", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--propagation", default="implicit", choices=["implicit", "linear", "resample"])
    parser.add_argument("--names", nargs="*", default=None)
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("results/coverage_teacher"))
    args = parser.parse_args(argv)
    show_progress()
    results = run_teacher_study(args.out, size=args.size, quick=not args.full, twojmax=args.twojmax,
                                seed=args.seed, propagation=args.propagation, names=args.names,
                                figures=not args.no_figures)
    print("\n" + results.to_markdown(results.meta["title"]))


if __name__ == "__main__":
    main()
