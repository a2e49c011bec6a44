"""Bulk properties of an elemental metal: lattice constant, cohesive energy, bulk modulus, elastic constants.

Every property takes the element (``symbol``) and its ground-state ``structure`` (bcc, fcc or
hcp; None: from ASE's reference data, :mod:`.crystal`). Cubic structures use the conventional
cube (bcc 2, fcc 4 atoms), hcp the 2-atom cell. bcc and fcc are Bravais lattices, so every atom
is an inversion centre under any homogeneous strain: the forces vanish identically and internal
relaxation is zero in *any* supercell (the teacher gives the same C_ij to 1e-11 GPa in the 2-atom
and the 128-atom cell); ``size`` exists for calculators that need it (e.g. a DFT code with a
Γ-only k-mesh). The cubic elastic constants (C11, C12, C44) exist for cubic structures only.

Defaults and what they change for the ``W_2940_2017_2`` teacher
--------------------------------------------------------------
* a0: cell relaxed to |σ| < ~1 MPa (``fmax=1e-4`` in the FrechetCellFilter's units) → 3.18046 Å.
  hcp relaxes a and c together (:func:`relaxed_lattice`).
* B: Birch–Murnaghan fit over V0 ± 2 % (11 points) → 302.3 GPa, equal to (C11 + 2 C12)/3 =
  302.3 GPa. A ±2 % scan in the *lattice constant* (±6 % in volume) picks up the pressure
  derivative and gives 302.9 GPa. hcp is scanned at its relaxed c/a (uniform scaling).
* C_ij: matscipy's stress–strain regression with strains up to ±0.2 % (``delta=1e-3``,
  5 steps) → 517.7 / 194.5 / 144.3 GPa, the small-strain limit. matscipy's own default
  (``delta=1e-2``, strains up to ±2 %) adds non-linear elasticity: 518.9 / 195.9 / 144.3 GPa.
* Elastic constants and B use the calculator's own relaxed lattice (``lattice_constant=None``,
  computed once per calculator); pass a number to evaluate them at a fixed cell (then they are
  stress–strain coefficients of a pre-stressed crystal if that cell is not at zero pressure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.eos import EquationOfState

from .base import TUNGSTEN_A0, Property, State, StateProperty
from .bulk_sensitivity import cubic_parameter_gradient
from .crystal import (
    CUBIC,
    Material,
    check_structure,
    reference_lattice,
    relaxed_lattice,
    unit_cell,
)

__all__ = [
    "BulkModulus",
    "CohesiveEnergy",
    "ElasticConstant",
    "LatticeConstant",
    "ShearModulus",
    "bcc_cell",
    "cubic_elastic_constants",
    "eos_fit",
    "relaxed_lattice",
    "relaxed_lattice_constant",
    "shear_moduli",
    "suite",
]

ELASTIC_COMPONENTS = ("C11", "C12", "C44", "C'")
SHEAR_AVERAGES = {"voigt": "G_V", "reuss": "G_R", "hill": "G_H"}


def bcc_cell(lattice_constant: float = TUNGSTEN_A0, size: int = 1, symbol: str = "W") -> Atoms:
    """Conventional bcc cube (2 atoms) repeated ``size`` times along each axis."""
    return unit_cell(symbol, "bcc", lattice_constant).repeat(size)


def relaxed_lattice_constant(
    calc: Calculator, guess: float | None = None, fmax: float = 1e-4, steps: int = 1000,
    symbol: str = "W", structure: str = "bcc",
) -> float:
    """Zero-stress lattice constant a (Å) with ``calc``; see :func:`relaxed_lattice`."""
    return relaxed_lattice(calc, symbol, structure, guess, fmax, steps)[0]


def _resolve_a0(calc: Calculator, lattice_constant: float | None, material: Material) -> tuple[float, float | None]:
    """(a, c/a) at which a property is evaluated: the calculator's own, or the given a."""
    if lattice_constant is None:
        return relaxed_lattice(calc, material.symbol, material.crystal)
    return float(lattice_constant), reference_lattice(material.symbol, material.crystal)[1]


