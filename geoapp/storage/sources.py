"""Readers for the city's source files (city.toml, boundary GeoJSON, site and event CSV).

These files are the shipped, diffable truth; the database is built from them. Every reader
validates as it reads and reports *all* problems of a file at once (file, row or feature id,
column, value), because whoever fixes a data file wants the whole list, not one error per run.
Nothing is silently repaired: an invalid polygon or a date in the wrong format is an error.

The checks here are the one validation pipeline of every way data comes in: uploads (ledger,
events, layers) and form records (``storage.sites``) call the same functions, so a value
that loads from a source file passes a form and the other way round:
:func:`require_columns` (required columns), :func:`convert_frame` (types, vocabularies,
required cells, coordinate pairs in the China box of ``spatial.crs``),
:func:`points_to_wgs84` (coordinates in the system each row names) and
:func:`geometry_problems` (empty and invalid geometries). Every problem is a
:class:`~geoapp.domain.errors.Problem` with a catalogue message.
"""

from __future__ import annotations

import json
import logging
import math
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoapp.domain.city import City, LayerSpec
from geoapp.domain.errors import ConfigError, CoordinateError, Problem, ValidationFailed
from geoapp.domain.fields import rename_headers
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import (
    Classification,
    ComplaintCategory,
    SiteType,
    Stage,
    WorkshopStatus,
)
from geoapp.spatial.crs import CHINA_LAT, CHINA_LON, WGS84, array_to_wgs84

log = logging.getLogger(__name__)

CITY_FILE = "city.toml"
#: The 重污染天气应急减排清单 of the city, when its data folder has one (docs/emergency.md).
EMERGENCY_FILE = "sites/emergency.csv"
MAX_REPORTED = 200  # a file with thousands of bad rows still gives a readable report

# Column kinds: text, int, float, bool, date, datetime, lon, lat, district, or a vocab enum.
# A trailing "!" marks a column that must not be empty.
SITE_COLUMNS: dict[str, dict[str, str]] = {
    SiteType.ENTERPRISE.value: {
        "id": "text!", "seq": "int", "district": "district!", "name": "text!",
        "address": "text", "credit_code": "text", "industry": "text", "industry_code": "text",
        "employees": "int", "land_tenure": "text", "safety_assessment": "text",
        "energy_review": "text", "online_monitoring": "bool", "eia_approval": "text",
        "discharge_permit": "text", "main_problems": "text", "measures": "text",
        "classification": "classification", "deadline": "text", "progress": "text",
        "remarks": "text", "stage": "stage", "planned_start": "date", "actual_start": "date",
        "planned_completion": "date", "actual_completion": "date", "new_site_name": "text",
        "new_lon": "lon", "new_lat": "lat", "new_site_area_mu": "float", "vacated_mu": "float",
        "listed_mu": "float", "sale_revenue_wan": "float", "programme": "text",
        "lon": "lon!", "lat": "lat!", "source": "text",
    },
    SiteType.LIVESTOCK_FARM.value: {
        "id": "text!", "name": "text!", "district": "district!", "species": "text",
        "head_count": "int", "scale": "text", "industry": "text", "lon": "lon!", "lat": "lat!",
        "source": "text",
    },
    SiteType.SCATTERED_WORKSHOP.value: {
        "id": "text!", "name": "text!", "district": "district!", "industry": "text",
        "status": "workshop_status", "found_date": "date", "banned_date": "date",
        "water_cut_date": "date", "power_cut_date": "date", "materials_cleared_date": "date",
        "products_cleared_date": "date", "equipment_cleared_date": "date",
        "lon": "lon!", "lat": "lat!", "source": "text",
    },
}

TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "grid_warnings": {"grid_code": "text!", "warned_at": "datetime!", "pollutant": "text",
                      "value": "float"},
    "complaints": {"id": "text!", "received_at": "datetime!", "category": "complaint_category",
                   "lon": "float", "lat": "float", "crs": "text", "district": "text",
                   "summary": "text"},
}

