"""Chains of the MCMC backend: files (emcee HDF5 or arviz netCDF) and convergence diagnostics.

``MCMC(store=path)`` writes the chain while sampling (``.h5``/``.hdf5``/``.hdf``: emcee's
``HDFBackend``) or after it (``.nc``: arviz); :func:`read_chain` reads either back in the sampler's
coordinates, with the attributes that map them to θ. :func:`chain_diagnostics` computes emcee's
autocorrelation times and arviz's rank-normalised ESS/R-hat of a run. Kept apart from
:mod:`.mcmc` (the sampler and the posterior it samples) because what is done with a finished chain
is a concept of its own; ``emcee``/``arviz``/``h5py`` stay inside the backends package.
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import emcee
import numpy as np

__all__ = ["CHAIN_SUFFIXES", "chain_diagnostics", "read_chain"]

HDF_SUFFIXES = (".h5", ".hdf5", ".hdf")
#: Every suffix ``MCMC(store=...)`` accepts.
CHAIN_SUFFIXES = (*HDF_SUFFIXES, ".nc")
_HDF_GROUP = "mcmc"
_ARVIZ_DRAWS = 500


def arviz():
    """``import arviz``, without the FutureWarning it announces its refactor with (unrelated to us)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def read_chain(path) -> dict:
    """Read a chain written by ``MCMC(store=path)``.

    Returns
    -------
    dict
        ``chain`` (n_steps, n_walkers, ndim) and ``log_prob`` (n_steps, n_walkers) in the
        sampler's coordinates, ``names`` (one per column), and ``attrs`` (mode, temperature,
        whitening for mode ``"full"``: θ = V (t_center + u / scale)).
    """
    path = Path(path)
    if path.suffix in HDF_SUFFIXES:
        import h5py

        backend = emcee.backends.HDFBackend(str(path), name=_HDF_GROUP, read_only=True)
        with h5py.File(path, "r") as f:
            group = f[_HDF_GROUP]
            attrs = json.loads(group.attrs["uqcalc"])
            for key in ("V", "t_center", "scale"):
                if key in group:
                    attrs[key] = group[key][()]
        return {"chain": backend.get_chain(), "log_prob": backend.get_log_prob(),
                "names": attrs.pop("names"), "attrs": attrs}
    if path.suffix == ".nc":
        idata = arviz().from_netcdf(str(path))
        post = idata.posterior
        attrs = json.loads(post.attrs["uqcalc"])
        names = attrs.pop("names")
        columns = []
        for var in attrs["var_names"]:
            block = post[var].transpose("draw", "chain", ...).values
            columns.append(block.reshape(block.shape[0], block.shape[1], -1))
        lp = idata.sample_stats["lp"].transpose("draw", "chain").values
        return {"chain": np.concatenate(columns, axis=-1), "log_prob": lp, "names": names, "attrs": attrs}
    raise ValueError(f"unknown chain file type {path.suffix!r}; use one of {CHAIN_SUFFIXES}")


def hdf_backend(store, n_walkers: int, ndim: int) -> emcee.backends.HDFBackend | None:
    """emcee's HDF backend for ``store`` (None for no store or a netCDF one, written afterwards)."""
    if store is None or Path(store).suffix not in HDF_SUFFIXES:
        return None
    path = Path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = emcee.backends.HDFBackend(str(path), name=_HDF_GROUP)
    backend.reset(n_walkers, ndim)  # overwrite a previous chain of the same name
    return backend


def write_chain(store, idata, attrs: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
    """Finish the chain file: the attributes (JSON) and, for HDF, extra arrays (the whitening).

    The HDF file already holds the chain (written while sampling); a netCDF file is written here
    from ``idata`` and replaces any previous one.
    """
    path = Path(store)
    if path.suffix == ".nc":
        idata.posterior.attrs["uqcalc"] = json.dumps(attrs)
        if path.exists():
            path.unlink()
        idata.to_netcdf(str(path))
        return
    import h5py

    with h5py.File(path, "a") as f:
        group = f[_HDF_GROUP]
        group.attrs["uqcalc"] = json.dumps(attrs)
        for key, value in (arrays or {}).items():
            if key in group:
                del group[key]
            group[key] = value


@contextmanager
def _quiet_emcee():
    # emcee's autocorr logs a warning for short chains; we raise our own UserWarning instead
    logger = logging.getLogger("emcee.autocorr")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def chain_diagnostics(sampler, names: dict, slices, dims, wall: float, *, burn_in: int, thin: int,
                      n_steps: int) -> tuple:
    """Convergence diagnostics of an emcee run, per column of the sampler's coordinates.

    Returns ``(idata, diagnostics)``: the arviz InferenceData of the chain (written by a ``.nc``
    store) and the dict that goes to ``metadata["diagnostics"]`` (see :class:`~uqcalc.backends.MCMC`).
    Warns (``UserWarning``) when ``n_steps`` < 50 × the largest integrated autocorrelation time.
    """
    az = arviz()
    with _quiet_emcee():
        tau = np.atleast_1d(sampler.get_autocorr_time(discard=burn_in, quiet=True))
    retained = sampler.iteration - burn_in
    ess_emcee = sampler.nwalkers * retained / tau
    idata = az.from_emcee(sampler, var_names=names["var_names"], slices=slices, dims=dims)
    # arviz's rank-normalised ESS/R-hat cost ~30 s on 118 walkers × 7000 steps × 58 columns;
    # at most _ARVIZ_DRAWS draws per walker keep them cheap and only lower (never inflate) ESS
    step = max(int(thin), int(np.ceil(retained / _ARVIZ_DRAWS)))
    post = idata.posterior.sel(draw=slice(burn_in, None, step))
    ess_bulk = az.ess(post, method="bulk")
    ess_tail = az.ess(post, method="tail")
    rhat = az.rhat(post)

    def per_column(ds):
        return np.concatenate([np.atleast_1d(ds[v].values).ravel() for v in names["var_names"]])

    bulk, tail, rh = per_column(ess_bulk), per_column(ess_tail), per_column(rhat)
    tau_max = float(np.nanmax(tau))
    if not n_steps >= 50 * tau_max:
        warnings.warn(
            f"MCMC chains are short: n_steps={n_steps} < 50·τ = {50 * tau_max:.0f} "
            f"(max integrated autocorrelation time τ = {tau_max:.1f} steps); "
            "increase n_steps or treat the ensemble as unconverged",
            UserWarning, stacklevel=3,
        )
    ess_min = float(np.min(ess_emcee))
    return idata, {
        "names": names["columns"],
        "tau": tau.tolist(),
        "tau_max": tau_max,
        "ess": ess_emcee.tolist(),
        "ess_min": ess_min,
        "ess_bulk": bulk.tolist(),
        "ess_tail": tail.tolist(),
        "rhat": rh.tolist(),
        "ess_bulk_min": float(np.min(bulk)),
        "rhat_max": float(np.max(rh)),
        "arviz_thin": step,
        "acceptance_fraction": float(np.mean(sampler.acceptance_fraction)),
        "n_walkers": int(sampler.nwalkers),
        "n_steps": int(n_steps),
        "wall_time_s": wall,
        "ess_per_second": ess_min / wall if wall > 0 else None,
    }
