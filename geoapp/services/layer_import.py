"""Replace a zone layer from an uploaded zipped Shapefile, GeoJSON or GeoPackage.

Uploads come from desktop GIS exports made by other offices, so every classic way such a
file goes wrong is caught before anything is written, with a message the planner can act on:
zip bombs and zip-slip paths (checked from the zip directory, before a byte is extracted),
a missing or wrong .prj, GBK attributes without a .cpg, too many features, self-intersecting
or empty geometries. The layer is then replaced in one transaction (audited) and the stored
rule hits refreshed.
"""

from __future__ import annotations

import codecs
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoapp.domain.errors import GeoappError, InvalidInput, NotFound, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.services.audit import record_event
from geoapp.services.checks import refresh_hits
from geoapp.spatial.crs import WGS84, resolve_crs
from geoapp.storage import vector_in
from geoapp.storage.sources import (
    EMPTY_GEOMETRY,
    LAYER_EXTRA_REQUIRED,
    LAYER_REQUIRED,
    bounds_beyond_degrees,
    geometry_problems,
)
from geoapp.storage.zip_in import detect_dbf_encoding, extract_shapefile

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

#: Layers only an admin may replace: every county total and the map outline hang on them.
PROTECTED_LAYERS = ("city", "counties")
UPLOAD_TYPES = (".zip", ".geojson", ".json", ".gpkg")
#: The unpacked shapefile may be this many times MAX_UPLOAD_MB.
UNPACKED_FACTOR = 10
#: How far (degrees, about 50 km) a feature may lie outside the city's box before the
#: file's coordinate system is called wrong.
CITY_MARGIN_DEG = 0.5
MAX_REPORTED = 200
#: Longest text value a layer feature may carry (names, sources, codes).
MAX_TEXT_CHARS = 2000
#: Longest text encoding name accepted (the longest Python codec alias is far shorter).
MAX_ENCODING_CHARS = 40

_FAMILY = {"Polygon": "polygon", "MultiPolygon": "polygon", "LineString": "line",
           "MultiLineString": "line", "LinearRing": "line", "Point": "point",
           "MultiPoint": "point"}
_FAMILY_WORDS = {"polygon": _l("面状"), "line": _l("线状"), "point": _l("点状")}


class NotAllowed(GeoappError):
    """The user's role may not replace this layer."""

    status = 403
    code = "forbidden"


# ---------------------------------------------------------------------------- the use case
def import_layer(app: Geoapp, name: str, path: str | Path, *, user: str,
                 is_admin: bool = False, crs: str | None = None,
                 encoding: str | None = None, filename: str | None = None) -> dict[str, Any]:
    """Validate the uploaded file, replace layer ``name`` with it and refresh the rule hits.

    Returns a report: feature counts before/after, the repaired features and the hit refresh.
    Nothing is written unless every check passes.
    """
    path = Path(path)
    label = filename or path.name
    _check_permission(app, name, is_admin)
    max_rows = int(app.settings.get("MAX_ROWS") or 0)
    max_mb = int(app.settings.get("MAX_UPLOAD_MB") or 50)
    with tempfile.TemporaryDirectory(prefix="geoapp-layer-") as tmp:
        gdf = read_layer_file(path, Path(tmp), crs=crs, encoding=encoding, label=label,
                              max_rows=max_rows, max_unpacked_mb=max_mb * UNPACKED_FACTOR,
                              database=app.settings.get("DATABASE"))
    gdf = _fill_columns(gdf, label)
    gdf, dropped = _declared_columns(app, name, gdf, label)
    _check_place(app, gdf, label)
    gdf, repaired = repair_geometries(gdf, label)
    _check_family(app, name, gdf, label)
    with app.repo.transaction():
        report = app.repo.replace_layer(name, gdf, user=user)
        record_event(app, user, "import", "layer", name,
                     {"file": label, "features": len(gdf),
                      "repaired": [r["feature"] for r in repaired],
                      "dropped_columns": dropped})
    refreshed = refresh_hits(app)
    log.info("layer %s replaced from %s by %s: %d features (%d repaired)", name, label, user,
             len(gdf), len(repaired))
    return {**report, "file": label, "repaired": repaired, "dropped_columns": dropped,
            "hits": refreshed}


