"""Griffith fracture toughness of cubic-metal cleavage systems from C_ij and the surface energy.

``K_Ic = k1g(γ)`` of :class:`matscipy.fracture_mechanics.crack.CubicCrystalCrack`: the mode-I
stress intensity at which the elastic energy release rate of a straight crack in the anisotropic
crystal equals ``2γ`` (plane strain). Both ingredients are evaluated with the same calculator, by
the properties of this package: C11, C12, C44 as :func:`~.bulk.cubic_elastic_constants` and γ as
:class:`~.surfaces.SurfaceEnergy` of the crack plane. K_Ic is a smooth function of state
properties, not a linear combination of relaxed energies, so it has no ``states()``.

For W (C11/C12/C44 ≈ 520/200/145 GPa, γ(100) ≈ 4 J/m² in PBE) K_Ic ≈ 2 MPa·m^1/2; the teacher's
surface energies are ~25 % below PBE, so its K_Ic is ~13 % lower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator

from ..base import Property
from ..bulk import cubic_elastic_constants
from ..crystal import CUBIC, Material, check_structure, relaxed_lattice
from ..surfaces import EV_PER_A2, SurfaceEnergy, _miller

__all__ = ["CLEAVAGE_BY_STRUCTURE", "CLEAVAGE_SYSTEMS", "K_UNIT", "GriffithToughness", "griffith_k1c"]

#: crack plane -> crack front of the default cleavage systems: (100)[010] and (110)[001]
CLEAVAGE_SYSTEMS = {(1, 0, 0): (0, 1, 0), (1, 1, 0): (0, 0, 1)}
#: the default cleavage systems per cubic structure: bcc (100)[010], (110)[001]; fcc (100)[010], (111)[1-10]
CLEAVAGE_BY_STRUCTURE = {"bcc": CLEAVAGE_SYSTEMS, "fcc": {(1, 0, 0): (0, 1, 0), (1, 1, 1): (1, -1, 0)}}

#: (eV/Å^3)·Å^1/2 -> MPa·m^1/2
K_UNIT = 1e3 / units.GPa * 1e-5


def griffith_k1c(
    c11: float,
    c12: float,
    c44: float,
    surface_energy: float,
    crack_surface=(1, 0, 0),
    crack_front=(0, 1, 0),
    stress_state: str = "plane strain",
) -> float:
    """Griffith K_Ic (MPa·m^1/2) of a cubic crystal.

    Parameters
    ----------
    c11, c12, c44
        Cubic elastic constants (GPa).
    surface_energy
        Energy of the crack plane (J/m²).
    crack_surface, crack_front
        Crack plane normal and crack front direction (cubic axes, perpendicular).
    stress_state
        ``"plane strain"`` or ``"plane stress"`` (matscipy's constants).
    """
    from matscipy.fracture_mechanics.crack import CubicCrystalCrack

    if abs(np.dot(crack_surface, crack_front)) > 1e-12:
        raise ValueError(f"crack front {crack_front} is not in the crack plane {crack_surface}")
    crack = CubicCrystalCrack(
        list(crack_surface),
        list(crack_front),
        c11 * units.GPa,
        c12 * units.GPa,
        c44 * units.GPa,
        stress_state=stress_state,
    )
    return float(crack.k1g(surface_energy / EV_PER_A2) * K_UNIT)


@dataclass
class GriffithToughness(Material, Property):
    """Griffith critical stress intensity K_Ic (MPa·m^1/2) of a cleavage system.

    Evaluates C11, C12, C44 and the relaxed surface energy of the crack plane with the same
    calculator, both at ``lattice_constant``.

    Parameters
    ----------
    crack_surface
        Crack plane, e.g. ``(1, 0, 0)``.
    crack_front
        Crack front; None: the default of :data:`CLEAVAGE_SYSTEMS` (see :attr:`front`).
    lattice_constant
        Cell of both ingredients (Å); ``None`` (default): the calculator's own relaxed a0, so the
        crystal is stress-free (the teacher's own a0 is TUNGSTEN_A0 to 5e-5 Å).
    layers
        Atomic planes of the slab (default: :data:`~.surfaces.LAYERS`).
    elastic
        Keyword arguments for :func:`~.bulk.cubic_elastic_constants` (``delta``, ``n_steps``, …).
    stress_state
        ``"plane strain"`` (default) or ``"plane stress"``.
    """

    crack_surface: tuple[int, int, int] = (1, 0, 0)
    crack_front: tuple[int, int, int] | None = None
    lattice_constant: float | None = None
    layers: int | None = None
    elastic: dict = field(default_factory=dict)
    stress_state: str = "plane strain"

    unit: ClassVar[str] = "MPa m^1/2"

    def __post_init__(self):
        self.crack_surface = _miller(self.crack_surface)  # idempotent normalisation
        _ = self.front  # validates that a default exists

    @property
    def front(self) -> tuple[int, int, int]:
        """The crack front: ``crack_front``, else the default of :data:`CLEAVAGE_SYSTEMS`."""
        if self.crack_front is not None:
            return tuple(int(i) for i in self.crack_front)
        systems = CLEAVAGE_BY_STRUCTURE.get(self.crystal, {})
        if self.crack_surface not in systems:
            raise ValueError(f"no default crack front for {self.crystal} {self.crack_surface}; pass crack_front=")
        return systems[self.crack_surface]

    def _default_name(self) -> str:
        return "K_Ic_" + "".join(str(i) for i in self.crack_surface)

    def ingredients(self, calc: Calculator) -> dict[str, float]:
        """C11, C12, C44 (GPa), ``gamma`` (J/m²) and ``a0`` (Å) used for K_Ic."""
        check_structure(self.crystal, CUBIC, self.name)
        a0 = (relaxed_lattice(calc, self.symbol, self.crystal)[0] if self.lattice_constant is None
              else float(self.lattice_constant))
        out = cubic_elastic_constants(calc, a0, **self.elastic, symbol=self.symbol, structure=self.crystal)
        out["gamma"] = SurfaceEnergy(self.crack_surface, layers=self.layers, lattice_constant=a0, symbol=self.symbol,
                                     structure=self.crystal).evaluate(calc)
        out["a0"] = a0
        return out

    def evaluate(self, calc: Calculator) -> float:
        c = self.ingredients(calc)
        return griffith_k1c(
            c["C11"], c["C12"], c["C44"], c["gamma"], self.crack_surface, self.front, self.stress_state
        )

