"""Dated obligations of a site and their status on a given day: pure rules, no I/O.

A site carries obligations with a due date:

- an enterprise's 整改完成时限 (``deadline``), met when its stage is 已完成 / 已验收销号 or an
  actual completion date is recorded;
- the relocation programme's milestones: 计划启动 (``planned_start``, met by ``actual_start``)
  and 计划完成 (``planned_completion``, met by ``actual_completion``);
- for a banned 散乱污 workshop, the five 两断三清 steps (断水, 断电, 清原料, 清产品, 清设备). The
  register records only the day each step was done, so the due day is derived: the banned date
  plus ``two_cuts_days`` for the two cuts and ``three_clears_days`` for the three clearances
  (settings TWO_CUTS_DAYS and THREE_CLEARS_DAYS).

Each obligation is judged as of one day (the city's local calendar; the caller passes the day,
so results are reproducible): 已完成 (done; late when done after the due day), 未到期 (not yet
due), 即将到期 (due within ``due_soon_days``, the due day itself included), 逾期 (overdue, with
the days) or 待核实 (the due day is missing or cannot be read: never a false 未到期).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from geoapp.domain.errors import InvalidInput
from geoapp.domain.messages import Text as _l


def N_(text: str) -> str:  # noqa: N802 (the conventional name of a gettext marker)
    """Marks ``text`` for the message catalogue; it is translated where it is shown."""
    return text


class Status(StrEnum):
    """An obligation's status on a day, worst last (``rank``)."""

    DONE = "done"
    NOT_DUE = "not_due"
    UNKNOWN = "unknown"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"

    @property
    def zh(self) -> str:
        return STATUS_ZH[self]

    @property
    def en(self) -> str:
        return STATUS_EN[self]

    @property
    def rank(self) -> int:
        return list(Status).index(self)


STATUS_ZH = {Status.DONE: N_("已完成"), Status.NOT_DUE: N_("未到期"),
             Status.UNKNOWN: N_("待核实"), Status.DUE_SOON: N_("即将到期"),
             Status.OVERDUE: N_("逾期")}
STATUS_EN = {Status.DONE: "Completed", Status.NOT_DUE: "Not yet due",
             Status.UNKNOWN: "Needs information", Status.DUE_SOON: "Due soon",
             Status.OVERDUE: "Overdue"}

#: Default settings (geoapp.config has the same defaults).
DUE_SOON_DAYS = 14
TWO_CUTS_DAYS = 7
THREE_CLEARS_DAYS = 15

#: Stages that complete an enterprise's remediation.
DONE_STAGES = ("completed", "accepted")
STARTED_STAGES = ("started", "completed", "accepted")


@dataclass(frozen=True)
class Kind:
    """One kind of obligation: key, label (Chinese msgid), what is due and what meets it."""

    key: str
    label: str
    due_field: str
    done_field: str
    source: str  # "ledger", "programme" or "workshop"


KINDS: tuple[Kind, ...] = (
    Kind("deadline", N_("整改完成时限"), "deadline", "actual_completion", "ledger"),
    Kind("planned_start", N_("计划启动"), "planned_start", "actual_start", "programme"),
    Kind("planned_completion", N_("计划完成"), "planned_completion", "actual_completion",
         "programme"),
    Kind("water_cut", N_("断水"), "banned_date", "water_cut_date", "workshop"),
    Kind("power_cut", N_("断电"), "banned_date", "power_cut_date", "workshop"),
    Kind("materials_cleared", N_("清原料"), "banned_date", "materials_cleared_date", "workshop"),
    Kind("products_cleared", N_("清产品"), "banned_date", "products_cleared_date", "workshop"),
    Kind("equipment_cleared", N_("清设备"), "banned_date", "equipment_cleared_date",
         "workshop"),
)
KINDS_BY_KEY = {k.key: k for k in KINDS}
ENTERPRISE_KINDS = tuple(k for k in KINDS if k.source in ("ledger", "programme"))
WORKSHOP_KINDS = tuple(k for k in KINDS if k.source == "workshop")
TWO_CUTS = ("water_cut", "power_cut")

#: The fields an obligation needs of a site record.
ENTERPRISE_FIELDS = ("name", "district", "stage", "deadline", "planned_start", "actual_start",
                     "planned_completion", "actual_completion")
WORKSHOP_FIELDS = ("name", "district", "status", "banned_date",
                   *(k.done_field for k in WORKSHOP_KINDS))


