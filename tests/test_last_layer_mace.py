"""MACE last layers: a small MACE built in code (weights must come from the user; none ship).

Runs in the environment of the ``mace`` extra (``make test`` builds ``.venv-mace`` for it:
mace-torch pins e3nn 0.4.4, which conflicts with SevenNet's). Oracles: MACE's own ASE
calculator in float64, and central finite differences of the energy rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

pytest.importorskip("mace", reason="the 'mace' extra (mace-torch) is not installed")
import torch  # noqa: E402
from mace import modules  # noqa: E402  (mace before e3nn: e3nn 0.4.4 needs mace's torch.load setting)
from e3nn import o3  # noqa: E402

from uqcalc.descriptors import LastLayer, from_spec  # noqa: E402


def small_mace(pair_repulsion: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return modules.ScaleShiftMACE(
        r_max=4.5, num_bessel=6, num_polynomial_cutoff=5, max_ell=2,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=2, hidden_irreps=o3.Irreps("16x0e + 16x1o"), MLP_irreps=o3.Irreps("8x0e"),
        gate=torch.nn.functional.silu, atomic_energies=np.array([-11.8, -12.9]), avg_num_neighbors=12.0,
        atomic_numbers=[73, 74], correlation=2, radial_type="bessel", atomic_inter_scale=1.3,
        atomic_inter_shift=-0.2, pair_repulsion=pair_repulsion,
    ).to(torch.float64)


def _cell():
    atoms = bulk("W", "bcc", a=3.17, cubic=True) * (2, 2, 1)
    atoms.numbers[1] = 73
    atoms.rattle(0.05, seed=1)
    return atoms


@pytest.mark.parametrize("pair_repulsion", [False, True], ids=["plain", "ZBL pair part"])
def test_mace_energy_forces_stress_reconstruct(pair_repulsion):
    desc, theta = LastLayer.from_mace(small_mace(pair_repulsion), species=("W", "Ta"))
    # 16 scalar channels of the first (linear) readout, 8 hidden of the last, 2 species
    assert desc.n_params == 16 + 8 + 2
    atoms = _cell()
    atoms.calc = desc.calculator()
    out = desc.rows(atoms, per_atom=True).evaluate(theta)
    assert out["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(out["forces"], atoms.get_forces(), atol=1e-9)
    np.testing.assert_allclose(out["stress"], atoms.get_stress(), atol=1e-10)
    assert out["energies"].sum() == pytest.approx(out["energy"], abs=1e-9)


def test_mace_force_and_stress_rows_are_finite_differences():
    model = small_mace(True)
    desc, _ = LastLayer.from_mace(model, species=("W", "Ta"))
    jac, _ = LastLayer.from_mace(model, species=("W", "Ta"), derivatives=True)
    atoms = _cell()
    rows = jac.rows(atoms)
    h = 1e-5
    for i, c in [(0, 0), (2, 1)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, c] += h
        minus.positions[i, c] -= h
        fd = -(desc.rows(plus).energy - desc.rows(minus).energy) / (2 * h)
        np.testing.assert_allclose(rows.forces[i, c], fd, atol=1e-8 * (1 + np.abs(fd).max()))
    strain = np.zeros((3, 3))
    strain[0, 0] = h
    energies = []
    for sign in (1, -1):
        cell = atoms.copy()
        cell.set_cell(atoms.cell @ (np.eye(3) + sign * strain), scale_atoms=True)
        energies.append(desc.rows(cell).energy)
    fd = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
    np.testing.assert_allclose(rows.stress[0], fd, rtol=1e-5, atol=1e-9)


def test_mace_from_a_file_rebuilds_from_its_spec(tmp_path):
    model = small_mace(False)
    path = tmp_path / "small.model"
    torch.save(model, path)
    desc, theta = LastLayer.from_mace(path, species=("W",))
    again = from_spec(desc.spec())
    atoms = _cell()
    np.testing.assert_allclose(again.rows(atoms).energy, desc.rows(atoms).energy, atol=1e-12)
    in_memory, _ = LastLayer.from_mace(model, species=("W",))
    spec = in_memory.spec()
    import uqcalc.descriptors.last_layer as ll

    ll._MACE_MODULES.clear()
    ll._LOADED.clear()
    with pytest.raises(ValueError, match="exists only in the process that created it"):
        from_spec(spec)
