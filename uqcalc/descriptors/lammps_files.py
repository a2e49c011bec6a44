"""Readers and writers of LAMMPS SNAP potential files: ``.snapparam``, ``.snapcoeff``, ``.snap``.

The readers (private) serve :meth:`uqcalc.descriptors.SNAP.from_lammps_files` and
:meth:`~uqcalc.descriptors.SNAP.from_lammps_potential`. The writers
(:func:`write_snapparam`, :func:`write_snapcoeff`, :func:`snap_include_text`) are their
inverses and serve :func:`uqcalc.io.save_lammps`: what they write reads back to the same
descriptor spec and coefficients, and LAMMPS's own ``pair_style snap`` evaluates it to the
same energies and forces as the descriptor's ``compute snap`` rows.
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


# -- writers ---------------------------------------------------------------------

# The first line of a LAMMPS potential file may declare its units; LAMMPS then refuses to
# run it under any other `units` command instead of silently misreading eV/Å numbers.
_HEADER = "# UNITS: metal CONTRIBUTOR: uqcalc"


def _comment_lines(comment: str | None) -> list[str]:
    return [f"# {line}".rstrip() for line in (comment or "").splitlines()]


def _write(path: str | Path, comment: str | None, body: list[str]) -> Path:
    """The units header, the comment lines, then ``body``, one item per line."""
    path = Path(path)
    path.write_text("\n".join([_HEADER, *_comment_lines(comment), *body]) + "\n")
    return path


def write_snapparam(path: str | Path, snap, comment: str | None = None) -> Path:
    """Write the ``.snapparam`` file of a SNAP descriptor.

    Parameters
    ----------
    path : str or Path
        File to write (overwritten).
    snap : SNAP
        The descriptor; every setting is written explicitly, because LAMMPS's
        defaults (``bzeroflag 1``) differ from :class:`~uqcalc.descriptors.SNAP`'s.
    comment : str, optional
        Extra comment lines after the header.

    Returns
    -------
    Path
        ``path``.
    """
    return _write(path, comment, [
        f"rcutfac {snap.rcutfac!r}",
        f"twojmax {snap.twojmax}",
        f"rfac0 {snap.rfac0!r}",
        f"rmin0 {snap.rmin0!r}",
        f"bzeroflag {int(snap.bzeroflag)}",
        f"quadraticflag {int(snap.quadratic)}",
        f"switchflag {int(snap.switchflag)}",
    ])


def write_snapcoeff(path: str | Path, snap, theta, comment: str | None = None) -> Path:
    """Write the ``.snapcoeff`` file of one parameter vector of a SNAP descriptor.

    ``theta`` has the descriptor's layout, which is the file's: per species, in
    ``snap.species`` order, ``beta0`` (the per-atom constant) then the ``snap.ncoeff``
    bispectrum coefficients (linear, then for qSNAP the products in LAMMPS's order).

    Parameters
    ----------
    path : str or Path
        File to write (overwritten).
    snap : SNAP
        The descriptor (species, per-species radius and weight, sizes).
    theta : (P,) array_like
        Parameters, ``P = snap.n_params``; written at full precision (``repr``).
    comment : str, optional
        Extra comment lines after the header.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``theta`` has the wrong size or non-finite entries.
    """
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (snap.n_params,):
        raise ValueError(f"theta must have shape ({snap.n_params},), got {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("theta has non-finite entries")
    per = 1 + snap.ncoeff
    lines = [f"{len(snap.species)} {per}"]
    for t, symbol in enumerate(snap.species):
        # LAMMPS reads the element line as exactly three words, then one value per line
        lines.append(f"{symbol} {snap.radii[t]!r} {snap.weights[t]!r}")
        lines += [repr(float(v)) for v in theta[t * per : (t + 1) * per]]
    return _write(path, comment, lines)


def _reference_commands(snap) -> tuple[list[str], list[str]]:
    """``pair_style`` words before ``snap`` and the reference ``pair_coeff`` lines (hybrid form)."""
    if snap.reference is None:
        return [], []
    style = snap.reference["pair_style"].split()
    coeffs = [c.split() for c in snap.reference["pair_coeff"]]
    if style[0] == "hybrid/overlay":
        # its pair_coeff lines already name their sub-styles; snap joins as one more
        return style, [" ".join(c) for c in coeffs]
    if style[0].startswith("hybrid"):
        raise ValueError(
            f"reference pair_style {' '.join(style)!r} cannot be combined with snap: only a "
            "plain style or hybrid/overlay adds to the SNAP energy"
        )
    n = len(snap.species)
    if n > 1:
        from .snap import _types  # the same LAMMPS type-range parser the descriptor uses

        # a plain style mixes unlisted type pairs; under hybrid/overlay LAMMPS does not, and
        # since snap covers every pair the missing reference terms would vanish silently
        covered = set()
        for c in coeffs:
            covered |= {(min(i, j), max(i, j)) for i in _types(c[0], n) for j in _types(c[1], n)}
        missing = [(i, j) for i in range(1, n + 1) for j in range(i, n + 1) if (i, j) not in covered]
        if missing:
            raise ValueError(
                f"reference {' '.join(style)!r}: under hybrid/overlay with snap LAMMPS does not "
                f"mix coefficients, so the type pairs {missing} would lose their reference "
                "energy; give explicit pair_coeff lines for them in the descriptor's reference"
            )
    name = style[0]
    return ["hybrid/overlay", *style], [" ".join([*c[:2], name, *c[2:]]) for c in coeffs]


def snap_include_text(snap, coeff: str | Path, param: str | Path, comment: str | None = None) -> str:
    """Text of a LAMMPS include file that runs a SNAP descriptor with one coefficient file.

    ``pair_style snap`` alone without a reference part; with one,
    ``pair_style hybrid/overlay <reference> snap`` (as in the published
    ``W_2940_2017_2.snap``), so that the energy is the descriptor's
    ``rows.energy @ theta + ref_energy``. Atom types are numbered in
    ``snap.species`` order.

    Parameters
    ----------
    snap : SNAP
        The descriptor.
    coeff, param : str or Path
        The ``.snapcoeff`` and ``.snapparam`` names as LAMMPS should open them
        (absolute, or relative to LAMMPS's working directory / ``LAMMPS_POTENTIALS``).
    comment : str, optional
        Comment lines at the top.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If a file name cannot be written on a LAMMPS command line (whitespace, ``#``,
        ``$``, quotes), or if the reference part cannot be overlaid with snap.
    """
    for name in (str(coeff), str(param)):
        if re.search(r"[\s#$'\"&]", name):
            raise ValueError(
                f"LAMMPS cannot read the file name {name!r} (whitespace, '#', '$', '&' or quotes "
                "split or rewrite its command lines); write to a folder without them"
            )
    styles, ref_coeffs = _reference_commands(snap)
    files = f"{coeff} {param} {' '.join(snap.species)}"
    lines = [*_comment_lines(comment)]
    if styles:
        lines.append(f"pair_style {' '.join(styles)} snap")
        lines += [f"pair_coeff {c}" for c in ref_coeffs]
        lines.append(f"pair_coeff * * snap {files}")
    else:
        lines += ["pair_style snap", f"pair_coeff * * {files}"]
    return "\n".join(lines) + "\n"
