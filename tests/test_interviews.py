"""The 约谈 (interview) list: grids warned in INTERVIEW_WEEKS consecutive ISO weeks (Asia/
Shanghai), by county in bulletin order with 无 for none, the enterprises inside each grid; the
/interviews page and its XLSX, and the bulletin's section in the DOCX and XLSX read back."""

from __future__ import annotations

import io

import geopandas as gpd
import pandas as pd
import pytest

from geoapp.domain.bulletin import IsoWeek
from geoapp.domain.interviews import by_county, on_list, streak

WEEK = IsoWeek(2026, 47)   # Monday 16 - Sunday 22 November 2026


@pytest.fixture(scope="module")
def core(tmp_path_factory, jiaozuo_db):
    from geoapp.config import load_settings
    from geoapp.services import open_geoapp

    from webutil import copy_database

    inst = tmp_path_factory.mktemp("interviews-instance")
    copy_database(jiaozuo_db, inst)
    app = open_geoapp(load_settings(inst, environ={}))
    yield app
    app.repo.close()


@pytest.fixture(scope="module")
def grid_with_firm(core) -> tuple[str, str, str]:
    """(grid code, its county, an enterprise id inside it)."""
    cells = core.repo.layer("hotspot_grids")[["code", "county", "geometry"]]
    firms = core.repo.sites("enterprise", columns=["name"])
    hit = gpd.sjoin(firms, cells, predicate="within").sort_values("id").iloc[0]
    return str(hit["code"]), str(hit["county"]), str(hit["id"])


def _warnings(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"grid_code": g, "warned_at": t, "pollutant": p, "value": 150.0}
                         for g, t, p in ((g, t, "PM2.5" if i % 2 else "O3")
                                         for i, (g, t) in enumerate(rows))])


# ------------------------------------------------------------------ counting (domain)
def test_three_in_a_row_counts_three_with_a_gap_does_not():
    assert streak({"2026-W45", "2026-W46", "2026-W47"}, WEEK) == 3
    assert streak({"2026-W44", "2026-W45", "2026-W47"}, WEEK) == 1
    assert streak({"2026-W44", "2026-W45", "2026-W46"}, WEEK) == 0  # not warned this week
    assert streak({"2025-W52", "2026-W01"}, IsoWeek(2026, 1)) == 2  # over New Year
    weeks = {"A": {"2026-W45", "2026-W46", "2026-W47"}, "B": {"2026-W44", "2026-W45",
                                                              "2026-W47"}}
    assert on_list(weeks, WEEK, 3) == {"A": 3}
    assert on_list(weeks, WEEK, 1) == {"A": 3, "B": 1}


def test_every_county_is_listed_in_order_and_unknown_ones_last():
    got = by_county([{"code": "X2", "county": "乙", "streak": 3},
                     {"code": "X1", "county": "乙", "streak": 4},
                     {"code": "Z", "county": "外", "streak": 3}], ["甲", "乙", "丙"])
    assert [c["county"] for c in got] == ["甲", "乙", "丙", "外"]
    assert [g["code"] for g in got[1]["grids"]] == ["X1", "X2"]
    assert got[0]["grids"] == [] and got[2]["grids"] == []


# ------------------------------------------------------------------ the service
def test_week_boundaries_are_local_monday_to_sunday(core, grid_with_firm):
    from geoapp.services.interviews import interview_list

    code, county, firm = grid_with_firm
    other = "JZ3K-0001" if code != "JZ3K-0001" else "JZ3K-0002"
    warnings = _warnings([
        (code, "2026-11-02T00:00:00"),   # Monday 00:00: first moment of W45
        (code, "2026-11-15T23:59:59"),   # Sunday 23:59:59: last moment of W46
        (code, "2026-11-16T00:00:00"),   # Monday 00:00: W47
        (other, "2026-11-01T23:59:59"),  # Sunday: still W44
        (other, "2026-11-15T10:00:00"),  # W46
        (other, "2026-11-22T23:59:00"),  # W47 -- W45 missing: a gap
        (other, "2026-11-23T00:00:00"),  # W48: after the week, not counted
    ])
    got = interview_list(core, WEEK, warnings=warnings, weeks=3)
    assert [g["code"] for g in got.grids] == [code]
    grid = got.grids[0]
    assert grid["streak"] == 3 and grid["weeks"] == ["2026-W45", "2026-W46", "2026-W47"]
    assert grid["pollutants"] == "O3、PM2.5" and grid["county"] == county
    assert firm in [e["id"] for e in grid["enterprises"]]
    two = interview_list(core, WEEK, warnings=warnings, weeks=2)
    assert sorted(g["code"] for g in two.grids) == sorted([code, other])


def test_n_comes_from_the_setting(core, monkeypatch):
    from geoapp.services.interviews import interview_list

    warnings = _warnings([("JZ3K-0005", "2026-11-10T08:00:00"),
                          ("JZ3K-0005", "2026-11-18T08:00:00")])
    monkeypatch.setitem(core.settings, "INTERVIEW_WEEKS", 3)
    assert interview_list(core, WEEK, warnings=warnings).grids == []
    monkeypatch.setitem(core.settings, "INTERVIEW_WEEKS", 2)
    got = interview_list(core, WEEK, warnings=warnings)
    assert got.weeks_required == 2 and [g["code"] for g in got.grids] == ["JZ3K-0005"]


