"""The one-map overview: every layer, the rule buffers, site popups with hits, Amap shift,
and the compact point layer that keeps 10,000 sites under a megabyte."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geoapp.maps.base import base_map, shift_for_tiles
from geoapp.maps.points import FastPoints, add_fast_points, hits_by_site


@pytest.fixture(scope="module")
def app(offline_app):
    return offline_app


@pytest.fixture(scope="module")
def client(viewer_client):
    return viewer_client


@pytest.fixture(scope="module")
def page(client) -> str:
    r = client.get("/")
    assert r.status_code == 200
    return r.get_data(as_text=True)


def _overlay_names(html: str) -> list[str]:
    block = re.search(r"overlays\s*:\s*\{(.*?)\},\s*\};", html, re.S)
    assert block, "no layer control in the page"
    return [json.loads(f'"{k}"') for k in re.findall(r'"((?:[^"\\]|\\.)*)"\s*:', block.group(1))]


def _fast_payloads(html: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(r"new window\.GeoappPoints\((\{.*?\})\);\n", html)]


def test_overview_layer_control_lists_every_layer(page):
    names = _overlay_names(page)
    for expected in ("区县界", "河流", "南水北调", "主城区", "饮用水水源保护区", "生态保护红线",
                     "化工园区", "产业集聚区", "热点网格", "工业企业", "畜禽养殖场", "散乱污"):
        assert any(expected in n for n in names), (expected, names)


def test_overview_has_one_buffer_layer_per_distance_rule(page):
    names = [n for n in _overlay_names(page) if n.startswith("缓冲区")]
    assert any("400米" in n and "畜禽" in n for n in names), names
    assert any("南水北调总干渠一级保护区" in n and "50米" in n for n in names), names
    assert any("南水北调总干渠二级保护区" in n and "1000米" in n for n in names), names
    assert len(names) == 6  # river, canal x2, Yellow River, ready-mix near core, relapse


def test_overview_sites_are_compact_arrays_not_a_feature_each(page):
    payloads = {p["title"].split(" ")[0]: p for p in _fast_payloads(page)}
    assert len(payloads["工业企业"]["x"]) == 100
    assert len(payloads["畜禽养殖场"]["x"]) == 200
    assert '"type":"Point"' not in page.replace(" ", "")


def test_site_popup_data_carries_its_rule_hits_and_a_link(app, page):
    core = app.extensions["geoapp"]
    stored = core.repo.site_hits("E0001")
    at_site = stored[stored["point"] != "new_site"]
    assert len(at_site) < len(stored)  # E0001 relocates: one hit is at its new site
    ent = next(p for p in _fast_payloads(page) if p["title"].startswith("工业企业"))
    hits = ent["hits"]["E0001"]
    assert len(hits) == len(at_site)
    rules = [ent["rules"][h[0]][0] for h in hits]
    assert "南水北调总干渠二级保护区" in rules
    canal = next(h for h in hits if ent["rules"][h[0]][0] == "南水北调总干渠二级保护区")
    assert canal[1] == pytest.approx(234.8, abs=0.1)
    assert ent["link"] == "/sites/{id}"


def test_unknown_tiles_parameter_is_a_400_naming_it(client):
    r = client.get("/?tiles=google")
    assert r.status_code == 400
    assert "tiles" in r.get_data(as_text=True)


def test_amap_tiles_shift_every_overlay_about_600_m_east(client, page):
    amap = client.get("/?tiles=amap").get_data(as_text=True)
    assert "autonavi.com" in amap
    plain = {p["title"]: p for p in _fast_payloads(page)}
    for p in _fast_payloads(amap):
        dx = (np.array(p["x"]) - np.array(plain[p["title"]]["x"])) / p["s"]
        east_m = dx * 111_320 * np.cos(np.radians(35.2))
        assert 300 < np.median(east_m) < 800, p["title"]
    # Polygons and rule buffers move too: compare the first coordinate of each GeoJSON layer.
    firsts = re.compile(r'"coordinates": ?\[+(\d+\.\d+), ?(\d+\.\d+)')
    a, b = firsts.findall(amap), firsts.findall(page)
    assert len(a) == len(b) > 10
    shifts = [(float(x1) - float(x0)) * 111_320 * np.cos(np.radians(35.2))
              for (x1, _), (x0, _) in zip(a, b, strict=True)]
    # (display simplification may keep a different first vertex of a shifted ring, rarely)
    within = [300 < s < 800 for s in shifts]
    assert sum(within) >= 0.9 * len(shifts), shifts


def test_shift_for_tiles_leaves_osm_untouched_and_moves_amap():
    gdf = gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.Point(113.24, 35.21)],
                           crs="EPSG:4326")
    assert shift_for_tiles(gdf, "osm") is gdf
    moved = shift_for_tiles(gdf, "amap").geometry.iloc[0]
    assert 0.004 < moved.x - 113.24 < 0.008


def _synthetic_sites(n: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    lon = rng.uniform(112.6, 113.7, n)
    lat = rng.uniform(34.8, 35.5, n)
    return gpd.GeoDataFrame(
        {"id": [f"E{i:06d}" for i in range(n)], "name": [f"企业{i}" for i in range(n)],
         "district": rng.choice(["解放区", "中站区", "马村区", "山阳区", "温县"], n),
         "industry": rng.choice(["铸造", "化工", "水泥", "家具"], n),
         "classification": rng.choice(["relocate", "upgrade", "close"], n)},
        geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def test_10000_sites_render_under_one_megabyte():
    m = base_map((35.2, 113.2), 10, "none")
    add_fast_points(m, _synthetic_sites(10_000), "企业", colour_by="classification",
                    categories={"relocate": ("搬迁升级", "#d62728"),
                                "upgrade": ("改造提升", "#1f77b4")},
                    fields=[("district", "辖区"), ("industry", "行业")], link="/sites/{id}")
    html = m.get_root().render()
    assert len(html.encode("utf-8")) < 1_000_000
    assert "L.circleMarker(" not in html  # one canvas layer, no Leaflet object per site
    assert html.count("new window.GeoappPoints(") == 1


def test_two_point_layers_link_the_layer_script_once_and_hold_no_copy_of_it():
    m = base_map((35.2, 113.2), 10, "none")
    sites = _synthetic_sites(20)
    add_fast_points(m, sites.iloc[:10], "企业")
    add_fast_points(m, sites.iloc[10:], "养殖场", show=False)
    html = m.get_root().render()
    assert html.count('<script src="geoapp-static:js/geoapp-points.js"></script>') == 1
    assert html.count('href="geoapp-static:css/geoapp-points.css"') == 1
    assert "L.Layer.extend" not in html and "function esc(" not in html
    assert html.count("new window.GeoappPoints(") == 2
    # The switched-off layer is built but not added to the map.
    names = re.findall(r"var (fast_points_\w+) = new window\.GeoappPoints\(", html)
    assert len(names) == 2
    assert f"{names[0]}.addTo(" in html and f"{names[1]}.addTo(" not in html


def test_fast_points_encode_categories_and_lookup_tables():
    gdf = _synthetic_sites(10)
    layer = FastPoints.from_frame(gdf, "t", colour_by="classification",
                                  categories={"relocate": ("搬迁升级", "#d62728")},
                                  default=("其他", "#999999"),
                                  fields=[("district", "辖区")])
    p = layer.payload
    assert p["cats"] == [["其他", "#999999"], ["搬迁升级", "#d62728"]]
    assert [c == 1 for c in p["c"]] == list(gdf["classification"] == "relocate")
    assert p["x"][0] == round(gdf.geometry.iloc[0].x * 1_000_000)
    col = p["cols"][0]
    assert [col["lut"][i] for i in col["v"]] == gdf["district"].tolist()


def test_hits_by_site_groups_nearest_first():
    table = pd.DataFrame({"site_id": ["A", "A", "B"], "rule_id": ["r1", "r2", "r1"],
                          "feature_id": ["f", "g", "f"], "feature_name": ["河", None, "河"],
                          "distance_m": [120.0, 0.0, 5.5], "severity": ["high"] * 3})
    out = hits_by_site(table)
    assert out["A"] == [("r2", 0.0, ""), ("r1", 120.0, "河")]
    assert out["B"] == [("r1", 5.5, "河")]


def test_hits_by_site_leaves_out_the_hits_at_a_relocations_new_site():
    table = pd.DataFrame({"site_id": ["A", "A"], "rule_id": ["r1", "grid"],
                          "feature_id": ["f", "g"], "feature_name": ["河", "网格"],
                          "distance_m": [120.0, 0.0], "severity": ["high"] * 2,
                          "point": ["site", "new_site"]})
    assert hits_by_site(table) == {"A": [("r1", 120.0, "河")]}


def test_overview_popups_count_the_same_hits_as_the_site_page(offline_app):
    table = offline_app.extensions["geoapp"].repo.table("site_hits")
    moved = table[table["point"] == "new_site"]["site_id"].unique()
    assert len(moved), "the demo data has relocations with hits at their new site"
    grouped = hits_by_site(table)
    for site_id in moved:
        at_site = table[(table["site_id"] == site_id) & (table["point"] != "new_site")]
        assert len(grouped.get(site_id, [])) == len(at_site)


def test_base_map_scale_is_metric_and_readout_is_lon_first_in_chinese():
    html = base_map((35.2, 113.2), 10, tiles="none").get_root().render()
    assert "L.control.scale({metric: true, imperial: false})" in html
    assert html.count("imperial") == 1  # only ours, set false
    assert "Unavailable" not in html and '"emptyString": "\\u65e0 \\u2014"' in html  # 无 —
    assert re.search(r'"lngFirst":\s*true', html)
