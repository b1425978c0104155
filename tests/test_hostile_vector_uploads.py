"""Hostile vector uploads (GDAL formats): only what was uploaded is ever read.

A canary string sits in a file on disk, in this process's environment and in the database;
every hostile file (VRTs under innocent names, URL references, GeoPackages with views,
virtual tables or triggers, links inside zips) goes to ``/api/flag``, ``/layers`` and the
CLI, and must come back as a clear 4xx (exit 2) without the canary, without a request to a
local HTTP listener and with the database unchanged. Coordinate system texts that would make
GDAL or PROJ fetch a URL or open a file (a GeoJSON ``crs`` in any letter case or below the
top, a PROJ string's grids or init files in a ``.prj`` or a GeoPackage srs row) are refused
before GDAL or pyproj sees them.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import secrets
import sqlite3
import stat
import threading
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj
import pyproj.network
import pytest
from click.testing import CliRunner
from shapely.geometry import Polygon

from geoapp.cli import main
from geoapp.storage.vector_in import GDAL_OPTIONS
from geoapp.web import create_app

from webutil import login, make_users, on_postgis, sql

SQUARE = Polygon([(113.20, 35.20), (113.22, 35.20), (113.22, 35.22), (113.20, 35.22)])
CANARY = "canary-" + secrets.token_hex(12)
GCJ_PRJ = ('GEOGCS["GCS_GCJ_02",DATUM["D_GCJ_02",SPHEROID["Krasovsky_1940",6378245.0,298.3]],'
           'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')
WGS84_BODY = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
              'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]')
COMPOUND_PRJ = (f'COMPD_CS["x",{WGS84_BODY}],VERT_CS["EGM96",VERT_DATUM["EGM96",2005],'
                'UNIT["metre",1]]]')


# ------------------------------------------------------------------ fixtures
class _Listener(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        _Listener.hits.append(self.path)
        body = f"lon,lat,name\n113.2,35.2,{CANARY}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def listener():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def canary_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.csv"
    path.write_text(f"lon,lat,name,WKT\n113.2,35.2,{CANARY},POINT (113.2 35.2)\n")
    return path


@pytest.fixture(scope="module")
def hostile_app(make_module_app, canary_file):
    old = os.environ.get("HOSTILE_UPLOAD_TEST_CANARY")
    os.environ["HOSTILE_UPLOAD_TEST_CANARY"] = CANARY
    app = make_module_app(INTRANET=True, TILES="none", MAX_UPLOAD_MB=2, MAX_ROWS=50)
    core(app).repo.log_event(user="test", action="note", entity="canary", entity_id=CANARY,
                             details={"canary": CANARY})
    yield app
    if old is None:
        os.environ.pop("HOSTILE_UPLOAD_TEST_CANARY", None)
    else:
        os.environ["HOSTILE_UPLOAD_TEST_CANARY"] = old


@pytest.fixture(scope="module")
def planner(hostile_app):
    client = hostile_app.test_client()
    return client, login(client, "planner")


def core(app):
    return app.extensions["geoapp"]


def database(app) -> Path:
    """The GeoPackage file of the app (on PostGIS: where one would be, which is never read)."""
    return Path(core(app).settings["DATABASE"])


def instance_folder(app) -> Path:
    """The instance folder of the app, for the CLI (GEOAPP_INSTANCE_PATH): the folder of
    ``DATABASE``, which the fixtures leave at its default (named on PostGIS too)."""
    return database(app).parent


def stored_anywhere(app, text: str) -> list[tuple[str, str]]:
    """The (table, column) of every text column of the PostGIS database holding ``text``."""
    columns = sql(app, "SELECT table_name, column_name FROM information_schema.columns WHERE "
                       "table_schema = current_schema() AND data_type IN ('text', "
                       "'character varying', 'json', 'jsonb')")
    union = " UNION ALL ".join(
        f"SELECT '{t}', '{c}' FROM \"{t}\" WHERE strpos(\"{c}\"::text, ?) > 0"
        for t, c in columns)
    return [tuple(r) for r in sql(app, union, (text,) * len(columns))]


def state(app, layer: str = "urban_core") -> tuple:
    repo = core(app).repo
    return (repo.last_change_id(), len(repo.sites()), len(repo.site_hits()),
            len(repo.layer(layer)), tuple(repo.layer(layer).columns))


def upload(client, token, layer: str, data: bytes, filename: str, **fields):
    form = {"csrf_token": token, "file": (io.BytesIO(data), filename), **fields}
    return client.post(f"/layers/{layer}", data=form, content_type="multipart/form-data")


def flag(client, token, data: bytes, filename: str, **fields):
    form = {"file": (io.BytesIO(data), filename), **fields}
    return client.post("/api/flag", data=form, content_type="multipart/form-data",
                       headers={"X-CSRFToken": token})


# ------------------------------------------------------------------ building files
def zone_frame(n: int = 1, crs=4326, **extra) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": [f"UC{i + 1}" for i in range(n)],
                             "name": [f"区域{i + 1}" for i in range(n)],
                             "source": ["测试"] * n, **extra},
                            geometry=[SQUARE] * n, crs=crs)


def shapefile_parts(tmp_path: Path, gdf: gpd.GeoDataFrame) -> dict[str, bytes]:
    folder = tmp_path / f"shp-{secrets.token_hex(4)}"
    folder.mkdir()
    gdf.to_file(folder / "zone.shp", encoding="UTF-8")
    return {p.suffix: p.read_bytes() for p in folder.iterdir()}


def zipped(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            info.create_system = 3
            zf.writestr(info, target)
    return buf.getvalue()


def vrt(source: str, layer: str = "secret") -> bytes:
    return (f'<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>{source}'
            f'</SrcDataSource><SrcLayer>{layer}</SrcLayer>'
            '<GeometryType>wkbPoint</GeometryType>'
            '<GeometryField encoding="PointFromColumns" x="lon" y="lat"/>'
            '</OGRVRTLayer></OGRVRTDataSource>').encode()


def geojson(crs: dict | None = None) -> bytes:
    doc = json.loads(zone_frame().to_json())
    doc["features"][0]["properties"].update(lon=113.21, lat=35.21)
    if crs is not None:
        doc["crs"] = crs
    return json.dumps(doc).encode()


def geojson_with(edit) -> bytes:
    """The zone GeoJSON after ``edit(doc)`` changed it in place."""
    doc = json.loads(geojson())
    edit(doc)
    return json.dumps(doc).encode()


def prj_zip(tmp_path: Path, prj: str) -> bytes:
    shp = shapefile_parts(tmp_path, zone_frame())
    shp[".prj"] = prj.encode()
    return zipped({f"zone{k}": v for k, v in shp.items()})


def proj4_prj(proj4: str) -> str:
    """A WKT whose EXTENSION hands PROJ a PROJ string (what GDAL reads from a .prj)."""
    return f'{WGS84_BODY},EXTENSION["PROJ4","{proj4}"]]'


def srs_gpkg(tmp_path: Path, definition: str, *, used: bool = True) -> bytes:
    """A GeoPackage with one more gpkg_spatial_ref_sys row (srs_id 99999, organization NONE),
    used by the feature table unless ``used`` is False."""
    quoted = definition.replace("'", "''")
    sql = [f"INSERT INTO gpkg_spatial_ref_sys VALUES ('x', 99999, 'NONE', 99999, '{quoted}', '')"]
    if used:
        sql += ["UPDATE gpkg_contents SET srs_id = 99999",
                "UPDATE gpkg_geometry_columns SET srs_id = 99999"]
    return gpkg_bytes(tmp_path, zone_frame(), tuple(sql))


def proj_file_cases(tmp_path: Path, canary: Path, port: int) -> list[tuple[str, bytes]]:
    """Coordinate systems that make PROJ open a local file or fetch a URL (grids, init)."""
    url = f"http://127.0.0.1:{port}"
    grids = f"+proj=longlat +ellps=WGS84 +nadgrids=@{url}/grid.tif,@{canary} +wktext +no_defs"
    return [
        ("nadgrids-crs.geojson", geojson_with(lambda d: d.update(CRS={"type": "name", "properties": {
            "name": f"+proj=longlat +datum=WGS84 +nadgrids={canary}"}}))),
        ("zero-crs.geojson", geojson({"type": "name", "properties": {
            "name": "+proj=longlat +datum=WGS84 +nadgrids=/dev/zero"}})),
        ("init-prj.zip", prj_zip(tmp_path, f'PROJCS["x",{WGS84_BODY}],PROJECTION['
                                           f'"Transverse_Mercator"],EXTENSION["PROJ4","+init='
                                           f'{canary}:foo"],UNIT["metre",1]]')),
        ("nadgrids-prj.zip", prj_zip(tmp_path, proj4_prj(grids))),
        ("geoidgrids-prj.zip", prj_zip(tmp_path, proj4_prj(
            f"+proj=longlat +ellps=WGS84 +geoidgrids={canary}"))),
        ("parameterfile-prj.zip", prj_zip(tmp_path, (
            'BOUNDCRS[SOURCECRS[GEOGCRS["x",DATUM["WGS 84",ELLIPSOID["WGS 84",6378137,'
            '298.257223563]],CS[ellipsoidal,2],AXIS["lon",east],AXIS["lat",north],'
            'ANGLEUNIT["degree",0.0174532925199433]]],TARGETCRS[GEOGCRS["WGS 84",DATUM["WGS 84",'
            'ELLIPSOID["WGS 84",6378137,298.257223563]],CS[ellipsoidal,2],AXIS["lon",east],'
            'AXIS["lat",north],ANGLEUNIT["degree",0.0174532925199433]]],ABRIDGEDTRANSFORMATION['
            '"x",METHOD["NTv2"],PARAMETERFILE["Latitude and longitude difference file",'
            f'"{canary}"]]]'))),
        ("srs-proj4.gpkg", srs_gpkg(tmp_path, proj4_prj(grids))),
        ("srs-init.gpkg", srs_gpkg(tmp_path, f"+init={canary}:foo")),
        ("srs-unused.gpkg", srs_gpkg(tmp_path, proj4_prj(f"+init={canary}:foo"), used=False)),
    ]


def gpkg_bytes(tmp_path: Path, gdf, sql: tuple[str, ...] = (), layer: str = "zone") -> bytes:
    path = tmp_path / f"g-{secrets.token_hex(4)}.gpkg"
    gdf.to_file(path, driver="GPKG", layer=layer)
    if sql:
        con = sqlite3.connect(path)
        for stmt in sql:
            con.execute(stmt)
        con.commit()
        con.close()
    return path.read_bytes()


def hostile_files(tmp_path: Path, canary: Path, db: Path, port: int) -> list[tuple[str, bytes]]:
    """(upload name, bytes) of every hostile vector file we could think of."""
    url = f"http://127.0.0.1:{port}"
    shp = shapefile_parts(tmp_path, zone_frame())
    files = [
        ("vrt.geojson", vrt(f"CSV:{canary}")),
        ("vrt.json", vrt(str(canary))),
        ("vrt.gpkg", vrt(str(canary))),
        ("vrt.csv", vrt(str(canary))),
        ("live-db.geojson", vrt(str(db), "users")),
        ("live-db.gpkg", vrt(str(db), "users")),
        ("vsicurl.geojson", vrt(f"/vsicurl/{url}/secret.csv")),
        ("http.geojson", vrt(f"{url}/secret.csv")),
        ("url-as-content.geojson", f"{url}/secret.geojson".encode()),
        ("vsi-as-content.gpkg", f"/vsicurl/{url}/x.gpkg".encode()),
        ("link-crs.geojson", geojson({"type": "link", "properties": {
            "href": f"{url}/crs.prj", "type": "proj4"}})),
        ("file-crs.geojson", geojson({"type": "name", "properties": {"name": str(canary)}})),
        ("vsicurl-crs.geojson", geojson({"type": "name", "properties": {
            "name": f"/vsicurl/{url}/crs.prj"}})),
        ("vrt-in-shp.zip", zipped({"zone.shp": vrt(str(canary)), "zone.shx": shp[".shx"],
                                   "zone.dbf": shp[".dbf"], "zone.prj": shp[".prj"]})),
        ("vrt-in-dbf.zip", zipped({"zone.shp": shp[".shp"], "zone.shx": shp[".shx"],
                                   "zone.dbf": vrt(str(canary)), "zone.prj": shp[".prj"]})),
        ("vrt-in-prj.zip", zipped({"zone.shp": shp[".shp"], "zone.shx": shp[".shx"],
                                   "zone.dbf": shp[".dbf"], "zone.prj": str(canary).encode()})),
        ("link-in-zip.zip", zipped({"zone.shx": shp[".shx"], "zone.dbf": shp[".dbf"]},
                                   links={"zone.shp": str(canary)})),
        ("view.gpkg", gpkg_bytes(tmp_path, zone_frame(), (
            "CREATE VIEW v AS SELECT * FROM zone",
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
            "VALUES ('v', 'features', 'v', 4326)",
            "INSERT INTO gpkg_geometry_columns VALUES ('v', 'geom', 'POLYGON', 4326, 0, 0)",
            "DELETE FROM gpkg_contents WHERE table_name = 'zone'"))),
        ("trigger.gpkg", gpkg_bytes(tmp_path, zone_frame(), (
            "CREATE TABLE log (x)",
            "CREATE TRIGGER evil AFTER UPDATE ON zone BEGIN INSERT INTO log VALUES (1); END",
        ))),
        ("virtual.gpkg", gpkg_bytes(tmp_path, zone_frame(), (
            "PRAGMA writable_schema = ON",
            "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES "
            f"('table', 'secret', 'secret', 0, 'CREATE VIRTUAL TABLE secret USING "
            f"VirtualOGR(''{canary}'')')"))),
        ("generated.gpkg", gpkg_bytes(tmp_path, zone_frame(), (
            "ALTER TABLE zone ADD COLUMN g TEXT GENERATED ALWAYS AS (name || 'x') VIRTUAL",))),
        ("truncated.gpkg", gpkg_bytes(tmp_path, zone_frame())[:5000]),
        # GDAL matches "crs" in any letter case and also reads it in a geometry
        ("upper-crs-link.geojson", geojson_with(lambda d: d.update(CRS={"type": "link",
            "properties": {"href": f"{url}/wkt", "type": "ogcwkt"}}))),
        ("mixed-crs-link.geojson", geojson_with(lambda d: d.update(cRs={"type": "link",
            "properties": {"href": f"{url}/wkt"}}))),
        ("https-crs-link.geojson", geojson_with(lambda d: d.update(Crs={"type": "link",
            "properties": {"href": f"https://127.0.0.1:{port}/wkt"}}))),
        ("geometry-crs.geojson", geojson_with(lambda d: d["features"][0]["geometry"].update(
            crs={"type": "link", "properties": {"href": f"{url}/geomcrs"}}))),
        ("collection-crs.geojson", geojson_with(lambda d: d["features"][0].update(geometry={
            "type": "GeometryCollection", "geometries": [{
                "type": "GeometryCollection", "geometries": [dict(
                    d["features"][0]["geometry"], CRS={"type": "name", "properties": {
                        "name": f"{url}/nested"}})]}]}))),
        ("feature-crs.geojson", geojson_with(lambda d: d["features"][0].update(
            CRS={"type": "name", "properties": {"name": "EPSG:4326"}}))),
        ("named-url-crs.geojson", geojson({"type": "name", "properties": {
            "name": f"{url}/crs.wkt"}})),
        ("dup-crs.geojson", b'{"crs": {"type": "link", "properties": {"href": "' + url.encode()
         + b'/dup"}}, ' + geojson({"type": "name", "properties": {"name": "EPSG:4326"}})[1:]),
        ("nul-crs.geojson", b'{"crs\\u0000x": {"type": "link", "properties": {"href": "'
         + url.encode() + b'/nul"}}, ' + geojson()[1:]),
        *proj_file_cases(tmp_path, canary, port),
    ]
    return files


def assert_clean(text: str) -> None:
    assert CANARY not in text
    for temp in ("geoapp-vector-", "geoapp-upload-", "geoapp-flag-", "geoapp-layer-"):
        assert temp not in text  # no server-side temporary path in an answer


# ------------------------------------------------------------------ the canary
def test_hostile_files_never_read_anything_but_the_upload(hostile_app, planner, listener,
                                                          canary_file, tmp_path):
    client, token = planner
    before = state(hostile_app)
    files = hostile_files(tmp_path, canary_file, database(hostile_app), listener.server_port)
    _Listener.hits.clear()
    for name, data in files:
        if not name.endswith(".zip"):
            r = flag(client, token, data, name, lon_col="lon", lat_col="lat")
            assert 400 <= r.status_code < 500, (name, r.status_code, r.get_data(as_text=True))
            assert_clean(r.get_data(as_text=True))
        if not name.endswith(".csv"):
            r = upload(client, token, "urban_core", data, name)
            body = r.get_data(as_text=True)
            assert 400 <= r.status_code < 500, (name, r.status_code, body[:2000])
            assert_clean(body)
    assert _Listener.hits == []
    assert state(hostile_app) == before


def test_hostile_files_through_the_cli(hostile_app, listener, canary_file, tmp_path,
                                       monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance_folder(hostile_app)))
    # Opening the core from the CLI refreshes stale rule hits once: not the upload's doing.
    CliRunner().invoke(main, ["layer", "import", "urban_core", str(canary_file)])
    before = state(hostile_app)
    files = hostile_files(tmp_path, canary_file, database(hostile_app), listener.server_port)
    _Listener.hits.clear()
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (name, data) in enumerate(files):
        src = folder / f"{i}-{name}"
        src.write_bytes(data)
        if not name.endswith(".zip"):
            out = tmp_path / f"out-{i}{Path(name).suffix if name.endswith('.csv') else '.csv'}"
            res = CliRunner().invoke(main, ["flag", str(src), "-o", str(out)])
            assert res.exit_code == 2, (name, res.output)
            assert CANARY not in res.output
            assert not out.exists() or CANARY not in out.read_text(errors="replace")
        if not name.endswith(".csv"):
            res = CliRunner().invoke(main, ["layer", "import", "urban_core", str(src)])
            assert res.exit_code == 2, (name, res.output)
            assert CANARY not in res.output
    assert _Listener.hits == []
    assert state(hostile_app) == before


@pytest.mark.backends("gpkg")  # the app's own GeoPackage file, given as a file to read
def test_the_apps_own_database_and_symlinks_are_refused(hostile_app, tmp_path, monkeypatch):
    db = database(hostile_app)
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance_folder(hostile_app)))
    link = tmp_path / "innocent.gpkg"
    link.symlink_to(db)
    before = state(hostile_app)
    for path in (db, link):
        res = CliRunner().invoke(main, ["flag", str(path), "-o", str(tmp_path / "o.csv")])
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        res = CliRunner().invoke(main, ["layer", "import", "urban_core", str(path)])
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "数据库" in CliRunner().invoke(main, ["flag", str(db), "-o",
                                                   str(tmp_path / "o.csv")]).output
    assert state(hostile_app) == before


def test_gdal_network_and_vrt_options_are_set_at_start(instance, listener):
    def norm(v) -> str:
        return {True: "TRUE", False: "NO"}.get(v, str(v)) if isinstance(v, bool) else str(v)

    pyogrio.set_gdal_config_options(dict.fromkeys(GDAL_OPTIONS))
    create_app({"INSTANCE_PATH": str(instance), "TESTING": True, "TILES": "none"})
    for key, value in GDAL_OPTIONS.items():
        assert norm(pyogrio.get_gdal_config_option(key)) == norm(
            {"YES": True, "NO": False, "TRUE": True}.get(value, value)), key
    _Listener.hits.clear()
    for url in (f"/vsicurl/http://127.0.0.1:{listener.server_port}/x.csv",
                f"http://127.0.0.1:{listener.server_port}/x.geojson"):
        with pytest.raises(Exception):  # noqa: B017, PT011 - any GDAL error will do
            pyogrio.read_info(url)
    assert _Listener.hits == []


# ------------------------------------------------------------------ store integrity
def test_hostile_uploads_leave_the_live_store_intact(instance, canary_file, tmp_path):
    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TESTING": True,
                      "TILES": "none", "MAX_UPLOAD_MB": 2, "MAX_ROWS": 50})
    make_users(app)
    client = app.test_client()
    token = login(client, "planner")
    db = database(app)
    gpkg = not on_postgis(app)
    core(app).repo.log_event(user="test", action="note", entity="integrity", entity_id="one",
                             details={"n": 1})
    wal = Path(f"{db}-wal")
    assert wal.exists() == gpkg
    for name, data in hostile_files(tmp_path, canary_file, db, 9):
        if not name.endswith(".csv"):
            upload(client, token, "urban_core", data, name)
        if not name.endswith(".zip"):
            flag(client, token, data, name)
    if gpkg:
        assert wal.exists(), "the live -wal file was removed"
        assert Path(f"{db}-shm").exists()
    core(app).repo.log_event(user="test", action="note", entity="integrity", entity_id="two",
                             details={"n": 2})
    seen = {r[0] for r in sql(app, "SELECT entity_id FROM changes WHERE entity = 'integrity'")}
    assert seen == {"one", "two"}  # another connection sees both writes
    if gpkg:
        assert sql(app, "PRAGMA integrity_check") == [("ok",)]


# ------------------------------------------------------------------ broken but not hostile
def test_attribute_only_geopackage_is_a_clear_400(hostile_app, planner, tmp_path):
    client, token = planner
    path = tmp_path / "attrs.gpkg"
    pyogrio.write_dataframe(pd.DataFrame({"lon": [113.2], "lat": [35.2]}), path,
                            driver="GPKG", layer="attrs")
    before = state(hostile_app)
    r = flag(client, token, path.read_bytes(), "attrs.gpkg")
    assert r.status_code == 400 and "没有要素表" in r.json["message"]
    assert "attrs.gpkg" in r.json["message"]
    r = upload(client, token, "urban_core", path.read_bytes(), "attrs.gpkg")
    assert r.status_code == 400 and "没有要素表" in r.get_data(as_text=True)
    assert state(hostile_app) == before


def test_encrypted_zip_is_a_clear_400(hostile_app, planner, tmp_path):
    client, token = planner
    shp = shapefile_parts(tmp_path, zone_frame())
    data = bytearray(zipped({f"zone{k}": v for k, v in shp.items()}))
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set "encrypted"
        at = data.find(sig)
        while at >= 0:
            data[at + offset] |= 0x01
            at = data.find(sig, at + 4)
    before = state(hostile_app)
    r = upload(client, token, "urban_core", bytes(data), "locked.zip")
    assert r.status_code == 400
    assert "压缩包已加密" in r.get_data(as_text=True)
    assert state(hostile_app) == before


def test_prj_with_an_invented_datum_needs_the_crs_field(tmp_path, instance):
    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TESTING": True,
                      "TILES": "none", "MAX_UPLOAD_MB": 2, "MAX_ROWS": 50})
    make_users(app)
    client = app.test_client()
    token = login(client, "planner")
    shp = shapefile_parts(tmp_path, zone_frame())
    shp[".prj"] = GCJ_PRJ.encode()
    data = zipped({f"zone{k}": v for k, v in shp.items()})
    before = state(app)
    r = upload(client, token, "urban_core", data, "gcj.zip")
    assert r.status_code == 400
    assert "坐标系基准面未知" in r.get_data(as_text=True) and "GCJ_02" in r.get_data(as_text=True)
    assert state(app) == before
    r = upload(client, token, "urban_core", data, "gcj.zip", crs="wgs84")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    assert len(core(app).repo.layer("urban_core")) == 1


def test_layer_upload_keeps_only_declared_columns(tmp_path, instance):
    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TESTING": True,
                      "TILES": "none", "MAX_UPLOAD_MB": 2, "MAX_ROWS": 50})
    make_users(app)
    client = app.test_client()
    token = login(client, "planner")
    columns = tuple(core(app).repo.layer("urban_core").columns)
    size = None if on_postgis(app) else database(app).stat().st_size
    blob = "blob-" + secrets.token_hex(8) + "x" * 150_000
    data = zone_frame(2, blob=[blob] * 2, extra=["a", "b"]).to_json().encode()
    r = upload(client, token, "urban_core", data, "extra.geojson")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    report = r.get_data(as_text=True).split('id="ly-report"')[1].split("</div>")[0]
    assert "未导入" in report and "blob" in report and "extra" in report  # the planner sees it
    assert tuple(core(app).repo.layer("urban_core").columns) == columns
    imported = [h for h in core(app).repo.history("urban_core", "layer")
                if h["action"] == "import"][-1]
    assert "blob" in json.dumps(imported, ensure_ascii=False)  # the audit names them
    core(app).repo.close()
    if size is None:  # PostGIS compresses long text: look for it instead of weighing
        assert stored_anywhere(app, blob[:21]) == []
    else:
        assert database(app).stat().st_size < size + 100_000


def test_oversize_text_in_a_declared_column_is_refused(hostile_app, planner):
    client, token = planner
    before = state(hostile_app)
    gdf = zone_frame(2)
    gdf.loc[1, "name"] = "长" * 5000
    r = upload(client, token, "urban_core", gdf.to_json().encode(), "long.geojson")
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert "文字过长" in body and "要素 2" in body
    assert state(hostile_app) == before


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("zone.geojson", b"SQLite format 3\x00" + b"\x00" * 200, "文件内容与扩展名不符"),
    ("zone.gpkg", b'{"type": "FeatureCollection", "features": []}', "文件内容与扩展名不符"),
    ("zone.zip", b'{"type": "FeatureCollection", "features": []}', "文件内容与扩展名不符"),
    ("zone.geojson", b'{"type": "Topology"}', "无法读取文件"),
    ("zone.geojson", b'{"type": "FeatureCollection", "features": [', "无法读取文件"),
])
def test_content_and_extension_must_agree(hostile_app, planner, name, data, expected):
    client, token = planner
    before = state(hostile_app)
    r = upload(client, token, "urban_core", data, name)
    assert r.status_code == 400 and expected in r.get_data(as_text=True)
    assert_clean(r.get_data(as_text=True))
    if not name.endswith(".zip"):
        r = flag(client, token, data, name)
        assert r.status_code == 400 and expected in r.json["message"], r.json
        assert name in r.json["message"]
    assert state(hostile_app) == before


def test_too_many_features_are_refused_before_gdal_reads(hostile_app, planner, tmp_path,
                                                        monkeypatch):
    client, token = planner

    def no_read(*args, **kwargs):
        raise AssertionError("GDAL read a file over the limit")

    monkeypatch.setattr(pyogrio, "read_dataframe", no_read)
    many = zone_frame(60)
    for name, data in (("many.geojson", many.to_json().encode()),
                       ("many.gpkg", gpkg_bytes(tmp_path, many)),
                       ("many.zip", zipped({f"zone{k}": v for k, v
                                            in shapefile_parts(tmp_path, many).items()}))):
        r = upload(client, token, "urban_core", data, name)
        assert r.status_code == 400 and "要素过多" in r.get_data(as_text=True), name


def test_flag_geopackage_with_an_invented_datum_needs_crs(hostile_app, planner, tmp_path):
    client, token = planner
    pts = gpd.GeoDataFrame({"name": ["a"]}, geometry=gpd.points_from_xy([113.2], [35.2]),
                           crs=GCJ_PRJ)
    data = gpkg_bytes(tmp_path, pts, layer="pts")
    r = flag(client, token, data, "gcj.gpkg")
    assert r.status_code == 400 and "Unknown datum" in r.json["message"], r.json
    r = flag(client, token, data, "gcj.gpkg", crs="wgs84", site_type="enterprise")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]


# ------------------------------------------------------------------ coordinate systems
@pytest.fixture
def gdal_and_proj_watched(monkeypatch) -> list:
    """Record (and fail) every GDAL read and every pyproj CRS built from a PROJ string,
    a grid or an EXTENSION: a refused upload must be refused before either sees it."""
    seen: list = []

    def no_gdal(source, *args, **kwargs):
        seen.append(("gdal", str(source)))
        raise AssertionError("GDAL opened an upload that should have been refused")

    build = pyproj.CRS.__init__

    def guarded(self, projparams=None, **kwargs):
        text = str(projparams).lower()
        if any(t in text for t in ("nadgrids", "geoidgrids", "init=", "+init", "proj4",
                                   "parameterfile")):
            seen.append(("pyproj", text[:200]))
            raise AssertionError("pyproj was handed a PROJ string from an upload")
        build(self, projparams, **kwargs)

    monkeypatch.setattr(pyogrio, "read_info", no_gdal)
    monkeypatch.setattr(pyogrio, "read_dataframe", no_gdal)
    monkeypatch.setattr(pyproj.CRS, "__init__", guarded)
    return seen


def test_grids_and_init_files_are_refused_before_gdal_or_pyproj(hostile_app, planner,
                                                                 listener, canary_file,
                                                                 tmp_path,
                                                                 gdal_and_proj_watched):
    client, token = planner
    before = state(hostile_app)
    _Listener.hits.clear()
    for name, data in proj_file_cases(tmp_path, canary_file, listener.server_port):
        r = upload(client, token, "urban_core", data, name)
        assert r.status_code == 400, (name, r.status_code)
        answers = [r.get_data(as_text=True)]
        if not name.endswith(".zip"):
            r = flag(client, token, data, name, lon_col="lon", lat_col="lat")
            assert r.status_code == 400, (name, r.json)
            answers.append(r.json["message"])
        for text in answers:
            assert any(k in text for k in ("不接受的坐标系", "无法读取坐标系")), (name, text[:500])
            assert_clean(text)
            assert str(canary_file) not in text
    assert gdal_and_proj_watched == []
    assert _Listener.hits == []
    assert state(hostile_app) == before


def test_grids_and_init_files_are_refused_by_the_cli(hostile_app, listener, canary_file,
                                                     tmp_path, monkeypatch,
                                                     gdal_and_proj_watched):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance_folder(hostile_app)))
    CliRunner().invoke(main, ["layer", "import", "urban_core", str(canary_file)])
    before = state(hostile_app)
    _Listener.hits.clear()
    for i, (name, data) in enumerate(proj_file_cases(tmp_path, canary_file,
                                                     listener.server_port)):
        src = tmp_path / f"{i}-{name}"
        src.write_bytes(data)
        res = CliRunner().invoke(main, ["layer", "import", "urban_core", str(src)])
        assert res.exit_code == 2 and "坐标系" in res.output, (name, res.output)
        if not name.endswith(".zip"):
            res = CliRunner().invoke(main, ["flag", str(src), "-o", str(tmp_path / f"{i}.csv")])
            assert res.exit_code == 2 and "坐标系" in res.output, (name, res.output)
    assert gdal_and_proj_watched == []
    assert _Listener.hits == []
    assert state(hostile_app) == before


def test_named_crs_in_any_case_is_applied_after_reading(instance, monkeypatch):
    """The named system is taken from the document; GDAL reads a copy without any crs."""
    read = pyogrio.read_dataframe
    handed: list[str] = []

    def spy(source, *args, **kwargs):
        handed.append(Path(str(source).removeprefix("GeoJSON:")).read_text())
        return read(source, *args, **kwargs)

    monkeypatch.setattr(pyogrio, "read_dataframe", spy)
    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TESTING": True,
                      "TILES": "none", "MAX_UPLOAD_MB": 2, "MAX_ROWS": 50})
    make_users(app)
    client = app.test_client()
    token = login(client, "planner")
    metres = zone_frame(crs=4326).to_crs(4547)
    doc = json.loads(metres.to_json())
    doc.pop("crs", None)
    doc["CRS"] = {"type": "name", "properties": {"name": "EPSG:4547"}}
    r = upload(client, token, "urban_core", json.dumps(doc).encode(), "gk.geojson")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    minx, miny, maxx, maxy = core(app).repo.layer("urban_core").total_bounds
    assert abs(minx - 113.20) < 1e-6 and abs(maxy - 35.22) < 1e-6
    assert len(handed) == 1 and "crs" not in handed[0].lower()


def test_a_web_mercator_geopackage_written_by_gdal_is_accepted(instance, tmp_path):
    """GDAL writes EXTENSION["PROJ4", "... +nadgrids=@null ..."] for EPSG:3857; the row is
    read from its EPSG code and PROJ's built-in null grid opens nothing."""
    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TESTING": True,
                      "TILES": "none", "MAX_UPLOAD_MB": 2, "MAX_ROWS": 50})
    make_users(app)
    client = app.test_client()
    token = login(client, "planner")
    data = gpkg_bytes(tmp_path, zone_frame().to_crs(3857))
    r = upload(client, token, "urban_core", data, "mercator.gpkg")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]


