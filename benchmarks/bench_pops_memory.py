"""POPS at quadratic-SNAP size: does a P = 1596 fit stay within 24 GB?

The design matrix of the Wood W set under qSNAP 2J=8 is about 509k × 1596 (6.5 GB); building
it costs ~30 CPU-minutes, while POPS's memory depends only on the shape, so this benchmark
fits a synthetic matrix of that shape (a smooth misspecified target on random features with
a decaying spectrum). It reports wall time, peak resident memory of the fitting process and
the size of X. (popsregression materialises N × P corrections and intermediates on top of X,
which at this size does not fit in 24 GB; it is not run here.)

Run:  python benchmarks/bench_pops_memory.py [--rows 509453] [--params 1596]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=509_453)
    parser.add_argument("--params", type=int, default=1596)
    parser.add_argument("--members", type=int, default=1000)
    args = parser.parse_args()

    from uqcalc.backends import POPS
    from uqcalc.design import DesignMatrix

    N, P = args.rows, args.params
    rng = np.random.default_rng(0)
    X = np.empty((N, P))
    scale = 1.0 / np.sqrt(1.0 + np.arange(P))  # decaying spectrum, like bispectrum columns
    for start in range(0, N, 50_000):  # fill in blocks: no second N × P temporary
        stop = min(start + 50_000, N)
        X[start:stop] = rng.standard_normal((stop - start, P)) * scale
    theta_true = rng.standard_normal(P)
    y = X @ theta_true + 0.3 * np.tanh(X[:, 0] * X[:, 1])  # misspecified: not linear in X
    kind = np.where(np.arange(N) % 50 == 0, "energy", "force")
    design = DesignMatrix(X=X, y=y, kind=kind)
    after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6

    t0 = time.perf_counter()
    ensemble = POPS(n_members=args.members, random_state=0).fit(design)
    fit_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # ru_maxrss is kB on Linux

    Xq = X[:100_000]
    t0 = time.perf_counter()
    ensemble.predict(Xq, bounds="exact", return_members=False)
    predict_s = time.perf_counter() - t0

    print(f"design {N} × {P}: X = {X.nbytes / 1e9:.2f} GB; process peak after building it {after_build:.2f} GB")
    print(f"POPS fit: {fit_s:.1f} s, peak resident memory {peak:.2f} GB "
          f"({peak - after_build:+.2f} GB over the built design); box rank {ensemble.axes.shape[1]}")
    print(f"exact bounds for 1e5 rows: {predict_s:.2f} s")


if __name__ == "__main__":
    main()