@dataclass(frozen=True)
class Rules:
    """The numbers that turn dates into statuses (settings DUE_SOON_DAYS, TWO_CUTS_DAYS,
    THREE_CLEARS_DAYS)."""

    due_soon_days: int = DUE_SOON_DAYS
    two_cuts_days: int = TWO_CUTS_DAYS
    three_clears_days: int = THREE_CLEARS_DAYS

    def __post_init__(self) -> None:
        for name in ("due_soon_days", "two_cuts_days", "three_clears_days"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Rules:
        return cls(int(settings.get("DUE_SOON_DAYS", DUE_SOON_DAYS)),
                   int(settings.get("TWO_CUTS_DAYS", TWO_CUTS_DAYS)),
                   int(settings.get("THREE_CLEARS_DAYS", THREE_CLEARS_DAYS)))


@dataclass(frozen=True)
class Obligation:
    """One dated obligation of one site, judged as of ``as_of``."""

    site_id: str
    site_type: str  # "enterprise" or "scattered_workshop"
    name: str
    district: str
    kind: str
    due: dt.date | None
    done_on: dt.date | None
    status: Status
    as_of: dt.date
    #: Days past the due day (overdue, or done late); 0 otherwise.
    days_overdue: int = 0
    #: Days left until the due day (not yet due, due soon); None otherwise.
    days_left: int | None = None
    #: Done after the due day (None: done, but when is not known).
    late: bool | None = None
    #: The due day was derived (banned date + days), not recorded.
    derived: bool = False
    #: The raw due text when it could not be read.
    bad_due: str = ""

    @property
    def label(self) -> str:
        return KINDS_BY_KEY[self.kind].label

    @property
    def open(self) -> bool:
        return self.status in (Status.OVERDUE, Status.DUE_SOON)

    def to_dict(self) -> dict[str, Any]:
        return {"site_id": self.site_id, "site_type": self.site_type, "name": self.name,
                "district": self.district, "kind": self.kind, "label": self.label,
                "due": self.due.isoformat() if self.due else None,
                "done_on": self.done_on.isoformat() if self.done_on else None,
                "status": self.status.value, "status_zh": self.status.zh,
                "status_en": self.status.en, "as_of": self.as_of.isoformat(),
                "days_overdue": self.days_overdue, "days_left": self.days_left,
                "late": self.late, "derived": self.derived, "bad_due": self.bad_due}


# ---------------------------------------------------------------------------- dates
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
)


class BadDate(ValueError):
    """A date value that is there but cannot be read."""


def read_date(value: Any) -> dt.date | None:
    """A stored or typed date (date, ISO text, 2020/6/30, 2020.6.30, 2020年6月30日) as a date;
    None when empty; :class:`BadDate` when there is something that is not a date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, float):
        if value != value:  # NaN: empty
            return None
        raise BadDate(str(value))
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp (NaT is caught by the NaN test)
        try:
            return value.to_pydatetime().date()
        except ValueError:
            return None
    text = str(value).strip()
    if text in ("", "NaT", "nan", "None"):
        return None
    for pat in _DATE_PATTERNS:
        m = pat.match(text)
        if m:
            try:
                return dt.date(*map(int, m.groups()))
            except ValueError:
                break
    raise BadDate(text)


def parse_as_of(text: str | None) -> dt.date | None:
    """``?as_of=2026-12-03``: a day; empty means today (None); anything else is refused."""
    if text is None or str(text).strip() == "":
        return None
    t = str(text).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
        raise InvalidInput(_l("日期“%(value)s”无效，应写作 2026-12-03", value=t))
    try:
        return dt.date.fromisoformat(t)
    except ValueError:
        raise InvalidInput(_l("日期“%(value)s”无效，应写作 2026-12-03", value=t)) from None


def _safe_date(value: Any) -> tuple[dt.date | None, str]:
    try:
        return read_date(value), ""
    except BadDate as exc:
        return None, str(exc.args[0])


# ---------------------------------------------------------------------------- judging
def judge(due: dt.date | None, done: bool, done_on: dt.date | None, as_of: dt.date,
          due_soon_days: int = DUE_SOON_DAYS) -> tuple[Status, int, int | None, bool | None]:
    """(status, days overdue, days left, late) of one obligation on ``as_of``.

    ``done`` says the obligation is met; ``done_on`` is when (None: not known). A done day
    after ``as_of`` had not happened yet on that day, so it does not count as done then.
    """
    if done_on is not None and done_on > as_of:
        done, done_on = False, None
    if done:
        if due is None or done_on is None:
            return Status.DONE, 0, None, None
        late_by = (done_on - due).days
        return Status.DONE, max(late_by, 0), None, late_by > 0
    if due is None:
        return Status.UNKNOWN, 0, None, None
    left = (due - as_of).days
    if left < 0:
        return Status.OVERDUE, -left, None, None
    if left <= due_soon_days:
        return Status.DUE_SOON, 0, left, None
    return Status.NOT_DUE, 0, left, None


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return str(v).strip()


def enterprise_obligations(site: Mapping[str, Any], as_of: dt.date,
                           rules: Rules = Rules()) -> list[Obligation]:
    """The 整改完成时限 and the two programme milestones of one enterprise record.

    A milestone without a planned date is not an obligation (the programme did not set one);
    the 整改完成时限 always is: without a readable date it is 待核实 unless already met.
    """
    stage = _text(site.get("stage"))
    out = []
    for kind in ENTERPRISE_KINDS:
        raw_due = site.get(kind.due_field)
        due, bad = _safe_date(raw_due)
        done_on, bad_done = _safe_date(site.get(kind.done_field))
        by_stage = stage in (STARTED_STAGES if kind.key == "planned_start" else DONE_STAGES)
        if kind.source == "programme" and due is None and not bad:
            continue
        status, over, left, late = judge(due, done_on is not None or by_stage, done_on,
                                         as_of, rules.due_soon_days)
        if bad_done and not by_stage:  # a done day that cannot be read: ask, never guess
            status, over, left, late = Status.UNKNOWN, 0, None, None
        out.append(Obligation(
            site_id=_text(site.get("id")), site_type="enterprise", name=_text(site.get("name")),
            district=_text(site.get("district")), kind=kind.key, due=due,
            done_on=done_on if status == Status.DONE else None, status=status, as_of=as_of,
            days_overdue=over, days_left=left, late=late, bad_due=bad))
    return out


def workshop_obligations(site: Mapping[str, Any], as_of: dt.date,
                         rules: Rules = Rules()) -> list[Obligation]:
    """The 两断三清 steps of a banned workshop (none for a workshop not banned), each due the
    banned date plus ``two_cuts_days`` (断水, 断电) or ``three_clears_days`` (清原料, 清产品,
    清设备)."""
    if _text(site.get("status")) != "banned":
        return []
    banned, bad = _safe_date(site.get("banned_date"))
    out = []
    for kind in WORKSHOP_KINDS:
        days = rules.two_cuts_days if kind.key in TWO_CUTS else rules.three_clears_days
        due = banned + dt.timedelta(days=days) if banned is not None else None
        done_on, bad_done = _safe_date(site.get(kind.done_field))
        status, over, left, late = judge(due, done_on is not None, done_on, as_of,
                                         rules.due_soon_days)
        if bad_done:  # a done day that cannot be read: ask, never guess
            status, over, left, late = Status.UNKNOWN, 0, None, None
        out.append(Obligation(
            site_id=_text(site.get("id")), site_type="scattered_workshop",
            name=_text(site.get("name")), district=_text(site.get("district")), kind=kind.key,
            due=due, done_on=done_on if status == Status.DONE else None, status=status,
            as_of=as_of, days_overdue=over, days_left=left, late=late, derived=True,
            bad_due=bad))
    return out


def site_obligations(site: Mapping[str, Any], as_of: dt.date,
                     rules: Rules = Rules()) -> list[Obligation]:
    """Every dated obligation of one site record (an enterprise or a workshop)."""
    kind = _text(site.get("site_type"))
    if kind == "enterprise":
        return enterprise_obligations(site, as_of, rules)
    if kind == "scattered_workshop":
        return workshop_obligations(site, as_of, rules)
    return []


# ---------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class SiteSummary:
    """A site's worst obligation: its status and the most days overdue."""

    status: Status | None
    days_overdue: int = 0
    overdue: tuple[str, ...] = ()  # kinds overdue
    due_soon: tuple[str, ...] = ()


