"""PropertyEnsemble: a property's point value, member values, spread and the record of how they were got."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._json import strict_json

__all__ = ["PropagationError", "PropagationWarning", "PropertyEnsemble"]

_FORMAT = "uqcalc.PropertyEnsemble"
_SCHEMA = 1


class PropagationWarning(UserWarning):
    """A propagated property is flagged (expansion outside its range, saddle point, failed members)."""


class PropagationError(RuntimeError):
    """Propagation produced no usable value (every member failed)."""


def _from_json(value) -> np.ndarray:
    def conv(v):
        if isinstance(v, list):
            return [conv(x) for x in v]
        return np.nan if v is None else v

    return np.asarray(conv(value), dtype=float)


@dataclass
class PropertyEnsemble:
    """The ensemble of one property's values.

    Attributes
    ----------
    name, unit : str
        Of the property.
    method : {"resample", "implicit", "linear"}
        How the members were obtained.
    value : float or ndarray
        The property at the ensemble's point estimate θ̄.
    members : ndarray
        Member values, member axis first, ``(M,) + value shape``; NaN where a member failed.
    failed : list of dict
        ``{"member": index, "error": message}`` for every member without a value.
    flags : list of str
        Reasons to distrust the result (e.g. an extreme member that the expansion misses);
        empty when nothing was found.
    diagnostics : dict
        Method-specific record: timings, descriptor calls, per-state Hessian information, the
        re-relaxation checks of extreme members, box-corner bounds.
    metadata : dict
        Descriptor spec, ensemble backend, options.

    Notes
    -----
    ``std`` (ddof=1), ``lower``/``upper`` (min/max) and ``mean`` are over the members that have a
    value.
    """

    name: str
    unit: str
    method: str
    value: float | np.ndarray
    members: np.ndarray
    failed: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.members = np.asarray(self.members, dtype=float)
        if isinstance(self.value, (list, tuple, np.ndarray)):
            self.value = np.asarray(self.value, dtype=float)
        else:
            self.value = float(self.value)

    # -- summaries --------------------------------------------------------------------------

    @property
    def n_members(self) -> int:
        return self.members.shape[0]

    @property
    def valid(self) -> np.ndarray:
        """(M,) bool: members with a value."""
        if self.members.ndim == 1:
            return np.isfinite(self.members)
        return np.all(np.isfinite(self.members.reshape(self.n_members, -1)), axis=1)

    def _ok(self) -> np.ndarray:
        return self.members[self.valid]

    @property
    def std(self):
        ok = self._ok()
        if ok.shape[0] < 2:
            return np.nan * np.ones_like(self.value) if np.ndim(self.value) else np.nan
        s = ok.std(axis=0, ddof=1)
        return float(s) if np.ndim(s) == 0 else s

    @property
    def mean(self):
        m = self._ok().mean(axis=0)
        return float(m) if np.ndim(m) == 0 else m

    @property
    def lower(self):
        m = self._ok().min(axis=0)
        return float(m) if np.ndim(m) == 0 else m

    @property
    def upper(self):
        m = self._ok().max(axis=0)
        return float(m) if np.ndim(m) == 0 else m

    @property
    def width(self):
        """``upper − lower``."""
        return self.upper - self.lower

    def __repr__(self) -> str:
        def fmt(v):
            return f"{v:.6g}" if np.ndim(v) == 0 else f"array{np.shape(v)}"

        extra = f", failed={len(self.failed)}" if self.failed else ""
        extra += f", flags={len(self.flags)}" if self.flags else ""
        return (
            f"PropertyEnsemble({self.name!r}, method={self.method!r}, value={fmt(self.value)} {self.unit}, "
            f"std={fmt(self.std)}, lower={fmt(self.lower)}, upper={fmt(self.upper)}, M={self.n_members}{extra})"
        )

    def flag(self, message: str, warn: bool = True) -> None:
        """Add a flag (and emit it as a :class:`PropagationWarning`)."""
        self.flags.append(message)
        if warn:
            warnings.warn(f"{self.name}: {message}", PropagationWarning, stacklevel=3)

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-able dict (strict JSON: NaN written as null); :meth:`from_dict` inverts it."""
        return strict_json(
            {
                "format": _FORMAT,
                "schema": _SCHEMA,
                "name": self.name,
                "unit": self.unit,
                "method": self.method,
                "value": self.value,
                "std": self.std,
                "lower": self.lower,
                "upper": self.upper,
                "members": self.members,
                "failed": list(self.failed),
                "flags": list(self.flags),
                "diagnostics": self.diagnostics,
                "metadata": self.metadata,
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> PropertyEnsemble:
        """Rebuild from :meth:`to_dict` output (summaries are recomputed from the members)."""
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a {_FORMAT} dict (format={data.get('format')!r})")
        if int(data.get("schema", 0)) > _SCHEMA:
            raise ValueError(f"schema {data['schema']} is newer than this uqcalc reads ({_SCHEMA})")
        value = data["value"]
        value = _from_json(value) if isinstance(value, list) else (np.nan if value is None else float(value))
        return cls(
            name=data["name"],
            unit=data["unit"],
            method=data["method"],
            value=value,
            members=_from_json(data["members"]),
            failed=list(data.get("failed", [])),
            flags=list(data.get("flags", [])),
            diagnostics=dict(data.get("diagnostics", {})),
            metadata=dict(data.get("metadata", {})),
        )

    def to_json(self, path: str | os.PathLike | None = None, **kwargs) -> str:
        """JSON text of :meth:`to_dict`; also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), allow_nan=False, **kwargs)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> PropertyEnsemble:
        """Read :meth:`to_json` output (a JSON string or a file path)."""
        s = str(text_or_path)
        if not s.lstrip().startswith("{"):
            with open(s) as f:
                s = f.read()
        return cls.from_dict(json.loads(s))
