"""The weekly bulletin on the embedded Jiaozuo data: golden files, empty weeks, the PNG's
Chinese font, and the web page (viewing, downloads, uploads).

Golden files live in tests/golden/. After a deliberate change to the bulletin, rewrite them
with ``GEOAPP_REGEN_GOLDEN=1 pytest tests/test_weekly.py`` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
WEEK = "2026-W47"
REGEN = os.environ.get("GEOAPP_REGEN_GOLDEN") == "1"


@pytest.fixture(scope="module")
def core(tmp_path_factory, jiaozuo_db):
    from geoapp.config import load_settings
    from geoapp.services import open_geoapp

    from webutil import copy_database

    inst = tmp_path_factory.mktemp("weekly-instance")
    copy_database(jiaozuo_db, inst)
    app = open_geoapp(load_settings(inst, environ={}))
    yield app
    app.repo.close()


@pytest.fixture(scope="module")
def written(core, tmp_path_factory):
    from geoapp.services.weekly import weekly_report, write_weekly

    report = weekly_report(core, WEEK)
    return report, write_weekly(core, report, tmp_path_factory.mktemp("out"))


def _docx_text(path: Path) -> str:
    """Body text of document.xml: paragraphs and table cells, one per line."""
    import docx

    doc = docx.Document(str(path))
    lines = [p.text for p in doc.paragraphs]
    for t in doc.tables:
        lines += ["\t".join(c.text for c in row.cells) for row in t.rows]
    return "\n".join(lines) + "\n"


def _xlsx_values(path: Path) -> dict[str, list[list]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


def _no_stamps(xml: bytes) -> bytes:
    """Metadata timestamps normalised (openpyxl stamps ``modified`` at save time)."""
    return re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\1T", xml)


def _golden(name: str, actual: str) -> str:
    path = GOLDEN / name
    if REGEN:
        path.write_text(actual, encoding="utf-8", newline="\n")
    return path.read_text(encoding="utf-8")


def test_bulletin_text_matches_the_golden_file_byte_for_byte(written):
    _, paths = written
    actual = paths["bulletin.txt"].read_bytes()
    assert actual == _golden("weekly_2026-W47_bulletin.txt", actual.decode("utf-8")).encode()


def test_bulletin_text_lists_counties_by_count_then_every_quiet_county(written):
    report, _ = written
    assert "马村区1件、山阳区1件、武陟县1件、温县1件，解放区、中站区、示范区" in report.text
    assert "本周12369环境热线中心共接到群众投诉35件，比前一周减少9件" in report.text


def test_docx_content_matches_the_golden_file(written):
    _, paths = written
    actual = _docx_text(paths["bulletin.docx"])
    assert actual == _golden("weekly_2026-W47_docx.txt", actual)


def test_xlsx_cells_match_the_golden_file_and_name_every_sheet(written):
    from geoapp.exports.bulletin_xlsx import SHEETS

    _, paths = written
    actual = _xlsx_values(paths["bulletin.xlsx"])
    assert list(actual) == list(SHEETS)
    text = json.dumps(actual, ensure_ascii=False, indent=1) + "\n"
    assert text == _golden("weekly_2026-W47_xlsx.json", text)


def test_same_inputs_give_the_same_files(core, written, tmp_path):
    """Everything but the interactive map's random element ids is byte-identical."""
    from geoapp.services.weekly import weekly_report, write_weekly

    _, first = written
    second = write_weekly(core, weekly_report(core, WEEK), tmp_path)
    for name in ("bulletin.txt", "map.png"):
        assert first[name].read_bytes() == second[name].read_bytes(), name
    for name in ("bulletin.docx", "bulletin.xlsx"):
        with zipfile.ZipFile(first[name]) as a, zipfile.ZipFile(second[name]) as b:
            assert a.namelist() == b.namelist()
            for member in a.namelist():
                assert _no_stamps(a.read(member)) == _no_stamps(b.read(member)), (name, member)
    ids = re.compile(r"[0-9a-f]{32}")
    assert ids.sub("X", first["map.html"].read_text("utf-8")) == \
        ids.sub("X", second["map.html"].read_text("utf-8"))


