"""Perturbations of crystal cells for generated training sets: strain, volume, rattle.

Shared by the W teacher set (:mod:`.tungsten`) and the teacher sets of other potentials
(:mod:`uqcalc.coverage.wheel_teacher`); the redraw scheme of :func:`rattled` depends on the
seed only, so the sets are reproducible.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

__all__ = ["rattled", "scaled", "strained"]


def strained(atoms: Atoms, voigt: np.ndarray) -> Atoms:
    """Apply a symmetric small strain given in Voigt form (xx yy zz yz xz xy)."""
    e = np.array(
        [[voigt[0], voigt[5], voigt[4]], [voigt[5], voigt[1], voigt[3]], [voigt[4], voigt[3], voigt[2]]]
    )
    out = atoms.copy()
    out.set_cell(atoms.cell[:] @ (np.eye(3) + e), scale_atoms=True)
    return out


def scaled(atoms: Atoms, volume_ratio: float) -> Atoms:
    """Scale the cell isotropically to ``volume_ratio`` times its volume (positions follow)."""
    out = atoms.copy()
    out.set_cell(atoms.cell[:] * volume_ratio ** (1.0 / 3.0), scale_atoms=True)
    return out


def rattled(atoms: Atoms, rng: np.random.Generator, sigma: float, d_min: float = 1.9) -> Atoms:
    """Gaussian displacements of std ``sigma`` (Å) per component, none closer than ``d_min``.

    Atoms in a pair closer than ``d_min`` get their displacement redrawn (one atom of
    each pair, repeatedly), which keeps deep ZBL-core contacts out of the set like a
    hard core would. The redraws consume the generator deterministically, so the
    result depends on the seed only.
    """
    out = atoms.copy()
    base = atoms.positions.copy()
    displacement = rng.normal(0.0, sigma, size=base.shape)
    for _ in range(1000):
        out.positions = base + displacement
        if len(out) < 2:
            return out
        d = out.get_all_distances(mic=True)
        i, j = np.nonzero(np.triu(d < d_min, 1))
        if len(i) == 0:
            return out
        redraw = np.unique(j)
        displacement[redraw] = rng.normal(0.0, sigma, size=(len(redraw), 3))
    raise RuntimeError(f"could not rattle a {len(atoms)}-atom cell by {sigma} Å keeping pairs ≥ {d_min} Å")
