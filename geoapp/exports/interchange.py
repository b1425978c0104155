"""Write a layer for other GIS tools: GeoPackage, GeoJSON, KML and zipped Shapefile.

Colleagues open the enterprise and zone layers in QGIS/ArcGIS, Google Earth and Chinese field
apps, which each want a different format. The traps are in the old formats: a Shapefile keeps
field names to 10 characters and shows Chinese as mojibake unless a ``.cpg`` names UTF-8, and
Google Earth only shows a placemark's ``name`` and ``description``. Frames arrive in EPSG:4326.
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

log = logging.getLogger(__name__)

#: Format name -> file extension of the download.
FORMATS: dict[str, str] = {"gpkg": ".gpkg", "geojson": ".geojson", "kml": ".kml", "shp": ".zip"}

SHP_MAX = 10
#: Readable short names for the long field names of the site and zone tables.
SHP_NAMES: dict[str, str] = {
    "credit_code": "credit_cd", "industry_code": "ind_code", "land_tenure": "land_ten",
    "safety_assessment": "safety", "energy_review": "energy_rev",
    "online_monitoring": "online_mon", "eia_approval": "eia_appr",
    "discharge_permit": "permit_no", "main_problems": "problems", "classification": "classif",
    "planned_start": "plan_start", "actual_start": "act_start",
    "planned_completion": "plan_done", "actual_completion": "act_done",
    "new_site_name": "new_name", "new_site_area_mu": "new_area", "sale_revenue_wan": "revenue_wn",
    "banned_date": "banned_dt", "water_cut_date": "water_cut", "power_cut_date": "power_cut",
    "materials_cleared_date": "materials", "products_cleared_date": "products",
    "equipment_cleared_date": "equipment", "feature_name": "feat_name",
    "feature_id": "feat_id", "distance_m": "dist_m",
}


def shapefile_field_names(columns: Iterable[str]) -> dict[str, str]:
    """Map every column to a unique name of at most 10 characters (readable where known)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for col in columns:
        short = SHP_NAMES.get(col, col)[:SHP_MAX]
        n = 1
        while short.lower() in used:
            suffix = f"_{n}"
            short = SHP_NAMES.get(col, col)[:SHP_MAX - len(suffix)] + suffix
            n += 1
        used.add(short.lower())
        out[col] = short
    return out


def write_layer(gdf: gpd.GeoDataFrame, path: str | Path, fmt: str, *, layer: str,
                title: str = "", descriptions: Mapping[str, str] | None = None) -> Path:
    """Write ``gdf`` as ``fmt`` (gpkg, geojson, kml, shp) to ``path``; return the path.

    ``descriptions`` maps columns to the labels used in KML descriptions (default: the
    column names).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = _plain(gdf.to_crs(4326) if gdf.crs is not None else gdf.set_crs(4326))
    if path.exists():
        path.unlink()
    if fmt == "gpkg":
        frame.to_file(path, driver="GPKG", layer=layer)
    elif fmt == "geojson":
        frame.to_file(path, driver="GeoJSON")
    elif fmt == "kml":
        _kml(frame, descriptions or {}).to_file(path, driver="LIBKML", layer=title or layer)
    else:
        _shapefile_zip(frame, path, layer)
    log.info("layer %s written as %s to %s (%d features)", layer, fmt, path, len(frame))
    return path


def _plain(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Nullable pandas dtypes as plain ones every OGR driver takes (NA becomes null)."""
    out = gdf.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        s = out[col]
        if isinstance(s.dtype, pd.BooleanDtype):
            out[col] = s.astype(object).where(s.notna(), None)
        elif pd.api.types.is_integer_dtype(s.dtype) and s.isna().any():
            out[col] = s.astype(float)
        elif isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def _kml(gdf: gpd.GeoDataFrame, labels: Mapping[str, str]) -> gpd.GeoDataFrame:
    """Add the Name and Description Google Earth shows; the other fields stay as data."""
    geom = gdf.geometry.name
    cols = [c for c in gdf.columns if c not in (geom, "name", "Name", "Description")]
    names = gdf["name"] if "name" in gdf.columns else gdf.get("id", pd.Series("", index=gdf.index))

    def describe(row: pd.Series) -> str:
        return "\n".join(f"{labels.get(c, c)}：{row[c]}" for c in cols
                         if row[c] is not None and str(row[c]) not in ("", "nan", "None"))

    out = gdf.drop(columns=[c for c in ("name",) if c in gdf.columns])
    out.insert(0, "Description", gdf.apply(describe, axis=1) if len(gdf) else [])
    out.insert(0, "Name", names.fillna("").astype(str))
    return out


def _shapefile_zip(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    """Shapefile parts plus a field-name list, zipped; the .cpg says UTF-8, the .prj WGS84."""
    geom = gdf.geometry.name
    mapping = shapefile_field_names(c for c in gdf.columns if c != geom)
    frame = gdf.rename(columns=mapping)
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / f"{layer}.shp"
        frame.to_file(shp, driver="ESRI Shapefile", encoding="UTF-8")
        cpg = shp.with_suffix(".cpg")
        if not cpg.exists() or cpg.read_text().strip().upper() not in ("UTF-8", "UTF8"):
            cpg.write_text("UTF-8")
        fields = Path(tmp) / f"{layer}_fields.csv"
        pd.DataFrame({"shapefile_field": list(mapping.values()),
                      "full_name": list(mapping)}).to_csv(fields, index=False,
                                                          encoding="utf-8-sig")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(tmp).iterdir()):
                zf.write(part, arcname=part.name)
