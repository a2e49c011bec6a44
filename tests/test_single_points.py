"""Checkpointed single points (uqcalc.datasets.single_points) and the slab-aware k mesh.

What a multi-hour DFT relaxation relies on: a run killed in the middle and started again replays
the finished ionic steps from the disk, bit for bit, computes only the rest, and ends where an
uninterrupted run ends.
Oracle: the same relaxation with the bare calculator. EMT stands in for the DFT code.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, fcc100
from ase.calculators.emt import EMT

from uqcalc.datasets.gpaw_reference import kpoint_mesh, vacuum_axes
from uqcalc.datasets.single_points import CheckpointedCalculator
from uqcalc.properties.base import relax


class Killed(Exception):
    pass


class CountingEMT(EMT):
    """EMT that counts its single points and dies after ``budget`` of them (a killed job)."""

    def __init__(self, calls: list, budget: int | None = None):
        super().__init__()
        self.calls, self.budget = calls, budget

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        if self.budget is not None and len(self.calls) >= self.budget:
            raise Killed
        self.calls.append(1)
        super().calculate(atoms, properties, system_changes or ["positions"])


def slab():
    atoms = fcc100("Cu", size=(2, 2, 4), vacuum=6.0, periodic=True)
    atoms.rattle(0.05, seed=3)
    return atoms


def test_an_interrupted_relaxation_resumes_and_ends_where_an_uninterrupted_one_does(tmp_path):
    direct = relax(slab(), EMT(), fmax=1e-4)
    n_steps = []
    relax(slab(), CheckpointedCalculator(lambda atoms: CountingEMT(n_steps), tmp_path / "probe"), fmax=1e-4)
    assert len(n_steps) > 10  # enough ionic steps to interrupt in the middle

    first = []
    killed = CheckpointedCalculator(lambda atoms: CountingEMT(first, budget=7), tmp_path / "run")
    with pytest.raises(Killed):
        relax(slab(), killed, fmax=1e-4)
    assert killed.n_computed == 7

    second = []
    resumed = CheckpointedCalculator(lambda atoms: CountingEMT(second), tmp_path / "run")
    out = relax(slab(), resumed, fmax=1e-4)
    assert resumed.n_replayed >= 7  # the finished steps came from the disk
    assert resumed.n_computed == len(second) == len(n_steps) - 7  # and only the rest was computed
    # not bit for bit: a fresh calculator at step 8 (EMT's neighbour list, a DFT code's initial
    # wave functions) differs from one carried from step 1 in the last digits
    np.testing.assert_allclose(out.positions, direct.positions, rtol=0, atol=1e-9)
    assert out.get_potential_energy() == pytest.approx(direct.get_potential_energy(), rel=1e-12)


def test_other_settings_or_a_missing_stress_are_computed_not_replayed(tmp_path):
    atoms = bulk("Cu", cubic=True)
    calc = CheckpointedCalculator(lambda a: EMT(), tmp_path, tag={"ecut": 500})
    atoms.calc = calc
    e = atoms.get_potential_energy()
    stress = atoms.get_stress()  # not stored with the first point: computed now, and added
    assert calc.n_computed == 2
    again = CheckpointedCalculator(lambda a: EMT(), tmp_path, tag={"ecut": 500})
    atoms.calc = again
    assert atoms.get_potential_energy() == e and np.array_equal(atoms.get_stress(), stress)
    assert (again.n_computed, again.n_replayed) == (0, 1)
    other = CheckpointedCalculator(lambda a: EMT(), tmp_path, tag={"ecut": 600})
    atoms.calc = other
    atoms.get_potential_energy()
    assert other.n_computed == 1
    moved = atoms.copy()
    moved.positions[0, 0] += 1e-12  # a different structure, bit for bit
    moved.calc = again
    moved.get_potential_energy()
    assert again.n_computed == 1


def test_a_torn_file_is_computed_again(tmp_path):
    atoms = bulk("Cu", cubic=True)
    atoms.calc = CheckpointedCalculator(lambda a: EMT(), tmp_path)
    e = atoms.get_potential_energy()
    (path,) = tmp_path.glob("*.json")
    path.write_text(path.read_text()[:20])
    atoms.calc = calc = CheckpointedCalculator(lambda a: EMT(), tmp_path)
    assert atoms.get_potential_energy() == e and calc.n_computed == 1


def test_the_mesh_has_one_point_across_a_vacuum_only():
    cube = bulk("W", "bcc", a=3.18, cubic=True)
    assert vacuum_axes(cube) == [False] * 3
    assert kpoint_mesh(cube, 6.0) == {"size": [12, 12, 12], "gamma": True}
    slab_ = cube.repeat((1, 1, 4))
    slab_.center(vacuum=6.0, axis=2)
    assert vacuum_axes(slab_) == [False, False, True]
    assert kpoint_mesh(slab_, 6.0) == {"size": [12, 12, 1], "gamma": True}
    # a long cell without a gap is not a vacuum
    assert vacuum_axes(cube.repeat((1, 1, 8))) == [False] * 3



class SlowEMT(CountingEMT):
    """CountingEMT that takes at least ``pause`` seconds per single point (a clock a test can bound)."""

    def __init__(self, pause: float, budget: int | None = None):
        super().__init__([], budget)
        self.pause = pause

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        import time

        time.sleep(self.pause)
        super().calculate(atoms, properties, system_changes)


def test_a_resumed_relaxation_reports_the_wall_time_of_every_step_not_only_its_own(tmp_path):
    """The cost of a relaxation spread over several processes: each point's own wall time.

    Oracle: every computed point sleeps 0.05 s, so n points took ≥ 0.05 n s; the upper bound
    (0.05 n + 1 s for EMT itself) is loose for a loaded machine.
    """
    import json

    pause, budget = 0.05, 4
    killed = CheckpointedCalculator(lambda atoms: SlowEMT(pause, budget=budget), tmp_path)
    with pytest.raises(Killed):
        relax(slab(), killed, fmax=1e-2)
    resumed = CheckpointedCalculator(lambda atoms: SlowEMT(pause), tmp_path)
    relax(slab(), resumed, fmax=1e-2)
    n = resumed.n_replayed + resumed.n_computed
    assert resumed.n_replayed == budget and resumed.n_computed > 0
    assert pause * n <= resumed.compute_s < pause * n + 1.0 and resumed.n_untimed == 0

    # a point stored before points carried their time is counted apart, not as zero seconds
    first = min(tmp_path.glob("*.json"), key=lambda p: p.stat().st_mtime)
    record = json.loads(first.read_text())
    took = record.pop("wall_s")
    first.write_text(json.dumps(record))
    replay = CheckpointedCalculator(lambda atoms: pytest.fail("a stored point was computed"), tmp_path)
    relax(slab(), replay, fmax=1e-2)
    assert replay.n_replayed == n and replay.n_untimed == 1
    assert replay.compute_s == pytest.approx(resumed.compute_s - took, rel=1e-9)
