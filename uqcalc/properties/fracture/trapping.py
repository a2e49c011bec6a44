"""Lattice trapping of a cleavage crack: the stress intensities K+ (advance) and K− (heal).

An atomistic crack in a lattice does not run at the Griffith K_G: its tip sits in a lattice
trap and advances by one bond column only at K+ > K_G, and recedes only at K− < K_G (Thomson,
Hsieh & Rana, J. Appl. Phys. 42, 3154 (1971); Sinclair, Phil. Mag. 31, 647 (1975)). The range
[K−, K+] depends on the potential's bond breaking, not only on its γ and C_ij — the part of
fracture that a Griffith estimate cannot see.

Protocol (quasi-static loading of a clamped cluster, :mod:`.cluster`)
---------------------------------------------------------------------
1. The calculator's own a0 (or the fixed ``lattice_constant``), C11, C12, C44 and γ of the crack
   plane give its K_G (:class:`~.griffith.GriffithToughness`'s ingredients) and the anisotropic
   near-tip field (matscipy's ``CubicCrystalCrack``, plane strain).
2. The cluster is loaded with the field at ``k_start · K_G`` and relaxed (FIRE, clamped shell
   fixed): the trapped starting state; its tip column is c0 (the furthest crossing bond
   stretched beyond ``open_ratio``).
3. K is stepped by ``k_step · K_G`` (up for ``bound="advance"``, down for ``"heal"``); at each
   step every atom is displaced by the field increment — the clamped shell exactly, the free
   atoms as a first guess — and the free atoms are relaxed from the previous state. The first
   step at which the tip column leaves c0 brackets the bound, which is bisected from the last
   trapped state to ``k_tol · K_G``.
4. Confirmation: the last trapped state is relaxed to ``fmax_confirm`` by a line-search BFGS
   (which never goes uphill); if its tip leaves the trap, the path's earlier trapped states are
   tried in turn. From the last one that holds, the bisection is finished with such
   relaxations, and the moved state is relaxed from the final trapped one.

The value is the bracket's midpoint in MPa·m^1/2: the edge of the trapped branch that starts at
K_G, with a fixed boundary, a straight front (one period along it) and the cluster size as its
approximations (convergence in ``radius``: docs/fracture.md, ~1/R). :attr:`TrappingBracket.jump`
says what kind of edge it is: where the branch ends in an instability the free atoms jump by
~0.5 Å (the W teacher's (100)[010] crack: the tip bond snaps from 1.23 to 1.46 of its length);
where the next bond opens continuously the jump vanishes with ``k_tol`` and the bound is merely
where that bond passes ``open_ratio`` (the teacher's (110)[1-10] crack, at every radius tried).
``path`` records the largest jump of every relaxation, so an instability that is not a bond
breaking (a shear of the tip, as the teacher's (100) tip shows at 1.23 K_G) is visible too.

Fixed boundary rather than matscipy's flexible-boundary ``SinclairCrack``: the clamped cluster
needs only forces and a minimiser, its tip is read off bonds, and its error is the one the
convergence table measures (the field stays centred where it was put while the tip sits a
column or two away, an O(offset/R) error). The flexible boundary removes that error by
solving for the tip position α, but following a trapped branch then needs a continuation in
(α, K) (matscipy's ``arc_length_continuation``); that is not implemented here.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.optimize import FIRE, BFGSLineSearch

from ..base import Property, relax
from ..crystal import CUBIC, Material, cached_lattice, check_structure
from ..surfaces import EV_PER_A2
from .cluster import CrackCluster
from .griffith import K_UNIT, GriffithToughness

__all__ = ["BOUNDS", "TRAPPING_SYSTEMS", "CrackLoad", "LatticeTrapping", "TrappingBracket", "TrappingError", "cubic_crack",
           "parse_system"]

BOUNDS = ("advance", "heal")
# relaxations per bracket before giving up (a typical bracket takes 10-20)
_MAX_RELAXATIONS = 200
#: default cleavage systems for lattice trapping per cubic structure
TRAPPING_SYSTEMS = {"bcc": ("(100)[010]", "(110)[1-10]"), "fcc": ("(100)[010]", "(111)[1-10]")}

_SYSTEM = re.compile(r"^\((-?\d)\s*(-?\d)\s*(-?\d)\)\s*\[(-?\d)\s*(-?\d)\s*(-?\d)\]$")


class TrappingError(RuntimeError):
    """The tip did not leave its trap within the searched range of K."""


def parse_system(system) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``"(100)[010]"`` or ``((1, 0, 0), (0, 1, 0))`` -> (crack plane, crack front)."""
    if isinstance(system, str):
        match = _SYSTEM.match(system.replace(" ", ""))
        if match is None:
            raise ValueError(f"cleavage system must read like '(100)[010]' (plane)(front), got {system!r}")
        digits = [int(d) for d in match.groups()]
        plane, front = tuple(digits[:3]), tuple(digits[3:])
    else:
        plane, front = (tuple(int(i) for i in v) for v in system)
    if len(plane) != 3 or len(front) != 3 or not any(plane) or not any(front):
        raise ValueError(f"cleavage system needs a plane and a front of three indices, got {system!r}")
    if sum(p * f for p, f in zip(plane, front)) != 0:
        raise ValueError(f"crack front {front} does not lie in the crack plane {plane} ({system!r})")
    return plane, front


