"""The two corners of a POPS box that bound a property's first-order term, and exact values there.

A POPS hypercube ensemble is θ = θ̄ + A z with z in the box [l, u] (Swinburne & Perez,
Mach. Learn.: Sci. Technol. 6, 015008 (2025)). A property's first-order term g·z is linear
in z, so over the box it peaks at a corner: z_r = u_r where g_r > 0, else l_r (and the mirror
corner for the minimum). Uniform samples of a box in R dimensions almost never come near a
corner (their distance from the centre concentrates ~√3 below it), so the sampled member range
understates the box; the corners recover its extent.

Where the first-order term comes from:

* ``implicit``/``linear`` propagation: exactly, from the expansions (:func:`.implicit._box_corners`);
* from the property's own ``parameter_gradient`` where it has one (a cubic crystal's a0, B and
  C_ij, :mod:`uqcalc.properties.bulk_sensitivity`): one evaluation, :func:`property_slope`;
* for a combination of stationary states that was resampled (an implicit expansion contradicted
  by re-relaxation falls back to resampling): the first-order implicit term at θ̄
  (:class:`~.implicit.Linear`, one relaxation of the states);
* otherwise (c/a, K_Ic, …): central finite differences along the box axes, 2R evaluations of
  ``prop.evaluate``.

:func:`evaluate_corners` then evaluates the property itself at the two corners — every state
re-relaxed with the corner's parameters — so a bound does not rest on an expansion far from θ̄.
"""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

from ..model import LinearModel
from .resample import evaluate_members

__all__ = ["corner_coordinates", "evaluate_corners", "finite_difference_slope", "property_slope"]


def corner_coordinates(slope: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Box coordinates (z_lo, z_hi) of the corners that minimise and maximise ``slope · z``."""
    slope = np.asarray(slope, dtype=float)
    z_hi = np.where(slope > 0, upper, lower)
    z_lo = np.where(slope > 0, lower, upper)
    return z_lo, z_hi


def finite_difference_slope(prop, model: LinearModel, executor: Executor | None = None, step: float = 0.1,
                            progress: bool = False) -> tuple[np.ndarray, dict]:
    """First-order change of ``prop`` per unit box coordinate, by central differences at θ̄.

    Parameters
    ----------
    prop : Property
        Scalar property (``evaluate(calc) -> float``).
    model : LinearModel
        Its ensemble has a box (``axes``, ``lower``, ``upper``).
    executor : concurrent.futures.Executor, optional
    step : float, default 0.1
        Step along axis r as a fraction of the box's half-width on that axis: small enough to be
        local, large enough that relaxation tolerances (fmax 1e-3 eV/Å) do not swamp the change.
    progress : bool

    Returns
    -------
    slope : (R,) ndarray
        A failed side falls back to a one-sided difference with θ̄'s value; both sides failed:
        0 (recorded).
    info : dict
        ``n_evaluations`` and the axes that failed.
    """
    ensemble = model.ensemble
    theta, axes = ensemble.theta, ensemble.axes
    R = axes.shape[1]
    h = step * 0.5 * (ensemble.upper - ensemble.lower)
    h = np.where(h > 0, h, 1.0)
    thetas = np.concatenate([theta[None, :], theta + h[:, None] * axes.T, theta - h[:, None] * axes.T])
    labels = list(range(-1, 2 * R))
    values, errors = evaluate_members(prop, model.descriptor, thetas, labels, executor, progress=progress,
                                      description=f"box slope {prop.name}".strip())
    f0 = values.get(-1)
    slope = np.zeros(R)
    failed = []
    for r in range(R):
        up, down = values.get(r), values.get(R + r)
        if up is not None and down is not None:
            slope[r] = (up - down) / (2 * h[r])
        elif up is not None and f0 is not None:
            slope[r] = (up - f0) / h[r]
        elif down is not None and f0 is not None:
            slope[r] = (f0 - down) / h[r]
        else:
            failed.append(r)
    info = {"n_evaluations": len(labels), "step": step, "failed_axes": failed,
            "errors": {str(k): v for k, v in sorted(errors.items())[:5]}}
    return slope, info


def property_slope(prop, model: LinearModel, executor: Executor | None = None) -> tuple[np.ndarray, dict]:
    """First-order change of ``prop`` per unit box coordinate from its ``parameter_gradient`` at θ̄.

    Returns
    -------
    slope : (R,) ndarray
    info : dict
        ``n_evaluations`` (1) and the property's own gradient information.
    """
    ensemble = model.ensemble
    # the box axes need not be orthonormal: the slope per box coordinate is the derivative
    # along each axis column itself
    _, slope, info = prop.parameter_gradient(model.descriptor, ensemble.theta, ensemble.axes.T, executor=executor)
    return np.asarray(slope, dtype=float), {"n_evaluations": 1, **{k: v for k, v in info.items() if np.isscalar(v)}}


def evaluate_corners(prop, model: LinearModel, slope: np.ndarray, executor: Executor | None = None,
                     progress: bool = False) -> dict:
    """``prop.evaluate`` at the two box corners that extremise ``slope · z`` (states re-relaxed there).

    Returns
    -------
    dict
        ``exact_at_corners`` ([at the minimising corner, at the maximising corner]; None where the
        evaluation failed), ``corner_errors`` and ``corner_distance`` (|θ_corner − θ̄|).
    """
    ensemble = model.ensemble
    z_lo, z_hi = corner_coordinates(slope, ensemble.lower, ensemble.upper)
    corners = ensemble.theta[None, :] + np.stack([z_lo, z_hi]) @ ensemble.axes.T
    values, errors = evaluate_members(prop, model.descriptor, corners, [0, 1], executor, progress=progress,
                                      description=f"box corners {prop.name}".strip())
    return {
        "exact_at_corners": [values.get(0), values.get(1)],
        "corner_errors": [errors.get(0), errors.get(1)],
        "corner_distance": [float(d) for d in np.linalg.norm(corners - ensemble.theta, axis=1)],
    }
