"""三线一单 use cases: the control units and their 生态环境准入清单 (access lists).

The units are a layer of kind ``units`` (city.toml); each unit's list is stored per unit
code (``storage.units``), seeded from the city's data file and edited by planners: one unit
at a time on its page (optimistic concurrency: an edit names the version the planner saw), or
many at once by importing the spreadsheet form in which provinces publish the lists (one row
per unit, one column per part; CSV or XLSX, all-or-nothing with a row-by-row report). The
export writes the same form, so export then import changes nothing.

The parcel check calls :func:`unit_requirements` and :func:`units_layer_name`; the lines of a
list that name a project's industry come from :func:`flagged_lines` (the city's keyword
table widens an industry to its synonyms).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from geoapp.domain import units as U
from geoapp.domain.errors import InvalidInput, NotFound, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.domain.units import PART_KEYS, LayerUnit, UnitCategory, UnitRequirements
from geoapp.exports.units_xlsx import write_units_workbook
from geoapp.services.core import Geoapp, check_row_limit
from geoapp.services.site_page import local_time
from geoapp.storage.tables_in import Limits
from geoapp.storage.units import ENTITY
from geoapp.storage.units_in import read_sheet_grid

log = logging.getLogger(__name__)

#: Most characters of the search text on the list page.
MAX_QUERY = 100


# ------------------------------------------------------------------------------ for the parcel check
def units_layer_name(app: Geoapp) -> str | None:
    """The city's layer of kind ``units`` (stored in the database), or None."""
    name = app.city.units_layer
    return name if name and name in app.repo.layer_names() else None


def unit_requirements(app: Geoapp, codes: Iterable[str]) -> dict[str, UnitRequirements]:
    """The stored lists of these unit codes, by code; codes without a list are absent."""
    return app.repo.unit_requirements(list(codes))


def industry_keywords(app: Geoapp) -> Mapping[str, tuple[str, ...]]:
    """The city's table of the words naming an industry ([units.industry_keywords])."""
    return app.city.industry_keywords


def flagged_lines(app: Geoapp, requirements: UnitRequirements, industry: Any
                  ) -> list[tuple[str, str]]:
    """(part key, line) of every line of a unit's list naming the project's industry or one
    of its words in the city's keyword table; none for an empty industry."""
    return U.flagged_lines(requirements, industry, industry_keywords(app))


# ------------------------------------------------------------------------------ reading
def _layer_or_error(app: Geoapp) -> str:
    name = units_layer_name(app)
    if name is None:
        raise NotFound(_l("本市没有环境管控单元图层（city.toml 中 kind = \"units\" 的图层）"))
    return name


