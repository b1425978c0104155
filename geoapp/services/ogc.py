"""OGC API – Features: the collections GIS tools read, their items, pages and filters.

What the service offers, read through the repository interface only (so it works on every
storage backend):

- every source layer (city.toml order), under its layer name;
- the stored sites, one collection per site type (``enterprises``, ``farms``,
  ``workshops``: each type has its own attributes, and a GIS layer needs one schema);
- the stored exclusion zones (the dissolved rule buffers the maps draw), ``exclusion_zones``.

Site attributes are the site page's (``services.inspection``'s labels: every ledger field),
without the point's lon/lat (the geometry carries them); which accounts may read the site
collections is the web layer's rule (``web/ogc.py``). Feature ids are the stored
string ids (the rule id for a zone). Geometries are stored in EPSG:4326 and written in CRS84
unless ``crs`` names another offered system (``spatial.ogc_crs``): EPSG:4326, CGCS2000
(EPSG:4490) and the city's metric Gauss-Krüger zone. No HTTP here: the web layer
(``web/ogc.py``) reads the request, calls these and writes JSON or HTML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping

from geoapp.domain.errors import InvalidInput, NotFound
from geoapp.domain.fields import label
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import SiteType
from geoapp.maps.base import Translate, identity
from geoapp.services.checks import ZONES_LAYER
from geoapp.services.core import Geoapp
from geoapp.services.inspection import (
    COMMON_LABELS,
    FARM_LABELS,
    LEDGER_LABELS,
    WORKSHOP_LABELS,
)
from geoapp.services.interchange import SITE_LAYERS
from geoapp.spatial import ogc_crs
from geoapp.spatial.crs import CGCS2000, WGS84

#: The default system of the service (WGS84 longitude, latitude).
CRS84 = ogc_crs.CRS84
#: Items per page when the client names no ``limit``, and the most one page holds.
LIMIT_DEFAULT = 10
LIMIT_MAX = 10_000
#: Query parameters every items request may carry besides the property filters.
ITEMS_PARAMS = ("f", "lang", "bbox", "bbox-crs", "crs", "limit", "offset")
#: Longest property filter value accepted (no stored text is longer).
MAX_FILTER_VALUE = 500

#: Attributes of each site collection: what the site page shows any account, without the
#: point's own lon/lat (the geometry).
SITE_FIELDS: dict[str, tuple[str, ...]] = {
    site_type: tuple(f for f, _ in (*labels, *COMMON_LABELS) if f not in ("lon", "lat"))
    for site_type, labels in ((SiteType.ENTERPRISE.value, LEDGER_LABELS),
                              (SiteType.LIVESTOCK_FARM.value, FARM_LABELS),
                              (SiteType.SCATTERED_WORKSHOP.value, WORKSHOP_LABELS))
}
ZONES_TITLE = ("规则缓冲区（禁止/限制区域）", "Rule buffers (exclusion zones)")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
#: The audit log's entities whose changes change a collection of each kind.
CHANGE_ENTITIES: dict[str, tuple[str, ...]] = {"layer": ("layer",), "sites": ("site",),
                                               "zones": ("derived_layer",)}
#: ``Geoapp.cache`` entry of the collections' frames, and how many it keeps.
FRAMES_CACHE = "ogc_frames"
MAX_CACHED_FRAMES = 32
#: JSON Schema type of each pandas dtype kind (object columns hold text).
_SCHEMA_TYPES = {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}


@dataclass(frozen=True)
class Collection:
    """One collection: its id, where its features come from and its titles."""

    id: str
    kind: str  # "layer", "sites" or "zones"
    source: str  # the layer name, the site type or the derived layer's name
    title_zh: str
    title_en: str

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title_zh


@dataclass
class ItemsQuery:
    """The parsed query of one items request."""

    limit: int = LIMIT_DEFAULT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: str = ogc_crs.CRS84
    crs: str = ogc_crs.CRS84
    filters: dict[str, str] = field(default_factory=dict)


@dataclass
class ItemsPage:
    """One page of features (GeoJSON feature dicts in ``crs``) and how many matched."""

    features: list[dict[str, Any]]
    matched: int
    query: ItemsQuery
    fields: list[str]

    @property
    def returned(self) -> int:
        return len(self.features)

    @property
    def has_next(self) -> bool:
        return self.query.offset + self.returned < self.matched


# ------------------------------------------------------------------------- collections
def collections(app: Geoapp) -> list[Collection]:
    """Every collection: the source layers, the site types, the exclusion zones."""
    city = app.city
    out = []
    reserved = {*SITE_LAYERS, ZONES_LAYER}
    for name in app.repo.layer_names():
        spec = city.layers.get(name)
        cid = f"layer_{name}" if name in reserved else name
        out.append(Collection(cid, "layer", name, spec.title_zh if spec else name,
                              spec.title_en if spec else name))
    for cid, site_type in SITE_LAYERS.items():
        kind = SiteType(site_type)
        out.append(Collection(cid, "sites", site_type, kind.zh, kind.en))
    if ZONES_LAYER in app.repo.derived_layer_names():
        out.append(Collection(ZONES_LAYER, "zones", ZONES_LAYER, *ZONES_TITLE))
    return out


def collection(app: Geoapp, collection_id: str,
               known: list[Collection] | None = None) -> Collection:
    """The collection named ``collection_id`` among ``known`` (every collection by
    default); NotFound names the known ones."""
    if known is None:
        known = collections(app)
    for col in known:
        if col.id == collection_id:
            return col
    raise NotFound(_l("没有名为“%(name)s”的数据集；可用：%(known)s", name=collection_id,
                      known=", ".join(c.id for c in known)))


def crs_list(app: Geoapp) -> list[str]:
    """The systems every collection is offered in (OGC URIs), CRS84 first."""
    out = [ogc_crs.CRS84]
    for code in (WGS84, CGCS2000, app.metric_crs):
        uri = ogc_crs.uri_of(code)
        if uri not in out:
            out.append(uri)
    return out


@dataclass
class _Kept:
    """A collection's frame as read at audit-log id ``key``, and its facts once computed."""

    key: Any
    gdf: gpd.GeoDataFrame
    facts: dict[str, Any] | None = None


