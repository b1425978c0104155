"""GDAL's own OAPIF driver reads every collection of /ogc from a real ``geoapp serve``
process with a planner's API token (``geoapp users token``), and finds the stored data: the
same ids, geometries within 1e-7 degrees, the same attributes; in CGCS2000 and the city's
Gauss-Krüger zone too, with a box and an attribute filter sent to the server; a session
cookie works as well, a wrong token does not. A viewer's token lists and reads the layers
and the exclusion zones, not the site collections (the role of the ledger's downloads).

How GDAL 3.12 sends the token: its OAPIF driver sets an ``Accept`` header on every request,
which replaces (does not join) the ``GDAL_HTTP_HEADERS`` option, so that option never
reaches the server. ``GDAL_HTTP_HEADER_FILE`` (a file of header lines) and
``GDAL_HTTP_AUTH=BEARER`` with ``GDAL_HTTP_BEARER`` do; both are used here."""

from __future__ import annotations

import http.cookiejar
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geoapp.config import load_settings
from geoapp.services import ogc, open_geoapp
from geoapp.spatial.crs import to_metric

from webutil import copy_database, password_for

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_cookie(base: str, role: str) -> str:
    """Log in through the real login form; the ``session`` cookie's value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": role, "password": password_for(role),
                                   "csrf_token": token}).encode()
    opener.open(base + "/login", data=data, timeout=30).read()
    cookie = next((c for c in jar if c.name == "session"), None)
    assert cookie is not None, "no session cookie after logging in"
    return cookie.value


@pytest.fixture(scope="module")
def server(tmp_path_factory, jiaozuo_users_db: Path):
    """``geoapp serve`` on a free loopback port over a copy of the Jiaozuo database with one
    account per role; yields (base URL, instance folder)."""
    inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp("ogc-serve")).parent
    port = _free_port()
    env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(inst)}
    log = (inst / "serve.log").open("wb")
    proc = subprocess.Popen([Path(sys.executable).parent / "geoapp", "serve", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None, (inst / "serve.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "geoapp serve did not answer within 180 s"
            time.sleep(0.3)
        yield base, inst
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def _token(inst: Path, username: str) -> str:
    """A new API token of ``username``, made by the command line as an administrator would."""
    out = subprocess.run([Path(sys.executable).parent / "geoapp", "users", "token",
                          "--username", username, "--name", "QGIS"],
                         env={**os.environ, "GEOAPP_INSTANCE_PATH": str(inst)},
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


def _gdal_options(**options) -> None:
    pyogrio.set_gdal_config_options({"GDAL_HTTP_TIMEOUT": "60", **options})


def _gdal_reset() -> None:
    pyogrio.set_gdal_config_options({k: None for k in (
        "GDAL_HTTP_TIMEOUT", "GDAL_HTTP_HEADER_FILE", "GDAL_HTTP_COOKIE", "GDAL_HTTP_AUTH",
        "GDAL_HTTP_BEARER")})


@pytest.fixture(scope="module")
def token(server) -> str:
    """A planner's: the planner reads every collection, the sites included."""
    return _token(server[1], "planner")


@pytest.fixture(scope="module")
def gdal_session(server, token, tmp_path_factory):
    """GDAL sends the planner's token (``Authorization: Bearer``) with every request of the
    module, from a header file."""
    base, _ = server
    headers = tmp_path_factory.mktemp("gdal") / "headers.txt"
    headers.write_text(f"Authorization: Bearer {token}\n")
    _gdal_options(GDAL_HTTP_HEADER_FILE=str(headers))
    yield base
    _gdal_reset()


@pytest.fixture(scope="module")
def core(server):
    """The same database opened directly, to compare with (reads only)."""
    _, inst = server
    app = open_geoapp(load_settings(inst, environ={}), init=False)
    yield app
    app.repo.close()


def _oapif(base: str, layer: str, **kwargs) -> pd.DataFrame:
    return pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer=layer, **kwargs)


def _same_value(got, want) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)) or want is pd.NA:
        return got is None or (isinstance(got, float) and math.isnan(got)) or got is pd.NA \
            or got is pd.NaT
    if isinstance(got, pd.Timestamp):  # a date or date-time field (the schema's format)
        if len(str(want)) == 10:
            return got.date().isoformat() == str(want)
        return got == pd.Timestamp(str(want))
    if isinstance(want, bool | np.bool_):
        return bool(got) == bool(want)
    if isinstance(want, int | float | np.number) and not isinstance(want, bool):
        return got is not None and float(got) == pytest.approx(float(want), rel=1e-12)
    return str(got) == str(want)


def _assert_same_geometries(got, want, tol: float = 1e-7) -> None:
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.geom_type.removeprefix("Multi") == w.geom_type.removeprefix("Multi"), i
        a, b = shapely.get_coordinates(g), shapely.get_coordinates(w)
        assert a.shape == b.shape, i
        assert np.abs(a - b).max() <= tol, (i, np.abs(a - b).max())


