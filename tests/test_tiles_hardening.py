"""The local basemap against files that are broken, hostile or changed under a running
server: positional reads (no memory map: a file truncated under the server must not kill
it), reopening a changed file, checks at open (PMTiles sections inside the file, MBTiles
integrity and tables), metadata that makes no sense, the attribution as plain text, TILES=local
with every asset from the app, and the small rules of the /tiles route."""

from __future__ import annotations

import gzip
import html
import json
import logging
import math
import os
import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_tiles import BOUNDS, NORTH, PACKAGE, _png, _raster_tiles, _vector_tiles

from geoapp.services.weekly import weekly_report, write_file
from geoapp.storage.tiles import (
    MAX_ATTRIBUTION,
    WORLD_BOUNDS,
    TileArchiveError,
    open_archive,
    tile_range,
    write_mbtiles,
    write_pmtiles,
)

from webutil import login

HOSTILE = ('<a href="https://evil.example/login">登录已过期，请重新登录</a>'
           '<img src=x onerror="alert(1)"><form action="https://evil.example/"><input '
           'name=password></form>')


def _client(make_app, path: Path, **extra):
    app = make_app(TILES="local", LOCAL_TILES=str(path), **extra)
    client = app.test_client()
    login(client, "viewer")
    return app, client


def _spec(page: str) -> dict:
    """The JSON spec a page hands to geoappBasemap.add."""
    raw = re.search(r"geoappBasemap\.add\([^,]+, (\{.*?\})\);\n", page).group(1)
    return json.loads(raw)


