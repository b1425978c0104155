"""One validation for every parcel input: rings, crossings, holes, zones, areas, ids, limits.

Every reader (the land-survey coordinate file, GeoJSON, KML, GeoPackage, Shapefile, DXF, a
pasted coordinate list, a polygon drawn on the map) turns its input into
:class:`ParcelRings` — per part an outer ring and its holes, each ring's points in lon/lat
and in metres of a Gauss-Krüger zone, with what to call each point — and
:func:`build_parcel` checks it and builds the polygon. Problems are
:class:`~geoapp.domain.errors.Problem` entries naming the parcel (its number or name and its
position), the ring and the point (点号 or vertex number); the caller collects them and
refuses the input whole. The choices (see docs/parcels.md):

- a ring that does not repeat its first point is closed, whatever the gap: survey lists,
  pasted lists and drawings all leave the closing point out, and a boundary is a closed line;
- points closer than :data:`SAME_POINT_M` are one point; a ring needs 3 distinct points;
- a multipolygon whose parts overlap by more than :data:`OVERLAP_TOLERANCE_M2` is refused
  (its area would count twice); parts that only share an edge are merged;
- a declared area more than :data:`AREA_TOLERANCE` from the ground area is a warning;
- names and attribute text lose C0/C1 control characters (tab and line feed kept) and lone
  surrogates become U+FFFD (:func:`clean_text`), so every output can carry them; an id
  holding either, or longer than :data:`MAX_ID_CHARS`, refuses its parcel (:func:`id_problem`):
  ids match answers to the input, so one is never changed or cut.

Pure numpy/shapely/pyproj: no files, no GDAL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from geoapp.domain.errors import InvalidInput, Problem
from geoapp.domain.messages import Text as _l
from geoapp.spatial.crs import from_metric, in_china
from geoapp.spatial.parcels import ground_area_m2

#: At most this many parcels in one input.
MAX_PARCELS = 10_000
#: At most this many vertices (all rings of all parcels) in one input.
MAX_VERTICES = 200_000
#: Points closer than this (m) are the same point (surveys write millimetres).
SAME_POINT_M = 1e-3
#: Parts of one parcel overlapping by more than this (m²) refuse the parcel.
OVERLAP_TOLERANCE_M2 = 0.01
#: A declared area further than this share from the measured ground area is a warning.
AREA_TOLERANCE = 0.01
#: How far (degrees of longitude) past its zone's edge a point may lie before the zone is
#: called wrong: surveys near a zone edge often stay in the neighbouring zone.
ZONE_MARGIN_DEG = 0.5
#: Northings (m) of CGCS2000 Gauss-Krüger coordinates in China, Sanya to Mohe (generous).
NORTHING_RANGE = (1_500_000.0, 6_200_000.0)
#: Eastings (m, zone number removed) a Gauss-Krüger zone can hold.
EASTING_RANGE = (100_000.0, 900_000.0)

#: Longest parcel id accepted (characters).
MAX_ID_CHARS = 100

_CROSSING = re.compile(r"Self-intersection\[([-\d.eE+]+) ([-\d.eE+]+)\]")


# --- What readers hand over ----------------------------------------------------------------

@dataclass(frozen=True)
class Ring:
    """One ring as read: points in lon/lat and in metres (east, north) of the parcel's
    metric CRS, the closing point repeated or not; ``names`` are the survey's 点号 when
    ``named``, else vertex numbers are used; ``lines`` the input line of each point."""

    lonlat: np.ndarray
    metric: np.ndarray
    label: str
    names: Sequence[str] = ()
    named: bool = False
    lines: Sequence[int | None] = ()

    def point(self, i: int) -> str:
        """How a message calls point ``i``: 界址点 J3, or 第 3 个顶点."""
        if self.named and i < len(self.names):
            return _l("界址点 %(name)s", name=self.names[i])
        return _l("第 %(n)s 个顶点", n=i + 1)

    def points(self, indices: Iterable[int]) -> str:
        """How a message calls several points: 界址点 J1, J2, or 顶点 1, 2."""
        if self.named:
            return _l("界址点 %(names)s", names=", ".join(self.names[i] for i in indices))
        return _l("顶点 %(names)s", names=", ".join(str(i + 1) for i in indices))

    def line(self, i: int) -> int | None:
        return self.lines[i] if i < len(self.lines) else None


@dataclass(frozen=True)
class ParcelRings:
    """One parcel as read: ``parts`` of rings (outer ring first, then its holes)."""

    ordinal: int
    label: str
    id: str | None
    parts: Sequence[Sequence[Ring]]
    line: int | None = None
    declared_area_m2: float | None = None


@dataclass(frozen=True)
class Zone:
    """A Gauss-Krüger zone the points were given in: points far outside it are refused."""

    number: int
    width: int
    central_meridian: float


@dataclass(frozen=True)
class BuiltParcel:
    """A parcel checked and built: polygons oriented (exterior counter-clockwise)."""

    lonlat: Polygon | MultiPolygon
    metric: Polygon | MultiPolygon
    ground_area_m2: float


@dataclass
class Findings:
    """Problems (refusing) and warnings (not refusing) collected while reading one input."""

    file: str | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def add(self, message: str, *, parcel: ParcelRings | None = None, line: int | None = None,
            value: Any = None, warning: bool = False, feature: int | None = None,
            id: str | None = None) -> None:
        p = Problem(file=self.file or None, row=line if line is not None else (
                        parcel.line if parcel else None),
                    feature=parcel.ordinal if parcel else feature,
                    id=(parcel.id or None) if parcel else id, value=value, message=message)
        (self.warnings if warning else self.problems).append(p)


# --- Phrases --------------------------------------------------------------------------------

def parcel_label(ordinal: int, id: str | None = None, name: str | None = None) -> str:
    """How messages call a parcel: 地块 JZ-1 名称 when the input numbers it, else by position."""
    if id:
        return _l("地块 %(parcel)s", parcel=f"{id} {name or ''}".strip())
    if name:
        return _l("第 %(n)s 个地块（%(name)s）", n=ordinal, name=name)
    return _l("第 %(n)s 个地块", n=ordinal)


def ring_label(part: int, ring: int, parts: int) -> str:
    """How messages call ring ``ring`` (0 = outer) of part ``part`` (0-based) of ``parts``."""
    if parts <= 1:
        return _l("外边界") if ring == 0 else _l("第 %(n)s 个内圈", n=ring)
    if ring == 0:
        return _l("第 %(part)s 部分的外边界", part=part + 1)
    return _l("第 %(part)s 部分的第 %(n)s 个内圈", part=part + 1, n=ring)


def survey_location(east: float, north: float) -> str:
    """A place as surveyors write it: X north, Y east (no zone number)."""
    return _l("X=%(x)s、Y=%(y)s", x=f"{north:.3f}", y=f"{east:.3f}")


def lonlat_locator(metric_crs: str) -> Callable[[float, float], str]:
    """A place in ``metric_crs`` metres, named by its WGS84 longitude and latitude."""
    def locate(east: float, north: float) -> str:
        lon, lat = from_metric(east, north, metric_crs)
        return _l("东经 %(lon)s°、北纬 %(lat)s°", lon=f"{lon:.6f}", lat=f"{lat:.6f}")
    return locate


# --- Text, limits and ids ---------------------------------------------------------------------

#: C0 controls but tab and line feed, DEL and the C1 controls: no document format (XML 1.0 of
#: Word and Excel, GeoPackage text, pages) carries them, and none belongs in a name.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: A surrogate alone (JSON's "\ud800"): no UTF-8 text can hold it.
_SURROGATES = re.compile("[\ud800-\udfff]")
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` without control characters (tab and line feed kept) and with every lone
    surrogate replaced by U+FFFD."""
    if _UNWANTED.search(text) is None:
        return text
    return _CONTROLS.sub("", _SURROGATES.sub("\ufffd", text))


