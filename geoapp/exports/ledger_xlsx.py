"""The enterprise ledger (整治工作台账) as an XLSX in the bureau's template layout: write and read.

The file must be submittable as it is, so the layout copies the paper template: a merged title
row, a 填报单位 / 填表时间 row, a two-row header (grouped columns under a merged upper cell,
single columns merged over both rows), thin borders, wrapped text, fixed column widths, a frozen
header and the 填表说明 note under the data. Text cells that a spreadsheet would run as
formulas are neutralised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from geoapp.domain import ledger as L
from geoapp.domain.errors import Problem, ValidationFailed
from geoapp.domain.ledger import LedgerColumn
from geoapp.domain.messages import Text as _l
from geoapp.exports.tables import FORMULA_START, neutralise

log = logging.getLogger(__name__)

SHEET_TITLE = "整治工作台账"
TITLE_ROW, INFO_ROW, HEADER_TOP, HEADER_BOTTOM = 1, 2, 3, 4
FIRST_DATA_ROW = 5

#: Sheet rows besides data rows a template may have: the rows above its header (at most
#: _HEADER_SCAN_ROWS), the two header rows, a blank row and the 填表说明 note.
NON_DATA_ROWS = 16

#: Column widths in Excel character units, by field (others get DEFAULT_WIDTH).
WIDTHS: dict[str, float] = {
    "seq": 6, "district": 9, "name": 28, "address": 30, "credit_code": 22, "industry": 12,
    "employees": 9, "land_tenure": 9, "safety_assessment": 8, "energy_review": 8,
    "eia_approval": 18, "discharge_permit": 24, "online_monitoring": 8, "main_problems": 40,
    "measures": 34, "classification": 10, "deadline": 12, "progress": 28, "remarks": 20,
    "lon": 12, "lat": 12, "crs": 9, "hit_count": 8, "hits": 50, "deadline_status": 10,
    "days_overdue": 9,
}
DEFAULT_WIDTH = 14

_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_WRAP = Alignment(horizontal="left", vertical="center", wrap_text=True)
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
_NUMERIC_KINDS = ("int", "coordinate")
_HEADER_SCAN_ROWS = 12


def write_ledger_workbook(path: str | Path, *, title: str, unit: str, filled_on: str,
                          columns: Sequence[LedgerColumn], rows: Sequence[Sequence[Any]],
                          note_lines: Sequence[str], unit_label: str = "填报单位：",
                          date_label: str = "填表时间：", note_title: str = "填表说明：",
                          ) -> Path:
    """Write one ledger sheet; ``rows`` hold display values in ``columns`` order."""
    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_TITLE
    ncol = len(columns)
    last = get_column_letter(ncol)
    _title_rows(ws, title, f"{unit_label}{unit}", f"{date_label}{filled_on}", ncol)
    _header(ws, columns)
    for r, values in enumerate(rows, start=FIRST_DATA_ROW):
        for c, (col, value) in enumerate(zip(columns, values, strict=True), start=1):
            cell = ws.cell(row=r, column=c, value=_cell_value(value, col))
            cell.border = _BORDER
            cell.alignment = _CENTER if col.kind in _NUMERIC_KINDS or len(str(value)) < 8 \
                else _WRAP
    note_row = FIRST_DATA_ROW + len(rows) + 1
    ws.cell(row=note_row, column=1, value=note_title + "\n" + "\n".join(note_lines))
    ws.merge_cells(f"A{note_row}:{last}{note_row}")
    ws.cell(row=note_row, column=1).alignment = _WRAP
    ws.row_dimensions[note_row].height = 18 * (len(note_lines) + 1)
    for i, col in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = WIDTHS.get(col.field, DEFAULT_WIDTH)
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=4)  # header and 序号/辖区/名称 stay
    ws.print_title_rows = f"{HEADER_TOP}:{HEADER_BOTTOM}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    log.info("ledger workbook %s: %d rows, %d columns", path, len(rows), ncol)
    return path


def _title_rows(ws, title: str, unit: str, filled_on: str, ncol: int) -> None:
    last = get_column_letter(ncol)
    ws.cell(row=TITLE_ROW, column=1, value=title).font = Font(size=16, bold=True)
    ws.merge_cells(f"A{TITLE_ROW}:{last}{TITLE_ROW}")
    ws.cell(row=TITLE_ROW, column=1).alignment = _CENTER
    ws.row_dimensions[TITLE_ROW].height = 32
    half = max(1, ncol // 2)
    ws.cell(row=INFO_ROW, column=1, value=unit)
    if half > 1:
        ws.merge_cells(f"A{INFO_ROW}:{get_column_letter(half)}{INFO_ROW}")
    right = ws.cell(row=INFO_ROW, column=half + 1, value=filled_on)
    right.alignment = Alignment(horizontal="right", vertical="center")
    if ncol > half + 1:
        ws.merge_cells(f"{get_column_letter(half + 1)}{INFO_ROW}:{last}{INFO_ROW}")


def _header(ws, columns: Sequence[LedgerColumn]) -> None:
    """Grouped columns share a merged upper cell; single ones are merged over both rows."""
    bold = Font(bold=True)
    i = 0
    while i < len(columns):
        col = columns[i]
        c = i + 1
        if not col.group:
            ws.cell(row=HEADER_TOP, column=c, value=col.header)
            ws.merge_cells(start_row=HEADER_TOP, start_column=c, end_row=HEADER_BOTTOM,
                           end_column=c)
            i += 1
            continue
        j = i
        while j + 1 < len(columns) and columns[j + 1].group == col.group:
            j += 1
        ws.cell(row=HEADER_TOP, column=c, value=col.group)
        if j > i:
            ws.merge_cells(start_row=HEADER_TOP, start_column=c, end_row=HEADER_TOP,
                           end_column=j + 1)
        for k in range(i, j + 1):
            ws.cell(row=HEADER_BOTTOM, column=k + 1, value=columns[k].header)
        i = j + 1
    for r in (HEADER_TOP, HEADER_BOTTOM):
        ws.row_dimensions[r].height = 30
        for c in range(1, len(columns) + 1):
            cell = ws.cell(row=r, column=c)
            cell.font = bold
            cell.alignment = _CENTER
            cell.border = _BORDER
            cell.fill = _HEADER_FILL


def _cell_value(value: Any, col: LedgerColumn) -> Any:
    if value is None:
        return None
    if col.kind in _NUMERIC_KINDS and isinstance(value, (int, float)):
        return value
    text = str(value)
    return neutralise(text) if text else None


# ------------------------------------------------------------------------------ reading
@dataclass
class LedgerSheet:
    """What was read from a workbook: rows of raw cells keyed by field, with sheet row numbers."""

    file: str
    unit: str = ""
    filled_on: str = ""
    fields: list[str] = field(default_factory=list)
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def read_ledger(file: str, grid: Sequence[Sequence[Any]]) -> LedgerSheet:
    """The template's rows from the first sheet's raw cells (``grid[i]`` is sheet row
    ``i + 1``, as ``storage.tables_in.read_grid`` reads them); wrong columns are an error."""
    p = Path(file)
    top = next((i for i, r in enumerate(grid[:_HEADER_SCAN_ROWS])
                if r and L.header_key(r[0]) == "序号"), None)
    if top is None:
        raise ValidationFailed(
            _l("%(file)s：前 %(rows)s 行里没有以“序号”开头的表头行，这不是台账模板吗？",
               file=p.name, rows=_HEADER_SCAN_ROWS),
            details=[Problem(file=p.name, row="", column="序号", value="",
                             message=_l("找不到表头"))])
    sheet = LedgerSheet(file=p.name)
    for r in grid[:top]:
        for v in r:
            t = L.cell_text(v)
            if t.startswith(L.UNIT_LABEL.rstrip("：")):
                sheet.unit = t[len(L.UNIT_LABEL):].strip()
            elif t.startswith(L.DATE_LABEL.rstrip("：")):
                sheet.filled_on = t[len(L.DATE_LABEL):].strip()
    two_rows = top + 1 < len(grid) and L.cell_text(next(iter(grid[top + 1]), None)) == ""
    headers = _headers(grid[top], grid[top + 1] if two_rows else None)
    sheet.fields = _fields(p.name, headers, top + 1)
    first = top + (2 if two_rows else 1)
    for i in range(first, len(grid)):
        cells = [*grid[i], *[None] * (len(sheet.fields) - len(grid[i]))]  # short rows padded
        texts = [L.cell_text(v) for v in cells]
        if not any(texts):
            continue
        if next(t for t in texts if t).startswith(L.NOTE_PREFIX):
            break
        sheet.rows.append((i + 1, {f: _unquote(v) for f, v in zip(sheet.fields, cells,
                                                                   strict=False) if f}))
    return sheet


def _headers(top: list[Any], bottom: list[Any] | None) -> list[str]:
    """A column's header is its lower cell, else the upper one (merged over both rows)."""
    width = max(len(top), len(bottom or []))
    out = []
    for c in range(width):
        up = L.cell_text(top[c]) if c < len(top) else ""
        low = L.cell_text(bottom[c]) if bottom is not None and c < len(bottom) else ""
        out.append(low or up)
    while out and not out[-1]:
        out.pop()
    return out