LAYER_REQUIRED: tuple[str, ...] = ("id", "name", "source")
LAYER_EXTRA_REQUIRED: dict[str, tuple[str, ...]] = {
    "counties": ("adcode",),
    "hotspot_grids": ("code", "key", "county", "size_m"),
}

#: Column pairs that hold one point in WGS84 degrees (checked together, as the inspector
#: check checks a point).
COORDINATE_PAIRS: tuple[tuple[str, str], ...] = (("lon", "lat"), ("new_lon", "new_lat"))
REQUIRED = _l("必填，不能为空")
BOTH_OR_NEITHER = _l("两个坐标须同时填写或同时不填")

_TRUE = {"true", "1", "yes", "y", "t", "是", "有"}
_FALSE = {"false", "0", "no", "n", "f", "否", "无"}
_ENUMS = {"classification": Classification, "stage": Stage,
          "workshop_status": WorkshopStatus, "complaint_category": ComplaintCategory}


# ---------------------------------------------------------------------------- city file
def load_city(data_dir: str | Path) -> City:
    """Read and validate ``city.toml`` in a data folder."""
    path = Path(data_dir) / CITY_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: city file not found")
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return City.from_mapping(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}", details=exc.details) from None


def source_files(data_dir: str | Path, city: City) -> list[Path]:
    """Every file the database is built from, city.toml first (for the content hash)."""
    root = Path(data_dir)
    rel = [CITY_FILE, *(s.file for s in city.layers.values()), *city.site_files.values(),
           *city.tables.values(), *([city.unit_requirements] if city.unit_requirements else [])]
    if (root / EMERGENCY_FILE).is_file():
        rel.append(EMERGENCY_FILE)
    return [root / r for r in rel]


# ---------------------------------------------------------------------------- layers
def read_layer(data_dir: str | Path, spec: LayerSpec) -> gpd.GeoDataFrame:
    """Read one boundary layer in EPSG:4326, validated; raise ValidationFailed listing problems.

    A file in another CRS is reprojected only when it declares that CRS. Coordinates that are
    not degrees (e.g. Gauss-Krüger metres in a file that declares nothing) are an error, never
    a guess.
    """
    path = Path(data_dir) / spec.file
    if not path.is_file():
        raise ValidationFailed(
            _l("图层 %(layer)s：找不到文件 %(file)s", layer=spec.name, file=spec.file),
            details=[Problem(layer=spec.name, file=spec.file, message=_l("找不到文件"))])
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        why = _first_line(exc)
        raise ValidationFailed(
            _l("图层 %(layer)s：%(file)s 不是可读的几何文件（%(why)s）", layer=spec.name,
               file=spec.file, why=why),
            details=[Problem(layer=spec.name, file=spec.file, message=_l(
                "不是可读的几何文件（%(why)s）", why=why))]) from None
    return validate_layer_frame(gdf, spec.name, spec.file)


def validate_layer_frame(gdf: gpd.GeoDataFrame, layer: str, file: str = "") -> gpd.GeoDataFrame:
    """Check a layer's columns, CRS and geometries; return it in EPSG:4326 with string ids."""
    where = file or layer
    require_columns(gdf.columns, (*LAYER_REQUIRED, *LAYER_EXTRA_REQUIRED.get(layer, ())),
                    where, layer=layer)
    gdf = _to_wgs84(gdf, layer, where)
    gdf = gdf.copy()
    gdf["id"] = [text_value(v) for v in gdf["id"]]
    problems = geometry_problems(gdf.geometry.values, ids=gdf["id"].tolist(), layer=layer,
                                 file=where, first_feature=0)
    problems += _id_problems(gdf["id"], layer, where)
    if problems:
        raise ValidationFailed(
            _l("图层 %(layer)s：%(file)s 中有 %(count)s 个无效要素；第一个：要素“%(id)s”：%(message)s",
               layer=layer, file=where, count=len(problems), id=problems[0].id,
               message=problems[0].message),
            details=problems[:MAX_REPORTED])
    if "key" in gdf.columns:
        gdf["key"] = _convert_bool_strict(gdf["key"], layer, where)
    return gdf


