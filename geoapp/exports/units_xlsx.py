"""The control units' 生态环境准入清单 as an XLSX in the form provinces publish.

A title row over the table, then a two-row header: 序号, the unit columns (编码, 名称, 省, 市,
区县, 分类) each merged over both rows, and 管控要求 merged over the four part columns with
the parts' names under it; one row per unit, the items of a part on separate lines of its
cell. Text a spreadsheet would run as a formula is neutralised (read back by
``domain.units.read_unit_sheet``, which undoes it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from geoapp.domain.units import GROUP_HEADERS, PART_KEYS, SHEET_COLUMNS
from geoapp.exports.tables import neutralise

SHEET_TITLE = "生态环境准入清单"
TITLE_ROW, HEADER_TOP, HEADER_BOTTOM, FIRST_DATA_ROW = 1, 2, 3, 4
#: Column widths (Excel character units) by field.
WIDTHS: dict[str, float] = {"seq": 6, "code": 17, "name": 30, "province": 8, "city": 8,
                            "county": 9, "category": 10}
PART_WIDTH = 48

_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_WRAP = Alignment(horizontal="left", vertical="top", wrap_text=True)
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")


def write_units_workbook(path: str | Path, *, title: str,
                         rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``rows`` (field -> value, fields of ``SHEET_COLUMNS``) as the form at ``path``."""
    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_TITLE
    fields = ["seq", *(c.field for c in SHEET_COLUMNS)]
    ncol = len(fields)
    ws.cell(row=TITLE_ROW, column=1, value=title).font = Font(size=14, bold=True)
    ws.cell(row=TITLE_ROW, column=1).alignment = _CENTER
    ws.merge_cells(start_row=TITLE_ROW, start_column=1, end_row=TITLE_ROW, end_column=ncol)
    ws.row_dimensions[TITLE_ROW].height = 30
    headers = {"seq": "序号", **{c.field: c.header for c in SHEET_COLUMNS}}
    first_part = fields.index(PART_KEYS[0]) + 1
    for c, f in enumerate(fields, start=1):
        if f in PART_KEYS:
            ws.cell(row=HEADER_BOTTOM, column=c, value=headers[f])
        else:
            ws.cell(row=HEADER_TOP, column=c, value=headers[f])
            ws.merge_cells(start_row=HEADER_TOP, start_column=c, end_row=HEADER_BOTTOM,
                           end_column=c)
    ws.cell(row=HEADER_TOP, column=first_part, value=GROUP_HEADERS[0])
    ws.merge_cells(start_row=HEADER_TOP, start_column=first_part, end_row=HEADER_TOP,
                   end_column=first_part + len(PART_KEYS) - 1)
    for r in (HEADER_TOP, HEADER_BOTTOM):
        for c in range(1, ncol + 1):
            cell = ws.cell(row=r, column=c)
            cell.font = Font(bold=True)
            cell.alignment = _CENTER
            cell.border = _BORDER
            cell.fill = _HEADER_FILL
    for i, rec in enumerate(rows, start=1):
        r = FIRST_DATA_ROW + i - 1
        for c, f in enumerate(fields, start=1):
            value: Any = i if f == "seq" else rec.get(f)
            if isinstance(value, str):
                value = neutralise(value) if value else None
            cell = ws.cell(row=r, column=c, value=value)
            cell.border = _BORDER
            cell.alignment = _WRAP if f in PART_KEYS or f == "name" else _CENTER
    for c, f in enumerate(fields, start=1):
        ws.column_dimensions[get_column_letter(c)].width = WIDTHS.get(f, PART_WIDTH)
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=4)
    ws.print_title_rows = f"{HEADER_TOP}:{HEADER_BOTTOM}"
    ws.page_setup.orientation = "landscape"
    wb.save(path)
    return path
