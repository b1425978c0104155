"""12369 complaints and their suspected sources: the type mapping from the city file, ground
distances in the metric CRS, GCJ-02 input converted before matching, the maps' layers and
popups, complaints without coordinates counted, and the site page's 疑似关联投诉."""

from __future__ import annotations

from datetime import datetime

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from geoapp.domain.complaints import DEFAULT_SOURCES, SourceSpec, matches, parse_sources
from geoapp.domain.errors import ConfigError
from geoapp.maps.weekly import MARKER_LIMIT, add_complaints
from geoapp.services.complaints import ComplaintPoints

GEOD = Geod(ellps="WGS84")
WEEK = "2026-W47"


@pytest.fixture(scope="module")
def core(tmp_path_factory, jiaozuo_db):
    from geoapp.config import load_settings
    from geoapp.services import open_geoapp

    from webutil import copy_database

    inst = tmp_path_factory.mktemp("complaints-instance")
    copy_database(jiaozuo_db, inst)
    app = open_geoapp(load_settings(inst, environ={}))
    yield app
    app.repo.close()


def _site(core, site_id: str) -> dict:
    sites = core.repo.sites(columns=["name", "industry"])
    row = sites[sites["id"] == site_id].iloc[0]
    return {"id": site_id, "name": row["name"], "industry": row["industry"],
            "type": row["site_type"], "lon": row.geometry.x, "lat": row.geometry.y}


def _away(site: dict, metres: float, azimuth: float = 90.0) -> tuple[float, float]:
    """A point ``metres`` from the site on the ellipsoid (what a tape on the ground says)."""
    lon, lat, _ = GEOD.fwd(site["lon"], site["lat"], azimuth, metres)
    return lon, lat


def _complaints(core, rows: list[dict]):
    """Complaints through the import validation (the conversion every real one goes
    through): each row gives lon, lat, crs, category and id."""
    from geoapp.services.events import validate_complaints

    raw = pd.DataFrame([{"id": r["id"], "received_at": r.get("at", "2026-11-18T09:00:00"),
                         "category": r["category"], "lon": str(r["lon"]),
                         "lat": str(r["lat"]), "crs": r.get("crs", "wgs84"),
                         "district": "", "summary": r.get("summary", "测试投诉")}
                        for r in rows])
    return validate_complaints(core, raw, "test")


# ------------------------------------------------------------------ the mapping (domain)
def test_the_city_file_mapping_is_the_documented_default():
    import tomllib

    from geoapp.config import default_data_dir
    from geoapp.domain.city import City

    with open(default_data_dir() / "city.toml", "rb") as f:
        city = City.from_mapping(tomllib.load(f))
    assert city.complaint_sources == DEFAULT_SOURCES
    assert SourceSpec("livestock_farm") in city.complaint_sources["water"]
    assert city.complaint_sources["other"] == (SourceSpec("*"),)


def test_mapping_accepts_chinese_names_and_refuses_typos():
    got = parse_sources({"噪声": [{"site_type": "enterprise", "industries": ["铸造"]}]})
    assert got["noise"] == (SourceSpec("enterprise", ("铸造",)),)
    assert got["air"] == DEFAULT_SOURCES["air"]  # left out: default kept
    for bad in ({"smell": []}, {"大气": [{"site_type": "factory"}]},
                {"大气": [{"site_type": "enterprise", "industries": "铸造"}]},
                {"大气": "enterprise"}):
        with pytest.raises(ConfigError):
            parse_sources(bad)


def test_matching_is_decided_per_pair_vectorised():
    got = matches(DEFAULT_SOURCES,
                  ["air", "air", "water", "water", "noise", "other", "air"],
                  ["enterprise", "livestock_farm", "livestock_farm", "scattered_workshop",
                   "livestock_farm", "livestock_farm", "enterprise"],
                  ["钢铁", "畜禽养殖", "畜禽养殖", "小化工", "畜禽养殖", "畜禽养殖", "食品"])
    assert got.tolist() == [True, False, True, False, False, True, False]


