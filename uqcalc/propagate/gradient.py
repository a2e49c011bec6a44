"""First-order propagation of a property that differentiates itself with respect to the parameters.

Some properties are neither affine in θ nor a combination of relaxed states, yet know how to
differentiate themselves: a lattice-trapping bound is the end of a branch of crack-tip equilibria,
whose derivative follows from implicit differentiation at that point
(:mod:`uqcalc.properties.fracture.sensitivity`); a cubic crystal's a0, B and C_ij follow from
the stress rows of a few fixed cells (:mod:`uqcalc.properties.bulk_sensitivity`). Such a
property provides

    parameter_gradient(descriptor, theta, directions, executor=None, progress=False)
        -> (value, slopes (r,), info)

with ``slopes`` its derivative along each row of ``directions`` (and may declare
``has_parameter_gradient = False`` for settings it cannot differentiate, e.g. hcp).
:class:`Gradient` asks for it
along an orthonormal basis of the members' deviations (and the box axes), predicts every member
to first order, ``f(θ̄) + g·(θ_m − θ̄)``, and hands the box slope to
:class:`~.checks.BoxCorners`, which then needs only the two exact corner evaluations.
``info["resolution"]`` (property units) is how precisely ``evaluate`` itself locates the
value (a bisection's final width): :class:`~.checks.VerifyExtremes` does not count deviations
below it against the expansion.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor

import numpy as np

from ..ensemble import deviation_basis
from ..model import LinearModel
from .base import Propagator, require_members, result_metadata
from .corners import corner_coordinates
from .result import PropertyEnsemble

__all__ = ["Gradient"]


class Gradient(Propagator):
    """Propagate a property that provides ``parameter_gradient`` to first order in θ.

    One evaluation of the property (and its gradient) at θ̄, however many members.
    """

    name = "gradient"

    def __init__(self):
        pass

    def supports(self, prop) -> bool:
        # a property may provide the gradient for some of its settings only (bulk: cubic crystals)
        return callable(getattr(prop, "parameter_gradient", None)) and bool(getattr(prop, "has_parameter_gradient", True))

    def __call__(self, prop, model: LinearModel, executor: Executor | None = None, *,
                 progress: bool = True) -> PropertyEnsemble:
        require_members(model)
        t0 = time.perf_counter()
        ensemble = model.ensemble
        theta = ensemble.theta
        deltas = ensemble.members - theta
        spanning = np.concatenate([deltas, ensemble.axes.T]) if ensemble.has_box else deltas
        basis = deviation_basis(spanning)  # (r, P)
        value, slopes, info = prop.parameter_gradient(model.descriptor, theta, basis, executor=executor,
                                                      progress=progress)
        gradient = basis.T @ np.asarray(slopes, dtype=float)  # (P,), within the explored span
        out = PropertyEnsemble(
            name=prop.name, unit=prop.unit, method=self.name, value=float(value),
            members=float(value) + deltas @ gradient,
            diagnostics={"gradient": info, "resolution": float(info.get("resolution", 0.0)),
                         "n_directions": int(basis.shape[0]), "time_members": time.perf_counter() - t0},
            metadata=result_metadata(prop, model, self),
        )
        if ensemble.has_box:
            slope = ensemble.axes.T @ gradient  # per unit box coordinate
            z_lo, z_hi = corner_coordinates(slope, ensemble.lower, ensemble.upper)
            corners = theta[None, :] + np.stack([z_lo, z_hi]) @ ensemble.axes.T
            lo, hi = float(value + slope @ z_lo), float(value + slope @ z_hi)
            out.diagnostics["box"] = {
                "slope": [float(s) for s in slope], "linear_lower": lo, "linear_upper": hi,
                "linear_at_corners": [lo, hi],
                "corner_distance": [float(d) for d in np.linalg.norm(corners - theta, axis=1)],
                "max_member_distance": float(np.linalg.norm(deltas, axis=1).max()),
            }
        return out
