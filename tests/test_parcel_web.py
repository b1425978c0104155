"""The parcel check on the web: POST /api/parcels/check (a file or a GeoJSON body) and the
/parcel page (upload, draw, paste; answer, downloads, print), with the test client."""

from __future__ import annotations

import html as htmllib
import io
import json
import re
import zipfile
from pathlib import Path

import geopandas as gpd
import jsonschema
import numpy as np
import pytest
import shapely
from docx import Document
from itsdangerous import TimestampSigner
from openpyxl import load_workbook
from pyproj import Geod, Transformer

from geoapp.domain.errors import InvalidInput
from geoapp.maps.parcel import MAP_TOLERANCE_M, MAP_VERTICES, map_copy
from geoapp.services import parcel_page
from geoapp.spatial.crs import wgs84_to_gcj02
from geoapp.web.openapi import PARCEL_REPORT, build_document

from webutil import csrf_token, login

SURVEY = Path(__file__).parent / "fixtures" / "survey"
GEOD = Geod(ellps="GRS80")
VERDICT_WORDS = {"pass": "符合", "fail": "不符合", "needs_info": "待核实",
                 "out_of_area": "超出本市数据范围"}


@pytest.fixture(scope="module")
def client(offline_app):
    c = offline_app.test_client()
    c.csrf = login(c, "viewer")
    return c


def _square(x0: float, y0: float, side: float, crs: str = "EPSG:4547") -> shapely.Polygon:
    """A square of ``side`` metres in ``crs`` with its south-west corner at (x0, y0), as a
    lon/lat polygon."""
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    corners = [(x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side), (x0, y0)]
    return shapely.Polygon([tr.transform(x, y) for x, y in corners])


def _ground_m2(poly: shapely.Polygon) -> float:
    return abs(GEOD.geometry_area_perimeter(shapely.geometry.polygon.orient(poly))[0])


#: A 200 m square in the middle of Jiaozuo (zone 38 without prefix), and one in Beijing.
SQUARE = _square(427046.805, 3896974.574, 200.0)
FAR_AWAY = shapely.box(116.39, 39.90, 116.392, 39.902)


def _feature(poly: shapely.Polygon, pid: str = "A1", name: str = "测试地块") -> dict:
    return {"type": "Feature", "properties": {"id": pid, "name": name},
            "geometry": shapely.geometry.mapping(poly)}


def _api_file(client, data: bytes, filename: str, token: str | None = None, **fields):
    return client.post("/api/parcels/check",
                       data={"file": (io.BytesIO(data), filename), **fields},
                       content_type="multipart/form-data",
                       headers={"X-CSRFToken": client.csrf if token is None else token})


def _api_geojson(client, obj, query: str = "", content_type: str = "application/geo+json"):
    return client.post("/api/parcels/check" + query, data=json.dumps(obj),
                       content_type=content_type, headers={"X-CSRFToken": client.csrf})


def _page_post(client, **fields):
    data = {"csrf_token": client.csrf, **fields}
    return client.post("/parcel", data=data, content_type="multipart/form-data")


def _carried_form(html: str) -> dict[str, str]:
    """The hidden fields of the answer page's download/print form."""
    form = re.search(r'<form class="pc-carry".*?</form>', html, re.S)
    assert form, "no download form on the answer page"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0))
    return {k: htmllib.unescape(v) for k, v in fields}


def _verdicts(html: str) -> list[str]:
    return re.findall(r'<details class="pc-parcel"[^>]*data-verdict="(\w+)"', html)


# --------------------------------------------------------------------------- the API


def test_api_reads_a_survey_file_upload_with_its_ids_areas_units_and_source(client):
    data = (SURVEY / "two_parcels_hole.txt").read_bytes()
    r = _api_file(client, data, "焦作 地块坐标.txt", industry="化工")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    body = r.get_json()
    ids = [p["id"] for p in body["parcels"]]
    assert ids == ["JZ-2024-002", "JZ-2024-003"]
    for p in body["parcels"]:
        # the declared area (公顷) and the measured ground area agree to 0.1 %
        assert p["area_m2"] == pytest.approx(p["declared_area_m2"], rel=1e-3)
        assert p["verdict"] in VERDICT_WORDS
        assert p["units"], "every Jiaozuo parcel lies in some control unit"
        assert set(p["units"][0]["requirements"]) == {"spatial_layout", "emission_control",
                                                      "risk_prevention", "resource_efficiency"}
    assert body["source"]["filename"] == "焦作 地块坐标.txt"
    assert body["source"]["format"] == "survey"
    assert "4547" in body["source"]["crs"]
    assert body["input"]["industry"] == "化工"
    assert body["summary"]["parcels"] == 2
    jsonschema.validate(body, PARCEL_REPORT)