# ------------------------------------------------------------------ suspected sources
def test_a_matching_site_450_m_away_is_linked_and_550_m_is_not(core):
    from geoapp.services.complaints import suspected_sources

    steel = _site(core, "E0002")
    assert steel["industry"] == "钢铁"
    near, far = _away(steel, 450), _away(steel, 550, azimuth=270)
    df = _complaints(core, [{"id": "T450", "category": "大气", "lon": near[0], "lat": near[1]},
                            {"id": "T550", "category": "大气", "lon": far[0], "lat": far[1]}])
    links = suspected_sources(core, df)
    mine = links[links["site_id"] == "E0002"]
    assert mine["complaint_id"].tolist() == ["T450"]
    assert mine["distance_m"].iloc[0] == pytest.approx(450, abs=1.0)  # on the ground
    assert mine["site_name"].iloc[0] == steel["name"]
    # the radius is the setting's: at 600 m the far one is linked too
    wider = suspected_sources(core, df, radius_m=600)
    assert sorted(wider[wider["site_id"] == "E0002"]["complaint_id"]) == ["T450", "T550"]


def test_a_site_of_a_type_that_cannot_cause_the_complaint_is_not_linked_even_close(core):
    from geoapp.services.complaints import suspected_sources

    workshop, farm = _site(core, "W0001"), _site(core, "F0001")
    assert (workshop["type"], farm["type"]) == ("scattered_workshop", "livestock_farm")
    w, f = _away(workshop, 80), _away(farm, 80)
    df = _complaints(core, [
        {"id": "WATER", "category": "水", "lon": w[0], "lat": w[1]},      # 小化工 workshop
        {"id": "NOISE", "category": "噪声", "lon": f[0], "lat": f[1]},    # a farm
        {"id": "AIR", "category": "大气", "lon": w[0], "lat": w[1]},      # the same workshop
        {"id": "SMELL", "category": "其他", "lon": f[0], "lat": f[1]},    # 其他: any site
    ])
    links = suspected_sources(core, df)
    pairs = set(zip(links["complaint_id"], links["site_id"], strict=True))
    assert ("WATER", "W0001") not in pairs and ("NOISE", "F0001") not in pairs
    assert ("AIR", "W0001") in pairs and ("SMELL", "F0001") in pairs


def test_a_gcj02_complaint_is_converted_before_matching(core):
    from geoapp.services.complaints import suspected_sources
    from geoapp.spatial.crs import wgs84_to_gcj02

    steel = _site(core, "E0002")
    lon, lat = _away(steel, 300, azimuth=0)
    glon, glat = wgs84_to_gcj02(lon, lat)  # what the WeChat map gave the caller
    df = _complaints(core, [{"id": "G", "category": "大气", "lon": glon, "lat": glat,
                             "crs": "gcj02"},
                            {"id": "RAW", "category": "大气", "lon": glon, "lat": glat,
                             "crs": "wgs84"}])
    links = suspected_sources(core, df)
    mine = links[links["site_id"] == "E0002"].set_index("complaint_id")["distance_m"]
    assert mine["G"] == pytest.approx(300, abs=2.0)
    # read as WGS84 the same numbers lie hundreds of metres off
    assert "RAW" not in mine or abs(mine["RAW"] - 300) > 100


def test_complaints_without_coordinates_are_counted_never_placed(core):
    from geoapp.services.complaints import map_points

    stored = core.repo.table("complaints")
    points = map_points(core, stored)
    assert points.total == len(stored)
    assert points.unlocated == int(stored["lon"].isna().sum()) == 77
    assert points.located == len(stored) - 77
    assert points.points.geometry.notna().all()


# ------------------------------------------------------------------ maps
def test_weekly_map_has_a_layer_per_category_a_legend_and_the_unlocated_count(core):
    from geoapp.services.weekly import weekly_map, weekly_report

    report = weekly_report(core, WEEK)
    cp = report.complaint_points
    assert cp.total == report.complaints_total == 35 and cp.unlocated == 4
    html = weekly_map(core, report, site_link="/sites/{id}").get_root().render()
    for label in ("大气", "噪声", "水", "固废", "其他"):
        assert f"12369投诉·{label} (" in html
    assert f"{cp.unlocated} 件无坐标，未上图" in html
    linked = [s for src in cp.points["sources"] for s in src]
    assert linked and all(s["name"] in html for s in linked)


