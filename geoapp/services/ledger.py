"""Ledger (整治工作台账) import and export in the bureau's Excel template.

Planners keep the ledger in Excel and submit it upward as it is, so geoapp reads and writes
that exact template. An import validates every cell of every row first (credit-code check
character, 有/无, 租用/征用, 整治分类, dates, numbers, coordinates in their named system) and
rejects the whole file with a row / column / reason report if anything is wrong; a good file
creates or updates the enterprises in one transaction. Export then import gives back the same
data.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geoapp.domain import ledger as L
from geoapp.domain.errors import CoordinateError, InvalidInput, ValidationFailed
from geoapp.domain.vocab import SiteType
from geoapp.exports.ledger_xlsx import (
    NON_DATA_ROWS,
    LedgerSheet,
    read_ledger,
    write_ledger_workbook,
)
from geoapp.services import Geoapp, check_row_limit
from geoapp.spatial.crs import array_to_wgs84
from geoapp.storage.sources import SITE_COLUMNS, convert_frame
from geoapp.storage.tables_in import Limits, read_grid

log = logging.getLogger(__name__)

ENTERPRISE = SiteType.ENTERPRISE.value
_SYSTEM = ("version", "updated_at", "updated_by", "geometry", "geom", "fid")
#: Ledger fields whose stored column is text holding "true"/"false" (others are booleans).
_TEXT_FLAGS = tuple(c.field for c in L.LEDGER_COLUMNS
                    if c.kind == "yesno" and SITE_COLUMNS[ENTERPRISE][c.field] == "text")


# ------------------------------------------------------------------------------ export
def export_ledger(app: Geoapp, path: str | Path, *, district: str | None = None,
                  with_hits: bool = False, unit: str | None = None,
                  filled_on: dt.date | None = None) -> dict[str, Any]:
    """Write the enterprises (all, or one district) as a template workbook at ``path``."""
    city = app.city
    district = _district(app, district)
    sites = app.repo.sites(ENTERPRISE, **({"district": district} if district else {}))
    sites = pd.DataFrame(sites.drop(columns="geometry")).sort_values(["seq", "id"],
                                                                      na_position="last")
    columns = [*L.LEDGER_COLUMNS, *L.LOCATION_COLUMNS, *(L.HIT_COLUMNS if with_hits else ())]
    hits = _hit_texts(app, sites["id"].tolist()) if with_hits else {}
    rows = [_display_row(rec, columns, hits.get(rec["id"], [])) for rec in
            sites.astype(object).where(sites.notna(), None).to_dict("records")]
    day = filled_on or dt.date.today()
    write_ledger_workbook(
        path, title=L.title_for(city.name, _programme_name(app), district or ""),
        unit=unit if unit is not None else f"{city.name}{district or ''}",
        filled_on=f"{day.year}年{day.month}月{day.day}日", columns=columns, rows=rows,
        note_lines=L.NOTE_LINES, unit_label=L.UNIT_LABEL, date_label=L.DATE_LABEL,
        note_title=L.NOTE_PREFIX + "：")
    log.info("ledger export %s: %d enterprises (district %s)", path, len(rows), district or "all")
    return {"path": str(path), "rows": len(rows), "district": district,
            "with_hits": with_hits}


def _district(app: Geoapp, name: str | None) -> str | None:
    if not name:
        return None
    for c in app.city.counties:
        if name in (c.name, c.full_name):
            return c.name
    raise InvalidInput(f"unknown district {name!r}; expected one of "
                       f"{', '.join(app.city.county_names)}")


def _programme_name(app: Geoapp) -> str:
    from geoapp.services.relocation import programme

    return programme(app).name


def _display_row(rec: dict[str, Any], columns: list[L.LedgerColumn],
                 hits: list[str]) -> list[Any]:
    out: list[Any] = []
    for col in columns:
        v = rec.get(col.field)
        if col.kind == "yesno":
            out.append(L.yes_no(v))
        elif col.kind == "classification":
            out.append(L.classification_zh(v) if v else "")
        elif col.field == "crs":
            out.append("wgs84")
        elif col.field == "hit_count":
            out.append(len(hits))
        elif col.field == "hits":
            out.append("；\n".join(hits))
        elif col.kind in ("int", "coordinate"):
            out.append(None if v is None else (int(v) if col.kind == "int" else float(v)))
        else:
            out.append("" if v is None else str(v))
    return out


def _hit_texts(app: Geoapp, ids: list[str]) -> dict[str, list[str]]:
    """Each site's rule hits as 'title：feature（distance m）' lines."""
    from geoapp.services.checks import read_rules

    hits = app.repo.site_hits()
    if hits.empty:
        return {}
    try:
        titles = {r.id: r.title["zh"] for r in read_rules(app.settings["RULES_FILE"])}
    except Exception:  # a broken rules file must not block the ledger; show ids instead
        log.warning("rules file unreadable; ledger hits show rule ids")
        titles = {}
    hits = hits[hits["site_id"].isin(set(ids))]
    out: dict[str, list[str]] = {}
    for h in hits.itertuples(index=False):
        dist = "" if pd.isna(h.distance_m) else f"（{float(h.distance_m):.0f} m）"
        out.setdefault(h.site_id, []).append(
            f"{titles.get(h.rule_id, h.rule_id)}：{h.feature_name or ''}{dist}")
    return out


