"""What makes a POPS box wide: the rows that set each axis, and their share of a prediction's width.

``POPS(...).diagnose(design)`` refits the box (``METHODS.md`` §3) and, for each axis r of the box
(column u_r of U, limits [l_r, u_r]), finds the kept training row whose projected correction
z_nr = (e_n/h_n) x_n·C⁻¹u_r sets the lower and the upper limit (the extreme row, or the row at
the clipping percentile), with its kind, group, configuration, leverage h_n and residual e_n.

The exact interval of a prediction x has width W = Σ_r |c_r| (u_r − l_r), c = Uᵀx. Axis r's
term is split between the row setting its upper limit (fraction |u_r|/(|u_r| + |l_r|)) and the
row setting its lower limit (the rest), so W is a sum of contributions of training rows; summed
by (kind, group) they say which data make the width, e.g. "the liquid frames' force rows
(leverage ≤ 1e-6) set 90 % of this width". :meth:`BoxDiagnostics.width_contributions` gives
the table, :meth:`BoxDiagnostics.plot` the bar chart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import check_theta

__all__ = ["BoxDiagnostics", "diagnose"]

_ROW_FIELDS = ("index", "kind", "group", "config", "leverage", "residual", "z")


@dataclasses.dataclass
class BoxDiagnostics:
    """Per-axis extent rows of a POPS box (module docstring).

    Attributes
    ----------
    axes : (P, R) ndarray
        Box axes U.
    lower, upper : (R,) ndarray
        Box limits (including ``box_scale``).
    lower_rows, upper_rows : list of dict
        Per axis, the training row that sets the limit: ``index`` (design row), ``kind``,
        ``group``, ``config``, ``leverage`` h, ``residual`` e (weighted), ``z`` (its projected
        correction, unscaled).
    eigenvalues : (R,) ndarray
        TᵀT eigenvalues of the kept axes.
    """

    axes: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    lower_rows: list[dict]
    upper_rows: list[dict]
    eigenvalues: np.ndarray

    def axis_table(self) -> list[dict]:
        """One dict per axis: limits, eigenvalue, and the two extent rows (flattened)."""
        out = []
        for r in range(self.axes.shape[1]):
            row = {"axis": r, "lower": float(self.lower[r]), "upper": float(self.upper[r]),
                   "eigenvalue": float(self.eigenvalues[r])}
            for side, rows in (("lower", self.lower_rows), ("upper", self.upper_rows)):
                row |= {f"{side}_{k}": v for k, v in rows[r].items()}
            out.append(row)
        return out

    def width_contributions(self, x, by: Sequence[str] = ("kind", "group")) -> list[dict]:
        """Share of the exact interval width of prediction(s) ``x`` per label of the extent rows.

        Parameters
        ----------
        x : (P,) or (n, P) array
            Design row(s) of the prediction (widths of several rows are summed).
        by : sequence of {"kind", "group", "config"}
            Labels of the extent rows to aggregate by.

        Returns
        -------
        list of dict
            Sorted by share, largest first: the labels, ``width`` (its part of W), ``share``
            (of W), ``n_axes`` (axes whose limit it sets), ``leverage_min``/``leverage_max`` of
            those rows.
        """
        x = np.atleast_2d(np.asarray(x, dtype=float))
        if x.shape[1] != self.axes.shape[0]:
            raise ValueError(f"x has {x.shape[1]} columns, the box has {self.axes.shape[0]} parameters")
        c = np.abs(x @ self.axes).sum(axis=0)  # Σ over predictions of |c_r|
        span = np.abs(self.upper) + np.abs(self.lower)
        with np.errstate(divide="ignore", invalid="ignore"):
            up_share = np.where(span > 0, np.abs(self.upper) / span, 0.5)
        term = c * (self.upper - self.lower)
        total = float(term.sum())
        groups: dict[tuple, dict] = {}
        for r in range(term.size):
            for rows, share in ((self.upper_rows, up_share[r]), (self.lower_rows, 1.0 - up_share[r])):
                info = rows[r]
                key = tuple(info[k] for k in by)
                g = groups.setdefault(key, {"width": 0.0, "axes": set(), "h": []})
                g["width"] += float(term[r] * share)
                g["axes"].add(r)
                g["h"].append(info["leverage"])
        out = [dict(zip(by, key)) | {"width": g["width"], "share": g["width"] / total if total > 0 else float("nan"),
                                     "n_axes": len(g["axes"]), "leverage_min": float(min(g["h"])),
                                     "leverage_max": float(max(g["h"]))}
               for key, g in groups.items()]
        return sorted(out, key=lambda d: -d["width"])

    def summary(self, x, by: Sequence[str] = ("kind", "group"), top: int = 3) -> str:
        """One sentence per leading contributor, e.g. "force rows of group 'liquid' ... set 62 %"."""
        parts = []
        for d in self.width_contributions(x, by)[:top]:
            labels = ", ".join(f"{k} {d[k]!r}" for k in by)
            parts.append(f"{labels} (leverage {d['leverage_min']:.2g}–{d['leverage_max']:.2g}, "
                         f"{d['n_axes']} axes) set {100 * d['share']:.0f} % of the width")
        return "; ".join(parts)

    def to_markdown(self, x=None, by: Sequence[str] = ("kind", "group")) -> str:
        """The axis table, and with ``x`` the width contributions."""
        lines = ["| axis | lower | upper | lower set by (kind, group, config, h, e) | upper set by |", "|---|---|---|---|---|"]
        for row in self.axis_table():
            cells = [f"{row[f'{s}_kind']}, {row[f'{s}_group']}, {row[f'{s}_config']}, "
                     f"{row[f'{s}_leverage']:.2g}, {row[f'{s}_residual']:.3g}" for s in ("lower", "upper")]
            lines.append(f"| {row['axis']} | {row['lower']:.3g} | {row['upper']:.3g} | {cells[0]} | {cells[1]} |")
        if x is not None:
            lines += ["", "| " + " | ".join(by) + " | share of width | axes | leverage range |",
                      "|" + "---|" * (len(by) + 3)]
            for d in self.width_contributions(x, by):
                lines.append("| " + " | ".join(str(d[k]) for k in by)
                             + f" | {100 * d['share']:.1f} % | {d['n_axes']} | {d['leverage_min']:.2g}–{d['leverage_max']:.2g} |")
        return "\n".join(lines)

    def plot(self, x, by: Sequence[str] = ("kind", "group"), path: str | Path | None = None, ax=None, top: int = 12):
        """Horizontal bars: share of the width of ``x`` per label, annotated with the leverage range."""
        import matplotlib

        if ax is None and path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        rows = self.width_contributions(x, by)[:top][::-1]
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(rows) + 1.2))
        else:
            fig = ax.figure
        labels = [" / ".join(str(d[k]) for k in by) for d in rows]
        shares = [100 * d["share"] for d in rows]
        ax.barh(labels, shares, color="tab:blue")
        for i, d in enumerate(rows):
            ax.text(shares[i], i, f"  h {d['leverage_min']:.1g}–{d['leverage_max']:.1g}", va="center", fontsize=8)
        ax.set_xlabel("share of the interval width (%)")
        ax.set_xlim(0, 115)
        ax.set_title("training rows that set the POPS box", fontsize=10)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def diagnose(pops, design, *, theta=None) -> BoxDiagnostics:
    """Refit ``pops``'s hypercube on ``design`` and find each axis's extent rows; see :meth:`POPS.diagnose`."""
    pops._validate_params()
    if pops.posterior != "hypercube":
        raise ValueError("diagnose explains a box: use posterior='hypercube'")
    theta0 = check_theta(theta, design.n_params)
    state = pops._ridge_state(design, fuse=True, theta0=theta0)
    kept, _ = pops._kept_rows(design, state)
    U, lower, upper, _, evals = pops._box(design, kept, state)
    R = U.shape[1]
    if R == 0:
        raise ValueError("the box has no axes (every kept correction is zero)")
    B = state.Cinv @ U
    best_lo = np.full(R, np.inf)
    best_hi = np.full(R, np.inf)
    idx_lo = np.zeros(R, int)
    idx_hi = np.zeros(R, int)
    z_lo = np.zeros(R)
    z_hi = np.zeros(R)
    for rows, Xk, scale in pops._kept_chunks(design, kept, state, int(pops.chunk_rows)):
        index = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else np.asarray(rows)
        z = (Xk @ B) * scale[:, None]
        for lim, best, idx, zs in ((lower, best_lo, idx_lo, z_lo), (upper, best_hi, idx_hi, z_hi)):
            d = np.abs(z - lim)
            i = np.argmin(d, axis=0)
            di = d[i, np.arange(R)]
            better = di < best
            best[better] = di[better]
            idx[better] = index[i[better]]
            zs[better] = z[i[better], np.arange(R)[better]]

    def describe(i, z):
        return {"index": int(i), "kind": str(design.kind[i]), "group": str(design.group[i]),
                "config": int(design.config[i]), "leverage": float(state.h[i]), "residual": float(state.e[i]),
                "z": float(z)}

    s = float(pops.box_scale)
    return BoxDiagnostics(U, s * lower, s * upper, [describe(i, z) for i, z in zip(idx_lo, z_lo)],
                          [describe(i, z) for i, z in zip(idx_hi, z_hi)], np.asarray(evals[:R]))