def test_api_geojson_body_square_has_its_ground_area_and_options_from_the_query(client):
    r = _api_geojson(client, _feature(SQUARE), "?industry=化工&site_type=enterprise")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    body = r.get_json()
    (p,) = body["parcels"]
    assert p["id"] == "A1" and p["name"] == "测试地块"
    assert p["area_m2"] == pytest.approx(_ground_m2(SQUARE), abs=0.1)
    assert p["area_m2"] == pytest.approx(40000.0, rel=1e-3)  # a 200 m square on the grid
    assert body["input"]["site_type"] == "enterprise" and body["input"]["industry"] == "化工"
    jsonschema.validate(body, PARCEL_REPORT)
    # the same body as application/json, and the same polygon uploaded as a .geojson file
    again = _api_geojson(client, _feature(SQUARE), "?industry=化工&site_type=enterprise",
                         content_type="application/json").get_json()
    as_file = _api_file(client, json.dumps(_feature(SQUARE)).encode(), "square.geojson",
                        industry="化工", site_type="enterprise").get_json()
    for other in (again, as_file):
        q = other["parcels"][0]
        assert (q["verdict"], q["area_m2"], q["hits"]) == (p["verdict"], p["area_m2"], p["hits"])


def test_api_gcj02_body_gives_the_answer_of_its_wgs84_twin(client):
    def shifted(xy):
        lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        return shapely.get_coordinates(shapely.points(lon, lat))

    gcj = shapely.transform(SQUARE, shifted)
    a = _api_geojson(client, _feature(SQUARE)).get_json()["parcels"][0]
    b = _api_geojson(client, _feature(gcj), "?crs=gcj02").get_json()["parcels"][0]
    assert b["verdict"] == a["verdict"]
    assert b["area_m2"] == pytest.approx(a["area_m2"], rel=1e-3)
    assert [h["rule_id"] for h in b["hits"]] == [h["rule_id"] for h in a["hits"]]


def test_api_a_parcel_outside_the_city_is_out_of_area(client):
    body = _api_geojson(client, _feature(FAR_AWAY, "FAR")).get_json()
    assert body["parcels"][0]["verdict"] == "out_of_area"


@pytest.mark.parametrize("body, content_type, words", [
    ("{", "application/json", "JSON"),
    ("", "application/json", "GeoJSON"),
    ('{"type": "Nonsense"}', "application/geo+json", "GeoJSON"),
    ("", "text/plain", "file"),
])
def test_api_refuses_what_is_not_a_parcel_input_with_400(client, body, content_type, words):
    r = client.post("/api/parcels/check", data=body, content_type=content_type,
                    headers={"X-CSRFToken": client.csrf})
    assert r.status_code == 400
    assert r.is_json and words in r.get_json()["message"]


@pytest.mark.parametrize("body, got", [
    ("[]", "列表"), ("[1, 2]", "列表"), ('[{"type": "Feature"}]', "列表"),
    ('"113.2,35.2"', "字符串"), ("5", "数字"), ("true", "true"),
    ('{"a": 1}', "没有“type”的对象"), ('{"type": "Nonsense"}', "“type”为“Nonsense”的对象"),
])
def test_api_json_that_is_not_geojson_is_named_not_parsed(client, body, got):
    """A list, a string, a number or an object of another type is valid JSON but no GeoJSON:
    the message names what is expected and what came, never a parser's words."""
    r = client.post("/api/parcels/check", data=body, content_type="application/json",
                    headers={"X-CSRFToken": client.csrf})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    message = r.get_json()["message"]
    assert message.startswith("请求体不是 GeoJSON：应为 Geometry、Feature 或 FeatureCollection")
    assert got in message and "Expecting" not in message and "char 0" not in message
    en = client.post("/api/parcels/check?lang=en", data=body, content_type="application/json",
                     headers={"X-CSRFToken": client.csrf, "Accept-Language": "en"})
    client.get("/parcel?lang=zh")
    assert "Geometry, Feature or FeatureCollection" in en.get_json()["message"]


def test_a_drawing_that_is_not_geojson_is_named_beside_the_form(client):
    r = _page_post(client, mode="draw", geojson="[[113.2, 35.2], [113.21, 35.2]]")
    assert r.status_code == 400
    err = re.search(r'<div class="ga-alert ck-error ga-form-error".*?</div>', r.get_data(
        as_text=True), re.S).group(0)
    assert "所画地块不是 GeoJSON" in err and "列表" in err and "Expecting" not in err


