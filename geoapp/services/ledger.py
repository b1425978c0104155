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
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from geoapp.domain import ledger as L
from geoapp.domain.errors import InvalidInput, Problem, ValidationFailed
from geoapp.domain.fields import ledger_header
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import SiteType
from geoapp.exports.ledger_xlsx import (
    NON_DATA_ROWS,
    LedgerSheet,
    read_ledger,
    write_ledger_workbook,
)
from geoapp.services import Geoapp, check_row_limit, deadlines
from geoapp.services.checks import read_rules, refresh_hits
from geoapp.services.relocation import programme
from geoapp.storage.sources import SITE_COLUMNS, convert_frame, points_to_wgs84
from geoapp.storage.tables_in import Limits, read_grid

log = logging.getLogger(__name__)

ENTERPRISE = SiteType.ENTERPRISE.value
_SYSTEM = ("version", "updated_at", "updated_by", "geometry", "geom", "fid")
#: Ledger fields whose stored column is text holding "true"/"false" (others are booleans).
_TEXT_FLAGS = tuple(c.field for c in L.LEDGER_COLUMNS
                    if c.kind == "yesno" and SITE_COLUMNS[ENTERPRISE][c.field] == "text")
#: The 7th note line, when the progress columns are written.
NOTE_PROGRESS = ("7. 整治进度各列可不填；进度阶段填“未启动”“已启动”“已完成”“已验收销号”，"
                 "日期如2020-06-30，新址经度、纬度按本行坐标系。")


# ------------------------------------------------------------------------------ export
def export_ledger(app: Geoapp, path: str | Path, *, district: str | None = None,
                  with_hits: bool = False, with_progress: bool = False,
                  unit: str | None = None, filled_on: dt.date | None = None,
                  with_deadlines: bool = False, as_of: dt.date | None = None
                  ) -> dict[str, Any]:
    """Write the enterprises (all, or one district) as a template workbook at ``path``.

    ``with_progress`` adds the programme's progress columns (进度阶段, dates, new site, land,
    revenue) after the location; an import reads them back. ``with_deadlines`` adds the
    整改完成时限's status and days overdue as of ``as_of`` (default: today, the city's
    calendar), which an import ignores.
    """
    city = app.city
    district = _district(app, district)
    sites = app.repo.sites(ENTERPRISE, **({"district": district} if district else {}))
    sites = pd.DataFrame(sites.drop(columns="geometry")).sort_values(["seq", "id"],
                                                                      na_position="last")
    columns = [*L.LEDGER_COLUMNS, *L.LOCATION_COLUMNS,
               *(L.PROGRESS_COLUMNS if with_progress else ()),
               *(L.DEADLINE_COLUMNS if with_deadlines else ()),
               *(L.HIT_COLUMNS if with_hits else ())]
    hits = _hit_texts(app, sites["id"].tolist()) if with_hits else {}
    records = sites.astype(object).where(sites.notna(), None).to_dict("records")
    if with_deadlines:
        statuses, days = deadlines.deadline_columns(sites, as_of or deadlines.local_today(),
                                                    deadlines.rules(app))
        for rec, status, n in zip(records, statuses, days, strict=True):
            rec["deadline_status"], rec["days_overdue"] = deadlines.status_name(status), n
    rows = [_display_row(rec, columns, hits.get(rec["id"], [])) for rec in records]
    day = filled_on or dt.date.today()
    write_ledger_workbook(
        path, title=L.title_for(city.name, _programme_name(app), district or ""),
        unit=unit if unit is not None else f"{city.name}{district or ''}",
        filled_on=f"{day.year}年{day.month}月{day.day}日", columns=columns, rows=rows,
        note_lines=(*L.NOTE_LINES, *((NOTE_PROGRESS,) if with_progress else ())),
        unit_label=L.UNIT_LABEL, date_label=L.DATE_LABEL, note_title=L.NOTE_PREFIX + "：")
    log.info("ledger export %s: %d enterprises (district %s)", path, len(rows), district or "all")
    return {"path": str(path), "rows": len(rows), "district": district,
            "with_hits": with_hits, "with_progress": with_progress,
            "with_deadlines": with_deadlines}


