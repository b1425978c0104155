"""Every Word document in the official layout (GB/T 9704-2012), read back with python-docx:
A4, the four margins, the fonts by name (East Asian slot included), the title at 2号 and body
at 3号 on fixed 28 pt lines, the footer's ``— PAGE —`` numbers odd right / even left, and the
issuing unit and date at the end; the bulletin's 第N期 and the quarterly report's 截至; the
XLSX title rows (docs/documents.md)."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml.ns import qn
from docx.shared import Pt
from openpyxl import load_workbook

from geoapp.domain.bulletin import IsoWeek
from geoapp.domain.quarters import Quarter
from geoapp.services import emergency, parcels, programme, weekly

pytestmark = pytest.mark.backends("gpkg")

WEEK = "2026-W47"
ISSUER = "焦作市生态环境局"
MM = 36000  # EMU per mm


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


def _mm(emu) -> float:
    return emu / MM


def _fonts(el) -> dict[str, str]:
    rpr = el.find(qn("w:rPr"))
    fonts = rpr.find(qn("w:rFonts")) if rpr is not None else None
    return {} if fonts is None else {k.split("}")[1]: v for k, v in fonts.attrib.items()}


def assert_official(path: Path, *, title: str, date_text: str) -> docx.document.Document:
    doc = docx.Document(str(path))
    s = doc.sections[0]
    assert (round(_mm(s.page_width)), round(_mm(s.page_height))) == (210, 297)
    for got, want in ((s.top_margin, 37), (s.bottom_margin, 35), (s.left_margin, 28),
                      (s.right_margin, 26)):
        assert _mm(got) == pytest.approx(want, abs=0.5)
    # Body: 仿宋_GB2312 3号 on exact 28 pt lines (the Normal style every body paragraph uses).
    normal = doc.styles["Normal"]
    assert _fonts(normal.element)["eastAsia"] == "仿宋_GB2312"
    assert normal.font.size == Pt(16)
    assert normal.paragraph_format.line_spacing_rule == WD_LINE_SPACING.EXACTLY
    assert normal.paragraph_format.line_spacing == Pt(28)
    body = [p for p in doc.paragraphs if p.text and p.style.name == "Normal"
            and p.paragraph_format.line_spacing is None]
    assert len(body) > 3
    assert all(r.font.size in (None, Pt(16)) for p in body for r in p.runs)
    # Title: the first paragraph, 2号 方正小标宋简体, centred.
    head = doc.paragraphs[0]
    assert head.text == title and head.alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert head.runs[0].font.size == Pt(22)
    assert _fonts(head.runs[0]._r)["eastAsia"] == "方正小标宋简体"
    # Tables in 小四.
    if doc.tables:
        assert doc.styles["Table Text"].font.size == Pt(12)
        cell = doc.tables[0].rows[0].cells[0].paragraphs[0]
        assert cell.style.name == "Table Text"
    # Page numbers: — PAGE — in 4号 宋体, odd right, even left.
    assert doc.settings.odd_and_even_pages_header_footer
    for footer, align in ((s.footer, WD_ALIGN_PARAGRAPH.RIGHT),
                          (s.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT)):
        p = footer.paragraphs[0]
        assert p.alignment == align
        assert p.text.startswith("— ") and p.text.endswith(" —")
        xml = p._p.xml
        assert 'w:fldCharType="begin"' in xml and "PAGE" in xml and 'w:fldCharType="end"' in xml
        assert all(r.font.size == Pt(14) and _fonts(r._r)["eastAsia"] == "宋体" for r in p.runs)
    # The font table names a stand-in for each official font.
    with __import__("zipfile").ZipFile(path) as z:
        fonts = z.read("word/fontTable.xml").decode()
    assert 'w:name="仿宋_GB2312"' in fonts and 'w:altName w:val="仿宋"' in fonts
    # The issuing unit and the date at the end.
    tail = [p.text for p in doc.paragraphs if p.text][-2:]
    assert tail == [ISSUER, date_text]
    assert all(p.alignment == WD_ALIGN_PARAGRAPH.RIGHT
               for p in doc.paragraphs[-2:])
    return doc


def test_the_weekly_bulletin(core, tmp_path):
    report = weekly.weekly_report(core, WEEK)
    path = weekly.write_file(core, report, "bulletin.docx", tmp_path)
    doc = assert_official(path, title=report.title, date_text="2026年11月23日")
    texts = [p.text for p in doc.paragraphs]
    assert texts[1] == "第47期" and texts[2].startswith("2026年第47周")
    wb = load_workbook(weekly.write_file(core, report, "bulletin.xlsx", tmp_path))
    for ws in wb.worksheets:
        assert ws["A1"].value == report.title and ws["A1"].font.b
        assert ws["A2"].value.endswith("第47期") and "2026年11月16日" in ws["A2"].value
        assert ws["A3"].value == f"{ISSUER}　2026年11月23日"


def test_the_issue_number_counts_from_the_first_week(core):
    city = core.city
    assert city.bulletin_first_week == IsoWeek(2026, 1)
    assert city.issue_number(IsoWeek(2026, 47)) == 47
    assert city.issue_number(IsoWeek(2027, 2)) == 55
    assert city.issue_number(IsoWeek(2025, 52)) is None
    assert city.issuer == ISSUER
    assert city.check_serial(IsoWeek(2026, 49).monday, 12) == "焦环核〔2026〕0012号"
    assert city.check_serial(2027, 12345) == "焦环核〔2027〕12345号"


def test_the_quarterly_report(core, tmp_path):
    report = programme.quarterly_report(core, Quarter(2020, 3))
    path = programme.write_quarterly(core, report, "docx", tmp_path / "q.docx")
    doc = assert_official(path, title=report.title, date_text="2020年9月25日")
    assert "（统计截至2020年9月30日）" in [p.text for p in doc.paragraphs]
    wb = load_workbook(programme.write_quarterly(core, report, "xlsx", tmp_path / "q.xlsx"))
    assert wb.worksheets[0]["A1"].value == report.title
    assert wb.worksheets[1]["A3"].value == f"{ISSUER}　统计截至2020年9月30日"


def test_the_parcel_report(core, tmp_path):
    ring = [[113.240, 35.220], [113.242, 35.220], [113.242, 35.222], [113.240, 35.222],
            [113.240, 35.220]]
    report = parcels.check_parcel_geojson(
        core, {"type": "Feature", "properties": {"id": "D-1"},
               "geometry": {"type": "Polygon", "coordinates": [ring]}},
        site_type="enterprise")
    path = parcels.write_report_docx(core, report, tmp_path / "p.docx")
    y, m, d = (int(v) for v in report.to_dict()["checked_at"][:10].split("-"))
    assert_official(path, title="项目选址环境合理性预判报告", date_text=f"{y}年{m}月{d}日")


def test_the_emergency_level_list(core, tmp_path):
    path = emergency.write_level(core, "red", tmp_path / "red.docx", "docx")
    stamp = emergency._stamp(core).date()
    assert_official(path, title=emergency.level_title(core, emergency.E.parse_level("red")),
                    date_text=f"{stamp.year}年{stamp.month}月{stamp.day}日")