def _check_permission(app: Geoapp, name: str, is_admin: bool) -> None:
    names = app.repo.layer_names()
    if name not in names:
        raise NotFound(_l("没有名为“%(name)s”的图层；已有：%(known)s", name=name,
                          known=", ".join(names)))
    if name in PROTECTED_LAYERS and not is_admin:
        raise NotAllowed(_l("图层 %(name)s（边界）只能由管理员替换", name=name))


# ---------------------------------------------------------------------------- reading
def read_layer_file(path: Path, work: Path, *, crs: str | None = None,
                    encoding: str | None = None, label: str | None = None,
                    max_rows: int = 0, max_unpacked_mb: int = 500,
                    database: str | Path | None = None) -> gpd.GeoDataFrame:
    """Read an upload into a GeoDataFrame in EPSG:4326; InvalidInput names what is wrong.

    The format must agree with both the extension and the content, and only the allow-listed
    readers of ``storage.vector_in`` ever hand the bytes to GDAL.
    """
    path = Path(path)
    label = label or path.name
    ext = Path(label).suffix.lower() or path.suffix.lower()
    if ext not in UPLOAD_TYPES:
        raise InvalidInput(_l("%(file)s：不支持的文件类型“%(ext)s”；请上传压缩的 Shapefile（.zip）、"
                              "GeoJSON（.geojson）或 GeoPackage（.gpkg）", file=label, ext=ext))
    vector_in.guard_source(path, label, database)
    kind = vector_in.check_kind(path, label, vector_in.EXTENSIONS[ext])
    if encoding:
        _check_encoding(encoding)
    if kind == "zip":
        src = extract_shapefile(path, work, label=label, max_unpacked_mb=max_unpacked_mb)
        has_prj = src.with_suffix(".prj").is_file()
        if encoding is None and not src.with_suffix(".cpg").is_file():
            encoding = detect_dbf_encoding(src.with_suffix(".dbf"))
        gdf = vector_in.read_vector(src, label=label, kind="shapefile", database=database,
                                    max_rows=max_rows, encoding=encoding).gdf
    else:
        gdf = vector_in.read_vector(path, label=label, kind=kind, database=database,
                                    max_rows=max_rows).gdf
        has_prj = True
    return _with_crs(gdf, label, crs, has_prj)


def _check_encoding(encoding: str) -> None:
    """A text codec's name; a long one is refused without being echoed."""
    if len(encoding) > MAX_ENCODING_CHARS:
        raise InvalidInput(_l("文字编码名称过长：超过 %(max)s 个字符；请用例如 UTF-8、GBK、GB18030",
                              max=MAX_ENCODING_CHARS))
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise InvalidInput(_l("未知的文字编码“%(encoding)s”；请用例如 UTF-8、GBK、GB18030",
                              encoding=encoding))


def _with_crs(gdf: gpd.GeoDataFrame, label: str, crs: str | None,
              has_prj: bool) -> gpd.GeoDataFrame:
    given = resolve_crs(crs) if crs else None
    invented = vector_in.unknown_datum(gdf.crs) if has_prj else None
    if invented and given is None:
        raise InvalidInput(_l("坐标系基准面未知：%(file)s：坐标系所用的基准面“%(datum)s”没有任何权威"
                              "机构定义（编造或拼错的）；请在坐标系栏写明真实的坐标系（如 cgcs2000、"
                              "wgs84、EPSG:4547）", file=label, datum=invented))
    if invented:
        gdf = gdf.set_crs(given, allow_override=True)
    elif gdf.crs is None or not has_prj:
        if given is None:
            raise InvalidInput(_l("%(file)s：Shapefile 没有 .prj，坐标系未知；请加上 .prj，或在坐标系栏"
                                  "写明坐标系（如 EPSG:4547、cgcs2000、wgs84）", file=label))
        gdf = gdf.set_crs(given, allow_override=True)
    elif given is not None and not given.equals(gdf.crs):
        raise InvalidInput(_l("%(file)s：坐标系栏（%(crs)s）与文件自带的坐标系（%(own)s）矛盾；请清空"
                              "该栏或修正 .prj", file=label, crs=crs, own=gdf.crs.name))
    if not len(gdf):
        raise InvalidInput(_l("%(file)s：文件中没有要素", file=label))
    _check_declared_units(gdf, label)
    try:
        out = gdf.to_crs(resolve_crs(WGS84))
    except Exception as exc:  # noqa: BLE001 - pyproj errors for impossible input
        log.warning("upload %s: cannot convert from %s: %s", label, gdf.crs.name, exc)
        raise InvalidInput(_l("%(file)s：无法从 %(crs)s 换算为 WGS84；请检查坐标系（.prj 或坐标系栏）",
                              file=label, crs=gdf.crs.name)) from None
    return out


