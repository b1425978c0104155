"""Shared fixtures: a tiny city data folder, and the embedded Jiaozuo data built once.

Every test that stores anything runs on both storage backends: the embedded GeoPackage and
PostGIS on a real PostgreSQL server the session starts (tests/pg.py). The ``backend``
fixture is parametrised (test ids end in ``[gpkg]`` / ``[postgis]``) and every database
fixture below depends on it; ``@pytest.mark.backends("gpkg")`` keeps a test to the backends
it is about (a GeoPackage file's own faults, say), and ``--backends=gpkg`` runs one backend
only (quicker while working; ``make test`` and CI run both).

What is dear is made once per session and copied: building the Jiaozuo database takes
seconds, each account a scrypt hash (about 0.2 s), the rule engine seconds more.

- ``jiaozuo_db``: the built (and flagged) database (a GeoPackage file, or a ``PgDatabase``),
  no accounts;
- ``jiaozuo_users_db``: the same with one account per role (``webutil.ROLES``);
- ``offline_app`` / ``viewer_client``: one app on a copy of it, shared by every module that
  only reads (intranet mode, no tiles); a module that writes to it fails at its end;
- ``instance`` / ``instance_with_users``: a private copy per test, for tests that write;
- ``make_app`` / ``make_module_app``: an app on a private copy with the accounts and the
  session's rule engine, per test or per module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    PG_COPIES,
    PgDatabase,
    close_repositories,
    copy_database,
    instance_settings,
    login,
    make_users,
    release,
    share_engine,
    track_repositories,
    writes_after,
    writes_seen,
)

#: The storage backends every storing test runs on.
BACKENDS = ("gpkg", "postgis")

# Every test instance would otherwise write its own 170 MB engine cache file; the cache has
# its own tests (test_engine_cache.py, which pass their settings explicitly).
os.environ.setdefault("GEOAPP_ENGINE_CACHE", "false")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backends", default=",".join(BACKENDS),
                     help="comma-separated storage backends the tests run on "
                          f"(default: {','.join(BACKENDS)})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): run only on these storage "
                                       "backends (default: all)")
    chosen = [b.strip() for b in config.getoption("--backends").split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown or not chosen:
        raise pytest.UsageError(f"--backends: unknown {unknown}; available: {BACKENDS}")
    config.stash[_CHOSEN] = chosen
    track_repositories()


_CHOSEN = pytest.StashKey[list]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``backend`` (and so every database fixture) over the chosen backends the
    test's ``backends`` mark allows."""
    if "backend" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.stash[_CHOSEN]
    mark = metafunc.definition.get_closest_marker("backends")
    allowed = [b for b in chosen if mark is None or b in mark.args]
    if not allowed:
        allowed = [None]  # deselected below: none of its backends is chosen
    metafunc.parametrize("backend", allowed, indirect=True, scope="session",
                         ids=[str(b) for b in allowed])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and "backend" in spec.params and spec.params["backend"] is None:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend of this run of the test: ``gpkg`` or ``postgis``."""
    return request.param


@pytest.fixture(autouse=True)
def _postgis_copies_dropped(tmp_path: Path):
    """After each test: close every PostGIS pool it opened and drop the database copies made
    under its own temporary folder (nothing is left connected or kept)."""
    yield
    close_repositories()
    if PG_COPIES:
        release(tmp_path)

#: Offline mode of the shared read-only app (and of most web tests).
OFFLINE = {"INTRANET": True, "TESTING": True, "TILES": "none"}


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A minimal valid city data folder (2 counties, 1 river, 1 zone, 2-3 sites per type)."""
    return write_tiny_city(tmp_path / "data")


@pytest.fixture
def store_settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """Settings of a new, empty store of this test's backend."""
    if backend == "postgis":
        return {"STORAGE_BACKEND": "postgis", "DATABASE_URL": request.getfixturevalue("pg_url")}
    return {"DATABASE": str(tmp_path / "db" / "geoapp.gpkg")}


@pytest.fixture
def repo(tiny_data_dir: Path, store_settings: dict):
    """A repository of this test's backend built from ``tiny_data_dir``."""
    repository = open_repository(store_settings)
    repository.initialize(tiny_data_dir)
    yield repository
    repository.close()


def _built(core, request: pytest.FixtureRequest, backend: str) -> Path | PgDatabase:
    """What ``copy_database`` copies: the closed GeoPackage file, or the PostGIS database."""
    core.repo.close()
    if backend == "postgis":
        server = request.getfixturevalue("pg_server")
        return PgDatabase(server, core.settings["DATABASE_URL"].rsplit("/", 1)[1])
    return Path(core.settings["DATABASE"])


