"""Foundation-model last layers on DFT data: zero-shot error, POPS about the pretrained readout, refits.

For a pretrained model (CHGNet 0.3.0, SevenNet-0) the last-layer descriptor
(:class:`uqcalc.descriptors.LastLayer`) turns the readout into a linear model. On a DFT set
split by group (held-out groups never seen; calibration groups inside the training set, left
out only to calibrate) this compares, on held-out configuration energies per atom:

* **zero-shot**: the pretrained model with its per-species energies refitted on the training
  groups only (DFT codes and MP corrections disagree on the energy zero) — a point, no bounds;
* **POPS about the pretrained readout**: POPS corrections from that model's training residuals
  (``POPS().fit(design, theta=θ_zs)``: how wrong is the model I downloaded, and where);
* **refits** with every prior centred on θ_zs (``fit(design, prior_mean=θ_zs)``): POPS, POPS
  calibrated on the calibration groups, Bayesian ridge ±2σ, natural-temperature MCMC ±2σ and
  the bootstrap;

with coverage, mean abs(err)/(U−L) and median half-width/abs(err) per backend and group, the
RMSE of the point estimates, the fraction of held-out frames the feature-space leverage gate
(:class:`uqcalc.extrapolation.LeverageGate`) flags, and the envelope violation of POPS and
Bayesian ridge against the training-set size N/P (as in the POPS papers: violation falls with N
for a Bayesian model only when it is well specified).

Property level (the W set, :func:`property_targets`): every backend's ensemble through the
foundation model as a calculator — relaxations with the model's own forces at each member's
readout — against the Wood-derived properties and the literature defects of
:mod:`uqcalc.coverage.dft`. State energies are propagated to first order (``linear``: the
envelope theorem needs energy rows only), the rest by resampling; POPS bounds at both levels
include the box corners (exact for configurations; for properties the corners that extremise
the first-order term, evaluated with every state re-relaxed, as in the teacher study).

Energy rows only: force rows cost K reverse passes per structure (≈ 60 ms/atom for CHGNet,
≈ 200 ms/atom for SevenNet-0, ``benchmarks/bench_foundation_calculator.py``), hours for the
~160 000 atoms of the Wood set on 2 cores. Features in float32 (the models' precision; per-atom
energy rounding ≈ 1e-6 eV, far below every error here).

Run: ``uqcalc coverage foundation [--model chgnet-0.3.0|sevennet-0] [--data FILE] [--full]``.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DEFECTS", "SPLITS", "property_targets", "run", "run_foundation_study", "to_markdown"]

#: (held-out groups, calibration groups) of the shared DFT sets, by file-name stem; fixed in
#: advance (the W split is tungsten_dft's, the Ta one bench_pops_calibration's).
SPLITS = {
    "tungsten_wood2017": (("vacancy", "Divacancy", "dislocation_quadrupole", "gamma_surface_vacancy"),
                          ("md_bulk", "Disordered_Struc")),
    "tantalum_thompson2015": (("Liquid", "Surface", "GSF_112"), ("GSF_110", "Displaced_A15")),
}
N_OVER_P = (1, 2, 5, 10, 20)
#: literature defects scored at property level (each relaxation of a 128-site cell costs
#: ~10 s with a foundation model on 2 cores; the other SIA geometries add little information)
DEFECTS = ("vacancy_formation_energy", "sia_formation_energy_111", "sia_formation_energy_110")


def _stem(path: Path) -> str:
    name = Path(path).name
    for suffix in (".gz", ".extxyz", ".xyz"):
        name = name.removesuffix(suffix)
    return name


def load_split(data: Path, heldout=None, calibration=None, quick: bool = False, seed: int = 0,
               max_per_group: int | None = None) -> tuple[list, list, tuple, tuple, dict]:
    """Frames split into (train, held-out), with the group lists used and a log of counts.

    The Wood W set goes through :func:`uqcalc.coverage.dft.load_frames` (its cleaning); any other
    file is read and deduplicated. ``quick`` keeps at most ``max_per_group`` (default 25) frames
    per group, seeded.
    """
    from ..data import deduplicate, group_of, read, split_by_group

    stem = _stem(data)
    default_heldout, default_calib = SPLITS.get(stem, (None, ()))
    heldout = tuple(heldout or default_heldout or ())
    calibration = tuple(default_calib if calibration is None else calibration)
    if not heldout:
        raise ValueError(f"{data}: no held-out groups known for this file; pass heldout=[group, ...]")
    if stem == "tungsten_wood2017" and heldout == default_heldout:
        from .dft import load_frames

        cap = (25 if max_per_group is None else max_per_group) if quick else max_per_group
        train, held, log = load_frames(data, quick=False, seed=seed, max_train=cap, max_heldout=cap)
    else:
        frames = deduplicate(read(data))
        train, held = split_by_group(frames, heldout)
        log = {"n_read": len(frames)}
        cap = (25 if max_per_group is None else max_per_group) if quick else max_per_group
        if cap is not None:
            rng = np.random.default_rng(seed)

            def capped(frs):
                out = []
                for g in sorted({group_of(a) for a in frs}):
                    members = [a for a in frs if group_of(a) == g]
                    idx = np.sort(rng.choice(len(members), size=min(cap, len(members)), replace=False))
                    out += [members[i] for i in idx]
                return out

            train, held = capped(train), capped(held)
    missing = sorted(set(calibration) - {group_of(a) for a in train})
    if missing:
        raise ValueError(f"calibration groups {missing} are not among the training groups")
    log["train_groups"] = {g: sum(group_of(a) == g for a in train) for g in sorted({group_of(a) for a in train})}
    log["heldout_groups"] = {g: sum(group_of(a) == g for a in held) for g in sorted({group_of(a) for a in held})}
    return train, held, heldout, calibration, log


def _energy_only(frames):
    """Copies carrying only the energy label (force rows are not built: module docstring)."""
    out = []
    for atoms in frames:
        if "REF_energy" not in atoms.info:
            continue
        a = atoms.copy()
        a.arrays.pop("REF_forces", None)
        a.info.pop("REF_stress", None)
        out.append(a)
    return out


def zero_shot_theta(design, theta0: np.ndarray, n_species: int) -> np.ndarray:
    """θ₀ with its per-species energy columns (the last ``n_species``) refitted to ``design``."""
    K = theta0.size - n_species
    residual = design.y - design.X[:, :K] @ theta0[:K]
    kappa = np.linalg.lstsq(design.X[:, K:], residual, rcond=None)[0]
    return np.concatenate([theta0[:K], kappa])


def property_targets(data: Path, quick: bool) -> tuple[list, dict]:
    """The properties scored for this data set and their references ``{name: {value, unit, ...}}``.

    The Wood W set only (other sets ship no property table): quick, E(fcc) − E(bcc) alone (a
    first-order state energy, cheap); full, the Wood-derived a0, B, C11, C12, C44, E(fcc/A15) −
    E(bcc), γ(100) and :data:`DEFECTS` against the literature in 128-site cells.
    """
    from ..properties import tungsten_suite
    from .dft import PROPERTY_MAP, literature_table, reference_table

    table_path = Path(data).parent / "tungsten_wood2017_properties.json"
    if _stem(data) != "tungsten_wood2017" or not table_path.exists():
        return [], {}
    props = tungsten_suite(["dE_fcc"] if quick else list(PROPERTY_MAP), quick=True)
    table = reference_table(table_path, props)
    props = [p for p in props if p.name in table]
    if not quick:
        defects = tungsten_suite(list(DEFECTS), quick=False)
        table |= literature_table(defects)
        props += defects
    return props, table


def _backends(seed: int, quick: bool):
    from ..backends import MCMC, POPS, BayesianRidge, Bootstrap

    mcmc_kw = {"n_steps": 600, "burn_in": 200, "n_members": 100} if quick else {"n_members": 200}
    return {
        "POPS refit": (POPS(random_state=seed, n_members=500), "box", 2.0),
        "BayesianRidge ±2σ": (BayesianRidge(random_state=seed), "gaussian", 2.0),
        "MCMC natural-T ±2σ": (MCMC(temperature="natural", random_state=seed, **mcmc_kw), "gaussian", 2.0),
        "Bootstrap": (Bootstrap(random_state=seed, n_members=50 if quick else 100), "sampled", 2.0),
    }


def _score(ens, design, bounds, z) -> dict:
    from .references import heldout_coverage

    # a POPS box's configuration-level bounds are exact (a linear function peaks at a corner)
    h = heldout_coverage(ens, design, bounds="exact" if bounds == "box" else bounds, z=z)
    keep = ("n", "coverage", "mean_abs_error_over_width", "mean_abs_error_over_mean_width",
            "median_half_width_over_abs_error", "mean_width", "mean_abs_error")
    return {"all": {k: h["kind"]["energy"].get(k) for k in keep},
            "group": {g: {k: v.get(k) for k in keep} for g, v in h.get("group", {}).items()}}


def _rmse_by_group(design, theta) -> dict:
    r = design.X @ theta - design.y
    out = {"all": 1e3 * float(np.sqrt(np.mean(r**2)))}
    for g in np.unique(design.group):
        m = design.group == g
        out[str(g)] = 1e3 * float(np.sqrt(np.mean(r[m] ** 2)))
    return out


def run(model: str = "chgnet-0.3.0", data: Path | None = None, heldout=None, calibration=None,
        quick: bool = False, seed: int = 0, max_per_group: int | None = None,
        out: Path = Path("results/foundation"), target: float = 0.95, properties: bool = True,
        resample_members: int | None = None) -> dict | None:
    """Run the study (module docstring); ``None`` when the data are absent."""
    from ..backends import POPS, BayesianRidge
    from ..descriptors import LastLayer
    from ..design import DesignMatrix
    from ..extrapolation import LeverageGate
    from .dft import default_data, property_records
    from .references import TableReference
    from .study import BackendSpec, CoverageStudy, calibrate_on_groups

    data = default_data() if data is None else Path(data)
    if data is None or not Path(data).exists():
        logger.warning("foundation: data file %s not found; skipping", data)
        return None
    t0 = time.perf_counter()
    train, held, heldout, calibration, log = load_split(Path(data), heldout, calibration, quick, seed, max_per_group)
    train, held = _energy_only(train), _energy_only(held)
    species = sorted({s for a in train + held for s in a.get_chemical_symbols()})
    desc, theta0 = LastLayer.pretrained(model, species=tuple(species), dtype="float32", forces=False)
    cache = Path(out) / "designs"
    timings = {}
    tb = time.perf_counter()
    d_train = DesignMatrix.build(train, desc, cache_dir=cache, progress=None)
    d_held = DesignMatrix.build(held, desc, cache_dir=cache, progress=None)
    # a cached design keeps the cost of its first build
    built = [d.metadata.get("build_wall_s") for d in (d_train, d_held)]
    timings["designs_s"] = None if None in built else float(sum(built))
    timings["designs_read_s"] = time.perf_counter() - tb
    n_atoms = sum(len(a) for a in train + held)
    logger.info("%s features of %d frames (%d atoms): %.0f s", model, len(train) + len(held), n_atoms,
                timings["designs_read_s"])

    theta_zs = zero_shot_theta(d_train, theta0, len(species))
    P = d_train.n_params
    result = {"model": model, "data": str(data), "species": species, "P": P, "quick": quick, "seed": seed,
              "heldout_groups": list(heldout), "calibration_groups": list(calibration), "frames": log,
              "n_train_frames": len(train), "n_heldout_frames": len(held), "n_atoms": n_atoms,
              "per_species_offset_eV": {s: float(theta_zs[P - len(species) + i] - theta0[P - len(species) + i])
                                        for i, s in enumerate(species)},
              "rmse_meV_per_atom": {}, "heldout": {}, "settings_chosen": {}, "properties": None,
              "timings": timings}
    lsq = np.linalg.lstsq(*d_train.weighted(), rcond=None)[0]
    for label, theta in (("pretrained + offset", theta_zs), ("refit (least squares)", lsq)):
        result["rmse_meV_per_atom"][label] = {"train": _rmse_by_group(d_train, theta)["all"],
                                              "heldout": _rmse_by_group(d_held, theta)}

    specs = [BackendSpec("POPS about pretrained", POPS(random_state=seed, n_members=500), bounds="box",
                         prior_mean=theta_zs, theta=theta_zs, chosen="default POPS, θ̄ fixed to pretrained + offset")]
    specs += [BackendSpec(name, backend, bounds=bounds, z=z, prior_mean=theta_zs,
                          chosen="fixed in advance; prior centred on pretrained + offset")
              for name, (backend, bounds, z) in _backends(seed, quick).items()]
    if calibration and d_train.rows_of(groups=list(calibration)).any():
        specs.append(calibrate_on_groups(
            BackendSpec("POPS refit calibrated", POPS(random_state=seed, n_members=500), bounds="box",
                        calibrate=target, prior_mean=theta_zs,
                        chosen=f"POPS.calibrate on the training groups {', '.join(calibration)} (target {target})"),
            d_train, calibration))
    result["settings_chosen"] = {spec.name: spec.chosen for spec in specs}

    props, table = property_targets(Path(data), quick) if properties else ([], {})
    # properties relax structures: the model's own forces (float64, so relaxations converge to
    # tight tolerances); the parameter layout is the design's
    prop_desc = LastLayer.pretrained(model, species=tuple(species), dtype="float64")[0] if props else desc
    reference = TableReference({k: {kk: v[kk] for kk in ("value", "unit", "citation")} for k, v in table.items()},
                               name="wood2017_properties")
    if resample_members is None:
        resample_members = 4 if quick else 20
    # POPS property bounds as in the teacher study: member min/max widened by the property at
    # the box corners that extremise its first-order term (exact slope for state energies;
    # central differences along the R box axes, 2R + 1 evaluations, for resampled properties)
    study = CoverageStudy(d_train, prop_desc, specs, props, reference, propagation="linear",
                          store=Path(out) / f"store_{model}_{_stem(Path(data))}{'_quick' if quick else ''}",
                          progress=False, resample_members=resample_members)
    tb = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # short MCMC chains in quick mode
        ensembles = {spec.name: study.ensemble(spec) for spec in study.backends}  # fitted once, kept in the store
    for spec in specs:
        result["heldout"][spec.name] = _score(ensembles[spec.name], d_held, spec.bounds, spec.z)
    refit = ensembles["POPS refit"].theta
    result["rmse_meV_per_atom"]["refit (prior at pretrained + offset)"] = {
        "train": _rmse_by_group(d_train, refit)["all"], "heldout": _rmse_by_group(d_held, refit)}
    timings["fits_s"] = time.perf_counter() - tb
    if props:
        tb = time.perf_counter()
        res = study.run()
        timings["properties_s"] = time.perf_counter() - tb
        result["properties"] = {"records": property_records(res, table), "resample_members": resample_members}
        from .figures import plot_property_errors

        stem = f"foundation_{model}_{_stem(Path(data))}{'_quick' if quick else ''}_properties"
        result["properties"]["figures"] = [str(f) for f in plot_property_errors(res, Path(out) / stem)]

    gate = LeverageGate.from_design(d_train)
    grades = np.array([gate.grade(x, 1) for x in d_held.X])  # energy-per-atom rows: n_atoms = 1
    result["extrapolation_flagged"] = {str(g): float(np.mean(grades[d_held.group == g] > 1.0))
                                       for g in np.unique(d_held.group)}
    result["extrapolation_flagged"]["all"] = float(np.mean(grades > 1.0))

    # envelope violation against N/P: random training subsets of frames (seeded), same held-out rows
    rng = np.random.default_rng(seed)
    frames_idx = np.unique(d_train.config)
    sweep = []
    for ratio in N_OVER_P:
        n = ratio * P
        if n > frames_idx.size:
            break
        pick = np.isin(d_train.config, rng.choice(frames_idx, size=n, replace=False))
        sub = d_train.select(pick)
        row = {"N_over_P": ratio, "N": int(n)}
        for name, backend, bounds in (("POPS", POPS(random_state=seed, n_members=200), "exact"),
                                      ("BayesianRidge ±2σ", BayesianRidge(random_state=seed), "gaussian")):
            s = _score(backend.fit(sub, prior_mean=zero_shot_theta(sub, theta0, len(species))), d_held, bounds, 2.0)
            row[name] = {"violation": 1 - s["all"]["coverage"], "mean_width": s["all"]["mean_width"]}
        sweep.append(row)
    result["violation_vs_N_over_P"] = sweep
    timings["total_s"] = time.perf_counter() - t0
    return result


def _f(x, spec=".3g") -> str:
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def to_markdown(result: dict) -> str:
    """The study's tables: held-out energy coverage per backend, point-estimate errors, gate, N/P sweep."""
    r = result
    lines = [f"## {r['model']} last layer on {Path(r['data']).name} (P = {r['P']}, "
             f"{r['n_train_frames']} training / {r['n_heldout_frames']} held-out frames{', quick' if r['quick'] else ''})",
             "", f"Held out: {', '.join(r['heldout_groups'])}. Per-species energy offset refitted on the training "
             "groups: " + ", ".join(f"{s} {v:+.3f} eV" for s, v in r["per_species_offset_eV"].items()) + ".", "",
             "| point estimate | train RMSE (meV/atom) | held-out RMSE (meV/atom) |", "|---|---|---|"]
    for label, v in r["rmse_meV_per_atom"].items():
        lines.append(f"| {label} | {_f(v['train'], '.1f')} | {_f(v['heldout']['all'], '.1f')} |")
    lines += ["", "Held-out energies per atom (coverage within the 0.1 meV/atom noise floor; "
              "mean abs(err)/(U−L) · ratio of means · median half-width/abs(err); mean width):", "",
              "| backend | coverage | abs(err)/(U−L) mean · ratio of means | median half-width/abs(err) "
              "| mean width (meV/atom) |", "|---|---|---|---|---|"]
    for name, v in r["heldout"].items():
        a = v["all"]
        lines.append(f"| {name} | {_f(a['coverage'], '.2f')} | {_f(a['mean_abs_error_over_width'])} · "
                     f"{_f(a['mean_abs_error_over_mean_width'])} | {_f(a['median_half_width_over_abs_error'])} | "
                     f"{_f(1e3 * a['mean_width'] if a['mean_width'] is not None else None, '.1f')} |")
    groups = sorted(next(iter(r["heldout"].values()))["group"])
    lines += ["", "Coverage per held-out group:", "", "| backend | " + " | ".join(groups) + " |",
              "|---|" + "---|" * len(groups)]
    for name, v in r["heldout"].items():
        lines.append(f"| {name} | " + " | ".join(_f(v["group"][g]["coverage"], ".2f") for g in groups) + " |")
    lines += ["", "Held-out frames beyond the training feature range (leverage grade > 1): "
              + ", ".join(f"{g} {v:.2f}" for g, v in r["extrapolation_flagged"].items()) + ".", "",
              "Envelope violation on the held-out energies vs training-set size (random frame subsets):", "",
              "| N/P | N | POPS violation | POPS mean width | Bayes ±2σ violation | Bayes mean width |",
              "|---|---|---|---|---|---|"]
    for row in r["violation_vs_N_over_P"]:
        p, b = row["POPS"], row["BayesianRidge ±2σ"]
        lines.append(f"| {row['N_over_P']} | {row['N']} | {_f(p['violation'], '.2f')} | {_f(1e3 * p['mean_width'], '.1f')} | "
                     f"{_f(b['violation'], '.2f')} | {_f(1e3 * b['mean_width'], '.1f')} |")
    if r.get("properties"):
        from .dft import property_tables

        lines += ["", "Property level with the foundation calculator (relaxations use the model's own forces; "
                  "state energies propagated to first order, `linear`, other properties by resampling "
                  f"{r['properties']['resample_members']} members; POPS bounds: member min/max ∪ the box "
                  "corners that extremise the first-order term):", "",
                  *property_tables(r["properties"]["records"])]
    t = r["timings"]
    lines += ["", "Settings: " + "; ".join(f"{k}: {v}" for k, v in r["settings_chosen"].items()) + ".", "",
              f"Wall time: features {_f(t['designs_s'], '.0f')} s ({r['n_atoms']} atoms), fits {t['fits_s']:.0f} s"
              + (f", properties {t['properties_s']:.0f} s" if "properties_s" in t else "")
              + f", total {t['total_s']:.0f} s (2 cores)."]
    return "\n".join(lines)


