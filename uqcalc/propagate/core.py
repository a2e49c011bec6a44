"""``propagate``: a property's ensemble from a parameter ensemble, by resampling or implicit differentiation."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from .corners import corner_coordinates, evaluate_corners, finite_difference_slope
from .implicit import StateExpansion
from .resample import evaluate_members, executor_workers
from .result import PropagationError, PropertyEnsemble

__all__ = ["METHODS", "propagate"]

METHODS = ("resample", "implicit", "linear")


def _model(calc_or_ensemble):
    """(descriptor, ensemble) from a UQCalculator or a (descriptor, ensemble) pair."""
    if isinstance(calc_or_ensemble, (tuple, list)) and len(calc_or_ensemble) == 2:
        descriptor, ensemble = calc_or_ensemble
    elif hasattr(calc_or_ensemble, "descriptor") and hasattr(calc_or_ensemble, "ensemble"):
        descriptor, ensemble = calc_or_ensemble.descriptor, calc_or_ensemble.ensemble
    else:
        raise TypeError(
            "calc_or_ensemble must be a UQCalculator or a (descriptor, ParameterEnsemble) pair, "
            f"got {type(calc_or_ensemble).__name__}"
        )
    if not (hasattr(descriptor, "rows") and hasattr(descriptor, "spec")):
        raise TypeError(f"not a descriptor: {type(descriptor).__name__}")
    if ensemble.n_params != descriptor.n_params:
        raise ValueError(f"ensemble has {ensemble.n_params} parameters, descriptor {descriptor.n_params}")
    if ensemble.n_members == 0:
        raise ValueError(
            "the ensemble has no members to propagate; draw some first "
            "(e.g. ParameterEnsemble(theta, members=ens.sample_box(200, random_state=0), ...))"
        )
    return descriptor, ensemble


def propagate(
    prop,
    calc_or_ensemble,
    method: str = "resample",
    executor: Executor | None = None,
    progress: bool = True,
    *,
    batch_size: int | None = None,
    verify_extremes: bool | None = None,
    verify_rtol: float = 0.05,
    verify_atol: float = 1e-5,
    hessian: str = "auto",
    member_hessian: bool | None = None,
    fd_step: float = 1e-3,
    symmetry: bool = True,
    singular_atol: float = 1e-5,
    solver_rtol: float = 1e-8,
    refine: bool = False,
    exact_corners: bool = False,
    corner_step: float = 0.1,
) -> PropertyEnsemble:
    """Propagate a parameter ensemble to a property.

    Parameters
    ----------
    prop : Property
        What to compute (``uqcalc.properties``); ``implicit``/``linear`` need ``prop.states()``.
    calc_or_ensemble : UQCalculator or (Descriptor, ParameterEnsemble)
        The linear model and its ensemble (point estimate θ̄ and members θ_m).
    method : {"resample", "implicit", "linear"}
        ``"resample"``: ``prop.evaluate`` with every member (relaxing every state, M times).
        ``"implicit"``: relax each state once at θ̄ and expand the relaxed quantities to second
        order in δ = θ_m − θ̄ (energies exact to O(|δ|³); volumes first order; ``METHODS.md`` §5,
        Maliyov, Grigorev & Swinburne, arXiv:2407.02414). ``"linear"``: the first-order term
        only (``D(X*)·δ`` for energies: no Hessian).
    executor : concurrent.futures.Executor, optional
        Runs the member evaluations (``resample``; the extreme-member checks and the dense
        Hessian columns of ``implicit``): a ``ProcessPoolExecutor`` (``fork`` and ``spawn`` both
        give bit-identical SNAP results here; ``spawn`` is the safe choice with MPI-enabled LAMMPS
        builds), a dask ``distributed.Client(...).get_executor()`` (which reschedules the tasks
        of a worker that dies), or None (serial). Tasks receive the descriptor spec, parameter
        vectors and the property, never a calculator; results are plain numbers.
    progress : bool, default True
        tqdm progress bars.
    batch_size : int, optional
        Members per task (``resample``); see :func:`~uqcalc.propagate.resample.evaluate_members`.
    verify_extremes : bool, optional
        Re-relax the two members with the lowest and highest predicted value and compare
        (default: True for ``implicit``, False for ``linear``). A deviation above
        ``max(verify_rtol · std, verify_atol)`` is flagged: the expansion does not hold over the
        ensemble's range (or the member relaxes into another basin).
    verify_rtol, verify_atol : float
        Tolerance of that check (fraction of the ensemble std; property units).
    hessian : {"auto", "dense", "matrix-free"}
        How H⁺ is applied (see :class:`~uqcalc.propagate.implicit.StateExpansion`).
    member_hessian : bool, optional
        ``implicit``: expand each member with its own Hessian H(θ_m) at the θ̄-relaxed structure
        (exact, since H is linear in θ, and free: the finite differences that give H(θ̄) give
        every component; solved on a small Galerkin subspace, see :mod:`.implicit`). Same
        O(|δ|³) order, much smaller constant: on the SNAP <111> SIA it cut the worst member's
        error from 12% to 0.24% of the ensemble std. It also flags members for which the state
        stops being a minimum. Default: on when the dense Hessian tensor fits in memory. False
        gives the paper's fixed-Hessian expansion ``E* + D·δ − ½ δᵀ Mᵀ H(θ̄)⁺ M δ``.
    fd_step : float, default 1e-3
        Finite-difference step (Å) of the Hessian.
    symmetry : bool, default True
        Use space-group symmetry for the dense Hessian.
    singular_atol : float, default 1e-5
        Eigenvalue (eV/Å²) below which H is singular beyond its zero modes (an error).
    solver_rtol : float, default 1e-8
        MINRES tolerance of the matrix-free solves.
    refine : bool, default False
        ``implicit`` only: one Newton step per member and moving state from the first-order
        structure (one descriptor call each, :meth:`StateExpansion.refine`): energy error
        O(|δ|⁵) instead of O(|δ|³), volumes O(|δ|⁴) instead of O(|δ|²). For ensembles whose
        extreme members leave the second-order range at a cost of M calls per state.
    exact_corners : bool, default False
        Box ensembles (POPS), scalar properties: also evaluate the property exactly
        (``prop.evaluate``, every state re-relaxed) at the two box corners that extremise its
        first-order term (:mod:`.corners`). The term comes from the expansions for
        ``implicit``/``linear`` (2 extra evaluations) and from central differences along the R
        box axes for ``resample`` (2R + 3). Stored in ``diagnostics["box"]``.
    corner_step : float, default 0.1
        Finite-difference step of that slope, as a fraction of the box half-width per axis.

    Returns
    -------
    PropertyEnsemble
        ``value`` (at θ̄; for ``implicit`` Newton-corrected for the relaxation residual),
        ``members``, ``std``, ``lower``, ``upper``; ``failed`` members; ``flags`` (also emitted
        as :class:`PropagationWarning`): failed members, an extreme member the expansion misses,
        members for which a state is no minimum, unexpected saddle points; ``diagnostics``
        (timings, descriptor calls, per-state Hessian data, the spot checks, box corners).

    Raises
    ------
    ValueError
        ``implicit``/``linear`` for a property without states (elastic constants, …) unless it
        declares ``linear_in_theta = True``.
    RelaxationError, SingularHessianError
        A state does not relax at θ̄, or its Hessian is singular beyond the zero modes.
    PropagationError
        Every member failed (``resample``).

    Notes
    -----
    A property whose states must be searched for with a calculator (a NEB saddle) provides
    ``stationary_states(calc)``; it is called with the θ̄ potential, and a state marked
    ``atoms.info["stationary"]`` with ``relax="none"`` is expanded in positions without being
    minimised (its Hessian has a negative eigenvalue; the residual gradient of the search enters
    the Newton-corrected expansion).

    Properties that are affine in θ (``linear_in_theta = True``; e.g. elastic constants from
    stresses at fixed homogeneous strains without internal relaxation: every stress is
    ``rows.stress @ θ + ref``) are propagated exactly by ``linear``/``implicit`` from
    ``r + 1`` evaluations, r = rank of the member deviations (≤ P), instead of M.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    descriptor, ensemble = _model(calc_or_ensemble)
    start = time.perf_counter()
    metadata = {
        "descriptor": descriptor.spec(),
        "ensemble": {k: ensemble.metadata.get(k) for k in ("backend", "seed", "random_state") if k in ensemble.metadata},
        "n_members": ensemble.n_members,
        "property": repr(prop),
    }
    if method == "resample":
        out = _resample(prop, descriptor, ensemble, executor, progress, batch_size, metadata)
    else:
        if verify_extremes is None:
            verify_extremes = method == "implicit"
        if hasattr(prop, "stationary_states"):
            # states found by a search with the calculator itself (a NEB saddle): find them at θ̄
            from ..calculator import LinearPotential

            states = prop.stationary_states(LinearPotential(descriptor, ensemble.theta))
        else:
            states = prop.states()
        if states is None:
            if getattr(prop, "linear_in_theta", False):
                out = _affine(prop, descriptor, ensemble, method, executor, progress, batch_size, metadata)
            else:
                raise ValueError(
                    f"{getattr(prop, 'name', prop)!r} is not a combination of stationary states "
                    f"(states() is None): method={method!r} needs states; use method='resample'. "
                    "A property affine in θ (e.g. elastic constants at fixed strain without internal "
                    "relaxation) can set linear_in_theta = True to be propagated exactly from "
                    "rank(δ) + 1 evaluations."
                )
        else:
            if refine and method != "implicit":
                raise ValueError("refine=True needs method='implicit'")
            options = {"hessian": hessian, "member_hessian": member_hessian, "step": fd_step,
                       "symmetry": symmetry, "singular_atol": singular_atol, "solver_rtol": solver_rtol}
            out = _expand(prop, states, descriptor, ensemble, method, executor, progress, options, metadata,
                          refine)
            if verify_extremes:
                _verify(out, prop, descriptor, ensemble, executor, verify_rtol, verify_atol)
    if exact_corners and ensemble.has_box and np.ndim(out.value) == 0:
        _exact_corners(out, prop, descriptor, ensemble, executor, corner_step, progress)
    out.diagnostics["time_total"] = time.perf_counter() - start
    return out


