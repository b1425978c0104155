"""Shared fixtures: a tiny city data folder, and the embedded Jiaozuo data built once.

What is dear is made once per session and copied: building the Jiaozuo database takes
seconds, each account a scrypt hash (about 0.2 s), the rule engine seconds more.

- ``jiaozuo_db``: the built (and flagged) database file, no accounts;
- ``jiaozuo_users_db``: the same with one account per role (``webutil.ROLES``);
- ``offline_app`` / ``viewer_client``: one app on a copy of it, shared by every module that
  only reads (intranet mode, no tiles); a module that writes to it fails at its end;
- ``instance`` / ``instance_with_users``: a private copy per test, for tests that write;
- ``make_app`` / ``make_module_app``: an app on a private copy with the accounts and the
  session's rule engine, per test or per module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from geoapp.config import load_settings
from geoapp.services import checks, open_geoapp
from geoapp.storage import open_repository
from geoapp.web import create_app

from pg import pg_server, pg_url  # noqa: F401  (fixtures)
from tinycity import write_tiny_city
from webutil import (
    ENGINE_CACHE,
    copy_database,
    login,
    make_users,
    share_engine,
    writes_after,
    writes_seen,
)

#: Offline mode of the shared read-only app (and of most web tests).
OFFLINE = {"INTRANET": True, "TESTING": True, "TILES": "none"}


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A minimal valid city data folder (2 counties, 1 river, 1 zone, 2-3 sites per type)."""
    return write_tiny_city(tmp_path / "data")


@pytest.fixture
def repo(tiny_data_dir: Path, tmp_path: Path):
    """A GeoPackage repository built from ``tiny_data_dir``."""
    repository = open_repository({"DATABASE": str(tmp_path / "db" / "geoapp.gpkg")})
    repository.initialize(tiny_data_dir)
    yield repository
    repository.close()


@pytest.fixture(scope="session")
def jiaozuo_db(tmp_path_factory) -> Path:
    """The embedded Jiaozuo data built (and flagged) once per test session."""
    inst = tmp_path_factory.mktemp("jiaozuo-template")
    core = open_geoapp(load_settings(inst, environ={}))
    core.repo.close()
    return Path(core.settings["DATABASE"])


@pytest.fixture(scope="session")
def jiaozuo_users_db(tmp_path_factory, jiaozuo_db: Path) -> Path:
    """``jiaozuo_db`` with one account per role, made once per session."""
    inst = copy_database(jiaozuo_db, tmp_path_factory.mktemp("jiaozuo-users-template")).parent
    core = open_geoapp(load_settings(inst, environ={}))
    make_users(core)
    core.repo.close()
    return Path(core.settings["DATABASE"])


@pytest.fixture(scope="session")
def jiaozuo_engine(tmp_path_factory, jiaozuo_users_db: Path):
    """The rule engine of the Jiaozuo data (its cache entry), built once per session."""
    inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp("jiaozuo-engine")).parent
    core = open_geoapp(load_settings(inst, environ={}))
    checks.engine(core)
    core.repo.close()
    return core.cache[ENGINE_CACHE]


@pytest.fixture
def instance(tmp_path: Path, jiaozuo_db: Path) -> Path:
    """A fresh instance folder holding a private copy of the built Jiaozuo database."""
    return copy_database(jiaozuo_db, tmp_path / "instance").parent


@pytest.fixture
def instance_with_users(tmp_path: Path, jiaozuo_users_db: Path) -> Path:
    """Like ``instance``, with one account per role already in the database."""
    return copy_database(jiaozuo_users_db, tmp_path / "instance-with-users").parent


def _app_factory(folder: Callable[[], Path], users_db: Path, engine) -> Callable[..., Flask]:
    def make(instance: Path | None = None, **config) -> Flask:
        if instance is None:
            instance = copy_database(users_db, folder()).parent
        app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True, **config})
        make_users(app)
        return share_engine(app, engine)

    return make


@pytest.fixture
def make_app(tmp_path: Path, jiaozuo_users_db: Path, jiaozuo_engine) -> Callable[..., Flask]:
    """Factory: ``make_app(**config)`` is the web app (TESTING) on a private copy of the
    Jiaozuo database with one account per role and the session's rule engine, for a test
    that writes; ``make_app(instance=path)`` opens another app on an existing instance."""
    made = iter(range(1_000))
    return _app_factory(lambda: tmp_path / f"app-{next(made)}", jiaozuo_users_db,
                        jiaozuo_engine)


@pytest.fixture(scope="module")
def make_module_app(tmp_path_factory, jiaozuo_users_db: Path,
                    jiaozuo_engine) -> Callable[..., Flask]:
    """Module-scoped ``make_app``: one app for the tests of a module that write (or fail
    logins) but may share their writes with each other."""
    return _app_factory(lambda: tmp_path_factory.mktemp("module-app"), jiaozuo_users_db,
                        jiaozuo_engine)


@pytest.fixture(scope="session")
def shared_offline_app(tmp_path_factory, jiaozuo_users_db: Path, jiaozuo_engine) -> Flask:
    """The one read-only app of the session (use ``offline_app``, which guards it)."""
    inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp("offline-instance")).parent
    return share_engine(create_app({"INSTANCE_PATH": str(inst), **OFFLINE}), jiaozuo_engine)


@pytest.fixture(scope="module")
def offline_app(shared_offline_app: Flask):
    """The web app on a copy of the Jiaozuo database: intranet mode, no tiles, one account
    per role. Shared by every module of the session: for tests that read, not write; the
    module fails at its end if it changed data, accounts or failed a login."""
    before = writes_seen(shared_offline_app)
    yield shared_offline_app
    if writes_seen(shared_offline_app) != before:
        pytest.fail("a test wrote to the shared read-only offline_app: "
                    f"{writes_after(shared_offline_app, before)[:10]}; give it an app of its "
                    "own (make_app, make_module_app)", pytrace=False)


@pytest.fixture(scope="module")
def viewer_client(offline_app: Flask):
    """A test client of ``offline_app`` logged in as a viewer."""
    c = offline_app.test_client()
    login(c, "viewer")
    return c