def _to_wgs84(gdf: gpd.GeoDataFrame, layer: str, where: str) -> gpd.GeoDataFrame:
    if gdf.crs is not None and not gdf.crs.equals(WGS84) and not _is_crs84(gdf.crs):
        log.info("layer %s: reprojecting from %s to EPSG:4326", layer, gdf.crs.to_string())
        gdf = gdf.to_crs(4326)
    elif gdf.crs is None:
        gdf = gdf.set_crs(4326)
    else:
        gdf = gdf.set_crs(4326, allow_override=True)
    outside = bounds_beyond_degrees(gdf.geometry.values)
    if outside is not None:
        bounds = ", ".join(format(v, ".0f") for v in outside)
        raise ValidationFailed(
            _l("图层 %(layer)s：%(file)s 的坐标不是度数（范围 %(bounds)s）；请在文件中声明"
               "坐标系，或换算为 EPSG:4326", layer=layer, file=where, bounds=bounds),
            details=[Problem(layer=layer, file=where, message=_l("坐标不是度数"))])
    return gdf


def bounds_beyond_degrees(geoms: Any) -> tuple[float, float, float, float] | None:
    """The bounds of the non-empty geometries when they cannot be lon/lat degrees (beyond
    ±180/±90: metres in a file that declares or is taken to be in degrees), else None."""
    geoms = np.asarray(geoms, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not ok.any():
        return None
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms[ok]))
    if -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90:
        return None
    return minx, miny, maxx, maxy


def _is_crs84(crs: Any) -> bool:
    try:
        return crs.to_string() in ("OGC:CRS84", WGS84)
    except Exception:  # pragma: no cover - exotic CRS objects
        return False


EMPTY_GEOMETRY = _l("几何为空或缺失")


def geometry_problems(geoms: Any, *, ids: list[Any] | None = None, layer: str | None = None,
                      file: str | None = None, first_feature: int = 0) -> list[Problem]:
    """A problem for every missing, empty or invalid (GEOS: self-intersection, ring not
    closed...) geometry; features are numbered from ``first_feature``."""
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    reasons = shapely.is_valid_reason(np.where(missing, None, geoms))
    out: list[Problem] = []
    for i in np.flatnonzero(missing | (reasons != "Valid Geometry")):
        msg = EMPTY_GEOMETRY if missing[i] else _l("几何无效：%(reason)s", reason=reasons[i])
        out.append(Problem(layer=layer, file=file, feature=int(i) + first_feature,
                           id=None if ids is None else ids[i], message=msg))
    return out


def _id_problems(ids: pd.Series, layer: str, where: str) -> list[Problem]:
    out = [Problem(layer=layer, file=where, feature=int(i), id="", message=_l("编号为空"))
           for i in np.flatnonzero(ids.eq("").to_numpy())]
    dup = ids[ids.ne("") & ids.duplicated(keep="first")]
    out += [Problem(layer=layer, file=where, feature=int(i), id=v, message=_l("编号重复"))
            for i, v in zip(dup.index, dup, strict=True)]
    return out


def _convert_bool_strict(col: pd.Series, layer: str, where: str) -> pd.Series:
    values, bad = _convert(col.map(text_value), "bool")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        message = _l("key 应为 true 或 false")
        raise ValidationFailed(
            _l("图层 %(layer)s：%(file)s 要素 %(feature)s：%(message)s", layer=layer, file=where,
               feature=i, message=message),
            details=[Problem(layer=layer, file=where, feature=i, message=message)])
    return values.astype(bool) if not values.isna().any() else values


