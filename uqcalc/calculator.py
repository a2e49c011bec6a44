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
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import (
    BaseCalculator,
    Calculator,
    PropertyNotImplementedError,
    all_changes,
)

from .descriptors import Descriptor, from_spec
from .descriptors.base import Rows
from .ensemble import ParameterEnsemble

__all__ = [
    "POINT_KEYS",
    "UNCERTAINTY_KEYS",
    "CommitteeCalculator",
    "LinearPotential",
    "UQCalculator",
    "UncertaintyExceeded",
    "UncertaintyWarning",
    "save_model",
]

POINT_KEYS = ("energy", "free_energy", "forces", "stress", "energies")
_UQ_PROPS = ("energy", "forces", "stress", "energies")
_SUFFIXES = ("std", "lower", "upper", "ensemble")
UNCERTAINTY_KEYS = tuple(f"{p}_{s}" for p in _UQ_PROPS for s in _SUFFIXES)

_MODEL_KEY = "uqcalc_model"  # metadata entry written by save_model
_MODEL_SCHEMA = 1


class UncertaintyWarning(UserWarning):
    """An uncertainty exceeded the threshold given to a calculator."""


class UncertaintyExceeded(RuntimeError):
    """Raised with ``on_exceed="raise"`` when an uncertainty exceeds its threshold."""


def _wants_per_atom(properties: Iterable[str], per_atom: bool) -> bool:
    return per_atom or any(p == "energies" or p.startswith("energies_") for p in properties)


def _check_stress(atoms: Atoms, properties: Iterable[str]) -> bool:
    """Whether stress can be given; raise if it was asked for a non-3-D-periodic cell."""
    periodic = bool(np.all(atoms.pbc))
    if not periodic and any(p == "stress" or p.startswith("stress_") for p in properties):
        raise PropertyNotImplementedError(
            f"stress needs a cell periodic in all three directions (pbc={atoms.pbc.tolist()})"
        )
    return periodic


# --------------------------------------------------------------------------- one vector


class LinearPotential(Calculator):
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
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    ``stress`` (ASE Voigt order and sign, eV/Å^3) exists only for cells periodic
    in all three directions; asking for it otherwise raises
    :class:`~ase.calculators.calculator.PropertyNotImplementedError`.

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
    _rows: Rows | None = None

    def __init__(self, descriptor: Descriptor, theta, per_atom: bool = False, **kwargs) -> None:
        theta = np.array(theta, dtype=float)
        if theta.shape != (descriptor.n_params,):
            raise ValueError(f"theta must have shape ({descriptor.n_params},), got {theta.shape}")
        self.descriptor = descriptor
        self.theta = theta
        self.per_atom = bool(per_atom)
        super().__init__(**kwargs)
        # descriptor spec (not the vector) keeps todict()/ase.db rows small and JSON-able
        self.parameters.update(descriptor=descriptor.spec())

    def reset(self) -> None:
        super().reset()
        self._rows = None

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """Energy, free energy, forces, stress (3-D periodic cells) and, if needed, per-atom energies."""
        super().calculate(atoms, properties, system_changes)
        _check_stress(self.atoms, properties)
        need_pa = _wants_per_atom(properties, self.per_atom)
        if not system_changes and self._rows is not None and (not need_pa or self._rows.per_atom is not None):
            return  # the cached results already hold everything this geometry can give
        self._rows, self.results = None, {}  # nothing stale survives a failed evaluation
        self._rows = self.descriptor.rows(self.atoms, per_atom=need_pa)
        out = self._rows.evaluate(self.theta)
        energy = float(out["energy"])
        self.results = {"energy": energy, "free_energy": energy, "forces": out["forces"]}
        if "stress" in out:
            self.results["stress"] = out["stress"]
        if "energies" in out:
            self.results["energies"] = out["energies"]


# --------------------------------------------------------------------------- shared UQ logic


