"""Readers of LAMMPS SNAP potential files: ``.snapparam``, ``.snapcoeff`` and ``.snap`` includes.

Used by :meth:`uqcalc.descriptors.SNAP.from_lammps_files` and
:meth:`~uqcalc.descriptors.SNAP.from_lammps_potential`; the names are private to
the package.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def _tokens(path: str | Path) -> list[list[str]]:
    """Non-empty lines of a LAMMPS-style file, comments removed, split into words."""
    lines = [line.split("#", 1)[0].split() for line in Path(path).read_text().splitlines()]
    return [line for line in lines if line]


_PARAM_KEYS = {
    "rcutfac": ("rcutfac", float),
    "twojmax": ("twojmax", int),
    "rfac0": ("rfac0", float),
    "rmin0": ("rmin0", float),
    "bzeroflag": ("bzeroflag", lambda v: bool(int(v))),
    "quadraticflag": ("quadratic", lambda v: bool(int(v))),
    "switchflag": ("switchflag", lambda v: bool(int(v))),
}
# accepted only at their default (off): the compute snap rows here do not implement them
_PARAM_OFF = {"chemflag", "bnormflag", "wselfallflag", "switchinnerflag"}
_PARAM_IGNORED = {"chunksize", "parallelthresh", "sinner", "dinner"}


def _read_snapparam(path: str | Path) -> dict:
    # LAMMPS's pair snap defaults; bzeroflag is on unless the file says otherwise
    settings: dict = {"bzeroflag": True}
    for words in _tokens(path):
        key = words[0]
        if len(words) < 2:
            raise ValueError(f"{path}: no value for {key!r}")
        if key in _PARAM_KEYS:
            name, convert = _PARAM_KEYS[key]
            settings[name] = convert(words[1])
        elif key in _PARAM_OFF:
            if int(words[1]) != 0:
                raise ValueError(f"{path}: {key} {words[1]} is not supported by uqcalc's SNAP")
        elif key not in _PARAM_IGNORED:
            raise ValueError(f"{path}: unknown SNAP parameter {key!r}")
    for required in ("rcutfac", "twojmax"):
        if required not in settings:
            raise ValueError(f"{path}: required parameter {required!r} missing")
    return settings


def _read_snapcoeff(path: str | Path) -> dict[str, tuple[float, float, np.ndarray]]:
    """``{element: (radius, weight, coefficients)}`` in file order."""
    words = [w for line in _tokens(path) for w in line]
    try:
        nelem, ncoeff = int(words[0]), int(words[1])
        blocks, pos = {}, 2
        for _ in range(nelem):
            sym, radius, weight = (
                words[pos],
                float(words[pos + 1]),
                float(words[pos + 2]),
            )
            coeffs = np.array(words[pos + 3 : pos + 3 + ncoeff], dtype=float)
            if coeffs.size != ncoeff:
                raise IndexError
            blocks[sym] = (radius, weight, coeffs)
            pos += 3 + ncoeff
    except (IndexError, ValueError) as err:
        raise ValueError(f"{path}: malformed .snapcoeff file ({err or 'too short'})") from None
    if pos != len(words):
        raise ValueError(f"{path}: {len(words) - pos} unexpected values after the last element")
    return blocks


def _read_snap_include(path: Path) -> tuple[list[str], list[list[str]]]:
    """``pair_style`` words and ``pair_coeff`` word lists of a LAMMPS include file."""
    text = re.sub(r"&\s*\n", " ", path.read_text())
    variables: dict[str, str] = {}
    style: list[str] | None = None
    coeffs: list[list[str]] = []

    def substitute(line: str) -> str:
        def value(match):
            name = match.group(1) or match.group(2)
            if name not in variables:
                raise ValueError(f"{path}: undefined variable {name!r}")
            return variables[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w)", value, line)

    for raw in text.splitlines():
        words = substitute(raw.split("#", 1)[0]).split()
        if not words:
            continue
        if words[0] == "variable" and len(words) >= 4:
            # as in LAMMPS, an index variable keeps its first value, others are replaced
            if words[2] != "index" or words[1] not in variables:
                variables[words[1]] = words[3]
        elif words[0] == "pair_style":
            style = words[1:]
        elif words[0] == "pair_coeff":
            coeffs.append(words[1:])
    if not style:
        raise ValueError(f"{path}: no pair_style line")
    return style, coeffs
