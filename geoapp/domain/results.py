"""Verdicts of the rule engine: hits, nearest features and the result of one check.

These are plain values with a stable ``to_dict()`` shape, because the same result goes to the
JSON API, the HTML check page, the printable sheet and the inspection record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


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


class Verdict(StrEnum):
    """The answer of a check. Precedence when several apply: out_of_area > fail >
    needs_info > pass; ``pass`` is only given when every rule that could apply was decided."""

    zh: str
    en: str
    sentence_zh: str
    sentence_en: str

    def __new__(cls, value: str, zh: str, en: str, sentence_zh: str, sentence_en: str):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.zh = zh
        obj.en = en
        obj.sentence_zh = sentence_zh
        obj.sentence_en = sentence_en
        return obj

    @property
    def text(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}

    FAIL = ("fail", "不符合", "Non-compliant",
            "该位置违反下列管控规则，请按所列措施现场核查处置。",
            "The site breaks the rules listed; check it on site and act as each rule says.")
    PASS = ("pass", "符合", "Compliant",
            "所有可能适用的管控规则均已核查，均未触发。",
            "Every rule that could apply to this site was checked and none is broken.")
    NEEDS_INFO = ("needs_info", "待核实", "Needs information",
                  "位置落在下列规则的管控范围内，但是否适用取决于尚未提供的信息（如场所类型、行业、燃料），"
                  "请补充后重新核查。",
                  "The site lies within the reach of the rules listed, but whether they apply "
                  "depends on facts not given (site type, industry, fuel…); give them and check "
                  "again.")
    OUT_OF_AREA = ("out_of_area", "超出本市数据范围", "Outside the city's data",
                   "该位置在本市数据覆盖范围之外，无法判定是否符合，请核对坐标或交由所在地核查。",
                   "The point lies outside the area the city's data covers, so no verdict is "
                   "possible; check the coordinates or refer it to the place it lies in.")


def verdict_of(has_hits: bool, has_conditional: bool, covered: bool = True) -> Verdict:
    """The verdict of one site from what was found (see ``Verdict`` for the precedence)."""
    if not covered:
        return Verdict.OUT_OF_AREA
    if has_hits:
        return Verdict.FAIL
    return Verdict.NEEDS_INFO if has_conditional else Verdict.PASS


def row_verdicts(n: int, fail_rows: Any, conditional_rows: Any, covered: Any = None) -> np.ndarray:
    """Vectorised ``verdict_of`` for ``n`` sites: an object array of verdict strings.

    ``fail_rows`` and ``conditional_rows`` are row numbers (repeats allowed) or boolean masks of
    length ``n``; ``covered`` is a boolean mask (None: every row is covered).
    """
    out = np.full(n, Verdict.PASS.value, dtype=object)
    for rows, value in ((conditional_rows, Verdict.NEEDS_INFO), (fail_rows, Verdict.FAIL)):
        rows = np.asarray(rows)
        if rows.dtype == bool:
            out[rows] = value.value
        elif rows.size:
            out[rows.astype(np.intp)] = value.value
    if covered is not None:
        out[~np.asarray(covered, dtype=bool)] = Verdict.OUT_OF_AREA.value
    return out


def round_distance(distance_m: float) -> float:
    """Distances are reported to 0.1 m: finer figures would claim accuracy the data lacks.

    The result is ``round(d + 0.0, 1)`` (the decimal nearest to d's binary value, ties to
    even; -0.0 comes out as 0.0), about twice as fast (a single check rounds a dozen figures):
    d * 10 rounds off at most half a unit in its last place; unless it lands within 1e-6 of
    a half-integer (far more than that error for any distance below 1e8 m), the integer
    nearest to it is the one nearest to the exact 10·d, and q / 10 is the double nearest to
    the decimal q/10, as ``round`` returns. Other cases (negative, huge, inf, NaN) go to
    ``round`` itself.
    """
    d = float(distance_m)
    y = d * 10.0
    if 0.0 <= y < 1e9:
        q = round(y)
        if abs(abs(y - q) - 0.5) > 1e-6:
            return q / 10.0
    return round(d + 0.0, 1)


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
    #: The rule's distance limit (within_distance rules), else None.
    limit_m: float | None = None
    #: The rule's test: within_distance, inside or not_inside.
    test: str = ""
    #: What is uncertain about the legal basis (``RuleSpec.basis_note``).
    basis_note: str | None = None
    #: Where the site was checked: ``site`` or ``new_site`` (the new site of a relocation).
    point: str = "site"

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
            "limit_m": self.limit_m,
            "test": self.test,
            "basis_note": self.basis_note,
            "point": self.point,
        }


@dataclass(slots=True)
class ConditionalHit(Hit):
    """A rule whose geometry holds but which applies only if the site is what ``condition``
    says: ``missing`` names the attributes that were not given (e.g. ``("site_type",)``).

    ``sentence`` is one line for the inspector, e.g. “若为畜禽养殖场：距大沙河 145.5 m，
    违反“河道两侧畜禽养殖禁养区”规定（400 m）”.
    """

    missing: tuple[str, ...] = ()
    condition: Mapping[str, str] = field(default_factory=lambda: {"zh": "", "en": ""})
    sentence: Mapping[str, str] = field(default_factory=lambda: {"zh": "", "en": ""})

    def to_dict(self) -> dict[str, Any]:
        out = Hit.to_dict(self)
        out["missing"] = list(self.missing)
        out["condition"] = {"zh": self.condition["zh"], "en": self.condition["en"]}
        out["sentence"] = {"zh": self.sentence["zh"], "en": self.sentence["en"]}
        return out


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
    """Everything one single-point check found; ``verdict`` is derived from the hits, the
    conditional hits and whether the point lies in the area the city's data covers."""

    input: Mapping[str, Any]
    lon: float
    lat: float
    hits: tuple[Hit, ...] = field(default_factory=tuple)
    nearest: tuple[Nearest, ...] = field(default_factory=tuple)
    conditional_hits: tuple[ConditionalHit, ...] = field(default_factory=tuple)
    covered: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "hits", tuple(sorted(self.hits, key=Hit.sort_key)))
        object.__setattr__(self, "nearest", tuple(self.nearest))
        object.__setattr__(self, "conditional_hits",
                           tuple(sorted(self.conditional_hits, key=Hit.sort_key)))
        object.__setattr__(self, "covered", bool(self.covered))

    @property
    def verdict(self) -> Verdict:
        """The Verdict (a str: ``fail``, ``pass``, ``needs_info`` or ``out_of_area``)."""
        return verdict_of(bool(self.hits), bool(self.conditional_hits), self.covered)

    def to_dict(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "input": dict(self.input),
            "point": {"lon": self.lon, "lat": self.lat},
            "verdict": verdict.value,
            "verdict_text": verdict.text,
            "hits": [h.to_dict() for h in self.hits],
            "conditional_hits": [h.to_dict() for h in self.conditional_hits],
            "nearest": [n.to_dict() for n in self.nearest],
            "covered": self.covered,
        }
