"""Readers for the city's source files (city.toml, boundary GeoJSON, site and event CSV).

These files are the shipped, diffable truth; the database is built from them. Every reader
validates as it reads and reports *all* problems of a file at once (file, row or feature id,
column, value), because whoever fixes a data file wants the whole list, not one error per run.
Nothing is silently repaired: an invalid polygon or a date in the wrong format is an error.
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
from geoapp.domain.errors import ConfigError, CoordinateError, ValidationFailed
from geoapp.domain.vocab import (
    Classification,
    ComplaintCategory,
    SiteType,
    Stage,
    WorkshopStatus,
)
from geoapp.spatial.crs import WGS84, array_to_wgs84

log = logging.getLogger(__name__)

CITY_FILE = "city.toml"
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

# China's extent, loosely: a point outside it is a typo, swapped lon/lat or projected metres.
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)

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
           *city.tables.values()]
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
        raise ValidationFailed(f"layer {spec.name}: file {spec.file} not found",
                               details=[{"layer": spec.name, "file": spec.file,
                                         "message": "file not found"}])
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise ValidationFailed(f"layer {spec.name}: {spec.file} is not a readable geometry file "
                               f"({_first_line(exc)})",
                               details=[{"layer": spec.name, "file": spec.file,
                                         "message": str(exc)}]) from None
    return validate_layer_frame(gdf, spec.name, spec.file)


def validate_layer_frame(gdf: gpd.GeoDataFrame, layer: str, file: str = "") -> gpd.GeoDataFrame:
    """Check a layer's columns, CRS and geometries; return it in EPSG:4326 with string ids."""
    where = file or layer
    _require_columns(gdf.columns, (*LAYER_REQUIRED, *LAYER_EXTRA_REQUIRED.get(layer, ())),
                     where, layer=layer)
    gdf = _to_wgs84(gdf, layer, where)
    gdf = gdf.copy()
    gdf["id"] = [_text_value(v) for v in gdf["id"]]
    problems = _geometry_problems(gdf, layer, where)
    problems += _id_problems(gdf["id"], layer, where)
    if problems:
        raise ValidationFailed(
            f"layer {layer}: {len(problems)} invalid feature(s) in {where}; first: "
            f"feature {problems[0]['id']!r}: {problems[0]['message']}",
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
    if len(gdf) and not gdf.geometry.is_empty.all():
        minx, miny, maxx, maxy = gdf.total_bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise ValidationFailed(
                f"layer {layer}: coordinates in {where} are not degrees (bounds {minx:.0f}, "
                f"{miny:.0f}, {maxx:.0f}, {maxy:.0f}); declare the file's CRS or convert it "
                "to EPSG:4326",
                details=[{"layer": layer, "file": where, "message": "coordinates not degrees"}])
    return gdf


def _is_crs84(crs: Any) -> bool:
    try:
        return crs.to_string() in ("OGC:CRS84", WGS84)
    except Exception:  # pragma: no cover - exotic CRS objects
        return False


def _geometry_problems(gdf: gpd.GeoDataFrame, layer: str, where: str) -> list[dict]:
    geoms = gdf.geometry.values
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    reasons = shapely.is_valid_reason(np.where(missing, None, geoms))
    out: list[dict] = []
    for i in np.flatnonzero(missing | (reasons != "Valid Geometry")):
        msg = "missing or empty geometry" if missing[i] else f"invalid geometry: {reasons[i]}"
        out.append({"layer": layer, "file": where, "feature": int(i), "id": gdf["id"].iat[i],
                    "message": msg})
    return out


def _id_problems(ids: pd.Series, layer: str, where: str) -> list[dict]:
    out = [{"layer": layer, "file": where, "feature": int(i), "id": "", "message": "empty id"}
           for i in np.flatnonzero(ids.eq("").to_numpy())]
    dup = ids[ids.ne("") & ids.duplicated(keep="first")]
    out += [{"layer": layer, "file": where, "feature": int(i), "id": v,
             "message": "duplicate id"} for i, v in zip(dup.index, dup, strict=True)]
    return out


def _convert_bool_strict(col: pd.Series, layer: str, where: str) -> pd.Series:
    values, bad = _convert(col.map(_text_value), "bool")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationFailed(f"layer {layer}: {where} feature {i}: key must be true or false",
                               details=[{"layer": layer, "file": where, "feature": i,
                                         "message": "key must be true or false"}])
    return values.astype(bool) if not values.isna().any() else values


# ---------------------------------------------------------------------------- sites
def read_sites(data_dir: str | Path, city: City) -> gpd.GeoDataFrame:
    """All sites of all types in one frame with a ``site_type`` column, points from lon/lat."""
    frames = []
    problems: list[dict] = []
    for site_type, rel in city.site_files.items():
        raw = _read_csv(Path(data_dir) / rel, rel)
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
            f"{len(problems)} invalid value(s) in the site files; first: {p['file']} row "
            f"{p['row']}, column {p['column']}: {p['message']}", details=problems[:MAX_REPORTED])
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


