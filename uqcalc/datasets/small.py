"""A tiny labelled bulk training set: the one the tutorials and the test models fit.

:func:`small_bulk_set` builds 17 frames of one cubic crystal (a volume scan, random
strains, rattled supercells) and labels them with any ASE calculator, by default the
tungsten :func:`~uqcalc.datasets.tungsten.teacher`. It is meant for examples and tests
that need a physical fit in a second, not for production fits: there are no defects,
surfaces or other phases (use :func:`~uqcalc.datasets.tungsten.teacher_training_set`).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import BaseCalculator

from .tungsten import A0, teacher

__all__ = ["STRUCTURES", "small_bulk_set"]

#: crystal structures :func:`small_bulk_set` can build (cubic conventional cells)
STRUCTURES = ("bcc", "fcc")

_SCALES = np.linspace(0.96, 1.04, 7)  # lattice-constant scan: volume 0.885–1.125 V0
_N_STRAINED = 6
_N_RATTLED = 4


def small_bulk_set(
    calc: BaseCalculator | None = None,
    *,
    symbol: str = "W",
    structure: str = "bcc",
    lattice_constant: float | None = None,
    seed: int = 0,
) -> list[Atoms]:
    """17 labelled frames of a cubic crystal: volume scan, strains and rattles.

    ======== ====== ================================================================
    frames   count  content
    ======== ====== ================================================================
    0–6      7      conventional cube at a·s, s = 0.96 … 1.04 (uniform; no randomness)
    7–12     6      conventional cube at a, symmetric strain ½(ε + εᵀ), every ε_ij
                    uniform in ±1.5 % (``numpy.random.default_rng(seed)``)
    13–16    4      3×3×3 supercell at a, ASE ``rattle`` with σ = 0.05, 0.10, 0.15,
                    0.20 Å and rattle seeds ``4 * seed + i`` (i = 0 … 3)
    ======== ====== ================================================================

    For bcc the cube has 2 atoms (supercell 54), for fcc 4 (supercell 108). With the
    defaults this is the W set of ``tests/models.py`` and the tutorials, bit for bit.

    Parameters
    ----------
    calc
        ASE calculator for the labels (default: a new tungsten
        :func:`~uqcalc.datasets.tungsten.teacher`, which only knows W; pass one for any
        other ``symbol``). It is attached to each frame in turn and detached afterwards.
    symbol
        Chemical symbol of the crystal.
    structure
        ``"bcc"`` or ``"fcc"`` (see :data:`STRUCTURES`); other structures raise
        ``ValueError``.
    lattice_constant
        Cubic lattice constant a (Å). Default: the teacher's :data:`~uqcalc.datasets.tungsten.A0`
        = 3.1805 Å for bcc W, otherwise ASE's reference value for ``symbol``, which must
        then be of the requested ``structure``.
    seed
        Non-negative integer seed of the strains and rattles; the same seed (and
        calculator) gives bit-identical frames.

    Returns
    -------
    list of Atoms
        Frames with ``info["REF_energy"]`` (eV), ``arrays["REF_forces"]`` (eV/Å) and
        ``info["REF_stress"]`` (eV/Å³, ASE Voigt order and sign); no calculator attached,
        no group label.
    """
    if structure not in STRUCTURES:
        raise ValueError(f"small_bulk_set builds {' or '.join(STRUCTURES)} crystals only, got structure={structure!r}")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if calc is None:
        if symbol != "W":
            raise ValueError(f"the default calculator is the tungsten teacher; pass calc= to label {symbol!r}")
        calc = teacher()
    a = _lattice_constant(symbol, structure, lattice_constant)

    def cube(scale: float = 1.0) -> Atoms:
        return bulk(symbol, structure, a=a * scale, cubic=True)

    rng = np.random.default_rng(seed)
    frames = [cube(s) for s in _SCALES]
    for _ in range(_N_STRAINED):
        atoms = cube()
        eps = rng.uniform(-0.015, 0.015, size=(3, 3))
        atoms.set_cell(atoms.cell @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        frames.append(atoms)
    for i in range(_N_RATTLED):
        atoms = cube().repeat(3)
        atoms.rattle(0.05 * (i + 1), seed=_N_RATTLED * seed + i)
        frames.append(atoms)
    for atoms in frames:
        atoms.calc = calc
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.info["REF_stress"] = atoms.get_stress()
        atoms.calc = None
    return frames


def _lattice_constant(symbol: str, structure: str, lattice_constant: float | None) -> float:
    if lattice_constant is not None:
        a = float(lattice_constant)
        if not a > 0:
            raise ValueError(f"lattice_constant must be positive, got {lattice_constant!r}")
        return a
    if symbol == "W" and structure == "bcc":
        return A0
    try:
        return float(bulk(symbol, structure, cubic=True).cell[0, 0])
    except (KeyError, ValueError) as err:
        raise ValueError(f"no reference {structure} lattice constant for {symbol!r}; pass lattice_constant=") from err
