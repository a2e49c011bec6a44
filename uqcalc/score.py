"""Score stored uncertainties against reference labels: ``uqcalc score FILE``.

Frames written by ``uqcalc predict`` (or :func:`uqcalc.io.store_uncertainties`) carry the point
estimate (``uq_*``), bounds (``*_lower``/``*_upper``) and std (``*_std``) next to the DFT labels
(``REF_energy``, ``REF_forces``, ``REF_stress``). :func:`score_frames` compares them per group
and kind: RMSE and MAE of the point estimate, the fraction of references inside the bounds,
inside ±2σ, and the mean half-width of the bounds. Energies are per atom (as the design rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from .data import ENERGY, FORCES, STRESS, group_of
from .errors import InputError
from .io import read_uncertainties

__all__ = ["score_frames"]

_KINDS = (("energy", ENERGY, "energy"), ("force", FORCES, "forces"), ("stress", STRESS, "stress"))


def _reference(atoms: Atoms, key: str):
    if key in atoms.info:
        return np.asarray(atoms.info[key], dtype=float)
    if key in atoms.arrays:
        return np.asarray(atoms.arrays[key], dtype=float)
    return None


def score_frames(frames: Sequence[Atoms], atol: float = 1e-8) -> list[dict]:
    """Per (group, kind) and overall (group ``"all"``): n, rmse, mae, coverage, coverage_2sigma,
    mean_half_width.

    ``atol``: a reference within this distance of a bound counts as inside. extxyz stores
    per-atom columns with 8 decimals, which turns the ~1e-10-wide bounds of force components
    that vanish by symmetry (perfect crystals) into arbitrary in/out calls; 1e-8 (eV/Å, eV/atom,
    eV/Å^3) is that precision.

    Raises
    ------
    InputError
        If no frame has both a reference label and stored predictions, naming what is missing.
    """
    values: dict[tuple[str, str], dict[str, list]] = {}
    for index, atoms in enumerate(frames):
        stored = read_uncertainties(atoms)
        n = len(atoms)
        for kind, ref_key, name in _KINDS:
            ref = _reference(atoms, ref_key)
            if ref is None or name not in stored:
                continue
            pred = np.asarray(stored[name], dtype=float)
            if ref.shape == (3, 3):
                ref = ref[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            if pred.shape != ref.shape:
                raise InputError(f"frame {index}: {name} has shape {pred.shape}, {ref_key} {ref.shape}")
            scale = 1.0 / n if kind == "energy" else 1.0
            row = {"err": (pred - ref).ravel() * scale}
            if f"{name}_lower" in stored:
                lo = np.asarray(stored[f"{name}_lower"]).ravel()
                hi = np.asarray(stored[f"{name}_upper"]).ravel()
                r = ref.ravel()
                row["inside"] = (lo - atol <= r) & (r <= hi + atol)
                row["half"] = 0.5 * (hi - lo) * scale
            if f"{name}_std" in stored:
                row["in2s"] = np.abs(pred - ref).ravel() <= 2 * np.asarray(stored[f"{name}_std"]).ravel()
            for group in (group_of(atoms), "all"):
                bucket = values.setdefault((group, kind), {})
                for key, value in row.items():
                    bucket.setdefault(key, []).append(np.atleast_1d(value))
    if not values:
        raise InputError("no frame has both REF_* labels and stored predictions (uq_energy, ...); "
                         "write them with `uqcalc predict` on labelled frames")
    out = []
    for (group, kind), bucket in sorted(values.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        err = np.concatenate(bucket["err"])
        row = {"group": group, "kind": kind, "n": int(err.size), "rmse": float(np.sqrt(np.mean(err**2))),
               "mae": float(np.mean(np.abs(err)))}
        if "inside" in bucket:
            row["coverage"] = float(np.mean(np.concatenate(bucket["inside"])))
            row["mean_half_width"] = float(np.mean(np.concatenate(bucket["half"])))
        if "in2s" in bucket:
            row["coverage_2sigma"] = float(np.mean(np.concatenate(bucket["in2s"])))
        out.append(row)
    return out
