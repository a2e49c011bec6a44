"""POPS row-selection study: choose row kinds, leverage filter and clipping on held-out rows.

``METHODS.md`` §3: which rows build the box matters as much as the formula, and the choice is an
empirical one. :func:`select` fits each candidate setting on the training design and scores its
bounds on validation rows; :meth:`POPS.select <uqcalc.backends.POPS.select>` is the public entry.
Kept apart from :mod:`.pops` (the method) because it is a study over fits, not a fit; it receives
the POPS instance and so does not import it.
"""

from __future__ import annotations

import warnings

import numpy as np

from .base import check_theta

__all__ = ["default_candidates", "fit_candidates", "select"]


def default_candidates(design) -> list[dict]:
    """A small grid over row kinds × leverage percentile × percentile clipping."""
    present = set(np.unique(design.kind).tolist())
    kinds_options = [None]
    if "energy" in present and len(present) > 1:
        kinds_options.append(("energy",))
        if "stress" in present:
            kinds_options.append(("energy", "stress"))
    return [
        {"row_kinds": kinds, "leverage_percentile": lev, "percentile_clipping": clip}
        for kinds in kinds_options
        for lev in (0.0, 50.0, 90.0)
        for clip in (0.0, 1.0, 5.0)
    ]


def fit_candidates(pops, design, candidates, theta0=None, **fixed):
    """Fit ``pops.clone(**candidate, **fixed)`` for each candidate on ``design``.

    Every candidate is validated before any fit (a typo raises instead of becoming an error row
    after minutes of fitting). The ridge fit and leverage pass are shared by candidates with the
    same ridge hyperparameters. Yields ``(settings, ensemble, None)`` or, for a candidate that is
    valid but cannot be fitted (its filters keep no rows, say), ``(settings, None, message)``.
    """
    settings_pops = [(dict(c), pops.clone(**c, **fixed)) for c in candidates]
    for _, candidate in settings_pops:
        candidate._validate_params()
    states = {}
    for settings, candidate in settings_pops:
        key = candidate._ridge_key()
        if key not in states:
            states[key] = candidate._ridge_state(design, fuse=True, theta0=theta0)
        try:
            yield settings, candidate._fit_from_state(design, states[key]), None
        except ValueError as err:
            yield settings, None, str(err)


def select(pops, design, validation_design, candidates: list[dict] | None = None,
           target_coverage: float = 0.9, validation_kinds=None, *, theta=None):
    """Choose row selection / clipping on held-out rows; see :meth:`POPS.select`.

    Parameters
    ----------
    pops : POPS
        The base settings; each candidate is ``pops.clone(**candidate)``.
    design, validation_design : DesignMatrix
        Training rows (fitted) and held-out rows (scored).
    candidates : list of dict, optional
        Hyperparameter overrides (default :func:`default_candidates`).
    target_coverage : float
        Coverage of the validation rows a candidate must reach.
    validation_kinds : str or sequence of str, optional
        Only these validation row kinds are scored.
    theta : (P,) array, optional
        A given point estimate every candidate is built around (``POPS.fit(design, theta=...)``).

    Returns
    -------
    (POPS, list of dict)
        The chosen unfitted POPS and the per-candidate table.

    Notes
    -----
    Candidates are fitted by :func:`fit_candidates` (validated first, ridge passes shared); one
    that cannot be fitted becomes a row with an ``error``.
    """
    pops._validate_params()
    theta0 = check_theta(theta, design.n_params)
    candidates = default_candidates(design) if candidates is None else list(candidates)
    if not candidates:
        raise ValueError("no candidates")
    mask = validation_design.rows_of(validation_kinds)
    Xv, yv = validation_design.X[mask], validation_design.y[mask]
    if Xv.shape[0] == 0:
        raise ValueError("no validation rows")
    table = []
    for settings, ens, error in fit_candidates(pops, design, candidates, theta0):
        row = {"settings": settings}
        if error is not None:
            row.update(coverage=np.nan, mean_width=np.nan, n_kept=0, rank=0, error=error)
            table.append(row)
            continue
        pred = ens.predict(Xv, return_members=False)
        row.update(
            coverage=float(np.mean((pred.lower <= yv) & (yv <= pred.upper))),
            mean_width=float(np.mean(pred.upper - pred.lower)),
            n_kept=ens.metadata["rows"]["n_kept"],
            rank=int(ens.axes.shape[1]) if ens.has_box else None,
        )
        table.append(row)
    ok = [r for r in table if np.isfinite(r["coverage"])]
    if not ok:
        raise ValueError("no candidate could be fitted: " + "; ".join(r.get("error", "") for r in table))
    reaching = [r for r in ok if r["coverage"] >= target_coverage]
    if reaching:
        best = min(reaching, key=lambda r: r["mean_width"])
    else:
        best = max(ok, key=lambda r: (r["coverage"], -r["mean_width"]))
        warnings.warn(
            f"no candidate reached coverage {target_coverage}; chose the highest ({best['coverage']:.3f})",
            RuntimeWarning, stacklevel=3,
        )
    return pops.clone(**best["settings"]), table
