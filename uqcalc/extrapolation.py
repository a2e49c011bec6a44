"""Extrapolation in feature space: the leverage of a structure's energy row against the training rows.

A linear model's prediction at a feature vector x is only supported by the data along the
directions the training rows span. The leverage h(x) = xᵀ G⁻¹ x, G = Σ_n x_n x_nᵀ over the
training energy rows, measures how far x lies outside them (for a training row, h is its
hat-matrix diagonal). ``grade = h(x) / max_n h(x_n)`` is above 1 where the model extrapolates
beyond every training configuration (the "extrapolation grade" of ACE/MTP active learning:
Podryabinkin & Shapeev, Comput. Mater. Sci. 140, 171 (2017); Lysogorskiy et al., Phys. Rev.
Mater. 7, 043801 (2023), there with a D-optimal active set instead of the full Gram matrix).

G is regularised by ``rcond · tr(G)/P``: a direction no training row has is then an enormous
leverage, not a zero one (a pseudo-inverse would call such a point interpolation). The
calculators report the grade as ``energy_extrapolation`` and warn above ``limit``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LeverageGate"]


class LeverageGate:
    """Extrapolation grade of energy rows relative to a training design.

    Parameters
    ----------
    gram_inverse : (P, P) array
        ``(G + ε I)⁻¹`` of the training energy rows.
    h_max : float
        The largest training leverage.
    energy_per_atom : bool
        Whether the rows are energies per atom (as in the design).
    limit : float
        Grade above which calculators warn (default 1: beyond every training structure).
    """

    def __init__(self, gram_inverse: np.ndarray, h_max: float, energy_per_atom: bool = True, limit: float = 1.0):
        self.gram_inverse = np.asarray(gram_inverse, dtype=float)
        self.h_max = float(h_max)
        self.energy_per_atom = bool(energy_per_atom)
        self.limit = float(limit)
        if not self.h_max > 0:
            raise ValueError(f"h_max must be > 0, got {self.h_max}")

    @classmethod
    def from_design(cls, design, limit: float = 1.0, rcond: float = 1e-8) -> LeverageGate:
        """The gate of the energy rows of a :class:`~uqcalc.design.DesignMatrix`.

        Raises
        ------
        ValueError
            If the design has no energy rows.
        """
        X = design.X[design.kind == "energy"]
        if X.shape[0] == 0:
            raise ValueError("the design has no energy rows to define the training feature range")
        G = X.T @ X
        eps = rcond * max(np.trace(G) / G.shape[0], np.finfo(float).tiny)
        Ginv = np.linalg.inv(G + eps * np.eye(G.shape[0]))
        h = np.einsum("np,pq,nq->n", X, Ginv, X)
        return cls(Ginv, float(h.max()), bool(design.metadata.get("energy_per_atom", True)), limit)

    def grade(self, energy_row: np.ndarray, n_atoms: int) -> float:
        """``h(x) / h_max`` for a structure's energy row (total, as :class:`~uqcalc.descriptors.Rows` has it)."""
        x = np.asarray(energy_row, dtype=float) / (n_atoms if self.energy_per_atom else 1)
        return float(x @ self.gram_inverse @ x) / self.h_max

    def __repr__(self) -> str:
        return f"LeverageGate(P={self.gram_inverse.shape[0]}, h_max={self.h_max:.3g}, limit={self.limit})"