def test_document_metadata_carries_the_week_not_the_clock(written):
    import docx

    _, paths = written
    props = docx.Document(str(paths["bulletin.docx"])).core_properties
    assert props.created.date().isoformat() == "2026-11-16"


def test_png_has_the_documented_size_and_real_content(written):
    from PIL import Image

    from geoapp.exports.mapimage import HEIGHT_PX, WIDTH_PX

    _, paths = written
    assert paths["map.png"].stat().st_size > 50_000
    with Image.open(paths["map.png"]) as im:
        assert im.size == (WIDTH_PX, HEIGHT_PX)
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000)
    assert len(colours) > 50  # not a blank canvas


def test_cjk_font_comes_from_the_install_and_has_the_glyphs(tmp_path):
    """matplotlib resolves the packaged font file and draws Chinese with real glyphs; with
    filterwarnings=error a 'Glyph missing' fallback would fail this test."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ft2font import FT2Font

    from geoapp.exports.fonts import cjk_font_path, cjk_font_properties, register_cjk_font

    path = cjk_font_path()
    assert "mplfonts" in str(path)
    assert register_cjk_font().startswith("Noto Sans CJK")
    from matplotlib import font_manager

    # The exports name the file itself, so a system font of the same family cannot stand in.
    assert Path(font_manager.findfont(cjk_font_properties(9))) == path
    text = "焦作市温县热点网格"
    font = FT2Font(str(path))
    assert all(font.get_char_index(ord(ch)) != 0 for ch in text)
    dejavu = FT2Font(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"))
    assert dejavu.get_char_index(ord("焦")) == 0  # the default font would draw tofu
    fig = Figure(figsize=(3, 1), dpi=100)
    FigureCanvasAgg(fig)
    fig.text(0.1, 0.5, text, fontproperties=cjk_font_properties(12))
    fig.savefig(tmp_path / "t.png")


def test_week_without_warnings_or_complaints_is_a_valid_report(core, tmp_path):
    from geoapp.services.weekly import weekly_report, write_weekly

    report = weekly_report(core, "2026-W20")
    assert report.warnings_total == 0 and report.complaints_total == 0
    assert "全市热点网格均未产生预警信息" in report.text
    assert "本周12369环境热线中心未接到群众投诉" in report.text
    paths = write_weekly(core, report, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert report.enterprises.empty and report.history.empty


def test_report_on_files_without_importing_them(core, tmp_path):
    from geoapp.services import events
    from geoapp.services.weekly import weekly_report

    w = tmp_path / "w.csv"
    w.write_text("grid_code,warned_at,pollutant,value\nJZ3K-0052,2026-11-16T08:00,PM2.5,140\n"
                 "JZ3K-0052,2026-11-17T08:00,PM10,210\nJZ3K-0001,2026-11-18T08:00,O3,\n",
                 encoding="utf-8")
    c = tmp_path / "c.csv"
    c.write_text("received_at,category,district\n2026-11-16T09:00,noise,温县\n"
                 "2026-11-17T09:00,大气,温县\n2026-11-18T09:00,air,温县\n", encoding="utf-8")
    before = len(core.repo.table("grid_warnings"))
    report = weekly_report(core, WEEK, warnings=events.load_events(core, "warnings", w),
                           complaints=events.load_events(core, "complaints", c))
    assert report.warnings_total == 3
    assert report.per_grid.iloc[0]["code"] == "JZ3K-0052"
    assert report.per_grid.iloc[0]["count"] == 2
    assert "大气污染投诉2件，占总投诉量的67%；噪声污染投诉1件，占总投诉量的33%" in report.text
    assert len(core.repo.table("grid_warnings")) == before


def test_enterprises_inside_warned_grids_come_with_their_classification(written):
    report, _ = written
    e = report.enterprises
    assert list(e["id"]) == ["E0057"]
    assert e.iloc[0]["grid_code"] == "JZ3K-0052" and e.iloc[0]["classification"] == "退二进三"


def test_consecutive_weeks_and_eight_week_history(written):
    report, _ = written
    streaks = dict(zip(report.consecutive["code"], report.consecutive["streak"], strict=True))
    assert streaks["JZ3K-0009"] == 3 and streaks["JZ3K-0052"] == 2
    row = report.history.set_index("code").loc["JZ3K-0009"]
    assert list(row.index)[0] == "2026-W40" and list(row)[-3:] == [1, 1, 1]


# ------------------------------------------------------------------------------ web
@pytest.fixture
def client_app(instance):
    from geoapp.web import create_app

    from webutil import make_users

    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TILES": "none",
                      "TESTING": True})
    make_users(app)
    return app


def test_weekly_page_shows_text_tables_and_download_links(client_app):
    from webutil import login

    c = client_app.test_client()
    login(c, "viewer")
    html = c.get(f"/weekly?week={WEEK}").get_data(as_text=True)
    assert "全市共有4个（次）热点网格产生预警信息" in html
    assert "焦作市银河热电股份有限公司" in html and 'id="wk-history"' in html
    for name in ("map.html", "bulletin.docx", "bulletin.xlsx", "map.png"):
        assert f"/weekly/{WEEK}/{name}" in html
    assert "cdn.jsdelivr" not in html
    assert 'name="file"' not in html  # viewers get no upload form


def test_weekly_downloads_and_zip(client_app):
    from webutil import login

    c = client_app.test_client()
    login(c, "viewer")
    r = c.get(f"/weekly/{WEEK}/bulletin.xlsx")
    assert r.status_code == 200 and r.data[:2] == b"PK"
    assert "attachment" in r.headers["Content-Disposition"]
    r = c.get(f"/weekly/{WEEK}.zip")
    names = zipfile.ZipFile(io.BytesIO(r.data)).namelist()
    assert sorted(names) == sorted(f"{WEEK}/{n}" for n in (
        "bulletin.txt", "map.html", "map.png", "bulletin.docx", "bulletin.xlsx"))


@pytest.mark.parametrize("url, status", [("/weekly?week=2026-47", 400),
                                         ("/weekly/2026-W60/map.png", 400),
                                         (f"/weekly/{WEEK}/secret.txt", 404)])
def test_bad_week_or_file_name_is_a_clear_client_error(client_app, url, status):
    from webutil import login

    c = client_app.test_client()
    login(c, "viewer")
    assert c.get(url).status_code == status


def test_viewer_cannot_upload(client_app):
    from webutil import login

    c = client_app.test_client()
    token = login(c, "viewer")
    r = c.post("/weekly/import", data={"kind": "warnings", "csrf_token": token,
                                       "file": (io.BytesIO(b"x"), "w.csv")},
               content_type="multipart/form-data")
    assert r.status_code == 403


def test_planner_upload_of_a_bad_file_lists_rows_and_imports_nothing(client_app):
    from webutil import login

    core = client_app.extensions["geoapp"]
    before = len(core.repo.table("grid_warnings"))
    c = client_app.test_client()
    token = login(c, "planner")
    body = (b"grid_code,warned_at,pollutant\nJZ3K-0001,2026-11-20T10:00,PM10\n"
            b"JZ9-NOPE,2026-11-20T11:00,PM10\n")
    r = c.post("/weekly/import", data={"kind": "warnings", "week": WEEK, "csrf_token": token,
                                       "file": (io.BytesIO(body), "w.csv")},
               content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "JZ9-NOPE" in html and "<td>3</td>" in html
    assert len(core.repo.table("grid_warnings")) == before


def test_planner_upload_of_a_good_file_changes_the_bulletin(client_app):
    from webutil import login

    c = client_app.test_client()
    token = login(c, "planner")
    body = b"grid_code,warned_at,pollutant\nJZ3K-0001,2026-11-20T10:00,PM10\n"
    r = c.post("/weekly/import", data={"kind": "warnings", "week": WEEK, "csrf_token": token,
                                       "file": (io.BytesIO(body), "w.csv")},
               content_type="multipart/form-data")
    assert r.status_code == 302
    html = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "全市共有5个（次）热点网格产生预警信息" in html and "已导入 1 条记录" in html
