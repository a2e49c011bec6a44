"""Foundation-model last layers as descriptors: energies reconstruct the models, rows are derivatives.

Oracles: each model's own forward pass in float64 (CHGNet's ``_compute`` plus its ``AtomRef``
site energies; SevenNet's whole module sequence including its ``force_output``), which knows
nothing of the readout decomposition; central finite differences of the energy rows for force
and stress rows; the packages' own ASE calculators (float32) at float32 tolerance.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

torch = pytest.importorskip("torch", reason="the 'foundation' extra (torch, chgnet, sevenn) is not installed")
pytest.importorskip("chgnet", reason="the 'foundation' extra (chgnet) is not installed")
pytest.importorskip("sevenn", reason="the 'foundation' extra (sevenn) is not installed")

from uqcalc.descriptors import LastLayer, from_spec  # noqa: E402
from uqcalc.descriptors.last_layer import _default_dtype, _family  # noqa: E402

MODELS = ["chgnet-0.3.0", "sevennet-0"]
EV_PER_A3_PER_GPA = 1 / 160.21766208


def _cells() -> dict[str, Atoms]:
    w = bulk("W", "bcc", a=3.17, cubic=True) * (2, 1, 1)
    w.rattle(0.05, seed=1)
    cu = bulk("Cu", "fcc", a=3.62, cubic=True)
    cu.set_cell(cu.cell @ np.array([[1.01, 0.02, 0], [0, 0.99, 0], [0, 0, 1.0]]), scale_atoms=True)
    cu.rattle(0.03, seed=2)
    wta = bulk("W", "bcc", a=3.20, cubic=True) * (2, 2, 1)
    wta.numbers[[1, 5]] = 73
    wta.rattle(0.04, seed=3)
    return {"bcc W": w, "strained fcc Cu": cu, "W-Ta": wta}


def _oracle(name: str, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy, forces, ASE stress of the model's own float64 forward pass."""
    fam = _family(name, "float64")
    with torch.enable_grad(), _default_dtype(torch.float64), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.startswith("chgnet"):
            from chgnet.model.model import BatchedGraph
            from pymatgen.io.ase import AseAtomsAdaptor

            model = fam.model
            structure = AseAtomsAdaptor.get_structure(atoms)
            graph = model.graph_converter(structure)
            for key, value in list(vars(graph).items()):
                if torch.is_tensor(value) and value.is_floating_point():
                    setattr(graph, key, value.to(torch.float64))
            graph.atom_frac_coord = torch.as_tensor(structure.frac_coords)
            graph.lattice = torch.as_tensor(structure.lattice.matrix)
            batch = BatchedGraph.from_graphs(
                [graph], model.bond_basis_expansion, model.angle_basis_expansion, compute_stress=True
            )
            batch.volumes = batch.volumes.to(torch.float64)
            pred = model._compute(batch, compute_force=True, compute_stress=True)
            site_refs = model.composition_model.get_site_energies([graph])[0]
            energy = float(pred["e"][0]) * len(atoms) + float(site_refs.sum())
            stress = pred["s"][0].detach().numpy() * EV_PER_A3_PER_GPA
            return energy, pred["f"][0].detach().numpy(), stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        from sevenn import _keys as KEY
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        raw = unlabeled_atoms_to_graph(atoms, fam.cutoff)
        exact = {k: np.array(raw[k], dtype=float) for k in (KEY.POS, KEY.EDGE_VEC)}
        data = AtomGraphData.from_numpy_dict(raw)
        for k, v in exact.items():
            data[k] = torch.as_tensor(v)

        def cast(d):
            for k in d.keys():
                if torch.is_tensor(d[k]) and d[k].is_floating_point():
                    d[k] = d[k].to(torch.float64)
            return d

        data = cast(fam.model._preprocess(cast(data)))
        for module in fam.model._modules.values():
            data = cast(module(data))
        stress = -data[KEY.PRED_STRESS].detach().numpy()[[0, 1, 2, 4, 5, 3]]
        return float(data[KEY.PRED_TOTAL_ENERGY]), data[KEY.PRED_FORCE].detach().numpy(), stress


@pytest.fixture(scope="module", params=MODELS)
def pretrained(request):
    desc, theta = LastLayer.pretrained(request.param, species=("W", "Cu"))
    return request.param, desc, theta