def test_api_bad_geometry_is_a_400_naming_the_parcel_and_the_point(client):
    bowtie = shapely.Polygon([(113.20, 35.20), (113.21, 35.21), (113.21, 35.20),
                              (113.20, 35.21)])
    r = _api_geojson(client, {"type": "FeatureCollection",
                              "features": [_feature(SQUARE, "OK1"), _feature(bowtie, "B7")]})
    assert r.status_code == 400
    body = r.get_json()
    assert body["error"] == "validation_failed"
    (problem,) = body["details"]
    assert problem["id"] == "B7" and problem["feature"] == 2
    assert "B7" in problem["message"] and "113.205" in problem["message"]


def test_api_survey_file_with_x_and_y_swapped_names_the_parcel_and_point(client):
    text = (SURVEY / "one_parcel.txt").read_text(encoding="utf-8")
    lines = []
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) == 4 and parts[0].startswith("J"):
            parts[2], parts[3] = parts[3], parts[2]
        lines.append(",".join(parts))
    r = _api_file(client, "\n".join(lines).encode("utf-8"), "swapped.txt")
    assert r.status_code == 400
    problems = r.get_json()["details"]
    assert any(p.get("id") == "JZ-2024-001" and "J1" in p["message"] for p in problems), problems


def test_api_empty_and_unknown_files_are_refused(client):
    assert _api_file(client, b"", "empty.txt").status_code == 400
    r = _api_file(client, b"\x00\x01\x02binary", "x.bin")
    assert r.status_code == 400 and r.is_json


def test_api_needs_a_login_and_the_csrf_token(offline_app, client):
    anon = offline_app.test_client()
    token = csrf_token(anon.get("/login").get_data(as_text=True))
    r = anon.post("/api/parcels/check", data=json.dumps(_feature(SQUARE)),
                  content_type="application/json", headers={"X-CSRFToken": token})
    assert r.status_code == 401 and r.is_json
    r = client.post("/api/parcels/check", data=json.dumps(_feature(SQUARE)),
                    content_type="application/json")
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)


def test_a_viewer_may_check_parcels_as_on_the_check_page(offline_app):
    """The least role is the check page's: any account (viewer) may use both."""
    for role in ("viewer", "inspector", "planner"):
        c = offline_app.test_client()
        token = login(c, role)
        assert c.get("/check").status_code == 200
        assert c.get("/parcel").status_code == 200
        r = c.post("/api/parcels/check", data=json.dumps(_feature(SQUARE)),
                   content_type="application/json", headers={"X-CSRFToken": token})
        assert r.status_code == 200, role


def test_the_page_needs_a_login(offline_app):
    anon = offline_app.test_client()
    r = anon.get("/parcel")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert anon.post("/parcel", data={}).status_code in (302, 400)


BOUNDARY = "geoapp-test-boundary"


def _multipart(fields: dict[str, str], file: tuple[bytes, str] | None = None) -> bytes:
    """A multipart body built in memory (the test client would spool a big one to a temp
    file that nobody closes when the server refuses to read it)."""
    out = b""
    for k, v in fields.items():
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                f"{v}\r\n").encode()
    if file is not None:
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{file[1]}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + file[0] + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def test_uploads_larger_than_max_upload_mb_are_413(make_app):
    app = make_app(INTRANET=True, TILES="none", MAX_UPLOAD_MB=1)
    c = app.test_client()
    token = login(c, "viewer")
    multipart = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    big = b"113.2,35.2\n" * 200_000  # 2.2 MB
    r = c.post("/api/parcels/check", data=_multipart({}, (big, "big.txt")),
               headers={"X-CSRFToken": token, **multipart})
    assert r.status_code == 413 and r.is_json and "1 MB" in r.get_json()["message"]
    r = c.post("/api/parcels/check", data=big, content_type="application/json",
               headers={"X-CSRFToken": token})
    assert r.status_code == 413
    r = c.post("/parcel", data=_multipart({"csrf_token": token, "mode": "paste",
                                           "text": big.decode()}), headers=multipart)
    assert r.status_code == 413 and "MAX_UPLOAD_MB" in r.get_data(as_text=True)
    # below the limit, a form field larger than Flask's 500 kB per field is read
    text = "\n".join(f"{x:.8f},{y:.8f}" for x, y in list(SQUARE.exterior.coords)[:-1])
    text += "\n" + " " * 600_000
    r = c.post("/parcel", data=_multipart({"csrf_token": token, "mode": "paste",
                                           "text": text}), headers=multipart)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]