# ---------------------------------------------------------------------------- sites
def read_sites(data_dir: str | Path, city: City) -> gpd.GeoDataFrame:
    """All sites of all types in one frame with a ``site_type`` column, points from lon/lat."""
    frames = []
    problems: list[Problem] = []
    for site_type, rel in city.site_files.items():
        raw = _read_csv(Path(data_dir) / rel, rel)
        raw = raw.rename(columns=rename_headers(raw.columns, SITE_COLUMNS[site_type]))
        clean, errs = convert_frame(raw, SITE_COLUMNS[site_type], rel, city)
        problems += errs
        clean.insert(0, "site_type", site_type)
        frames.append(clean)
    if frames:
        sites = pd.concat(frames, ignore_index=True)
    else:
        sites = pd.DataFrame({"site_type": pd.Series(dtype=str), "id": pd.Series(dtype=str)})
    problems += _duplicate_site_ids(sites)
    if problems:
        p = problems[0]
        raise ValidationFailed(
            _l("场所文件中有 %(count)s 处无效值；第一处：%(file)s 第 %(row)s 行 %(column)s 列："
               "%(message)s", count=len(problems), file=p.file, row=p.row, column=p.column,
               message=p.message), details=problems[:MAX_REPORTED])
    sites = normalise_site_dtypes(sites)
    geometry = gpd.points_from_xy(sites["lon"], sites["lat"], crs=4326)
    return gpd.GeoDataFrame(sites, geometry=geometry, crs=4326)


def site_column_kinds() -> dict[str, str]:
    """Kind of every site column over all site types (the union the database stores)."""
    kinds: dict[str, str] = {"site_type": "text"}
    for cols in SITE_COLUMNS.values():
        for col, kind in cols.items():
            kinds.setdefault(col, kind.rstrip("!"))
    return kinds


def normalise_site_dtypes(sites: pd.DataFrame) -> pd.DataFrame:
    """Give the union frame one dtype per column whatever site types are present."""
    sites = sites.copy()
    for col, kind in site_column_kinds().items():
        if col not in sites.columns:
            sites[col] = None
        sites[col] = _final_dtype(sites[col], kind)
    return sites


def _duplicate_site_ids(sites: pd.DataFrame) -> list[Problem]:
    dup = sites[sites["id"].ne("") & sites["id"].duplicated(keep="first")]
    return [Problem(file=f"{row.site_type} sites", row="", column="id", value=row.id,
                    message=_l("编号已被另一个场所使用")) for row in dup.itertuples()]


# ---------------------------------------------------------------------------- tables
def read_table(data_dir: str | Path, city: City, name: str) -> pd.DataFrame:
    """Read one event table (grid_warnings, complaints) with typed, validated columns."""
    if name not in city.tables:
        raise ConfigError(_l("城市文件中没有数据表“%(name)s”；已有：%(known)s", name=name,
                             known=", ".join(city.tables)))
    rel = city.tables[name]
    raw = _read_csv(Path(data_dir) / rel, rel)
    raw = raw.rename(columns=rename_headers(raw.columns, TABLE_COLUMNS.get(name, {})))
    clean, problems = convert_frame(raw, TABLE_COLUMNS.get(name, {}), rel, city)
    if name == "complaints":
        problems += complaint_points(clean, city.metric_crs or None, rel)[1]
    if problems:
        p = problems[0]
        raise ValidationFailed(
            _l("%(file)s：%(count)s 处无效值；第一处：第 %(row)s 行 %(column)s 列：%(message)s",
               file=rel, count=len(problems), row=p.row, column=p.column, message=p.message),
            details=problems[:MAX_REPORTED])
    return clean


