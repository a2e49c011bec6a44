"""Generalized stacking faults: bcc {110} and {112} along <111>, fcc {111} along <112>.

Geometry
--------
A slab of ``layers`` atomic planes, periodic in the fault plane and separated from its periodic
image by ``vacuum`` Å along the normal. Frame: x along the slip direction [111]
(b = a√3/2), z along the plane normal, y = z × x. The in-plane cell is the primitive one
(one atom per plane; ``repeat`` enlarges it):

============  ============  ==============  ============  ==============
plane         a1 (x)        a2              stacking      plane spacing
============  ============  ==============  ============  ==============
``"110"``     a/2 [111]     a/2 [11-1]      a/2 [-111]    a/√2 = 2.25 Å
``"112"``     a/2 [111]     a [1-10]        a/2 [1-1-1]   a/√6 = 1.30 Å
============  ============  ==============  ============  ==============

(the {110} plane is (-110), the {112} plane is (11-2); a = ``lattice_constant``). The upper
half of the slab (planes ``layers//2`` and above) is rigidly displaced by ``shift·b`` along x;
every atom may then relax only along z (:class:`ase.constraints.FixedLine`), the standard
γ-surface protocol (Vitek 1968): in-plane relaxation would slide the fault back to the perfect
crystal. γ(s) = [E_fault(s) − E_perfect] / A with A the in-plane cell area; the free surfaces
are identical in both slabs and cancel.

For {110} the normal is a two-fold axis, so γ(s) = γ(1 − s) and the unstable stacking fault
energy γ_us is γ(1/2). For {112} the curve is asymmetric: shifts s < 1/2 along +[111] on the
(11-2) plane and s > 1/2 (equivalently −(1 − s)·b) are the two opposite (twinning /
antitwinning) senses, and the maximum lies off 1/2 (at s ≈ 0.45 for the teacher).

fcc {111}: the slip direction x is [11-2] with period b = a√6/2 (the in-plane primitive cell
a1 = a/2[1-10], a2 = a/2[01-1], stacking a3 = a/2[101]); the intrinsic stacking fault is
γ(1/3) (a shift by the Shockley partial a/6[11-2]) and the unstable one the maximum of γ(s)
between 0 and 1/3 (at s ≈ 1/6 by geometry).

Defaults: ``layers`` = 24 for {110} (54 Å) and 36 for {112} (47 Å), vacuum 12 Å (> twice any
cutoff here), fixed lattice constant :data:`~uqcalc.properties.base.TUNGSTEN_A0`, relaxation to
``fmax = 1e-3`` eV/Å. The fault's normal relaxation is confined to a few planes: for the
teacher, γ(b/2) changes by < 0.01 mJ/m² from 12 to 36 {110} planes and by 0.08 mJ/m² from 24
to 48 {112} planes, so the defaults are generous (kept so for DFT calculators, whose surface
relaxations reach deeper).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.constraints import FixedLine

from .base import TUNGSTEN_A0, Property, State, StateProperty, relax
from .crystal import FixedCell, Material

__all__ = [
    "EV_PER_A2_IN_J_PER_M2",
    "FAULT_PLANES",
    "GSF_PLANES",
    "GSFCurve",
    "IntrinsicStackingFaultEnergy",
    "StackingFaultEnergy",
    "UnstableStackingFaultEnergy",
    "fault_slab",
    "suite",
]

EV_PER_A2_IN_J_PER_M2 = 16.021766339999996
"""1 eV/Å² in J/m²."""

# a1 (slip direction, length b), a2 (in plane), a3 (stacking vector to the next plane),
# in units of the cubic lattice constant; (a1, a2, a3) is a right-handed primitive cell.
GSF_PLANES = {
    "110": (np.array([0.5, 0.5, 0.5]), np.array([0.5, 0.5, -0.5]), np.array([-0.5, 0.5, 0.5])),
    "112": (np.array([0.5, 0.5, 0.5]), np.array([1.0, -1.0, 0.0]), np.array([0.5, -0.5, -0.5])),
}
# per structure: (a1, a2, a3) as above and the slip vector (the period b along the slip
# direction); for bcc the slip vector is a1
FAULT_PLANES = {
    "bcc": {plane: (*cell, cell[0]) for plane, cell in GSF_PLANES.items()},
    "fcc": {"111": (np.array([0.5, -0.5, 0.0]), np.array([0.0, 0.5, -0.5]), np.array([0.5, 0.0, 0.5]),
                    np.array([0.5, 0.5, -1.0]))},
}

_DEFAULT_LAYERS = {("bcc", "110"): 24, ("bcc", "112"): 36, ("fcc", "111"): 24}
# where the maximum of γ(s) is searched (units of b): a grid, then golden section
_USF_SEARCH = {("bcc", "112"): np.arange(0.3, 0.8001, 0.05), ("fcc", "111"): np.arange(0.05, 0.3001, 0.025)}
# shift of the unstable fault's states when not located with a calculator: 1/2 for {110} by
# symmetry, the teacher's maximum for bcc {112}, the partial's mid-point for fcc {111}
_USF_STATE_SHIFT = {("bcc", "110"): 0.5, ("bcc", "112"): 0.452, ("fcc", "111"): 1.0 / 6.0}


def _check_plane(plane: str, structure: str = "bcc") -> str:
    plane = str(plane).strip("{}() ")
    planes = FAULT_PLANES.get(structure)
    if planes is None:
        raise ValueError(f"stacking faults are defined for {tuple(FAULT_PLANES)}, not {structure!r}")
    if plane not in planes:
        raise ValueError(f"{structure} plane must be one of {tuple(planes)}, got {plane!r}")
    return plane


def fault_slab(
    plane: str,
    shift: float = 0.0,
    layers: int | None = None,
    repeat: tuple[int, int] = (1, 1),
    vacuum: float = 12.0,
    lattice_constant: float = TUNGSTEN_A0,
    symbol: str = "W",
    structure: str = "bcc",
) -> Atoms:
    """Slab with its upper half displaced by ``shift``·b along the slip direction (module docstring).

    Every atom carries a :class:`~ase.constraints.FixedLine` along z (the plane normal).
    ``atoms.info`` records ``plane``, ``shift``, ``area`` (Å²) and ``fault_z`` (Å).

    Parameters
    ----------
    plane : {"110", "112"} (bcc) or "111" (fcc)
        Fault plane family.
    shift : float
        Displacement of the upper half in units of b (bcc a√3/2 along [111], fcc a√6/2 along [11-2]).
    layers : int, optional
        Atomic planes (even, default 24 for bcc {110}, 36 for {112}, 24 for fcc {111}).
    repeat : (int, int)
        In-plane repetitions of the primitive cell along a1 and a2.
    vacuum : float
        Gap (Å) between the slab and its periodic image along z.
    lattice_constant : float
        Cubic lattice constant (Å).
    symbol, structure : str
        Element and structure (bcc or fcc).
    """
    plane = _check_plane(plane, structure)
    layers = _DEFAULT_LAYERS[(structure, plane)] if layers is None else int(layers)
    if layers < 4 or layers % 2:
        raise ValueError(f"layers must be an even number >= 4, got {layers}")
    n1, n2 = (int(r) for r in repeat)
    if n1 < 1 or n2 < 1:
        raise ValueError(f"repeat must be positive integers, got {repeat}")
    if not vacuum > 0:
        raise ValueError(f"vacuum must be positive, got {vacuum}")
    a1, a2, a3, slip = (lattice_constant * v for v in FAULT_PLANES[structure][plane])
    x = slip / np.linalg.norm(slip)
    z = np.cross(a1, a2)
    z /= np.linalg.norm(z)
    rot = np.array([x, np.cross(z, x), z])  # rows: lab axes in cubic coordinates
    spacing = float(a3 @ z)

    grid = np.array([(i, j, k) for k in range(layers) for i in range(n1) for j in range(n2)], dtype=float)
    positions = (grid[:, :1] * a1 + grid[:, 1:2] * a2 + grid[:, 2:] * a3) @ rot.T
    upper = grid[:, 2] >= layers // 2
    b = np.linalg.norm(slip)
    positions[upper, 0] += float(shift) * b  # x is the slip direction
    thickness = (layers - 1) * spacing
    cell = np.array([n1 * (rot @ a1), n2 * (rot @ a2), [0.0, 0.0, thickness + vacuum]])
    cell[np.abs(cell) < 1e-12] = 0.0
    positions[:, 2] += 0.5 * vacuum
    atoms = Atoms([symbol] * len(positions), positions=positions, cell=cell, pbc=True)
    atoms.wrap()
    atoms.set_constraint(FixedLine(range(len(atoms)), [0.0, 0.0, 1.0]))
    atoms.info.update(
        plane=plane,
        shift=float(shift),
        area=float(np.linalg.norm(np.cross(cell[0], cell[1]))),
        fault_z=float(0.5 * vacuum + (layers // 2 - 0.5) * spacing),
    )
    return atoms


@dataclass
class _FaultSettings(FixedCell):
    """Slab and relaxation settings shared by the fault properties (see the module docstring).

    ``plane`` None: the structure's first fault plane (bcc {110}, fcc {111}).
    """

    plane: str | None = None
    layers: int | None = None
    repeat: tuple[int, int] = (1, 1)
    vacuum: float = 12.0
    lattice_constant: float | None = None
    relaxed: bool = True

    @property
    def fault_plane(self) -> str:
        """The plane in use (``plane``, else the structure's first)."""
        crystal = self.crystal
        if crystal not in FAULT_PLANES:
            raise ValueError(f"stacking faults are defined for {tuple(FAULT_PLANES)}, not {crystal!r}")
        return _check_plane(self.plane, crystal) if self.plane is not None else next(iter(FAULT_PLANES[crystal]))

    def _slab(self, shift: float) -> Atoms:
        a, _ = self.cell_lattice()
        return fault_slab(self.fault_plane, shift, self.layers, self.repeat, self.vacuum, a, self.symbol, self.crystal)


@dataclass
class StackingFaultEnergy(_FaultSettings, StateProperty):
    """γ(s): energy per area (J/m²) of the fault with the upper half shifted by ``shift``·b.

    States: ``fault`` (coefficient +1/A) and ``perfect`` (−1/A), both relaxing positions along
    the fault normal only (``relax="positions"``, the constraint rides on the atoms), or not at
    all with ``relaxed=False``; ``scale`` converts eV/Å² to J/m².

    Parameters
    ----------
    plane : {"110", "112"} (bcc) or "111" (fcc); default the structure's first
    shift : float, default 0.5
        Shift in units of b = a√3/2 (0 and 1 give the perfect crystal).
    layers, repeat, vacuum, lattice_constant
        Slab geometry, see :func:`fault_slab`.
    relaxed : bool, default True
        Relax atoms along the normal.
    fmax, steps : float, int
        Relaxation tolerance (eV/Å) and step budget.
    """

    shift: float = 0.5
    scale: float = EV_PER_A2_IN_J_PER_M2

    unit: ClassVar[str] = "J/m^2"

    def __post_init__(self) -> None:
        if self.plane is not None:
            self.plane = str(self.plane).strip("{}() ")  # idempotent normalisation
        _ = self.fault_plane  # validates plane and structure
        if self.lattice_constant is not None:
            self._slab(0.0)  # validates the geometry

    def _default_name(self) -> str:
        return f"stacking_fault_energy_{self.fault_plane}_{self.shift:g}"

    def states(self) -> list[State]:
        fault, perfect = self._slab(self.shift), self._slab(0.0)
        area = fault.info["area"]
        mode = "positions" if self.relaxed else "none"
        return [State("fault", fault, mode, 1.0 / area), State("perfect", perfect, mode, -1.0 / area)]


@dataclass
class UnstableStackingFaultEnergy(StackingFaultEnergy):
    """Unstable stacking fault energy γ_us = max_s γ(s) along the slip direction (J/m²).

    bcc {110}: γ_us = γ(1/2) exactly (two-fold symmetry), a plain two-state property.
    bcc {112} and fcc {111}: with ``shift=None`` (default) :meth:`evaluate` locates the maximum
    with ``calc`` (a scan over 0.3–0.8·b in steps of 0.05 for bcc {112}, over 0.05–0.3·b in
    steps of 0.025 for fcc {111}, then a golden-section search to ``shift_tol``) and reports
    γ there. :meth:`states` cannot depend on a calculator, so it uses ``shift`` if given, else
    :data:`TEACHER_SHIFT_112` (the W teacher's maximum) for bcc {112} and 1/6 for fcc {111}; since
    dγ/ds = 0 at the maximum, states at a fixed nearby shift give the same value to first
    order in the shift error and the same first-order derivative with respect to the
    parameters (envelope theorem), which is what implicit and linear propagation use.
    """

    shift: float | None = None
    shift_tol: float = 0.002

    TEACHER_SHIFT_112 = _USF_STATE_SHIFT[("bcc", "112")]  # located with the teacher (golden section to 0.002 b)

    def _default_name(self) -> str:
        return f"unstable_stacking_fault_energy_{self.fault_plane}"

    @property
    def state_shift(self) -> float:
        """Shift (units of b) used by :meth:`states`."""
        if self.shift is not None:
            return float(self.shift)
        return _USF_STATE_SHIFT[(self.crystal, self.fault_plane)]

    def states(self) -> list[State]:
        return StackingFaultEnergy(
            plane=self.fault_plane, shift=self.state_shift, layers=self.layers, repeat=self.repeat,
            vacuum=self.vacuum, lattice_constant=self.lattice_constant, relaxed=self.relaxed,
            symbol=self.symbol, structure=self.structure, covera=self.covera,
        ).states()

    def _gamma(self, calc: Calculator, shift: float, perfect_energy: float, area: float) -> float:
        mode = "positions" if self.relaxed else "none"
        fault = relax(self._slab(shift), calc, mode, self.fmax, self.steps, name=f"{self.name}/s={shift:.4f}")
        return self.scale * (fault.get_potential_energy() - perfect_energy) / area

    def locate(self, calc: Calculator) -> tuple[float, float]:
        """(shift, γ) at the maximum of γ(s) for ``calc`` (units of b, J/m²)."""
        perfect = self._slab(0.0)
        mode = "positions" if self.relaxed else "none"
        e0 = relax(perfect, calc, mode, self.fmax, self.steps, name=f"{self.name}/perfect").get_potential_energy()
        area = perfect.info["area"]

        def gamma(s: float) -> float:
            return self._gamma(calc, s, e0, area)

        grid = _USF_SEARCH[(self.crystal, self.fault_plane)]
        values = [gamma(s) for s in grid]
        i = int(np.clip(np.argmax(values), 1, len(grid) - 2))
        lo, hi = grid[i - 1], grid[i + 1]
        # golden-section search: γ(s) is smooth and unimodal around its maximum
        ratio = (np.sqrt(5.0) - 1.0) / 2.0
        c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        gc, gd = gamma(c), gamma(d)
        while hi - lo > self.shift_tol:
            if gc > gd:
                hi, d, gd = d, c, gc
                c = hi - ratio * (hi - lo)
                gc = gamma(c)
            else:
                lo, c, gc = c, d, gd
                d = lo + ratio * (hi - lo)
                gd = gamma(d)
        return (float(c), gc) if gc > gd else (float(d), gd)

    @property
    def located(self) -> bool:
        """Whether :meth:`evaluate` searches the maximum (no ``shift`` and no symmetry fixing it)."""
        return self.shift is None and (self.crystal, self.fault_plane) in _USF_SEARCH

    def evaluate(self, calc: Calculator) -> float:
        if self.lattice_constant is None:
            return self.at_own_lattice(calc).evaluate(calc)
        if not self.located:
            return super().evaluate(calc)
        return self.locate(calc)[1]


@dataclass
class GSFCurve(_FaultSettings, Property):
    """The generalized stacking fault curve γ(s) along [111] (J/m², array over ``shifts``).

    The perfect slab is relaxed once; each shift is one relaxation of the faulted slab.
    Integer shifts are the perfect crystal (γ = 0 exactly by lattice periodicity) and are not
    computed. :meth:`points` gives one :class:`StackingFaultEnergy` per shift, the form in
    which propagation can treat the curve pointwise.

    Parameters
    ----------
    plane : {"110", "112"} (bcc) or "111" (fcc); default the structure's first
    shifts : sequence of float, default 0, 0.05, ..., 1
        Shifts in units of b.
    layers, repeat, vacuum, lattice_constant, relaxed
        As for :class:`StackingFaultEnergy`.
    fmax, steps : float, int
        Relaxation tolerance (eV/Å) and step budget.
    """

    shifts: tuple[float, ...] = field(default_factory=lambda: tuple(np.round(np.linspace(0.0, 1.0, 21), 10)))
    fmax: float = 1e-3
    steps: int = 2000

    unit: ClassVar[str] = "J/m^2"

    def __post_init__(self) -> None:
        if self.plane is not None:
            self.plane = str(self.plane).strip("{}() ")
        _ = self.fault_plane  # validates plane and structure
        self.shifts = tuple(float(s) for s in np.atleast_1d(self.shifts))

    def _default_name(self) -> str:
        return f"gsf_{self.fault_plane}"

    def points(self) -> list[StackingFaultEnergy]:
        """One scalar property per shift."""
        return [
            StackingFaultEnergy(
                plane=self.fault_plane, shift=s, layers=self.layers, repeat=self.repeat, vacuum=self.vacuum,
                lattice_constant=self.lattice_constant, relaxed=self.relaxed, fmax=self.fmax, steps=self.steps,
                symbol=self.symbol, structure=self.structure, covera=self.covera,
            )
            for s in self.shifts
        ]

    def evaluate(self, calc: Calculator) -> np.ndarray:
        if self.lattice_constant is None:
            return self.at_own_lattice(calc).evaluate(calc)
        mode = "positions" if self.relaxed else "none"
        perfect = relax(self._slab(0.0), calc, mode, self.fmax, self.steps, name=f"{self.name}/perfect")
        e0, area = perfect.get_potential_energy(), perfect.info["area"]
        values = []
        for s in self.shifts:
            if np.isclose(s, np.round(s), atol=1e-12):
                values.append(0.0)
                continue
            fault = relax(self._slab(s), calc, mode, self.fmax, self.steps, name=f"{self.name}/s={s:g}")
            values.append(EV_PER_A2_IN_J_PER_M2 * (fault.get_potential_energy() - e0) / area)
        return np.array(values)


@dataclass
class IntrinsicStackingFaultEnergy(StackingFaultEnergy):
    """Intrinsic stacking fault energy of fcc {111} (J/m²): γ at the Shockley partial, s = 1/3."""

    plane: str | None = "111"
    shift: float = 1.0 / 3.0

    def _default_name(self) -> str:
        return f"intrinsic_stacking_fault_energy_{self.fault_plane}"


def suite(quick: bool = False, lattice_constant: float | None = None, **material) -> list[StateProperty]:
    """The stacking-fault entries of a suite (thin slabs when ``quick``): bcc γ_us on {110} and
    {112}; fcc γ_isf and γ_us on {111}; none for hcp."""
    crystal = Material(**material).crystal
    kw = {"lattice_constant": lattice_constant, **material}
    if crystal == "bcc":
        return [UnstableStackingFaultEnergy(plane=plane, **({"layers": layers} if quick else {}), **kw)
                for plane, layers in (("110", 12), ("112", 18))]
    if crystal == "fcc":
        thin = {"layers": 12} if quick else {}
        return [IntrinsicStackingFaultEnergy(**thin, **kw), UnstableStackingFaultEnergy(plane="111", **thin, **kw)]
    return []
