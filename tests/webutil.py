"""Helpers for web tests: one account per role, logging a test client in for real (fetch
the login form, send its CSRF token), copying a built database (a GeoPackage file, or a
PostGIS database on the test server), sharing a rule engine."""

from __future__ import annotations

import re
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from flask import Flask
from pyproj import Geod

from geoapp.config import INSTANCE_FILE
from geoapp.services import accounts
from geoapp.storage.postgis import PostgisRepository

from pg import PgServer

ROLES = ("viewer", "inspector", "planner", "admin")

#: ``Geoapp.cache`` entry of the rule engine (services/checks.py). The entry carries the key
#: it was built for (rules file, last change to layers or sites) and ``checks.engine``
#: rebuilds when the key no longer matches, so an entry built on one copy of a database is
#: valid in every other copy until that copy changes. test_fixtures.py checks it is used.
ENGINE_CACHE = "engine"


def password_for(role: str) -> str:
    """A password that passes the rules (12+ characters, not common, not the username)."""
    return f"pw-{role}-0123-long"


def make_users(app) -> None:
    """An account named after each role (idempotent); ``app`` is the web app or its core.

    Each new account costs a scrypt hash (about 0.2 s), so fixtures copy a database that
    already holds them (``instance_with_users`` in conftest.py) and this finds them there.
    """
    core = app.extensions["geoapp"] if hasattr(app, "extensions") else app
    for role in ROLES:
        if core.repo.get_user(role) is None:
            accounts.create_user(core, role, password_for(role), role, by="test")


def csrf_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html) or \
        re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, role: str) -> str:
    """Log ``client`` in as the account named ``role``; return a CSRF token for later posts."""
    page = client.get("/login").get_data(as_text=True)
    r = client.post("/login", data={"username": role, "password": password_for(role),
                                    "csrf_token": csrf_token(page)})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return csrf_token(client.get("/login").get_data(as_text=True))


def river_point(core, metres: float) -> tuple[float, float]:
    """A point ``metres`` from the 沁河 of the embedded Jiaozuo data, perpendicular to a
    segment in its middle (lon, lat)."""
    geod = Geod(ellps="WGS84")
    rivers = core.repo.layer("rivers")
    geom = rivers.loc[rivers["name"] == "沁河"].geometry.iloc[0]
    line = max(getattr(geom, "geoms", [geom]), key=lambda g: g.length)
    coords = np.asarray(line.coords)
    k = len(coords) // 2
    (x0, y0), (x1, y1) = coords[k], coords[k + 1]
    az, _, _ = geod.inv(x0, y0, x1, y1)
    lon, lat, _ = geod.fwd((x0 + x1) / 2, (y0 + y1) / 2, az + 90, metres)
    return float(lon), float(lat)


@dataclass(frozen=True)
class PgDatabase:
    """A built geoapp database on the session's PostgreSQL test server (tests/pg.py): what
    ``copy_database`` copies when the suite runs on the PostGIS backend."""

    server: PgServer
    name: str

    @property
    def url(self) -> str:
        return self.server.url(self.name)


#: The PostGIS copies made by ``copy_database``: instance folder -> (server, database), so
#: that ``release`` can drop them (conftest.py drops a test's own after it).
PG_COPIES: dict[Path, tuple[PgServer, str]] = {}

#: The PostGIS repositories that opened a pool since the last ``close_repositories`` (held
#: here so that a pool is closed even when its app is gone).
OPEN_REPOSITORIES: set[PostgisRepository] = set()


def instance_settings(url: str) -> str:
    """The instance file (geoapp.toml) that puts an instance on a PostGIS database."""
    return f'STORAGE_BACKEND = "postgis"\nDATABASE_URL = "{url}"\n'