def _check_declared_units(gdf: gpd.GeoDataFrame, label: str) -> None:
    """Metres declared as degrees: the classic wrong .prj (the source files' own check)."""
    outside = bounds_beyond_degrees(gdf.geometry.values) if gdf.crs.is_geographic else None
    if outside is not None:
        maxx, maxy = outside[2], outside[3]
        raise InvalidInput(_l("%(file)s：.prj 声明的是度（%(crs)s），但坐标达到 %(x)s, %(y)s，这是"
                              "米数；请修正 .prj，或在坐标系栏写明真实的坐标系", file=label,
                              crs=gdf.crs.name, x=format(maxx, ".0f"), y=format(maxy, ".0f")))


# ---------------------------------------------------------------------------- checks
def _fill_columns(gdf: gpd.GeoDataFrame, label: str) -> gpd.GeoDataFrame:
    cols = {c.lower(): c for c in gdf.columns}
    gdf = gdf.rename(columns={v: k for k, v in cols.items() if k in ("id", "name", "source")})
    missing = [c for c in ("id", "name") if c not in gdf.columns]
    if missing:
        have = ", ".join(c for c in gdf.columns if c != gdf.geometry.name)
        raise InvalidInput(_l("%(file)s：缺少列 %(columns)s；每个要素都须有 id 和 name（文件中有：%(have)s）",
                              file=label, columns=", ".join(missing), have=have or "—"))
    if "source" not in gdf.columns:
        gdf = gdf.assign(source=label)
    return gdf


