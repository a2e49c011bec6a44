"""DesignMatrix: the rows of a training set under a descriptor, with weights and row labels.

Row kinds and units (unweighted ``X``/``y``):

* ``energy`` — one row per frame with ``REF_energy``; per atom by default (eV/atom),
  i.e. ``(E_ref - E_reference_part) / N``;
* ``force`` — 3 rows per atom for frames with ``REF_forces`` (eV/Å);
* ``stress`` — 6 rows (ASE Voigt) for frames with ``REF_stress`` (eV/Å^3).

Weights ``w`` multiply squared residuals; backends work in the weighted space
(rows scaled by √w, ``METHODS.md``). The default makes the three kinds commensurate:
energy and force weights are 1 per (eV/atom)² and (eV/Å)², and a stress row's weight
is ``weights["stress"] * (V/N)²``, so stress residuals count as virial per atom in
eV — a raw eV/Å^3 residual is ~100× smaller than an energy residual and would
otherwise be ignored.

Size: ~420 lines, one class: building (parallel, cached), selecting, weighted access for the
backends, per-frame statistics, identity (:meth:`DesignMatrix.digest`) and persistence.
"""

from __future__ import annotations

import hashlib
import time
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from .data import (
    ENERGY,
    FORCES,
    STRESS,
    frames_digest,
    group_of,
    require_labels,
    validate,
)
from .descriptors import Descriptor, worker_descriptor

__all__ = ["DEFAULT_WEIGHTS", "KINDS", "NOISE_FLOOR", "DesignMatrix"]

KINDS = ("energy", "force", "stress")
# Absolute noise floor of a reference per row kind, in the design's units (energy per atom eV,
# force eV/Å, stress eV/Å³): 0.1 meV/atom, 1 meV/Å, 1e-3 GPa — below what converged plane-wave
# DFT claims, far above the round-off of symmetry-zero rows. Used by the coverage metrics and by
# POPS calibration ("covered within the floor").
NOISE_FLOOR = {"energy": 1e-4, "force": 1e-3, "stress": 1e-3 / 160.21766208}
DEFAULT_WEIGHTS = {"energy": 1.0, "force": 1.0, "stress": 1.0}
# how a stress row's weight is scaled: by (V/N)² (residuals as virial per atom, eV), or not
# (weights per (eV/Å^3)², as FitSNAP-style inputs state them)
STRESS_SCALES = ("virial_per_atom", "none")
_SCHEMA = 1
# metadata entries that say which training set a design is: a subset (select) must not inherit them
_IDENTITY_KEYS = ("cache_key", "training_set_digest", "n_frames", "parent", "selection")


def _resolve_weights(weights: Mapping | None) -> dict:
    resolved = dict(DEFAULT_WEIGHTS)
    groups = {}
    for key, value in (weights or {}).items():
        if key == "groups":
            for group, per_kind in value.items():
                bad = set(per_kind) - set(KINDS)
                if bad:
                    raise ValueError(f"weights['groups'][{group!r}]: unknown row kinds {sorted(bad)}; use {KINDS}")
                groups[group] = {k: float(v) for k, v in per_kind.items()}
        elif key in KINDS:
            resolved[key] = float(value)
        elif key == "stress_scale":
            if value not in STRESS_SCALES:
                raise ValueError(f"weights['stress_scale'] must be one of {STRESS_SCALES}, got {value!r}")
        else:
            raise ValueError(f"unknown weights key {key!r}; use {KINDS}, 'groups' or 'stress_scale'")
    for key, value in resolved.items():
        if not value >= 0:
            raise ValueError(f"weights[{key!r}] must be >= 0, got {value}")
    resolved["groups"] = groups
    if (weights or {}).get("stress_scale", STRESS_SCALES[0]) != STRESS_SCALES[0]:
        resolved["stress_scale"] = weights["stress_scale"]  # only when not the default: cache keys stay
    return resolved


