"""Coverage metrics (``METHODS.md`` §6; the tables of Perez et al., npj Comput. Mater. 11, 263 (2025)).

For one quantity with reference r and a prediction (point p, std σ, lower L, upper U):
error = p − r, low error = L − r, high error = U − r, bracketed ⇔ L ≤ r ≤ U. Over a set of
quantities: coverage (fraction bracketed), envelope-violation rate (1 − coverage), mean |err|/σ,
mean |err|/(U − L) (the paper's tables sit at 0.045–0.19: coverage alone is cheap, a wide enough
interval covers anything, so width is always reported next to it) and median half-width/|err|.
For Gaussian backends also the coverage of p ± zσ at nominal levels (calibration curve) and the
miscalibration area (mean |empirical − nominal| over the levels).

Noise floor. A reference that is itself noisy (DFT: k-points, smearing, SCF tolerance) can
never sit inside an interval of zero width, and force components fixed at zero by symmetry get
zero-width POPS bounds; ``tolerance`` τ ≥ 0 (absolute, in the quantity's unit) counts r as
bracketed when L − τ ≤ r ≤ U + τ, and every width ratio uses the widened U − L + 2τ, so a
zero-width row no longer divides by zero. Held-out row summaries use :data:`NOISE_FLOOR` per
row kind (and an error below τ counts as τ in half-width/|err|); property summaries use τ = 0. Next to the mean of |err|/(U − L) (dominated by its
largest terms) the summaries give the ratio of means mean|err|/mean(U − L) and the median.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.stats import norm

from ..design import NOISE_FLOOR

__all__ = [
    "NOISE_FLOOR",
    "NOMINAL_LEVELS",
    "calibration_curve",
    "grouped_summary",
    "interval_errors",
    "miscalibration_area",
    "summarize",
]

# nominal central-interval probabilities of the calibration curve
NOMINAL_LEVELS = np.round(np.arange(0.05, 1.0, 0.05), 2)



def noise_floor(kind) -> np.ndarray:
    """:data:`NOISE_FLOOR` of each entry of a row-kind array (0 for unknown kinds)."""
    kind = np.asarray(kind).astype(str)
    return np.array([NOISE_FLOOR.get(k, 0.0) for k in kind.ravel()]).reshape(kind.shape)


def interval_errors(point, lower, upper, reference, std=None, tolerance=0.0) -> dict[str, np.ndarray]:
    """Per-quantity errors of a prediction against references.

    Parameters
    ----------
    point, lower, upper, reference : array_like
        Point estimate p, interval [L, U] and reference r (broadcast together).
    std : array_like, optional
        Ensemble standard deviation σ (NaN where absent).
    tolerance : float or array_like
        Absolute noise floor τ ≥ 0 (module docstring): bracketed ⇔ L − τ ≤ r ≤ U + τ, widths
        in the ratios are U − L + 2τ.

    Returns
    -------
    dict of ndarray
        ``error`` p − r, ``low_error`` L − r, ``high_error`` U − r, ``bracketed`` (bool),
        ``width`` U − L, ``abs_error_over_std`` |p − r|/σ, ``abs_error_over_width`` |p − r|/(U − L),
        ``half_width_over_abs_error`` (U − L)/(2|p − r|) (inf when the error is zero); with a
        tolerance the two ratios use U − L + 2τ (and max(|p − r|, τ) for the error in the second),
        and ``width`` stays U − L.
    """
    p, lo, hi, r = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (point, lower, upper, reference)))
    s = np.full(p.shape, np.nan) if std is None else np.broadcast_to(np.asarray(std, dtype=float), p.shape)
    tol = np.broadcast_to(np.asarray(tolerance, dtype=float), p.shape)
    if np.any(tol < 0):
        raise ValueError("tolerance must be >= 0")
    err = p - r
    width = hi - lo
    widened = width + 2.0 * tol
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "error": err,
            "low_error": lo - r,
            "high_error": hi - r,
            # NaN anywhere (a failed propagation) is "not bracketed", never silently covered
            "bracketed": (lo - tol <= r) & (r <= hi + tol),
            "width": width,
            "abs_error_over_std": np.abs(err) / s,
            "abs_error_over_width": np.abs(err) / widened,
            # an error inside the noise floor counts as the floor: exact symmetry zeros (error 1e-15)
            # would otherwise make the ratio 1e11
            "half_width_over_abs_error": 0.5 * widened / np.maximum(np.abs(err), tol),
        }


def _finite_mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.mean(x)) if x.size else float("nan")


def _ratio_of_means(num: np.ndarray, den: np.ndarray) -> float:
    both = np.isfinite(num) & np.isfinite(den)
    d = float(np.mean(den[both])) if both.any() else float("nan")
    return float(np.mean(num[both])) / d if both.any() and d > 0 else float("nan")


def _finite_median(x: np.ndarray) -> float:
    # inf (zero error) is a legitimate, very large ratio for a median: keep it, drop only NaN
    x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else float("nan")


def summarize(point, lower, upper, reference, std=None, levels: Iterable[float] | None = None,
              tolerance=0.0) -> dict:
    """Summary of a set of predictions against their references.

    Parameters
    ----------
    point, lower, upper, reference, std, tolerance : array_like
        As in :func:`interval_errors`; every element is one quantity of the set.
    levels : iterable of float, optional
        Nominal levels of the Gaussian calibration curve (default :data:`NOMINAL_LEVELS`);
        computed only when ``std`` is given and finite somewhere.

    Returns
    -------
    dict
        ``n`` (quantities with a finite reference and point), ``coverage``, ``violation_rate``,
        ``mean_abs_error_over_std``, ``mean_abs_error_over_width``,
        ``median_abs_error_over_width``, ``mean_abs_error_over_mean_width`` (ratio of means),
        ``median_half_width_over_abs_error``, ``mean_abs_error``, ``mean_width`` and, with σ,
        ``calibration`` (``{"levels", "coverage"}``) and ``miscalibration_area``.
        Quantities without a usable interval (NaN bounds) count as not bracketed.
    """
    e = interval_errors(point, lower, upper, reference, std, tolerance)
    ok = np.isfinite(e["error"])
    n = int(ok.sum())
    out = {"n": n}
    if n == 0:
        return out | {k: float("nan") for k in ("coverage", "violation_rate", "mean_abs_error_over_std",
                                                 "mean_abs_error_over_width", "median_abs_error_over_width",
                                                 "mean_abs_error_over_mean_width",
                                                 "median_half_width_over_abs_error", "mean_abs_error", "mean_width")}
    tol = np.broadcast_to(np.asarray(tolerance, dtype=float), e["error"].shape)
    cov = float(np.mean(e["bracketed"][ok]))
    out |= {
        "coverage": cov,
        "violation_rate": 1.0 - cov,
        "mean_abs_error_over_std": _finite_mean(e["abs_error_over_std"][ok]),
        "mean_abs_error_over_width": _finite_mean(e["abs_error_over_width"][ok]),
        "median_abs_error_over_width": _finite_median(e["abs_error_over_width"][ok]),
        "mean_abs_error_over_mean_width": _ratio_of_means(np.abs(e["error"][ok]), (e["width"] + 2 * tol)[ok]),
        "median_half_width_over_abs_error": _finite_median(e["half_width_over_abs_error"][ok]),
        "mean_abs_error": float(np.mean(np.abs(e["error"][ok]))),
        "mean_width": _finite_mean(e["width"][ok]),
    }
    if std is not None:
        z_err = e["abs_error_over_std"][ok]
        if np.any(np.isfinite(z_err)):
            lv, cv = calibration_curve(z_err, levels)
            out["calibration"] = {"levels": lv.tolist(), "coverage": cv.tolist()}
            out["miscalibration_area"] = miscalibration_area(lv, cv)
    return out


def calibration_curve(abs_error_over_std, levels: Iterable[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Empirical coverage of p ± z_q σ at nominal central probabilities q.

    Parameters
    ----------
    abs_error_over_std : array_like
        |p − r|/σ per quantity; NaN entries (no σ) are dropped.
    levels : iterable of float, optional
        Nominal q in (0, 1); z_q = Φ⁻¹((1 + q)/2). Default :data:`NOMINAL_LEVELS`.

    Returns
    -------
    levels, coverage : ndarray
        Nominal and empirical fraction with |p − r| ≤ z_q σ.
    """
    levels = NOMINAL_LEVELS if levels is None else np.asarray(list(levels), dtype=float)
    t = np.asarray(abs_error_over_std, dtype=float)
    t = t[~np.isnan(t)]
    z = norm.ppf(0.5 * (1.0 + levels))
    if t.size == 0:
        return levels, np.full(levels.shape, np.nan)
    return levels, np.mean(t[None, :] <= z[:, None], axis=1)


