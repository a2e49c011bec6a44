"""Propagation of a parameter ensemble to material properties.

``propagate(prop, model, method=...)`` returns a :class:`PropertyEnsemble` (point value at θ̄,
member values, std, lower, upper, failures, flags). The methods are propagator objects
(:mod:`.base`; by name in :data:`PROPAGATORS`), usable directly:

* :class:`Resample` evaluates the property once per member through any
  ``concurrent.futures.Executor`` (:mod:`.resample`);
* :class:`Implicit` relaxes each stationary state once and expands the relaxed energy to second
  order in the parameters by implicit differentiation (Maliyov, Grigorev & Swinburne,
  arXiv:2407.02414; :mod:`.implicit`, :mod:`.expansion`, :mod:`.hessian`, :mod:`.coordinates`,
  :mod:`.symmetry`); :class:`Linear` keeps the first-order (envelope-theorem) term;
* :class:`Affine` is exact for properties declared affine in θ;
* :class:`Gradient` is first order for properties that differentiate themselves
  (``parameter_gradient``: lattice-trapping bounds, a cubic crystal's a0, B and C_ij from
  :mod:`uqcalc.properties.bulk_sensitivity`; :mod:`.gradient`);
* :class:`VerifyExtremes` and :class:`BoxCorners` wrap any of them (:mod:`.checks`).

``uqcalc.propagate`` is both this package and the function: importing a submodule makes Python
bind the package to the attribute ``uqcalc.propagate``, shadowing the lazily exported function,
so the package itself is made callable (it forwards to :func:`~.core.propagate`).
"""

import sys
import types

from .affine import Affine
from .base import Check, Propagator
from .checks import BoxCorners, VerifyExtremes
from .core import METHODS, build_propagator, propagate
from .expansion import StateExpansion
from .gradient import Gradient
from .hessian import HessianSolver, SingularHessianError
from .implicit import Implicit, Linear
from .registry import PROPAGATORS
from .resample import Resample
from .result import PropagationError, PropagationWarning, PropertyEnsemble

__all__ = [
    "METHODS",
    "PROPAGATORS",
    "Affine",
    "BoxCorners",
    "Check",
    "Gradient",
    "HessianSolver",
    "Implicit",
    "Linear",
    "PropagationError",
    "PropagationWarning",
    "Propagator",
    "PropertyEnsemble",
    "Resample",
    "SingularHessianError",
    "StateExpansion",
    "VerifyExtremes",
    "build_propagator",
    "propagate",
]


class _CallablePackage(types.ModuleType):
    """``uqcalc.propagate(...)`` works whether the name resolves to the package or the function."""

    def __call__(self, *args, **kwargs):
        return propagate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
