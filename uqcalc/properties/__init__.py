"""Material properties as objects (``name``, ``unit``, ``evaluate(calc)``, ``states()``).

Modules: :mod:`.bulk` (a0, E_coh, B, C_ij, shear moduli), :mod:`.phases` (fcc, hcp, A15, sc,
diamond, C15 relative to bcc), :mod:`.surfaces` (γ of six low-index surfaces), :mod:`.fracture`
(Griffith K_Ic), :mod:`.defects` (vacancy, divacancy, interstitials), :mod:`.faults`
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
import importlib
import time
import warnings
from collections.abc import Iterable, Sequence

from ase.calculators.calculator import Calculator

from . import bulk, fracture, phases, surfaces
from .base import TUNGSTEN_A0, Property, RelaxationError, State, StateProperty, relax
from .bulk import (
    BulkModulus,
    CohesiveEnergy,
    ElasticConstant,
    LatticeConstant,
    ShearModulus,
)
from .fracture import GriffithToughness
from .phases import HcpAxialRatio, PhaseEnergy
from .surfaces import SurfaceEnergy

__all__ = [
    "TUNGSTEN_A0",
    "BulkModulus",
    "CohesiveEnergy",
    "ElasticConstant",
    "GriffithToughness",
    "HcpAxialRatio",
    "LatticeConstant",
    "PhaseEnergy",
    "Property",
    "RelaxationError",
    "ShearModulus",
    "State",
    "StateProperty",
    "SurfaceEnergy",
    "relax",
    "run_suite",
    "tungsten_suite",
]

# Modules of the suite, in table order. defects/faults/migration are written separately; each
# is optional here so that this package imports while one of them is missing or being changed.
_SUITE_MODULES = ["bulk", "phases", "defects", "migration", "surfaces", "faults", "fracture"]
_OPTIONAL = ("defects", "faults", "migration")
_modules = {"bulk": bulk, "phases": phases, "surfaces": surfaces, "fracture": fracture}

for _name in _OPTIONAL:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # only a missing module is tolerated, not a broken one
        if _exc.name != f"{__name__}.{_name}":
            raise
        continue
    _modules[_name] = _module
    for _symbol in getattr(_module, "__all__", []):
        obj = getattr(_module, _symbol)
        if isinstance(obj, type) and issubclass(obj, Property) and not _symbol.startswith("_"):
            globals()[_symbol] = obj
            __all__.append(_symbol)


def _fallback_suite(module_name: str, quick: bool) -> list[Property]:
    """Default entries of a module that does not (yet) provide ``suite(quick)``."""
    m = _modules[module_name]
    if module_name == "defects":
        size = {"size": 3} if quick else {}
        return [
            m.VacancyFormationEnergy(**size),
            m.VacancyRelaxationVolume(**size),
            m.DivacancyBindingEnergy(neighbor=1, **size),
            m.DivacancyBindingEnergy(neighbor=2, **size),
            *(m.InterstitialFormationEnergy(configuration=c, **size) for c in m.SIA_CONFIGURATIONS),
        ]
    if module_name == "faults":
        return [
            m.UnstableStackingFaultEnergy(plane=plane, **({"layers": layers} if quick else {}))
            for plane, layers in (("110", 12), ("112", 18))
        ]
    if module_name == "migration":
        return [m.VacancyMigrationEnergy(**({"size": 3} if quick else {}))]
    return []


def _all_properties(quick: bool) -> list[Property]:
    out: list[Property] = []
    for name in _SUITE_MODULES:
        if name not in _modules:
            continue
        module = _modules[name]
        out.extend(module.suite(quick) if hasattr(module, "suite") else _fallback_suite(name, quick))
    return out


def _override(prop: Property, overrides: dict) -> Property:
    if not overrides:
        return prop
    if dataclasses.is_dataclass(prop):
        return dataclasses.replace(prop, **overrides)
    prop = copy.copy(prop)
    for key, value in overrides.items():
        setattr(prop, key, value)
    return prop


def _settable(prop: Property) -> set[str]:
    if dataclasses.is_dataclass(prop):
        return {f.name for f in dataclasses.fields(prop) if f.init and f.name not in ("name",)}
    return {k for k in vars(prop) if not k.startswith("_")}


def tungsten_suite(names: Iterable[str] | None = None, quick: bool = False, **overrides) -> list[Property]:
    """The tungsten property benchmark with its default settings.

    Parameters
    ----------
    names
        Property names to keep, in the order given (default: all, in table order:
        bulk, phases, point defects, migration, surfaces, stacking faults, fracture).
    quick
        Small cells and thin slabs, for tests and smoke runs (bulk and phase cells are
        minimal already and do not change).
    **overrides
        Settings applied to every selected property that has a field of that name, e.g.
        ``fmax=1e-2`` or ``lattice_constant=3.16``. A key that no selected property accepts
        raises ``ValueError``.

    Returns
    -------
    list of Property
        New objects; changing them does not change later suites.
    """
    props = _all_properties(bool(quick))
    if names is not None:
        by_name = {p.name: p for p in props}
        names = [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in by_name]
        if missing:
            raise KeyError(f"unknown properties {missing}; available: {list(by_name)}")
        props = [by_name[n] for n in names]
    used = set()
    out = []
    for prop in props:
        mine = {k: v for k, v in overrides.items() if k in _settable(prop)}
        used.update(mine)
        out.append(_override(prop, mine))
    unused = set(overrides) - used
    if unused:
        raise ValueError(f"no selected property accepts {sorted(unused)}")
    return out


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
        Print one line per property as it finishes.

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
            raise KeyError(f"unknown properties {sorted(unknown)}")
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
            print(f"{prop.name:>36s} = {value!s:<24} {prop.unit:<10s} {results[prop.name][1]:8.2f} s", flush=True)
    return results
