"""The weekly bulletin's arithmetic and wording, free of I/O.

Every Monday the duty officer publishes last week's hotspot-grid warnings and 12369 hotline
complaints in a fixed bureau style. The rules that make the text right live here so they can be
tested on plain numbers: ISO weeks (Monday to Sunday, local time Asia/Shanghai), whole-number
percentages that add up to exactly 100 (largest-remainder rounding, so a table never shows 99%
or 101%), counties listed by descending count and then every county without a warning, and the
change against the previous week.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from geoapp.domain.errors import InvalidInput
from geoapp.domain.vocab import ComplaintCategory

#: The bureau works in China Standard Time; a week is Monday 00:00 to Sunday 24:00 there.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_WEEK_RE = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)

#: How the bulletin names each complaint category (大气 -> 大气污染投诉...).
CATEGORY_PHRASE: dict[str, str] = {
    ComplaintCategory.AIR.value: "大气污染",
    ComplaintCategory.NOISE.value: "噪声污染",
    ComplaintCategory.WATER.value: "水污染",
    ComplaintCategory.SOLID_WASTE.value: "固废污染",
    ComplaintCategory.OTHER.value: "其他",
}

#: Map classes of a cell's weekly warning count: (lowest count, fill colour, label). The PNG
#: and the interactive map share them so both read the same.
COUNT_CLASSES: tuple[tuple[int, str, str], ...] = (
    (1, "#fed976", "1次"),
    (2, "#fd8d3c", "2次"),
    (3, "#e31a1c", "3–4次"),
    (5, "#800026", "≥5次"),
)
#: Outline of key-monitored (重点监控) cells.
KEY_COLOUR = "#1f4e9c"


def count_colour(count: int) -> str | None:
    """The fill of a cell with ``count`` warnings (None: not warned)."""
    colour = None
    for low, c, _ in COUNT_CLASSES:
        if count >= low:
            colour = c
    return colour


#: Years a bulletin week may name: the programmes' era, and within what dates, file stamps
#: and ZIP archives (1980-2107) can carry.
MIN_YEAR, MAX_YEAR = 2000, 2099


@dataclass(frozen=True, order=True)
class IsoWeek:
    """An ISO 8601 week (Monday to Sunday), e.g. ``IsoWeek(2026, 47)`` = 2026-W47."""

    year: int
    week: int

    def __post_init__(self) -> None:
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise InvalidInput(f"周次年份超出范围 Week year out of range: {MIN_YEAR} to "
                               f"{MAX_YEAR}, not {self.year}")
        last = date(self.year, 12, 28).isocalendar().week  # 28 Dec is always in the last week
        if not 1 <= self.week <= last:
            raise InvalidInput(f"ISO year {self.year} has weeks 1 to {last}, not {self.week}")

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """Accept ``2026-W47`` (or ``2026W47``); anything else is InvalidInput."""
        m = _WEEK_RE.match(str(text))
        if not m:
            raise InvalidInput(f"week must look like 2026-W47, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @property
    def start(self) -> datetime:
        """Monday 00:00 local time (naive, as the event tables store local times)."""
        return datetime.combine(self.monday, datetime.min.time())

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 local time: the week is ``start <= t < end``."""
        return self.start + timedelta(days=7)

    def shift(self, weeks: int) -> IsoWeek:
        return IsoWeek.of(self.monday + timedelta(weeks=weeks))

    def previous(self) -> IsoWeek:
        return self.shift(-1)

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


def last_full_week(now: datetime | None = None) -> IsoWeek:
    """The last complete week before ``now`` in Asia/Shanghai (on a Monday: the week that just
    ended). A naive ``now`` is taken as local time already."""
    now = now or datetime.now(LOCAL_TZ)
    if now.tzinfo is not None:
        now = now.astimezone(LOCAL_TZ)
    return IsoWeek.of(now.date()).previous()


def weeks_ending(week: IsoWeek, count: int) -> list[IsoWeek]:
    """``count`` consecutive weeks ending with ``week``, oldest first."""
    return [week.shift(-i) for i in range(count - 1, -1, -1)]


def date_range_zh(week: IsoWeek) -> str:
    """``2026年11月16日至11月22日``; the year is repeated when the week spans New Year."""
    a, b = week.monday, week.sunday
    tail = f"{b.month}月{b.day}日" if a.year == b.year else f"{b.year}年{b.month}月{b.day}日"
    return f"{a.year}年{a.month}月{a.day}日至{tail}"


