"""Reading a 生态环境准入清单 sheet (CSV or XLSX) into rows of cells, judged before parsing,
and the city's list file the database is seeded from.

The form has rows above its header (a title) and may have a two-row header, so it is read as
a grid of cells (``grid[i]`` is sheet row ``i + 1``), which ``domain.units.read_unit_sheet``
then reads. An XLSX goes through ``storage.tables_in.read_grid`` (zip directory, DTDs,
shared strings, rows, columns and cells checked before and while openpyxl reads it); a CSV is
read by the ``csv`` module row by row, stopping at the first row, column or cell over the
limits. A CSV in UTF-8 (with or without BOM) is read as such; one that is not UTF-8 is read
as GB18030, the encoding Excel on a Chinese Windows saves "CSV" in.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from geoapp.domain.city import City
from geoapp.domain.errors import Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.domain.units import (
    HEADER_SCAN_ROWS,
    PART_KEYS,
    LayerUnit,
    normalise_unit_code,
    read_unit_sheet,
    sheet_records,
)
from geoapp.storage.sources import MAX_REPORTED, text_value
from geoapp.storage.tables_in import (
    CSV_SUFFIXES,
    NO_LIMITS,
    XLSX_SUFFIXES,
    Limits,
    read_grid,
    too_many_rows,
)

log = logging.getLogger(__name__)

#: Where a stored list came from: seeded from the data file, edited or imported in the app.
ORIGIN_SOURCE, ORIGIN_EDIT, ORIGIN_IMPORT = "source", "edit", "import"
#: The columns of a unit's list besides its system columns.
UNIT_FIELDS: tuple[str, ...] = ("code", "name", "category", "county", *PART_KEYS)

#: Sheet rows besides data rows the form may have: rows above the header, a two-row
#: header and a note under the table.
EXTRA_ROWS = HEADER_SCAN_ROWS + 3


def read_sheet_grid(path: str | Path, *, name: str | None = None,
                    limits: Limits | None = None) -> list[list[Any]]:
    """The cells of a CSV or XLSX sheet, row by row, within ``limits`` (None: any size)."""
    path = Path(path)
    label = name or path.name
    limits = limits or NO_LIMITS
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return read_grid(path, name=label, limits=limits, extra_rows=EXTRA_ROWS).rows
    if suffix in CSV_SUFFIXES:
        return _csv_grid(path, label, limits)
    raise ValidationFailed(_l("文件须为 CSV 或 XLSX：%(file)s", file=label))


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise ValidationFailed(_l("文件不是 UTF-8 编码：%(file)s；请另存为“CSV UTF-8”",
                                  file=label)) from None
    log.info("%s: not UTF-8, read as GB18030", label)
    return text


def _csv_grid(path: Path, label: str, limits: Limits) -> list[list[Any]]:
    if path.stat().st_size == 0:
        raise ValidationFailed(_l("文件为空：%(file)s", file=label))
    text = _decode(path.read_bytes(), label)
    sheet_limit = limits.max_rows + EXTRA_ROWS if limits.max_rows else None
    rows: list[list[Any]] = []
    cells = 0
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            if limits.max_columns and len(row) > limits.max_columns:
                raise ValidationFailed(
                    _l("文件列数超过上限：%(file)s 第 %(row)s 行有 %(columns)s 列，超过接受的 %(max)s 列",
                       file=label, row=number, columns=len(row), max=limits.max_columns),
                    details=[Problem(file=label, row=number, column="", value="",
                                     message=_l("超出列数上限（%(max)s 列）",
                                                max=limits.max_columns))])
            filled = sum(1 for v in row if v.strip())
            if sheet_limit and filled and number > sheet_limit:
                raise too_many_rows(label, number - EXTRA_ROWS, limits)
            cells += filled
            if limits.max_cells and cells > limits.max_cells:
                raise ValidationFailed(_l("文件单元格过多：%(file)s 超过 %(max)s 个单元格；请拆分后再导入",
                                          file=label, max=format(limits.max_cells, ",")))
            rows.append(row)
    except csv.Error as exc:
        log.warning("%s: unreadable CSV: %r", label, exc)
        raise ValidationFailed(_l("无法读取此 CSV 文件：%(file)s（请检查引号，以及每行的列数是否与表头"
                                  "一致）", file=label)) from None
    while rows and not any(v.strip() for v in rows[-1]):
        rows.pop()
    return rows


# ---------------------------------------------------------------------------- the data file
def layer_units(gdf: pd.DataFrame | None) -> dict[str, LayerUnit]:
    """The units of a units layer by code (the ``code`` column, else ``id``)."""
    if gdf is None or len(gdf) == 0:
        return {}
    codes = gdf["code"] if "code" in gdf.columns else gdf["id"]
    col = {c: (gdf[c] if c in gdf.columns else pd.Series("", index=gdf.index))
           for c in ("name", "category", "county")}
    out = {}
    for i, code in enumerate(codes):
        key = normalise_unit_code(text_value(code))
        if key:
            out[key] = LayerUnit(code=key, name=text_value(col["name"].iat[i]),
                                 category=text_value(col["category"].iat[i]),
                                 county=text_value(col["county"].iat[i]))
    return out


def read_requirements_file(data_dir: str | Path, city: City,
                           units: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The city's list file (``[units] requirements``) read and checked against its units
    layer; [] when the city has none. ValidationFailed lists every problem."""
    rel = city.unit_requirements
    if not rel:
        return []
    path = Path(data_dir) / rel
    if not path.is_file():
        raise ValidationFailed(_l("%(file)s：找不到文件", file=rel),
                               details=[Problem(file=rel, message=_l("找不到文件"))])
    sheet = read_unit_sheet(rel, read_sheet_grid(path, name=rel))
    records, problems = sheet_records(sheet, layer_units(units))
    if problems:
        p = problems[0]
        raise ValidationFailed(
            _l("%(file)s：%(count)s 处问题；第一处：第 %(row)s 行，%(column)s：%(message)s",
               file=rel, count=len(problems), row=p.row, column=p.column, message=p.message),
            details=problems[:MAX_REPORTED])
    return records


def seed_rows(records: Iterable[Mapping[str, Any]], *, at: str, user: str
              ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows a new database is seeded with from the file's records (version
    1, origin ``source``)."""
    cols = [*UNIT_FIELDS, "version", "updated_at", "updated_by", "origin"]
    rows = [(*(str(r.get(c) or "") for c in UNIT_FIELDS), 1, at, user, ORIGIN_SOURCE)
            for r in records]
    return cols, rows
