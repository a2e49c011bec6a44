"""CoverageStudy: fit backends, propagate every property, score against references, checkpoint.

Every expensive step is stored in ``store`` as soon as it completes — the design matrices
(``DesignMatrix.build(cache_dir=...)``), each fitted ensemble (``ParameterEnsemble.save``),
each reference value and each (backend, property) result (one JSON, written atomically) —
under a key that hashes everything it depends on. A rerun after an interruption loads what is
stored and computes only the rest; a changed setting changes the key and is recomputed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping

import numpy as np

from ..backends.base import theta_digest
from ..design import DesignMatrix
from ..ensemble import ParameterEnsemble
from ..model import LinearModel
from ..propagate import BoxCorners, Propagator, build_propagator
from ..propagate.implicit import BROKEN_FRACTION
from ..properties.base import RelaxationError
from ._io import as_float, clean
from .metrics import interval_errors
from .references import heldout_coverage
from .report import CoverageResults
from .store import Store, digest, safe_name

__all__ = ["BackendSpec", "CoverageStudy"]

logger = logging.getLogger(__name__)


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
    calibrate : float, optional
        A POPS backend only: calibrate it to this held-out coverage first
        (:meth:`POPS.calibrate <uqcalc.backends.POPS.calibrate>` on the study's training and
        validation designs), then fit the chosen settings on the training design. The
        validation groups then are the calibration set: their held-out table is no longer an
        independent test for this backend (the report says so).
    prior_mean, theta : (P,) array, optional
        Passed to ``backend.fit``: a prior centred on ``prior_mean`` instead of zero (a
        pretrained model's readout, say) and a fixed point estimate ``theta``.
    """

    name: str
    backend: object
    bounds: str = "sampled"
    z: float = 2.0
    chosen: str = "fixed in advance"
    calibrate: float | None = None
    prior_mean: np.ndarray | None = None
    theta: np.ndarray | None = None

    def settings(self) -> dict:
        params = self.backend.get_params() if hasattr(self.backend, "get_params") else {}
        return {k: v for k, v in params.items() if k not in ("progress", "store", "chunk_rows")}

    def fit_options(self) -> dict:
        """The keyword arguments of ``backend.fit`` this spec sets."""
        return {k: v for k, v in (("prior_mean", self.prior_mean), ("theta", self.theta)) if v is not None}

    def fit(self, design: DesignMatrix) -> ParameterEnsemble:
        """``backend.fit(design, **fit_options())``."""
        return self.backend.fit(design, **self.fit_options())

    def key(self) -> str:
        extra = {} if self.calibrate is None else {"calibrate": float(self.calibrate)}
        extra |= {k: theta_digest(v) for k, v in self.fit_options().items()}
        return digest({"class": type(self.backend).__name__, "params": self.settings(), "bounds": self.bounds, "z": self.z,
                       **extra})


# bump when what a stored (backend, property) result means changes, so old checkpoints are recomputed
_RESULT_VERSION = 7


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




def calibrate_spec(spec: BackendSpec, train: DesignMatrix, validation: DesignMatrix) -> tuple[object, dict]:
    """``spec.backend.calibrate(train, validation, target=spec.calibrate)`` as a study runs it.

    Its warnings (an unreachable target, a zero-width box) go to the log. Returns the chosen
    unfitted POPS and a JSON-able summary: ``target``, ``reached``, ``settings``, ``box_scale``,
    ``coverage``, ``coverage_cap``, ``uncoverable_groups``, ``n_candidates``.
    """
    if not hasattr(spec.backend, "calibrate"):
        raise ValueError(f"backend {spec.name!r}: only POPS can be calibrated, not {type(spec.backend).__name__}")
    if spec.prior_mean is not None:
        # the box is chosen for the correction about the prior mean, as it is fitted
        train, validation = train.about(spec.prior_mean), validation.about(spec.prior_mean)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        chosen, report = spec.backend.calibrate(train, validation, target=spec.calibrate)
    for w in caught:
        logger.warning("%s: %s", spec.name, w.message)
    info = {"target": report.target, "reached": report.reached, "settings": report.chosen["settings"],
            "box_scale": chosen.box_scale, "coverage": report.chosen["coverage"],
            "coverage_cap": report.chosen["coverage_cap"], "uncoverable_groups": report.chosen["uncoverable_groups"],
            "n_candidates": len(report.candidates)}
    logger.info("calibrated %s: %s, box scale %.3g, validation coverage %s%s", spec.name, info["settings"],
                chosen.box_scale, info["coverage"], "" if report.reached else " (target not reached)")
    return chosen, info