def complaint_points(df: pd.DataFrame, metric_crs: str | None = None, file: str = "complaints",
                     *, row_base: int = 2) -> tuple[gpd.GeoSeries, list[Problem]]:
    """WGS84 points for complaints from their lon/lat in the system their ``crs`` names.

    Complaints come from the hotline with coordinates from phones (GCJ-02 in WeChat, BD-09 in
    Baidu) or GPS; each row names its system and is converted exactly, never guessed. Rows
    without coordinates get no point; a bad or unnamed system is a row problem.
    """
    geoms = np.full(len(df), None, dtype=object)
    if not {"lon", "lat"} <= set(df.columns) or df.empty:
        return gpd.GeoSeries(geoms, index=df.index, crs=4326), []
    names = df["crs"] if "crs" in df.columns else pd.Series("", index=df.index)
    lon, lat, problems = points_to_wgs84(
        pd.to_numeric(df["lon"], errors="coerce"), pd.to_numeric(df["lat"], errors="coerce"),
        names.fillna("").astype(str).tolist(), metric_crs, file=file,
        rows=[i + row_base for i in range(len(df))])
    ok = np.isfinite(lon)
    geoms[ok] = np.asarray(gpd.points_from_xy(lon[ok], lat[ok]), dtype=object)
    return gpd.GeoSeries(geoms, index=df.index, crs=4326), problems


def points_to_wgs84(x: Any, y: Any, systems: list[str], metric_crs: str | None, *, file: str,
                    rows: list[Any], column: str = "lon/lat", crs_column: str = "crs"
                    ) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """Row i's point (x[i], y[i]) in the system ``systems[i]`` names, as WGS84 lon/lat.

    NaN where a row gives no point or a bad one. Problems (on sheet row ``rows[i]``): half a
    point, a point without its system, an unknown system, and every point ``spatial.crs``
    refuses (outside China, swapped, projected metres as degrees...), with its message.
    """
    xa = np.asarray(pd.to_numeric(pd.Series(list(x), dtype=object), errors="coerce"), float)
    ya = np.asarray(pd.to_numeric(pd.Series(list(y), dtype=object), errors="coerce"), float)
    names = np.asarray([str(n or "").strip() for n in systems], dtype=object)
    lon, lat = np.full(len(xa), np.nan), np.full(len(xa), np.nan)
    problems: list[Problem] = []
    has_x, has_y = ~np.isnan(xa), ~np.isnan(ya)
    for i in np.flatnonzero(has_x != has_y):
        problems.append(Problem(file=file, row=_row(rows[i]), column=column,
                                value=_pair_text(xa[i], ya[i]), message=BOTH_OR_NEITHER))
    both = has_x & has_y
    for name in sorted(set(names[both])):
        sel = np.flatnonzero(both & (names == name))
        if not name:
            problems += [Problem(file=file, row=_row(rows[i]), column=crs_column, value="",
                                 message=_l("给了坐标，但没有注明坐标系（wgs84、gcj02、bd09、gk 或 "
                                            "EPSG:代码）")) for i in sel]
            continue
        try:
            px, py, bad, reasons = array_to_wgs84(xa[sel], ya[sel], name, metric_crs)
        except CoordinateError as exc:
            problems += [Problem(file=file, row=_row(rows[i]), column=crs_column, value=name,
                                 message=exc.message) for i in sel]
            continue
        problems += [Problem(file=file, row=_row(rows[sel[k]]), column=column,
                             value=_pair_text(xa[sel[k]], ya[sel[k]]), message=msg)
                     for k, msg in reasons.items()]
        lon[sel[~bad]], lat[sel[~bad]] = px[~bad], py[~bad]
    problems.sort(key=lambda p: p.row if isinstance(p.row, int) else 0)
    return lon, lat, problems


def _pair_text(x: float, y: float) -> str:
    return ", ".join("" if v != v else f"{v:.10g}" for v in (x, y))


def _row(row: Any) -> Any:
    return int(row) if isinstance(row, (int, np.integer)) else row


def _read_csv(path: Path, rel: str) -> pd.DataFrame:
    if not path.is_file():
        raise ValidationFailed(_l("%(file)s：找不到文件", file=rel),
                               details=[Problem(file=rel, row="", column="",
                                                message=_l("找不到文件"))])
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                           skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        why = _first_line(exc)
        raise ValidationFailed(
            _l("%(file)s：不是可读的 UTF-8 CSV 文件（%(why)s）", file=rel, why=why),
            details=[Problem(file=rel, row="", column="", message=_l(
                "不是可读的 UTF-8 CSV 文件（%(why)s）", why=why))]) from None


