"""GPAW as a reference calculator: a smoke test at low settings (skips without the 'dft' extra).

Oracles: central finite differences of GPAW's own energy for a force component, and a fresh
calculator for a reused one. At the smoke test's 250 eV cutoff the real-space grid GPAW uses for
the XC potential is coarse, which breaks translational invariance (the egg-box effect) and puts
forces ~1.5 % off the energy derivative; 5 % still catches a sign, unit or atom-order error.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

pytest.importorskip("gpaw", reason="the 'dft' extra (GPAW) is not installed: `make dft`")

from uqcalc.datasets.gpaw_reference import GPAW_SETTINGS, gpaw_calculator, gpaw_version  # noqa: E402

LOW = {"ecut": 250.0, "kpt_density": 2.0, "convergence": {"energy": 1e-7, "density": 1e-6}}


def test_forces_are_the_energy_derivative_and_a_reused_calculator_is_a_fresh_one():
    atoms = bulk("W", "bcc", a=3.17, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = gpaw_calculator(**LOW)
    force = atoms.get_forces()[0, 0]
    assert np.isfinite(atoms.get_stress()).all()
    h = 1e-3
    energies = []
    for step in (h, -h):
        moved = atoms.copy()
        moved.positions[0, 0] += step
        moved.calc = gpaw_calculator(**LOW)
        energies.append(moved.get_potential_energy())
    assert force == pytest.approx(-(energies[0] - energies[1]) / (2 * h), rel=0.05)

    # a property builds several cells with one calculator: each must be a calculation of its own
    calc = gpaw_calculator(**LOW)
    for structure, a in (("bcc", 3.17), ("fcc", 4.03)):
        cell = bulk("W", structure, a=a)
        cell.calc = calc
        reused = cell.get_potential_energy()
        fresh = bulk("W", structure, a=a)
        fresh.calc = gpaw_calculator(**LOW)
        assert reused == pytest.approx(fresh.get_potential_energy(), abs=1e-6)


def test_settings_are_stated():
    assert set(GPAW_SETTINGS) == {"ecut", "kpt_density", "width", "xc"} and GPAW_SETTINGS["xc"] == "PBE"
    assert gpaw_version()[0].isdigit()
