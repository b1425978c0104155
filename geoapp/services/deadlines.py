"""Deadlines (逾期督办): every dated obligation of the stored sites and its status on a day.

The rules are in :mod:`geoapp.domain.deadlines`; this module reads the enterprises and the
散乱污 workshops from the store, judges them as of one day (the city's local calendar, today
unless ``as_of`` is given: every function takes it, so a page, a download and a test are
reproducible) and shapes the result for the /overdue page and its workbook, the site page,
the relocation map, the ledger exports and the weekly bulletin.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from geoapp.domain import deadlines as D
from geoapp.domain.asof import AsOf
from geoapp.domain.bulletin import LOCAL_TZ, IsoWeek
from geoapp.domain.vocab import SiteType
from geoapp.exports.tables import issued_line, write_titled_xlsx, write_xlsx

log = logging.getLogger(__name__)

ENTERPRISE = SiteType.ENTERPRISE.value
WORKSHOP = SiteType.SCATTERED_WORKSHOP.value
Translate = Callable[[str], str]


def _same(text: str) -> str:
    return text


def local_today(now: dt.datetime | None = None) -> dt.date:
    """Today in the city's calendar (Asia/Shanghai), whatever the server's zone."""
    now = now or dt.datetime.now(LOCAL_TZ)
    return (now.astimezone(LOCAL_TZ) if now.tzinfo is not None else now).date()


def as_of_day(value: str | dt.date | None = None, *, today: dt.date | None = None) -> AsOf:
    """The day statuses are judged on: ``value`` (a date or ``?as_of=`` text), else today."""
    today = today or local_today()
    day = value if isinstance(value, dt.date) else D.parse_as_of(value)
    day = day or today
    return AsOf(day, today=day == today)


def rules(app) -> D.Rules:
    """The settings DUE_SOON_DAYS, TWO_CUTS_DAYS and THREE_CLEARS_DAYS."""
    return D.Rules.from_settings(app.settings)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    df = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
    return df.astype(object).where(df.notna(), None).to_dict("records")


def obligations(app, as_of: dt.date | None = None) -> list[D.Obligation]:
    """Every obligation of every enterprise and banned workshop, judged as of ``as_of``."""
    day = as_of or local_today()
    r = rules(app)
    ent = app.repo.sites(ENTERPRISE, columns=list(D.ENTERPRISE_FIELDS))
    ws = app.repo.sites(WORKSHOP, columns=list(D.WORKSHOP_FIELDS))
    out: list[D.Obligation] = []
    for rec in _records(ent):
        out += D.enterprise_obligations(rec, day, r)
    for rec in _records(ws):
        out += D.workshop_obligations(rec, day, r)
    return out


def frame_obligations(sites: pd.DataFrame, as_of: dt.date, r: D.Rules
                      ) -> dict[str, list[D.Obligation]]:
    """The obligations of the enterprises of a frame already read, by site id."""
    return {str(rec["id"]): D.enterprise_obligations(rec, as_of, r) for rec in _records(sites)}


def deadline_columns(sites: pd.DataFrame, as_of: dt.date, r: D.Rules
                     ) -> tuple[list[str], list[int | None]]:
    """The 整改完成时限 status of each enterprise row (machine value) and its days overdue
    (None unless overdue), in row order: the ledger exports' derived columns."""
    statuses: list[str] = []
    days: list[int | None] = []
    for rec in _records(sites):
        ob = [o for o in D.enterprise_obligations(rec, as_of, r) if o.kind == "deadline"]
        o = ob[0]
        statuses.append(o.status.value)
        days.append(o.days_overdue if o.status == D.Status.OVERDUE else None)
    return statuses, days


def status_name(status: str | None, lang: str = "zh") -> str:
    """A status's name in ``lang`` (empty for none)."""
    if not status:
        return ""
    s = D.Status(status)
    return s.en if lang == "en" else s.zh


# ------------------------------------------------------------------------ the site page
def site_section(app, site: Mapping[str, Any], *, as_of: dt.date | None = None,
                 gettext: Translate = _same) -> dict[str, Any]:
    """What the site page's 时限督办 section shows: the site's obligations as rows in words,
    the worst status and the day they are judged on."""
    when = as_of_day(as_of)
    obs = D.site_obligations(site, when.date, rules(app))
    summary = D.summarize_site(obs)
    return {"as_of": when.date.isoformat(), "as_of_today": when.today,
            "rows": [_row(o, gettext) for o in obs],
            "status": summary.status.value if summary.status else None,
            "days_overdue": summary.days_overdue}


def _row(o: D.Obligation, gettext: Translate = _same) -> dict[str, Any]:
    return {**o.to_dict(), "label": gettext(o.label), "status_text": gettext(o.status.zh)}


# ------------------------------------------------------------------------ /overdue
@dataclass
class OverdueView:
    """Overdue and due-soon obligations by county, as of one day."""

    as_of: AsOf
    groups: list[D.CountyGroup]
    counts: dict[str, int]
    due_soon_days: int
    obligations: list[D.Obligation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.as_of.to_dict(), "due_soon_days": self.due_soon_days,
                "counts": self.counts,
                "counties": [{"county": g.county, **g.counts(),
                              "overdue": [o.to_dict() for o in g.overdue],
                              "due_soon": [o.to_dict() for o in g.due_soon]}
                             for g in self.groups]}


