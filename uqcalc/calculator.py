"""ASE calculators for linear-in-parameter potentials and their parameter ensembles.

:class:`LinearPotential` is a plain ASE calculator for one parameter vector.
:class:`UQCalculator` evaluates a whole :class:`~uqcalc.ensemble.ParameterEnsemble`
at the cost of one descriptor evaluation: the design rows of a structure are
computed once and every prediction (point estimate, members, std, bounds) is a
matrix product with them. :class:`CommitteeCalculator` (``UQCalculator.from_calculators``)
gives the same result keys for a committee of arbitrary ASE calculators.

Result keys
-----------
Standard keys hold the point estimate: ``energy``, ``free_energy`` (= energy),
``forces`` (N, 3), ``stress`` (6,) and ``energies`` (N,). For ``p`` in
``energy, forces, stress, energies`` the uncertainty keys are

* ``p_std`` -- standard deviation, same shape as ``p``;
* ``p_lower``, ``p_upper`` -- bounds, same shape as ``p``;
* ``p_ensemble`` -- member predictions, member axis first, ``(M,) + shape``.

Structure
---------
All calculators share one cache policy (:mod:`uqcalc._calcbase`, on ASE's
``BaseCalculator``), the uncertainty calculators one result assembler
(:mod:`uqcalc._results`) and a :class:`ThresholdMonitor` (:mod:`uqcalc._monitor`)
for ``threshold=`` / ``on_exceed=``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import numpy as np
from ase.calculators.calculator import BaseCalculator

from ._calcbase import CachedCalculator
from ._committee import CommitteeCalculator
from ._monitor import (
    OnExceed,
    ThresholdMonitor,
    UncertaintyExceeded,
    UncertaintyWarning,
)
from ._results import POINT_KEYS, UNCERTAINTY_KEYS, UncertaintyCalculator, store_block
from .extrapolation import LeverageGate
from .descriptors import Descriptor, from_spec
from .descriptors.base import Rows
from .errors import FileFormatError
from .ensemble import ParameterEnsemble

__all__ = [
    "POINT_KEYS",
    "UNCERTAINTY_KEYS",
    "CommitteeCalculator",
    "LinearPotential",
    "ThresholdMonitor",
    "UQCalculator",
    "UncertaintyExceeded",
    "UncertaintyWarning",
    "save_model",
]

_MODEL_KEY = "uqcalc_model"  # metadata entry written by save_model
_MODEL_SCHEMA = 1


# --------------------------------------------------------------------------- one vector


class LinearPotential(CachedCalculator):
    """ASE calculator for a linear model with one parameter vector.

    ``E = rows.energy @ theta + ref_energy`` and likewise forces, stress and
    per-atom energies (see :class:`~uqcalc.descriptors.Rows`).

    Parameters
    ----------
    descriptor : Descriptor
        Feature map giving the design rows.
    theta : (P,) array_like
        Parameters.
    per_atom : bool, default False
        Always compute per-atom energies. Otherwise they are computed only when
        ``energies`` is requested (per-atom rows cost extra for SNAP).

    Notes
    -----
    ``stress`` (ASE Voigt order and sign, eV/Å^3) exists only for cells periodic
    in all three directions; asking for it otherwise raises
    :class:`~ase.calculators.calculator.PropertyNotImplementedError`.

    One descriptor evaluation per geometry; ``energies`` asked after a
    calculation without per-atom rows costs one more (see
    :func:`uqcalc._calcbase.plan`). ``parameters`` (and so ``todict()`` and
    ase.db rows) hold the descriptor spec, not the vector.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from uqcalc.descriptors import PairBasis
    >>> d = PairBasis(n_basis=4)
    >>> atoms = bulk("W", "bcc", a=3.16, cubic=True)
    >>> atoms.calc = LinearPotential(d, np.ones(d.n_params))
    >>> atoms.get_forces().shape
    (2, 3)
    """

    implemented_properties: ClassVar[list[str]] = list(POINT_KEYS)

    def __init__(self, descriptor: Descriptor, theta, per_atom: bool = False) -> None:
        theta = np.array(theta, dtype=float)
        if theta.shape != (descriptor.n_params,):
            raise ValueError(f"theta must have shape ({descriptor.n_params},), got {theta.shape}")
        self.descriptor = descriptor.with_reference_theta(theta)
        self.theta = theta
        self.per_atom = bool(per_atom)
        # the descriptor spec (not the vector) keeps todict()/ase.db rows small and JSON-able
        super().__init__(parameters={"descriptor": descriptor.spec()})

    def _evaluate(self, blocks: tuple[str, ...]) -> None:
        out = self.descriptor.rows(self.atoms, per_atom="energies" in blocks).evaluate(self.theta)
        for name in blocks:
            if name in out:
                store_block(self.results, name, out[name])


# --------------------------------------------------------------------------- linear ensemble


class UQCalculator(UncertaintyCalculator):
    """ASE calculator giving a point estimate and its uncertainty from a parameter ensemble.

    Parameters
    ----------
    descriptor : Descriptor
        Feature map of the linear model.
    ensemble : ParameterEnsemble
        Point estimate ``theta`` and its spread (members, box, covariance).
    bounds : {"exact", "sampled", "gaussian"}, default "exact"
        How ``<p>_lower``/``<p>_upper`` are formed (see
        :meth:`ParameterEnsemble.predict`): ``"exact"`` takes the extremes over
        the corners of the ensemble's box (POPS hypercube), falling back to
        ``"sampled"`` (min/max over members) when the ensemble has no box, and
        to ``"gaussian"`` (mean ± z·std) when it has neither box nor members.
    per_atom : bool, default False
        Always compute ``energies*``. Otherwise per-atom rows (extra cost for
        SNAP) are evaluated only when an ``energies*`` key is requested.
    z : float, default 2.0
        Multiplier of std for gaussian bounds.
    include_noise : bool, default False
        Add the ensemble's observation-noise variance to std² (predictive
        rather than parameter uncertainty; see :meth:`ParameterEnsemble.predict`).
    threshold : dict, optional
        Limits on :meth:`uncertainty_metrics`, e.g. ``{"energy_std_per_atom": 0.01,
        "forces_std": 0.5}`` (eV, eV/Å). Off by default.
    on_exceed : {"warn", "raise"} or callable, default "warn"
        What happens when a threshold is exceeded after a calculation: an
        :class:`UncertaintyWarning`, an :class:`UncertaintyExceeded` error, or
        ``on_exceed(calc, atoms, metric, value, limit)``. Both are held by
        ``calc.monitor`` (a :class:`ThresholdMonitor`).
    extrapolation : LeverageGate, optional
        Feature-space leverage gate of the training data
        (:meth:`uqcalc.extrapolation.LeverageGate.from_design`): every energy evaluation
        stores ``energy_extrapolation`` (the grade, > 1 beyond every training structure), and
        a grade above ``extrapolation.limit`` is acted on as ``on_exceed`` says.

    Notes
    -----
    *Point estimate.* ``energy``, ``forces``, ``stress``, ``energies`` use
    ``ensemble.theta``. This is not the member mean in general:
    ``energy_ensemble.mean(0)`` is the prediction of ``members.mean(0)``, which
    differs from ``theta`` for POPS (θ̄ is the least-squares fit, the members are
    pointwise-optimal corrections) or a finite posterior sample.

    *Std convention.* ``<p>_std`` is :meth:`ParameterEnsemble.predict`'s std,
    ``sqrt(x Σ xᵀ)``, with Σ the ensemble's parameter covariance when it has one
    and otherwise the members' sample covariance (around their own mean,
    ddof=1), i.e. exactly ``energy_ensemble.std(0, ddof=1)`` for a member-only
    ensemble. It is NaN for an ensemble with one member and no covariance.

    *Cost.* Every key for a geometry comes from one call of
    ``descriptor.rows`` and one product of the stacked rows (energy, 3N force
    rows, 6 stress rows, N per-atom rows) with the ensemble. ASE requests one
    property at a time; later requests for the same geometry are served from
    ``results``. The only exception: ``energies*`` requested after a
    calculation without per-atom rows costs one more descriptor evaluation
    (with per-atom rows), after which nothing is recomputed. A failed
    evaluation leaves ``results`` empty. This is the cache policy of every
    uqcalc calculator (:func:`uqcalc._calcbase.plan`).

    ``stress*`` exist only for cells periodic in all three directions.

    Examples
    --------
    >>> calc = UQCalculator(descriptor, ensemble)          # doctest: +SKIP
    >>> atoms.calc = calc                                  # doctest: +SKIP
    >>> e = atoms.get_potential_energy()                   # doctest: +SKIP
    >>> e_std = calc.get_property("energy_std", atoms)     # no new evaluation  # doctest: +SKIP
    """

    def __init__(
        self,
        descriptor: Descriptor,
        ensemble: ParameterEnsemble,
        bounds: str = "exact",
        per_atom: bool = False,
        z: float = 2.0,
        include_noise: bool = False,
        threshold: Mapping[str, float] | None = None,
        on_exceed: OnExceed = "warn",
        extrapolation: LeverageGate | None = None,
    ) -> None:
        if ensemble.n_params != descriptor.n_params:
            raise ValueError(
                f"ensemble has {ensemble.n_params} parameters, descriptor {descriptor.n_params}"
            )
        if extrapolation is not None:
            if extrapolation.gram_inverse.shape != (descriptor.n_params,) * 2:
                raise ValueError(f"extrapolation gate is for {extrapolation.gram_inverse.shape[0]} parameters, "
                                 f"descriptor has {descriptor.n_params}")
            threshold = {"energy_extrapolation": extrapolation.limit, **dict(threshold or {})}
            # only a gated calculator has the grade to give
            self.implemented_properties = [*type(self).implemented_properties, "energy_extrapolation"]
        self.extrapolation = extrapolation
        if bounds not in ("exact", "sampled", "gaussian"):
            raise ValueError(f"bounds must be 'exact', 'sampled' or 'gaussian', got {bounds!r}")
        has_cov = ensemble.covariance is not None or ensemble.n_members >= 2
        if bounds == "sampled" and ensemble.n_members == 0:
            raise ValueError("bounds='sampled' needs an ensemble with members")
        if bounds == "gaussian" and not has_cov:
            raise ValueError("bounds='gaussian' needs a covariance or at least 2 members")
        if not (ensemble.has_box or ensemble.n_members or has_cov):
            raise ValueError("the ensemble carries no uncertainty (no box, members or covariance)")
        if include_noise and ensemble.noise_variance is None:
            raise ValueError("include_noise=True but the ensemble has no noise_variance")
        self.descriptor = descriptor.with_reference_theta(ensemble.theta)
        self.ensemble = ensemble
        self.bounds = bounds
        self.per_atom = bool(per_atom)
        self.z = float(z)
        self.include_noise = bool(include_noise)
        parameters = {
            "descriptor": descriptor.spec(),
            "bounds": bounds,
            "effective_bounds": self.effective_bounds,
            "n_members": ensemble.n_members,
        }
        super().__init__(threshold, on_exceed, parameters)

    @property
    def effective_bounds(self) -> str:
        """The bounds mode actually used (after the fallbacks described in the class notes)."""
        ens = self.ensemble
        if self.bounds == "exact" and not ens.has_box:
            return "sampled" if ens.n_members else "gaussian"
        return self.bounds

    def _assemble(self, blocks: tuple[str, ...]) -> None:
        """Fill the keys of ``blocks`` from one descriptor evaluation (see the class notes)."""
        rows = self.descriptor.rows(self.atoms, per_atom="energies" in blocks)
        self._predict(rows, blocks)
        if self.extrapolation is not None and "energy" in blocks:
            self.results["energy_extrapolation"] = self.extrapolation.grade(rows.energy, rows.n_atoms)

    def _predict(self, rows: Rows, blocks: Sequence[str]) -> None:
        """Fill ``results`` for ``blocks`` (those ``rows`` has) from the design rows of one structure."""
        n = rows.n_atoms
        P = self.descriptor.n_params
        parts = {
            "energy": (rows.energy[None, :], np.atleast_1d(rows.ref_energy), ()),
            "forces": (rows.forces.reshape(3 * n, P), rows.ref_forces.ravel(), (n, 3)),
        }
        if rows.stress is not None:
            parts["stress"] = (rows.stress, rows.ref_stress, (6,))
        if rows.per_atom is not None:
            parts["energies"] = (rows.per_atom, rows.ref_per_atom, (n,))
        # blocks the descriptor does not differentiate: the reference part is the point
        # estimate (the model's own forces at fixed parameters) and there is no uncertainty
        fixed = {"forces": "force", "stress": "stress"}
        for b in [b for b in blocks if b in parts and fixed.get(b, "energy") not in rows.kinds]:
            _, ref, shape = parts.pop(b)
            nan = np.full(shape, np.nan)
            store_block(self.results, b, ref.reshape(shape), nan, nan, nan, None)
        names = [b for b in blocks if b in parts]
        ens, mode = self.ensemble, self.effective_bounds
        M = ens.n_members
        # One stacked matrix [X | ref] for all blocks: the ensemble's chunking and the BLAS
        # call see all rows at once. Sampled bounds need the member predictions inside
        # predict anyway, so they are taken from there; otherwise [members | 1] @ [X | ref]ᵀ
        # is formed here: it comes out member axis first with the reference part already
        # added, with no transposed copy and no second pass over the (M, rows) array
        # (for M = 1000 and 1000 atoms each such pass costs a fifth of the product).
        sizes = [parts[b][0].shape[0] for b in names]
        Xr = np.empty((sum(sizes), P + 1))
        start = 0
        for b, size in zip(names, sizes):
            Xr[start : start + size, :P] = parts[b][0]
            Xr[start : start + size, P] = parts[b][1]
            start += size
        X, ref = Xr[:, :P], Xr[:, P]
        own = M > 0 and mode != "sampled"
        pred = ens.predict(
            X, bounds=mode, include_noise=self.include_noise, z=self.z,
            return_members=M > 0 and not own,
        )
        if own:
            Y = self._augmented_members() @ Xr.T
        else:
            Y = pred.members
            if Y is not None:
                Y += ref
        start = 0
        for b in names:
            stop = start + parts[b][0].shape[0]
            shape, sl, r = parts[b][2], slice(start, stop), ref[start:stop]
            store_block(
                self.results,
                b,
                (pred.mean[sl] + r).reshape(shape),
                pred.std[sl].reshape(shape),
                (pred.lower[sl] + r).reshape(shape),
                (pred.upper[sl] + r).reshape(shape),
                None if Y is None else Y[:, sl].reshape((M,) + shape),  # a view, no copy
            )
            start = stop

    def _augmented_members(self) -> np.ndarray:
        """``[members | 1]`` (M, P + 1), cached for the current ensemble object."""
        cached = getattr(self, "_aug", None)
        if cached is None or cached[0] is not self.ensemble.members:
            members = self.ensemble.members
            aug = np.empty((members.shape[0], members.shape[1] + 1))
            aug[:, :-1], aug[:, -1] = members, 1.0
            self._aug = cached = (members, aug)
        return cached[1]

    # -- other views of the same model ------------------------------------------------------

    def point_estimate(self, **kwargs) -> LinearPotential:
        """A :class:`LinearPotential` for ``ensemble.theta`` (sharing the descriptor).

        Keyword arguments go to :class:`LinearPotential` (``per_atom`` defaults to this calculator's).
        """
        kwargs.setdefault("per_atom", self.per_atom)
        return LinearPotential(self.descriptor, self.ensemble.theta, **kwargs)

    def members(self) -> Iterator[LinearPotential]:
        """One :class:`LinearPotential` per ensemble member, in member order.

        The potentials share this calculator's descriptor (for SNAP, one
        LAMMPS instance): use them one after the other, not from threads.
        """
        for theta in self.ensemble.members:
            yield LinearPotential(self.descriptor, theta, per_atom=self.per_atom)

    @classmethod
    def from_calculators(cls, calculators: Sequence[BaseCalculator], **kwargs) -> CommitteeCalculator:
        """The same result keys for a committee of arbitrary ASE calculators.

        See :class:`CommitteeCalculator` (point estimate = committee mean,
        bounds = min/max, std with ddof=1).
        """
        return CommitteeCalculator(calculators, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> UQCalculator:
        """Rebuild a calculator from a file written by :func:`save_model`.

        Keyword arguments override the calculator options stored in the file
        (``bounds``, ``per_atom``, ...).
        """
        try:
            ensemble = ParameterEnsemble.load(path)
        except FileFormatError as err:
            raise FileFormatError(f"{path} is not a uqcalc model ({err}); write models with uqcalc.save_model "
                                  "or `uqcalc fit`") from None
        spec = ensemble.metadata.get("descriptor")
        if not spec:
            raise FileFormatError(f"{path}: the ensemble has no descriptor spec (not a model file); "
                                  "write it with uqcalc.save_model")
        options = dict(ensemble.metadata.get(_MODEL_KEY, {}).get("calculator", {}))
        options.update(kwargs)
        return cls(from_spec(spec), ensemble, **options)


def save_model(
    path: str | os.PathLike, descriptor: Descriptor, ensemble: ParameterEnsemble, **calculator_options
) -> None:
    """Write a descriptor and its ensemble to one file that :meth:`UQCalculator.load` reads.

    The file is the ensemble's ``.npz`` (no pickle, checksummed); the
    descriptor's JSON spec goes into the ensemble metadata under
    ``"descriptor"`` (where the backends already record it) and
    ``calculator_options`` (e.g. ``bounds="sampled"``) under ``"uqcalc_model"``.
    The ensemble passed in is not modified.

    Raises
    ------
    ValueError
        If the sizes disagree, if the ensemble records a different descriptor,
        or if an option is not JSON-able.
    """
    if ensemble.n_params != descriptor.n_params:
        raise ValueError(f"ensemble has {ensemble.n_params} parameters, descriptor {descriptor.n_params}")
    spec = descriptor.spec()
    recorded = ensemble.metadata.get("descriptor")
    if recorded and json.dumps(recorded, sort_keys=True) != json.dumps(spec, sort_keys=True):
        raise ValueError(
            f"the ensemble was fitted with descriptor {recorded}, not {spec}; "
            "pass the descriptor it was fitted with"
        )
    UQCalculator(descriptor, ensemble, **calculator_options)  # validate the options now, not at load
    try:
        json.dumps(calculator_options)
    except TypeError as err:
        raise ValueError(f"calculator options must be JSON-able: {err}") from err
    out = copy.copy(ensemble)  # shares the arrays, not the metadata dict
    out.metadata = {
        **ensemble.metadata,
        "descriptor": spec,
        _MODEL_KEY: {"schema": _MODEL_SCHEMA, "calculator": calculator_options},
    }
    out.save(path)


