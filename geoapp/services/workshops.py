"""The 散乱污 register: counts, the 两断三清 checklist of banned workshops, relapse detection.

Relapses (死灰复燃) are not measured again here: the rule engine already stores, for every
newly found workshop, the banned workshops within the distance of the rule the rules file
marks ``purpose: relapse`` (``site_hits``), so the register, the map and the site page always
agree with the rules file.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import pandas as pd

from geoapp.domain.errors import Conflict, InvalidInput, NotFound, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.domain.rules import RuleSpec
from geoapp.domain.vocab import SiteType, WorkshopStatus
from geoapp.exports.tables import write_csv, write_xlsx
from geoapp.maps.workshops import workshops_map as draw_workshops_map
from geoapp.services.checks import read_rules, refresh_hits
from geoapp.services.pagemap import basemap
from geoapp.services.progress import changes_since

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

WORKSHOP = SiteType.SCATTERED_WORKSHOP.value
#: The ``purpose`` of the rule whose hits are suspected relapses (see docs/rules.md).
RELAPSE_PURPOSE = "relapse"
#: The 两断三清 checklist: (field, Chinese label), in the order the bureau lists them.
CHECKLIST: tuple[tuple[str, str], ...] = (
    ("water_cut_date", "断水"), ("power_cut_date", "断电"),
    ("materials_cleared_date", "清原料"), ("products_cleared_date", "清产品"),
    ("equipment_cleared_date", "清设备"),
)
STATUSES = tuple(WorkshopStatus)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COLUMNS = ["name", "district", "industry", "status", "found_date", "banned_date",
            *[f for f, _ in CHECKLIST], "version"]


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def workshops(app: Geoapp, district: str | None = None) -> gpd.GeoDataFrame:
    """Every workshop (or one district's), with its columns of the register."""
    filters = {"district": district} if district else {}
    return app.repo.sites(WORKSHOP, columns=_COLUMNS, **filters)


def counts(app: Geoapp, frame: gpd.GeoDataFrame | None = None) -> dict[str, Any]:
    """Found / banned / rectifying in total and per district (city's county order)."""
    df = workshops(app) if frame is None else frame
    total = {s.value: int((df["status"] == s.value).sum()) for s in STATUSES}
    order = list(app.city.county_names)
    districts = list(dict.fromkeys([*order, *sorted(df["district"].dropna().unique())]))
    rows = []
    for d in districts:
        sel = df[df["district"] == d]
        row = {"district": d, **{s.value: int((sel["status"] == s.value).sum())
                                 for s in STATUSES}}
        row["total"] = len(sel)
        rows.append(row)
    return {"total": {**total, "all": len(df)}, "by_district": rows}


def checklist(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """One row per banned workshop: the five dates and whether all five are done."""
    banned = frame[frame["status"] == WorkshopStatus.BANNED.value]
    out = []
    for rec in banned.drop(columns="geometry").to_dict("records"):
        items = [{"field": f, "label": lab, "date": _text(rec.get(f))} for f, lab in CHECKLIST]
        missing = [i["label"] for i in items if not i["date"]]
        out.append({"id": rec["id"], "name": _text(rec.get("name")),
                    "district": _text(rec.get("district")),
                    "banned_date": _text(rec.get("banned_date")), "items": items,
                    "complete": not missing, "missing": missing,
                    "version": int(rec["version"])})
    return out


def relapse_rule(app: Geoapp) -> RuleSpec | None:
    """The rule the rules file marks ``purpose: relapse`` (None if none is marked); the
    file is read again only when it changes."""
    return app.file_cached("relapse_rule", Path(app.settings["RULES_FILE"]),
                           lambda path: read_rules(path).for_purpose(RELAPSE_PURPOSE))


def relapse_distance_m(app: Geoapp) -> float:
    """The relapse distance from the rules file (the ``purpose: relapse`` rule's)."""
    rule = relapse_rule(app)
    if rule is None:
        raise NotFound(_l("规则文件中没有标明 purpose: %(purpose)s（疑似死灰复燃）的规则",
                          purpose=RELAPSE_PURPOSE))
    return float(rule.distance_m or 0.0)


def relapses(app: Geoapp, frame: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """New finds flagged by the relapse rule: the find, the banned site, the distance."""
    refresh_hits(app)
    rule = relapse_rule(app)
    hits = app.repo.site_hits()
    hits = hits[hits["rule_id"] == (rule.id if rule is not None else None)]
    df = workshops(app) if frame is None else frame
    info = pd.DataFrame({"id": df["id"].astype(str), "name": df["name"],
                         "district": df["district"], "found_date": df["found_date"],
                         "lon": df.geometry.x, "lat": df.geometry.y}).set_index("id")
    cols = ["site_id", "name", "district", "found_date", "lon", "lat", "banned_id",
            "banned_name", "banned_date", "banned_lon", "banned_lat", "distance_m"]
    rows = []
    for h in hits.to_dict("records"):
        sid, bid = str(h["site_id"]), str(h["feature_id"])
        if sid not in info.index:
            continue
        new = info.loc[sid]
        banned = info.loc[bid] if bid in info.index else None
        rows.append({"site_id": sid, "name": new["name"], "district": new["district"],
                     "found_date": new["found_date"], "lon": new["lon"], "lat": new["lat"],
                     "banned_id": bid,
                     "banned_name": h.get("feature_name") or (banned["name"] if banned is not None
                                                              else ""),
                     "banned_date": _banned_date(df, bid),
                     "banned_lon": banned["lon"] if banned is not None else None,
                     "banned_lat": banned["lat"] if banned is not None else None,
                     "distance_m": round(float(h["distance_m"]), 1)})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["distance_m", "site_id"], kind="stable").reset_index(drop=True)


def _banned_date(df: gpd.GeoDataFrame, site_id: str) -> str:
    sel = df.loc[df["id"].astype(str) == site_id, "banned_date"]
    return _text(sel.iloc[0]) if len(sel) else ""


def save_checklist(app: Geoapp, site_id: str, form: Mapping[str, Any], *,
                   user: str) -> dict[str, Any]:
    """Save the five 两断三清 dates of one banned workshop (version-checked like every edit)."""
    site = app.repo.site(site_id)
    if site["site_type"] != WORKSHOP:
        raise InvalidInput(_l("%(id)s 不是散乱污作坊", id=site_id))
    try:
        expected = int(str(form.get("version") or "").strip())
    except ValueError:
        raise InvalidInput(_l("缺少版本号，请刷新页面")) from None
    problems: list[Problem] = []
    changes: dict[str, Any] = {}
    banned = _text(site.get("banned_date"))
    for f, label in CHECKLIST:
        text = str(form.get(f) or "").strip()
        value = None
        if text:
            try:
                if not _ISO_DATE.match(text):
                    raise ValueError
                value = dt.date.fromisoformat(text).isoformat()
            except ValueError:
                problems.append(Problem(field=f, label=label, value=text,
                                        message=_l("日期须为 YYYY-MM-DD 格式")))
                continue
            if banned and value < banned:
                problems.append(Problem(field=f, label=label, value=text,
                                        message=_l("早于取缔日期 %(date)s", date=banned)))
                continue
        changes[f] = value
    if problems:
        p = problems[0]
        raise ValidationFailed(_l("%(label)s（%(field)s）：%(message)s", label=p.label,
                                  field=p.field, message=p.message), details=problems)
    if int(site["version"]) != expected:

        raise Conflict(
            _l("%(user)s 已于 %(at)s 修改了该作坊；请核对后重新保存",
               user=site["updated_by"], at=site["updated_at"]),
            details={"id": site_id, "current_version": int(site["version"]),
                     "expected_version": expected, "updated_by": site["updated_by"],
                     "updated_at": site["updated_at"],
                     "changes": changes_since(app, site_id, expected, dict(CHECKLIST))})
    after = app.repo.update_site(site_id, changes, user=user, expected_version=expected)
    log.info("checklist of %s saved by %s", site_id, user)
    return after


REGISTER_HEADERS: tuple[tuple[str, str], ...] = (
    ("id", "编号"), ("name", "名称"), ("district", "辖区"), ("industry", "行业类别"),
    ("status", "状态"), ("found_date", "排查日期"), ("banned_date", "取缔日期"),
    *[(f, lab + "日期") for f, lab in CHECKLIST], ("complete", "两断三清"),
    ("relapse_of", "疑似死灰复燃（取缔点位）"), ("relapse_m", "距离（米）"),
    ("lon", "经度（WGS84）"), ("lat", "纬度（WGS84）"),
)


def register_frame(app: Geoapp) -> pd.DataFrame:
    """The register as a table with Chinese headers, for the CSV and XLSX downloads."""
    df = workshops(app)
    rel = relapses(app, df).drop_duplicates("site_id")
    rel = rel.set_index("site_id")
    out = pd.DataFrame(df.drop(columns=["geometry", "version", "site_type"]))
    out["status"] = [WorkshopStatus(s).zh if s else "" for s in out["status"].fillna("")]
    banned = df["status"] == WorkshopStatus.BANNED.value
    done = df[[f for f, _ in CHECKLIST]].notna().all(axis=1)
    out["complete"] = [("完成" if d else "未完成") if b else "" for b, d in
                       zip(banned, done, strict=True)]
    ids = out["id"].astype(str)
    out["relapse_of"] = [f"{rel.at[i, 'banned_id']} {rel.at[i, 'banned_name']}"
                         if i in rel.index else "" for i in ids]
    out["relapse_m"] = [rel.at[i, "distance_m"] if i in rel.index else None for i in ids]
    out["lon"], out["lat"] = df.geometry.x.round(6), df.geometry.y.round(6)
    return out[[f for f, _ in REGISTER_HEADERS]].rename(columns=dict(REGISTER_HEADERS))


def write_register(app: Geoapp, path: str | Path, fmt: str) -> Path:
    """Write the register as ``csv`` (UTF-8 with BOM) or ``xlsx`` to ``path``."""
    df = register_frame(app)
    if fmt == "csv":
        return write_csv(df, path)
    if fmt == "xlsx":
        return write_xlsx({"散乱污台账": df}, path)
    raise InvalidInput(f"unknown register format {fmt!r}; expected csv or xlsx")


def workshops_map(app: Geoapp, frame: gpd.GeoDataFrame, relapse_rows: pd.DataFrame, *,
                  site_link: str | None = None,
                  gettext: Callable[[str], str] | None = None) -> folium.Map:
    """The register's map: ``frame``'s workshops by status and the relapse lines;
    ``site_link`` is the site page URL with ``{id}``, ``gettext`` translates its words."""
    tiles, key = basemap(app)
    words = {"gettext": gettext} if gettext is not None else {}
    return draw_workshops_map(frame, relapse_rows, zoom=app.city.zoom, tiles=tiles,
                              tianditu_key=key, link=site_link, **words)


def register_page(app: Geoapp, district: str | None = None, *, site_link: str | None = None,
                  gettext: Callable[[str], str] | None = None) -> dict[str, Any]:
    """What /workshops shows: the counts of every workshop; the checklist, the relapses and
    the map of ``district`` (all when None; the map shows every workshop when the district
    has none); the relapse distance of the rules file."""
    frame = workshops(app, district)
    everything = workshops(app) if district else frame
    rel = relapses(app, frame)
    if district:
        rel = rel[rel["district"] == district]
    return {"counts": counts(app, everything), "checklist": checklist(frame),
            "relapses": rel.to_dict("records"), "distance_m": relapse_distance_m(app),
            "map": workshops_map(app, frame if len(frame) else everything, rel,
                                 site_link=site_link, gettext=gettext)}
