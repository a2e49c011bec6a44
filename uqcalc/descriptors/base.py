"""The descriptor contract: a linear feature map from ``ase.Atoms`` to design rows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = ["Descriptor", "Rows"]


@dataclass
class Rows:
    """Derivatives of the model outputs with respect to the parameters, for one structure.

    For parameters ``theta`` (P,) the model predicts::

        E        = energy @ theta + ref_energy            (eV)
        F        = forces @ theta + ref_forces            (N, 3) eV/Å
        sigma    = stress @ theta + ref_stress            (6,) eV/Å^3, ASE Voigt order
                                                           xx yy zz yz xz xy, sigma = (1/V) dE/d(strain)
        E_i      = per_atom @ theta + ref_per_atom        (N,) eV

    ``ref_*`` is the fixed reference part of the descriptor (e.g. ZBL), zero when
    there is none. ``stress`` is ``None`` for structures without a 3-D periodic
    cell; ``per_atom`` is ``None`` unless it was asked for.

    ``kinds`` names the blocks whose rows are derivatives with respect to theta. A
    descriptor may leave out force and stress rows (a foundation model's last layer without
    feature Jacobians): then ``forces`` and ``stress`` are zero, the reference part holds the
    model's forces and stress at fixed parameters, design matrices skip those rows and
    calculators report no uncertainty for them.
    """

    energy: np.ndarray
    forces: np.ndarray
    stress: np.ndarray | None
    per_atom: np.ndarray | None = None
    ref_energy: float = 0.0
    ref_forces: np.ndarray | None = None
    ref_stress: np.ndarray | None = None
    ref_per_atom: np.ndarray | None = None
    kinds: tuple[str, ...] = ("energy", "force", "stress")

    def __post_init__(self):
        n = self.forces.shape[0]
        if self.ref_forces is None:
            self.ref_forces = np.zeros((n, 3))
        if self.ref_stress is None and self.stress is not None:
            self.ref_stress = np.zeros(6)
        if self.ref_per_atom is None and self.per_atom is not None:
            self.ref_per_atom = np.zeros(n)

    @property
    def n_atoms(self) -> int:
        return self.forces.shape[0]

    def require(self, kind: str, purpose: str) -> None:
        """Raise ``ValueError`` naming ``purpose`` unless the ``kind`` block holds θ-derivative rows.

        Zero rows for a block outside ``kinds`` are a placeholder, not a derivative: anything
        that differentiates forces or stress with respect to θ must refuse them rather than
        return a response of exactly zero.
        """
        if kind not in self.kinds:
            raise ValueError(f"{purpose} needs {kind} rows, and this descriptor gives {', '.join(self.kinds)} rows "
                             "only (a LastLayer without derivatives=True, say): build it with the derivatives, "
                             "or propagate with method='resample'")

    def evaluate(self, theta: np.ndarray) -> dict[str, np.ndarray | float]:
        """Energy, forces, stress (and per-atom energies) for parameters ``theta``.

        ``theta`` may be (P,) or (M, P); with (M, P) every output gains a leading
        member axis.
        """
        theta = np.asarray(theta, dtype=float)
        out = {
            "energy": theta @ self.energy + self.ref_energy,
            "forces": np.moveaxis(self.forces @ theta.T, -1, 0) + self.ref_forces
            if theta.ndim == 2
            else self.forces @ theta + self.ref_forces,
        }
        if self.stress is not None:
            out["stress"] = theta @ self.stress.T + self.ref_stress
        if self.per_atom is not None:
            out["energies"] = theta @ self.per_atom.T + self.ref_per_atom
        return out


class Descriptor(ABC):
    """A linear-in-parameters model: ``rows(atoms)`` gives the derivatives w.r.t. theta.

    Subclasses set ``species`` (chemical symbols the model knows) and implement
    :attr:`n_params`, :meth:`rows` and :meth:`spec`. ``spec()`` must return a
    JSON-serialisable dict with a ``"type"`` key from which
    :func:`uqcalc.descriptors.from_spec` rebuilds an equal descriptor (worker
    processes receive specs, never live descriptor objects).
    """

    species: tuple[str, ...]

    @property
    @abstractmethod
    def n_params(self) -> int:
        """Number of linear parameters P."""

    @abstractmethod
    def rows(self, atoms: Atoms, per_atom: bool = False) -> Rows:
        """Design rows of one structure; per-atom rows only when ``per_atom``."""

    @abstractmethod
    def spec(self) -> dict:
        """JSON-able description that rebuilds this descriptor."""

    def with_reference_theta(self, theta: np.ndarray) -> Descriptor:
        """The descriptor to evaluate the model at ``theta`` with (default: this one).

        A descriptor whose reference part depends on the parameters, for the rows it does
        not provide (see ``Rows.kinds``), returns a copy evaluated at ``theta``; calculators
        call this once with their point estimate.
        """
        return self

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.spec() == other.spec()

    def __hash__(self) -> int:
        import json

        return hash(json.dumps(self.spec(), sort_keys=True))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "type")
        return f"{type(self).__name__}({args})"