def largest_remainder_percentages(counts: Sequence[int]) -> list[int]:
    """Whole percentages of ``counts`` that add up to exactly 100 (all zeros for no counts).

    Each share is floored, then the points still missing go to the largest remainders; ties go
    to the earlier item so the result is deterministic.
    """
    if any(c < 0 for c in counts):
        raise InvalidInput("counts cannot be negative")
    total = sum(counts)
    if total == 0:
        return [0] * len(counts)
    floors = [c * 100 // total for c in counts]
    remainders = [c * 100 % total for c in counts]
    missing = 100 - sum(floors)
    order = sorted(range(len(counts)), key=lambda i: (-remainders[i], i))
    for i in order[:missing]:
        floors[i] += 1
    return floors


def change_phrase(current: int, previous: int) -> str:
    """比前一周增加6件 / 比前一周减少3件 / 与前一周持平."""
    diff = current - previous
    if diff > 0:
        return f"比前一周增加{diff}件"
    if diff < 0:
        return f"比前一周减少{-diff}件"
    return "与前一周持平"


def counties_in_bulletin_order(counts: Mapping[str, int],
                               county_order: Sequence[str]) -> tuple[list[tuple[str, int]],
                                                                      list[str]]:
    """(counties with warnings by descending count, counties without) — ties and the
    without-list keep the city file's order. Counts for names outside ``county_order`` (a grid
    whose county is unknown) come last among the warned ones, by name."""
    rank = {name: i for i, name in enumerate(county_order)}
    warned = [(n, int(c)) for n, c in counts.items() if int(c) > 0]
    warned.sort(key=lambda nc: (-nc[1], rank.get(nc[0], len(rank)), nc[0]))
    quiet = [n for n in county_order if int(counts.get(n, 0)) <= 0]
    return warned, quiet


def warnings_paragraph(week: IsoWeek, counts: Mapping[str, int],
                       county_order: Sequence[str]) -> str:
    """The hotspot-grid sentence: total, then counties with warnings, then those without."""
    total = sum(int(c) for c in counts.values())
    head = date_range_zh(week)
    if total == 0:
        return f"{head}，全市热点网格均未产生预警信息。"
    warned, quiet = counties_in_bulletin_order(counts, county_order)
    parts = "、".join(f"{n}{c}件" for n, c in warned)
    text = f"{head}，全市共有{total}个（次）热点网格产生预警信息。其中，{parts}"
    if quiet:
        verb = "均未产生预警信息" if len(quiet) > 1 else "未产生预警信息"
        text += f"，{'、'.join(quiet)}{verb}"
    return text + "。"


def complaints_paragraph(by_category: Mapping[str, int], previous_total: int) -> str:
    """The 12369 sentence: total, change against last week, each category with its share.

    ``by_category`` maps category values (air, noise...) to counts; categories are written in
    the vocabulary's order and a category with no complaint is left out.
    """
    order = [c.value for c in ComplaintCategory]
    items = [(c, int(by_category.get(c, 0))) for c in order if int(by_category.get(c, 0)) > 0]
    total = sum(n for _, n in items)
    change = change_phrase(total, previous_total)
    if total == 0:
        return f"本周12369环境热线中心未接到群众投诉，{change}。"
    shares = largest_remainder_percentages([n for _, n in items])
    parts = [f"{CATEGORY_PHRASE[c]}投诉{n}件，占总投诉量的{p}%"
             for (c, n), p in zip(items, shares, strict=True)]
    return (f"本周12369环境热线中心共接到群众投诉{total}件，{change}。"
            f"其中，{'；'.join(parts)}。")


def consecutive_paragraph(codes: Sequence[str]) -> str:
    """The sentence naming grids warned in consecutive weeks (连续预警), or none."""
    if not codes:
        return "本周无连续预警网格。"
    return f"连续两周及以上产生预警的网格{len(codes)}个：{'、'.join(codes)}。"


def bulletin_text(city_name: str, week: IsoWeek, county_counts: Mapping[str, int],
                  county_order: Sequence[str], complaints_by_category: Mapping[str, int],
                  previous_complaints: int, consecutive_codes: Sequence[str] = ()) -> str:
    """The whole bulletin as plain text (UTF-8, newline-terminated lines)."""
    lines = [
        f"{city_name}热点网格预警及12369环境热线投诉情况周报",
        f"{week.year}年第{week.week}周（{date_range_zh(week)}）",
        "",
        "一、热点网格预警情况",
        warnings_paragraph(week, county_counts, county_order),
        consecutive_paragraph(consecutive_codes),
        "",
        "二、12369环境热线投诉情况",
        complaints_paragraph(complaints_by_category, previous_complaints),
    ]
    return "\n".join(lines) + "\n"


def overdue_paragraph(as_of: date, county_counts: Mapping[str, int],
                      county_order: Sequence[str], total: int, sites: int) -> str:
    """The bulletin's 逾期督办 sentence: overdue obligations as of ``as_of`` (the week's
    Sunday) by county in descending count, then the counties without any (``无``)."""
    day = f"截至{as_of.year}年{as_of.month}月{as_of.day}日"
    if not total:
        return f"{day}，全市无逾期未完成的整改、搬迁及“两断三清”事项。"
    listed, quiet = counties_in_bulletin_order(county_counts, county_order)
    parts = "、".join(f"{name}{count}项" for name, count in listed)
    text = f"{day}，全市逾期未完成事项{total}项，涉及{sites}家单位：{parts}"
    return text + (f"；{'、'.join(quiet)}无。" if quiet else "。")
