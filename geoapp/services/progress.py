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

from geoapp.domain.errors import Conflict, CoordinateError, InvalidInput, ValidationFailed
from geoapp.domain.vocab import Classification, SiteType, Stage
from geoapp.services.inspection import display_value

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

#: Fields of the progress form, in form order, with their Chinese labels.
PROGRESS_FIELDS: tuple[tuple[str, str], ...] = (
    ("classification", "整治分类"), ("stage", "进度阶段"),
    ("planned_start", "计划启动"), ("actual_start", "实际启动"),
    ("planned_completion", "计划完成"), ("actual_completion", "实际完成"),
    ("new_site_name", "新址名称"), ("new_lon", "新址经度"), ("new_lat", "新址纬度"),
    ("new_site_area_mu", "新址面积（亩）"), ("vacated_mu", "腾退土地（亩）"),
    ("listed_mu", "挂牌出让（亩）"), ("sale_revenue_wan", "出让收入（万元）"),
    ("progress", "进展情况"), ("remarks", "备注"),
)
LABELS: dict[str, str] = dict(PROGRESS_FIELDS)
DATE_FIELDS = ("planned_start", "actual_start", "planned_completion", "actual_completion")
NUMBER_FIELDS = ("new_site_area_mu", "vacated_mu", "listed_mu", "sale_revenue_wan")
TEXT_FIELDS = ("new_site_name", "progress", "remarks")
TEXT_LIMIT = 4000
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Stages at or beyond which an actual start / an actual completion must be recorded.
_NEEDS_START = (Stage.STARTED, Stage.COMPLETED, Stage.ACCEPTED)
_NEEDS_COMPLETION = (Stage.COMPLETED, Stage.ACCEPTED)


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


def _problem(field: str, value: Any, message: str) -> dict[str, Any]:
    return {"field": field, "label": LABELS.get(field, field), "value": value,
            "message": message}


def _date(form: Mapping[str, Any], f: str, problems: list[dict]) -> str | None:
    text = str(form.get(f) or "").strip()
    if not text:
        return None
    try:
        if not _ISO_DATE.match(text):
            raise ValueError
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        problems.append(_problem(f, text, "日期须为 YYYY-MM-DD 格式 date must be YYYY-MM-DD"))
        return None


def _number(form: Mapping[str, Any], f: str, problems: list[dict]) -> float | None:
    text = str(form.get(f) or "").strip().replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(_problem(f, text, "须为数字 must be a number"))
        return None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        problems.append(_problem(f, text, "须为不小于 0 的数 must be a number ≥ 0"))
        return None
    return value


def _choice(form: Mapping[str, Any], f: str, enum, problems: list[dict]) -> str | None:
    text = str(form.get(f) or "").strip()
    if not text:
        problems.append(_problem(f, text, "必填 required"))
        return None
    try:
        return enum.parse(text).value
    except ValueError:
        problems.append(_problem(f, text, "不在可选范围内 not an allowed value"))
        return None


def _new_site(app: Geoapp, form: Mapping[str, Any],
              problems: list[dict]) -> tuple[float | None, float | None]:
    from geoapp.spatial.crs import parse_point

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


def validate(app: Geoapp, form: Mapping[str, Any]) -> dict[str, Any]:
    """The form as storage values; ValidationFailed lists every problem by field."""
    problems: list[dict] = []
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
            problems.append(_problem(f, text[:40] + "…", f"最多 {TEXT_LIMIT} 字 too long"))
        out[f] = text or None
    out["new_lon"], out["new_lat"] = _new_site(app, form, problems)
    problems += _consistency(out)
    if problems:
        first = problems[0]
        raise ValidationFailed(f"{first['label']}（{first['field']}）：{first['message']}",
                               details=problems)
    return out


def _consistency(v: Mapping[str, Any]) -> list[dict]:
    """Dates in order, and the stage agreeing with the dates recorded."""
    out = []
    for start, end in (("planned_start", "planned_completion"),
                       ("actual_start", "actual_completion")):
        if v[start] and v[end] and v[end] < v[start]:
            out.append(_problem(end, v[end], f"早于{LABELS[start]} is before {start}"))
    if v["actual_completion"] and not v["actual_start"]:
        out.append(_problem("actual_start", "", "有实际完成日期时须填实际启动日期 "
                                                "an actual completion needs an actual start"))
    stage = v["stage"]
    if stage in _NEEDS_START and not v["actual_start"]:
        out.append(_problem("actual_start", "", f"阶段为{Stage(stage).zh}时须填实际启动日期 "
                                                "the stage needs an actual start"))
    if stage in _NEEDS_COMPLETION and not v["actual_completion"]:
        out.append(_problem("actual_completion", "",
                            f"阶段为{Stage(stage).zh}时须填实际完成日期 "
                            "the stage needs an actual completion date"))
    if stage == Stage.NOT_STARTED and (v["actual_start"] or v["actual_completion"]):
        out.append(_problem("stage", stage, "已填实际日期，阶段不能为未启动 "
                                            "actual dates recorded: the stage cannot be "
                                            "not started"))
    return out


def _version(form: Mapping[str, Any]) -> int:
    try:
        return int(str(form.get("version") or "").strip())
    except ValueError:
        raise InvalidInput("缺少版本号，请刷新页面 missing version; reload the page") from None


def save_progress(app: Geoapp, site_id: str, form: Mapping[str, Any], *,
                  user: str) -> dict[str, Any]:
    """Validate and save; Conflict (with the other editor's changes) if the version moved."""
    site = app.repo.site(site_id)
    if site["site_type"] != SiteType.ENTERPRISE:
        raise InvalidInput(f"{site_id} 不是工业企业 is not an enterprise")
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
    from geoapp.services.checks import refresh_hits

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
        f"{current['updated_by']} 已于 {current['updated_at']} 修改了该企业（版本 "
        f"{current['version']}，你编辑的是版本 {expected}）；请核对后重新保存",
        details={"id": sid, "current_version": int(current["version"]),
                 "expected_version": int(expected), "updated_by": current["updated_by"],
                 "updated_at": current["updated_at"], "changes": theirs})
