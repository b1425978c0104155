"""Import of hotspot-grid warnings and 12369 complaints from CSV or XLSX files.

The duty officer gets these as spreadsheets every week. A file is checked row by row and
either imported whole or rejected whole with every bad row's number and reason, so a
half-imported week never skews a bulletin. The same validation serves the weekly report on
files that are not imported (``geoapp report weekly --warnings FILE``).

Row numbers are those a spreadsheet shows: the header is row 1, the first record row 2.
Columns are named by their machine names (grid_code, warned_at...) or by the vocabulary's
Chinese headers (网格编号, 预警时间..., ``domain.fields``).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geoapp.domain.bulletin import LOCAL_TZ
from geoapp.domain.errors import InvalidInput, Problem, ValidationFailed
from geoapp.domain.fields import rename_headers
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import ComplaintCategory
from geoapp.services import check_row_limit
from geoapp.storage.sources import BOTH_OR_NEITHER, complaint_points, require_columns
from geoapp.storage.sources import REQUIRED as REQUIRED_CELL
from geoapp.storage.tables_in import Limits, read_frame

log = logging.getLogger(__name__)

KINDS = ("warnings", "complaints")
TABLE_OF = {"warnings": "grid_warnings", "complaints": "complaints"}
REQUIRED = {"warnings": ("grid_code", "warned_at", "pollutant"),
            "complaints": ("received_at", "category")}
OPTIONAL = {"warnings": ("value",),
            "complaints": ("id", "lon", "lat", "crs", "district", "summary")}
#: Pollutant names written the way the Ministry's warnings write them.
POLLUTANTS = {p.upper(): p for p in ("PM2.5", "PM10", "O3", "NO2", "SO2", "CO", "AQI")}
MAX_REPORTED = 200
_ROW_BASE = 2  # header is row 1
NOT_A_TIME = _l("不是 ISO 日期时间（YYYY-MM-DDTHH:MM[:SS]）")


def _problem(file: str, row: int, column: str, value: Any, message: str) -> Problem:
    return Problem(file=file, row=int(row), column=column,
                   value="" if value is None else str(value), message=message)


# ------------------------------------------------------------------------------ reading
def read_table_file(path: str | Path, *, name: str | None = None,
                    limits: Limits | None = None) -> pd.DataFrame:
    """A CSV (UTF-8, with or without BOM) or XLSX file as a frame of text cells, read by
    :func:`geoapp.storage.tables_in.read_frame` (limits judged before parsing)."""
    path = Path(path)
    label = name or path.name
    df = read_frame(path, name=label, limits=limits, skip_initial_space=True)
    df.columns = [str(c).strip().lower() for c in df.columns]
    known = [c for k in KINDS for c in (*REQUIRED[k], *OPTIONAL[k])]
    df = df.rename(columns=rename_headers(df.columns, known))
    return df.fillna("").astype(str).apply(lambda s: s.str.strip())


def _check_columns(df: pd.DataFrame, kind: str, label: str) -> None:
    try:
        require_columns(df.columns, REQUIRED[kind], label)
    except ValidationFailed as exc:  # the header is the sheet's row 1
        raise ValidationFailed(exc.message, details=[
            Problem(file=p.file, row=1, column=p.column, message=p.message)
            for p in exc.details]) from None


def _local_time(text: str) -> str | None:
    """ISO date-time as naive local (Asia/Shanghai) time; an offset is converted first."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(LOCAL_TZ).replace(tzinfo=None)
    return t.isoformat(timespec="seconds")


def _reject(label: str, problems: list[Problem]) -> None:
    if problems:
        problems.sort(key=lambda p: p.row)
        rows = sorted({p.row for p in problems})
        shown = ", ".join(map(str, rows[:20])) + (" …" if len(rows) > 20 else "")
        raise ValidationFailed(
            _l("%(file)s：%(count)s 行有误，未导入任何内容；行号 %(rows)s", file=label,
               count=len(rows), rows=shown), details=problems[:MAX_REPORTED])