def test_energy_forces_stress_reconstruct_the_model_in_float64(pretrained):
    name, desc, theta = pretrained
    for label, atoms in _cells().items():
        rows = desc.rows(atoms, per_atom=True)
        out = rows.evaluate(theta)
        energy, forces, stress = _oracle(name, atoms)
        assert out["energy"] == pytest.approx(energy, abs=1e-5), label
        assert out["energies"].sum() == pytest.approx(out["energy"], abs=1e-9), label
        # reference forces and stress are the model's own at the pretrained readout
        np.testing.assert_allclose(out["forces"], forces, atol=1e-6, err_msg=label)
        np.testing.assert_allclose(out["stress"], stress, atol=1e-8, err_msg=label)


def test_calculator_is_the_model_in_its_own_precision(pretrained):
    name, desc, theta = pretrained
    atoms = _cells()["bcc W"]
    atoms.calc = desc.calculator()
    out = desc.rows(atoms).evaluate(theta)
    # float32 models: rounding of a ~ -50 eV energy and of forces of order 1 eV/Å
    assert out["energy"] == pytest.approx(atoms.get_potential_energy(), abs=2e-5)
    np.testing.assert_allclose(out["forces"], atoms.get_forces(), atol=5e-5)


def test_species_outside_the_columns_go_to_the_reference_part(pretrained):
    name, desc, theta = pretrained
    atoms = _cells()["W-Ta"]  # Ta has no column in species=("W", "Cu")
    rows = desc.rows(atoms, per_atom=True)
    K = desc.n_params - 2
    assert rows.energy[K:].tolist() == [6.0, 0.0]  # W count, Cu count
    assert rows.ref_energy != 0.0
    assert np.all(rows.ref_per_atom[atoms.numbers == 74] == 0.0)
    everyone = LastLayer(name)  # a column for every element the model knows
    assert everyone.rows(atoms).evaluate(everyone.pretrained_theta())["energy"] == pytest.approx(
        rows.evaluate(theta)["energy"], abs=1e-8
    )


@pytest.mark.parametrize("name", MODELS)
def test_force_and_stress_rows_are_finite_differences_of_energy_rows(name):
    desc = LastLayer(name, species=("W",), derivatives=True)
    atoms = bulk("W", "bcc", a=3.17, cubic=True)
    atoms.rattle(0.05, seed=4)
    rows = desc.rows(atoms)
    assert rows.kinds == ("energy", "force", "stress")
    plain = LastLayer(name, species=("W",))
    h = 1e-4  # float64 features: central differences good to ~h² ≈ 1e-8 relative
    for i, c in [(0, 0), (1, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, c] += h
        minus.positions[i, c] -= h
        fd = -(plain.rows(plus).energy - plain.rows(minus).energy) / (2 * h)
        np.testing.assert_allclose(rows.forces[i, c], fd, atol=1e-6 * (1 + np.abs(fd).max()))
    volume = atoms.get_volume()
    # near zero stress the curvature in strain dominates: the O(h²) error of h = 1e-4 reaches
    # 2e-5 relative for CHGNet, h = 1e-5 brings it to 2e-7 (float64 rounding stays ≪ that)
    h = 1e-5
    for voigt, (a, b) in [(0, (0, 0)), (3, (1, 2))]:
        strain = np.zeros((3, 3))
        strain[a, b] = strain[b, a] = h / (2 if a != b else 1)
        energies = []
        for sign in (1, -1):
            cell = atoms.copy()
            cell.set_cell(atoms.cell @ (np.eye(3) + sign * strain), scale_atoms=True)
            energies.append(plain.rows(cell).energy)
        # engineering shear strain 2ε_yz = h: σ_yz = (1/V) dE/d(2ε_yz)
        fd = (energies[0] - energies[1]) / (2 * h) / volume
        np.testing.assert_allclose(rows.stress[voigt], fd, rtol=1e-5, atol=1e-9 * (1 + np.abs(fd).max()))


@pytest.mark.parametrize("name", MODELS)
def test_without_jacobians_forces_follow_the_reference_theta(name):
    desc, theta = LastLayer.pretrained(name, species=("W",))
    atoms = _cells()["bcc W"]
    rows = desc.rows(atoms)
    assert rows.kinds == ("energy",) and not rows.forces.any()
    other = theta.copy()
    other[:-1] *= 1.1  # a different readout
    moved = desc.with_reference_theta(other)
    jac = LastLayer(name, species=("W",), derivatives=True).rows(atoms)
    np.testing.assert_allclose(moved.rows(atoms).evaluate(other)["forces"], jac.evaluate(other)["forces"], atol=1e-9)
    assert from_spec(moved.spec()) == moved and moved != desc


def test_design_skips_rows_the_descriptor_does_not_differentiate():
    from uqcalc.design import DesignMatrix

    desc, _ = LastLayer.pretrained("chgnet-0.3.0", species=("W",))
    frames = []
    for i, a0 in enumerate((3.14, 3.18)):
        atoms = bulk("W", "bcc", a=a0, cubic=True)
        atoms.info["REF_energy"] = -25.0 + i
        atoms.arrays["REF_forces"] = np.zeros((2, 3))
        atoms.info["REF_stress"] = np.zeros(6)
        frames.append(atoms)
    design = DesignMatrix.build(frames, desc)
    assert list(design.kind) == ["energy", "energy"]
    assert design.X.shape == (2, desc.n_params)


def test_uq_calculator_energy_bounds_and_model_forces():
    from uqcalc.calculator import UQCalculator
    from uqcalc.ensemble import ParameterEnsemble

    desc, theta = LastLayer.pretrained("sevennet-0", species=("W",))
    rng = np.random.default_rng(0)
    members = theta + 0.01 * rng.standard_normal((20, theta.size))
    ens = ParameterEnsemble(theta, members=members)
    atoms = _cells()["bcc W"]
    atoms.calc = UQCalculator(desc, ens, bounds="sampled")
    energy = atoms.get_potential_energy()
    _, forces, _ = _oracle("sevennet-0", atoms)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-6)
    e_members = atoms.calc.get_property("energy_ensemble", atoms)
    assert atoms.calc.get_property("energy_lower", atoms) == pytest.approx(e_members.min())
    assert np.isnan(atoms.calc.get_property("forces_std", atoms)).all()
    assert energy == pytest.approx(_oracle("sevennet-0", atoms)[0], abs=1e-5)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown foundation model 'mace-x'"):
        LastLayer("mace-x")
    with pytest.raises(ValueError, match="does not know the species"):
        LastLayer("chgnet-0.3.0", species=("W", "Xx"))
    desc = LastLayer("sevennet-0", species=("W",))
    with pytest.raises(ValueError, match="mixed periodic"):
        atoms = bulk("W", "bcc", a=3.17, cubic=True)
        atoms.pbc = [True, True, False]
        desc.rows(atoms)


