"""The last (readout) layer of a foundation model as a linear-in-parameter descriptor.

A graph network such as CHGNet or SevenNet ends in a per-atom linear readout: with ``h_i`` the
hidden features of atom ``i`` after the last non-linearity, its energy is::

    E = Σ_i [ a(s_i) (w · h_i + b) + c(s_i) ]

with ``w`` (K,) the readout weights, ``b`` its bias, ``a(s)`` a per-species scale and ``c(s)`` a
per-species reference energy (CHGNet's ``AtomRef``, SevenNet's species-wise shift). This is
linear in ``θ = (w, κ_s)`` with per-atom features ``x_i = (a(s_i) h_i, onehot(s_i))`` and
``κ_s = a(s) b + c(s)``: the whole network below the readout is the (fixed) feature map, and
``LastLayer.pretrained(name)`` returns the descriptor with the model's own ``θ``, so that
``rows.energy @ theta + rows.ref_energy`` *is* the model's energy. Per-species columns exist for
``species`` (they absorb DFT energy-zero shifts in a refit); elements outside it keep their
``κ_s`` in the fixed reference part.

This module is the only place uqcalc imports ``torch`` and the model packages (the optional
``foundation`` extra); ``uqcalc.descriptors`` loads it only when ``LastLayer`` is asked for.

Feature Jacobians (force and stress rows, ``derivatives=True``) cost one reverse pass per
feature, K ≈ 64 passes per structure; see ``docs/foundation_models.md`` for the measured
costs. Without them the force and stress *rows* are absent (``Rows.kinds`` says so) and the
reference forces and stress are the model's own at ``readout`` (one reverse pass): that is what
an MD or relaxation with the point estimate needs.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from .base import Descriptor, Rows

__all__ = ["LastLayer", "PRETRAINED"]

#: Names accepted by :meth:`LastLayer.pretrained` and the package that provides each.
PRETRAINED = {
    "chgnet-0.3.0": "chgnet",
    "chgnet-0.2.0": "chgnet",
    "chgnet-r2scan": "chgnet",
    "sevennet-0": "sevenn",
}

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class _Graph:
    """Per-atom readout features of one structure and the handles to differentiate them."""

    features: torch.Tensor  # (N, K), already multiplied by the species scale a(s_i)
    grad: Callable[[torch.Tensor, bool], tuple[np.ndarray, np.ndarray | None]]
    fixed: torch.Tensor | None = None  # (N,) per-atom energy outside the readout (MACE's ZBL pair part)
    # grad(scalar, retain) -> (dscalar/dR (N, 3), (1/V) dscalar/dstrain in ASE Voigt order or None)


class _Family:
    """One model family: loading, the readout's constants and the feature pass."""

    name: str
    model: torch.nn.Module
    #: atomic numbers the model knows
    numbers: tuple[int, ...]

    def readout(self) -> tuple[np.ndarray, dict[int, float]]:
        """``w`` (K,) and ``κ(Z) = a(Z) b + c(Z)`` for every known element."""
        raise NotImplementedError

    def graph(self, atoms: Atoms, dtype: torch.dtype, stress: bool) -> _Graph:
        raise NotImplementedError

    def calculator(self):
        raise NotImplementedError


def _probe_linear(layer: torch.nn.Module, k: int, dtype: torch.dtype) -> tuple[np.ndarray, float]:
    """Weights and bias of a linear map R^K → R given only as a module (e3nn or torch).

    e3nn's ``Linear`` applies path normalisation inside ``forward``; evaluating the module on
    the unit vectors and on zero gives the effective map without depending on that convention.
    """
    with torch.no_grad():
        x = torch.cat([torch.zeros(1, k, dtype=dtype), torch.eye(k, dtype=dtype)])
        out = layer(x).reshape(k + 1)
    bias = float(out[0])
    return (out[1:] - out[0]).double().numpy(), bias