def _frame_block(atoms: Atoms, index: int, rows, weights: dict, energy_per_atom: bool) -> dict:
    """Rows, targets and labels of one frame."""
    n = len(atoms)
    group = group_of(atoms)
    per_kind = {**weights, **weights["groups"].get(group, {})}
    X, y, w, kind = [], [], [], []
    if ENERGY in atoms.info and per_kind["energy"] > 0:
        scale = 1.0 / n if energy_per_atom else 1.0
        X.append(rows.energy[None, :] * scale)
        y.append([(float(atoms.info[ENERGY]) - rows.ref_energy) * scale])
        w.append([per_kind["energy"]])
        kind.append(["energy"])
    # rows a descriptor does not differentiate (Rows.kinds) carry no information on theta
    if FORCES in atoms.arrays and per_kind["force"] > 0 and "force" in rows.kinds:
        X.append(rows.forces.reshape(3 * n, -1))
        y.append((np.asarray(atoms.arrays[FORCES], dtype=float) - rows.ref_forces).ravel())
        w.append(np.full(3 * n, per_kind["force"]))
        kind.append(["force"] * (3 * n))
    if STRESS in atoms.info and per_kind["stress"] > 0 and "stress" in rows.kinds:
        if rows.stress is None:
            raise ValueError(f"frame {index} (group {group!r}) has REF_stress but the descriptor gave no stress rows")
        stress = np.asarray(atoms.info[STRESS], dtype=float)
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        X.append(rows.stress)
        y.append(stress - rows.ref_stress)
        scale = (atoms.get_volume() / n) ** 2 if weights.get("stress_scale", STRESS_SCALES[0]) == STRESS_SCALES[0] else 1.0
        w.append(np.full(6, per_kind["stress"] * scale))
        kind.append(["stress"] * 6)
    if not X:
        return {"X": np.zeros((0, rows.energy.shape[0])), "y": np.zeros(0), "w": np.zeros(0), "kind": []}
    return {
        "X": np.concatenate(X),
        "y": np.concatenate([np.asarray(v, dtype=float) for v in y]),
        "w": np.concatenate([np.asarray(v, dtype=float) for v in w]),
        "kind": [k for block in kind for k in block],
    }


def _build_chunk(spec: dict, frames: list[Atoms], start: int, weights: dict, energy_per_atom: bool) -> list[dict]:
    descriptor = worker_descriptor(spec)
    return [
        _frame_block(atoms, start + i, descriptor.rows(atoms), weights, energy_per_atom)
        for i, atoms in enumerate(frames)
    ]


