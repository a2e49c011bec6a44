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
A saddle cannot be described before it is found. :meth:`VacancyMigrationEnergy.stationary_states`
runs the NEB with a calculator and returns, and stores for :meth:`~VacancyMigrationEnergy.states`,

* ``saddle`` — the converged climbing image, coefficient +1, ``relax="none"`` (a minimizer
  must never touch it) and ``atoms.info["stationary"] = "saddle"``: it *is* stationary in
  positions, so implicit propagation may treat it as a ``"positions"`` state whose Hessian has
  one negative eigenvalue (the first-order, envelope-theorem term needs no Hessian at all);
* ``initial`` — the relaxed initial minimum, coefficient −1, ``relax="positions"`` (already
  relaxed: re-relaxing it is harmless).

:meth:`~VacancyMigrationEnergy.evaluate` always runs its own NEB and stores nothing, so
evaluating ensemble members does not change the states.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.mep import NEB
from ase.optimize import FIRE

from .base import TUNGSTEN_A0, RelaxationError, State, StateProperty, relax
from .defects import _centre, _site_index, bcc_supercell

__all__ = ["VacancyMigrationEnergy", "suite"]


@dataclass
class VacancyMigrationEnergy(StateProperty):
    """Vacancy migration energy E_m (eV) of the 1NN <111> jump, by climbing-image NEB.

    Parameters
    ----------
    size : int, default 4
        Supercell of ``size``³ conventional cells (4: 128 sites; 3: 54 sites).
    lattice_constant : float, default TUNGSTEN_A0
        Fixed cubic lattice constant (Å).
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
    >>> prop = VacancyMigrationEnergy(size=3)
    >>> prop.endpoints()[0].get_global_number_of_atoms()
    53
    """

    name: str = "vacancy_migration_energy"
    size: int = 4
    lattice_constant: float = TUNGSTEN_A0
    n_images: int = 5
    spring: float = 0.1
    neb_fmax: float = 0.01
    neb_steps: int = 2000
    _stationary: list | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bcc_supercell(self.size, self.lattice_constant)  # validates size
        if int(self.n_images) < 1:
            raise ValueError(f"n_images must be >= 1, got {self.n_images}")

    def endpoints(self) -> tuple[Atoms, Atoms]:
        """Unrelaxed (initial, final) structures: vacancy at the centre site, then at its [111] neighbour."""
        a0 = self.lattice_constant
        perfect = bcc_supercell(self.size, a0)
        centre = _centre(self.size, a0)
        vacant = _site_index(perfect, centre)
        hopper = _site_index(perfect, centre + 0.5 * a0 * np.ones(3))
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
        """Run the NEB with ``calc``; return and store [saddle (+1), initial minimum (−1)].

        See the module docstring for what the states mean to propagation.
        """
        images = self.band(calc)
        saddle = images[self._saddle_index(images)].copy()
        saddle.info["stationary"] = "saddle"
        initial = images[0].copy()
        self._stationary = [
            State("saddle", saddle, "none", 1.0),
            State("initial", initial, "positions", -1.0),
        ]
        return list(self._stationary)

    def states(self) -> list[State]:
        """The states stored by the last :meth:`stationary_states` call.

        Raises
        ------
        RuntimeError
            If :meth:`stationary_states` has not been called: the saddle depends on the calculator.
        """
        if self._stationary is None:
            raise RuntimeError(
                f"{self.name}: the saddle is found by NEB; call stationary_states(calc) first"
            )
        return list(self._stationary)

    def evaluate(self, calc: Calculator) -> float:
        """E_m = E(saddle) − E(initial) from a fresh climbing-image NEB with ``calc``."""
        images = self.band(calc)
        saddle = images[self._saddle_index(images)]
        return float(saddle.get_potential_energy() - images[0].get_potential_energy())


def suite(quick: bool = False) -> list[StateProperty]:
    """The migration entry of the W benchmark (54-site cell when ``quick``)."""
    return [VacancyMigrationEnergy(**({"size": 3} if quick else {}))]
