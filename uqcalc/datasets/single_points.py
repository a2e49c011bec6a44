"""Checkpointed single points: a calculator wrapper that makes an interrupted DFT relaxation resume.

A DFT relaxation of a slab or a vacancy takes hours on a workstation, and ASE's optimizers
restart from scratch when the process dies. :class:`CheckpointedCalculator` writes every single
point it computes (energy, forces and, when asked, stress) to a directory under a hash of the
exact structure (numbers, positions, cell, pbc, bit for bit) and of the reference settings.
ASE's optimizers are deterministic, and the stored floats round-trip exactly through JSON, so
a re-run of the same workflow replays the finished steps from the disk, bit-identical, and
computes from the first step that is not there. From there on it agrees with an uninterrupted
run to the code's convergence tolerance, not bit for bit: the calculator starts afresh (a DFT
code from new initial wave functions).

The wrapped calculator is built by ``factory(atoms)`` for each new cell (numbers, cell and pbc)
and kept while only positions change, so a plane-wave code reuses its wave functions between
ionic steps, as it would unwrapped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from .._json import strict_json

__all__ = ["CheckpointedCalculator", "structure_key"]

logger = logging.getLogger(__name__)


def structure_key(atoms: Atoms, tag: dict | None = None) -> str:
    """A hash of ``atoms`` bit for bit (numbers, positions, cell, pbc) and of ``tag`` (settings)."""
    h = hashlib.sha256(json.dumps(tag or {}, sort_keys=True, default=repr).encode())
    h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(atoms.cell.array, dtype=np.float64).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    return h.hexdigest()[:24]


def _same_cell(a: Atoms, b: Atoms | None) -> bool:
    return (b is not None and len(a) == len(b) and np.array_equal(a.numbers, b.numbers)
            and np.array_equal(a.cell.array, b.cell.array) and np.array_equal(a.pbc, b.pbc))


class CheckpointedCalculator(Calculator):
    """An ASE calculator whose single points are stored on disk and replayed when asked again.

    Parameters
    ----------
    factory : callable
        ``factory(atoms) -> Calculator``: the expensive calculator for ``atoms``'s cell (called
        again when the numbers, cell or pbc change; kept while only positions move).
    store_dir : path
        Where the single points are written (one JSON file per structure; created on demand).
    tag : dict, optional
        What else the results depend on (settings, code version): part of every key, so
        changed settings never replay old points.

    Attributes
    ----------
    n_computed, n_replayed : int
        Single points computed by the wrapped calculator and replayed from ``store_dir``.
    compute_s : float
        Wall time (s) of every single point this calculator served, as measured by the process
        that computed it: a relaxation resumed over several processes adds up to its whole cost.
    n_untimed : int
        Replayed single points stored without their wall time (written before points carried it); not in ``compute_s``.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from ase.calculators.emt import EMT
    >>> import tempfile
    >>> calc = CheckpointedCalculator(lambda atoms: EMT(), tempfile.mkdtemp())
    >>> atoms = bulk("Cu", cubic=True)
    >>> atoms.calc = calc
    >>> e = atoms.get_potential_energy()
    >>> atoms.calc = CheckpointedCalculator(lambda atoms: EMT(), calc.store_dir)
    >>> atoms.get_potential_energy() == e, atoms.calc.n_replayed
    (True, 1)
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, factory: Callable[[Atoms], Calculator], store_dir: str | os.PathLike,
                 tag: dict | None = None):
        super().__init__()
        self.factory = factory
        self.store_dir = Path(store_dir)
        self.tag = dict(tag or {})
        self.n_computed = 0
        self.n_replayed = 0
        self.compute_s = 0.0
        self.n_untimed = 0
        self._inner: Calculator | None = None
        self._inner_atoms: Atoms | None = None

    def _path(self, atoms: Atoms) -> Path:
        return self.store_dir / f"{structure_key(atoms, self.tag)}.json"

    def _compute(self, atoms: Atoms, names: list[str]) -> dict:
        if not _same_cell(atoms, self._inner_atoms):
            self._inner, self._inner_atoms = self.factory(atoms.copy()), atoms.copy()
        work = atoms.copy()
        work.calc = self._inner
        out = {"energy": work.get_potential_energy(), "forces": work.get_forces()}
        try:
            out["free_energy"] = work.get_potential_energy(force_consistent=True)
        except Exception:  # noqa: BLE001 - a calculator without a free energy: ASE's convention, energy
            out["free_energy"] = out["energy"]
        if "stress" in names:
            out["stress"] = work.get_stress()
        self.n_computed += 1
        return out

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        path = self._path(self.atoms)
        record = _read(path) or {}
        names = ["energy", "free_energy", "forces"] + (["stress"] if "stress" in properties else [])
        if all(n in record for n in names):
            self.n_replayed += 1
            if "wall_s" in record:
                self.compute_s += float(record["wall_s"])
            else:
                self.n_untimed += 1
            how = "replayed"
        else:
            t0 = time.perf_counter()
            record |= self._compute(self.atoms, names)
            took = time.perf_counter() - t0
            record["wall_s"] = float(record.get("wall_s", 0.0)) + took  # a stress asked for later adds to it
            self.compute_s += took
            _write(path, record | {"numbers": self.atoms.numbers, "positions": self.atoms.positions,
                                   "cell": self.atoms.cell.array, "pbc": self.atoms.pbc})
            how = f"computed in {took:.0f} s"
        fmax = float(np.linalg.norm(np.reshape(record["forces"], (-1, 3)), axis=1).max()) if len(self.atoms) else 0.0
        logger.info("%s: %d atoms, E = %.6f eV, max force %.3g eV/Å (%s; %d computed, %d replayed)",
                    self.atoms.get_chemical_formula(), len(self.atoms), float(record["energy"]), fmax, how,
                    self.n_computed, self.n_replayed)
        self.results = {"energy": float(record["energy"]), "free_energy": float(record["free_energy"]),
                        "forces": np.array(record["forces"], dtype=float).reshape(len(self.atoms), 3)}
        if "stress" in record:
            self.results["stress"] = np.array(record["stress"], dtype=float)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # absent or torn: computed again, not trusted
        return None


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(strict_json(record), f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