def layer_units(app: Geoapp) -> dict[str, LayerUnit]:
    """The units of the layer by code, in layer order ({} without a units layer)."""
    name = units_layer_name(app)
    if name is None:
        return {}
    return {r["code"]: LayerUnit(**r) for r in app.repo.layer_unit_rows(name) if r["code"]}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def unit_list(app: Geoapp, *, county: str | None = None, category: str | None = None,
              query: str | None = None) -> dict[str, Any]:
    """The units of the layer with their list's state, filtered by county, category and a
    search text (in the code or name), and the counts by category and county."""
    units = layer_units(app)
    stored = app.repo.unit_list_summary() if units else {}
    county = (county or "").strip() or None
    if county and county not in app.city.county_names:
        raise InvalidInput(_l("未知辖区：%(name)s", name=county))
    wanted = None
    if category:
        wanted = U.parse_category(category)
        if wanted is None:
            raise InvalidInput(_l("管控单元分类应为 优先保护、重点管控 或 一般管控"))
    q = re.sub(r"\s+", "", query or "")[:MAX_QUERY]
    rows = []
    for code, u in units.items():
        s = stored.get(code)
        rows.append({"code": code, "name": u.name, "category": u.category, "county": u.county,
                     "colour": U.category_colour(u.category), "has_list": bool(s and s["chars"]),
                     "version": s["version"] if s else 0,
                     "updated_at": s["updated_at"] if s else "",
                     "updated_by": s["updated_by"] if s else "",
                     "edited": bool(s and s["origin"] != "source")})
    order = {c: i for i, c in enumerate(app.city.county_names)}
    cats = list(UnitCategory)
    rows.sort(key=lambda r: (order.get(r["county"], len(order)),
                             cats.index(U.parse_category(r["category"]))
                             if U.parse_category(r["category"]) else 9, r["code"]))
    shown = [r for r in rows
             if (county is None or r["county"] == county)
             and (wanted is None or U.parse_category(r["category"]) == wanted)
             and (not q or _fold(q) in _fold(r["code"]) or _fold(q) in _fold(r["name"]))]
    by_category = {c.value: sum(1 for r in shown if r["category"] == c.value) for c in cats}
    by_county = [{"county": name,
                  **{c.value: sum(1 for r in rows if r["county"] == name
                                  and r["category"] == c.value) for c in cats},
                  "total": sum(1 for r in rows if r["county"] == name)}
                 for name in app.city.county_names]
    return {"layer": units_layer_name(app), "rows": shown, "total": len(rows),
            "shown": len(shown), "by_category": by_category, "by_county": by_county,
            "missing": sum(1 for r in rows if not r["has_list"]),
            "filters": {"county": county or "", "category": wanted.value if wanted else "",
                        "q": q}}


#: What the history of a list says for each audit action.
ACTION_LABELS: dict[str, _l] = {"create": _l("新建"), "update": _l("修改"), "import": _l("导入")}


def unit_view(app: Geoapp, code: str, *, industry: str | None = None) -> dict[str, Any]:
    """One unit: its layer attributes, its stored list (None without one), each part cut
    into its items (those naming ``industry`` or one of its words marked), and the list's
    change history, newest first, in local time."""
    _layer_or_error(app)
    key = U.normalise_unit_code(code)
    units = layer_units(app)
    unit = units.get(key)
    stored = app.repo.unit_requirements([key]).get(key)
    if unit is None and stored is None:
        raise NotFound(_l("没有编码为 %(code)s 的环境管控单元", code=code))
    if unit is None:  # a list kept for a unit the layer no longer has
        unit = LayerUnit(code=key, name=stored.name, category=stored.category,
                         county=stored.county)
    words = U.industry_words(industry, industry_keywords(app))
    parts = []
    for k in PART_KEYS:
        text = stored.part(k) if stored else ""
        parts.append({"key": k, "name": U.PART_LABELS[k], "text": text,
                      "lines": [{"text": line, "flagged": bool(words)
                                 and U.line_names(line, words)}
                                for line in U.requirement_lines(text)]})
    history = []
    for rec in reversed(app.repo.history(key, ENTITY)):
        after, before = rec.get("after") or {}, rec.get("before") or {}
        changed = [U.PART_LABELS[k] for k in PART_KEYS
                   if k in after and (before.get(k) or "") != (after.get(k) or "")]
        history.append({"at": local_time(rec["at"]), "user": rec["user"],
                        "action": ACTION_LABELS.get(rec["action"], rec["action"]),
                        "version": after.get("version"), "parts": changed})
    return {"unit": unit, "requirements": stored, "parts": parts, "in_layer": key in units,
            "colour": U.category_colour(unit.category), "history": history,
            "industry": " ".join(words[:1]), "flagged": sum(
                1 for p in parts for line in p["lines"] if line["flagged"])}


def form_values(stored: UnitRequirements | None) -> dict[str, str]:
    """The edit form's values: the four texts and the version (0: no list yet)."""
    out = {k: (stored.part(k) if stored else "") for k in PART_KEYS}
    out["version"] = str(stored.version if stored else 0)
    return out


# ------------------------------------------------------------------------------ writing
def _version(form: Mapping[str, Any]) -> int:
    try:
        return int(str(form.get("version") or "").strip())
    except ValueError:
        raise InvalidInput(_l("缺少版本号，请刷新页面")) from None


