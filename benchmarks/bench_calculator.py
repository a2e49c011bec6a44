"""Cost of one UQCalculator evaluation versus ensemble size, and versus LAMMPS ``pair_style snap``.

For 128- and 1024-atom bcc W cells with the W_2940_2017_2 SNAP descriptor
(2J_max = 8, 56 parameters, ZBL reference) and a synthetic ensemble around its
published coefficients (members plus an exact box), this times one
``UQCalculator.calculate`` that fills every key (point estimate, std, bounds,
member predictions for energy, forces and stress; per-atom energies optionally)
for M = 1, 100 and 1000 members, and LAMMPS's own ``pair_style snap`` evaluating
the same potential on the same cell through
:class:`uqcalc.datasets.lammps_calculator.LammpsPotential`.

Targets: t(M=1000) <= 1.05 t(M=1) and t(M=1000) <= 1.5 t(pair_style snap).

Run: ``python benchmarks/bench_calculator.py [--sizes 4 8] [--members 1 100 1000]
[--repeat 7] [--threads N]``. Every variant is timed in turn, ``repeat`` times,
and the minimum is reported, so background load hits all variants alike.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import all_changes

from uqcalc.calculator import UQCalculator
from uqcalc.descriptors import SNAP
from uqcalc.ensemble import ParameterEnsemble

A0 = 3.1805
KEYS_NO_PER_ATOM = ["energy", "forces", "stress"]
KEYS_ALL = KEYS_NO_PER_ATOM + ["energies"]


def cell(repeat: int) -> Atoms:
    atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=repeat)
    return atoms


def ensemble(theta: np.ndarray, n_members: int, rank: int = 20, seed: int = 0) -> ParameterEnsemble:
    """Members and an exact box of relative size ~1e-3 around theta."""
    rng = np.random.default_rng(seed)
    P = theta.size
    axes = np.linalg.qr(rng.standard_normal((P, rank)))[0]
    scale = 1e-3 * np.abs(theta).mean()
    box = ParameterEnsemble(theta, axes=axes, lower=-scale * np.ones(rank), upper=scale * np.ones(rank))
    members = box.sample_box(n_members, random_state=seed)
    return ParameterEnsemble(theta, members=members, axes=axes, lower=box.lower, upper=box.upper)


def interleaved_min(fns: dict, repeat: int) -> dict:
    """Minimum time of each callable, run in turn ``repeat`` times.

    Interleaving exposes every variant to the same background load, so the ratios
    stay meaningful on a busy machine; the minimum discards interrupted runs.
    """
    for fn in fns.values():
        fn()  # warm-up: LAMMPS instances, first neighbour lists, cached matrices
    times = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {key: min(v) for key, v in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8], help="bcc cube repeats (4 -> 128 atoms)")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="limit BLAS threads (threadpoolctl)")
    args = parser.parse_args(argv)

    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)

    # the teacher is W_2940_2017_2 through LAMMPS's own pair_style snap + zbl
    from uqcalc.datasets.tungsten import teacher

    snap, theta = SNAP.from_lammps_potential("W_2940_2017_2")
    print(
        f"SNAP W_2940_2017_2: twojmax={snap.twojmax}, P={snap.n_params}, "
        f"reference={snap.reference['pair_style']}; BLAS threads: {args.threads or 'default'}"
    )
    calcs = {M: UQCalculator(snap, ensemble(theta, M), bounds="exact") for M in args.members}
    lo, hi = min(args.members), max(args.members)
    for repeat in args.sizes:
        atoms = cell(repeat)
        n = len(atoms)
        print(f"\n== {n} atoms: one calculate() from scratch, min of {args.repeat} interleaved runs ==")
        for label, keys in [("E,F,S", KEYS_NO_PER_ATOM), ("E,F,S,E_i", KEYS_ALL)]:
            ref = teacher()
            # all_changes: a full evaluation, as after every optimiser step
            fns = {"lammps": partial(ref.calculate, atoms, keys, all_changes)}
            for M, calc in calcs.items():
                fns[M] = partial(calc.calculate, atoms, keys, all_changes)
            per_atom = "energies" in keys
            rows = snap.rows(atoms, per_atom=per_atom)
            blocks = ("energy", "forces", "stress", "energies")
            fns["rows"] = partial(snap.rows, atoms, per_atom=per_atom)
            for M, calc in calcs.items():
                fns[("products", M)] = partial(calc._predict, rows, blocks)
            t = interleaved_min(fns, args.repeat)
            t_ref = t["lammps"]
            print(f"[{label:9s}] LAMMPS pair_style snap (LammpsPotential): {t_ref * 1e3:8.1f} ms")
            print(f"[{label:9s}] descriptor rows alone (compute snap):     {t['rows'] * 1e3:8.1f} ms")
            for M in args.members:
                print(
                    f"[{label:9s}] UQCalculator M={M:5d}: {t[M] * 1e3:8.1f} ms  "
                    f"(ensemble products alone {t[('products', M)] * 1e3:6.1f} ms)  "
                    f"= {t[M] / t_ref:5.2f} x pair_style snap"
                )
            print(
                f"[{label:9s}] ratio M={hi}/M={lo}: {t[hi] / t[lo]:.3f} (target <= 1.05); "
                f"M={hi}/pair_style snap: {t[hi] / t_ref:.3f} (target <= 1.5)"
            )
            ref.close()


if __name__ == "__main__":
    main()