def cubic_elastic_constants(
    calc: Calculator,
    lattice_constant: float | None = None,
    size: int = 1,
    delta: float = 1e-3,
    n_steps: int = 5,
    relax_positions: bool = True,
    fmax: float = 1e-4,
    symbol: str = "W",
    structure: str = "bcc",
) -> dict[str, float]:
    """Cubic elastic constants (GPa) by stress–strain regression (``matscipy.elasticity``).

    Parameters
    ----------
    calc
        Any ASE calculator with stress.
    lattice_constant
        Cell of the unstrained crystal (Å); ``None``: the calculator's own relaxed a0.
    size
        Repeats of the 2-atom cube (no effect for a Bravais lattice; see module notes).
    delta, n_steps
        Strain increment and number of strains per pattern: strains run from
        ``-delta (n_steps-1)/2`` to ``+delta (n_steps-1)/2`` (defaults: ±0.2 %).
    relax_positions
        Relax positions (LBFGS to ``fmax``) in each strained cell. Exactly zero for bcc,
        kept so that the same routine is right for cells with a basis.
    fmax
        Force tolerance (eV/Å) of those relaxations.
    symbol, structure
        Element and cubic structure (bcc or fcc).

    Returns
    -------
    dict
        ``C11``, ``C12``, ``C44`` and ``C'`` = (C11 − C12)/2, in GPa.
    """
    from ase.optimize import LBFGS
    from matscipy.elasticity import fit_elastic_constants

    check_structure(structure, CUBIC, "cubic elastic constants")
    a0 = relaxed_lattice(calc, symbol, structure)[0] if lattice_constant is None else float(lattice_constant)
    atoms = unit_cell(symbol, structure, a0).repeat(size)
    atoms.calc = calc
    kwargs = {"fmax": fmax} if relax_positions else {}
    C, _ = fit_elastic_constants(
        atoms,
        symmetry="cubic",
        N_steps=n_steps,
        delta=delta,
        optimizer=LBFGS if relax_positions else None,
        verbose=False,
        **kwargs,
    )
    C = C / units.GPa
    c11, c12, c44 = float(C[0, 0]), float(C[0, 1]), float(C[3, 3])
    return {"C11": c11, "C12": c12, "C44": c44, "C'": 0.5 * (c11 - c12)}


def eos_fit(volumes, energies, eos: str = "birchmurnaghan") -> tuple[float, float, float]:
    """(V0 in Å³, E0 in eV, B in GPa) of an ``ase.eos`` fit to a volume scan.

    The energies are fitted about their mean: the optimiser's relative tolerance then applies to
    the few meV that shape the curve, not to a total energy of tens of eV (fitting raw 2-atom Ta
    energies, a uniform shift of 1e-5 eV moved B by 1.6e-4 GPa; the fit is invariant to it).
    """
    energies = np.asarray(energies, dtype=float)
    shift = float(energies.mean())
    v0, e0, b = EquationOfState(list(volumes), list(energies - shift), eos=eos).fit(warn=False)
    return float(v0), float(e0 + shift), float(b / units.GPa)


def shear_moduli(c11: float, c12: float, c44: float) -> dict[str, float]:
    """Voigt, Reuss and Hill polycrystal shear moduli of a cubic crystal (same unit as C_ij)."""
    cp2 = c11 - c12
    g_v = (cp2 + 3.0 * c44) / 5.0
    g_r = 5.0 * cp2 * c44 / (4.0 * c44 + 3.0 * cp2)
    return {"G_V": g_v, "G_R": g_r, "G_H": 0.5 * (g_v + g_r)}


class _CubicGradient:
    """First-order θ-derivative of a cubic crystal's bulk property for a linear model.

    The protocol of :class:`uqcalc.propagate.Gradient`: ``parameter_gradient`` returns the
    value (the property's own ``evaluate``) and its slopes along ``directions``, from the stress
    rows of a few fixed cells (:mod:`.bulk_sensitivity`), so a POPS box's corners cost two
    evaluations instead of 2R + 1. Cubic structures only (``has_parameter_gradient``).
    """

    @property
    def has_parameter_gradient(self) -> bool:
        return self.crystal in CUBIC

    def _theta_gradient(self, calc, descriptor, theta) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def parameter_gradient(self, descriptor, theta, directions, executor=None, progress: bool = False):
        """(value at θ, slopes along the rows of ``directions``, info); ``executor`` is not needed."""
        from ..calculator import LinearPotential

        calc = LinearPotential(descriptor, np.asarray(theta, dtype=float))
        value = float(self.evaluate(calc))
        gradient, info = self._theta_gradient(calc, descriptor, theta)
        return value, np.asarray(directions, dtype=float) @ gradient, info | {"resolution": 0.0}

    def _cubic(self, calc, descriptor, theta, quantity: str, **options) -> tuple[np.ndarray, dict]:
        own = getattr(self, "lattice_constant", None) is None
        a0 = relaxed_lattice(calc, self.symbol, self.crystal)[0] if own else float(self.lattice_constant)
        return cubic_parameter_gradient(descriptor, theta, self.symbol, self.crystal, quantity, a0, own_lattice=own,
                                        **options)


