"""重污染天气应急减排清单 use cases: the heavy-pollution weather emergency emission-reduction
list.

Each enterprise on the list has a 绩效分级 and its 一厂一策 measures for the yellow, orange and
red warnings (``domain.emergency``). The list is stored per enterprise (``storage.emergency``),
seeded from the city's data file and kept up to date by planners: one enterprise at a time
(optimistic concurrency, like the 准入清单) or many at once by importing the province's
spreadsheet form (all-or-nothing with a row-by-row report); the export writes the same form,
so export then import changes nothing. Rows are linked to the registered enterprises by
credit code, else by exact name; a row without a match is kept and said.

For a chosen warning level, :func:`county_measures` gives what each county must check
(county → enterprises → that level's cut, processes stopped, transport restrictions), as a
page section, an XLSX and a Word document.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd

from geoapp.domain import emergency as E
from geoapp.domain.emergency import (
    EDIT_FIELDS,
    LEVELS,
    EmergencyMeasure,
    Grade,
    Level,
    format_cut,
)
from geoapp.domain.errors import InvalidInput, NotFound, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.exports.docx_common import cjk_date
from geoapp.exports.emergency_docx import write_level_docx
from geoapp.exports.emergency_xlsx import write_form_workbook, write_level_workbook
from geoapp.exports.tables import issued_line
from geoapp.maps.emergency import emergency_map as draw_emergency_map
from geoapp.services.core import Geoapp, check_row_limit
from geoapp.services.pagemap import basemap
from geoapp.storage.emergency import ENTITY
from geoapp.storage.emergency_in import city_counties, known_sites, read_emergency_grid
from geoapp.storage.tables_in import Limits

log = logging.getLogger(__name__)

#: Most characters of the search text on the page.
MAX_QUERY = 100
#: The order grades are listed in.
GRADE_ORDER: dict[str, int] = {g.value: i for i, g in enumerate(Grade)}
UNMATCHED = _l("未匹配到登记企业")


# ------------------------------------------------------------------------------ reading
def measures(app: Geoapp) -> list[EmergencyMeasure]:
    """Every row of the list, in the city's county order, then by name."""
    order = {c: i for i, c in enumerate(app.city.county_names)}
    rows = list(app.repo.emergency_measures().values())
    rows.sort(key=lambda m: (order.get(m.county, len(order)), m.county,
                             GRADE_ORDER.get(m.grade, 99), m.name))
    return rows


def measure(app: Geoapp, key: str) -> EmergencyMeasure:
    return app.repo.emergency_measure(key)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _row(m: EmergencyMeasure) -> dict[str, Any]:
    grade = m.grade_enum
    return {**m.record(), "version": m.version, "updated_at": m.updated_at,
            "updated_by": m.updated_by, "edited": m.origin != "source",
            "grade_label": grade.zh if grade else m.grade,
            "colour": E.grade_colour(m.grade), "matched": bool(m.site_id),
            "levels": {lv.value: {**m.level(lv), "cut_label": format_cut(m.level(lv)["cut_pct"])}
                       for lv in LEVELS}}


def site_measures(app: Geoapp, site_id: str) -> dict[str, Any] | None:
    """The site's row of the list as its site page shows it (grade, each level's measures),
    or None when the list does not name the site."""
    for m in measures(app):
        if m.site_id == site_id:
            row = _row(m)
            row["level_rows"] = [{"value": lv.value, "zh": lv.zh, "colour": lv.colour,
                                  **row["levels"][lv.value]} for lv in LEVELS]
            return row
    return None


