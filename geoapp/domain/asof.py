"""The day a figure or a status is judged on, as pages and documents write it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AsOf:
    """The day figures are counted at or statuses judged on; ``today`` when it is today
    (the programme's period is not over yet, or no ``?as_of=`` was given)."""

    date: dt.date
    today: bool = False

    @property
    def zh(self) -> str:
        """``截至2018年12月31日``."""
        return f"截至{self.date.year}年{self.date.month}月{self.date.day}日"

    @property
    def en(self) -> str:
        """``as of 2018-12-31``."""
        return f"as of {self.date.isoformat()}"

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.date.isoformat(), "as_of_today": self.today,
                "as_of_text": self.zh + ("（今天）" if self.today else ""),
                "as_of_text_en": self.en + (" (today)" if self.today else "")}
