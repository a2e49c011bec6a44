"""CoverageStudy: fit backends, propagate every property, score against references, checkpoint.

Every expensive step is stored in ``store`` as soon as it completes — the design matrices
(``DesignMatrix.build(cache_dir=...)``), each fitted ensemble (``ParameterEnsemble.save``),
each reference value and each (backend, property) result (one JSON, written atomically) —
under a key that hashes everything it depends on. A rerun after an interruption loads what is
stored and computes only the rest; a changed setting changes the key and is recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..design import DesignMatrix
from ..ensemble import ParameterEnsemble
from ._io import as_float, read_json, write_json
from .metrics import interval_errors
from .references import heldout_coverage
from .report import CoverageResults

__all__ = ["BackendSpec", "CoverageStudy"]


@dataclasses.dataclass
class BackendSpec:
    """A backend as a study runs it.

    Parameters
    ----------
    name : str
        Label in tables and file names.
    backend : Backend
        Unfitted estimator (``fit(design) -> ParameterEnsemble``).
    bounds : {"sampled", "box", "gaussian"}
        Property interval: min/max of the propagated members; ``"box"``: the same widened by
        the property at the two box corners that extremise its first-order term (a linear
        function over a box peaks at a corner; the term is exact from implicit/linear
        propagation, by central differences along the box axes otherwise), evaluated exactly
        there with every state re-relaxed (the expansion's prediction if that fails); box
        ensembles only, else as ``"sampled"``; ``"gaussian"``: value ± z·std of the members.
        Configuration level: the box-exact bounds for a POPS box, else the same choice.
    z : float
        Gaussian multiplier.
    chosen : str
        How the settings were chosen, printed in the table (e.g. "fixed in advance",
        "selected on held-out configurations"); never on the scored property references.
    """

    name: str
    backend: object
    bounds: str = "sampled"
    z: float = 2.0
    chosen: str = "fixed in advance"

    def settings(self) -> dict:
        params = self.backend.get_params() if hasattr(self.backend, "get_params") else {}
        return {k: v for k, v in params.items() if k not in ("progress", "store", "chunk_rows")}

    def key(self) -> str:
        return _digest({"class": type(self.backend).__name__, "params": self.settings(), "bounds": self.bounds, "z": self.z})


# bump when what a stored (backend, property) result means changes, so old checkpoints are recomputed
_RESULT_VERSION = 2


def _box_interval(lower: float, upper: float, box: dict) -> tuple[float, float]:
    """Member range widened by the property at the two first-order box corners.

    At each corner the exact value (states re-relaxed there) is used where it was computed,
    else the expansion's prediction: the expansion is least reliable that far from θ̄.
    """
    predicted = box.get("implicit_at_corners") or box.get("linear_at_corners") or [None, None]
    exact = box.get("exact_at_corners") or [None, None]
    at_corners = [e if e is not None else p for e, p in zip(exact, predicted)]
    at_corners = [float(v) for v in at_corners if v is not None and np.isfinite(v)]
    return min([lower, *at_corners]), max([upper, *at_corners])


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _prop_key(prop) -> str:
    # a property's settings are its dataclass fields; repr covers the rest
    fields = dataclasses.asdict(prop) if dataclasses.is_dataclass(prop) else repr(prop)
    return _digest({"class": type(prop).__name__, "fields": fields})


def _subsample(ensemble: ParameterEnsemble, n: int, seed: int = 0) -> ParameterEnsemble:
    """A seeded subset of ``n`` members (for the costly resample fallback), box and covariance kept."""
    if n is None or ensemble.n_members <= n:
        return ensemble
    idx = np.sort(np.random.default_rng(seed).choice(ensemble.n_members, n, replace=False))
    return ParameterEnsemble(
        ensemble.theta, ensemble.members[idx], axes=ensemble.axes, lower=ensemble.lower, upper=ensemble.upper,
        covariance=ensemble.covariance, noise_variance=ensemble.noise_variance,
        metadata={**ensemble.metadata, "subsampled_members": int(n)},
    )


class CoverageStudy:
    """Whose error bars can I trust? Backends × properties scored against references.

    Parameters
    ----------
    training : sequence of ase.Atoms or DesignMatrix
        Training frames (the design is built once and cached in ``store``) or a ready design.
    descriptor : Descriptor
        The student model's descriptor.
    backends : sequence of BackendSpec or Backend, or mapping name → Backend
        What to compare; plain backends get default :class:`BackendSpec` settings.
    properties : sequence of Property
        Scored properties (``name``, ``unit``, ``evaluate``, ``states``).
    reference : provider
        ``key`` and ``value(prop) -> (value, info)`` (:mod:`~uqcalc.coverage.references`).
    propagation : str or mapping, default "implicit"
        Method for every property, or ``{name: method}`` (missing names: ``"implicit"``).
    executor : concurrent.futures.Executor, optional
        Passed to :func:`uqcalc.propagate`.
    store : path, optional
        Checkpoint directory; None keeps nothing (every run recomputes).
    validation : sequence of ase.Atoms, optional
        Held-out frames for configuration-level coverage per group and row kind.
    progress : bool
        Print one line per completed step (and tqdm bars inside propagation).
    fallback : str or None, default "resample"
        Method used for a property the chosen method cannot propagate (no stationary states,
        or an error); the method actually used is recorded per result.
    resample_members : int, optional
        Members used by the ``resample`` fallback (a seeded subset; None: all). Resampling
        relaxes every member, so a 1000-member POPS ensemble costs 1000 relaxations per property;
        the subset size is recorded as ``n_members`` next to the sampled bounds.
    propagate_kwargs : mapping, optional
        Extra keyword arguments of :func:`uqcalc.propagate`.
    """

    def __init__(self, training, descriptor, backends, properties, reference, propagation="implicit",
                 executor=None, store=None, validation=None, progress=True, fallback: str | None = "resample",
                 resample_members: int | None = None, propagate_kwargs: Mapping | None = None):
        self.training = training
        self.descriptor = descriptor
        if isinstance(backends, Mapping):
            backends = [BackendSpec(k, v) for k, v in backends.items()]
        self.backends = [b if isinstance(b, BackendSpec) else BackendSpec(type(b).__name__, b) for b in backends]
        names = [b.name for b in self.backends]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be unique, got {names}")
        self.properties = list(properties)
        # keyed once, before anything evaluates them: some properties cache what they find
        # (e.g. a migration path) on themselves, which would change a key taken later
        self._prop_keys = {id(p): _prop_key(p) for p in self.properties}
        self.reference = reference
        self.propagation = propagation
        self.executor = executor
        self.store = None if store is None else Path(store)
        self.validation = validation
        self.progress = progress
        self.fallback = fallback
        self.resample_members = resample_members
        self.propagate_kwargs = dict(propagate_kwargs or {})
        self._design = {}
        self._ensembles = {}
        self.counts = {"fits": 0, "references": 0, "propagations": 0}

    # -- cached pieces -----------------------------------------------------------------------

    def _log(self, msg: str) -> None:
        if self.progress:
            print(msg, flush=True)

    def design(self, which: str = "training") -> DesignMatrix:
        """The training (or ``"validation"``) design matrix, built once and cached in the store."""
        if which not in self._design:
            frames = self.training if which == "training" else self.validation
            if isinstance(frames, DesignMatrix):
                self._design[which] = frames
            else:
                cache = None if self.store is None else self.store / "design"
                self._design[which] = DesignMatrix.build(frames, self.descriptor, cache_dir=cache, progress=False)
        return self._design[which]

    def _ensemble_key(self, spec: BackendSpec) -> str:
        d = self.design()
        return _digest({"backend": spec.key(), "design": d.metadata.get("cache_key") or _digest(d.X.sum(axis=0).tolist()),
                        "descriptor": self.descriptor.spec()})

    def ensemble(self, spec: BackendSpec) -> ParameterEnsemble:
        """The fitted ensemble of one backend (from the store when its key matches)."""
        if spec.name in self._ensembles:
            return self._ensembles[spec.name]
        key = self._ensemble_key(spec)
        path = None if self.store is None else self.store / "ensembles" / f"{_safe(spec.name)}.npz"
        ens = None
        if path is not None and path.exists():
            side = read_json(path.with_suffix(".json"))
            if side is not None and side.get("key") == key:
                ens = ParameterEnsemble.load(path)
        if ens is None:
            t0 = time.perf_counter()
            ens = spec.backend.fit(self.design())
            self.counts["fits"] += 1
            self._log(f"fitted {spec.name} in {time.perf_counter() - t0:.1f} s (M={ens.n_members})")
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                ens.save(path)
                # the key goes last: a crash between the two writes leaves a key-less ensemble, refitted
                write_json(path.with_suffix(".json"), {"key": key, "backend": spec.name, "settings": spec.settings()})
        self._ensembles[spec.name] = ens
        return ens

    def references(self) -> dict[str, dict]:
        """``{name: {"value", "unit", "source", ...}}``, computed once per property and stored."""
        path = None if self.store is None else self.store / "references.json"
        stored = (read_json(path) if path is not None else None) or {}
        out = {}
        for prop in self.properties:
            key = _digest({"ref": self.reference.key, "prop": self._key_of(prop)})
            hit = stored.get(prop.name)
            if hit is not None and hit.get("key") == key:
                out[prop.name] = hit
                continue
            try:
                value, info = self.reference.value(prop)
            except KeyError:
                value, info = float("nan"), {"source": "none (no reference)"}
            self.counts["references"] += 1
            out[prop.name] = stored[prop.name] = {"key": key, "value": value, "unit": getattr(prop, "unit", ""), **info}
            if path is not None:
                write_json(path, stored)
            self._log(f"reference {prop.name} = {value:.6g} {getattr(prop, 'unit', '')}")
        for v in out.values():
            v["value"] = as_float(v["value"])
        return out

    # -- one result ------------------------------------------------------------------------

    def _key_of(self, prop) -> str:
        # properties replaced after construction (tests, interactive use) are keyed on first use
        return self._prop_keys.setdefault(id(prop), _prop_key(prop))

    def _method(self, prop) -> str:
        if isinstance(self.propagation, str):
            return self.propagation
        return self.propagation.get(prop.name, "implicit")

    def _propagate(self, prop, spec: BackendSpec, ens: ParameterEnsemble) -> tuple[object, list[str]]:
        from ..propagate import propagate

        notes = []
        method = self._method(prop)
        tries = [method] + ([self.fallback] if self.fallback and self.fallback != method else [])
        for i, m in enumerate(tries):
            use = _subsample(ens, self.resample_members) if m == "resample" else ens
            try:
                with warnings.catch_warnings():
                    # flags are recorded in the result; the warnings would drown the log
                    warnings.simplefilter("ignore")
                    return propagate(prop, (self.descriptor, use), method=m, executor=self.executor,
                                     progress=False, exact_corners=spec.bounds == "box",
                                     **self.propagate_kwargs), notes
            except Exception as err:  # noqa: BLE001 -- any failure falls back, and is recorded
                notes.append(f"{m} failed: {type(err).__name__}: {str(err)[:200]}")
                if i == len(tries) - 1:
                    return None, notes
        return None, notes

    def _result(self, spec: BackendSpec, prop, reference: dict) -> dict:
        ens_key = self._ensemble_key(spec)
        key = _digest({"version": _RESULT_VERSION, "ensemble": ens_key, "prop": self._key_of(prop), "method": self._method(prop),
                       "fallback": self.fallback, "resample_members": self.resample_members,
                       "kwargs": self.propagate_kwargs})
        path = None if self.store is None else self.store / "results" / f"{_safe(spec.name)}__{_safe(prop.name)}.json"
        if path is not None:
            hit = read_json(path)
            if hit is not None and hit.get("key") == key:
                return hit
        ens = self.ensemble(spec)
        t0 = time.perf_counter()
        pe, notes = self._propagate(prop, spec, ens)
        self.counts["propagations"] += 1
        rec = {"key": key, "backend": spec.name, "property": prop.name, "unit": getattr(prop, "unit", ""),
               "bounds": spec.bounds, "z": spec.z, "notes": notes, "wall_s": time.perf_counter() - t0}
        if pe is None:
            rec |= {"method": "failed", "value": None, "std": None, "lower": None, "upper": None, "n_members": 0,
                    "flags": [], "n_failed": 0}
        else:
            std = pe.std
            box = pe.diagnostics.get("box", {})
            if spec.bounds == "gaussian":
                lo, hi = pe.value - spec.z * std, pe.value + spec.z * std
            else:
                lo, hi = pe.lower, pe.upper
                if spec.bounds == "box" and np.ndim(lo) == 0:
                    lo, hi = _box_interval(lo, hi, box)
            rec |= {"method": pe.method, "value": pe.value, "std": std, "lower": lo, "upper": hi,
                    "n_members": int(pe.n_members), "n_failed": len(pe.failed), "flags": list(pe.flags),
                    "box_linear_lower": box.get("linear_lower"), "box_linear_upper": box.get("linear_upper"),
                    "ensemble": pe.to_dict()}
        if path is not None:
            write_json(path, rec)
        return rec

    # -- the study -------------------------------------------------------------------------

    def run(self) -> CoverageResults:
        """Fit, propagate and score everything not in the store; return the results.

        Returns
        -------
        CoverageResults
            Records (one per backend × property, with reference, errors and bracketing),
            per-backend summaries and, with ``validation``, configuration-level coverage.
        """
        t_start = time.perf_counter()
        refs = self.references()
        records = []
        heldout = {}
        for spec in self.backends:
            for prop in self.properties:
                rec = dict(self._result(spec, prop, refs[prop.name]))
                rec.pop("ensemble", None)
                ref = refs[prop.name]
                rec["reference"], rec["reference_source"] = ref["value"], ref.get("source", "")
                e = interval_errors(*(as_float(rec[k]) for k in ("value", "lower", "upper")), ref["value"],
                                    as_float(rec["std"]))
                rec |= {k: (v.item() if hasattr(v, "item") else v) for k, v in e.items()}
                records.append(rec)
                self._log(f"{spec.name:>22s} | {prop.name:34s} {rec['method']:9s} "
                          f"err {rec['error']:+.4g} [{rec['low_error']:+.4g}, {rec['high_error']:+.4g}] "
                          f"{'in' if rec['bracketed'] else 'OUT'}  ({rec['wall_s']:.1f} s)")
            if self.validation is not None:
                heldout[spec.name] = self._heldout(spec)
        settings = {s.name: {"settings": s.settings(), "class": type(s.backend).__name__, "bounds": s.bounds,
                             "z": s.z, "chosen": s.chosen} for s in self.backends}
        return CoverageResults(records=records, backends=settings, heldout=heldout,
                               meta={"wall_s": time.perf_counter() - t_start, "counts": dict(self.counts),
                                     "descriptor": self.descriptor.spec(), "reference": self.reference.key[:200]})

    def _heldout(self, spec: BackendSpec) -> dict:
        key = _digest({"ensemble": self._ensemble_key(spec), "validation": self.design("validation").metadata.get("cache_key")})
        path = None if self.store is None else self.store / "heldout" / f"{_safe(spec.name)}.json"
        if path is not None:
            hit = read_json(path)
            if hit is not None and hit.get("key") == key:
                return hit
        ens = self.ensemble(spec)
        bounds = "exact" if ens.has_box else ("gaussian" if spec.bounds == "gaussian" else "sampled")
        out = {"key": key, **heldout_coverage(ens, self.design("validation"), bounds=bounds, z=spec.z)}
        if path is not None:
            write_json(path, out)
        return out
