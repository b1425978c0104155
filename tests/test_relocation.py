"""The relocation map: filters, programme summary, table, downloads, through the test client."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from shapely.geometry import Point

from geoapp.domain.errors import ConfigError
from geoapp.domain.vocab import Classification, Stage
from geoapp.maps.relocation import relocation_map
from geoapp.services.relocation import Programme, Target, load_programme, summarize


@pytest.fixture(scope="module")
def app(offline_app):
    return offline_app


@pytest.fixture(scope="module")
def client(viewer_client):
    return viewer_client


def _enterprises(app, **filters) -> pd.DataFrame:
    return app.extensions["geoapp"].repo.sites("enterprise", **filters)


def _table_ids(html: str) -> list[str]:
    body = html.split('id="rl-table"', 1)[1]
    return re.findall(r'<tr data-id="([^"]+)"', body)


def _map_layers(html: str) -> dict[str, dict]:
    """The map's point layers' data by the first word of their names (企业现址, 搬迁新址,
    搬迁路线)."""
    payloads = [json.loads(m) for m in
                re.findall(r"new window\.GeoappPoints\((\{.*?\})\);\n", html)]
    return {p["title"].split(" ")[0]: p for p in payloads}


def _map_site_ids(html: str) -> list[str]:
    """Ids of the current sites drawn on the map."""
    return _map_layers(html)["企业现址"]["id"]


# -- programme file and summary ------------------------------------------------------------
def test_programme_file_gives_targets_per_year(tmp_path):
    p = tmp_path / "programme.toml"
    p.write_text('[programme]\nname = "百企退城"\n[targets.2026]\nstarted = 30\ncompleted = 11\n'
                 '[targets.2025]\nstarted = 10\ncompleted = 2\n', encoding="utf-8")
    prog = load_programme(p)
    assert prog.targets == {2025: Target(10, 2), 2026: Target(30, 11)}
    assert prog.default_year(dt.date(2026, 5, 1)) == 2026
    assert prog.default_year(dt.date(2031, 1, 1)) == 2026  # latest defined


def test_missing_programme_file_means_no_targets(tmp_path):
    prog = load_programme(tmp_path / "absent.toml")
    assert prog.targets == {}
    assert prog.default_year() is None


def test_programme_target_that_is_not_a_number_is_a_config_error(tmp_path):
    p = tmp_path / "programme.toml"
    p.write_text("[targets.2026]\nstarted = \"many\"\ncompleted = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="targets.2026"):
        load_programme(p)


def _ledger(rows: list[tuple[str, str, float | None]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        [{"id": f"E{i}", "classification": c, "stage": s, "vacated_mu": mu, "listed_mu": None,
          "sale_revenue_wan": 100.0, "new_lon": None, "new_lat": None}
         for i, (c, s, mu) in enumerate(rows)],
        geometry=[Point(113.2, 35.2)] * len(rows), crs="EPSG:4326")


def test_summary_counts_started_and_completed_against_the_years_target():
    sites = _ledger([("relocate", "not_started", 10.0), ("relocate", "started", 20.0),
                     ("upgrade", "completed", None), ("close", "accepted", 15.0)])
    prog = Programme(targets={2026: Target(started=7, completed=3)})
    s = summarize(sites, prog, 2026)
    assert (s["started"], s["completed"]) == (3, 2)
    assert s["started_pct"] == 42.9  # 3 / 7, one decimal
    assert s["completed_pct"] == 66.7
    assert s["vacated_mu"] == 45.0 and s["vacated_ha"] == 3.0  # 15 亩 = 1 公顷
    assert s["revenue_wan"] == 400.0
    counts = {c["value"]: c["count"] for c in s["by_classification"]}
    assert counts == {"relocate": 2, "upgrade": 1, "close": 1, "convert": 0, "bankrupt": 0}
    assert [x["count"] for x in s["by_stage"]] == [1, 1, 1, 1]


def test_summary_without_a_target_gives_no_percentage():
    s = summarize(_ledger([("relocate", "started", 1.0)]), Programme(), None)
    assert s["started"] == 1 and s["started_pct"] is None and s["started_target"] is None


# -- page ----------------------------------------------------------------------------------
def test_page_needs_a_login(app):
    r = app.test_client().get("/relocation")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_page_shows_every_enterprise_in_table_and_map(client, app):
    html = client.get("/relocation").get_data(as_text=True)
    everyone = set(_enterprises(app)["id"])
    assert "<iframe" not in html
    assert set(_table_ids(html)) == everyone
    assert set(_map_site_ids(html)) == everyone
    assert "/static/js/relocation.js" in html


def test_classification_filter_narrows_table_map_and_summary(client, app):
    html = client.get("/relocation?classification=relocate").get_data(as_text=True)
    expected = set(_enterprises(app, classification="relocate")["id"])
    assert len(expected) == 34
    assert set(_table_ids(html)) == expected
    assert set(_map_site_ids(html)) == expected
    assert 'id="rl-total">34<' in html
    # relocations draw their new site and the line from the old one
    layers = _map_layers(html)
    assert len(layers["搬迁新址"]["id"]) == 34 and len(layers["搬迁路线"]["id"]) == 34
    assert layers["搬迁路线"]["id"] == layers["搬迁新址"]["id"]


def test_chinese_label_and_machine_name_filter_the_same(client):
    a = client.get("/api/relocation?classification=搬迁升级&stage=已完成").get_json()
    b = client.get("/api/relocation?classification=relocate&stage=completed").get_json()
    assert a["summary"] == b["summary"]
    assert {s["id"] for s in a["sites"]} == {s["id"] for s in b["sites"]}
    assert all(s["stage"] == "completed" for s in a["sites"])


def test_repeated_district_values_are_combined(client, app):
    body = client.get("/api/relocation?district=解放区&district=山阳区").get_json()
    expected = set(_enterprises(app, district=["解放区", "山阳区"])["id"])
    assert {s["id"] for s in body["sites"]} == expected
    assert body["filters"] == {"district": ["解放区", "山阳区"]}


def test_filters_are_kept_in_the_form_and_download_links(client):
    html = client.get("/relocation?district=解放区&stage=started").get_data(as_text=True)
    assert re.search(r'name="district" value="解放区" checked', html)
    assert re.search(r'name="stage" value="started" checked', html)
    assert "/relocation.csv?district=%E8%A7%A3%E6%94%BE%E5%8C%BA&amp;stage=started" in html


@pytest.mark.parametrize("query, named", [
    ("classification=moving", "moving"),
    ("stage=finished", "finished"),
    ("district=朝阳区", "朝阳区"),
    ("industry=航天", "航天"),
    ("year=1999", "1999"),
    ("year=soon", "soon"),
])
def test_unknown_filter_value_is_a_400_naming_it(client, query, named):
    page = client.get("/relocation?" + query)
    assert page.status_code == 400
    assert named in page.get_data(as_text=True)
    api = client.get("/api/relocation?" + query)
    assert api.status_code == 400
    assert named in api.get_json()["message"]


def test_summary_uses_the_chosen_years_target(client):
    s = client.get("/api/relocation?year=2018").get_json()["summary"]
    assert s["year"] == 2018 and s["started_target"] == 61
    assert s["started_pct"] == round(100 * s["started"] / 61, 1)
    default = client.get("/api/relocation").get_json()["summary"]
    assert default["year"] == 2020  # the latest defined year when this year has none


def test_popup_data_carries_the_sites_rule_hits(client, app):
    core = app.extensions["geoapp"]
    hits = core.repo.site_hits("E0001")
    assert not hits.empty
    body = client.get("/api/relocation").get_json()
    e1 = next(s for s in body["sites"] if s["id"] == "E0001")
    assert {h["rule_id"] for h in e1["hits"]} == set(hits["rule_id"])
    html = client.get("/relocation?district=中站区").get_data(as_text=True)
    name = hits.iloc[0]["feature_name"]
    assert name in html or name.encode("unicode_escape").decode() in html


def test_english_switch_names_classifications_in_english(client):
    html = client.get("/relocation?lang=en").get_data(as_text=True)
    client.get("/relocation?lang=zh")
    assert "Relocate and upgrade" in html


# -- downloads -----------------------------------------------------------------------------
def test_csv_download_holds_exactly_the_filtered_rows_with_chinese_headers(client, app):
    r = client.get("/relocation.csv?district=解放区&classification=relocate")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    expected = set(_enterprises(app, district="解放区", classification="relocate")["id"])
    assert {row["编号"] for row in rows} == expected
    assert {row["整治分类"] for row in rows} == {"搬迁升级"}
    assert list(rows[0])[:3] == ["序号", "辖区", "企业名称"]
    assert rows[0]["有无在线监测"] in ("有", "无")


def test_xlsx_download_holds_exactly_the_filtered_rows(client, app):
    r = client.get("/relocation.xlsx?stage=not_started")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.data)).active
    values = list(ws.values)
    header = list(values[0])
    ids = {row[header.index("编号")] for row in values[1:]}
    assert ids == set(_enterprises(app, stage="not_started")["id"])
    assert "进度阶段" in header and {row[header.index("进度阶段")] for row in values[1:]} == {"未启动"}


def test_bad_filter_on_a_download_is_a_400_not_a_file(client):
    r = client.get("/relocation.csv?classification=nope")
    assert r.status_code == 400
    assert "attachment" not in r.headers.get("Content-Disposition", "")


# -- the map -------------------------------------------------------------------------------
def _popup_values(layer: dict, site_id: str) -> dict[str, str]:
    i = layer["id"].index(site_id)
    return {c["k"]: c["lut"][c["v"][i]] if "lut" in c else c["v"][i] for c in layer["cols"]}


def test_map_popups_carry_classification_stage_and_vacated_land(client, app):
    html = client.get("/relocation?district=中站区").get_data(as_text=True)
    sites = _map_layers(html)["企业现址"]
    assert [c["k"] for c in sites["cols"]] == ["辖区", "行业", "整治分类", "进展", "腾退土地（亩）",
                                             "督办状态", "逾期天数"]
    ent = _enterprises(app, district="中站区").set_index("id")
    for site_id in sites["id"]:
        row, shown = ent.loc[site_id], _popup_values(sites, site_id)
        assert shown["整治分类"] == Classification(row["classification"]).zh
        assert shown["进展"] == Stage(row["stage"]).zh
        mu = row["vacated_mu"]
        assert shown["腾退土地（亩）"] == ("" if pd.isna(mu) else f"{round(mu, 1):g}")
    assert sites["link"] == "/sites/{id}" and sites["labels"]["link"] == "查看详情"
    assert sites["labels"]["id"] == "" and sites["tip"] == 1


def test_english_map_speaks_english_through_the_catalogue(client):
    try:
        html = client.get("/relocation?lang=en").get_data(as_text=True)
    finally:
        client.get("/relocation?lang=zh")
    layers = _map_layers(html)
    assert set(layers) == {"Current", "New", "Relocation", "Overdue"}  # Current sites (100), …
    sites = layers["Current"]
    assert [c["k"] for c in sites["cols"]][:4] == ["District", "Industry", "Classification",
                                                  "Progress"]
    assert "Relocate and upgrade" in {_popup_values(sites, i)["Classification"]
                                      for i in sites["id"]}
    assert sites["labels"]["hits"] == "Rule hits" and sites["labels"]["link"] == "Details"


def test_page_links_the_point_layer_script_from_the_app_not_inline(client):
    html = client.get("/relocation").get_data(as_text=True)
    assert re.search(r'<script nonce="[^"]+" src="/static/js/geoapp-points.js"></script>', html)
    assert 'href="/static/css/geoapp-points.css"' in html
    assert "L.Layer.extend" not in html and "geoapp-static:" not in html
    assert "L.geoJson(" not in html and "L.circleMarker(" not in html


def test_10000_enterprises_make_a_compact_map():
    n = 10_000
    rng = np.random.default_rng(3)
    moving = rng.random(n) < 1 / 3
    frame = pd.DataFrame({
        "id": [f"E{i:05d}" for i in range(n)], "name": [f"企业{i:05d}" for i in range(n)],
        "district": rng.choice(["解放区", "中站区", "马村区"], n),
        "industry": rng.choice(["铸造", "化工", "水泥"], n),
        "classification": np.where(moving, "relocate", rng.choice(["upgrade", "close"], n)),
        "stage": rng.choice(["not_started", "started", "completed", "accepted"], n),
        "lon": rng.uniform(112.6, 113.7, n), "lat": rng.uniform(34.8, 35.5, n),
        "new_lon": np.where(moving, rng.uniform(112.6, 113.7, n), np.nan),
        "new_lat": np.where(moving, rng.uniform(34.8, 35.5, n), np.nan),
        "new_site_name": None, "vacated_mu": np.round(rng.uniform(5, 200, n), 1)})
    hit = {"rule_id": "r1", "title": "化工企业未入园", "feature": "园区", "distance_m": 120.0,
           "severity": "high"}
    ids = frame["id"].tolist()
    html = relocation_map(frame, {i: [hit] for i in ids[::5]},
                          new_site_hits={i: [hit] for i in frame["id"][moving][::3]},
                          center=(35.15, 113.15), zoom=10, city_bounds=None,
                          tiles="none").get_root().render()
    layers = _map_layers(html)
    assert len(layers["企业现址"]["x"]) == n
    assert len(layers["搬迁新址"]["x"]) == len(layers["搬迁路线"]["x2"]) == int(moving.sum())
    assert len(layers["搬迁新址"]["hits"]) == len(frame["id"][moving][::3])
    assert len(html.encode("utf-8")) < 1_500_000  # 4.5 MB with one GeoJSON feature each


def test_amap_basemap_shifts_sites_new_sites_and_lines_to_gcj02():
    frame = pd.DataFrame({
        "id": ["E1", "E2"], "name": ["甲厂", "乙厂"], "district": ["解放区", "温县"],
        "industry": ["铸造", "化工"], "classification": ["relocate", "upgrade"],
        "stage": ["started", "not_started"], "lon": [113.24, 113.08], "lat": [35.21, 34.94],
        "new_lon": [113.30, None], "new_lat": [35.05, None], "new_site_name": ["甲厂新址", None]})

    def layers(tiles: str) -> dict[str, dict]:
        m = relocation_map(frame, {}, center=(35.1, 113.2), zoom=10, city_bounds=None,
                           tiles=tiles)
        return _map_layers(m.get_root().render())

    plain, amap = layers("none"), layers("amap")
    for name, keys in (("企业现址", ("x",)), ("搬迁新址", ("x",)), ("搬迁路线", ("x", "x2"))):
        for key in keys:
            dx = (np.array(amap[name][key]) - np.array(plain[name][key])) / 1e6
            east_m = dx * 111_320 * np.cos(np.radians(35.1))
            assert ((east_m > 300) & (east_m < 800)).all(), (name, key, east_m)
    assert amap["搬迁路线"]["x"] == amap["企业现址"]["x"][:1]  # lines start at the site
    assert amap["搬迁路线"]["x2"] == amap["搬迁新址"]["x"]  # and end at the new site
