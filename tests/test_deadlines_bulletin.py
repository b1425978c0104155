"""The weekly bulletin's 逾期督办 section, as of the week's Sunday, in every output that has
sections: the HTML page, the DOCX (read back with python-docx) and the XLSX (openpyxl)."""

from __future__ import annotations

import datetime as dt

import docx
import pytest
from openpyxl import load_workbook

from geoapp.domain import bulletin
from geoapp.services import deadlines
from geoapp.services.weekly import weekly_report, write_file

WEEK = "2026-W48"  # 23-29 November 2026


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture(scope="module")
def report(core):
    return weekly_report(core, WEEK)


def test_section_is_as_of_the_weeks_sunday(core, report):
    section = report.overdue
    assert section.as_of == dt.date(2026, 11, 29)
    view = deadlines.overdue_view(core, dt.date(2026, 11, 29))
    assert section.total == view.counts["overdue"] and section.sites == view.counts[
        "sites_overdue"]
    assert list(section.per_county["county"]) == list(core.city.county_names)
    assert len(section.rows) == section.total
    deadline_rows = section.rows[section.rows["label"] == "整改完成时限"]
    assert len(deadline_rows) == 37


def test_docx_has_the_section(core, report, tmp_path):
    path = write_file(core, report, "bulletin.docx", tmp_path)
    doc = docx.Document(str(path))
    texts = [p.text for p in doc.paragraphs]
    assert "逾期督办（截至2026年11月29日）" in texts
    sentence = next(t for t in texts if t.startswith("截至2026年11月29日，全市逾期未完成事项"))
    assert f"{report.overdue.total}项，涉及{report.overdue.sites}家单位" in sentence
    tables = {tuple(c.text for c in t.rows[0].cells): t for t in doc.tables}
    counts = tables[("区县", "逾期事项", "逾期单位", "即将到期事项")]
    rows = [[c.text for c in r.cells] for r in counts.rows[1:]]
    assert [r[0] for r in rows[:len(core.city.county_names)]] == list(core.city.county_names)
    assert rows[len(core.city.county_names)][:2] == ["合计", str(report.overdue.total)]
    listed = tables[("区县", "编号", "名称", "类型", "事项", "应完成日期", "逾期天数")]
    assert len(listed.rows) - 1 == report.overdue.total


def test_xlsx_has_the_section(core, report, tmp_path):
    path = write_file(core, report, "bulletin.xlsx", tmp_path)
    wb = load_workbook(path)
    assert {"逾期督办统计", "逾期清单"} <= set(wb.sheetnames)
    counts = list(wb["逾期督办统计"].iter_rows(min_row=4, values_only=True))  # under the title rows
    assert counts[0] == ("区县", "逾期事项", "逾期单位", "即将到期事项")
    assert counts[-2][:2] == ("合计", report.overdue.total)
    assert counts[-1][0] == "统计截至2026年11月29日"
    rows = list(wb["逾期清单"].iter_rows(min_row=4, values_only=True))
    assert len(rows) - 1 == report.overdue.total
    assert all(isinstance(r[6], int) and r[6] > 0 for r in rows[1:])


def test_page_has_the_section(viewer_client):
    html = viewer_client.get(f"/weekly?week={WEEK}").get_data(as_text=True)
    assert 'id="wk-overdue" data-as-of="2026-11-29"' in html
    assert 'id="wk-overdue-counties"' in html and "/overdue?as_of=2026-11-29" in html


def test_overdue_paragraph_wording():
    order = ("解放区", "中站区", "温县")
    text = bulletin.overdue_paragraph(dt.date(2026, 11, 29), {"温县": 3, "解放区": 1}, order,
                                      4, 2)
    assert text == ("截至2026年11月29日，全市逾期未完成事项4项，涉及2家单位：温县3项、解放区1项；"
                    "中站区无。")
    assert bulletin.overdue_paragraph(dt.date(2026, 1, 4), {}, order, 0, 0) == (
        "截至2026年1月4日，全市无逾期未完成的整改、搬迁及“两断三清”事项。")
