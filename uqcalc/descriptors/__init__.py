"""Linear feature maps: ``Atoms -> Rows`` (SNAP through LAMMPS, a pure-numpy pair basis, a
foundation model's last layer).

``LastLayer`` lives in :mod:`uqcalc.descriptors.last_layer`, which imports torch; it is loaded
only when asked for, so the rest of uqcalc never imports torch.
"""

from __future__ import annotations

import json
import threading

from .base import Descriptor, Rows
from .pair import PairBasis
from .snap import SNAP

__all__ = ["SNAP", "Descriptor", "LastLayer", "PairBasis", "Rows", "from_spec", "worker_descriptor"]

_TYPES = {"SNAP": SNAP, "PairBasis": PairBasis}
_LAZY = {"LastLayer": "last_layer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def from_spec(spec: dict) -> Descriptor:
    """Rebuild a descriptor from :meth:`Descriptor.spec` output.

    Raises
    ------
    ValueError
        If ``spec["type"]`` names no known descriptor.
    """
    kind = spec.get("type")
    if kind in _LAZY:
        cls = __getattr__(kind)
    elif kind in _TYPES:
        cls = _TYPES[kind]
    else:
        raise ValueError(f"unknown descriptor type {kind!r}; known: {sorted(_TYPES) + sorted(_LAZY)}")
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    return cls(**kwargs)


_local = threading.local()


def worker_descriptor(spec: dict | Descriptor) -> Descriptor:
    """The descriptor of ``spec``, built once per worker thread and kept.

    Executor tasks receive a descriptor's JSON spec, never a live descriptor (a SNAP descriptor
    holds a LAMMPS instance, which neither pickles nor is thread-safe); rebuilding it for every
    task would start a new LAMMPS instance each time. A live descriptor is returned as it is
    (serial runs).
    """
    if not isinstance(spec, dict):
        return spec
    cache = getattr(_local, "descriptors", None)
    if cache is None:
        cache = _local.descriptors = {}
    key = json.dumps(spec, sort_keys=True)
    if key not in cache:
        cache[key] = from_spec(spec)
    return cache[key]
