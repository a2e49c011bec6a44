"""Brute-force propagation: evaluate the property once per parameter vector, through any executor.

A task carries the descriptor's JSON spec (never a live descriptor: a SNAP descriptor holds a
LAMMPS instance), the property object (ASE Atoms inside, picklable) and a batch of parameter
vectors; it returns plain numbers and error messages. Each worker process or thread rebuilds a
descriptor once per spec and keeps it (:func:`uqcalc.descriptors.worker_descriptor`), so a LAMMPS instance serves
every batch that lands on that worker; batching several members per task amortises the rest
of the per-task cost (pickling the property, scheduling).

Failures are per member: a relaxation that does not converge (or any other exception inside
``evaluate``) is recorded with its message and the batch goes on; a task that dies as a whole
(its worker was killed and the executor gave up) marks its members failed with the task's error.
A dask ``Client.get_executor()`` reschedules the tasks of a killed worker by itself
(``distributed.scheduler.allowed-failures``), so no member is lost; a
``ProcessPoolExecutor`` cannot (its pool breaks) and the affected members are reported failed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from ..descriptors import worker_descriptor
from ..model import LinearModel
from .base import Propagator, require_members, result_metadata
from .executors import batch_size as default_batch_size
from .executors import map_batches
from .result import PropagationError, PropertyEnsemble

__all__ = ["Resample", "evaluate_members"]

# members per task at most: a killed worker then loses little work
_MAX_BATCH = 16


def _evaluate_batch(descriptor, prop, labels: Sequence[int], thetas: np.ndarray) -> list[tuple]:
    """Worker: ``prop.evaluate`` for each parameter vector → [(label, value | None, error | None)]."""
    from ..calculator import LinearPotential

    descriptor = worker_descriptor(descriptor)
    out = []
    for label, theta in zip(labels, thetas):
        try:
            value = prop.evaluate(LinearPotential(descriptor, theta))
            value = np.asarray(value, dtype=float)
            if not np.all(np.isfinite(value)):
                raise FloatingPointError(f"non-finite value {value!r}")
            out.append((int(label), value.tolist() if value.ndim else float(value), None))
        except Exception as err:  # noqa: BLE001 - any failure of one member is recorded, reported by the caller
            out.append((int(label), None, f"{type(err).__name__}: {err}"))
    return out


def evaluate_members(
    prop,
    descriptor,
    thetas: np.ndarray,
    labels: Sequence[int],
    executor: Executor | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    description: str = "resample",
) -> tuple[dict[int, object], dict[int, str]]:
    """Evaluate ``prop`` for every parameter vector.

    Parameters
    ----------
    prop : Property
    descriptor : Descriptor
        Serial runs use it directly; executors receive its ``spec()``.
    thetas : (K, P) ndarray
    labels : sequence of int
        Label of each vector in the returned dicts (member index; -1 for the point estimate).
    executor : concurrent.futures.Executor, optional
    batch_size : int, optional
        Vectors per task. Default 1 serially; otherwise about four tasks per worker, at most 16
        vectors each (a killed worker then loses little work).
    progress : bool
        tqdm bar of vectors done.

    Returns
    -------
    values : dict
        label → float or nested list.
    errors : dict
        label → error message.
    """
    thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
    K = thetas.shape[0]
    if batch_size is None:
        batch_size = default_batch_size(K, executor, cap=_MAX_BATCH)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    payload = descriptor if executor is None else descriptor.spec()
    starts = range(0, K, batch_size)
    batches = [(payload, prop, list(labels[s : s + batch_size]), thetas[s : s + batch_size]) for s in starts]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=K, desc=description, unit="member")
    try:
        results = map_batches(_evaluate_batch, batches, executor, bar, [len(b[2]) for b in batches])
    finally:
        if bar is not None:
            bar.close()
    values: dict[int, object] = {}
    errors: dict[int, str] = {}
    for batch, result in zip(batches, results):
        if isinstance(result, BaseException):
            for label in batch[2]:
                errors[int(label)] = f"task failed: {type(result).__name__}: {result}"
            continue
        for label, value, error in result:
            if error is None:
                values[label] = value
            else:
                errors[label] = error
    return values, errors


class Resample(Propagator):
    """Evaluate the property once per member (every state re-relaxed), through any executor.

    Parameters
    ----------
    batch_size : int, optional
        Members per task (default: 1 serially, else about four tasks per worker, ≤ 16 each).
    max_members : int, optional
        Evaluate a seeded subset of this many members (θ̄, box and covariance kept); resampling
        relaxes every member, so a 1000-member POPS ensemble costs 1000 relaxations per property.
    seed : int, default 0
        Seed of that subset.

    Notes
    -----
    Works for every property. A member that fails (a relaxation that does not converge, any
    exception in ``evaluate``) is recorded in ``failed`` with its message and is NaN in
    ``members``; statistics use the others, and the result is flagged.
    """

    name = "resample"

    def __init__(self, *, batch_size: int | None = None, max_members: int | None = None, seed: int = 0):
        self.batch_size = batch_size
        self.max_members = max_members
        self.seed = seed

    def supports(self, prop) -> bool:
        return True

    def __call__(self, prop, model: LinearModel, executor: Executor | None = None, *,
                 progress: bool = True) -> PropertyEnsemble:
        require_members(model)
        model = model.subsample(self.max_members, self.seed)
        ensemble = model.ensemble
        M = ensemble.n_members
        thetas = np.concatenate([ensemble.theta[None, :], ensemble.members])
        labels = [-1, *range(M)]
        size = self.batch_size or default_batch_size(M + 1, executor, cap=_MAX_BATCH)
        t0 = time.perf_counter()
        values, errors = evaluate_members(prop, model.descriptor, thetas, labels, executor, size, progress,
                                          description=f"resample {prop.name}".strip())
        elapsed = time.perf_counter() - t0
        good = [values[i] for i in range(M) if i in values]
        if not good:
            first = "; ".join(f"member {k}: {errors[k]}" for k in sorted(errors)[:3])
            raise PropagationError(f"{prop.name!r}: every member failed ({first})")
        shape = np.shape(good[0])
        members = np.full((M,) + shape, np.nan)
        for i, v in values.items():
            if i >= 0:
                members[i] = v
        value = np.asarray(values[-1], dtype=float) if -1 in values else np.full(shape, np.nan)
        out = PropertyEnsemble(
            name=prop.name, unit=prop.unit, method=self.name,
            value=value if shape else float(value),
            members=members,
            failed=[{"member": k, "error": errors[k]} for k in sorted(errors) if k >= 0],
            diagnostics={"time_members": elapsed, "batch_size": size,
                         "executor": None if executor is None else type(executor).__name__},
            metadata=result_metadata(prop, model, self),
        )
        if -1 in errors:
            out.flag(f"the point estimate θ̄ failed: {errors[-1]}")
        if out.failed:
            out.flag(f"{len(out.failed)} of {M} members failed (see .failed); statistics use the other "
                     f"{M - len(out.failed)}")
        flag_point_outside(out)
        return out


def flag_point_outside(out: PropertyEnsemble) -> None:
    """Flag a scalar result whose point value lies outside its members' [min, max].

    A box about θ̄ contains θ̄, so a smooth property's member range should contain its value;
    when it does not, members relaxed elsewhere (or failed) — the flag says which, so the
    interval is never silently one that excludes the model's own prediction.
    """
    if np.ndim(out.value) or not np.isfinite(out.value) or not np.any(np.isfinite(out.members)):
        return
    lo, hi = out.lower, out.upper
    if lo <= out.value <= hi:
        return
    failed = f"; {len(out.failed)} failed member(s): {[f['member'] for f in out.failed][:10]}" if out.failed else ""
    out.flag(f"the point value {out.value:.6g} lies outside the members' range [{lo:.6g}, {hi:.6g}]: members "
             f"relaxed to other states or the property is not smooth over the ensemble{failed}")