# ------------------------------------------------------------------------------ import
def import_ledger(app: Geoapp, path: str | Path, *, user: str,
                  limits: Limits | None = None) -> dict[str, Any]:
    """Validate a template workbook whole, then create/update its enterprises in one go.

    ``limits`` caps the file before it is parsed (the web passes ``services.upload_limits``);
    None reads any size.
    """
    label = Path(path).name
    grid = read_grid(path, name=label, limits=limits, extra_rows=NON_DATA_ROWS)
    sheet = read_ledger(label, grid.rows)
    del grid
    check_row_limit(len(sheet.rows), sheet.file, limits)
    records, rows, problems = _records(app, sheet)
    if problems:
        _reject(sheet.file, problems)
    try:
        report = app.repo.import_sites(records, user=user)
    except ValidationFailed as exc:  # storage numbers records from 1: give sheet rows back
        details = [{**p, "file": sheet.file, "row": rows[p["row"] - 1]
                    if isinstance(p.get("row"), int) and 0 < p["row"] <= len(rows)
                    else p.get("row"),
                    "column": _header_of(p.get("column", ""))}
                   for p in (exc.details or [])]
        _reject(sheet.file, details)
    report.update(file=sheet.file, unit=sheet.unit, filled_on=sheet.filled_on)
    _refresh_hits(app)
    log.info("ledger import %s by %s: %s", sheet.file, user, report)
    return report


def _refresh_hits(app: Geoapp) -> None:
    """New or moved enterprises change the rule hits an export --with-hits shows."""
    from geoapp.services.checks import refresh_hits

    refresh_hits(app)


def _records(app: Geoapp, sheet: LedgerSheet
             ) -> tuple[list[dict[str, Any]], list[int], list[dict]]:
    """Validated site records for ``import_sites``, their sheet rows, and every problem."""
    problems: list[dict] = []
    parsed: dict[int, dict[str, Any]] = {}
    for row, cells in sheet.rows:
        values, errs = L.parse_row(cells)
        parsed[row] = values
        problems += [_problem(sheet.file, row, _header_of(f), v, m) for f, v, m in errs]
    problems += _typed_problems(app, sheet.file, parsed)
    lonlat = _coordinates(app, sheet.file, parsed, problems)
    existing = app.repo.sites(ENTERPRISE)
    ids = _match(sheet.file, parsed, existing, lonlat, problems)
    if problems:
        return [], [], problems
    by_id = {r["id"]: r for r in pd.DataFrame(existing.drop(columns="geometry")).astype(object)
             .where(existing.drop(columns="geometry").notna(), None).to_dict("records")}
    records, rows = [], []
    for row, values in parsed.items():
        rec = {k: v for k, v in (by_id.get(ids[row]) or {"site_type": ENTERPRISE,
                                                          "source": "ledger"}).items()
               if k not in _SYSTEM}
        rec["id"] = ids[row]
        rec.update(_storage_values(values))
        if row in lonlat:
            rec["lon"], rec["lat"] = lonlat[row]
        records.append(rec)
        rows.append(row)
    return records, rows, []