# ------------------------------------------------------------------------------ warnings
def validate_warnings(app, raw: pd.DataFrame, label: str = "warnings") -> pd.DataFrame:
    """Typed warnings (grid_code, warned_at, pollutant, value) or ValidationFailed."""
    _check_columns(raw, "warnings", label)
    grids = set(app.repo.layer("hotspot_grids")["code"].astype(str))
    problems: list[Problem] = []
    out = []
    first_row: dict[tuple[str, str, str], int] = {}  # (grid, time, pollutant) -> first row
    for i, row in enumerate(raw.itertuples(index=False)):
        n = i + _ROW_BASE
        rec = row._asdict()
        code = rec["grid_code"]
        if not code:
            problems.append(_problem(label, n, "grid_code", code, REQUIRED_CELL))
        elif code not in grids:
            problems.append(_problem(label, n, "grid_code", code, _l("未知的热点网格编号")))
        when = _local_time(rec["warned_at"]) if rec["warned_at"] else None
        if when is None:
            problems.append(_problem(label, n, "warned_at", rec["warned_at"], NOT_A_TIME))
        pollutant = POLLUTANTS.get(rec["pollutant"].upper(), rec["pollutant"])
        if not pollutant:
            problems.append(_problem(label, n, "pollutant", "", REQUIRED_CELL))
        value = None
        text = rec.get("value", "")
        if text:
            try:
                value = float(text)
                if not np.isfinite(value) or value < 0:
                    raise ValueError
            except ValueError:
                problems.append(_problem(label, n, "value", text, _l("不是不小于 0 的数")))
        out.append({"grid_code": code, "warned_at": when, "pollutant": pollutant,
                    "value": value})
        if code and when and pollutant:
            key = (code, when, pollutant)
            if key in first_row:
                problems.append(_problem(label, n, "grid_code", code, _l(
                    "与第 %(row)s 行是同一条预警（网格、时间、污染物相同）：每条预警在一个文件中只能出现一次",
                    row=first_row[key])))
            first_row.setdefault(key, n)
    _reject(label, problems)
    return pd.DataFrame(out, columns=["grid_code", "warned_at", "pollutant", "value"])


# ------------------------------------------------------------------------------ complaints
def _parse_category(text: str) -> str | None:
    try:
        return ComplaintCategory.parse(text).value
    except ValueError:
        return None


def _make_id(rec: dict) -> str:
    """A stable id for a complaint the file gave none: the same row always gets the same id,
    so importing a file twice is caught as a duplicate."""
    key = "|".join(str(rec.get(c, "")) for c in ("received_at", "category", "lon", "lat",
                                                 "district", "summary"))
    return "H" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10].upper()


def validate_complaints(app, raw: pd.DataFrame, label: str = "complaints") -> pd.DataFrame:
    """Typed complaints with WGS84 geometry where coordinates were given, the district found
    by spatial join with the counties layer, or ValidationFailed."""
    _check_columns(raw, "complaints", label)
    raw = raw.copy()
    for col in OPTIONAL["complaints"]:
        if col not in raw.columns:
            raw[col] = ""
    counties = app.repo.layer("counties")
    names = set(counties["name"].astype(str))
    full = {c.full_name: c.name for c in app.city.counties if c.full_name}
    problems: list[Problem] = []
    out = []
    for i, rec in enumerate(raw.to_dict("records")):
        n = i + _ROW_BASE
        when = _local_time(rec["received_at"]) if rec["received_at"] else None
        if when is None:
            problems.append(_problem(label, n, "received_at", rec["received_at"], NOT_A_TIME))
        category = _parse_category(rec["category"])
        if category is None:
            problems.append(_problem(label, n, "category", rec["category"], _l(
                "应为 大气/噪声/水/固废/其他 或 air/noise/water/solid_waste/other")))
        district = full.get(rec["district"], rec["district"])
        if district and district not in names:
            problems.append(_problem(label, n, "district", district, _l("未知的区县")))
        lon, lat = _number(rec["lon"]), _number(rec["lat"])
        if (rec["lon"] != "") != (rec["lat"] != ""):
            problems.append(_problem(label, n, "lon/lat", f"{rec['lon']}, {rec['lat']}",
                                     BOTH_OR_NEITHER))
            lon = lat = None
        elif rec["lon"] != "" and (lon is None or lat is None):
            problems.append(_problem(label, n, "lon/lat", f"{rec['lon']}, {rec['lat']}",
                                     _l("不是数字")))
            lon = lat = None
        out.append({"id": rec["id"], "received_at": when, "category": category,
                    "lon": lon, "lat": lat, "crs": rec["crs"] if lon is not None else "",
                    "district": district, "summary": rec["summary"]})
    df = pd.DataFrame(out, columns=["id", "received_at", "category", "lon", "lat", "crs",
                                    "district", "summary"])
    points, bad = complaint_points(df, app.city.metric_crs or None, label, row_base=_ROW_BASE)
    problems += bad
    df = gpd.GeoDataFrame(df, geometry=points, crs=4326)
    problems += _join_districts(df, counties, label)
    missing = df["id"].eq("")
    df.loc[missing, "id"] = [_make_id(r) for r in df.loc[missing].to_dict("records")]
    first = {v: i for i, v in reversed(list(enumerate(df["id"].tolist())))}
    dup = df["id"].duplicated(keep="first")
    problems += [_problem(label, i + _ROW_BASE, "id", df["id"].iat[i], _l(
                          "与第 %(row)s 行编号相同（同一条投诉出现了两次？）",
                          row=first[df["id"].iat[i]] + _ROW_BASE))
                 for i in np.flatnonzero(dup)]
    _reject(label, problems)
    return df


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def _join_districts(df: gpd.GeoDataFrame, counties: gpd.GeoDataFrame, label: str
                    ) -> list[Problem]:
    """Set ``district`` of every located complaint from the county polygon it falls in."""
    located = df.geometry.notna() & ~df.geometry.is_empty
    if not located.any():
        return []
    pts = df.loc[located, ["geometry"]]
    hit = gpd.sjoin(pts, counties[["name", "geometry"]], how="left", predicate="within")
    hit = hit[~hit.index.duplicated(keep="first")]
    df.loc[hit.index, "district"] = hit["name"].where(hit["name"].notna(), "").astype(str)
    outside = hit.index[hit["name"].isna()]
    return [_problem(label, df.index.get_loc(i) + _ROW_BASE, "lon/lat",
                     f"{df.at[i, 'lon']}, {df.at[i, 'lat']}",
                     _l("不在本市任何区县内")) for i in outside]


