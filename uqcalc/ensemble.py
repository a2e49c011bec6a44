"""ParameterEnsemble: a point estimate, members, an optional exact box, and predictions.

A linear model predicts ``x·θ`` for a design row ``x``. An ensemble describes the spread of
θ in up to three ways, all optional except the point estimate:

* ``members`` (M, P): parameter vectors (posterior draws, bootstrap refits, box samples);
* an exact box (POPS hypercube; Swinburne & Perez, MLST 6, 015008, 2025): θ = theta + axes @ z
  with z in [lower, upper] component-wise; the bounds of ``x·θ`` over the box have a closed form
  (a linear function on a box is extremal at a corner);
* ``covariance`` (P, P): a parameter covariance for Gaussian summaries.

``noise_variance`` (1/α of a Bayesian fit) is observation noise, not parameter spread: it is
reported separately and only added to a prediction on request, since a property derived from θ
(a defect energy, an elastic constant) carries no observation-noise term.

Size: ~460 lines for one class whose three faces (predictions with exact box bounds, seeded
box sampling, checksummed ``.npz`` persistence) all read the same arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import qmc

from .errors import FileFormatError, MissingInputError

__all__ = ["RANK_RTOL", "SCHEMA_VERSION", "ParameterEnsemble", "Prediction", "deviation_basis"]

SCHEMA_VERSION = 1
_FORMAT = "uqcalc.ParameterEnsemble"
_ARRAYS = ("theta", "members", "axes", "lower", "upper", "covariance")
_BOUNDS = ("exact", "sampled", "gaussian")
_SAMPLERS = ("uniform", "sobol", "halton", "lhs")
# predict() keeps at most about this many floats per intermediate (chunk_rows × M or × P)
_CHUNK_ELEMENTS = 1 << 22

RANK_RTOL = 1e-12
"""Singular values below this fraction of the largest are round-off (rank decisions)."""


def deviation_basis(deviations: np.ndarray, rtol: float = RANK_RTOL) -> np.ndarray:
    """Orthonormal basis (r, P) of the span of parameter deviations (K, P), r = numerical rank.

    Propagation uses it wherever work scales with the number of directions the members
    actually explore (r ≤ min(M, P); r = R for a POPS box), not with P.
    """
    _, s, vt = np.linalg.svd(np.atleast_2d(np.asarray(deviations, dtype=float)), full_matrices=False)
    return vt[s > rtol * max(s.max(initial=0.0), 1e-300)]


@dataclass
class Prediction:
    """Predictions of an ensemble for a batch of design rows.

    Attributes
    ----------
    mean : ndarray
        ``X @ theta`` (the point estimate, not the member mean), shape ``X.shape[:-1]``.
    std : ndarray
        Standard deviation ``sqrt(diag(X Σ Xᵀ))`` (plus ``noise_variance`` if requested).
    lower, upper : ndarray
        Bounds in the mode named by ``bounds``.
    members : ndarray or None
        Member predictions, member axis first: shape ``(M,) + X.shape[:-1]``.
    bounds : str
        ``"exact"``, ``"sampled"`` or ``"gaussian"``.
    """

    mean: np.ndarray
    std: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    members: np.ndarray | None
    bounds: str

    @property
    def width(self) -> np.ndarray:
        """``upper - lower``."""
        return self.upper - self.lower


def _jsonable(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"metadata value of type {type(value).__name__} is not JSON-serialisable")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class ParameterEnsemble:
    """Parameter uncertainty of a linear-in-parameter model.

    Parameters
    ----------
    theta : (P,) array
        Point estimate; every prediction's ``mean`` is ``X @ theta``.
    members : (M, P) array, optional
        Parameter vectors; ``None`` gives an empty (0, P) array.
    axes : (P, R) array, optional
        Orthonormal columns spanning the box (with ``lower``/``upper``).
    lower, upper : (R,) arrays, optional
        Box limits in box coordinates ``z``: θ = theta + axes @ z, lower ≤ z ≤ upper.
    covariance : (P, P) array, optional
        Parameter covariance used for ``std``. When absent, ``std`` uses the members' sample
        covariance around their own mean (ddof=1).
    noise_variance : float, optional
        Observation-noise variance 1/α of a Bayesian fit (weighted-row units); added to
        ``std**2`` only with ``predict(..., include_noise=True)``.
    metadata : dict, optional
        JSON-able provenance (backend, hyperparameters, seed, descriptor spec, training-set
        digest, versions).
    """

    def __init__(
        self,
        theta,
        members=None,
        axes=None,
        lower=None,
        upper=None,
        covariance=None,
        noise_variance: float | None = None,
        metadata: dict | None = None,
    ):
        theta = np.array(theta, dtype=float)
        if theta.ndim != 1 or theta.size == 0:
            raise ValueError(f"theta must be a non-empty 1-D array, got shape {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError("theta has non-finite entries")
        P = theta.size
        members = np.zeros((0, P)) if members is None else np.array(members, dtype=float)
        if members.ndim != 2 or members.shape[1] != P:
            raise ValueError(f"members must have shape (M, {P}), got {members.shape}")
        if not np.all(np.isfinite(members)):
            raise ValueError("members have non-finite entries")
        box = (axes, lower, upper)
        if any(b is not None for b in box) and not all(b is not None for b in box):
            raise ValueError("axes, lower and upper must be given together")
        if axes is not None:
            axes = np.array(axes, dtype=float)
            lower = np.array(lower, dtype=float).reshape(-1)
            upper = np.array(upper, dtype=float).reshape(-1)
            if axes.ndim != 2 or axes.shape[0] != P:
                raise ValueError(f"axes must have shape ({P}, R), got {axes.shape}")
            R = axes.shape[1]
            if lower.shape != (R,) or upper.shape != (R,):
                raise ValueError(f"lower/upper must have shape ({R},), got {lower.shape}, {upper.shape}")
            if not (np.all(np.isfinite(axes)) and np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
                raise ValueError("box has non-finite entries")
            if np.any(lower > upper):
                raise ValueError("box lower > upper on some axis")
            gram = axes.T @ axes
            if R and not np.allclose(gram, np.eye(R), atol=1e-8):
                raise ValueError("box axes must be orthonormal columns")
        if covariance is not None:
            covariance = np.array(covariance, dtype=float)
            if covariance.shape != (P, P):
                raise ValueError(f"covariance must have shape ({P}, {P}), got {covariance.shape}")
            if not np.all(np.isfinite(covariance)):
                raise ValueError("covariance has non-finite entries")
        if noise_variance is not None:
            noise_variance = float(noise_variance)
            if not (np.isfinite(noise_variance) and noise_variance >= 0):
                raise ValueError(f"noise_variance must be finite and >= 0, got {noise_variance}")
        self.theta = theta
        self.members = members
        self.axes, self.lower, self.upper = axes, lower, upper
        self.covariance = covariance
        self.noise_variance = noise_variance
        self.metadata = dict(metadata or {})
        self._member_cov = None

    def shifted(self, delta: np.ndarray, **metadata) -> ParameterEnsemble:
        """This ensemble moved by ``delta`` in parameter space (θ̄, members and box centre).

        Spreads (box axes and limits about θ̄, covariance, noise) are unchanged; ``metadata``
        entries are added to a copy of the ensemble's.
        """
        delta = np.asarray(delta, dtype=float)
        if delta.shape != self.theta.shape:
            raise ValueError(f"delta must have shape {self.theta.shape}, got {delta.shape}")
        return ParameterEnsemble(
            self.theta + delta,
            members=self.members + delta,
            axes=self.axes, lower=self.lower, upper=self.upper,
            covariance=self.covariance, noise_variance=self.noise_variance,
            metadata={**self.metadata, **metadata},
        )

    # -- shape ---------------------------------------------------------------------------

    @property
    def n_params(self) -> int:
        return self.theta.size

    @property
    def n_members(self) -> int:
        return self.members.shape[0]

    @property
    def has_box(self) -> bool:
        return self.axes is not None

    def __repr__(self) -> str:
        box = f", box R={self.axes.shape[1]}" if self.has_box else ""
        cov = ", covariance" if self.covariance is not None else ""
        backend = self.metadata.get("backend", "?")
        return f"ParameterEnsemble(backend={backend}, P={self.n_params}, M={self.n_members}{box}{cov})"

    # -- derived matrices ----------------------------------------------------------------

    def parameter_covariance(self) -> np.ndarray:
        """The Σ used by ``std``: ``covariance`` if given, else the members' sample covariance.

        The member covariance is taken around the members' own mean with ddof=1 (so it is
        the spread of the ensemble, not its mean-square distance from ``theta``).
        """
        if self.covariance is not None:
            return self.covariance
        if self._member_cov is None:
            if self.n_members < 2:
                raise ValueError("std needs a covariance or at least 2 members")
            d = self.members - self.members.mean(axis=0)
            self._member_cov = d.T @ d / (self.n_members - 1)
        return self._member_cov

    def box_second_moment(self) -> np.ndarray:
        """Exact second moment E[(θ−theta)(θ−theta)ᵀ] for θ uniform in the box.

        ``U [diag((u−l)²/12) + m̄m̄ᵀ] Uᵀ`` with m̄ = (l + u)/2 (uncentred: the box need not be
        centred on ``theta``).
        """
        if not self.has_box:
            raise ValueError("this ensemble has no box")
        mid = 0.5 * (self.lower + self.upper)
        inner = np.diag((self.upper - self.lower) ** 2 / 12.0) + np.outer(mid, mid)
        return self.axes @ inner @ self.axes.T

    def sample_box(self, n: int, random_state=None, method: str = "uniform") -> np.ndarray:
        """Draw ``n`` parameter vectors in the box.

        Parameters
        ----------
        n : int
            Number of draws.
        random_state : int, Generator or None
            Seed; the same seed gives the same draws for every method.
        method : {"uniform", "sobol", "halton", "lhs"}
            Plain uniform draws or scrambled, seeded quasi-random points (``scipy.stats.qmc``).

        Returns
        -------
        (n, P) array
        """
        if not self.has_box:
            raise ValueError("this ensemble has no box")
        if method not in _SAMPLERS:
            raise ValueError(f"unknown sampling method {method!r}; use one of {_SAMPLERS}")
        n = int(n)
        if n < 0:
            raise ValueError("n must be >= 0")
        rng = np.random.default_rng(random_state)
        R = self.axes.shape[1]
        if R == 0 or n == 0:
            return np.repeat(self.theta[None, :], n, axis=0)
        if method == "uniform":
            u = rng.random((n, R))
        else:
            engine = {"sobol": qmc.Sobol, "halton": qmc.Halton, "lhs": qmc.LatinHypercube}[method]
            with warnings.catch_warnings():
                # Sobol warns when n is not a power of two (balance); the draws are still valid
                warnings.simplefilter("ignore", UserWarning)
                u = engine(d=R, scramble=True, rng=rng).random(n)
        z = self.lower + (self.upper - self.lower) * u
        return self.theta + z @ self.axes.T

    # -- prediction ----------------------------------------------------------------------

    def predict(
        self,
        X,
        bounds: str | None = None,
        include_noise: bool = False,
        z: float = 2.0,
        return_members: bool = True,
        chunk_rows: int | None = None,
    ) -> Prediction:
        """Predict ``X @ θ`` with its uncertainty.

        Parameters
        ----------
        X : (..., P) array
            Design rows (e.g. ``(P,)`` for one energy, ``(N, 3, P)`` for forces).
        bounds : {"exact", "sampled", "gaussian"}, optional
            ``"exact"``: extremes over the box corners, ``x·θ + Σ_r min/max(c_r l_r, c_r u_r)``
            with c = axesᵀx; ``"sampled"``: min/max over members (narrower than exact, and
            widening with M); ``"gaussian"``: mean ± z·std. Default: exact when the ensemble
            has a box, else sampled.
        include_noise : bool
            Add ``noise_variance`` to std² (and so to gaussian bounds). Off by default: a
            property derived from θ has no observation-noise term.
        z : float
            Multiplier for gaussian bounds.
        return_members : bool
            Return the (M, ...) member predictions (memory M × rows).
        chunk_rows : int, optional
            Rows per block; intermediates are O(chunk_rows × max(M, P)).

        Returns
        -------
        Prediction
        """
        X = np.asarray(X, dtype=float)
        P = self.n_params
        if X.ndim == 0 or X.shape[-1] != P:
            raise ValueError(f"X must have last dimension {P}, got shape {X.shape}")
        if bounds is None:
            bounds = "exact" if self.has_box else "sampled"
        if bounds not in _BOUNDS:
            raise ValueError(f"unknown bounds {bounds!r}; use one of {_BOUNDS}")
        if bounds == "exact" and not self.has_box:
            raise ValueError("exact bounds need an ensemble with a box (axes, lower, upper)")
        if bounds == "sampled" and self.n_members == 0:
            raise ValueError("sampled bounds need members")
        if include_noise and self.noise_variance is None:
            raise ValueError("include_noise=True but this ensemble has no noise_variance")
        lead = X.shape[:-1]
        X2 = X.reshape(-1, P)
        n = X2.shape[0]
        M = self.n_members
        need_members = bounds == "sampled" or (return_members and M > 0)
        if chunk_rows is None:
            chunk_rows = max(1, _CHUNK_ELEMENTS // max(M if need_members else 1, P))
        Sigma = self.parameter_covariance() if (self.covariance is not None or M >= 2) else None
        if bounds == "gaussian" and Sigma is None:
            raise ValueError("gaussian bounds need a covariance or at least 2 members")

        mean = np.empty(n)
        std = np.full(n, np.nan)
        lower = np.empty(n)
        upper = np.empty(n)
        member_out = np.empty((M, n)) if (return_members and M > 0) else None
        if self.has_box:
            mid = 0.5 * (self.lower + self.upper)
            half = 0.5 * (self.upper - self.lower)
        for start in range(0, n, chunk_rows):
            sl = slice(start, min(start + chunk_rows, n))
            Xc = X2[sl]
            mean[sl] = Xc @ self.theta
            if Sigma is not None:
                std[sl] = np.sqrt(np.maximum(np.einsum("ij,ij->i", Xc @ Sigma, Xc), 0.0))
            if bounds == "exact":
                c = Xc @ self.axes
                centre = mean[sl] + c @ mid
                radius = np.abs(c) @ half
                lower[sl], upper[sl] = centre - radius, centre + radius
            if need_members:
                Yc = self.members @ Xc.T  # (M, chunk): member-major, as returned
                if bounds == "sampled":
                    lower[sl], upper[sl] = Yc.min(axis=0), Yc.max(axis=0)
                if member_out is not None:
                    member_out[:, sl] = Yc
        if include_noise:
            std = np.sqrt(std**2 + self.noise_variance)
        if bounds == "gaussian":
            lower, upper = mean - z * std, mean + z * std
        return Prediction(
            mean=mean.reshape(lead),
            std=std.reshape(lead),
            lower=lower.reshape(lead),
            upper=upper.reshape(lead),
            members=None if member_out is None else member_out.reshape((M,) + lead),
            bounds=bounds,
        )

    # -- persistence ---------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"theta": self.theta, "members": self.members}
        if self.has_box:
            arrays.update(axes=self.axes, lower=self.lower, upper=self.upper)
        if self.covariance is not None:
            arrays["covariance"] = self.covariance
        return arrays

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` (no pickle) with JSON metadata, schema version and sha256.

        The file is written to ``path`` exactly (no suffix added), atomically.
        """
        path = Path(path)
        arrays = self._arrays()
        try:
            header = json.dumps(
                {
                    "format": _FORMAT,
                    "schema": SCHEMA_VERSION,
                    "noise_variance": self.noise_variance,
                    "metadata": self.metadata,
                    "arrays": sorted(arrays),
                    "sha256": _checksum(arrays),
                },
                default=_jsonable,
                sort_keys=True,
            )
        except TypeError as err:
            raise ValueError(f"cannot save ensemble: {err}") from err
        buffer = io.BytesIO()
        np.savez(buffer, __header__=np.array(header), **arrays)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ParameterEnsemble:
        """Read a file written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is truncated or corrupted, fails its checksum, or has another
            format or schema version.
        """
        path = Path(path)
        if not path.exists():
            raise MissingInputError(f"no such model file: {path}")
        try:
            with np.load(path, allow_pickle=False) as f:
                names = set(f.files)
                if "__header__" not in names:
                    raise FileFormatError("no uqcalc header (not a ParameterEnsemble file)")
                header = json.loads(str(f["__header__"][()]))
                arrays = {name: f[name] for name in names - {"__header__"}}
        except ValueError as err:
            raise FileFormatError(f"cannot read ensemble {path}: {err}") from err
        except Exception as err:  # zipfile.BadZipFile, EOFError, zlib.error, OSError, ...
            raise FileFormatError(f"cannot read ensemble {path}: truncated or corrupted file ({type(err).__name__}: {err})") from err
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise FileFormatError(f"{path}: not a {_FORMAT} file")
        if header.get("schema") != SCHEMA_VERSION:
            raise FileFormatError(
                f"{path}: ensemble schema version {header.get('schema')!r} is not supported "
                f"(this uqcalc reads version {SCHEMA_VERSION})"
            )
        if sorted(arrays) != header.get("arrays"):
            raise FileFormatError(f"{path}: arrays {sorted(arrays)} do not match the header {header.get('arrays')}")
        if _checksum(arrays) != header.get("sha256"):
            raise FileFormatError(f"{path}: sha256 checksum mismatch (corrupted file)")
        return cls(
            theta=arrays["theta"],
            members=arrays["members"],
            axes=arrays.get("axes"),
            lower=arrays.get("lower"),
            upper=arrays.get("upper"),
            covariance=arrays.get("covariance"),
            noise_variance=header.get("noise_variance"),
            metadata=header.get("metadata") or {},
        )