def parse_filters(app: Geoapp, *, county: str | None = None, grade: str | None = None,
                  query: str | None = None, matched: str | None = None,
                  level: str | None = None) -> dict[str, Any]:
    """The page's filters checked: a county of the city, a grade, a search text, matched
    (``yes``/``no``) and a warning level; InvalidInput names a bad one."""
    county = (county or "").strip() or None
    if county and county not in app.city.county_names:
        raise InvalidInput(_l("未知辖区：%(name)s", name=county))
    wanted = None
    if grade:
        wanted = E.parse_grade(grade)
        if wanted is None:
            raise InvalidInput(_l("绩效分级应为 A级、B级、C级、D级、引领性 或 非引领性"))
    lv = None
    if level:
        lv = E.parse_level(level)
        if lv is None:
            raise InvalidInput(_l("预警级别应为 黄色、橙色 或 红色"))
    matched = (matched or "").strip().lower() or None
    if matched not in (None, "yes", "no"):
        raise InvalidInput(_l("是否匹配应为 yes 或 no"))
    q = re.sub(r"\s+", "", query or "")[:MAX_QUERY]
    return {"county": county, "grade": wanted, "q": q, "matched": matched, "level": lv}


def list_page(app: Geoapp, **filters: Any) -> dict[str, Any]:
    """What /emergency shows besides the map: the filtered rows, counts by grade (of the
    rows shown) and by county (of every row), the unmatched count and, for a chosen level,
    the measures each county must check."""
    f = parse_filters(app, **filters)
    rows = [_row(m) for m in measures(app)]
    q = _fold(f["q"])
    shown = [r for r in rows
             if (f["county"] is None or r["county"] == f["county"])
             and (f["grade"] is None or r["grade"] == f["grade"].value)
             and (f["matched"] is None or r["matched"] == (f["matched"] == "yes"))
             and (not q or q in _fold(r["name"]) or q in _fold(r["credit_code"]))]
    by_grade = {g.value: sum(1 for r in shown if r["grade"] == g.value) for g in Grade}
    counties = list(dict.fromkeys([*app.city.county_names, *(r["county"] for r in rows)]))
    by_county = [{"county": c, **{g.value: sum(1 for r in rows if r["county"] == c
                                               and r["grade"] == g.value) for g in Grade},
                  "total": sum(1 for r in rows if r["county"] == c)} for c in counties]
    return {"rows": shown, "total": len(rows), "shown": len(shown), "by_grade": by_grade,
            "by_county": [c for c in by_county if c["total"]],
            "unmatched": sum(1 for r in rows if not r["matched"]),
            "level": f["level"],
            "county_measures": county_measures(app, f["level"], rows=rows)
            if f["level"] else [],
            "filters": {"county": f["county"] or "", "grade": f["grade"].value
                        if f["grade"] else "", "q": f["q"], "matched": f["matched"] or "",
                        "level": f["level"].value if f["level"] else ""}}


