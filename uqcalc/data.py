"""Training sets: lists of ``ase.Atoms`` with reference labels.

Conventions (``../shared/DESIGN.md``): ``atoms.info["REF_energy"]`` total energy in eV,
``atoms.arrays["REF_forces"]`` (N, 3) eV/Å, ``atoms.info["REF_stress"]`` (6,) eV/Å^3 in
ASE Voigt order xx yy zz yz xz xy with ASE's sign (negative under compression), and
``atoms.info["group"]``. The plain ``energy``/``forces`` keys are never used: extxyz
turns those into a calculator. Any label may be missing on a frame.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.io.formats import UnknownFileTypeError
from ase.units import bar

from .errors import InputError, MissingInputError

__all__ = [
    "ENERGY",
    "FORCES",
    "GROUP",
    "STRESS",
    "DataError",
    "deduplicate",
    "frame_digest",
    "frames_digest",
    "group_of",
    "random_split",
    "read",
    "read_fitsnap",
    "require_labels",
    "split_by_group",
    "validate",
    "write",
]

ENERGY, FORCES, STRESS, GROUP = "REF_energy", "REF_forces", "REF_stress", "group"

STRESS_UNITS = {"bar": bar, "kbar": 1e3 * bar, "GPa": 1e4 * bar, "eV/A^3": 1.0}


class DataError(InputError):
    """A training frame is malformed; the message names the frame."""


def group_of(atoms: Atoms) -> str:
    """The frame's group label, or ``""`` when it has none."""
    return str(atoms.info.get(GROUP, ""))


def _where(index: int, atoms: Atoms) -> str:
    where = f"frame {index}"
    if GROUP in atoms.info:
        where += f" (group {group_of(atoms)!r}"
        where += f", source {atoms.info['source']!r})" if "source" in atoms.info else ")"
    return where


_EXTXYZ = (".xyz", ".extxyz")


def read(path: str | Path, index: str | int | slice = ":", format: str | None = None,
         labels: str = "ref") -> list[Atoms]:
    """Read frames: extxyz (optionally gzip-compressed) or any format ASE reads.

    A ``.xyz``/``.extxyz`` file (``.gz`` allowed) is read as extxyz; a ``.gz`` one is
    decompressed into memory first: ASE's reader seeks backwards in the stream for every
    frame, which is quadratic on gzip files (11.5 minutes for the 9,902-frame Wood W set,
    against about 2 s through memory). Anything else (CIF, POSCAR, ASE trajectories, ...)
    goes to :func:`ase.io.read`, which picks the format from the name or content.

    Parameters
    ----------
    path
        The file.
    index
        Frames to read, as for :func:`ase.io.read` (default: all).
    format
        An ASE format name, overriding the choice above.
    labels : {"ref", "plain"}
        ``"ref"``: labels are ``REF_*`` keys (this package's convention). ``"plain"``: labels
        are what ASE writes for a calculator (``energy``/``forces``/``stress``, read back as a
        SinglePointCalculator, the usual way DFT data is stored); they are moved to ``REF_*``
        and the calculator is dropped.

    Raises
    ------
    MissingInputError
        If the file does not exist.
    InputError
        In one line naming the file: a corrupt gzip stream, a format ASE does not know, or a
        file that does not parse as its format.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"no such training file: {path}")
    inner = path.with_suffix("") if path.suffix == ".gz" else path
    fmt = format or ("extxyz" if inner.suffix in _EXTXYZ else None)
    try:
        if path.suffix == ".gz" and fmt == "extxyz":
            with gzip.open(path, "rt") as handle:
                text = handle.read()
            frames = ase.io.read(io.StringIO(text), index=index, format="extxyz")
        else:
            frames = ase.io.read(path, index=index, format=fmt)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise InputError(f"{path}: not a valid gzip file ({err})") from None
    except UnknownFileTypeError as err:
        raise InputError(f"{path}: ASE does not recognise this file's format ({err}); pass an ASE format "
                         "name, or convert it to extxyz") from None
    except Exception as err:  # noqa: BLE001 (the parsers raise anything from ValueError to IndexError)
        raise InputError(f"{path}: could not be read as {fmt or 'the format ASE guessed'}: "
                         f"{type(err).__name__}: {err}".splitlines()[0]) from None
    frames = frames if isinstance(frames, list) else [frames]
    if labels not in ("ref", "plain"):
        raise InputError(f"labels must be 'ref' or 'plain', got {labels!r}")
    if labels == "plain":
        frames = [_plain_to_ref(atoms) for atoms in frames]
    for atoms in frames:
        if STRESS in atoms.info:
            atoms.info[STRESS] = _as_voigt(np.asarray(atoms.info[STRESS], dtype=float))
    return frames


def _plain_to_ref(atoms: Atoms) -> Atoms:
    """Move a SinglePointCalculator's energy/forces/stress to the ``REF_*`` keys."""
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    atoms.calc = None
    if "energy" in results:
        atoms.info[ENERGY] = float(results["energy"])
    if results.get("forces") is not None:
        atoms.arrays[FORCES] = np.asarray(results["forces"], dtype=float)
    if results.get("stress") is not None:
        atoms.info[STRESS] = np.asarray(results["stress"], dtype=float)
    return atoms


