"""One way in for data: one column vocabulary, one China box, one validation pipeline with
one problem-report type, and messages from one catalogue."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from catalogue import english, has_chinese
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from geoapp.config import load_settings
from geoapp.domain import ledger as L
from geoapp.domain.errors import CoordinateError, Problem, ValidationFailed
from geoapp.domain.fields import FIELDS, field_for, header, label, ledger_header
from geoapp.domain.messages import Text
from geoapp.services import inspection, open_geoapp, progress, relocation
from geoapp.services.events import load_events
from geoapp.services.ledger import export_ledger, import_ledger
from geoapp.spatial.crs import CHINA_LAT, CHINA_LON, in_china, parse_point
from geoapp.storage.sources import SITE_COLUMNS, convert_frame, load_city, read_sites
from geoapp.web import create_app

from tinycity import TINY_SITES, write_csv
from webutil import login, make_users

PKG = Path(__file__).resolve().parent.parent / "geoapp"
PO = PKG / "translations" / "en" / "LC_MESSAGES" / "messages.po"
FIRST_DATA_ROW = 5
PROGRESS = [c.field for c in L.PROGRESS_COLUMNS]


@pytest.fixture
def core(instance: Path):
    app = open_geoapp(load_settings(instance, environ={}))
    yield app
    app.repo.close()


# ------------------------------------------------------------------ one China box
def _loader_accepts(lon: float, lat: float) -> bool:
    raw = pd.DataFrame({"lon": [repr(lon)], "lat": [repr(lat)]})
    kinds = {c: SITE_COLUMNS["enterprise"][c] for c in ("lon", "lat")}
    return convert_frame(raw, kinds, "sites.csv")[1] == []


def _check_accepts(lon: float, lat: float) -> bool:
    try:
        parse_point(lon, lat, "wgs84")
    except CoordinateError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.floats(60.0, 150.0), st.floats(-10.0, 70.0))
def test_a_point_the_source_loader_accepts_the_inspector_check_accepts_and_back(lon, lat):
    assert _loader_accepts(lon, lat) == _check_accepts(lon, lat) == bool(in_china(lon, lat))


@pytest.mark.parametrize(("place", "lon", "lat", "inside"), [
    ("焦作", 113.24, 35.2, True),
    ("永兴岛 (三沙)", 112.34, 16.83, True),   # refused by the old 18°N box of the check
    ("曾母暗沙", 112.28, 3.97, True),
    ("漠河", 122.53, 53.48, True),
    ("south of the box", 112.28, 2.5, False),
    ("north of the box", 122.5, 55.0, False),
    ("the loader's old 136°E", 135.5, 48.0, False),
])
def test_the_box_is_generous_and_the_same_everywhere(place, lon, lat, inside):
    assert _loader_accepts(lon, lat) is inside, place
    assert _check_accepts(lon, lat) is inside, place
    assert CHINA_LON == (73.0, 135.1) and CHINA_LAT == (3.5, 53.6)


def test_no_other_module_writes_the_box():
    box = re.compile(r"53\.6|\b135\.1\b|\b3\.5\b.*\blat|CHINA_LAT\s*=|CHINA_LON\s*=")
    offenders = [str(f.relative_to(PKG)) for f in PKG.rglob("*.py")
                 if f.name != "crs.py" and box.search(f.read_text(encoding="utf-8"))]
    assert offenders == []


# ------------------------------------------------------------------ one vocabulary
def test_every_writer_and_form_uses_the_vocabularys_header():
    for name, text in progress.PROGRESS_FIELDS:
        assert text == label(name)
    for table in (inspection.LEDGER_LABELS, inspection.FARM_LABELS,
                  inspection.WORKSHOP_LABELS, inspection.COMMON_LABELS):
        assert all(text == label(name) for name, text in table)
    for name, text in relocation.LEDGER_COLUMNS:
        assert text == ledger_header(name.removesuffix("_zh"))
    for col in (*L.LEDGER_COLUMNS, *L.LOCATION_COLUMNS, *L.PROGRESS_COLUMNS, *L.HIT_COLUMNS):
        assert col.header == ledger_header(col.field)
    assert header("stage") == "进度阶段" and ledger_header("credit_code") == \
        "工商营业执照（统一社会信用代码）"


def test_each_header_names_one_field_and_the_old_spellings_still_read():
    owners: dict[str, str] = {}
    for f in FIELDS.values():
        assert owners.setdefault(f.zh, f.name) == f.name, f.zh  # no header written twice
    assert field_for("进度阶段") == field_for("进展阶段") == "stage"
    assert field_for("实际启动日期") == "actual_start" and field_for("畜种") == "species"
    assert field_for("工商营业执照(统一社会信用代码)") == "credit_code"
    assert field_for("进展情况") == "progress"


def test_the_relocation_ledger_writes_the_one_stage_header():
    headers = dict(relocation.LEDGER_COLUMNS)
    assert headers["stage_zh"] == "进度阶段" and "进展阶段" not in headers.values()


def _stored(core) -> dict[str, dict]:
    df = core.repo.sites("enterprise").drop(columns="geometry")
    df = df.astype(object).where(df.notna(), None)
    keep = [c.field for c in L.LEDGER_COLUMNS] + ["lon", "lat", *PROGRESS]
    return {r["id"]: {k: r[k] for k in keep} for r in df.to_dict("records")}


def _headers(ws) -> dict[str, int]:
    out = {}
    for row in (3, 4):
        for cell in ws[row]:
            if cell.value and cell.value not in out:
                out[cell.value] = cell.column
    return out


def test_a_ledger_the_app_wrote_with_its_progress_columns_reads_back(core, tmp_path):
    before = _stored(core)
    export_ledger(core, tmp_path / "p.xlsx", with_progress=True, filled_on=dt.date(2026, 1, 2))
    ws = load_workbook(tmp_path / "p.xlsx").active
    assert {"进度阶段", "实际启动", "新址经度", "挂牌出让（亩）"} <= set(_headers(ws))
    report = import_ledger(core, tmp_path / "p.xlsx", user="planner1")
    assert (report["created"], report["updated"]) == (0, len(before))
    assert _stored(core) == before


@pytest.mark.parametrize("spelling", ["进度阶段", "进展阶段"])
def test_both_spellings_of_the_stage_header_import(core, tmp_path, spelling):
    export_ledger(core, tmp_path / "p.xlsx", with_progress=True)
    wb = load_workbook(tmp_path / "p.xlsx")
    ws = wb.active
    cols = _headers(ws)
    ws.cell(row=4, column=cols["进度阶段"], value=spelling)
    sid_row = next(r for r in range(FIRST_DATA_ROW, ws.max_row + 1)
                   if ws.cell(row=r, column=cols["进度阶段"]).value == "未启动")
    name = ws.cell(row=sid_row, column=cols["企业名称"]).value
    ws.cell(row=sid_row, column=cols["进度阶段"], value="已启动")
    ws.cell(row=sid_row, column=cols["实际启动"], value="2026-03-01")
    wb.save(tmp_path / "q.xlsx")
    import_ledger(core, tmp_path / "q.xlsx", user="planner1")
    site = core.repo.sites("enterprise", columns=["name", "stage", "actual_start"])
    row = site[site["name"] == name].iloc[0]
    assert (row["stage"], row["actual_start"]) == ("started", "2026-03-01")


def test_the_ledger_import_asks_the_progress_forms_questions(core, tmp_path):
    export_ledger(core, tmp_path / "p.xlsx", with_progress=True)
    wb = load_workbook(tmp_path / "p.xlsx")
    ws = wb.active
    cols = _headers(ws)
    ws.cell(row=FIRST_DATA_ROW, column=cols["实际启动"], value="2026-05-01")
    ws.cell(row=FIRST_DATA_ROW, column=cols["实际完成"], value="2026-04-01")
    ws.cell(row=FIRST_DATA_ROW + 1, column=cols["进度阶段"], value="停工")
    wb.save(tmp_path / "bad.xlsx")
    before = _stored(core)
    with pytest.raises(ValidationFailed) as err:
        import_ledger(core, tmp_path / "bad.xlsx", user="t")
    got = {(p.row, p.column) for p in err.value.details}
    assert {(FIRST_DATA_ROW, "实际完成"), (FIRST_DATA_ROW + 1, "进度阶段")} <= got
    assert _stored(core) == before


# ------------------------------------------------------------------ one problem type
def test_every_reader_reports_problems_of_one_type(core, tmp_path):
    raw = pd.DataFrame({"id": ["F1"], "district": ["火星区"], "lon": ["113.2"], "lat": [""]})
    kinds = {c: SITE_COLUMNS["livestock_farm"][c] for c in raw.columns}
    _, problems = convert_frame(raw, kinds, "f.csv", core.city)
    assert problems and all(isinstance(p, Problem) for p in problems)
    assert {p.column for p in problems} == {"district", "lat", "lon/lat"}
    path = tmp_path / "w.csv"
    path.write_text("网格编号,预警时间,污染物\nNOPE,2026-11-23T10:00,PM10\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as err:  # the vocabulary's headers read too
        load_events(core, "warnings", path)
    [p] = err.value.details
    assert isinstance(p, Problem) and (p.row, p.column, p.value) == (2, "grid_code", "NOPE")
    assert p.to_dict() == {"file": "w.csv", "row": 2, "column": "grid_code", "value": "NOPE",
                           "message": "未知的热点网格编号"}
    assert p["row"] == 2 and p.get("feature") is None  # reads like the dicts it replaced


def test_problem_json_leaves_out_what_does_not_apply_and_speaks_the_language():
    p = Problem(layer="rivers", file="r.geojson", feature=3, id="r1",
                message=Text("编号重复"))
    assert p.to_dict() == {"file": "r.geojson", "feature": 3, "id": "r1", "layer": "rivers",
                           "message": "编号重复"}
    err = ValidationFailed(Text("图层 %(layer)s 有问题", layer="rivers"), details=[p])
    assert err.to_dict()["details"] == [p.to_dict()]
    assert english(p.message) == "duplicate id"


# ------------------------------------------------------------------ one catalogue
def _bad_dates(core) -> list[Problem]:
    sid = str(core.repo.sites("enterprise", stage="started")["id"].iloc[0])
    form = progress.form_values(core.repo.site(sid))
    form.update(actual_start="2026-05-01", actual_completion="2026-04-01")
    with pytest.raises(ValidationFailed) as err:
        progress.validate(core, form)
    return list(err.value.details)


def test_the_progress_error_is_all_chinese_or_all_english(core):
    [p] = [p for p in _bad_dates(core) if p.field == "actual_completion"]
    zh = str.__str__(p.message)
    assert zh == "早于实际启动日期" and not re.search(r"[A-Za-z]", zh)
    en = english(p.message)
    assert en == "is before the actual start" and not has_chinese(en)
    assert english(p.label) == "Actual completion" and str.__str__(p.label) == "实际完成"


def test_the_progress_page_shows_the_error_in_the_pages_language(instance):
    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TESTING": True,
                      "TILES": "none"})
    make_users(app)
    core = app.extensions["geoapp"]
    sid = str(core.repo.sites("enterprise", stage="started")["id"].iloc[0])
    for lang, wanted, unwanted in (("zh", "早于实际启动日期", "is before"),
                                   ("en", "is before the actual start", "早于实际启动日期")):
        client = app.test_client()
        token = login(client, "planner")
        client.get(f"/sites/{sid}?lang={lang}")
        form = progress.form_values(core.repo.site(sid))
        form.update(csrf_token=token, actual_start="2026-05-01",
                    actual_completion="2026-04-01")
        r = client.post(f"/sites/{sid}/progress", data=form)
        page = r.get_data(as_text=True)
        assert r.status_code == 400 and wanted in page and unwanted not in page, lang


def _catalogue_ids() -> set[str]:
    with PO.open("rb") as f:
        return {m.id for m in read_po(f, locale="en") if m.id and m.string}


def _users_of_the_catalogue() -> list[Path]:
    out = []
    for f in PKG.rglob("*.py"):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.ImportFrom) and n.module == "geoapp.domain.messages"
               and any(a.name == "Text" for a in n.names) for n in ast.walk(tree)):
            out.append(f)
    return out


def test_every_catalogue_message_below_the_web_has_its_english():
    have = _catalogue_ids()
    files = _users_of_the_catalogue()
    assert len(files) >= 10
    missing = []
    for f in files:
        for _, msg, _, _ in extract_from_file("python", str(f), keywords={"_l": None}):
            msgid = msg[0] if isinstance(msg, tuple) else msg
            if msgid not in have:
                missing.append((f.name, msgid))
    assert missing == [], "add these to messages.po and run scripts/i18n.sh compile"


def _strings(path: Path) -> list[str]:
    """String literals of a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in docs]


