"""``propagate``: a property's ensemble from a parameter ensemble (the façade over the propagators)."""

from __future__ import annotations

import time
from concurrent.futures import Executor

from ..model import LinearModel
from .affine import Affine
from .base import Propagator
from .checks import BoxCorners, VerifyExtremes
from .hessian import HessianSolver
from .implicit import Implicit, Linear
from .registry import PROPAGATORS
from .resample import Resample
from .result import PropertyEnsemble

__all__ = ["METHODS", "build_propagator", "propagate"]

METHODS = tuple(PROPAGATORS)

_DEFAULTS = {
    "batch_size": None, "verify_extremes": None, "verify_rtol": 0.05, "verify_atol": 1e-5, "hessian": "auto",
    "member_hessian": None, "fd_step": 1e-3, "symmetry": True, "singular_atol": 1e-5, "solver_rtol": 1e-8,
    "refine": False, "exact_corners": False, "corner_step": 0.1, "max_members": None,
}


def build_propagator(method: str, **options) -> Propagator:
    """The propagator :func:`propagate` uses for ``method`` and its keyword options."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown propagate options {sorted(unknown)}")
    o = {**_DEFAULTS, **options}
    if o["refine"] and method != "implicit":
        raise ValueError("refine=True needs method='implicit'")
    if o["max_members"] is not None and method != "resample":
        raise ValueError("max_members applies to method='resample' only")
    if method == "resample":
        inner: Propagator = Resample(batch_size=o["batch_size"], max_members=o["max_members"])
    elif method in ("implicit", "linear"):
        solver = HessianSolver(method=o["hessian"], member_hessian=o["member_hessian"], step=o["fd_step"],
                               symmetry=o["symmetry"], singular_atol=o["singular_atol"], rtol=o["solver_rtol"])
        inner = Implicit(order=2, solver=solver, refine=o["refine"]) if method == "implicit" else Linear(solver=solver)
        verify = method == "implicit" if o["verify_extremes"] is None else o["verify_extremes"]
        if verify:
            inner = VerifyExtremes(inner, rtol=o["verify_rtol"], atol=o["verify_atol"])
    else:
        inner = PROPAGATORS[method]()
        # a first-order gradient is checked like an implicit expansion
        verify = method == "gradient" if o["verify_extremes"] is None else o["verify_extremes"]
        if verify:
            inner = VerifyExtremes(inner, rtol=o["verify_rtol"], atol=o["verify_atol"])
    return BoxCorners(inner, step=o["corner_step"]) if o["exact_corners"] else inner


def propagate(
    prop,
    calc_or_ensemble,
    method: str | Propagator = "resample",
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
    max_members: int | None = None,
) -> PropertyEnsemble:
    """Propagate a parameter ensemble to a property.

    Parameters
    ----------
    prop : Property
        What to compute (``uqcalc.properties``); ``implicit``/``linear`` need a property that
        ``combines_states`` (or one declared ``affine_in_theta``).
    calc_or_ensemble : LinearModel, UQCalculator or (Descriptor, ParameterEnsemble)
        The linear model and its ensemble (point estimate θ̄ and members θ_m).
    method : {"resample", "implicit", "linear", "affine", "gradient"} or Propagator
        ``"resample"``: ``prop.evaluate`` with every member (relaxing every state, M times).
        ``"implicit"``: relax each state once at θ̄ and expand the relaxed quantities to second
        order in δ = θ_m − θ̄ (energies exact to O(|δ|³); volumes first order; ``METHODS.md`` §5,
        Maliyov, Grigorev & Swinburne, arXiv:2407.02414). ``"linear"``: the first-order term
        only (``D(X*)·δ`` for energies: no Hessian). ``"affine"``: exact for a property
        declared ``affine_in_theta``. ``"gradient"``: first order from the property's own
        ``parameter_gradient`` (lattice-trapping bounds; :mod:`.gradient`), the extreme members
        re-evaluated. A :class:`~uqcalc.propagate.Propagator` object (e.g.
        ``BoxCorners(Implicit(order=2))``) is used as it is, and the keyword options below
        must then be left at their defaults.
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
        (default: True for ``implicit`` and ``gradient``, False for ``linear``). A deviation above
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
    max_members : int, optional
        ``resample`` only: evaluate a seeded subset of this many members.

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
        declares ``affine_in_theta = True``.
    RelaxationError, SingularHessianError
        A state does not relax at θ̄, or its Hessian is singular beyond the zero modes.
    PropagationError
        Every member failed (``resample``).

    Notes
    -----
    This function builds a propagator from ``method`` and the options and calls it:
    ``"resample"`` → ``Resample(batch_size=…)``; ``"implicit"``/``"linear"`` →
    ``VerifyExtremes(Implicit(order=2|1, solver=HessianSolver(…), refine=…))`` (the check only
    for ``implicit`` by default), replaced by ``Affine()`` for a property that has no states but
    is declared ``affine_in_theta``; ``exact_corners=True`` wraps the result in ``BoxCorners``.
    The objects live in :mod:`uqcalc.propagate` and can be used directly.
    """
    model = LinearModel.of(calc_or_ensemble)
    options = {k: v for k, v in locals().items() if k in _DEFAULTS and v != _DEFAULTS[k]}
    if isinstance(method, Propagator):
        if options:
            raise TypeError(f"options {sorted(options)} are settings of the propagator object; set them there")
        propagator = method
    else:
        propagator = build_propagator(method, **options)
        if method in ("implicit", "linear") and not prop.combines_states and Affine().supports(prop):
            # no states, but declared affine: exact from rank(δ) + 1 evaluations
            affine = Affine()
            if isinstance(propagator, BoxCorners):
                affine = BoxCorners(affine, step=propagator.step, max_slope_evaluations=propagator.max_slope_evaluations,
                                    state_slope=propagator.state_slope)
            propagator = affine
    if not propagator.supports(prop):
        if getattr(prop, "lattice_constant", 0.0) is None:
            raise ValueError(
                f"{prop.name!r} is evaluated at each calculator's own lattice (lattice_constant=None), so its "
                f"cells move with θ and {propagator.name!r} cannot expand fixed states: pass a fixed "
                "lattice_constant (prop.at_own_lattice(model.potential()) fixes θ̄'s own, neglecting the "
                "members' lattice change) or use method='resample'"
            )
        raise ValueError(
            f"{prop.name!r} is not a combination of stationary states (combines_states is False): "
            f"{propagator.name!r} needs states; use method='resample'. A property affine in θ (e.g. "
            "elastic constants at fixed strain without internal relaxation) can declare "
            "affine_in_theta = True to be propagated exactly from rank(δ) + 1 evaluations."
        )
    start = time.perf_counter()
    out = propagator(prop, model, executor, progress=progress)
    out.diagnostics["time_total"] = time.perf_counter() - start
    return out
