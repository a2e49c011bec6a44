"""Implicit and linear propagation: stationary states found once at θ̄, expanded in θ.

:class:`Implicit` asks the property for its stationary states at θ̄
(``prop.stationary_states(potential)``: minima relaxed, saddles located by the property), builds
a :class:`~.expansion.StateExpansion` of each — the relaxed energy (or volume) as a function of
θ to second order by implicit differentiation (``METHODS.md`` §5; Maliyov, Grigorev & Swinburne,
arXiv:2407.02414) — and combines the members' predicted quantities with ``prop.combine``.
:class:`Linear` keeps the first-order (envelope-theorem) energy term, which needs no Hessian.

A saddle state (``kind="saddle"``) is expanded exactly like a minimum in its stationary degrees
of freedom; its Hessian is expected to have one negative eigenvalue, and anything else is
flagged. For a POPS box the first-order term also gives, in closed form, the two box corners
that extremise the property (``diagnostics["box"]``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from ..model import LinearModel
from ..properties.base import Property
from .base import Propagator, require_members, result_metadata
from .corners import corner_coordinates
from .expansion import StateExpansion
from .hessian import HessianSolver
from .result import PropagationError, PropertyEnsemble

__all__ = ["BROKEN_FRACTION", "Implicit", "Linear"]

# a re-relaxed member that differs from the expansion's prediction by more than this fraction of
# the member range contradicts the expansion (Implicit's spot check, and the studies' fallback)
BROKEN_FRACTION = 0.1


def _combiner(prop, states: Sequence, quantities0: Sequence[float]):
    """``f(Q)``: the property for state quantities Q (K, n_states) → (K,).

    A state property is usually affine in its states' quantities (Σ c_i q_i × scale): then
    ``f`` is one matrix product, found from ``prop.combine`` at the θ̄ quantities and unit steps
    away from them (and checked at one more point). Otherwise (e.g. a volume in units of the
    relaxed atomic volume) ``prop.combine`` is called per member.
    """
    n = len(states)

    def combine(q):
        return float(prop.combine(list(q), states))

    def per_member(Q):
        return np.array([combine(q) for q in np.atleast_2d(Q)])

    q0 = np.asarray(quantities0, dtype=float)
    steps = np.maximum(1.0, np.abs(q0))
    try:
        base = combine(q0)
        w = np.array([(combine(q0 + steps[i] * np.eye(n)[i]) - base) / steps[i] for i in range(n)])
        probe = q0 + 0.37 * steps * np.linspace(-1.0, 1.0, n)
        affine = abs(base + w @ (probe - q0) - combine(probe)) <= 1e-10 * (1.0 + abs(base))
    except ArithmeticError:
        affine = False
    if not affine:
        return per_member
    return lambda Q: base + (np.atleast_2d(Q) - q0) @ w


class Implicit(Propagator):
    """Relax each stationary state once at θ̄ and expand it in θ − θ̄ (second order by default).

    Parameters
    ----------
    order : {1, 2}, default 2
        2: energies exact to O(|δ|³), volumes to first order; 1: the first-order term
        ``D(X*)·δ`` only (no Hessian for energies).
    solver : HessianSolver, optional
        How the Hessian is built and applied (dense with symmetry, or matrix-free; member
        Hessians); see :class:`~uqcalc.propagate.hessian.HessianSolver`.
    refine : bool, default False
        One Newton step per member and moving state from the first-order structure (one
        descriptor call each, :meth:`~.expansion.StateExpansion.refine`): energy error O(|δ|⁵)
        instead of O(|δ|³). Second order only.

    unstable : {"rerelax", "keep"}, default "rerelax"
        Where the expansion does not hold. ``"rerelax"``: members for which a minimum's Hessian
        at the θ̄-relaxed structure is not positive definite (their relaxation may go
        elsewhere) are evaluated directly (every state relaxed afresh, as resampling does) and
        their expansion values discarded — the method becomes ``"implicit+rerelax"``; with more
        than ``max_rerelax`` of them :class:`PropagationError` is raised, so a caller falls
        back to resampling (only re-relaxing a member tells whether it stays; a spot check of
        a few can keep one that moves). ``"keep"``: flag only (the expansion's predictions stay). A θ̄ minimum with
        negative eigenvalues is flagged either way (by symmetry members may stay at that saddle
        too); :class:`~.checks.VerifyExtremes` tests whether the expansion holds there.
    max_rerelax : int, default 10
        Most members re-relaxed: each costs a full evaluation of the property (a stacking-fault
        search is ~10 s).

    Notes
    -----
    Supports properties that declare ``combines_states``. Flags (also emitted as
    :class:`~uqcalc.propagate.PropagationWarning`): members for which a minimum's Hessian stops
    being positive definite, a minimum with negative eigenvalues (a saddle), a saddle state
    without exactly one, re-relaxed members.
    """

    name = "implicit"

    def __init__(self, *, order: int = 2, solver: HessianSolver | None = None, refine: bool = False,
                 unstable: str = "rerelax", max_rerelax: int = 10):
        self.order = order
        self.solver = solver
        self.refine = refine
        self.unstable = unstable
        self.max_rerelax = max_rerelax

    def _check(self) -> None:
        if self.order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {self.order!r}")
        if self.refine and self.order != 2:
            raise ValueError("refine=True needs the second-order expansion (method='implicit')")
        if self.unstable not in ("rerelax", "keep"):
            raise ValueError(f"unstable must be 'rerelax' or 'keep', got {self.unstable!r}")
        if int(self.max_rerelax) < 0:
            raise ValueError(f"max_rerelax must be >= 0, got {self.max_rerelax}")

    def supports(self, prop) -> bool:
        return isinstance(prop, Property) and bool(prop.combines_states)

    def __call__(self, prop, model: LinearModel, executor: Executor | None = None, *,
                 progress: bool = True) -> PropertyEnsemble:
        self._check()
        require_members(model)
        if not self.supports(prop):
            raise ValueError(f"{prop.name!r} is not a combination of stationary states; {self.name} needs states")
        solver = self.solver or HessianSolver()
        if self.order == 1:
            solver = dataclasses.replace(solver, member_hessian=False)
        members = model.members
        timings = {}
        t0 = time.perf_counter()
        states = prop.stationary_states(model.potential())
        timings["time_relax"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        expansions = self._expand_states(prop, states, model, executor, progress, solver)
        timings["time_expand"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        q_point, q_members = self._quantities(expansions, model)
        combine = _combiner(prop, states, q_point)
        value, member_values = float(combine(np.asarray(q_point))[0]), combine(q_members)
        timings["time_predict"] = time.perf_counter() - t0
        out = PropertyEnsemble(
            name=prop.name, unit=prop.unit, method=self.name, value=value, members=member_values,
            diagnostics={**timings, "states": [e.info for e in expansions],
                         "n_descriptor_calls": int(sum(e.info.get("n_evaluations", 0) for e in expansions))},
            metadata=result_metadata(prop, model, self),
        )
        self._flag_states(out, states, expansions, members)
        if self.unstable == "rerelax":
            self._rerelax(prop, model, out, states, expansions, executor, progress)
        if model.ensemble.has_box:
            out.diagnostics["box"] = _box_corners(expansions, combine, model.ensemble, self.order)
        out._expansions = expansions  # kept for inspection in this session (not serialised)
        return out

    def _rerelax(self, prop, model, out, states, expansions, executor, progress) -> None:
        """Re-relax the members the expansion may not describe, or give it up if there are too many.

        All flagged members when at most ``max_rerelax`` (their re-relaxed values replace the
        expansion's); with more, the expansion is given up (:class:`PropagationError`) and a
        caller resamples.
        """
        bad = sorted({i for e in expansions for i in e.info.get("unstable_members", [])})
        if not bad:
            return
        from .resample import evaluate_members, flag_point_outside

        members = out.members
        if len(bad) > int(self.max_rerelax):
            # only re-relaxing a member tells whether it stays: a spot check of a few once kept a
            # member that moved 0.7 eV/atom, so the expansion is given up instead
            raise PropagationError(
                f"{prop.name!r}: for {len(bad)} of {members.shape[0]} members a state's Hessian at the θ̄ structure is "
                f"not positive definite, more than max_rerelax={int(self.max_rerelax)} can be re-relaxed: their "
                "relaxations may go elsewhere; resample (or raise max_rerelax)")
        values, errors = evaluate_members(prop, model.descriptor, model.members[bad], bad, executor,
                                          progress=progress, description=f"re-relax {prop.name}".strip())
        for i in bad:
            members[i] = values.get(i, np.nan)
        out.failed += [{"member": k, "error": errors[k]} for k in sorted(errors)]
        out.method = f"{self.name}+rerelax"
        out.diagnostics["rerelaxed_members"] = bad
        out.flag(f"re-relaxed the {len(bad)} member(s) whose Hessian at the θ̄ state is not positive definite "
                 "(their expansion values replaced)" + (f"; {len(errors)} failed" if errors else ""))
        flag_point_outside(out)

    def _expand_states(self, prop, states, model, executor, progress, solver) -> list[StateExpansion]:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(states), desc=f"{self.name} {prop.name}".strip(), unit="state")
        deviations = model.members - model.theta
        expansions = []
        try:
            for state in states:
                expansions.append(StateExpansion.build(
                    model.descriptor, model.theta, state.atoms, state.relax, name=f"{prop.name}/{state.name}",
                    quantity=state.quantity, need_hessian=self.order == 2, solver=solver,
                    deviations=deviations, executor=executor,
                ))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return expansions

    def _quantities(self, expansions, model) -> tuple[list[float], np.ndarray]:
        """State quantities at θ̄ (n_states,) and for every member (M, n_states)."""
        theta, members = model.theta, model.members
        if not self.refine:
            q_point = [e.quantity(theta[None, :], self.order)[0] for e in expansions]
            return q_point, np.stack([e.quantity(members, self.order) for e in expansions], axis=1)
        both = np.concatenate([theta[None, :], members])
        columns = []
        for e in expansions:
            if not e.moves:
                columns.append(e.quantity(both, self.order))
                continue
            r = e.refine(model.descriptor, both)
            e.info["max_first_order_residual"] = float(r["residual"].max())
            columns.append(r["energy" if e.quantity_kind == "energy" else "volume"])
        q_all = np.stack(columns, axis=1)
        return list(q_all[0]), q_all[1:]

    def _flag_states(self, out, states, expansions, members) -> None:
        for state, e in zip(states, expansions):
            # the member predictions above ran the positivity check already (unless refined one by one)
            unstable = e.unstable_members(members, reuse=not self.refine) if self.order == 2 else []
            if unstable:
                e.info["unstable_members"] = unstable
                out.flag(f"state {e.name!r}: for {len(unstable)} member(s) (e.g. {unstable[:5]}) the Hessian at "
                         "the θ̄-relaxed structure is not positive definite: the structure is not a minimum for "
                         "them, their relaxation may go elsewhere; check with method='resample'")
            negative = e.info.get("n_negative")
            e.info["kind"] = state.kind
            if state.kind == "saddle" and negative is not None and negative != 1:
                out.flag(f"state {e.name!r} is a saddle but its Hessian has {negative} negative "
                         "eigenvalues (a first-order saddle has one)")
            elif negative and state.kind == "minimum":
                out.flag(f"state {e.name!r}: {negative} negative Hessian eigenvalue(s) "
                         f"(lowest {e.info['lowest_eigenvalue']:.3g} eV/Å²): a saddle point, not a minimum")


class Linear(Implicit):
    """First-order (envelope-theorem) propagation: ``Implicit(order=1)``.

    Energies of states need no Hessian (``E* + D(X*)·δ``); volumes need dX*/dθ and build one.
    """

    name = "linear"

    def __init__(self, *, solver: HessianSolver | None = None):
        super().__init__(order=1, solver=solver, refine=False)


def _box_corners(expansions, combine, ensemble, order) -> dict:
    """Bounds of the first-order term over the POPS box (exact: a linear function peaks at a corner).

    Also the full prediction at those two corners and how far they sit from θ̄ compared with the
    farthest member: corners lie ~√3 further out than uniform samples in many dimensions, so
    the expansion is least reliable there.
    """
    theta, axes = ensemble.theta, ensemble.axes

    def value(thetas, k):
        return combine(np.stack([e.quantity(thetas, k) for e in expansions], axis=1))

    base = value(theta[None, :], 1)[0]
    slope = value(theta[None, :] + axes.T, 1) - base  # (R,) first-order change per unit box coordinate
    z_lo, z_hi = corner_coordinates(slope, ensemble.lower, ensemble.upper)
    corners = theta[None, :] + np.stack([z_lo, z_hi]) @ axes.T
    full = value(corners, order)
    dist = np.linalg.norm(corners - theta, axis=1)
    member_dist = float(np.linalg.norm(ensemble.members - theta, axis=1).max())
    return {
        "linear_lower": float(base + slope @ z_lo),
        "linear_upper": float(base + slope @ z_hi),
        f"{'implicit' if order == 2 else 'linear'}_at_corners": [float(v) for v in full],
        "corner_distance": [float(d) for d in dist],
        "max_member_distance": member_dist,
        "slope": [float(g) for g in slope],
    }
