"""Shared test fixtures: location of the optional ../shared/data DFT files."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