def _storage_values(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for col in L.LEDGER_COLUMNS:
        if col.field not in values:
            continue
        v = values[col.field]
        if col.field in _TEXT_FLAGS:
            v = "" if v is None else ("true" if v else "false")
        out[col.field] = v
    return out


def _typed_problems(app: Geoapp, file: str, parsed: dict[int, dict[str, Any]]) -> list[dict]:
    """The site schema's own checks (district among the city's counties...), by sheet row."""
    fields = [c.field for c in L.LEDGER_COLUMNS]
    spec = {f: SITE_COLUMNS[ENTERPRISE][f] for f in fields}
    raw = pd.DataFrame([{f: _as_text(v.get(f)) for f in fields} for v in parsed.values()],
                       index=list(parsed), columns=fields)
    if raw.empty:
        return []
    _, errs = convert_frame(raw, spec, file, app.city, row_base=0)
    return [{**p, "column": _header_of(p["column"])} for p in errs]


def _as_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _coordinates(app: Geoapp, file: str, parsed: dict[int, dict[str, Any]],
                 problems: list[dict]) -> dict[int, tuple[float, float]]:
    """WGS84 lon/lat for rows that give 经度/纬度, converted from the system they name."""
    given = {r: v for r, v in parsed.items()
             if v.get("lon") is not None and v.get("lat") is not None and v.get("crs")}
    out: dict[int, tuple[float, float]] = {}
    by_crs: dict[str, list[int]] = {}
    for r, v in given.items():
        by_crs.setdefault(str(v["crs"]).strip(), []).append(r)
    for crs, rows in by_crs.items():
        x = np.array([parsed[r]["lon"] for r in rows], dtype=float)
        y = np.array([parsed[r]["lat"] for r in rows], dtype=float)
        try:
            lon, lat, bad, reasons = array_to_wgs84(x, y, crs, app.metric_crs)
        except CoordinateError as exc:
            problems += [_problem(file, r, "坐标系", crs, exc.message) for r in rows]
            continue
        for i, r in enumerate(rows):
            if bad[i]:
                problems.append(_problem(file, r, "经度/纬度", f"{x[i]}, {y[i]}", reasons[i]))
            else:
                out[r] = (float(lon[i]), float(lat[i]))
    return out


def _match(file: str, parsed: dict[int, dict[str, Any]], existing: pd.DataFrame,
           lonlat: dict[int, tuple[float, float]], problems: list[dict]) -> dict[int, str]:
    """Each row's site id: the known enterprise by credit code, else by name, else a new id."""
    by_code = {str(c).upper(): i for c, i in zip(existing["credit_code"], existing["id"],
                                                 strict=True) if c}
    by_name = {str(n): i for n, i in zip(existing["name"], existing["id"], strict=True) if n}
    next_no = _next_number(existing["id"].tolist())
    ids: dict[int, str] = {}
    seen: dict[str, int] = {}  # credit code (or name) and site id -> first row
    for row, v in parsed.items():
        code, name = v.get("credit_code") or "", v.get("name") or ""
        sid = by_code.get(code) or by_name.get(name)
        if sid is None:
            if row not in lonlat and not any(p["row"] == row for p in problems):
                problems.append(_problem(file, row, "经度", "", "新企业须填经度、纬度和坐标系 "
                                         "(not a known enterprise by credit code or name: "
                                         "give 经度/纬度/坐标系)"))
            sid = f"E{next_no:04d}"
            next_no += 1
        first = seen.get(f"key:{code or name}") or seen.get(f"id:{sid}")
        if first is not None:
            problems.append(_problem(file, row, _header_of("credit_code"), code,
                                     f"same enterprise as row {first}: each enterprise "
                                     "once per file"))
        seen.setdefault(f"key:{code or name}", row)
        seen.setdefault(f"id:{sid}", row)
        ids[row] = sid
    return ids


def _next_number(ids: list[str]) -> int:
    nums = [int(i[1:]) for i in ids if isinstance(i, str) and i[:1] == "E" and i[1:].isdigit()]
    return max(nums, default=0) + 1


_HEADERS = {c.field: c.header for c in (*L.LEDGER_COLUMNS, *L.LOCATION_COLUMNS)}


def _header_of(field_name: str) -> str:
    return _HEADERS.get(field_name, field_name)


def _problem(file: str, row: Any, column: str, value: Any, message: str) -> dict:
    return {"file": file, "row": row, "column": column,
            "value": "" if value is None else str(value), "message": message}


def _reject(file: str, problems: list[dict]) -> None:
    problems = sorted(problems, key=lambda p: (p["row"] if isinstance(p["row"], int) else 0))
    p = problems[0]
    raise ValidationFailed(f"{file}: {len(problems)} problem(s), nothing imported; first: "
                           f"row {p['row']}, column {p['column']}: {p['message']}",
                           details=problems)
