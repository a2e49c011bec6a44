"""Point defects in elemental metals: vacancy, divacancy and self-interstitial atoms (SIAs).

Every property is a :class:`~uqcalc.properties.base.StateProperty`: a linear combination of a
defect supercell and the perfect supercell with the same number of sites. The element and its
ground-state structure are ``symbol`` and ``structure`` (:mod:`.crystal`); the configurations
per structure are :data:`SIA_CONFIGURATIONS` (bcc: ⟨111⟩, ⟨110⟩, ⟨100⟩ dumbbells, octahedral,
tetrahedral; fcc: the ⟨100⟩ dumbbell, octahedral, tetrahedral; hcp: the basal split dumbbell
along a, octahedral; :data:`SIA_CONFIGURATIONS_BY_STRUCTURE`) and the divacancy's first and
second neighbour shells.

Protocol (defaults)
-------------------
* Supercell: ``size``³ cubic cells (bcc 2, fcc 4 atoms; hcp: the 4-atom orthohexagonal cell),
  default ``size=4`` (bcc 128 sites, edge 12.7 Å at a0 = 3.1805 Å; fcc and hcp 256);
  ``size=3`` (54 / 108 sites) is the small cell for tests.
* ``pressure=None`` (default) — **constant volume**: the supercell is fixed at
  ``lattice_constant`` — a number (the W suite uses :data:`~uqcalc.properties.base.TUNGSTEN_A0`,
  the teacher's a0), or None: each calculator's own zero-stress lattice — positions relax in
  the defect cell, and the perfect reference at the same lattice is not relaxed (it is a
  stationary point by symmetry). With a number every calculator is compared at the same
  geometry, the usual protocol of the seed study and of DFT defect tables, and implicit
  propagation applies (its states must not move with θ).
* ``pressure="zero"`` — **constant pressure**: the defect cell relaxes positions and cell
  (``"both"``), the perfect reference its cell only (``"cell"``, it has no internal freedom), so
  each calculator is evaluated at its own zero-stress volume.
* ``relaxed=False`` freezes atomic positions (unrelaxed values; at zero pressure the cell still
  relaxes homogeneously).
* Tolerance ``fmax = 1e-3`` eV/Å (inherited from StateProperty): formation energies are then
  converged to < 1 meV. At zero pressure the cell converges to a stress of about
  ``fmax·N/V`` ≈ 6e-5 eV/Å^3 (10 MPa), i.e. volumes to ~0.07 Å^3 at 128 sites.
* Finite size: 128 sites is the common DFT cell for W defects, not a converged one. For the
  teacher, constant-volume and zero-pressure values differ by 0.01 eV for the vacancy but by
  0.56 eV for the <111> SIA (large relaxation volume, strong elastic image interaction), so
  compare calculators at the same protocol and cell.

Unstable interstitials
----------------------
In W only the <111> dumbbell/crowdion (and, depending on the model, the <110> dumbbell) is a
minimum; the <100> dumbbell, the octahedral and the tetrahedral SIA relax away from their site
if perturbed. The SIA structures are built exactly symmetric and, with ``symmetrize=True``
(default), relaxed under :class:`PointSymmetry`, which projects forces and displacements onto
the site's point group (the cubic operations that map the starting structure onto itself).
Because the true forces of a symmetric structure already lie in that subspace, a converged
symmetric relaxation is a true stationary point of the unconstrained energy surface — a
minimum for stable configurations, a saddle of higher index for the unstable ones. The reported
value is the energy of that symmetry-constrained stationary configuration; the constraint only
stops round-off from tipping an unstable configuration off its saddle. For the <111> dumbbell
it also keeps the dumbbell centred on a lattice site (the bond-centred crowdion is a separate,
nearly degenerate configuration in W).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .base import TUNGSTEN_A0, State, StateProperty
from .crystal import FixedCell, Material, neighbour_vector, supercell, unit_cell
from .symmetry import PointSymmetry

__all__ = [
    "PRESSURES",
    "SIA_CONFIGURATIONS",
    "SIA_CONFIGURATIONS_BY_STRUCTURE",
    "DivacancyBindingEnergy",
    "InterstitialFormationEnergy",
    "PointSymmetry",
    "VacancyFormationEnergy",
    "VacancyRelaxationVolume",
    "bcc_supercell",
    "suite",
]

PRESSURES = (None, "zero")
"""Allowed ``pressure`` settings: None (constant volume at ``lattice_constant``) or ``"zero"``."""

SIA_CONFIGURATIONS_BY_STRUCTURE = {
    "bcc": ("111", "110", "100", "octahedral", "tetrahedral"),
    "fcc": ("100", "octahedral", "tetrahedral"),
    "hcp": ("basal_split", "octahedral"),
}
"""Interstitial configurations per ground-state structure."""
SIA_CONFIGURATIONS = SIA_CONFIGURATIONS_BY_STRUCTURE["bcc"]
"""The bcc configurations (the W suite's)."""

# Half-separation of the starting dumbbells: 1.0 Å in W (~2 Å apart, close to relaxed W
# dumbbells, so relaxation is short and never passes through a ZBL-dominated overlap), scaled
# with the nearest-neighbour distance for other metals.
_DUMBBELL_HALF = 1.0
_W_NEAREST = float(np.linalg.norm(neighbour_vector("bcc", 1, TUNGSTEN_A0)))
_DUMBBELL_AXES = {"111": [1, 1, 1], "110": [1, 1, 0], "100": [1, 0, 0], "basal_split": [1, 0, 0]}
# interstitial sites relative to a lattice site, in units of the cubic (or orthohexagonal) cell
_SITES = {
    ("bcc", "octahedral"): (0.5, 0.0, 0.0), ("bcc", "tetrahedral"): (0.5, 0.25, 0.0),
    ("fcc", "octahedral"): (0.5, 0.0, 0.0), ("fcc", "tetrahedral"): (0.25, 0.25, 0.25),
    ("hcp", "octahedral"): (0.0, 1.0 / 3.0, 0.25),
}


def bcc_supercell(size: int, lattice_constant: float = TUNGSTEN_A0, symbol: str = "W") -> Atoms:
    """Cubic bcc supercell of ``size``³ conventional cells (``2 size³`` atoms), fully periodic."""
    return supercell(symbol, "bcc", lattice_constant, size)


def _site_index(atoms: Atoms, position: np.ndarray, tol: float = 1e-6) -> int:
    """Index of the atom at ``position`` (periodic images included)."""
    d = atoms.positions - position
    d -= atoms.cell.cartesian_positions(np.round(atoms.cell.scaled_positions(d)))
    dist = np.linalg.norm(d, axis=1)
    i = int(np.argmin(dist))
    if dist[i] > tol:
        raise ValueError(f"no atom at {position}")
    return i


def _central_site(perfect: Atoms, size: int) -> np.ndarray:
    """A lattice site in the middle of the box (defect cells look natural when viewed): the
    point (size//2)/size along the cell diagonal — a site of cubic supercells — else the
    site nearest it."""
    target = perfect.cell.cartesian_positions(np.full(3, (size // 2) / size))
    i = _site_index(perfect, target, tol=np.inf)
    return target if np.linalg.norm(perfect.positions[i] - target) < 1e-8 else perfect.positions[i].copy()


@dataclass
class _PointDefect(FixedCell, StateProperty):
    """Shared settings of the point-defect properties (see the module docstring)."""

    size: int = 4
    lattice_constant: float | None = None
    pressure: str | None = None
    relaxed: bool = True

    def __post_init__(self) -> None:
        supercell(self.symbol, "bcc", 1.0, self.size)  # validates size
        if self.pressure not in PRESSURES:
            raise ValueError(f"pressure must be None (constant volume) or 'zero', got {self.pressure!r}")
        if self.lattice_constant is not None and not self.lattice_constant > 0:
            raise ValueError(f"lattice_constant must be positive, got {self.lattice_constant!r}")

    @property
    def n_sites(self) -> int:
        """Lattice sites of the supercell (bcc ``2 size³``, fcc and hcp ``4 size³``)."""
        return (2 if self.crystal == "bcc" else 4) * self.size**3

    def _perfect(self) -> Atoms:
        a, covera = self.cell_lattice()
        return supercell(self.symbol, self.crystal, a, self.size, covera)

    def _modes(self) -> tuple[str, str]:
        """(defect cell mode, perfect cell mode) for the pressure and relaxed settings."""
        if self.pressure == "zero":
            return ("both" if self.relaxed else "cell"), "cell"
        return ("positions" if self.relaxed else "none"), "none"

    def _bulk_state(self, coefficient: float) -> State:
        return State("bulk", self._perfect(), self._modes()[1], coefficient)


@dataclass
class VacancyFormationEnergy(_PointDefect):
    """Vacancy formation energy ``E_f = E(N-1) - (N-1)/N E_bulk(N)`` (eV).

    Parameters
    ----------
    size : int, default 4
        Supercell of ``size``³ cubic (hcp: orthohexagonal) cells (bcc 4: 128 sites).
    lattice_constant : float or None, default None
        Lattice constant (Å) of the fixed cell (and starting cell at zero pressure); None:
        each calculator's own zero-stress lattice (then no states without a calculator).
    pressure : {None, "zero"}, default None
        Constant volume (None) or constant (zero) pressure; see the module docstring.
    relaxed : bool, default True
        Relax atomic positions of the defect cell.
    fmax, steps : float, int
        Relaxation tolerance (eV/Å) and step budget.
    symbol, structure, covera
        Element, ground-state structure and hcp c/a (keyword-only; :mod:`.crystal`).

    Examples
    --------
    >>> VacancyFormationEnergy(size=3, lattice_constant=3.1805).states()[1].coefficient
    -0.9814814814814815
    """

    def _default_name(self) -> str:
        return "vacancy_formation_energy"

    def states(self) -> list[State]:
        perfect = self._perfect()
        vacancy = perfect.copy()
        del vacancy[_site_index(perfect, _central_site(perfect, self.size))]
        n = len(perfect)
        return [State("vacancy", vacancy, self._modes()[0], 1.0), self._bulk_state(-(n - 1) / n)]


@dataclass
class VacancyRelaxationVolume(_PointDefect):
    """Vacancy relaxation volume ``Ω_rel = V(N-1 atoms, N sites) - V_bulk(N)`` at zero pressure.

    Both cells relax at zero stress (vacancy: positions and cell; perfect: cell). The value is
    in Å^3 (default; a linear combination of the state volumes) or, with
    ``in_atomic_volumes=True``, in units of the calculator's own atomic volume
    ``Ω0 = V_bulk/N`` (then ``combine`` divides by the bulk state's volume, so the
    value is no longer linear in the state quantities). W has ``Ω_rel`` of about −0.3 to −0.4 Ω0
    (DFT); the formation volume is ``Ω_rel + Ω0``.

    Parameters
    ----------
    size, lattice_constant, fmax, steps
        As for :class:`VacancyFormationEnergy`; ``pressure`` must be ``"zero"``.
    in_atomic_volumes : bool, default False
        Report ``Ω_rel/Ω0`` instead of Å^3.
    """

    pressure: str | None = "zero"
    in_atomic_volumes: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pressure != "zero":
            raise ValueError("the relaxation volume needs pressure='zero' (at constant volume it is 0 by definition)")
        if not self.relaxed:
            raise ValueError("the relaxation volume needs relaxed=True")

    def _default_name(self) -> str:
        return "vacancy_relaxation_volume"

    @property
    def unit(self) -> str:
        return "Ω0" if self.in_atomic_volumes else "Å^3"

    def states(self) -> list[State]:
        perfect = self._perfect()
        vacancy = perfect.copy()
        del vacancy[_site_index(perfect, _central_site(perfect, self.size))]
        return [
            State("vacancy", vacancy, "both", 1.0, quantity="volume"),
            State("bulk", perfect, "cell", -1.0, quantity="volume"),
        ]

    def combine(self, quantities: Sequence[float], states: Sequence[State]) -> float:
        value = super().combine(quantities, states)
        if self.in_atomic_volumes:
            value /= quantities[1] / self.n_sites
        return value


@dataclass
class DivacancyBindingEnergy(_PointDefect):
    """Divacancy binding energy ``E_b = 2 E_f(v) - E_f(2v) = 2E(N-1) - E(N-2) - E_bulk(N)`` (eV).

    Positive means bound (attractive). ``neighbor`` selects the 1NN (a/2<111>, 2.75 Å) or
    2NN (a<100>, 3.18 Å) pair of sites (fcc: a/2<110>, a<100>). In hcp both are nearest
    neighbours (the shells coincide at ideal c/a): 1 is the in-plane pair (name suffix
    ``basal``), 2 the pair across the basal plane (``out_of_plane``). The bulk coefficient is exactly −1:
    ``2(N-1)/N - (N-2)/N = 1``.

    Parameters
    ----------
    neighbor : {1, 2}, default 1
        Neighbour shell of the two vacant sites.
    size, lattice_constant, pressure, relaxed, fmax, steps
        As for :class:`VacancyFormationEnergy`.
    """

    neighbor: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.neighbor not in (1, 2):
            raise ValueError(f"neighbor must be 1 or 2, got {self.neighbor!r}")

    def _default_name(self) -> str:
        return f"divacancy_binding_energy_{self._pair_label()}"

    def _pair_label(self) -> str:
        if self.crystal == "hcp":
            return "basal" if self.neighbor == 1 else "out_of_plane"
        return f"{self.neighbor}nn"

    def states(self) -> list[State]:
        a0, covera = self.cell_lattice()
        perfect = self._perfect()
        centre = _central_site(perfect, self.size)
        partner = centre + neighbour_vector(self.crystal, self.neighbor, a0, covera)
        vacancy = perfect.copy()
        del vacancy[_site_index(perfect, centre)]
        divacancy = perfect.copy()
        del divacancy[sorted([_site_index(perfect, centre), _site_index(perfect, partner)], reverse=True)]
        mode = self._modes()[0]
        return [
            State("vacancy", vacancy, mode, 2.0),
            State(f"divacancy_{self._pair_label()}", divacancy, mode, -1.0),
            self._bulk_state(-1.0),
        ]


@dataclass
class InterstitialFormationEnergy(_PointDefect):
    """Self-interstitial formation energy ``E_f = E(N+1) - (N+1)/N E_bulk(N)`` (eV).

    Configurations (host site at the box centre ``c``, a = lattice constant; dumbbell
    half-separation 1.0 Å in W, scaled with the nearest-neighbour distance otherwise):

    * bcc ``"111"`` — <111> dumbbell: site ``c`` replaced by two atoms at ``c ± 1.0 Å·[111]/√3``;
      ``"110"``, ``"100"`` — along [110], [100] (<100> is unstable in W: a constrained saddle);
      ``"octahedral"`` — extra atom at ``c + a(1/2, 0, 0)``; ``"tetrahedral"`` — at
      ``c + a(1/2, 1/4, 0)`` (both unstable in W);
    * fcc ``"100"`` — the <100> split dumbbell (the stable SIA of fcc metals); ``"octahedral"``
      at ``c + a(1/2, 0, 0)``; ``"tetrahedral"`` at ``c + a(1/4, 1/4, 1/4)``;
    * hcp ``"basal_split"`` — a split dumbbell along a in the basal plane; ``"octahedral"`` —
      the octahedral hole ``c + (0, 1/3, 1/4)`` of the orthohexagonal cell (a, √3a, c).

    With ``symmetrize=True`` (default) the defect cell relaxes under :class:`PointSymmetry`
    (see the module docstring): the value is that of the symmetric stationary configuration,
    a minimum for the stable dumbbells and a constrained saddle for unstable ones.

    Parameters
    ----------
    configuration : str, optional
        One of the structure's :data:`SIA_CONFIGURATIONS_BY_STRUCTURE` (default: its first).
    symmetrize : bool, default True
        Relax under the site's point-group symmetry.
    size, lattice_constant, pressure, relaxed, fmax, steps
        As for :class:`VacancyFormationEnergy`.
    """

    configuration: str | None = None
    symmetrize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.configuration is not None:
            # "<111>" and "111" name the same dumbbell; the normalisation is idempotent, so
            # copies made with dataclasses.replace stay consistent
            self.configuration = str(self.configuration).lstrip("<").rstrip(">")
        if self.structure is not None or self.configuration is not None:
            _ = self.config  # validates the pair

    @property
    def config(self) -> str:
        """The configuration in use: ``configuration``, else the first of the structure's."""
        allowed = SIA_CONFIGURATIONS_BY_STRUCTURE[self.crystal]
        config = allowed[0] if self.configuration is None else self.configuration
        if config not in allowed:
            raise ValueError(f"{self.crystal} configuration must be one of {allowed}, got {config!r}")
        return config

    def _default_name(self) -> str:
        return f"sia_formation_energy_{self.config}"

    def defect_structure(self) -> Atoms:
        """The unrelaxed SIA supercell (with its :class:`PointSymmetry` if ``symmetrize``).

        ``atoms.info["defect_centre"]`` is the centre (Å) of the site's point group.
        """
        a0, covera = self.cell_lattice()
        atoms = self._perfect()
        c = _central_site(atoms, self.size)
        config = self.config
        if config in _DUMBBELL_AXES:
            axis = np.asarray(_DUMBBELL_AXES[config], float)
            half = _DUMBBELL_HALF * (np.linalg.norm(neighbour_vector(self.crystal, 1, a0, covera)) / _W_NEAREST)
            u = half * axis / np.linalg.norm(axis)
            atoms.positions[_site_index(atoms, c)] = c + u
            atoms += Atoms(self.symbol, positions=[c - u])
            centre = c
        else:
            unit = unit_cell(self.symbol, self.crystal, a0, covera, orthorhombic=True).cell[:]
            centre = c + np.asarray(_SITES[(self.crystal, config)]) @ unit
            atoms += Atoms(self.symbol, positions=[centre])
        atoms.info["defect_centre"] = centre.tolist()
        if self.symmetrize:
            atoms.set_constraint(PointSymmetry.from_structure(atoms, centre))
        return atoms

    def states(self) -> list[State]:
        n = self.n_sites
        return [
            State(f"sia_{self.config}", self.defect_structure(), self._modes()[0], 1.0),
            self._bulk_state(-(n + 1) / n),
        ]


def suite(quick: bool = False, lattice_constant: float | None = None, **material) -> list[StateProperty]:
    """The point-defect entries of a suite (54/108-site cells when ``quick``).

    ``lattice_constant``: the fixed cells (None: each calculator's own); ``material``: symbol,
    structure. Every structure gets the vacancy, its relaxation volume, the first- and
    second-neighbour divacancy and its interstitials (:data:`SIA_CONFIGURATIONS`).
    """
    kw = {"lattice_constant": lattice_constant, **({"size": 3} if quick else {}), **material}
    crystal = Material(**material).crystal
    return [
        VacancyFormationEnergy(**kw),
        VacancyRelaxationVolume(**kw),
        DivacancyBindingEnergy(neighbor=1, **kw),
        DivacancyBindingEnergy(neighbor=2, **kw),
        *(InterstitialFormationEnergy(configuration=c, **kw) for c in SIA_CONFIGURATIONS_BY_STRUCTURE[crystal]),
    ]
