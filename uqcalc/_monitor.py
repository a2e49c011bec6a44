"""Threshold monitoring of uncertainty results: warn, raise or call back when a limit is exceeded.

:class:`ThresholdMonitor` is held by the uncertainty calculators
(``calc.monitor``); they call :meth:`ThresholdMonitor.check` after each
evaluation with the blocks it computed. The metrics are plain functions of a
results dict (:func:`uncertainty_metrics`), so the monitor knows nothing about
how the results were made.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["METRICS", "ThresholdMonitor", "UncertaintyExceeded", "UncertaintyWarning", "uncertainty_metrics"]

_UQ_PROPS = ("energy", "forces", "stress", "energies")

METRICS = (
    "energy_std", "energy_std_per_atom", "forces_std", "stress_std", "energies_std",
    "energy_range", "energy_range_per_atom", "forces_range", "stress_range", "energies_range",
    "energy_extrapolation",
)  # fmt: skip
"""Names a threshold can refer to (see :func:`uncertainty_metrics`)."""


class UncertaintyWarning(UserWarning):
    """An uncertainty exceeded the threshold given to a calculator."""


class UncertaintyExceeded(RuntimeError):
    """Raised with ``on_exceed="raise"`` when an uncertainty exceeds its threshold."""


def uncertainty_metrics(results: Mapping[str, Any], n_atoms: int) -> dict[str, float]:
    """Scalar summaries of uncertainty results that thresholds can refer to.

    Parameters
    ----------
    results : mapping
        A calculator's results with ``<p>_std`` / ``<p>_lower`` / ``<p>_upper`` keys.
    n_atoms : int
        Atoms in the structure (for the per-atom energy metrics; 0 leaves them out).

    Returns
    -------
    dict of str to float
        ``<p>_std`` / ``<p>_range``: the largest entry of ``<p>_std`` /
        ``<p>_upper - <p>_lower`` (for forces, the largest Cartesian component);
        ``energy_std_per_atom`` / ``energy_range_per_atom`` divide by ``n_atoms``.
        Only metrics whose keys are in ``results`` appear.
    """
    out = {}
    for p in _UQ_PROPS:
        if f"{p}_std" in results and np.size(results[f"{p}_std"]):
            out[f"{p}_std"] = float(np.max(results[f"{p}_std"]))
        if f"{p}_upper" in results and np.size(results[f"{p}_upper"]):
            out[f"{p}_range"] = float(np.max(np.asarray(results[f"{p}_upper"]) - results[f"{p}_lower"]))
    if "energy_extrapolation" in results:  # grade of a LeverageGate (uqcalc.extrapolation)
        out["energy_extrapolation"] = float(results["energy_extrapolation"])
    if n_atoms:
        for m in ("std", "range"):
            if f"energy_{m}" in out:
                out[f"energy_{m}_per_atom"] = out[f"energy_{m}"] / n_atoms
    return out


OnExceed = str | Callable[[Any, Any, str, float, float], None]


class ThresholdMonitor:
    """Limits on :func:`uncertainty_metrics` and what to do when one is exceeded.

    Parameters
    ----------
    threshold : dict, optional
        ``{metric: limit}``, e.g. ``{"energy_std_per_atom": 0.01, "forces_std": 0.5}``
        (eV, eV/Å); metric names from :data:`METRICS`. Empty: the monitor does nothing.
    on_exceed : {"warn", "raise"} or callable, default "warn"
        An :class:`UncertaintyWarning`, an :class:`UncertaintyExceeded` error, or
        ``on_exceed(calc, atoms, metric, value, limit)``.

    Raises
    ------
    ValueError
        For an unknown metric name or ``on_exceed`` value.

    Notes
    -----
    A NaN metric (the std of a one-member ensemble) never triggers: no
    information is no alarm.
    """

    def __init__(self, threshold: Mapping[str, float] | None = None, on_exceed: OnExceed = "warn") -> None:
        threshold = {key: float(value) for key, value in dict(threshold or {}).items()}
        unknown = sorted(set(threshold) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown threshold metric(s) {unknown}; known: {list(METRICS)}")
        if not (on_exceed in ("warn", "raise") or callable(on_exceed)):
            raise ValueError(f"on_exceed must be 'warn', 'raise' or a callable, got {on_exceed!r}")
        self.threshold = threshold
        self.on_exceed = on_exceed

    def __repr__(self) -> str:
        return f"ThresholdMonitor({self.threshold!r}, on_exceed={self.on_exceed!r})"

    def exceeded(
        self, results: Mapping[str, Any], n_atoms: int, blocks: Iterable[str]
    ) -> list[tuple[str, float, float]]:
        """``(metric, value, limit)`` for each limit exceeded among the metrics of ``blocks``."""
        if not self.threshold:
            return []
        blocks = set(blocks)
        metrics = uncertainty_metrics(results, n_atoms)
        out = []
        for key, limit in self.threshold.items():
            # only metrics of the blocks just computed: a per-atom pass for the same
            # geometry must not report the energy/forces metrics a second time
            value = metrics.get(key) if key.split("_", 1)[0] in blocks else None
            if value is not None and value > limit:  # False for NaN
                out.append((key, value, limit))
        return out

    def check(self, calc, blocks: Iterable[str]) -> None:
        """Act on the limits exceeded by ``calc.results`` among the metrics of ``blocks``.

        Parameters
        ----------
        calc : ASE calculator
            Holds ``results`` and ``atoms`` of the evaluation just made.
        blocks : iterable of str
            The blocks that evaluation computed (``energy``, ``forces``, ...).
        """
        atoms = calc.atoms
        for key, value, limit in self.exceeded(calc.results, len(atoms) if atoms is not None else 0, blocks):
            if callable(self.on_exceed):
                self.on_exceed(calc, atoms, key, value, limit)
                continue
            msg = f"{type(calc).__name__}: {key} = {value:.6g} exceeds the threshold {limit:.6g}"
            if self.on_exceed == "raise":
                raise UncertaintyExceeded(msg)
            warnings.warn(msg, UncertaintyWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """``stacklevel`` of the first frame outside uqcalc and ASE.

    The warning then names the user's line (the optimiser step, the
    ``get_forces`` call), however deep ASE's dispatch went, and Python's
    once-per-location filter deduplicates per user call site.
    """
    level, frame = 2, sys._getframe(2)  # 1 = warnings.warn's caller (check), 2 = check's caller
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in ("uqcalc", "ase"):
        frame, level = frame.f_back, level + 1
    return level
