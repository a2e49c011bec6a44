"""Generalized stacking faults (γ-surfaces along <111>) on {110} and {112} planes of bcc W.

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

__all__ = [
    "EV_PER_A2_IN_J_PER_M2",
    "GSF_PLANES",
    "GSFCurve",
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

_DEFAULT_LAYERS = {"110": 24, "112": 36}


def _check_plane(plane: str) -> str:
    plane = str(plane).strip("{}() ")
    if plane not in GSF_PLANES:
        raise ValueError(f"plane must be one of {tuple(GSF_PLANES)}, got {plane!r}")
    return plane


def fault_slab(
    plane: str,
    shift: float = 0.0,
    layers: int | None = None,
    repeat: tuple[int, int] = (1, 1),
    vacuum: float = 12.0,
    lattice_constant: float = TUNGSTEN_A0,
    symbol: str = "W",
) -> Atoms:
    """Slab with its upper half displaced by ``shift``·b along [111] (geometry in the module docstring).

    Every atom carries a :class:`~ase.constraints.FixedLine` along z (the plane normal).
    ``atoms.info`` records ``plane``, ``shift``, ``area`` (Å²) and ``fault_z`` (Å).

    Parameters
    ----------
    plane : {"110", "112"}
        Fault plane family.
    shift : float
        Displacement of the upper half in units of b = a√3/2.
    layers : int, optional
        Atomic planes (even, default 24 for {110}, 36 for {112}).
    repeat : (int, int)
        In-plane repetitions of the primitive cell along a1 and a2.
    vacuum : float
        Gap (Å) between the slab and its periodic image along z.
    lattice_constant : float
        Cubic lattice constant (Å).
    """
    plane = _check_plane(plane)
    layers = _DEFAULT_LAYERS[plane] if layers is None else int(layers)
    if layers < 4 or layers % 2:
        raise ValueError(f"layers must be an even number >= 4, got {layers}")
    n1, n2 = (int(r) for r in repeat)
    if n1 < 1 or n2 < 1:
        raise ValueError(f"repeat must be positive integers, got {repeat}")
    if not vacuum > 0:
        raise ValueError(f"vacuum must be positive, got {vacuum}")
    a1, a2, a3 = (lattice_constant * v for v in GSF_PLANES[plane])
    x = a1 / np.linalg.norm(a1)
    z = np.cross(a1, a2)
    z /= np.linalg.norm(z)
    rot = np.array([x, np.cross(z, x), z])  # rows: lab axes in cubic coordinates
    spacing = float(a3 @ z)

    grid = np.array([(i, j, k) for k in range(layers) for i in range(n1) for j in range(n2)], dtype=float)
    positions = (grid[:, :1] * a1 + grid[:, 1:2] * a2 + grid[:, 2:] * a3) @ rot.T
    upper = grid[:, 2] >= layers // 2
    b = np.linalg.norm(a1)
    positions[upper, 0] += float(shift) * b
    thickness = (layers - 1) * spacing
    cell = np.array([n1 * (rot @ a1), n2 * (rot @ a2), [0.0, 0.0, thickness + vacuum]])
    cell[np.abs(cell) < 1e-12] = 0.0
    positions[:, 2] += 0.5 * vacuum
    atoms = Atoms(symbol * len(positions), positions=positions, cell=cell, pbc=True)
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
class _FaultSettings:
    """Slab and relaxation settings shared by the fault properties (see the module docstring)."""

    plane: str = "110"
    layers: int | None = None
    repeat: tuple[int, int] = (1, 1)
    vacuum: float = 12.0
    lattice_constant: float = TUNGSTEN_A0
    relaxed: bool = True

    def _slab(self, shift: float) -> Atoms:
        return fault_slab(self.plane, shift, self.layers, self.repeat, self.vacuum, self.lattice_constant)


@dataclass
class StackingFaultEnergy(_FaultSettings, StateProperty):
    """γ(s): energy per area (J/m²) of the fault with the upper half shifted by ``shift``·b.

    States: ``fault`` (coefficient +1/A) and ``perfect`` (−1/A), both relaxing positions along
    the fault normal only (``relax="positions"``, the constraint rides on the atoms), or not at
    all with ``relaxed=False``; ``scale`` converts eV/Å² to J/m².

    Parameters
    ----------
    plane : {"110", "112"}, default "110"
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
        self.plane = _check_plane(self.plane)
        self._slab(0.0)  # validates the geometry

    def _default_name(self) -> str:
        return f"stacking_fault_energy_{self.plane}_{self.shift:g}"

    def states(self) -> list[State]:
        fault, perfect = self._slab(self.shift), self._slab(0.0)
        area = fault.info["area"]
        mode = "positions" if self.relaxed else "none"
        return [State("fault", fault, mode, 1.0 / area), State("perfect", perfect, mode, -1.0 / area)]


