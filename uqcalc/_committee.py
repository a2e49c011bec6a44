"""CommitteeCalculator: the uncertainty keys of a UQCalculator for any committee of ASE calculators.

Exported as :class:`uqcalc.calculator.CommitteeCalculator`
(``UQCalculator.from_calculators``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from ase.calculators.calculator import BaseCalculator

from ._monitor import OnExceed
from ._results import UncertaintyCalculator, member_spread, store_block

__all__ = ["CommitteeCalculator"]


class CommitteeCalculator(UncertaintyCalculator):
    """Uncertainty keys of :class:`~uqcalc.calculator.UQCalculator` for a committee of ASE calculators.

    Each member is evaluated in turn (no linearity is assumed), so a committee
    of M non-linear models costs M evaluations.

    Parameters
    ----------
    calculators : sequence of ASE calculators
        The committee (at least one).
    per_atom : bool, default False
        Always compute ``energies*``; otherwise only when requested.
    threshold, on_exceed
        As for :class:`~uqcalc.calculator.UQCalculator`.

    Notes
    -----
    Point estimate = committee mean; ``<p>_lower``/``<p>_upper`` = min/max over
    members; ``<p>_std`` = the members' standard deviation with ddof=1 (NaN for
    one member). ``stress*`` are computed for 3-D periodic cells when every
    member implements stress. The cache policy is that of every uqcalc
    calculator (:func:`uqcalc._calcbase.plan`): one evaluation of each member per
    geometry, plus one per-atom pass if ``energies*`` come later; each member
    also caches its own results.
    """

    def __init__(
        self,
        calculators: Sequence[BaseCalculator],
        per_atom: bool = False,
        threshold: Mapping[str, float] | None = None,
        on_exceed: OnExceed = "warn",
    ) -> None:
        calculators = list(calculators)
        if not calculators:
            raise ValueError("a committee needs at least one calculator")
        self.calculators = calculators
        self.per_atom = bool(per_atom)
        super().__init__(threshold, on_exceed, parameters={"n_members": len(calculators)})

    def members(self) -> Iterator[BaseCalculator]:
        """The committee's calculators, in order."""
        yield from self.calculators

    def _assemble(self, blocks: tuple[str, ...]) -> None:
        stress = all("stress" in c.implemented_properties for c in self.calculators)
        names = [b for b in blocks if b != "stress" or stress]
        # per-atom energies asked of each member first: a member with the same cache policy
        # then makes one evaluation with per-atom rows and serves the rest from its results
        values = {name: [] for name in sorted(names, key=lambda name: name != "energies")}
        for calc in self.calculators:
            for name, vals in values.items():
                vals.append(np.asarray(calc.get_property(name, self.atoms), dtype=float))
        for name, vals in values.items():
            store_block(self.results, name, *member_spread(np.stack(vals)))