def _many_tiles(z_levels=(8, 9, 10)):
    tiles = []
    for z in z_levels:
        x0, y0, x1, y1 = tile_range(BOUNDS, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                tiles.append((z, x, y, _png(((x * 7) % 256, (y * 5) % 256, z * 20))))
    return tiles


# --- 1. a file rewritten and truncated under the server ------------------------------------

@pytest.mark.parametrize("kind", ["pmtiles", "mbtiles"])
def test_file_rewritten_and_truncated_under_the_server(make_app, tmp_path, caplog, kind):
    path = tmp_path / f"live.{kind}"
    other = tmp_path / f"other.{kind}"
    write = write_pmtiles if kind == "pmtiles" else write_mbtiles
    write(path, _many_tiles(), fmt="png", bounds=BOUNDS, metadata={"name": "a"})
    write(other, _many_tiles((9, 10, 11)), fmt="png", bounds=BOUNDS, metadata={"name": "b"})
    good, replacement = path.read_bytes(), other.read_bytes()
    app, _client0 = _client(make_app, path)
    cookie = _client0.get_cookie("session") or _client0.get_cookie(app.config.get(
        "SESSION_COOKIE_NAME", "session"))
    addresses = [f"/tiles/{z}/{x}/{y}.png" for z, x, y, _d in _many_tiles()][:60]
    statuses: list[int] = []
    stop = threading.Event()

    def hammer(i: int) -> None:
        client = app.test_client()
        client.set_cookie(cookie.key, cookie.value, domain=cookie.domain or "localhost")
        n = 0
        while not stop.is_set():
            statuses.append(client.get(addresses[(i * 13 + n) % len(addresses)]).status_code)
            n += 1

    caplog.set_level(logging.ERROR)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(hammer, i) for i in range(4)]
        for rnd in range(4):
            with path.open("r+b") as fh:  # rewritten in place, then cut short
                fh.write(replacement if rnd % 2 else good)
                fh.flush()
                stop.wait(0.05)
                fh.truncate(len(good) // 3)
                stop.wait(0.05)
                fh.truncate(17)
                stop.wait(0.05)
                fh.seek(0)
                fh.write(good)
                fh.truncate(len(good))
            stop.wait(0.05)
        stop.set()
        for f in futures:
            f.result()
    assert statuses and set(statuses) <= {200, 204, 404}, set(statuses)
    assert 200 in statuses
    # the file is whole again: served again (reopened, not stuck on an old state)
    client = app.test_client()
    client.set_cookie(cookie.key, cookie.value, domain=cookie.domain or "localhost")
    os.utime(path, ns=(1, 1))  # a new state for certain, even within one mtime tick
    assert client.get(addresses[0]).status_code == 200

    # broken for good: 404, and the error logged once, not per request
    caplog.clear()
    path.write_bytes(good[: len(good) // 3])
    for _ in range(20):
        assert client.get(addresses[0]).status_code == 404
        assert client.get("/").status_code == 200  # the page draws without a basemap
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and str(path) in
              r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]


def test_pmtiles_reader_uses_no_memory_map(tmp_path):
    path = write_pmtiles(tmp_path / "t.pmtiles", _raster_tiles(), fmt="png", bounds=BOUNDS,
                         metadata={})
    archive = open_archive(path)
    try:
        maps = Path(f"/proc/{os.getpid()}/maps")
        if maps.exists():
            assert str(path) not in maps.read_text()
        assert archive.tile(*NORTH)
        assert not archive.changed()
        path.write_bytes(path.read_bytes()[:200])
        assert archive.changed()
        with pytest.raises(OSError):
            archive.tile(*NORTH)
    finally:
        archive.close()


# --- 2. the attribution is text --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pmtiles", "mbtiles"])
def test_attribution_from_the_file_is_plain_text(make_app, tmp_path, kind):
    path = tmp_path / f"hostile.{kind}"
    raw = HOSTILE + " ©" + "x" * 500
    write = write_pmtiles if kind == "pmtiles" else write_mbtiles
    write(path, _raster_tiles(), fmt="png", bounds=BOUNDS, metadata={"attribution": raw})
    _app, client = _client(make_app, path)
    page = client.get("/").get_data(as_text=True)
    spec = _spec(page)
    assert "<" not in spec["attribution"] and ">" not in spec["attribution"]
    assert spec["attribution"].startswith(html.escape('<a href="https://evil.example/login">'))
    assert len(html.unescape(spec["attribution"])) <= MAX_ATTRIBUTION
    for tag in ("<a href=\"https://evil", "<img src=x", "<form action"):
        assert tag not in page


# --- 3. damaged files refused at the start --------------------------------------------------

def test_truncated_pmtiles_is_refused_naming_the_file(tmp_path, make_app):
    data = PACKAGE.read_bytes()
    third = tmp_path / "third.pmtiles"
    third.write_bytes(data[: len(data) // 3])
    with pytest.raises(TileArchiveError, match=r"^底图瓦片文件 .*third\.pmtiles 无法使用：文件不完整"):
        open_archive(third)
    with pytest.raises(TileArchiveError, match="third.pmtiles"):
        make_app(TILES="local", LOCAL_TILES=str(third))
    # the same length, the root directory garbled
    header = open_archive(PACKAGE)._header
    garbled = bytearray(data)
    start = header["root_offset"]
    garbled[start:start + header["root_length"]] = b"\x00" * header["root_length"]
    bad = tmp_path / "garbled.pmtiles"
    bad.write_bytes(bytes(garbled))
    with pytest.raises(TileArchiveError, match=r"garbled\.pmtiles .*not a valid PMTiles"):
        open_archive(bad)


def test_damaged_mbtiles_is_refused(tmp_path):
    path = write_mbtiles(tmp_path / "ok.mbtiles", _many_tiles(), fmt="png", bounds=BOUNDS,
                         metadata={})
    data = path.read_bytes()
    half = tmp_path / "half.mbtiles"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(TileArchiveError, match=r"half\.mbtiles 无法使用：文件不完整"):
        open_archive(half)
    no_tiles = tmp_path / "notiles.mbtiles"
    with sqlite3.connect(no_tiles) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute("INSERT INTO metadata VALUES ('format', 'png')")
    with pytest.raises(TileArchiveError, match=r"notiles\.mbtiles .*no tiles table"):
        open_archive(no_tiles)
    # pages garbled in the middle of a whole-length file: quick_check finds it
    garbled = bytearray(data)
    page = int.from_bytes(data[16:18], "big")
    for p in range(2, len(data) // page):
        garbled[p * page:p * page + 8] = b"\xff" * 8
    bad = tmp_path / "garbled.mbtiles"
    bad.write_bytes(bytes(garbled))
    with pytest.raises(TileArchiveError, match=r"garbled\.mbtiles .*not a valid MBTiles"):
        open_archive(bad)


def test_not_a_regular_file(tmp_path):
    with pytest.raises(TileArchiveError, match=r"不是普通文件.*not a regular file \(a directory\)"):
        open_archive(tmp_path)
    if Path("/dev/zero").exists():
        with pytest.raises(TileArchiveError, match=r"/dev/zero 无法使用：不是普通文件"):
            open_archive("/dev/zero")


# --- 4. metadata that makes no sense ----------------------------------------------------------

@pytest.mark.parametrize("meta", [
    {"minzoom": "seven"}, {"maxzoom": "nine!"}, {"minzoom": "12", "maxzoom": "3"},
    {"maxzoom": "99"}, {"minzoom": "-1"}, {"minzoom": "٧"}, {"bounds": "nan,nan,inf,inf"},
    {"bounds": "113,35"}, {"bounds": "200,-95,-200,95"}, {"bounds": "east,south,west,north"},
])
def test_bad_mbtiles_metadata_is_ignored_with_a_warning(make_app, tmp_path, caplog, meta):
    path = tmp_path / "bad.mbtiles"
    write_mbtiles(path, _raster_tiles(), fmt="png", bounds=BOUNDS, metadata={})
    with sqlite3.connect(path) as db:
        for k, v in meta.items():
            db.execute("UPDATE metadata SET value=? WHERE name=?", (v, k))
    caplog.set_level(logging.WARNING)
    archive = open_archive(path)
    try:
        assert (archive.meta.minzoom, archive.meta.maxzoom) == (9, 9)
        if "bounds" in meta:
            assert archive.meta.bounds == WORLD_BOUNDS
        else:
            assert archive.meta.bounds == pytest.approx(BOUNDS)
    finally:
        archive.close()
    assert any("bad.mbtiles" in r.getMessage() and "invalid" in r.getMessage()
               for r in caplog.records)
    _app, client = _client(make_app, path)
    spec = _spec(client.get("/").get_data(as_text=True))
    assert (spec["minzoom"], spec["maxzoom"]) == (9, 9)
    assert all(math.isfinite(v) and abs(v) <= 180 for pair in spec["bounds"] for v in pair)


def test_bad_pmtiles_header_zooms_and_bounds(tmp_path):
    path = write_pmtiles(tmp_path / "b.pmtiles", _raster_tiles(), fmt="png",
                         bounds=(200.0, 95.0, -200.0, -95.0), metadata={})
    archive = open_archive(path)
    assert archive.meta.bounds == WORLD_BOUNDS
    archive.close()
    data = bytearray(path.read_bytes())
    data[100], data[101] = 20, 3  # min_zoom, max_zoom in the v3 header
    bad = tmp_path / "zooms.pmtiles"
    bad.write_bytes(bytes(data))
    with pytest.raises(TileArchiveError, match=r"zooms\.pmtiles .*invalid zooms"):
        open_archive(bad)


# --- 5. TILES=local serves every asset itself ------------------------------------------------

def test_tiles_local_without_intranet_loads_nothing_from_outside(make_app):
    app = make_app(TILES="local", INTRANET=False)
    assert not app.config.get("INTRANET")
    client = app.test_client()
    login(client, "viewer")
    for url in ("/", "/weekly?week=2026-W47"):
        page = client.get(url).get_data(as_text=True)
        assert "geoappBasemap.add(" in page
        refs = re.findall(r'<script\b[^>]*\bsrc="([^"]+)"', page) + re.findall(
            r'<link\b[^>]*\bhref="([^"]+)"', page)
        assert refs
        outside = [r for r in refs
                   if not r.startswith(("/", "data:")) or r.startswith("//")]
        assert outside == [], (url, outside)


# --- 6. the route's small rules ---------------------------------------------------------------

@pytest.fixture
def vector_client(make_app, tmp_path):
    path = write_pmtiles(tmp_path / "v.pmtiles", _vector_tiles(), fmt="pbf", bounds=BOUNDS,
                         metadata={}, gzipped=True)
    return _client(make_app, path)[1]


def test_204_has_no_body_type(vector_client):
    r = vector_client.get("/tiles/9/0/0.pbf")
    assert r.status_code == 204 and r.data == b""
    assert "Content-Type" not in r.headers


@pytest.mark.parametrize("url", ["/tiles/٧/105/50.pbf", "/tiles/9/٤١٦/203.pbf",
                                 "/tiles/09/416/203.pbf", "/tiles/9/0416/203.pbf",
                                 "/tiles/9/416/0203.pbf", "/tiles/9/416/+203.pbf",
                                 "/tiles/9/416/203 .pbf", "/tiles/9/416/２０３.pbf"])
def test_only_plain_ascii_numbers(vector_client, url):
    assert vector_client.get(url).status_code == 404
    assert vector_client.get("/tiles/9/416/203.pbf").status_code == 200
    assert vector_client.get("/tiles/0/0/0.pbf").status_code == 204


@pytest.mark.parametrize("accept, gzipped", [
    ("gzip;q=0", False), ("gzip;q=0, identity", False), ("gzip; q=0.000", False),
    ("*;q=0", False), ("", False), ("gzip", True), ("gzip;q=0.5", True), ("*", True),
    ("deflate, gzip;q=1.0", True)])
def test_gzip_only_when_accepted(vector_client, accept, gzipped):
    r = vector_client.get("/tiles/9/416/203.pbf", headers={"Accept-Encoding": accept})
    assert r.status_code == 200
    assert (r.headers.get("Content-Encoding") == "gzip") is gzipped
    assert (r.data[:2] == b"\x1f\x8b") is gzipped
    if not gzipped:
        assert gzip.compress(r.data)  # plain MVT bytes


def test_weekly_map_file_names_each_county_once(offline_app, tmp_path):
    core = offline_app.extensions["geoapp"]
    report = weekly_report(core, "2026-W47")
    text = write_file(core, report, "map.html", tmp_path).read_text(encoding="utf-8")
    assert '"places":{' not in text  # no base labels ...
    assert text.count("weekly-county-label") >= 10  # ... the bulletin's own only
