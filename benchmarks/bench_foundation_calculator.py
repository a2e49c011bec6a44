"""Cost of a UQCalculator on a foundation model's last layer versus the bare model.

For 54- and 128-atom rattled bcc W cells this times, per model (CHGNet 0.3.0, SevenNet-0):

- the model's own ASE calculator (its package's, float32) computing energy + forces + stress;
- ``UQCalculator(LastLayer(...), ensemble)`` with M = 1000 members filling energy (point,
  std, bounds, members) and the model's forces and stress at θ̄ (one feature pass plus one
  reverse pass), for ``dtype="float32"`` (the models' precision) and ``"float64"``;
- the feature Jacobian (``derivatives=True``: force and stress rows, K = 64 reverse passes),
  once per cell, as the cost of force bounds.

Target (issue 16): energy bounds at ≤ 1.1 × the bare model's energy + forces.

Run: ``python benchmarks/bench_foundation_calculator.py [--sizes 3 4] [--repeat 5] [--threads 2]``
(sizes are bcc cubic repeats: 3 → 54 atoms, 4 → 128). Every variant is timed in turn and the
minimum of ``repeat`` is reported, so background load hits all alike.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase.build import bulk
from ase.calculators.calculator import all_changes

from uqcalc.calculator import UQCalculator
from uqcalc.descriptors import LastLayer
from uqcalc.ensemble import ParameterEnsemble


def _cell(repeat: int):
    atoms = bulk("W", "bcc", a=3.17, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=repeat)
    return atoms


def _time(calc, atoms, properties, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        calc.results = {}
        t = time.perf_counter()
        calc.calculate(atoms, properties, all_changes)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--models", nargs="+", default=["chgnet-0.3.0", "sevennet-0"])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}, M = {args.members}")
    header = f"{'model':14s} {'atoms':>5s} {'bare E+F+S':>11s} {'UQ f32':>9s} {'ratio':>6s} {'UQ f64':>9s} {'ratio':>6s} {'F rows':>9s} {'ms/atom':>8s}"
    print(header)
    rng = np.random.default_rng(0)
    for name in args.models:
        for size in args.sizes:
            atoms = _cell(size)
            times = {}
            bare = LastLayer(name, species=("W",)).calculator()
            times["bare"] = _time(bare, atoms, ["energy", "forces", "stress"], args.repeat)
            for dtype in ("float32", "float64"):
                desc, theta = LastLayer.pretrained(name, species=("W",), dtype=dtype)
                members = theta + 1e-3 * rng.standard_normal((args.members, theta.size))
                calc = UQCalculator(desc, ParameterEnsemble(theta, members=members), bounds="sampled")
                times[dtype] = _time(calc, atoms, ["energy", "forces", "stress"], args.repeat)
            jac = LastLayer(name, species=("W",), derivatives=True, dtype="float32")
            t = time.perf_counter()
            jac.rows(atoms)
            times["jac"] = time.perf_counter() - t
            n = len(atoms)
            print(
                f"{name:14s} {n:5d} {times['bare']:10.3f}s {times['float32']:8.3f}s "
                f"{times['float32'] / times['bare']:6.2f} {times['float64']:8.3f}s "
                f"{times['float64'] / times['bare']:6.2f} {times['jac']:8.2f}s {1e3 * times['jac'] / n:8.1f}"
            )


if __name__ == "__main__":
    main()