def _duplicate_site_ids(sites: pd.DataFrame) -> list[dict]:
    dup = sites[sites["id"].ne("") & sites["id"].duplicated(keep="first")]
    return [{"file": f"{row.site_type} sites", "row": "", "column": "id", "value": row.id,
             "message": "id used by another site"} for row in dup.itertuples()]


# ---------------------------------------------------------------------------- tables
def read_table(data_dir: str | Path, city: City, name: str) -> pd.DataFrame:
    """Read one event table (grid_warnings, complaints) with typed, validated columns."""
    if name not in city.tables:
        raise ConfigError(f"city file names no table {name!r}; known: {', '.join(city.tables)}")
    rel = city.tables[name]
    raw = _read_csv(Path(data_dir) / rel, rel)
    clean, problems = convert_frame(raw, TABLE_COLUMNS.get(name, {}), rel, city)
    if name == "complaints":
        problems += complaint_points(clean, city.metric_crs or None, rel)[1]
    if problems:
        p = problems[0]
        raise ValidationFailed(f"{rel}: {len(problems)} invalid value(s); first: row {p['row']}, "
                               f"column {p['column']}: {p['message']}",
                               details=problems[:MAX_REPORTED])
    return clean


def complaint_points(df: pd.DataFrame, metric_crs: str | None = None, file: str = "complaints",
                     *, row_base: int = 2) -> tuple[gpd.GeoSeries, list[dict]]:
    """WGS84 points for complaints from their lon/lat in the system their ``crs`` names.

    Complaints come from the hotline with coordinates from phones (GCJ-02 in WeChat, BD-09 in
    Baidu) or GPS; each row names its system and is converted exactly, never guessed. Rows
    without coordinates get no point; a bad or unnamed system is a row problem.
    """
    geoms = np.full(len(df), None, dtype=object)
    problems: list[dict] = []
    if not {"lon", "lat"} <= set(df.columns) or df.empty:
        return gpd.GeoSeries(geoms, index=df.index, crs=4326), problems
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float)
    names = (df["crs"] if "crs" in df.columns else pd.Series("", index=df.index))
    names = names.fillna("").astype(str).str.strip().to_numpy()
    has = ~(np.isnan(lon) & np.isnan(lat))
    for crs_name in np.unique(names[has]):
        sel = has & (names == crs_name)
        rows = np.flatnonzero(sel)
        if not crs_name:
            problems += [_problem(file, r + row_base, "crs", "", "coordinates given without "
                                  "naming their system (wgs84, gcj02, bd09, gk, EPSG:n)")
                         for r in rows]
            continue
        try:
            x, y, bad, reasons = array_to_wgs84(lon[sel], lat[sel], crs_name, metric_crs)
        except CoordinateError as exc:
            problems += [_problem(file, r + row_base, "crs", crs_name, exc.message)
                         for r in rows]
            continue
        problems += [_problem(file, rows[i] + row_base, "lon/lat", f"{lon[rows[i]]}, "
                              f"{lat[rows[i]]}", msg) for i, msg in reasons.items()]
        pts = gpd.points_from_xy(x, y)
        geoms[rows[~bad]] = np.asarray(pts, dtype=object)[~bad]
    return gpd.GeoSeries(geoms, index=df.index, crs=4326), problems


