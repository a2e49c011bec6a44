"""The cache policy every uqcalc calculator shares, on ASE's lean ``BaseCalculator``.

A uqcalc calculator evaluates a structure in *blocks*: ``energy`` and ``forces``
(always together), ``stress`` (where the cell allows it) and ``energies`` (per-atom
energies, which cost extra for SNAP and are made only when asked for or
``per_atom`` is set). :func:`plan` decides which blocks a ``calculate`` call must
(re)compute; :class:`CachedCalculator` applies it, so a subclass only says how to
evaluate blocks (``_evaluate``) and when stress cannot be given (``_stress_problem``).

The policy:

* new geometry (``system_changes``) or nothing computed: every block, results
  cleared *first*, so a failed evaluation leaves no stale keys behind;
* same geometry, per-atom energies asked for but not computed: only ``energies``,
  the other keys stay (one more evaluation, after which nothing is recomputed);
* otherwise nothing: ``results`` already hold every key this geometry can give.

This module imports only ASE and numpy, so both the calculators
(:mod:`uqcalc.calculator`) and the data layer (:mod:`uqcalc.datasets`) can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import (
    BaseCalculator,
    Parameters,
    PropertyNotImplementedError,
    all_changes,
)

__all__ = ["BLOCKS", "CachedCalculator", "plan", "store_point"]

BLOCKS = ("energy", "forces", "stress", "energies")
"""Evaluation blocks in the order calculators fill them."""


def _block_of(key: str) -> str:
    """The block a result key belongs to: ``forces_std`` -> ``forces``, ``free_energy`` -> ``energy``."""
    if key == "free_energy":
        return "energy"
    return key.split("_", 1)[0]


def plan(
    properties: Iterable[str],
    system_changes: Sequence[str],
    results: Mapping[str, Any],
    *,
    per_atom: bool = False,
    stress: bool = True,
) -> tuple[str, ...]:
    """Blocks a calculation must (re)compute, given what ``results`` already hold.

    Parameters
    ----------
    properties : iterable of str
        Keys asked for (ASE passes one at a time).
    system_changes : sequence of str
        What changed since the cached results were computed (ASE's ``check_state``).
    results : mapping
        The calculator's current results.
    per_atom : bool, default False
        Per-atom energies are part of every full evaluation, asked for or not.
    stress : bool, default True
        Whether stress can be computed for this geometry.

    Returns
    -------
    tuple of str
        A subset of :data:`BLOCKS`, in that order; empty when the cache covers
        the request. It contains ``"energy"`` exactly when it is a full
        evaluation (the caller then clears ``results`` before evaluating).

    Examples
    --------
    >>> plan(["energy"], ["positions"], {})
    ('energy', 'forces', 'stress')
    >>> plan(["energies_std"], [], {"energy": -1.0, "forces": None})
    ('energies',)
    >>> plan(["forces"], [], {"energy": -1.0, "forces": None})
    ()
    """
    want_per_atom = per_atom or any(_block_of(p) == "energies" for p in properties)
    if system_changes or "energy" not in results:
        blocks = ["energy", "forces"] + ["stress"] * stress + ["energies"] * want_per_atom
        return tuple(blocks)
    if want_per_atom and "energies" not in results:
        return ("energies",)
    return ()


def store_point(results: dict[str, Any], name: str, value) -> None:
    """Put one block's point value into ``results``: energy as a float, ``free_energy`` = energy.

    A linear model at zero electronic temperature has no entropy term, so the
    free energy ASE's force-consistent optimisers ask for is the energy.
    """
    if name == "energy":
        value = float(value)
        results["free_energy"] = value
    results[name] = value


class CachedCalculator(BaseCalculator):
    """ASE ``BaseCalculator`` that computes by blocks under :func:`plan`'s cache policy.

    ``BaseCalculator`` rather than ``Calculator``: these potentials are pure
    in-process evaluations and need none of ``Calculator``'s directory, label,
    restart-file or ``set()`` machinery. What ASE clients use is all here:
    ``get_property`` (and the ``get_*`` methods), ``check_state``,
    ``calculation_required``, ``results``, ``parameters``, :meth:`todict`
    (ase.db rows, trajectories), :meth:`reset` and :meth:`export_properties`
    (``atoms.get_properties``).

    Subclasses implement ``_evaluate(blocks)``, which fills ``self.results`` for
    those blocks of ``self.atoms``, and may override ``_stress_problem``.

    Parameters
    ----------
    parameters : mapping, optional
        What describes the model (JSON-able): kept in ``parameters`` and
        returned by :meth:`todict`.
    """

    per_atom: bool = False
    """Compute per-atom energies in every full evaluation, not only when asked for."""

    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        # Parameters (a dict with attribute access), as ase.calculators.calculator.Calculator has
        self.parameters = Parameters(parameters or {})

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """Compute whatever blocks the cache does not cover (see :func:`plan`).

        Raises
        ------
        PropertyNotImplementedError
            If a ``stress*`` key is asked for a geometry that has no stress.
        """
        if atoms is not None:
            # a copy also when get_property made one: calculate() is called directly too
            # (atoms.get_properties, benchmarks) and must leave self.atoms describing results
            self.atoms = atoms.copy()
        problem = self._stress_problem(self.atoms)
        if problem is not None and any(_block_of(p) == "stress" for p in properties):
            raise PropertyNotImplementedError(problem)
        stress = problem is None
        blocks = plan(properties, system_changes, self.results, per_atom=self.per_atom, stress=stress)
        if not blocks:
            return
        if "energy" in blocks:
            self.results = {}  # cleared first: nothing stale survives a failed evaluation
        self._evaluate(blocks)

    def _evaluate(self, blocks: tuple[str, ...]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stress_problem(self, atoms: Atoms) -> str | None:
        """Why stress cannot be given for ``atoms`` (``None``: it can).

        Default: stress needs a cell periodic in all three directions.
        """
        if np.all(atoms.pbc):
            return None
        return f"stress needs a cell periodic in all three directions (pbc={atoms.pbc.tolist()})"

    def reset(self) -> None:
        """Forget the cached structure and results."""
        self.atoms = None
        self.results = {}

    def todict(self) -> dict[str, Any]:
        """The model description (``parameters``), as ase.db and trajectories store it."""
        return dict(self.parameters)

    def export_properties(self):
        """Standard results as ASE ``Properties`` (``atoms.get_properties``).

        ``Properties`` accepts only ASE's own output names; other keys (the
        uncertainty keys) stay available through ``results`` and ``get_property``.
        """
        from ase.outputs import Properties, all_outputs

        return Properties({k: v for k, v in self.results.items() if k in all_outputs})
