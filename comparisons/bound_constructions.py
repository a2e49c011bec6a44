"""Which POPS bound construction as the box dimension R grows? Held-out Wood W configurations.

The comparison lives in :mod:`uqcalc.coverage.constructions`; this script exposes its options and
exits 0 with a message when the data are absent:

    python comparisons/bound_constructions.py [--quick] [--students 2 4 6 8 q8] [--seed 0]
        [--data ../shared/data/tungsten_wood2017.extxyz.gz] [--out results/bound_constructions]
"""

import os

# one BLAS thread per process (the machine has 2 cores; the fits are dominated by small solves)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from uqcalc.coverage.constructions import main  # noqa: E402

if __name__ == "__main__":
    main()
