"""Helpers for web tests: one account per role, and logging a test client in for real
(fetch the login form, send its CSRF token)."""

from __future__ import annotations

import re

ROLES = ("viewer", "inspector", "planner", "admin")


def password_for(role: str) -> str:
    """A password that passes the rules (12+ characters, not common, not the username)."""
    return f"pw-{role}-0123-long"


def make_users(app) -> None:
    """An account named after each role (idempotent)."""
    from geoapp.services import accounts

    core = app.extensions["geoapp"]
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
    import numpy as np
    from pyproj import Geod

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
