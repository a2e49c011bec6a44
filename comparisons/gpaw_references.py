"""Direct ab initio W references: the property suite evaluated with GPAW-PBE, checkpointed.

Evaluates :func:`uqcalc.properties.suite` entries of an element (``--symbol``, default W; quick
cells: 2-atom elastic cells, 54-site defects) with :func:`uqcalc.datasets.gpaw_reference.gpaw_calculator` at
:data:`~uqcalc.datasets.gpaw_reference.GPAW_SETTINGS`, cheapest first. Every property is
checkpointed in ``OUT/store`` (an interrupted run resumes where it stopped) and, when done, added
to the reference table ``comparisons/data/gpaw_w_pbe.json`` that the repository keeps: value,
unit, settings, GPAW and uqcalc versions and wall time per entry (a
:class:`~uqcalc.coverage.TableReference` reads it). Every GPAW single point is checkpointed too
(``OUT/store/single_points``): a killed relaxation resumes at its last ionic step. Relaxed
properties use ``--fmax`` (0.01 eV/Å) and cells at the table's a0; slabs get one k point across
the vacuum. Long: run it in the background, slabs and defects as two processes with their own
``--out``.

``--convergence`` (W) instead prints E(fcc) − E(bcc) and the bcc pressure at a = 3.17 Å against the
plane-wave cutoff and the k-point density (the scan behind the settings; 1- and 2-atom cells).
``--shared N`` compares GPAW with the Wood VASP labels on N small EOS_Data frames (energy
offset, its scatter, stress differences) into
``comparisons/data/gpaw_vs_wood.json``: the GPAW–VASP difference a model fitted to VASP meets.

Run:  nohup python comparisons/gpaw_references.py [--names a0 B ...] [--out results/gpaw] &
      python comparisons/gpaw_references.py --convergence
      python comparisons/gpaw_references.py --shared 8
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

TABLE = Path(__file__).resolve().parent / "data" / "gpaw_w_pbe.json"
SHARED_OUT = Path(__file__).resolve().parent / "data" / "gpaw_vs_wood.json"
ELASTIC_OUT = Path(__file__).resolve().parent / "data" / "gpaw_w_elastic_kpoints.json"
VACANCY_SETTINGS_OUT = Path(__file__).resolve().parent / "data" / "gpaw_w_vacancy_settings.json"
#: cheapest first: bulk cells, then phases, slabs and the 54-site defects
DEFAULT_NAMES = ("a0", "B", "C11", "C12", "C44", "dE_fcc", "dE_hcp", "dE_a15", "gamma_100", "gamma_110",
                 "vacancy_formation_energy", "sia_formation_energy_111", "sia_formation_energy_110")


def _write_json(path: Path, data: dict, sort_keys: bool = False) -> None:
    # atomic: under mpiexec every rank writes, and a rank reading the table meanwhile must see a whole file
    from uqcalc.coverage._io import write_json

    write_json(path, data, sort_keys=sort_keys, ensure_ascii=False)


def table_of(symbol: str) -> Path:
    """The reference table of an element: ``comparisons/data/gpaw_<symbol>_pbe.json``."""
    return TABLE.with_name(f"gpaw_{symbol.lower()}_pbe.json")


def convergence(ecuts=(400, 500, 600, 700, 800), densities=(3.0, 4.0, 5.0, 6.0, 8.0)) -> str:
    """Markdown table of E(fcc) − E(bcc) (eV/atom) and the bcc pressure (GPa) against the settings."""
    from ase.build import bulk
    from ase.units import GPa

    from uqcalc.datasets.gpaw_reference import GPAW_SETTINGS, gpaw_calculator

    def point(ecut, density):
        t0 = time.perf_counter()
        out = {}
        for structure, a in (("bcc", 3.17), ("fcc", 4.03)):
            atoms = bulk("W", structure, a=a)
            atoms.calc = gpaw_calculator(ecut=ecut, kpt_density=density)
            out[structure] = atoms.get_potential_energy() / len(atoms)
            if structure == "bcc":
                out["p"] = -atoms.get_stress()[:3].mean() / GPa
        return out["fcc"] - out["bcc"], out["p"], time.perf_counter() - t0

    lines = ["| cutoff (eV) | k density (Å⁻¹) | E(fcc) − E(bcc) (eV/atom) | bcc pressure at 3.17 Å (GPa) | wall (s) |",
             "|---|---|---|---|---|"]
    grid = [(e, GPAW_SETTINGS["kpt_density"]) for e in ecuts] + [(GPAW_SETTINGS["ecut"], d) for d in densities]
    for ecut, density in dict.fromkeys(grid):
        de, p, wall = point(ecut, density)
        lines.append(f"| {ecut:.0f} | {density:g} | {de:.4f} | {p:.3f} | {wall:.0f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def shared_configurations(n_per_group: int = 8, seed: int = 0, groups=("EOS_Data",),
                          max_atoms: int = 4, out: Path = SHARED_OUT) -> dict:
    """GPAW against the Wood VASP labels on the same frames: energy offset, its scatter, stresses.

    A constant energy offset per group (PAW setups, codes) is harmless; its scatter across
    configurations and the stress differences are what a model fitted to VASP would be
    scored wrongly by. Seeded choice of ``n_per_group`` frames with at most ``max_atoms`` atoms.
    EOS_Data by default: its cells are symmetric. slice_sample's strained 1-atom cells have no
    symmetry left to reduce the ~14³ k points of density 6 (over 5 CPU minutes for one frame).
    """
    import numpy as np
    from ase.units import GPa

    from uqcalc.coverage.dft import default_data
    from uqcalc.data import group_of, read
    from uqcalc.datasets.gpaw_reference import GPAW_SETTINGS, gpaw_calculator, gpaw_version

    frames = read(default_data())
    rng = np.random.default_rng(seed)
    rows = []
    for group in groups:
        pool = [a for a in frames if group_of(a) == group and len(a) <= max_atoms]
        for i in np.sort(rng.choice(len(pool), size=min(n_per_group, len(pool)), replace=False)):
            atoms = pool[i].copy()
            ref_e, ref_s = atoms.info["REF_energy"], atoms.info.get("REF_stress")
            atoms.calc = gpaw_calculator()
            t0 = time.perf_counter()
            e = atoms.get_potential_energy()
            stress = atoms.get_stress()
            rows.append({"group": group, "n_atoms": len(atoms), "volume_per_atom": atoms.get_volume() / len(atoms),
                         "dE_per_atom": (e - ref_e) / len(atoms),
                         "dstress_GPa": None if ref_s is None else [float(x) for x in (stress - ref_s) / GPa],
                         "wall_s": time.perf_counter() - t0})
            print(f"{group} {len(atoms)} atoms: GPAW − VASP {1e3 * rows[-1]['dE_per_atom']:+.1f} meV/atom", flush=True)
    summary = {}
    for group in groups:
        d = np.array([r["dE_per_atom"] for r in rows if r["group"] == group])
        ds = np.array([r["dstress_GPa"] for r in rows if r["group"] == group and r["dstress_GPa"] is not None])
        summary[group] = {"n": int(d.size), "offset_meV_per_atom": 1e3 * float(d.mean()),
                          "scatter_meV_per_atom": 1e3 * float(d.std(ddof=1)),
                          "stress_diff_GPa_mean_abs": float(np.abs(ds).mean()) if ds.size else None,
                          "pressure_diff_GPa_mean": float(-ds[:, :3].mean()) if ds.size else None}
    result = {"settings": GPAW_SETTINGS, "gpaw_version": gpaw_version(), "seed": seed, "summary": summary,
              "frames": rows}
    _write_json(out, result)
    return result


def elastic_kpoints(densities=(6.0, 8.0, 10.0, 12.0, 14.0), lattice_constant: float | None = None,
                    out: Path | None = None, store_dir: Path = Path("results/gpaw/store"), calc_factory=None,
                    settings: dict | None = None, code_version: str | None = None,
                    width: float | None = None) -> dict:
    """Cubic C11, C12, C44 of bcc W with GPAW against the k-point density, at one lattice constant.

    Strain derivatives of a metal's energy converge in k far more slowly than energies and the
    pressure (the settings scan): the Fermi surface moves under shear. Each density is
    one :func:`~uqcalc.properties.bulk.cubic_elastic_constants` call (matscipy's stress–strain
    regression, ±0.2 %) on the 2-atom cube at ``lattice_constant`` (default: the table's GPAW
    a0), all three constants from the same strained cells, with the Γ-centred mesh of the
    unstrained cube kept for every strained cell (a density-derived mesh could change size
    between strains). Each density is checkpointed in ``store_dir``. ``width`` (eV) replaces
    the Methfessel–Paxton width: a wider smearing converges in k sooner (a series of its own, in
    :func:`elastic_series_path`). ``calc_factory(mesh)``, ``settings`` and ``code_version``
    replace GPAW (the tests use a cheap model).
    """
    from ase.calculators.calculator import kptdensity2monkhorstpack

    import uqcalc
    from uqcalc.coverage.store import Store, digest
    from uqcalc.properties.bulk import bcc_cell, cubic_elastic_constants

    if calc_factory is None:
        from uqcalc.datasets.gpaw_reference import GPAW_SETTINGS, gpaw_calculator, gpaw_version

        def calc_factory(mesh):
            return gpaw_calculator(kpts={"size": mesh, "gamma": True}, width=width,
                                   txt=str(Path(store_dir).parent / "gpaw_elastic.txt"))

        settings, code_version = GPAW_SETTINGS | ({} if width is None else {"width": float(width)}), gpaw_version()
    out = elastic_series_path(width) if out is None else out
    # a series at another smearing keeps checkpoints of its own
    series = "elastic_kpoints" if width is None else f"elastic_kpoints_width{float(width):g}"
    if lattice_constant is None:
        lattice_constant = json.loads(TABLE.read_text())["a0"]["value"]
    store = Store(store_dir)
    rows = []
    for density in densities:
        mesh = [int(n) for n in kptdensity2monkhorstpack(bcc_cell(lattice_constant), density, even=False)]
        key = digest({"settings": settings | {"kpt_density": float(density), "kpts": mesh}, "gpaw": code_version,
                      "a": lattice_constant, "what": "cubic C_ij"})

        def compute(mesh=mesh):
            t0 = time.perf_counter()
            c = cubic_elastic_constants(calc_factory(mesh), lattice_constant=lattice_constant, relax_positions=False)
            return {"constants": c, "wall_s": time.perf_counter() - t0}

        record, hit = store.record(f"{series}/density_{density:g}.json", key, compute)
        rows.append({"kpt_density": float(density), "kpts": mesh, **record["constants"], "wall_s": record["wall_s"]})
        c, took = record["constants"], "stored" if hit else f"{record['wall_s']:.0f} s"
        print(f"k density {density:g} ({mesh[0]}^3): C11 {c['C11']:.1f}  C12 {c['C12']:.1f}  C44 {c['C44']:.1f} GPa "
              f"({took})", flush=True)
        result = {"lattice_constant": lattice_constant, "settings": settings, "gpaw_version": code_version,
                  "uqcalc_version": uqcalc.__version__, "strains": "matscipy fit_elastic_constants, cubic, "
                  "delta 1e-3, 5 steps (±0.2 %), positions not relaxed (bcc: zero by symmetry)", "rows": rows}
        _write_json(out, result)
    return result


def vacancy_settings(grid=((600.0, 4.0), (400.0, 4.0), (400.0, 6.0), (400.0, 8.0)), size: int = 2,
                     lattice_constant: float | None = None, out: Path = VACANCY_SETTINGS_OUT,
                     store_dir: Path = Path("results/gpaw/store"), calc_factory=None, settings: dict | None = None,
                     code_version: str | None = None, symbol: str = "W") -> dict:
    """The unrelaxed vacancy formation energy of a small cell against the cutoff and the k density.

    The 54-site vacancy at :data:`GPAW_SETTINGS` is hours per ionic step on this machine's one
    core (13 irreducible k points); this scan says what a cheaper cutoff and mesh cost in
    accuracy, on a ``size``³ cell (16 sites) where each point takes minutes. The formation
    energy is a difference of two cells on the same mesh, so errors that are the same per atom
    cancel; what is left is what the defect does to them. Each ``(ecut, density)`` point is
    checkpointed in ``store_dir``; ``calc_factory(ecut, density)``, ``settings`` and
    ``code_version`` replace GPAW (the tests use a cheap model). ``symbol``: any element of
    :func:`uqcalc.properties.suite` (fcc: a ``size``³ cell has 4 ``size``³ sites); its lattice
    constant defaults to its GPAW table's a0.
    """
    import dataclasses

    import uqcalc
    from uqcalc.coverage.store import Store, digest
    from uqcalc.properties import suite

    if calc_factory is None:
        from uqcalc.datasets.gpaw_reference import GPAW_SETTINGS, gpaw_calculator, gpaw_version, kpoint_mesh
        from uqcalc.datasets.single_points import CheckpointedCalculator

        def calc_factory(ecut, density):  # each cell its own mesh, every single point on the disk
            return CheckpointedCalculator(
                lambda atoms: gpaw_calculator(ecut=ecut, kpts=kpoint_mesh(atoms, density),
                                              txt=str(Path(store_dir).parent / "gpaw_vacancy_settings.txt")),
                Path(store_dir) / "single_points",
                tag={"settings": GPAW_SETTINGS | {"ecut": float(ecut), "kpt_density": float(density)},
                     "gpaw": gpaw_version()})

        settings, code_version = GPAW_SETTINGS, gpaw_version()
    if lattice_constant is None:
        known = json.loads(table_of(symbol).read_text()) if table_of(symbol).exists() else {}
        if "a0" not in known:
            raise ValueError(f"no GPAW a0 for {symbol} in {table_of(symbol)}: compute it first "
                             f"(--symbol {symbol} --names a0) or pass lattice_constant")
        lattice_constant = known["a0"]["value"]
    (prop,) = suite(symbol, names=["vacancy_formation_energy"], quick=True, lattice_constant=lattice_constant)
    prop = dataclasses.replace(prop, size=size, relaxed=False)
    store = Store(store_dir)
    rows = []
    for ecut, density in grid:
        key = digest({"settings": settings | {"ecut": float(ecut), "kpt_density": float(density)},
                      "gpaw": code_version, "property": dataclasses.asdict(prop)})

        def compute(ecut=ecut, density=density):
            t0 = time.perf_counter()
            value = float(prop.evaluate(calc_factory(ecut, density)))
            return {"value": value, "wall_s": time.perf_counter() - t0}

        record, hit = store.record(f"vacancy_settings/ecut{ecut:g}_density{density:g}.json", key, compute)
        rows.append({"ecut": float(ecut), "kpt_density": float(density), "value": record["value"],
                     "wall_s": record["wall_s"]})
        took = "stored" if hit else f"{record['wall_s']:.0f} s"
        print(f"ecut {ecut:g} eV, k density {density:g}: E_f(unrelaxed, {prop.n_sites} sites) = "
              f"{record['value']:.4f} eV ({took})", flush=True)
        result = {"lattice_constant": lattice_constant, "sites": prop.n_sites, "relaxed": False,
                  "settings": settings, "gpaw_version": code_version, "uqcalc_version": uqcalc.__version__,
                  "rows": rows}
        _write_json(out, result)
    return result


def elastic_series_path(width: float | None = None) -> Path:
    """Where :func:`elastic_kpoints` keeps the series of a smearing width (None: the settings')."""
    return ELASTIC_OUT if width is None else ELASTIC_OUT.with_name(f"gpaw_w_elastic_kpoints_width{float(width):g}.json")


def _elastic_entry(run: dict, value: float, how: str, settings: dict, wall_s: float, convergence) -> dict:
    """A C_ij entry of the table from an :func:`elastic_kpoints` run (``how``: the options that adopted it)."""
    return {"value": value, "unit": "GPa",
            "citation": f"GPAW-PBE, this repository (comparisons/gpaw_references.py {how})",
            "settings": settings, "gpaw_version": run["gpaw_version"], "uqcalc_version": run["uqcalc_version"],
            "wall_s": wall_s,
            "cells": f"2-atom cube at a = {run['lattice_constant']:.4f} Å (the table's a0); {run['strains']}",
            "convergence": convergence}


def adopt_elastic(density: float, kpoints: Path = ELASTIC_OUT, table_path: Path = TABLE,
                  converged: bool = True) -> dict:
    """Write the C_ij of one density of :func:`elastic_kpoints` into the reference table.

    Each entry carries its own settings (the elastic k density and mesh), the lattice constant
    and the convergence run it comes from. ``converged=False`` marks them ``"converged": false``
    (the studies then leave them out), for a series that has not settled.
    """
    run = json.loads(kpoints.read_text())
    row = next((r for r in run["rows"] if r["kpt_density"] == float(density)), None)
    if row is None:
        raise ValueError(f"k density {density} is not in {kpoints} (have {[r['kpt_density'] for r in run['rows']]})")
    table = json.loads(table_path.read_text())
    for name in ("C11", "C12", "C44"):
        table[name] = _elastic_entry(run, row[name], "--elastic-kpoints",
                                     run["settings"] | {"kpt_density": row["kpt_density"], "kpts": row["kpts"]},
                                     row["wall_s"], {f"{r['kpt_density']:g}": r[name] for r in run["rows"]})
        if not converged:
            table[name]["converged"] = False
    table["_about"] = ("GPAW-PBE references by comparisons/gpaw_references.py (docs/gpaw_references.md). The elastic "
                       f"constants use their own k density ({row['kpt_density']:g}; strain derivatives converge far "
                       "more slowly in k than energies): each entry's settings and convergence say so"
                       + ("." if converged else "; the series has not settled, so they are marked not converged."))
    _write_json(table_path, table, sort_keys=True)
    return table


def adopt_elastic_range(min_density: float, series: tuple[Path, ...] | None = None, table_path: Path = TABLE) -> dict:
    """Write each C_ij as the middle ± half the range of every computed row at k density ≥ ``min_density``.

    For a k-point series that oscillates instead of settling (docs/gpaw_references.md): the
    rows of all ``series`` files (default: every smearing width computed, :func:`elastic_series_path`)
    at or above ``min_density`` bound where the constant lies, and the entry states that
    interval as its ``uncertainty``, with every row it rests on. The studies score such an entry
    strictly at the middle and also within its uncertainty.
    """
    import numpy as np

    if series is None:
        series = tuple(sorted(ELASTIC_OUT.parent.glob("gpaw_w_elastic_kpoints*.json")))
    runs = [json.loads(Path(f).read_text()) for f in series]
    rows = [(run, r) for run in runs for r in run["rows"] if r["kpt_density"] >= float(min_density)]
    if not rows:
        raise ValueError(f"no row at k density >= {min_density} in {[str(f) for f in series]}")
    a = {run["lattice_constant"] for run, _ in rows}
    if len(a) > 1:
        raise ValueError(f"the series were computed at different lattice constants {sorted(a)}")
    table = json.loads(table_path.read_text())
    for name in ("C11", "C12", "C44"):
        values = np.array([r[name] for _, r in rows])
        lo, hi = float(values.min()), float(values.max())
        run0 = rows[0][0]
        settings = ({k: v for k, v in run0["settings"].items() if k not in ("kpt_density", "width")}
                    | {"kpt_density": f">= {min_density:g}",
                       "width": sorted({run["settings"]["width"] for run, _ in rows})})
        table[name] = _elastic_entry(run0, (lo + hi) / 2, f"--elastic-kpoints, --adopt-elastic-range {min_density:g}",
                                     settings, float(sum(r["wall_s"] for _, r in rows)),
                                     [{"kpt_density": r["kpt_density"], "kpts": r["kpts"],
                                       "width": run["settings"]["width"], "value": r[name]} for run, r in rows])
        table[name]["uncertainty"] = (hi - lo) / 2
    table["_about"] = ("GPAW-PBE references by comparisons/gpaw_references.py (docs/gpaw_references.md). The elastic "
                       "constants' k-point series oscillates instead of settling: each C_ij is the middle of every row "
                       f"at k density >= {min_density:g} (both smearing widths), with half their range as its "
                       "uncertainty; the rows are in its convergence.")
    _write_json(table_path, table, sort_keys=True)
    return table


def references(names, out: Path, table_path: Path = TABLE, calc_factory=None, settings: dict | None = None,
               code_version: str | None = None, symbol: str = "W", fmax: float | None = None,
               lattice_constant: float | None = None, ecut: float | None = None,
               kpt_density: float | None = None, uncertainty: float | None = None) -> dict:
    """Evaluate ``names`` of ``symbol``'s suite with GPAW (checkpointed in ``out/store``); return and write the table.

    Every property is checkpointed when done, and with GPAW every single point too
    (:class:`~uqcalc.datasets.single_points.CheckpointedCalculator` in ``out/store/single_points``):
    a relaxation killed after hours replays its finished ionic steps from the disk and goes on.
    GPAW's mesh is :func:`~uqcalc.datasets.gpaw_reference.kpoint_mesh` (the settings' density,
    one point across a slab's vacuum). ``fmax`` (eV/Å) replaces the relaxation tolerance of the
    properties that relax (their default 1e-3 is set for potentials; 0.01 is the usual DFT
    tolerance) and ``lattice_constant`` fixes the defect and surface cells (Å; None: the
    calculator's own lattice, relaxed first). Both enter the entries' settings and keys.
    ``calc_factory``, ``settings`` and ``code_version`` replace GPAW's calculator, settings and
    version (another reference code; the tests use a cheap model); the calculator is built
    only when a property is not in the store. ``ecut`` (eV) and ``kpt_density`` replace
    GPAW's cutoff and k density (a cheaper defect run; :func:`vacancy_settings` measures what
    that costs); they enter the settings, so such entries keep checkpoints of their own.
    ``uncertainty`` (the property's unit) is written into each entry: the error a cheaper
    setting was measured to carry; the studies then also report coverage within it.
    """
    import dataclasses

    import uqcalc
    from uqcalc.coverage.store import Store, digest
    from uqcalc.properties import suite

    if calc_factory is None:
        from uqcalc.datasets.gpaw_reference import (
            GPAW_SETTINGS,
            gpaw_calculator,
            gpaw_symmetry,
            gpaw_version,
            kpoint_mesh,
        )
        from uqcalc.datasets.single_points import CheckpointedCalculator

        overrides = {k: float(v) for k, v in (("ecut", ecut), ("kpt_density", kpt_density)) if v is not None}
        settings, code_version = GPAW_SETTINGS | overrides | {
            "kpts": "Γ-centred at kpt_density, 1 point across a vacuum"}, gpaw_version()
        # what a single point depends on, bound now: the relaxation tolerance added below is not,
        # so a run at another --fmax replays the same ionic steps (LBFGS's path does not depend on it)
        point_tag = {"settings": settings, "gpaw": code_version}

        def calc_factory():
            return CheckpointedCalculator(
                lambda atoms: gpaw_calculator(ecut=point_tag["settings"]["ecut"],
                                              kpts=kpoint_mesh(atoms, point_tag["settings"]["kpt_density"]),
                                              txt=str(Path(out) / "gpaw.txt"), symmetry=gpaw_symmetry(atoms)),
                Path(out) / "store" / "single_points", tag=point_tag)
    if fmax is not None:
        settings = settings | {"relax_fmax": float(fmax)}
    # every name checked before hours of DFT are spent on the first ones
    suite(symbol, names=list(names), quick=True, lattice_constant=lattice_constant)
    store = Store(Path(out) / "store")
    table = json.loads(table_path.read_text()) if table_path.exists() else {}
    calc = None
    for name in names:
        (prop,) = suite(symbol, names=[name], quick=True, lattice_constant=lattice_constant)
        if fmax is not None and "fmax" in {f.name for f in dataclasses.fields(prop)}:
            prop = dataclasses.replace(prop, fmax=float(fmax))
        fields = dataclasses.asdict(prop) if dataclasses.is_dataclass(prop) else repr(prop)
        key = digest({"settings": settings, "gpaw": code_version, "property": type(prop).__name__,
                      "fields": fields})

        def compute(prop=prop):
            nonlocal calc
            if calc is None:
                calc = calc_factory()
            t0, s0, u0 = time.perf_counter(), getattr(calc, "compute_s", None), getattr(calc, "n_untimed", 0)
            value = float(prop.evaluate(calc))
            out = {"value": value, "wall_s": time.perf_counter() - t0}
            if s0 is not None:  # checkpointed: the single points' own times, over every process that ran them
                out |= {"single_points_s": calc.compute_s - s0, "untimed_single_points": calc.n_untimed - u0}
            return out

        Path(out).mkdir(parents=True, exist_ok=True)
        record, hit = store.record(f"references/{prop.name}.json", key, compute)
        cells = f"suite({symbol!r}, quick=True)" + ("" if lattice_constant is None or
                                                   getattr(prop, "lattice_constant", None) is None
                                                   else f" at a = {lattice_constant:.4f} Å (the table's a0)")
        # read again just before writing: runs of other properties may share the table
        table = json.loads(table_path.read_text()) if table_path.exists() else {}
        table[prop.name] = {
            "value": record["value"], "unit": prop.unit,
            "citation": "GPAW-PBE, this repository (comparisons/gpaw_references.py)",
            "settings": settings, "gpaw_version": code_version, "uqcalc_version": uqcalc.__version__,
            "wall_s": record["wall_s"], "cells": cells,
        }
        for extra in ("single_points_s", "untimed_single_points"):
            if record.get(extra):
                table[prop.name][extra] = record[extra]
        if uncertainty is not None:
            table[prop.name]["uncertainty"] = float(uncertainty)
        table_path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(table_path, table, sort_keys=True)
        took = "stored" if hit else f"{record['wall_s']:.0f} s"
        print(f"{prop.name}: {record['value']:.6g} {prop.unit} ({took})", flush=True)
    return table


def main(argv=None) -> None:
    try:  # under mpiexec, GPAW's communicator must exist before ASE's world picks a serial one
        import gpaw.mpi  # noqa: F401
    except ImportError:
        pass
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbol", default="W", help="element of the suite (default W; any metal of uqcalc.properties.suite)")
    parser.add_argument("--names", nargs="+", default=list(DEFAULT_NAMES), help="suite names, in order")
    parser.add_argument("--out", default="results/gpaw", help="checkpoints and GPAW's log")
    parser.add_argument("--table", default=None, help="the reference table to extend (default "
                        "comparisons/data/gpaw_<symbol>_pbe.json)")
    parser.add_argument("--fmax", type=float, default=0.01,
                        help="relaxation tolerance (eV/Å) of the relaxed properties (default 0.01, a DFT tolerance)")
    parser.add_argument("--lattice-constant", default="table", metavar="A",
                        help="fixed lattice constant (Å) of defect and surface cells: a number, 'table' (the "
                        "table's a0, the default) or 'own' (relax the calculator's own first)")
    parser.add_argument("--ecut", type=float, default=None, metavar="EV",
                        help="plane-wave cutoff in place of the settings' (a cheaper defect run; stated in the entries)")
    parser.add_argument("--kpt-density", type=float, default=None, metavar="D",
                        help="k-point density in place of the settings' (stated in the entries)")
    parser.add_argument("--uncertainty", type=float, default=None, metavar="U",
                        help="the error the settings were measured to carry (property's unit), written into the "
                        "entries (e.g. ±0.1 eV for the vacancy at --kpt-density 4; docs/gpaw_references.md)")
    parser.add_argument("--convergence", action="store_true", help="print the settings scan instead")
    parser.add_argument("--vacancy-settings", action="store_true",
                        help="instead: the unrelaxed 16-site vacancy against the cutoff and k density")
    parser.add_argument("--shared", type=int, default=None, metavar="N",
                        help="instead: GPAW vs the Wood VASP labels on N small frames per group")
    parser.add_argument("--elastic-kpoints", nargs="*", type=float, default=None, metavar="DENSITY",
                        help="instead: C11, C12, C44 against the k-point density (default 6 8 10 12 14)")
    parser.add_argument("--adopt-elastic", type=float, default=None, metavar="DENSITY",
                        help="instead: write the C_ij of that k density of the --elastic-kpoints run into the table")
    parser.add_argument("--adopt-elastic-range", type=float, default=None, metavar="DENSITY",
                        help="instead: write each C_ij as the middle ± half-range of every computed row (all widths) "
                        "at k density >= DENSITY")
    parser.add_argument("--width", type=float, default=None, metavar="EV",
                        help="with --elastic-kpoints / --adopt-elastic: the series at this Methfessel–Paxton width")
    parser.add_argument("--not-converged", action="store_true",
                        help="with --adopt-elastic: mark them not converged (the studies leave them out)")
    args = parser.parse_args(argv)
    from uqcalc._logging import show_progress

    show_progress()  # one line per single point of a long relaxation
    if args.adopt_elastic_range is not None:
        adopt_elastic_range(args.adopt_elastic_range)
        return
    if args.adopt_elastic is not None:
        adopt_elastic(args.adopt_elastic, elastic_series_path(args.width), converged=not args.not_converged)
        return
    if args.elastic_kpoints is not None:
        elastic_kpoints(tuple(args.elastic_kpoints) or (6.0, 8.0, 10.0, 12.0, 14.0), store_dir=Path(args.out) / "store",
                        width=args.width)
        return
    if args.convergence:
        print(convergence())
        return
    if args.vacancy_settings:
        vacancy_settings(store_dir=Path(args.out) / "store", symbol=args.symbol,
                         out=VACANCY_SETTINGS_OUT.with_name(f"gpaw_{args.symbol.lower()}_vacancy_settings.json"))
        return
    if args.shared is not None:
        print(json.dumps(shared_configurations(args.shared)["summary"], indent=1))
        return
    table = Path(args.table) if args.table else table_of(args.symbol)
    if args.lattice_constant == "own":
        lattice_constant = None
    elif args.lattice_constant == "table":
        known = json.loads(table.read_text()) if table.exists() else {}
        lattice_constant = known["a0"]["value"] if "a0" in known and "a0" not in args.names else None
    else:
        lattice_constant = float(args.lattice_constant)
    references(args.names, Path(args.out), table, symbol=args.symbol, fmax=args.fmax,
               lattice_constant=lattice_constant, ecut=args.ecut, kpt_density=args.kpt_density,
               uncertainty=args.uncertainty)


if __name__ == "__main__":
    main()