class _UncertaintyCalculator(Calculator):
    """Result keys, threshold checks and result assembly shared by the UQ calculators."""

    implemented_properties: ClassVar[list[str]] = list(POINT_KEYS) + list(UNCERTAINTY_KEYS)
    _METRICS = (
        "energy_std", "energy_std_per_atom", "forces_std", "stress_std", "energies_std",
        "energy_range", "energy_range_per_atom", "forces_range", "stress_range", "energies_range",
    )

    def _init_threshold(self, threshold: dict[str, float] | None, on_exceed) -> None:
        threshold = dict(threshold or {})
        unknown = sorted(set(threshold) - set(self._METRICS))
        if unknown:
            raise ValueError(f"unknown threshold metric(s) {unknown}; known: {list(self._METRICS)}")
        for key, value in threshold.items():
            threshold[key] = float(value)
        if not (on_exceed in ("warn", "raise") or callable(on_exceed)):
            raise ValueError(f"on_exceed must be 'warn', 'raise' or a callable, got {on_exceed!r}")
        self.threshold = threshold
        self.on_exceed = on_exceed

    def uncertainty_metrics(self) -> dict[str, float]:
        """Scalar summaries of the current results that thresholds can refer to.

        ``<p>_std`` / ``<p>_range`` are the largest entry of ``<p>_std`` /
        ``<p>_upper - <p>_lower`` (for forces, the largest Cartesian component);
        ``energy_std_per_atom`` / ``energy_range_per_atom`` divide by the number
        of atoms. Only metrics whose keys are in the current results appear.
        """
        r = self.results
        out = {}
        n = len(self.atoms) if self.atoms is not None else 0
        for p in _UQ_PROPS:
            if f"{p}_std" in r and np.size(r[f"{p}_std"]):
                out[f"{p}_std"] = float(np.max(r[f"{p}_std"]))
            if f"{p}_upper" in r and np.size(r[f"{p}_upper"]):
                out[f"{p}_range"] = float(np.max(np.asarray(r[f"{p}_upper"]) - r[f"{p}_lower"]))
        if n:
            for m in ("std", "range"):
                if f"energy_{m}" in out:
                    out[f"energy_{m}_per_atom"] = out[f"energy_{m}"] / n
        return out

    def _check_thresholds(self, props: Sequence[str] = _UQ_PROPS) -> None:
        """Act on exceeded thresholds among the metrics of ``props`` (those just computed)."""
        if not self.threshold:
            return
        metrics = self.uncertainty_metrics()
        for key, limit in self.threshold.items():
            # a per-atom pass for the same geometry must not re-report energy/forces metrics
            value = metrics.get(key) if key.split("_")[0] in props else None
            # NaN (e.g. std of a one-member ensemble) never triggers: no information is no alarm
            if value is None or not value > limit:
                continue
            if callable(self.on_exceed):
                self.on_exceed(self, self.atoms, key, value, limit)
                continue
            msg = f"{type(self).__name__}: {key} = {value:.6g} exceeds the threshold {limit:.6g}"
            if self.on_exceed == "raise":
                raise UncertaintyExceeded(msg)
            warnings.warn(msg, UncertaintyWarning, stacklevel=4)

    def export_properties(self):
        """Standard results as ASE ``Properties`` (``atoms.get_properties``).

        ``Properties`` accepts only ASE's own output names; the uncertainty keys
        stay available through ``results`` and :meth:`get_property`.
        """
        from ase.outputs import Properties, all_outputs

        return Properties({k: v for k, v in self.results.items() if k in all_outputs})

    def _store(self, name, point, std, lower, upper, members) -> None:
        """Put one property's point estimate and uncertainty keys into ``results``."""
        if name == "energy":
            point, std, lower, upper = (float(v) for v in (point, std, lower, upper))
            self.results["free_energy"] = point
        self.results[name] = point
        self.results[f"{name}_std"] = std
        self.results[f"{name}_lower"] = lower
        self.results[f"{name}_upper"] = upper
        if members is not None:
            self.results[f"{name}_ensemble"] = members


# --------------------------------------------------------------------------- linear ensemble


