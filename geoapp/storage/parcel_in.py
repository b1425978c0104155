"""Parcel input in the forms people have, read into validated parcels in WGS84.

Formats (decided by the content first, the file name second; anything else is refused):
the land-survey coordinate file of 建设用地报批 (``spatial.survey_file``), GeoJSON, KML and
KMZ (``storage.kml_in``), GeoPackage and zipped Shapefile (``storage.vector_in``, the same
hardened reader as layer uploads), DXF drawings (GDAL's DXF driver, closed polylines and
hatches as polygons), a coordinate list pasted into a box, and a GeoJSON geometry, feature
or collection (a polygon drawn on the map, an API body).

Coordinates are read as WGS84/CGCS2000 lon/lat, GCJ-02 or BD-09 lon/lat, CGCS2000
Gauss-Krüger metres (zone number in front of the easting or a named zone) or any named EPSG
system; a file's own declaration (``.prj``, GeoPackage srs, GeoJSON ``crs``, KML's WGS84)
is used when present and the ``crs`` argument may only refine it (declared lon/lat read as
GCJ-02/BD-09, as Amap exports declare WGS84), never contradict it. Every parcel is then
checked by ``spatial.parcel_geometry`` — the one validation of every input — and all
problems are reported at once (:class:`ValidationFailed`); whole-file problems (format,
size, coordinate system) raise :class:`InvalidInput`. See docs/parcels.md.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.transformer import AreaOfInterest

from geoapp.domain.errors import CoordinateError, InvalidInput, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.spatial.crs import (
    WGS84,
    bd09_to_wgs84,
    describe_crs,
    gcj02_to_wgs84,
    gk_central_meridian,
    gk_crs,
    in_china,
    metric_crs_for,
    parse_dms,
    resolve_crs,
    to_metric,
)
from geoapp.spatial.datums import (
    EXACT,
    LABELS,
    WARN_ACCURACY_M,
    conversion_accuracy,
    datum_of_crs,
    describe,
    needs_parameters,
    towgs84_problem,
    towgs84_text,
    with_towgs84,
)
from geoapp.spatial.parcel_geometry import (
    MAX_PARCELS,
    MAX_VERTICES,
    Findings,
    ParcelRings,
    Ring,
    Zone,
    build_parcel,
    check_limits,
    clean_text,
    clean_value,
    duplicate_ids,
    id_problem,
    is_easting,
    is_northing,
    lonlat_locator,
    looks_like_degrees,
    parcel_label,
    ring_label,
    zone_prefix,
)
from geoapp.spatial.survey_file import SurveyFile, decode, parse_survey_text
from geoapp.storage import kml_in, vector_in, zip_in

#: Largest input read (bytes; a zip's unpacked content too).
MAX_BYTES = 64 * 1024 * 1024
#: Most features (of any geometry) a file may hold; polygons are further limited to
#: MAX_PARCELS and their vertices to MAX_VERTICES.
MAX_FEATURES = 100_000
#: Properties naming a parcel's number, then its name (compared without letter case).
ID_KEYS = ("地块编号", "dkbh", "编号", "id", "parcel_id", "bh")
NAME_KEYS = ("地块名称", "dkmc", "名称", "name", "项目名称", "xmmc")
#: Property names with an area unit: the unit's size in m². A bare 面积 / area has no unit
#: and is not taken as a declared area.
_AREA_UNITS = ((re.compile(r"公顷|hectare|(^|[^a-z])ha([^a-z]|$)", re.I), 1e4),
               (re.compile(r"平方米|m2|m²|sqm|square", re.I), 1.0),
               (re.compile(r"亩|(^|[^a-z])mu([^a-z]|$)", re.I), 10000 / 15))
_AREA_WORD = re.compile(r"面积|area|mj", re.I)
#: File name endings and the formats they name; other endings name no format.
EXTENSIONS = {".geojson": ("geojson",), ".json": ("geojson",), ".kml": ("kml",),
              ".kmz": ("kmz",), ".gpkg": ("gpkg",), ".zip": ("shapefile", "kmz"),
              ".shp": ("shapefile",), ".dxf": ("dxf",), ".txt": ("survey", "text", "geojson"),
              ".csv": ("text",), ".dat": ("survey", "text")}
_FORMAT_NAMES = {"survey": _l("测量坐标文件"), "geojson": "GeoJSON", "kml": "KML", "kmz": "KMZ",
                 "gpkg": "GeoPackage", "shapefile": _l("压缩的 Shapefile（.zip）"), "dxf": "DXF",
                 "text": _l("坐标文本")}
_ACCEPTED = _l("可读：测量坐标文件（.txt）、GeoJSON、KML/KMZ、GeoPackage、压缩的 Shapefile（.zip）、"
               "DXF，或粘贴的坐标")
_GEOJSON_TYPES = {"Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString",
                  "MultiLineString", "GeometryCollection"}
_KINDS = {"Point": "point", "MultiPoint": "point", "LineString": "line",
          "MultiLineString": "line", "LinearRing": "line"}


@dataclass(frozen=True)
class InputParcel:
    """One parcel of an input, validated, in WGS84 lon/lat."""

    id: str  # 地块编号, or the feature's id property / field, else its position "1", "2", …
    name: str | None  # 地块名称 / name property
    lonlat: Any  # shapely Polygon or MultiPolygon in EPSG:4326 (WGS84 ≈ CGCS2000)
    attributes: dict[str, Any]  # the other properties / survey fields (地块用途, 地类编码, …)
    declared_area_m2: float | None  # survey 地块面积(公顷) × 10000, or an area property with a unit
    feature: int  # 1-based position in the input


@dataclass(frozen=True)
class ParcelSet:
    """The parcels of one input, in input order, with warnings that did not refuse it."""

    parcels: tuple[InputParcel, ...]
    warnings: tuple[Problem, ...]
    format: str  # survey, geojson, kml, gpkg, shapefile, dxf, text, drawn
    crs: str  # what the coordinates were read as, e.g. "WGS84 (EPSG:4326)"


# --- Features as read ----------------------------------------------------------------------

@dataclass
class _Feature:
    """One feature of an input: polygons as parts of rings (outer first) in the input's
    coordinates (x east / longitude, y north / latitude), or what else it is."""

    position: int
    parts: list[list[np.ndarray]] = field(default_factory=list)
    kind: str = "polygon"  # polygon, point, line, none, other
    properties: dict[str, Any] = field(default_factory=dict)
    fid: Any = None
    name: str | None = None
    bad: str | None = None
    named_points: bool = False
    point_names: list[list[list[str]]] | None = None
    point_lines: list[list[list[int]]] | None = None
    ring_numbers: list[list[int]] | None = None  # 圈号 of each part's rings, when written
    line: int | None = None
    raw_id: Any = None  # the id as written (property or Feature id), before any cleaning


@dataclass(frozen=True)
class _Frame:
    """How the input's numbers become WGS84 lon/lat."""

    kind: str  # geographic, gcj02, bd09, projected
    label: str
    crs: CRS | None = None
    zone: Zone | None = None
    prefix: int = 0  # zone number written in front of eastings, removed before projecting
    assumed: bool = False


# --- Entry points --------------------------------------------------------------------------

def read_parcel_file(source: bytes | str | Path, *, filename: str, crs: str | None = None,
                     towgs84: Sequence[float] | None = None) -> ParcelSet:
    """Read a parcel file (a path, or the bytes of an upload named ``filename``).

    ``crs`` names the coordinate system when the file has none (DXF, a Shapefile without
    .prj, GK metres without zone number, a coordinate list) or refines a declared lon/lat to
    GCJ-02/BD-09. ``towgs84`` (3 or 7 Helmert parameters to WGS84, proj's order and units)
    is needed for data on Xi'an 80 / Beijing 54 (or another datum PROJ ties to WGS84 only
    by a ballpark) in any format; see ``spatial.datums``.
    """
    label = clean_text(Path(filename).name) if filename else ""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > MAX_BYTES:
            raise _too_big(label, len(data))
    else:
        path = Path(source)
        label = label or clean_text(path.name)
        vector_in.guard_source(path, label)
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise _too_big(label, size)
        data = path.read_bytes()
    if not data.strip():
        raise InvalidInput(_l("文件为空：%(file)s", file=label))
    kind = _detect(data, label)
    if kind == "survey":
        return _from_survey(data, label, crs, towgs84)
    if kind == "text":
        return _from_text(_decode_text(data, label), label, crs, "text", towgs84)
    if kind == "geojson":
        return _from_geojson(_load_json(data, label), label, crs, "geojson", towgs84)
    if kind in ("kml", "kmz"):
        docs = zip_in.read_kmz_documents(data, label=label, max_bytes=MAX_BYTES) \
            if kind == "kmz" else [("", data)]
        return _from_kml(docs, label, crs, kind, towgs84)
    return _from_gdal(data, label, crs, kind, towgs84)


