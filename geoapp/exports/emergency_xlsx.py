"""The 重污染天气应急减排清单 as XLSX: the province's form, and one warning level's measures
by county.

The form: a title row, then a two-row header — 序号, 县（市、区）, 企业名称, 统一社会信用代码, 行业,
绩效分级 each merged over both rows, 黄色预警 / 橙色预警 / 红色预警 each merged over its three
measures (限产比例(%), 停产工序, 运输管控措施) with their names under it, and 备注 merged over
both rows; one row per enterprise. Text a spreadsheet would run as a formula is neutralised
(``domain.emergency.read_emergency_sheet`` undoes it), so export then import changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from geoapp.domain.emergency import BASE_COLUMNS, LEVEL_FIELDS, LEVELS, REMARKS, grade_zh
from geoapp.exports.tables import TITLE_ROWS, neutralise, title_rows

SHEET_TITLE = "应急减排清单"
#: Three title rows (title; the day or the level; the issuing unit and the date), then the
#: header: the importer finds it within the first 10 rows.
TITLE_ROW, HEADER_TOP, HEADER_BOTTOM, FIRST_DATA_ROW = 1, 4, 5, 6
LEVEL_HEADER_ROW = 4
_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_WRAP = Alignment(horizontal="left", vertical="top", wrap_text=True)
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
_WIDTHS = {"seq": 6, "county": 10, "name": 30, "credit_code": 21, "industry": 12, "grade": 9,
           "cut_pct": 9, "processes": 26, "transport": 30, "remarks": 24}


def _value(v: Any) -> Any:
    if isinstance(v, str):
        return neutralise(v) if v else None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _style_header(ws, ncol: int) -> None:
    for r in (HEADER_TOP, HEADER_BOTTOM):
        for c in range(1, ncol + 1):
            cell = ws.cell(row=r, column=c)
            cell.font = Font(bold=True)
            cell.alignment = _CENTER
            cell.border = _BORDER
            cell.fill = _HEADER_FILL


def _title(ws, lines: Sequence[str], ncol: int) -> None:
    """The shared title rows (``tables.title_rows``), each merged across the table; the
    title centred."""
    title_rows(ws, (tuple(lines) + ("", "", ""))[:TITLE_ROWS])
    for r in range(1, TITLE_ROWS + 1):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=ncol)
    ws.cell(row=TITLE_ROW, column=1).alignment = _CENTER
    ws.row_dimensions[TITLE_ROW].height = 30


def write_form_workbook(path: str | Path, *, title: str,
                        rows: Sequence[Mapping[str, Any]], period: str = "",
                        issued: str = "") -> Path:
    """Every row (fields of ``domain.emergency.FIELDS``; ``grade`` a stable code) in the
    province's form at ``path``, under the title rows (``title``, ``period``, ``issued``)."""
    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_TITLE
    base = [("seq", "序号"), *((c.field, c.header) for c in BASE_COLUMNS)]
    ncol = len(base) + 3 * len(LEVEL_FIELDS) + 1
    _title(ws, (title, period, issued), ncol)
    widths: list[float] = []
    for c, (f, header) in enumerate(base, start=1):
        ws.cell(row=HEADER_TOP, column=c, value=header)
        ws.merge_cells(start_row=HEADER_TOP, start_column=c, end_row=HEADER_BOTTOM,
                       end_column=c)
        widths.append(_WIDTHS[f])
    c = len(base) + 1
    for lv in LEVELS:
        ws.cell(row=HEADER_TOP, column=c, value=f"{lv.zh}预警")
        ws.merge_cells(start_row=HEADER_TOP, start_column=c, end_row=HEADER_TOP,
                       end_column=c + len(LEVEL_FIELDS) - 1)
        for i, (k, header) in enumerate(LEVEL_FIELDS):
            ws.cell(row=HEADER_BOTTOM, column=c + i, value=header)
            widths.append(_WIDTHS[k])
        c += len(LEVEL_FIELDS)
    ws.cell(row=HEADER_TOP, column=c, value=REMARKS.header)
    ws.merge_cells(start_row=HEADER_TOP, start_column=c, end_row=HEADER_BOTTOM, end_column=c)
    widths.append(_WIDTHS["remarks"])
    _style_header(ws, ncol)
    fields = [f for f, _h in base] + [f"{lv.value}_{k}" for lv in LEVELS
                                      for k, _h in LEVEL_FIELDS] + ["remarks"]
    for i, rec in enumerate(rows, start=1):
        r = FIRST_DATA_ROW + i - 1
        for c, f in enumerate(fields, start=1):
            if f == "seq":
                value: Any = i
            elif f == "grade":
                value = grade_zh(rec.get("grade"))
            else:
                value = _value(rec.get(f))
            cell = ws.cell(row=r, column=c, value=value)
            cell.border = _BORDER
            cell.alignment = _WRAP if f.endswith(("processes", "transport")) or f in (
                "name", "remarks") else _CENTER
            if f == "credit_code":
                cell.number_format = "@"
    for c, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = w
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=4)
    ws.print_title_rows = f"{HEADER_TOP}:{HEADER_BOTTOM}"
    ws.page_setup.orientation = "landscape"
    wb.save(path)
    return path