def calibrate_on_groups(spec: BackendSpec, design: DesignMatrix, groups, store=None) -> BackendSpec:
    """``spec`` with its POPS calibrated on the rows of ``groups`` of the training ``design``.

    Those groups are left out of the rows the box is built from only to choose it
    (:func:`calibrate_spec`, about ``spec.prior_mean`` if set); the returned spec carries the
    chosen unfitted POPS, to be fitted on the whole design, and says how it was chosen.
    ``store`` (a directory or :class:`~uqcalc.coverage.store.Store`) keeps the choice, keyed by
    the design, the groups and the spec: at qSNAP size the calibration costs minutes, and a
    rerun of the same study takes it from the disk.
    """
    def compute() -> dict:
        calib = design.rows_of(groups=list(groups))
        return calibrate_spec(spec, design.select(~calib), design.select(calib))[1]

    key = digest({"spec": spec.key(), "design": design.digest(), "groups": sorted(map(str, groups)),
                  "prior_mean": None if spec.prior_mean is None else theta_digest(spec.prior_mean)})
    store = store if isinstance(store, Store) else Store(store)
    info, _ = store.record(f"calibration/{safe_name(spec.name)}.json", key, compute)
    # calibrate returns the base POPS cloned with the chosen settings and box scale
    chosen = spec.backend.clone(**info["settings"], box_scale=info["box_scale"])
    summary = (f"{spec.chosen}: {', '.join(f'{k}={v}' for k, v in info['settings'].items())}, box scale "
               f"{info['box_scale']:.3g}, calibration coverage "
               + ", ".join(f"{k} {v:.2f}" for k, v in info["coverage"].items())
               + ("" if info["reached"] else " (target not reachable)"))
    return dataclasses.replace(spec, backend=chosen, calibrate=None, chosen=summary)


def _expansion_broken(out) -> str | None:
    """Why an expansion's result must not be kept as bounds (None: it holds where checked).

    :class:`~uqcalc.propagate.VerifyExtremes` re-relaxes the extreme members. An extreme member
    that could not be re-relaxed, or one whose re-relaxed value differs from the expansion's by
    more than :data:`~uqcalc.propagate.implicit.BROKEN_FRACTION` of the members' range, means the expansion does not
    describe the ensemble's range. Smaller deviations are repaired instead: the re-relaxed
    values replace the expansion's for those members (so the bounds rest on them).
    """
    checks = out.diagnostics.get("verify") or []
    if not checks or np.ndim(out.value):
        return None
    width = float(np.nanmax(out.members) - np.nanmin(out.members))
    # the precision to which evaluate() itself locates the value (a bisection's width)
    resolution = float(out.diagnostics.get("resolution", 0.0))
    for c in checks:
        if c.get("resampled") is None:
            return f"extreme member {c['member']} could not be re-relaxed"
        if c["deviation"] > max(BROKEN_FRACTION * width, resolution):
            return (f"extreme member {c['member']} predicted {c['predicted']:.6g}, re-relaxed {c['resampled']:.6g} "
                    f"(|Δ| {c['deviation']:.3g} > {BROKEN_FRACTION} × member range {width:.3g})")
    for c in checks:
        out.members[c["member"]] = c["resampled"]
    return None


def _prop_key(prop) -> str:
    # a property's settings are its dataclass fields; repr covers the rest
    fields = dataclasses.asdict(prop) if dataclasses.is_dataclass(prop) else repr(prop)
    return digest({"class": type(prop).__name__, "fields": fields})


