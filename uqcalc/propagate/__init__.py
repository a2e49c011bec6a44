"""Propagation of a parameter ensemble to material properties.

``propagate(prop, calc_or_ensemble, method=...)`` returns a :class:`PropertyEnsemble` (point
value at θ̄, member values, std, lower, upper, failures, flags):

* ``"resample"`` evaluates the property once per member through any
  ``concurrent.futures.Executor`` (:mod:`.resample`);
* ``"implicit"`` relaxes each stationary state once and expands the relaxed energy to second
  order in the parameters by implicit differentiation (Maliyov, Grigorev & Swinburne,
  arXiv:2407.02414; :mod:`.implicit`, :mod:`.hessian`, :mod:`.coordinates`, :mod:`.symmetry`);
* ``"linear"`` keeps the first-order (envelope-theorem) term.

``uqcalc.propagate`` is both this package and the function: importing a submodule makes Python
bind the package to the attribute ``uqcalc.propagate``, shadowing the lazily exported function,
so the package itself is made callable (it forwards to :func:`~.core.propagate`).
"""

import sys
import types

from .core import METHODS, propagate
from .hessian import SingularHessianError
from .implicit import StateExpansion
from .result import PropagationError, PropagationWarning, PropertyEnsemble

__all__ = [
    "METHODS",
    "PropagationError",
    "PropagationWarning",
    "PropertyEnsemble",
    "SingularHessianError",
    "StateExpansion",
    "propagate",
]


class _CallablePackage(types.ModuleType):
    """``uqcalc.propagate(...)`` works whether the name resolves to the package or the function."""

    def __call__(self, *args, **kwargs):
        return propagate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
