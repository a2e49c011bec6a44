"""Point defects in bcc tungsten: vacancy, divacancy and self-interstitial atoms (SIAs).

Every property is a :class:`~uqcalc.properties.base.StateProperty`: a linear combination of a
defect supercell and the perfect supercell with the same number of sites.

Protocol (defaults)
-------------------
* Supercell: ``size`` × ``size`` × ``size`` conventional bcc cells, default ``size=4``
  (128 sites, edge 12.7 Å at a0 = 3.1805 Å); ``size=3`` (54 sites) is the small cell for tests.
* ``pressure=None`` (default) — **constant volume**: the cubic supercell is fixed at
  ``lattice_constant`` (default :data:`~uqcalc.properties.base.TUNGSTEN_A0`, the teacher's a0),
  positions relax in the defect cell, and the perfect reference at the same a0 is not relaxed
  (it is a stationary point by symmetry). Every calculator is then compared at the same
  geometry, which is the usual protocol of the seed study and of DFT defect tables.
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
from ase.build import bulk

from .base import TUNGSTEN_A0, State, StateProperty
from .symmetry import PointSymmetry

__all__ = [
    "PRESSURES",
    "SIA_CONFIGURATIONS",
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

SIA_CONFIGURATIONS = ("111", "110", "100", "octahedral", "tetrahedral")

# Half-separation (Å) of the starting dumbbells: ~2 Å apart, close to relaxed W dumbbells,
# so relaxation is short and never passes through a ZBL-dominated overlap.
_DUMBBELL_HALF = 1.0


def bcc_supercell(size: int, lattice_constant: float = TUNGSTEN_A0, symbol: str = "W") -> Atoms:
    """Cubic bcc supercell of ``size``³ conventional cells (``2 size³`` atoms), fully periodic."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    return bulk(symbol, "bcc", a=float(lattice_constant), cubic=True).repeat(int(size))


def _site_index(atoms: Atoms, position: np.ndarray, tol: float = 1e-6) -> int:
    """Index of the atom at ``position`` (periodic images included)."""
    d = atoms.positions - position
    d -= atoms.cell.cartesian_positions(np.round(atoms.cell.scaled_positions(d)))
    dist = np.linalg.norm(d, axis=1)
    i = int(np.argmin(dist))
    if dist[i] > tol:
        raise ValueError(f"no atom at {position}")
    return i