@dataclass
class LatticeConstant(_CubicGradient, Material, Property):
    """Equilibrium lattice constant a (Å): the unit cell relaxed to zero stress (hcp: a and c).

    Parameters
    ----------
    guess
        Starting lattice constant (Å); None: :func:`~.crystal.reference_lattice`.
    fmax, steps
        Cell-filter tolerance and step budget (see :func:`relaxed_lattice`).
    symbol, structure
        Element and ground-state structure (keyword-only; see :mod:`.crystal`).
    """

    guess: float | None = None
    fmax: float = 1e-4
    steps: int = 1000

    unit: ClassVar[str] = "Å"

    def _default_name(self) -> str:
        return "a0"

    def evaluate(self, calc: Calculator) -> float:
        return relaxed_lattice(calc, self.symbol, self.crystal, self.guess, self.fmax, self.steps)[0]

    def _theta_gradient(self, calc, descriptor, theta):
        a0 = self.evaluate(calc)
        return cubic_parameter_gradient(descriptor, theta, self.symbol, self.crystal, "a0", a0)


@dataclass
class CohesiveEnergy(Material, StateProperty):
    """Cohesive energy per atom (eV): ``E_atom − E_bulk/N`` at the relaxed ground-state minimum.

    A state property: the unit cell with its cell relaxed (coefficient −1/N) and, if
    ``isolated_atom``, one atom in a ``box``-sized cube (not relaxed, coefficient +1).

    By default the isolated-atom energy is taken as the calculator's energy zero, i.e.
    ``E_coh = −E_bcc/N``. That is what a fitted potential's energies are referenced to; its
    free atom lies far outside any bulk training set and is an extrapolation. For the teacher
    this gives 11.028 eV; the teacher's own isolated atom is at −8.578 eV (its SNAP
    ``bzeroflag`` is 0, so β0 + β·B(free atom) ≠ 0), which would give 2.45 eV: neither is the
    experimental 8.90 eV, because the teacher's zero is the VASP reference of its training set
    shifted by a constant. Use ``isolated_atom=True`` with calculators whose free atom is
    meaningful (a spin-polarized DFT atom).

    Parameters
    ----------
    lattice_constant
        Starting lattice constant (Å; the cell is relaxed); None: the reference value.
    isolated_atom
        Add the isolated-atom state.
    box
        Edge of the cubic box of the isolated atom (Å).
    symbol, structure
        Element and ground-state structure (keyword-only; see :mod:`.crystal`).
    """

    lattice_constant: float | None = None
    isolated_atom: bool = False
    box: float = 20.0

    unit: ClassVar[str] = "eV/atom"

    def _default_name(self) -> str:
        return "E_coh"

    def states(self) -> list[State]:
        a_ref, covera = reference_lattice(self.symbol, self.crystal)
        a = a_ref if self.lattice_constant is None else self.lattice_constant
        cell = unit_cell(self.symbol, self.crystal, a, covera)
        states = [State(self.crystal, cell, relax="cell", coefficient=-1.0 / len(cell))]
        if self.isolated_atom:
            atom = Atoms(self.symbol, positions=[[0.5 * self.box] * 3], cell=[self.box] * 3, pbc=True)
            states.append(State("atom", atom, relax="none", coefficient=1.0))
        return states


@dataclass
class BulkModulus(_CubicGradient, Material, Property):
    """Bulk modulus (GPa) from an equation-of-state fit (``ase.eos``) to a volume scan.

    Parameters
    ----------
    lattice_constant
        Centre of the scan (Å); ``None``: the calculator's own relaxed a0. The fitted B is
        the one at the fit's own minimum either way, as long as the minimum is inside the scan.
    volume_range
        Half-width of the scan as a fraction of the centre volume (default ±2 %).
    n_points
        Volumes in the scan (equally spaced).
    eos
        ``ase.eos`` equation of state.
    size
        Repeats of the unit cell.
    symbol, structure
        Element and ground-state structure (keyword-only); hcp is scanned at its c/a.
    """

    lattice_constant: float | None = None
    volume_range: float = 0.02
    n_points: int = 11
    eos: str = "birchmurnaghan"
    size: int = 1

    unit: ClassVar[str] = "GPa"

    def _default_name(self) -> str:
        return "B"

    def evaluate(self, calc: Calculator) -> float:
        a0, covera = _resolve_a0(calc, self.lattice_constant, self)
        volumes, energies = [], []
        for x in np.linspace(-self.volume_range, self.volume_range, self.n_points):
            atoms = unit_cell(self.symbol, self.crystal, a0 * (1.0 + x) ** (1.0 / 3.0), covera).repeat(self.size)
            atoms.calc = calc
            volumes.append(atoms.get_volume())
            energies.append(atoms.get_potential_energy())
        v0, _, b = eos_fit(volumes, energies, self.eos)
        if not min(volumes) <= v0 <= max(volumes):
            raise ValueError(f"{self.name}: EOS minimum {v0:.3f} Å^3 outside the scanned volumes")
        return b

    def _theta_gradient(self, calc, descriptor, theta):
        return self._cubic(calc, descriptor, theta, "B", eos={"volume_range": self.volume_range,
                                                             "n_points": self.n_points, "eos": self.eos})


