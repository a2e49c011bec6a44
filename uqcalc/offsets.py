"""Nuisance offsets of the references: one isotropic stress offset per DFT sub-campaign.

DFT data assembled from several campaigns carry campaign-dependent Pulay-like stress offsets
(the Wood et al. W set: EOS_Data −0.4…−0.9 GPa, slice_sample ≈ 0; ``shared/data/README.md``).
Fitting raw stresses would teach the potential those offsets; not fitting them leaves the
elastic constants constrained only through energies. :func:`profile_offsets` fits one offset
p_k per campaign k jointly with the potential, σ_ii(frame) = x·θ + p_k on the normal components
of every stress row of campaign k, and returns the design with y − p_k on those rows: the
offsets are nuisance parameters, profiled out at their joint least-squares value and kept
*outside* every backend's posterior (a POPS box, a Bayesian posterior) built on the returned
design, which has the potential's parameters only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from ase import units

from .design import DesignMatrix

__all__ = ["offsets_in_gpa", "profile_offsets", "stress_components"]


def stress_components(design: DesignMatrix) -> np.ndarray:
    """Voigt index (0–5: xx yy zz yz xz xy) of every stress row, −1 for other rows.

    A frame's six stress rows are contiguous and in Voigt order (:meth:`DesignMatrix.build`).
    """
    out = np.full(design.n_rows, -1)
    rows = np.flatnonzero(design.kind == "stress")
    if rows.size == 0:
        return out
    config = np.asarray(design.config)[rows]
    start = np.r_[True, (np.diff(config) != 0) | (np.diff(rows) != 1)]
    block = np.cumsum(start) - 1
    first = rows[start][block]
    out[rows] = rows - first
    if np.any(out[rows] > 5):
        raise ValueError("stress rows are not in blocks of six per frame")
    return out


def profile_offsets(design: DesignMatrix, campaign: Sequence[str | None], ridge: float = 0.0
                    ) -> tuple[DesignMatrix, dict[str, float]]:
    """Fit one isotropic stress offset per campaign jointly with θ; return the corrected design.

    Parameters
    ----------
    design : DesignMatrix
        With stress rows (weight > 0) for the offsets to be determined.
    campaign : sequence of str or None, one per row
        Campaign label of each row's frame (None or "": no offset for that frame). Only the
        normal stress components (xx, yy, zz) of labelled frames get the offset.
    ridge : float
        Ridge on θ (not on the offsets) in the joint least-squares fit; 0: minimum-norm least
        squares (``numpy.linalg.lstsq``), which also handles a rank-deficient X.

    Returns
    -------
    (DesignMatrix, dict)
        The design with y − p_k on the offset rows (X, w and labels unchanged) and
        ``{campaign: p_k}`` in eV/Å³ (ASE sign: positive is tensile).
    """
    labels = np.asarray([("" if c is None else str(c)) for c in campaign])
    if labels.shape != (design.n_rows,):
        raise ValueError(f"campaign needs one label per row ({design.n_rows}), got {labels.shape}")
    component = stress_components(design)
    normal = (component >= 0) & (component <= 2) & (labels != "")
    names = sorted({str(n) for n in labels[normal]})
    if not names:
        return design, {}
    O = np.zeros((design.n_rows, len(names)))
    for k, name in enumerate(names):
        O[normal & (labels == name), k] = 1.0
    active = O[design.w > 0].any(axis=0)
    if not active.all():
        missing = [n for n, a in zip(names, active) if not a]
        raise ValueError(f"campaigns {missing} have no stress rows with positive weight: their offsets are undetermined")
    sw = np.sqrt(design.w)
    A = np.hstack([design.X * sw[:, None], O * sw[:, None]])
    b = design.y * sw
    P = design.n_params
    if ridge > 0:
        A = np.vstack([A, np.hstack([np.sqrt(ridge) * np.eye(P), np.zeros((P, len(names)))])])
        b = np.r_[b, np.zeros(P)]
    solution = np.linalg.lstsq(A, b, rcond=None)[0]
    offsets = solution[P:]
    corrected = dataclasses.replace(design, y=design.y - O @ offsets)
    return corrected, {n: float(v) for n, v in zip(names, offsets)}


def offsets_in_gpa(offsets: dict[str, float]) -> dict[str, float]:
    """The offsets of :func:`profile_offsets` in GPa (ASE sign)."""
    return {k: v / units.GPa for k, v in offsets.items()}