def test_no_validation_message_glues_two_languages():
    """A message that says it in Chinese and again in English (“实际完成：早于实际启动 is
    before actual_start”) is what the catalogue replaced."""
    glued = re.compile(r"[\u4e00-\u9fff][^A-Za-z]*\b[A-Za-z]{2,} [a-z]{2,} [a-z]{2,}")
    owned = ["domain/ledger.py", "domain/creditcode.py", "spatial/crs.py", "storage/sources.py",
             "storage/sites.py", "storage/tables_in.py", "storage/vector_in.py",
             "services/ledger.py", "services/events.py", "services/progress.py",
             "services/interchange.py", "services/layer_import.py", "exports/ledger_xlsx.py"]
    found = [(name, text) for name in owned for text in _strings(PKG / name)
             if glued.search(text)]
    assert found == []


def test_no_service_or_store_message_says_it_twice():
    """Services and stores raise catalogue messages, not Chinese glued to English (“不是散乱污
    作坊 is not a scattered workshop”): any string with Chinese in it has no two English words
    in a row once its placeholders are left out."""
    placeholder = re.compile(r"%\(\w+\)s|\{[^}]*\}")
    two_words = re.compile(r"\b[A-Za-z]{2,} [A-Za-z]{2,}\b")
    modules = ["services/accounts.py", "services/inspection.py", "services/relocation.py",
               "services/workshops.py", "storage/accounts.py", "storage/gpkg.py"]
    found = [(name, text) for name in modules for text in _strings(PKG / name)
             if has_chinese(text) and two_words.search(placeholder.sub("", text))]
    assert found == []


def test_source_files_may_name_their_columns_by_the_chinese_headers(tiny_data_dir):
    path = tiny_data_dir / "sites" / "livestock_farms.csv"
    rows = [dict(r) for r in TINY_SITES["livestock_farms.csv"]]
    chinese = [{header(k): v for k, v in r.items()} for r in rows]
    write_csv(path, chinese)
    sites = read_sites(tiny_data_dir, load_city(tiny_data_dir)).set_index("id")
    assert sites.loc[rows[0]["id"], "name"] == rows[0]["name"]
    assert "名称" not in sites.columns