def test_the_openapi_document_describes_the_parcel_check(offline_app):
    op = build_document(offline_app)["paths"]["/api/parcels/check"]["post"]
    assert set(op["requestBody"]["content"]) == {"multipart/form-data", "application/json",
                                                 "application/geo+json"}
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["parcels", "input", "source", "warnings", "summary"]
    assert {"400", "401", "413"} <= set(op["responses"])
    assert {p["name"] for p in op["parameters"]} >= {"crs", "site_type", "industry", "fuel"}


# --------------------------------------------------------------------------- the page


def test_the_page_offers_three_ways_in_and_the_project_fields(client):
    r = client.get("/parcel")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    for needle in ('name="file"', 'name="text"', 'id="pc-geojson"', 'name="crs"',
                   'value="auto"', 'value="gcj02"', 'value="bd09"', 'value="epsg"',
                   'name="epsg"', 'name="towgs84"', 'name="site_type"', 'name="industry"',
                   'name="fuel"', "leaflet.draw.js", 'enctype="multipart/form-data"'):
        assert needle in page, needle
    # industries used in the data are suggested
    assert '<option value="畜禽养殖">' in page and '<option value="化工">' in page
    # intranet mode: leaflet-draw from the app itself
    assert "/static/vendor/leaflet-draw/leaflet.draw.js" in page
    assert "cdnjs.cloudflare.com" not in page


def test_the_menu_names_the_page_in_both_languages(client):
    zh = client.get("/parcel").get_data(as_text=True)
    assert re.search(r'data-endpoint="parcels.index"[^>]*>地块选址</a>', zh)
    try:
        en = client.get("/parcel?lang=en").get_data(as_text=True)
        assert re.search(r'data-endpoint="parcels.index"[^>]*>Parcel siting</a>', en)
        assert "上传文件" not in en  # the page's own words are in the catalogue
    finally:
        client.get("/parcel?lang=zh")


def test_uploading_a_survey_file_shows_every_parcel_units_and_downloads(client):
    data = (SURVEY / "two_parcels_hole.txt").read_bytes()
    r = _page_post(client, mode="file", file=(io.BytesIO(data), "地块坐标.txt"), industry="化工")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    page = r.get_data(as_text=True)
    assert _verdicts(page) and len(_verdicts(page)) == 2
    assert 'class="ck-table pc-summary' in page  # many parcels: the summary first
    assert "JZ-2024-002" in page and "JZ-2024-003" in page
    assert "地块坐标.txt" in page and "EPSG:4547" in page
    assert page.count('class="pc-unit"') >= 2
    for part in ("空间布局约束", "污染物排放管控", "环境风险防控", "资源开发效率要求"):
        assert part in page
    # lines naming the industry are highlighted
    assert re.search(r'<li class="pc-flagged"><mark>[^<]*化工', page)
    # each unit links to its page, the industry's lines marked there too
    assert re.search(r'href="/units/ZH\d+\?industry=%E5%8C%96%E5%B7%A5"', page)
    assert 'id="pc-dl-docx"' in page and 'id="pc-print"' in page


def test_verdict_words_and_colours_follow_the_verdict_never_green_unless_pass(client):
    body = {"type": "FeatureCollection",
            "features": [_feature(SQUARE, "IN"), _feature(FAR_AWAY, "FAR")]}
    r = _page_post(client, mode="draw", geojson=json.dumps(body), draw_crs="wgs84")
    page = r.get_data(as_text=True)
    assert r.status_code == 200, page[:500]
    sections = re.findall(r'<details class="pc-parcel".*?</details>', page, re.S)
    assert len(sections) == 2
    for section in sections:
        v = re.search(r'data-verdict="(\w+)"', section).group(1)
        badge = re.search(r'class="pc-badge ck-verdict-(\w+)"[^>]*>([^<]*)<', section)
        assert badge.group(1) == v and badge.group(2) == VERDICT_WORDS[v]
        if v != "pass":
            assert "ck-verdict-pass" not in section and ">符合<" not in section
    assert "out_of_area" in _verdicts(page)


def test_pasting_a_coordinate_list_checks_it(client):
    ring = list(SQUARE.exterior.coords)[:-1]
    text = "\n".join(f"{x:.8f},{y:.8f}" for x, y in ring)
    r = _page_post(client, mode="paste", text=text, crs="wgs84", industry="化工")
    page = r.get_data(as_text=True)
    assert r.status_code == 200, page[:500]
    (verdict,) = _verdicts(page)
    assert re.search(rf'class="ck-verdict ck-verdict-{verdict}"', page)
    m = re.search(r'data-area-m2="([\d,.]+)"', page)
    assert float(m.group(1).replace(",", "")) == pytest.approx(40000.0, rel=1e-3)
    assert "粘贴的坐标" in page