# ---------------------------------------------------------------------------- conversion
def convert_frame(raw: pd.DataFrame, columns: Mapping[str, str], file: str,
                  city: City | None = None, *, row_base: int = 2
                  ) -> tuple[pd.DataFrame, list[Problem]]:
    """Convert a frame of values to typed columns; return it and a row-by-row problem list.

    Rows of a CSV are numbered as a spreadsheet shows them (header = row 1, so
    ``row_base=2``); records given in a list are numbered from 1. Columns not in the schema
    are kept as text, so a city can carry extra information without a code change. A
    ``lon``/``lat`` pair (and ``new_lon``/``new_lat``) is one WGS84 point, checked by the
    same function as the inspector's check, so a site that loads passes the check.
    """
    require_columns(raw.columns, tuple(columns), file)
    out = pd.DataFrame(index=raw.index)
    problems: list[Problem] = []
    for col in raw.columns:
        spec = columns.get(col, "text")
        kind, required = spec.rstrip("!"), spec.endswith("!")
        text = raw[col].map(text_value)
        values, bad = _convert(text, kind, city)
        for i in np.flatnonzero(bad.to_numpy()):
            problems.append(Problem(file=file, row=_row(raw.index[i] + row_base), column=col,
                                    value=text.iat[i], message=_explain(kind, city)))
        if required:
            for i in np.flatnonzero(text.eq("").to_numpy()):
                problems.append(Problem(file=file, row=_row(raw.index[i] + row_base),
                                        column=col, value="", message=REQUIRED))
        out[col] = values
    problems += _pair_problems(raw, out, columns, file, row_base)
    problems.sort(key=lambda p: (p.row if isinstance(p.row, int) else 0))
    return out, problems


def _pair_problems(raw: pd.DataFrame, out: pd.DataFrame, columns: Mapping[str, str],
                   file: str, row_base: int) -> list[Problem]:
    """Half a point (lon without lat) is an error; a whole point in degrees must be one
    the inspector check accepts (in China, not swapped, not metres)."""
    problems = []
    for lon, lat in COORDINATE_PAIRS:
        if lon not in raw.columns or lat not in raw.columns:
            continue
        a = raw[lon].map(text_value).eq("")
        b = raw[lat].map(text_value).eq("")
        for i in np.flatnonzero((a ^ b).to_numpy()):
            problems.append(Problem(file=file, row=_row(raw.index[i] + row_base),
                                    column=f"{lon}/{lat}", value="", message=BOTH_OR_NEITHER))
        kinds = (columns.get(lon, "").rstrip("!"), columns.get(lat, "").rstrip("!"))
        if kinds != ("lon", "lat"):
            continue
        x = out[lon].to_numpy(dtype=float)
        y = out[lat].to_numpy(dtype=float)
        whole = np.flatnonzero(~np.isnan(x) & ~np.isnan(y))
        if not len(whole):
            continue
        _, _, bad, reasons = array_to_wgs84(x[whole], y[whole], "wgs84")
        for k, message in reasons.items():
            i = whole[k]
            lon_ok = CHINA_LON[0] <= x[i] <= CHINA_LON[1]
            lat_ok = CHINA_LAT[0] <= y[i] <= CHINA_LAT[1]
            col = lat if lon_ok and not lat_ok else lon if lat_ok and not lon_ok \
                else f"{lon}/{lat}"
            value = raw[col].iat[i] if col in raw.columns else _pair_text(x[i], y[i])
            problems.append(Problem(file=file, row=_row(raw.index[i] + row_base), column=col,
                                    value=text_value(value), message=message))
        for c in (lon, lat):  # no bad point survives into the frame
            out.loc[out.index[whole[bad]], c] = np.nan
    return problems


def require_columns(present: Any, required: tuple[str, ...], where: str,
                    layer: str | None = None) -> None:
    """ValidationFailed naming every required column ``present`` lacks."""
    missing = [c for c in required if c not in set(present)]
    if missing:
        names = ", ".join(missing)
        message = (_l("图层 %(layer)s：%(file)s：缺少列 %(columns)s", layer=layer, file=where,
                      columns=names) if layer else
                   _l("%(file)s：缺少列 %(columns)s", file=where, columns=names))
        raise ValidationFailed(message, details=[
            Problem(file=where, column=c, message=_l("缺少此列")) for c in missing])