def _district(app: Geoapp, name: str | None) -> str | None:
    if not name:
        return None
    for c in app.city.counties:
        if name in (c.name, c.full_name):
            return c.name
    raise InvalidInput(_l("未知辖区“%(name)s”，应为以下之一：%(allowed)s", name=name,
                          allowed="、".join(app.city.county_names)))


def _programme_name(app: Geoapp) -> str:
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
        elif col.kind == "stage":
            out.append(L.stage_zh(v) if v else "")
        elif col.field == "crs":
            out.append("wgs84")
        elif col.field == "hit_count":
            out.append(len(hits))
        elif col.field == "hits":
            out.append("；\n".join(hits))
        elif col.kind in ("int", "coordinate", "amount"):
            out.append(None if v is None else (int(v) if col.kind == "int" else float(v)))
        else:
            out.append("" if v is None else str(v))
    return out


def _hit_texts(app: Geoapp, ids: list[str]) -> dict[str, list[str]]:
    """Each site's rule hits as 'title：feature（distance m）' lines."""
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
        if not exc.details:
            raise
        _reject(sheet.file, [_sheet_problem(p, sheet.file, rows) for p in exc.details])
    report.update(file=sheet.file, unit=sheet.unit, filled_on=sheet.filled_on)
    refresh_hits(app)  # new or moved enterprises change the hits an export --with-hits shows
    log.info("ledger import %s by %s: %s", sheet.file, user, report)
    return report


def _sheet_problem(p: Problem, file: str, rows: list[int]) -> Problem:
    """A storage problem (record n) as the sheet's (row, header)."""
    row = rows[p.row - 1] if isinstance(p.row, int) and 0 < p.row <= len(rows) else p.row
    return replace(p, file=file, row=row, column=_header_of(p.column or ""))


def _records(app: Geoapp, sheet: LedgerSheet) -> tuple[list[dict[str, Any]], list[int],
                                                        list[Problem]]:
    """Validated site records for ``import_sites``, their sheet rows, and every problem."""
    problems: list[Problem] = []
    parsed: dict[int, dict[str, Any]] = {}
    for row, cells in sheet.rows:
        values, errs = L.parse_row(cells)
        parsed[row] = values
        problems += [replace(p, file=sheet.file, row=row, column=_header_of(p.field or ""),
                             field=None, label=None) for p in errs]
    problems += _typed_problems(app, sheet.file, parsed)
    lonlat, new_sites = _coordinates(app, sheet.file, parsed, problems)
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
        if row in new_sites:
            rec["new_lon"], rec["new_lat"] = new_sites[row]
        elif "new_lon" in values:  # the column is there and empty: no new site
            rec["new_lon"] = rec["new_lat"] = None
        records.append(rec)
        rows.append(row)
    return records, rows, []


#: Fields of the template and progress columns a record takes as parsed.
_VALUE_COLUMNS = tuple(c for c in (*L.LEDGER_COLUMNS, *L.PROGRESS_COLUMNS)
                       if c.kind != "coordinate")


