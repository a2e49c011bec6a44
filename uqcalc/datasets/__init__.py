"""Ready-made training data: the tungsten teacher set and fetchers for public DFT sets.

``uqcalc.datasets.tungsten`` generates a tungsten training set labelled by a published
SNAP potential (no files needed); :func:`fetch` downloads, converts, verifies and
caches public DFT sets such as ``"tungsten-wood2017"``; :func:`small_bulk_set` is the
17-frame bulk set of the tutorials and test models.
"""

from . import tungsten
from .fetch import REGISTRY, ChecksumError, Source, content_hash, fetch, register
from .lammps_calculator import LammpsPotential
from .small import small_bulk_set

__all__ = ["REGISTRY", "ChecksumError", "LammpsPotential", "Source", "content_hash", "fetch", "register", "small_bulk_set", "tungsten"]
