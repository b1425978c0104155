"""Reading a 重污染天气应急减排清单 sheet (CSV or XLSX), judged before parsing, and the city's
list file the database is seeded from.

The sheet is read as a grid of cells by the same reader as the 准入清单 (``units_in``:
XLSX through the hardened ``tables_in.read_grid``, CSV row by row within the limits, UTF-8
or GB18030), then by ``domain.emergency.read_emergency_sheet``.

The city's list is ``sites/emergency.csv`` in the data folder (optional: a city without it
has an empty list until one is imported), in the province's form with the one-row header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from geoapp.domain.city import City
from geoapp.domain.emergency import (
    FIELDS,
    KnownSite,
    county_names,
    read_emergency_sheet,
    sheet_records,
)
from geoapp.domain.errors import Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.storage.sources import EMERGENCY_FILE, MAX_REPORTED, text_value
from geoapp.storage.tables_in import Limits
from geoapp.storage.units_in import ORIGIN_EDIT, ORIGIN_IMPORT, ORIGIN_SOURCE, read_sheet_grid

__all__ = ["EMERGENCY_FILE", "ORIGIN_EDIT", "ORIGIN_IMPORT", "ORIGIN_SOURCE", "city_counties",
           "known_sites", "read_emergency_file", "read_emergency_grid", "seed_rows"]


def read_emergency_grid(path: str | Path, *, name: str | None = None,
                        limits: Limits | None = None) -> list[list[Any]]:
    """The cells of an uploaded or seeded sheet, row by row, within ``limits``."""
    return read_sheet_grid(path, name=name, limits=limits)


def city_counties(city: City) -> dict[str, str]:
    """Accepted county texts (short and full names, normalised) -> the short name."""
    return county_names((c.name, getattr(c, "full_name", "") or "") for c in city.counties)


def known_sites(frame: pd.DataFrame | None) -> list[KnownSite]:
    """The registered enterprises of a sites frame (``site_type`` enterprise)."""
    if frame is None or len(frame) == 0:
        return []
    df = frame
    if "site_type" in df.columns:
        df = df[df["site_type"] == "enterprise"]
    col = {c: (df[c] if c in df.columns else pd.Series("", index=df.index))
           for c in ("id", "name", "credit_code", "district")}
    return [KnownSite(id=text_value(i), name=text_value(n), credit_code=text_value(c),
                      county=text_value(d))
            for i, n, c, d in zip(col["id"], col["name"], col["credit_code"], col["district"],
                                  strict=True)]


def read_emergency_file(data_dir: str | Path, city: City,
                        sites: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The city's list (``sites/emergency.csv``) read, checked and linked to ``sites``;
    [] when the city has none. ValidationFailed lists every problem."""
    path = Path(data_dir) / EMERGENCY_FILE
    if not path.is_file():
        return []
    rel = EMERGENCY_FILE
    sheet = read_emergency_sheet(rel, read_emergency_grid(path, name=rel))
    records, problems = sheet_records(sheet, city_counties(city), known_sites(sites))
    if problems:
        p = problems[0]
        raise ValidationFailed(
            _l("%(file)s：%(count)s 处问题；第一处：第 %(row)s 行，%(column)s：%(message)s",
               file=rel, count=len(problems), row=p.row, column=p.column, message=p.message),
            details=problems[:MAX_REPORTED])
    if not records:
        raise ValidationFailed(_l("%(file)s：表头下没有数据行", file=rel),
                               details=[Problem(file=rel, message=_l("没有数据行"))])
    return records


def seed_rows(records: Iterable[Mapping[str, Any]], *, at: str, user: str
              ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows a new database is seeded with (version 1, origin ``source``)."""
    cols = [*FIELDS, "version", "updated_at", "updated_by", "origin"]
    rows = [(*(r.get(c) for c in FIELDS), 1, at, user, ORIGIN_SOURCE) for r in records]
    return cols, rows
