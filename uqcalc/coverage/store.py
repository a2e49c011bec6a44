"""The study store: every expensive result checkpointed under a key of what it depends on.

One rule for everything a :class:`~uqcalc.coverage.CoverageStudy` keeps (fitted ensembles,
reference values, propagated results, held-out coverage): a result is written as soon as it is
computed, atomically, together with a key that hashes everything it depends on; a later run
reuses it when the key matches and recomputes it otherwise. An interrupted or killed run
therefore resumes where it stopped, and a changed setting recomputes exactly what it affects.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ._io import read_json, write_json

__all__ = ["Store", "digest", "safe_name"]

T = TypeVar("T")


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able object (keys sorted; other objects by ``repr``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def safe_name(name: str) -> str:
    """``name`` as a file name (anything but letters, digits, ``_.-`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class Store:
    """Checkpoints under a directory; ``Store(None)`` keeps nothing (every call computes).

    Parameters
    ----------
    root : path or None
        Directory of the checkpoints (created on first write).
    """

    def __init__(self, root: str | Path | None):
        self.root = None if root is None else Path(root)

    def path(self, relpath: str) -> Path | None:
        """Where ``relpath`` lives (None without a root)."""
        return None if self.root is None else self.root / relpath

    def record(self, relpath: str, key: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
        """A JSON record: the stored one if its ``"key"`` matches, else ``compute()`` written with it.

        Returns
        -------
        (record, hit)
            ``hit`` is True when nothing was computed.
        """
        path = self.path(relpath)
        if path is not None:
            stored = read_json(path)
            if stored is not None and stored.get("key") == key:
                return stored, True
        record = {"key": key, **compute()}
        if path is not None:
            write_json(path, record)
        return record, False

    def artifact(self, relpath: str, key: str, compute: Callable[[], T], save: Callable[[T, Path], None],
                 load: Callable[[Path], T], describe: dict | None = None) -> tuple[T, bool]:
        """A file written by ``save(obj, path)`` and read by ``load(path)``, keyed by a sidecar JSON.

        The sidecar (``relpath`` with suffix ``.json``, holding ``key`` and ``describe``) is
        written after the file: a crash between the two leaves a file without a key, which is
        recomputed rather than trusted.
        """
        path = self.path(relpath)
        if path is not None and path.exists():
            side = read_json(path.with_suffix(".json"))
            if side is not None and side.get("key") == key:
                return load(path), True
        obj = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save(obj, path)
            write_json(path.with_suffix(".json"), {"key": key, **(describe or {})})
        return obj, False
