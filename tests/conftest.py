"""Shared test fixtures: location of the optional ../shared/data DFT files."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """One BLAS thread: relaxations make thousands of 3x3 LAPACK calls, which multithreaded
    OpenBLAS slows by orders of magnitude whenever another process shares the cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def pair():
    """Teacher-fitted PairBasis (physical bcc W) as a LinearPotential: the cheap property model."""
    from uqcalc import LinearPotential

    from .models import fitted_model

    descriptor, ensemble = fitted_model()
    return LinearPotential(descriptor, ensemble.theta)


@pytest.fixture(scope="module")
def constant_only():
    """E = N β0: no forces, no stress; every formation, binding or surface energy is exactly 0."""
    import numpy as np

    from uqcalc import LinearPotential
    from uqcalc.descriptors import PairBasis

    descriptor = PairBasis(n_basis=4)
    theta = np.zeros(descriptor.n_params)
    theta[0] = -8.7
    return LinearPotential(descriptor, theta)