class _CHGNet(_Family):
    """CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)): ``mlp_first`` site energies.

    Features: the input of the last ``Linear`` of ``model.mlp`` (after the readout MLP's last
    SiLU); ``a = 1``, ``c`` the ``AtomRef`` composition model, ``b`` that Linear's bias.
    """

    _VERSIONS = {"chgnet-0.3.0": "0.3.0", "chgnet-0.2.0": "0.2.0", "chgnet-r2scan": "r2scan"}

    def __init__(self, name: str, dtype: torch.dtype):
        from chgnet.model import CHGNet

        self.name = name
        with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its parameter count
            model = CHGNet.load(model_name=self._VERSIONS[name], use_device="cpu", verbose=False)
        if not model.mlp_first:
            raise ValueError(f"{name}: only mlp_first CHGNet models have per-atom readouts")
        self.model = model.to(dtype).eval()
        self._last = self.model.mlp.layers[-1]
        self.numbers = tuple(range(1, self.model.composition_model.fc.weight.shape[1] + 1))

    def readout(self):
        w = self._last.weight.detach().double().numpy()[0]
        b = 0.0 if self._last.bias is None else float(self._last.bias.detach()[0])
        ref = self.model.composition_model.fc.weight.detach().double().numpy()[0]
        return w, {z: b + ref[z - 1] for z in self.numbers}

    def graph(self, atoms, dtype, stress):
        from chgnet.model.model import BatchedGraph
        from pymatgen.io.ase import AseAtomsAdaptor

        model = self.model
        structure = AseAtomsAdaptor.get_structure(atoms)
        crystal = model.graph_converter(structure)
        for key, value in list(vars(crystal).items()):
            if torch.is_tensor(value) and value.is_floating_point():
                setattr(crystal, key, value.to(dtype))
        # the converter rounds coordinates and cell to float32; take them from the structure
        crystal.atom_frac_coord = torch.tensor(structure.frac_coords, dtype=dtype)
        crystal.lattice = torch.tensor(structure.lattice.matrix, dtype=dtype)
        with warnings.catch_warnings():  # CHGNet builds its volume tensor from tensors
            warnings.simplefilter("ignore", UserWarning)
            batch = BatchedGraph.from_graphs(
                [crystal],
                bond_basis_expansion=model.bond_basis_expansion,
                angle_basis_expansion=model.angle_basis_expansion,
                compute_stress=stress,
            )
        captured = {}
        hook = self._last.register_forward_hook(lambda mod, inp, out: captured.__setitem__("h", inp[0]))
        try:
            model._compute(batch, compute_force=False, compute_stress=False)
        finally:
            hook.remove()
        # pymatgen keeps the site order of the Atoms, and CHGNet the site order of the structure
        positions, strain = batch.atom_positions[0], batch.strains[0]
        volume = abs(atoms.cell.volume) if stress else None

        def grad(scalar, retain):
            inputs = (positions, strain) if stress else (positions,)
            g = torch.autograd.grad(scalar, inputs, retain_graph=retain)
            dpos = g[0].double().numpy()
            if not stress:
                return dpos, None
            s = g[1].double().numpy()
            s = 0.5 * (s + s.T) / volume
            return dpos, s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]

        return _Graph(captured["h"], grad)

    def calculator(self):
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        with contextlib.redirect_stdout(io.StringIO()):
            model = CHGNet.load(model_name=self._VERSIONS[self.name], use_device="cpu", verbose=False)
            return CHGNetCalculator(model=model, use_device="cpu")