def _indices(v) -> str:
    return "".join(str(i) if i >= 0 else f"-{-i}" for i in v)


@dataclass(frozen=True)
class CrackLoad:
    """A clamped cluster and the anisotropic near-tip field it is loaded with.

    Attributes
    ----------
    cluster : CrackCluster
        Built at ``a0``.
    a0 : float
        Lattice constant (Å).
    elastic : (C11, C12, C44)
        Elastic constants of the field (GPa).
    k_griffith : float
        K_G of these constants and the calculator's γ (eV/Å^2.5).
    plane, front : tuple of int
        The cleavage system.
    """

    cluster: CrackCluster
    a0: float
    elastic: tuple[float, float, float]
    k_griffith: float
    plane: tuple[int, int, int]
    front: tuple[int, int, int]

    @functools.cached_property
    def crack(self):
        """matscipy's ``CubicCrystalCrack`` of :attr:`elastic` (plane strain)."""
        return cubic_crack(self.plane, self.front, *self.elastic)

    def field(self, k: float) -> np.ndarray:
        """Displacements (n, 3) of the field at ``k`` (eV/Å^2.5)."""
        return self.cluster.field(self.crack, k)

    def configuration(self, relaxation: np.ndarray, k: float, a0: float | None = None,
                      elastic: tuple[float, float, float] | None = None) -> Atoms:
        """The cluster at ``a0`` loaded to ``k`` by the field of ``elastic``, plus ``relaxation``
        (displacements from the loaded positions, scaled with the lattice).

        The defaults are this load's own; changing them perturbs the boundary as the lattice
        constant and elastic constants of another parameter vector would.
        """
        s = 1.0 if a0 is None else float(a0) / self.a0
        crack = self.crack if elastic is None else cubic_crack(self.plane, self.front, *elastic)
        ref = self.cluster.reference
        atoms = ref.copy()
        atoms.set_cell(ref.cell * s, scale_atoms=True)
        x = atoms.positions
        ux, uy = crack.displacements(x[:, 0], x[:, 1], s * self.cluster.centre[0], s * self.cluster.centre[1], k)
        atoms.positions = x + np.column_stack([ux, uy, np.zeros_like(ux)]) + s * relaxation
        return atoms

    def relaxation(self, state: Atoms, k: float) -> np.ndarray:
        """Displacements of ``state`` from the cluster loaded to ``k`` (zero on the clamped shell)."""
        return state.positions - self.cluster.reference.positions - self.field(k)


def cubic_crack(plane, front, c11: float, c12: float, c44: float):
    """matscipy's ``CubicCrystalCrack`` (plane strain) of elastic constants in GPa."""
    from ase import units
    from matscipy.fracture_mechanics.crack import CubicCrystalCrack

    return CubicCrystalCrack(list(plane), list(front), c11 * units.GPa, c12 * units.GPa, c44 * units.GPa)