def _template_instance(folder: Path, backend: str, request: pytest.FixtureRequest) -> Path:
    """An instance folder whose database is new and empty (PostGIS: on the test server)."""
    if backend == "postgis":
        server = request.getfixturevalue("pg_server")
        name = f"tpl_{folder.name.replace('-', '_').lower()}"
        server.psql(f"CREATE DATABASE {name} TEMPLATE geoapp_template")
        (folder / "geoapp.toml").write_text(instance_settings(server.url(name)),
                                            encoding="utf-8")
    return folder


# Templates are built once per backend and kept across the whole session: pytest tears a
# session fixture down whenever the backend parameter changes between test files, and
# rebuilding on every switch cost a minute of CPU and a folder each time.
_TEMPLATES: dict[tuple[str, str], Any] = {}

# The templates never write the engine cache (a large file beside every database).
_NO_CACHE = {"GEOAPP_ENGINE_CACHE": "false"}


@pytest.fixture(scope="session")
def jiaozuo_db(tmp_path_factory, backend: str, request: pytest.FixtureRequest
               ) -> Path | PgDatabase:
    """The embedded Jiaozuo data built (and flagged) once per test session and backend."""
    key = ("db", backend)
    if key not in _TEMPLATES:
        inst = _template_instance(tmp_path_factory.mktemp("jiaozuo-template"), backend, request)
        _TEMPLATES[key] = _built(open_geoapp(load_settings(inst, environ=_NO_CACHE)),
                                 request, backend)
    return _TEMPLATES[key]


@pytest.fixture(scope="session")
def jiaozuo_users_db(tmp_path_factory, jiaozuo_db: Path | PgDatabase, backend: str,
                     request: pytest.FixtureRequest) -> Path | PgDatabase:
    """``jiaozuo_db`` with one account per role, made once per session and backend."""
    key = ("users", backend)
    if key not in _TEMPLATES:
        folder = tmp_path_factory.mktemp("jiaozuo-users-template")
        core = open_geoapp(load_settings(copy_database(jiaozuo_db, folder).parent,
                                         environ=_NO_CACHE))
        make_users(core)
        _TEMPLATES[key] = _built(core, request, backend)
    return _TEMPLATES[key]


@pytest.fixture(scope="session")
def jiaozuo_engine(tmp_path_factory, jiaozuo_users_db: Path | PgDatabase, backend: str):
    """The rule engine of the Jiaozuo data (its cache entry), built once per session."""
    key = ("engine", backend)
    if key not in _TEMPLATES:
        inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp("jiaozuo-engine")).parent
        core = open_geoapp(load_settings(inst, environ=_NO_CACHE))
        checks.engine(core)
        core.repo.close()
        _TEMPLATES[key] = core.cache[ENGINE_CACHE]
    return _TEMPLATES[key]


@pytest.fixture
def instance(tmp_path: Path, jiaozuo_db: Path | PgDatabase) -> Path:
    """A fresh instance folder holding a private copy of the built Jiaozuo database."""
    return copy_database(jiaozuo_db, tmp_path / "instance").parent


@pytest.fixture
def instance_with_users(tmp_path: Path, jiaozuo_users_db: Path | PgDatabase) -> Path:
    """Like ``instance``, with one account per role already in the database."""
    return copy_database(jiaozuo_users_db, tmp_path / "instance-with-users").parent


def _app_factory(folder: Callable[[], Path], users_db: Path | PgDatabase, engine) -> Callable[..., Flask]:
    def make(instance: Path | None = None, **config) -> Flask:
        if instance is None:
            instance = copy_database(users_db, folder()).parent
        app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True, **config})
        make_users(app)
        return share_engine(app, engine)

    return make


@pytest.fixture
def make_app(tmp_path: Path, jiaozuo_users_db: Path | PgDatabase, jiaozuo_engine) -> Callable[..., Flask]:
    """Factory: ``make_app(**config)`` is the web app (TESTING) on a private copy of the
    Jiaozuo database with one account per role and the session's rule engine, for a test
    that writes; ``make_app(instance=path)`` opens another app on an existing instance."""
    made = iter(range(1_000))
    return _app_factory(lambda: tmp_path / f"app-{next(made)}", jiaozuo_users_db,
                        jiaozuo_engine)


@pytest.fixture(scope="module")
def make_module_app(tmp_path_factory, jiaozuo_users_db: Path | PgDatabase,
                    jiaozuo_engine) -> Callable[..., Flask]:
    """Module-scoped ``make_app``: one app for the tests of a module that write (or fail
    logins) but may share their writes with each other."""
    return _app_factory(lambda: tmp_path_factory.mktemp("module-app"), jiaozuo_users_db,
                        jiaozuo_engine)


@pytest.fixture(scope="session")
def shared_offline_app(tmp_path_factory, jiaozuo_users_db: Path | PgDatabase, jiaozuo_engine) -> Flask:
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
