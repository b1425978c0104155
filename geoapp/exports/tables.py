"""Tabular exports (XLSX, CSV) with spreadsheet formula injection neutralised.

A cell that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return is executed by
Excel as a formula; such text cells are written with a leading apostrophe instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Text that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
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
            for i, col in enumerate(frame.columns, start=1):
                sample = [str(col), *map(str, frame[col].head(200).tolist())]
                width = min(60, max(len(s) for s in sample) * 1.3 + 2)
                ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = width
    return path


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """UTF-8 with BOM, so Excel on Chinese Windows opens it without mojibake."""
    path = Path(path)
    neutralise_frame(df.drop(columns=["geometry"], errors="ignore")).to_csv(
        path, index=False, encoding="utf-8-sig")
    return path
