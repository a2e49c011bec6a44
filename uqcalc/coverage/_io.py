"""Strict-JSON conversion and atomic writes for the coverage store."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .._json import strict_json


def clean(value):
    """Arrays/numpy scalars → JSON values; NaN → None and ±inf → ±1e308 (strict JSON has neither)."""
    return strict_json(value, infinity=1e308)


def as_float(value) -> float:
    """JSON null → NaN."""
    return float("nan") if value is None else float(value)


def write_json(path: str | os.PathLike, data, sort_keys: bool = False, ensure_ascii: bool = True) -> None:
    """Write ``data`` as strict JSON atomically: a killed run leaves the old file or the new one, never half.

    Readers that race a writer (another process, an MPI rank) see the old file or the new one too.
    ``sort_keys`` and ``ensure_ascii`` as for :func:`json.dump` (files kept in the repository
    sort their keys and keep "Å" readable, so they diff well).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(clean(data), f, indent=1, allow_nan=False, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | os.PathLike):
    """The JSON at ``path``, or None if absent or unreadable (a torn file is recomputed, not trusted)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
