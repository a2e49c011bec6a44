"""The ``uqcalc`` command: the coverage demo, coverage studies, fitting and prediction.

``uqcalc demo`` is the README's main job: the W teacher–student coverage study at a size that
finishes within about 10 minutes on 2 cores, printing the paper-format table for every backend
and writing tables and figures.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ._logging import show_progress
from .errors import InputError, MissingInputError, UserError

__all__ = ["main", "make_executor"]

STUDIES = ("tungsten_teacher", "capacity_sweep", "tungsten_dft")
DEFAULT_OUT = {"tungsten_teacher": "results/coverage_teacher", "capacity_sweep": "results/capacity_sweep",
               "tungsten_dft": "results/tungsten_dft"}
# options that only the teacher study has (the others reject them instead of ignoring them)
TEACHER_ONLY = ("size", "propagation", "names")
BACKENDS = ("pops", "bayes", "mcmc", "bootstrap")


@contextlib.contextmanager
def make_executor(spec: str | None):
    """An executor from a command-line spec: ``processes:N``, ``dask://HOST:PORT``, ``dask://local:N``.

    Yields None (serial) for ``None``/``"serial"``. Dask is imported only when asked for.
    """
    if spec in (None, "", "serial"):
        yield None
        return
    if spec.startswith("processes:"):
        n = int(spec.split(":", 1)[1])
        # spawn: LAMMPS instances and BLAS threads do not survive fork cleanly
        with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool
        return
    if spec.startswith("dask://"):
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise InputError("dask executors need 'pip install dask[distributed]'") from err
        address = spec[len("dask://"):]
        if address.startswith("local"):
            n = int(address.split(":", 1)[1]) if ":" in address else 2
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client:
                yield client.get_executor()
        else:
            with Client(address) as client:
                yield client.get_executor()
        return
    raise InputError(f"unknown executor {spec!r}; use processes:N, dask://HOST:PORT or dask://local:N")


def _executor_type(spec: str) -> str:
    if spec in ("serial",) or spec.startswith(("processes:", "dask://")):
        return spec
    raise argparse.ArgumentTypeError(f"unknown executor {spec!r}; use processes:N, dask://HOST:PORT or dask://local:N")


def _demo(args) -> None:
    from .coverage import run_teacher_study

    out = Path(args.out)
    results = run_teacher_study(out, size="small", quick=True, seed=args.seed, progress=True)
    print("\n" + results.to_markdown(results.meta["title"]))
    print(f"\ntables and figures: {out.resolve()}")


def _coverage(args) -> None:
    from .coverage import run_teacher_study
    from .coverage.capacity import run_capacity_sweep
    from .coverage.dft import DATA_NAME, default_data, run_dft_study

    if args.study != "tungsten_teacher":
        given = [f"--{k}" for k in TEACHER_ONLY if getattr(args, k) is not None]
        if args.study == "capacity_sweep" and args.twojmax is not None:
            given.append("--twojmax (the sweep runs 2J = 2, 4, 6, 8; see comparisons/capacity_sweep.py)")
        if given:
            raise InputError(f"{args.study} takes no {', '.join(given)}")
    if args.study != "tungsten_dft" and args.data is not None:
        raise InputError(f"--data applies to tungsten_dft only, not {args.study}")
    out = Path(args.out or DEFAULT_OUT[args.study])
    data = None
    if args.study == "tungsten_dft":
        data = Path(args.data) if args.data else default_data()
        if data is None or not data.exists():
            raise MissingInputError(f"{data or DATA_NAME} not found: pass --data FILE, or get the set with "
                                    'uqcalc.datasets.fetch("tungsten-wood2017")')
    with make_executor(args.executor) as executor:
        if args.study == "tungsten_teacher":
            results = run_teacher_study(
                out, size=args.size or "small", quick=not args.full, twojmax=args.twojmax or 6, seed=args.seed,
                propagation=args.propagation or "implicit", executor=executor, names=args.names, progress=True,
            )
            table = results.to_markdown(results.meta["title"])
        elif args.study == "capacity_sweep":
            table = run_capacity_sweep(out, quick=not args.full, seed=args.seed, executor=executor)["markdown"]
        else:
            table = run_dft_study(out, data, quick=not args.full, twojmax=args.twojmax or 6, seed=args.seed,
                                  executor=executor)["markdown"]
    print("\n" + table)
    print(f"\ntables and figures: {out.resolve()}")


def _backend(name: str, seed: int):
    from . import backends

    return {
        "pops": lambda: backends.POPS(random_state=seed),
        "bayes": lambda: backends.BayesianRidge(random_state=seed),
        "mcmc": lambda: backends.MCMC(random_state=seed),
        "bootstrap": lambda: backends.Bootstrap(random_state=seed),
    }[name]()


def _fit(args) -> None:
    from .calculator import save_model
    from .data import read
    from .descriptors import SNAP, PairBasis
    from .design import DesignMatrix

    frames = read(args.training)
    if args.descriptor == "snap":
        reference = None
        if args.zbl:
            reference = SNAP.from_lammps_potential("W_2940_2017_2")[0].reference
        descriptor = SNAP(species=args.species, twojmax=args.twojmax, reference=reference)
    else:
        descriptor = PairBasis(species=args.species, r_cut=args.r_cut, n_basis=args.n_basis)
    design = DesignMatrix.build(frames, descriptor, progress=True)
    ensemble = _backend(args.backend, args.seed).fit(design)
    save_model(args.out, descriptor, ensemble)
    errors = design.errors(ensemble.theta, by="kind")
    summary = ", ".join(f"{kind} RMSE {e['rmse']:.4g}" for (_, kind), e in sorted(errors.items()))
    print(f"fitted {args.backend} on {len(frames)} frames ({design.n_rows} rows, {descriptor.n_params} "
          f"parameters): {summary}; model written to {args.out}")


def _predict(args) -> None:
    import ase.io
    from tqdm.auto import tqdm

    from .calculator import UQCalculator
    from .data import read, write
    from .io import store_uncertainties

    if not Path(args.model).exists():
        raise MissingInputError(f"no such model file: {args.model}")
    calc = UQCalculator.load(args.model)
    frames = read(args.frames)
    for atoms in tqdm(frames, desc="predict", unit="frame", disable=None):
        atoms.calc = calc
        atoms.get_potential_energy()
        if all(atoms.pbc):
            atoms.get_stress()
        store_uncertainties(atoms, ensemble=args.members)
        atoms.calc = None
    if args.out.endswith((".xyz", ".extxyz", ".gz")):
        write(args.out, frames)
    else:
        ase.io.write(args.out, frames)
    print(f"predicted {len(frames)} frames -> {args.out}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``uqcalc`` console script."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see comparisons/teacher_properties.py
    parser = argparse.ArgumentParser(prog="uqcalc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="W teacher–student coverage study (quick; ~6–10 min on 2 cores)")
    demo.add_argument("--out", default="results/demo", help="results folder (checkpoints in OUT/store)")
    demo.add_argument("--seed", type=int, default=0, help="training-set and backend seed")
    demo.set_defaults(run=_demo)

    cov = sub.add_parser("coverage", help="run a coverage study (resumes from its checkpoints)")
    cov.add_argument("study", choices=STUDIES, help="tungsten_teacher (the demo's study), capacity_sweep "
                     "(coverage vs student capacity and N/P), tungsten_dft (the Wood et al. VASP-PBE set)")
    cov.add_argument("--full", action="store_true",
                     help="the large version: default property cells and all members (teacher), more members "
                          "and N/P points (sweep), every frame and the cited defect energies (dft); slow")
    cov.add_argument("--size", choices=["small", "full"], default=None, help="teacher training set (tungsten_teacher)")
    cov.add_argument("--twojmax", type=int, default=None, help="student SNAP capacity (default 6; teacher: 8)")
    cov.add_argument("--seed", type=int, default=0)
    cov.add_argument("--propagation", choices=["implicit", "linear", "resample"], default=None,
                     help="tungsten_teacher (default implicit)")
    cov.add_argument("--names", nargs="*", default=None, help="property subset (suite names; tungsten_teacher)")
    cov.add_argument("--data", default=None,
                     help="tungsten_dft: the Wood set extxyz (default ../shared/data or the fetch cache)")
    cov.add_argument("--executor", type=_executor_type, default="serial",
                     help="serial, processes:N, dask://HOST:PORT or dask://local:N")
    cov.add_argument("--out", default=None, help="results folder (default results/<study>; the teacher "
                     "study's checkpoints go to OUT/store)")
    cov.set_defaults(run=_coverage)

    fit = sub.add_parser("fit", help="fit a UQ model to an extxyz training set (REF_* labels)")
    fit.add_argument("training", help="extxyz file (.gz allowed) with REF_energy/REF_forces/REF_stress")
    fit.add_argument("--out", required=True, help="model file (.npz) for `uqcalc predict` / UQCalculator.load")
    fit.add_argument("--backend", choices=BACKENDS, default="pops")
    fit.add_argument("--descriptor", choices=["snap", "pair"], default="snap")
    fit.add_argument("--species", nargs="+", default=["W"])
    fit.add_argument("--twojmax", type=int, default=6, help="SNAP 2J")
    fit.add_argument("--zbl", action="store_true", help="SNAP with the W_2940_2017_2 ZBL reference (W only)")
    fit.add_argument("--r-cut", type=float, default=5.0, help="PairBasis cutoff (Å)")
    fit.add_argument("--n-basis", type=int, default=8, help="PairBasis radial functions")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(run=_fit)

    pred = sub.add_parser("predict", help="predict energies, forces, stress and their uncertainties")
    pred.add_argument("model", help="model file from `uqcalc fit` or uqcalc.save_model")
    pred.add_argument("frames", help="structures to predict (extxyz or any ASE-readable file)")
    pred.add_argument("--out", required=True, help="output extxyz with uq_* point estimates and *_std/_lower/_upper")
    pred.add_argument("--members", action="store_true", help="also store per-member values")
    pred.set_defaults(run=_predict)

    args = parser.parse_args(argv)
    show_progress()
    try:
        args.run(args)
    except UserError as err:  # anything else is a bug and keeps its traceback
        print(f"uqcalc: error: {err}", file=sys.stderr)
        return 2
    return 0



if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