def clean_value(value: Any) -> Any:
    """A property value with :func:`clean_text` applied to every text in it (lists and
    objects too, keys included); other values as they are."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return value


def id_problem(parcel: str, pid: str) -> str | None:
    """Why ``pid`` cannot be the id of the parcel called ``parcel`` (see :func:`parcel_label`;
    name it without the id): a control character or lone surrogate, or more than
    :data:`MAX_ID_CHARS` characters. None when it can."""
    bad = sorted({c for c in pid if _UNWANTED.match(c)})
    if bad:
        return _l("%(parcel)s 的编号“%(id)s”含控制字符或无效字符（%(chars)s）；请改正编号",
                  parcel=parcel, id=clean_text(pid)[:MAX_ID_CHARS],
                  chars=", ".join(f"U+{ord(c):04X}" for c in bad))
    if len(pid) > MAX_ID_CHARS:
        return _l("%(parcel)s 的编号有 %(count)s 个字符，超过 %(max)s 个（“%(start)s…”）；编号不会被截断"
                  "（截断会让不同的编号变成重复），请缩短编号", parcel=parcel, count=len(pid),
                  max=MAX_ID_CHARS, start=pid[:20])
    return None


def check_limits(parcels: int, vertices: int, label: str) -> None:
    """Refuse an input with more than MAX_PARCELS parcels or MAX_VERTICES vertices."""
    if parcels > MAX_PARCELS:
        raise InvalidInput(_l("%(file)s 有 %(count)s 个地块，一次最多接受 %(max)s 个；请分批提交",
                              file=label, count=format(parcels, ","),
                              max=format(MAX_PARCELS, ",")))
    if vertices > MAX_VERTICES:
        raise InvalidInput(_l("%(file)s 共有 %(count)s 个界址点（顶点），一次最多接受 %(max)s 个；"
                              "请分批提交，或先化简图形", file=label, count=format(vertices, ","),
                              max=format(MAX_VERTICES, ",")))


def duplicate_ids(parcels: Iterable[ParcelRings], findings: Findings) -> None:
    """Every parcel id must be unique: a repeated one is a problem naming both parcels."""
    first: dict[str, ParcelRings] = {}
    for p in parcels:
        if not p.id:
            continue
        if p.id in first:
            findings.add(_l("%(parcel)s 的编号 %(id)s 与第 %(first)s 个地块重复；每个地块须有"
                            "唯一的编号", parcel=p.label, id=p.id, first=first[p.id].ordinal),
                         parcel=p, value=p.id)
        else:
            first[p.id] = p


# --- Gauss-Krüger helpers ---------------------------------------------------------------------

def zone_prefix(easting: Any) -> Any:
    """The zone number written in front of an easting (38 of 38427146.8), 0 when none."""
    e = np.asarray(easting, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.where(e >= 1e7, np.floor(e / 1e6), 0).astype(int)
    return int(out) if out.ndim == 0 else out


def is_northing(v: Any) -> Any:
    v = np.asarray(v, dtype=float)
    with np.errstate(invalid="ignore"):
        return (v >= NORTHING_RANGE[0]) & (v <= NORTHING_RANGE[1])


def is_easting(v: Any) -> Any:
    """An easting of a zone, with or without the zone number in front."""
    v = np.asarray(v, dtype=float)
    plain = v - zone_prefix(v) * 1e6
    with np.errstate(invalid="ignore"):
        return (plain >= EASTING_RANGE[0]) & (plain <= EASTING_RANGE[1])


def looks_like_degrees(x: Any, y: Any) -> Any:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        return (np.abs(x) <= 180) & (np.abs(y) <= 90)


# --- Building one parcel ----------------------------------------------------------------------

def _open_ring(ring: Ring) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The ring without its closing point, and the indices of the points kept."""
    idx = list(range(len(ring.metric)))
    if len(idx) > 1 and np.hypot(*(ring.metric[0] - ring.metric[-1])) <= SAME_POINT_M:
        idx = idx[:-1]
    return ring.metric[idx], ring.lonlat[idx], idx