@dataclass
class UnstableStackingFaultEnergy(StackingFaultEnergy):
    """Unstable stacking fault energy γ_us = max_s γ(s) along <111> (J/m²).

    {110}: γ_us = γ(1/2) exactly (two-fold symmetry), a plain two-state property.
    {112}: with ``shift=None`` (default) :meth:`evaluate` locates the maximum with ``calc`` (a
    0.05·b scan over 0.3–0.8·b, then a golden-section search to ``shift_tol``) and reports
    γ there. :meth:`states` cannot depend on a calculator, so for {112} it uses
    ``shift`` if given, else :data:`TEACHER_SHIFT_112`, the teacher's maximum; since
    dγ/ds = 0 at the maximum, states at a fixed nearby shift give the same value to first
    order in the shift error and the same first-order derivative with respect to the
    parameters (envelope theorem), which is what implicit and linear propagation use.
    """

    shift: float | None = None
    shift_tol: float = 0.002

    TEACHER_SHIFT_112 = 0.452  # located with the teacher (golden section to 0.002 b)

    def _default_name(self) -> str:
        return f"unstable_stacking_fault_energy_{self.plane}"

    @property
    def state_shift(self) -> float:
        """Shift (units of b) used by :meth:`states`."""
        if self.shift is not None:
            return float(self.shift)
        return 0.5 if self.plane == "110" else self.TEACHER_SHIFT_112

    def states(self) -> list[State]:
        return StackingFaultEnergy(
            plane=self.plane, shift=self.state_shift, layers=self.layers, repeat=self.repeat,
            vacuum=self.vacuum, lattice_constant=self.lattice_constant, relaxed=self.relaxed,
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

        grid = np.arange(0.3, 0.8001, 0.05)
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

    def evaluate(self, calc: Calculator) -> float:
        if self.shift is not None or self.plane == "110":
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
    plane : {"110", "112"}, default "110"
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
        self.plane = _check_plane(self.plane)
        self.shifts = tuple(float(s) for s in np.atleast_1d(self.shifts))

    def _default_name(self) -> str:
        return f"gsf_{self.plane}"

    def points(self) -> list[StackingFaultEnergy]:
        """One scalar property per shift."""
        return [
            StackingFaultEnergy(
                plane=self.plane, shift=s, layers=self.layers, repeat=self.repeat, vacuum=self.vacuum,
                lattice_constant=self.lattice_constant, relaxed=self.relaxed, fmax=self.fmax, steps=self.steps,
            )
            for s in self.shifts
        ]

    def evaluate(self, calc: Calculator) -> np.ndarray:
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


def suite(quick: bool = False) -> list[StateProperty]:
    """The stacking-fault entries of the W benchmark: γ_us on {110} and {112} (thin slabs when ``quick``)."""
    return [
        UnstableStackingFaultEnergy(plane=plane, **({"layers": layers} if quick else {}))
        for plane, layers in (("110", 12), ("112", 18))
    ]
