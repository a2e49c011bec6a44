"""Strict JSON values from numpy-laden Python objects (strict JSON has no NaN or infinity)."""

from __future__ import annotations

import numpy as np

__all__ = ["strict_json"]


def strict_json(value, infinity: float | None = None):
    """Arrays and numpy scalars → plain JSON values, recursively; NaN → None.

    ``infinity``: what ±inf become — None (a missing value; the default), or a large finite
    magnitude such as 1e308 that keeps its sign (stores where "unbounded" must stay readable).
    """
    if isinstance(value, np.ndarray):
        return strict_json(value.tolist(), infinity)
    if isinstance(value, dict):
        return {str(k): strict_json(v, infinity) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v, infinity) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if np.isnan(v):
            return None
        if np.isinf(v):
            return None if infinity is None else float(np.sign(v)) * infinity
        return v
    return value