class _SevenNet(_Family):
    """SevenNet-0 (Park et al., J. Chem. Theory Comput. 20, 4857 (2024)).

    Features: the input of ``reduce_hidden_to_energy`` (the 64 scalars after the last gate and
    ``reduce_input_to_hidden``); ``a``, ``c`` the species-wise scale and shift of
    ``rescale_atomic_energy``; the e3nn linear map probed numerically (:func:`_probe_linear`).
    Forces and stress come from gradients with respect to the edge vectors, as in SevenNet's own
    ``ForceStressOutputFromEdge``.
    """

    _NAMES = {"sevennet-0": "7net-0"}

    def __init__(self, name: str, dtype: torch.dtype):
        from sevenn.calculator import SevenNetCalculator

        self.name = name
        calc = SevenNetCalculator(self._NAMES[name], device="cpu")
        self.cutoff = float(calc.cutoff)
        self.model = calc.model.to(dtype).eval()
        self.type_map = dict(calc.type_map)  # Z -> type index
        self.numbers = tuple(sorted(self.type_map))
        modules = self.model._modules
        self._last = modules["reduce_hidden_to_energy"]
        self._rescale = modules["rescale_atomic_energy"]
        self._dtype = dtype

    def readout(self):
        k = self._last.irreps_in.dim
        w, b = _probe_linear(self._last.linear, k, self._dtype)
        scale = self._rescale.scale.detach().double().numpy()
        shift = self._rescale.shift.detach().double().numpy()
        return w, {z: scale[t] * b + shift[t] for z, t in self.type_map.items()}

    def graph(self, atoms, dtype, stress):
        from sevenn import _keys as KEY
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        def cast(data):
            for key in data.keys():
                value = data[key]
                if torch.is_tensor(value) and value.is_floating_point() and value.dtype != dtype:
                    data[key] = value.to(dtype)
            return data

        graph = unlabeled_atoms_to_graph(atoms, self.cutoff, with_shift=False)
        exact = {key: np.array(graph[key], dtype=float) for key in (KEY.POS, KEY.EDGE_VEC)}
        data = cast(AtomGraphData.from_numpy_dict(graph))
        # from_numpy_dict rounds positions and edge vectors to float32; restore them
        for key, value in exact.items():
            data[key] = torch.as_tensor(value, dtype=dtype)
        model = self.model
        captured = {}
        hook = self._last.register_forward_hook(
            lambda mod, inp, out: captured.__setitem__("h", inp[0][mod.key_input])
        )
        try:
            data = cast(model._preprocess(data))
            for name, module in model._modules.items():
                if name == "force_output":
                    break
                data = cast(module(data))  # the one-hot species embedding comes out float32
        finally:
            hook.remove()
        rij = data[KEY.EDGE_VEC]
        src, dst = data[KEY.EDGE_IDX]
        n = len(atoms)
        types = torch.as_tensor([self.type_map[int(z)] for z in atoms.numbers])
        scale = torch.as_tensor(self._species_scale(), dtype=dtype)[types]
        volume = abs(atoms.cell.volume) if stress else None

        def grad(scalar, retain):
            (fij,) = torch.autograd.grad(scalar, (rij,), retain_graph=retain)
            # rij = r_dst - r_src (+ shift): dscalar/dr_src = -Σ fij, dscalar/dr_dst = +Σ fij
            dpos = torch.zeros(n, 3, dtype=fij.dtype).index_add_(0, dst, fij).index_add_(0, src, -fij)
            if not stress:
                return dpos.double().numpy(), None
            virial = (rij.detach()[:, :, None] * fij[:, None, :]).sum(0).double().numpy()
            s = 0.5 * (virial + virial.T) / volume
            return dpos.double().numpy(), s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]

        return _Graph(captured["h"] * scale[:, None], grad)

    def _species_scale(self) -> np.ndarray:
        return self._rescale.scale.detach().double().numpy()

    def calculator(self):
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(self._NAMES[self.name], device="cpu")