def require_labels(frames: Sequence[Atoms]) -> None:
    """Raise if training frames carry no ``REF_*`` labels, saying how to map plain ASE labels.

    Raises
    ------
    DataError
        If no frame has a label; the message names the first frame that has ASE's plain
        ``energy``/``forces`` (a calculator) instead, and the option that maps them.
    """
    if not frames or any(ENERGY in a.info or FORCES in a.arrays or STRESS in a.info for a in frames):
        return
    for index, atoms in enumerate(frames):
        plain = atoms.calc is not None and any(k in atoms.calc.results for k in ("energy", "forces"))
        if plain or "energy" in atoms.info or "forces" in atoms.arrays:
            raise DataError(f"{_where(index, atoms)}: labels are ASE's plain energy/forces (a calculator), not "
                            f"{ENERGY}/{FORCES}: read with uqcalc.data.read(path, labels='plain') or "
                            "pass --labels plain")
    raise DataError(f"none of the {len(frames)} frames has a {ENERGY}, {FORCES} or {STRESS} label")


def write(path: str | Path, frames: Iterable[Atoms]) -> None:
    """Write frames as extxyz (gzip-compressed when ``path`` ends in ``.gz``).

    Labels stay under the ``REF_*`` keys, so reading the file back gives the same
    frames without attaching a calculator.
    """
    path = Path(path)
    # extxyz would store calculator results under the plain keys; keep REF_* only
    frames = [_without_calc(a) for a in frames]
    if path.suffix == ".gz":
        buffer = io.StringIO()
        ase.io.write(buffer, frames, format="extxyz")
        with gzip.open(path, "wt", compresslevel=6) as handle:
            handle.write(buffer.getvalue())
    else:
        ase.io.write(path, frames, format="extxyz")


def _without_calc(atoms: Atoms) -> Atoms:
    if atoms.calc is None:
        return atoms
    copy = atoms.copy()
    copy.calc = None
    return copy


def _as_voigt(stress: np.ndarray) -> np.ndarray:
    if stress.shape == (3, 3):
        return np.array([stress[0, 0], stress[1, 1], stress[2, 2], stress[1, 2], stress[0, 2], stress[0, 1]])
    return stress


def _load_fitsnap_json(path: Path) -> dict:
    text = path.read_text()
    # FitSNAP JSON files may start with '#' comment lines
    lines = text.splitlines()
    while lines and lines[0].lstrip().startswith("#"):
        lines.pop(0)
    try:
        return json.loads("\n".join(lines))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid FitSNAP JSON ({err})") from err


def _unit_for(group: str, stress_unit: str | Mapping[str, str]) -> float:
    if isinstance(stress_unit, Mapping):
        if group in stress_unit:
            name = stress_unit[group]
        elif "*" in stress_unit:
            name = stress_unit["*"]
        else:
            raise DataError(f"group {group!r}: no stress unit given (known: {sorted(stress_unit)})")
    else:
        name = stress_unit
    if name not in STRESS_UNITS:
        raise ValueError(f"unknown stress unit {name!r}; use one of {sorted(STRESS_UNITS)}")
    return STRESS_UNITS[name]