def county_measures(app: Geoapp, level: Level | str, *,
                    rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """For one warning level, the counties (the city's order) with the enterprises each must
    check and that level's cut, processes stopped and transport restrictions."""
    lv = E.parse_level(level)
    if lv is None:
        raise InvalidInput(_l("预警级别应为 黄色、橙色 或 红色"))
    rows = rows if rows is not None else [_row(m) for m in measures(app)]
    counties = list(dict.fromkeys([*app.city.county_names, *(r["county"] for r in rows)]))
    out = []
    for c in counties:
        mine = [{"key": r["key"], "name": r["name"], "credit_code": r["credit_code"],
                 "industry": r["industry"], "grade": r["grade"],
                 "grade_label": r["grade_label"], "colour": r["colour"],
                 "site_id": r["site_id"], **r["levels"][lv.value]}
                for r in rows if r["county"] == c]
        if mine:
            out.append({"county": c, "rows": mine,
                        "cut_total": sum(1 for r in mine if r["cut_pct"])})
    return out


def emergency_map(app: Geoapp, rows: list[dict[str, Any]], *, level: Level | None = None,
                  site_link: str | None = None,
                  gettext: Callable[[str], str] | None = None) -> folium.Map:
    """The rows' registered enterprises on a map, coloured by grade (with a legend); the
    popup gives the chosen level's cut (red when none is chosen)."""
    sites = app.repo.sites("enterprise", columns=["name"])
    where = {str(i): g for i, g in zip(sites["id"], sites.geometry, strict=True)}
    lv = level or Level.RED
    placed = [r for r in rows if r["site_id"] and r["site_id"] in where]
    tr = gettext or (lambda s: s)
    frame = gpd.GeoDataFrame(
        {"id": [r["site_id"] for r in placed], "name": [r["name"] for r in placed],
         "grade": [r["grade"] for r in placed], "county": [r["county"] for r in placed],
         "industry": [r["industry"] for r in placed],
         "grade_label": [tr(r["grade_label"]) for r in placed],
         "cut_label": [r["levels"][lv.value]["cut_label"] or "—" for r in placed]},
        geometry=[where[r["site_id"]] for r in placed], crs=4326)
    tiles, key = basemap(app)
    centre = (float(sites.geometry.y.mean()), float(sites.geometry.x.mean())) \
        if len(sites) else (0.0, 0.0)
    words = {"gettext": gettext} if gettext is not None else {}
    cut_title = f"{tr(lv.zh + '预警')} · {tr('限产比例(%)')}"
    return draw_emergency_map(frame, center=centre, zoom=app.city.zoom, tiles=tiles,
                              tianditu_key=key, link=site_link, cut_title=cut_title, **words)


#: What the history of a row says for each audit action.
ACTION_LABELS: dict[str, _l] = {"update": _l("修改"), "import": _l("导入")}


def measure_view(app: Geoapp, key: str) -> dict[str, Any]:
    """One enterprise's row with its change history (newest first)."""
    m = measure(app, key)
    history = [{"at": rec["at"], "user": rec["user"],
                "action": ACTION_LABELS.get(rec["action"], rec["action"]),
                "version": (rec.get("after") or {}).get("version")}
               for rec in reversed(app.repo.history(m.key, ENTITY))]
    return {"measure": m, "row": _row(m), "history": history}


def form_values(m: EmergencyMeasure) -> dict[str, str]:
    """The edit form's values (texts; a cut without ``.0``) and the version."""
    out = {f: (format_cut(m.value(f)) if f in E.CUT_FIELDS else str(m.value(f) or ""))
           for f in EDIT_FIELDS}
    out["version"] = str(m.version)
    return out


FIELD_LABELS: dict[str, Any] = {
    "industry": _l("行业"), "grade": _l("绩效分级"), "remarks": _l("备注"),
    **{f"{lv.value}_{k}": _l("%(level)s%(measure)s", level=lv.label,
                             measure=E.MEASURE_LABELS[k])
       for lv in LEVELS for k, _h in E.LEVEL_FIELDS}}


# ------------------------------------------------------------------------------ writing
def save_measure(app: Geoapp, key: str, form: Mapping[str, Any], *, user: str
                 ) -> EmergencyMeasure:
    """Save one enterprise's grade, measures, industry and remarks from its edit form (a
    planner). Bad values are a ValidationFailed naming each field; a version that moved is
    a Conflict (409) naming who saved it when; unchanged values write nothing."""
    try:
        expected = int(str(form.get("version") or "").strip())
    except ValueError:
        raise InvalidInput(_l("缺少版本号，请刷新页面")) from None
    measure(app, key)  # NotFound first
    values, bad = E.check_values({f: form[f] for f in EDIT_FIELDS if f in form})
    if bad:
        problems = [Problem(field=f, label=FIELD_LABELS.get(f, f),
                            value="" if v is None else str(v)[:80], message=msg)
                    for f, v, msg in bad]
        raise ValidationFailed(_l("%(label)s：%(message)s", label=problems[0].label,
                                  message=problems[0].message), details=problems)
    saved = app.repo.update_emergency_measure(key, values, user=user,
                                              expected_version=expected)
    log.info("emergency measures of %s saved by %s (version %s)", key, user, saved.version)
    return saved


def read_import(app: Geoapp, path: str | Path, *, limits: Limits | None = None,
                name: str | None = None) -> list[dict[str, Any]]:
    """The checked, linked records of a sheet in the province's form; ValidationFailed with
    every problem by sheet row and the file's own header."""
    label = name or Path(path).name
    sheet = E.read_emergency_sheet(label, read_emergency_grid(path, name=label,
                                                              limits=limits))
    check_row_limit(len(sheet.rows), label, limits)
    sites = app.repo.sites("enterprise", columns=["name", "credit_code", "district"])
    records, problems = E.sheet_records(sheet, city_counties(app.city), known_sites(sites))
    if problems:
        problems.sort(key=lambda p: p.row if isinstance(p.row, int) else 0)
        p = problems[0]
        raise ValidationFailed(
            _l("%(file)s：%(count)s 处问题，未导入任何内容；第一处：第 %(row)s 行，%(column)s：%(message)s",
               file=label, count=len(problems), row=p.row, column=p.column, message=p.message),
            details=problems)
    if not records:
        raise ValidationFailed(_l("%(file)s：表头下没有数据行，未导入任何内容", file=label))
    return records


def import_list(app: Geoapp, path: str | Path, *, user: str, limits: Limits | None = None,
                name: str | None = None) -> dict[str, Any]:
    """Import the province's form (XLSX or CSV): every row checked first, then all written
    in one transaction, or nothing. The report counts rows created, updated, unchanged and
    not matched to a registered enterprise (named)."""
    label = name or Path(path).name
    records = read_import(app, path, limits=limits, name=label)
    report = app.repo.import_emergency_measures(records, user=user, file=label)
    report["file"] = label
    report["unmatched_names"] = [r["name"] for r in records if not r.get("site_id")]
    log.info("emergency list imported from %s by %s: %s", label, user,
             {k: v for k, v in report.items() if k != "unmatched_names"})
    return report


# ------------------------------------------------------------------------------ files
def export_list(app: Geoapp, path: str | Path) -> Path:
    """Every row in the province's form, as an XLSX at ``path``."""
    rows = [m.record() for m in measures(app)]
    day = _stamp(app).date()
    return write_form_workbook(path, title=f"{app.city.name}重污染天气应急减排清单",
                               rows=rows,
                               period=f"截至{cjk_date(day)}　共{len(rows)}家企业",
                               issued=issued_line(app.city.issuer, day))


def export_filename(app: Geoapp) -> str:
    return f"{app.city.name}重污染天气应急减排清单.xlsx"


def level_title(app: Geoapp, level: Level) -> str:
    return f"{app.city.name}重污染天气{level.zh}预警应急减排措施清单"


def level_filename(app: Geoapp, level: Level, fmt: str) -> str:
    return f"{app.city.name}{level.zh}预警应急减排措施.{fmt}"


def _stamp(app: Geoapp) -> datetime:
    """The list's last change (the documents carry it, never the clock)."""
    times = [m.updated_at for m in app.repo.emergency_measures().values() if m.updated_at]
    if not times:
        return datetime(2000, 1, 1, tzinfo=UTC)
    return datetime.fromisoformat(max(times).replace("Z", "+00:00"))


def write_level(app: Geoapp, level: str, path: str | Path, fmt: str) -> Path:
    """One level's measures by county as ``xlsx`` or ``docx`` at ``path``."""
    lv = E.parse_level(level)
    if lv is None:
        raise NotFound(_l("预警级别应为 黄色、橙色 或 红色"))
    groups = county_measures(app, lv)
    title = level_title(app, lv)
    total = sum(len(g["rows"]) for g in groups)
    if fmt == "xlsx":
        day = _stamp(app).date()
        return write_level_workbook(path, title=title, groups=groups,
                                    period=f"预警级别：{lv.zh}预警　共{total}家企业",
                                    issued=issued_line(app.city.issuer, day))
    if fmt == "docx":
        intro = (f"{lv.zh}预警期间，各县（市、区）按下表逐家核查纳入应急减排清单的 {total} 家企业"
                 "的限产比例、停产工序和运输管控措施落实情况。")
        return write_level_docx(path, title=title, intro=intro, groups=groups,
                                stamp=_stamp(app), issuer=app.city.issuer)
    raise NotFound(_l("没有这种格式：%(fmt)s", fmt=fmt))