def _distinct(metric: np.ndarray) -> int:
    return len(np.unique(np.round(metric / SAME_POINT_M), axis=0))


def _crossing(metric: np.ndarray) -> tuple[float, float, list[int]] | None:
    """Where a ring crosses itself, and the points of the edges through that place."""
    reason = shapely.is_valid_reason(Polygon(metric))
    m = _CROSSING.search(reason)
    if not m:
        return None
    where = Point(float(m.group(1)), float(m.group(2)))
    n = len(metric)
    edges = shapely.linestrings(np.stack([metric, np.roll(metric, -1, axis=0)], axis=1))
    near = np.flatnonzero(shapely.distance(edges, where) < SAME_POINT_M)
    found: list[int] = []
    for i in near:
        for k in (int(i), (int(i) + 1) % n):
            if k not in found:
                found.append(k)
    return where.x, where.y, found


def _check_ring(p: ParcelRings, ring: Ring, zone: Zone | None,
                locate: Callable[[float, float], str], findings: Findings,
                ) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    """One ring's own checks; returns (metric, lonlat, kept indices) when it passes."""
    bad = ~(np.isfinite(ring.metric).all(axis=1) & np.isfinite(ring.lonlat).all(axis=1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        findings.add(_l("%(parcel)s %(ring)s %(point)s 的坐标缺失或不是有限的数（NaN、无穷大）",
                        parcel=p.label, ring=ring.label, point=ring.point(i)),
                     parcel=p, line=ring.line(i))
        return None
    metric, lonlat, kept = _open_ring(ring)
    count = _distinct(metric)
    if count < 3:
        findings.add(_l("%(parcel)s %(ring)s 只有 %(count)s 个不同的点（从 %(point)s 起），"
                        "至少要 3 个", parcel=p.label, ring=ring.label, count=count,
                        point=ring.point(0)), parcel=p, line=ring.line(0))
        return None
    outside = ~np.asarray(in_china(lonlat[:, 0], lonlat[:, 1]), dtype=bool)
    off = np.zeros(len(lonlat), dtype=bool)
    if zone is not None:
        off = np.abs(lonlat[:, 0] - zone.central_meridian) > zone.width / 2 + ZONE_MARGIN_DEG
    if off.any() or outside.any():
        i = int(np.flatnonzero(off | outside)[0])
        where = _l("在中国境外") if outside[i] else _l(
            "超出第 %(zone)s 带（中央经线东经 %(cm)s°）的范围", zone=zone.number,
            cm=f"{zone.central_meridian:g}")
        if zone is not None:
            message = _l("%(parcel)s %(point)s 换算后在东经 %(lon)s°、北纬 %(lat)s°，%(where)s；"
                         "请检查带号（%(zone)s）和坐标系", parcel=p.label,
                         point=ring.point(kept[i]), lon=f"{lonlat[i, 0]:.4f}",
                         lat=f"{lonlat[i, 1]:.4f}", where=where, zone=zone.number)
        else:
            message = _l("%(parcel)s %(point)s 换算后在东经 %(lon)s°、北纬 %(lat)s°，%(where)s；"
                         "请检查坐标系", parcel=p.label, point=ring.point(kept[i]),
                         lon=f"{lonlat[i, 0]:.4f}", lat=f"{lonlat[i, 1]:.4f}", where=where)
        findings.add(message, parcel=p, line=ring.line(kept[i]))
        return None
    crossing = _crossing(metric)
    if crossing is not None:
        east, north, at = crossing
        points = [kept[k] for k in at]
        findings.add(_l("%(parcel)s %(ring)s 的界线自相交于 %(where)s，在 %(points)s 之间的边上",
                        parcel=p.label, ring=ring.label, where=locate(east, north),
                        points=ring.points(points)),
                     parcel=p, line=ring.line(points[0]) if points else ring.line(0),
                     value=(ring.names[points[0]] if ring.named and points else None))
        return None
    return metric, lonlat, kept


def _part(p: ParcelRings, rings: Sequence[Ring], zone: Zone | None,
          locate: Callable[[float, float], str], findings: Findings,
          ) -> tuple[Polygon, Polygon] | None:
    checked = [_check_ring(p, r, zone, locate, findings) for r in rings]
    if any(c is None for c in checked):
        return None
    outer = Polygon(checked[0][0])
    ok = True
    for ring, (metric, _, kept) in zip(rings[1:], checked[1:], strict=True):
        out = np.flatnonzero(~shapely.covers(outer, shapely.points(metric)))
        if out.size or not outer.covers(Polygon(metric)):
            i = int(out[0]) if out.size else 0
            findings.add(_l("%(parcel)s %(ring)s 是内圈，却不在外圈之内：%(point)s 在外圈之外",
                            parcel=p.label, ring=ring.label, point=ring.point(kept[i])),
                         parcel=p, line=ring.line(kept[i]))
            ok = False
    if not ok:
        return None
    metric = Polygon(checked[0][0], [c[0] for c in checked[1:]])
    lonlat = Polygon(checked[0][1], [c[1] for c in checked[1:]])
    reason = shapely.is_valid_reason(metric)
    if reason != "Valid Geometry":
        findings.add(_l("%(parcel)s 的图形无效：%(reason)s", parcel=p.label, reason=reason),
                     parcel=p)
        return None
    return metric, lonlat


def _combine(p: ParcelRings, parts: list[tuple[Polygon, Polygon]],
             findings: Findings) -> tuple[Any, Any] | None:
    """One polygon, or a multipolygon of parts that do not overlap (touching parts merge)."""
    if len(parts) == 1:
        return parts[0]
    metric = [m for m, _ in parts]
    tree = shapely.STRtree(metric)
    left, right = tree.query(metric, predicate="intersects")
    for a, b in zip(left, right, strict=True):
        if a < b:
            area = metric[a].intersection(metric[b]).area
            if area > OVERLAP_TOLERANCE_M2:
                findings.add(_l("%(parcel)s 的第 %(a)s 部分与第 %(b)s 部分重叠约 %(m2)s 平方米；"
                                "多部分地块的各部分不能重叠，请合并或改正", parcel=p.label,
                                a=int(a) + 1, b=int(b) + 1, m2=f"{area:,.2f}"), parcel=p)
                return None
    m_geom = MultiPolygon(metric)
    l_geom = MultiPolygon([g for _, g in parts])
    if not m_geom.is_valid or not l_geom.is_valid:  # parts sharing an edge: one polygon
        m_geom, l_geom = shapely.union_all(metric), shapely.union_all([g for _, g in parts])
    return m_geom, l_geom


def build_parcel(p: ParcelRings, findings: Findings, *, locate: Callable[[float, float], str],
                 zone: Zone | None = None) -> BuiltParcel | None:
    """Check one parcel's rings and build its polygon; problems go to ``findings``.

    ``locate`` names a place given in the metric coordinates (east, north): where a ring
    crosses itself. ``zone``: the Gauss-Krüger zone the points were given in, when they
    were; points far outside it are refused.
    """
    if not p.parts or not any(len(part) for part in p.parts):
        findings.add(_l("%(parcel)s 没有坐标（空图形）", parcel=p.label), parcel=p)
        return None
    built = [_part(p, part, zone, locate, findings) for part in p.parts]
    if any(b is None for b in built):
        return None
    combined = _combine(p, built, findings)  # type: ignore[arg-type]
    if combined is None:
        return None
    metric, lonlat = (shapely.orient_polygons(g, exterior_cw=False) for g in combined)
    if metric.area <= SAME_POINT_M * metric.length:  # thinner than a millimetre on average
        findings.add(_l("%(parcel)s 的面积为 0（所有点在一条线上）", parcel=p.label), parcel=p)
        return None
    area = ground_area_m2(lonlat)
    declared = p.declared_area_m2
    if declared:
        share = abs(area - declared) / declared
        if share > AREA_TOLERANCE:
            findings.add(_l("%(parcel)s 申报面积 %(declared)s 公顷，按坐标计算的椭球面积为 "
                            "%(computed)s 公顷，相差 %(share)s%%", parcel=p.label,
                            declared=f"{declared / 1e4:g}", computed=f"{area / 1e4:.4f}",
                            share=f"{share * 100:.1f}"), parcel=p, warning=True)
    return BuiltParcel(lonlat=lonlat, metric=metric, ground_area_m2=area)


__all__ = ["AREA_TOLERANCE", "EASTING_RANGE", "MAX_ID_CHARS", "MAX_PARCELS", "MAX_VERTICES",
           "NORTHING_RANGE", "OVERLAP_TOLERANCE_M2", "SAME_POINT_M", "ZONE_MARGIN_DEG",
           "BuiltParcel", "Findings", "ParcelRings", "Ring", "Zone", "build_parcel",
           "check_limits", "clean_text", "clean_value", "duplicate_ids", "id_problem",
           "is_easting", "is_northing", "lonlat_locator", "looks_like_degrees", "parcel_label",
           "ring_label", "survey_location", "zone_prefix"]