def _fields(file: str, headers: list[str], header_row: int) -> list[str]:
    """Header texts to fields; unknown, missing or repeated columns reject the file."""
    known = L.columns_by_header()
    fields: list[str] = []
    problems = []
    for c, h in enumerate(headers, start=1):
        col = known.get(L.header_key(h))
        if col is None:
            problems.append(Problem(file=file, row=header_row, column=h, value=h,
                                    message=_l("未知的列（第 %(column)s 列）", column=c)))
            fields.append("")
        elif col.field in fields:
            problems.append(Problem(file=file, row=header_row, column=h, value=h,
                                    message=_l("此列出现了两次")))
            fields.append("")
        else:
            fields.append("" if col in L.DERIVED_COLUMNS else col.field)
    problems += [Problem(file=file, row=header_row, column=c.header, value="",
                         message=_l("缺少此列"))
                 for c in L.LEDGER_COLUMNS if c.field not in fields]
    if problems:
        raise ValidationFailed(
            _l("%(file)s：列不符合台账模板（%(count)s 处问题；第一处：%(column)s：%(message)s）",
               file=file, count=len(problems), column=problems[0].column,
               message=problems[0].message), details=problems)
    return fields


def _unquote(v: Any) -> Any:
    """Undo the apostrophe an export puts before formula-like text."""
    if isinstance(v, str) and len(v) > 1 and v[0] == "'" and v[1:].startswith(FORMULA_START):
        return v[1:]
    return v