def test_without_a_mode_the_page_works_out_what_was_sent(client):
    ring = list(SQUARE.exterior.coords)[:-1]
    text = "\n".join(f"{x:.8f},{y:.8f}" for x, y in ring)
    r = _page_post(client, text=text)  # no script: no mode field
    assert r.status_code == 200 and len(_verdicts(r.get_data(as_text=True))) == 1


def test_a_drawing_in_gcj02_is_read_as_gcj02(client):
    def shifted(xy):
        lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        return shapely.get_coordinates(shapely.points(lon, lat))

    gcj = shapely.transform(SQUARE, shifted)
    page = _page_post(client, mode="draw", geojson=json.dumps(_feature(gcj)),
                      draw_crs="gcj02").get_data(as_text=True)
    m = re.search(r'data-area-m2="([\d,.]+)"', page)
    assert float(m.group(1).replace(",", "")) == pytest.approx(40000.0, rel=1e-3)
    carried = json.loads(_carried_form(page)["geojson"])
    lonlat = shapely.geometry.shape(carried["features"][0]["geometry"])
    assert lonlat.centroid.distance(SQUARE.centroid) < 1e-5  # carried back in WGS84


def test_refused_input_is_shown_beside_the_form_naming_parcel_and_point(client):
    text = "113.20,35.20\n113.21,35.21\n113.21,35.20\n113.20,35.21"
    r = _page_post(client, mode="paste", text=text)
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    err = re.search(r'<div class="ga-alert ck-error ga-form-error".*?</div>', page, re.S)
    assert err, "no error beside the form"
    assert "自相交" in err.group(0) and "113.205" in err.group(0)
    assert "<textarea" in page and "113.21,35.21" in page  # the input is kept
    r = _page_post(client, mode="file")
    assert r.status_code == 400 and "请选择要上传的地块文件" in r.get_data(as_text=True)
    r = _page_post(client, mode="draw", geojson="")
    assert r.status_code == 400 and "画出地块" in r.get_data(as_text=True)
    r = _page_post(client, mode="paste", text="113.2,35.2", crs="epsg", epsg="")
    assert r.status_code == 400 and "EPSG" in r.get_data(as_text=True)


def test_page_forms_need_the_csrf_token(client):
    ring = "\n".join(f"{x},{y}" for x, y in list(SQUARE.exterior.coords)[:-1])
    r = client.post("/parcel", data={"mode": "paste", "text": ring},
                    content_type="multipart/form-data")
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    page = _page_post(client, mode="paste", text=ring).get_data(as_text=True)
    carried = _carried_form(page)
    carried.pop("csrf_token")
    for path in ("/parcel/download", "/parcel/print"):
        r = client.post(path, data={**carried, "format": "xlsx"},
                        content_type="multipart/form-data")
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True), path


def test_many_parcels_open_the_first_few_and_fold_the_rest(client):
    feats = [_feature(_square(427046.805 + 300 * i, 3896974.574, 100.0), f"P{i}")
             for i in range(5)]
    page = _page_post(client, mode="draw", geojson=json.dumps(
        {"type": "FeatureCollection", "features": feats})).get_data(as_text=True)
    tags = re.findall(r'<details class="pc-parcel"[^>]*>', page)
    assert len(tags) == 5
    assert [" open" in t for t in tags] == [True, True, True, False, False]
    assert re.findall(r'<tr data-parcel="(\w+)">', page) == [f"P{i}" for i in range(5)]


def _circle(vertices: int, radius_m: float = 150.0, noise_m: float = 0.0) -> shapely.Polygon:
    """A lon/lat circle of ``vertices`` vertices around SQUARE's centre (±``noise_m`` on
    every vertex: a jagged outline that does not simplify away)."""
    t = np.linspace(0.0, 2 * np.pi, vertices, endpoint=False)
    r = radius_m + np.random.default_rng(3).uniform(-noise_m, noise_m, vertices)
    x, y = 427146.805 + r * np.cos(t), 3897074.574 + r * np.sin(t)
    lon, lat = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True).transform(x, y)
    return shapely.Polygon(np.column_stack([lon, lat]))


