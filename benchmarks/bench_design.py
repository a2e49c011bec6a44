"""Overhead of ``DesignMatrix.build`` with SNAP against a bare LAMMPS ``compute snap`` loop.

Times, on the same frames of the Wood (2017) tungsten set and in the same run:

(a) ``DesignMatrix.build(frames, SNAP(twojmax, rcutfac=4.73442, rfac0=0.99363))``,
    default weights, no cache: validation, digests, rows, labels, concatenation;
(b) the minimal work any SNAP fitting code must do: one LAMMPS instance and, per frame,
    ``load_structure`` + ``compute snap`` (same parameters and neighbour cutoff)
    + ``run 0`` + a copy of the global array;
(c) for context, ``pair_style snap`` (W_2940_2017_2 coefficients, no ZBL) energy and
    force evaluation of the same frames, set up frame by frame the same way.

The frames are split into ``--blocks`` interleaved blocks of the same group mix; (a) and
(b) run block by block, paired and in alternating order, so that load from other
processes hits both alike (the machine this was written for is shared). A round covers
every frame once; the best of ``--rounds`` rounds is reported, as wall and as this
process's CPU time, and the ratio (a)/(b) is uqcalc's overhead (target: <= 1.20).
One SNAP object (one LAMMPS instance) serves every build, as (b) keeps one instance.

Usage::

    .venv/bin/python benchmarks/bench_design.py               # stratified 1/10, ~1-3 min
    .venv/bin/python benchmarks/bench_design.py --limit 40    # quick smoke run
    .venv/bin/python benchmarks/bench_design.py --all         # all 9,902 frames
    .venv/bin/python benchmarks/bench_design.py --executor processes:2
    .venv/bin/python benchmarks/bench_design.py --profile     # cProfile of (a)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data/tungsten_wood2017.extxyz.gz")
RCUTFAC, RFAC0 = 4.73442, 0.99363
POTENTIAL = "W_2940_2017_2"  # twojmax 8, rcutfac 4.73442, rfac0 0.99363: same bispectrum


# -- frame selection ---------------------------------------------------------------------
def stratified(frames, fraction: float, seed: int) -> list[int]:
    """ceil(fraction * n_group) frames of every group, seeded, in file order."""
    from uqcalc.data import group_of

    rng = np.random.default_rng(seed)
    labels = np.array([group_of(a) for a in frames])
    chosen = []
    for group in sorted(set(labels)):
        members = np.flatnonzero(labels == group)
        k = min(len(members), math.ceil(fraction * len(members)))
        chosen.extend(rng.choice(members, size=k, replace=False).tolist())
    return sorted(chosen)


def round_robin(frames, count: int, seed: int) -> list[int]:
    """``count`` frames taken one group at a time (covers every group when count >= groups)."""
    from uqcalc.data import group_of

    rng = np.random.default_rng(seed)
    labels = np.array([group_of(a) for a in frames])
    queues = [list(rng.permutation(np.flatnonzero(labels == g))) for g in sorted(set(labels))]
    chosen = []
    while len(chosen) < min(count, len(frames)):
        for q in queues:
            if q and len(chosen) < count:
                chosen.append(int(q.pop()))
    return sorted(chosen)


# -- (b) bare compute snap and (c) pair_style snap -----------------------------------------
_LMP = {}


def _lmp(key: str):
    from uqcalc._lammps import new_lammps

    if key not in _LMP:
        _LMP[key] = new_lammps()
    return _LMP[key]


def bare_snap(frames, twojmax: int) -> list[np.ndarray]:
    """Global compute snap array per frame; returns the energy (bispectrum sum) rows."""
    from uqcalc._lammps import lammps_module, load_structure

    lammps = lammps_module()
    lmp = _lmp("bare")
    # the same neighbour cutoff as uqcalc's zero pair style (rcutfac * (0.5 + 0.5))
    cutoff = RCUTFAC * (1 + 1e-10) + 1e-8
    commands = [
        f"pair_style zero {cutoff!r}",
        "pair_coeff * *",
        (
            f"compute b all snap {RCUTFAC!r} {RFAC0!r} {twojmax} 0.5 1.0 "
            "rmin0 0.0 bzeroflag 0 quadraticflag 0 switchflag 1 bikflag 0"
        ),
        "run 0 post no",
    ]
    energy_rows = []
    for atoms in frames:
        load_structure(lmp, atoms, ("W",))
        lmp.commands_list(commands)
        array = np.array(
            lmp.numpy.extract_compute("b", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_ARRAY)
        )
        energy_rows.append(array[0, :-1])
    return energy_rows


def pair_snap(frames, potentials: str) -> float:
    """Energy and forces of every frame with pair_style snap; returns the summed energy."""
    from uqcalc._lammps import load_structure

    lmp = _lmp("pair")
    base = f"{potentials}/{POTENTIAL}"
    commands = [
        "pair_style snap",
        f"pair_coeff * * {base}.snapcoeff {base}.snapparam W",
        "run 0 post no",
    ]
    total = 0.0
    for atoms in frames:
        load_structure(lmp, atoms, ("W",))
        lmp.commands_list(commands)
        total += lmp.get_thermo("pe")
        np.array(lmp.numpy.extract_atom("f")[: len(atoms)])
    return total


def _chunks(frames, size):
    return [frames[s : s + size] for s in range(0, len(frames), size)]


def run_bare(frames, twojmax, executor, chunk):
    if executor is None:
        return bare_snap(frames, twojmax)
    futures = [executor.submit(bare_snap, c, twojmax) for c in _chunks(frames, chunk)]
    return [row for f in futures for row in f.result()]


def run_pair(frames, potentials, executor, chunk):
    if executor is None:
        return pair_snap(frames, potentials)
    futures = [executor.submit(pair_snap, c, potentials) for c in _chunks(frames, chunk)]
    return sum(f.result() for f in futures)


def run_build(frames, snap, executor, chunk):
    from uqcalc.design import DesignMatrix

    return DesignMatrix.build(frames, snap, executor=executor, chunk_size=chunk, progress=False)


def _make_executor(text: str | None) -> Executor | None:
    if not text:
        return None
    kind, _, n = text.partition(":")
    if kind != "processes":
        raise SystemExit(f"--executor: expected processes:N, got {text!r}")
    return ProcessPoolExecutor(max_workers=int(n or 2))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--twojmax", type=int, default=8)
    sel = parser.add_mutually_exclusive_group()
    sel.add_argument("--all", action="store_true", help="all frames")
    sel.add_argument("--fraction", type=float, default=0.1, help="stratified share of every group (default 0.1)")
    sel.add_argument("--limit", type=int, help="N frames, round-robin over groups (quick run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("--executor", help="processes:N (bare loops use the same pool and chunks)")
    parser.add_argument("--blocks", type=int, default=10,
                        help="(a) and (b) run in paired, alternating blocks of the frames (default 10)")
    parser.add_argument("--chunk", type=int, default=64, help="frames per executor task")
    parser.add_argument("--no-pair", action="store_true", help="skip the pair_style snap timing")
    parser.add_argument("--profile", action="store_true", help="cProfile one serial DesignMatrix.build")
    args = parser.parse_args(argv)

    if not args.data.exists():
        print(f"skipped: data absent ({args.data})")
        return 0
    try:
        from uqcalc._lammps import lammps_module, potentials_dir

        lammps_module()
    except ImportError as err:
        print(f"skipped: LAMMPS absent ({err})")
        return 0
    from uqcalc.data import read
    from uqcalc.descriptors import SNAP

    t0 = time.perf_counter()
    frames = read(args.data)
    t_read = time.perf_counter() - t0
    if args.all:
        chosen, how = list(range(len(frames))), "all frames"
    elif args.limit:
        chosen, how = round_robin(frames, args.limit, args.seed), f"--limit {args.limit}, round-robin over groups"
    else:
        chosen, how = stratified(frames, args.fraction, args.seed), f"stratified {args.fraction:g} of every group"
    frames = [frames[i] for i in chosen]
    n_atoms = sum(len(a) for a in frames)
    groups = len({a.info.get("group", "") for a in frames})
    print(f"data: {args.data.name} read in {t_read:.1f} s; {how}, seed {args.seed}")
    print(f"frames: {len(frames)} ({groups} groups), atoms: {n_atoms}, twojmax {args.twojmax}")

    executor = _make_executor(args.executor)
    workers = executor._max_workers if executor is not None else 1
    n_blocks = max(1, min(args.blocks, len(frames)))
    # every block takes every n_blocks-th frame, so all blocks have the same mix of groups
    blocks = [frames[b::n_blocks] for b in range(n_blocks)]
    print(f"executor: {args.executor or 'none (serial)'}; rounds: {args.rounds}, "
          f"blocks per round: {n_blocks}")
    potentials = str(potentials_dir())
    # one SNAP (hence one LAMMPS instance) for the whole run, as the bare loop keeps one
    snap = SNAP(twojmax=args.twojmax, rcutfac=RCUTFAC, rfac0=RFAC0)
    # warm-up: imports, LAMMPS instances (also in every worker), first-call costs
    warm = frames[: max(2, 2 * workers)]
    run_build(warm, snap, executor, 1)
    run_bare(warm, args.twojmax, executor, 1)
    if not args.no_pair:
        run_pair(warm, potentials, executor, 1)

    names = ["build", "bare"] + ([] if args.no_pair else ["pair"])
    times = {k: [0.0] * args.rounds for k in names}
    cpu = {k: [0.0] * args.rounds for k in names}  # this process's CPU time
    counts = dict.fromkeys(["rows", "energy", "force", "stress"], 0)
    mismatch = 0.0
    for r in range(args.rounds):
        for b, block in enumerate(blocks):
            # paired and alternating, so that load from other processes hits (a) and (b) alike
            order = ["build", "bare"] if (r + b) % 2 == 0 else ["bare", "build"]
            for name in order + names[2:]:
                t, c = time.perf_counter(), time.process_time()
                if name == "build":
                    design = run_build(block, snap, executor, args.chunk)
                elif name == "bare":
                    bare_rows = run_bare(block, args.twojmax, executor, args.chunk)
                else:
                    run_pair(block, potentials, executor, args.chunk)
                times[name][r] += time.perf_counter() - t
                cpu[name][r] += time.process_time() - c
            if r == 0:
                # the two paths computed the same bispectrum: energy rows agree
                e = design.rows_of("energy")
                n_of = np.array([len(a) for a in block])
                ours = design.X[e][:, 1:] * n_of[design.config[e]][:, None]
                theirs = np.array(bare_rows)[design.config[e]]
                scale = max(1.0, float(np.max(np.abs(theirs))))
                mismatch = max(mismatch, float(np.max(np.abs(ours - theirs))) / scale)
                counts["rows"] += design.n_rows
                for kind in ("energy", "force", "stress"):
                    counts[kind] += int(design.rows_of(kind).sum())
                n_params = design.n_params
            design = bare_rows = None
        line = "  ".join(
            f"{k} {1e6 * times[k][r] / n_atoms:6.1f} (cpu {1e6 * cpu[k][r] / n_atoms:6.1f})" for k in names
        )
        print(f"round {r + 1}: us/atom  {line}", flush=True)
    snap.close()

    best = {k: min(v) for k, v in times.items()}
    best_cpu = {k: min(v) for k, v in cpu.items()}
    label = {
        "build": "(a) DesignMatrix.build + SNAP",
        "bare": "(b) bare LAMMPS compute snap",
        "pair": "(c) pair_style snap E+F",
    }
    print(f"\nrows built: {counts['rows']} x {n_params} (energy {counts['energy']}, force {counts['force']}, "
          f"stress {counts['stress']}); energy rows vs bare: max rel diff {mismatch:.1e}")
    print(f"best of {args.rounds}, per atom{'' if workers == 1 else f' ({workers} workers; cpu = parent only)'}:")
    for k in names:
        print(
            f"  {label[k]:32s} wall {1e6 * best[k] / n_atoms:7.1f} us/atom ({best[k]:6.2f} s)"
            f"   cpu {1e6 * best_cpu[k] / n_atoms:7.1f} us/atom"
        )
    ratio = best["build"] / best["bare"]
    per_round = [b / c for b, c in zip(times["build"], times["bare"])]
    print(f"ratio (a)/(b), wall: {ratio:.3f}  (per round: {', '.join(f'{x:.3f}' for x in per_round)}); "
          f"target <= 1.20: {'met' if ratio <= 1.20 else 'NOT met'}")
    if workers == 1:
        per_round = [b / c for b, c in zip(cpu["build"], cpu["bare"])]
        print(f"ratio (a)/(b), cpu:  {best_cpu['build'] / best_cpu['bare']:.3f}  "
              f"(per round: {', '.join(f'{x:.3f}' for x in per_round)})")
    if not args.no_pair:
        print(f"compute snap / pair_style snap: {best['bare'] / best['pair']:.2f}")

    if args.profile:
        from uqcalc.design import DesignMatrix

        snap = SNAP(twojmax=args.twojmax, rcutfac=RCUTFAC, rfac0=RFAC0)
        prof = cProfile.Profile()
        prof.enable()
        DesignMatrix.build(frames, snap, progress=False)
        prof.disable()
        snap.close()
        stats = pstats.Stats(prof, stream=io.StringIO())
        total = stats.total_tt
        # own time of the calls into liblammps (the bispectrum runs inside extract_compute)
        in_lammps = sum(
            v[2] for (path, _, func), v in stats.stats.items() if "/lammps/" in path and func in
            {"extract_compute", "commands_list", "command", "create_atoms", "extract_global", "extract_atom"}
        )
        print(f"\ncProfile of one serial DesignMatrix.build: {total:.2f} s, of which {in_lammps:.2f} s "
              f"({100 * in_lammps / total:.0f}%) inside LAMMPS calls; Python, by own time:")
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    if executor is not None:
        executor.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
