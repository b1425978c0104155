"""The inspectors' site check page, its print view and recorded inspections (test client)."""

from __future__ import annotations

import re

import geopandas as gpd
import pytest
import shapely

from geoapp.maps.check import distance_lines
from geoapp.spatial.crs import wgs84_to_gcj02

from webutil import login

# Livestock farm F0002 of the embedded data lies 69 m from the 群英河.
FARM = (113.19032, 35.299646)


@pytest.fixture(scope="module")
def client(make_module_app):
    c = make_module_app(INTRANET=True, TILES="none").test_client()
    login(c, "viewer")
    return c


def _hits(html: str) -> list[tuple[str, str]]:
    """(rule id, distance) of every hit shown on the check page."""
    items = re.findall(r'data-rule="([a-z_0-9]+)">.*?class="ck-dist">([^<]*)<', html, re.S)
    return [(rule, dist.strip()) for rule, dist in items]


def _verdict(html: str) -> str:
    m = re.search(r'data-verdict="(pass|fail)"', html)
    assert m, "no verdict on the page"
    return m.group(1)


def test_farm_69m_from_river_fails_with_distance_feature_and_basis(client):
    r = client.get(f"/check?lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert _verdict(html) == "fail"
    assert ("riverside_livestock", "69.0 m") in _hits(html)
    assert "群英河" in html
    assert "畜禽规模养殖污染防治条例" in html  # legal basis
    assert "不符合" in html


def test_gcj02_twin_gives_the_same_verdict_and_hits(client):
    glon, glat = wgs84_to_gcj02(*FARM)
    wgs = client.get(f"/check?lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm")
    gcj = client.get(f"/check?lon={glon:.7f}&lat={glat:.7f}&crs=gcj02&site_type=livestock_farm")
    assert gcj.status_code == 200
    a, b = wgs.get_data(as_text=True), gcj.get_data(as_text=True)
    assert _verdict(a) == _verdict(b) == "fail"
    assert _hits(a) == _hits(b)
    assert "GCJ-02" in b and f"{FARM[0]:.6f}" in b  # echo: the system given and the WGS84 result


def test_an_unconverted_gcj02_point_would_land_elsewhere(client):
    glon, glat = wgs84_to_gcj02(*FARM)
    html = client.get(f"/check?lon={glon:.7f}&lat={glat:.7f}&crs=wgs84"
                      f"&site_type=livestock_farm").get_data(as_text=True)
    assert ("riverside_livestock", "69.0 m") not in _hits(html)


def test_every_layer_shows_its_nearest_feature_with_a_chinese_title(client):
    html = client.get(f"/check?lon={FARM[0]}&lat={FARM[1]}").get_data(as_text=True)
    table = html[html.index('class="ck-table ck-nearest"'):]
    for title in ("河流", "南水北调中线总干渠", "化工园区", "主城区（建成区）", "热点网格"):
        assert f"<td>{title}</td>" in table, title


def test_the_map_is_embedded_with_buffers_point_and_dashed_distance_lines(client):
    html = client.get(f"/check?lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm"
                      ).get_data(as_text=True)
    assert "<iframe" not in html
    assert 'data-map-id="map_' in html
    assert '"dashArray": "6 6"' in html
    assert "触发规则的缓冲区" in html and "群英河" in html
    assert '"rule_id": "riverside_livestock"' in html  # the hit rule's buffer
    assert "https://cdn" not in html


def test_checking_a_stored_site_by_picker_value_uses_its_stored_attributes(client):
    html = client.get("/check?site=E0006 某企业").get_data(as_text=True)
    rules = {rule for rule, _ in _hits(html)}
    assert "chemical_outside_park" in rules
    assert 'href="/sites/E0006"' in html


def test_swapped_coordinates_rerender_the_form_with_a_chinese_message(client):
    r = client.get("/check?lon=35.3&lat=113.2")
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "经纬度可能填反了" in html
    assert 'id="ck-point-form"' in html and 'value="35.3"' in html


@pytest.mark.parametrize("query, words", [
    ("lon=abc&lat=35", "不是有效数字"),
    ("lon=113.2&lat=35.2&crs=xyz", "坐标系无效"),
    ("lon=113.2&lat=35.2&site_type=bogus", "场所类型无效"),
    ("lon=113.2", "请填写经度和纬度"),
])
def test_bad_input_is_a_400_naming_the_problem(client, query, words):
    r = client.get(f"/check?{query}")
    assert r.status_code == 400
    assert words in r.get_data(as_text=True)


def test_unknown_site_is_a_404_with_the_form(client):
    r = client.get("/check?site=NOPE")
    assert r.status_code == 404
    assert "NOPE" in r.get_data(as_text=True)


def test_dms_text_in_one_field_is_checked(client):
    r = client.get("/check?crs=dms&lon=东经113度11分25.2秒 北纬35度17分58.7秒")
    assert r.status_code == 200
    assert "113.190333" in r.get_data(as_text=True)


def test_print_sheet_is_one_a4_page_layout_with_signature_line(client):
    r = client.get(f"/check/print?lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "检查人员签字" in html and "不符合" in html and "群英河" in html
    static = client.get("/static/css/check.css")
    css = static.get_data(as_text=True)
    static.close()
    assert "@page { size: A4; margin: 12mm; }" in css


def test_print_without_a_point_is_a_400(client):
    assert client.get("/check/print").status_code == 400


def test_a_viewer_sees_no_record_button_and_cannot_post_one(client):
    html = client.get(f"/check?lon={FARM[0]}&lat={FARM[1]}").get_data(as_text=True)
    assert "记录检查" not in html
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    r = client.post("/check/inspections", data={"site": "F0002", "csrf_token": token})
    assert r.status_code == 403


def test_an_inspector_records_an_inspection_shown_on_the_site_page(make_app):
    c = make_app(INTRANET=True, TILES="none").test_client()
    token = login(c, "inspector")
    page = c.get("/check?site=F0002").get_data(as_text=True)
    assert "记录检查" in page
    r = c.post("/check/inspections", data={"site": "F0002", "notes": "粪污外排，已拍照",
                                          "csrf_token": token})
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/sites/F0002")
    site = c.get("/sites/F0002").get_data(as_text=True)
    assert "粪污外排，已拍照" in site and "inspector" in site


def test_recording_without_csrf_token_is_refused(make_app):
    c = make_app(INTRANET=True, TILES="none").test_client()
    login(c, "inspector")
    assert c.post("/check/inspections", data={"site": "F0002"}).status_code == 400


def test_distance_line_ends_on_the_nearest_point_of_a_line_in_metres():
    # A north-south "river" 0.01° (≈ 908 m at 35°N) east of the point.
    river = shapely.LineString([(113.21, 35.29), (113.21, 35.31)])
    feats = gpd.GeoDataFrame({"feature_id": ["R"], "name": ["河"], "title": ["河流"],
                              "hit": [True]}, geometry=[river], crs="EPSG:4326")
    lines = distance_lines(113.20, 35.30, feats, "EPSG:4547")
    (x0, y0), (x1, y1) = lines.geometry.iloc[0].coords
    assert (x0, y0) == pytest.approx((113.20, 35.30))
    assert x1 == pytest.approx(113.21, abs=1e-6) and y1 == pytest.approx(35.30, abs=1e-4)
    assert 900 < lines["length_m"].iloc[0] < 915


def test_a_point_inside_a_zone_has_a_zero_length_line():
    zone = shapely.box(113.19, 35.29, 113.21, 35.31)
    feats = gpd.GeoDataFrame({"feature_id": ["Z"], "name": ["区"], "title": ["区"],
                              "hit": [True]}, geometry=[zone], crs="EPSG:4326")
    assert distance_lines(113.20, 35.30, feats, "EPSG:4547")["length_m"].iloc[0] == 0


@pytest.mark.parametrize("query, zh, en", [
    ("lon=113.2&lat=", "请填写经度和纬度", "Enter both longitude and latitude"),
    ("lon=35.22&lat=113.24", "填反", "swapped"),
])
def test_a_refused_point_is_told_in_the_page_language_only(client, query, zh, en):
    chinese = client.get(f"/check?{query}").get_data(as_text=True)
    english = client.get(f"/check?{query}&lang=en").get_data(as_text=True)
    client.get("/check?lang=zh")  # the choice sticks: leave the shared client in Chinese
    assert zh in chinese and en in english
    message = re.search(r'role="alert"[^>]*>(.*?)<', english, re.S)
    assert message, "no refusal shown"
    assert not re.search(r"[\u4e00-\u9fff（）]", message.group(1)), message.group(1)
