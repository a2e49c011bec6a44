"""Cheap, physical test models shared by the test modules.

A PairBasis fitted by BayesianRidge to bcc W frames labelled by the W_2940 teacher: bcc is
stable, elastic constants are ~ those of W, and evaluation costs microseconds.
"""

from __future__ import annotations

import functools

import numpy as np
from ase.build import bulk

from uqcalc.descriptors import PairBasis

A0 = 3.1805  # bcc lattice constant of the teacher (Å)


# -- model and ensembles -----------------------------------------------------------------


def labelled_frames():
    """bcc W frames (volume scan, strains, rattles) labelled by the W_2940 teacher."""
    from uqcalc.datasets.tungsten import teacher

    calc = teacher()
    rng = np.random.default_rng(0)
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


def fitted_design():
    """(PairBasis, DesignMatrix of the teacher-labelled frames)."""
    from uqcalc.design import DesignMatrix

    descriptor = PairBasis(r_cut=5.0, n_basis=8)
    return descriptor, DesignMatrix.build(labelled_frames(), descriptor, progress=False)


@functools.lru_cache(maxsize=4)
def fitted_model(n_members: int = 8):
    """(PairBasis, BayesianRidge ensemble with covariance and members)."""
    from uqcalc.backends import BayesianRidge

    descriptor, design = fitted_design()
    return descriptor, BayesianRidge(n_members=n_members, random_state=0).fit(design)




def recombine(prop, calc, translate=None) -> float:
    """Oracle for ``states()``: relax every state by hand (optionally rigidly translated and
    wrapped) and combine the quantities, independently of ``prop.evaluate``."""
    from uqcalc.properties.base import relax

    quantities = []
    for state in prop.states():
        atoms = state.atoms.copy()
        if translate is not None:
            atoms.translate(translate)
            atoms.wrap()
        relaxed = relax(atoms, calc, state.relax, prop.fmax, prop.steps)
        quantities.append(prop.quantity(state, relaxed))
    return prop.combine(quantities)
