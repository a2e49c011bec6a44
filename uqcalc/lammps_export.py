"""Take a SNAP ensemble to LAMMPS: one ``.snapcoeff`` and one include file per member.

:func:`save_lammps` (public as ``uqcalc.io.save_lammps``) writes, into a folder::

    <name>.snapparam                 the descriptor settings (shared by every member)
    <name>.snapcoeff, <name>.snap    the point estimate θ and its include file
    <name>_0000.snapcoeff, <name>_0000.snap, ...   one pair per member
    <name>.json                      manifest: files, species, backend, digests
    <name>_members.txt               the member include files, one per line

Each ``.snap`` include is what ``pair_style``/``pair_coeff`` need (``hybrid/overlay
<reference> snap`` when the descriptor has a fixed pair part, as the published
``W_2940_2017_2.snap``), so production MD runs a member with ``include ens/W_0007.snap``,
and a LAMMPS ``file`` variable runs them all::

    variable pot file ens/W_members.txt
    label member
      clear
      ... (units metal, box, atoms)
      include ${pot}
      run 1000
    next pot
    jump SELF member

The files read back with
:meth:`uqcalc.descriptors.SNAP.from_lammps_files` to the same descriptor and parameters, and
LAMMPS's ``pair_style snap`` evaluates each member to the energies and forces of the
descriptor's rows (``tests/test_lammps_export.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .backends.base import theta_digest
from .descriptors.lammps_files import (
    snap_include_text,
    write_snapcoeff,
    write_snapparam,
)

__all__ = ["save_lammps"]


def _member_indices(members, n_members: int) -> list[int]:
    if members is None or (isinstance(members, str) and members == "all"):
        return list(range(n_members))
    if isinstance(members, (int, np.integer)) and not isinstance(members, bool):
        if not 0 <= members <= n_members:
            raise ValueError(f"members={members}: the ensemble has {n_members} members")
        return list(range(int(members)))
    if isinstance(members, str):
        raise ValueError(f"members must be 'all', a count or a sequence of indices, got {members!r}")
    indices = [int(i) for i in members]
    bad = [i for i in indices if not 0 <= i < n_members]
    if bad:
        raise ValueError(f"member indices {bad} out of range for an ensemble of {n_members} members")
    return indices


def save_lammps(
    path: str | Path,
    descriptor,
    ensemble,
    members: int | Sequence[int] | str | None = "all",
    name: str | None = None,
    absolute_paths: bool = True,
) -> dict:
    """Write a SNAP ensemble as LAMMPS potential files (see the module docstring for the layout).

    Parameters
    ----------
    path : str or Path
        Folder to write into (created). LAMMPS splits command lines at whitespace, so its
        path must not contain whitespace, ``#``, ``$``, ``&`` or quotes.
    descriptor : SNAP
        The ensemble's descriptor (its species, settings and fixed reference part).
    ensemble : ParameterEnsemble or (P,) array
        The ensemble (point estimate ``theta`` and ``members``), or a single parameter vector.
    members : "all", int or sequence of int, default "all"
        Members to write: all, the first ``n`` (0: point estimate only) or these indices.
    name : str, optional
        File stem; default the species joined (``"W"``, ``"NbMoTaW"``).
    absolute_paths : bool, default True
        Name the coefficient and parameter files by absolute path inside the includes (they
        run from any working directory); False: bare file names, for runs inside ``path``
        or with ``LAMMPS_POTENTIALS`` pointing at it.

    Returns
    -------
    dict
        The manifest also written to ``<name>.json``: ``param``, ``point`` (coeff, include),
        ``members`` (index, coeff, include, digest), ``species``, ``backend``.

    Raises
    ------
    TypeError
        If ``descriptor`` is not a SNAP descriptor.
    ValueError
        For parameter vectors of the wrong size, member indices out of range, or a path LAMMPS
        cannot read.
    """
    from .descriptors.snap import SNAP

    if not isinstance(descriptor, SNAP):
        raise TypeError(f"LAMMPS export needs a SNAP descriptor, got {type(descriptor).__name__}")
    stem = name or "".join(descriptor.species)
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", stem):
        raise ValueError(f"name {stem!r}: use letters, digits and _ . + - only")
    theta = np.asarray(getattr(ensemble, "theta", ensemble), dtype=float)
    all_members = getattr(ensemble, "members", None)
    n_members = 0 if all_members is None else len(all_members)
    indices = _member_indices(members, n_members)

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve() if absolute_paths else folder

    def ref(file: Path) -> str:
        return str(file) if absolute_paths else file.name

    backend = (getattr(ensemble, "metadata", None) or {}).get("backend")
    comment = f"written by uqcalc.io.save_lammps; backend {backend or 'none'}"
    param = write_snapparam(folder / f"{stem}.snapparam", descriptor, comment)

    def write_one(tag: str, vector: np.ndarray, what: str) -> dict:
        coeff = write_snapcoeff(folder / f"{tag}.snapcoeff", descriptor, vector, f"{comment}; {what}")
        include = folder / f"{tag}.snap"
        # validate the names before writing the include, so a bad path leaves no half set
        text = snap_include_text(descriptor, ref(coeff), ref(param), f"{comment}; {what}")
        include.write_text(text)
        return {"coeff": coeff.name, "include": include.name, "digest": theta_digest(vector)}

    manifest = {
        "param": param.name,
        "species": list(descriptor.species),
        "backend": backend,
        "n_params": int(descriptor.n_params),
        "point": write_one(stem, theta, "point estimate"),
        "members": [],
    }
    width = max(4, len(str(max(indices, default=0))))
    for i in indices:
        entry = write_one(f"{stem}_{i:0{width}d}", np.asarray(all_members[i], dtype=float), f"member {i}")
        manifest["members"].append({"index": i, **entry})
    (folder / f"{stem}_members.txt").write_text("".join(f"{ref(folder / m['include'])}\n" for m in manifest["members"]))
    (folder / f"{stem}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
