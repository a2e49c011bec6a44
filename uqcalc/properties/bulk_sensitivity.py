"""Parameter gradients of a cubic crystal's a0, B and C_ij for a model linear in its parameters.

For E = θ·D(x) + E_ref(x) the stress of a *fixed* cell is linear in θ: σ(x; θ) = θ·S(x) + σ_ref(x)
(the descriptor's stress rows). The bulk properties are then

* a0(θ): the zero of the pressure p(a; θ) = −tr σ / 3, so by implicit differentiation
  ∂a0/∂θ = −(∂p/∂θ) / (∂p/∂a) at a0;
* C_ij(a; θ): central differences of stress under ±ε strains of the cube at fixed a, linear in θ
  (C11 = ∂σ_xx/∂ε_xx, C12 = ∂σ_yy/∂ε_xx, C44 = ∂σ_yz/∂γ_yz with γ_yz = 2ε_yz, matscipy's
  Voigt convention);
* B(θ): the bulk modulus of an equation-of-state fit to energies E_i = θ·D(V_i) + E_ref(V_i) on
  volumes V_i = V0(θ)(1 + x_i), differentiated through the fit (∂B/∂E_i and ∂B/∂V_i by central
  differences of the fit itself), so the slope is that of :class:`~.bulk.BulkModulus`'s own
  definition, not of the local curvature −V ∂p/∂V: the two differ where a cutoff shapes E(V)
  within the scan (Ta06A: 189.8 GPa over ±2 % in volume, 194.0 locally);

and a property c at the crystal's own lattice constant has the total derivative
dc/dθ = ∂c/∂θ|_a + (∂c/∂a) ∂a0/∂θ, the last factor by central differences in a at θ̄.
These are the first-order slopes that :class:`uqcalc.propagate.Gradient` turns into members and
box corners (one property evaluation and a dozen 1- to 4-atom descriptor calls, whatever the
number of parameters), where finite differences along a box's R axes would take 2R + 1
evaluations of the property (3193 for a quadratic SNAP). The properties' own ``evaluate`` (a
relaxed cell, an EOS fit, matscipy's stress–strain regression) give the values; the slopes here
agree with them to O(h²) in the difference steps, and :class:`~uqcalc.propagate.VerifyExtremes`
re-evaluates the extreme members exactly.
"""

from __future__ import annotations

import numpy as np
from ase import units

from .crystal import CUBIC, unit_cell

__all__ = ["cubic_parameter_gradient"]

#: relative step in the lattice constant of the a-derivatives (0.1 % of a)
LATTICE_STEP = 1e-3
#: strain of the central stress differences (matscipy's default regression spans ±0.2 %)
STRAIN_STEP = 1e-3


def _stress_rows(descriptor, atoms) -> tuple[np.ndarray, np.ndarray]:
    """(S (6, P), σ_ref (6,)) of one cell: σ = S θ + σ_ref (eV/Å³)."""
    rows = descriptor.rows(atoms)
    rows.require("stress", "the parameter gradient of a bulk property")
    return np.asarray(rows.stress, dtype=float), np.asarray(rows.ref_stress, dtype=float)


def _strained(atoms, strain: np.ndarray):
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + strain).T, scale_atoms=True)
    return out


class _Cube:
    """Stress rows of one cubic crystal at any lattice constant, computed once per cell."""

    def __init__(self, descriptor, symbol: str, structure: str, strain: float):
        self.descriptor, self.symbol, self.structure, self.strain = descriptor, symbol, structure, strain
        self._cache: dict = {}

    def _rows(self, a: float, key: str):
        if (a, key) not in self._cache:
            atoms = unit_cell(self.symbol, self.structure, a)
            e = np.zeros((3, 3))
            if key in ("xx+", "xx-"):
                e[0, 0] = self.strain if key == "xx+" else -self.strain
            elif key in ("yz+", "yz-"):
                e[1, 2] = e[2, 1] = 0.5 * (self.strain if key == "yz+" else -self.strain)
            self._cache[(a, key)] = _stress_rows(self.descriptor, _strained(atoms, e) if key != "0" else atoms)
        return self._cache[(a, key)]

    def pressure(self, a: float) -> tuple[np.ndarray, float]:
        """p = θ·rows + ref at lattice constant a (eV/Å³)."""
        S, ref = self._rows(a, "0")
        return -S[:3].mean(axis=0), -float(ref[:3].mean())

    def elastic(self, a: float) -> dict[str, tuple[np.ndarray, float]]:
        """C11, C12, C44 at fixed a as (rows, ref) in GPa: C = θ·rows + ref."""
        (Sxp, rxp), (Sxm, rxm) = self._rows(a, "xx+"), self._rows(a, "xx-")
        (Syp, ryp), (Sym, rym) = self._rows(a, "yz+"), self._rows(a, "yz-")
        scale = 1.0 / (2.0 * self.strain * units.GPa)
        # ASE Voigt order xx yy zz yz xz xy
        return {"C11": ((Sxp[0] - Sxm[0]) * scale, (rxp[0] - rxm[0]) * scale),
                "C12": ((Sxp[1] - Sxm[1]) * scale, (rxp[1] - rxm[1]) * scale),
                "C44": ((Syp[3] - Sym[3]) * scale, (ryp[3] - rym[3]) * scale)}


def _eos_modulus(volumes: np.ndarray, energies: np.ndarray, eos: str) -> float:
    from .bulk import eos_fit

    return eos_fit(volumes, energies, eos)[2]


