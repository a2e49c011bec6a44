"""Energy released when a trapped crack tip advances one bond column at a fixed load.

At a load K inside the trapping range [K−, K+] the tip has (at least) two trapped positions, at
its starting column c0 and one column ahead. Both are relaxed states of the same clamped
cluster under the same boundary, so their energy difference is the crack-tip energy release of
one step of growth, per unit of new crack area (one bond column across the periodic front):

    G_tip(K) = −[E(c0 + 1, K) − E(c0, K)] / (Δx · L_z)      (J/m²)

In a continuum this is G(K) − 2γ = 2γ (K²/K_G² − 1): zero at K_G and growing with the load; the
lattice shifts and bends it. The advanced state is reached the way a loaded crack reaches it:
along the K+ load path (:meth:`.LatticeTrapping.bracket`), then unloaded back to K in the
path's steps, each relaxed; if its tip heals on the way, K lies outside its trapping range and
the value is an error, not a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase.calculators.calculator import Calculator

from ..base import Property
from ..crystal import CUBIC, Material, check_structure
from ..surfaces import EV_PER_A2
from .griffith import K_UNIT
from .trapping import LatticeTrapping, TrappingError, _indices, parse_system

__all__ = ["TipEnergyRelease"]


@dataclass
class TipEnergyRelease(Material, Property):
    """Energy released per unit new crack area (J/m²) when the trapped tip advances one bond
    column at ``k`` times the calculator's K_G.

    Parameters
    ----------
    system
        Cleavage system, as for :class:`~.trapping.LatticeTrapping`.
    k
        The load, in units of the calculator's K_G; must lie in both trapped positions' ranges.
    trapping
        Keyword settings of the :class:`~.trapping.LatticeTrapping` path that produces the
        advanced state (``radius``, ``k_step``, ``fmax``, …).
    """

    system: str | tuple = "(100)[010]"
    k: float = 1.0
    trapping: dict = field(default_factory=dict)

    unit: ClassVar[str] = "J/m^2"
    smooth_in_theta: ClassVar[bool] = False

    def __post_init__(self):
        parse_system(self.system)
        if not self.k > 0:
            raise ValueError(f"k must be positive (units of K_G), got {self.k}")
        unknown = set(self.trapping) - {f for f in LatticeTrapping.__dataclass_fields__ if f not in ("system", "bound",
                                                                                                   "k_start", "label")}
        if unknown:
            raise ValueError(f"trapping settings not of LatticeTrapping: {sorted(unknown)}")

    def _default_name(self) -> str:
        return f"tip_energy_release_{_indices(parse_system(self.system)[0])}"

    def path_property(self) -> LatticeTrapping:
        """The K+ bracket that carries the tip into its next column (started at ``k``)."""
        return LatticeTrapping(self.system, "advance", k_start=self.k, symbol=self.symbol, structure=self.structure,
                               **self.trapping)

    def states(self, calc: Calculator):
        """(trapped state at c0, advanced state at c0 + 1), both relaxed at ``k`` K_G, and the bracket."""
        check_structure(self.crystal, CUBIC, self.name)
        prop = self.path_property()
        bracket = prop.bracket(calc)
        load, cluster, kg = bracket.load, bracket.load.cluster, bracket.load.k_griffith
        c0 = bracket.start_column
        start = prop._start(calc)[1]
        # unload the moved state back to k along the path's step
        k_from = bracket.k_high / K_UNIT / kg
        state = bracket.moved
        grid = list(np.arange(k_from, self.k, -prop.k_step)[1:]) + [self.k]
        for k_to in grid:
            trial = state.copy()
            trial.positions += load.field(k_to * kg) - load.field(k_from * kg)
            state = prop._relax(trial, calc, k_to, confirm=True)
            k_from = k_to
        column = cluster.tip_column(state)
        if column <= c0:
            raise TrappingError(f"{self.name}: the advanced tip healed back to column {column} while unloading to "
                                f"K/K_G = {self.k} (it is outside its trapping range there)")
        trapped = prop._relax(start, calc, self.k, confirm=True)
        return trapped, state, bracket

    def evaluate(self, calc: Calculator) -> float:
        trapped, advanced, bracket = self.states(calc)
        cluster = bracket.load.cluster
        columns = cluster.tip_column(advanced) - cluster.tip_column(trapped)
        area = columns * cluster.spacing * trapped.cell[2, 2]
        for atoms in (trapped, advanced):
            atoms.calc = calc
        return float(-(advanced.get_potential_energy() - trapped.get_potential_energy()) / area * EV_PER_A2)
