"""Shared fixtures: a tiny but complete city data folder and a repository built from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tinycity import write_tiny_city


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A minimal valid city data folder (2 counties, 1 river, 1 zone, 2-3 sites per type)."""
    return write_tiny_city(tmp_path / "data")


@pytest.fixture
def repo(tiny_data_dir: Path, tmp_path: Path):
    """A GeoPackage repository built from ``tiny_data_dir``."""
    from geoapp.storage import open_repository

    repository = open_repository({"DATABASE": str(tmp_path / "db" / "geoapp.gpkg")})
    repository.initialize(tiny_data_dir)
    yield repository
    repository.close()