def figure(result: dict, path: Path) -> None:
    """Violation and mean width against N/P for POPS and Bayesian ridge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = result["violation_vs_N_over_P"]
    if not sweep:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
    x = [row["N_over_P"] for row in sweep]
    for name, style in (("POPS", "o-"), ("BayesianRidge ±2σ", "s--")):
        ax1.plot(x, [row[name]["violation"] for row in sweep], style, label=name)
        ax2.plot(x, [1e3 * row[name]["mean_width"] for row in sweep], style, label=name)
    for ax, label in ((ax1, "held-out envelope violation"), (ax2, "mean width (meV/atom)")):
        ax.set_xscale("log")
        ax.set_xlabel("N / P")
        ax.set_ylabel(label)
    ax2.set_yscale("log")
    ax1.legend()
    fig.suptitle(f"{result['model']} last layer, {Path(result['data']).name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_foundation_study(out="results/foundation", **options) -> dict | None:
    """Run, write Markdown, JSON and the N/P figure into ``out``; None when the data are absent."""
    out = Path(out)
    result = run(out=out, **options)
    if result is None:
        return None
    md = to_markdown(result)
    out.mkdir(parents=True, exist_ok=True)
    # model names have dots (chgnet-0.3.0): no with_suffix
    stem = str(out / f"foundation_{result['model']}_{_stem(Path(result['data']))}{'_quick' if result['quick'] else ''}")
    Path(stem + ".md").write_text(md + "\n")
    Path(stem + ".json").write_text(json.dumps(result, indent=1, default=str))
    figure(result, Path(stem + ".png"))
    result["paths"] = [stem + s for s in (".md", ".json", ".png")] + (result.get("properties") or {}).get("figures", [])
    result["markdown"] = md
    return result