# --------------------------------------------------------------------------- resample


def _resample(prop, descriptor, ensemble, executor, progress, batch_size, metadata) -> PropertyEnsemble:
    M = ensemble.n_members
    thetas = np.concatenate([ensemble.theta[None, :], ensemble.members])
    labels = [-1] + list(range(M))
    if batch_size is None and executor is not None:
        batch_size = max(1, min(16, math.ceil((M + 1) / (4 * executor_workers(executor)))))
    t0 = time.perf_counter()
    values, errors = evaluate_members(prop, descriptor, thetas, labels, executor, batch_size, progress,
                                      description=f"resample {getattr(prop, 'name', '')}".strip())
    elapsed = time.perf_counter() - t0
    good = [values[i] for i in range(M) if i in values]
    if not good:
        first = "; ".join(f"member {k}: {errors[k]}" for k in sorted(errors)[:3])
        raise PropagationError(f"{getattr(prop, 'name', prop)!r}: every member failed ({first})")
    shape = np.shape(good[0])
    members = np.full((M,) + shape, np.nan)
    for i, v in values.items():
        if i >= 0:
            members[i] = v
    value = np.asarray(values[-1], dtype=float) if -1 in values else np.full(shape, np.nan)
    out = PropertyEnsemble(
        name=getattr(prop, "name", ""), unit=getattr(prop, "unit", ""), method="resample",
        value=value if shape else float(value),
        members=members,
        failed=[{"member": k, "error": errors[k]} for k in sorted(errors) if k >= 0],
        diagnostics={"time_members": elapsed, "batch_size": batch_size or 1,
                     "executor": None if executor is None else type(executor).__name__},
        metadata=metadata,
    )
    if -1 in errors:
        out.flag(f"the point estimate θ̄ failed: {errors[-1]}")
    if out.failed:
        out.flag(f"{len(out.failed)} of {M} members failed (see .failed); statistics use the other "
                 f"{M - len(out.failed)}")
    return out


