"""Backend base class: scikit-learn's estimator contract for UQ backends.

A backend's ``__init__`` takes keyword-only hyperparameters and only stores them (no validation,
no logic), so ``get_params``/``set_params``/``repr`` work from the constructor signature and a
backend can be cloned by ``type(b)(**b.get_params())``. ``fit(design) -> ParameterEnsemble`` does
the work; every random draw goes through ``random_state`` so the same seed gives a bit-identical
ensemble.

What each hyperparameter may be is declared once per class in ``_parameter_constraints`` (and
``_parameter_relations`` between keywords; the constraint objects live in :mod:`.params`).
:meth:`Backend._validate_params`, the one validation routine, checks them at the start of every
``fit``: ``set_params`` can change them after construction, so construction is not the place.

A given point estimate, ``fit(design, theta=theta0)`` ("UQ around a given potential", e.g. a
published SNAP), is fit *data*, not a hyperparameter: it is checked by :func:`check_theta` in
``fit`` and recorded in the ensemble's metadata by :meth:`Backend._point_estimate_metadata`
(``docs/fixed_point_estimate.md`` says what each backend's ensemble means around it).
"""

from __future__ import annotations

import hashlib
import inspect
import platform
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .params import InvalidParameterError, Relation, validate_params

__all__ = ["Backend", "InvalidParameterError", "check_theta", "theta_digest"]


# -- provenance -------------------------------------------------------------------------------


def _version(package: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version(package)
    except PackageNotFoundError:
        return None


def _uqcalc_version() -> str | None:
    # imported lazily: uqcalc/__init__ may import modules that import the backends
    try:
        import uqcalc

        return getattr(uqcalc, "__version__", None) or _version("uqcalc")
    except ImportError:  # pragma: no cover
        return _version("uqcalc")


def _seed_record(random_state) -> Any:
    """A JSON-able record of ``random_state`` (a Generator cannot be replayed from metadata)."""
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return None if random_state is None else int(random_state)
    if isinstance(random_state, np.random.SeedSequence):
        return {"entropy": str(random_state.entropy), "spawn_key": list(random_state.spawn_key)}
    return f"<{type(random_state).__name__}>"


# -- a given point estimate -------------------------------------------------------------------


def theta_digest(theta) -> str:
    """sha256 of a parameter vector as little-endian float64 (identifies a given potential)."""
    return hashlib.sha256(np.ascontiguousarray(theta, dtype="<f8").tobytes()).hexdigest()


def check_theta(theta, n_params: int) -> np.ndarray | None:
    """Validate a given point estimate: ``None``, or a finite real vector of shape ``(n_params,)``.

    Returns a float64 copy (``None`` passes through), so later changes to the caller's array do
    not reach the ensemble.

    Raises
    ------
    ValueError
        Naming the problem: not a real numeric array, the expected and the given shape, or the
        indices of non-finite entries.
    """
    if theta is None:
        return None
    try:
        array = np.asarray(theta)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise ValueError(f"theta must be a real numeric array of shape ({n_params},): {err}") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"theta must be a real numeric array of shape ({n_params},), got dtype {array.dtype}")
    if array.shape != (n_params,):
        raise ValueError(f"theta must have shape ({n_params},) to match the design's {n_params} columns, "
                         f"got shape {array.shape}")
    array = np.array(array, dtype=float)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        shown = ", ".join(str(i) for i in bad[:10]) + (", ..." if bad.size > 10 else "")
        raise ValueError(f"theta must be finite; {bad.size} non-finite entries at indices [{shown}]")
    return array


def _weighted_rmse(design, theta) -> float:
    """sqrt(Σ w r² / N_eff) of ``y − Xθ`` (N_eff: rows with w > 0), over row chunks."""
    total = 0.0
    for _, Xc, yc in design.iter_weighted():
        r = yc - Xc @ theta
        total += float(r @ r)
    return float(np.sqrt(total / max(int(np.count_nonzero(design.w > 0)), 1)))


# -- the base class ---------------------------------------------------------------------------


