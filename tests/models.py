"""Cheap, physical test models shared by the test modules.

A PairBasis fitted by BayesianRidge to bcc W frames labelled by the W_2940 teacher: bcc is
stable, elastic constants are ~ those of W, and evaluation costs microseconds.
"""

from __future__ import annotations

import functools

from uqcalc.descriptors import PairBasis

A0 = 3.1805  # bcc lattice constant of the teacher (Å)


# -- model and ensembles -----------------------------------------------------------------


def labelled_frames():
    """bcc W frames (volume scan, strains, rattles) labelled by the W_2940 teacher."""
    from uqcalc.datasets import small_bulk_set

    return small_bulk_set()


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


@functools.lru_cache(maxsize=2)
def short_pair_model(n_members: int = 8):
    """(PairBasis with a 4 Å cutoff, BayesianRidge ensemble): a crack model that is cheap
    (< 1 s per trapping bracket in a 9 Å cluster) and whose bonds break within the cutoff, so
    its crack tips are trapped (the 5 Å model opens them smoothly)."""
    from uqcalc.backends import BayesianRidge
    from uqcalc.design import DesignMatrix

    descriptor = PairBasis(r_cut=4.0, n_basis=8)
    design = DesignMatrix.build(labelled_frames(), descriptor, progress=False)
    return descriptor, BayesianRidge(n_members=n_members, random_state=0).fit(design)


def stretched(ens, factor: float):
    """The ensemble with every member's deviation from θ̄ multiplied by ``factor``."""
    from uqcalc.ensemble import ParameterEnsemble

    return ParameterEnsemble(ens.theta, members=ens.theta + factor * (ens.members - ens.theta))


def stretched_until(ens, scenario, factors=(10, 15, 20, 30, 40, 60, 80)):
    """The least-stretched ensemble for which ``scenario(ensemble)`` holds.

    Scenarios that need members beyond a stability limit: where that limit lies depends on the
    seeded draws, so a fixed stretch would test the draws rather than the code.
    """
    import pytest

    for factor in factors:
        wide = stretched(ens, factor)
        if scenario(wide):
            return wide
    pytest.fail(f"no stretch in {factors} produces the scenario")




def recombine(prop, calc, translate=None, states=None) -> float:
    """Oracle for the state protocol: relax every state by hand (optionally rigidly translated
    and wrapped) and combine the quantities, independently of ``prop.evaluate``.

    ``states`` defaults to ``prop.states()``; pass ``prop.stationary_states(calc)`` for a
    property whose states are searched for (a saddle is re-evaluated where it is, not relaxed).
    """
    from uqcalc.properties.base import relax

    states = prop.states() if states is None else states
    quantities = []
    for state in states:
        atoms = state.atoms.copy()
        if translate is not None:
            atoms.translate(translate)
            atoms.wrap()
        relaxed = relax(atoms, calc, "none" if state.kind == "saddle" else state.relax, prop.fmax, prop.steps)
        quantities.append(prop.quantity(state, relaxed))
    return prop.combine(quantities, states)
