"""The embedded W teacher–student coverage study (what ``uqcalc demo`` runs).

Student: linear SNAP (2J = ``twojmax``) on the teacher's ZBL, trained on the teacher training set
without the validation groups (divacancy, interstitial, (112) surface, (112) fault). Truth:
every property computed with the ``W_2940_2017_2`` teacher by the same workflow. Backends and
how their settings were chosen are in :func:`teacher_backends`; none is tuned on the scored
properties.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .references import teacher_reference
from .study import BackendSpec, CoverageStudy

__all__ = ["VALIDATION_GROUPS", "demo_names", "run_teacher_study", "study_properties", "teacher_backends",
           "teacher_student"]

logger = logging.getLogger(__name__)

VALIDATION_GROUPS = ("divacancy", "interstitial", "surface_112", "gsf_112")


def demo_names(quick: bool = True) -> list[str]:
    """The demo's properties: the W suite without the lattice-trapping bounds (see
    :func:`study_properties`)."""
    from ..properties import tungsten_suite

    return [p.name for p in study_properties(tungsten_suite(quick=quick), named=False, quick=quick)]


def study_properties(props: list, named: bool, quick: bool, resample_members: int | None = None) -> list:
    """The properties a teacher study runs: lattice-trapping bounds only when named.

    Each of their values is a load path of 10–20 crack relaxations, for every resampled member
    (20 in a quick study: ~5 min per backend and bound) and for the point estimate, so they
    would take a study from minutes to hours. A full study (all members) with them named needs
    ``resample_members``: re-bracketing 1000 POPS members at the default cluster is days.
    """
    from ..properties import LatticeTrapping

    trapping = [p for p in props if isinstance(p, LatticeTrapping)]
    if not named:
        return [p for p in props if not isinstance(p, LatticeTrapping)]
    if trapping and not quick and resample_members is None:
        raise ValueError(f"{[p.name for p in trapping]} re-bracket every resampled member (minutes each at the "
                         "default cluster): give resample_members (--resample-members N) for a full study")
    return props


def study_propagation(props: list, propagation: str) -> dict:
    """Per property: ``propagation``, and for lattice-trapping bounds (not smooth in θ) then ``"gradient"``.

    Bulk a0, B and C_ij differentiate themselves too, but keep their exactly re-evaluated
    members; their gradient still picks the POPS box corners (:class:`~uqcalc.propagate.BoxCorners`).
    """
    return {p.name: propagation if p.smooth_in_theta else [propagation, "gradient"] for p in props}


def teacher_student(twojmax: int = 6, quadratic: bool = False):
    """The student of every W study: SNAP 2J=``twojmax`` on the teacher's radii and ZBL part.

    ``quadratic``: qSNAP (the linear bispectrum plus its pairwise products; 2J = 8 gives
    1 + 55 + 1540 = 1596 parameters, the POPS tungsten paper's model).
    """
    from ..descriptors import SNAP

    teacher_desc, _ = SNAP.from_lammps_potential("W_2940_2017_2")
    return SNAP(twojmax=twojmax, rcutfac=4.73442, rfac0=0.99363, quadratic=quadratic,
                reference=teacher_desc.reference)


def teacher_backends(seed: int = 0) -> list[BackendSpec]:
    """The compared backends with the bounds each reports and how its settings were chosen."""
    from ..backends import MCMC, POPS, BayesianRidge, Bootstrap

    return [
        BackendSpec("POPS", POPS(random_state=seed), bounds="box",
                    chosen="default, selected on held-out configurations (comparisons/pops_row_selection.py)"),
        BackendSpec("POPS calibrated", POPS(random_state=seed), bounds="box", calibrate=0.95,
                    chosen="POPS.calibrate on the held-out groups (target 0.95 of energies and forces)"),
        BackendSpec("BayesianRidge ±2σ", BayesianRidge(random_state=seed), bounds="gaussian", z=2.0,
                    chosen="fixed in advance (evidence maximisation; parameter posterior, no noise term)"),
        BackendSpec("MCMC collapsed ±2σ", MCMC(random_state=seed), bounds="gaussian", z=2.0,
                    chosen="fixed in advance (T = 1)"),
        BackendSpec("MCMC natural-T ±2σ", MCMC(temperature="natural", random_state=seed), bounds="gaussian", z=2.0,
                    chosen="fixed in advance (T₀ = 2C₀/P, Frederiksen et al. 2004)"),
        BackendSpec("Bootstrap", Bootstrap(random_state=seed), bounds="sampled",
                    chosen="fixed in advance (100 resamples by configuration)"),
    ]


def run_teacher_study(out_dir="results/coverage_teacher", size: str = "small", quick: bool = True, twojmax: int = 6,
                      seed: int = 0, propagation: str = "implicit", executor=None, progress: bool = True,
                      names=None, resample_members: int | None = None, figures: bool = True):
    """Run the teacher study and write the paper-format tables and figures.

    Progress goes to ``logging`` (INFO, logger ``uqcalc.coverage``); the table is
    ``results.to_markdown(results.meta["title"])`` (the CLI prints it).

    Parameters
    ----------
    out_dir : path
        Results folder; its ``store/`` subfolder holds the checkpoints (a rerun resumes).
    size : {"small", "full"}
        Teacher training set.
    quick : bool
        Small property cells (:func:`uqcalc.properties.tungsten_suite`), and the resample
        fallback (properties without stationary states: a0, B, C_ij, c/a) on a seeded
        20-member subset; ``False``: default cells, all members.
    twojmax : int
        Student capacity (the teacher has 2J = 8).
    seed : int
        Training-set and backend seed.
    propagation : {"implicit", "linear", "resample"}
        Method for properties with stationary states; lattice-trapping bounds use ``"gradient"``
        unless this is ``"resample"``; the rest, and any
        expansion that re-evaluated extreme members contradict, fall back to ``resample``.
    executor : concurrent.futures.Executor, optional
    progress : bool
    names : list of str, optional
        Property subset (default: the suite without the lattice-trapping bounds, which run only
        when named: :func:`study_properties`).
    resample_members : int, optional
        Overrides the fallback's member count.

    Returns
    -------
    CoverageResults
    """
    from ..data import split_by_group
    from ..datasets import tungsten
    from ..properties import tungsten_suite

    t0 = time.perf_counter()
    out = Path(out_dir)
    if resample_members is None:
        resample_members = 20 if quick else None
    props = study_properties(tungsten_suite(names, quick=quick), names is not None, quick, resample_members)
    frames = tungsten.teacher_training_set(size=size, seed=seed)
    train, valid = split_by_group(frames, VALIDATION_GROUPS)
    student = teacher_student(twojmax)
    study = CoverageStudy(
        train, student, teacher_backends(seed), props, teacher_reference(),
        propagation=study_propagation(props, propagation),
        executor=executor, store=out / "store", validation=valid, progress=progress,
        resample_members=resample_members,
    )
    results = study.run()
    results.meta |= {"size": size, "quick": quick, "twojmax": twojmax, "seed": seed, "propagation": propagation,
                     "n_train_frames": len(train), "n_validation_frames": len(valid),
                     "validation_groups": list(VALIDATION_GROUPS), "resample_members": resample_members,
                     "total_wall_s": time.perf_counter() - t0}
    title = (f"W teacher–student coverage: SNAP 2J={twojmax} student, {size} set (seed {seed}), "
             f"{'quick' if quick else 'default'} property cells, {propagation} propagation")
    results.meta["title"] = title
    paths = results.write(out, stem=f"coverage_{size}_2j{twojmax}_seed{seed}{'_quick' if quick else ''}",
                          figures=figures, title=title)
    results.meta["paths"] = [str(p) for p in paths]
    logger.info("total wall time %.0f s; written: %s", results.meta["total_wall_s"], ", ".join(map(str, paths)))
    return results
