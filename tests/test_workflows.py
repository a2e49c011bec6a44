"""ASE and matscipy workflows run unchanged with a UQCalculator attached.

Each workflow is run with the UQCalculator and with a plain LinearPotential of the
point estimate: the results must agree (the uncertainty keys ride along, they do
not change the point estimate). Model: PairBasis fitted by BayesianRidge to
teacher-labelled tungsten frames (see ``test_calculator.fitted_model``).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.db import connect
from ase.eos import EquationOfState
from ase.filters import FrechetCellFilter
from ase.io import read, write
from ase.optimize import BFGS, FIRE
from ase.units import GPa

from uqcalc import LinearPotential, UQCalculator
from uqcalc.io import db_kwargs, read_uncertainties, store_uncertainties

from .models import A0, fitted_model
from .test_calculator import box_ensemble

pytestmark = [
    # FrechetCellFilter's and matscipy's strain logarithms near the identity (harmless)
    pytest.mark.filterwarnings("ignore:logm result may be inaccurate:RuntimeWarning"),
    # set_regions sorts by binned radius; SinclairCrack checks the unbinned one
    pytest.mark.filterwarnings("ignore:Radial distances do not increase monotonically:UserWarning"),
]


@pytest.fixture(scope="module")
def model():
    descriptor, ens = fitted_model()
    return descriptor, box_ensemble(ens, n_members=16)


def vacancy_cell(seed=0):
    atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(2)
    del atoms[5]
    atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)
    atoms.rattle(0.03, seed=seed)
    return atoms


try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - comes with scikit-learn (test extra)
    from contextlib import nullcontext as threadpool_limits


def relax(atoms, calc, optimizer, fmax=1e-3, steps=500):
    atoms = atoms.copy()
    atoms.calc = calc
    opt = optimizer(FrechetCellFilter(atoms), logfile=None)
    # FrechetCellFilter does thousands of 3x3 LAPACK calls (expm/logm); threaded BLAS
    # on a loaded machine makes each one milliseconds long
    with threadpool_limits(1):
        converged = opt.run(fmax=fmax, steps=steps)
    assert converged, f"{optimizer.__name__} did not converge"
    return atoms


@pytest.fixture(scope="module")
def relaxed(model):
    """A vacancy cell relaxed (positions and cell) with BFGS under a UQCalculator."""
    return relax(vacancy_cell(), UQCalculator(*model, per_atom=True), BFGS)


@pytest.mark.parametrize("optimizer", [BFGS, FIRE])
def test_relaxation_with_frechet_cell_filter(model, optimizer):
    descriptor, ens = model
    uq = relax(vacancy_cell(), UQCalculator(descriptor, ens), optimizer)
    plain = relax(vacancy_cell(), LinearPotential(descriptor, ens.theta), optimizer)
    assert np.abs(uq.get_forces()).max() < 1e-3
    assert np.abs(uq.get_stress()).max() * uq.get_volume() < 1e-3 * len(uq)  # FrechetCellFilter's criterion
    assert uq.get_potential_energy() == pytest.approx(plain.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(uq.cell.array, plain.cell.array, atol=1e-4)
    res = uq.calc.results
    assert res["energy_lower"] <= res["energy"] <= res["energy_upper"]
    assert res["forces_ensemble"].shape == (ens.n_members, len(uq), 3)


def test_equation_of_state_over_scaled_cells(model):
    descriptor, ens = model
    calc = UQCalculator(descriptor, ens)
    scales = np.linspace(0.97, 1.03, 9)
    volumes, energies, members = [], [], []
    for s in scales:
        atoms = bulk("W", "bcc", a=A0 * s, cubic=True)
        atoms.calc = calc
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
        members.append(calc.results["energy_ensemble"])
    v0, e0, B = EquationOfState(volumes, energies).fit()
    plain = []
    for s in scales:
        atoms = bulk("W", "bcc", a=A0 * s, cubic=True)
        atoms.calc = LinearPotential(descriptor, ens.theta)
        plain.append(atoms.get_potential_energy())
    v0p, e0p, Bp = EquationOfState(volumes, plain).fit()
    assert (v0, e0, B) == pytest.approx((v0p, e0p, Bp), rel=1e-9)
    assert 200 * GPa < B < 450 * GPa and v0 == pytest.approx(A0**3, rel=0.03)
    # per-member EOS straight from energy_ensemble, no re-evaluation; equals members() fits
    members = np.array(members)  # (n_volumes, M)
    B_members = np.array([EquationOfState(volumes, members[:, m]).fit()[2] for m in range(ens.n_members)])
    for m, pot in zip(range(3), UQCalculator(descriptor, ens).members()):
        e_m = []
        for s in scales:
            atoms = bulk("W", "bcc", a=A0 * s, cubic=True)
            atoms.calc = pot
            e_m.append(atoms.get_potential_energy())
        assert EquationOfState(volumes, e_m).fit()[2] == pytest.approx(B_members[m], rel=1e-8)
    assert B_members.std() > 0


def test_fit_elastic_constants_with_internal_relaxation(model, relaxed):
    from matscipy.elasticity import fit_elastic_constants

    descriptor, ens = model
    cs = []
    for calc in (UQCalculator(descriptor, ens), LinearPotential(descriptor, ens.theta)):
        atoms = bulk("W", "bcc", a=A0, cubic=True)
        atoms.calc = calc
        atoms = relax(atoms, calc, BFGS, fmax=1e-5)
        with threadpool_limits(1):
            C, _ = fit_elastic_constants(
                atoms, symmetry="cubic", N_steps=5, delta=5e-3, optimizer=BFGS, fmax=1e-4, verbose=False
            )
        cs.append(C)
    np.testing.assert_allclose(cs[0], cs[1], atol=1e-3 * GPa)
    assert 300 * GPa < cs[0][0, 0] < 700 * GPa


def test_sinclair_crack_energy_and_residual(model):
    """SinclairCrack calls the calculator on clusters and sub-clusters of varying size,
    and needs per-atom energies; one energy and one residual evaluation must work."""
    from matscipy.elasticity import fit_elastic_constants
    from matscipy.fracture_mechanics.clusters import bcc, set_regions
    from matscipy.fracture_mechanics.crack import CubicCrystalCrack, SinclairCrack

    descriptor, ens = model
    cryst = bulk("W", "bcc", a=A0, cubic=True)
    cryst.calc = LinearPotential(descriptor, ens.theta)
    C, _ = fit_elastic_constants(cryst, symmetry="cubic", verbose=False)
    crk = CubicCrystalCrack([1, 1, 0], [0, 0, 1], C11=C[0, 0] / GPa, C12=C[0, 1] / GPa, C44=C[3, 3] / GPa)
    k1g = crk.k1g(0.2)  # ~3.2 J/m^2, a rough W(110) surface energy: a smoke test needs no exact value
    cutoff = descriptor.r_cut
    cluster = set_regions(
        bcc("W", A0, [8, 8, 1], crack_surface=[1, 1, 0], crack_front=[0, 0, 1]), 4.0, cutoff, 12.0
    )
    out = {}
    for name, calc in [("uq", UQCalculator(descriptor, ens)), ("plain", LinearPotential(descriptor, ens.theta))]:
        sc = SinclairCrack(crk, cluster, calc, k1g, alpha=0.0, variable_alpha=True, vacuum=6.0)
        out[name] = (sc.get_potential_energy(), sc.get_forces())
        if name == "uq":
            N = len(sc.atoms)
            energies_std = calc.get_property("energies_std", sc.atoms)
            assert energies_std.shape == (N,) and np.all(energies_std > 0)
            assert calc.get_property("forces_upper", sc.atoms).shape == (N, 3)
            assert len(sc.get_dofs()) == 3 * sc.N1 + 1
    (e_uq, f_uq), (e_plain, f_plain) = out["uq"], out["plain"]
    assert np.isfinite(e_uq) and np.all(np.isfinite(f_uq))
    assert e_uq == pytest.approx(e_plain, abs=1e-8)
    np.testing.assert_allclose(f_uq, f_plain, atol=1e-9)


def test_extxyz_round_trip_of_relaxed_uncertainties(relaxed, tmp_path):
    atoms = relaxed.copy()
    atoms.calc = relaxed.calc
    stored = store_uncertainties(atoms, properties=("energy", "energies"))
    assert {"forces_std", "energies_std", "forces_ensemble", "uq_forces"} <= set(atoms.arrays)
    assert {"energy_std", "stress_upper", "energy_ensemble", "uq_energy"} <= set(atoms.info)
    results = dict(atoms.calc.results)
    path = tmp_path / "relaxed.xyz"
    write(path, atoms)  # the UQCalculator stays attached: ASE also writes its standard keys
    back = read(path)
    got = read_uncertainties(back)
    assert len(got) == len(stored)
    for key, value in got.items():
        # extxyz writes per-atom columns with 8 decimals, info values at full precision
        np.testing.assert_allclose(value, results[key], rtol=1e-7, atol=1e-8, err_msg=key)
    assert got["forces_ensemble"].shape == results["forces_ensemble"].shape
    assert back.get_potential_energy() == pytest.approx(results["energy"], rel=1e-12)
    # without the ensembles
    slim = relaxed.copy()
    store_uncertainties(slim, relaxed.calc, ensemble=False, point_prefix=None)
    assert "forces_ensemble" not in slim.arrays and "uq_energy" not in slim.info
    assert "forces_std" in slim.arrays


def test_ase_db_round_trip_of_relaxed_uncertainties(relaxed, tmp_path):
    atoms = relaxed.copy()
    atoms.calc = relaxed.calc
    store_uncertainties(atoms, properties=("energy", "energies"))
    results = dict(atoms.calc.results)
    with connect(tmp_path / "relaxed.db") as db:
        uid = db.write(atoms, relaxed=True, **db_kwargs(atoms))
    db = connect(tmp_path / "relaxed.db")
    row = db.get(id=uid)
    assert row.energy == pytest.approx(results["energy"], rel=1e-12)
    assert [r.id for r in db.select("energy_std>0")] == [uid]  # scalars are searchable
    for source in (row, row.toatoms(add_additional_information=True)):
        got = read_uncertainties(source)
        assert {"energy_std", "forces_std", "stress_ensemble", "energies_ensemble", "energy"} <= set(got)
        for key, value in got.items():
            np.testing.assert_array_equal(value, results[key], err_msg=key)


def test_store_uncertainties_refreshes_stale_results(model):
    atoms = vacancy_cell(seed=2)
    atoms.calc = UQCalculator(*model)
    atoms.get_potential_energy()
    atoms.positions[0] += 0.05
    store_uncertainties(atoms)
    fresh = atoms.copy()
    fresh.calc = UQCalculator(*model)
    assert atoms.info["uq_energy"] == pytest.approx(fresh.get_potential_energy(), rel=1e-12)
    with pytest.raises(ValueError, match="calculator"):
        store_uncertainties(fresh.copy())