def _kept(app: Geoapp, col: Collection) -> _Kept:
    key = app.repo.last_change_id(only=CHANGE_ENTITIES[col.kind])
    frames: dict[str, _Kept] = app.cache.setdefault(FRAMES_CACHE, {})
    found = frames.get(col.id)
    if found is not None and found.key == key:
        return found
    kept = _Kept(key, read_frame(app, col))
    if len(frames) >= MAX_CACHED_FRAMES:
        frames.pop(next(iter(frames)), None)
    frames[col.id] = kept
    return kept


def frame(app: Geoapp, col: Collection) -> gpd.GeoDataFrame:
    """The collection's features (:func:`read_frame`), kept per process until the audit
    log shows a change to the collection's kind of data (one indexed query per request, so
    a change made through any server is seen at the next request). Callers must not modify
    the frame."""
    return _kept(app, col).gdf


def facts(app: Geoapp, col: Collection) -> dict[str, Any]:
    """What describing a collection needs, computed once per kept frame: ``count``, lon/lat
    ``bbox`` (None without geometry), ``geometry_type`` and ``types`` (attribute -> JSON
    Schema type and format)."""
    kept = _kept(app, col)
    if kept.facts is None:
        gdf = kept.gdf
        geoms = gdf.geometry[~gdf.geometry.isna() & ~gdf.geometry.is_empty]
        types = {}
        for name in property_names(gdf):
            kind = schema_type(gdf[name])
            types[name] = (kind, text_format(gdf[name]) if kind == "string" else None)
        kept.facts = {"count": len(gdf), "geometry_type": _geometry_type(gdf),
                      "bbox": [float(v) for v in geoms.total_bounds] if len(geoms) else None,
                      "types": types}
    return kept.facts