@contextmanager
def _default_dtype(dtype: torch.dtype):
    """Run a model in ``dtype``: the packages create some tensors (one-hot species, strains)
    with torch's default dtype, not the model's."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class _MACE(_Family):
    """A MACE model (Batatia et al., NeurIPS 2022) the user provides, single head.

    Its energy is E0(s_i) + scale · (pair_i + Σ_l readout_l(h_i^l)) + shift: every layer's
    readout is linear in its input except the last, a ``NonLinearReadoutBlock`` whose
    ``linear_2`` is linear in the hidden activations after the gate. Features: the scalar (0e)
    channels of each linear readout's input and the last readout's hidden activations, times
    the scale; ``κ_s = E0(s) + shift + scale · Σ_l b_l``; the ZBL pair part, when the model has
    one, is the fixed reference part. MACE's ``get_descriptors()`` does not return the hidden
    activations; forward hooks do.
    """

    def __init__(self, model, dtype: torch.dtype):
        from mace.tools import AtomicNumberTable

        self.name = "mace"
        if isinstance(model, (str, os.PathLike)):
            model = torch.load(str(model), map_location="cpu", weights_only=False)
        heads = list(getattr(model, "heads", ["Default"]) or ["Default"])
        if len(heads) != 1:
            raise ValueError(f"multi-head MACE models ({heads}) are not supported; export a single head")
        self.heads = heads
        self.model = model.to(dtype).eval()
        self.numbers = tuple(int(z) for z in model.atomic_numbers)
        self.z_table = AtomicNumberTable(list(self.numbers))
        self.r_max = float(model.r_max)
        self._dtype = dtype
        self._linears = []  # (module whose input is captured, columns kept)
        for readout in model.readouts:
            lin = readout.linear_2 if hasattr(readout, "linear_2") else readout.linear
            cols = [i for (mul, ir), sl in zip(lin.irreps_in, lin.irreps_in.slices()) if ir.l == 0 and ir.p == 1
                    for i in range(sl.start, sl.stop)]
            self._linears.append((lin, cols))
        scale_shift = getattr(model, "scale_shift", None)
        self._scale = 1.0 if scale_shift is None else float(torch.atleast_1d(scale_shift.scale)[0])
        self._shift = 0.0 if scale_shift is None else float(torch.atleast_1d(scale_shift.shift)[0])
        self._constants = None

    def readout(self):
        ws, bias = [], 0.0
        for lin, cols in self._linears:
            w, b = _probe_linear(lin, lin.irreps_in.dim, self._dtype)
            ws.append(w[cols])
            bias += b
        e0 = self.model.atomic_energies_fn.atomic_energies.detach().double().numpy().reshape(-1)
        kappa = {z: e0[i] + self._shift + self._scale * bias for i, z in enumerate(self.numbers)}
        return np.concatenate(ws), kappa

    def graph(self, atoms, dtype, stress):
        from mace import data as mace_data
        from mace.tools import torch_geometric

        config = mace_data.config_from_atoms(atoms, head_name=self.heads[0])
        graph = mace_data.AtomicData.from_config(config, z_table=self.z_table, cutoff=self.r_max, heads=self.heads)
        batch = next(iter(torch_geometric.dataloader.DataLoader([graph], batch_size=1, shuffle=False))).to_dict()
        for key, value in batch.items():
            if torch.is_tensor(value) and value.is_floating_point():
                batch[key] = value.to(dtype)
        positions = batch["positions"].requires_grad_(True)
        displacement = torch.zeros((1, 3, 3), dtype=dtype, requires_grad=True) if stress else None
        if stress:
            batch["displacement"] = displacement
        captured = []
        hooks = [lin.register_forward_hook(lambda mod, inp, out, c=cols: captured.append(inp[0][:, c]))
                 for lin, cols in self._linears]
        try:
            out = self.model(batch, training=True, compute_force=False, compute_displacement=stress)
        finally:
            for h in hooks:
                h.remove()
        features = self._scale * torch.cat(captured, dim=1)
        volume = abs(atoms.cell.volume) if stress else None

        def grad(scalar, retain):
            inputs = (positions, displacement) if stress else (positions,)
            g = torch.autograd.grad(scalar, inputs, retain_graph=retain, allow_unused=True)
            dpos = np.zeros((len(atoms), 3)) if g[0] is None else g[0].double().numpy()
            if not stress:
                return dpos, None
            d = np.zeros((3, 3)) if g[1] is None else g[1].double().numpy()[0]
            d = 0.5 * (d + d.T) / volume
            return dpos, d[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]

        if self._constants is None:
            self._constants = self.readout()
        w, kappa = self._constants
        kappa_i = torch.as_tensor([kappa[int(z)] for z in atoms.numbers], dtype=dtype)
        # what the readout does not explain (the ZBL pair part; rounding otherwise)
        fixed = out["node_energy"].to(dtype) - features @ torch.as_tensor(w, dtype=dtype) - kappa_i
        return _Graph(features, grad, fixed=fixed)

    def calculator(self):
        from mace.calculators import MACECalculator

        dtype = "float64" if self._dtype == torch.float64 else "float32"
        return MACECalculator(models=[self.model], device="cpu", default_dtype=dtype)


_FAMILIES = {"chgnet": _CHGNet, "sevenn": _SevenNet}
_LOADED: dict[tuple[str, str], _Family] = {}


_MACE_MODULES: dict[str, torch.nn.Module] = {}  # in-memory MACE models by their "mace-module:<id>" name


def _family(name: str, dtype: str) -> _Family:
    """The loaded model family for ``name`` (one per process and dtype: loading costs seconds).

    ``name`` is a :data:`PRETRAINED` name, ``"mace:<path>"`` or ``"mace-module:<id>"``.
    """
    key = (name, dtype)
    if key in _LOADED:
        return _LOADED[key]
    if name.startswith("mace:"):
        _LOADED[key] = _MACE(name[len("mace:"):], _DTYPES[dtype])
    elif name.startswith("mace-module:"):
        if name not in _MACE_MODULES:
            raise ValueError(f"{name}: a MACE model given as a module exists only in the process that "
                             "created it; save it (torch.save) and use LastLayer.from_mace(path) for workers")
        _LOADED[key] = _MACE(_MACE_MODULES[name], _DTYPES[dtype])
    elif name in PRETRAINED:
        _LOADED[key] = _FAMILIES[PRETRAINED[name]](name, _DTYPES[dtype])
    else:
        raise ValueError(f"unknown foundation model {name!r}; known: {sorted(PRETRAINED)}, or LastLayer.from_mace(path)")
    return _LOADED[key]


class LastLayer(Descriptor):
    """Per-atom last-layer features of a pretrained foundation model (module docstring).

    Parameters
    ----------
    model
        A name of :data:`PRETRAINED` (``"chgnet-0.3.0"``, ``"sevennet-0"``, …).
    species
        Chemical symbols that get a per-species energy column (``κ_s``). ``None``: every element
        the model knows, so that any structure reconstructs; for a fit pass the elements of the
        training data (a column of an element absent from the data is not identifiable).
    derivatives
        Compute force and stress rows (feature Jacobians, one reverse pass per feature).
    readout
        Parameters ``θ`` at which the reference forces and stress are evaluated when
        ``derivatives`` is False (default: the pretrained ``θ``); see :meth:`with_reference_theta`.
    dtype
        ``"float64"`` (default: energies exact to rounding) or ``"float32"`` (the models' own
        precision, about twice as fast).
    forces
        Without ``derivatives``: compute the model's forces and stress at ``readout`` (one
        reverse pass). ``False`` skips it for energy-only work (design matrices of energy rows,
        half the cost); forces and stress are then NaN, so nothing can use them by mistake.
    num_threads
        torch intra-op threads (not part of :meth:`spec`); set 1 in worker processes (two threads per worker on a busy
        2-core machine stall the feature pass).

    Notes
    -----
    ``n_params = K + len(species)``: the readout weights first (K = 64 for CHGNet and
    SevenNet-0), then one column per species (its atom count).
    """

    def __init__(
        self,
        model: str,
        species: tuple[str, ...] | list[str] | None = None,
        derivatives: bool = False,
        readout: np.ndarray | list[float] | None = None,
        dtype: str = "float64",
        forces: bool = True,
        num_threads: int | None = None,
    ) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        self.model = str(model)
        self.dtype = dtype
        self.derivatives = bool(derivatives)
        self.forces = bool(forces)
        self.num_threads = num_threads
        fam = _family(self.model, dtype)
        self._w, self._kappa = fam.readout()
        known = {chemical_symbols[z] for z in fam.numbers}
        if species is None:
            species = tuple(chemical_symbols[z] for z in fam.numbers)
        species = tuple(str(s) for s in species)
        unknown = [s for s in species if s not in known]
        if unknown:
            raise ValueError(f"{self.model} does not know the species {unknown}")
        if len(set(species)) != len(species):
            raise ValueError(f"species {list(species)} has repeats")
        self.species = species
        self._column = {chemical_symbols.index(s): j for j, s in enumerate(species)}
        self._known = set(fam.numbers)
        theta0 = self.pretrained_theta()
        if readout is None:
            self.readout = None
            self._readout = theta0
        else:
            self._readout = np.asarray(readout, dtype=float)
            if self._readout.shape != theta0.shape:
                raise ValueError(f"readout must have shape {theta0.shape}, got {self._readout.shape}")
            self.readout = self._readout

    # -- constructors ----------------------------------------------------------------------

    @classmethod
    def pretrained(cls, name: str, **kwargs) -> tuple[LastLayer, np.ndarray]:
        """The descriptor of a pretrained model and its own readout ``θ``.

        ``rows.energy @ theta + rows.ref_energy`` is the model's energy (to float64 rounding);
        keyword arguments go to :class:`LastLayer`.
        """
        desc = cls(name, **kwargs)
        return desc, desc.pretrained_theta()

    @classmethod
    def from_mace(cls, model, **kwargs) -> tuple[LastLayer, np.ndarray]:
        """The descriptor of a MACE model (a file for ``torch.load`` or the module) and its readout θ.

        A path is part of :meth:`spec` (worker processes reload it); a module is usable in this
        process only. Keyword arguments go to :class:`LastLayer`.
        """
        if isinstance(model, torch.nn.Module):
            name = f"mace-module:{id(model)}"
            _MACE_MODULES[name] = model
        else:
            name = f"mace:{os.fspath(model)}"
        return cls.pretrained(name, **kwargs)

    def pretrained_theta(self) -> np.ndarray:
        """``θ`` of the pretrained readout: ``(w, κ_s for s in species)``."""
        return np.concatenate([self._w, [self._kappa[chemical_symbols.index(s)] for s in self.species]])

    def calculator(self):
        """The model's own ASE calculator (its package's, in its own precision)."""
        return _family(self.model, self.dtype).calculator()

    def with_reference_theta(self, theta: np.ndarray) -> LastLayer:
        """This descriptor with its reference forces and stress evaluated at ``theta``.

        Without feature Jacobians the forces of parameters ``theta`` are not ``rows.forces @
        theta``; a calculator for ``theta`` needs the model's forces at ``theta`` as the
        reference part. With ``derivatives=True`` this is the descriptor itself.
        """
        if self.derivatives:
            return self
        return type(self)(**{**self._kwargs(), "readout": np.asarray(theta, dtype=float)})

    # -- Descriptor ------------------------------------------------------------------------

    @property
    def n_params(self) -> int:
        return self._w.size + len(self.species)

    def _kwargs(self) -> dict:
        return {
            "model": self.model,
            "species": list(self.species),
            "derivatives": self.derivatives,
            "readout": None if self.readout is None else [float(v) for v in self.readout],
            "dtype": self.dtype,
            "forces": self.forces,
        }

    def spec(self) -> dict:
        return {"type": "LastLayer", **self._kwargs()}

    def rows(self, atoms: Atoms, per_atom: bool = False) -> Rows:
        numbers = atoms.get_atomic_numbers()
        bad = sorted({chemical_symbols[z] for z in numbers if z not in self._known})
        if bad:
            raise ValueError(f"{self.model} does not know the species {bad}")
        if len(atoms) == 0:
            raise ValueError("a structure without atoms has no last-layer features")
        periodic = bool(atoms.pbc.all())
        if not periodic and atoms.pbc.any():
            raise ValueError("mixed periodic boundary conditions are not supported by the foundation models here")
        fam = _family(self.model, self.dtype)
        torch_dtype = _DTYPES[self.dtype]
        grad = self.derivatives or self.forces
        with torch.set_grad_enabled(grad), _default_dtype(torch_dtype):
            g = fam.graph(atoms, torch_dtype, stress=periodic and grad)
            H = g.features  # (N, K)
            n, K = H.shape
            P = self.n_params
            per_atom_rows = np.zeros((n, P))
            per_atom_rows[:, :K] = H.detach().double().numpy()
            fixed = g.fixed
            ref_per_atom = np.zeros(n) if fixed is None else fixed.detach().double().numpy().copy()
            for i, z in enumerate(numbers):
                j = self._column.get(int(z))
                if j is None:
                    ref_per_atom[i] += self._kappa[int(z)]
                else:
                    per_atom_rows[i, K + j] = 1.0
            forces = np.zeros((n, 3, P))
            stress = np.zeros((6, P)) if periodic else None
            if self.derivatives:
                total = H.sum(0)
                for k in range(K):
                    dpos, dstrain = g.grad(total[k], True)
                    forces[:, :, k] = -dpos
                    if periodic:
                        stress[:, k] = dstrain
                if fixed is None:
                    ref_forces = np.zeros((n, 3))
                    ref_stress = np.zeros(6) if periodic else None
                else:
                    dpos, ref_stress = g.grad(fixed.sum(), False)
                    ref_forces = -dpos
            elif not self.forces:
                ref_forces = np.full((n, 3), np.nan)
                ref_stress = np.full(6, np.nan) if periodic else None
            else:
                w = torch.as_tensor(self._readout[:K], dtype=torch_dtype)
                energy = (H @ w).sum() if fixed is None else (H @ w).sum() + fixed.sum()
                dpos, dstrain = g.grad(energy, False)
                ref_forces = -dpos
                ref_stress = dstrain
        return Rows(
            energy=per_atom_rows.sum(0),
            forces=forces,
            stress=stress,
            per_atom=per_atom_rows if per_atom else None,
            ref_energy=float(ref_per_atom.sum()),
            ref_forces=ref_forces,
            ref_stress=ref_stress,
            ref_per_atom=ref_per_atom if per_atom else None,
            kinds=("energy", "force", "stress") if self.derivatives else ("energy",),
        )