def copy_database(source: Path | PgDatabase, folder: Path) -> Path:
    """Copy a built database into the instance folder ``folder`` (made if missing).

    A GeoPackage is copied as ``folder/geoapp.gpkg``, which is returned. It must have been
    closed by its last connection, so its write-ahead log is folded into the file: a copy of
    the file alone would otherwise miss the newest writes.

    A PostGIS database is copied on its server (``CREATE DATABASE ... TEMPLATE``, which needs
    nobody connected to the source) and ``folder/geoapp.toml`` names the copy; that file is
    returned. Either way ``.parent`` is the instance folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(source, PgDatabase):
        name = f"i_{uuid.uuid4().hex[:16]}"
        source.server.psql(f"CREATE DATABASE {name} TEMPLATE {source.name}")
        PG_COPIES[folder.resolve()] = (source.server, name)
        target = folder / INSTANCE_FILE
        target.write_text(instance_settings(source.server.url(name)), encoding="utf-8")
        return target
    wal = Path(f"{source}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, f"{source} is still open"
    target = folder / "geoapp.gpkg"
    shutil.copyfile(source, target)
    return target


def close_repositories() -> None:
    """Close the pool of every PostGIS repository opened so far (each opens a new one when
    used again): a test's apps do not keep server connections after it."""
    while OPEN_REPOSITORIES:
        OPEN_REPOSITORIES.pop().close()


def release(under: Path) -> None:
    """Drop the PostGIS copies whose instance folder is ``under`` or inside it."""
    under = under.resolve()
    for folder in [f for f in PG_COPIES if f == under or under in f.parents]:
        server, name = PG_COPIES.pop(folder)
        close_repositories()
        server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def track_repositories() -> None:
    """Remember every PostGIS repository that opens its pool, so that ``close_repositories``
    can close them all; the repository itself is unchanged."""
    opened = PostgisRepository._get_pool
    if getattr(opened, "tracked", False):
        return

    def _get_pool(self):
        OPEN_REPOSITORIES.add(self)
        return opened(self)

    _get_pool.tracked = True
    PostgisRepository._get_pool = _get_pool


def share_engine(app: Flask, entry) -> Flask:
    """Give ``app`` a rule engine already built on a copy of its database (see ENGINE_CACHE);
    the first check then skips the build unless the app's data differ."""
    app.extensions["geoapp"].cache.setdefault(ENGINE_CACHE, entry)
    return app


def _settings(target) -> dict:
    if isinstance(target, Flask):
        return target.config
    if hasattr(target, "settings"):  # the core (Geoapp)
        return target.settings
    return target


def on_postgis(target) -> bool:
    """Whether ``target`` (a web app, its core or settings) stores in PostGIS."""
    return str(_settings(target).get("STORAGE_BACKEND") or "gpkg").lower() == "postgis"


def sql(target, statement: str, params: tuple = (), *, write: bool = False) -> list[tuple]:
    """Run one SQL statement on the store of ``target`` (a web app, its core or settings)
    from outside the app, as another program would, on either backend: ``?`` placeholders;
    quote the column ``"user"``. Rows come back for a query; a write is committed."""
    settings = _settings(target)
    if on_postgis(settings):
        with psycopg.connect(settings["DATABASE_URL"], autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    mode = "rw" if write else "ro"
    conn = sqlite3.connect(f"file:{settings['DATABASE']}?mode={mode}", uri=True)
    try:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def writes_seen(app: Flask) -> tuple:
    """What a read-only module must not change: the audit log beyond logins, logouts and
    exports (every write of data or accounts adds a row), and failed logins (20 from one
    address lock it out for every later module)."""
    return (sql(app, f"SELECT count(*), max(id) FROM changes WHERE {_WRITES}")[0],
            sql(app, "SELECT count(*) FROM login_attempts WHERE success = 0")[0])


def writes_after(app: Flask, seen: tuple) -> list[tuple]:
    """The audit rows (user, action, entity, id) of writes made since ``writes_seen`` gave
    ``seen``, and the failed logins (username, address)."""
    rows = sql(app, f'SELECT "user", action, entity, entity_id FROM changes WHERE '
                    f"{_WRITES} AND id > ? ORDER BY id", (seen[0][1] or 0,))
    failed = sql(app, "SELECT username, remote_addr FROM login_attempts WHERE "
                      "success = 0 ORDER BY id")
    return rows + failed[seen[1][0]:]


#: Audit rows of writes: not a login, logout or failed login, not an export, not the refresh
#: of derived tables (stored hits, exclusion zones) after the rules file changed.
_WRITES = ("entity NOT IN ('session', 'site_hits', 'derived_layer') AND action != 'export'")