def test_gdal_lists_every_collection(gdal_session, core):
    layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{gdal_session}/ogc")}
    assert layers == {c.id for c in ogc.collections(core)}
    assert {"counties", "rivers", "hotspot_grids", "enterprises", "farms", "workshops",
            "exclusion_zones"} <= layers


def test_gdal_reads_every_collection_as_stored(gdal_session, core):
    for col in ogc.collections(core):
        want = ogc.frame(core, col)
        got = _oapif(gdal_session, col.id)
        assert got.crs is not None and got.crs.to_epsg() in (4326, None), col.id
        assert list(got["id"]) == list(want["id"]), col.id
        _assert_same_geometries(got.geometry, want.geometry)
        props = ogc.property_names(want)
        assert set(props) <= set(got.columns), (col.id, set(props) - set(got.columns))
        for name in props:
            bad = [(fid, g, w) for fid, g, w in zip(want["id"], got[name], want[name],
                                                    strict=True)
                   if not _same_value(g, w)]
            assert bad == [], (col.id, name, bad[:3])


def test_gdal_reads_cgcs2000_and_the_gauss_kruger_zone(gdal_session, core):
    want = ogc.frame(core, ogc.collection(core, "farms"))
    got = _oapif(gdal_session, "farms", CRS="EPSG:4490")
    assert got.crs.to_epsg() == 4490
    _assert_same_geometries(got.geometry, want.geometry)  # the same datum at this accuracy

    metric = core.metric_crs
    got = _oapif(gdal_session, "farms", CRS=metric)
    assert got.crs.to_string() == metric
    x, y = to_metric(want.geometry.x.to_numpy(), want.geometry.y.to_numpy(), metric)
    assert np.abs(got.geometry.x.to_numpy() - x).max() < 1e-3  # easting, metres
    assert np.abs(got.geometry.y.to_numpy() - y).max() < 1e-3  # northing

    zones = _oapif(gdal_session, "exclusion_zones", CRS=metric)
    stored = ogc.frame(core, ogc.collection(core, "exclusion_zones")).to_crs(metric)
    _assert_same_geometries(zones.geometry, stored.geometry, tol=1e-3)


def test_gdal_reads_a_box(gdal_session, core):
    want = ogc.frame(core, ogc.collection(core, "enterprises"))
    west, south, east, north = 113.15, 35.15, 113.30, 35.28
    inside = want[want.intersects(shapely.box(west, south, east, north))]
    assert 0 < len(inside) < len(want)
    got = _oapif(gdal_session, "enterprises", bbox=(west, south, east, north))
    assert sorted(got["id"]) == sorted(inside["id"])


def test_gdal_reads_with_an_attribute_filter(gdal_session, core):
    want = ogc.frame(core, ogc.collection(core, "farms"))
    district = want["district"].iloc[0]
    got = _oapif(gdal_session, "farms", where=f"district = '{district}'")
    assert list(got["id"]) == list(want["id"][want["district"] == district])


def test_the_token_works_as_gdal_bearer_and_a_session_cookie_works_too(server, token, core):
    base, _ = server
    want = list(ogc.frame(core, ogc.collection(core, "workshops"))["id"])
    try:
        _gdal_options(GDAL_HTTP_AUTH="BEARER", GDAL_HTTP_BEARER=token)
        assert list(_oapif(base, "workshops")["id"]) == want
        _gdal_reset()
        _gdal_options(GDAL_HTTP_COOKIE=f"session={_session_cookie(base, 'planner')}")
        assert list(_oapif(base, "workshops")["id"]) == want
        _gdal_reset()
        _gdal_options(GDAL_HTTP_AUTH="BEARER", GDAL_HTTP_BEARER=token + "x")
        with pytest.raises(pyogrio.errors.DataSourceError, match="401"):
            _oapif(base, "workshops")
    finally:
        _gdal_reset()


def test_anonymous_gdal_is_refused(server):
    base, _ = server
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(base + "/ogc/collections", timeout=30)
    assert err.value.code == 401
    assert json.loads(err.value.read())["error"] == "unauthorized"


def test_a_viewers_token_lists_and_reads_the_layers_and_zones_but_not_the_sites(server, core):
    base, inst = server
    viewer = _token(inst, "viewer")
    _gdal_reset()
    try:
        _gdal_options(GDAL_HTTP_AUTH="BEARER", GDAL_HTTP_BEARER=viewer)
        layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{base}/ogc")}
        assert layers == {c.id for c in ogc.collections(core) if c.kind != "sites"}
        assert {"counties", "rivers", "exclusion_zones"} <= layers
        assert not {"enterprises", "farms", "workshops"} & layers
        want = ogc.frame(core, ogc.collection(core, "rivers"))
        assert list(_oapif(base, "rivers")["id"]) == list(want["id"])
        with pytest.raises(pyogrio.errors.DataLayerError):
            _oapif(base, "enterprises")
    finally:
        _gdal_reset()
    request = urllib.request.Request(base + "/ogc/collections/enterprises/items?limit=10000",
                                     headers={"Authorization": f"Bearer {viewer}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 403
    assert json.loads(err.value.read())["code"] == "forbidden"