def _declared_columns(app: Geoapp, name: str, gdf: gpd.GeoDataFrame,
                      label: str) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Keep only the columns layer ``name`` declares (its stored table's columns and the
    required ones); refuse text values longer than MAX_TEXT_CHARS.

    Returns the frame and the names of the columns left out (for the report).
    """
    stored = app.repo.layer(name)
    declared = {c for c in stored.columns if c != stored.geometry.name}
    declared |= {*LAYER_REQUIRED, *LAYER_EXTRA_REQUIRED.get(name, ())}
    geom = gdf.geometry.name
    keep = [c for c in gdf.columns if c != geom and c in declared]
    dropped = [str(c) for c in gdf.columns if c != geom and c not in declared]
    gdf = gdf[[*keep, geom]]
    too_long = []
    for col in keep:
        values = gdf[col]
        if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
            continue
        lengths = values.map(lambda v: len(v) if isinstance(v, str | bytes) else 0)
        for i in np.flatnonzero(lengths.to_numpy() > MAX_TEXT_CHARS)[:MAX_REPORTED]:
            too_long.append(Problem(file=label, feature=int(i) + 1, column=str(col),
                                    value=int(lengths.iat[i]), message=_l(
                                        "文字过长：%(length)s 个字符，最多 %(max)s 个",
                                        length=int(lengths.iat[i]), max=MAX_TEXT_CHARS)))
    if too_long:
        first = too_long[0]
        raise InvalidInput(_l("文字过长：%(file)s：%(count)s 个值超过 %(max)s 个字符；第一个：要素 "
                              "%(feature)s，%(column)s 列（%(length)s 个字符）", file=label,
                              count=len(too_long), max=MAX_TEXT_CHARS, feature=first.feature,
                              column=first.column, length=first.value), details=too_long)
    if dropped:
        log.info("layer %s upload %s: columns not declared by the layer left out: %s", name,
                 label, ", ".join(dropped))
    return gdf, dropped


def _check_place(app: Geoapp, gdf: gpd.GeoDataFrame, label: str) -> None:
    """Features far outside the city mean a wrong coordinate system (or another city)."""
    geoms = gdf.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bounds = shapely.bounds(geoms)
    finite = np.isfinite(bounds).all(axis=1)
    if (ok & ~finite).any():
        i = int(np.flatnonzero(ok & ~finite)[0])
        raise InvalidInput(_l("%(file)s：要素 %(feature)s 的坐标无法定位（换算后为无穷大或 NaN）；"
                              "请检查坐标系", file=label, feature=i + 1))
    cminx, cminy, cmaxx, cmaxy = app.repo.layer("city").total_bounds
    m = CITY_MARGIN_DEG
    outside = ok & ((bounds[:, 2] < cminx - m) | (bounds[:, 0] > cmaxx + m)
                    | (bounds[:, 3] < cminy - m) | (bounds[:, 1] > cmaxy + m))
    if outside.any():
        idx = np.flatnonzero(outside)
        x, y = (bounds[idx[0], 0] + bounds[idx[0], 2]) / 2, (bounds[idx[0], 1]
                                                              + bounds[idx[0], 3]) / 2
        raise InvalidInput(
            _l("%(file)s：%(count)s 个要素在%(city)s范围之外（要素 %(feature)s 在 %(x)s, %(y)s 附近）；"
               "文件的坐标系（.prj 或坐标系栏）可能有误", file=label, count=len(idx),
               city=app.city.name, feature=int(idx[0]) + 1, x=format(x, ".3f"), y=format(y, ".3f")),
            details=[Problem(file=label, feature=int(i) + 1, message=_l("在本市范围之外"))
                     for i in idx[:MAX_REPORTED]])


def repair_geometries(gdf: gpd.GeoDataFrame, label: str = "") -> tuple[gpd.GeoDataFrame,
                                                                       list[dict]]:
    """Reject empty geometries; repair invalid ones with make_valid and report each.

    A repair that changes the kind of geometry (a polygon that collapses to lines) is not a
    repair but a different feature, so the file is rejected for it instead.
    """
    geoms = gdf.geometry.values
    empty = [p for p in geometry_problems(geoms, ids=[str(v) for v in gdf["id"]], file=label,
                                          first_feature=1) if p.message == EMPTY_GEOMETRY]
    if empty:
        feats = [p.feature for p in empty]
        raise ValidationFailed(_l("%(file)s：%(count)s 个要素没有几何：要素 %(features)s",
                                  file=label, count=len(feats),
                                  features=", ".join(map(str, feats[:20]))),
                               details=empty[:MAX_REPORTED])
    reasons = shapely.is_valid_reason(geoms)
    bad = np.flatnonzero(reasons != "Valid Geometry")
    if not len(bad):
        return gdf, []
    fixed = shapely.make_valid(geoms[bad])
    repaired, rejected = [], []
    for i, old, new in zip(bad, geoms[bad], fixed, strict=True):
        rec = {"feature": int(i) + 1, "id": str(gdf["id"].iat[i]), "problem": str(reasons[i]),
               "before": old.geom_type, "after": new.geom_type}
        same = _FAMILY.get(old.geom_type) == _FAMILY.get(new.geom_type)
        (repaired if same and not new.is_empty else rejected).append(rec)
    if rejected:
        r = rejected[0]
        raise ValidationFailed(
            _l("%(file)s：%(count)s 个要素修复后会改变几何类型，无法修复；第一个：要素 %(feature)s"
               "（%(problem)s）会变成 %(after)s", file=label, count=len(rejected),
               feature=r["feature"], problem=r["problem"], after=r["after"]),
            details=[Problem(file=label, feature=r["feature"], id=r["id"],
                             value=f"{r['before']} → {r['after']}",
                             message=_l("修复会把几何类型从 %(before)s 变为 %(after)s（%(problem)s）",
                                        before=r["before"], after=r["after"],
                                        problem=r["problem"]))
                     for r in rejected])
    out = gdf.copy()
    values = out.geometry.values.copy()
    values[bad] = fixed
    out[out.geometry.name] = values
    return out, repaired


def _check_family(app: Geoapp, name: str, gdf: gpd.GeoDataFrame, label: str) -> None:
    """A zone layer stays polygons, a river layer lines: a points file is the wrong upload."""
    old = {_FAMILY.get(t) for t in app.repo.layer(name).geom_type.dropna().unique()}
    new = {_FAMILY.get(t) for t in gdf.geom_type.dropna().unique()}
    if old and not new <= old:
        raise InvalidInput(_l("%(file)s：图层 %(name)s 是%(old)s要素；文件中是%(new)s要素", file=label,
                              name=name, old=_families(old), new=_families(new)))


def _families(families: set[str | None]) -> str:
    """Geometry families in words ('面', '线和点'), a catalogue message."""
    words = [_FAMILY_WORDS.get(f or "", f or "?") for f in sorted(map(str, families))]
    out = words[0]
    for w in words[1:]:
        out = _l("%(a)s和%(b)s", a=out, b=w)
    return out
