"""First-order change of a lattice-trapping bound with the parameters, by implicit differentiation.

Along the load path the free atoms satisfy F(X, θ, q) = 0, where q = (K, a0, C11, C12, C44) are
the load and the lattice and elastic constants that place the clamped boundary (the parameters
set them too: a member relaxes its own lattice and loads its crack with its own field). The
bound is the load at which the next crossing bond's stretch s(X) reaches ``open_ratio`` on the
trapped branch. Differentiating F = 0 gives dX = H⁻¹(∂F/∂θ dθ + ∂F/∂q dq) (H the free-atom
Hessian), and holding s at the threshold, ∇s·dX = 0:

    dK/dθ = −( u·∂F/∂θ + Σ_c (ds/dc) dc/dθ ) / (ds/dK),    u = H⁻¹∇s,  c = a0, C11, C12, C44,

with ds/dq = ∇s·∂X/∂q + u·∂F/∂q for the boundary parameters (the free atoms are placed by the
field plus their relaxation, so q moves them both directly and through the relaxation).

Where the trapped branch ends in an instability (lattice trapping proper: the bond snaps), H has
a soft mode v at the bound and u → v (v·∇s)/λ, so this is the fold condition
dK = −v·(∂F/∂θ dθ + …)/(v·∂F/∂K), independent of which bond is watched; where the bond opens
continuously it is the derivative of the threshold crossing. One formula covers both.

Every piece is cheap next to re-bracketing K per member:

* H: central differences of the forces over the free atoms of the last trapped state of θ̄'s
  bracket (within ``k_tol`` of the bound), at θ̄;
* ∂F/∂θ: the descriptor's force rows of that state, one call (the model is linear in θ);
* ds/dq: central differences of the free-atom positions and forces with the boundary moved as a
  change of q would move it (:meth:`.trapping.CrackLoad.configuration`);
* dc/dθ along each direction: central differences of the calculator's a0 and C_ij (small bulk
  cells, through the executor).

The prediction is first order about a point known to ``k_tol``; a study checks it by
re-bracketing the extreme members (:class:`~uqcalc.propagate.VerifyExtremes`) and resamples
where it does not hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ase.calculators.calculator import Calculator

from ..base import Property
from ..bulk import cubic_elastic_constants
from ..crystal import Material, relaxed_lattice
from .griffith import K_UNIT

__all__ = ["FieldParameters", "critical_bond", "free_hessian", "trapping_gradient"]

# relative steps of the boundary parameters K, a0 and the C_ij in the force differences: the
# forces respond linearly far beyond them (the field is linear in K), round-off is ~1e-10 eV/Å
_BOUNDARY_STEP = 1e-4
# step (θ units) along each unit parameter direction for the a0 and C_ij differences: 2–8 % of
# the members' deviations from θ̄ for the students here (pair model 4.6, SNAP 2J=6 POPS 1.2), and
# a0 and C_ij of a linear model are smooth in θ on that scale
_THETA_STEP = 0.1


@dataclass
class FieldParameters(Material, Property):
    """a0 (Å; the fixed one if given) and C11, C12, C44 (GPa) of a calculator, as an array."""

    lattice_constant: float | None = None
    elastic: dict | None = None

    unit: ClassVar[str] = "Å, GPa"

    def evaluate(self, calc: Calculator) -> np.ndarray:
        a0 = (relaxed_lattice(calc, self.symbol, self.crystal)[0] if self.lattice_constant is None
              else float(self.lattice_constant))
        c = cubic_elastic_constants(calc, a0, **(self.elastic or {}), symbol=self.symbol, structure=self.crystal)
        return np.array([a0, c["C11"], c["C12"], c["C44"]])


def free_hessian(atoms, free: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Hessian (3n_free, 3n_free) of the free atoms by central differences of the forces
    (``atoms`` carries the calculator), symmetrised."""
    idx = np.flatnonzero(free)
    work = atoms.copy()
    work.calc = atoms.calc
    work.set_constraint()
    x0 = work.positions.copy()
    n = 3 * len(idx)
    H = np.empty((n, n))
    for col in range(n):
        i, a = idx[col // 3], col % 3
        grads = []
        for sign in (1.0, -1.0):
            x = x0.copy()
            x[i, a] += sign * step
            work.positions = x
            grads.append(-work.get_forces()[idx].ravel())
        H[:, col] = (grads[0] - grads[1]) / (2 * step)
    return 0.5 * (H + H.T)


def critical_bond(cluster, trapped, moved, bound: str) -> int:
    """Index (into ``cluster.bonds``) of the crossing bond that passes ``open_ratio`` between the
    trapped and the moved state (of several, the one nearest the threshold in the trapped state).

    Where the tip snaps (the trapped branch ends in an instability) any bond the soft mode moves
    gives the same fold condition; where it opens continuously, it is this bond's crossing.
    """
    s0, s1 = cluster.bond_stretch(trapped), cluster.bond_stretch(moved)
    r = cluster.open_ratio
    crossing = (s0 <= r) & (s1 > r) if bound == "advance" else (s0 > r) & (s1 <= r)
    if not crossing.any():
        raise RuntimeError("no crossing bond passes the open threshold between the trapped and the moved state")
    candidates = np.flatnonzero(crossing)
    return int(candidates[np.argmin(np.abs(s0[candidates] - r))])


def _stretch_gradient(cluster, atoms, bond: int, free: np.ndarray) -> np.ndarray:
    """∇s of one crossing bond's stretch over the free atoms' coordinates (3n_free,)."""
    i, j = cluster.bonds[bond]
    d = atoms.positions[i] - atoms.positions[j]
    lz = atoms.cell[2, 2]
    d[2] -= lz * np.round(d[2] / lz)
    g = np.zeros((len(atoms), 3))
    g[i] = d / np.linalg.norm(d) / cluster.bond_length[bond]
    g[j] = -g[i]
    return g[free].ravel()


def _free_forces(atoms, calc, free: np.ndarray) -> np.ndarray:
    work = atoms.copy()
    work.set_constraint()
    work.calc = calc
    return work.get_forces()[free].ravel()


def trapping_gradient(prop, descriptor, theta: np.ndarray, directions: np.ndarray, executor=None,
                      progress: bool = False) -> tuple[float, np.ndarray, dict]:
    """K± of ``prop`` at ``theta`` and its derivative along each of ``directions``.

    Parameters
    ----------
    prop : LatticeTrapping
    descriptor : Descriptor
        The linear model's descriptor (force rows give ∂F/∂θ).
    theta : (P,) ndarray
    directions : (r, P) ndarray
        Parameter directions (an orthonormal basis of the members' deviations, say).
    executor : concurrent.futures.Executor, optional
        Evaluates the a0 and C_ij differences.
    progress : bool

    Returns
    -------
    value : float
        K± at ``theta`` (MPa·m^1/2), the bracket's midpoint.
    slopes : (r,) ndarray
        dK±/dθ along each direction (MPa·m^1/2 per unit of θ).
    info : dict
        ``resolution`` (the bracket's width, MPa·m^1/2), the jump and the softest eigenvalue of
        the trapped state (eV/Å²), the boundary derivatives and timings.
    """
    from ...calculator import LinearPotential
    from ...propagate.resample import evaluate_members

    t0 = time.perf_counter()
    theta = np.asarray(theta, dtype=float)
    directions = np.atleast_2d(np.asarray(directions, dtype=float))
    calc = LinearPotential(descriptor, theta)
    bracket = prop.bracket(calc)
    load, cluster = bracket.load, bracket.load.cluster
    free = cluster.free
    k = bracket.k_low / K_UNIT  # eV/Å^2.5, the trapped side
    t_bracket = time.perf_counter() - t0

    state = bracket.trapped.copy()
    state.calc = calc
    H = free_hessian(state, free)
    eigenvalues = np.linalg.eigvalsh(H)
    bond = critical_bond(cluster, bracket.trapped, bracket.moved, prop.bound)
    grad_s = _stretch_gradient(cluster, state, bond, free)
    u = np.linalg.solve(H, grad_s)

    # ds/dq for the boundary parameters: the free atoms are parametrised as loaded positions plus
    # their relaxation R, so q moves them explicitly (∇s·∂X/∂q) and through R (u·∂F/∂q at fixed R)
    relaxation = load.relaxation(state, k)
    q0 = {"K": k, "a0": load.a0, "C11": load.elastic[0], "C12": load.elastic[1], "C44": load.elastic[2]}
    boundary = {}
    for name, value in q0.items():
        h = _BOUNDARY_STEP * abs(value)
        forces, positions = [], []
        for sign in (1.0, -1.0):
            q = q0 | {name: value + sign * h}
            atoms = load.configuration(relaxation, q["K"], q["a0"], (q["C11"], q["C12"], q["C44"]))
            forces.append(_free_forces(atoms, calc, free))
            positions.append(atoms.positions[free].ravel())
        boundary[name] = float((grad_s @ (positions[0] - positions[1]) + u @ (forces[0] - forces[1])) / (2 * h))
    if prop.lattice_constant is not None:
        boundary["a0"] = 0.0  # every parameter vector uses the same cell
    rows = descriptor.rows(state)
    d_theta = u @ rows.forces[free].reshape(-1, rows.forces.shape[-1])  # (P,)
    t_fold = time.perf_counter() - t0 - t_bracket

    field = FieldParameters(symbol=prop.symbol, structure=prop.structure, lattice_constant=prop.lattice_constant,
                            elastic=dict(prop.elastic))
    h = _THETA_STEP / float(np.median(np.linalg.norm(directions, axis=1)))
    r = directions.shape[0]
    probes = np.concatenate([theta + h * directions, theta - h * directions])
    values, errors = evaluate_members(field, descriptor, probes, list(range(2 * r)), executor, progress=progress,
                                      description=f"a0 and C_ij for {prop.name}")
    if errors:
        raise RuntimeError(f"{prop.name}: a0/C_ij at a probe point failed: {errors[min(errors)]}")
    dc = np.array([(np.asarray(values[j]) - np.asarray(values[r + j])) / (2 * h) for j in range(r)])  # (r, 4)
    d_boundary = np.array([boundary[c] for c in ("a0", "C11", "C12", "C44")])
    slopes = -(directions @ d_theta + dc @ d_boundary) / boundary["K"] * K_UNIT
    info = {
        "resolution": abs(bracket.k_high - bracket.k_low),
        "k_griffith": bracket.k_griffith,
        "jump": bracket.jump,
        "critical_bond": bond,
        "softest_eigenvalue": float(eigenvalues[0]),
        "boundary_derivatives": boundary,
        "theta_step": h,
        "time_bracket": t_bracket,
        "time_expansion": t_fold,
        "time_field_parameters": time.perf_counter() - t0 - t_bracket - t_fold,
        "path": bracket.path,
    }
    return float(bracket.value), slopes, info