def _as_propagator(method: str | Propagator, box: bool, resample_members: int | None, options: Mapping) -> Propagator:
    """A study's propagator for a method name or object (box bounds: wrapped in BoxCorners)."""
    if isinstance(method, str):
        extra = {"max_members": resample_members} if method == "resample" else {}
        return build_propagator(method, exact_corners=box, **extra, **options)
    if box and not isinstance(method, BoxCorners):
        return BoxCorners(method)
    return method


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
        Scored properties.
    reference : provider
        ``key`` and ``value(prop) -> (value, info)`` (:mod:`~uqcalc.coverage.references`).
    propagation : str, Propagator, sequence of them, or mapping, default "implicit"
        How every property is propagated: a method name (:data:`uqcalc.propagate.METHODS`), a
        :class:`~uqcalc.propagate.Propagator`, a sequence of them (the first whose ``supports``
        accepts the property is used), or ``{property name: any of these}`` (missing names:
        ``"implicit"``). For backends with ``bounds="box"`` each is wrapped in
        :class:`~uqcalc.propagate.BoxCorners`.
    executor : concurrent.futures.Executor, optional
        Passed to the propagators.
    store : path, optional
        Checkpoint directory (:class:`~uqcalc.coverage.store.Store`); None keeps nothing.
    validation : sequence of ase.Atoms or DesignMatrix, optional
        Held-out frames for configuration-level coverage per group and row kind.
    progress : bool
        Log one line per completed step (``logging`` INFO on ``uqcalc.coverage``; the CLI shows
        them) and show tqdm bars inside propagation.
    fallback : str, Propagator or None, default "resample"
        Tried when no propagation choice supports a property, or when the one used fails; the
        method actually used and the failures are recorded per result.
    resample_members : int, optional
        Members used by a ``"resample"`` given by name (a seeded subset; None: all), recorded as
        ``n_members`` next to the sampled bounds.
    propagate_kwargs : mapping, optional
        Options of :func:`uqcalc.propagate` for propagators given by name.
    """

    def __init__(self, training, descriptor, backends, properties, reference, propagation="implicit",
                 executor=None, store=None, validation=None, progress=True, fallback: str | Propagator | None = "resample",
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
        names = [p.name for p in self.properties]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"property names must be unique (results and references are stored by name): {dup}")
        self.reference = reference
        self.propagation = propagation
        self.executor = executor
        self.store = Store(store)
        self.validation = validation
        self.progress = progress
        self.fallback = fallback
        self.resample_members = resample_members
        self.propagate_kwargs = dict(propagate_kwargs or {})
        self._design = {}
        self._ensembles = {}
        self.counts = {"fits": 0, "references": 0, "propagations": 0}

    # -- cached pieces -----------------------------------------------------------------------

    def _log(self, msg: str, *args) -> None:
        if self.progress:
            logger.info(msg, *args)

    def design(self, which: str = "training") -> DesignMatrix:
        """The training (or ``"validation"``) design matrix, built once and cached in the store."""
        if which not in self._design:
            frames = self.training if which == "training" else self.validation
            if isinstance(frames, DesignMatrix):
                self._design[which] = frames
            else:
                cache = self.store.path("design")
                self._design[which] = DesignMatrix.build(frames, self.descriptor, cache_dir=cache, progress=False)
        return self._design[which]

    def ensemble_key(self, spec: BackendSpec) -> str:
        """The digest a fitted ensemble is stored under: backend settings, training design and descriptor.

        Results derived from the ensemble (property bounds, held-out scores) key on it, so a
        refit invalidates them and nothing else does.
        """
        return digest({"backend": spec.key(), "design": self.design().digest(), "descriptor": self.descriptor.spec()})

    def ensemble(self, spec: BackendSpec) -> ParameterEnsemble:
        """The fitted ensemble of one backend (from the store when its key matches)."""
        if spec.name not in self._ensembles:
            def fit() -> ParameterEnsemble:
                t0 = time.perf_counter()
                if spec.calibrate is None:
                    ens = spec.fit(self.design())
                else:
                    ens = self._calibrated_fit(spec)
                self.counts["fits"] += 1
                self._log("fitted %s in %.1f s (M=%d)", spec.name, time.perf_counter() - t0, ens.n_members)
                return ens

            self._ensembles[spec.name], _ = self.store.artifact(
                f"ensembles/{safe_name(spec.name)}.npz", self.ensemble_key(spec), fit,
                save=lambda ens, path: ens.save(path), load=ParameterEnsemble.load,
                describe={"backend": spec.name, "settings": spec.settings()},
            )
        return self._ensembles[spec.name]

    def _calibrated_fit(self, spec: BackendSpec) -> ParameterEnsemble:
        """POPS calibrated on the validation design, fitted on the training design."""
        if self.validation is None:
            raise ValueError(f"backend {spec.name!r} is calibrated on held-out configurations: give validation=")
        chosen, info = calibrate_spec(spec, self.design(), self.design("validation"))
        ens = chosen.fit(self.design(), **spec.fit_options())
        ens.metadata["calibration"] = info
        return ens

    def _prop_key(self, prop) -> str:
        return _prop_key(prop)

    def references(self) -> dict[str, dict]:
        """``{name: {"value", "unit", "source", ...}}``, computed once per property and stored."""
        out = {}
        for prop in self.properties:
            def compute(prop=prop) -> dict:
                try:
                    value, info = self.reference.value(prop)
                except KeyError:
                    value, info = float("nan"), {"source": "none (no reference)"}
                except RelaxationError as err:
                    # the reference itself has no such state (a phase that is unstable for this
                    # potential, say): the property is unscored, the study goes on
                    value, info = float("nan"), {"source": f"none (reference failed: {str(err).splitlines()[0]})"}
                    logger.warning("reference %s failed: %s", prop.name, err)
                self.counts["references"] += 1
                self._log("reference %s = %.6g %s", prop.name, value, prop.unit)
                return {"value": value, "unit": prop.unit, **info}

            key = digest({"ref": self.reference.key, "prop": self._prop_key(prop)})
            record, _ = self.store.record(f"references/{safe_name(prop.name)}.json", key, compute)
            out[prop.name] = {**record, "value": as_float(record["value"])}
        return out

    # -- one result ------------------------------------------------------------------------

    def _chosen(self, prop) -> list[str | Propagator]:
        choice = self.propagation
        if isinstance(choice, Mapping):
            choice = choice.get(prop.name, "implicit")
        choices = [choice] if isinstance(choice, (str, Propagator)) else list(choice)
        if self.fallback is not None:
            choices.append(self.fallback)
        return choices

    def propagators(self, prop, spec: BackendSpec) -> list[Propagator]:
        """The propagators tried for ``prop`` with ``spec``'s backend, in order (duplicates removed)."""
        out, seen = [], set()
        for choice in self._chosen(prop):
            p = _as_propagator(choice, spec.bounds == "box", self.resample_members, self.propagate_kwargs)
            key = digest(p.params())
            if key not in seen:
                seen.add(key)
                out.append(p)
        return out

    def _propagate(self, prop, spec: BackendSpec, ens: ParameterEnsemble) -> tuple[object, list[str]]:
        notes = []
        model = LinearModel(self.descriptor, ens)
        candidates = [p for p in self.propagators(prop, spec) if p.supports(prop)]
        if not candidates:
            return None, [f"no propagator supports {prop.name!r}"]
        for i, p in enumerate(candidates):
            try:
                with warnings.catch_warnings():
                    # flags are recorded in the result; the warnings would drown the log
                    warnings.simplefilter("ignore")
                    out = p(prop, model, self.executor, progress=False)
            except Exception as err:  # noqa: BLE001 -- any failure falls back, and is recorded
                notes.append(f"{p.name} failed: {type(err).__name__}: {str(err)[:200]}")
                continue
            broken = _expansion_broken(out)
            if broken and i + 1 < len(candidates):
                # an expansion that re-relaxation contradicts is not kept as bounds
                notes.append(f"{out.method} not kept: {broken}; fell back to {candidates[i + 1].name}")
                continue
            return out, notes
        return None, notes

    def _result(self, spec: BackendSpec, prop) -> dict:
        # only the propagators that can run this property decide its result
        key = digest({"version": _RESULT_VERSION, "ensemble": self.ensemble_key(spec), "prop": self._prop_key(prop),
                      "propagators": [p.params() for p in self.propagators(prop, spec) if p.supports(prop)]})

        def compute() -> dict:
            t0 = time.perf_counter()
            pe, notes = self._propagate(prop, spec, self.ensemble(spec))
            self.counts["propagations"] += 1
            rec = {"backend": spec.name, "property": prop.name, "unit": prop.unit,
                   "bounds": spec.bounds, "z": spec.z, "notes": notes, "wall_s": time.perf_counter() - t0}
            if pe is None:
                return rec | {"method": "failed", "value": None, "std": None, "lower": None, "upper": None,
                              "n_members": 0, "flags": [], "n_failed": 0}
            std = pe.std
            box = pe.diagnostics.get("box", {})
            if spec.bounds == "gaussian":
                lo, hi = pe.value - spec.z * std, pe.value + spec.z * std
            else:
                lo, hi = pe.lower, pe.upper
                if spec.bounds == "box" and np.ndim(lo) == 0:
                    lo, hi = _box_interval(lo, hi, box)
            return rec | {"method": pe.method, "value": pe.value, "std": std, "lower": lo, "upper": hi,
                          "n_members": int(pe.n_members), "n_failed": len(pe.failed), "flags": list(pe.flags),
                          "box_linear_lower": box.get("linear_lower"), "box_linear_upper": box.get("linear_upper"),
                          "ensemble": pe.to_dict()}

        record, _ = self.store.record(f"results/{safe_name(spec.name)}__{safe_name(prop.name)}.json", key, compute)
        return record

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
                rec = dict(self._result(spec, prop))
                rec.pop("ensemble", None)
                ref = refs[prop.name]
                rec["reference"], rec["reference_source"] = ref["value"], ref.get("source", "")
                e = interval_errors(*(as_float(rec[k]) for k in ("value", "lower", "upper")), ref["value"],
                                    as_float(rec["std"]))
                rec |= {k: (v.item() if hasattr(v, "item") else v) for k, v in e.items()}
                records.append(rec)
                self._log("%22s | %-34s %-9s err %+.4g [%+.4g, %+.4g] %s  (%.1f s)", spec.name, prop.name,
                          rec["method"], rec["error"], rec["low_error"], rec["high_error"],
                          "in" if rec["bracketed"] else "OUT", rec["wall_s"])
            if self.validation is not None:
                heldout[spec.name] = self._heldout(spec)
        settings = {s.name: {"settings": s.settings(), "class": type(s.backend).__name__, "bounds": s.bounds,
                             "z": s.z, "chosen": s.chosen} for s in self.backends}
        for s in self.backends:
            if s.calibrate is not None:
                settings[s.name]["calibration"] = clean(self.ensemble(s).metadata.get("calibration"))
            stability = self._stability(s)
            if stability is not None:
                settings[s.name]["stability"] = stability
        return CoverageResults(records=records, backends=settings, heldout=heldout,
                               meta={"wall_s": time.perf_counter() - t_start, "counts": dict(self.counts),
                                     "descriptor": self.descriptor.spec(), "reference": self.reference.key[:200]})

    def _stability(self, spec: BackendSpec) -> dict | None:
        """Born stability of the members at their own lattice (cubic ground states only)."""
        from ..propagate.stability import mechanical_stability
        from ..properties.crystal import CUBIC, Material

        material = next((p for p in self.properties if isinstance(p, Material)), None)
        if material is None or material.crystal not in CUBIC:
            return None
        ens = self.ensemble(spec)
        if ens.n_members == 0:
            return None
        try:
            report = mechanical_stability(LinearModel(self.descriptor, ens), material.symbol, material.crystal)
        except Exception as err:  # noqa: BLE001 -- a diagnostic: recorded, never fatal
            return {"error": f"{type(err).__name__}: {str(err)[:200]}"}
        return clean(report.summary())

    def _heldout(self, spec: BackendSpec) -> dict:
        key = digest({"ensemble": self.ensemble_key(spec), "validation": self.design("validation").digest()})

        def compute() -> dict:
            ens = self.ensemble(spec)
            bounds = "exact" if ens.has_box else ("gaussian" if spec.bounds == "gaussian" else "sampled")
            return heldout_coverage(ens, self.design("validation"), bounds=bounds, z=spec.z)

        record, _ = self.store.record(f"heldout/{safe_name(spec.name)}.json", key, compute)
        return record