@dataclass
class TrappingBracket:
    """The load path that located one trapping bound (stress intensities in MPa·m^1/2).

    Attributes
    ----------
    bound : {"advance", "heal"}
    k_griffith : float
        K_G of the calculator's C_ij and γ.
    k_low, k_high : float
        The final bracket: ``k_low`` is always the trapped end (for ``"advance"`` the largest K
        still trapped, for ``"heal"`` the smallest), ``k_high`` the end where the tip had moved.
    start_column : int
        Tip column of the relaxed starting state (:meth:`.CrackCluster.tip_column`).
    path : list of (K, tip column, jump)
        Every relaxation in order: the steps, then the bisection; the jump is the largest
        displacement (Å) of a free atom from where the field increment put it.
    wall_time : float
        Seconds.
    trapped : Atoms
        The relaxed state at ``k_low``: the last one still trapped, the nearest to the bound.
    moved : Atoms
        The relaxed state at ``k_high``, whose tip left the trap.
    load : CrackLoad
        The cluster and the field it was loaded with.
    """

    bound: str
    k_griffith: float
    k_low: float
    k_high: float
    start_column: int
    path: list[tuple[float, int, float]]
    wall_time: float
    trapped: Atoms | None = field(default=None, repr=False)
    moved: Atoms | None = field(default=None, repr=False)
    load: CrackLoad | None = field(default=None, repr=False)

    @property
    def jump(self) -> float:
        """Largest displacement (Å) of a free atom between the trapped and the moved state, the
        field's change between their loads removed: ~0.5 Å where the trapped branch ends in an
        instability (lattice trapping), → 0 with ``k_tol`` where the bond opens continuously."""
        if self.trapped is None or self.moved is None or self.load is None:
            return float("nan")
        expected = (self.trapped.positions + self.load.field(self.k_high / K_UNIT)
                    - self.load.field(self.k_low / K_UNIT))
        return float(np.abs(self.moved.positions - expected)[self.load.cluster.free].max())

    @property
    def value(self) -> float:
        """The bound: the bracket's midpoint."""
        return 0.5 * (self.k_low + self.k_high)


