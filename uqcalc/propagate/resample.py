"""Brute-force propagation: evaluate the property once per parameter vector, through any executor.

A task carries the descriptor's JSON spec (never a live descriptor: a SNAP descriptor holds a
LAMMPS instance), the property object (ASE Atoms inside, picklable) and a batch of parameter
vectors; it returns plain numbers and error messages. Each worker process or thread rebuilds a
descriptor once per spec and keeps it (:func:`_worker_descriptor`), so a LAMMPS instance serves
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

import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed

import numpy as np

__all__ = ["evaluate_members", "map_batches"]

_local = threading.local()


def _worker_descriptor(spec_or_descriptor):
    """The descriptor of a spec, built once per worker thread (a LAMMPS instance is not thread-safe)."""
    if not isinstance(spec_or_descriptor, dict):
        return spec_or_descriptor
    from ..descriptors import from_spec

    cache = getattr(_local, "descriptors", None)
    if cache is None:
        cache = _local.descriptors = {}
    key = json.dumps(spec_or_descriptor, sort_keys=True)
    if key not in cache:
        cache[key] = from_spec(spec_or_descriptor)
    return cache[key]


def _evaluate_batch(descriptor, prop, labels: Sequence[int], thetas: np.ndarray) -> list[tuple]:
    """Worker: ``prop.evaluate`` for each parameter vector → [(label, value | None, error | None)]."""
    from ..calculator import LinearPotential

    descriptor = _worker_descriptor(descriptor)
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


def executor_workers(executor: Executor | None) -> int:
    """Best guess of an executor's parallelism (for batch sizes)."""
    if executor is None:
        return 1
    client = getattr(executor, "_client", None)  # distributed.cfexecutor.ClientExecutor
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001, S110 - a closed client: fall back to the CPU count
            pass
    return int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1)


def map_batches(
    fn: Callable,
    batches: list,
    executor: Executor | None,
    progress=None,
    weights: Sequence[int] | None = None,
) -> list:
    """``[fn(*batch) for batch in batches]`` through ``executor``; exceptions are returned, not raised.

    ``progress`` is a tqdm bar (or None), advanced by ``weights[i]`` when batch ``i`` finishes.
    """
    weights = weights or [1] * len(batches)
    results: list = [None] * len(batches)
    if executor is None:
        for i, batch in enumerate(batches):
            try:
                results[i] = fn(*batch)
            except Exception as err:  # noqa: BLE001 - returned like a failed future's exception
                results[i] = err
            if progress is not None:
                progress.update(weights[i])
        return results
    futures = {executor.submit(fn, *batch): i for i, batch in enumerate(batches)}
    for future in as_completed(futures):
        i = futures[future]
        err = future.exception()
        results[i] = err if err is not None else future.result()
        if progress is not None:
            progress.update(weights[i])
    return results


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
        batch_size = 1 if executor is None else max(1, min(16, math.ceil(K / (4 * executor_workers(executor)))))
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
