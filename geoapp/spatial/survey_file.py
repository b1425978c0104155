"""Land-survey coordinate files of 建设用地报批 (电子报盘格式) read into validated parcels.

A file has a ``[属性描述]`` section of ``key=value`` lines (坐标系, 几度分带, 投影类型, 计量单位,
带号, …) and a ``[地块坐标]`` section: per parcel a header line ending in ``@``
(``界址点数,地块面积(公顷),地块编号,地块名称,记录图形属性,图幅号,地块用途,地类编码,@``), then
``点号,圈号,X,Y`` lines. X is the northing and Y the easting, usually with the zone number in
front (38512345.678). 圈号 1 is the outer ring, 2, 3, … are holes. See docs/parcels.md.

Everything wrong with a file is reported at once, as :class:`~geoapp.domain.errors.Problem`
entries of one :class:`~geoapp.domain.errors.ValidationFailed`; a file is read whole or not
at all. A declared area that differs from the measured one is a warning, not a refusal: it is
carried in :attr:`SurveyFile.warnings`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon

from geoapp.domain.errors import InvalidInput, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.spatial.crs import WGS84, gk_crs, resolve_crs
from geoapp.spatial.datums import (
    ELLIPSOIDS,
    datum_of_text,
    needs_parameters,
    towgs84_problem,
    towgs84_text,
)
from geoapp.spatial.parcel_geometry import (
    AREA_TOLERANCE,
    MAX_ID_CHARS,
    Findings,
    ParcelRings,
    Ring,
    Zone,
    build_parcel,
    check_limits,
    clean_text,
    id_problem,
    is_easting,
    is_northing,
    parcel_label,
    survey_location,
    zone_prefix,
)

#: Encodings tried in order: UTF-8 (with or without BOM), then GB18030 (a superset of GBK).
ENCODINGS = ("utf-8-sig", "gb18030")
#: A parcel whose centre is further than this (m) from every other parcel of the file is
#: refused: one 报批 file covers one project or one county batch.
FAR_APART_M = 100_000.0


#: Line ends as editors count them (str.splitlines would also break at control characters
#: such as U+0085 inside a name).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SurveyParcel:
    """One parcel of a survey file: the header's fields and its geometry.

    ``lonlat`` is EPSG:4326 lon/lat; ``metric`` is the same polygon in ``metric_crs``, the
    CGCS2000 3-degree Gauss-Krüger CRS with the zone's central meridian (no zone number in
    front of the easting). ``ground_area_m2`` is measured on GRS80 (pyproj.Geod).
    """

    id: str
    name: str
    declared_ha: float | None
    use: str
    land_class: str
    sheet: str
    lonlat: Polygon | MultiPolygon
    metric: Polygon | MultiPolygon
    metric_crs: str
    ground_area_m2: float
    line: int


@dataclass(frozen=True)
class SurveyFile:
    """A survey file read and validated: its ``[属性描述]`` attributes, its parcels in file
    order, and warnings (problems that do not refuse the file, such as a declared area
    more than 1 % off)."""

    attributes: dict[str, str]
    parcels: tuple[SurveyParcel, ...]
    warnings: tuple[Problem, ...] = ()
    datum: str = "cgcs2000"
    zone: int = 0
    zone_width: int = 3
    central_meridian: int = 0
    metric_crs: str = ""


@dataclass
class _Point:
    name: str
    ring: int
    x: float  # northing, as written
    y: float  # easting, as written (zone number in front or not)
    line: int


@dataclass
class _Parcel:
    ordinal: int
    line: int
    count: int | None
    declared_ha: float | None
    id: str
    name: str
    kind: str
    sheet: str
    use: str
    land_class: str
    points: list[_Point] = field(default_factory=list)
    broken: bool = False  # a point could not be read or is implausible: no geometry

    @property
    def label(self) -> str:
        return f"{self.id} {self.name}".strip() or str(self.ordinal)


# --- Reading text --------------------------------------------------------------------------

def decode(data: bytes) -> str:
    """The text of a survey file: UTF-8 (BOM or not), else GB18030/GBK."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(_l("测量坐标文件既不是 UTF-8 也不是 GBK/GB18030 编码"))