@dataclass(kw_only=True)
class _CubicElastic(_CubicGradient, Material, Property):
    """Shared settings of the properties derived from the cubic C_ij (keyword-only; bcc, fcc)."""

    lattice_constant: float | None = None
    size: int = 1
    delta: float = 1e-3
    n_steps: int = 5
    relax_positions: bool = True

    unit: ClassVar[str] = "GPa"

    def constants(self, calc: Calculator) -> dict[str, float]:
        """All cubic constants with this object's settings (GPa)."""
        return cubic_elastic_constants(
            calc, self.lattice_constant, self.size, self.delta, self.n_steps, self.relax_positions,
            symbol=self.symbol, structure=self.crystal,
        )


@dataclass
class ElasticConstant(_CubicElastic):
    """One cubic elastic constant (GPa): ``"C11"``, ``"C12"``, ``"C44"`` or ``"C'"``.

    Keyword parameters ``lattice_constant``, ``size``, ``delta``, ``n_steps`` and
    ``relax_positions`` are those of :func:`cubic_elastic_constants`; the name is the
    component.
    """

    component: str = "C11"

    def __post_init__(self):
        if self.component not in ELASTIC_COMPONENTS:
            raise ValueError(f"component must be one of {ELASTIC_COMPONENTS}, got {self.component!r}")

    def _default_name(self) -> str:
        return self.component

    def evaluate(self, calc: Calculator) -> float:
        return self.constants(calc)[self.component]

    def _theta_gradient(self, calc, descriptor, theta):
        if self.component != "C'":
            return self._cubic(calc, descriptor, theta, self.component)
        (g11, i11), (g12, i12) = (self._cubic(calc, descriptor, theta, c) for c in ("C11", "C12"))
        return 0.5 * (g11 - g12), i11 | {"local": 0.5 * (i11["local"] - i12["local"])}


@dataclass
class ShearModulus(_CubicElastic):
    """Polycrystal shear modulus (GPa) of the cubic crystal: ``"voigt"``, ``"reuss"`` or ``"hill"``.

    ``G_V = (C11 − C12 + 3 C44)/5``, ``G_R = 5 (C11 − C12) C44 / (4 C44 + 3 (C11 − C12))``,
    ``G_H = (G_V + G_R)/2``; C_ij and keyword parameters as in :class:`ElasticConstant`.
    """

    average: str = "voigt"

    def __post_init__(self):
        if self.average not in SHEAR_AVERAGES:
            raise ValueError(f"average must be one of {tuple(SHEAR_AVERAGES)}, got {self.average!r}")

    def _default_name(self) -> str:
        return SHEAR_AVERAGES[self.average]

    def evaluate(self, calc: Calculator) -> float:
        c = self.constants(calc)
        return shear_moduli(c["C11"], c["C12"], c["C44"])[SHEAR_AVERAGES[self.average]]

    def _theta_gradient(self, calc, descriptor, theta):
        key = SHEAR_AVERAGES[self.average]
        parts = {c: self._cubic(calc, descriptor, theta, c) for c in ("C11", "C12", "C44")}
        c = {name: info["local"] for name, (_, info) in parts.items()}
        gradient = np.zeros_like(parts["C11"][0])
        for name, (g, _) in parts.items():
            # chain rule through the closed-form averages (central difference of an exact formula)
            h = 1e-4 * max(abs(c[name]), 1.0)
            up, down = dict(c), dict(c)
            up[name] += h
            down[name] -= h
            gradient += (shear_moduli(**{k.lower(): v for k, v in up.items()})[key]
                         - shear_moduli(**{k.lower(): v for k, v in down.items()})[key]) / (2 * h) * g
        return gradient, parts["C44"][1] | {"local": shear_moduli(*(c[k] for k in ("C11", "C12", "C44")))[key]}


def suite(quick: bool = False, **material) -> list[Property]:
    """The bulk entries of a suite (cells are already minimal); ``material``: symbol, structure.

    Cubic structures get C11, C12, C44 and the Voigt and Hill shear moduli; hcp has five
    independent elastic constants, which are not implemented (its c/a is in :mod:`.phases`).
    """
    out: list[Property] = [LatticeConstant(**material), CohesiveEnergy(**material), BulkModulus(**material)]
    if Material(**material).crystal in CUBIC:
        out += [ElasticConstant(c, **material) for c in ("C11", "C12", "C44")]
        out += [ShearModulus(avg, **material) for avg in ("voigt", "hill")]
    return out
