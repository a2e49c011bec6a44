"""Whose error bars can I trust against real DFT? The Wood et al. VASP-PBE tungsten set.

The study lives in :mod:`uqcalc.coverage.dft` (also ``uqcalc coverage tungsten_dft``); this
script exposes all of its options and exits 0 with a message when the data are absent:

    python comparisons/tungsten_dft.py [--quick] [--twojmax 6] [--no-properties] [--seed 0]
        [--data ../shared/data/tungsten_wood2017.extxyz.gz] [--out results/tungsten_dft]
"""

import os

# one BLAS thread per process (tiny LAPACK calls in relaxations are slower multithreaded)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from uqcalc.coverage.dft import main  # noqa: E402

if __name__ == "__main__":
    main()
