"""The local basemap (TILES=local): tile archives read (PMTiles and MBTiles, raster and
vector, MBTiles' TMS rows), the /tiles route (types, gzip, caching, bad addresses, tiles
outside the file), the start-up error for a missing or broken file, the shipped package and
the map pages' local tile layer."""

from __future__ import annotations

import gzip
import io
import re
import sqlite3
from pathlib import Path

import mapbox_vector_tile
import pytest
import shapely
from PIL import Image

from geoapp.config import load_settings
from geoapp.domain.errors import ConfigError
from geoapp.services.basemap_build import build_basemap
from geoapp.storage.tiles import (
    MBTilesArchive,
    TileArchiveError,
    open_archive,
    valid_address,
    write_mbtiles,
    write_pmtiles,
)
from geoapp.web import create_app

from webutil import login

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "data" / "basemap" / "basemap.pmtiles"
BOUNDS = (112.5, 34.8, 113.7, 35.5)


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), colour).save(buf, format="PNG")
    return buf.getvalue()


def _mvt(name: str) -> bytes:
    return mapbox_vector_tile.encode([{"name": "counties", "features": [
        {"geometry": shapely.box(100, 100, 3000, 3000), "properties": {"name": name}}]}],
        default_options={"y_coord_down": True})


#: Two different tiles at zoom 9 around Jiaozuo (XYZ numbering): north one above south one.
NORTH, SOUTH = (9, 416, 202), (9, 416, 203)


def _raster_tiles():
    return [(*NORTH, _png((200, 0, 0))), (*SOUTH, _png((0, 0, 200)))]


def _vector_tiles():
    return [(*NORTH, gzip.compress(_mvt("north"), mtime=0)), (*SOUTH, gzip.compress(_mvt("south"), mtime=0))]


@pytest.fixture(params=["pmtiles", "mbtiles"])
def raster_file(request, tmp_path):
    path = tmp_path / f"raster.{request.param}"
    meta = {"attribution": "测试 raster", "name": "raster"}
    if request.param == "pmtiles":
        write_pmtiles(path, _raster_tiles(), fmt="png", bounds=BOUNDS, metadata=meta)
    else:
        write_mbtiles(path, _raster_tiles(), fmt="png", bounds=BOUNDS, metadata=meta)
    return path


@pytest.fixture(params=["pmtiles", "mbtiles"])
def vector_file(request, tmp_path):
    path = tmp_path / f"vector.{request.param}"
    meta = {"attribution": "测试 vector",
            "vector_layers": [{"id": "counties", "fields": {"name": "String"}}]}
    if request.param == "pmtiles":
        write_pmtiles(path, _vector_tiles(), fmt="pbf", bounds=BOUNDS, metadata=meta, gzipped=True)
    else:
        write_mbtiles(path, _vector_tiles(), fmt="pbf", bounds=BOUNDS,
                      metadata={**meta, "json": {"vector_layers": meta["vector_layers"]}})
    return path


def test_raster_archives_answer_by_xyz_address(raster_file):
    archive = open_archive(raster_file)
    try:
        assert archive.meta.format == "png" and archive.meta.content_type == "image/png"
        assert (archive.meta.minzoom, archive.meta.maxzoom) == (9, 9)
        assert archive.meta.bounds == pytest.approx(BOUNDS)
        assert archive.meta.attribution == "测试 raster"
        north = Image.open(io.BytesIO(archive.tile(*NORTH))).getpixel((5, 5))
        south = Image.open(io.BytesIO(archive.tile(*SOUTH))).getpixel((5, 5))
        assert (north, south) == ((200, 0, 0), (0, 0, 200))
        assert archive.tile(9, 0, 0) is None
        assert archive.tile(10, 416, 202) is None
    finally:
        archive.close()


def test_mbtiles_rows_are_tms_flipped(tmp_path):
    path = write_mbtiles(tmp_path / "t.mbtiles", _raster_tiles(), fmt="png", bounds=BOUNDS,
                         metadata={})
    with sqlite3.connect(path) as db:
        rows = dict(((z, x, r), d) for z, x, r, d in db.execute("SELECT * FROM tiles"))
    z, x, y = NORTH
    assert (z, x, (1 << z) - 1 - y) in rows  # stored as a TMS row ...
    assert (z, x, y) not in rows
    archive = MBTilesArchive(path)  # ... and answered by its XYZ address
    assert archive.tile(*NORTH) == bytes(rows[(z, x, (1 << z) - 1 - y)])
    archive.close()


