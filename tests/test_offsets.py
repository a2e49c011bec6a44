"""Stress offsets per DFT sub-campaign, profiled out of the design (uqcalc.offsets)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units

from uqcalc.calculator import LinearPotential
from uqcalc.design import DesignMatrix
from uqcalc.offsets import offsets_in_gpa, profile_offsets, stress_components

from .models import fitted_model, labelled_frames


def _labelled_with_offsets(shift):
    """Frames labelled exactly by a PairBasis model, plus a known isotropic stress offset per campaign."""
    descriptor, ens = fitted_model()
    frames = []
    for i, atoms in enumerate(labelled_frames()):
        a = atoms.copy()
        a.calc = LinearPotential(descriptor, ens.theta)
        campaign = "A" if i % 2 else "B"
        stress = a.get_stress() + shift[campaign] * np.array([1, 1, 1, 0, 0, 0])
        a.info.update(REF_energy=a.get_potential_energy(), REF_stress=stress, campaign=campaign)
        a.arrays["REF_forces"] = a.get_forces()
        a.calc = None
        frames.append(a)
    return descriptor, ens.theta, frames


def test_offsets_are_recovered_and_removed():
    """Oracle: labels made by the descriptor itself at a known θ, shifted by known offsets."""
    shift = {"A": 0.5 * units.GPa, "B": -1.2 * units.GPa}
    descriptor, theta, frames = _labelled_with_offsets(shift)
    design = DesignMatrix.build(frames, descriptor, weights={"energy": 1.0, "force": 1.0, "stress": 1.0},
                                progress=False)
    comp = stress_components(design)
    assert np.array_equal(np.bincount(comp[comp >= 0]), np.full(6, len(frames)))
    campaign = np.array([frames[c].info["campaign"] for c in design.config])
    corrected, offsets = profile_offsets(design, campaign)
    gpa = offsets_in_gpa(offsets)
    assert gpa["A"] == pytest.approx(0.5, abs=1e-6) and gpa["B"] == pytest.approx(-1.2, abs=1e-6)
    # after profiling the stress rows are those of the unshifted model: θ fits them exactly
    s = corrected.kind == "stress"
    np.testing.assert_allclose(corrected.X[s] @ theta, corrected.y[s], atol=1e-9)
    # energies and forces are untouched
    np.testing.assert_array_equal(corrected.y[~s], design.y[~s])


def test_offsets_need_stress_rows():
    shift = {"A": 0.0, "B": 0.0}
    descriptor, _, frames = _labelled_with_offsets(shift)
    design = DesignMatrix.build(frames, descriptor, weights={"energy": 1.0, "force": 1.0, "stress": 0.0},
                                progress=False)
    campaign = np.array([frames[c].info["campaign"] for c in design.config])
    assert profile_offsets(design, campaign) == (design, {})  # no stress rows: nothing to profile
    stressed = DesignMatrix.build(frames, descriptor, progress=False)
    labels = np.where(np.array([frames[c].info["campaign"] for c in stressed.config]) == "A", "A", "C")
    stressed.w[(stressed.kind == "stress") & (labels == "C")] = 0.0
    with pytest.raises(ValueError, match=r"campaigns \['C'\] have no stress rows"):
        profile_offsets(stressed, labels)
    with pytest.raises(ValueError, match="one label per row"):
        profile_offsets(stressed, labels[:-1])