def eos_modulus_gradient(descriptor, theta: np.ndarray, symbol: str, structure: str, a0: float,
                         da0: np.ndarray, volume_range: float, n_points: int, eos: str) -> tuple[np.ndarray, float]:
    """dB/dθ (P,) of the EOS-fit bulk modulus on the scan about a0 (moving with it by ``da0``); and B."""
    x = np.linspace(-volume_range, volume_range, n_points)
    volumes, energies, rows, pressures = [], [], [], []
    for xi in x:
        atoms = unit_cell(symbol, structure, a0 * (1.0 + xi) ** (1.0 / 3.0))
        r = descriptor.rows(atoms)
        volumes.append(atoms.get_volume())
        rows.append(np.asarray(r.energy, dtype=float))
        energies.append(float(r.energy @ theta + r.ref_energy))
        pressures.append(-float((r.stress @ theta + r.ref_stress)[:3].mean()))
    volumes, energies, rows, pressures = map(np.asarray, (volumes, energies, rows, pressures))
    b = _eos_modulus(volumes, energies, eos)
    de, dv = 1e-5, 1e-5 * volumes.mean()
    jac_e, jac_v = np.zeros(n_points), np.zeros(n_points)
    for i in range(n_points):
        step = np.zeros(n_points)
        step[i] = 1.0
        jac_e[i] = (_eos_modulus(volumes, energies + de * step, eos) - _eos_modulus(volumes, energies - de * step, eos)) / (2 * de)
        jac_v[i] = (_eos_modulus(volumes + dv * step, energies, eos) - _eos_modulus(volumes - dv * step, energies, eos)) / (2 * dv)
    gradient = jac_e @ rows
    # the scan moves with a0: dV_i/da0 = 3 V_i / a0 and dE_i/da0 = −p_i dV_i/da0
    dv_da = 3.0 * volumes / a0
    return gradient + float(jac_e @ (-pressures * dv_da) + jac_v @ dv_da) * da0, b


def _value(pair: tuple[np.ndarray, float], theta: np.ndarray) -> float:
    return float(pair[0] @ theta + pair[1])


def cubic_parameter_gradient(descriptor, theta: np.ndarray, symbol: str, structure: str, quantity: str,
                             a0: float, own_lattice: bool = True, strain: float = STRAIN_STEP,
                             eos: dict | None = None) -> tuple[np.ndarray, dict]:
    """dc/dθ (P,) of a cubic crystal's ``quantity`` for the linear model (descriptor, θ).

    Parameters
    ----------
    descriptor : Descriptor
        Gives stress rows (``Rows.kinds`` includes ``"stress"``).
    theta : (P,) ndarray
        Where the derivative is taken.
    symbol, structure : str
        Element and cubic structure (bcc or fcc).
    quantity : {"a0", "B", "C11", "C12", "C44"}
        a0 in Å, the others in GPa.
    a0 : float
        Lattice constant (Å) the quantity is evaluated at: the model's zero-pressure one at θ
        (``own_lattice``), or a fixed cell.
    own_lattice : bool, default True
        The cell follows the model's own a0(θ) (the term (∂c/∂a) ∂a0/∂θ); False: a fixed cell.
    strain : float
        Strain of the central stress differences.
    eos : dict, optional
        ``volume_range``, ``n_points`` and ``eos`` of the bulk modulus's scan (quantity B;
        default: :class:`~.bulk.BulkModulus`'s ±2 %, 11 points, Birch–Murnaghan).

    Returns
    -------
    gradient : (P,) ndarray
    info : dict
        ``a0``, ``da0_norm`` (|∂a0/∂θ|) and ``local``: the finite-difference value of the quantity
        at θ, to compare with the property's own evaluation.
    """
    if structure not in CUBIC:
        raise ValueError(f"parameter gradients exist for cubic crystals {CUBIC} only, not {structure!r}")
    theta = np.asarray(theta, dtype=float)
    own, a0 = bool(own_lattice), float(a0)
    h = LATTICE_STEP * a0
    cube = _Cube(descriptor, symbol, structure, strain)
    rows_p, _ = cube.pressure(a0)
    dp_da = (_value(cube.pressure(a0 + h), theta) - _value(cube.pressure(a0 - h), theta)) / (2 * h)
    if dp_da >= 0:
        raise ValueError(f"{symbol} {structure} at a = {a0:.5f} Å: the pressure does not fall with a "
                         f"(dp/da = {dp_da:.3g} eV/Å⁴), no stable lattice to differentiate")
    da0 = -rows_p / dp_da if own else np.zeros_like(theta)
    if quantity == "a0":
        return da0, {"a0": a0, "local": a0, "da0_norm": float(np.linalg.norm(da0))}

    info = {"a0": a0, "da0_norm": float(np.linalg.norm(da0))}
    if quantity == "B":
        settings = {"volume_range": 0.02, "n_points": 11, "eos": "birchmurnaghan"} | (eos or {})
        gradient, b = eos_modulus_gradient(descriptor, theta, symbol, structure, a0, da0, **settings)
        return gradient, info | {"local": b}
    if quantity not in ("C11", "C12", "C44"):
        raise ValueError(f"quantity must be one of a0, B, C11, C12, C44, got {quantity!r}")
    at = cube.elastic(a0)[quantity]
    gradient = at[0].copy()
    if own:
        up, down = cube.elastic(a0 + h)[quantity], cube.elastic(a0 - h)[quantity]
        dc_da = (_value(up, theta) - _value(down, theta)) / (2 * h)
        gradient += dc_da * da0
    return gradient, info | {"local": _value(at, theta)}