def text_value(v: Any) -> str:
    """A cell as the text a reader compares: empty for missing, no float tail, stripped."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _convert(text: pd.Series, kind: str, city: City | None = None) -> tuple[pd.Series, pd.Series]:
    """Return (typed values, mask of non-empty values that failed to convert)."""
    empty = text.eq("")
    if kind == "text":
        return text.astype(object), pd.Series(False, index=text.index)
    if kind in ("int", "float", "lon", "lat"):
        num = pd.to_numeric(text.where(~empty), errors="coerce")
        bad = ~empty & num.isna()
        if kind == "int":
            bad |= ~empty & num.notna() & (num % 1 != 0)
            num = num.where(~bad).round().astype("Int64")
        return num.astype("Int64" if kind == "int" else float), bad
    parse = _PARSERS.get(kind) or _enum_parser(kind, city)
    values = text.map(lambda t: None if t == "" else parse(t))
    bad = ~empty & values.isna()
    if kind == "bool":
        return values.astype("boolean"), bad
    return values.astype(object), bad


def _parse_or_none(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    def wrapped(t: str) -> Any:
        try:
            return fn(t)
        except (ValueError, TypeError):
            return None
    return wrapped


def _bool(t: str) -> bool | None:
    low = t.lower()
    return True if low in _TRUE else False if low in _FALSE else None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "bool": _bool,
    "date": _parse_or_none(lambda t: date.fromisoformat(t).isoformat()),
    "datetime": _parse_or_none(
        lambda t: datetime.fromisoformat(t).replace(tzinfo=None).isoformat(timespec="seconds")),
}


def _enum_parser(kind: str, city: City | None) -> Callable[[str], Any]:
    if kind == "district":
        if city is None:
            return lambda t: t
        names = {c.name: c.name for c in city.counties}
        names.update({c.full_name: c.name for c in city.counties if c.full_name})
        return names.get
    enum = _ENUMS.get(kind)
    if enum is None:
        raise ConfigError(f"unknown column kind {kind!r}")
    return _parse_or_none(lambda t: enum.parse(t).value)


def _explain(kind: str, city: City | None) -> str:
    if kind == "district" and city is not None:
        return _l("不是%(city)s的区县：应为以下之一：%(allowed)s", city=city.name,
                  allowed="、".join(city.county_names))
    if kind in _ENUMS:
        return _l("应为以下之一：%(allowed)s", allowed=", ".join(m.value for m in _ENUMS[kind]))
    if kind == "int":
        return _l("不是整数")
    if kind in ("float", "lon", "lat"):
        return _l("不是数字")
    if kind == "bool":
        return _l("应为 true 或 false")
    if kind == "date":
        return _l("不是 ISO 日期（YYYY-MM-DD）")
    if kind == "datetime":
        return _l("不是 ISO 日期时间（YYYY-MM-DDTHH:MM[:SS]）")
    return _l("值无效")


def _final_dtype(col: pd.Series, kind: str) -> pd.Series:
    if kind == "int":
        return pd.to_numeric(col, errors="coerce").astype("Int64")
    if kind in ("float", "lon", "lat"):
        return pd.to_numeric(col, errors="coerce").astype(float)
    if kind == "bool":
        return col.astype("boolean")
    if kind in ("date", "datetime"):
        return col.astype(object).where(col.notna(), None)
    return col.astype(object).where(col.notna(), "")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def to_jsonable(value: Any) -> Any:
    """Plain Python for JSON: NaN and pd.NA become None, numpy scalars become Python ones."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, Mapping):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """JSON text for the audit log, keeping Chinese readable."""
    return json.dumps(to_jsonable(value), ensure_ascii=False, sort_keys=True)