def summarize_site(obligations: Sequence[Obligation]) -> SiteSummary:
    """The worst status of ``obligations`` (None when there are none)."""
    if not obligations:
        return SiteSummary(None)
    worst = max((o.status for o in obligations), key=lambda s: s.rank)
    over = [o for o in obligations if o.status == Status.OVERDUE]
    return SiteSummary(worst, max((o.days_overdue for o in over), default=0),
                       tuple(o.kind for o in over),
                       tuple(o.kind for o in obligations if o.status == Status.DUE_SOON))


def sort_key(o: Obligation) -> tuple:
    """Most overdue first, then the soonest due, then by site."""
    return (-o.status.rank, -o.days_overdue, o.days_left if o.days_left is not None else 0,
            o.site_id, [k.key for k in KINDS].index(o.kind))


@dataclass
class CountyGroup:
    """One county's overdue and due-soon obligations."""

    county: str
    overdue: list[Obligation] = field(default_factory=list)
    due_soon: list[Obligation] = field(default_factory=list)

    @property
    def sites_overdue(self) -> int:
        return len({o.site_id for o in self.overdue})

    def counts(self) -> dict[str, int]:
        return {"overdue": len(self.overdue), "due_soon": len(self.due_soon),
                "sites_overdue": self.sites_overdue}


def group_by_county(obligations: Iterable[Obligation],
                    county_order: Sequence[str]) -> list[CountyGroup]:
    """Overdue and due-soon obligations by county: every county of ``county_order`` (the
    city's bulletin order), those with none included, then any other district named."""
    groups = {c: CountyGroup(c) for c in county_order}
    for o in sorted(obligations, key=sort_key):
        if not o.open:
            continue
        g = groups.setdefault(o.district, CountyGroup(o.district))
        (g.overdue if o.status == Status.OVERDUE else g.due_soon).append(o)
    return list(groups.values())


def count_statuses(obligations: Iterable[Obligation]) -> dict[str, int]:
    """Obligations per status (every status, zeros included), plus ``sites_overdue``."""
    out = {s.value: 0 for s in Status}
    sites = set()
    for o in obligations:
        out[o.status.value] += 1
        if o.status == Status.OVERDUE:
            sites.add((o.site_type, o.site_id))
    out["sites_overdue"] = len(sites)
    return out
