"""LinearModel: a descriptor and its parameter ensemble, as one typed handle.

Everything downstream of a fit — calculators, propagation, studies — needs the same pair: the
feature map that turns a structure into design rows, and the ensemble of parameter vectors
(point estimate θ̄, members, box, covariance). :class:`LinearModel` holds the two, checks that
they belong together, and gives the views that code needs: a plain ASE potential for any θ
(:meth:`LinearModel.potential`), the UQ calculator (:meth:`LinearModel.calculator`) and a JSON
spec that worker processes rebuild the descriptor from and stores key on (:meth:`LinearModel.spec`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .calculator import LinearPotential, UQCalculator
from .descriptors import Descriptor
from .ensemble import ParameterEnsemble

__all__ = ["LinearModel"]


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A linear-in-parameter potential: descriptor plus parameter ensemble.

    Parameters
    ----------
    descriptor : Descriptor
        Feature map: ``E = rows.energy @ θ + rows.ref_energy`` (and forces, stress alike).
    ensemble : ParameterEnsemble
        Point estimate ``theta`` and its spread, with as many parameters as the descriptor.

    Examples
    --------
    >>> model = LinearModel(descriptor, ensemble)           # doctest: +SKIP
    >>> atoms.calc = model.potential()                       # θ̄    # doctest: +SKIP
    >>> atoms.calc = model.potential(ensemble.members[3])    # one member  # doctest: +SKIP
    >>> atoms.calc = model.calculator(bounds="sampled")      # doctest: +SKIP
    """

    descriptor: Descriptor
    ensemble: ParameterEnsemble

    def __post_init__(self) -> None:
        if not (hasattr(self.descriptor, "rows") and hasattr(self.descriptor, "spec")):
            raise TypeError(f"not a descriptor: {type(self.descriptor).__name__}")
        if not isinstance(self.ensemble, ParameterEnsemble):
            raise TypeError(f"not a ParameterEnsemble: {type(self.ensemble).__name__}")
        if self.ensemble.n_params != self.descriptor.n_params:
            raise ValueError(
                f"ensemble has {self.ensemble.n_params} parameters, descriptor {self.descriptor.n_params}"
            )

    @classmethod
    def of(cls, obj) -> LinearModel:
        """A LinearModel from a LinearModel, a :class:`UQCalculator` or a (descriptor, ensemble) pair."""
        if isinstance(obj, LinearModel):
            return obj
        if isinstance(obj, UQCalculator):
            return cls(obj.descriptor, obj.ensemble)
        if isinstance(obj, (tuple, list)) and len(obj) == 2:
            return cls(*obj)
        raise TypeError(
            "expected a LinearModel, a UQCalculator or a (descriptor, ParameterEnsemble) pair, "
            f"got {type(obj).__name__}"
        )

    # -- views ----------------------------------------------------------------------------

    @property
    def theta(self) -> np.ndarray:
        """The point estimate θ̄ (P,)."""
        return self.ensemble.theta

    @property
    def members(self) -> np.ndarray:
        """Member parameter vectors (M, P)."""
        return self.ensemble.members

    @property
    def n_params(self) -> int:
        return self.descriptor.n_params

    def potential(self, theta: np.ndarray | None = None, **kwargs) -> LinearPotential:
        """An ASE calculator for one parameter vector (default θ̄), sharing the descriptor.

        ``kwargs`` go to :class:`~uqcalc.calculator.LinearPotential` (e.g. ``per_atom=True``).
        """
        return LinearPotential(self.descriptor, self.theta if theta is None else theta, **kwargs)

    def calculator(self, **kwargs) -> UQCalculator:
        """The :class:`~uqcalc.calculator.UQCalculator` of this model (``kwargs``: its options)."""
        return UQCalculator(self.descriptor, self.ensemble, **kwargs)

    def with_ensemble(self, ensemble: ParameterEnsemble) -> LinearModel:
        """The same descriptor with another ensemble (e.g. a subset of the members)."""
        return LinearModel(self.descriptor, ensemble)

    def subsample(self, n: int | None, seed: int = 0) -> LinearModel:
        """A seeded subset of ``n`` members (box, covariance and θ̄ kept); itself if n is None or ≥ M."""
        ens = self.ensemble
        if n is None or ens.n_members <= n:
            return self
        idx = np.sort(np.random.default_rng(seed).choice(ens.n_members, n, replace=False))
        return self.with_ensemble(ParameterEnsemble(
            ens.theta, ens.members[idx], axes=ens.axes, lower=ens.lower, upper=ens.upper,
            covariance=ens.covariance, noise_variance=ens.noise_variance,
            metadata={**ens.metadata, "subsampled_members": int(n)},
        ))

    # -- identity -----------------------------------------------------------------------------

    def spec(self) -> dict:
        """JSON-able identity: the descriptor's spec (rebuilds it) and a digest of the ensemble.

        Workers rebuild the descriptor from ``spec()["descriptor"]``; stores key results on the
        whole dict, so a changed member or box changes the key.
        """
        ens = self.ensemble
        h = hashlib.sha256()
        for name in ("theta", "members", "axes", "lower", "upper", "covariance"):
            value = getattr(ens, name)
            if value is not None:
                h.update(name.encode())
                h.update(np.ascontiguousarray(value, dtype=float).tobytes())
        return {
            "descriptor": self.descriptor.spec(),
            "ensemble": {
                "backend": ens.metadata.get("backend"),
                "n_members": ens.n_members,
                "n_params": ens.n_params,
                "has_box": ens.has_box,
                "digest": h.hexdigest()[:16],
            },
        }

    def __repr__(self) -> str:
        spec = self.descriptor.spec()
        return (f"LinearModel({spec.get('type', type(self.descriptor).__name__)}, P={self.n_params}, "
                f"M={self.ensemble.n_members}, backend={self.ensemble.metadata.get('backend')!r})")
