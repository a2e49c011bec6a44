"""The result keys of the uncertainty calculators and the one assembler that fills them.

Both :class:`~uqcalc.calculator.UQCalculator` (linear ensemble, one matrix
product) and :class:`~uqcalc.calculator.CommitteeCalculator` (any calculators,
one evaluation each) reduce a structure to, per block, a point value, std,
lower and upper bound and optionally the member predictions; :func:`store_block`
turns that into ``results`` keys, so the two cannot drift apart in names,
types or layout. :class:`UncertaintyCalculator` is their common base: the key
list, the cache policy (:class:`~uqcalc._calcbase.CachedCalculator`) and the
held :class:`~uqcalc._monitor.ThresholdMonitor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ._calcbase import BLOCKS, CachedCalculator, store_point
from ._monitor import OnExceed, ThresholdMonitor, uncertainty_metrics

__all__ = ["POINT_KEYS", "UNCERTAINTY_KEYS", "UncertaintyCalculator", "member_spread", "store_block"]

POINT_KEYS = ("energy", "free_energy", "forces", "stress", "energies")
_SUFFIXES = ("std", "lower", "upper", "ensemble")
UNCERTAINTY_KEYS = tuple(f"{p}_{s}" for p in BLOCKS for s in _SUFFIXES)


def store_block(
    results: dict[str, Any],
    name: str,
    point,
    std=None,
    lower=None,
    upper=None,
    members: np.ndarray | None = None,
) -> None:
    """Put one block's prediction into ``results`` under the standard and uncertainty keys.

    Parameters
    ----------
    results : dict
        Filled in place.
    name : {"energy", "forces", "stress", "energies"}
        The block.
    point, std, lower, upper : array_like
        Same shape as the property (energy: scalar); ``std``/``lower``/``upper``
        may be None (a single-vector potential has none).
    members : (M,) + shape array, optional
        Member predictions, member axis first, stored as ``<name>_ensemble``.

    Notes
    -----
    Energy values are stored as Python floats and ``free_energy`` equals
    ``energy`` (:func:`~uqcalc._calcbase.store_point`).
    """
    store_point(results, name, point)
    for suffix, value in (("std", std), ("lower", lower), ("upper", upper)):
        if value is not None:
            results[f"{name}_{suffix}"] = float(value) if name == "energy" else value
    if members is not None:
        results[f"{name}_ensemble"] = members


def member_spread(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Committee statistics of member values ``stack`` (member axis first).

    Returns
    -------
    point, std, lower, upper, members
        Mean, std with ddof=1 (NaN for one member: no spread can be estimated),
        min, max and ``stack`` itself, in the order :func:`store_block` takes them.
    """
    stack = np.asarray(stack, dtype=float)
    if len(stack) > 1:
        std = stack.std(axis=0, ddof=1)
    else:
        std = np.full(stack.shape[1:], np.nan)
    return stack.mean(axis=0), std, stack.min(axis=0), stack.max(axis=0), stack


class UncertaintyCalculator(CachedCalculator):
    """Base of the uncertainty calculators: result keys, cache policy and a threshold monitor.

    Subclasses implement ``_assemble(blocks)``, which fills ``results`` for those
    blocks through :func:`store_block`; after it the monitor checks the metrics
    of the blocks just computed.

    Parameters
    ----------
    threshold : dict, optional
        Limits on :meth:`uncertainty_metrics` (see :class:`~uqcalc._monitor.ThresholdMonitor`).
    on_exceed : {"warn", "raise"} or callable, default "warn"
        What happens when a limit is exceeded.
    parameters : mapping, optional
        Model description for :meth:`todict`.
    """

    implemented_properties: ClassVar[list[str]] = list(POINT_KEYS) + list(UNCERTAINTY_KEYS)

    def __init__(
        self,
        threshold: Mapping[str, float] | None = None,
        on_exceed: OnExceed = "warn",
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self.monitor = ThresholdMonitor(threshold, on_exceed)
        super().__init__(parameters)

    # the constructor keywords stay readable (and settable) as attributes
    @property
    def threshold(self) -> dict[str, float]:
        """The monitor's limits (``{metric: limit}``; empty: off)."""
        return self.monitor.threshold

    @threshold.setter
    def threshold(self, value: Mapping[str, float] | None) -> None:
        self.monitor = ThresholdMonitor(value, self.monitor.on_exceed)

    @property
    def on_exceed(self) -> OnExceed:
        """The monitor's action on an exceeded limit."""
        return self.monitor.on_exceed

    @on_exceed.setter
    def on_exceed(self, value: OnExceed) -> None:
        self.monitor = ThresholdMonitor(self.monitor.threshold, value)

    def uncertainty_metrics(self) -> dict[str, float]:
        """Scalar summaries of the current results that thresholds can refer to.

        ``<p>_std`` / ``<p>_range`` are the largest entry of ``<p>_std`` /
        ``<p>_upper - <p>_lower`` (for forces, the largest Cartesian component);
        ``energy_std_per_atom`` / ``energy_range_per_atom`` divide by the number
        of atoms. Only metrics whose keys are in the current results appear.
        """
        return uncertainty_metrics(self.results, len(self.atoms) if self.atoms is not None else 0)

    def _evaluate(self, blocks: tuple[str, ...]) -> None:
        self._assemble(blocks)
        self.monitor.check(self, blocks)

    def _assemble(self, blocks: tuple[str, ...]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