def read_survey_file(source: str | Path | bytes, *, name: str | None = None,
                     towgs84: Sequence[float] | None = None) -> SurveyFile:
    """Read a survey file (a path or its bytes) into validated parcels.

    ``towgs84`` (3 or 7 Helmert parameters to WGS84, proj's ``+towgs84`` order and units)
    is needed for Xi'an 80 and Beijing 54 files, whose datums the file does not tie to
    CGCS2000; CGCS2000 files ignore it. Raises ValidationFailed listing every problem.
    """
    if isinstance(source, bytes):
        data, label = source, name or ""
    else:
        path = Path(source)
        data, label = path.read_bytes(), name or path.name
    return parse_survey_text(decode(data), name=label, towgs84=towgs84)


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.split(",")]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class _Reader:
    """Collects problems while reading one file."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.findings = Findings(file=name or None)
        self.problems: list[Problem] = self.findings.problems
        self.warnings: list[Problem] = self.findings.warnings

    def problem(self, message: str, *, line: int | None = None, parcel: _Parcel | None = None,
                value: Any = None, warning: bool = False) -> None:
        p = Problem(file=self.name or None, row=line, value=value, message=message,
                    feature=parcel.ordinal if parcel else None,
                    id=parcel.id or None if parcel else None)
        (self.warnings if warning else self.problems).append(p)


def _read_sections(text: str, r: _Reader) -> tuple[dict[str, str], list[_Parcel]]:
    attributes: dict[str, str] = {}
    parcels: list[_Parcel] = []
    section = ""
    for lineno, raw in enumerate(_LINE_BREAK.split(text), start=1):
        written = unicodedata.normalize("NFKC", raw).strip()  # full-width ，＝ digits -> ASCII
        line = clean_text(written)  # no control characters, no lone surrogates
        if not line:
            continue
        m = re.fullmatch(r"\[\s*(.+?)\s*\]", line)
        if m:
            section = m.group(1).replace(" ", "")
            continue
        if section == "属性描述":
            key, sep, value = line.partition("=")
            if sep:
                attributes[key.strip()] = value.strip()
        elif section == "地块坐标":
            if line.rstrip(", ").endswith("@"):
                fields = _fields(written)
                parcels.append(_header(line, lineno, len(parcels) + 1, r,
                                       written_id=fields[2] if len(fields) > 3 else ""))
            elif not parcels:
                r.problem(_l("第 %(line)s 行：界址点出现在第一个地块的属性行（以 @ 结尾）之前",
                             line=lineno), line=lineno, value=line)
            else:
                _point(line, lineno, parcels[-1], r)
    if "地块坐标" not in text and not parcels:
        r.problem(_l("文件中没有 [地块坐标] 部分，不是建设用地报批坐标文件"))
    elif not parcels:
        r.problem(_l("[地块坐标] 中没有地块"))
    return attributes, parcels


def _header(line: str, lineno: int, ordinal: int, r: _Reader, *,
            written_id: str = "") -> _Parcel:
    """A parcel's header line (cleaned); ``written_id`` is its 地块编号 as written, judged
    before cleaning: an id is refused, never changed."""
    f = _fields(line.rstrip(", ")[:-1]) + [""] * 8
    count = _number(f[0])
    area = _number(f[1]) if f[1] else None
    p = _Parcel(ordinal=ordinal, line=lineno, count=int(count) if count is not None else None,
                declared_ha=area, id=f[2][:MAX_ID_CHARS], name=f[3], kind=f[4], sheet=f[5],
                use=f[6], land_class=f[7])
    why = id_problem(parcel_label(ordinal, None, p.name), written_id) if written_id else None
    if why is not None:
        r.problem(_l("第 %(line)s 行：%(why)s", line=lineno, why=why), line=lineno, parcel=p,
                  value=p.id)
    if f[1] and area is None:
        r.problem(_l("第 %(line)s 行：地块 %(parcel)s 的地块面积“%(value)s”不是数字",
                     line=lineno, parcel=p.label, value=f[1]), line=lineno, parcel=p, value=f[1])
    if not p.id:
        r.problem(_l("第 %(line)s 行：第 %(ordinal)s 个地块没有地块编号", line=lineno,
                     ordinal=ordinal), line=lineno, parcel=p)
    if p.kind and p.kind != "面":
        r.problem(_l("第 %(line)s 行：地块 %(parcel)s 的记录图形属性是“%(value)s”，只接受面",
                     line=lineno, parcel=p.label, value=p.kind),
                  line=lineno, parcel=p, value=p.kind)
    return p


def _point(line: str, lineno: int, parcel: _Parcel, r: _Reader) -> None:
    f = _fields(line)
    name = f[0] if f else ""
    if len(f) < 4:
        r.problem(_l("第 %(line)s 行：地块 %(parcel)s 界址点 %(point)s 应有 点号,圈号,X,Y 四项",
                     line=lineno, parcel=parcel.label, point=name),
                  line=lineno, parcel=parcel, value=line)
        parcel.broken = True
        return
    values = [_number(v) for v in f[1:4]]
    for text, value, what in zip(f[1:4], values, (_l("圈号"), "X", "Y"), strict=True):
        if value is None:
            r.problem(_l("第 %(line)s 行：地块 %(parcel)s 界址点 %(point)s 的 %(what)s"
                         "“%(value)s”不是数字", line=lineno, parcel=parcel.label, point=name,
                         what=what, value=text), line=lineno, parcel=parcel, value=text)
            parcel.broken = True
    ring, x, y = values
    if ring is None or x is None or y is None:
        return
    if ring < 1 or not float(ring).is_integer():
        r.problem(_l("第 %(line)s 行：地块 %(parcel)s 界址点 %(point)s 的圈号“%(value)s”应为 1、"
                     "2、3……", line=lineno, parcel=parcel.label, point=name, value=f[1]),
                  line=lineno, parcel=parcel, value=f[1])
        parcel.broken = True
        return
    parcel.points.append(_Point(name, int(ring), x, y, lineno))


# --- The coordinate system -----------------------------------------------------------------

def _zone_prefix(y: float) -> int:
    return int(zone_prefix(y))


def _check_points(parcels: list[_Parcel], r: _Reader) -> None:
    """Swapped X/Y and implausible values, once per parcel (the first point named)."""
    for p in parcels:
        for pt in p.points:
            if _zone_prefix(pt.x) or (not is_northing(pt.x) and is_northing(pt.y)):
                r.problem(_l("第 %(line)s 行：地块 %(parcel)s 界址点 %(point)s 的 X 和 Y 像是填反了"
                             "（X=%(x)s，Y=%(y)s）：X 应为北坐标（中国境内约 2000000-6000000），"
                             "Y 为东坐标（常带带号，如 38512345.678）", line=pt.line,
                             parcel=p.label, point=pt.name, x=f"{pt.x:.3f}", y=f"{pt.y:.3f}"),
                          line=pt.line, parcel=p)
            elif not is_northing(pt.x) or not is_easting(pt.y):
                r.problem(_l("第 %(line)s 行：地块 %(parcel)s 界址点 %(point)s 的坐标（X=%(x)s，"
                             "Y=%(y)s）不是中国境内的高斯-克吕格坐标：X（北）应在 2000000-6000000 "
                             "之间，Y（东）去掉带号后应在 500000 附近", line=pt.line,
                             parcel=p.label, point=pt.name, x=f"{pt.x:.3f}", y=f"{pt.y:.3f}"),
                          line=pt.line, parcel=p)
            else:
                continue
            p.broken = True
            break


@dataclass(frozen=True)
class _System:
    datum: str
    zone: int
    width: int
    cm: int
    source: CRS
    metric_crs: str


def _system(attributes: dict[str, str], parcels: list[_Parcel],
            towgs84: Sequence[float] | None, r: _Reader) -> _System | None:
    ok = True
    name = attributes.get("坐标系", "")
    datum = datum_of_text(name)
    if not name:
        r.problem(_l("[属性描述] 没有写坐标系（如“2000国家大地坐标系”）"))
        ok = False
    elif datum is None:
        r.problem(_l("不认识的坐标系“%(value)s”；可读 2000国家大地坐标系，或给出转换参数后的"
                     "80西安坐标系、54北京坐标系", value=name), value=name)
        ok = False
    elif datum != "cgcs2000" and towgs84 is None:
        r.problem(needs_parameters(name, datum), value=name)
        ok = False
    why = towgs84_problem(towgs84) if towgs84 is not None and datum not in (None, "cgcs2000") \
        else None
    if why is not None:
        r.problem(why)
        ok = False
    projection = attributes.get("投影类型", "")
    if projection and "高斯" not in projection and "GAUSS" not in projection.upper():
        r.problem(_l("投影类型“%(value)s”不是高斯-克吕格投影", value=projection),
                  value=projection)
        ok = False
    unit = attributes.get("计量单位", "")
    if unit and unit.lower() not in ("米", "m", "metre", "meter"):
        r.problem(_l("计量单位“%(value)s”不是米", value=unit), value=unit)
        ok = False

    width: int | None = None
    width_text = attributes.get("几度分带", "")
    if width_text:
        digits = re.sub(r"\D", "", width_text)
        width = int(digits) if digits in ("3", "6") else None
        if width is None:
            r.problem(_l("几度分带“%(value)s”应为 3 或 6", value=width_text), value=width_text)
            ok = False
    declared_zone: int | None = None
    zone_text = attributes.get("带号", "")
    if zone_text:
        number = _number(zone_text)
        if number is None or not number.is_integer():
            r.problem(_l("带号“%(value)s”不是整数", value=zone_text), value=zone_text)
            ok = False
        else:
            declared_zone = int(number)
    prefixes = sorted({_zone_prefix(pt.y) for p in parcels if not p.broken for pt in p.points}
                      - {0})
    if len(prefixes) > 1:
        r.problem(_l("Y 坐标前的带号不一致（%(zones)s）；一个文件只能用一个投影带",
                     zones=", ".join(map(str, prefixes))))
        return None
    prefix = prefixes[0] if prefixes else None
    if declared_zone is not None and prefix is not None and declared_zone != prefix:
        r.problem(_l("[属性描述] 的带号 %(zone)s 与 Y 坐标前的带号 %(prefix)s 不一致",
                     zone=declared_zone, prefix=prefix))
        return None
    zone = declared_zone if declared_zone is not None else prefix
    if zone is None:
        if any(p.points and not p.broken for p in parcels):
            r.problem(_l("Y 坐标前没有带号，[属性描述] 也没有写带号，无法确定投影带；请在"
                         "[属性描述] 中写上带号（如 带号=38）"))
        return None
    if width is None:
        width = 3 if 25 <= zone <= 45 else 6 if 13 <= zone <= 23 else None
    cm = 3 * zone if width == 3 else 6 * zone - 3 if width == 6 else None
    if cm is None or not 75 <= cm <= 135:
        r.problem(_l("带号 %(zone)s 不是中国境内的%(width)s度带（3 度带 25-45，6 度带 13-23）",
                     zone=zone, width=width or "3/6 "))
        return None
    if not ok or datum is None:
        return None
    metric_crs = gk_crs(cm)  # a 6-degree zone's central meridian is a 3-degree one's too
    if datum == "cgcs2000":
        source = resolve_crs(metric_crs)
    else:
        source = CRS.from_proj4(f"+proj=tmerc +lat_0=0 +lon_0={cm} +k=1 +x_0=500000 +y_0=0 "
                                f"+ellps={ELLIPSOIDS[datum]} +towgs84={towgs84_text(towgs84 or ())}"
                                " +units=m +no_defs")
    return _System(datum, zone, width, cm, source, metric_crs)


# --- Geometry ------------------------------------------------------------------------------

def _rings(p: _Parcel) -> dict[int, list[_Point]]:
    rings: dict[int, list[_Point]] = {}
    for pt in p.points:
        rings.setdefault(pt.ring, []).append(pt)
    return rings


def _build(p: _Parcel, system: _System, r: _Reader,
           to_lonlat: Transformer, to_metric: Transformer | None) -> SurveyParcel | None:
    rings = _rings(p)
    if 1 not in rings:
        r.problem(_l("地块 %(parcel)s 没有外圈（圈号 1）的界址点", parcel=p.label),
                  line=p.line, parcel=p)
        return None
    built_rings = []
    for number, points in sorted(rings.items()):
        x = np.array([pt.y - _zone_prefix(pt.y) * 1e6 for pt in points])  # easting
        y = np.array([pt.x for pt in points])  # northing
        lon, lat = to_lonlat.transform(x, y)
        metric = np.column_stack(to_metric.transform(x, y) if to_metric else (x, y))
        built_rings.append(Ring(lonlat=np.column_stack((lon, lat)), metric=metric,
                                label=_l("第 %(n)s 圈", n=number),
                                names=[pt.name for pt in points], named=True,
                                lines=[pt.line for pt in points]))
    declared = p.declared_ha * 1e4 if p.declared_ha else None
    rings_of = ParcelRings(ordinal=p.ordinal, label=parcel_label(p.ordinal, p.id, p.name),
                           id=p.id or None, parts=[built_rings], line=p.line,
                           declared_area_m2=declared)
    built = build_parcel(rings_of, r.findings, locate=survey_location,
                         zone=Zone(system.zone, system.width, system.cm))
    if built is None:
        return None
    if p.count is not None and p.count != len(p.points):
        r.problem(_l("地块 %(parcel)s 的界址点数写为 %(count)s，实际有 %(actual)s 行界址点",
                     parcel=p.label, count=p.count, actual=len(p.points)),
                  line=p.line, parcel=p, warning=True)
    return SurveyParcel(id=p.id, name=p.name, declared_ha=p.declared_ha, use=p.use,
                        land_class=p.land_class, sheet=p.sheet, lonlat=built.lonlat,
                        metric=built.metric, metric_crs=system.metric_crs,
                        ground_area_m2=built.ground_area_m2, line=p.line)


def _far_apart(parcels: list[tuple[_Parcel, SurveyParcel]], r: _Reader) -> None:
    if len(parcels) < 2:
        return
    centres = np.array([[s.metric.centroid.x, s.metric.centroid.y] for _, s in parcels])
    for i, (p, _) in enumerate(parcels):
        d = np.hypot(*(centres - centres[i]).T)
        d[i] = np.inf
        if d.min() > FAR_APART_M:
            r.problem(_l("地块 %(parcel)s 离本文件其他地块最近也有 %(km)s 公里，坐标或带号可能有误",
                         parcel=p.label, km=f"{d.min() / 1000:.0f}"), line=p.line, parcel=p)


def parse_survey_text(text: str, *, name: str = "",
                      towgs84: Sequence[float] | None = None) -> SurveyFile:
    """Read the text of a survey file; see :func:`read_survey_file`."""
    r = _Reader(name)
    attributes, parcels = _read_sections(text, r)
    check_limits(len(parcels), sum(len(p.points) for p in parcels), name or _l("测量坐标文件"))
    seen: dict[str, int] = {}
    for p in parcels:
        if p.id and p.id in seen:
            r.problem(_l("第 %(line)s 行：地块编号 %(id)s 重复（第 %(first)s 行已有）", line=p.line,
                         id=p.id, first=seen[p.id]), line=p.line, parcel=p)
        seen.setdefault(p.id, p.line)
        if not p.points and not p.broken:
            r.problem(_l("地块 %(parcel)s 没有界址点", parcel=p.label), line=p.line, parcel=p)
    _check_points(parcels, r)
    system = _system(attributes, parcels, towgs84, r)
    built: list[tuple[_Parcel, SurveyParcel]] = []
    if system is not None:
        to_lonlat = Transformer.from_crs(system.source, resolve_crs(WGS84), always_xy=True)
        to_metric = None if system.datum == "cgcs2000" else Transformer.from_crs(
            system.source, resolve_crs(system.metric_crs), always_xy=True)
        for p in parcels:
            if p.points and not p.broken:
                s = _build(p, system, r, to_lonlat, to_metric)
                if s is not None:
                    built.append((p, s))
        _far_apart(built, r)
    if r.problems:
        raise ValidationFailed(_l("测量坐标文件 %(file)s 有 %(count)s 处问题", file=name or "",
                                  count=len(r.problems)), details=r.problems)
    assert system is not None
    return SurveyFile(attributes=attributes, parcels=tuple(s for _, s in built),
                      warnings=tuple(r.warnings), datum=system.datum, zone=system.zone,
                      zone_width=system.width, central_meridian=system.cm,
                      metric_crs=system.metric_crs)


__all__ = ["AREA_TOLERANCE", "SurveyFile", "SurveyParcel", "decode",
           "parse_survey_text", "read_survey_file"]