def _read_csv(path: Path, rel: str) -> pd.DataFrame:
    if not path.is_file():
        raise ValidationFailed(f"{rel}: file not found",
                               details=[{"file": rel, "row": "", "column": "",
                                         "message": "file not found"}])
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                           skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ValidationFailed(f"{rel}: not a readable UTF-8 CSV file ({_first_line(exc)})",
                               details=[{"file": rel, "row": "", "column": "",
                                         "message": str(exc)}]) from None


# ---------------------------------------------------------------------------- conversion
def convert_frame(raw: pd.DataFrame, columns: Mapping[str, str], file: str,
                  city: City | None = None, *, row_base: int = 2
                  ) -> tuple[pd.DataFrame, list[dict]]:
    """Convert a frame of values to typed columns; return it and a row-by-row problem list.

    Rows of a CSV are numbered as a spreadsheet shows them (header = row 1, so
    ``row_base=2``); records given in a list are numbered from 1. Columns not in the schema
    are kept as text, so a city can carry extra information without a code change.
    """
    _require_columns(raw.columns, tuple(columns), file)
    out = pd.DataFrame(index=raw.index)
    problems: list[dict] = []
    for col in raw.columns:
        spec = columns.get(col, "text")
        kind, required = spec.rstrip("!"), spec.endswith("!")
        text = raw[col].map(_text_value)
        values, bad = _convert(text, kind, city)
        for i in np.flatnonzero(bad.to_numpy()):
            problems.append(_problem(file, raw.index[i] + row_base, col, text.iat[i],
                                     _explain(kind, city)))
        if required:
            for i in np.flatnonzero(text.eq("").to_numpy()):
                problems.append(_problem(file, raw.index[i] + row_base, col, "",
                                         "required, but empty"))
        out[col] = values
    problems += _pair_problems(raw, file, row_base)
    problems.sort(key=lambda p: (p["row"] if isinstance(p["row"], int) else 0))
    return out, problems


def _pair_problems(raw: pd.DataFrame, file: str, row_base: int) -> list[dict]:
    """lon without lat (or new_lon without new_lat) is a half coordinate: an error."""
    out = []
    for lon, lat in (("lon", "lat"), ("new_lon", "new_lat")):
        if lon in raw.columns and lat in raw.columns:
            a = raw[lon].map(_text_value).eq("")
            b = raw[lat].map(_text_value).eq("")
            for i in np.flatnonzero((a ^ b).to_numpy()):
                out.append(_problem(file, raw.index[i] + row_base, f"{lon}/{lat}", "",
                                    "give both coordinates or neither"))
    return out


def _problem(file: str, row: Any, column: str, value: str, message: str) -> dict:
    row = int(row) if isinstance(row, (int, np.integer)) else row
    return {"file": file, "row": row, "column": column, "value": value, "message": message}


def _require_columns(present: Any, required: tuple[str, ...], where: str,
                     layer: str | None = None) -> None:
    missing = [c for c in required if c not in set(present)]
    if missing:
        prefix = f"layer {layer}: " if layer else ""
        raise ValidationFailed(f"{prefix}{where}: missing column(s) {', '.join(missing)}",
                               details=[{"file": where, "column": c, "message": "missing column"}
                                        for c in missing])


def _text_value(v: Any) -> str:
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
        elif kind in ("lon", "lat"):
            lo, hi = CHINA_LON if kind == "lon" else CHINA_LAT
            bad |= num.notna() & ~num.between(lo, hi)
            num = num.where(~bad).astype(float)
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
        return f"not a county of {city.name}: expected one of {', '.join(city.county_names)}"
    if kind in _ENUMS:
        return f"expected one of {', '.join(m.value for m in _ENUMS[kind])}"
    return {
        "int": "not a whole number", "float": "not a number", "bool": "expected true or false",
        "date": "not an ISO date (YYYY-MM-DD)",
        "datetime": "not an ISO date-time (YYYY-MM-DDTHH:MM[:SS])",
        "lon": f"longitude must be a number in {CHINA_LON[0]:g}..{CHINA_LON[1]:g} (WGS84 degrees)",
        "lat": f"latitude must be a number in {CHINA_LAT[0]:g}..{CHINA_LAT[1]:g} (WGS84 degrees)",
    }.get(kind, "invalid value")


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