# ------------------------------------------------------------------------------ use cases
def load_events(app, kind: str, path: str | Path, *,
                limits: Limits | None = None) -> pd.DataFrame:
    """Read and validate a warnings or complaints file without importing it.

    ``limits`` caps the file (the web passes ``services.upload_limits``); None reads any size.
    """
    if kind not in KINDS:
        raise InvalidInput(_l("kind 应为 %(allowed)s 之一，而不是“%(kind)s”",
                              allowed=", ".join(KINDS), kind=kind))
    label = Path(path).name
    raw = read_table_file(path, name=label, limits=limits)
    check_row_limit(len(raw), label, limits)
    if kind == "warnings":
        return validate_warnings(app, raw, label)
    return validate_complaints(app, raw, label)


def _already_stored(app, kind: str, df: pd.DataFrame, label: str) -> list[Problem]:
    """Rows already in the database: importing last week's file twice must not double it."""
    stored = app.repo.table(TABLE_OF[kind])
    if kind == "complaints":
        seen = set(stored["id"].astype(str))
        keys = df["id"].astype(str)
        msg = _l("此编号的投诉已经导入过")
    else:
        def key(frame: pd.DataFrame) -> pd.Series:
            return (frame["grid_code"].astype(str) + "|" + frame["warned_at"].astype(str)
                    + "|" + frame["pollutant"].astype(str))
        seen = set(key(stored)) if len(stored) else set()
        keys = key(df)
        msg = _l("这条预警（网格、时间、污染物）已经导入过")
    return [_problem(label, i + _ROW_BASE, "id" if kind == "complaints" else "grid_code",
                     keys.iat[i], msg) for i in np.flatnonzero(keys.isin(seen).to_numpy())]


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text (empty for missing), the form the repository validates again."""
    def text(v: Any) -> str:
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        return repr(v) if isinstance(v, float) else str(v)
    return frame.apply(lambda col: col.map(text))


def import_events(app, kind: str, path: str | Path, *, user: str,
                  limits: Limits | None = None) -> dict[str, Any]:
    """Validate a file and append it to its event table in one transaction, or reject it.
    Rows repeated inside the file, or already stored, reject it whole."""
    label = Path(path).name
    df = load_events(app, kind, path, limits=limits)
    _reject(label, _already_stored(app, kind, df, label))
    frame = _as_text(pd.DataFrame(df.drop(columns=["geometry"], errors="ignore")))
    count = app.repo.append_rows(TABLE_OF[kind], frame, user=user)
    log.info("imported %d %s from %s by %s", count, kind, label, user)
    return {"kind": kind, "table": TABLE_OF[kind], "file": label, "rows": count}