class Backend:
    """Base class of UQ backends (POPS, BayesianRidge, MCMC, Bootstrap).

    Subclasses define ``__init__(self, *, hyper=default, ...)`` that only calls
    ``self._store_params(locals())``, a ``_parameter_constraints`` entry for every keyword, and
    ``fit(design) -> ParameterEnsemble`` that starts with ``self._validate_params()``.
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {}
    _parameter_relations: ClassVar[tuple[Relation, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" not in vars(cls):
            return
        # the contract is checked when the class is written, not when a user first fits it
        params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
        positional = [p.name for p in params if p.kind is not p.KEYWORD_ONLY]
        if positional:
            raise TypeError(f"{cls.__name__}.__init__ must take keyword-only arguments; not: {positional}")
        names, declared = set(cls._param_names()), set(cls._parameter_constraints)
        if names != declared:
            raise TypeError(f"{cls.__name__}._parameter_constraints must declare exactly the __init__ keywords; "
                            f"undeclared: {sorted(names - declared)}, unknown: {sorted(declared - names)}")

    @classmethod
    def _param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must not take *args/**kwargs (sklearn contract)")
            names.append(p.name)
        return sorted(names)

    def _store_params(self, values: Mapping[str, Any]) -> None:
        """Store every constructor keyword under its own name: the whole of a backend's ``__init__``.

        Called as ``self._store_params(locals())``; one line instead of one assignment per
        keyword, and no keyword can be forgotten.
        """
        for name in self._param_names():
            setattr(self, name, values[name])

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters as passed to the constructor."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Backend:
        """Set hyperparameters; unknown names raise ``ValueError``. Returns ``self``.

        Values are checked by the next ``fit``, not here (scikit-learn's contract).
        """
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def clone(self, **overrides) -> Backend:
        """A new unfitted backend with the same hyperparameters (and ``overrides``)."""
        return type(self)(**{**self.get_params(), **overrides})

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self"
        }
        changed = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = value is default or bool(value == default)
            except (TypeError, ValueError):  # e.g. an array compared with its default
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def _validate_params(self) -> None:
        """Check every hyperparameter against the class's constraint table and relations.

        Raises
        ------
        InvalidParameterError
            A ``ValueError`` and ``TypeError`` naming the backend, the parameter, the value and
            what is allowed.
        """
        validate_params(type(self).__name__, self._parameter_constraints, self.get_params(),
                        self._parameter_relations)

    def fit(self, design, *, theta=None, prior_mean=None):
        """Fit to a :class:`~uqcalc.design.DesignMatrix`; return a ParameterEnsemble.

        ``theta`` (P,), optional: a given point estimate the ensemble is built around (its
        ``theta`` is exactly this vector); ``None`` fits one. ``prior_mean`` (P,), optional:
        centre the backend's ridge / Gaussian prior on this vector instead of zero (a
        pretrained readout the refit should not leave where the data say nothing).
        """
        raise NotImplementedError

    def _fit_about(self, design, prior_mean, theta) -> ParameterEnsemble:
        """``fit`` with the prior centred on ``prior_mean``: fit δ = θ − θ₀ to y − Xθ₀, shift back.

        Exact for every backend here: each one's regulariser is a function of θ only through
        the ridge/prior term, which on the residual design penalises ‖θ − θ₀‖ instead of ‖θ‖.
        """
        theta0 = check_theta(prior_mean, design.n_params)
        given = None if theta is None else check_theta(theta, design.n_params) - theta0
        ens = self.fit(design.about(theta0), theta=given)
        return ens.shifted(theta0, prior_mean_digest=theta_digest(theta0))

    # -- helpers for subclasses -----------------------------------------------------------

    @staticmethod
    def _rng(random_state) -> np.random.Generator:
        """``np.random.default_rng(random_state)``: int, SeedSequence, Generator or None."""
        return np.random.default_rng(random_state)

    @staticmethod
    def _point_estimate_metadata(design, theta, theta_fitted=None) -> dict[str, Any]:
        """Provenance of the point estimate: ``"given"`` (with how it compares) or ``"fitted"``.

        ``theta`` is the ensemble's point estimate; ``theta_fitted`` the backend's own estimate
        (its ridge fit, posterior mean, ...), passed only when ``theta`` was given. Then the record
        adds the fitted vector's digest, the distance ‖θ₀ − θ̂‖₂ and both weighted RMSEs
        (sqrt(Σ w r²/N_eff)), so a reader sees how much worse the given potential fits this data.
        """
        if theta_fitted is None:
            return {"point_estimate": "fitted", "point_estimate_digest": theta_digest(theta)}
        return {
            "point_estimate": "given",
            "point_estimate_digest": theta_digest(theta),
            "fitted_theta_digest": theta_digest(theta_fitted),
            "fitted_theta_distance": float(np.linalg.norm(np.asarray(theta) - np.asarray(theta_fitted))),
            "rmse_weighted_given": _weighted_rmse(design, theta),
            "rmse_weighted_fitted": _weighted_rmse(design, theta_fitted),
        }

    def _metadata(self, design, **extra) -> dict[str, Any]:
        """Provenance for the ensemble: backend, hyperparameters, seed, data and versions."""
        import scipy

        params = {}
        for name, value in self.get_params().items():
            if isinstance(value, np.random.Generator | np.random.BitGenerator | np.random.SeedSequence):
                value = _seed_record(value)
            elif isinstance(value, tuple):
                value = list(value)
            params[name] = value
        dmeta = getattr(design, "metadata", {}) or {}
        rows_by_kind = {}
        if design is not None:
            for kind in ("energy", "force", "stress"):  # cheaper than np.unique on 10⁵–10⁶ strings
                count = int(np.count_nonzero(design.kind == kind))
                if count:
                    rows_by_kind[kind] = count
        meta = {
            "backend": type(self).__name__,
            "params": params,
            "random_state": _seed_record(getattr(self, "random_state", None)),
            "descriptor": dmeta.get("descriptor"),
            "training_set_digest": dmeta.get("training_set_digest"),
            "n_rows": None if design is None else int(design.n_rows),
            "rows_by_kind": rows_by_kind,
            "versions": {
                "uqcalc": _uqcalc_version(),
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "python": platform.python_version(),
            },
        }
        meta.update(extra)
        return meta
