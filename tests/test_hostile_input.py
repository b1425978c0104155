"""Hostile and broken input: each case gets a clear 4xx and leaves the database unchanged.

The state compared before and after is the newest audit-log id plus the row counts of the
sites, the hits and the layer under attack, so a write anywhere shows up.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely
from catalogue import raises_english
from click.testing import CliRunner
from shapely.geometry import Point, Polygon

from geoapp.cli import main
from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.exports.tables import neutralise_frame
from geoapp.services.layer_import import extract_shapefile, repair_geometries
from geoapp.services.ledger import export_ledger

from webutil import login

FORMULAS = ("=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1,1)")
SQL = "'; DROP TABLE sites; --"
# A small square inside Jiaozuo's urban area (lon, lat).
SQUARE = Polygon([(113.20, 35.20), (113.22, 35.20), (113.22, 35.22), (113.20, 35.22)])
BOWTIE = Polygon([(113.20, 35.20), (113.22, 35.22), (113.22, 35.20), (113.20, 35.22)])


@pytest.fixture
def app(make_app, instance_with_users):
    return make_app(instance=instance_with_users, INTRANET=True, TILES="none", MAX_UPLOAD_MB=1,
                    MAX_ROWS=50)


@pytest.fixture(scope="module")
def ro_app(make_module_app):
    """One app for the cases that must not write: its rule engine is built once."""
    return make_module_app(INTRANET=True, TILES="none", MAX_UPLOAD_MB=1, MAX_ROWS=50)


@pytest.fixture
def ro_planner(ro_app):
    client = ro_app.test_client()
    return client, login(client, "planner")


@pytest.fixture
def planner(app):
    client = app.test_client()
    return client, login(client, "planner")


def core(app):
    return app.extensions["geoapp"]


def state(app, layer: str = "urban_core") -> tuple:
    repo = core(app).repo
    return (repo.last_change_id(), len(repo.sites()), len(repo.site_hits()),
            len(repo.layer(layer)))


# ------------------------------------------------------------------ building uploads
def shapefile_zip(tmp_path: Path, gdf: gpd.GeoDataFrame, *, encoding: str = "UTF-8",
                  drop: tuple[str, ...] = (), extra: dict[str, bytes] | None = None) -> bytes:
    folder = tmp_path / "shp"
    folder.mkdir(exist_ok=True)
    gdf.to_file(folder / "zone.shp", encoding=encoding)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in sorted(folder.iterdir()):
            if part.suffix not in drop:
                zf.write(part, arcname=part.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def zone(geoms, names=None, crs=4326) -> gpd.GeoDataFrame:
    names = names or [f"区域{i + 1}" for i in range(len(geoms))]
    return gpd.GeoDataFrame({"id": [f"UC{i + 1}" for i in range(len(geoms))], "name": names,
                             "source": ["测试"] * len(geoms)}, geometry=list(geoms), crs=crs)


def upload(client, token, layer: str, data: bytes, filename: str, **fields):
    form = {"csrf_token": token, "file": (io.BytesIO(data), filename), **fields}
    return client.post(f"/layers/{layer}", data=form, content_type="multipart/form-data")


def flag(client, token, data: bytes, filename: str, **fields):
    form = {"file": (io.BytesIO(data), filename), **fields}
    return client.post("/api/flag", data=form, content_type="multipart/form-data",
                       headers={"X-CSRFToken": token})


# ------------------------------------------------------------------ size limits
BOUNDARY = "geoapp-test-boundary"


def _multipart(data: bytes, filename: str, **fields: str) -> bytes:
    """A multipart body built in memory (the test client would spool a big one to a temp
    file that nobody closes when the server refuses to read it)."""
    out = b""
    for k, v in fields.items():
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                f"{v}\r\n").encode()
    out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode()
    return out + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def test_oversized_upload_is_413_with_the_limit_named_as_json_and_html(app, planner):
    client, token = planner
    before = state(app)
    big = b"lon,lat\n" + b"113.2,35.2\n" * 150_000  # 1.6 MB, the limit is 1 MB
    r = client.post("/api/flag", data=_multipart(big, "big.csv"), headers={
        "X-CSRFToken": token, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert r.status_code == 413
    assert r.is_json and "1 MB" in r.json["message"]
    r = client.post("/layers/urban_core", data=_multipart(big, "big.zip", csrf_token=token),
                    headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert r.status_code == 413
    assert "MAX_UPLOAD_MB" in r.get_data(as_text=True)
    assert state(app) == before


def test_zip_bomb_is_refused_before_extraction(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zone.shp", b"\0" * (8 * 1024 * 1024))
        zf.writestr("zone.shx", b"\0" * 100)
        zf.writestr("zone.dbf", b"\0" * 100)
    assert len(buf.getvalue()) < 100_000
    r = upload(client, token, "urban_core", buf.getvalue(), "bomb.zip")
    assert r.status_code == 400
    assert "zip 炸弹" in r.get_data(as_text=True)
    assert state(app) == before


def test_zip_unpacking_beyond_the_limit_is_refused(app, tmp_path):
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("zone.shp", b"x" * (3 * 1024 * 1024))
    with raises_english(InvalidInput, "more than the 2 MB accepted"):
        extract_shapefile(path, tmp_path / "out", max_unpacked_mb=2)
    assert not (tmp_path / "out").exists()


def test_zip_with_too_many_entries_is_refused(app, planner):
    client, token = planner
    before = state(app)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(100):
            zf.writestr(f"f{i}.txt", b"x")
    r = upload(client, token, "urban_core", buf.getvalue(), "many.zip")
    assert r.status_code == 400 and "个条目" in r.get_data(as_text=True)
    assert state(app) == before


@pytest.mark.parametrize("entry", ["../../evil.shp", "/etc/evil.shp", "a/../../evil.shp",
                                   "..\\..\\evil.shp"])
def test_zip_slip_entries_are_refused_and_nothing_lands_outside(app, planner, tmp_path, entry):
    client, token = planner
    before = state(app)
    data = shapefile_zip(tmp_path, zone([SQUARE]), extra={entry: b"pwned"})
    r = upload(client, token, "urban_core", data, "slip.zip")
    assert r.status_code == 400
    assert "指向压缩包之外" in r.get_data(as_text=True)
    assert state(app) == before
    assert not (tmp_path.parent / "evil.shp").exists()
    assert not Path("/etc/evil.shp").exists()


# ------------------------------------------------------------------ coordinate systems
def test_shapefile_without_prj_asks_for_the_crs(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    data = shapefile_zip(tmp_path, zone([SQUARE]), drop=(".prj",))
    r = upload(client, token, "urban_core", data, "noprj.zip")
    assert r.status_code == 400
    assert "没有 .prj" in r.get_data(as_text=True)
    assert state(app) == before


def test_shapefile_without_prj_is_accepted_with_an_explicit_crs(app, planner, tmp_path):
    client, token = planner
    data = shapefile_zip(tmp_path, zone([SQUARE]), drop=(".prj",))
    r = upload(client, token, "urban_core", data, "noprj.zip", crs="wgs84")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    stored = core(app).repo.layer("urban_core")
    assert list(stored["id"]) == ["UC1"]
    assert stored.geometry.iat[0].equals(SQUARE)


def test_metres_declared_as_degrees_is_a_wrong_prj(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    metres = shapely.affinity.translate(shapely.affinity.scale(SQUARE, 1, 1), 0, 0)
    gk = gpd.GeoSeries([metres], crs=4326).to_crs("EPSG:4547").set_crs(4326,
                                                                        allow_override=True)
    r = upload(client, token, "urban_core",
               shapefile_zip(tmp_path, zone(list(gk))), "wrongprj.zip")
    assert r.status_code == 400
    assert "这是米数" in r.get_data(as_text=True)
    assert state(app) == before


def test_prj_of_the_wrong_zone_lands_outside_the_city(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    # Real EPSG:4547 (114°E) coordinates, but the .prj claims EPSG:4546 (111°E).
    xy = gpd.GeoSeries([SQUARE], crs=4326).to_crs("EPSG:4547").set_crs("EPSG:4546",
                                                                        allow_override=True)
    r = upload(client, token, "urban_core", shapefile_zip(tmp_path, zone(list(xy), crs=xy.crs)),
               "zone.zip")
    assert r.status_code == 400
    assert "范围之外" in r.get_data(as_text=True)
    assert state(app) == before


def test_crs_field_contradicting_the_prj_is_refused(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    r = upload(client, token, "urban_core", shapefile_zip(tmp_path, zone([SQUARE])), "z.zip",
               crs="EPSG:4547")
    assert r.status_code == 400 and "矛盾" in r.get_data(as_text=True)
    assert state(app) == before


# ------------------------------------------------------------------ encodings
def test_gbk_attributes_without_cpg_keep_their_chinese_names(app, planner, tmp_path):
    client, token = planner
    data = shapefile_zip(tmp_path, zone([SQUARE], names=["焦作市主城区（测试）"]),
                         encoding="GBK", drop=(".cpg",))
    r = upload(client, token, "urban_core", data, "gbk.zip")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    assert list(core(app).repo.layer("urban_core")["name"]) == ["焦作市主城区（测试）"]


def test_named_encoding_wins_over_detection(app, planner, tmp_path):
    client, token = planner
    data = shapefile_zip(tmp_path, zone([SQUARE], names=["测试区"]), encoding="GBK",
                         drop=(".cpg",))
    r = upload(client, token, "urban_core", data, "gbk.zip", encoding="GBK")
    assert r.status_code == 200
    assert list(core(app).repo.layer("urban_core")["name"]) == ["测试区"]


def test_unknown_encoding_name_is_a_clear_error(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    data = shapefile_zip(tmp_path, zone([SQUARE]))
    r = upload(client, token, "urban_core", data, "z.zip", encoding="klingon-8")
    assert r.status_code == 400 and "encoding" in r.get_data(as_text=True)
    assert state(app) == before


def test_non_utf8_csv_on_flag_upload_is_a_clear_400(ro_app, ro_planner):
    client, token = ro_planner
    before = state(ro_app)
    data = "lon,lat,name\n113.2,35.2,焦作化工\n".encode("gbk")
    r = flag(client, token, data, "gbk.csv")
    assert r.status_code == 400 and "UTF-8" in r.json["message"]
    assert state(ro_app) == before


# ------------------------------------------------------------------ geometries
def test_self_intersecting_polygon_is_repaired_and_reported(app, planner, tmp_path):
    client, token = planner
    r = upload(client, token, "urban_core", shapefile_zip(tmp_path, zone([SQUARE, BOWTIE])),
               "bowtie.zip")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    page = r.get_data(as_text=True)
    assert "#2 (id UC2)" in page and "Self-intersection" in page
    stored = core(app).repo.layer("urban_core")
    assert stored.geometry.is_valid.all()
    assert stored.geometry.iat[1].geom_type == "MultiPolygon"
    history = core(app).repo.history("urban_core", "layer")
    assert history[-1]["action"] == "import" and history[-1]["after"]["repaired"] == [2]


def test_repair_that_changes_the_geometry_kind_is_rejected(app, tmp_path):
    line_like = Polygon([(113.2, 35.2), (113.3, 35.2), (113.2, 35.2)])  # zero area
    with raises_english(ValidationFailed, "feature 1"):
        repair_geometries(zone([line_like]), "z.geojson")


def test_empty_geometries_are_rejected_with_their_feature_numbers(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    gdf = zone([SQUARE, Polygon(), SQUARE, Polygon()])
    path = tmp_path / "empty.geojson"
    gdf.to_file(path, driver="GeoJSON")
    r = upload(client, token, "urban_core", path.read_bytes(), "empty.geojson")
    assert r.status_code == 400
    assert "要素 2, 4" in r.get_data(as_text=True)
    assert state(app) == before


def test_points_cannot_replace_a_zone_layer(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    path = tmp_path / "pts.geojson"
    zone([Point(113.2, 35.2)]).to_file(path, driver="GeoJSON")
    r = upload(client, token, "urban_core", path.read_bytes(), "pts.geojson")
    assert r.status_code == 400 and "面状" in r.get_data(as_text=True)
    assert state(app) == before


def test_layer_with_more_features_than_max_rows_is_refused(app, planner, tmp_path):
    client, token = planner
    before = state(app)
    squares = [shapely.affinity.translate(SQUARE, 0.0001 * i, 0) for i in range(60)]
    path = tmp_path / "many.geojson"
    zone(squares).to_file(path, driver="GeoJSON")
    r = upload(client, token, "urban_core", path.read_bytes(), "many.geojson")
    assert r.status_code == 400 and "MAX_ROWS" in r.get_data(as_text=True)
    assert state(app) == before


def test_not_a_geopackage_is_refused(app, planner):
    client, token = planner
    before = state(app)
    r = upload(client, token, "urban_core", b"PK\x03\x04 garbage", "x.gpkg")
    assert r.status_code == 400 and "GeoPackage" in r.get_data(as_text=True)
    assert state(app) == before


def test_planner_may_not_replace_the_county_boundaries(app, planner, tmp_path):
    client, token = planner
    before = state(app, "counties")
    r = upload(client, token, "counties", shapefile_zip(tmp_path, zone([SQUARE])), "c.zip")
    assert r.status_code == 403
    assert state(app, "counties") == before


def test_successful_replacement_refreshes_the_rule_hits(app, planner, tmp_path):
    client, token = planner
    repo = core(app).repo
    before_hits = len(repo.site_hits())
    r = upload(client, token, "urban_core", shapefile_zip(tmp_path, zone([SQUARE])), "z.zip")
    assert r.status_code == 200
    assert repo.last_change(only=("site_hits",))["id"] > repo.last_change(only=("layer",))["id"] - 1
    assert len(repo.site_hits()) != before_hits
    assert [h["action"] for h in repo.history("urban_core", "layer")][-2:] == ["replace",
                                                                                "import"]


def test_cli_layer_import_replaces_the_layer(app, instance_with_users, tmp_path, monkeypatch):
    path = tmp_path / "zone.geojson"
    zone([SQUARE]).to_file(path, driver="GeoJSON")
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance_with_users))
    bad = CliRunner().invoke(main, ["layer", "import", "urban_core", str(tmp_path / "x.txt")])
    assert bad.exit_code == 2
    result = CliRunner().invoke(main, ["layer", "import", "urban_core", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["after"] == 1


# ------------------------------------------------------------------ coordinates
@pytest.mark.parametrize("query", [
    "lon=200&lat=35.2", "lon=113.2&lat=95", "lon=35.2&lat=113.2", "lon=nan&lat=35.2",
    "lon=inf&lat=35.2", "lon=113.2&lat=", "lon=38500000&lat=3900000&crs=wgs84",
    "lon=113.2&lat=35.2&crs=EPSG:999999", "lon=abc&lat=def", "lon=113.2&lat=35.2&crs=gk",
])
def test_impossible_coordinates_are_a_400_on_api_and_page(ro_app, query):
    client = ro_app.test_client()
    login(client, "inspector")
    before = state(ro_app)
    r = client.get(f"/api/check?{query}")
    assert r.status_code == 400, (query, r.get_data(as_text=True)[:300])
    assert r.json["message"]
    page = client.get(f"/check?{query}")
    assert 400 <= page.status_code < 500
    assert state(ro_app) == before


def test_flag_upload_with_impossible_coordinates_lists_the_rows(ro_app, ro_planner):
    client, token = ro_planner
    before = state(ro_app)
    data = b"lon,lat\n113.2,35.2\nnan,35.2\n35.2,113.2\n38500000,3900000\n"
    r = flag(client, token, data, "bad.csv")
    assert r.status_code == 400
    assert [d["row"] for d in r.json["details"]] == [3, 4, 5]
    assert state(ro_app) == before


def test_flag_file_with_more_rows_than_max_rows_is_refused(ro_app, ro_planner):
    client, token = ro_planner
    data = ("lon,lat\n" + "113.2,35.2\n" * 51).encode()
    r = flag(client, token, data, "many.csv")
    assert r.status_code == 400 and "MAX_ROWS" in r.json["message"]


def test_malformed_xlsx_is_a_clear_400(ro_app, ro_planner):
    client, token = ro_planner
    before = state(ro_app)
    r = flag(client, token, b"PK\x03\x04 not really a workbook", "broken.xlsx")
    assert r.status_code == 400 and "xlsx" in r.json["message"]
    assert state(ro_app) == before


def test_path_traversal_in_the_file_name_goes_nowhere(app, planner, tmp_path):
    client, token = planner
    r = flag(client, token, b"lon,lat\n113.2,35.2\n", "../../etc/passwd.csv")
    assert r.status_code == 200
    disposition = r.headers["Content-Disposition"]
    assert ".." not in disposition and "/" not in disposition.split("filename=")[1]
    r = upload(client, token, "urban_core", shapefile_zip(tmp_path, zone([SQUARE])),
               "../../../tmp/evil.zip")
    assert r.status_code == 200
    assert "../" not in json.dumps(core(app).repo.history("urban_core", "layer")[-1])


# ------------------------------------------------------------------ formula injection
def _cells_xlsx(data: bytes) -> list:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row]


def _assert_neutralised(cells, formula: str) -> None:
    texts = [c for c in cells if isinstance(c, str) and formula in c]
    assert texts, f"{formula!r} missing from the export"
    assert all(not c.startswith(("=", "+", "-", "@")) for c in texts), texts


@pytest.mark.parametrize("formula", FORMULAS)
def test_flag_output_csv_and_xlsx_neutralise_formulas(ro_app, ro_planner, formula):
    client, token = ro_planner
    text = pd.DataFrame({"lon": [113.2], "lat": [35.2], "name": [formula]}).to_csv(index=False)
    r = flag(client, token, text.encode(), "f.csv")
    assert r.status_code == 200
    out = pd.read_csv(io.BytesIO(r.data), dtype=str)
    _assert_neutralised(list(out["name"]), formula)
    r = flag(client, token, text.encode(), "f.csv", format="xlsx")
    assert r.status_code == 200
    _assert_neutralised(_cells_xlsx(r.data), formula)


def _rename_first_enterprise(app, name: str) -> str:
    repo = core(app).repo
    site = repo.site(str(repo.sites("enterprise", columns=["id"])["id"].iloc[0]))
    repo.update_site(site["id"], {"name": name}, user="test",
                     expected_version=int(site["version"]))
    return site["id"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_relocation_and_ledger_exports_neutralise_formulas(app, planner, tmp_path, formula):
    client, token = planner
    _rename_first_enterprise(app, formula)
    r = client.get("/relocation.csv")
    assert r.status_code == 200
    rows = pd.read_csv(io.BytesIO(r.data), dtype=str, encoding="utf-8-sig")
    _assert_neutralised([v for col in rows for v in rows[col].dropna()], formula)
    r = client.get("/relocation.xlsx")
    _assert_neutralised(_cells_xlsx(r.data), formula)

    export_ledger(core(app), tmp_path / "ledger.xlsx")
    _assert_neutralised(_cells_xlsx((tmp_path / "ledger.xlsx").read_bytes()), formula)


def test_weekly_workbook_neutralises_user_text(tmp_path):
    frame = neutralise_frame(pd.DataFrame({"企业名称": list(FORMULAS), "n": [1, 2, 3, 4]}))
    assert all(v.startswith("'") for v in frame["企业名称"])
    assert list(frame["n"]) == [1, 2, 3, 4]


# ------------------------------------------------------------------ SQL-looking text
def test_sql_looking_text_is_stored_and_echoed_verbatim(app, planner, tmp_path):
    client, token = planner
    repo = core(app).repo
    sites_before = len(repo.sites())
    # API parameters: echoed back, nothing dropped.
    r = client.get("/api/check", query_string={"lon": "113.2", "lat": "35.2",
                                               "industry": SQL})
    # an industry the city does not know is checked as not given and echoed as typed
    assert r.status_code == 200 and r.json["input"]["industry_given"] == SQL
    assert r.json["input"]["industry"] is None
    for field in ("site_type", "crs", "lon"):
        q = {"lon": "113.2", "lat": "35.2", field: SQL}
        r = client.get("/api/check", query_string=q)
        assert r.status_code == 400 and r.json["message"]
    r = client.get("/api/relocation", query_string={"district": SQL})
    assert r.status_code in (200, 400)
    r = client.get("/check", query_string={"lon": "113.2", "lat": "35.2", "industry": SQL})
    assert r.status_code == 200
    # Forms: a layer feature named like an injection is stored as written.
    data = shapefile_zip(tmp_path, zone([SQUARE], names=[SQL]))
    r = upload(client, token, "urban_core", data, "sql.zip", crs="", encoding="")
    assert r.status_code == 200
    assert list(repo.layer("urban_core")["name"]) == [SQL]
    # A site renamed to it, then exported.
    site_id = _rename_first_enterprise(app, SQL)
    assert repo.site(site_id)["name"] == SQL
    # Flag upload text columns come back untouched.
    text = pd.DataFrame({"lon": [113.2], "lat": [35.2], "note": [SQL]}).to_csv(index=False)
    r = flag(client, token, text.encode(), "sql.csv")
    assert pd.read_csv(io.BytesIO(r.data), dtype=str)["note"].iat[0] == SQL
    # Login form: a failed login, no harm.
    anon = app.test_client()
    r = anon.post("/login", data={"username": SQL, "password": SQL})
    assert r.status_code in (400, 401, 403)
    assert len(repo.sites()) == sites_before
    assert repo.get_user("admin") is not None
