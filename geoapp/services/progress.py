"""The planners' progress workflow for one enterprise: classification, stage, dates, new site,
land and revenue figures, notes.

The form is validated as a whole here (every problem named by its field), then handed to
``Repository.update_site`` with the version the planner saw. If another planner saved in
between, the repository raises ``Conflict``; this module adds what that other planner changed
so the page can show it next to the planner's own, unsaved input — nothing is overwritten
silently. After a save the rule hits are refreshed, because a new site or a new
classification changes which rules apply.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from geoapp.domain.errors import Conflict, CoordinateError, InvalidInput, Problem, ValidationFailed
from geoapp.domain.fields import labels
from geoapp.domain.ledger import DATE_FIELDS, progress_problems
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import Classification, SiteType, Stage
from geoapp.services.checks import refresh_hits
from geoapp.services.deadlines import local_today
from geoapp.services.inspection import display_value
from geoapp.spatial.crs import parse_point

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

#: Fields of the progress form, in form order, with their labels (the vocabulary's headers).
PROGRESS_FIELDS: tuple[tuple[str, str], ...] = labels((
    "classification", "stage", *DATE_FIELDS, "new_site_name", "new_lon", "new_lat",
    "new_site_area_mu", "vacated_mu", "listed_mu", "sale_revenue_wan", "progress", "remarks"))
LABELS: dict[str, str] = dict(PROGRESS_FIELDS)
NUMBER_FIELDS = ("new_site_area_mu", "vacated_mu", "listed_mu", "sale_revenue_wan")
TEXT_FIELDS = ("new_site_name", "progress", "remarks")
TEXT_LIMIT = 4000
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def form_values(site: Mapping[str, Any]) -> dict[str, str]:
    """The stored values as the form shows them (text; machine names for the two choices)."""
    out: dict[str, str] = {}
    for f, _label in PROGRESS_FIELDS:
        v = site.get(f)
        if v is None or (isinstance(v, float) and v != v):
            out[f] = ""
        elif isinstance(v, float):
            out[f] = f"{v:g}" if f not in ("new_lon", "new_lat") else f"{v:.6f}"
        else:
            out[f] = str(v)
    out["new_crs"] = "wgs84"
    out["version"] = str(site.get("version", ""))
    return out


def _problem(field: str, value: Any, message: str) -> Problem:
    return Problem(field=field, label=LABELS.get(field, field), value=value, message=message)


def _date(form: Mapping[str, Any], f: str, problems: list[Problem]) -> str | None:
    text = str(form.get(f) or "").strip()
    if not text:
        return None
    try:
        if not _ISO_DATE.match(text):
            raise ValueError
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        problems.append(_problem(f, text, _l("日期须为 YYYY-MM-DD 格式")))
        return None


def _number(form: Mapping[str, Any], f: str, problems: list[Problem]) -> float | None:
    text = str(form.get(f) or "").strip().replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(_problem(f, text, _l("须为数字")))
        return None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        problems.append(_problem(f, text, _l("须为不小于 0 的数")))
        return None
    return value


def _choice(form: Mapping[str, Any], f: str, enum, problems: list[Problem]) -> str | None:
    text = str(form.get(f) or "").strip()
    if not text:
        problems.append(_problem(f, text, _l("必填，不能为空")))
        return None
    try:
        return enum.parse(text).value
    except ValueError:
        problems.append(_problem(f, text, _l("不在可选范围内")))
        return None


def _new_site(app: Geoapp, form: Mapping[str, Any],
              problems: list[Problem]) -> tuple[float | None, float | None]:
    lon, lat = (str(form.get(k) or "").strip() for k in ("new_lon", "new_lat"))
    crs = str(form.get("new_crs") or "wgs84").strip() or "wgs84"
    if not lon and not lat:
        return None, None
    try:
        x, y = parse_point(lon, lat, crs, metric_crs=app.metric_crs)
    except (CoordinateError, ValueError) as exc:
        msg = getattr(exc, "message", None) or str(exc)
        problems.append(_problem("new_lon", f"{lon}, {lat} ({crs})", msg))
        return None, None
    return round(x, 7), round(y, 7)


#: Dates of what was done: never after today (a planned date may be).
ACTUAL_DATES = ("actual_start", "actual_completion")


def validate(app: Geoapp, form: Mapping[str, Any]) -> dict[str, Any]:
    """The form as storage values; ValidationFailed lists every problem by field."""
    problems: list[Problem] = []
    out: dict[str, Any] = {
        "classification": _choice(form, "classification", Classification, problems),
        "stage": _choice(form, "stage", Stage, problems),
    }
    for f in DATE_FIELDS:
        out[f] = _date(form, f, problems)
    for f in NUMBER_FIELDS:
        out[f] = _number(form, f, problems)
    for f in TEXT_FIELDS:
        text = str(form.get(f) or "").strip()
        if len(text) > TEXT_LIMIT:
            problems.append(_problem(f, text[:40] + "…", _l("过长：最多 %(limit)s 字",
                                                            limit=TEXT_LIMIT)))
        out[f] = text or None
    out["new_lon"], out["new_lat"] = _new_site(app, form, problems)
    today = local_today()
    for f in ACTUAL_DATES:  # what happened cannot have happened after today
        if out.get(f) and dt.date.fromisoformat(out[f]) > today:
            problems.append(_problem(f, out[f], _l("实际日期不能晚于今天（%(today)s）",
                                                   today=today.isoformat())))
    problems += progress_problems(out)
    if problems:
        first = problems[0]
        raise ValidationFailed(_l("%(label)s：%(message)s", label=first.label,
                                  message=first.message), details=problems)
    return out


def _version(form: Mapping[str, Any]) -> int:
    try:
        return int(str(form.get("version") or "").strip())
    except ValueError:
        raise InvalidInput(_l("缺少版本号，请刷新页面")) from None


def save_progress(app: Geoapp, site_id: str, form: Mapping[str, Any], *,
                  user: str) -> dict[str, Any]:
    """Validate and save; Conflict (with the other editor's changes) if the version moved."""
    site = app.repo.site(site_id)
    if site["site_type"] != SiteType.ENTERPRISE:
        raise InvalidInput(_l("%(id)s 不是工业企业", id=site_id))
    expected = _version(form)
    changes = validate(app, form)
    changes = {k: v for k, v in changes.items() if v != site.get(k)}
    if int(site["version"]) != expected:
        raise _conflict(app, site, expected)
    if not changes:
        return site
    try:
        after = app.repo.update_site(site_id, changes, user=user, expected_version=expected)
    except Conflict:
        raise _conflict(app, app.repo.site(site_id), expected) from None
    log.info("progress of %s saved by %s: %s", site_id, user, ", ".join(changes))
    refresh_hits(app)
    return after


def changes_since(app: Geoapp, site_id: str, version: int,
                  labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Field changes saved after ``version``: who, when, field, before, after."""
    labels = labels or LABELS
    out = []
    for rec in app.repo.history(site_id, "site"):
        after = rec.get("after") or {}
        before = rec.get("before") or {}
        if int(after.get("version") or 0) <= version:
            continue
        for k in after:
            if k in ("version", "updated_at", "updated_by") or before.get(k) == after.get(k):
                continue
            out.append({"at": rec["at"], "user": rec["user"], "field": k,
                        "label": labels.get(k, k), "before": display_value(k, before.get(k)),
                        "after": display_value(k, after.get(k))})
    return out


def _conflict(app: Geoapp, current: Mapping[str, Any], expected: int) -> Conflict:
    sid = str(current["id"])
    theirs = changes_since(app, sid, expected)
    return Conflict(
        _l("%(user)s 已于 %(at)s 修改了该企业（版本 %(version)s，你编辑的是版本 %(expected)s）；"
           "请核对后重新保存", user=current["updated_by"], at=current["updated_at"],
           version=current["version"], expected=expected),
        details={"id": sid, "current_version": int(current["version"]),
                 "expected_version": int(expected), "updated_by": current["updated_by"],
                 "updated_at": current["updated_at"], "changes": theirs})