def test_core_never_imports_torch():
    code = (
        "import sys, uqcalc, uqcalc.descriptors, uqcalc.calculator, uqcalc.cli, uqcalc.coverage;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_short_pairs_after_a_refit_are_flagged_and_the_prior_keeps_the_model():
    """The refit-readout failure mode: a structure with a 1.6 Å pair, far outside training."""
    from uqcalc.backends import BayesianRidge
    from uqcalc.calculator import UQCalculator
    from uqcalc.datasets.lammps_calculator import LammpsPotential, potential_commands
    from uqcalc.design import DesignMatrix
    from uqcalc.extrapolation import LeverageGate

    teacher = LammpsPotential(potential_commands("W_2940_2017_2"), ["W"])  # stands in for DFT
    rng = np.random.default_rng(0)
    frames = []
    for i in range(20):
        atoms = bulk("W", "bcc", a=rng.uniform(3.05, 3.30), cubic=True) * (2, 2, 2)
        atoms.rattle(rng.uniform(0.02, 0.15), seed=i)
        atoms.calc = teacher
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.calc = None
        frames.append(atoms)
    desc, theta0 = LastLayer.pretrained("chgnet-0.3.0", species=("W",))
    design = DesignMatrix.build(frames, desc)
    centred = BayesianRidge(n_members=50, random_state=0).fit(design, prior_mean=theta0)
    at_zero = BayesianRidge(n_members=50, random_state=0).fit(design)

    short = bulk("W", "bcc", a=3.17, cubic=True) * (2, 2, 2)
    bond = short.positions[1] - short.positions[0]
    short.positions[1] = short.positions[0] + 1.6 * bond / np.linalg.norm(bond)
    rows = desc.rows(short)
    pretrained = rows.evaluate(theta0)["energy"]
    departure = {k: abs(rows.evaluate(e.theta)["energy"] - pretrained) / 16 for k, e in
                 (("centred", centred), ("zero", at_zero))}
    assert departure["centred"] < departure["zero"]

    short.calc = UQCalculator(desc, centred, extrapolation=LeverageGate.from_design(design))
    with pytest.warns(UserWarning, match="energy_extrapolation"):
        short.get_potential_energy()
    assert short.calc.results["energy_extrapolation"] > 10  # measured 1.7e3 with 40 frames