def test_vector_archives_hold_gzipped_mvt(vector_file):
    archive = open_archive(vector_file)
    try:
        assert archive.meta.vector and archive.meta.format == "pbf"
        assert archive.meta.vector_layers == ("counties",)
        data = archive.tile(*NORTH)
        assert data[:2] == b"\x1f\x8b"
        decoded = mapbox_vector_tile.decode(gzip.decompress(data))
        assert decoded["counties"]["features"][0]["properties"]["name"] == "north"
    finally:
        archive.close()


def test_archive_is_opened_read_only(tmp_path):
    path = write_mbtiles(tmp_path / "ro.mbtiles", _raster_tiles(), fmt="png", bounds=BOUNDS,
                         metadata={})
    archive = MBTilesArchive(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        archive._db.execute("DELETE FROM tiles")
    archive.close()


@pytest.mark.parametrize("z,x,y,ok", [(0, 0, 0, True), (9, 511, 511, True), (9, 512, 0, False),
                                      (9, 0, 512, False), (-1, 0, 0, False), (31, 0, 0, False),
                                      (1, -1, 0, False), (True, 0, 0, False)])
def test_addresses_are_checked(z, x, y, ok):
    assert valid_address(z, x, y) is ok


def test_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(TileArchiveError, match="底图瓦片文件 .*nope.pmtiles.*no such file"):
        open_archive(tmp_path / "nope.pmtiles")
    junk = tmp_path / "junk.pmtiles"
    junk.write_bytes(b"not a tile file at all" * 10)
    with pytest.raises(TileArchiveError, match="junk.pmtiles.*neither a PMTiles nor an MBTiles"):
        open_archive(junk)
    truncated = tmp_path / "truncated.pmtiles"
    truncated.write_bytes(PACKAGE.read_bytes()[:60])
    with pytest.raises(TileArchiveError, match="truncated.pmtiles"):
        open_archive(truncated)
    empty_db = tmp_path / "empty.mbtiles"
    sqlite3.connect(empty_db).execute("CREATE TABLE x (a)").connection.close()
    with pytest.raises(TileArchiveError, match="empty.mbtiles.*not a valid MBTiles"):
        open_archive(empty_db)


def test_app_start_refuses_a_missing_tile_file(tmp_path, instance):
    with pytest.raises(ConfigError, match="底图瓦片文件 .*missing.pmtiles"):
        create_app({"INSTANCE_PATH": str(instance), "TESTING": True, "TILES": "local",
                    "LOCAL_TILES": "missing.pmtiles"})


def test_settings_local_tiles_paths_and_intranet_default(tmp_path):
    values = load_settings(tmp_path, environ={})
    assert values["TILES"] == "osm"
    assert values["LOCAL_TILES"] == str(Path(values["DATA_DIR"]) / "basemap" / "basemap.pmtiles")
    rel = load_settings(tmp_path, environ={"GEOAPP_LOCAL_TILES": "city.mbtiles"})
    assert rel["LOCAL_TILES"] == str(tmp_path / "city.mbtiles")
    assert load_settings(tmp_path, environ={"GEOAPP_INTRANET": "true"})["TILES"] == "local"
    assert load_settings(tmp_path, environ={"GEOAPP_INTRANET": "true",
                                            "GEOAPP_TILES": "none"})["TILES"] == "none"
    # intranet with no package to serve (another city's data): no basemap, not a failure
    assert load_settings(tmp_path, environ={"GEOAPP_INTRANET": "true",
                                            "GEOAPP_LOCAL_TILES": "absent.pmtiles"}
                         )["TILES"] == "none"


# --- the route ------------------------------------------------------------------------------

def _client(make_app, path: Path):
    app = make_app(TILES="local", LOCAL_TILES=str(path))
    client = app.test_client()
    login(client, "viewer")
    return client


def test_raster_tiles_served_with_type_and_cache_headers(make_app, raster_file):
    client = _client(make_app, raster_file)
    r = client.get("/tiles/9/416/202.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert Image.open(io.BytesIO(r.data)).getpixel((5, 5)) == (200, 0, 0)
    assert "max-age" in r.headers["Cache-Control"] and "no-store" not in r.headers["Cache-Control"]
    etag = r.headers["ETag"]
    again = client.get("/tiles/9/416/202.png", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert client.get("/tiles/9/416/203.png").headers["ETag"] != etag


def test_tiles_outside_the_file_and_bad_addresses(make_app, raster_file):
    client = _client(make_app, raster_file)
    assert client.get("/tiles/9/0/0.png").status_code == 204
    assert client.get("/tiles/12/3000/1500.png").status_code == 204
    for bad in ("/tiles/9/512/0.png", "/tiles/9/0/512.png", "/tiles/31/0/0.png",
                "/tiles/-1/0/0.png", "/tiles/9/416/202.pbf", "/tiles/9/416/202.exe",
                "/tiles/9/416.5/202.png", "/tiles/9/../../etc/passwd.png",
                "/tiles/9/416/%2e%2e%2f202.png", "/tiles/9/0x1a0/202.png"):
        assert client.get(bad).status_code == 404, bad


def test_vector_tiles_gzip_or_plain(make_app, vector_file):
    client = _client(make_app, vector_file)
    r = client.get("/tiles/9/416/203.pbf", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.mapbox-vector-tile"
    assert r.headers["Content-Encoding"] == "gzip"
    decoded = mapbox_vector_tile.decode(gzip.decompress(r.data))
    assert decoded["counties"]["features"][0]["properties"]["name"] == "south"
    plain = client.get("/tiles/9/416/203.mvt", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert mapbox_vector_tile.decode(plain.data)["counties"]["features"][0]["properties"][
        "name"] == "south"
    assert client.get("/tiles/9/0/0.pbf").status_code == 204
    assert client.get("/tiles/9/416/203.png").status_code == 404


def test_tiles_need_a_login(make_app, raster_file):
    app = make_app(TILES="local", LOCAL_TILES=str(raster_file))
    r = app.test_client().get("/tiles/9/416/202.png")
    assert r.status_code in (302, 401)


# --- the shipped package and the pages ------------------------------------------------------

def test_shipped_package_is_the_build_of_the_data(tmp_path):
    fresh = tmp_path / "basemap.pmtiles"
    summary = build_basemap(ROOT / "data", fresh)
    assert fresh.read_bytes() == PACKAGE.read_bytes(), "run scripts/build_basemap.py"
    assert min(summary["per_zoom"]) == 7 and max(summary["per_zoom"]) == 14
    assert PACKAGE.stat().st_size < 3 * 1024 * 1024
    archive = open_archive(PACKAGE)
    try:
        meta = archive.meta
        assert meta.format == "pbf" and (meta.minzoom, meta.maxzoom) == (7, 14)
        assert set(meta.vector_layers) >= {"city", "counties", "rivers", "yellow_river",
                                           "canal", "urban_core", "places"}
        w, s, e, n = meta.bounds
        assert 112 < w < e < 114 and 34.5 < s < n < 35.8
    finally:
        archive.close()


def test_overview_page_draws_the_local_basemap(make_app):
    app = make_app(TILES="local", INTRANET=True)
    client = app.test_client()
    login(client, "viewer")
    page = client.get("/").get_data(as_text=True)
    assert "geoappBasemap.add(" in page
    assert "/static/vendor/protomaps-leaflet/protomaps-leaflet.js" in page
    spec = re.search(r'"url":"([^"]+)"', page.split("geoappBasemap.add(", 1)[1]).group(1)
    assert spec == "/tiles/{z}/{x}/{y}.pbf"
    assert '"maxzoom":14' in page and '"bounds":[[' in page
    assert "openstreetmap" not in page and "cdn.jsdelivr" not in page
    tile = client.get("/tiles/10/834/405.pbf")
    assert tile.status_code in (200, 204)
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "connect-src 'self'" in csp and "worker-src" not in csp