@dataclass
class DesignMatrix:
    """Design rows of a training set.

    Parameters
    ----------
    X : (n_rows, P) array
        Unweighted rows: derivatives of the labelled quantity with respect to theta.
    y : (n_rows,) array
        Targets with the descriptor's fixed reference part subtracted.
    w : (n_rows,) array, optional
        Weights on squared residuals (default 1).
    kind : (n_rows,) array of str, optional
        ``"energy"``, ``"force"`` or ``"stress"`` (default ``"energy"``).
    config : (n_rows,) int array, optional
        Index of the frame each row comes from (default: one frame per row).
    group : (n_rows,) array of str, optional
        Group label of the row's frame (default ``""``).
    metadata : dict, optional
        Provenance: descriptor spec, training-set digest, weights.
    """

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None = None
    kind: np.ndarray | None = None
    config: np.ndarray | None = None
    group: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.X = np.asarray(self.X, dtype=float)
        if self.X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_rows, n_params), got shape {self.X.shape}")
        n = self.X.shape[0]
        self.y = np.asarray(self.y, dtype=float).reshape(-1)
        self.w = np.ones(n) if self.w is None else np.asarray(self.w, dtype=float).reshape(-1)
        self.kind = np.full(n, "energy") if self.kind is None else np.asarray(self.kind, dtype="<U6")
        self.config = np.arange(n) if self.config is None else np.asarray(self.config, dtype=np.int64)
        self.group = np.full(n, "") if self.group is None else np.asarray(self.group, dtype=str)
        for name in ("y", "w", "kind", "config", "group"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({n},) to match X")
        bad_kinds = set(np.unique(self.kind)) - set(KINDS)
        if bad_kinds:
            raise ValueError(f"unknown row kinds {sorted(bad_kinds)}; use {KINDS}")
        if np.any(self.w < 0) or not np.all(np.isfinite(self.w)):
            raise ValueError("weights must be finite and >= 0")
        if not (np.all(np.isfinite(self.X)) and np.all(np.isfinite(self.y))):
            bad = np.flatnonzero(~(np.all(np.isfinite(self.X), axis=1) & np.isfinite(self.y)))[0]
            raise ValueError(f"non-finite design row {bad} (config {self.config[bad]}, kind {self.kind[bad]})")

    # -- construction -------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        frames: Sequence[Atoms],
        descriptor: Descriptor,
        weights: Mapping | None = None,
        executor: Executor | None = None,
        cache_dir: str | Path | None = None,
        energy_per_atom: bool = True,
        chunk_size: int = 64,
        progress: bool | None = None,
    ) -> DesignMatrix:
        """Build the design matrix of ``frames`` under ``descriptor``.

        Parameters
        ----------
        frames
            Training frames with ``REF_*`` labels (see :mod:`uqcalc.data`); validated first.
        descriptor
            Any :class:`~uqcalc.descriptors.Descriptor`.
        weights
            Per-kind weights ``{"energy": 1, "force": 1, "stress": 1}`` and per-group
            overrides ``{"groups": {"surface": {"force": 0.1}}}``. A kind with weight 0 gets no rows.
            ``"stress_scale": "none"`` applies the stress weight to (eV/Å^3)² residuals as is
            (default ``"virial_per_atom"``: times (V/N)², see the module docstring).
        executor
            Any :class:`concurrent.futures.Executor` (process pool, dask ``Client.get_executor()``);
            workers receive the descriptor spec and chunks of frames. ``None`` builds serially.
        cache_dir
            If given, the result is stored there under a hash of (frames, descriptor spec,
            weights, energy_per_atom) and reused; any change to a frame or parameter misses.
        energy_per_atom
            Energy rows as energy per atom (default) or total energy.
        chunk_size
            Frames per executor task.
        progress
            Show a progress bar (default: only on a terminal).
        """
        frames = list(frames)
        validate(frames, species=getattr(descriptor, "species", None))
        require_labels(frames)
        resolved = _resolve_weights(weights)
        present = {group_of(a) for a in frames}
        absent = sorted(set(resolved["groups"]) - present)
        if absent:
            warnings.warn(f"weights name groups that no frame has: {absent} (groups present: {sorted(present)})",
                          stacklevel=2)
        spec = descriptor.spec()
        key = cls._cache_key(frames, spec, resolved, energy_per_atom)
        cache_path = None
        if cache_dir is not None:
            cache_path = Path(cache_dir) / f"design-{key[:24]}.npz"
            if cache_path.exists():
                return cls.load(cache_path)

        t_start = time.perf_counter()
        bar = tqdm(total=len(frames), desc="design rows", unit="frame", disable=None if progress is None else not progress)
        blocks = []
        if executor is None:
            for i, atoms in enumerate(frames):
                blocks.append(_frame_block(atoms, i, descriptor.rows(atoms), resolved, energy_per_atom))
                bar.update()
        else:
            starts = range(0, len(frames), chunk_size)
            futures = [
                executor.submit(_build_chunk, spec, frames[s : s + chunk_size], s, resolved, energy_per_atom)
                for s in starts
            ]
            for s, future in zip(starts, futures):
                blocks.extend(future.result())
                bar.update(min(chunk_size, len(frames) - s))
        bar.close()

        P = descriptor.n_params
        counts = [len(b["y"]) for b in blocks]
        design = cls(
            X=np.concatenate([b["X"] for b in blocks]) if blocks else np.zeros((0, P)),
            y=np.concatenate([b["y"] for b in blocks]) if blocks else np.zeros(0),
            w=np.concatenate([b["w"] for b in blocks]) if blocks else np.zeros(0),
            kind=np.array([k for b in blocks for k in b["kind"]], dtype="<U6"),
            config=np.repeat(np.arange(len(frames)), counts),
            group=np.repeat(np.array([group_of(a) for a in frames], dtype=str), counts),
            metadata={
                "descriptor": spec,
                "training_set_digest": frames_digest(frames),
                "n_frames": len(frames),
                "weights": resolved,
                "energy_per_atom": energy_per_atom,
                "cache_key": key,
                # kept in the cache: a design read back still says what building it cost
                "build_wall_s": time.perf_counter() - t_start,
            },
        )
        if 0 < design.n_rows < P:
            warnings.warn(f"the design has {design.n_rows} rows for {P} parameters: the fit is underdetermined "
                          "and only the prior (ridge) fixes the rest", stacklevel=2)
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            design.save(cache_path)
        return design

    @staticmethod
    def _cache_key(frames, spec, weights, energy_per_atom) -> str:
        h = hashlib.sha256()
        h.update(frames_digest(frames).encode())
        h.update(json.dumps({"spec": spec, "weights": weights, "per_atom": energy_per_atom, "schema": _SCHEMA}, sort_keys=True).encode())
        return h.hexdigest()

    # -- shape and selection --------------------------------------------------------------

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]

    @property
    def n_params(self) -> int:
        return self.X.shape[1]

    def __len__(self) -> int:
        return self.n_rows

    def select(self, mask: np.ndarray) -> DesignMatrix:
        """A new DesignMatrix with the rows where ``mask`` is true (or at the given indices).

        The subset keeps what its rows are made of (descriptor, weights, energy_per_atom) and
        records where it came from (``parent``: the parent's :meth:`digest`, ``selection``: a
        digest of the row indices); it does not inherit the parent's identity (``cache_key``,
        ``training_set_digest``, ``n_frames``), so nothing keyed on a design mistakes a subset
        for its parent.
        """
        rows = np.arange(self.n_rows)[mask]
        metadata = {k: v for k, v in self.metadata.items() if k not in _IDENTITY_KEYS}
        metadata |= {
            "parent": self.digest(),
            "selection": hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest(),
            "n_frames": int(np.unique(self.config[rows]).size),
        }
        return DesignMatrix(
            X=self.X[rows], y=self.y[rows], w=self.w[rows], kind=self.kind[rows],
            config=self.config[rows], group=self.group[rows], metadata=metadata,
        )

    def about(self, theta0: np.ndarray) -> DesignMatrix:
        """The same rows with targets ``y − X θ₀``: fitting it fits a correction δ = θ − θ₀.

        Every backend's ridge or Gaussian prior is centred on zero; on this design it is
        centred on θ₀ (``Backend.fit(design, prior_mean=θ₀)`` uses it). The result records
        its parent and θ₀'s digest, not the parent's identity.
        """
        theta0 = np.asarray(theta0, dtype=float)
        if theta0.shape != (self.n_params,):
            raise ValueError(f"theta0 must have shape ({self.n_params},), got {theta0.shape}")
        metadata = {k: v for k, v in self.metadata.items() if k not in _IDENTITY_KEYS}
        metadata |= {"parent": self.digest(), "selection": "about:" + hashlib.sha256(np.ascontiguousarray(theta0, dtype="<f8").tobytes()).hexdigest(),
                     "n_frames": self.metadata.get("n_frames", int(np.unique(self.config).size))}
        return DesignMatrix(
            X=self.X, y=self.y - self.X @ theta0, w=self.w, kind=self.kind,
            config=self.config, group=self.group, metadata=metadata,
        )

    def digest(self) -> str:
        """A key for what this design is: equal digests mean the same rows, targets and weights.

        A design built from frames is identified by its build key (``cache_key``: frames,
        descriptor spec, weights); a subset by its parent's digest and the selected rows; a
        design made from arrays by a hash of every array (X, y, w, kind, config, group). Cached.
        """
        if self._digest is None:
            meta = self.metadata
            if meta.get("cache_key"):
                self._digest = str(meta["cache_key"])
            elif meta.get("parent") and meta.get("selection"):
                self._digest = hashlib.sha256(f"{meta['parent']}:{meta['selection']}".encode()).hexdigest()
            else:
                h = hashlib.sha256()
                for name in ("X", "y", "w", "kind", "config", "group"):
                    value = np.ascontiguousarray(getattr(self, name))
                    h.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
                    h.update(value.tobytes())
                self._digest = h.hexdigest()
        return self._digest

    def rows_of(self, kinds: str | Sequence[str] | None = None, groups: Sequence[str] | None = None) -> np.ndarray:
        """Boolean mask of rows of the given kinds and/or groups (None = all)."""
        mask = np.ones(self.n_rows, bool)
        if kinds is not None:
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            bad = set(kinds) - set(KINDS)
            if bad:
                raise ValueError(f"unknown row kinds {sorted(bad)}; use {KINDS}")
            mask &= np.isin(self.kind, kinds)
        if groups is not None:
            mask &= np.isin(self.group, list(groups))
        return mask

    # -- weighted access for backends ------------------------------------------------------

    def weighted(self) -> tuple[np.ndarray, np.ndarray]:
        """(X·√w, y·√w) as new arrays (n_rows × P memory; prefer :meth:`iter_weighted`)."""
        s = np.sqrt(self.w)
        return self.X * s[:, None], self.y * s

    def iter_weighted(self, chunk_rows: int = 65536) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """Yield ``(rows, X_chunk·√w, y_chunk·√w)`` so callers hold O(chunk × P) extra memory."""
        for start in range(0, self.n_rows, chunk_rows):
            sl = slice(start, min(start + chunk_rows, self.n_rows))
            s = np.sqrt(self.w[sl])
            yield sl, self.X[sl] * s[:, None], self.y[sl] * s

    def gram(self, chunk_rows: int = 65536) -> tuple[np.ndarray, np.ndarray, float]:
        """Weighted sufficient statistics (XᵀWX, XᵀWy, yᵀWy), accumulated in chunks."""
        P = self.n_params
        XtX, Xty, yty = np.zeros((P, P)), np.zeros(P), 0.0
        for _, Xc, yc in self.iter_weighted(chunk_rows):
            XtX += Xc.T @ Xc
            Xty += Xc.T @ yc
            yty += float(yc @ yc)
        return XtX, Xty, yty

    def config_statistics(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-configuration sufficient statistics for resampling whole frames.

        Returns
        -------
        configs : (F,) int array
            Configuration indices, sorted.
        G : (F, P, P) array
            X_fᵀ W_f X_f per configuration.
        g : (F, P) array
            X_fᵀ W_f y_f.
        c : (F,) array
            y_fᵀ W_f y_f.
        """
        configs, inverse = np.unique(self.config, return_inverse=True)
        F, P = len(configs), self.n_params
        G, g, c = np.zeros((F, P, P)), np.zeros((F, P)), np.zeros(F)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(F + 1))
        for f in range(F):
            rows = order[bounds[f] : bounds[f + 1]]
            s = np.sqrt(self.w[rows])
            Xf, yf = self.X[rows] * s[:, None], self.y[rows] * s
            G[f], g[f], c[f] = Xf.T @ Xf, Xf.T @ yf, yf @ yf
        return configs, G, g, c

    # -- diagnostics -------------------------------------------------------------------------

    def errors(self, theta: np.ndarray, by: str = "group") -> dict[tuple[str, str], dict[str, float]]:
        """Unweighted RMSE and MAE of ``X @ theta`` against ``y`` per (group or config, kind).

        Units are those of the rows: eV/atom (energy), eV/Å (force), eV/Å^3 (stress).
        """
        if by not in ("group", "kind"):
            raise ValueError("by must be 'group' or 'kind'")
        residual = self.X @ np.asarray(theta, dtype=float) - self.y
        labels = self.group if by == "group" else np.full(self.n_rows, "all")
        table = {}
        for label in np.unique(labels):
            for kind in KINDS:
                mask = (labels == label) & (self.kind == kind)
                if mask.any():
                    r = residual[mask]
                    table[(str(label), kind)] = {
                        "rmse": float(np.sqrt(np.mean(r**2))),
                        "mae": float(np.mean(np.abs(r))),
                        "n_rows": int(mask.sum()),
                    }
        return table

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Store as ``.npz`` with JSON metadata (no pickle)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp, X=self.X, y=self.y, w=self.w, kind=self.kind, config=self.config, group=self.group,
            metadata=np.array(json.dumps({"schema": _SCHEMA, **self.metadata})),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> DesignMatrix:
        """Load a matrix written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as f:
                metadata = json.loads(str(f["metadata"]))
                if metadata.pop("schema", None) != _SCHEMA:
                    raise ValueError(f"{path}: design-matrix schema mismatch")
                return cls(X=f["X"], y=f["y"], w=f["w"], kind=f["kind"], config=f["config"], group=f["group"], metadata=metadata)
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"cannot read design matrix {path}: {err}") from err
