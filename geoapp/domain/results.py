"""Verdicts of the rule engine: hits, nearest features and the result of one check.

These are plain values with a stable ``to_dict()`` shape, because the same result goes to the
JSON API, the HTML check page, the printable sheet and the inspection record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How serious a hit is; the order of the members is the display order (worst first)."""

    zh: str
    rank: int

    def __new__(cls, value: str, zh: str, rank: int):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.zh = zh
        obj.rank = rank
        return obj

    HIGH = ("high", "高", 3)
    MEDIUM = ("medium", "中", 2)
    LOW = ("low", "低", 1)


def round_distance(distance_m: float) -> float:
    """Distances are reported to 0.1 m: finer figures would claim accuracy the data lacks."""
    return round(float(distance_m) + 0.0, 1)


@dataclass(slots=True)
class Hit:
    """One rule broken by one site, with the feature that triggered it.

    Treat as immutable; not frozen only because frozen dataclasses are slow to build and
    the single-point check creates a dozen of these per call.
    """

    rule_id: str
    title: Mapping[str, str]
    feature_id: str | None
    feature_name: str | None
    distance_m: float | None
    severity: str
    basis: str
    action: str

    def sort_key(self) -> tuple:
        """Worst first, then nearest first, then rule id for a stable order."""
        rank = Severity(self.severity).rank
        dist = self.distance_m if self.distance_m is not None else float("inf")
        return (-rank, dist, self.rule_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "title": {"zh": self.title["zh"], "en": self.title["en"]},
            "feature_id": self.feature_id,
            "feature_name": self.feature_name,
            "distance_m": self.distance_m,
            "severity": self.severity,
            "basis": self.basis,
            "action": self.action,
        }


@dataclass(slots=True)
class Nearest:
    """The nearest feature of one layer, whether or not any rule fired on it.

    Inspectors want to see "the river is 612 m away" even when nothing is broken.
    """

    layer: str
    feature_id: str | None
    feature_name: str | None
    distance_m: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "feature_id": self.feature_id,
            "feature_name": self.feature_name,
            "distance_m": self.distance_m,
        }


@dataclass(frozen=True)
class CheckResult:
    """Everything one single-point check found; ``verdict`` is derived from the hits."""

    input: Mapping[str, Any]
    lon: float
    lat: float
    hits: tuple[Hit, ...] = field(default_factory=tuple)
    nearest: tuple[Nearest, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hits", tuple(sorted(self.hits, key=Hit.sort_key)))
        object.__setattr__(self, "nearest", tuple(self.nearest))

    @property
    def verdict(self) -> str:
        return "fail" if self.hits else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": dict(self.input),
            "point": {"lon": self.lon, "lat": self.lat},
            "verdict": self.verdict,
            "hits": [h.to_dict() for h in self.hits],
            "nearest": [n.to_dict() for n in self.nearest],
        }