def test_file_crs_must_be_2d_geographic_or_projected(hostile_app, planner, tmp_path,
                                                     monkeypatch):
    client, token = planner
    before = state(hostile_app)
    cases = [("compound.zip", prj_zip(tmp_path, COMPOUND_PRJ)),
             ("compound.gpkg", srs_gpkg(tmp_path, COMPOUND_PRJ)),
             ("geocentric.geojson", geojson({"type": "name", "properties": {
                 "name": "urn:ogc:def:crs:EPSG::4978"}})),
             ("3d.geojson", geojson({"type": "name", "properties": {"name": "EPSG:4979"}})),
             ("vertical.geojson", geojson({"type": "name", "properties": {"name": "EPSG:5773"}}))]
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance_folder(hostile_app)))
    for name, data in cases:
        r = upload(client, token, "urban_core", data, name)
        body = r.get_data(as_text=True)
        assert r.status_code == 400 and "不支持的坐标系" in body, (
            name, body[:2000])
        if not name.endswith(".zip"):
            r = flag(client, token, data, name, site_type="enterprise")
            assert r.status_code == 400, (name, r.json)
            assert r.json["message"].startswith("不支持的坐标系"), r.json
        src = tmp_path / name
        src.write_bytes(data)
        res = CliRunner().invoke(main, ["layer", "import", "urban_core", str(src)])
        assert res.exit_code == 2 and "不支持的坐标系" in res.output, res.output
    assert state(hostile_app) == before