def parcels_from_geojson(obj: Mapping[str, Any] | str | bytes, *, crs: str | None = None,
                         kind: str = "geojson",
                         towgs84: Sequence[float] | None = None) -> ParcelSet:
    """Parcels from a GeoJSON Geometry, Feature or FeatureCollection (a drawn polygon, an
    API body), a parsed object or its JSON text. ``kind`` is the format reported
    ("drawn" for a polygon drawn on the map); ``towgs84`` as for :func:`read_parcel_file`."""
    label = "GeoJSON"
    doc = obj if isinstance(obj, Mapping) else _load_json(
        obj.encode("utf-8") if isinstance(obj, str) else bytes(obj), label)
    return _from_geojson(doc, label, crs, kind, towgs84)


def parcels_from_text(text: str, *, crs: str | None = None,
                      towgs84: Sequence[float] | None = None) -> ParcelSet:
    """The parcels of a pasted coordinate list, or of a pasted survey file. Lines are
    ``lon,lat`` / ``lon lat`` (decimal degrees or 度分秒), ``X,Y`` Gauss-Krüger metres in
    either order, ``点号,a,b`` or ``点号,圈号,X,Y``, or one line ``lng,lat;lng,lat;…``
    (Amap); ``#`` lines are comments. A blank line separates parcels (ids "1", "2", … by
    position); holes come only from 圈号 2, 3, … (圈号 1 is the outer ring). ``towgs84`` as
    for :func:`read_parcel_file`."""
    label = _l("粘贴的坐标")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _too_big(label, len(text))
    if _is_survey(text):
        return _survey_set(parse_survey_text(text, name=label, towgs84=towgs84), crs,
                           towgs84, label)  # the survey reader cleans its own lines
    return _from_text(text, label, crs, "text", towgs84)


# --- Format detection ----------------------------------------------------------------------

