"""Figures of a coverage study (matplotlib, Agg): property error bars, held-out parity, calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._io import as_float

__all__ = ["plot_calibration", "plot_heldout_parity", "plot_property_errors"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, stem: Path) -> list[Path]:
    # not with_suffix: a stem may hold dots (a model name such as chgnet-0.3.0)
    paths = [Path(f"{stem}.png"), Path(f"{stem}.svg")]
    fig.tight_layout()
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    _pyplot().close(fig)
    return paths


def _label(ax, title: str, xlabel: str, ylabel: str | None = None) -> None:
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=7)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=7)


def plot_property_errors(results, stem) -> list[Path]:
    """Per-property error bars against the reference, one panel per backend (the paper's style).

    The dot is the point-estimate error p − r, the bar spans [L − r, U − r], the zero line is the
    reference. Each row is normalised by |r| (in %) so properties in different units share an
    axis; a symlog axis keeps 1 % and 1000 % errors readable together. Red: not bracketed.
    """
    plt = _pyplot()
    backends = list(results.backends)
    props = list(dict.fromkeys(r["property"] for r in results.records))
    fig, axes = plt.subplots(1, len(backends), figsize=(3.2 * len(backends) + 1.5, 0.24 * len(props) + 1.6),
                             sharey=True, squeeze=False)
    y = np.arange(len(props))[::-1]
    for ax, b in zip(axes[0], backends):
        recs = {r["property"]: r for r in results.of(b)}
        for yi, p in zip(y, props):
            r = recs.get(p)
            if r is None:
                continue
            ref = as_float(r["reference"])
            # a tiny reference (dE_a15 ~ 0.01 eV) would make every % error enormous: floor the scale
            scale = max(abs(ref), 1e-2) / 100.0
            e, lo, hi = (as_float(r[k]) / scale for k in ("error", "low_error", "high_error"))
            colour = "tab:blue" if r["bracketed"] else "tab:red"
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [yi, yi], color=colour, lw=2.5, alpha=0.55, solid_capstyle="butt")
            if np.isfinite(e):
                ax.plot(e, yi, "o", color=colour, ms=3.5)
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_xscale("symlog", linthresh=1.0)
        s = results.summary(b)
        _label(ax, f"{b}\ncov {s.get('coverage', np.nan):.2f}, |err|/(U−L) {s.get('mean_abs_error_over_width', np.nan):.2f}",
               "(value − reference)/|reference|  (%)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y)
    axes[0][0].set_yticklabels(props, fontsize=6.5)
    return _save(fig, Path(stem))


def plot_heldout_parity(results, stem) -> list[Path]:
    """Parity of held-out energies (eV/atom, reference part subtracted) with their bounds, one panel per backend."""
    plt = _pyplot()
    names = [b for b in results.backends if "energy" in results.heldout.get(b, {})]
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.4), squeeze=False)
    for ax, b in zip(axes[0], names):
        e = results.heldout[b]["energy"]
        ref, p = np.asarray(e["reference"], float), np.asarray(e["point"], float)
        lo = np.asarray([as_float(v) for v in e["lower"]])
        hi = np.asarray([as_float(v) for v in e["upper"]])
        groups = np.asarray(e["group"])
        for g in np.unique(groups):
            m = groups == g
            ax.errorbar(ref[m], p[m], yerr=np.abs(np.stack([p[m] - lo[m], hi[m] - p[m]])), fmt="o", ms=3,
                        elinewidth=0.8, capsize=0, label=g, alpha=0.8)
        span = [np.nanmin(np.r_[ref, lo]), np.nanmax(np.r_[ref, hi])]
        ax.plot(span, span, "k-", lw=0.7)
        cov = results.heldout[b].get("kind", {}).get("energy", {}).get("coverage", np.nan)
        _label(ax, f"{b} ({results.heldout[b].get('bounds')})\nenergy coverage {cov:.2f}",
               "reference E/atom − ref. part (eV)", "prediction (eV)")
    axes[0][0].legend(fontsize=6)
    return _save(fig, Path(stem))


def plot_calibration(results, stem) -> list[Path] | None:
    """Calibration curves of the Gaussian backends: empirical vs nominal coverage of value ± zσ.

    Panels: the scored properties, held-out energies, held-out forces. A calibrated backend
    follows the diagonal; below it, its σ is too small. Backends that report a box or a member
    range claim no nominal probability and are left out. None when there is no Gaussian backend.
    """
    names = [b for b, info in results.backends.items() if info.get("bounds") == "gaussian"]
    if not names:
        return None
    plt = _pyplot()
    panels = [("properties", lambda b: results.summary(b).get("calibration"))]
    for kind, label in (("energy", "held-out energies"), ("force", "held-out forces")):
        panels.append((label, lambda b, k=kind: results.heldout.get(b, {}).get("kind", {}).get(k, {}).get("calibration")))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.3), squeeze=False)
    for ax, (label, curve_of) in zip(axes[0], panels):
        ax.plot([0, 1], [0, 1], "k-", lw=0.7)
        for b in names:
            curve = curve_of(b)
            if curve:
                ax.plot(curve["levels"], curve["coverage"], "o-", ms=3, lw=1.2, label=b)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        _label(ax, label, "nominal probability of value ± zσ", "fraction of references inside")
    axes[0][0].legend(fontsize=6)
    return _save(fig, Path(stem))
