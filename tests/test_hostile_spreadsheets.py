"""Hostile and broken spreadsheets (CSV/XLSX) on every route that reads one.

Each web case asserts a clear 4xx (Chinese first), no temp path or file content in the
answer, and an unchanged database: the newest audit id and the row counts of the sites, the
hits and both event tables. The bombs also assert the refusal is cheap: under a second and
under 50 MB of Python allocations (tracemalloc), because the limits are judged from the zip
directory, the sheet's dimension or a stream that stops at the limit, never after a parse.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import time
import tracemalloc
import zipfile
from pathlib import Path

import openpyxl
import pytest
from catalogue import english, raises_english
from click.testing import CliRunner
from defusedxml import DefusedXmlException
from openpyxl.reader import excel
from openpyxl.xml.functions import fromstring, iterparse

from geoapp.cli import main
from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.services.events import validate_complaints
from geoapp.services.ledger import export_ledger
from geoapp.storage import tables_in
from geoapp.storage.tables_in import Limits, read_frame, read_grid

from webutil import login

BOMB_ROWS = 1_048_000
MAX_SECONDS = 1.0
MAX_BYTES = 50 * 2**20
SECRET = "TOP-SECRET-MARKER-4711"


# ------------------------------------------------------------------ apps and state
@pytest.fixture(scope="module")
def ro_app(make_module_app):
    """One app (MAX_ROWS 50, 1 MB uploads) for the cases that must not write."""
    return make_module_app(INTRANET=True, TILES="none", MAX_UPLOAD_MB=1, MAX_ROWS=50)


@pytest.fixture(scope="module")
def planner(ro_app):
    client = ro_app.test_client()
    token = login(client, "planner")
    # the weekly page answers a refused import with its map: build that once, untimed
    assert client.get("/weekly?week=2026-W48").status_code == 200
    return client, token


def core(app):
    return app.extensions["geoapp"]


def state(app) -> tuple:
    repo = core(app).repo
    return (repo.last_change_id(), len(repo.sites()), len(repo.site_hits()),
            len(repo.table("grid_warnings")), len(repo.table("complaints")))


# ------------------------------------------------------------------ building files
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
_SHEET_HEAD = '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


_SST_TYPE = ('<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
             'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')
_SST_REL = ('<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/sharedStrings" Target="sharedStrings.xml"/>')
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def raw_xlsx(sheet_chunks, *, prolog: str = "", prefix: str = "", shared=None,
             padding: int = 0) -> bytes:
    """A minimal XLSX whose sheet XML is written from ``sheet_chunks`` (streamed, deflated);
    ``prefix`` (``"x:"``) writes the root element with a namespace prefix, ``shared`` the
    chunks of a shared strings part, ``padding`` adds that many random bytes stored."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        types, rels = _CONTENT_TYPES, _WORKBOOK_RELS
        if shared is not None:
            types = types.replace("</Types>", _SST_TYPE + "</Types>")
            rels = rels.replace("</Relationships>", _SST_REL + "</Relationships>")
        zf.writestr("[Content_Types].xml", types)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", rels)
        head = (f'<{prefix}worksheet xmlns:{prefix[:-1]}="{_MAIN}">' if prefix
                else _SHEET_HEAD)
        with zf.open("xl/worksheets/sheet1.xml", "w") as f:
            f.write((prolog + head).encode())
            for chunk in sheet_chunks:
                f.write(chunk.encode())
            f.write(f"</{prefix}worksheet>".encode())
        if shared is not None:
            with zf.open("xl/sharedStrings.xml", "w") as f:
                for chunk in shared:
                    f.write(chunk.encode())
        if padding:
            zf.writestr(zipfile.ZipInfo("xl/media/image1.png"), os.urandom(padding),
                        compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def bomb(rows: int = BOMB_ROWS, *, dimension: bool = True, ref: str | None = None,
         row: str = "<row><c><v>1</v></c></row>", prefix: str = "", padding: int = 0
         ) -> bytes:
    """A header (lon, lat) and ``rows`` tiny identical rows: ~25 MB of sheet XML, ~100 KB
    packed. ``ref`` is a dimension to declare instead of the true one."""
    def chunks():
        if dimension or ref:
            yield f'<{prefix}dimension ref="{ref or f"A1:B{rows + 1}"}"/>'
        yield (f'<{prefix}sheetData><{prefix}row r="1"><{prefix}c r="A1" t="inlineStr">'
               f'<{prefix}is><{prefix}t>lon</{prefix}t></{prefix}is></{prefix}c>'
               f'<{prefix}c r="B1" t="inlineStr"><{prefix}is><{prefix}t>lat</{prefix}t>'
               f'</{prefix}is></{prefix}c></{prefix}row>')
        step = 10_000  # rows and cells may omit their numbers
        for start in range(0, rows, step):
            yield row * min(step, rows - start)
        yield f"</{prefix}sheetData>"
    return raw_xlsx(chunks(), prefix=prefix, padding=padding)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {"dimension": bomb(), "no_dimension": bomb(dimension=False)}


def xxe_xlsx(secret: Path) -> bytes:
    """A sheet whose DTD declares an external entity reading ``secret``, used in a cell."""
    prolog = (f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE worksheet [<!ENTITY xxe '
              f'SYSTEM "{secret.as_uri()}">]>\n')
    return raw_xlsx(['<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>grid_code</t></is>'
                     '</c></row><row r="2"><c r="A2" t="inlineStr"><is><t>&xxe;</t></is></c>'
                     '</row></sheetData>'], prolog=prolog)


def workbook(rows: list[list], path: Path | None = None) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    if path is not None:
        path.write_bytes(buf.getvalue())
    return buf.getvalue()


def measured(fn):
    """``fn()``'s result (or exception), the CPU seconds this thread spent on it (what the
    work costs, whatever else the machine runs meanwhile) and the peak traced allocation in
    bytes."""
    tracemalloc.start()
    t0 = time.thread_time()
    try:
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - the caller asserts on it
            out = exc
        seconds = time.thread_time() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, seconds, peak


# ------------------------------------------------------------------ posting uploads
def post_flag(client, token, data: bytes, filename: str, **fields):
    return client.post("/api/flag", data={"file": (io.BytesIO(data), filename), **fields},
                       content_type="multipart/form-data", headers={"X-CSRFToken": token})


def post_weekly(client, token, data: bytes, filename: str, kind: str = "warnings"):
    return client.post("/weekly/import", data={"csrf_token": token, "kind": kind,
                                               "week": "2026-W48",
                                               "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def post_ledger(client, token, data: bytes, filename: str = "ledger.xlsx"):
    return client.post("/ledger/import", data={"csrf_token": token,
                                               "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


POSTS = {"flag": post_flag, "weekly": post_weekly, "ledger": post_ledger}


def text_of(r) -> str:
    return r.json["message"] if r.is_json else r.get_data(as_text=True)


# ------------------------------------------------------------------ 1. bombs
@pytest.mark.parametrize("route", list(POSTS))
@pytest.mark.parametrize("variant", ["dimension", "no_dimension"])
def test_million_row_bomb_is_refused_fast_and_small(ro_app, planner, bombs, route, variant):
    client, token = planner
    data = bombs[variant]
    assert len(data) < 400_000  # a small upload...
    before = state(ro_app)
    r, seconds, peak = measured(lambda: POSTS[route](client, token, data, "bomb.xlsx"))
    assert 400 <= r.status_code < 500, text_of(r)[:300]
    body = text_of(r)
    assert "XLSX" in body and "bomb.xlsx" in body and "/tmp" not in body
    assert seconds < MAX_SECONDS, f"{route}: {seconds:.2f} s"
    assert peak < MAX_BYTES, f"{route}: {peak / 2**20:.1f} MB"
    assert state(ro_app) == before


@pytest.mark.parametrize("variant", ["dimension", "no_dimension"])
def test_bomb_past_the_zip_checks_is_stopped_by_dimension_or_stream(tmp_path, bombs, variant):
    """Without the ratio check (as on a command line with --max-rows), the sheet's dimension
    or the streaming count refuses it, still in well under a second and 50 MB."""
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(bombs[variant])
    limits = Limits(max_rows=50, rows_named="--max-rows")
    err, seconds, peak = measured(lambda: read_frame(path, name="bomb.xlsx", limits=limits))
    assert isinstance(err, InvalidInput), err
    assert err.message.startswith("文件行数超过上限") and "--max-rows" in err.message
    assert ("declares 1,048,001 rows" in english(err.message)) == (variant == "dimension")
    assert seconds < MAX_SECONDS and peak < MAX_BYTES, (seconds, peak / 2**20)


def test_the_zip_directory_refuses_the_bomb_before_the_sheet(tmp_path, bombs):
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(bombs["no_dimension"])
    with raises_english(InvalidInput, "zip bomb"):
        read_grid(path, limits=Limits.server(max_rows=200_000, max_upload_mb=50))
    with raises_english(InvalidInput, "MB once unpacked"):
        read_grid(path, limits=Limits(max_unpacked=2**20))


def test_big_csv_is_refused_without_building_the_frame(ro_app, planner):
    client, token = planner
    data = ("lon,lat\n" + "113.2,35.2\n" * 40_000).encode()  # 440 KB: kept in memory
    before = state(ro_app)
    r, seconds, peak = measured(lambda: post_flag(client, token, data, "many.csv"))
    assert r.status_code == 400 and "有 40000 行" in r.json["message"]
    assert "MAX_ROWS" in r.json["message"] and r.json["message"].startswith("文件行数超过上限")
    assert seconds < MAX_SECONDS and peak < MAX_BYTES, (seconds, peak / 2**20)
    assert state(ro_app) == before


# ------------------------------------------------------------------ 2. unreadable files
def test_16384_columns_is_a_clear_400_naming_the_column(ro_app, planner):
    client, token = planner
    wide = workbook([["lon", "lat"] + [None] * 16_381 + ["x"], [113.2, 35.2]])
    before = state(ro_app)
    r = post_flag(client, token, wide, "wide.xlsx")
    assert r.status_code == 400
    assert r.json["message"].startswith("文件列数超过上限") and "16,384 列" in r.json["message"]
    assert r.json["details"][0]["column"] == "XFD"
    assert state(ro_app) == before


def test_wide_row_without_a_dimension_is_refused_while_streaming(tmp_path):
    path = tmp_path / "w.xlsx"
    path.write_bytes(raw_xlsx(['<sheetData><row r="1"><c r="A1"><v>1</v></c>'
                               '<c r="XFD1"><v>2</v></c></row></sheetData>']))
    with raises_english(ValidationFailed, "16,384 columns") as err:
        read_grid(path, limits=Limits(max_columns=200))
    assert err.value.details[0]["row"] == 1


@pytest.mark.parametrize("route", ["weekly", "flag", "ledger"])
@pytest.mark.parametrize("case", ["not_zip", "empty", "xxe"])
def test_not_a_workbook_empty_and_xxe_are_clear_400s(ro_app, planner, tmp_path, route, case):
    client, token = planner
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    data = {"not_zip": b"grid_code,warned_at\nJZ,2026\n", "empty": b"",
            "xxe": xxe_xlsx(secret)}[case]
    before = state(ro_app)
    r = POSTS[route](client, token, data, "upload.xlsx")
    assert r.status_code == 400, text_of(r)[:300]
    body = text_of(r)
    assert SECRET not in body and str(tmp_path) not in body and "Traceback" not in body
    assert {"not_zip": "无法读取此 XLSX 文件", "empty": "文件为空",
            "xxe": "DTD"}[case] in body
    assert state(ro_app) == before


def test_xxe_entity_is_never_expanded(tmp_path):
    """openpyxl reads workbook XML through defusedxml (a dependency), and the shared reader
    refuses any DTD before openpyxl sees the file."""
    assert openpyxl.DEFUSEDXML is True
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    path = tmp_path / "x.xlsx"
    path.write_bytes(xxe_xlsx(secret))
    with raises_english(ValidationFailed, "DTD") as err:
        read_grid(path)
    assert SECRET not in err.value.message

    with zipfile.ZipFile(path) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    with pytest.raises(DefusedXmlException):
        list(iterparse(io.BytesIO(sheet)))
    try:  # workbook parts: lxml without entity resolution, or defusedxml
        root = fromstring(sheet)
    except DefusedXmlException:
        pass
    else:
        assert SECRET not in "".join(root.itertext())


def test_damaged_zip_and_bad_csv_messages_hold_no_library_text(tmp_path):
    path = tmp_path / "d.xlsx"
    good = workbook([["a"], [1]])
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(InvalidInput) as err:
        read_frame(path, name="上传.xlsx")
    assert err.value.message.startswith("无法读取此 XLSX 文件") and "上传.xlsx" in err.value.message
    assert "zipfile" not in err.value.message and str(tmp_path) not in err.value.message
    gbk = tmp_path / "g.csv"
    gbk.write_bytes("名称,lon\n焦作,113\n".encode("gbk"))
    with pytest.raises(InvalidInput) as err:
        read_frame(gbk, name="g.csv")
    assert err.value.message.startswith("文件不是 UTF-8 编码") and "codec" not in err.value.message


# ------------------------------------------------------------------ 3. formulas
def test_formula_without_cached_value_is_reported_by_row_and_column(ro_app, planner):
    client, token = planner
    rows = [["grid_code", "warned_at", "pollutant", "value"]]
    rows += [[f"JZ3K-000{i}", f"2026-11-2{i}T10:00", "PM2.5", 100 + i] for i in range(1, 4)]
    rows += [["JZ3K-0004", "2026-11-25T10:00", "=\"PM\"&\"10\"", 80]]  # row 5, column C
    data = workbook(rows)
    before = state(ro_app)
    r = post_weekly(client, token, data, "w.xlsx")
    assert r.status_code == 400
    assert "公式单元格没有计算结果" in r.get_data(as_text=True)
    assert "第 5 行 C 列" in r.get_data(as_text=True)
    r = post_flag(client, token, workbook([["lon", "lat"], [113.2, 35.2], [113.2, "=35+0.2"]]),
                  "f.xlsx")
    assert r.status_code == 400
    assert [(d["row"], d["column"]) for d in r.json["details"]] == [(3, "B")]
    assert "用 Excel 打开并保存" in r.json["details"][0]["message"]
    assert state(ro_app) == before


def test_formula_in_a_ledger_is_reported_not_dropped(ro_app, planner, tmp_path):
    client, token = planner
    export_ledger(core(ro_app), tmp_path / "l.xlsx", district="温县")  # under MAX_ROWS
    wb = openpyxl.load_workbook(tmp_path / "l.xlsx")
    wb.active["C7"] = "=B7&\"厂\""
    wb.save(tmp_path / "l.xlsx")
    before = state(ro_app)
    r = post_ledger(client, token, (tmp_path / "l.xlsx").read_bytes())
    assert r.status_code == 400
    assert "公式没有计算结果" in r.get_data(as_text=True)
    assert re.search(r">7</td>\s*<td>C</td>", r.get_data(as_text=True))  # row 7, column C
    assert state(ro_app) == before


def test_formula_with_a_cached_value_or_an_empty_result_is_read(tmp_path):
    """What Excel writes: cached results are read, an empty-string result is an empty cell."""
    path = tmp_path / "c.xlsx"
    path.write_bytes(raw_xlsx([
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>b</t></is></c></row>'
        '<row r="2"><c r="A2"><f>1+1</f><v>2</v></c><c r="B2" t="str"><f>""</f><v></v></c></row>'
        '</sheetData>']))
    df = read_frame(path)
    assert df.to_dict("records") == [{"a": "2", "b": ""}]


# ------------------------------------------------------------------ 4. duplicates
def test_the_same_warning_twice_in_one_file_is_rejected_with_both_rows(ro_app, planner):
    client, token = planner
    data = (b"grid_code,warned_at,pollutant,value\n"
            b"JZ3K-0001,2026-11-23T10:00,PM2.5,120\n"
            b"JZ3K-0002,2026-11-23T11:00,PM10,80\n"
            b"JZ3K-0001,2026-11-23T10:00,pm2.5,120\n")
    before = state(ro_app)
    r = post_weekly(client, token, data, "dup.csv")
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "与第 2 行是同一条预警" in page
    assert state(ro_app) == before


def test_the_same_complaint_twice_names_the_first_row(ro_app, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("received_at,category,summary\n"
                    "2026-11-23T10:00,大气,烟\n2026-11-23T10:00,大气,烟\n", encoding="utf-8")
    raw = read_frame(path)
    with pytest.raises(ValidationFailed) as err:
        validate_complaints(core(ro_app), raw, "c.csv")
    assert [(d["row"], "与第 2 行编号相同" in d["message"]) for d in err.value.details] == [(3, True)]
    assert "id used by row 2" in english(err.value.details[0].message)


# ------------------------------------------------------------------ 5. the command line
@pytest.fixture
def cli_env(instance, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("GEOAPP_MAX_ROWS", "5")
    return instance


def test_cli_flag_takes_more_rows_than_max_rows_and_max_rows_caps_it(cli_env, tmp_path):
    src = tmp_path / "sites.xlsx"
    workbook([["lon", "lat"]] + [[113.2 + i / 1000, 35.2] for i in range(12)], src)
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(main, ["flag", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert '"rows": 12' in r.output and out.is_file()
    r = CliRunner().invoke(main, ["flag", str(src), "-o", str(tmp_path / "o2.csv"),
                                  "--max-rows", "10"])
    assert r.exit_code == 2 and "--max-rows" in r.stderr and "文件行数超过上限" in r.stderr
    assert not (tmp_path / "o2.csv").exists()


def test_cli_imports_take_any_size_unless_capped(cli_env, tmp_path):
    rows = "".join(f"JZ3K-0001,2026-11-{10 + i:02d}T10:00,PM2.5,{100 + i}\n" for i in range(8))
    src = tmp_path / "w.csv"
    src.write_text("grid_code,warned_at,pollutant,value\n" + rows, encoding="utf-8")
    r = CliRunner().invoke(main, ["import", "warnings", str(src), "--max-rows", "7"])
    assert r.exit_code == 2 and "有 8 行，超过接受的 7 行（--max-rows）" in r.stderr
    r = CliRunner().invoke(main, ["import", "warnings", str(src)])
    assert r.exit_code == 0 and '"rows": 8' in r.output
    r = CliRunner().invoke(main, ["ledger", "export", "-o", str(tmp_path / "l.xlsx")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["ledger", "import", str(tmp_path / "l.xlsx"),
                                  "--max-rows", "3"])
    assert r.exit_code == 2 and "--max-rows" in r.stderr
    r = CliRunner().invoke(main, ["ledger", "import", str(tmp_path / "l.xlsx")])
    assert r.exit_code == 0, r.output


# ------------------------------------------------------------------ 6. work before the limits
SERVER = Limits.server(max_rows=200_000, max_upload_mb=50)


def no_call(what: str):
    def refuse(*_args, **_kwargs):
        raise AssertionError(f"{what} was called: the limit was not judged before it")
    return refuse


@pytest.fixture
def no_parse(monkeypatch):
    """pandas' CSV reader, openpyxl's shared strings reader and the sheet parser fail if
    called: a refusal must come before them."""
    monkeypatch.setattr(tables_in.pd, "read_csv", no_call("pandas.read_csv"))
    monkeypatch.setattr(excel, "read_string_table", no_call("openpyxl's read_string_table"))
    monkeypatch.setattr(tables_in._SheetParser, "parse", no_call("the sheet parser"))


def wide_csv(columns: int) -> bytes:
    """A header of ``columns`` fields and one data row (short when very wide: uploads stay
    under the 500 KB a multipart form keeps in memory)."""
    names = (f"c{i}" for i in range(columns)) if columns <= 10_000 else ("a",) * columns
    return (",".join(names) + "\n" + ",".join("1" * min(columns, 10_000)) + "\n").encode()


@pytest.mark.parametrize("route", list(POSTS))
@pytest.mark.parametrize("columns", [5_000, 100_000])
def test_wide_csv_header_is_refused_before_pandas(ro_app, planner, no_parse, route, columns):
    """pandas' header handling costs the square of the width (100,000 columns: 106 s): the
    header is counted with the csv module from its first 64 KB first."""
    client, token = planner
    data = wide_csv(columns)
    assert len(data) < 500_000
    before = state(ro_app)
    r, seconds, peak = measured(lambda: POSTS[route](client, token, data, "wide.csv"))
    assert 400 <= r.status_code < 500, text_of(r)[:300]
    body = text_of(r)
    assert "/tmp" not in body
    if route != "ledger":  # the ledger takes only its XLSX template
        assert "wide.csv" in body
        assert ("文件列数超过上限" in body and "5,000 列" in body if columns == 5_000
                else "文件首行（表头）过长" in body and "64 KB" in body)
    assert seconds < MAX_SECONDS and peak < MAX_BYTES, (seconds, peak / 2**20)
    assert state(ro_app) == before


def test_csv_header_is_counted_as_pandas_reads_it(tmp_path):
    """Blank lines before the header are skipped and a quoted field may hold commas and
    newlines; 200 columns are accepted, 201 refused."""
    path = tmp_path / "h.csv"
    path.write_bytes('\ufeff\n\n"a,b","c\nd",e\n1,2,3\n'.encode())
    assert list(read_frame(path, limits=Limits(max_columns=3)).columns) == ["a,b", "c\nd", "e"]
    with raises_english(ValidationFailed, "3 columns"):
        read_frame(path, limits=Limits(max_columns=2))
    for columns, ok in ((200, True), (201, False)):
        path.write_bytes(wide_csv(columns))
        if ok:
            assert read_frame(path, limits=SERVER).shape == (1, 200)
        else:
            with raises_english(ValidationFailed, "201 columns"):
                read_frame(path, limits=SERVER)
    path.write_bytes(("名" * 30_000 + "\n1\n").encode())  # 90 KB, one column: too long
    with raises_english(ValidationFailed, "longer than 64 KB"):
        read_frame(path, limits=SERVER)


def shared_strings(count: int, *, declared: int | None = None, prefix: str = ""):
    """A shared strings part of ``count`` distinct strings (``declared`` as uniqueCount)."""
    ns = f'xmlns:{prefix[:-1]}="{_MAIN}"' if prefix else f'xmlns="{_MAIN}"'
    unique = f' uniqueCount="{declared}"' if declared is not None else ""
    yield f'<?xml version="1.0" encoding="UTF-8"?><{prefix}sst {ns}{unique}>'
    step = 10_000
    for start in range(0, count, step):
        yield "".join(f"<{prefix}si><{prefix}t>企业{i}</{prefix}t></{prefix}si>"
                      for i in range(start, min(count, start + step)))
    yield f"</{prefix}sst>"


def sst_xlsx(count: int, **kwargs) -> bytes:
    sheet = ['<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
             '</row><row r="2"><c r="A2"><v>113.2</v></c><c r="B2"><v>35.2</v></c></row>'
             '</sheetData>']
    return raw_xlsx(sheet, shared=shared_strings(count, **kwargs))


@pytest.mark.parametrize("route", list(POSTS))
def test_shared_strings_declared_too_many_are_refused_before_openpyxl(ro_app, planner,
                                                                       no_parse, route):
    """A 43 MB workbook of 15 million shared strings took 162 s and 2.7 GB: openpyxl loads
    the part whole before any sheet row is read. Its declared count is judged first."""
    client, token = planner
    data = sst_xlsx(1_000, declared=15_000_000)
    before = state(ro_app)
    r, seconds, peak = measured(lambda: POSTS[route](client, token, data, "strings.xlsx"))
    assert 400 <= r.status_code < 500, text_of(r)[:300]
    body = text_of(r)
    assert "XLSX 文件的共享字符串表过大" in body and "15,000,000" in body
    assert "strings.xlsx" in body and "/tmp" not in body
    assert seconds < MAX_SECONDS and peak < MAX_BYTES, (seconds, peak / 2**20)
    assert state(ro_app) == before


@pytest.mark.parametrize("prefix", ["", "x:"])
def test_shared_strings_are_counted_when_the_count_is_missing_or_lies(tmp_path, no_parse,
                                                                      prefix):
    """300,000 distinct strings (7 MB unpacked, ~8:1 as the 15 million were) against a limit of
    100,000: counted in a byte scan of the part, without a parse, well under a second."""
    path = tmp_path / "s.xlsx"
    limits = dataclasses.replace(SERVER, max_cells=100_000)
    for declared in (None, 3):
        path.write_bytes(sst_xlsx(300_000, declared=declared, prefix=prefix))
        err, seconds, peak = measured(lambda: read_grid(path, name="s.xlsx", limits=limits))
        assert isinstance(err, ValidationFailed), err
        assert "more than 100,000 shared strings" in english(err.message)
        assert seconds < MAX_SECONDS and peak < MAX_BYTES, (seconds, peak / 2**20)


def test_shared_strings_over_the_byte_cap_are_refused_from_the_zip_directory(tmp_path,
                                                                             no_parse):
    path = tmp_path / "s.xlsx"
    path.write_bytes(sst_xlsx(100_000))  # ~2.4 MB unpacked
    limits = dataclasses.replace(SERVER, max_shared_bytes=2**20)
    with raises_english(ValidationFailed, "MB of shared strings once unpacked"):
        read_grid(path, limits=limits)
    assert tables_in.MAX_SHARED_STRINGS_BYTES == SERVER.max_shared_bytes == 64 * 2**20


def test_shared_strings_under_the_limits_are_read(tmp_path):
    path = tmp_path / "s.xlsx"
    path.write_bytes(sst_xlsx(5_000, declared=5_000))
    df = read_frame(path, limits=SERVER)
    assert list(df.columns) == ["企业0", "企业1"] and df.to_dict("records") == [
        {"企业0": "113.2", "企业1": "35.2"}]


def test_compression_ratio_is_judged_per_entry(tmp_path, bombs):
    """Random bytes stored beside the bomb bring the ratio over all entries under 100:1; each
    entry's own ratio still refuses it."""
    path = tmp_path / "b.xlsx"
    path.write_bytes(bomb(dimension=False, padding=400_000))
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    assert sum(i.file_size for i in infos) < 100 * sum(i.compress_size for i in infos)
    with raises_english(InvalidInput, "zip bomb"):
        read_grid(path, limits=Limits(max_ratio=100, max_rows=50))


@pytest.mark.parametrize("variant", ["no_dimension", "lying_dimension", "empty_rows",
                                     "prefixed"])
def test_million_rows_are_counted_before_the_sheet_is_parsed(tmp_path, no_parse, variant):
    """1,048,000 rows without ``<dimension>`` took 3.7-4.0 s to refuse, with a lying
    ``A1:B2`` 4.2-4.9 s and as empty ``<row/>`` 1.0-1.2 s: the row tags are now counted in
    the decompressed stream (stopping past the limit) before openpyxl parses a row."""
    data = {"no_dimension": lambda: bomb(dimension=False),
            "lying_dimension": lambda: bomb(ref="A1:B2"),
            "empty_rows": lambda: bomb(dimension=False, row="<row/>"),
            "prefixed": lambda: bomb(dimension=False, prefix="x:",
                                     row="<x:row><x:c><x:v>1</x:v></x:c></x:row>")}[variant]()
    path = tmp_path / "rows.xlsx"
    path.write_bytes(data)
    limits = dataclasses.replace(SERVER, max_ratio=None)  # the ratio would refuse it first
    err, seconds, peak = measured(lambda: read_grid(path, name="rows.xlsx", limits=limits))
    assert isinstance(err, ValidationFailed), err
    assert err.message.startswith("文件行数超过上限") and "the sheet has at least" in english(
        err.message)
    assert seconds < MAX_SECONDS and peak < MAX_BYTES, (seconds, peak / 2**20)


@pytest.mark.parametrize("route", list(POSTS))
def test_rows_past_a_lying_dimension_are_refused_on_every_route(ro_app, planner, no_parse,
                                                                route):
    client, token = planner
    data = bomb(5_000, ref="A1:B2", row='<row><c t="inlineStr"><is><t>x</t></is></c></row>')
    before = state(ro_app)
    r = POSTS[route](client, token, data, "rows.xlsx")
    assert 400 <= r.status_code < 500, text_of(r)[:300]
    assert "文件行数超过上限" in text_of(r) and "的工作表至少有" in text_of(r)
    assert state(ro_app) == before


def test_rows_at_the_limit_with_a_blank_tail_are_read(tmp_path):
    """The row scan refuses exactly what the streaming read would: the limit's rows plus
    BLANK_TAIL formatted empty rows are read, one row more is refused."""
    limits = Limits(max_rows=2_000)
    path = tmp_path / "r.xlsx"

    def sheet(blank: int) -> bytes:
        return raw_xlsx(['<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>n</t></is></c>'
                         "</row>" + "<row><c><v>1</v></c></row>" * 2_000 + "<row/>" * blank
                         + "</sheetData>"])

    path.write_bytes(sheet(tables_in.BLANK_TAIL))
    assert read_frame(path, limits=limits).shape == (2_000, 1)
    path.write_bytes(sheet(tables_in.BLANK_TAIL + 1))
    with raises_english(ValidationFailed, "at least 3,002 rows"):
        read_frame(path, limits=limits)


def test_prefixed_sheet_is_read(tmp_path):
    path = tmp_path / "p.xlsx"
    path.write_bytes(bomb(3, dimension=False, prefix="x:",
                          row="<x:row><x:c><x:v>1</x:v></x:c></x:row>"))
    assert read_frame(path, limits=SERVER).to_dict("records") == [{"lon": "1", "lat": ""}] * 3


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_tag_count_is_exact_across_chunk_boundaries(monkeypatch, chunk):
    monkeypatch.setattr(tables_in, "_SCAN_CHUNK", chunk)
    xml = (b'<x:worksheet><x:sheetData><x:row r="1"><x:c/></x:row><row>'
           b'<c t="inlineStr"><is><t>rows</t></is></c></row><row/><x:row\n/><row\tr="9"/>'
           b"</x:sheetData></x:worksheet>")
    count = tables_in._count_tags(io.BytesIO(xml), b"row", tables_in._PREFIXED_ROW, 100)
    assert count == 5
    assert tables_in._count_tags(io.BytesIO(xml), b"row", tables_in._PREFIXED_ROW, 1) > 1


def test_a_row_of_thousands_of_cells_is_refused_before_parsing(tmp_path, no_parse):
    """Counted from the sheet's bytes: a 16,384-cell row, without a dimension or cell
    references, once took openpyxl 0.2 s of CPU per upload to parse before it was refused."""
    path = tmp_path / "w.xlsx"
    row = "<c><v>1</v></c>" * 16_384
    path.write_bytes(raw_xlsx([f"<sheetData><row>{row}</row></sheetData>"]))
    with raises_english(ValidationFailed, "16,384 cells"):
        read_grid(path, limits=Limits(max_columns=200))
    ok = tmp_path / "ok.xlsx"
    ok.write_bytes(raw_xlsx(["<sheetData>" + "<row><c><v>1</v></c></row>" * 50 +
                             "</sheetData>"]))
    with pytest.raises(ValidationFailed) as err:  # passed the count; the parser (here
        read_grid(ok, limits=Limits(max_columns=200))  # made to fail) was reached
    assert "列数" not in err.value.message
