"""Helpers for web tests: one account per role, logging a test client in for real (fetch
the login form, send its CSRF token), copying a built database, sharing a rule engine."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
from flask import Flask
from pyproj import Geod

from geoapp.services import accounts

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


def copy_database(source: Path, folder: Path) -> Path:
    """Copy a closed GeoPackage into ``folder`` (made if missing) as ``geoapp.gpkg``.

    The source must have been closed by its last connection, so its write-ahead log is
    folded into the file: a copy of the file alone would otherwise miss the newest writes.
    """
    wal = Path(f"{source}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, f"{source} is still open"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "geoapp.gpkg"
    shutil.copyfile(source, target)
    return target


def share_engine(app: Flask, entry) -> Flask:
    """Give ``app`` a rule engine already built on a copy of its database (see ENGINE_CACHE);
    the first check then skips the build unless the app's data differ."""
    app.extensions["geoapp"].cache.setdefault(ENGINE_CACHE, entry)
    return app


def writes_seen(app: Flask) -> tuple:
    """What a read-only module must not change: the audit log beyond logins, logouts and
    exports (every write of data or accounts adds a row), and failed logins (20 from one
    address lock it out for every later module)."""
    conn = sqlite3.connect(f"file:{app.config['DATABASE']}?mode=ro", uri=True)
    try:
        return (conn.execute(f"SELECT count(*), max(id) FROM changes WHERE {_WRITES}")
                .fetchone(),
                conn.execute("SELECT count(*) FROM login_attempts WHERE success = 0").fetchone())
    finally:
        conn.close()


def writes_after(app: Flask, seen: tuple) -> list[tuple]:
    """The audit rows (user, action, entity, id) of writes made since ``writes_seen`` gave
    ``seen``, and the failed logins (username, address)."""
    conn = sqlite3.connect(f"file:{app.config['DATABASE']}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT user, action, entity, entity_id FROM changes WHERE "
                            f"{_WRITES} AND id > ? ORDER BY id", (seen[0][1] or 0,)).fetchall()
        failed = conn.execute("SELECT username, remote_addr FROM login_attempts WHERE "
                              "success = 0 ORDER BY id").fetchall()
        return rows + failed[seen[1][0]:]
    finally:
        conn.close()


#: Audit rows of writes: not a login, logout or failed login, not an export, not the refresh
#: of derived tables (stored hits, exclusion zones) after the rules file changed.
_WRITES = ("entity NOT IN ('session', 'site_hits', 'derived_layer') AND action != 'export'")
