"""/emergency pages: counts by grade and county, filters, the map coloured by grade with its
legend, a level's measures by county (page, XLSX, DOCX), the planners' edit form (CSRF, 400,
409) and import (report of every problem, nothing written); viewers read but cannot edit or
import (403)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from docx import Document
from openpyxl import Workbook, load_workbook

from geoapp.domain.emergency import GRADE_COLOURS, Grade

from webutil import csrf_token, login

STEEL = "91410811MAH15U2W21"


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app(INTRANET=True, TILES="none")


@pytest.fixture(scope="module")
def viewer(app):
    c = app.test_client()
    login(c, "viewer")
    return c


@pytest.fixture(scope="module")
def planner(app):
    c = app.test_client()
    token = login(c, "planner")
    return c, token


def _text(r) -> str:
    return r.get_data(as_text=True)


def test_the_page_counts_by_grade_and_county_and_draws_the_map(viewer):
    r = viewer.get("/emergency")
    assert r.status_code == 200
    html = _text(r)
    cards = dict(re.findall(r'data-grade="(\w+)" href="[^"]*"><b>(\d+)</b>', html))
    assert sum(int(v) for v in cards.values() if v) >= 60
    assert int(cards["unmatched"]) == 2
    assert re.search(r'data-grade="all"><b>60</b>', html)
    assert 'data-county="解放区"' in html and "未匹配到登记企业" in html
    assert "GeoappPoints" in html  # the enterprises as one canvas layer
    for g in Grade:  # coloured by grade, with a legend entry each
        assert GRADE_COLOURS[g] in html
    assert "应急减排清单" in html and 'href="/emergency"' in html  # in the header menu
    assert "em-import" not in html and "em-edit-link" not in html  # viewers only read


def test_filters_narrow_the_list(viewer):
    html = _text(viewer.get("/emergency?grade=A&county=山阳区"))
    keys = re.findall(r'<tr data-key="([^"]+)" data-grade="(\w+)" data-matched', html)
    assert keys and all(g == "A" for _k, g in keys)
    assert (STEEL, "A") in keys
    html = _text(viewer.get("/emergency?matched=no"))
    assert len(re.findall(r'data-matched="no"', html)) == 2
    assert viewer.get("/emergency?grade=Z").status_code == 400
    assert viewer.get("/emergency?county=火星").status_code == 400


def test_choosing_red_lists_each_county_s_measures(viewer):
    html = _text(viewer.get("/emergency?level=red"))
    assert 'id="em-level-result" data-level="red"' in html
    counties = re.findall(r'<section class="em-county" data-county="([^"]+)">', html)
    assert counties[:2] == ["解放区", "中站区"] and len(counties) == 7
    assert "熔炼、造型、清理工序全部停产" in html or "全厂停产" in html
    assert 'href="/emergency/levels/red.xlsx"' in html
    assert 'href="/emergency/levels/red.docx"' in html


@pytest.mark.parametrize("level,zh", [("yellow", "黄色"), ("orange", "橙色"), ("red", "红色")])
def test_the_level_downloads(viewer, level, zh):
    r = viewer.get(f"/emergency/levels/{level}.xlsx")
    assert r.status_code == 200 and "filename*=UTF-8''" in r.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(r.data)).active
    assert ws["A1"].value == f"焦作市重污染天气{zh}预警应急减排措施清单"
    r = viewer.get(f"/emergency/levels/{level}.docx")
    assert r.status_code == 200
    doc = Document(io.BytesIO(r.data))
    assert doc.paragraphs[0].text == f"焦作市重污染天气{zh}预警应急减排措施清单"
    assert len(doc.tables) == 7
    assert viewer.get(f"/emergency/levels/{level}.pdf").status_code == 404
    assert viewer.get("/emergency/levels/purple.xlsx").status_code == 404


def test_a_viewer_cannot_import_or_edit(app, viewer):
    token = csrf_token(_text(viewer.get("/emergency")))
    r = viewer.post(f"/emergency/measures/{STEEL}", data={"csrf_token": token, "grade": "D",
                                                        "version": "1"})
    assert r.status_code == 403
    r = viewer.post("/emergency/import", data={"csrf_token": token, "file": (
        io.BytesIO(b"x"), "list.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 403
    with app.app_context():
        assert app.extensions["geoapp"].repo.emergency_measure(STEEL).version == 1


def test_a_planner_edits_one_enterprise_and_a_stale_form_is_a_409(app, planner):
    c, token = planner
    html = _text(c.get(f"/emergency?edit={STEEL}"))
    assert 'id="em-edit"' in html and 'name="red_cut_pct"' in html
    form = {"csrf_token": token, "version": "1", "grade": "B", "yellow_cut_pct": "10",
            "orange_cut_pct": "20", "red_cut_pct": "30", "red_processes": "烧结机停产",
            "remarks": "复核后降为B级"}
    r = c.post(f"/emergency/measures/{STEEL}", data=form)
    assert r.status_code == 302 and "edit=" in r.headers["Location"]
    r = c.post(f"/emergency/measures/{STEEL}", data={**form, "grade": "C"})
    assert r.status_code == 409 and 'id="em-conflict"' in _text(r)
    r = c.post(f"/emergency/measures/{STEEL}", data={**form, "version": "2",
                                                   "red_cut_pct": "10"})
    assert r.status_code == 400
    assert "红色预警限产比例低于橙色预警" in _text(r)
    r = c.post(f"/emergency/measures/{STEEL}", data={k: v for k, v in form.items()
                                                   if k != "csrf_token"})
    assert r.status_code == 400  # no CSRF token
    m = app.extensions["geoapp"].repo.emergency_measure(STEEL)
    assert m.grade == "B" and m.version == 2 and m.updated_by == "planner"


def test_a_planner_imports_and_a_bad_file_is_reported_row_by_row(app, planner, tmp_path):
    c, token = planner
    before = {k: v.to_dict() for k, v in app.extensions["geoapp"].repo
              .emergency_measures().items()}
    wb = Workbook()
    ws = wb.active
    header = ["序号", "县（市、区）", "企业名称", "统一社会信用代码", "行业", "绩效分级",
              *(f"{lv}{m}" for lv in ("黄色预警", "橙色预警", "红色预警")
                for m in ("限产比例(%)", "停产工序", "运输管控措施")), "备注"]
    ws.append(header)
    ws.append([1, "温县", "温县甲化工有限公司", "", "化工", "Q级", 10, "", "", 20, "", "", 30,
               "", "", ""])
    ws.append([2, "温县", "温县乙化工有限公司", "", "化工", "C级", 10, "", "", 20, "", "", 5,
               "", "", ""])
    path = tmp_path / "bad.xlsx"
    wb.save(path)
    r = c.post("/emergency/import", data={"csrf_token": token, "file": (
        path.open("rb"), "清单.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 400
    html = _text(r)
    assert 'id="em-problems"' in html and "清单.xlsx" in html
    assert re.search(r"<td class=\"num\">2</td><td>绩效分级</td>", html)
    assert re.search(r"<td class=\"num\">3</td><td>红色预警限产比例\(%\)</td>", html)
    after = {k: v.to_dict() for k, v in app.extensions["geoapp"].repo
             .emergency_measures().items()}
    assert after == before
    export = c.get("/emergency/export.xlsx")
    assert export.status_code == 200
    good = tmp_path / "good.xlsx"
    good.write_bytes(export.data)
    r = c.post("/emergency/import", data={"csrf_token": token, "file": (
        good.open("rb"), "export.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 200
    html = _text(r)
    assert 'id="em-result"' in html and "未变 60 家" in html
    assert "未匹配到登记企业（2）" in html


def test_the_page_in_english(viewer):
    html = _text(viewer.get("/emergency?lang=en&level=orange"))
    assert "Heavy-pollution weather emergency emission-reduction list" in html
    assert "Orange warning" in html and "Grade A" in html
    assert Path  # noqa: B018


def test_the_site_page_shows_the_grade_and_each_level_s_measures(viewer):
    html = _text(viewer.get("/sites/E0002?lang=zh"))  # 昌盛特钢, in the list
    section = html[html.index('id="emergency"'):]
    section = section[:section.index("</section>")]
    assert re.search(r'data-grade="\w+"', html[html.index('class="st-section st-emergency"'):])
    assert [m for m in re.findall(r'data-level="(\w+)"', section)] == ["yellow", "orange", "red"]
    assert "绩效分级" in section and "限产比例" in section
    farm = _text(viewer.get("/sites/F0001"))
    assert 'id="emergency"' not in farm  # a site the list does not name has no section