def read_frame(app: Geoapp, col: Collection) -> gpd.GeoDataFrame:
    """The collection's features as stored (EPSG:4326): an ``id`` column, the attributes
    it shows and the geometry, in stored order."""
    if col.kind == "layer":
        gdf = app.repo.layer(col.source)
    elif col.kind == "sites":
        keep = [f for f in SITE_FIELDS[col.source] if f != "id"]
        gdf = app.repo.sites(col.source, columns=keep)
        gdf = gdf[["id", *[c for c in keep if c in gdf.columns], gdf.geometry.name]]
    else:
        gdf = app.repo.derived_layer(col.source)
        gdf = gdf.rename(columns={"rule_id": "id"})
    if gdf.crs is not None and not gdf.crs.equals(gdf.crs.from_user_input(WGS84)):
        gdf = gdf.to_crs(WGS84)
    gdf = gdf.reset_index(drop=True)
    gdf["id"] = gdf["id"].astype(str)
    return gdf


def property_names(gdf: gpd.GeoDataFrame) -> list[str]:
    return [c for c in gdf.columns if c not in ("id", gdf.geometry.name)]


def schema_type(series: pd.Series) -> str:
    """The JSON Schema type of a column: boolean, integer, number or string."""
    kind = series.dtype.kind
    if kind == "O":
        values = series.dropna()
        if len(values) and all(isinstance(v, bool | np.bool_) for v in values):
            return "boolean"
    return _SCHEMA_TYPES.get(kind, "string")


def _geometry_type(gdf: gpd.GeoDataFrame) -> str:
    types = {t.removeprefix("Multi") for t in gdf.geom_type.dropna().unique()}
    if len(types) != 1:
        return "Geometry"
    base = types.pop()
    multi = any(t.startswith("Multi") for t in gdf.geom_type.dropna().unique())
    return f"Multi{base}" if multi else base


def summary(app: Geoapp, col: Collection, *, gettext: Translate = identity) -> dict[str, Any]:
    """What a collection's description shows: its feature count, lon/lat extent (None when
    it has no geometry), geometry type and attributes (name -> title, type, format)."""
    f = facts(app, col)
    return {"collection": col, "count": f["count"], "bbox": f["bbox"],
            "geometry_type": f["geometry_type"], "fields": _fields(f, gettext)}


def _fields(f: dict[str, Any], gettext: Translate) -> dict[str, dict[str, str]]:
    out = {}
    for name, (kind, fmt) in f["types"].items():
        spec = {"title": field_title(name, gettext), "type": kind}
        if fmt:
            spec["format"] = fmt
        out[name] = spec
    return out


def text_format(series: pd.Series) -> str | None:
    """``date`` or ``date-time`` when every value of a text column is one (ISO 8601), so a
    GIS client makes it a date field; else None."""
    values = [v for v in series.dropna() if isinstance(v, str)]
    if not values or len(values) != series.notna().sum():
        return None
    if all(_DATE.fullmatch(v) for v in values):
        return "date"
    if all(_DATE_TIME.fullmatch(v) for v in values):
        return "date-time"
    return None


def field_title(name: str, gettext: Translate = identity) -> str:
    """An attribute's header in the page's language (the vocabulary's; else its name)."""
    text = label(name)
    return gettext(text.msgid) if isinstance(text, _l) else name


def queryables(app: Geoapp, col: Collection, *, lang: str = "zh",
               gettext: Translate = identity) -> dict[str, Any]:
    """The collection's attributes as a JSON Schema (its queryables and its describedby
    schema): every attribute may be filtered on by equality (``?name=…``)."""
    f = facts(app, col)
    props: dict[str, Any] = {"id": {"title": field_title("id", gettext), "type": "string",
                                    "x-ogc-role": "id"}}
    props.update(_fields(f, gettext))
    props["geometry"] = {"x-ogc-role": "primary-geometry",
                         "format": f"geometry-{f['geometry_type'].lower()}"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "title": col.title(lang), "properties": props}


