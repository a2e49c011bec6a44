"""CoverageResults: the paper-format tables (Markdown), CSV and JSON of a coverage study."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np

from ._io import as_float, clean, write_json
from .metrics import NOISE_FLOOR, summarize

__all__ = ["CoverageResults"]

_CSV_FIELDS = ["backend", "property", "unit", "method", "n_members", "bounds", "reference", "reference_source",
               "value", "std", "lower", "upper", "error", "low_error", "high_error", "bracketed", "width",
               "abs_error_over_std", "abs_error_over_width", "half_width_over_abs_error", "n_failed", "flags",
               "notes", "wall_s"]


def _f(v, fmt=".4g") -> str:
    v = as_float(v) if v is None or isinstance(v, (int, float, np.floating)) else v
    return "–" if isinstance(v, float) and not np.isfinite(v) else format(v, fmt)


def _ratios(s: dict) -> str:
    """abs(err)/(U−L) as mean · ratio of means · median (the mean alone is ruled by its largest terms)."""
    return " · ".join(_f(s.get(k), ".3f") for k in ("mean_abs_error_over_width", "mean_abs_error_over_mean_width",
                                                       "median_abs_error_over_width"))


@dataclasses.dataclass
class CoverageResults:
    """Everything a :class:`~uqcalc.coverage.CoverageStudy` produced.

    Attributes
    ----------
    records : list of dict
        One per backend × property: value, std, lower, upper, reference, error, low/high error,
        bracketed, ratios, method, members, flags.
    backends : dict
        name → settings, bounds, how the settings were chosen.
    heldout : dict
        name → configuration-level coverage (:func:`~uqcalc.coverage.references.heldout_coverage`).
    meta : dict
        Wall time, counts of fits/references/propagations computed in this run, descriptor.
    """

    records: list
    backends: dict
    heldout: dict = dataclasses.field(default_factory=dict)
    meta: dict = dataclasses.field(default_factory=dict)

    def of(self, backend: str) -> list[dict]:
        return [r for r in self.records if r["backend"] == backend]

    def summary(self, backend: str) -> dict:
        """Property-level coverage summary of one backend (:func:`~uqcalc.coverage.metrics.summarize`)."""
        rs = [r for r in self.of(backend) if np.isfinite(as_float(r["reference"]))]
        cols = [np.array([as_float(r[k]) for r in rs]) for k in ("value", "lower", "upper", "reference", "std")]
        s = summarize(*cols[:4], std=cols[4])
        if self.backends.get(backend, {}).get("bounds") != "gaussian":
            # a box or a member range claims no nominal probability: a Gaussian calibration
            # curve of its std would score a claim the backend does not make
            s.pop("calibration", None)
            s.pop("miscalibration_area", None)
        return s

    # -- text ------------------------------------------------------------------------------

    def comparison_markdown(self) -> str:
        """One row per backend: property coverage next to width, and held-out configuration coverage."""
        lines = [("| backend | settings chosen | bounds | property coverage | abs(err)/(U−L): mean · ratio of means · median "
                  "| median half-width/abs(err) | mean abs(err)/σ | miscal. area | held-out E coverage "
                  "| held-out E abs(err)/(U−L) | held-out F coverage | held-out F abs(err)/(U−L) |"),
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, info in self.backends.items():
            s = self.summary(name)
            h = self.heldout.get(name, {}).get("kind", {})
            he, hf = h.get("energy", {}), h.get("force", {})
            b = {"gaussian": f"mean ± {info['z']:g}σ", "box": "box corners ∪ member min/max"}.get(
                info["bounds"], "member min/max")
            chosen = info["chosen"]
            cal = info.get("calibration")
            if cal:
                chosen += (f": {', '.join(f'{k}={v}' for k, v in cal['settings'].items())}, box scale "
                           f"{cal['box_scale']:.3g}, validation coverage "
                           f"{', '.join(f'{k} {v:.2f}' for k, v in cal['coverage'].items())}"
                           + ("" if cal["reached"] else f" (target {cal['target']} not reachable)"))
            lines.append(
                f"| {name} | {chosen} | {b} | {_f(s.get('coverage'), '.2f')} ({s['n']}) "
                f"| {_ratios(s)} | {_f(s.get('median_half_width_over_abs_error'), '.2f')} "
                f"| {_f(s.get('mean_abs_error_over_std'), '.2f')} | {_f(s.get('miscalibration_area'), '.2f')} "
                f"| {_f(he.get('coverage'), '.2f')} | {_ratios(he)} "
                f"| {_f(hf.get('coverage'), '.2f')} | {_ratios(hf)} |")
        unstable = [(name, info["stability"]) for name, info in self.backends.items()
                    if info.get("stability") and "n_unstable" in info["stability"]]
        if unstable:
            lines += ["", "Members that are not mechanically stable at their own lattice constant (Born criteria, "
                      "`uqcalc.propagate.stability`): " + "; ".join(
                          f"{name} {st['n_unstable']} of {st['n_members']}"
                          + (" (" + ", ".join(f"{k} {v}" for k, v in st["by_criterion"].items() if v) + ")"
                             if st["n_unstable"] else "")
                          for name, st in unstable) + "."]
        return "\n".join(lines)

    def backend_markdown(self, backend: str) -> str:
        """The paper's per-property table for one backend: MLE error, std, low/high bound errors."""
        info = self.backends[backend]
        settings = ", ".join(f"{k}={v}" for k, v in info["settings"].items() if v is not None)
        lines = [f"### {backend}", "",
                 (f"{info['class']}({settings}); settings {info['chosen']}; property bounds: ")
                 + (f"value ± {info['z']:g}σ of the propagated members" if info["bounds"] == "gaussian"
                    else "min/max of the propagated members"), "",
                 "| property | unit | reference | method | M | MLE error | std | low error | high error | bracketed | flags |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.of(backend):
            lines.append(
                f"| {r['property']} | {r['unit']} | {_f(r['reference'], '.5g')} | {r['method']} | {r['n_members']} "
                f"| {_f(r['error'], '+.3g')} | {_f(r['std'], '.3g')} | {_f(r['low_error'], '+.3g')} "
                f"| {_f(r['high_error'], '+.3g')} | {'yes' if r['bracketed'] else '**no**'} | {len(r['flags'])} |")
        s = self.summary(backend)
        lines += ["", (f"coverage {_f(s.get('coverage'), '.2f')} of {s['n']} (violation rate "
                  f"{_f(s.get('violation_rate'), '.2f')}); |err|/(U−L) mean · ratio of means · median {_ratios(s)}; "
                  f"median half-width/|err| {_f(s.get('median_half_width_over_abs_error'), '.2f')}; "
                  f"mean |err|/σ {_f(s.get('mean_abs_error_over_std'), '.2f')}")]
        return "\n".join(lines)

    def heldout_markdown(self) -> str:
        """Configuration-level coverage per backend × held-out group × row kind."""
        lines = [("| backend | bounds | group | row kind | n | coverage | mean abs(err)/(U−L) | mean abs(err)/mean(U−L) "
                  "| median abs(err)/(U−L) | median half-width/abs(err) |"),
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for name, h in self.heldout.items():
            calibrated = bool(self.backends.get(name, {}).get("calibration"))
            for gk, s in h.get("group×kind", {}).items():
                g, k = gk.split("|")
                g = f"{g} (calibration set)" if calibrated else g
                lines.append(f"| {name} | {h.get('bounds')} | {g} | {k} | {s['n']} | {_f(s.get('coverage'), '.2f')} "
                             f"| {_f(s.get('mean_abs_error_over_width'), '.3f')} "
                             f"| {_f(s.get('mean_abs_error_over_mean_width'), '.3f')} "
                             f"| {_f(s.get('median_abs_error_over_width'), '.3f')} "
                             f"| {_f(s.get('median_half_width_over_abs_error'), '.2f')} |")
        lines += ["", ("Held-out rows count as bracketed within a noise floor of "
                       + ", ".join(f"{v:.3g} ({k})" for k, v in NOISE_FLOOR.items())
                       + " in the design's units (eV/atom, eV/Å, eV/Å³); the width ratios use U − L + 2·floor.")]
        return "\n".join(lines)

    def to_markdown(self, title: str = "Coverage study") -> str:
        parts = [f"# {title}", "", ("## Summary (property level: scored against the references; "
                 "held-out: configuration level, energies per atom and force components)"), "",
                 self.comparison_markdown(), ""]
        if self.heldout:
            parts += ["## Held-out configurations", "", self.heldout_markdown(), ""]
        if self.records:  # a held-out-only study has no property tables
            parts += ["## Per property", ""]
            for name in self.backends:
                parts += [self.backend_markdown(name), ""]
        parts += [(f"Wall time of this run: {self.meta.get('wall_s', float('nan')):.0f} s; computed in this run: "
                   f"{self.meta.get('counts')}.")]
        return "\n".join(parts)

    # -- files -----------------------------------------------------------------------------

    def to_csv(self, path=None) -> str:
        """One row per backend × property; returns the text and writes it if ``path`` is given."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in self.records:
            w.writerow({k: ("; ".join(r[k]) if isinstance(r.get(k), list) else r.get(k)) for k in _CSV_FIELDS})
        if path is not None:
            Path(path).write_text(buf.getvalue())
        return buf.getvalue()

    def to_dict(self) -> dict:
        return clean({"records": self.records, "backends": self.backends, "heldout": self.heldout, "meta": self.meta,
                      "summaries": {b: self.summary(b) for b in self.backends}})

    def to_json(self, path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def from_json(cls, path) -> CoverageResults:
        d = json.loads(Path(path).read_text())
        return cls(records=d["records"], backends=d["backends"], heldout=d.get("heldout", {}), meta=d.get("meta", {}))

    def write(self, out_dir, stem: str = "coverage", figures: bool = True, title: str = "Coverage study") -> list[Path]:
        """Markdown, CSV, JSON and (optionally) PNG+SVG figures into ``out_dir``; returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"{stem}.md", out / f"{stem}.csv", out / f"{stem}.json"]
        paths[0].write_text(self.to_markdown(title))
        self.to_csv(paths[1])
        self.to_json(paths[2])
        if figures:
            from .figures import (
                plot_calibration,
                plot_heldout_parity,
                plot_property_errors,
            )

            if self.records:
                paths += plot_property_errors(self, out / f"{stem}_properties")
            if self.heldout:
                paths += plot_heldout_parity(self, out / f"{stem}_heldout_parity")
            paths += plot_calibration(self, out / f"{stem}_calibration") or []
        return paths