def miscalibration_area(levels, coverage) -> float:
    """Mean |empirical − nominal| coverage over the levels (0: calibrated; 0.5 at most)."""
    levels, coverage = np.asarray(levels, dtype=float), np.asarray(coverage, dtype=float)
    ok = np.isfinite(coverage)
    return float(np.mean(np.abs(coverage[ok] - levels[ok]))) if ok.any() else float("nan")


def grouped_summary(point, lower, upper, reference, std=None, tolerance=0.0, **labels) -> dict:
    """:func:`summarize` over all quantities and per value of each label array.

    Parameters
    ----------
    point, lower, upper, reference, std : array_like
        One entry per quantity (e.g. one held-out design row).
    tolerance : float or array_like
        Noise floor per quantity (:func:`interval_errors`), e.g. ``noise_floor(design.kind)``.
    **labels : array_like of str
        E.g. ``group=design.group, kind=design.kind``.

    Returns
    -------
    dict
        ``{"all": summary, "<label>": {value: summary}}``, and ``"<label1>×<label2>"`` for the
        first two labels crossed (configuration-level coverage per group *and* row kind).
    """
    arrays = [np.asarray(v, dtype=float) for v in (point, lower, upper, reference)]
    s = None if std is None else np.asarray(std, dtype=float)
    tol = np.broadcast_to(np.asarray(tolerance, dtype=float), arrays[0].shape)

    def sub(mask):
        return summarize(*(a[mask] for a in arrays), None if s is None else s[mask], tolerance=tol[mask])

    out = {"all": sub(np.ones(arrays[0].shape, bool))}
    names = list(labels)
    for name in names:
        lab = np.asarray(labels[name]).astype(str)
        out[name] = {v: sub(lab == v) for v in np.unique(lab)}
    if len(names) >= 2:
        a, b = (np.asarray(labels[k]).astype(str) for k in names[:2])
        out[f"{names[0]}×{names[1]}"] = {
            f"{u}|{v}": sub((a == u) & (b == v)) for u in np.unique(a) for v in np.unique(b) if np.any((a == u) & (b == v))
        }
    return out
