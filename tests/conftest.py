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


@pytest.fixture(scope="session")
def jiaozuo_db(tmp_path_factory) -> Path:
    """The embedded Jiaozuo data built (and flagged) once per test session."""
    from geoapp.config import load_settings
    from geoapp.services import open_geoapp

    inst = tmp_path_factory.mktemp("jiaozuo-template")
    core = open_geoapp(load_settings(inst, environ={}))
    core.repo.close()
    return Path(core.settings["DATABASE"])


@pytest.fixture
def instance(tmp_path: Path, jiaozuo_db: Path) -> Path:
    """A fresh instance folder holding a private copy of the built Jiaozuo database."""
    import shutil

    inst = tmp_path / "instance"
    inst.mkdir()
    shutil.copyfile(jiaozuo_db, inst / "geoapp.gpkg")
    return inst


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory, jiaozuo_db):
    """The web app on a private copy of the Jiaozuo database: intranet mode, no tiles,
    one account per role. Module-scoped: for tests that read, not write."""
    import shutil

    from geoapp.web import create_app

    from webutil import make_users

    inst = tmp_path_factory.mktemp("instance")
    shutil.copyfile(jiaozuo_db, inst / "geoapp.gpkg")
    app = create_app({"INSTANCE_PATH": str(inst), "INTRANET": True, "TESTING": True,
                      "TILES": "none"})
    make_users(app)
    return app


@pytest.fixture(scope="module")
def viewer_client(offline_app):
    """A test client of ``offline_app`` logged in as a viewer."""
    from webutil import login

    c = offline_app.test_client()
    login(c, "viewer")
    return c
