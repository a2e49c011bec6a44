"""Fracture of cubic metals: Griffith K_Ic and atomistic lattice trapping (K+, K−).

:mod:`.griffith` gives K_Ic from the calculator's C_ij and surface energy (matscipy's
``CubicCrystalCrack.k1g``); :mod:`.trapping` loads a clamped crack-tip cluster (:mod:`.cluster`)
with the anisotropic near-tip field and brackets the loads at which the tip advances or heals;
:mod:`.release` gives the energy released when the trapped tip advances one column at a fixed
load; :mod:`.sensitivity` differentiates those loads with respect to a linear model's parameters
(implicit differentiation at the end of the trapped branch). Protocol, convergence in cluster
size and the W numbers: ``docs/fracture.md``.
"""

from __future__ import annotations

from ..base import Property
from ..crystal import Material
from ..surfaces import QUICK_LAYERS_BY_STRUCTURE
from .cluster import CrackCluster
from .griffith import CLEAVAGE_BY_STRUCTURE, CLEAVAGE_SYSTEMS, K_UNIT, GriffithToughness, griffith_k1c
from .release import TipEnergyRelease
from .trapping import (
    BOUNDS,
    TRAPPING_SYSTEMS,
    CrackLoad,
    LatticeTrapping,
    TrappingBracket,
    TrappingError,
    cubic_crack,
    parse_system,
)

__all__ = [
    "BOUNDS",
    "CLEAVAGE_BY_STRUCTURE",
    "CLEAVAGE_SYSTEMS",
    "K_UNIT",
    "QUICK_TRAPPING",
    "TRAPPING_SYSTEMS",
    "CrackCluster",
    "CrackLoad",
    "GriffithToughness",
    "LatticeTrapping",
    "TipEnergyRelease",
    "TrappingBracket",
    "TrappingError",
    "cubic_crack",
    "griffith_k1c",
    "parse_system",
    "suite",
]

#: settings of the quick suite's trapping entries: a small cluster, coarse steps (tests, CI)
QUICK_TRAPPING = {"radius": 9.0, "k_step": 0.1, "k_tol": 0.02, "fmax": 5e-3}


def suite(quick: bool = False, lattice_constant: float | None = None, **material) -> list[Property]:
    """Fracture entries of a suite (cubic structures; none for hcp): Griffith K_Ic of
    :data:`CLEAVAGE_BY_STRUCTURE`, then K+ and K− of :data:`TRAPPING_SYSTEMS`.

    ``lattice_constant`` fixes the trapping clusters' cell (None: each calculator's own a0);
    Griffith K_Ic always uses the calculator's own a0, so that its crystal is stress-free.
    """
    crystal = Material(**material).crystal
    if crystal not in CLEAVAGE_BY_STRUCTURE:
        return []
    quick_layers = QUICK_LAYERS_BY_STRUCTURE[crystal]
    out: list[Property] = [GriffithToughness(surface, layers=quick_layers[surface] if quick else None, **material)
                           for surface in CLEAVAGE_BY_STRUCTURE[crystal]]
    for system in TRAPPING_SYSTEMS[crystal]:
        plane = parse_system(system)[0]
        settings = dict(QUICK_TRAPPING, layers=quick_layers.get(plane)) if quick else {}
        out.extend(LatticeTrapping(system, bound, lattice_constant=lattice_constant, **settings, **material)
                   for bound in BOUNDS)
    return out
