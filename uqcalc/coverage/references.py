"""Where the reference values a coverage study scores against come from.

* :class:`CalculatorReference` (the teacher tier): the property computed with a reference
  calculator by the same workflow as the student (``prop.evaluate(calc)``), e.g. the
  ``W_2940_2017_2`` teacher — exact, offline; :func:`teacher_reference` builds it;
* :class:`TableReference`: a JSON file (or dict) of values with unit and citation;
* :func:`heldout_coverage`: configuration-level coverage of energies/forces/stresses of frames
  that were not used in training, per group and row kind, from ``ensemble.predict``.

A provider is any object with ``key`` (a string that identifies it in a study's store) and
``value(prop) -> (value, info)``; ``info`` is a JSON-able dict (``source``, ``unit``...).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ._io import clean
from .metrics import grouped_summary, noise_floor

__all__ = ["CalculatorReference", "TableReference", "heldout_coverage", "teacher_reference"]


class CalculatorReference:
    """Reference values computed with a calculator by the property's own workflow.

    Parameters
    ----------
    calc_factory : callable
        Returns a fresh ASE calculator (called lazily, once): the teacher's LAMMPS instance
        should not be created when every reference is already in the store.
    name : str
        Identifies the calculator in the store and the tables (e.g. ``"teacher W_2940_2017_2"``).
    """

    def __init__(self, calc_factory: Callable[[], object], name: str):
        self.calc_factory = calc_factory
        self.name = name
        self._calc = None

    @property
    def key(self) -> str:
        return f"calculator:{self.name}"

    def value(self, prop) -> tuple[float, dict]:
        """``prop.evaluate(calc)`` with its wall time."""
        if self._calc is None:
            self._calc = self.calc_factory()
        t0 = time.perf_counter()
        v = prop.evaluate(self._calc)
        return float(v), {"source": self.name, "unit": getattr(prop, "unit", ""), "wall_s": time.perf_counter() - t0}


def teacher_reference() -> CalculatorReference:
    """The W teacher (``W_2940_2017_2`` SNAP+ZBL, Wood & Thompson 2017) as a reference provider."""

    def factory():
        from ..datasets.tungsten import teacher

        return teacher()

    return CalculatorReference(factory, "teacher W_2940_2017_2")


class TableReference:
    """Reference values from a table: ``{name: {"value": v, "unit": u, "citation": c}}``.

    Parameters
    ----------
    table : mapping or path
        The dict itself, or a JSON file holding it. A bare number is accepted as a value
        without unit or citation.
    name : str, optional
        Identifies the table in the store (default: the file name, or ``"table"``).

    Notes
    -----
    A property missing from the table has no reference: :meth:`value` raises ``KeyError``
    and the study records it as unscored rather than inventing a value. A unit that differs
    from the property's unit raises ``ValueError`` (no silent conversion).
    """

    def __init__(self, table: Mapping | str | os.PathLike, name: str | None = None):
        if isinstance(table, (str, os.PathLike)):
            path = Path(table)
            self.table = json.loads(path.read_text())
            self.name = name or path.name
        else:
            self.table = dict(table)
            self.name = name or "table"

    @property
    def key(self) -> str:
        # the content is part of the key: editing a value invalidates cached references
        return f"table:{self.name}:{json.dumps(self.table, sort_keys=True, default=str)}"

    def value(self, prop) -> tuple[float, dict]:
        entry = self.table[prop.name]
        if not isinstance(entry, Mapping):
            entry = {"value": entry}
        unit = entry.get("unit")
        if unit is not None and getattr(prop, "unit", None) not in (None, unit):
            raise ValueError(f"{prop.name}: table unit {unit!r} differs from the property's {prop.unit!r}")
        return float(entry["value"]), {"source": entry.get("citation", self.name), "unit": unit or getattr(prop, "unit", "")}


def heldout_coverage(ensemble, design, bounds: str | None = None, z: float = 2.0) -> dict:
    """Configuration-level coverage of held-out design rows.

    Parameters
    ----------
    ensemble : ParameterEnsemble
    design : DesignMatrix
        Rows of frames not used in training (energies per atom, forces, stresses; reference
        part subtracted, unweighted: ``X θ`` is compared with ``y`` directly).
    bounds : {"exact", "sampled", "gaussian", "box"}, optional
        Passed to :meth:`ParameterEnsemble.predict` (default: exact with a box, else sampled);
        ``"box"`` (a :class:`~uqcalc.coverage.BackendSpec` setting) is the exact box bounds, a
        linear output's extremes over the box corners, or sampled without a box.
    z : float
        Gaussian multiplier.

    Returns
    -------
    dict
        :func:`~uqcalc.coverage.metrics.grouped_summary` by ``group`` and ``kind`` (and crossed),
        with the noise floor :data:`~uqcalc.design.NOISE_FLOOR` of each row kind,
        plus ``bounds``, ``n_members`` and, for the parity plot, the energy rows
        (``energy``: reference, point, lower, upper, group).
    """
    if bounds == "box":
        bounds = "exact" if ensemble.has_box else "sampled"
    pred = ensemble.predict(design.X, bounds=bounds, z=z, return_members=False)
    summary = grouped_summary(pred.mean, pred.lower, pred.upper, design.y, pred.std,
                              tolerance=noise_floor(design.kind), group=design.group, kind=design.kind)
    e = design.kind == "energy"
    summary["bounds"] = pred.bounds
    summary["n_members"] = int(ensemble.n_members)
    summary["energy"] = {
        "reference": design.y[e].tolist(), "point": pred.mean[e].tolist(),
        "lower": pred.lower[e].tolist(), "upper": pred.upper[e].tolist(),
        "group": design.group[e].tolist(),
    }
    return clean(summary)
