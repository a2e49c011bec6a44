"""Material properties as objects (``name``, ``unit``, ``evaluate(calc)``, ``states()``).

Modules: :mod:`.bulk` (a0, E_coh, B, C_ij, shear moduli), :mod:`.phases` (fcc, hcp, A15, sc,
diamond, C15 relative to bcc), :mod:`.surfaces` (γ of six low-index surfaces), :mod:`.fracture`
(Griffith K_Ic, lattice-trapping bounds K+ and K− of crack-tip clusters), :mod:`.defects` (vacancy, divacancy, interstitials), :mod:`.faults`
(stacking faults) and :mod:`.migration` (vacancy migration). :func:`tungsten_suite` collects the
default W benchmark, :func:`run_suite` evaluates any subset with one calculator.

Each module provides ``suite(quick=False) -> list[Property]``: its entries of the benchmark with
their default settings, or with small cells for tests when ``quick``.

Examples
--------
>>> from uqcalc.properties import tungsten_suite
>>> [p.name for p in tungsten_suite(["a0", "C44"])]
['a0', 'C44']
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
import warnings
from collections.abc import Iterable, Sequence

from ase.calculators.calculator import Calculator

from ..errors import InputError, UnknownNameError
from . import bulk, defects, faults, fracture, migration, phases, surfaces
from .base import (
    STATE_KINDS,
    TUNGSTEN_A0,
    Property,
    RelaxationError,
    State,
    StateProperty,
    relax,
)
from .bulk import (
    BulkModulus,
    CohesiveEnergy,
    ElasticConstant,
    LatticeConstant,
    ShearModulus,
)
from .defects import (
    DivacancyBindingEnergy,
    InterstitialFormationEnergy,
    PointSymmetry,
    VacancyFormationEnergy,
    VacancyRelaxationVolume,
)
from .faults import (
    GSFCurve,
    IntrinsicStackingFaultEnergy,
    StackingFaultEnergy,
    UnstableStackingFaultEnergy,
)
from .fracture import GriffithToughness, LatticeTrapping, TipEnergyRelease
from .migration import VacancyMigrationEnergy
from .phases import HcpAxialRatio, PhaseEnergy
from .surfaces import SurfaceEnergy

__all__ = [
    "STATE_KINDS",
    "TUNGSTEN_A0",
    "BulkModulus",
    "CohesiveEnergy",
    "DivacancyBindingEnergy",
    "ElasticConstant",
    "GSFCurve",
    "GriffithToughness",
    "HcpAxialRatio",
    "InterstitialFormationEnergy",
    "IntrinsicStackingFaultEnergy",
    "LatticeTrapping",
    "LatticeConstant",
    "PhaseEnergy",
    "PointSymmetry",
    "Property",
    "RelaxationError",
    "ShearModulus",
    "StackingFaultEnergy",
    "State",
    "StateProperty",
    "SurfaceEnergy",
    "TipEnergyRelease",
    "UnstableStackingFaultEnergy",
    "VacancyFormationEnergy",
    "VacancyMigrationEnergy",
    "VacancyRelaxationVolume",
    "relax",
    "run_suite",
    "suite",
    "tungsten_suite",
]

logger = logging.getLogger(__name__)

# modules of the suite, in table order
_SUITE_MODULES = (bulk, phases, defects, migration, surfaces, faults, fracture)


# the modules whose cells are fixed at a lattice constant (the others relax their cells)
_FIXED_CELL_MODULES = (defects, migration, surfaces, faults)


def _all_properties(quick: bool, lattice_constant: float | None, material: dict) -> list[Property]:
    out: list[Property] = []
    for module in _SUITE_MODULES:
        fixed = {"lattice_constant": lattice_constant} if module in _FIXED_CELL_MODULES else {}
        out.extend(module.suite(quick, **fixed, **material))
    return out


def _settable(prop: Property) -> set[str]:
    """Fields an override may set: the settings, not the label (one label for many properties
    would make their names collide)."""
    if dataclasses.is_dataclass(prop):
        return {f.name for f in dataclasses.fields(prop) if f.init and f.name != "label"}
    return {k for k in vars(prop) if not k.startswith("_") and k != "label"}


def _override(prop: Property, overrides: dict) -> Property:
    """A copy of ``prop`` with ``overrides`` applied; names and units follow (they are computed)."""
    if not overrides:
        return prop
    if dataclasses.is_dataclass(prop):
        return dataclasses.replace(prop, **overrides)
    prop = copy.copy(prop)
    for key, value in overrides.items():
        setattr(prop, key, value)
    return prop


def suite(
    symbol: str,
    structure: str | None = None,
    names: Iterable[str] | None = None,
    quick: bool = False,
    lattice_constant: float | None = None,
    **overrides,
) -> list[Property]:
    """The property suite of an elemental metal with the defaults of :mod:`uqcalc.properties`.

    Parameters
    ----------
    symbol
        Chemical symbol, e.g. ``"Ta"``, ``"Cu"``, ``"Mg"``.
    structure
        Ground-state structure, ``"bcc"``, ``"fcc"`` or ``"hcp"``; None: ASE's reference
        structure of the element (:func:`~uqcalc.properties.crystal.ground_state`).
    names
        Property names to keep, in the order given (default: all, in table order: bulk,
        phases, point defects, migration, surfaces, stacking faults, fracture).
    quick
        Small cells and thin slabs, for tests and smoke runs.
    lattice_constant
        The fixed cells of defects, surfaces, faults and migration (Å); None: every calculator
        at its own zero-stress lattice (then those properties have no states without a
        calculator and propagate by resampling). A study against a reference usually fixes the
        reference's own lattice constant, as the W suite fixes the teacher's.
    **overrides
        Settings applied to every selected property that has a field of that name, e.g.
        ``fmax=1e-2``. A key that no selected property accepts raises ``InputError``.

    Returns
    -------
    list of Property
        New objects. Per structure: bulk (a0, E_coh, B; cubic: C11, C12, C44, G_V, G_H),
        phases relative to the ground state and hcp c/a, vacancy, its relaxation volume,
        1st/2nd-neighbour divacancy, interstitials (bcc ⟨111⟩/⟨110⟩/⟨100⟩/octahedral/
        tetrahedral; fcc ⟨100⟩/octahedral/tetrahedral; hcp basal split/octahedral), vacancy
        migration, surfaces (bcc six; fcc (100)/(110)/(111); hcp basal/prismatic), stacking
        faults (bcc γ_us {110}/{112}; fcc γ_isf and γ_us {111}), Griffith K_Ic and the
        lattice-trapping bounds K+ and K− of two cleavage systems (cubic; bcc (100)[010] and
        (110)[1-10], fcc (100)[010] and (111)[1-10]).
    """
    from .crystal import ground_state

    material = {"symbol": symbol, "structure": structure or ground_state(symbol)}
    props = _all_properties(bool(quick), lattice_constant, material)
    if names is not None:
        by_name = {p.name: p for p in props}
        names = [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UnknownNameError(f"unknown properties {missing}; available: {list(by_name)}")
        props = [by_name[n] for n in names]
    used = set()
    out = []
    for prop in props:
        mine = {k: v for k, v in overrides.items() if k in _settable(prop)}
        used.update(mine)
        out.append(_override(prop, mine))
    unused = set(overrides) - used
    if unused:
        raise InputError(f"no selected property accepts {sorted(unused)}")
    return out


def tungsten_suite(names: Iterable[str] | None = None, quick: bool = False, **overrides) -> list[Property]:
    """The tungsten property benchmark: :func:`suite` for bcc W with the cells fixed at the
    teacher's lattice constant :data:`~.base.TUNGSTEN_A0` (the numbers of the README).

    ``overrides`` as for :func:`suite`, e.g. ``fmax=1e-2`` or ``lattice_constant=3.16``.
    """
    lattice = overrides.pop("lattice_constant", TUNGSTEN_A0)
    return suite("W", "bcc", names, quick, lattice_constant=lattice, **overrides)


def run_suite(
    properties: Sequence[Property],
    calc: Calculator,
    names: Iterable[str] | None = None,
    on_error: str = "raise",
    progress: bool = False,
) -> dict[str, tuple[float, float]]:
    """Evaluate properties with one calculator.

    Parameters
    ----------
    properties
        Properties to evaluate (e.g. :func:`tungsten_suite`).
    calc
        Any ASE calculator.
    names
        Subset of ``properties`` to run, by name (default: all).
    on_error
        ``"raise"`` or ``"nan"``: record NaN (and warn) when a property fails, e.g. a
        :class:`~.base.RelaxationError` of an unstable structure.
    progress
        Log one line per property as it finishes (``logging`` INFO on ``uqcalc.properties``).

    Returns
    -------
    dict
        ``name -> (value, wall time in s)``, in evaluation order.
    """
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
    if names is not None:
        wanted = set([names] if isinstance(names, str) else names)
        unknown = wanted - {p.name for p in properties}
        if unknown:
            raise UnknownNameError(f"unknown properties {sorted(unknown)}")
        properties = [p for p in properties if p.name in wanted]
    results: dict[str, tuple[float, float]] = {}
    for prop in properties:
        start = time.perf_counter()
        try:
            value = prop.evaluate(calc)
        except Exception as exc:
            if on_error == "raise":
                raise
            warnings.warn(f"{prop.name} failed: {exc}", RuntimeWarning, stacklevel=2)
            value = float("nan")
        results[prop.name] = (value, time.perf_counter() - start)
        if progress:
            logger.info("%36s = %-24s %-10s %8.2f s", prop.name, value, prop.unit, results[prop.name][1])
    return results
