"""The ensemble along a trajectory: per-frame energy bounds and the largest force std.

``uqcalc predict model.npz md.traj --out pred.xyz --plot md.png`` (any trajectory ASE reads,
LAMMPS dumps included) stores the uncertainties per frame and draws them with
:func:`plot_trajectory`: where along an MD run or a relaxation the model leaves the region its
training data pin down.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .errors import InputError
from .io import read_uncertainties

__all__ = ["plot_trajectory", "trajectory_uncertainty"]


def trajectory_uncertainty(frames: Sequence[Atoms]) -> dict[str, np.ndarray]:
    """Per frame (eV/atom and eV/Å): ``energy``, ``energy_lower``, ``energy_upper``, ``energy_std``,
    ``max_force_std`` (largest per-atom norm of the force std), and ``reference`` (REF_energy,
    NaN where absent), from stored uncertainty keys.

    Raises
    ------
    InputError
        If a frame has no stored prediction (``uq_energy``), naming it.
    """
    rows = {k: [] for k in ("energy", "energy_lower", "energy_upper", "energy_std", "max_force_std", "reference")}
    for index, atoms in enumerate(frames):
        stored = read_uncertainties(atoms)
        if "energy" not in stored:
            raise InputError(f"frame {index}: no stored prediction (uq_energy); write it with `uqcalc predict`")
        n = len(atoms)
        for key in ("energy", "energy_lower", "energy_upper", "energy_std"):
            rows[key].append(float(stored.get(key, np.nan)) / n)
        fstd = stored.get("forces_std")
        rows["max_force_std"].append(float(np.linalg.norm(fstd, axis=1).max()) if fstd is not None else np.nan)
        rows["reference"].append(float(atoms.info.get("REF_energy", np.nan)) / n)
    return {k: np.asarray(v) for k, v in rows.items()}


def plot_trajectory(frames: Sequence[Atoms], path: str | Path) -> Path:
    """Two panels against frame index: E/atom with its bounds (and the reference where known),
    and the largest per-atom force std. Written as PNG (and SVG next to it)."""
    from .coverage.figures import _pyplot

    data = trajectory_uncertainty(frames)
    plt = _pyplot()
    x = np.arange(len(frames))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 5), sharex=True)
    top.fill_between(x, data["energy_lower"], data["energy_upper"], alpha=0.3, label="bounds")
    top.plot(x, data["energy"], lw=1.2, label="point estimate")
    if np.isfinite(data["reference"]).any():
        top.plot(x, data["reference"], "k.", ms=3, label="reference")
    top.set_ylabel("energy (eV/atom)")
    top.legend(fontsize=7)
    bottom.plot(x, data["max_force_std"], lw=1.2, color="C3")
    bottom.set_ylabel("max |force std| (eV/Å)")
    bottom.set_xlabel("frame")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path.with_suffix(".png"), dpi=150)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path.with_suffix(".png")