#: The columns of one level's list by county: (key, header, width).
LEVEL_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("seq", "序号", 6), ("county", "县（市、区）", 10), ("name", "企业名称", 30),
    ("credit_code", "统一社会信用代码", 21), ("industry", "行业", 12), ("grade", "绩效分级", 9),
    ("cut_pct", "限产比例(%)", 10), ("processes", "停产工序", 30), ("transport", "运输管控措施", 34),
    ("matched", "登记企业", 14))


def write_level_workbook(path: str | Path, *, title: str,
                         groups: Sequence[Mapping[str, Any]], period: str = "",
                         issued: str = "") -> Path:
    """One level's measures: the title rows (``title``, ``period``: the level, ``issued``),
    a header row, then per county (``groups``: county and its ``rows``) its enterprises,
    the county cell merged down its rows."""
    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = "分县区减排措施"
    ncol = len(LEVEL_COLUMNS)
    _title(ws, (title, period, issued), ncol)
    for c, (_k, header, width) in enumerate(LEVEL_COLUMNS, start=1):
        cell = ws.cell(row=LEVEL_HEADER_ROW, column=c, value=header)
        cell.font = Font(bold=True)
        cell.alignment = _CENTER
        cell.border = _BORDER
        cell.fill = _HEADER_FILL
        ws.column_dimensions[get_column_letter(c)].width = width
    r = LEVEL_HEADER_ROW + 1
    seq = 0
    for g in groups:
        first = r
        for rec in g["rows"]:
            seq += 1
            for c, (k, _h, _w) in enumerate(LEVEL_COLUMNS, start=1):
                if k == "seq":
                    value: Any = seq
                elif k == "county":
                    value = g["county"] if r == first else None
                elif k == "grade":
                    value = grade_zh(rec.get("grade"))
                elif k == "matched":
                    value = rec.get("site_id") or "未匹配到登记企业"
                else:
                    value = _value(rec.get(k))
                cell = ws.cell(row=r, column=c, value=value)
                cell.border = _BORDER
                cell.alignment = _WRAP if k in ("name", "processes", "transport") else _CENTER
            r += 1
        if r - first > 1:
            ws.merge_cells(start_row=first, start_column=2, end_row=r - 1, end_column=2)
    ws.freeze_panes = ws.cell(row=LEVEL_HEADER_ROW + 1, column=3)
    ws.print_title_rows = f"{LEVEL_HEADER_ROW}:{LEVEL_HEADER_ROW}"
    ws.page_setup.orientation = "landscape"
    wb.save(path)
    return path