def _metric(geom):
    tr = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def test_a_parcel_of_many_vertices_is_drawn_from_a_copy_within_half_a_metre():
    assert map_copy(SQUARE) is SQUARE  # few vertices: drawn as it is
    big = _circle(20_000)
    copy = map_copy(big)
    assert shapely.get_num_coordinates(copy) <= MAP_VERTICES and copy.is_valid
    m_big, m_copy = _metric(big), _metric(copy)
    assert m_big.hausdorff_distance(m_copy) <= MAP_TOLERANCE_M
    assert abs(m_big.area - m_copy.area) <= m_big.length * MAP_TOLERANCE_M
    jagged = map_copy(_circle(20_000, noise_m=2.0))  # 2 m of noise: a coarser copy
    assert shapely.get_num_coordinates(jagged) <= MAP_VERTICES and jagged.is_valid


def test_the_page_of_a_parcel_of_many_vertices_carries_it_once_and_maps_a_copy(client):
    """The answer page carries the parcel at full precision once (the sealed form); the map
    draws a simplified copy labelled with the areas the check measured."""
    big = _circle(20_000)
    data = json.dumps(_feature(big, "BIG")).encode()
    r = client.post("/parcel", data=_multipart({"csrf_token": client.csrf, "mode": "file"},
                                               (data, "big.geojson")),
                    content_type=f"multipart/form-data; boundary={BOUNDARY}")
    page = r.get_data(as_text=True)
    assert r.status_code == 200, page[:500]
    form = re.search(r'<form class="pc-carry".*?</form>', page, re.S).group(0)
    carried = json.loads(_carried_form(page)["geojson"])
    ring = carried["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 20_001  # the whole parcel is carried back
    for vertex in (ring[7], ring[12_345]):
        assert page.count(json.dumps(vertex[0])) == 1, vertex  # once, in the form
    rest = page.replace(form, "")
    pairs = re.findall(r"\[11[23]\.\d+, ?3[45]\.\d+\]", rest)
    assert 0 < len(pairs) <= 4 * MAP_VERTICES
    assert len(page) < len(form) + 400_000
    # the map's label of the parcel's area is the check's
    area = re.search(r'data-area-m2="([\d,.]+)"', page).group(1)
    assert f"{float(area.replace(',', '')):,.0f} m²" in rest


# --------------------------------------------------------------------------- downloads


@pytest.fixture(scope="module")
def answer_page(client) -> str:
    data = (SURVEY / "two_parcels_hole.txt").read_bytes()
    r = _page_post(client, mode="file", file=(io.BytesIO(data), "地块坐标.txt"), industry="化工")
    assert r.status_code == 200
    return r.get_data(as_text=True)


def _download(client, page: str, fmt: str):
    form = _carried_form(page)
    r = client.post("/parcel/download", data={**form, "format": fmt},
                    content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert r.headers["Content-Disposition"].startswith("attachment")
    return r


def test_the_answer_page_carries_the_parcels_and_their_source(answer_page):
    form = _carried_form(answer_page)
    fc = json.loads(form["geojson"])
    assert [f["properties"]["id"] for f in fc["features"]] == ["JZ-2024-002", "JZ-2024-003"]
    assert form["industry"] == "化工"
    extra = json.loads(form["source"])
    assert extra["source"]["filename"] == "地块坐标.txt"
    assert extra["source"]["format"] == "survey"
    assert form["seal"]


def test_json_download_is_the_same_answer_and_names_the_original_source(client, answer_page):
    body = json.loads(_download(client, answer_page, "json").data)
    assert body["source"]["filename"] == "地块坐标.txt"
    assert body["source"]["format"] == "survey" and "4547" in body["source"]["crs"]
    api = _api_file(client, (SURVEY / "two_parcels_hole.txt").read_bytes(), "地块坐标.txt",
                    industry="化工").get_json()
    for a, b in zip(body["parcels"], api["parcels"], strict=True):
        assert (a["id"], a["name"], a["verdict"]) == (b["id"], b["name"], b["verdict"])
        assert a["area_m2"] == pytest.approx(b["area_m2"], abs=0.2)
        assert a["declared_area_m2"] == pytest.approx(b["declared_area_m2"], abs=0.1)
        assert [h["rule_id"] for h in a["hits"]] == [h["rule_id"] for h in b["hits"]]
        assert [u["code"] for u in a["units"]] == [u["code"] for u in b["units"]]
    assert [w["message"] for w in body["warnings"]] == [w["message"] for w in api["warnings"]]


def test_docx_report_reads_back_with_the_parcels_and_the_source(client, answer_page):
    r = _download(client, answer_page, "docx")
    assert "wordprocessingml" in r.mimetype
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
    doc = Document(io.BytesIO(r.data))
    text = "\n".join(p.text for p in doc.paragraphs)
    cells = "\n".join(c.text for t in doc.tables for row in t.rows for c in row.cells)
    assert "项目选址环境合理性预判" in text
    assert "地块坐标.txt" in cells and "JZ-2024-002" in cells + text
    assert "化工" in cells


def test_xlsx_download_reads_back(client, answer_page):
    r = _download(client, answer_page, "xlsx")
    wb = load_workbook(io.BytesIO(r.data), read_only=True)
    values = {str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
              for v in row if v is not None}
    assert {"JZ-2024-002", "JZ-2024-003"} <= values


def test_gpkg_download_reads_back_as_the_parcels(client, answer_page, tmp_path):
    r = _download(client, answer_page, "gpkg")
    path = tmp_path / "answer.gpkg"
    path.write_bytes(r.data)
    import pyogrio

    layers = [name for name, _ in pyogrio.list_layers(path)]
    polygons = next(n for n in layers if gpd.read_file(path, layer=n).geom_type.notna().any())
    gdf = gpd.read_file(path, layer=polygons)
    assert len(gdf) == 2
    assert gdf.crs.to_epsg() == 4326
    assert set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}
    assert not gdf.geometry.is_empty.any()


def test_an_unknown_download_format_or_a_tampered_form_is_400(client, answer_page):
    form = _carried_form(answer_page)
    r = client.post("/parcel/download", data={**form, "format": "exe"},
                    content_type="multipart/form-data")
    assert r.status_code == 400
    r = client.post("/parcel/download", data={**form, "source": "{not json", "format": "json"},
                    content_type="multipart/form-data")
    assert r.status_code == 400
    r = client.post("/parcel/download", data={**form, "geojson": "", "format": "json"},
                    content_type="multipart/form-data")
    assert r.status_code == 400


def _forged(form: dict[str, str]) -> dict[str, dict[str, str]]:
    """The carried form with one thing changed each way a browser could change it."""
    extra = json.loads(form["source"])
    extra["source"]["filename"] = "焦作市自然资源局正式报盘.txt"
    source = json.dumps(extra, ensure_ascii=False, separators=(",", ":"))
    warned = json.loads(form["source"])
    warned["warnings"] = [{"message": "已经自然资源局审核同意", "id": None, "feature": None}]
    fc = json.loads(form["geojson"])
    ring = fc["features"][0]["geometry"]["coordinates"][0]
    ring[1] = [ring[1][0] + 0.001, ring[1][1]]  # a vertex dragged in the browser
    geojson = json.dumps(fc, separators=(",", ":"))
    other_key = parcel_page.seal(["not the app's key"], form["geojson"], form["source"],
                                 {"industry": form["industry"]})
    return {"source": {**form, "source": source},
            "warnings": {**form, "source": json.dumps(warned, ensure_ascii=False)},
            "geojson": {**form, "geojson": geojson},
            "industry": {**form, "industry": "畜禽养殖"},
            "no seal": {k: v for k, v in form.items() if k != "seal"},
            "other key": {**form, "seal": other_key},
            "garbage seal": {**form, "seal": "x" * 80}}


def test_the_carried_answer_is_sealed_and_any_change_to_it_is_refused(client, answer_page):
    """A report names the source and parcels of the answer that was shown: a file name, a
    warning, a vertex or the industry changed in the browser, or a seal not made by this
    app, gets a 400 saying so, for every download and the print page."""
    form = _carried_form(answer_page)
    assert len(form["seal"]) > 40
    assert client.post("/parcel/download", data={**form, "format": "json"},
                       content_type="multipart/form-data").status_code == 200
    for what, data in _forged(form).items():
        for path, fmt in (("/parcel/download", "docx"), ("/parcel/download", "json"),
                          ("/parcel/print", None)):
            fields = {**data, "format": fmt} if fmt else data
            r = client.post(path, data=fields, content_type="multipart/form-data")
            body = r.get_data(as_text=True)
            assert r.status_code == 400, (what, path, r.status_code)
            assert "签名不符" in body and "请重新核查" in body, (what, path)
            assert "正式报盘" not in body and "审核同意" not in body
            assert "Content-Disposition" not in r.headers
    # nor is an unsealed carried answer checked as the page's answer
    r = _page_post(client, **{**_forged(form)["source"], "mode": "carried"})
    assert r.status_code == 400 and "签名不符" in r.get_data(as_text=True)


def test_a_drawn_parcel_cannot_be_reported_as_an_official_file(client):
    page = _page_post(client, mode="draw", geojson=json.dumps(_feature(SQUARE))).get_data(
        as_text=True)
    form = _carried_form(page)
    assert json.loads(form["source"])["source"]["format"] == "drawn"
    extra = json.loads(form["source"])
    extra["source"].update(format="survey", filename="焦作市自然资源局正式报盘.txt")
    r = client.post("/parcel/download", data={**form, "format": "docx",
                                              "source": json.dumps(extra, ensure_ascii=False)},
                    content_type="multipart/form-data")
    assert r.status_code == 400 and "wordprocessingml" not in (r.mimetype or "")


def test_a_seal_older_than_a_day_asks_to_check_again(client, answer_page, monkeypatch):
    form = _carried_form(answer_page)
    now = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp",
                        lambda self: now(self) + parcel_page.SEAL_MAX_AGE_S - 3600)
    r = client.post("/parcel/download", data={**form, "format": "json"},
                    content_type="multipart/form-data")
    assert r.status_code == 200  # 23 hours later
    monkeypatch.setattr(TimestampSigner, "get_timestamp",
                        lambda self: now(self) + parcel_page.SEAL_MAX_AGE_S + 60)
    for path in ("/parcel/download", "/parcel/print"):
        r = client.post(path, data={**form, "format": "json"},
                        content_type="multipart/form-data")
        assert r.status_code == 400
        assert "超过 24 小时" in r.get_data(as_text=True) and "重新核查" in r.get_data(
            as_text=True)