# --------------------------------------------------------------------------- implicit / linear


def _combiner(prop, states, quantities0: Sequence[float]):
    """``f(Q)``: the property for state quantities Q (K, n_states) → (K,).

    A state property is usually affine in its states' quantities (Σ c_i q_i × scale): then
    ``f`` is one matrix product, found from ``prop.combine`` at the θ̄ quantities and unit steps
    away from them (and checked at one more point). Otherwise (e.g. a volume in units of the
    relaxed atomic volume) ``prop.combine`` is called per member.
    """
    from ..properties.base import StateProperty

    n = len(states)
    if not hasattr(prop, "combine") or type(prop).combine is StateProperty.combine:
        # Σ c_i q_i × scale by definition: no need to call combine (which rebuilds the states)
        w = float(getattr(prop, "scale", 1.0)) * np.array([s.coefficient for s in states], dtype=float)
        return lambda Q: np.atleast_2d(Q) @ w

    def per_member(Q):
        return np.array([float(prop.combine(list(q))) for q in np.atleast_2d(Q)])

    q0 = np.asarray(quantities0, dtype=float)
    steps = np.maximum(1.0, np.abs(q0))
    try:
        base = float(prop.combine(list(q0)))
        w = np.array([(prop.combine(list(q0 + steps[i] * np.eye(n)[i])) - base) / steps[i] for i in range(n)])
        probe = q0 + 0.37 * steps * np.linspace(-1.0, 1.0, n)
        affine = abs(base + w @ (probe - q0) - float(prop.combine(list(probe)))) <= 1e-10 * (1.0 + abs(base))
    except ArithmeticError:
        affine = False
    if not affine:
        return per_member
    return lambda Q: base + (np.atleast_2d(Q) - q0) @ w


