"""The answer of a parcel siting check: plain values, no geometry.

A parcel is a piece of land a project asks to use. Its check measures, on the ground, the
parcel's area, the part of it each layer feature covers, and per rule the distance from the
parcel to the rule's layer (0 when they overlap) and, for area rules, the overlap; the rules
then decide with ``domain.rules.decide`` exactly as for a point. The spatial side is
``geoapp.spatial.parcels``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geoapp.domain.results import Hit, Verdict, round_distance, verdict_of

#: One 亩 in square metres (1 公顷 = 15 亩).
MU_M2 = 10000.0 / 15.0
#: One 公顷 (hectare) in square metres.
HECTARE_M2 = 10000.0
#: A part of a parcel outside the city counts when it is larger than ``OUTSIDE_TOLERANCE_M2``
#: and either than ``OUTSIDE_SHARE`` of the parcel or than ``OUTSIDE_AREA_M2`` (boundary
#: lines are generalised: a sliver along the border of a large parcel is noise, a building
#: plot beyond it is not).
OUTSIDE_TOLERANCE_M2 = 1.0
OUTSIDE_SHARE = 0.001
OUTSIDE_AREA_M2 = 500.0


def round_area(area_m2: float) -> float:
    """Areas are reported to 0.1 m²."""
    return round(float(area_m2) + 0.0, 1)


@dataclass(frozen=True)
class GroundArea:
    """An area on the ground (ellipsoidal), in m², 亩 and 公顷."""

    m2: float

    @property
    def mu(self) -> float:
        return self.m2 / MU_M2

    @property
    def ha(self) -> float:
        return self.m2 / HECTARE_M2

    def to_dict(self) -> dict[str, float]:
        return {"m2": round_area(self.m2), "mu": round(self.mu, 4), "ha": round(self.ha, 6)}


@dataclass(frozen=True)
class Overlap:
    """The part of the parcel one layer feature covers: its ground area and its share of
    the parcel (0–1)."""

    layer: str
    feature_id: str | None
    feature_name: str | None
    area_m2: float
    share: float

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "feature_id": self.feature_id,
                "feature_name": self.feature_name, "area_m2": round_area(self.area_m2),
                "share": round(self.share, 6)}


@dataclass(frozen=True)
class RuleMeasure:
    """What was measured for one rule that applies (or may apply) to the project.

    ``distance_m``: minimum ground distance from the parcel to the rule layer's nearest
    feature (0 when they overlap; None when the layer has no feature); ``overlap_m2``: the
    ground area of the parcel inside the layer's features, for area rules (inside /
    not_inside), else None; ``outcome``: ``hit``, ``conditional_hit`` or ``no_hit`` as
    ``domain.rules.decide`` decided; ``applies``: False when the rule applies only if a
    missing attribute has the value it names.
    """

    rule_id: str
    test: str
    layer: str
    applies: bool
    feature_id: str | None
    feature_name: str | None
    distance_m: float | None
    overlap_m2: float | None
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "test": self.test, "layer": self.layer,
                "applies": self.applies, "feature_id": self.feature_id,
                "feature_name": self.feature_name,
                "distance_m": None if self.distance_m is None
                else round_distance(self.distance_m),
                "overlap_m2": None if self.overlap_m2 is None else round_area(self.overlap_m2),
                "outcome": self.outcome}


@dataclass(frozen=True)
class ParcelHit:
    """A rule broken by the parcel (``hit`` is a ``Hit`` or a ``ConditionalHit``) with the
    overlap on the ground where the rule is an area rule."""

    hit: Hit
    overlap_m2: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = self.hit.to_dict()
        out["overlap_m2"] = None if self.overlap_m2 is None else round_area(self.overlap_m2)
        return out


@dataclass(frozen=True)
class ParcelResult:
    """Everything one parcel check found; ``verdict`` has the meanings of a point check's
    (``domain.results.Verdict``): out_of_area when the parcel lies wholly outside the area
    the city's data covers, fail when a rule that applies holds, needs_info when only rules
    that may apply hold, pass otherwise."""

    area: GroundArea
    overlaps: tuple[Overlap, ...] = ()
    rules: tuple[RuleMeasure, ...] = ()
    hits: tuple[ParcelHit, ...] = ()
    conditional_hits: tuple[ParcelHit, ...] = ()
    covered: bool = True
    input: Mapping[str, Any] = field(default_factory=dict)
    #: Ground area of the parcel outside the city (where the city's data says nothing).
    outside_m2: float = 0.0

    def __post_init__(self) -> None:
        def key(h: ParcelHit) -> tuple:
            return h.hit.sort_key()

        object.__setattr__(self, "hits", tuple(sorted(self.hits, key=key)))
        object.__setattr__(self, "conditional_hits",
                           tuple(sorted(self.conditional_hits, key=key)))
        object.__setattr__(self, "overlaps", tuple(self.overlaps))
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "covered", bool(self.covered))

    @property
    def outside_counts(self) -> bool:
        """Whether the part outside the city is more than a boundary sliver."""
        return self.outside_m2 > OUTSIDE_TOLERANCE_M2 and (
            self.outside_m2 > OUTSIDE_SHARE * self.area.m2 or self.outside_m2 > OUTSIDE_AREA_M2)

    @property
    def verdict(self) -> Verdict:
        """As a point's, except that a parcel partly outside the city is never ``pass``:
        the part outside was not checked (needs_info, with the part named)."""
        verdict = verdict_of(bool(self.hits), bool(self.conditional_hits), self.covered)
        if verdict is Verdict.PASS and self.outside_counts:
            return Verdict.NEEDS_INFO
        return verdict

    def to_dict(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "input": dict(self.input),
            "area_m2": round_area(self.area.m2),
            "area": self.area.to_dict(),
            "verdict": verdict.value,
            "verdict_text": verdict.text,
            "overlaps": [o.to_dict() for o in self.overlaps],
            "rules": [r.to_dict() for r in self.rules],
            "hits": [h.to_dict() for h in self.hits],
            "conditional_hits": [h.to_dict() for h in self.conditional_hits],
            "covered": self.covered,
            "outside_city_m2": round_area(self.outside_m2),
            "outside_city_share": round(self.outside_m2 / self.area.m2, 6)
            if self.area.m2 > 0 else 0.0,
        }


__all__ = ["HECTARE_M2", "MU_M2", "GroundArea", "Overlap", "ParcelHit",
           "ParcelResult", "RuleMeasure", "round_area"]