def _storage_values(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for col in _VALUE_COLUMNS:
        if col.field not in values:
            continue
        v = values[col.field]
        if col.field in _TEXT_FLAGS:
            v = "" if v is None else ("true" if v else "false")
        elif col.kind == "date" and v == "":
            v = None
        out[col.field] = v
    return out


def _typed_problems(app: Geoapp, file: str, parsed: dict[int, dict[str, Any]]
                    ) -> list[Problem]:
    """The site schema's own checks (district among the city's counties, the coordinate
    pairs...), by sheet row: the same ``convert_frame`` that reads the source files."""
    present = {f for v in parsed.values() for f in v}
    fields = [c.field for c in (*L.LEDGER_COLUMNS, *L.LOCATION_COLUMNS, *L.PROGRESS_COLUMNS)
              if c.field in present and c.field != "crs"]
    # coordinates are still in the row's own system here: numbers, checked once converted
    spec = {f: "float" if f in _COORDINATES else SITE_COLUMNS[ENTERPRISE][f] for f in fields}
    raw = pd.DataFrame([{f: _as_text(v.get(f)) for f in fields} for v in parsed.values()],
                       index=list(parsed), columns=fields)
    if raw.empty:
        return []
    _, errs = convert_frame(raw, spec, file, app.city, row_base=0)
    return [replace(p, column=_header_of(p.column or "")) for p in errs]


_COORDINATES = ("lon", "lat", "new_lon", "new_lat")


def _as_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _coordinates(app: Geoapp, file: str, parsed: dict[int, dict[str, Any]],
                 problems: list[Problem]
                 ) -> tuple[dict[int, tuple[float, float]], dict[int, tuple[float, float]]]:
    """WGS84 lon/lat of the rows that give 经度/纬度 (and 新址经度/新址纬度), converted from
    the system their 坐标系 names."""
    rows = list(parsed)
    systems = [str(parsed[r].get("crs") or "").strip() for r in rows]
    out = []
    for a, b in (("lon", "lat"), ("new_lon", "new_lat")):
        x = [_number(parsed[r].get(a)) for r in rows]
        y = [_number(parsed[r].get(b)) for r in rows]
        lon, lat, errs = points_to_wgs84(
            x, y, systems, app.metric_crs, file=file, rows=rows,
            column=f"{_header_of(a)}/{_header_of(b)}", crs_column=_header_of("crs"))
        problems += errs
        out.append({r: (float(lon[i]), float(lat[i])) for i, r in enumerate(rows)
                    if lon[i] == lon[i]})
    return out[0], out[1]


def _number(v: Any) -> float:
    return float("nan") if v is None or v == "" else float(v)


def _match(file: str, parsed: dict[int, dict[str, Any]], existing: pd.DataFrame,
           lonlat: dict[int, tuple[float, float]], problems: list[Problem]) -> dict[int, str]:
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
            if row not in lonlat and not any(p.row == row for p in problems):
                problems.append(Problem(
                    file=file, row=row, column=_header_of("lon"), value="",
                    message=_l("系统中没有此企业（按信用代码或名称都找不到），新企业须填经度、纬度和坐标系")))
            sid = f"E{next_no:04d}"
            next_no += 1
        first = seen.get(f"key:{code or name}") or seen.get(f"id:{sid}")
        if first is not None:
            problems.append(Problem(
                file=file, row=row, column=_header_of("credit_code"), value=code,
                message=_l("与第 %(row)s 行是同一家企业：每家企业在一个文件中只能出现一次",
                           row=first)))
        seen.setdefault(f"key:{code or name}", row)
        seen.setdefault(f"id:{sid}", row)
        ids[row] = sid
    return ids


def _next_number(ids: list[str]) -> int:
    nums = [int(i[1:]) for i in ids if isinstance(i, str) and i[:1] == "E" and i[1:].isdigit()]
    return max(nums, default=0) + 1


def _header_of(field_name: str) -> str:
    """The column title the template prints for a field (the field name if not a column)."""
    return ledger_header(field_name)


def _reject(file: str, problems: list[Problem]) -> None:
    problems = sorted(problems, key=lambda p: p.row if isinstance(p.row, int) else 0)
    p = problems[0]
    raise ValidationFailed(
        _l("%(file)s：%(count)s 处问题，未导入任何内容；第一处：第 %(row)s 行，%(column)s：%(message)s",
           file=file, count=len(problems), row=p.row, column=p.column, message=p.message),
        details=problems)
