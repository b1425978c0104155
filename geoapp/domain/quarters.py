"""Calendar quarters and the programme's quarterly reporting duty (pure, no I/O).

The 百企退城 office must report its progress "by the 25th of the last month of each quarter"
(3/25, 6/25, 9/25, 12/25): each deadline lies inside the quarter it reports on. These rules
live here so the page, the CLI and the exports agree.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from geoapp.domain.errors import InvalidInput

#: Day of the quarter's last month by which the report is due.
DEADLINE_DAY = 25
_LABEL = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]([1-4])\s*$")


@dataclass(frozen=True, order=True)
class Quarter:
    """One calendar quarter, e.g. ``Quarter(2019, 3)`` is July to September 2019."""

    year: int
    quarter: int

    def __post_init__(self) -> None:
        if not 1 <= self.quarter <= 4:
            raise InvalidInput(f"季度 quarter must be 1 to 4, got {self.quarter!r}")
        if not 1900 <= self.year <= 2999:
            raise InvalidInput(f"年度 year out of range: {self.year!r}")

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        """The quarter a date falls in."""
        return cls(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """``2019Q3`` or ``2019-Q3`` to a quarter; anything else is an error naming it."""
        m = _LABEL.match(str(text))
        if not m:
            raise InvalidInput(f"季度 quarter must look like 2019Q3, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, 3 * self.quarter - 2, 1)

    @property
    def last_day(self) -> dt.date:
        nxt = self.shift(1).first_day
        return nxt - dt.timedelta(days=1)

    @property
    def deadline(self) -> dt.date:
        """The reporting deadline: the 25th of the quarter's last month."""
        return dt.date(self.year, 3 * self.quarter, DEADLINE_DAY)

    def shift(self, n: int) -> Quarter:
        """The quarter ``n`` quarters later (earlier when negative)."""
        index = self.year * 4 + (self.quarter - 1) + n
        return Quarter(index // 4, index % 4 + 1)

    def contains(self, day: dt.date) -> bool:
        return self.first_day <= day <= self.last_day

    @property
    def label(self) -> str:
        """Chinese label used in titles: ``2019年第3季度``."""
        return f"{self.year}年第{self.quarter}季度"

    def __str__(self) -> str:
        return f"{self.year}Q{self.quarter}"


def parse_quarter(year: object, quarter: object) -> Quarter:
    """Year and quarter from query or CLI values; a bad one is a 400 naming it."""
    try:
        y = int(str(year).strip())
    except ValueError:
        raise InvalidInput(f"年度 year must be a whole number, got {year!r}") from None
    try:
        q = int(str(quarter).strip().upper().removeprefix("Q"))
    except ValueError:
        raise InvalidInput(f"季度 quarter must be 1 to 4, got {quarter!r}") from None
    return Quarter(y, q)


def report_quarter(today: dt.date) -> Quarter:
    """The quarter a report prepared on ``today`` is for: the quarter ``today`` falls in.

    The deadline (the 25th of the last month) lies inside the quarter it belongs to, so the
    report due next, or overdue since the 25th, is always the current quarter's. The page and
    the CLI default to it; this function pins the rule in one place.
    """
    return Quarter.of(today)


def next_deadline(today: dt.date) -> dt.date:
    """The next reporting deadline on or after ``today``."""
    q = Quarter.of(today)
    return q.deadline if today <= q.deadline else q.shift(1).deadline


def quarters_between(first: Quarter, last: Quarter) -> list[Quarter]:
    """Every quarter from ``first`` to ``last`` inclusive (empty when reversed)."""
    out: list[Quarter] = []
    q = first
    while q <= last:
        out.append(q)
        q = q.shift(1)
    return out