def save_unit(app: Geoapp, code: str, form: Mapping[str, Any], *, user: str
              ) -> UnitRequirements:
    """Save the four texts of one unit's list from its edit form (a planner). A text over
    the limit is a ValidationFailed naming the part; a version that moved is a Conflict
    (409) naming who saved it when; unchanged texts write nothing."""
    _layer_or_error(app)
    key = U.normalise_unit_code(code)
    unit = layer_units(app).get(key)
    if unit is None and not app.repo.unit_requirements([key]):
        raise NotFound(_l("没有编码为 %(code)s 的环境管控单元", code=code))
    expected = _version(form)
    # a part the form does not carry keeps its stored text (a form of one part, a broken
    # client): only a part sent blank is blanked
    stored = app.repo.unit_requirements([key]).get(key) \
        if any(k not in form for k in PART_KEYS) else None
    texts = {k: U.clean_part_text(form[k]) if k in form
             else (stored.part(k) if stored is not None else "") for k in PART_KEYS}
    problems = [Problem(field=k, label=U.PART_LABELS[k], value=t[:40] + "…",
                        message=_l("过长：最多 %(limit)s 字", limit=U.MAX_PART_CHARS))
                for k, t in texts.items() if len(t) > U.MAX_PART_CHARS]
    if problems:
        raise ValidationFailed(_l("%(label)s：%(message)s", label=problems[0].label,
                                  message=problems[0].message), details=problems)
    saved = app.repo.update_unit_requirements(key, texts, user=user, expected_version=expected,
                                              unit=unit)
    log.info("unit list %s saved by %s (version %s)", key, user, saved.version)
    return saved


def import_units(app: Geoapp, path: str | Path, *, user: str, limits: Limits | None = None,
                 name: str | None = None) -> dict[str, Any]:
    """Import the published form (CSV or XLSX; one row per unit): every row checked against
    the units layer first, then all lists written in one transaction, or nothing and
    ValidationFailed with every problem by sheet row and the file's column header."""
    _layer_or_error(app)
    label = name or Path(path).name
    sheet = U.read_unit_sheet(label, read_sheet_grid(path, name=label, limits=limits))
    check_row_limit(len(sheet.rows), label, limits)
    records, problems = U.sheet_records(sheet, layer_units(app))
    if problems:
        _reject(label, problems)
    if not records:
        raise ValidationFailed(_l("%(file)s：表头下没有数据行，未导入任何内容", file=label))
    report = app.repo.import_unit_requirements(records, user=user, file=label)
    report["file"] = label
    log.info("unit lists imported from %s by %s: %s", label, user, report)
    return report


def _reject(file: str, problems: list[Problem]) -> None:
    problems = sorted(problems, key=lambda p: p.row if isinstance(p.row, int) else 0)
    p = problems[0]
    raise ValidationFailed(
        _l("%(file)s：%(count)s 处问题，未导入任何内容；第一处：第 %(row)s 行，%(column)s：%(message)s",
           file=file, count=len(problems), row=p.row, column=p.column, message=p.message),
        details=problems)


def export_units(app: Geoapp, path: str | Path) -> Path:
    """Every unit of the layer with its list, in the published form, as an XLSX at ``path``
    (a unit without a list has empty parts)."""
    _layer_or_error(app)
    stored = app.repo.unit_requirements()
    rows = []
    for code, u in layer_units(app).items():
        s = stored.get(code)
        rows.append({"code": code, "name": (s.name if s else "") or u.name,
                     "province": app.city.province, "city": app.city.name,
                     "county": u.county, "category": u.category,
                     **{k: (s.part(k) if s else "") for k in PART_KEYS}})
    return write_units_workbook(path, title=f"{app.city.name}环境管控单元生态环境准入清单",
                                rows=rows)


def export_filename(app: Geoapp) -> str:
    return f"{app.city.name}生态环境准入清单.xlsx"
