"""Linear feature maps: ``Atoms -> Rows`` (SNAP through LAMMPS, a pure-numpy pair basis)."""

from __future__ import annotations

from .base import Descriptor, Rows
from .pair import PairBasis
from .snap import SNAP

__all__ = ["SNAP", "Descriptor", "PairBasis", "Rows", "from_spec"]

_TYPES = {"SNAP": SNAP, "PairBasis": PairBasis}


def from_spec(spec: dict) -> Descriptor:
    """Rebuild a descriptor from :meth:`Descriptor.spec` output.

    Raises
    ------
    ValueError
        If ``spec["type"]`` names no known descriptor.
    """
    kind = spec.get("type")
    if kind not in _TYPES:
        raise ValueError(f"unknown descriptor type {kind!r}; known: {sorted(_TYPES)}")
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    return _TYPES[kind](**kwargs)
