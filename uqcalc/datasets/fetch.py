"""Fetchers for public DFT training sets: pinned source, content checksum, local cache.

``fetch("tungsten-wood2017")`` downloads the FitSNAP repository archive at a pinned
commit, keeps the pure-W configurations of ``examples/WBe_PRB2019/JSON``, converts
them with :func:`uqcalc.data.read_fitsnap` (per-group stress units, VASP sign to
ASE sign), verifies the result and caches it as extxyz.

Integrity is checked on the *converted frames*, not on the archive: GitHub builds
its archives on the fly and does not promise stable bytes, while the content is fixed
by the commit. :func:`content_hash` is an order-independent sha256 over the frames
at the precision the extxyz cache stores, so the same hash identifies the download,
the cache and ``shared/data/tungsten_wood2017.extxyz.gz``. An archive sha256 can be
given in addition (``fetch(..., sha256=...)``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import data

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "Source",
    "cache_path",
    "cache_root",
    "content_hash",
    "fetch",
    "register",
]

FITSNAP_COMMIT = "1a9b0507fa2ba292a6497ec363707944c1cb89cd"


class ChecksumError(RuntimeError):
    """Downloaded or converted data do not match the pinned checksum."""


@dataclass(frozen=True)
class Source:
    """A fetchable data set: where it comes from and how to convert it.

    Attributes
    ----------
    name
        Registry key, e.g. ``"tungsten-wood2017"``.
    url
        Archive (``.tar.gz``) to download.
    subdir
        FitSNAP JSON folder inside the archive, relative to its single top-level
        folder (``<subdir>/<group>/*.json``).
    stress_units
        Group → ``"bar"`` or ``"kbar"`` for every group whose files carry a stress;
        a group with stress but no entry is an error (never a silent guess).
    species
        Files whose atoms are not all of these species are skipped.
    content_sha256
        :func:`content_hash` of the converted frames; ``None`` skips the check.
    n_frames
        Expected number of frames (``None``: not checked); gives a clearer error
        than a hash mismatch when files are missing.
    archive_sha256
        sha256 of the archive bytes, when it is known to be stable.
    citation, license
        Shown in the docstring of :func:`fetch` and in errors; honour them.
    """

    name: str
    url: str
    subdir: str
    stress_units: Mapping[str, str] = field(default_factory=dict)
    species: tuple[str, ...] = ("W",)
    content_sha256: str | None = None
    n_frames: int | None = None
    archive_sha256: str | None = None
    citation: str = ""
    license: str = ""


REGISTRY: dict[str, Source] = {}


def register(source: Source, overwrite: bool = False) -> Source:
    """Add ``source`` to :data:`REGISTRY` (``overwrite`` to replace an entry)."""
    if source.name in REGISTRY and not overwrite:
        raise ValueError(f"data set {source.name!r} is already registered (use overwrite=True)")
    REGISTRY[source.name] = source
    return source


register(
    Source(
        name="tungsten-wood2017",
        url=f"https://github.com/FitSNAP/FitSNAP/archive/{FITSNAP_COMMIT}.tar.gz",
        subdir="examples/WBe_PRB2019/JSON",
        # every file claims "bar"; the real units were decided per group (shared/data/README.md)
        stress_units={
            "EOS_Data": "kbar",
            "BCC_ForceLib_W110": "kbar",
            "BCC_ForceLib_W111": "kbar",
            "BCC_ForceLib_WOct": "kbar",
            "BCC_ForceLib_WTet": "kbar",
            "Divacancy": "kbar",
            "Disordered_Struc": "kbar",
            "slice_sample": "bar",
            "gamma_surface": "bar",
        },
        species=("W",),
        # content_hash() of shared/data/tungsten_wood2017.extxyz.gz (same conversion, checked on sample JSON files)
        content_sha256="91e609f5113a4d1410bd5879c268a4e7c7f1cc3102a359f116644c63fb608c5d",
        n_frames=9902,
        citation=(
            "M. A. Wood and A. P. Thompson, arXiv:1702.07042 (2017); M. A. Wood, M. A. Cusentino, "
            "B. D. Wirth and A. P. Thompson, Phys. Rev. B 99, 184305 (2019); FitSNAP (github.com/FitSNAP/FitSNAP)"
        ),
        license="GPL-2.0 (FitSNAP repository)",
    )
)

register(
    Source(
        name="tantalum-thompson2015",
        url=f"https://github.com/FitSNAP/FitSNAP/archive/{FITSNAP_COMMIT}.tar.gz",
        subdir="examples/Ta_Linear_JCP2014/JSON",
        # here the declared "bar" is right for every group (shared/data/README.md: work checks)
        stress_units={g: "bar" for g in (
            "Displaced_A15", "Displaced_BCC", "Displaced_FCC", "Elastic_BCC", "Elastic_FCC", "GSF_110",
            "GSF_112", "Liquid", "Surface", "Volume_A15", "Volume_BCC", "Volume_FCC")},
        species=("Ta",),
        # content_hash() of shared/data/tantalum_thompson2015.extxyz.gz; the conversion was checked
        # frame-for-frame on Surface/110_surface_nonrelax.json of that commit
        content_sha256="2d5954603e005473fb6ca92405db903e96a195ba4c484eb216e4300690be20d5",
        n_frames=363,
        citation=(
            "A. P. Thompson, L. P. Swiler, C. R. Trott, S. M. Foiles and G. J. Tucker, J. Comput. Phys. 285, "
            "316 (2015); FitSNAP (github.com/FitSNAP/FitSNAP)"
        ),
        license="GPL-2.0 (FitSNAP repository)",
    )
)


# --------------------------------------------------------------------------- hashing


def _formatted(values: np.ndarray, fmt: str) -> str:
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        return ""
    text = np.char.mod(fmt, values)
    # -0.0 and 0.0 (or tiny negatives rounding to zero) must hash alike
    text[text.astype(float) == 0.0] = fmt % 0.0
    return " ".join(text.tolist())


def _frame_key(atoms: Atoms) -> str:
    # 8 decimals is what extxyz stores for positions and forces; formatting is idempotent
    # at that precision, so full-precision frames and frames read back from extxyz agree
    parts = [
        str(atoms.info.get("group", "")),
        str(atoms.info.get("source", "")),
        " ".join(str(z) for z in atoms.numbers),
        " ".join("T" if p else "F" for p in atoms.pbc),
        _formatted(atoms.cell[:], "%.8f"),
        _formatted(atoms.positions, "%.8f"),
    ]
    energy = atoms.info.get(data.ENERGY)
    parts.append("-" if energy is None else _formatted(np.array([energy]), "%.8f"))
    forces = atoms.arrays.get(data.FORCES)
    parts.append("-" if forces is None else _formatted(forces, "%.8f"))
    stress = atoms.info.get(data.STRESS)
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    # relative precision: unit conversions may differ in the last bit between converters
    parts.append("-" if stress is None else _formatted(stress, "%.6e"))
    return "\n".join(parts)


def content_hash(frames: Iterable[Atoms]) -> str:
    """Order-independent sha256 of a list of labelled frames.

    Each frame contributes the sha256 of its group, source, atomic numbers, pbc,
    cell, positions, energy and forces (8 decimals, as extxyz stores them), and
    stress (7 significant digits); the sorted frame digests are hashed together.
    Missing labels count as missing, so dropping a label changes the hash.

    Parameters
    ----------
    frames
        Frames with ``REF_*`` labels.

    Returns
    -------
    str
        Hex digest.
    """
    digests = sorted(hashlib.sha256(_frame_key(a).encode()).hexdigest() for a in frames)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


# --------------------------------------------------------------------------- cache


def cache_root(path: str | Path | None = None) -> Path:
    """Cache folder: ``path``, else ``$UQCALC_CACHE``, else ``~/.cache/uqcalc``."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get("UQCALC_CACHE"):
        return Path(os.environ["UQCALC_CACHE"]).expanduser()
    return Path.home() / ".cache" / "uqcalc"


def cache_path(name: str, directory: str | Path | None = None) -> Path:
    """Where :func:`fetch` keeps data set ``name`` (the file may not exist yet)."""
    source = _source(name)
    # the pinned hash is part of the name, so a re-pinned entry never reads a stale cache
    tag = f"-{source.content_sha256[:12]}" if source.content_sha256 else ""
    return cache_root(directory) / f"{source.name}{tag}.extxyz"


def _source(name: str) -> Source:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {sorted(REGISTRY)}") from None


# --------------------------------------------------------------------------- fetch


def fetch(
    name: str,
    cache_dir: str | Path | None = None,
    url: str | None = None,
    progress: bool = True,
    sha256: str | None = None,
) -> list[Atoms]:
    """Return a registered public data set, downloading and converting it once.

    ``"tungsten-wood2017"``: the 9,902 pure-W VASP-PBE configurations of the FitSNAP
    ``WBe_PRB2019`` example (Wood & Thompson 2017; Wood et al., PRB 99, 184305, 2019),
    15 groups, labels as in ``uqcalc.data`` (``REF_energy``, ``REF_forces``,
    ``REF_stress`` in eV/Å^3 with ASE's sign). The data are GPL-2.0; cite the papers
    and FitSNAP. The download is the whole FitSNAP archive at commit
    ``1a9b0507`` (a few hundred MB); only the converted frames are kept.

    Parameters
    ----------
    name
        Registry key (see :data:`REGISTRY`).
    cache_dir
        Cache folder (default ``$UQCALC_CACHE`` or ``~/.cache/uqcalc``).
    url
        Download from here instead of the registered URL (a mirror or a local copy;
        ``file://`` works). The content checksum still applies.
    progress
        Show a download progress bar (tqdm).
    sha256
        Expected sha256 of the archive bytes (default: the registry's, if any).

    Returns
    -------
    list of Atoms
        The frames, read from the cache.

    Raises
    ------
    ChecksumError
        If the archive or the converted frames do not match the pinned checksums;
        nothing is cached then.
    """
    source = _source(name)
    target = cache_path(name, cache_dir)
    if target.exists():
        return data.read(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    archive_sha = sha256 or source.archive_sha256
    with tempfile.TemporaryDirectory(prefix=f".{source.name}-", dir=target.parent) as tmp:
        tmp = Path(tmp)
        archive = tmp / "archive.tar.gz"
        digest = _download(url or source.url, archive, progress)
        if archive_sha is not None and digest != archive_sha.lower():
            raise ChecksumError(
                f"{source.name}: archive sha256 {digest} does not match the expected {archive_sha}"
            )
        json_dir = tmp / "json"
        _extract_json(archive, source, json_dir)
        archive.unlink()
        frames = data.read_fitsnap(json_dir, stress_unit=dict(source.stress_units), stress_sign="vasp")
        if source.n_frames is not None and len(frames) != source.n_frames:
            raise ChecksumError(
                f"{source.name}: converted {len(frames)} frames, expected {source.n_frames} "
                f"(incomplete or different archive: {url or source.url})"
            )
        partial = tmp / target.name
        data.write(partial, frames)
        # verify what was stored, so the cache holds exactly the pinned content
        stored = data.read(partial)
        if source.content_sha256 is not None:
            actual = content_hash(stored)
            if actual != source.content_sha256:
                raise ChecksumError(
                    f"{source.name}: content sha256 of the converted frames is {actual}, expected "
                    f"{source.content_sha256}; the source or the conversion changed. Nothing was cached."
                )
        os.replace(partial, target)
    return stored


def _download(url: str, destination: Path, progress: bool) -> str:
    """Stream ``url`` into ``destination``; return the sha256 of the bytes."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "uqcalc"})
    with urllib.request.urlopen(request, timeout=60) as response, open(destination, "wb") as out:
        total = response.headers.get("Content-Length")
        with tqdm(
            total=int(total) if total else None, unit="B", unit_scale=True, unit_divisor=1024,
            desc=f"downloading {url.rsplit('/', 1)[-1]}", disable=not progress,
        ) as bar:  # fmt: skip
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def _json_member(name: str, prefix: tuple[str, ...]) -> tuple[str, str] | None:
    """(group, file) when ``name`` is ``[top/]<prefix>/<group>/<file>.json``, else None."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    # GitHub archives have one top-level folder; `git archive` output has none
    for offset in (0, 1):
        if len(parts) == offset + len(prefix) + 2 and tuple(parts[offset : offset + len(prefix)]) == prefix:
            group, filename = parts[-2:]
            if filename.endswith(".json") and ".." not in (group, filename) and "\\" not in group + filename:
                return group, filename
    return None


def _extract_json(archive: Path, source: Source, destination: Path) -> None:
    """Write the JSON files of ``source.subdir`` whose species are all allowed."""
    prefix = tuple(p for p in source.subdir.strip("/").split("/") if p)
    allowed = set(source.species)
    found = 0
    with tarfile.open(archive, "r|gz") as tar:
        for member in tar:
            match = _json_member(member.name, prefix) if member.isfile() else None
            if match is None:
                continue
            group, filename = match
            found += 1
            raw = tar.extractfile(member).read()
            if not _species_within(raw, allowed, member.name):
                continue
            (destination / group).mkdir(parents=True, exist_ok=True)
            (destination / group / filename).write_bytes(raw)
    if found == 0:
        raise ChecksumError(f"{source.name}: no JSON files under {source.subdir!r} in the archive")


def _species_within(raw: bytes, allowed: set[str], where: str) -> bool:
    # FitSNAP JSON may start with '#' comment lines
    lines = raw.decode("utf-8").splitlines()
    body = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    try:
        configurations = json.loads(body)["Dataset"]["Data"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise data.DataError(f"{where}: not a FitSNAP JSON file ({err})") from err
    return all(set(c.get("AtomTypes", [])) <= allowed for c in configurations)

