"""Vacancy migration energy in bcc W by the nudged elastic band method.

Protocol (defaults)
-------------------
* 1NN jump along a/2<111> in a ``size``³ conventional supercell (default 4: 128 sites, 127
  atoms) at fixed cubic cell ``lattice_constant`` (default TUNGSTEN_A0), the same
  constant-volume protocol as :mod:`uqcalc.properties.defects`.
* Endpoints: vacancy at the central site and at its [111] neighbour, each relaxed in positions
  (LBFGS, ``fmax`` = 1e-3 eV/Å). The hopping atom keeps its index, so the two endpoints are
  the same atoms in the same order.
* Band: ``n_images`` = 5 intermediate images, linear interpolation, spring constant
  ``spring`` = 0.1 eV/Å², improved-tangent NEB (:class:`ase.mep.NEB`, Henkelman & Jónsson
  2000), FIRE. The band is first relaxed without climbing to ``5·neb_fmax``, then with the
  climbing image (Henkelman, Uberuaga & Jónsson 2000) to ``neb_fmax`` = 0.01 eV/Å. The jump
  is symmetric, so with an odd number of images the climbing image sits at the mid-point;
  E_m = E(climbing image) − E(initial minimum).

States
------
A saddle cannot be described before it is found: :meth:`~VacancyMigrationEnergy.states` is None
and :meth:`VacancyMigrationEnergy.stationary_states` runs the NEB with a calculator and returns

* ``saddle`` — the converged climbing image, coefficient +1, ``kind="saddle"`` in its positions
  (never handed to a minimiser; implicit propagation expands it like a minimum, with one
  negative Hessian eigenvalue expected);
* ``initial`` — the relaxed initial minimum, coefficient −1.

:meth:`~VacancyMigrationEnergy.evaluate` combines the two, so every evaluation (an ensemble
member's, a reference's) runs its own NEB; nothing is stored on the property.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.mep import NEB
from ase.optimize import FIRE

from .base import RelaxationError, State, StateProperty, relax
from .crystal import FixedCell, neighbour_vector, supercell
from .defects import _central_site, _site_index

__all__ = ["VacancyMigrationEnergy", "suite"]


@dataclass
class VacancyMigrationEnergy(FixedCell, StateProperty):
    """Vacancy migration energy E_m (eV) of the nearest-neighbour jump, by climbing-image NEB.

    The jump is to the first neighbour shell (bcc a/2<111>, fcc a/2<110>, hcp a in the basal
    plane).

    Parameters
    ----------
    size : int, default 4
        Supercell of ``size``³ cubic (hcp: orthohexagonal) cells (bcc 4: 128 sites; 3: 54).
    lattice_constant : float or None, default None
        Fixed lattice constant (Å); None: each calculator's own (see :class:`~.crystal.FixedCell`).
    n_images : int, default 5
        Intermediate images (odd keeps an image on the symmetric mid-point).
    spring : float, default 0.1
        NEB spring constant (eV/Å²).
    neb_fmax : float, default 0.01
        Force tolerance (eV/Å) of the climbing-image band.
    neb_steps : int, default 2000
        FIRE step budget of each of the two band stages.
    fmax, steps : float, int
        Tolerance (eV/Å) and budget of the endpoint relaxations.

    Examples
    --------
    >>> prop = VacancyMigrationEnergy(size=3, lattice_constant=3.1805)
    >>> prop.endpoints()[0].get_global_number_of_atoms()
    53
    """

    size: int = 4
    lattice_constant: float | None = None
    n_images: int = 5
    spring: float = 0.1
    neb_fmax: float = 0.01
    neb_steps: int = 2000

    def __post_init__(self) -> None:
        supercell(self.symbol, "bcc", 1.0, self.size)  # validates size
        if int(self.n_images) < 1:
            raise ValueError(f"n_images must be >= 1, got {self.n_images}")

    def _default_name(self) -> str:
        return "vacancy_migration_energy"

    def endpoints(self) -> tuple[Atoms, Atoms]:
        """Unrelaxed (initial, final) structures: vacancy at the centre site, then at its first neighbour."""
        a0, covera = self.cell_lattice()
        perfect = supercell(self.symbol, self.crystal, a0, self.size, covera)
        centre = _central_site(perfect, self.size)
        vacant = _site_index(perfect, centre)
        hopper = _site_index(perfect, centre + neighbour_vector(self.crystal, 1, a0, covera))
        initial = perfect.copy()
        del initial[vacant]
        hopper -= int(vacant < hopper)
        final = initial.copy()
        final.positions[hopper] = centre
        return initial, final

    def band(self, calc: Calculator) -> list[Atoms]:
        """Run the NEB; the converged images (endpoints relaxed), each with ``calc`` attached."""
        initial, final = (
            relax(a, calc, "positions", self.fmax, self.steps, name=f"{self.name}/{label}")
            for a, label in zip(self.endpoints(), ("initial", "final"))
        )
        images = [initial] + [initial.copy() for _ in range(int(self.n_images))] + [final]
        for image in images:
            image.calc = calc
        neb = NEB(images, k=self.spring, climb=False, method="improvedtangent", allow_shared_calculator=True)
        neb.interpolate()
        # a loose plain band first places the climbing image near the saddle, which keeps
        # the climbing stage short and stable
        for climb, fmax in ((False, max(5 * self.neb_fmax, 0.05)), (True, self.neb_fmax)):
            neb.climb = climb
            if not FIRE(neb, logfile=None).run(fmax=fmax, steps=self.neb_steps):
                raise RelaxationError(
                    f"{self.name}: NEB (climb={climb}) not converged to {fmax} eV/Å in {self.neb_steps} steps"
                )
        return images

    @staticmethod
    def _saddle_index(images: list[Atoms]) -> int:
        energies = [image.get_potential_energy() for image in images[1:-1]]
        return 1 + int(np.argmax(energies))

    def stationary_states(self, calc: Calculator) -> list[State]:
        """Run the NEB with ``calc``: [saddle (+1, ``kind="saddle"``), initial minimum (−1)].

        Both structures carry ``calc``. See the module docstring for what the states mean to
        propagation.
        """
        images = self.band(calc)
        saddle, initial = images[self._saddle_index(images)].copy(), images[0].copy()
        saddle.calc = initial.calc = calc
        return [
            State("saddle", saddle, "positions", 1.0, kind="saddle"),
            State("initial", initial, "positions", -1.0),
        ]


def suite(quick: bool = False, lattice_constant: float | None = None, **material) -> list[StateProperty]:
    """The migration entry of a suite (54/108-site cells when ``quick``)."""
    return [VacancyMigrationEnergy(lattice_constant=lattice_constant, **({"size": 3} if quick else {}), **material)]
