"""The rule checks through their three interfaces (service, CLI, HTTP) on the embedded data."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.domain.errors import ValidationFailed
from geoapp.services import checks
from geoapp.services.flagfile import FlagOptions, flag_file
from geoapp.spatial.crs import wgs84_to_bd09, wgs84_to_gcj02
from geoapp.web import create_app

from webutil import login, make_users, river_point


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    inst = tmp_path_factory.mktemp("instance")
    app = create_app({"INSTANCE_PATH": str(inst), "TESTING": True})
    make_users(app)
    return app


@pytest.fixture(scope="module")
def core(app):
    return app.extensions["geoapp"]


@pytest.fixture(scope="module")
def client(app):
    c = app.test_client()
    c.csrf = login(c, "inspector")
    return c


def test_first_start_stores_hits_for_every_flagged_site(core):
    hits = core.repo.site_hits()
    assert len(hits) > 100
    assert set(hits["rule_id"]) >= {"riverside_livestock", "urban_core_heavy_industry",
                                    "hotspot_grid"}
    assert "exclusion_zones" in core.repo.derived_layer_names()
    zones = core.repo.derived_layer("exclusion_zones")
    assert "riverside_livestock" in set(zones["rule_id"])


def test_farm_near_river_fails_and_far_passes_through_the_api(core, client):
    near = river_point(core, 150)
    far = river_point(core, 3000)
    r = client.get(f"/api/check?lon={near[0]}&lat={near[1]}&site_type=livestock_farm&industry=畜禽养殖")
    body = r.get_json()
    assert r.status_code == 200 and body["verdict"] == "fail"
    hit = next(h for h in body["hits"] if h["rule_id"] == "riverside_livestock")
    assert 140 <= hit["distance_m"] <= 160
    assert hit["feature_name"] and hit["basis"] and hit["action"]
    assert set(body) == {"input", "point", "verdict", "verdict_text", "hits",
                         "conditional_hits", "nearest", "covered"}
    nearest = {n["layer"]: n["distance_m"] for n in body["nearest"]}
    assert nearest["rivers"] == pytest.approx(150, abs=0.5)
    r = client.get(f"/api/check?lon={far[0]}&lat={far[1]}&site_type=livestock_farm&industry=畜禽养殖")
    body = r.get_json()
    assert {n["layer"]: n["distance_m"] for n in body["nearest"]}["rivers"] > 400
    assert all(h["rule_id"] != "riverside_livestock" for h in body["hits"])


@pytest.mark.parametrize("crs,convert", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_chinese_map_coordinates_give_the_same_verdict_as_their_wgs84_twin(core, client, crs,
                                                                          convert):
    lon, lat = river_point(core, 300)
    x, y = convert(lon, lat)
    a = client.get(f"/api/check?lon={lon}&lat={lat}&site_type=livestock_farm").get_json()
    b = client.get(f"/api/check?lon={x}&lat={y}&crs={crs}&site_type=livestock_farm").get_json()
    assert a["verdict"] == b["verdict"] == "fail"
    assert b["input"]["crs"] == crs
    da = {h["rule_id"]: h["distance_m"] for h in a["hits"]}
    db = {h["rule_id"]: h["distance_m"] for h in b["hits"]}
    assert da.keys() == db.keys()
    assert all(abs(da[k] - db[k]) < 1.0 for k in da)
    # the same point taken as WGS84 is ~600 m off: the verdict may change, the distance does
    c = client.get(f"/api/check?lon={x}&lat={y}&site_type=livestock_farm").get_json()
    dc = {h["rule_id"]: h["distance_m"] for h in c["hits"]}
    assert dc.get("riverside_livestock") != da["riverside_livestock"]


@pytest.mark.parametrize("query,needle", [
    ("lat=35.2", "请填写经度和纬度"),
    ("lon=35.22&lat=113.24", "填反"),
    ("lon=abc&lat=35", "abc"),
    ("lon=113.2&lat=35.2&crs=mars", "mars"),
    ("lon=113.2&lat=35.2&site_type=factory", "site_type"),
    ("lon=38500000&lat=3900000", "投影坐标"),
])
def test_bad_check_parameters_get_a_400_naming_the_problem(client, query, needle):
    r = client.get(f"/api/check?{query}")
    assert r.status_code == 400
    assert needle in r.get_json()["message"]


def test_stored_site_check_matches_the_stored_hits(core, client):
    hits = core.repo.site_hits()
    site_id = hits.loc[hits["rule_id"] == "riverside_livestock", "site_id"].iloc[0]
    body = client.get(f"/api/sites/{site_id}/check").get_json()
    assert body["verdict"] == "fail"
    stored = hits[hits["site_id"] == site_id]
    assert {h["rule_id"] for h in body["hits"]} == set(stored["rule_id"])
    assert client.get("/api/sites/NO-SUCH/check").status_code == 404


def test_cli_check_prints_one_json_object_and_exits_2_on_bad_input(app, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("GEOAPP_DATABASE", app.config["DATABASE"])
    runner = CliRunner()
    r = runner.invoke(main, ["check", "--lon", "113.24", "--lat", "35.22", "--site-type",
                             "enterprise", "--industry", "化工", "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["verdict"] == "fail"
    assert {"rule_id", "title", "feature_id", "feature_name", "distance_m", "severity", "basis",
            "action"} <= set(body["hits"][0])
    r = runner.invoke(main, ["check", "--lon", "200", "--lat", "35"])
    assert r.exit_code == 2
    assert "经度" in r.stderr


def _farm_frame(core) -> pd.DataFrame:
    farms = core.repo.sites("livestock_farm")
    return pd.DataFrame({"name": farms["name"], "lon": farms.geometry.x, "lat": farms.geometry.y,
                         "site_type": "livestock_farm", "industry": "畜禽养殖"})


def test_flag_csv_flags_the_same_farms_as_the_stored_hits(core, tmp_path):
    src = tmp_path / "farms.csv"
    _farm_frame(core).to_csv(src, index=False)
    summary = flag_file(core, src, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == summary["rows"] == len(core.repo.sites("livestock_farm"))
    assert list(out.columns[-11:]) == ["结论", "触发规则", "规则编号", "命中数", "最近距离_m",
                                       "待核实规则", "依据", "处理措施", "错误原因", "hits",
                                       "conditional_hits"]
    stored = core.repo.site_hits()
    stored_farms = stored[stored["site_id"].str.startswith("F")]
    assert int((out["结论"] == "不符合").sum()) == stored_farms["site_id"].nunique()
    assert summary["flagged"] == stored_farms["site_id"].nunique()
    first = out[out["结论"] == "不符合"].iloc[0]
    hits = json.loads(first["hits"])
    assert len(hits) == first["命中数"]
    assert min(h["distance_m"] for h in hits) == pytest.approx(first["最近距离_m"])


def test_flag_refuses_a_file_with_bad_rows_and_writes_nothing(core, tmp_path, monkeypatch):
    df = _farm_frame(core).head(5).astype({"lon": object, "lat": object})
    df.loc[1, "lat"] = ""
    df.loc[3, "lon"] = "200"
    src, dst = tmp_path / "farms.csv", tmp_path / "out.csv"
    df.to_csv(src, index=False)
    with pytest.raises(ValidationFailed) as exc:
        flag_file(core, src, dst)
    assert [d["row"] for d in exc.value.details] == [3, 5]
    assert not dst.exists()
    summary = flag_file(core, src, dst, FlagOptions(skip_bad=True))
    out = pd.read_csv(dst)
    assert len(out) == 5 and summary["bad_rows"] == 2
    assert list(out["结论"].iloc[[1, 3]]) == ["坐标错误", "坐标错误"]
    assert out["错误原因"].iloc[3]


def test_flag_geojson_in_geopackage_and_xlsx_out(core, tmp_path):
    df = _farm_frame(core).head(20)
    gdf = gpd.GeoDataFrame(df.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)
    gdf.to_file(tmp_path / "farms.geojson", driver="GeoJSON")
    flag_file(core, tmp_path / "farms.geojson", tmp_path / "out.gpkg")
    out = pyogrio.read_dataframe(tmp_path / "out.gpkg")
    assert len(out) == 20 and "结论" in out.columns and out.crs.to_epsg() == 4326
    flag_file(core, tmp_path / "out.gpkg", tmp_path / "out.xlsx")
    x = pd.read_excel(tmp_path / "out.xlsx")
    # flagging a flagged file: its own 结论 keeps its name, the new one is 结论_1
    assert len(x) == 20 and {"最近距离_m", "结论", "结论_1"} <= set(x.columns)
    assert (x["结论"] == x["结论_1"]).all()


def test_post_api_flag_answers_the_flagged_file(core, client):
    buf = io.BytesIO(_farm_frame(core).head(10).to_csv(index=False).encode())
    r = client.post("/api/flag", data={"file": (buf, "farms.csv")},
                    content_type="multipart/form-data", headers={"X-CSRFToken": client.csrf})
    assert r.status_code == 200, r.get_data(as_text=True)
    out = pd.read_csv(io.BytesIO(r.data))
    assert len(out) == 10 and "结论" in out.columns
    assert r.headers["X-Geoapp-Rows"] == "10"
    r = client.post("/api/flag", data={"file": (io.BytesIO(b"x"), "farms.txt")},
                    content_type="multipart/form-data", headers={"X-CSRFToken": client.csrf})
    assert r.status_code == 400


def test_moving_a_farm_next_to_a_river_refreshes_its_stored_hits(core):
    hits = core.repo.site_hits()
    farms = core.repo.sites("livestock_farm")
    clean = farms[~farms["id"].isin(hits["site_id"])].iloc[0]
    lon, lat = river_point(core, 100)
    site = core.repo.site(clean["id"])
    core.repo.update_site(clean["id"], {"lon": lon, "lat": lat}, user="test",
                          expected_version=site["version"])
    assert checks.hits_are_stale(core)
    checks.refresh_hits(core)
    mine = core.repo.site_hits(clean["id"])
    assert "riverside_livestock" in set(mine["rule_id"])
    assert not checks.hits_are_stale(core)