def test_overview_draws_the_last_weeks_complaints(core):
    from geoapp.services.complaints import recent, window
    from geoapp.services.overview import overview_map

    stored = core.repo.table("complaints")
    # four weeks ending with the last full week...
    first, last = window(core, stored, now=datetime(2026, 12, 3, 9, 0))
    assert (str(first), str(last)) == ("2026-W45", "2026-W48")
    # ...or, long after the data, with the latest week that has complaints
    first, last = window(core, stored, now=datetime(2027, 3, 1, 9, 0))
    assert (str(first), str(last)) == ("2026-W44", "2026-W47")
    pts = recent(core, now=datetime(2026, 12, 3, 9, 0))
    assert pts.located > 0 and pts.total == pts.located + pts.unlocated
    html = overview_map(core, tiles="none", site_link="/sites/{id}").get_root().render()
    assert "12369投诉·大气 (" in html and "件无坐标，未上图" in html


def test_summaries_reach_the_map_as_data_not_markup(core):
    from geoapp.maps.base import base_map
    from geoapp.maps.weekly import add_complaints
    from geoapp.services.complaints import map_points

    steel = _site(core, "E0002")
    p = _away(steel, 100)
    df = _complaints(core, [{"id": "X", "category": "大气", "lon": p[0], "lat": p[1],
                             "summary": "</script><img src=x onerror=alert(1)>{{7*7}}"}])
    m = base_map((p[1], p[0]), 12, "none", "")
    add_complaints(m, map_points(core, df))
    html = m.get_root().render()
    assert "<img src=x" not in html and "</script><img" not in html
    assert "{{7*7}}" in html


# ------------------------------------------------------------------ site page
def test_site_page_lists_suspected_complaints_with_distance(tmp_path, instance_with_users):
    from geoapp.services import complaints as svc
    from geoapp.services.events import import_events
    from geoapp.spatial.crs import wgs84_to_gcj02
    from geoapp.web import create_app

    from webutil import login

    app = create_app({"INSTANCE_PATH": str(instance_with_users), "INTRANET": True,
                      "TILES": "none", "TESTING": True})
    core = app.extensions["geoapp"]
    steel = _site(core, "E0002")
    lon, lat = wgs84_to_gcj02(*_away(steel, 420, azimuth=180))
    path = tmp_path / "c.csv"
    path.write_text("id,received_at,category,lon,lat,crs,summary\n"
                    f"Z1,2026-11-25T08:30:00,大气,{lon:.7f},{lat:.7f},gcj02,炼钢厂夜里冒黄烟\n",
                    encoding="utf-8")
    import_events(core, "complaints", path, user="test")
    got = svc.site_complaints(core, "E0002")
    row = next(r for r in got["rows"] if r["id"] == "Z1")
    assert abs(row["distance_m"] - 420) <= 2 and row["label"] == "大气"
    c = app.test_client()
    login(c, "viewer")
    html = c.get("/sites/E0002").get_data(as_text=True)
    assert "疑似关联投诉" in html and "炼钢厂夜里冒黄烟" in html
    assert f'<td class="st-distance">{row["distance_m"]} 米</td>' in html


def test_many_complaints_are_one_canvas_layer_per_category_with_their_popup_text():
    n = MARKER_LIMIT + 500
    rng = np.random.default_rng(5)
    cats = ["air", "noise", "water", "solid_waste", "other"]
    points = gpd.GeoDataFrame({
        "id": [f"C{i:06d}" for i in range(n)], "received_at": "2026-11-20T08:00:00",
        "time": "2026-11-20 08:00", "category": [cats[i % 5] for i in range(n)],
        "label": "", "summary": ["<b>黑烟</b>"] * n,
        "sources": [[{"id": "E0002", "name": "昌盛特钢", "type": "企业", "industry": "钢铁",
                      "distance_m": 120}]] + [[]] * (n - 1)},
        geometry=gpd.points_from_xy(rng.uniform(113.0, 113.4, n), rng.uniform(35.1, 35.3, n)),
        crs=4326)
    m = folium.Map()
    entries = add_complaints(m, ComplaintPoints(points, n + 7, 7, 500), tiles="none")
    html = m.get_root().render()
    assert html.count("new window.GeoappPoints(") == 5  # one canvas layer per category
    assert "ComplaintMarkers" not in html and "L.divIcon" not in html
    assert "昌盛特钢（企业）120 米" in html and "<b>黑烟</b>" not in html  # text, escaped
    assert [e[2].split("(")[1] for e in entries] == [f"{n // 5})"] * 5
    assert "7 件无坐标，未上图" in html