def test_a_seal_opens_under_the_key_it_was_made_with_while_that_key_is_a_fallback():
    query = parcel_page.ParcelQuery(mode="carried", geojson='{"type":"FeatureCollection"}',
                                    source='{"source":{}}', industry="化工")
    query.seal = parcel_page.seal(["old key"], query.geojson, query.source, query.project())
    parcel_page.check_seal(["old key", "new key"], query)  # rotated: the old one verifies
    with pytest.raises(InvalidInput, match="签名不符"):
        parcel_page.check_seal(["new key"], query)
    with pytest.raises(InvalidInput, match="签名不符"):
        parcel_page.check_seal([], query)


def test_the_print_page_names_the_source_and_shows_the_verdicts(client, answer_page):
    form = _carried_form(answer_page)
    r = client.post("/parcel/print", data=form, content_type="multipart/form-data")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "项目选址环境合理性预判" in page
    assert "地块坐标.txt" in page and "EPSG:4547" in page
    verdicts = re.findall(r'class="ck-sheet-verdict ck-verdict-(\w+)"', page)
    assert len(verdicts) == 2
    assert page.count('class="pc-unit"') >= 2
    assert "leaflet.draw.js" not in page  # nothing to draw on paper


def test_downloads_are_audited_not_written(client, answer_page, offline_app):
    """A download leaves an export row; the check itself writes nothing (offline_app's guard
    fails the module otherwise)."""
    r = _download(client, answer_page, "xlsx")
    assert r.headers["Cache-Control"] == "no-store"