def _relaxed(prop, states, calc):
    from ..properties.base import relax

    if hasattr(prop, "relaxed_states"):
        return prop.relaxed_states(calc)
    fmax, steps = getattr(prop, "fmax", 1e-3), getattr(prop, "steps", 2000)
    name = getattr(prop, "name", "property")
    return [(s, relax(s.atoms, calc, s.relax, fmax, steps, name=f"{name}/{s.name}")) for s in states]


def _expand(prop, states, descriptor, ensemble, method, executor, progress, options, metadata, refine=False):
    from ..calculator import LinearPotential

    theta, members = ensemble.theta, ensemble.members
    order = 2 if method == "implicit" else 1
    timings = {}
    t0 = time.perf_counter()
    relaxed = _relaxed(prop, states, LinearPotential(descriptor, theta))
    timings["time_relax"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(relaxed), desc=f"{method} {getattr(prop, 'name', '')}".strip(), unit="state")
    expansions = []
    try:
        for state, atoms in relaxed:
            pname = getattr(prop, "name", "")
            mode = state.relax
            if mode == "none" and state.atoms.info.get("stationary"):
                # stationary but not to be minimised (a saddle found by NEB): expand in positions
                mode = "positions"
            exp = StateExpansion.build(
                descriptor, theta, atoms, mode, name=f"{pname}/{state.name}" if pname else state.name,
                quantity=state.quantity, need_hessian=order == 2, deviations=members - theta, executor=executor,
                **({**options, "member_hessian": False} if order == 1 else options),
            )
            exp.info["saddle_expected"] = state.atoms.info.get("stationary") == "saddle"
            expansions.append(exp)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    timings["time_expand"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if refine:
        both = np.concatenate([theta[None, :], members])
        refined = [e.refine(descriptor, both) if e.moves else None for e in expansions]
        q_all = np.stack([
            e.quantity(both, order) if r is None else r["energy" if e.quantity_kind == "energy" else "volume"]
            for e, r in zip(expansions, refined)
        ], axis=1)
        q_point, q_members = list(q_all[0]), q_all[1:]
        for e, r in zip(expansions, refined):
            if r is not None:
                e.info["max_first_order_residual"] = float(r["residual"].max())
    else:
        q_point = [e.quantity(theta[None, :], order)[0] for e in expansions]
        q_members = np.stack([e.quantity(members, order) for e in expansions], axis=1)  # (M, n_states)
    combine = _combiner(prop, states, q_point)
    value, member_values = float(combine(np.asarray(q_point))[0]), combine(q_members)
    timings["time_predict"] = time.perf_counter() - t0
    out = PropertyEnsemble(
        name=getattr(prop, "name", ""), unit=getattr(prop, "unit", ""), method=method,
        value=value,
        members=member_values,
        diagnostics={**timings, "states": [e.info for e in expansions],
                     "n_descriptor_calls": int(sum(e.info.get("n_evaluations", 0) for e in expansions))},
        metadata=metadata,
    )
    for e in expansions:
        # the member predictions above ran the positivity check already (unless refined one by one)
        unstable = e.unstable_members(members, reuse=not refine) if order == 2 else []
        if unstable:
            e.info["unstable_members"] = unstable
            out.flag(f"state {e.name!r}: for {len(unstable)} member(s) (e.g. {unstable[:5]}) the Hessian at the "
                     "θ̄-relaxed structure is not positive definite: the structure is not a minimum for them, "
                     "their relaxation may go elsewhere; check with method='resample'")
        negative = e.info.get("n_negative")
        if e.info["saddle_expected"] and negative is not None and negative != 1:
            out.flag(f"state {e.name!r} is marked a saddle but its Hessian has {negative} negative "
                     "eigenvalues (a first-order saddle has one)")
        elif negative and not e.info["saddle_expected"]:
            out.flag(f"state {e.name!r}: {negative} negative Hessian eigenvalue(s) "
                     f"(lowest {e.info['lowest_eigenvalue']:.3g} eV/Å²): a saddle point, not a minimum")
    if ensemble.has_box:
        out.diagnostics["box"] = _box_corners(expansions, combine, ensemble, order)
    out._expansions = expansions  # kept for inspection in this session (not serialised)
    return out


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


def _exact_corners(out: PropertyEnsemble, prop, descriptor, ensemble, executor, step, progress) -> None:
    """``diagnostics["box"]`` gains the property evaluated exactly at the two first-order corners."""
    t0 = time.perf_counter()
    box = out.diagnostics.setdefault("box", {})
    if "slope" in box:
        slope = np.asarray(box["slope"])
    else:
        slope, info = finite_difference_slope(prop, descriptor, ensemble, executor, step, progress)
        base = float(out.value)
        z_lo, z_hi = corner_coordinates(slope, ensemble.lower, ensemble.upper)
        box |= {"slope": [float(g) for g in slope], "slope_method": "central differences",
                "slope_info": info, "linear_lower": base + float(slope @ z_lo), "linear_upper": base + float(slope @ z_hi),
                "max_member_distance": float(np.linalg.norm(ensemble.members - ensemble.theta, axis=1).max())}
        if info["failed_axes"]:
            out.flag(f"box slope: both finite-difference evaluations failed on axes {info['failed_axes']}; "
                     "their slope is taken as 0")
    box |= evaluate_corners(prop, descriptor, ensemble, slope, executor, progress=False)
    for where, err in zip(("minimising", "maximising"), box["corner_errors"]):
        if err is not None:
            out.flag(f"the {where} box corner could not be evaluated ({err})")
    box["time_exact_corners"] = time.perf_counter() - t0


def _verify(out: PropertyEnsemble, prop, descriptor, ensemble, executor, rtol, atol) -> None:
    """Re-relax the members with the extreme predictions; flag deviations beyond the tolerance."""
    if out.members.ndim != 1:
        return
    t0 = time.perf_counter()
    idx = sorted({int(np.nanargmin(out.members)), int(np.nanargmax(out.members))})
    values, errors = evaluate_members(prop, descriptor, ensemble.members[idx], idx, executor, progress=False)
    std = out.std
    tol = max(rtol * (std if np.isfinite(std) else 0.0), atol)
    checks = []
    for i in idx:
        predicted = float(out.members[i])
        if i in errors:
            checks.append({"member": i, "predicted": predicted, "resampled": None, "error": errors[i]})
            out.flag(f"extreme member {i} could not be re-relaxed ({errors[i]}): the expansion is unchecked there")
            continue
        exact = float(values[i])
        dev = abs(predicted - exact)
        checks.append({"member": i, "predicted": predicted, "resampled": exact, "deviation": dev,
                       "deviation_over_std": dev / std if std else float("inf"), "tolerance": tol})
        if dev > tol:
            out.flag(
                f"extreme member {i}: {out.method} predicts {predicted:.6g}, re-relaxation gives {exact:.6g} "
                f"{out.unit} (|Δ| = {dev:.3g} > {tol:.3g} = max({rtol}·std, {atol})): the expansion does not "
                "hold over the ensemble's range (or the member relaxes into another state); use method='resample'"
            )
    out.diagnostics["verify"] = checks
    out.diagnostics["time_verify"] = time.perf_counter() - t0


# --------------------------------------------------------------------------- affine properties


def _affine(prop, descriptor, ensemble, method, executor, progress, batch_size, metadata) -> PropertyEnsemble:
    """Exact propagation of a property affine in θ from rank(δ) + 1 evaluations."""
    theta, members = ensemble.theta, ensemble.members
    deltas = members - theta
    _, s, vt = np.linalg.svd(deltas, full_matrices=False)
    basis = vt[s > 1e-10 * max(s.max(initial=0.0), 1e-300)]  # (r, P)
    if basis.shape[0] + 1 >= ensemble.n_members:
        out = _resample(prop, descriptor, ensemble, executor, progress, batch_size, metadata)
        out.method = method
        out.diagnostics["affine"] = "rank(δ) + 1 ≥ M: every member evaluated"
        return out
    step = float(np.median(np.linalg.norm(deltas, axis=1)))
    thetas = np.concatenate([theta[None, :], theta + step * basis])
    labels = list(range(thetas.shape[0]))
    t0 = time.perf_counter()
    values, errors = evaluate_members(prop, descriptor, thetas, labels, executor, batch_size, progress,
                                      description=f"affine {getattr(prop, 'name', '')}".strip())
    if errors:
        k = min(errors)
        raise PropagationError(f"{getattr(prop, 'name', prop)!r}: evaluation at a probe point failed: {errors[k]}")
    f = np.array([np.asarray(values[i], dtype=float) for i in labels])
    slope = (f[1:] - f[0]) / step  # (r,) + shape
    coef = deltas @ basis.T  # (M, r)
    pred = f[0] + np.tensordot(coef, slope, axes=(1, 0))
    # one check that the property is affine: the member farthest from θ̄ evaluated directly
    far = int(np.argmax(np.linalg.norm(deltas, axis=1)))
    cv, ce = evaluate_members(prop, descriptor, members[far : far + 1], [far], executor, progress=False)
    out = PropertyEnsemble(
        name=getattr(prop, "name", ""), unit=getattr(prop, "unit", ""), method=method,
        value=f[0] if f[0].ndim else float(f[0]), members=pred,
        diagnostics={"affine": {"n_evaluations": len(labels) + 1, "rank": int(basis.shape[0])},
                     "time_members": time.perf_counter() - t0},
        metadata=metadata,
    )
    if far in ce:
        out.flag(f"affine check: member {far} failed ({ce[far]})")
    else:
        exact = np.asarray(cv[far], dtype=float)
        err = float(np.abs(exact - pred[far]).max())
        scale = float(np.abs(exact).max()) + 1e-12
        out.diagnostics["affine"]["check"] = {"member": far, "max_abs_error": err}
        if err > 1e-7 * scale:
            out.flag(f"linear_in_theta property is not affine: member {far} evaluates to {exact} but the "
                     f"affine prediction is {pred[far]} (|Δ| = {err:.3g}); use method='resample'")
    return out
