"""Calibrated POPS: row selection and a box scale chosen on held-out configurations.

``POPS(...).calibrate(train_design, validation_design, target=0.95)`` (``docs/pops_calibration.md``
states the method and its limits). For each candidate row selection c (row kinds, leverage and
residual filters, percentile clipping) the POPS posterior is fitted on the training rows at
box scale 1; on every validation row n of the scored kinds it gives the point p_n and the
bounds [L_n, U_n]. Scaling the box (or the corrections) about the point estimate by s > 0 moves
the bounds to p_n + s(L_n − p_n) and p_n + s(U_n − p_n) — exactly, for the box corners and for
member min/max alike, because every member's prediction is affine in its offset from θ̄. With the
noise floor τ_k of the row's kind, row n is covered at scale s iff

    s(L_n − p_n) − τ_k ≤ y_n − p_n ≤ s(U_n − p_n) + τ_k,

a closed interval [s⁻_n, s⁺_n] of s (usually [s⁻_n, ∞)). The coverage of kind k, C_k(s), is a
step function whose upward steps sit at the s⁻_n; the calibrated scale of c is the smallest s
with C_k(s) ≥ target for every scored kind k, found exactly from the sorted s⁻_n and s⁺_n. Its
width score is the mean over kinds of mean(U − L)_k / RMSE_k (each kind's mean interval width
at that scale in units of the point estimate's validation RMSE, so energies and forces weigh
alike), and the candidate of smallest score wins. When no candidate reaches the target within
``max_scale``, the report says so and names the rows no scale covers; each candidate is then
calibrated to the same fraction of the rows it can cover, and the narrowest is returned with its
coverage (a warning, never silently the widest box).

This is split conformal calibration of one scale parameter (Vovk et al., *Algorithmic Learning
in a Random World*, 2005; Angelopoulos & Bates, arXiv:2107.07511) applied to the POPS box. The
validation rows of one configuration are correlated and validation groups are few, so there is
no finite-sample guarantee; and it says nothing about kinds of configurations unlike the
validation groups.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ..design import KINDS, NOISE_FLOOR
from .base import check_theta
from .selection import default_candidates, fit_candidates

__all__ = ["CalibrationReport", "calibrate", "coverage_scale"]


def _row_intervals(offset_low, offset_high, deviation, tolerance):
    """[s⁻, s⁺] per row: the box scales s ≥ 0 at which the row is covered (module docstring)."""
    a, b, d = (np.asarray(v, dtype=float) for v in (offset_low, offset_high, deviation))
    tol = np.broadcast_to(np.asarray(tolerance, dtype=float), d.shape)
    lo = np.zeros(d.shape)
    hi = np.full(d.shape, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        # upper side: d − τ ≤ s·b
        need = d - tol
        up_pos = b > 0
        lo = np.where(up_pos & (need > 0), need / np.where(up_pos, b, 1.0), lo)
        lo = np.where(~up_pos & (need > 0), np.inf, lo)
        hi = np.where(~up_pos & (b < 0) & (need <= 0), np.minimum(hi, need / np.where(b < 0, b, 1.0)), hi)
        # lower side: s·a ≤ d + τ
        room = d + tol
        low_neg = a < 0
        lo = np.where(low_neg & (room < 0), np.maximum(lo, room / np.where(low_neg, a, 1.0)), lo)
        lo = np.where(~low_neg & (room < 0), np.inf, lo)
        hi = np.where((a > 0) & (room >= 0), np.minimum(hi, room / np.where(a > 0, a, 1.0)), hi)
    # a row covered at no scale is (inf, inf): never entered, never left (see _coverage_at)
    never = ~np.isfinite(d) | np.isnan(a) | np.isnan(b) | (lo > hi) | ~np.isfinite(lo)
    lo[never] = np.inf
    hi[never] = np.inf
    return lo, hi


def _coverage_at(s: np.ndarray, lo_sorted: np.ndarray, hi_sorted: np.ndarray) -> np.ndarray:
    """Fraction of rows with s⁻ ≤ s ≤ s⁺ at each s (the row intervals given sorted)."""
    n = lo_sorted.size
    if n == 0:
        return np.ones(s.shape)
    entered = np.searchsorted(lo_sorted, s, side="right")
    left = np.searchsorted(hi_sorted, s, side="left")
    return (entered - left) / n


def coverage_scale(intervals: Mapping[str, tuple[np.ndarray, np.ndarray]], target: float | Mapping[str, float],
                   max_scale: float) -> tuple[float, dict[str, float], bool]:
    """Smallest s ≤ ``max_scale`` at which every kind's coverage reaches its target.

    Parameters
    ----------
    intervals : mapping kind -> (s⁻, s⁺)
        Per-row covered scale intervals of each scored kind.
    target : float or mapping kind -> float
        Required coverage (of every kind, or per kind).
    max_scale : float
        Largest scale considered.

    Returns
    -------
    scale, coverage per kind at that scale, reached
        When the targets cannot be reached, the scale that maximises the worst kind's coverage
        (the smallest such) and ``reached=False``.
    """
    sorted_ = {k: (np.sort(lo), np.sort(hi)) for k, (lo, hi) in intervals.items()}
    targets = {k: float(target[k] if isinstance(target, Mapping) else target) for k in sorted_}
    points = np.concatenate([lo[np.isfinite(lo) & (lo <= max_scale)] for lo, _ in sorted_.values()]
                            + [np.array([0.0, max_scale])])
    points = np.unique(points)
    cov = {k: _coverage_at(points, lo, hi) for k, (lo, hi) in sorted_.items()}
    ok = np.flatnonzero(np.all(np.vstack([cov[k] >= targets[k] - 1e-12 for k in cov]), axis=0))
    reached = ok.size > 0
    worst = np.min(np.vstack(list(cov.values())), axis=0)
    i = int(ok[0]) if reached else int(np.argmax(worst))  # argmax: first (smallest s) of the maxima
    return float(points[i]), {k: float(c[i]) for k, c in cov.items()}, reached


@dataclasses.dataclass
class CalibrationReport:
    """What :func:`calibrate` tried and chose.

    Attributes
    ----------
    target : float
        Required held-out coverage of every scored kind.
    kinds : tuple of str
        Scored row kinds of the validation design.
    tolerance : dict
        Noise floor per kind used for "covered".
    reached : bool
        Whether the chosen candidate reaches the target.
    chosen : dict
        The chosen candidate's row (as in ``candidates``).
    candidates : list of dict
        Per candidate: ``settings``, ``scale``, ``coverage`` (per kind, at ``scale``),
        ``coverage_unscaled`` (at scale 1), ``mean_width`` and ``rmse`` (per kind),
        ``median_half_width_over_abs_error`` (per kind, at ``scale``), ``score`` (mean over kinds
        of mean width / RMSE), ``reached``, ``coverage_cap`` (per kind, at ``max_scale``),
        ``uncoverable_groups`` (per kind: group -> rows no scale ≤ max_scale covers), ``n_kept``,
        ``rank``, or ``error``.
    n_rows : dict
        Validation rows per scored kind.
    """

    target: float
    kinds: tuple[str, ...]
    tolerance: dict
    reached: bool
    chosen: dict
    candidates: list[dict]
    n_rows: dict

    def to_markdown(self) -> str:
        """One row per candidate, the chosen one first, then by score."""
        kinds = self.kinds
        head = ("| settings | scale | " + " | ".join(f"{k} coverage (at 1)" for k in kinds) + " | "
                + " | ".join(f"{k} width/RMSE" for k in kinds) + " | "
                + " | ".join(f"{k} median half-width/abs(err)" for k in kinds) + " | score | reaches |")
        lines = [head, "|" + "---|" * (3 + 3 * len(kinds) + 1)]
        rows = sorted((r for r in self.candidates if "error" not in r), key=lambda r: (r is not self.chosen, r["score"]))
        for r in rows:
            settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
            mark = " **(chosen)**" if r is self.chosen else ""
            lines.append(
                f"| {settings}{mark} | {r['scale']:.3g} | "
                + " | ".join(f"{r['coverage'][k]:.3f} ({r['coverage_unscaled'][k]:.3f})" for k in kinds) + " | "
                + " | ".join(f"{r['mean_width'][k] / r['rmse'][k]:.3g}" for k in kinds) + " | "
                + " | ".join(f"{r['median_half_width_over_abs_error'][k]:.3g}" for k in kinds)
                + f" | {r['score']:.3g} | {'yes' if r['reached'] else 'no'} |")
        for r in self.candidates:
            if "error" in r:
                lines.append(f"| {r['settings']} | – | failed: {r['error']} |")
        verdict = ("reached" if self.reached else "**not reached**: the chosen setting is the best achievable")
        lines += ["", (f"Target coverage {self.target} of {', '.join(f'{self.n_rows[k]} {k}' for k in kinds)} "
                       f"validation rows: {verdict}; noise floor {self.tolerance}.")]
        return "\n".join(lines)


def calibrate(pops, train_design, validation_design, target: float = 0.95, candidates: Sequence[dict] | None = None,
              kinds: Sequence[str] | str | None = ("energy", "force"), tolerance: Mapping[str, float] | None = None,
              max_scale: float = 100.0, *, theta=None):
    """Choose row selection and box scale on validation configurations; see :meth:`POPS.calibrate`.

    Parameters
    ----------
    pops : POPS
        Base settings; each candidate is ``pops.clone(**candidate, box_scale=1)``.
    train_design, validation_design : DesignMatrix
        Rows that are fitted, and rows of held-out configurations that are scored.
    target : float
        Coverage in (0, 1] every scored kind must reach.
    candidates : list of dict, optional
        Hyperparameter overrides (default :func:`~uqcalc.backends.selection.default_candidates`);
        ``box_scale`` may not be among them (it is what is calibrated).
    kinds : str, sequence of str or None
        Validation row kinds scored (None: every kind present). Kinds absent from the
        validation design are skipped.
    tolerance : mapping kind -> float, optional
        Noise floor per kind (default :data:`uqcalc.design.NOISE_FLOOR`).
    max_scale : float
        Largest box scale considered (> 0).
    theta : (P,) array, optional
        A given point estimate every candidate is built around.

    Returns
    -------
    pops : POPS
        Unfitted, with the chosen settings and ``box_scale``.
    report : CalibrationReport

    Notes
    -----
    Unreachable target: rows whose interval is too narrow to cover at any scale ≤ ``max_scale``
    (a force component the descriptor cannot move, whose reference carries more noise than the
    floor) cap the coverage at ``coverage_cap`` < target for every candidate. Chasing that cap
    buys the last rows with a box orders of magnitude wider, so each candidate is then
    calibrated to ``target`` × its cap of every kind (the same fraction of the rows it can
    cover) and the narrowest wins; a RuntimeWarning and ``report.reached = False`` say so, and
    each candidate row lists its ``uncoverable_groups``.
    """
    if not 0 < float(target) <= 1:
        raise ValueError(f"target must be in (0, 1], got {target}")
    if not float(max_scale) > 0:
        raise ValueError(f"max_scale must be > 0, got {max_scale}")
    pops._validate_params()
    theta0 = check_theta(theta, train_design.n_params)
    candidates = default_candidates(train_design) if candidates is None else [dict(c) for c in candidates]
    if not candidates:
        raise ValueError("no candidates")
    if any("box_scale" in c for c in candidates):
        raise ValueError("box_scale is what calibrate chooses; remove it from the candidates")
    fits = fit_candidates(pops, train_design, candidates, theta0, box_scale=1.0)
    floors = dict(NOISE_FLOOR) | dict(tolerance or {})
    present = [k for k in KINDS if np.any(validation_design.kind == k)]
    if kinds is None:
        scored = present
    else:
        wanted = [kinds] if isinstance(kinds, str) else list(kinds)
        unknown = [k for k in wanted if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown row kinds {unknown}; expected some of {KINDS}")
        scored = [k for k in wanted if k in present]
    if not scored:
        raise ValueError(f"the validation design has no rows of kinds {kinds}")
    masks = {k: validation_design.kind == k for k in scored}
    any_row = np.any(np.vstack(list(masks.values())), axis=0)
    Xv, yv = validation_design.X[any_row], validation_design.y[any_row]
    validation_groups = np.asarray(validation_design.group)[any_row].astype(str)
    masks = {k: m[any_row] for k, m in masks.items()}

    table = []
    for settings, ens, error in fits:
        row = {"settings": settings}
        if error is not None:
            table.append(row | {"error": error})
            continue
        pred = ens.predict(Xv, return_members=False)
        intervals = {}
        for k, m in masks.items():
            p = pred.mean[m]
            intervals[k] = _row_intervals(pred.lower[m] - p, pred.upper[m] - p, yv[m] - p, floors.get(k, 0.0))
        scale, cov, reached = coverage_scale(intervals, float(target), float(max_scale))
        _, cap, _ = coverage_scale(intervals, 2.0, float(max_scale))  # unreachable target: the coverage at max_scale
        if not reached:  # the same fraction of the coverable rows (see the Returns note)
            scale, cov, _ = coverage_scale(intervals, {k: float(target) * cap[k] for k in cap}, float(max_scale))
        row["coverage_cap"] = cap
        row["uncoverable_groups"] = {
            k: dict(zip(*np.unique(validation_groups[m][intervals[k][0] > max_scale], return_counts=True)))
            for k, m in masks.items()}
        width, rmse, ratio, cov1 = {}, {}, {}, {}
        for k, m in masks.items():
            w = scale * (pred.upper[m] - pred.lower[m])
            err = np.abs(pred.mean[m] - yv[m])
            width[k] = float(np.mean(w))
            rmse[k] = float(np.sqrt(np.mean(err**2)))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio[k] = float(np.median(0.5 * (w + 2 * floors.get(k, 0.0)) / err))
            lo, hi = intervals[k]
            cov1[k] = float(np.mean((lo <= 1.0) & (1.0 <= hi)))
        row["uncoverable_groups"] = {k: {g: int(n) for g, n in d.items()} for k, d in row["uncoverable_groups"].items()}
        row.update(scale=scale, coverage=cov, coverage_unscaled=cov1, mean_width=width, rmse=rmse,
                   median_half_width_over_abs_error=ratio,
                   score=float(np.mean([width[k] / rmse[k] if rmse[k] > 0 else np.inf for k in scored])),
                   reached=reached, n_kept=ens.metadata["rows"]["n_kept"],
                   rank=int(ens.axes.shape[1]) if ens.has_box else None)
        table.append(row)
    ok = [r for r in table if "error" not in r]
    if not ok:
        raise ValueError("no candidate could be fitted: " + "; ".join(r["error"] for r in table))
    reaching = [r for r in ok if r["reached"]]
    best = min(reaching or ok, key=lambda r: r["score"])
    if not reaching:
        stuck = "; ".join(f"{k}: {sum(d.values())} rows ({', '.join(f'{g} {n}' for g, n in d.items())})"
                          for k, d in best["uncoverable_groups"].items() if d)
        warnings.warn(
            f"POPS.calibrate: no candidate reaches coverage {target} of the validation rows within box scale "
            f"{max_scale} (rows no scale covers — {stuck or 'none'}; at most "
            f"{', '.join(f'{k} {v:.3f}' for k, v in best['coverage_cap'].items())} for the chosen setting). Returning "
            f"the narrowest setting that covers {target} of the coverable rows: {best['settings']} at scale "
            f"{best['scale']:.3g}, coverage {', '.join(f'{k} {v:.3f}' for k, v in best['coverage'].items())}",
            RuntimeWarning, stacklevel=3,
        )
    # a zero scale (every validation row within its noise floor of the point) is no box at all
    scale = best["scale"] if best["scale"] > 0 else 1e-12
    if best["scale"] == 0:
        warnings.warn(
            "POPS.calibrate: every scored validation row lies within its noise floor of the point estimate "
            f"({', '.join(f'{k} {v:g}' for k, v in floors.items() if k in scored)}), so the calibrated box has "
            "zero width: the model reproduces these groups; if that is not expected, raise `tolerance` to the "
            "references' noise or choose validation groups unlike the training set",
            RuntimeWarning, stacklevel=3,
        )
    report = CalibrationReport(float(target), tuple(scored), {k: floors.get(k, 0.0) for k in scored},
                               bool(reaching), best, table, {k: int(m.sum()) for k, m in masks.items()})
    return pops.clone(**best["settings"], box_scale=scale), report
