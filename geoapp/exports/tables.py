"""Tabular exports (XLSX, CSV) with spreadsheet formula injection neutralised.

A cell that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return is executed by
Excel as a formula; such text cells are written with a leading apostrophe instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from openpyxl.styles import Font

from geoapp.domain.text import NOT_IN_DOCUMENTS, document_text

#: First characters that make a spreadsheet run a text cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Text that a spreadsheet would run as a formula gets a leading apostrophe; characters
    no document can hold are dropped (``domain.text``)."""
    value = document_text(value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def document_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells hold only characters every format can carry (for outputs
    that are not spreadsheets, where a formula-like text stays as it is)."""
    out = df.copy()
    for col in out.columns:
        series = out[col]
        if not (series.dtype == object or pd.api.types.is_string_dtype(series)):
            continue
        try:
            bad = series.str.contains(NOT_IN_DOCUMENTS, na=False).to_numpy(dtype=bool)
        except AttributeError:
            continue
        if bad.any():
            values = series.to_numpy(dtype=object, copy=True)
            values[bad] = [document_text(v) for v in values[bad]]
            out[col] = pd.Series(values, index=series.index, dtype=series.dtype)
    return out


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every formula-like text cell neutralised (see ``neutralise``).

    Vectorised: the first character of every text cell is looked up at once and only the
    few cells that need it are rewritten, so a million-row export pays microseconds per
    column chunk, not a Python call per cell.
    """
    out = document_frame(df)
    for col in out.columns:
        series = out[col]
        if not (series.dtype == object or pd.api.types.is_string_dtype(series)):
            continue
        try:
            risky = series.str[:1].isin(FORMULA_START).to_numpy(dtype=bool)
        except AttributeError:  # no text in the column at all
            continue
        if risky.any():
            values = series.to_numpy(dtype=object, copy=True)
            values[risky] = ["'" + v for v in values[risky]]
            out[col] = pd.Series(values, index=series.index, dtype=series.dtype)
    return out


def write_xlsx(sheets: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """One sheet per frame, header row frozen, columns sized to their content."""
    path = Path(path)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in sheets.items():
            frame = neutralise_frame(df.drop(columns=["geometry"], errors="ignore"))
            frame.to_excel(xw, sheet_name=name[:31], index=False)
            ws = xw.sheets[name[:31]]
            ws.freeze_panes = "A2"
            fit_column_widths(ws, frame, header_row=1, max_width=60, per_char=1.3)
    return path


#: Rows above a titled sheet's table: the title, the period, the issuing unit and the date.
TITLE_ROWS = 3


def title_rows(ws, lines: tuple[str, str, str]) -> None:
    """The title (bold), the period and the issuing unit in A1:A3 of ``ws``."""
    for r, text in enumerate(lines, start=1):
        ws.cell(row=r, column=1, value=text)
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)


def issued_line(issuer: str, day: date | None, *, english: bool = False) -> str:
    """The third title row: ``焦作市生态环境局　2026年12月3日`` (``..., 3 Dec 2026``)."""
    if day is None:
        return issuer
    if english:
        return f"{issuer}, {day.day} {day:%b} {day.year}".strip(", ")
    return f"{issuer}　{day.year}年{day.month}月{day.day}日".strip("　")


def write_titled_xlsx(sheets: Mapping[str, pd.DataFrame], path: str | Path,
                      lines: tuple[str, str, str], *, stamp: datetime | None = None,
                      per_char: float = 1.3) -> Path:
    """``write_xlsx`` with the three title rows above every sheet's table (its header on
    row 4, frozen under it); the document properties carry ``stamp`` and the title."""
    path = Path(path)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in sheets.items():
            frame = neutralise_frame(df.drop(columns=["geometry"], errors="ignore"))
            frame.to_excel(xw, sheet_name=name[:31], index=False, startrow=TITLE_ROWS)
            ws = xw.sheets[name[:31]]
            title_rows(ws, lines)
            ws.freeze_panes = f"A{TITLE_ROWS + 2}"
            fit_column_widths(ws, frame, header_row=TITLE_ROWS + 1, max_width=60,
                              per_char=per_char)
        props = xw.book.properties
        if stamp is not None:
            props.created = props.modified = stamp
        props.title = lines[0]
        props.creator = "geoapp"
    return path


def fit_column_widths(ws, frame: pd.DataFrame, *, header_row: int, max_width: float,
                      per_char: float) -> None:
    """Size each column of an openpyxl sheet to its header and first 200 values."""
    for i, col in enumerate(frame.columns, start=1):
        sample = [str(col), *map(str, frame[col].head(200).tolist())]
        width = min(max_width, max(len(s) for s in sample) * per_char + 2)
        ws.column_dimensions[ws.cell(row=header_row, column=i).column_letter].width = width


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """UTF-8 with BOM, so Excel on Chinese Windows opens it without mojibake."""
    path = Path(path)
    neutralise_frame(df.drop(columns=["geometry"], errors="ignore")).to_csv(
        path, index=False, encoding="utf-8-sig")
    return path
