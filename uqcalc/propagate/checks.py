"""Wrappers that check or widen another propagator's result.

* :class:`VerifyExtremes` re-relaxes the two members with the lowest and highest predicted
  value and flags a deviation beyond tolerance: the expansion does not hold over the ensemble's
  range (or a member relaxes into another state).
* :class:`BoxCorners` evaluates the property exactly — every state re-relaxed — at the two
  corners of a POPS box that extremise its first-order term (:mod:`.corners`), so a bound does
  not rest on uniform samples, which never come near a corner of a many-dimensional box, nor on
  an expansion far from θ̄. The result's ``diagnostics["box"]`` holds them.

Both wrap any propagator: ``BoxCorners(VerifyExtremes(Implicit()))``.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor

import numpy as np

from ..model import LinearModel
from .base import Check, Propagator
from .corners import corner_coordinates, evaluate_corners, finite_difference_slope, property_slope
from .gradient import Gradient
from .implicit import Linear
from .resample import evaluate_members
from .result import PropertyEnsemble

__all__ = ["BoxCorners", "VerifyExtremes"]


def _slope_record(slope: np.ndarray, method: str, info: dict, base: float, ensemble) -> dict:
    """The ``diagnostics["box"]`` entries of a slope found by :class:`BoxCorners` itself."""
    z_lo, z_hi = corner_coordinates(slope, ensemble.lower, ensemble.upper)
    return {"slope": [float(g) for g in slope], "slope_method": method, "slope_info": info,
            "linear_lower": base + float(slope @ z_lo), "linear_upper": base + float(slope @ z_hi),
            "max_member_distance": float(np.linalg.norm(ensemble.members - ensemble.theta, axis=1).max())}


class VerifyExtremes(Check):
    """Re-relax the extreme members of ``inner``'s result; flag deviations above tolerance.

    Parameters
    ----------
    inner : Propagator
        Usually :class:`~.implicit.Implicit`.
    rtol, atol : float
        A deviation above ``max(rtol · std, atol)`` (property units) is flagged.
    """

    def __init__(self, inner: Propagator, *, rtol: float = 0.05, atol: float = 1e-5):
        super().__init__(inner)
        self.rtol = rtol
        self.atol = atol

    def check(self, out: PropertyEnsemble, prop, model: LinearModel, executor: Executor | None,
              progress: bool) -> None:
        if out.members.ndim != 1:
            return
        t0 = time.perf_counter()
        idx = sorted({int(np.nanargmin(out.members)), int(np.nanargmax(out.members))})
        values, errors = evaluate_members(prop, model.descriptor, model.members[idx], idx, executor, progress=False)
        std = out.std
        # a value located only to a resolution (a bisection) is not held to better than it
        tol = max(self.rtol * (std if np.isfinite(std) else 0.0), self.atol, out.diagnostics.get("resolution", 0.0))
        checks = []
        for i in idx:
            predicted = float(out.members[i])
            if i in errors:
                checks.append({"member": i, "predicted": predicted, "resampled": None, "error": errors[i]})
                out.flag(f"extreme member {i} could not be re-relaxed ({errors[i]}): the expansion is unchecked there")
                continue
            exact = float(values[i])
            dev = abs(predicted - exact)
            checks.append({"member": i, "predicted": predicted, "resampled": exact, "deviation": dev,
                           "deviation_over_std": dev / std if std else float("inf"), "tolerance": tol})
            if dev > tol:
                out.flag(
                    f"extreme member {i}: {out.method} predicts {predicted:.6g}, re-relaxation gives {exact:.6g} "
                    f"{out.unit} (|Δ| = {dev:.3g} > {tol:.3g} = max({self.rtol}·std, {self.atol})): the expansion "
                    "does not hold over the ensemble's range (or the member relaxes into another state); "
                    "use method='resample'"
                )
        out.diagnostics["verify"] = checks
        out.diagnostics["time_verify"] = time.perf_counter() - t0


class BoxCorners(Check):
    """Evaluate a scalar property exactly at the two first-order corners of a POPS box.

    The first-order slope comes from ``inner``'s result when it has one (implicit/linear
    expansions, a property's own gradient: exact, two extra evaluations), else from the
    property's ``parameter_gradient`` when it has one (bulk a0, B, C_ij: one more evaluation;
    members resampled, corners from the gradient), else, for a combination of stationary states,
    from :class:`~.implicit.Linear` at θ̄ (the envelope theorem: one relaxation of the states)
    and otherwise from central differences along
    the R box axes (2R + 1 evaluations), except for a property that
    declares itself not ``smooth_in_theta`` (then there are no corners) or where 2R + 1 exceeds
    ``max_slope_evaluations`` (a qSNAP box, R ≈ 1600, would cost 3200 evaluations of the property:
    the corners are skipped and flagged). Ensembles without a box and array-valued properties are
    left as they are.

    Parameters
    ----------
    inner : Propagator
    step : float, default 0.1
        Finite-difference step along each box axis, as a fraction of the half-width.
    max_slope_evaluations : int, default 1000
        Most property evaluations spent on a finite-difference slope.
    state_slope : bool, default True
        Take a resampled combination of stationary states' slope from :class:`~.implicit.Linear`
        at θ̄ (False: central differences, as for any other property).
    """

    def __init__(self, inner: Propagator, *, step: float = 0.1, max_slope_evaluations: int = 1000,
                 state_slope: bool = True):
        super().__init__(inner)
        self.step = step
        self.max_slope_evaluations = max_slope_evaluations
        self.state_slope = state_slope

    def check(self, out: PropertyEnsemble, prop, model: LinearModel, executor: Executor | None,
              progress: bool) -> None:
        ensemble = model.ensemble
        if not ensemble.has_box or np.ndim(out.value) != 0:
            return
        t0 = time.perf_counter()
        box = out.diagnostics.setdefault("box", {})
        if "slope" in box:
            slope = np.asarray(box["slope"])
        elif getattr(prop, "smooth_in_theta", True) and Gradient().supports(prop):
            # the property differentiates itself (bulk a0, B, C_ij): one evaluation, not 2R + 1
            slope, info = property_slope(prop, model, executor)
            box |= _slope_record(slope, "parameter_gradient", info, float(out.value), ensemble)
        elif self.state_slope and Linear().supports(prop):
            # a combination of stationary states (defects, surfaces, phases): its first-order term
            # is the envelope theorem at θ̄ (energy rows of the relaxed states), one relaxation per
            # state whatever R. Where the inner propagator resampled (an implicit expansion that
            # re-relaxation contradicted, say) the corners still need no 2R + 1 evaluations.
            t1 = time.perf_counter()
            first = Linear()(prop, model, executor, progress=False)
            slope = np.asarray(first.diagnostics["box"]["slope"])
            info = {"n_evaluations": 1, "wall_s": time.perf_counter() - t1, "flags": list(first.flags)}
            box |= _slope_record(slope, "first-order implicit at θ̄", info, float(out.value), ensemble)
        elif not getattr(prop, "smooth_in_theta", True):
            box["skipped"] = ("no slope from the propagator, and the property is not smooth in θ on the scale of a "
                              "finite-difference step: the bounds are the members' range")
            return
        elif 2 * ensemble.axes.shape[1] + 1 > self.max_slope_evaluations:
            n = 2 * ensemble.axes.shape[1] + 1
            box["skipped"] = (f"no slope from the propagator, and central differences along the {n // 2} box axes "
                              f"would take {n} evaluations (> max_slope_evaluations = {self.max_slope_evaluations}): "
                              "the bounds are the members' range")
            out.flag(f"box corners skipped: {box['skipped']}")
            return
        else:
            slope, info = finite_difference_slope(prop, model, executor, self.step, progress)
            box |= _slope_record(slope, "central differences", info, float(out.value), ensemble)
            if info["failed_axes"]:
                out.flag(f"box slope: both finite-difference evaluations failed on axes {info['failed_axes']}; "
                         "their slope is taken as 0")
        box |= evaluate_corners(prop, model, slope, executor, progress=False)
        for where, err in zip(("minimising", "maximising"), box["corner_errors"]):
            if err is not None:
                out.flag(f"the {where} box corner could not be evaluated ({err})")
        box["time_exact_corners"] = time.perf_counter() - t0
