"""Fit time and memory of the UQ backends on the tungsten SNAP design matrix.

Builds (once, then loads from a cache) the SNAP twojmax=8 design matrix of the Wood (2017)
tungsten set, energies and forces (~503k rows × 56), and fits every backend in its own
subprocess so that the memory figures do not leak into each other:

* fit time: best of ``--rounds`` fits, wall clock;
* peak memory: ``tracemalloc`` peak of one more fit (numpy reports its buffers to tracemalloc),
  i.e. memory allocated by the fit on top of the loaded design matrix; and the growth of the
  process's maximum RSS over the fits (includes allocator slack);

for uqcalc's POPS, BayesianRidge, MCMC and Bootstrap and for ``popsregression`` 0.4.0
(``POPSRegression(leverage_percentile=0)`` on the same weighted rows, 1000 posterior samples as
uqcalc's POPS). It also prints POPS's fit time in units of one 2·N·P² pass at the measured
matmul rate, the exact-bounds predict time for 10⁵ rows, and a cross-check of the two POPS
implementations (θ̄, pointwise corrections, sampled-vs-exact bound widths).

Usage::

    .venv/bin/python benchmarks/bench_backends.py                 # build or load, all backends
    .venv/bin/python benchmarks/bench_backends.py --backends pops,popsregression --rounds 3
    .venv/bin/python benchmarks/bench_backends.py --limit 500     # quick run on 500 frames

The design cache lives in ``--cache-dir`` (default ``.uqcalc-cache/bench`` in the repository,
git-ignored). Exits 0 with a "skipped" line when the data file or LAMMPS is absent.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/tungsten_wood2017.extxyz.gz")
RCUTFAC, RFAC0, TWOJMAX = 4.73442, 0.99363, 8
N_MEMBERS = 1000
PREDICT_ROWS = 100_000
ALL_BACKENDS = ("pops", "bayes", "mcmc", "bootstrap", "popsregression")


# -- design matrix ---------------------------------------------------------------------------


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def design_path(data: Path, cache_dir: Path, limit: int | None, workers: int) -> Path:
    """Path of the cached design matrix; builds it on a miss."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{_file_sha(data)[:16]}-snap{TWOJMAX}-ef-{limit or 'all'}"
    pointer = cache_dir / f"bench-{tag}.json"
    if pointer.exists():
        path = Path(json.loads(pointer.read_text())["design"])
        if path.exists():
            return path
    from uqcalc.data import read
    from uqcalc.descriptors import SNAP
    from uqcalc.design import DesignMatrix

    t0 = time.perf_counter()
    frames = read(data)
    if limit:
        frames = frames[:: max(1, len(frames) // limit)][:limit]
    snap = SNAP(twojmax=TWOJMAX, rcutfac=RCUTFAC, rfac0=RFAC0)
    executor = None
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(max_workers=workers)
    try:
        design = DesignMatrix.build(frames, snap, weights={"stress": 0.0}, executor=executor, cache_dir=cache_dir)
    finally:
        if executor is not None:
            executor.shutdown()
        if hasattr(snap, "close"):
            snap.close()
    path = cache_dir / f"design-{design.metadata['cache_key'][:24]}.npz"
    pointer.write_text(json.dumps({"design": str(path), "frames": len(frames)}))
    print(f"built design matrix in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
    return path


# -- children: one backend per process -------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    """VmHWM (resettable through clear_refs), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _make_fit(name: str, design):
    """A zero-argument callable that fits backend ``name`` on ``design``."""
    if name == "popsregression":
        from popsregression import POPSRegression

        X, y = design.weighted()  # input preparation: not part of the fit
        density = (N_MEMBERS + 0.5) / len(y)
        return lambda: POPSRegression(leverage_percentile=0, resample_density=density).fit(X, y)
    from uqcalc import backends

    cls = {"pops": backends.POPS, "bayes": backends.BayesianRidge, "mcmc": backends.MCMC, "bootstrap": backends.Bootstrap}[name]
    kwargs = {"random_state": 0}
    if name == "pops":
        kwargs["n_members"] = N_MEMBERS
    return lambda: cls(**kwargs).fit(design)


def child(name: str, path: Path, rounds: int) -> dict:
    from uqcalc.design import DesignMatrix

    design = DesignMatrix.load(path)
    # warm-up on a few rows: imports and first-call costs stay out of the figures
    _make_fit(name, design.select(np.arange(min(design.n_rows, 2000))))()
    fit = _make_fit(name, design)
    gc.collect()
    try:  # reset the peak-RSS counter (Linux >= 4.0); else the figure includes the load
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    rss0 = _rss()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - t)
        del result
        gc.collect()
    maxrss = _peak_rss()
    tracemalloc.start()
    result = fit()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = {
        "backend": name,
        "fit_s": min(times),
        "fit_all_s": times,
        "peak_traced_MB": peak / 1e6,
        "rss_growth_MB": max(0, maxrss - rss0) / 1e6,
        "n_rows": design.n_rows,
        "n_params": design.n_params,
    }
    if name == "pops":
        out.update(_pops_extras(design, result))
    return out


def _pops_extras(design, ens) -> dict:
    X = design.X
    t_mm = []
    for _ in range(3):
        t = time.perf_counter()
        X.T @ X
        t_mm.append(time.perf_counter() - t)
    rows = X[:PREDICT_ROWS]
    timing = {}
    for bounds in ("exact", "sampled"):
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            ens.predict(rows, bounds=bounds, return_members=False)
            best = min(best, time.perf_counter() - t)
        timing[bounds] = best
    return {
        "matmul_s": min(t_mm),
        "predict_rows": int(rows.shape[0]),
        "predict_exact_s": timing["exact"],
        "predict_sampled_s": timing["sampled"],
        "rank": int(ens.axes.shape[1]),
        "n_members": ens.n_members,
    }


def compare(path: Path) -> dict:
    """uqcalc POPS vs popsregression on the same rows (not timed)."""
    from popsregression import POPSRegression

    from uqcalc.backends import POPS
    from uqcalc.backends.pops import pops_corrections
    from uqcalc.design import DesignMatrix

    design = DesignMatrix.load(path)
    X, y = design.weighted()
    # same start and a tight tolerance, so both evidence fits reach the same fixed point
    ref = POPSRegression(leverage_percentile=0, tol=1e-10, resample_density=(N_MEMBERS + 0.5) / len(y)).fit(X, y)
    # min_leverage=0: popsregression keeps every row with h > 0, so ours must too to compare boxes
    same = dict(tol=1e-10, alpha_init=1.0 / y.var(), n_members=N_MEMBERS, random_state=0)
    ens = POPS(min_leverage=0.0, **same).fit(design)
    default = POPS(**same).fit(design)
    sample = np.random.default_rng(0).choice(len(y), min(len(y), 10_000), replace=False)
    sample.sort()
    T, _, _ = pops_corrections(design, ens.theta, ens.metadata["ridge"], rows=sample)
    Tref = ref._pointwise_correction[sample]
    Xs = design.X[sample]
    ours = ens.predict(Xs, bounds="exact", return_members=False)
    ours_sampled = ens.predict(Xs, bounds="sampled", return_members=False)
    _, ref_upper, ref_lower = ref.predict(Xs, return_bounds=True)
    energy = design.rows_of("energy")
    Xe = design.X[energy][:2000]
    return {
        "n_tiny_leverage": default.metadata["rows"]["n_tiny_leverage"],
        "energy_width_min_leverage_0": float(np.median(ens.predict(Xe, return_members=False).width)),
        "energy_width_default": float(np.median(default.predict(Xe, return_members=False).width)),
        "rank_min_leverage_0": int(ens.axes.shape[1]),
        "rank_default": int(default.axes.shape[1]),
        "theta_rel_diff": float(np.abs(ens.theta - ref.coef_).max() / np.abs(ref.coef_).max()),
        "alpha_rel_diff": float(abs(ens.metadata["alpha"] / ref.alpha_ - 1)),
        "ridge_rel_diff": float(abs(ens.metadata["ridge"] / (ref.lambda_ / ref.alpha_) - 1)),
        "corrections_rel_diff": float(np.abs(T - Tref).max() / np.abs(Tref).max()),
        "width_ratio_popsregression_sampled_to_exact": float(np.median((ref_upper - ref_lower) / ours.width)),
        "width_ratio_uqcalc_sampled_to_exact": float(np.median(ours_sampled.width / ours.width)),
    }


# -- parent ----------------------------------------------------------------------------------


def _run_child(args: list[str], threads: int | None = None) -> dict | None:
    env = dict(os.environ)
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        print(f"  {' '.join(args[:2])}: failed\n{proc.stderr[-2000:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".uqcalc-cache" / "bench")
    parser.add_argument("--limit", type=int, help="use about N frames (quick run)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the design build")
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS))
    parser.add_argument("--rounds", type=int, default=2, help="timed fits per backend (best reported)")
    parser.add_argument("--no-compare", action="store_true", help="skip the POPS cross-check")
    parser.add_argument("--threads", type=int, help="BLAS threads in the fitting processes (default: BLAS's own)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--design", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = compare(args.design) if args.child == "compare" else child(args.child, args.design, args.rounds)
        print(json.dumps(result))
        return 0

    if not args.data.exists():
        print(f"skipped: data absent ({args.data})")
        return 0
    try:
        from uqcalc._lammps import lammps_module

        lammps_module()
    except ImportError as err:
        print(f"skipped: LAMMPS absent ({err})")
        return 0

    path = design_path(args.data, args.cache_dir, args.limit, args.workers)
    load0 = os.getloadavg()[0]  # other processes share the cores: BLAS threads then spin-wait
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        raise SystemExit(f"unknown backends {sorted(unknown)}; choose from {ALL_BACKENDS}")
    results = {}
    for name in names:
        if name == "popsregression":
            try:
                import popsregression
            except ImportError:
                print("  popsregression: not installed, skipped")
                continue
        print(f"  fitting {name} ...", flush=True)
        r = _run_child(["--child", name, "--design", str(path), "--rounds", str(args.rounds)], args.threads)
        if r:
            results[name] = r

    if not results:
        return 1
    any_r = next(iter(results.values()))
    N, P = any_r["n_rows"], any_r["n_params"]
    print(f"\ndesign: {N} rows x {P} params (SNAP twojmax={TWOJMAX}, energies + forces), {path.name}")
    print(f"BLAS threads: {args.threads or 'default'}; 1-min load average at start: {load0:.1f} on {os.cpu_count()} cores")
    ref = results.get("pops")
    print(f"{'backend':16s} {'fit [s]':>9s} {'/POPS':>7s} {'peak [MB]':>10s} {'/POPS':>7s} {'RSS+ [MB]':>10s}")
    for name, r in results.items():
        t_ratio = f"{r['fit_s'] / ref['fit_s']:7.2f}" if ref else "      -"
        m_ratio = f"{r['peak_traced_MB'] / ref['peak_traced_MB']:7.1f}" if ref else "      -"
        print(f"{name:16s} {r['fit_s']:9.2f} {t_ratio} {r['peak_traced_MB']:10.1f} {m_ratio} {r['rss_growth_MB']:10.1f}")
    print(f"(design matrix itself: {N * P * 8 / 1e6:.0f} MB; peak = tracemalloc peak of one fit on top of it)")
    if ref:
        flops = 2.0 * N * P * P
        rate = flops / ref["matmul_s"]
        print(
            f"\nmatmul XᵀX: {ref['matmul_s']:.3f} s = {rate / 1e9:.1f} GFLOP/s; "
            f"POPS fit = {ref['fit_s'] / ref['matmul_s']:.1f} × one 2·N·P² pass "
            f"(the algorithm needs ~4: Gram, leverages, TᵀT, projection)"
        )
        print(
            f"predict {ref['predict_rows']} rows: exact bounds {ref['predict_exact_s']:.3f} s, "
            f"sampled bounds (M={ref['n_members']}) {ref['predict_sampled_s']:.3f} s; box rank R={ref['rank']}"
        )
    if "pops" in names and not args.no_compare:
        try:
            import popsregression  # noqa: F401

            c = _run_child(["--child", "compare", "--design", str(path)], args.threads)
            if c:
                print(
                    "\nPOPS vs popsregression (same rows, leverage_percentile=0): "
                    f"θ̄ rel. diff {c['theta_rel_diff']:.1e}, α {c['alpha_rel_diff']:.1e}, ridge {c['ridge_rel_diff']:.1e}, "
                    f"corrections (10⁴ rows) {c['corrections_rel_diff']:.1e}"
                )
                print(
                    f"median width, sampled / exact bounds: popsregression {c['width_ratio_popsregression_sampled_to_exact']:.2f}, "
                    f"uqcalc sampled (M={N_MEMBERS}) {c['width_ratio_uqcalc_sampled_to_exact']:.2f}"
                )
                print(
                    f"tiny-h clamp: {c['n_tiny_leverage']} rows with h <= 1e-12 (numerically x ≈ 0); median energy-row "
                    f"exact width [eV/atom] with them {c['energy_width_min_leverage_0']:.3g} (R={c['rank_min_leverage_0']}), "
                    f"without (default) {c['energy_width_default']:.3g} (R={c['rank_default']})"
                )
        except ImportError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
