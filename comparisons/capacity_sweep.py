"""Does the error bar know when the model is too small? A capacity sweep on the W teacher.

The study lives in :mod:`uqcalc.coverage.capacity` (also ``uqcalc coverage capacity_sweep``);
this script exposes all of its options:

    python comparisons/capacity_sweep.py [--quick] [--twojmax 2 4 6 8] [--nop-twojmax 6]
        [--fractions 0.1 0.25 0.5 1] [--seed 0] [--out results/capacity_sweep]
"""

import os

# one BLAS thread per process: the fits are small and the machine has 2 cores
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from uqcalc.coverage.capacity import main  # noqa: E402

if __name__ == "__main__":
    main()
