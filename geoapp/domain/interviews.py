"""The 约谈 (interview) list's rules, free of I/O.

A hotspot grid warned week after week means the county has not got on top of it: the bureau
summons (约谈) the county's officials, with the grid and the enterprises inside it. A grid is on
the list of a week when it was warned in that week and in each of the N - 1 weeks before it
(N = the INTERVIEW_WEEKS setting), weeks being the bulletin's ISO weeks in Asia/Shanghai time.
The list is read by county, every county of the city in bulletin order, "无" where none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from geoapp.domain.bulletin import IsoWeek
from geoapp.domain.errors import InvalidInput

#: What a county without any grid on the list shows.
NONE = "无"


def streak(weeks: Iterable[str], week: IsoWeek) -> int:
    """How many consecutive weeks, ending with ``week``, are among ``weeks`` (labels such as
    ``2026-W47``); 0 when ``week`` itself is not."""
    have = set(map(str, weeks))
    n = 0
    while str(week.shift(-n)) in have:
        n += 1
    return n


def required_weeks(n: Any) -> int:
    """The INTERVIEW_WEEKS setting as a whole number of at least 1."""
    try:
        value = int(n)
    except (TypeError, ValueError):
        raise InvalidInput(f"连续预警周数须为正整数 Weeks must be a whole number, not {n!r}") \
            from None
    if value < 1:
        raise InvalidInput(f"连续预警周数须为正整数 Weeks must be 1 or more, not {value}")
    return value


def on_list(weeks_by_grid: Mapping[str, Iterable[str]], week: IsoWeek, n: int
            ) -> dict[str, int]:
    """Grid code -> its streak, for the grids warned in at least ``n`` consecutive weeks
    ending with ``week``."""
    out = {}
    for code, weeks in weeks_by_grid.items():
        s = streak(weeks, week)
        if s >= n:
            out[str(code)] = s
    return out


def by_county(grids: Sequence[Mapping[str, Any]], county_order: Sequence[str]
              ) -> list[dict[str, Any]]:
    """Every county in bulletin order with its grids (longest streak first, then code);
    a grid of a county the city file does not name comes after them, under its own name."""
    groups: dict[str, list[Mapping[str, Any]]] = {c: [] for c in county_order}
    for g in grids:
        groups.setdefault(str(g.get("county") or ""), []).append(g)
    out = []
    for county, items in groups.items():
        items = sorted(items, key=lambda g: (-int(g.get("streak", 0)), str(g.get("code"))))
        out.append({"county": county, "grids": items})
    return out
