"""Resampling through a dask ``distributed`` executor: same numbers as serially, and no member
lost when a worker process dies mid-run (the scheduler reschedules its tasks).

The kill is deterministic: the property kills its own worker process (SIGKILL) the first time
it evaluates one chosen member, leaving a marker file so that the rescheduled attempt survives.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from uqcalc import propagate

from .models import fitted_model
from .test_propagate import Vacancy

distributed = pytest.importorskip("distributed")


@dataclass
class KillOnce(Vacancy):
    """A vacancy that kills its worker once, when it first meets the parameter vector ``victim``."""

    marker: str = ""
    victim: tuple = ()

    def evaluate(self, calc):
        if np.allclose(calc.theta, self.victim) and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(calc)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_dask_matches_serial(client):
    d, ens = fitted_model(8)
    prop = Vacancy(fmax=1e-4)
    serial = propagate(prop, (d, ens), "resample", progress=False)
    parallel = propagate(prop, (d, ens), "resample", executor=client.get_executor(), progress=False, batch_size=2)
    assert parallel.failed == []
    np.testing.assert_array_equal(parallel.members, serial.members)
    assert parallel.value == serial.value


def test_dask_survives_a_killed_worker(client, tmp_path):
    d, ens = fitted_model(8)
    serial = propagate(Vacancy(fmax=1e-4), (d, ens), "resample", progress=False)
    marker = tmp_path / "killed"
    prop = KillOnce(fmax=1e-4, marker=str(marker), victim=tuple(ens.members[5]))
    pids = set(client.run(os.getpid).values())
    out = propagate(prop, (d, ens), "resample", executor=client.get_executor(), progress=False, batch_size=1)
    assert marker.exists() and int(marker.read_text()) in pids  # a worker really died mid-run
    assert out.failed == [] and out.flags == []
    np.testing.assert_array_equal(out.members, serial.members)