def overdue_view(app, as_of: str | dt.date | None = None) -> OverdueView:
    """Every county of the city (bulletin order) with its overdue and due-soon obligations."""
    when = as_of_day(as_of)
    obs = obligations(app, when.date)
    groups = D.group_by_county(obs, tuple(app.city.county_names))
    return OverdueView(as_of=when, groups=groups, counts=D.count_statuses(obs),
                       due_soon_days=rules(app).due_soon_days, obligations=obs)


#: The workbook's columns: key -> Chinese header (msgid).
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("county", D.N_("区县")), ("status", D.N_("状态")), ("site_id", D.N_("编号")),
    ("name", D.N_("名称")), ("type", D.N_("类型")), ("label", D.N_("事项")),
    ("due", D.N_("应完成日期")), ("days", D.N_("逾期天数")), ("days_left", D.N_("剩余天数")),
    ("derived", D.N_("时限来源")),
)


def overdue_table(view: OverdueView, gettext: Translate = _same) -> pd.DataFrame:
    """The page's rows (overdue, then due soon, county by county) with headers in the
    language of ``gettext``."""
    rows = []
    for g in view.groups:
        for o in (*g.overdue, *g.due_soon):
            kind = SiteType(o.site_type)
            rows.append({
                "county": g.county, "status": gettext(o.status.zh), "site_id": o.site_id,
                "name": o.name, "type": gettext(kind.zh),
                "label": gettext(o.label), "due": o.due.isoformat() if o.due else "",
                "days": o.days_overdue if o.status == D.Status.OVERDUE else None,
                "days_left": o.days_left,
                "derived": gettext(D.N_("取缔日期推算")) if o.derived else gettext(D.N_("台账"))})
    cols = [k for k, _ in TABLE_COLUMNS]
    df = pd.DataFrame(rows, columns=cols)
    return df.rename(columns={k: gettext(h) for k, h in TABLE_COLUMNS})


def county_table(view: OverdueView, gettext: Translate = _same) -> pd.DataFrame:
    """Counts per county (every county, a 合计 row last)."""
    rows = [{gettext(D.N_("区县")): g.county, gettext(D.N_("逾期事项")): len(g.overdue),
             gettext(D.N_("逾期单位")): g.sites_overdue,
             gettext(D.N_("即将到期事项")): len(g.due_soon)} for g in view.groups]
    total = {gettext(D.N_("区县")): gettext(D.N_("合计")),
             gettext(D.N_("逾期事项")): view.counts["overdue"],
             gettext(D.N_("逾期单位")): view.counts["sites_overdue"],
             gettext(D.N_("即将到期事项")): view.counts["due_soon"]}
    return pd.DataFrame([*rows, total])


def overdue_title_lines(app, view: OverdueView, gettext: Translate = _same, *,
                        english: bool = False) -> tuple[str, str, str]:
    """The workbook's title rows: 「焦作市逾期督办清单」, 「截至2026年12月3日」, the issuing unit
    with the as-of day (the workbook reports on that day, so it is dated by it)."""
    city = app.city
    title = gettext(D.N_("%(city)s逾期督办清单")) % {"city": city.name_en if english
                                                   else city.name}
    day = view.as_of
    return title, day.en if english else day.zh, issued_line(city.issuer, day.date,
                                                             english=english)


def write_overdue_xlsx(view: OverdueView, path: str | Path,
                       gettext: Translate = _same, *,
                       lines: tuple[str, str, str] | None = None) -> Path:
    """The /overdue download: a sheet of counts by county and a sheet of the rows, each
    under the title rows ``lines`` (``overdue_title_lines``) when given."""
    sheets = {gettext(D.N_("区县统计")): county_table(view, gettext),
              gettext(D.N_("逾期及即将到期")): overdue_table(view, gettext)}
    if lines is None:
        return write_xlsx(sheets, path)
    stamp = dt.datetime.combine(view.as_of.date, dt.time())
    return write_titled_xlsx(sheets, path, lines, stamp=stamp)


# ------------------------------------------------------------------------ weekly bulletin
@dataclass
class BulletinSection:
    """The bulletin's 逾期督办 section: as of the week's last day (Sunday)."""

    as_of: dt.date
    per_county: pd.DataFrame   # county, overdue, sites_overdue, due_soon (bulletin order)
    rows: pd.DataFrame         # county, site_id, name, type, label, due, days_overdue
    total: int
    sites: int


def bulletin_section(app, week: IsoWeek) -> BulletinSection:
    """Overdue obligations as of the bulletin week's Sunday, by county and as a list."""
    view = overdue_view(app, week.sunday)
    per_county = pd.DataFrame([{"county": g.county, "overdue": len(g.overdue),
                                "sites_overdue": g.sites_overdue, "due_soon": len(g.due_soon)}
                               for g in view.groups],
                              columns=["county", "overdue", "sites_overdue", "due_soon"])
    rows = pd.DataFrame([{"county": g.county, "site_id": o.site_id, "name": o.name,
                          "type": SiteType(o.site_type).zh, "label": o.label,
                          "due": o.due.isoformat() if o.due else "",
                          "days_overdue": o.days_overdue}
                         for g in view.groups for o in g.overdue],
                        columns=["county", "site_id", "name", "type", "label", "due",
                                 "days_overdue"])
    return BulletinSection(as_of=week.sunday, per_county=per_county, rows=rows,
                           total=view.counts["overdue"], sites=view.counts["sites_overdue"])


def overdue_ids(obligations_: Iterable[D.Obligation]) -> set[str]:
    """The ids of the sites with an overdue obligation."""
    return {o.site_id for o in obligations_ if o.status == D.Status.OVERDUE}