def read_fitsnap(
    directory: str | Path,
    stress_unit: str | Mapping[str, str] = "bar",
    stress_sign: str | Mapping[str, str] = "vasp",
    groups: Sequence[str] | None = None,
    keep: Callable[[Atoms], bool] | None = None,
) -> list[Atoms]:
    """Read a FitSNAP JSON training directory (``directory/<group>/*.json``).

    Parameters
    ----------
    directory
        Folder whose sub-folders are groups, one configuration per JSON file.
    stress_unit
        Unit of the ``Stress`` entries: ``"bar"``, ``"kbar"``, ``"GPa"`` or ``"eV/A^3"``,
        or a mapping group → unit (key ``"*"`` for the rest). Real FitSNAP sets
        mix bar and kbar although every file claims ``"StressStyle": "bar"``.
    stress_sign
        ``"vasp"`` (compression positive; negated to ASE's sign) or ``"ase"``, or a
        mapping group → sign.
    groups
        Only these groups (default: every sub-folder, sorted).
    keep
        Optional filter on the converted frame (e.g. pure-W frames only).

    Returns
    -------
    list of Atoms
        Frames with ``REF_energy``; ``REF_forces`` only where the source forces are
        not all zero and ``REF_stress`` only where the source stress is not all zero
        (FitSNAP writes zeros for "absent"); ``group`` and ``source`` in ``info``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no such FitSNAP directory: {directory}")
    names = sorted(p.name for p in directory.iterdir() if p.is_dir()) if groups is None else list(groups)
    frames = []
    for group in names:
        folder = directory / group
        if not folder.is_dir():
            raise FileNotFoundError(f"group folder {folder} does not exist")
        sign_name = stress_sign.get(group, stress_sign.get("*", "vasp")) if isinstance(stress_sign, Mapping) else stress_sign
        if sign_name not in ("vasp", "ase"):
            raise ValueError(f"stress_sign must be 'vasp' or 'ase', got {sign_name!r}")
        sign = -1.0 if sign_name == "vasp" else 1.0
        for path in sorted(folder.glob("*.json")):
            atoms = _fitsnap_frame(path, group, sign, stress_unit)
            if keep is None or keep(atoms):
                frames.append(atoms)
    return frames


def _fitsnap_frame(path: Path, group: str, sign: float, stress_unit) -> Atoms:
    dataset = _load_fitsnap_json(path).get("Dataset", {})
    try:
        data = dataset["Data"][0]
        atoms = Atoms(
            symbols=data["AtomTypes"],
            positions=np.asarray(data["Positions"], dtype=float),
            cell=np.asarray(data["Lattice"], dtype=float),
            pbc=True,
        )
        energy = float(data["Energy"])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise DataError(f"{path}: missing or malformed field ({err!r})") from err
    style = dataset.get("EnergyStyle", "electronvolt")
    if style != "electronvolt":
        raise DataError(f"{path}: EnergyStyle {style!r} is not supported (electronvolt only)")
    atoms.info[ENERGY] = energy
    atoms.info[GROUP] = group
    atoms.info["source"] = path.name
    forces = np.asarray(data.get("Forces", np.zeros((len(atoms), 3))), dtype=float)
    if np.any(forces != 0.0):
        atoms.arrays[FORCES] = forces.reshape(len(atoms), 3)
    stress = np.asarray(data.get("Stress", np.zeros((3, 3))), dtype=float)
    if np.any(stress != 0.0):
        atoms.info[STRESS] = sign * _unit_for(group, stress_unit) * _as_voigt(stress.reshape(3, 3))
    return atoms


def validate(frames: Sequence[Atoms], species: Iterable[str] | None = None) -> list[Atoms]:
    """Check every frame's labels; raise :class:`DataError` naming the first bad frame.

    Checks: finite scalar ``REF_energy``; ``REF_forces`` of shape (N, 3) and finite;
    ``REF_stress`` of shape (6,) or (3, 3) and finite, only on 3-D periodic cells with
    non-zero volume; positions finite; species within ``species`` when given.

    Returns
    -------
    list of Atoms
        The same frames, for chaining.
    """
    allowed = None if species is None else set(species)
    for index, atoms in enumerate(frames):
        if not isinstance(atoms, Atoms):
            raise DataError(f"frame {index}: expected ase.Atoms, got {type(atoms).__name__}")
        where = _where(index, atoms)
        if len(atoms) == 0:
            raise DataError(f"{where}: no atoms")
        if not np.all(np.isfinite(atoms.positions)):
            raise DataError(f"{where}: non-finite positions")
        if allowed is not None:
            bad = sorted(set(atoms.get_chemical_symbols()) - allowed)
            if bad:
                raise DataError(f"{where}: species {bad} not supported by this model (supported: {sorted(allowed)})")
        if ENERGY in atoms.info:
            energy = np.asarray(atoms.info[ENERGY], dtype=float)
            if energy.shape != ():
                raise DataError(f"{where}: {ENERGY} must be a scalar, got shape {energy.shape}")
            if not np.isfinite(energy):
                raise DataError(f"{where}: {ENERGY} is {float(energy)}")
        if FORCES in atoms.arrays:
            forces = np.asarray(atoms.arrays[FORCES], dtype=float)
            if forces.shape != (len(atoms), 3):
                raise DataError(f"{where}: {FORCES} has shape {forces.shape}, expected ({len(atoms)}, 3)")
            if not np.all(np.isfinite(forces)):
                rows = np.flatnonzero(~np.all(np.isfinite(forces), axis=1))
                raise DataError(f"{where}: non-finite {FORCES} on atoms {rows[:5].tolist()}")
        if STRESS in atoms.info:
            stress = np.asarray(atoms.info[STRESS], dtype=float)
            if stress.shape not in ((6,), (3, 3)):
                raise DataError(f"{where}: {STRESS} has shape {stress.shape}, expected (6,) or (3, 3)")
            if not np.all(np.isfinite(stress)):
                raise DataError(f"{where}: non-finite {STRESS}")
            if not np.all(atoms.pbc) or abs(atoms.cell.volume) < 1e-8:
                raise DataError(f"{where}: {STRESS} given for a cell with zero volume or without 3-D periodicity")
    return list(frames)


def split_by_group(frames: Sequence[Atoms], test_groups: Iterable[str]) -> tuple[list[Atoms], list[Atoms]]:
    """Split frames into (train, test) by group label.

    Raises
    ------
    ValueError
        If a requested test group has no frame (a typo would otherwise give an empty test set).
    """
    test_groups = set([test_groups] if isinstance(test_groups, str) else test_groups)
    present = {group_of(a) for a in frames}
    missing = sorted(test_groups - present)
    if missing:
        raise ValueError(f"test groups {missing} not found; groups present: {sorted(present)}")
    train = [a for a in frames if group_of(a) not in test_groups]
    test = [a for a in frames if group_of(a) in test_groups]
    return train, test


def random_split(
    frames: Sequence[Atoms], test_fraction: float = 0.2, seed: int = 0, stratify: bool = True
) -> tuple[list[Atoms], list[Atoms]]:
    """Seeded random split into (train, test) at the frame level.

    With ``stratify`` each group contributes ``round(test_fraction * n_group)`` test frames,
    so small groups are represented in both halves. Frame order is preserved.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    if stratify:
        labels = np.array([group_of(a) for a in frames])
        is_test = np.zeros(len(frames), bool)
        for group in sorted(set(labels)):
            members = np.flatnonzero(labels == group)
            n_test = int(round(test_fraction * len(members)))
            is_test[rng.choice(members, size=n_test, replace=False)] = True
    else:
        n_test = int(round(test_fraction * len(frames)))
        is_test = np.zeros(len(frames), bool)
        is_test[rng.choice(len(frames), size=n_test, replace=False)] = True
    train = [a for a, t in zip(frames, is_test) if not t]
    test = [a for a, t in zip(frames, is_test) if t]
    return train, test