def test_a_long_encoding_name_is_refused_without_echo(hostile_app, planner, tmp_path,
                                                      monkeypatch):
    client, token = planner
    before = state(hostile_app)
    data = zipped({f"zone{k}": v for k, v in shapefile_parts(tmp_path, zone_frame()).items()})
    long_name = "utf" + "8" * 5000
    r = upload(client, token, "urban_core", data, "zone.zip", encoding=long_name)
    message = r.get_data(as_text=True).split('id="ly-error"')[1].split("</div>")[0]
    assert r.status_code == 400 and "文字编码名称过长" in message
    assert "8" * 50 not in message  # the message does not echo it (the form keeps the field)
    r = upload(client, token, "urban_core", data, "zone.zip", encoding="base64")
    assert r.status_code == 400 and "未知的文字编码" in r.get_data(as_text=True)
    src = tmp_path / "zone.zip"
    src.write_bytes(data)
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance_folder(hostile_app)))
    res = CliRunner().invoke(main, ["layer", "import", "urban_core", str(src),
                                    "--encoding", long_name])
    assert res.exit_code == 2 and "文字编码名称过长" in res.output
    assert "8" * 50 not in res.output
    assert state(hostile_app) == before


def test_proj_network_is_off_at_start(instance, monkeypatch):
    monkeypatch.setenv("PROJ_NETWORK", "ON")
    pyproj.network.set_network_enabled(True)
    try:
        create_app({"INSTANCE_PATH": str(instance), "TESTING": True, "TILES": "none"})
        assert os.environ["PROJ_NETWORK"] == "OFF"
        assert pyproj.network.is_network_enabled() is False
        monkeypatch.setenv("PROJ_NETWORK", "ON")
        pyproj.network.set_network_enabled(True)
        CliRunner().invoke(main, ["layer", "--help"])
        assert os.environ["PROJ_NETWORK"] == "OFF"
        assert pyproj.network.is_network_enabled() is False
    finally:
        pyproj.network.set_network_enabled(False)
