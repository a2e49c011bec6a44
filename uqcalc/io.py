"""Keep a calculator's uncertainty results with the structure: extxyz and ase.db.

ASE writers keep only standard calculator keys (``energy``, ``forces``, ...):
extxyz drops the rest and ``SinglePointCalculator`` rejects them, and ase.db
stores neither ``atoms.info`` nor ``atoms.arrays``. :func:`store_uncertainties`
copies the keys of a :class:`~uqcalc.calculator.UQCalculator` (or any
calculator with the same keys) into ``atoms.info`` / ``atoms.arrays``, which
extxyz writes; :func:`db_kwargs` turns them into ase.db key-value pairs and
data; :func:`read_uncertainties` gives them back in the calculator's layout
from either source. :func:`save_lammps` (from :mod:`uqcalc.lammps_export`) writes a SNAP
ensemble as LAMMPS potential files.

Storage layout (``N`` atoms, ``M`` members)
-------------------------------------------
=====================================  ===========  ===========================
key                                    where        shape
=====================================  ===========  ===========================
``energy_std/_lower/_upper``           info         float
``stress_std/_lower/_upper``           info         (6,)
``forces_std/_lower/_upper``           arrays       (N, 3)
``energies_std/_lower/_upper``         arrays       (N,)
``energy_ensemble``                    info         (M,)
``stress_ensemble``                    info         (6 M,) = (M, 6) row-major
``forces_ensemble``                    arrays       (N, 3 M): column 3 m + c
``energies_ensemble``                  arrays       (N, M)
``uq_energy``, ``uq_stress``           info         point estimate
``uq_forces``, ``uq_energies``         arrays       point estimate
=====================================  ===========  ===========================

Ensembles are flattened because extxyz holds only 1-D info values and 2-D
per-atom arrays. extxyz writes per-atom columns with 8 decimals (info values at
full precision); ase.db keeps everything bit for bit. The point estimate is stored under a prefix (default ``uq_``)
because extxyz turns plain ``energy``/``forces`` info/arrays into a calculator
and refuses to write them next to an attached calculator's own results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from .lammps_export import save_lammps

__all__ = ["db_kwargs", "read_uncertainties", "save_lammps", "store_uncertainties"]

_PROPS = ("energy", "forces", "stress", "energies")
_SUFFIXES = ("std", "lower", "upper")
_PER_ATOM = ("forces", "energies")
_POINT = ("energy", "forces", "stress", "energies")


def _stored_names(point_prefix: str | None) -> list[str]:
    names = [f"{p}_{s}" for p in _PROPS for s in (*_SUFFIXES, "ensemble")]
    if point_prefix is not None:
        names += [point_prefix + p for p in _POINT]
    return names


def store_uncertainties(
    atoms: Atoms,
    calc=None,
    *,
    ensemble: bool = True,
    point_prefix: str | None = "uq_",
    properties: Sequence[str] = ("energy",),
) -> list[str]:
    """Copy uncertainty results (and the point estimate) into ``atoms.info`` / ``atoms.arrays``.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure; modified in place. Existing entries with the same names
        are overwritten.
    calc : ASE calculator, optional
        Source of the results (default ``atoms.calc``), e.g. a
        :class:`~uqcalc.calculator.UQCalculator`.
    ensemble : bool, default True
        Also store the member predictions ``<p>_ensemble``, flattened (see the
        module docstring). ``False`` skips them: they take M times the space of
        the other keys (a 1000-member ensemble of a 1000-atom cell is 3 million
        numbers of forces per frame).
    point_prefix : str or None, default "uq_"
        Prefix for the point estimate (``uq_energy``, ``uq_forces``, ...);
        ``None`` skips it.
    properties : sequence of str, default ("energy",)
        Computed first if the calculator has no current results for them
        (a :class:`~uqcalc.calculator.UQCalculator` fills every key from one
        evaluation; add ``"energies"`` for per-atom energies).

    Returns
    -------
    list of str
        The names written.

    Raises
    ------
    ValueError
        If there is no calculator.
    """
    calc = atoms.calc if calc is None else calc
    if calc is None:
        raise ValueError("store_uncertainties needs a calculator (atoms.calc or calc=)")
    for name in properties:
        # refreshes stale results (positions changed since the last call) so nothing is mislabelled
        calc.get_property(name, atoms)
    results = calc.results
    n = len(atoms)
    written = []

    def put(name, value, per_atom):
        value = np.array(value, dtype=float)
        if per_atom:
            atoms.arrays[name] = value.reshape(n, -1) if value.ndim > 2 else value
        else:
            atoms.info[name] = float(value) if value.ndim == 0 else value
        written.append(name)

    for p in _PROPS:
        per_atom = p in _PER_ATOM
        for s in _SUFFIXES:
            if f"{p}_{s}" in results:
                put(f"{p}_{s}", results[f"{p}_{s}"], per_atom)
        key = f"{p}_ensemble"
        if ensemble and key in results:
            value = np.asarray(results[key], dtype=float)
            if p == "forces":  # (M, N, 3) -> (N, M, 3) -> (N, 3M)
                value = np.moveaxis(value, 0, 1).reshape(n, -1)
            elif p == "energies":  # (M, N) -> (N, M)
                value = value.T
            else:  # (M,) or (M, 6) -> 1-D
                value = value.ravel()
            put(key, value, per_atom)
        if point_prefix is not None and p in results:
            put(point_prefix + p, results[p], per_atom)
    return written


def db_kwargs(atoms: Atoms, point_prefix: str | None = "uq_") -> dict[str, dict]:
    """Key-value pairs and data for ``ase.db`` from what :func:`store_uncertainties` stored.

    ase.db keeps neither ``atoms.info`` nor ``atoms.arrays``: scalars become
    searchable key-value pairs (``db.select("energy_std<0.01")``) and arrays go
    into the row's ``data``.

    Examples
    --------
    >>> store_uncertainties(atoms)                      # doctest: +SKIP
    >>> db.write(atoms, **db_kwargs(atoms))             # doctest: +SKIP
    >>> read_uncertainties(db.get(id=1))                # doctest: +SKIP
    """
    kvp, data = {}, {}
    for name in _stored_names(point_prefix):
        value = atoms.arrays.get(name, atoms.info.get(name))
        if value is None:
            continue
        if np.ndim(value) == 0:
            kvp[name] = float(value)
        else:
            data[name] = np.array(value)
    return {"key_value_pairs": kvp, "data": data}


def read_uncertainties(source, point_prefix: str | None = "uq_") -> dict[str, float | np.ndarray]:
    """Stored uncertainties back in the calculator's layout (ensembles member-axis first).

    Parameters
    ----------
    source : ase.Atoms or ase.db row
        Atoms read from extxyz (``info``/``arrays``), atoms from
        ``row.toatoms(add_additional_information=True)``, or an ase.db row.
    point_prefix : str or None, default "uq_"
        Prefix used when storing; the point estimate comes back under the
        plain names (``energy``, ``forces``, ...).

    Returns
    -------
    dict
        E.g. ``energy_std`` (float), ``forces_std`` (N, 3), ``forces_ensemble``
        (M, N, 3), ``energies_ensemble`` (M, N), ``stress_ensemble`` (M, 6).
    """
    store: dict = {}
    if isinstance(source, Atoms):
        info = source.info
        store.update(info.get("key_value_pairs", {}))
        store.update(info.get("data", {}))
        store.update(info)
        store.update(source.arrays)
    else:  # an ase.db AtomsRow
        store.update(getattr(source, "key_value_pairs", {}) or {})
        store.update(source.get("data", {}) or {})
    out: dict = {}
    for name in _stored_names(point_prefix):
        if name not in store:
            continue
        value = store[name]
        if isinstance(value, Mapping):
            continue
        value = np.array(value, dtype=float)
        if name == "forces_ensemble":  # (N, 3M) -> (M, N, 3)
            value = np.moveaxis(value.reshape(value.shape[0], -1, 3), 1, 0)
        elif name == "energies_ensemble":  # (N, M) -> (M, N); a readback of M = 1 may be (N,)
            value = value.reshape(value.shape[0], -1).T
        elif name == "stress_ensemble":
            value = value.reshape(-1, 6)
        elif name == "energy_ensemble":
            value = np.atleast_1d(value)
        if point_prefix is not None and name.startswith(point_prefix) and name[len(point_prefix):] in _POINT:
            name = name[len(point_prefix):]
        out[name] = float(value) if value.ndim == 0 else value
    return out
