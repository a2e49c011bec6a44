"""Shared test fixtures: location of the optional ../shared/data DFT files."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


import pytest  # noqa: E402


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