class UQCalculator(_UncertaintyCalculator):
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
        ``on_exceed(calc, atoms, metric, value, limit)``.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

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
    (with per-atom rows), after which nothing is recomputed.

    ``stress*`` exist only for cells periodic in all three directions.

    Examples
    --------
    >>> calc = UQCalculator(descriptor, ensemble)          # doctest: +SKIP
    >>> atoms.calc = calc                                  # doctest: +SKIP
    >>> e = atoms.get_potential_energy()                   # doctest: +SKIP
    >>> e_std = calc.get_property("energy_std", atoms)     # no new evaluation  # doctest: +SKIP
    """

    _rows: Rows | None = None

    def __init__(
        self,
        descriptor: Descriptor,
        ensemble: ParameterEnsemble,
        bounds: str = "exact",
        per_atom: bool = False,
        z: float = 2.0,
        include_noise: bool = False,
        threshold: dict[str, float] | None = None,
        on_exceed: str | Callable = "warn",
        **kwargs,
    ) -> None:
        if ensemble.n_params != descriptor.n_params:
            raise ValueError(
                f"ensemble has {ensemble.n_params} parameters, descriptor {descriptor.n_params}"
            )
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
        self.descriptor = descriptor
        self.ensemble = ensemble
        self.bounds = bounds
        self.per_atom = bool(per_atom)
        self.z = float(z)
        self.include_noise = bool(include_noise)
        self._init_threshold(threshold, on_exceed)
        super().__init__(**kwargs)
        self.parameters.update(
            descriptor=descriptor.spec(),
            bounds=bounds,
            effective_bounds=self.effective_bounds,
            n_members=ensemble.n_members,
        )

    @property
    def effective_bounds(self) -> str:
        """The bounds mode actually used (after the fallbacks described in the class notes)."""
        ens = self.ensemble
        if self.bounds == "exact" and not ens.has_box:
            return "sampled" if ens.n_members else "gaussian"
        return self.bounds

    def reset(self) -> None:
        super().reset()
        self._rows = None

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """Fill every result key from one descriptor evaluation (see the class notes)."""
        super().calculate(atoms, properties, system_changes)
        _check_stress(self.atoms, properties)
        need_pa = _wants_per_atom(properties, self.per_atom)
        if system_changes or self._rows is None:
            # cleared first so that a failed evaluation leaves no stale rows behind
            self._rows, self.results = None, {}
            self._rows = self.descriptor.rows(self.atoms, per_atom=need_pa)
            blocks = ("energy", "forces", "stress", "energies")
        elif need_pa and self._rows.per_atom is None:
            # same geometry: only the per-atom block is new, the rest of results stays valid
            self._rows = self.descriptor.rows(self.atoms, per_atom=True)
            blocks = ("energies",)
        else:
            return  # results already hold every key this geometry can give
        self._predict(self._rows, blocks)
        self._check_thresholds(blocks)

    def _predict(self, rows: Rows, blocks: Sequence[str]) -> None:
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
            self._store(
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
        """A :class:`LinearPotential` for ``ensemble.theta`` (sharing the descriptor)."""
        return LinearPotential(self.descriptor, self.ensemble.theta, per_atom=self.per_atom, **kwargs)

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
        ensemble = ParameterEnsemble.load(path)
        spec = ensemble.metadata.get("descriptor")
        if not spec:
            raise ValueError(f"{path}: the ensemble has no descriptor spec; write it with uqcalc.save_model")
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


# --------------------------------------------------------------------------- committee


class CommitteeCalculator(_UncertaintyCalculator):
    """Uncertainty keys of :class:`UQCalculator` for a committee of arbitrary ASE calculators.

    Each member is evaluated in turn (no linearity is assumed), so a committee
    of M non-linear models costs M evaluations.

    Parameters
    ----------
    calculators : sequence of ASE calculators
        The committee (at least one).
    per_atom : bool, default False
        Always compute ``energies*``; otherwise only when requested.
    threshold, on_exceed
        As for :class:`UQCalculator`.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Point estimate = committee mean; ``<p>_lower``/``<p>_upper`` = min/max over
    members; ``<p>_std`` = the members' standard deviation with ddof=1 (NaN for
    one member). ``stress*`` are computed for 3-D periodic cells when every
    member implements stress.
    """

    # per-atom energies computed for the current geometry (None: nothing computed yet)
    _have_per_atom: bool | None = None

    def __init__(
        self,
        calculators: Sequence[BaseCalculator],
        per_atom: bool = False,
        threshold: dict[str, float] | None = None,
        on_exceed: str | Callable = "warn",
        **kwargs,
    ) -> None:
        calculators = list(calculators)
        if not calculators:
            raise ValueError("a committee needs at least one calculator")
        self.calculators = calculators
        self.per_atom = bool(per_atom)
        self._init_threshold(threshold, on_exceed)
        super().__init__(**kwargs)
        self.parameters.update(n_members=len(calculators))

    def reset(self) -> None:
        super().reset()
        self._have_per_atom = None

    def members(self) -> Iterator[BaseCalculator]:
        """The committee's calculators, in order."""
        yield from self.calculators

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """Evaluate every member and fill all result keys."""
        super().calculate(atoms, properties, system_changes)
        periodic = _check_stress(self.atoms, properties)
        need_pa = _wants_per_atom(properties, self.per_atom)
        if system_changes or self._have_per_atom is None:
            self.results, self._have_per_atom = {}, None
            names = ["energy", "forces"]
            if periodic and all("stress" in c.implemented_properties for c in self.calculators):
                names.append("stress")
            if need_pa:
                names.append("energies")
        elif need_pa and not self._have_per_atom:
            names = ["energies"]
        else:
            return
        values = {name: [] for name in names}
        for calc in self.calculators:
            for name in names:
                # each member caches its own results: one evaluation per member and geometry
                values[name].append(np.asarray(calc.get_property(name, self.atoms), dtype=float))
        for name, vals in values.items():
            stack = np.stack(vals)
            std = stack.std(axis=0, ddof=1) if len(stack) > 1 else np.full(stack.shape[1:], np.nan)
            self._store(name, stack.mean(axis=0), std, stack.min(axis=0), stack.max(axis=0), stack)
        self._have_per_atom = "energies" in self.results
        self._check_thresholds(names)
