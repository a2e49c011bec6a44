"""Exact propagation of a property that is affine in the parameters, from rank(δ) + 1 evaluations.

For a linear model, anything computed from fixed structures without relaxation — an energy, a
stress at a fixed homogeneous strain — is affine in θ: f(θ) = f(θ̄) + g·(θ − θ̄). Evaluating f at
θ̄ and one step along each direction the members explore (an orthonormal basis of the member
deviations, r ≤ min(M, P) directions) gives every member exactly. The property must declare
it (``affine_in_theta = True``); one direct evaluation of the member farthest from θ̄ checks the
declaration.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor

import numpy as np

from ..ensemble import deviation_basis
from ..model import LinearModel
from ..properties.base import Property
from .base import Propagator, require_members, result_metadata
from .resample import Resample, evaluate_members
from .result import PropagationError, PropertyEnsemble

__all__ = ["Affine"]

# relative mismatch of the check above which the declaration is wrong
_AFFINE_RTOL = 1e-7


class Affine(Propagator):
    """Propagate a property declared ``affine_in_theta`` exactly from rank(δ) + 1 evaluations.

    When rank(δ) + 1 ≥ M every member is evaluated instead (it is no cheaper).
    """

    name = "affine"

    def __init__(self):
        pass

    def supports(self, prop) -> bool:
        return isinstance(prop, Property) and bool(prop.affine_in_theta)

    def __call__(self, prop, model: LinearModel, executor: Executor | None = None, *,
                 progress: bool = True) -> PropertyEnsemble:
        require_members(model)
        theta, members = model.theta, model.members
        deltas = members - theta
        basis = deviation_basis(deltas)  # (r, P)
        if basis.shape[0] + 1 >= model.ensemble.n_members:
            out = Resample()(prop, model, executor, progress=progress)
            out.method = self.name
            out.diagnostics["affine"] = "rank(δ) + 1 ≥ M: every member evaluated"
            return out
        step = float(np.median(np.linalg.norm(deltas, axis=1)))
        thetas = np.concatenate([theta[None, :], theta + step * basis])
        labels = list(range(thetas.shape[0]))
        t0 = time.perf_counter()
        values, errors = evaluate_members(prop, model.descriptor, thetas, labels, executor, progress=progress,
                                          description=f"affine {prop.name}".strip())
        if errors:
            raise PropagationError(f"{prop.name!r}: evaluation at a probe point failed: {errors[min(errors)]}")
        f = np.array([np.asarray(values[i], dtype=float) for i in labels])
        slope = (f[1:] - f[0]) / step  # (r,) + shape
        pred = f[0] + np.tensordot(deltas @ basis.T, slope, axes=(1, 0))
        far = int(np.argmax(np.linalg.norm(deltas, axis=1)))
        cv, ce = evaluate_members(prop, model.descriptor, members[far : far + 1], [far], executor, progress=False)
        out = PropertyEnsemble(
            name=prop.name, unit=prop.unit, method=self.name,
            value=f[0] if f[0].ndim else float(f[0]), members=pred,
            diagnostics={"affine": {"n_evaluations": len(labels) + 1, "rank": int(basis.shape[0])},
                         "time_members": time.perf_counter() - t0},
            metadata=result_metadata(prop, model, self),
        )
        if far in ce:
            out.flag(f"affine check: member {far} failed ({ce[far]})")
            return out
        exact = np.asarray(cv[far], dtype=float)
        err = float(np.abs(exact - pred[far]).max())
        out.diagnostics["affine"]["check"] = {"member": far, "max_abs_error": err}
        if err > _AFFINE_RTOL * (float(np.abs(exact).max()) + 1e-12):
            out.flag(f"affine_in_theta property is not affine: member {far} evaluates to {exact} but the "
                     f"affine prediction is {pred[far]} (|Δ| = {err:.3g}); use method='resample'")
        return out