def _too_big(label: str, size: int) -> InvalidInput:
    return InvalidInput(_l("%(file)s 有 %(size)s MB，超过地块文件接受的 %(max)s MB；请只导出用地红线",
                           file=label, size=format(size / 1048576, ".1f"),
                           max=MAX_BYTES // 1048576))


def _is_survey(text: str) -> bool:
    norm = unicodedata.normalize("NFKC", text[:200_000]).replace(" ", "")
    return "[地块坐标]" in norm or "[属性描述]" in norm


def _detect(data: bytes, label: str) -> str:
    """The input's format from its content; the file name must not name another format."""
    head = data[:4096]
    found = _sniff(data, head, label)
    ext = Path(label).suffix.lower()
    if ext in EXTENSIONS and found not in EXTENSIONS[ext]:
        raise InvalidInput(_l("文件内容与扩展名不符：%(file)s 的内容是 %(found)s，扩展名却是 %(ext)s；"
                              "请改正扩展名或重新导出", file=label, found=_FORMAT_NAMES[found],
                              ext=ext))
    return found


def _sniff(data: bytes, head: bytes, label: str) -> str:
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_kind(data, label)
    if head.startswith(b"\x00\x00\x27\x0a"):
        raise InvalidInput(_l("%(file)s 是单独的 .shp：Shapefile 须连同 .shx、.dbf、.prj 一起压缩为 "
                              ".zip 上传", file=label))
    if head.startswith(b"AC10"):
        raise InvalidInput(_l("%(file)s 是 DWG 图纸：不能直接读取，请在 CAD 中另存为 DXF", file=label))
    if vector_in.looks_like_dxf(head):
        return "dxf"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "geojson"
    if text.startswith(b"<"):
        if re.search(rb"<(\w+:)?kml[\s>]", head):
            return "kml"
        raise InvalidInput(_l("%(file)s 是 XML 文件，但不是 KML；%(accepted)s", file=label,
                              accepted=_ACCEPTED))
    if b"\x00" in head:
        raise InvalidInput(_l("不支持的地块文件格式：%(file)s；%(accepted)s", file=label,
                              accepted=_ACCEPTED))
    return "survey" if _is_survey(_decode_text(data, label)) else "text"


def _zip_kind(data: bytes, label: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n.lower() for n in zf.namelist()]
    except (zipfile.BadZipFile, OSError):
        raise InvalidInput(_l("%(file)s：不是可读的 zip 文件", file=label)) from None
    if any(n.endswith(".kml") for n in names):
        return "kmz"
    if any(n.endswith(".shp") for n in names):
        return "shapefile"
    raise InvalidInput(_l("%(file)s 是 zip 压缩包，但其中既没有 Shapefile（.shp）也没有 KML；%(accepted)s",
                          file=label, accepted=_ACCEPTED))


def _decode_text(data: bytes, label: str) -> str:
    try:
        return decode(data)
    except InvalidInput:
        raise InvalidInput(_l("%(file)s 的文字既不是 UTF-8 也不是 GBK/GB18030 编码", file=label)) \
            from None


# --- Survey files --------------------------------------------------------------------------

def _from_survey(data: bytes, label: str, crs: str | None,
                 towgs84: Sequence[float] | None) -> ParcelSet:
    try:
        text = decode(data)
    except InvalidInput:
        raise InvalidInput(_l("%(file)s 的文字既不是 UTF-8 也不是 GBK/GB18030 编码", file=label)) \
            from None
    return _survey_set(parse_survey_text(text, name=label, towgs84=towgs84), crs, towgs84,
                       label)


def _survey_set(survey: SurveyFile, crs: str | None, towgs84: Sequence[float] | None,
                file: str) -> ParcelSet:
    if crs:
        _check_survey_crs(survey, crs)
    parcels = tuple(
        InputParcel(id=p.id, name=p.name or None, lonlat=p.lonlat,
                    attributes={k: v for k, v in (("地块用途", p.use), ("地类编码", p.land_class),
                                                  ("图幅号", p.sheet)) if v},
                    declared_area_m2=p.declared_ha * 1e4 if p.declared_ha else None,
                    feature=i)
        for i, p in enumerate(survey.parcels, start=1))
    datum = {"cgcs2000": "CGCS2000", "xian80": "Xi'an 1980", "beijing54": "Beijing 1954"}
    label = (f"{datum[survey.datum]} {survey.zone_width}° Gauss-Krüger zone {survey.zone} "
             f"(CM {survey.central_meridian}°E)")
    if survey.datum == "cgcs2000" and survey.zone_width == 3:
        label = f"CGCS2000 3° Gauss-Krüger zone {survey.zone} ({survey.metric_crs})"
    warnings = survey.warnings
    if towgs84 is not None and survey.datum in EXACT:
        findings = Findings(file=file)
        findings.add(_unused_parameters(file, label), warning=True)
        warnings += tuple(findings.warnings)
    elif towgs84 is not None:
        label += f", towgs84={towgs84_text(towgs84)}"
    return ParcelSet(parcels=parcels, warnings=warnings, format="survey", crs=label)


def _check_survey_crs(survey: SurveyFile, crs: str) -> None:
    """A survey file declares its system; ``crs`` may name the same zone, nothing else."""
    name = describe_crs(crs)["name"]
    same = name in ("gk", "cgcs2000") and survey.datum == "cgcs2000"
    if name.startswith("EPSG:"):
        try:
            same = gk_central_meridian(name) == survey.central_meridian
        except CoordinateError:
            same = False
    if not same:
        raise InvalidInput(_l("给出的坐标系 %(crs)s 与测量坐标文件自己写明的坐标系（%(own)s，第 %(zone)s 带）"
                              "矛盾；测量坐标文件请不要另给坐标系", crs=crs,
                              own=survey.attributes.get("坐标系", ""), zone=survey.zone))


# --- GeoJSON -------------------------------------------------------------------------------

def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_json(data: bytes, label: str) -> Any:
    if data.count(b'"Feature"') > MAX_FEATURES:
        raise _too_many_features(label, data.count(b'"Feature"'))
    try:
        return json.loads(data.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise InvalidInput(_l("文字编码错误：%(file)s 不是 UTF-8 文本（GeoJSON 按规定为 UTF-8）",
                              file=label)) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(_l("%(file)s 不是有效的 JSON（%(why)s）；NaN、Infinity 不是 JSON 数值",
                              file=label, why=str(exc)[:80])) from None


def _too_many_features(label: str, count: int) -> InvalidInput:
    return InvalidInput(_l("要素过多：%(file)s 有 %(count)s 个要素，超过接受的 %(max)s 个", file=label,
                           count=format(count, ","), max=format(MAX_FEATURES, ",")))


def _from_geojson(doc: Any, label: str, crs: str | None, kind: str,
                  towgs84: Sequence[float] | None = None) -> ParcelSet:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("type"), str):
        raise InvalidInput(_l("%(file)s 不是 GeoJSON：应为 Geometry、Feature 或 FeatureCollection",
                              file=label))
    typ = doc["type"]
    if typ == "FeatureCollection":
        items = doc.get("features")
        if not isinstance(items, list | tuple):
            raise InvalidInput(_l("%(file)s：FeatureCollection 的 features 不是列表", file=label))
    elif typ == "Feature":
        items = [doc]
    elif typ in _GEOJSON_TYPES:
        items = [{"type": "Feature", "geometry": doc, "properties": {}}]
    else:
        raise InvalidInput(_l("%(file)s 不是 GeoJSON：应为 Geometry、Feature 或 FeatureCollection",
                              file=label))
    if len(items) > MAX_FEATURES:
        raise _too_many_features(label, len(items))
    declared = _geojson_crs(doc, items, label)
    features = []
    for i, item in enumerate(items, start=1):
        f = _Feature(position=i)
        if not isinstance(item, Mapping) or item.get("type") != "Feature":
            f.kind, f.bad = "other", _l("不是 Feature")
        else:
            props = item.get("properties")
            f.properties = dict(props) if isinstance(props, Mapping) else {}
            f.fid = item.get("id")
            _geojson_geometry(item.get("geometry"), f)
        features.append(f)
    return _assemble(features, label, crs, declared, kind, spec_wgs84=declared is None,
                     towgs84=towgs84)


def _geojson_crs(doc: Mapping[str, Any], items: list[Any], label: str) -> CRS | None:
    """A top-level ``crs`` naming an EPSG/OGC system; one lower down is refused."""
    for item in items:
        if isinstance(item, Mapping) and ("crs" in item or (
                isinstance(item.get("geometry"), Mapping) and "crs" in item["geometry"])):
            raise InvalidInput(_l("%(file)s：crs 只能写在 GeoJSON 的顶层", file=label))
    if "crs" not in doc or doc["crs"] is None:
        return None
    return vector_in.declared_geojson_crs(doc["crs"], label)


def _positions(ring: Any) -> np.ndarray | None:
    """A GeoJSON ring's positions as an (n, 2) array; None unless every position is an array
    of at least two numbers. Tuples count as arrays (a dict built with shapely's
    ``mapping()``)."""
    if not isinstance(ring, list | tuple):
        return None
    if ring and all(isinstance(p, list | tuple) and len(p) == 2 for p in (ring[0], ring[-1])):
        fast = np.array(ring)  # the common case: [[x, y], …] all numbers, one shape
        if fast.ndim == 2 and fast.shape[1] == 2 and fast.dtype.kind in "if":
            return fast.astype(float)
    out = np.empty((len(ring), 2))
    for i, pos in enumerate(ring):
        if not (isinstance(pos, list | tuple) and len(pos) >= 2 and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in pos[:2])):
            return None
        out[i] = pos[0], pos[1]
    return out


def _polygon_rings(coords: Any) -> list[np.ndarray] | None:
    if not isinstance(coords, list | tuple):
        return None
    rings = [_positions(r) for r in coords]
    return None if any(r is None for r in rings) else rings  # type: ignore[return-value]


def _geojson_geometry(geom: Any, f: _Feature) -> None:
    if geom is None:
        f.kind = "none"
        return
    typ = geom.get("type") if isinstance(geom, Mapping) else None
    if typ not in _GEOJSON_TYPES:
        f.kind, f.bad = "other", _l("几何类型“%(type)s”不是 GeoJSON 几何",
                                    type=clean_text(str(typ)[:40]))
        return
    if typ == "GeometryCollection":
        members = geom.get("geometries")
        if not isinstance(members, list | tuple):
            f.kind, f.bad = "other", _l("GeometryCollection 没有 geometries 列表")
            return
        for g in members:
            sub = _Feature(position=f.position)
            _geojson_geometry(g, sub)
            if sub.bad:
                f.kind, f.bad = "other", sub.bad
                return
            f.parts += sub.parts
        f.kind = "polygon" if f.parts or not members else "other"  # an empty one is named
        return
    if typ not in ("Polygon", "MultiPolygon"):
        f.kind = _KINDS[typ]
        return
    coords = geom.get("coordinates")
    polys = [coords] if typ == "Polygon" else coords
    if not isinstance(polys, list | tuple):
        f.bad = _l("coordinates 不是“[[经度, 纬度], …]”形式的数组")
        return
    for poly in polys:
        rings = _polygon_rings(poly)
        if rings is None:
            f.bad = _l("coordinates 不是“[[经度, 纬度], …]”形式的数组")
            return
        f.parts.append(rings)


# --- KML -----------------------------------------------------------------------------------

def _from_kml(docs: list[tuple[str, bytes]], label: str, crs: str | None, kind: str,
              towgs84: Sequence[float] | None = None) -> ParcelSet:
    """The placemarks of every KML document (a KMZ's ``doc.kml`` first, then its other
    ``.kml`` entries), numbered on across documents."""
    features: list[_Feature] = []
    links = 0
    for entry, data in docs:
        doc = kml_in.read_kml(data, label=f"{label}: {entry}" if entry and
                              entry.lower() != "doc.kml" else label)
        links += doc.network_links
        for mark in doc.placemarks:
            f = _Feature(position=len(features) + 1, properties=mark.properties,
                         name=mark.name, parts=mark.parts, bad=mark.bad)
            if not mark.parts and not mark.bad:
                f.kind = mark.others[0] if mark.others else "none"
            features.append(f)
            if len(features) > MAX_FEATURES:
                raise _too_many_features(label, len(features))
    if not features and links:
        raise InvalidInput(_l("%(file)s 中没有地块，只有 %(count)s 个网络链接（NetworkLink）：网络链接不会被跟随"
                              "读取；请在 Google Earth 等软件中把链接指向的内容另存为 KML/KMZ 后上传",
                              file=label, count=links))
    extra = []
    if links:
        extra.append(_l("%(file)s 中的 %(count)s 个网络链接（NetworkLink）不会被读取；请把链接的内容"
                        "一并导出", file=label, count=links))
    wgs84 = resolve_crs(WGS84)  # KML is WGS84 lon/lat by its specification
    return _assemble(features, label, crs, wgs84, kind, spec_wgs84=True, notes=extra,
                     towgs84=towgs84)


# --- GDAL formats: GeoPackage, zipped Shapefile, DXF ---------------------------------------

def _from_gdal(data: bytes, label: str, crs: str | None, kind: str,
               towgs84: Sequence[float] | None = None) -> ParcelSet:
    with tempfile.TemporaryDirectory(prefix="geoapp-parcel-") as tmp:
        work = Path(tmp)
        has_prj = True
        if kind == "gpkg":
            (work / "upload.gpkg").write_bytes(data)
            gdf = vector_in.read_vector(work / "upload.gpkg", label=label, kind="gpkg",
                                        max_rows=MAX_FEATURES, undefined_srs=True).gdf
        elif kind == "shapefile":
            (work / "upload.zip").write_bytes(data)
            shp = zip_in.extract_shapefile(work / "upload.zip", work / "shp", label=label,
                                           max_unpacked_mb=MAX_BYTES // 1048576)
            has_prj = shp.with_suffix(".prj").is_file()
            encoding = None if shp.with_suffix(".cpg").is_file() else \
                zip_in.detect_dbf_encoding(shp.with_suffix(".dbf"), encoding_field=False)
            gdf = vector_in.read_vector(shp, label=label, kind="shapefile",
                                        max_rows=MAX_FEATURES, encoding=encoding).gdf
        else:
            (work / "upload.dxf").write_bytes(data)
            gdf = vector_in.read_dxf(work / "upload.dxf", label=label, max_rows=MAX_FEATURES)
    declared = gdf.crs if has_prj else None
    notes: list[str] = []
    invented = vector_in.unknown_datum(declared)
    if invented:
        if not crs:
            raise InvalidInput(_l("坐标系基准面未知：%(file)s 的坐标系所用的基准面“%(datum)s”没有任何权威机构"
                                  "定义；请给出真实的坐标系（如 gcj02、wgs84、EPSG:4547）", file=label,
                                  datum=invented))
        declared = None
    features = _dxf_features(gdf, label, notes) if kind == "dxf" else _gdf_features(gdf)
    return _assemble(features, label, crs, declared, kind, spec_wgs84=False, notes=notes,
                     towgs84=towgs84)


def _plain(value: Any) -> Any:
    """A property value as plain JSON-ready data."""
    if value is None:
        return None
    if np.ndim(value) == 0 and not isinstance(value, str | bytes) and pd.isna(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):  # date, datetime, pandas Timestamp
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    return value


def _shapely_feature(geom: Any, f: _Feature) -> None:
    if geom is None or shapely.is_empty(geom):
        f.kind = "none" if geom is None else "polygon"
        return
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"] \
        if geom.geom_type in ("MultiPolygon", "GeometryCollection") else \
        [geom] if geom.geom_type == "Polygon" else []
    if not parts:
        f.kind = _KINDS.get(geom.geom_type, "other")
        return
    for poly in parts:
        rings = [poly.exterior, *poly.interiors]
        f.parts.append([shapely.get_coordinates(r)[:, :2] for r in rings])


def _gdf_features(gdf: Any) -> list[_Feature]:
    geom_col = gdf.geometry.name
    columns = [c for c in gdf.columns if c != geom_col]
    features = []
    for i, (geom, values) in enumerate(zip(gdf.geometry.values,
                                           gdf[columns].itertuples(index=False, name=None),
                                           strict=True), start=1):
        f = _Feature(position=i, properties={c: _plain(v) for c, v in zip(columns, values,
                                                                          strict=True)})
        _shapely_feature(geom, f)
        features.append(f)
    return features


_DXF_KEEP = ("Layer", "EntityHandle")


def _closed_lines(geoms: Any, candidates: np.ndarray) -> np.ndarray:
    """Which of ``geoms`` are open lines (LineString) of at least 4 points ending where they
    start: closed rings drawn without the closed flag."""
    out = np.zeros(len(geoms), dtype=bool)
    idx = np.flatnonzero(candidates)
    idx = idx[shapely.get_num_points(geoms[idx]) >= 4]
    if len(idx):
        first = shapely.get_coordinates(shapely.get_point(geoms[idx], 0))
        last = shapely.get_coordinates(shapely.get_point(geoms[idx], -1))
        out[idx] = (np.abs(first - last) <= 1e-6).all(axis=1)
    return out


def _dxf_key(geom: Any) -> bytes:
    """A shape's identity for "drawn twice": its points rounded one by one (a
    self-intersecting shape has no topology to snap; it is named by the validation)."""
    return shapely.to_wkb(shapely.normalize(shapely.set_precision(geom, 1e-6, mode="pointwise")))


def _dxf_features(gdf: Any, label: str, notes: list[str]) -> list[_Feature]:
    """Closed shapes of the drawing's model space, numbered in file order: closed polylines,
    hatches and open polylines ending where they start; a closed shape inside another of its
    layer is a hole of it (an island in that hole a parcel again); a text lying in exactly
    one parcel names it; a shape drawn twice (a hatch and its outline) counts once."""
    paper = np.asarray(gdf["PaperSpace"].to_numpy() == 1, dtype=bool) \
        if "PaperSpace" in gdf.columns else np.zeros(len(gdf), dtype=bool)
    geoms = gdf.geometry.values
    types = shapely.get_type_id(geoms)
    polygonal = ~paper & np.isin(types, (3, 6))
    closed = _closed_lines(geoms, ~paper & (types == 1))
    texts = gdf["Text"].to_numpy() if "Text" in gdf.columns else np.full(len(gdf), None)
    is_text = ~paper & (types == 0) & np.array([isinstance(t, str) and bool(t.strip())
                                                for t in texts], dtype=bool)
    shapes: list[tuple[Any, dict[str, Any]]] = []
    seen: set[bytes] = set()
    duplicates = 0
    for i in np.flatnonzero(polygonal | closed):
        geom = geoms[i] if polygonal[i] else shapely.Polygon(shapely.get_coordinates(geoms[i]))
        key = _dxf_key(geom)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        props = {k: _plain(gdf[k].iat[i]) for k in _DXF_KEEP if k in gdf.columns}
        shapes.append((geom, {k: v for k, v in props.items() if v not in (None, "")}))
    shapes, holes = _dxf_holes(shapes)
    kept: list[tuple[Any, dict[str, Any]]] = []
    kept_keys: set[bytes] = set()
    for geom, props in shapes:  # a polyline with its hole added may equal a hatch with a hole
        key = _dxf_key(geom)
        if key in kept_keys:
            duplicates += 1
            continue
        kept_keys.add(key)
        kept.append((geom, props))
    features: list[_Feature] = []
    for geom, props in kept:
        f = _Feature(position=len(features) + 1, properties=props)
        _shapely_feature(geom, f)
        features.append(f)
    others = [_KINDS.get(g.geom_type, "other") if g is not None else "none"
              for g in geoms[~paper & ~polygonal & ~closed & ~is_text]]
    if is_text.any() and features:
        tree = shapely.STRtree([g if g.is_valid else shapely.Polygon() for g, _ in kept])
        where, which = tree.query(geoms[is_text], predicate="within")
        words = texts[is_text]
        for f_index in set(which.tolist()):
            inside = where[which == f_index]
            if len(inside) == 1:
                features[f_index].name = str(words[inside[0]]).strip()
    if duplicates:
        notes.append(_l("%(file)s 中有 %(count)s 个图形与另一个完全重合（如填充和它的边界线），只算一次",
                        file=label, count=duplicates))
    if closed.any():
        notes.append(_l("%(file)s 中有 %(count)s 条未标记闭合、但首尾相接的多段线，按闭合图形读取",
                        file=label, count=int(closed.sum())))
    if holes:
        notes.append(_l("%(file)s 中有 %(count)s 个闭合图形位于同一图层的另一个闭合图形之内，按其内圈（挖空的部分）"
                        "读取", file=label, count=holes))
    if len(features) > 1:
        notes.append(_l("%(file)s 中的 %(count)s 个闭合图形按 %(count)s 个地块分别核查；同一地块的各部分请画在"
                        "一个图形（如一个填充）中", file=label, count=len(features)))
    features += [_Feature(position=0, kind=k) for k in others]
    return features


def _dxf_holes(shapes: list[tuple[Any, dict[str, Any]]]
               ) -> tuple[list[tuple[Any, dict[str, Any]]], int]:
    """Shapes lying inside other shapes of their layer become holes: a shape inside an odd
    number of them is a hole of the innermost one, inside an even number a parcel (an island
    in a hole). Returns the parcels, their holes added, and the number of holes."""
    if len(shapes) < 2:
        return shapes, 0
    outlines = [shapely.Polygon(g.exterior) if g.geom_type == "Polygon" and g.is_valid
                else None for g, _ in shapes]
    usable = [o if o is not None else shapely.Polygon() for o in outlines]
    tree = shapely.STRtree(usable)
    inner, outer = tree.query(usable, predicate="covered_by")
    containers: dict[int, list[int]] = {}
    for i, j in zip(inner.tolist(), outer.tolist(), strict=True):
        if i == j or outlines[i] is None or outlines[j] is None:
            continue
        if outlines[i].exterior.intersection(outlines[j].exterior).length > 0.0:
            continue  # shares an edge with it (a building on the parcel's edge, a half of
            # a subdivided outline): a shape of its own, not a hole
        if shapes[i][1].get("Layer") != shapes[j][1].get("Layer"):
            continue
        if outlines[i].equals(outlines[j]):
            continue  # the same outline twice (a hatch with holes and its outer line)
        containers.setdefault(i, []).append(j)
    depth = {i: len(js) for i, js in containers.items()}
    holes_of: dict[int, list[Any]] = {}
    for i, js in containers.items():
        if depth[i] % 2:
            parent = max(js, key=lambda j: depth.get(j, 0))
            holes_of.setdefault(parent, []).append(outlines[i].exterior)
    out = []
    for k, (geom, props) in enumerate(shapes):
        if depth.get(k, 0) % 2:
            continue
        if k in holes_of:  # a container is a Polygon (its outline was usable)
            geom = shapely.Polygon(geom.exterior, [*geom.interiors, *holes_of[k]])
        out.append((geom, props))
    return out, sum(len(h) for h in holes_of.values())


# --- Pasted text ---------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[,;，；、\s]+")
#: Amap's one-line polygon: "lng,lat;lng,lat;…".
_POINT_SEPARATOR = re.compile(r"[;；]")
_PAIR_SEPARATOR = re.compile(r"[,，、\s]+")
_DMS_HINT = re.compile(r"[°度′″'\"NSEWnsew东西南北]")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
#: Header words (letter case ignored) saying a three-column list starts with the point's
#: number (点号,经度,纬度), or ends with its height (经度,纬度,高程).
_POINT_WORDS = frozenset({"点号", "序号", "编号", "点名", "界址点号", "界址点", "点", "no", "no.",
                          "id", "name", "point", "pt"})
_HEIGHT_WORDS = frozenset({"高程", "高度", "海拔", "h", "z", "alt", "altitude", "elevation",
                           "height"})


@dataclass
class _Row:
    """A line of numbers as written: its tokens, their values (None: not a number)."""

    line: int
    tokens: list[str]
    values: list[float | None]


@dataclass
class _TextPoint:
    a: float
    b: float
    name: str | None
    ring: int | None  # 圈号 when the line gives one
    line: int
    dms: bool = False  # written in degrees, minutes and seconds


_BREAK = object()  # a blank line


def _num(token: str) -> float | None:
    if not _NUMBER.fullmatch(token):
        return None
    value = float(token)
    return value if math.isfinite(value) else None


def _plausible(a: float | None, b: float | None) -> bool:
    """Whether two numbers can be one point: lon/lat in China (either order) or
    Gauss-Krüger metres (either order)."""
    if a is None or b is None:
        return False
    return bool(in_china(a, b) or in_china(b, a) or (is_northing(a) and is_easting(b))
                or (is_easting(a) and is_northing(b)))


def _amap_points(line: str, lineno: int) -> list[_TextPoint] | None:
    """The points of a one-line ``lng,lat;lng,lat;…`` list; None when the line is not one."""
    chunks = [c for c in (c.strip() for c in _POINT_SEPARATOR.split(line)) if c]
    if len(chunks) < 2:
        return None
    points = []
    for chunk in chunks:
        values = [_num(t) for t in _PAIR_SEPARATOR.split(chunk) if t]
        if len(values) != 2 or None in values:
            return None
        points.append(_TextPoint(values[0], values[1], None, None, lineno))
    return points


def _numbered_columns(rows: list[_Row], headers: list[str]) -> bool:
    """Whether the lines of three numbers are ``点号,a,b`` (True) or ``a,b,height``: a header
    says so (序号,经度,纬度 / 经度,纬度,高程); else the columns that make points in China
    on every line; when both do, numbers 1, 2, 3 … (the last may repeat the first) in the
    first column are point numbers."""
    for header in headers:
        words = [w.lower() for w in _SEPARATORS.split(header) if w]
        if len(words) >= 3 and words[0] in _POINT_WORDS:
            return True
        if len(words) >= 3 and words[2] in _HEIGHT_WORDS:
            return False
    triples = [r.values for r in rows if len(r.values) == 3 and None not in r.values]
    if not triples:
        return False
    numbered = all(_plausible(b, c) for _, b, c in triples)
    located = all(_plausible(a, b) for a, b, _ in triples)
    if numbered != located:
        return numbered
    firsts = [a for a, _, _ in triples]
    if firsts[-1] == firsts[0] and len(firsts) > 1:
        firsts = firsts[:-1]
    return numbered and all(float(a).is_integer() for a in firsts) and \
        all(b > a for a, b in zip(firsts, firsts[1:], strict=False))


def _row_point(row: _Row, numbered: bool) -> _TextPoint | None:
    """The point of a line of numbers: ``a,b``; ``点号,a,b`` or ``a,b,height``;
    ``点号,圈号,a,b[,…]``. None when the line is none of these."""
    tokens, values = row.tokens, row.values
    if len(tokens) == 2 and None not in values:
        return _TextPoint(values[0], values[1], None, None, row.line)
    if len(tokens) == 3 and None not in values[1:]:
        if values[0] is None or numbered:
            return _TextPoint(values[1], values[2], tokens[0], None, row.line)
        return _TextPoint(values[0], values[1], None, None, row.line)
    if len(tokens) >= 4 and None not in values[1:4] and float(values[1]).is_integer():
        return _TextPoint(values[2], values[3], tokens[0], int(values[1]), row.line)
    return None


def _text_items(text: str, label: str, findings: Findings) -> list[Any]:
    """The text's lines as blank-line breaks and points, lines of numbers judged together
    (``点号,a,b`` or ``a,b,height``); unreadable lines go to ``findings``."""
    lines = text.splitlines()
    if len(lines) > MAX_VERTICES + 10_000:
        check_limits(1, len(lines), label)
    raw_items: list[Any] = []
    headers: list[str] = []
    for lineno, raw in enumerate(lines, start=1):
        line = unicodedata.normalize("NFKC", raw).strip()
        if not line:
            raw_items.append(_BREAK)
            continue
        if line.startswith("#"):
            continue  # a comment: neither a point nor a break
        if not re.search(r"\d", line):
            headers.append(line)  # a header such as 经度,纬度 or 点号,圈号,X,Y
            continue
        amap = _amap_points(line, lineno) if _POINT_SEPARATOR.search(line) else None
        if amap is not None:
            raw_items.extend(amap)
            continue
        tokens = [t for t in _SEPARATORS.split(line) if t]
        row = _Row(lineno, tokens, [_num(t) for t in tokens])
        if _row_point(row, False) is None and _DMS_HINT.search(line):
            try:
                lon, lat = parse_dms(line)
            except CoordinateError as exc:
                findings.add(_l("第 %(line)s 行：%(why)s", line=lineno, why=exc.message),
                             line=lineno, value=raw.strip()[:80])
                continue
            raw_items.append(_TextPoint(lon, lat, None, None, lineno, dms=True))
            continue
        raw_items.append(row)
    numbered = _numbered_columns([r for r in raw_items if isinstance(r, _Row)], headers)
    items: list[Any] = []
    for item in raw_items:
        if isinstance(item, _Row):
            point = _row_point(item, numbered)
            if point is None:
                value = lines[item.line - 1].strip()[:80]
                findings.add(_l("第 %(line)s 行读不出坐标：“%(value)s”；每行应为“经度,纬度”、“X,Y”或"
                                "“点号,圈号,X,Y”", line=item.line, value=value),
                             line=item.line, value=value)
                continue
            if point.ring is not None and point.ring < 1:
                findings.add(_l("第 %(line)s 行：圈号“%(value)s”应为 1、2、3……", line=item.line,
                                value=item.tokens[1]), line=item.line, value=item.tokens[1])
                continue
            item = point
        items.append(item)
    return items


def _blocks(items: list[Any]) -> list[list[_TextPoint]]:
    """Parcels of points: a blank line ends one, unless the next line is a hole of it
    (圈号 2, 3, …)."""
    blocks: list[list[_TextPoint]] = []
    current: list[_TextPoint] = []
    broken = False
    for item in items:
        if item is _BREAK:
            broken = bool(current)
            continue
        if broken and not (item.ring is not None and item.ring >= 2):
            blocks.append(current)
            current = []
        broken = False
        current.append(item)
    if current:
        blocks.append(current)
    return blocks


def _rings_by_number(block: list[_TextPoint]) -> dict[int, list[_TextPoint]]:
    """A parcel's points grouped by 圈号 (a line without one continues the ring above; the
    first ring is 1), in ring-number order."""
    rings: dict[int, list[_TextPoint]] = {}
    number = 1
    for p in block:
        number = p.ring if p.ring is not None else number
        rings.setdefault(number, []).append(p)
    return dict(sorted(rings.items()))


def _from_text(text: str, label: str, crs: str | None, kind: str,
               towgs84: Sequence[float] | None = None) -> ParcelSet:
    """Parcels from a coordinate list: blank lines separate parcels ("1", "2", … by
    position); holes come from ``点号,圈号,X,Y`` lines with 圈号 2, 3, …"""
    if crs and describe_crs(crs)["name"] == "dms":
        crs = "wgs84"  # degrees-minutes-seconds text names WGS84 lon/lat, as in crs.parse_point
    findings = Findings(file=label)
    text = clean_text(text.replace("\r\n", "\n").replace("\r", "\n"))
    items = _text_items(text, label, findings)
    blocks = _blocks(items)
    if blocks:
        check_limits(len(blocks), sum(len(b) for b in blocks), label)
    parcels: list[tuple[int, dict[int, list[_TextPoint]]]] = []
    for position, block in enumerate(blocks, start=1):
        rings = _rings_by_number(block)
        if 1 not in rings:
            findings.add(_l("%(parcel)s 没有外圈（圈号 1）的界址点", parcel=parcel_label(position)),
                         feature=position, line=block[0].line)
            continue
        parcels.append((position, rings))
    if findings.problems:
        raise ValidationFailed(_l("%(file)s 有 %(count)s 处问题", file=label,
                                  count=len(findings.problems)), details=findings.problems)
    if not parcels:
        raise InvalidInput(_l("%(file)s 中没有坐标；每行写一个点：“经度,纬度”、“X,Y”或“点号,圈号,X,Y”",
                              file=label))
    points = [p for _, rings in parcels for ring in rings.values() for p in ring]
    xy = np.array([(p.a, p.b) for p in points])
    if not any(p.dms for p in points) and not _small(xy[:, 0], xy[:, 1]).all():
        _east_north(points, label)
    features = []
    for position, rings in parcels:
        numbers = list(rings)
        ring_points = list(rings.values())
        f = _Feature(position=position,
                     parts=[[np.array([(p.a, p.b) for p in r]) for r in ring_points]])
        if any(p.name for r in ring_points for p in r):
            f.named_points = True
            f.point_names = [[[p.name or str(i + 1) for i, p in enumerate(r)]
                              for r in ring_points]]
            f.ring_numbers = [numbers]
        f.point_lines = [[[p.line for p in r] for r in ring_points]]
        f.line = ring_points[0][0].line
        features.append(f)
    return _nested_parcels(_assemble(features, label, crs, None, kind, spec_wgs84=False,
                                     towgs84=towgs84), label)


def _nested_parcels(ps: ParcelSet, label: str) -> ParcelSet:
    """A warning for every pasted parcel lying inside another: a hole may have been meant."""
    if len(ps.parcels) < 2:
        return ps
    geoms = [p.lonlat for p in ps.parcels]
    inner, outer = shapely.STRtree(geoms).query(geoms, predicate="within")
    findings = Findings(file=label)
    for i, j in zip(inner.tolist(), outer.tolist(), strict=True):
        if i != j:
            p, q = ps.parcels[i], ps.parcels[j]
            findings.add(_l("%(inner)s 位于 %(outer)s 之内，按两个地块分别核查；如要表示内圈（挖空的部分），"
                            "请写成“点号,圈号,X,Y”，内圈的圈号为 2、3……",
                            inner=parcel_label(p.feature), outer=parcel_label(q.feature)),
                         feature=p.feature, id=p.id, warning=True)
    if not findings.warnings:
        return ps
    return dataclasses.replace(ps, warnings=ps.warnings + tuple(findings.warnings))


def _east_north(points: list[_TextPoint], label: str) -> None:
    """Metres in the survey order (X north, Y east) or the GIS order (x east, y north): the
    ranges do not overlap, so every line says which; all must say the same. Survey-order
    points are turned into east, north in place."""
    pts = np.array([(p.a, p.b) for p in points])
    survey = is_northing(pts[:, 0]) & is_easting(pts[:, 1])
    gis = is_easting(pts[:, 0]) & is_northing(pts[:, 1])
    if survey.all():
        for p in points:
            p.a, p.b = p.b, p.a
        return
    if gis.all() or not survey.any():
        return  # GIS order, or numbers the coordinate system will judge
    first = int(np.flatnonzero(~survey)[0])
    raise InvalidInput(_l("%(file)s 第 %(line)s 行：坐标的顺序与前面的行不同；请统一写成“X（北）,Y（东）”"
                          "或统一写成“东,北”", file=label, line=points[first].line))


# --- From features to parcels --------------------------------------------------------------

def _canonical_crs(crs: str | None) -> str | None:
    if not crs:
        return None
    name = describe_crs(crs)["name"]  # raises CoordinateError naming the accepted systems
    if name == "dms":
        raise InvalidInput(_l("坐标系 dms（度分秒）只用于粘贴的坐标文字；文件请给出数值坐标的坐标系"))
    return name


def _geographic(crs: CRS, assumed: bool = False) -> _Frame:
    code = crs.to_epsg()
    name = {4326: "WGS84", 4490: "CGCS2000"}.get(code or 0, crs.name)
    return _Frame("geographic", f"{name} (EPSG:{code})" if code else name, crs=crs,
                  assumed=assumed)


def _offset(kind: str) -> _Frame:
    return _Frame(kind, {"gcj02": "GCJ-02", "bd09": "BD-09"}[kind])


def _gk_frame(zone: int, width: int, label: str) -> _Frame:
    """CGCS2000 Gauss-Krüger with the zone number written in front of the easting."""
    cm = 3 * zone if width == 3 else 6 * zone - 3
    name = gk_crs(cm)
    return _Frame("projected", f"CGCS2000 {width}° Gauss-Krüger zone {zone} ({name})",
                  crs=resolve_crs(name), zone=Zone(zone, width, cm), prefix=zone)


def _projected(crs: CRS, prefixes: set[int], label: str) -> _Frame:
    """A projected system. A CGCS2000 Gauss-Krüger one (with or without the zone number in
    its false easting) reads eastings written either way, and checks the zone."""
    code = crs.to_epsg()
    name = f"EPSG:{code}" if code else None
    try:
        cm = gk_central_meridian(name) if name else None
    except CoordinateError:
        cm = None
    if cm is None:
        return _Frame("projected", f"{crs.name} ({name})" if name else crs.name, crs=crs)
    zone = cm // 3
    written = prefixes - {0}
    if written and written != {zone}:
        raise InvalidInput(_l("%(file)s：东坐标前的带号 %(found)s 与坐标系 %(crs)s（第 %(zone)s 带）不符",
                              file=label, found=", ".join(map(str, sorted(written))), crs=name,
                              zone=zone))
    return _Frame("projected", f"CGCS2000 3° Gauss-Krüger zone {zone} ({name})",
                  crs=resolve_crs(gk_crs(cm)), zone=Zone(zone, 3, cm), prefix=zone)


def _undeclared_metres(xy: np.ndarray, label: str) -> _Frame:
    """Metres with no system named: CGCS2000 Gauss-Krüger when eastings carry the zone."""
    prefixes = set(zone_prefix(xy[:, 0]).tolist())
    if 0 in prefixes or len(prefixes) != 1:
        if (zone_prefix(xy[:, 1]) > 0).all():
            raise InvalidInput(_l("%(file)s：x 和 y 像是填反了：带号写在 y 前面（%(y)s），而 y 应为北坐标、"
                                  "x 为东坐标", file=label, y=f"{xy[0, 1]:.3f}"))
        if len(prefixes - {0}) > 1:
            raise InvalidInput(_l("%(file)s：东坐标前的带号不一致（%(zones)s）；一个文件只能用一个投影带",
                                  file=label, zones=", ".join(map(str, sorted(prefixes - {0})))))
        raise InvalidInput(_l("%(file)s 的坐标是米制的投影坐标（如 x=%(x)s），东坐标前没有带号，文件也没有写明"
                              "坐标系；请给出坐标系，如 EPSG:4547（CGCS2000 3度带，中央经线东经 114°）",
                              file=label, x=f"{xy[0, 0]:.3f}"))
    zone = prefixes.pop()
    if 25 <= zone <= 45:
        return _gk_frame(zone, 3, label)
    if 13 <= zone <= 23:
        return _gk_frame(zone, 6, label)
    raise InvalidInput(_l("%(file)s：东坐标前的带号 %(zone)s 不是中国境内的带号（3 度带 25-45，6 度带 "
                          "13-23）", file=label, zone=zone))


def _small(x: Any, y: Any) -> Any:
    """Numbers no larger than degrees can be, in either order (lat/lon swapped included):
    never Gauss-Krüger metres, which are above 100 000 in China."""
    with np.errstate(invalid="ignore"):
        return (np.abs(x) <= 180) & (np.abs(y) <= 180)


def _same_projected(declared: CRS, name: str) -> bool:
    if name in ("gcj02", "bd09", "wgs84", "cgcs2000"):
        return False
    given = resolve_crs(name)
    code = declared.to_epsg()
    return (code is not None and code == given.to_epsg()) or \
        given.equals(declared, ignore_axis_order=True)


def _frame(declared: CRS | None, arg: str | None, xy: np.ndarray, label: str, *,
           spec_wgs84: bool) -> _Frame:
    """How the numbers become lon/lat: the file's declaration, refined or supplied by
    ``arg``, or CGCS2000 Gauss-Krüger from a zone number in front of the eastings."""
    name = _canonical_crs(arg)
    finite = xy[np.isfinite(xy).all(axis=1)] if len(xy) else xy
    degrees = not len(finite) or bool(_small(finite[:, 0], finite[:, 1]).all())
    prefixes = set(zone_prefix(finite[:, 0]).tolist()) if len(finite) else set()
    if declared is not None and not (spec_wgs84 and not degrees and name is None):
        if declared.is_geographic:
            if name in ("gcj02", "bd09"):
                return _offset(name)
            if name is None or (name not in ("gk",) and resolve_crs(name).is_geographic):
                return _geographic(declared)
        elif name is None or name == "gk" or _same_projected(declared, name):
            return _projected(declared, prefixes, label)
        raise InvalidInput(_l("%(file)s：给出的坐标系 %(crs)s 与文件自己声明的坐标系（%(own)s）矛盾；请不要"
                              "另给坐标系，或改正文件", file=label, crs=arg,
                              own=_geographic(declared).label if declared.is_geographic
                              else declared.name))
    if name is None:
        if degrees:
            return _geographic(resolve_crs(WGS84), assumed=not spec_wgs84)
        return _undeclared_metres(finite, label)
    if name in ("gcj02", "bd09"):
        return _offset(name)
    if name == "gk":
        return _undeclared_metres(finite, label)
    crs = resolve_crs(name)
    return _geographic(crs) if crs.is_geographic else _projected(crs, prefixes, label)


def _unused_parameters(file: str, crs: str) -> str:
    return _l("%(file)s 的坐标系是 %(crs)s，不需要七参数：给出的七参数未使用", file=file, crs=crs)


def _lonlat_area(frame: _Frame, xy: np.ndarray) -> tuple[float, float, float, float] | None:
    """The data's extent in lon/lat (west, south, east, north), by PROJ's first guess at the
    conversion (enough to choose the operation for the area); None when nothing converts."""
    finite = xy[np.isfinite(xy).all(axis=1)] if len(xy) else xy
    if not len(finite):
        return None
    rough = Transformer.from_crs(frame.crs, resolve_crs(WGS84), always_xy=True)
    ll = _convert(frame, finite, rough)
    ll = ll[np.isfinite(ll).all(axis=1) & (np.abs(ll[:, 0]) <= 180) & (np.abs(ll[:, 1]) <= 90)]
    if not len(ll):
        return None
    return (float(ll[:, 0].min()), float(ll[:, 1].min()), float(ll[:, 0].max()),
            float(ll[:, 1].max()))


def _conversion(frame: _Frame, towgs84: Sequence[float] | None, xy: np.ndarray, label: str,
                findings: Findings) -> tuple[_Frame, Transformer | None]:
    """How the numbers of ``frame`` reach WGS84 (``spatial.datums``): WGS84 and CGCS2000 as
    they are (``towgs84`` unused, said); any other datum with ``towgs84`` on its own
    ellipsoid; Xi'an 80 / Beijing 54 without it refused; another datum by the operation PROJ
    uses for the data's area — refused when that is a ballpark (the datum shift ignored),
    warned about when less accurate than 1 m."""
    if frame.crs is None or datum_of_crs(frame.crs) in EXACT:
        if towgs84 is not None:
            findings.add(_unused_parameters(label, frame.label), warning=True)
        transformer = Transformer.from_crs(frame.crs, resolve_crs(WGS84), always_xy=True) \
            if frame.crs is not None else None
        return frame, transformer
    datum = datum_of_crs(frame.crs)
    if towgs84 is not None:
        why = towgs84_problem(towgs84)
        if why is not None:
            raise InvalidInput(why)
        bound = with_towgs84(frame.crs, towgs84)
        frame = dataclasses.replace(frame, crs=bound,
                                    label=f"{frame.label}, towgs84={towgs84_text(towgs84)}")
        return frame, Transformer.from_crs(bound, resolve_crs(WGS84), always_xy=True)
    if datum in LABELS:
        raise InvalidInput(needs_parameters(describe(frame.crs), datum))
    area = _lonlat_area(frame, xy)
    accuracy = conversion_accuracy(frame.crs, area)
    if accuracy is None:
        datum_name = (frame.crs.geodetic_crs or frame.crs).datum.name
        raise InvalidInput(_l("%(file)s：坐标系 %(crs)s 的基准面“%(datum)s”到 WGS84 只有粗略的换算（忽略基准面之差，"
                              "位置可能偏差数十米以上）；请先转换为 2000国家大地坐标系或 WGS84，或提供七参数",
                              file=label, crs=describe(frame.crs), datum=datum_name))
    if accuracy > WARN_ACCURACY_M:
        findings.add(_l("%(file)s：坐标系 %(crs)s 换算到 WGS84 的精度约为 %(m)s 米，位置、面积和距离的误差可能"
                        "达到这个量级", file=label, crs=describe(frame.crs), m=f"{accuracy:g}"),
                     warning=True)
    aoi = AreaOfInterest(*area) if area is not None else None
    return frame, Transformer.from_crs(frame.crs, resolve_crs(WGS84), always_xy=True,
                                       area_of_interest=aoi)


def _convert(frame: _Frame, xy: np.ndarray, transformer: Transformer | None) -> np.ndarray:
    x, y = xy[:, 0].copy(), xy[:, 1]
    with np.errstate(invalid="ignore", over="ignore"):
        if frame.kind == "gcj02":
            lon, lat = gcj02_to_wgs84(x, y)
        elif frame.kind == "bd09":
            lon, lat = bd09_to_wgs84(x, y)
        else:
            if frame.prefix:
                x = np.where(x >= 1e7, x - frame.prefix * 1e6, x)
            lon, lat = transformer.transform(x, y) if transformer else (x, y)
    return np.column_stack((np.asarray(lon, float), np.asarray(lat, float)))


def _coordinate_problem(frame: _Frame, ring: Ring, xy: np.ndarray) -> tuple[str, int] | None:
    """Numbers that cannot be in ``frame``: metres read as degrees, degrees as metres,
    lon/lat or east/north swapped. The message and the point, or None."""
    finite = np.isfinite(xy).all(axis=1)
    x, y = xy[:, 0], xy[:, 1]
    degrees = looks_like_degrees(x, y) & finite
    if frame.kind != "projected":
        metres = finite & ~_small(x, y)
        if metres.any():
            i = int(np.flatnonzero(metres)[0])
            return _l("（%(x)s, %(y)s）不是经纬度（度），像是投影坐标（米）；请给出坐标系（如 EPSG:4547）",
                      x=f"{x[i]:.10g}", y=f"{y[i]:.10g}"), i
        swapped = finite & ~np.asarray(in_china(x, y), bool) & np.asarray(in_china(y, x), bool)
        if swapped.any():
            i = int(np.flatnonzero(swapped)[0])
            return _l("经度和纬度像是填反了（%(x)s, %(y)s）：应先写经度、后写纬度", x=f"{x[i]:.10g}",
                      y=f"{y[i]:.10g}"), i
        out = finite & ~degrees
        if out.any():
            i = int(np.flatnonzero(out)[0])
            return _l("（%(x)s, %(y)s）超出经纬度的范围（经度 -180..180，纬度 -90..90）",
                      x=f"{x[i]:.10g}", y=f"{y[i]:.10g}"), i
        return None
    if degrees.any():
        i = int(np.flatnonzero(degrees)[0])
        return _l("（%(x)s, %(y)s）像是经纬度（度），而坐标系 %(crs)s 以米为单位", x=f"{x[i]:.10g}",
                  y=f"{y[i]:.10g}", crs=frame.label), i
    if frame.zone is not None:
        swapped = finite & is_northing(x) & is_easting(y)
        if swapped.any():
            i = int(np.flatnonzero(swapped)[0])
            return _l("东坐标和北坐标像是填反了（x=%(x)s，y=%(y)s）：x 应为东坐标（常带带号，如 "
                      "38512345.678），y 为北坐标", x=f"{x[i]:.3f}", y=f"{y[i]:.3f}"), i
    return None


def _key(props: Mapping[str, Any], keys: Sequence[str]) -> tuple[Any, Any]:
    """The first property (key as written, value) among ``keys`` with a value, letter case
    ignored; (None, None) when none has one."""
    lower = {str(k).strip().lower(): k for k in props}
    for k in keys:
        if k in lower:
            v = props[lower[k]]
            if v is not None and str(v).strip() not in ("", "nan", "None"):
                return lower[k], v
    return None, None


def _id_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()  # never cut: cut ids made distinct ids duplicates


def _declared_area(props: Mapping[str, Any]) -> float | None:
    """An area property whose name carries its unit (地块面积(公顷), area_m2, 面积_亩), in m²."""
    for key, value in props.items():
        k = str(key)
        if not (_AREA_WORD.search(k) or "公顷" in k):
            continue
        for pattern, factor in _AREA_UNITS:
            if pattern.search(k):
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    return None
                return number * factor if math.isfinite(number) and number > 0 else None
    return None


def _assemble(features: list[_Feature], label: str, crs: str | None, declared: CRS | None,
              kind: str, *, spec_wgs84: bool, notes: Sequence[str] = (),
              towgs84: Sequence[float] | None = None) -> ParcelSet:
    """Polygons become parcels in WGS84, every one checked; everything wrong at once."""
    findings = Findings(file=label)
    for f in features:
        _clean_feature(f)
    polygons = [f for f in features if f.kind == "polygon" and not f.bad]
    for f in features:
        if f.bad:
            findings.add(_l("第 %(n)s 个要素读不出来：%(why)s", n=f.position, why=f.bad),
                         feature=f.position, line=f.line)
    skipped: dict[str, int] = {}
    for f in features:
        if f.kind != "polygon":
            skipped[f.kind] = skipped.get(f.kind, 0) + 1
    if not polygons and not findings.problems:
        if not features:
            raise InvalidInput(_l("%(file)s 中没有要素", file=label))
        raise InvalidInput(_l("%(file)s 中没有面（多边形），只有 %(what)s；地块须画成闭合的面",
                              file=label, what=_skipped_text(skipped)))
    check_limits(len(polygons), sum(len(r) for f in polygons for part in f.parts for r in part),
                 label)
    for note in notes:
        findings.add(note, warning=True)
    if skipped and polygons:
        findings.add(_l("%(file)s 中除 %(count)s 个面以外的要素未作为地块读取：%(what)s", file=label,
                        count=len(polygons), what=_skipped_text(skipped)), warning=True)
    rings = [r for f in polygons for part in f.parts for r in part]
    all_xy = np.concatenate(rings) if rings else np.empty((0, 2))  # empty polygons: named
    frame = _frame(declared, crs, all_xy, label, spec_wgs84=spec_wgs84)
    if frame.assumed:
        findings.add(_l("%(file)s 没有写明坐标系，已按 WGS84 经纬度读取；高德、腾讯（GCJ-02）或百度（BD-09）"
                        "坐标请选择相应坐标系，否则位置会偏差数百米", file=label), warning=True)
    frame, transformer = _conversion(frame, towgs84, all_xy, label, findings)
    rings_of: list[tuple[_Feature, ParcelRings, str]] = []
    for f in polygons:
        read = _parcel_rings(f, frame, transformer, findings)
        if read is not None:
            rings_of.append((f, *read))
    duplicate_ids([rp for _, rp, _ in rings_of], findings)
    taken = {rp.id for _, rp, _ in rings_of if rp.id}
    built: list[InputParcel] = []
    for f, rp, metric_crs in rings_of:
        b = build_parcel(rp, findings, locate=lonlat_locator(metric_crs), zone=frame.zone)
        if b is None:
            continue
        used = {_key(f.properties, ID_KEYS)[0], _key(f.properties, NAME_KEYS)[0]}
        attrs = {k: _plain(v) for k, v in f.properties.items() if k not in used}
        built.append(InputParcel(id=rp.id or _position_id(f.position, taken), name=_name_of(f),
                                 lonlat=b.lonlat, attributes=attrs,
                                 declared_area_m2=rp.declared_area_m2, feature=f.position))
    if findings.problems:
        raise ValidationFailed(_l("%(file)s 有 %(count)s 处问题", file=label,
                                  count=len(findings.problems)), details=findings.problems)
    return ParcelSet(parcels=tuple(built), warnings=tuple(findings.warnings), format=kind,
                     crs=frame.label)


def _clean_feature(f: _Feature) -> None:
    """Names and properties as every output can carry them (``clean_text``); the id is kept
    as written in ``raw_id``, to be judged, never changed."""
    props = {clean_text(k) if isinstance(k, str) else k: v for k, v in f.properties.items()}
    fid = _key(props, ID_KEYS)[1]
    f.raw_id = f.fid if fid is None and f.fid not in (None, "") else fid
    f.properties = {k: clean_value(v) for k, v in props.items()}
    f.name = clean_text(f.name) if isinstance(f.name, str) else f.name


def _position_id(position: int, taken: set[str]) -> str:
    """A parcel without a number is numbered by its position, "3", or "3-2" when the input
    gave another parcel the number 3."""
    pid, n = str(position), 1
    while pid in taken:
        n += 1
        pid = f"{position}-{n}"
    taken.add(pid)
    return pid


def _skipped_text(skipped: Mapping[str, int]) -> str:
    return _l("%(points)s 个点、%(lines)s 条线、%(none)s 个没有几何的要素、%(other)s 个其他要素",
              points=skipped.get("point", 0), lines=skipped.get("line", 0),
              none=skipped.get("none", 0), other=skipped.get("other", 0))


def _name_of(f: _Feature) -> str | None:
    name = _key(f.properties, NAME_KEYS)[1]
    name = f.name if name is None else name
    return str(name).strip()[:200] or None if name is not None else None


def _metric_crs(rings: Sequence[np.ndarray]) -> str:
    """The Gauss-Krüger zone of a parcel's first point in China (any zone when none is: the
    parcel is refused by its checks, which need metres all the same)."""
    for ll in rings:
        ok = np.isfinite(ll).all(axis=1) & np.asarray(in_china(ll[:, 0], ll[:, 1]), bool)
        if ok.any():
            return _zone_crs(float(ll[np.flatnonzero(ok)[0], 0]))
    return _zone_crs(114.0)


@lru_cache(maxsize=32)
def _zone_crs_cm(cm: int) -> str:
    return metric_crs_for(float(cm), 35.0)


def _zone_crs(lon: float) -> str:
    return _zone_crs_cm(3 * round(lon / 3))


def _parcel_rings(f: _Feature, frame: _Frame, transformer: Transformer | None,
                  findings: Findings) -> tuple[ParcelRings, str] | None:
    """The feature's rings in lon/lat and in metres of the Gauss-Krüger zone of its first
    point in China, and that zone's CRS; None when its numbers cannot be in ``frame``."""
    pid = _id_text(f.raw_id) if f.raw_id is not None else None
    name = _name_of(f)
    why = id_problem(parcel_label(f.position, None, name), pid) if pid else None
    if why is not None:
        findings.add(why, feature=f.position, line=f.line, value=clean_text(pid)[:100])
        return None
    declared = _declared_area(f.properties)
    label = parcel_label(f.position, pid, name)
    probe = ParcelRings(ordinal=f.position, label=label, id=pid, parts=(), line=f.line)
    parts: list[list[tuple[np.ndarray, Ring]]] = []
    lonlat_rings: list[tuple[np.ndarray, Ring]] = []
    for pi, part in enumerate(f.parts):
        rings = []
        for ri, xy in enumerate(part):
            names = f.point_names[pi][ri] if f.point_names else ()
            lines = f.point_lines[pi][ri] if f.point_lines else ()
            ring = Ring(lonlat=np.empty((0, 2)), metric=np.empty((0, 2)),
                        label=_l("第 %(n)s 圈", n=f.ring_numbers[pi][ri] if f.ring_numbers
                                 else ri + 1) if f.named_points
                        else ring_label(pi, ri, len(f.parts)),
                        names=names, named=f.named_points, lines=lines)
            problem = _coordinate_problem(frame, ring, xy)
            if problem is not None:
                message, i = problem
                findings.add(_l("%(parcel)s %(ring)s %(point)s：%(why)s", parcel=label,
                                ring=ring.label, point=ring.point(i), why=message),
                             parcel=probe, line=ring.line(i))
                return None
            lonlat = _convert(frame, xy, transformer)
            lost = np.isfinite(xy).all(axis=1) & ~np.isfinite(lonlat).all(axis=1)
            if lost.any():
                i = int(np.flatnonzero(lost)[0])
                findings.add(_l("%(parcel)s %(ring)s %(point)s：（%(x)s, %(y)s）不能按 %(crs)s 换算为经纬度；"
                                "请检查坐标系", parcel=label, ring=ring.label,
                                point=ring.point(i), x=f"{xy[i, 0]:.10g}",
                                y=f"{xy[i, 1]:.10g}", crs=frame.label),
                             parcel=probe, line=ring.line(i))
                return None
            lonlat_rings.append((lonlat, ring))
            rings.append((lonlat, ring))
        parts.append(rings)
    metric_crs = _metric_crs([ll for ll, _ in lonlat_rings])
    out_parts = []
    for rings in parts:
        out = []
        for lonlat, ring in rings:
            with np.errstate(invalid="ignore"):
                e, n = to_metric(lonlat[:, 0], lonlat[:, 1], metric_crs)
            out.append(Ring(lonlat=lonlat, metric=np.column_stack((e, n)), label=ring.label,
                            names=ring.names, named=ring.named, lines=ring.lines))
        out_parts.append(out)
    return ParcelRings(ordinal=f.position, label=label, id=pid, parts=out_parts, line=f.line,
                       declared_area_m2=declared), metric_crs


__all__ = ["MAX_BYTES", "MAX_FEATURES", "MAX_PARCELS", "MAX_VERTICES", "InputParcel",
           "ParcelSet", "parcels_from_geojson", "parcels_from_text", "read_parcel_file"]