def test_a_zipped_shapefile_of_the_square_is_checked(client, tmp_path):
    gdf = gpd.GeoDataFrame({"id": ["Z1"], "name": ["压缩包地块"]}, geometry=[SQUARE],
                           crs="EPSG:4326").to_crs("EPSG:4547")
    folder = tmp_path / "shp"
    folder.mkdir()
    gdf.to_file(folder / "parcel.shp", encoding="utf-8")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)
    r = _page_post(client, mode="file", file=(io.BytesIO(buf.getvalue()), "parcel.zip"))
    page = r.get_data(as_text=True)
    assert r.status_code == 200, page[:500]
    assert "Z1" in page and "压缩包地块" in page


def test_api_xian80_body_needs_datum_parameters_and_uses_them(client):
    """Coordinates on Xi'an 80 (EPSG:2383, Gauss-Krüger 114°E) are refused without the
    datum parameters, as for a survey file, and read with them when given in the query."""
    ring = [[427046.805 + dx, 3896974.574 + dy] for dx, dy in
            ((0, 0), (200, 0), (200, 200), (0, 200), (0, 0))]
    body = {"type": "Feature", "properties": {"id": "X80"},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}
    r = _api_geojson(client, body, "?crs=EPSG:2383")
    assert r.status_code == 400 and "七参数" in r.get_json()["message"]
    r = _api_geojson(client, body, "?crs=EPSG:2383&towgs84=24,-123,-94,0.02,-0.25,-0.13,1.1")
    assert r.status_code == 200, r.get_data(as_text=True)[:400]
    assert r.get_json()["parcels"][0]["area_m2"] == pytest.approx(40000.0, rel=2e-3)