def test_counties_without_a_grid_say_none_in_bulletin_order(core):
    from geoapp.exports.bulletin_xlsx import interview_frame
    from geoapp.services.interviews import interview_list

    got = interview_list(core, WEEK)  # the embedded data: JZ3K-0009 (马村区), 3 weeks
    assert [c["county"] for c in got.counties] == list(core.city.county_names)
    assert [g["code"] for g in got.grids] == ["JZ3K-0009"]
    frame = interview_frame(got)
    quiet = frame[frame["网格编号"] == "无"]["区县"].tolist()
    assert quiet == [c for c in core.city.county_names if c != "马村区"]
    empty = interview_list(core, IsoWeek(2026, 30))
    assert (interview_frame(empty)["网格编号"] == "无").all()


# ------------------------------------------------------------------ bulletin files read back
def test_bulletin_docx_and_xlsx_carry_the_list(core, grid_with_firm, tmp_path):
    import docx
    from openpyxl import load_workbook

    from geoapp.services.weekly import weekly_report, write_file

    code, county, firm = grid_with_firm
    stored = core.repo.table("grid_warnings")
    extra = _warnings([(code, "2026-11-04T20:00:00"), (code, "2026-11-11T20:00:00"),
                       (code, "2026-11-18T20:00:00")])
    report = weekly_report(core, WEEK, warnings=pd.concat([stored, extra], ignore_index=True))
    name = next(e["name"] for g in report.interviews.grids for e in g["enterprises"]
                if e["id"] == firm)
    doc = docx.Document(str(write_file(core, report, "bulletin.docx", tmp_path)))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "约谈名单（连续3周及以上预警网格）" in text and code in text
    assert "：无。" in text
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    assert name in cells and code in cells
    wb = load_workbook(write_file(core, report, "bulletin.xlsx", tmp_path), read_only=True)
    rows = [list(r) for r in wb["约谈名单"].iter_rows(min_row=4, values_only=True)]
    assert rows[0][:5] == ["区县", "网格编号", "网格名称", "重点监控", "连续预警周数"]
    mine = [r for r in rows if r[1] == code]
    assert mine and mine[0][0] == county and mine[0][4] == 3 and name in [r[8] for r in mine]
    assert sum(1 for r in rows[1:] if r[1] == "无") == len(
        [c for c in report.interviews.counties if not c["grids"]])


# ------------------------------------------------------------------ the page
@pytest.fixture
def client(instance_with_users):
    from geoapp.web import create_app

    from webutil import login

    app = create_app({"INSTANCE_PATH": str(instance_with_users), "INTRANET": True,
                      "TILES": "none", "TESTING": True})
    c = app.test_client()
    login(c, "viewer")
    return c


def test_interviews_page_and_xlsx_for_any_account(client):
    from openpyxl import load_workbook

    html = client.get(f"/interviews?week={WEEK}").get_data(as_text=True)
    assert 'data-grid="JZ3K-0009"' in html and 'data-county="孟州市"' in html
    assert html.count('class="iv-none">无<') == 10
    assert "/interviews" in html and "约谈名单" in html
    r = client.get(f"/interviews/{WEEK}.xlsx")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(r.data), read_only=True).worksheets[0]
    assert [row[1] for row in ws.iter_rows(values_only=True)].count("JZ3K-0009") == 1
    assert client.get("/interviews?week=2026-47").status_code == 400
    weekly = client.get(f"/weekly?week={WEEK}").get_data(as_text=True)
    assert 'id="wk-interviews"' in weekly and 'data-grid="JZ3K-0009"' in weekly
    assert "4 件无坐标，未上图" in weekly


def test_the_workbook_has_title_rows_and_follows_the_ui_language(client):
    from openpyxl import load_workbook

    r = client.get(f"/interviews/{WEEK}.xlsx")
    wb = load_workbook(io.BytesIO(r.data))
    ws = wb.worksheets[0]
    assert wb.sheetnames == ["约谈名单"]
    assert ws["A1"].value == "焦作市连续3周及以上预警网格约谈名单" and ws["A1"].font.b
    assert ws["A2"].value == "2026年第47周（2026年11月16日至11月22日）"
    assert ws["A3"].value == "焦作市生态环境局　2026年11月23日"
    assert [c.value for c in ws[4]][:3] == ["区县", "网格编号", "网格名称"]
    assert ws.freeze_panes == "A5"
    # English mode: sheet, title, headers and words in English; data stays as stored.
    html = client.get(f"/interviews?week={WEEK}&lang=en").get_data(as_text=True)
    assert "Primary pollutants: " in html and "Primary pollutants：" not in html
    assert "、" not in html.split('data-grid="JZ3K-0009"')[1].split("</p>")[0]
    wb = load_workbook(io.BytesIO(client.get(f"/interviews/{WEEK}.xlsx").data))
    client.get("/interviews?lang=zh")
    ws = wb.worksheets[0]
    assert wb.sheetnames == ["Interview list"]
    assert ws["A1"].value.startswith("Jiaozuo: interview list")
    assert ws["A2"].value == "Week 47 of 2026 (16 Nov 2026 – 22 Nov 2026)"
    assert ws["A3"].value == "焦作市生态环境局, 23 Nov 2026"
    header = [c.value for c in ws[4]]
    assert header[:3] == ["County", "Grid code", "Grid name"] and "区县" not in header
    assert all(row[1] != "无" for row in ws.iter_rows(min_row=5, values_only=True))