# ----------------------------------------------------------------------------- queries
def _integer(name: str, text: str | None, default: int, low: int, high: int | None) -> int:
    if text is None or text == "":
        return default
    t = text.strip()
    if not t.isascii() or not t.lstrip("+").isdigit():
        raise InvalidInput(_l("参数 %(name)s 应为整数：“%(value)s”", name=name,
                              value=t[:40]))
    value = int(t) if len(t) <= 18 else 10 ** 18  # past any count (int() refuses 4,300 digits)
    if value < low:
        raise InvalidInput(_l("参数 %(name)s 不能小于 %(min)s", name=name, min=low))
    return value if high is None else min(value, high)


def _crs_param(name: str, text: str | None, offered: list[str]) -> str:
    if text is None or text.strip() == "":
        return ogc_crs.CRS84
    uri = ogc_crs.parse_uri(text)
    if uri is None or uri not in offered:
        raise InvalidInput(_l("不支持的坐标系 %(name)s=“%(value)s”；可用：%(known)s", name=name,
                              value=text.strip()[:120], known=", ".join(offered)))
    return uri


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None or text.strip() == "":
        return None
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (4, 6) or not all(math.isfinite(v) for v in values):
        raise InvalidInput(_l("bbox 应为 4 个（或 6 个）逗号分隔的数：下角、上角，如 "
                              "113.1,35.1,113.3,35.3"))
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    a0, b0, a1, b1 = values
    if b0 > b1:
        raise InvalidInput(_l("bbox 的下角应在上角之下（第 2 个数不大于第 4 个数）"))
    return a0, b0, a1, b1


def parse_items_query(app: Geoapp, gdf: gpd.GeoDataFrame,
                      args: Mapping[str, list[str]]) -> ItemsQuery:
    """An items request's parameters (each name with its values), checked: an unknown
    parameter, a repeated one, a bad number, box or system is InvalidInput (400)."""
    props = set(property_names(gdf)) | {"id"}
    if "datetime" in args:
        raise InvalidInput(_l("不支持 datetime 参数：数据集没有时间范围；请按日期属性筛选，如 "
                              "found_date=2024-05-01"))
    unknown = [k for k in args if k not in ITEMS_PARAMS and k not in props]
    if unknown:
        raise InvalidInput(_l("未知的查询参数：%(names)s；可用：%(known)s",
                              names=", ".join(sorted(unknown))[:200],
                              known=", ".join([*ITEMS_PARAMS, *sorted(props)])))
    repeated = sorted(k for k, v in args.items() if len(v) > 1)
    if repeated:
        raise InvalidInput(_l("查询参数只能给一次：%(names)s", names=", ".join(repeated)[:200]))
    one = {k: v[0] for k, v in args.items() if v}
    offered = crs_list(app)
    filters = {k: v for k, v in one.items() if k in props}
    too_long = [k for k, v in filters.items() if len(v) > MAX_FILTER_VALUE]
    if too_long:
        raise InvalidInput(_l("筛选值过长：%(names)s", names=", ".join(too_long)))
    return ItemsQuery(limit=_integer("limit", one.get("limit"), LIMIT_DEFAULT, 1, LIMIT_MAX),
                      offset=_integer("offset", one.get("offset"), 0, 0, None),
                      bbox=_bbox(one.get("bbox")),
                      bbox_crs=_crs_param("bbox-crs", one.get("bbox-crs"), offered),
                      crs=_crs_param("crs", one.get("crs"), offered), filters=filters)


