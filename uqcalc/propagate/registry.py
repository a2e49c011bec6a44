"""The propagation methods by name: ``propagate(prop, model, method=NAME)`` looks them up here.

Adding a method is a module with a :class:`~.base.Propagator` subclass and one line below.
"""

from __future__ import annotations

from .affine import Affine
from .gradient import Gradient
from .implicit import Implicit, Linear
from .resample import Resample

__all__ = ["PROPAGATORS"]

PROPAGATORS = {
    "resample": Resample,
    "implicit": Implicit,
    "linear": Linear,
    "affine": Affine,
    "gradient": Gradient,
}
