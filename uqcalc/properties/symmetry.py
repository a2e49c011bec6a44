"""PointSymmetry: an ASE constraint that keeps a structure's point-group symmetry while it relaxes.

Unstable defect configurations (an octahedral interstitial in bcc W, a ⟨100⟩ dumbbell) are
saddles of the energy; relaxed without help, round-off tips them off towards a stable
configuration. Relaxed under :class:`PointSymmetry`, whose projection keeps forces,
displacements and stress in the symmetric subspace, they converge to the symmetric stationary
point, which is a true stationary point of the unconstrained energy (the forces of a symmetric
structure are symmetric already).
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
from ase import Atoms
from ase.constraints import FixConstraint
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

__all__ = ["PointSymmetry"]


class PointSymmetry(FixConstraint):
    """Keep a structure's point-group symmetry: symmetrize forces, displacements and stress.

    Holds the operations ``(R_g, p_g)`` with ``r[p_g[i]] = c + R_g (r[i] - c)`` (modulo the
    lattice) and replaces a vector field ``v`` by its group average
    ``v'[p_g[i]] = 1/|G| Σ_g R_g v[i]``. Relaxing under it cannot break the symmetry through
    round-off; at convergence the structure is a stationary point of the unconstrained
    energy (the true forces of a symmetric structure are symmetric already).

    Parameters
    ----------
    rotations : (G, 3, 3) array_like
        Cartesian rotation matrices.
    permutations : (G, N) array_like of int
        Atom permutation of each operation.

    Notes
    -----
    Only the 48 operations of the cube (m-3m) are tried by :meth:`from_structure`, which is
    all a cubic bcc supercell can have. Stress is symmetrized too, so cell relaxations
    (``"both"``) keep the symmetry. The constraint pickles and deep-copies, but ASE's
    trajectory/JSON readers do not know it (they rebuild only ``ase.constraints`` classes).
    """

    def __init__(self, rotations, permutations) -> None:
        self.rotations = np.asarray(rotations, dtype=float).reshape(-1, 3, 3)
        self.permutations = np.asarray(permutations, dtype=int)
        if self.permutations.ndim != 2 or len(self.permutations) != len(self.rotations):
            raise ValueError("need one permutation (N,) per rotation")

    @classmethod
    def from_structure(cls, atoms: Atoms, centre, tol: float = 1e-4) -> PointSymmetry:
        """The cubic point operations about ``centre`` (Å) that map ``atoms`` onto itself.

        ``tol`` (Å) is the largest mismatch accepted between a mapped atom and its image.
        """
        centre = np.asarray(centre, dtype=float)
        pos = atoms.positions
        rotations, permutations = [], []
        for perm in itertools.permutations(range(3)):
            for signs in itertools.product((1.0, -1.0), repeat=3):
                rot = np.zeros((3, 3))
                rot[range(3), perm] = signs
                mapped = centre + (pos - centre) @ rot.T
                d = mapped[:, None, :] - pos[None, :, :]
                frac = atoms.cell.scaled_positions(d.reshape(-1, 3))
                frac[:, atoms.pbc] -= np.round(frac[:, atoms.pbc])
                dist = np.linalg.norm(atoms.cell.cartesian_positions(frac), axis=1).reshape(len(pos), len(pos))
                target = np.argmin(dist, axis=1)
                if dist[np.arange(len(pos)), target].max() < tol and len(set(target)) == len(pos):
                    rotations.append(rot)
                    permutations.append(target)
        return cls(np.array(rotations), np.array(permutations))

    def __len__(self) -> int:
        return len(self.rotations)

    def symmetrize(self, vectors: np.ndarray) -> np.ndarray:
        """Group average of a per-atom vector field ``(N, 3)``."""
        out = np.zeros_like(vectors)
        for rot, perm in zip(self.rotations, self.permutations):
            out[perm] += vectors @ rot.T
        return out / len(self.rotations)

    def adjust_positions(self, atoms: Atoms, new: np.ndarray) -> None:
        new[:] = atoms.positions + self.symmetrize(new - atoms.positions)

    def adjust_forces(self, atoms: Atoms, forces: np.ndarray) -> None:
        forces[:] = self.symmetrize(forces)

    def adjust_stress(self, atoms: Atoms, stress: np.ndarray) -> None:
        full = voigt_6_to_full_3x3_stress(stress)
        full = np.mean([rot @ full @ rot.T for rot in self.rotations], axis=0)
        stress[:] = full_3x3_to_voigt_6_stress(full)

    def get_removed_dof(self, atoms: Atoms) -> int:
        # dimension of the symmetric subspace is not needed by relaxations; MD is not a use case
        return 0

    def index_shuffle(self, atoms: Atoms, ind) -> None:
        raise NotImplementedError("PointSymmetry does not follow atom reordering; rebuild it")

    def copy(self) -> PointSymmetry:
        return copy.deepcopy(self)

    def todict(self) -> dict:
        return {
            "name": "PointSymmetry",
            "kwargs": {"rotations": self.rotations.tolist(), "permutations": self.permutations.tolist()},
        }

    def __repr__(self) -> str:
        return f"PointSymmetry({len(self)} operations)"