def _matches(series: pd.Series, text: str) -> np.ndarray:
    """Rows whose value equals ``text`` read as the column's type (no match when it cannot
    be read so)."""
    kind = schema_type(series)
    values = series.to_numpy(dtype=object)
    notna = ~pd.isna(series).to_numpy()
    if kind == "boolean":
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0"):
            return np.zeros(len(series), bool)
        want = low in ("true", "1")
        return notna & np.array([bool(v) == want if ok else False
                                 for v, ok in zip(values, notna, strict=True)], bool)
    if kind in ("integer", "number"):
        try:
            want = float(text)
        except ValueError:
            return np.zeros(len(series), bool)
        return notna & np.array([float(v) == want if ok else False
                                 for v, ok in zip(values, notna, strict=True)], bool)
    return notna & np.array([str(v) == text if ok else False
                             for v, ok in zip(values, notna, strict=True)], bool)


def _in_bbox(gdf: gpd.GeoDataFrame, query: ItemsQuery) -> np.ndarray:
    a0, b0, a1, b1 = query.bbox
    if query.bbox_crs == CRS84 and a0 > a1:  # crossing the antimeridian
        areas = [shapely.box(a0, b0, 180.0, b1), shapely.box(-180.0, b0, a1, b1)]
    else:
        areas = [ogc_crs.bbox_to_lonlat(query.bbox, query.bbox_crs)]
    hit = np.zeros(len(gdf), bool)
    for area in areas:
        hit[gdf.sindex.query(area, predicate="intersects")] = True
    return hit


def select(gdf: gpd.GeoDataFrame, query: ItemsQuery) -> gpd.GeoDataFrame:
    """The features that pass the box and the property filters, in stored order."""
    keep = np.ones(len(gdf), bool)
    if query.bbox is not None and len(gdf):
        keep &= _in_bbox(gdf, query)
    for name, text in query.filters.items():
        keep &= _matches(gdf[name], text)
    return gdf[keep]


def plain(value: Any) -> Any:
    """A stored value as JSON: NaN / NA as null, numpy scalars as Python numbers."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def features(gdf: gpd.GeoDataFrame, crs: str) -> list[dict[str, Any]]:
    """GeoJSON features (dicts) of ``gdf`` with the geometry in ``crs`` and its axis order."""
    names = property_names(gdf)
    geoms = gdf.geometry.to_numpy()
    present = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    out_geoms = np.full(len(geoms), None, dtype=object)
    if present.any():
        out_geoms[present] = ogc_crs.from_lonlat(geoms[present], crs)
    rows = gdf[names].to_dict("records") if names else [{} for _ in range(len(gdf))]
    return [{"type": "Feature", "id": fid,
             "geometry": mapping(geom) if geom is not None else None,
             "properties": {k: plain(v) for k, v in row.items()}}
            for fid, geom, row in zip(gdf["id"], out_geoms, rows, strict=True)]


def items(app: Geoapp, col: Collection, args: Mapping[str, list[str]]) -> ItemsPage:
    """One page of the collection's features: the query checked (InvalidInput), the box and
    the filters applied, ``limit`` features from ``offset``."""
    gdf = frame(app, col)
    query = parse_items_query(app, gdf, args)
    chosen = select(gdf, query)
    page = chosen.iloc[query.offset:query.offset + query.limit]
    return ItemsPage(features(page, query.crs), len(chosen), query, property_names(gdf))


def item(app: Geoapp, col: Collection, feature_id: str,
         args: Mapping[str, list[str]]) -> tuple[dict[str, Any], str, list[str]]:
    """One feature by id (NotFound), in the system ``crs`` names; returns the feature, the
    system's URI and the attribute names."""
    unknown = sorted(k for k in args if k not in ("f", "lang", "crs"))
    if unknown:
        raise InvalidInput(_l("未知的查询参数：%(names)s；可用：%(known)s",
                              names=", ".join(unknown)[:200], known="f, lang, crs"))
    crs = _crs_param("crs", (args.get("crs") or [None])[-1], crs_list(app))
    gdf = frame(app, col)
    hit = gdf[gdf["id"] == str(feature_id)]
    if hit.empty:
        raise NotFound(_l("数据集 %(collection)s 中没有编号为“%(id)s”的要素",
                          collection=col.id, id=str(feature_id)[:100]))
    return features(hit.iloc[:1], crs)[0], crs, property_names(gdf)
