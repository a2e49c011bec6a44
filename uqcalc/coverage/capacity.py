"""Does the error bar know when the model is too small? A capacity sweep on the W teacher.

Configuration-level only (no property relaxations): a linear SNAP student with the teacher's
ZBL reference and 2J ∈ {2, 4, 6, 8} is fitted to the teacher training set (``small``) without
the held-out groups (divacancy, interstitial, surface_112, gsf_112). 2J = 8 is the teacher's
own capacity: the student is then *well specified* (the control — errors ~ 0, every honest
interval should cover). Per backend (POPS, BayesianRidge ±2σ without noise, MCMC at the natural
temperature ±2σ, bootstrap by configuration) and per capacity: held-out coverage, mean |err|/σ
and mean |err|/(U−L) of energies (eV/atom) and forces (eV/Å). Second panel: envelope violation
(1 − coverage) against N/P (training rows / parameters) for one capacity, obtained by
subsampling the training frames.

Run:  uqcalc coverage capacity_sweep [--full]   (quick unless --full), or
      python comparisons/capacity_sweep.py [--quick] [--twojmax 2 4 6 8] [--nop-twojmax 6]
      [--fractions 0.1 0.25 0.5 1] [--seed 0] [--out results/capacity_sweep]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from .._logging import show_progress

from .metrics import summarize
from .teacher import VALIDATION_GROUPS, teacher_student

__all__ = ["run", "run_capacity_sweep"]

logger = logging.getLogger(__name__)

KINDS = ("energy", "force")


def make_backends(seed: int, quick: bool) -> dict:
    """name -> (backend, bounds, z). Settings fixed in advance, as in the teacher study."""
    from ..backends import MCMC, POPS, BayesianRidge, Bootstrap

    mcmc_kw = {"n_steps": 600, "burn_in": 200, "n_members": 50} if quick else {}
    return {
        "POPS": (POPS(random_state=seed, n_members=200 if quick else 1000), "exact", 2.0),
        "BayesianRidge ±2σ": (BayesianRidge(random_state=seed), "gaussian", 2.0),
        "MCMC natural-T ±2σ": (MCMC(temperature="natural", random_state=seed, **mcmc_kw), "gaussian", 2.0),
        "Bootstrap": (Bootstrap(random_state=seed, n_members=30 if quick else 100), "sampled", None),
    }


def least_squares_theta(design) -> np.ndarray:
    """Weighted least-squares point estimate (the student's MLE, no prior)."""
    Xw, yw = design.weighted()
    return np.linalg.lstsq(Xw, yw, rcond=None)[0]


def score(ens, design, bounds: str, z: float | None) -> dict:
    """Coverage, |err|/σ, |err|/(U−L), MAE and width per row kind on held-out rows."""
    pred = ens.predict(design.X, bounds=bounds, z=2.0 if z is None else z, return_members=False)
    out = {}
    for kind in KINDS:
        m = design.kind == kind
        s = summarize(pred.mean[m], pred.lower[m], pred.upper[m], design.y[m], pred.std[m])
        out[kind] = {k: s[k] for k in ("n", "coverage", "violation_rate", "mean_abs_error_over_std",
                                       "mean_abs_error_over_width", "mean_abs_error", "mean_width")}
    return out


def run(twojmaxes=(2, 4, 6, 8), nop_twojmax: int = 6, fractions=(0.1, 0.25, 0.5, 1.0), seed: int = 0,
        quick: bool = False, size: str = "small", frames=None, backends=None, executor=None) -> dict:
    """The sweep; returns a JSON-able dict (see :func:`to_markdown`)."""
    from ..data import split_by_group
    from ..datasets import tungsten
    from ..design import DesignMatrix

    t0 = time.perf_counter()
    frames = tungsten.teacher_training_set(size=size, seed=seed) if frames is None else frames
    train, valid = split_by_group(frames, VALIDATION_GROUPS)
    names = list((backends or make_backends(seed, quick)).keys())
    result = {"seed": seed, "quick": quick, "size": size, "validation_groups": list(VALIDATION_GROUPS),
              "n_train_frames": len(train), "n_valid_frames": len(valid), "backends": names,
              "capacity": [], "n_over_p": []}
    designs = {}
    for tj in sorted(set(twojmaxes) | {nop_twojmax} if fractions else set(twojmaxes)):
        desc = teacher_student(tj)
        designs[tj] = tuple(DesignMatrix.build(frs, desc, executor=executor, progress=False) for frs in (train, valid))
    for tj in twojmaxes:
        d_train, d_valid = designs[tj]
        theta = least_squares_theta(d_train)
        e = d_valid.kind == "energy"
        f = d_valid.kind == "force"
        row = {"twojmax": tj, "P": d_train.n_params, "N_rows": d_train.n_rows,
               "lsq_energy_rmse_meV_per_atom": 1e3 * float(np.sqrt(np.mean((d_valid.X[e] @ theta - d_valid.y[e]) ** 2))),
               "lsq_force_rmse_eV_per_A": float(np.sqrt(np.mean((d_valid.X[f] @ theta - d_valid.y[f]) ** 2))),
               "backends": {}}
        for name, (backend, bounds, z) in (backends or make_backends(seed, quick)).items():
            tb = time.perf_counter()
            try:
                ens = backend.fit(d_train)
                row["backends"][name] = score(ens, d_valid, bounds, z) | {"wall_s": time.perf_counter() - tb}
            except Exception as exc:  # noqa: BLE001 - a failing backend is recorded, not fatal
                row["backends"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        result["capacity"].append(row)
        logger.info("2J=%d: P=%d held-out LSQ energy RMSE %.3g meV/atom", tj, row["P"],
                    row["lsq_energy_rmse_meV_per_atom"])
    if fractions:
        d_train, d_valid = designs[nop_twojmax]
        rng = np.random.default_rng(seed)
        configs = np.unique(d_train.config)
        for frac in fractions:
            keep = rng.choice(configs, size=max(2, int(np.rint(frac * configs.size))), replace=False)
            sub = d_train.select(np.isin(d_train.config, keep))
            row = {"fraction": float(frac), "n_frames": int(keep.size), "N_rows": sub.n_rows, "P": sub.n_params,
                   "N_over_P": sub.n_rows / sub.n_params, "backends": {}}
            for name, (backend, bounds, z) in (backends or make_backends(seed, quick)).items():
                try:
                    row["backends"][name] = score(backend.fit(sub), d_valid, bounds, z)
                except Exception as exc:  # noqa: BLE001
                    row["backends"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            result["n_over_p"].append(row)
        result["nop_twojmax"] = nop_twojmax
    result["wall_s"] = time.perf_counter() - t0
    return result


def _fmt(x, spec=".2f") -> str:
    return "–" if x is None or not np.isfinite(x) else format(x, spec)


def to_markdown(result: dict) -> str:
    lines = [f"# Capacity sweep: W teacher (2J=8) → SNAP student, held-out {', '.join(result['validation_groups'])}",
             "", (f"{result['n_train_frames']} training / {result['n_valid_frames']} held-out frames, seed {result['seed']}"
             f"{', quick' if result['quick'] else ''}. Energies eV/atom, forces eV/Å. cov = coverage of held-out "
             "rows; |e|/σ = mean |err|/σ; |e|/W = mean |err|/(U−L). 2J=8 = teacher capacity (well specified)."), "",
             ("| 2J | P | LSQ E RMSE meV/atom | LSQ F RMSE eV/Å | backend | E cov | E \\|e\\|/σ | E \\|e\\|/W | E width meV/atom "
             "| F cov | F \\|e\\|/σ | F \\|e\\|/W |"), "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["capacity"]:
        for name, s in row["backends"].items():
            head = f"| {row['twojmax']} | {row['P']} | {_fmt(row['lsq_energy_rmse_meV_per_atom'], '.3g')} " \
                   f"| {_fmt(row['lsq_force_rmse_eV_per_A'], '.3g')} | {name} "
            if "error" in s:
                lines.append(head + f"| failed: {s['error']} |||||||")
                continue
            E, F = s["energy"], s["force"]
            lines.append(head + f"| {_fmt(E['coverage'])} | {_fmt(E['mean_abs_error_over_std'])} "
                         f"| {_fmt(E['mean_abs_error_over_width'], '.3f')} | {_fmt(1e3 * E['mean_width'], '.3g')} "
                         f"| {_fmt(F['coverage'])} | {_fmt(F['mean_abs_error_over_std'])} "
                         f"| {_fmt(F['mean_abs_error_over_width'], '.3f')} |")
    exact = [r["twojmax"] for r in result["capacity"] if r["lsq_energy_rmse_meV_per_atom"] < 1e-3]
    if exact:
        lines += ["", (f"Note: at 2J={', '.join(map(str, exact))} the student reproduces the teacher to round-off "
                  "(held-out errors ~1e-6 meV/atom, ~1e-8 eV/Å): training residuals, and hence POPS/bootstrap/MCMC "
                  "widths, are numerical noise, so coverage and |e|/σ there measure round-off, not model error. "
                  "The meaningful check is the point-estimate RMSE ≈ 0.")]
    if result["n_over_p"]:
        names = result["backends"]
        lines += ["", f"## Envelope violation (1 − coverage, energy / force) vs N/P, 2J={result['nop_twojmax']}", "",
                  "| fraction | frames | N rows | N/P | " + " | ".join(names) + " |",
                  "|---|---|---|---|" + "---|" * len(names)]
        for row in result["n_over_p"]:
            cells = []
            for name in names:
                s = row["backends"][name]
                cells.append("failed" if "error" in s else
                             f"{_fmt(s['energy']['violation_rate'])} / {_fmt(s['force']['violation_rate'])}")
            lines.append(f"| {row['fraction']:g} | {row['n_frames']} | {row['N_rows']} | {row['N_over_P']:.1f} | "
                         + " | ".join(cells) + " |")
    lines += ["", f"wall time {result['wall_s']:.0f} s"]
    return "\n".join(lines)


def figure(result: dict, stem: Path) -> list[Path]:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result["backends"]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    tj = [r["twojmax"] for r in result["capacity"]]
    for name in names:
        def get(kind, key, rows=result["capacity"], name=name):
            return [r["backends"][name][kind][key] if "error" not in r["backends"][name] else np.nan for r in rows]

        axes[0].plot(tj, get("energy", "coverage"), "o-", label=name)
        axes[1].plot(tj, get("force", "coverage"), "o-", label=name)
        axes[2].semilogy(tj, get("energy", "mean_abs_error_over_width"), "o-", label=name)
        if result["n_over_p"]:
            nop = [r["N_over_P"] for r in result["n_over_p"]]
            axes[3].semilogx(nop, get("energy", "violation_rate", result["n_over_p"]), "o-", label=name)
    axes[0].set(xlabel="student 2J", ylabel="held-out energy coverage", ylim=(-0.05, 1.05), xticks=tj)
    axes[1].set(xlabel="student 2J", ylabel="held-out force coverage", ylim=(-0.05, 1.05), xticks=tj)
    axes[2].set(xlabel="student 2J", ylabel="energy mean |err|/(U−L)", xticks=tj)
    for ax in axes[:3]:
        ax.axvline(8, color="0.7", ls=":", lw=1)
    if result["n_over_p"]:
        axes[3].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axes[3].set(xlabel=f"N/P (2J={result['nop_twojmax']})", ylabel="energy envelope violation", ylim=(-0.05, 1.05))
    axes[0].legend(fontsize=7)
    fig.suptitle("W teacher → SNAP student: held-out divacancy/interstitial/surface_112/gsf_112 (dotted: teacher 2J=8)",
                 fontsize=9)
    fig.tight_layout()
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=130)
    plt.close(fig)
    return paths


def run_capacity_sweep(out="results/capacity_sweep", quick: bool = True, twojmaxes=(2, 4, 6, 8),
                       nop_twojmax: int = 6, fractions=None, seed: int = 0, figures: bool = True,
                       executor=None) -> dict:
    """Run the sweep, print the tables and write Markdown, JSON and (optionally) the figure.

    Parameters
    ----------
    out : path
        Results folder.
    quick : bool
        Fewer members and MCMC steps, three N/P points (about a minute on 2 cores).
    twojmaxes : sequence of int
        Student capacities (the teacher has 2J = 8: the well-specified control).
    nop_twojmax : int
        Capacity of the envelope-violation-vs-N/P panel.
    fractions : sequence of float, optional
        Training fractions of that panel (default 0.2, 0.5, 1 quick; 0.05 … 1 otherwise).
    seed : int
    figures : bool
    executor : concurrent.futures.Executor, optional
        Builds the design matrices.

    Returns
    -------
    dict
        The result (:func:`run`) with ``paths`` of what was written.
    """
    if fractions is None:
        fractions = (0.2, 0.5, 1.0) if quick else (0.05, 0.1, 0.25, 0.5, 1.0)
    result = run(twojmaxes, nop_twojmax, fractions, seed, quick, executor=executor)
    md = to_markdown(result)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"capacity_sweep_seed{seed}{'_quick' if quick else ''}"
    stem.with_suffix(".md").write_text(md + "\n")
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    written = [stem.with_suffix(".md"), stem.with_suffix(".json")]
    if figures:
        written += figure(result, stem)
    logger.info("written: %s", ", ".join(map(str, written)))
    result["paths"] = [str(p) for p in written]
    result["markdown"] = md
    return result


def main(argv=None) -> dict:
    """``python comparisons/capacity_sweep.py`` (every option of :func:`run_capacity_sweep`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer members/MCMC steps, 3 N/P points (about a minute)")
    parser.add_argument("--twojmax", type=int, nargs="+", default=[2, 4, 6, 8])
    parser.add_argument("--nop-twojmax", type=int, default=6)
    parser.add_argument("--fractions", type=float, nargs="*", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("results/capacity_sweep"))
    args = parser.parse_args(argv)
    show_progress()
    result = run_capacity_sweep(args.out, args.quick, args.twojmax, args.nop_twojmax, args.fractions, args.seed,
                                not args.no_figure)
    print("\n" + result["markdown"])
    return result
