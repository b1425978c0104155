"""/units pages: the list with filters and counts, one unit's list, the planners' edit form
(CSRF, 400, 409), the import (report of every problem, nothing written) and the export;
viewers read but cannot edit or import."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import folium
import pytest
from openpyxl import load_workbook

from geoapp.domain.units import CATEGORY_COLOURS
from geoapp.maps.layers import unit_style
from geoapp.services.overview import overview_map

from webutil import csrf_token, login

DATA = Path(__file__).resolve().parents[1] / "data"
CORE = "ZH41080220001"


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app(INTRANET=True, TILES="none")


@pytest.fixture(scope="module")
def viewer(app):
    c = app.test_client()
    login(c, "viewer")
    return c


@pytest.fixture
def planner(app):
    c = app.test_client()
    login(c, "planner")
    return c


def _form(client, code: str = CORE) -> dict[str, str]:
    html = client.get(f"/units/{code}").get_data(as_text=True)
    values = {"csrf_token": csrf_token(html),
              "version": re.search(r'name="version" value="(\d+)"', html).group(1)}
    for key in ("spatial_layout", "emission_control", "risk_prevention", "resource_efficiency"):
        m = re.search(rf'<textarea name="{key}"[^>]*>(.*?)</textarea>', html, re.S)
        values[key] = m.group(1).replace("&#34;", '"').replace("&amp;", "&") \
            .replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'")
    return values


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-code="([^"]+)"', html)


def test_the_list_filters_by_county_category_and_text(viewer):
    html = viewer.get("/units").get_data(as_text=True)
    assert len(_rows(html)) == 64 and "三线一单" in html
    assert 'data-category="all"><b>64</b>' in html
    html = viewer.get("/units?county=解放区").get_data(as_text=True)
    assert _rows(html) == ["ZH41080210001", "ZH41080210002", CORE, "ZH41080230001"]
    html = viewer.get("/units?county=解放区&category=重点管控").get_data(as_text=True)
    assert _rows(html) == [CORE]
    assert 'data-category="重点管控"' in html and "共 64 个" in html
    html = viewer.get("/units?q=化工").get_data(as_text=True)
    assert len(_rows(html)) == 3 and all(c[8] == "2" for c in _rows(html))
    assert _rows(viewer.get("/units?q=zh4108022").get_data(as_text=True)) == [CORE]
    assert viewer.get("/units?county=火星区").status_code == 400
    assert viewer.get("/units?category=随便").status_code == 400


def test_a_viewer_reads_a_unit_but_gets_no_form(viewer):
    r = viewer.get(f"/units/{CORE}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "解放区重点管控单元（主城区）" in html and "空间布局约束" in html and "资源开发效率要求" in html
    assert "禁止新建、扩建钢铁" in html and "<textarea" not in html
    assert viewer.get("/units/ZH41080229999").status_code == 404
    assert viewer.get("/units/not-a-code").status_code == 404


def test_lines_naming_an_industry_are_marked(viewer):
    html = viewer.get(f"/units/{CORE}?industry=商混站").get_data(as_text=True)
    marked = re.findall(r'<li class="un-flagged">([^<]*)</li>', html)
    assert marked == ["2.城市建成区内禁止新建商品混凝土搅拌站、砂石料场和石材加工、木材加工项目。"]
    assert "：1 条" in html
    assert "un-flagged" not in viewer.get(f"/units/{CORE}?industry=").get_data(as_text=True)


def test_viewer_cannot_edit_or_import(viewer, app):
    repo = app.extensions["geoapp"].repo
    version = repo.unit_requirement(CORE).version
    token = csrf_token(viewer.get("/units").get_data(as_text=True))
    r = viewer.post(f"/units/{CORE}", data={"csrf_token": token, "version": "1",
                                            "spatial_layout": "1.x"})
    assert r.status_code == 403
    r = viewer.post("/units/import", data={"csrf_token": token, "file": (
        (DATA / "units" / "requirements.csv").open("rb"), "requirements.csv")})
    assert r.status_code == 403
    assert "准入清单文件" not in viewer.get("/units").get_data(as_text=True)
    assert repo.unit_requirement(CORE).version == version


def test_a_planner_saves_a_part_and_a_stale_form_gets_409(app, planner):
    form = _form(planner)
    old_version = int(form["version"])
    mine = {**form, "risk_prevention": "1.每季度开展一次环境风险排查。\n2.第二条。"}
    r = planner.post(f"/units/{CORE}", data=mine)
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/units/{CORE}#parts")
    html = planner.get(f"/units/{CORE}").get_data(as_text=True)
    assert "1.每季度开展一次环境风险排查。" in html and "planner" in html
    assert f"版本 {old_version + 1}" in html
    # the same stale form again: 409, the other save named, the planner's input kept
    stale = {**form, "risk_prevention": "1.另一位规划人员的文字"}
    r = planner.post(f"/units/{CORE}", data=stale)
    html = r.get_data(as_text=True)
    assert r.status_code == 409
    assert 'data-status="409"' in html and "保存未成功" in html and "1.另一位规划人员的文字" in html
    assert f'name="version" value="{old_version + 1}"' in html
    repo = app.extensions["geoapp"].repo
    assert repo.unit_requirement(CORE).part("risk_prevention").startswith("1.每季度")
    # without a CSRF token nothing is saved
    r = planner.post(f"/units/{CORE}", data={**stale, "csrf_token": ""})
    assert r.status_code == 400
    assert repo.unit_requirement(CORE).version == old_version + 1


def test_a_part_too_long_is_a_400_naming_it(planner):
    form = _form(planner, "ZH41080230001")
    r = planner.post("/units/ZH41080230001", data={**form, "emission_control": "长" * 20_001})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and 'data-field="emission_control"' in html and "过长" in html


def test_a_form_missing_parts_blanks_nothing(app, planner):
    """A save carrying only the version (a broken client, a hand-made request) changes
    nothing: a part the form does not carry keeps its text; only a part sent blank is
    blanked."""
    form = _form(planner, "ZH41080230001")
    repo = app.extensions["geoapp"].repo
    before = repo.unit_requirement("ZH41080230001")
    r = planner.post("/units/ZH41080230001",
                     data={"csrf_token": form["csrf_token"], "version": form["version"]})
    assert r.status_code == 302
    after = repo.unit_requirement("ZH41080230001")
    assert after.requirements == before.requirements
    assert all(after.part(k) for k in after.requirements)


def test_control_characters_pasted_from_word_do_not_break_the_export(app, planner):
    form = _form(planner, "ZH41080230001")
    text = "1.禁止新建化工项目\x0b（含扩建）\x07。\n2.第二条\x00。"
    r = planner.post("/units/ZH41080230001", data={**form, "spatial_layout": text})
    assert r.status_code == 302
    stored = app.extensions["geoapp"].repo.unit_requirement("ZH41080230001")
    assert stored.part("spatial_layout") == "1.禁止新建化工项目\n（含扩建）。\n2.第二条。"
    r = planner.get("/units/export.xlsx")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data))
    assert any("禁止新建化工项目" in str(c.value) for row in wb.active.iter_rows() for c in row)


def test_import_reports_every_problem_and_writes_nothing(app, planner):
    repo = app.extensions["geoapp"].repo
    before = {c: r.version for c, r in repo.unit_requirements().items()}
    token = csrf_token(planner.get("/units").get_data(as_text=True))
    with (DATA / "units" / "requirements.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    rows[1][0] = "ZH41080229999"
    rows[3][5] = "限制开发"
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    r = planner.post("/units/import", data={"csrf_token": token, "file": (
        io.BytesIO(buf.getvalue().encode("utf-8")), "焦作市准入清单.csv")},
        content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and 'id="un-problems"' in html
    assert "焦作市准入清单.csv" in html and "未导入任何内容" in html
    assert "管控单元图层中没有编码为 ZH41080229999 的单元" in html and "限制开发" in html
    assert {c: v.version for c, v in repo.unit_requirements().items()} == before
    rows = [rows[0], *rows[4:]]
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    r = planner.post("/units/import", data={"csrf_token": token, "file": (
        io.BytesIO(buf.getvalue().encode("utf-8")), "good.csv")},
        content_type="multipart/form-data")
    assert r.status_code == 200 and 'id="un-result"' in r.get_data(as_text=True)
    r = planner.post("/units/import", data={"csrf_token": token, "file": (
        io.BytesIO(b"x"), "notes.docx")}, content_type="multipart/form-data")
    assert r.status_code == 400


def test_the_export_is_the_published_form(viewer):
    r = viewer.get("/units/export.xlsx")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(r.data)).active
    assert ws["B2"].value == "环境管控单元编码" and ws["H2"].value == "管控要求"
    assert ws.max_row == 3 + 64


def test_the_pages_speak_english(viewer):
    html = viewer.get("/units?lang=en").get_data(as_text=True)
    assert "Control units" in html and "Priority protection" in html and "环境管控单元编码" not in html
    html = viewer.get(f"/units/{CORE}?lang=en").get_data(as_text=True)
    assert "Spatial layout constraints" in html and "Key control" in html
    viewer.get("/units?lang=zh")


def test_the_overview_draws_the_units_switched_off_coloured_by_category(viewer, app):
    m = overview_map(app.extensions["geoapp"])
    groups = [g for g in m._children.values() if isinstance(g, folium.FeatureGroup)]
    units = [g for g in groups if "环境管控单元" in g.layer_name]
    assert len(units) == 1 and units[0].show is False
    html = viewer.get("/").get_data(as_text=True)
    name = "解放区重点管控单元（主城区）"
    assert name in html or json.dumps(name)[1:-1] in html  # GeoJSON may escape it
    assert all(colour in html for colour in CATEGORY_COLOURS.values())
    assert unit_style("优先保护")["fillColor"] == CATEGORY_COLOURS["优先保护"]
    assert unit_style(None)["fillColor"] == "#999999"
