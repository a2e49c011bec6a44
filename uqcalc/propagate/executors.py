"""Running tasks through any ``concurrent.futures.Executor``: batching and failure capture.

Propagation sends two kinds of work to an executor: member evaluations (:mod:`.resample`) and
finite-difference Hessian columns (:mod:`.hessian`). Both split their items into batches of
about four tasks per worker (enough to balance uneven tasks, few enough that per-task costs —
pickling the property, scheduling — stay small) and both want a failed task returned as its
exception rather than raised, so one dead worker does not lose the other tasks' results.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed

__all__ = ["batch_size", "executor_workers", "map_batches"]

_TASKS_PER_WORKER = 4


def executor_workers(executor: Executor | None) -> int:
    """Best guess of an executor's parallelism (1 for None)."""
    if executor is None:
        return 1
    client = getattr(executor, "_client", None)  # distributed.cfexecutor.ClientExecutor
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001, S110 - a closed client: fall back to the CPU count
            pass
    return int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1)


def batch_size(n_items: int, executor: Executor | None, cap: int | None = None) -> int:
    """Items per task: 1 serially, else about four tasks per worker (at most ``cap`` items each).

    A cap keeps the work a killed worker loses small (member evaluations use 16).
    """
    if executor is None:
        return 1
    size = max(1, math.ceil(n_items / (_TASKS_PER_WORKER * executor_workers(executor))))
    return size if cap is None else min(cap, size)


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