@dataclass
class LatticeTrapping(Material, Property):
    """Lattice-trapping bound K+ (``bound="advance"``) or K− (``"heal"``) in MPa·m^1/2.

    Parameters
    ----------
    system
        Cleavage system, ``"(plane)[front]"`` (e.g. ``"(100)[010]"``, ``"(110)[1-10]"``) or a
        (plane, front) pair.
    bound
        ``"advance"`` (K+, the tip moves forward) or ``"heal"`` (K−, it recedes).
    radius
        Free region of the clamped cluster (Å); the default 15 Å holds ~140 free W atoms.
    clamp
        Width of the clamped shell (Å); must exceed the calculator's cutoff (W teacher 4.7 Å).
    lattice_constant
        Cluster, elastic constants and γ at this a (Å); None: the calculator's own relaxed a0.
    layers, elastic
        Slab planes of γ and keyword arguments of the elastic constants (as
        :class:`~.griffith.GriffithToughness`).
    k_start, k_step, k_tol
        Starting load, step and bisection tolerance, in units of the calculator's K_G.
    k_range
        Loads searched (units of K_G); outside it: :class:`TrappingError`.
    open_ratio
        Stretch beyond which a crossing bond counts as broken.
    fmax, steps
        Relaxation tolerance (eV/Å) and FIRE step budget per load.
    fmax_confirm
        Tolerance (eV/Å) of the two confirmations, by a line-search BFGS that never goes uphill:
        the final trapped state relaxed this far (if it leaves its trap, the bound lies below and
        the bisection goes on there) and the moved state relaxed from it.
    """

    system: str | tuple = "(100)[010]"
    bound: str = "advance"
    radius: float = 15.0
    clamp: float = 6.0
    lattice_constant: float | None = None
    layers: int | None = None
    elastic: dict = field(default_factory=dict)
    k_start: float = 1.0
    k_step: float = 0.05
    k_tol: float = 0.005
    k_range: tuple[float, float] = (0.3, 2.5)
    open_ratio: float = 1.4
    fmax: float = 1e-3
    fmax_confirm: float = 1e-4
    steps: int = 5000

    unit: ClassVar[str] = "MPa m^1/2"
    # a member's tip can end in another trap or column: K± jumps on the scale of a box step
    smooth_in_theta: ClassVar[bool] = False

    def __post_init__(self):
        parse_system(self.system)
        if self.bound not in BOUNDS:
            raise ValueError(f"bound must be one of {BOUNDS}, got {self.bound!r}")
        if not 0 < self.k_tol < self.k_step:
            raise ValueError(f"need 0 < k_tol < k_step, got k_tol={self.k_tol}, k_step={self.k_step}")
        lo, hi = self.k_range
        if not 0 < lo < self.k_start < hi:
            raise ValueError(f"k_start={self.k_start} must lie inside k_range={self.k_range}")

    @property
    def plane(self) -> tuple[int, int, int]:
        return parse_system(self.system)[0]

    @property
    def front(self) -> tuple[int, int, int]:
        return parse_system(self.system)[1]

    def _default_name(self) -> str:
        plane, front = parse_system(self.system)
        name = f"K_{'plus' if self.bound == 'advance' else 'minus'}_{_indices(plane)}"
        defaults = [parse_system(s) for s in TRAPPING_SYSTEMS.get(self.crystal, ())]
        if (plane, front) not in defaults:
            name += f"_{_indices(front)}"
        return name

    # -- the calculator's crack, computed once per calculator ---------------------------------

    def griffith(self) -> GriffithToughness:
        """The Griffith property of the same system, cell and settings."""
        return GriffithToughness(self.plane, crack_front=self.front, lattice_constant=self.lattice_constant,
                                 layers=self.layers, elastic=self.elastic, symbol=self.symbol,
                                 structure=self.structure)

    def ingredients(self, calc: Calculator) -> dict[str, float]:
        """a0 (Å), C11, C12, C44 (GPa) and γ (J/m²) of ``calc``, once per calculator."""
        key = ("crack", self.symbol, self.crystal, self.plane, self.front, self.lattice_constant, self.layers,
               tuple(sorted(self.elastic.items())))
        return cached_lattice(calc, key, lambda: self.griffith().ingredients(calc))

    def cluster(self, lattice_constant: float) -> CrackCluster:
        """The unloaded clamped cluster of this property at ``lattice_constant``."""
        return CrackCluster.build(self.symbol, self.crystal, lattice_constant, self.plane, self.front,
                                  radius=self.radius, clamp=self.clamp, open_ratio=self.open_ratio)

    def _relax(self, atoms: Atoms, calc: Calculator, k: float, confirm: bool = False) -> Atoms:
        # FIRE along the path: damped dynamics settles into the trap nearest the starting
        # geometry, where LBFGS's long steps can jump a shallow barrier and move the tip early.
        # Confirmations use a line-search BFGS, which never goes uphill: near the end of a trap
        # the barrier vanishes, and FIRE's inertia carried a tight relaxation over it (the
        # teacher's bound crept down 0.01 K_G that way)
        return relax(atoms, calc, "positions", self.fmax_confirm if confirm else self.fmax, self.steps,
                     name=f"{self.name} at K/K_G={k:.4f}", optimizer=BFGSLineSearch if confirm else FIRE)

    def _start(self, calc: Calculator) -> tuple[CrackLoad, Atoms, int]:
        """(load, relaxed state at k_start, its tip column), once per calculator."""
        c = self.ingredients(calc)
        elastic = (c["C11"], c["C12"], c["C44"])
        key = ("crack start", self.symbol, self.crystal, self.plane, self.front, c["a0"], elastic, self.radius,
               self.clamp, self.open_ratio, self.k_start, self.fmax)

        def compute():
            crack = cubic_crack(self.plane, self.front, *elastic)
            load = CrackLoad(self.cluster(c["a0"]), c["a0"], elastic, float(crack.k1g(c["gamma"] / EV_PER_A2)),
                             self.plane, self.front)
            state = self._relax(load.cluster.loaded(load.crack, self.k_start * load.k_griffith), calc, self.k_start)
            return load, state, load.cluster.tip_column(state)

        return cached_lattice(calc, key, compute)

    def bracket(self, calc: Calculator) -> TrappingBracket:
        """Locate the bound with ``calc`` (see the module docstring); the load path in the result."""
        check_structure(self.crystal, CUBIC, self.name)
        t0 = time.perf_counter()
        crack_load, state, c0 = self._start(calc)
        cluster, kg = crack_load.cluster, crack_load.k_griffith
        sign = 1.0 if self.bound == "advance" else -1.0
        path = [(self.k_start, c0, 0.0)]

        def step(previous: Atoms, k_from: float, k_to: float, confirm: bool = False) -> tuple[Atoms, bool]:
            if len(path) > _MAX_RELAXATIONS:
                raise TrappingError(f"{self.name}: no converged bracket after {_MAX_RELAXATIONS} relaxations "
                                    f"(last K/K_G = {k_to:.4f}); loosen k_tol or tighten fmax")
            trial = previous.copy()
            trial.positions += crack_load.field(k_to * kg) - crack_load.field(k_from * kg)
            relaxed = self._relax(trial, calc, k_to, confirm)
            column = cluster.tip_column(relaxed)
            jump = float(np.abs(relaxed.positions - trial.positions)[cluster.free].max())
            path.append((k_to, column, jump))
            return relaxed, sign * (column - c0) > 0

        def bisect(lo, trapped, hi, opened, confirm):
            while abs(hi - lo) > self.k_tol:
                mid = 0.5 * (lo + hi)
                relaxed, moved = step(trapped, lo, mid, confirm)
                if moved:
                    hi, opened = mid, relaxed
                else:
                    lo, trapped = mid, relaxed
            return lo, trapped, hi, opened

        lo, trapped = self.k_start, state
        history = [(lo, trapped)]  # the path's trapped states, in load order
        while True:
            # 1. step away from K_G and bisect, with FIRE at fmax
            k_next = lo + sign * self.k_step
            if not self.k_range[0] <= k_next <= self.k_range[1]:
                raise TrappingError(f"{self.name}: the tip stayed in column {c0} from K/K_G = {self.k_start} to "
                                    f"{lo:.3f} (k_range={self.k_range})")
            relaxed, moved = step(trapped, lo, k_next)
            if not moved:
                lo, trapped = k_next, relaxed
                history.append((lo, trapped))
                continue
            lo, trapped, hi, opened = bisect(lo, trapped, k_next, relaxed, confirm=False)
            history.append((lo, trapped))
            # 2. confirm: near the end of a trap the landscape is flat and a minimiser stopped at
            # fmax can sit on the slow slope past it. The last trapped state that stays in its
            # trap when relaxed to fmax_confirm by a minimiser that never goes uphill (walking
            # back along the path) ...
            while history:
                k, atoms = history.pop()
                polished = self._relax(atoms, calc, k, confirm=True)
                column = cluster.tip_column(polished)
                path.append((k, column, float(np.abs(polished.positions - atoms.positions)[cluster.free].max())))
                if sign * (column - c0) <= 0:
                    lo, trapped = k, polished
                    break
                hi, opened = k, polished
            else:
                raise TrappingError(f"{self.name}: the starting state at K/K_G = {self.k_start} leaves its trap "
                                    f"when relaxed to fmax={self.fmax_confirm}")
            # ... and the bisection finished from it with the same relaxations
            lo, trapped, hi, opened = bisect(lo, trapped, hi, opened, confirm=True)
            relaxed, moved = step(trapped, lo, hi, confirm=True)  # the moved state next to the trapped one
            if moved:
                opened = relaxed
                break
            lo, trapped = hi, relaxed  # the tight relaxation stays trapped where FIRE moved: go on
            history = [(lo, trapped)]
        scale = kg * K_UNIT
        return TrappingBracket(bound=self.bound, k_griffith=kg * K_UNIT, k_low=lo * scale, k_high=hi * scale,
                               start_column=c0, path=[(k * scale, c, j) for k, c, j in path],
                               wall_time=time.perf_counter() - t0, trapped=trapped, moved=opened, load=crack_load)

    def evaluate(self, calc: Calculator) -> float:
        return self.bracket(calc).value

    def parameter_gradient(self, descriptor, theta, directions, executor=None, progress: bool = False):
        """The bound at ``theta`` and its derivative along ``directions`` by implicit differentiation
        (:func:`.sensitivity.trapping_gradient`; the protocol of :class:`uqcalc.propagate.Gradient`)."""
        from .sensitivity import trapping_gradient

        return trapping_gradient(self, descriptor, theta, directions, executor=executor, progress=progress)