def _centre(size: int, a0: float) -> np.ndarray:
    # a lattice site in the middle of the box, so defect cells look natural when viewed
    return np.full(3, (size // 2) * a0)


@dataclass
class _PointDefect(StateProperty):
    """Shared settings of the point-defect properties (see the module docstring)."""

    size: int = 4
    lattice_constant: float = TUNGSTEN_A0
    pressure: str | None = None
    relaxed: bool = True

    def __post_init__(self) -> None:
        bcc_supercell(self.size, self.lattice_constant)  # validates size
        if self.pressure not in PRESSURES:
            raise ValueError(f"pressure must be None (constant volume) or 'zero', got {self.pressure!r}")
        if not self.lattice_constant > 0:
            raise ValueError(f"lattice_constant must be positive, got {self.lattice_constant!r}")

    @property
    def n_sites(self) -> int:
        """Lattice sites of the supercell (``2 size³``)."""
        return 2 * self.size**3

    def _perfect(self) -> Atoms:
        return bcc_supercell(self.size, self.lattice_constant)

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
        Supercell of ``size``³ conventional cells (4: 128 sites).
    lattice_constant : float, default TUNGSTEN_A0
        Cubic lattice constant (Å) of the fixed cell (and starting cell at zero pressure).
    pressure : {None, "zero"}, default None
        Constant volume (None) or constant (zero) pressure; see the module docstring.
    relaxed : bool, default True
        Relax atomic positions of the defect cell.
    fmax, steps : float, int
        Relaxation tolerance (eV/Å) and step budget.

    Examples
    --------
    >>> VacancyFormationEnergy(size=3).states()[1].coefficient
    -0.9814814814814815
    """

    def _default_name(self) -> str:
        return "vacancy_formation_energy"

    def states(self) -> list[State]:
        perfect = self._perfect()
        vacancy = perfect.copy()
        del vacancy[_site_index(perfect, _centre(self.size, self.lattice_constant))]
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
        del vacancy[_site_index(perfect, _centre(self.size, self.lattice_constant))]
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
    2NN (a<100>, 3.18 Å) pair of sites. The bulk coefficient is exactly −1:
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
        return f"divacancy_binding_energy_{self.neighbor}nn"

    def states(self) -> list[State]:
        a0 = self.lattice_constant
        perfect = self._perfect()
        centre = _centre(self.size, a0)
        partner = centre + (0.5 * a0 * np.ones(3) if self.neighbor == 1 else np.array([a0, 0.0, 0.0]))
        vacancy = perfect.copy()
        del vacancy[_site_index(perfect, centre)]
        divacancy = perfect.copy()
        del divacancy[sorted([_site_index(perfect, centre), _site_index(perfect, partner)], reverse=True)]
        mode = self._modes()[0]
        return [
            State("vacancy", vacancy, mode, 2.0),
            State(f"divacancy_{self.neighbor}nn", divacancy, mode, -1.0),
            self._bulk_state(-1.0),
        ]


@dataclass
class InterstitialFormationEnergy(_PointDefect):
    """Self-interstitial formation energy ``E_f = E(N+1) - (N+1)/N E_bulk(N)`` (eV).

    Configurations (host site at the box centre ``c``, a = lattice constant):

    * ``"111"`` — <111> dumbbell: site ``c`` replaced by two atoms at ``c ± 1.0 Å·[111]/√3``;
    * ``"110"`` — <110> dumbbell, along [110];
    * ``"100"`` — <100> dumbbell, along [100] (unstable in W: a constrained saddle);
    * ``"octahedral"`` — extra atom at ``c + a(1/2, 0, 0)`` (unstable in W);
    * ``"tetrahedral"`` — extra atom at ``c + a(1/2, 1/4, 0)`` (unstable in W).

    With ``symmetrize=True`` (default) the defect cell relaxes under :class:`PointSymmetry`
    (see the module docstring): the value is that of the symmetric stationary configuration,
    a minimum for the stable dumbbells and a constrained saddle for unstable ones.

    Parameters
    ----------
    configuration : str, default "111"
        One of :data:`SIA_CONFIGURATIONS`.
    symmetrize : bool, default True
        Relax under the site's point-group symmetry.
    size, lattice_constant, pressure, relaxed, fmax, steps
        As for :class:`VacancyFormationEnergy`.
    """

    configuration: str = "111"
    symmetrize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        # "<111>" and "111" name the same dumbbell; the normalisation is idempotent, so copies
        # made with dataclasses.replace stay consistent
        self.configuration = str(self.configuration).lstrip("<").rstrip(">")
        if self.configuration not in SIA_CONFIGURATIONS:
            raise ValueError(f"configuration must be one of {SIA_CONFIGURATIONS}, got {self.configuration!r}")

    def _default_name(self) -> str:
        return f"sia_formation_energy_{self.configuration}"

    def defect_structure(self) -> Atoms:
        """The unrelaxed SIA supercell (with its :class:`PointSymmetry` if ``symmetrize``).

        ``atoms.info["defect_centre"]`` is the centre (Å) of the site's point group.
        """
        a0 = self.lattice_constant
        atoms = self._perfect()
        c = _centre(self.size, a0)
        if self.configuration in ("111", "110", "100"):
            axis = {"111": [1, 1, 1], "110": [1, 1, 0], "100": [1, 0, 0]}[self.configuration]
            u = _DUMBBELL_HALF * np.asarray(axis, float) / np.linalg.norm(axis)
            atoms.positions[_site_index(atoms, c)] = c + u
            atoms += Atoms("W", positions=[c - u])
            centre = c
        else:
            offset = [0.5, 0.0, 0.0] if self.configuration == "octahedral" else [0.5, 0.25, 0.0]
            centre = c + a0 * np.asarray(offset)
            atoms += Atoms("W", positions=[centre])
        atoms.info["defect_centre"] = centre.tolist()
        if self.symmetrize:
            atoms.set_constraint(PointSymmetry.from_structure(atoms, centre))
        return atoms

    def states(self) -> list[State]:
        n = self.n_sites
        return [
            State(f"sia_{self.configuration}", self.defect_structure(), self._modes()[0], 1.0),
            self._bulk_state(-(n + 1) / n),
        ]


def suite(quick: bool = False) -> list[StateProperty]:
    """The point-defect entries of the W benchmark (54-site cells when ``quick``)."""
    size = {"size": 3} if quick else {}
    return [
        VacancyFormationEnergy(**size),
        VacancyRelaxationVolume(**size),
        DivacancyBindingEnergy(neighbor=1, **size),
        DivacancyBindingEnergy(neighbor=2, **size),
        *(InterstitialFormationEnergy(configuration=c, **size) for c in SIA_CONFIGURATIONS),
    ]