def frame_digest(atoms: Atoms, decimals: int | None = None) -> str:
    """sha256 of a frame's structure and labels (optionally rounded, for duplicate search)."""

    def arr(x):
        x = np.ascontiguousarray(np.asarray(x, dtype=float))
        return np.round(x, decimals) if decimals is not None else x

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(arr(atoms.positions).tobytes())
    h.update(arr(np.array(atoms.cell)).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    for key in (ENERGY, STRESS):
        if key in atoms.info:
            h.update(key.encode())
            h.update(arr(atoms.info[key]).tobytes())
    if FORCES in atoms.arrays:
        h.update(arr(atoms.arrays[FORCES]).tobytes())
    h.update(group_of(atoms).encode())
    return h.hexdigest()


def frames_digest(frames: Iterable[Atoms]) -> str:
    """sha256 over the ordered frame digests: changes when any frame or the order changes."""
    h = hashlib.sha256()
    for atoms in frames:
        h.update(frame_digest(atoms).encode())
    return h.hexdigest()


def deduplicate(frames: Sequence[Atoms], decimals: int = 4) -> list[Atoms]:
    """Drop frames that repeat an earlier one: same species, cell, positions and energy.

    The comparison rounds to ``decimals`` and ignores group labels, because repeats
    also occur across groups (the Wood W set has 235 repeats, four of them
    ``WOct_Flib_*`` = ``W110_Flib_*``). Remove them before random splits so a test frame
    never has a copy in training.
    """
    seen: set[bytes] = set()
    unique = []
    for atoms in frames:
        h = hashlib.sha256()
        h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
        for values in (atoms.positions, np.array(atoms.cell), [atoms.info.get(ENERGY, np.nan)]):
            h.update(np.round(np.asarray(values, dtype=float), decimals).tobytes())
        key = h.digest()
        if key not in seen:
            seen.add(key)
            unique.append(atoms)
    return unique
