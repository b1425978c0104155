"""Download a layer for other tools: enterprises, farms, workshops or any zone layer.

One use case: name a layer and a format (gpkg, geojson, kml, shp) and get a file. Site layers
carry only their own type's columns (the sites table is the union of every type's), without
the storage bookkeeping, so colleagues get the same fields the source CSV has.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd

from geoapp.domain.errors import InvalidInput, NotFound
from geoapp.domain.fields import FIELDS
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import Classification, SiteType, Stage, WorkshopStatus
from geoapp.exports.interchange import FORMATS, write_layer
from geoapp.services import Geoapp
from geoapp.storage.sources import SITE_COLUMNS

log = logging.getLogger(__name__)

#: Download names of the site layers -> site type.
SITE_LAYERS: dict[str, str] = {
    "enterprises": SiteType.ENTERPRISE.value,
    "farms": SiteType.LIVESTOCK_FARM.value,
    "workshops": SiteType.SCATTERED_WORKSHOP.value,
}
#: Column labels of KML descriptions: the vocabulary's Chinese headers.
_LABELS: dict[str, str] = {name: f.zh for name, f in FIELDS.items()}


def layer_choices(app: Geoapp) -> list[dict[str, str]]:
    """Every downloadable layer: name and Chinese title (sites first, then city.toml order)."""
    out = [{"name": n, "title": SiteType(t).zh} for n, t in SITE_LAYERS.items()]
    out += [{"name": n, "title": app.city.layers[n].title_zh if n in app.city.layers else n}
            for n in app.repo.layer_names()]
    return out


def layer_frame(app: Geoapp, name: str) -> tuple[gpd.GeoDataFrame, str]:
    """The layer's features in EPSG:4326 and its Chinese title; NotFound for unknown names."""
    site_type = SITE_LAYERS.get(name)
    if site_type is None and name in SITE_COLUMNS:
        site_type = name
    if site_type is not None:
        keep = [c for c in SITE_COLUMNS[site_type] if c not in ("lon", "lat")]
        sites = app.repo.sites(site_type, columns=keep)
        cols = [c for c in keep if c in sites.columns]
        return sites[[*cols, "geometry"]], SiteType(site_type).zh
    if name in app.repo.layer_names():
        spec = app.city.layers.get(name)
        return app.repo.layer(name), spec.title_zh if spec else name
    if name in app.repo.derived_layer_names():
        return app.repo.derived_layer(name), name
    known = ", ".join([*SITE_LAYERS, *app.repo.layer_names()])
    raise NotFound(_l("未知的图层“%(name)s”；应为以下之一：%(known)s", name=name, known=known))


def export_layer(app: Geoapp, name: str, fmt: str, path: str | Path) -> dict[str, Any]:
    """Write one layer as gpkg, geojson, kml or shp (a .zip) to ``path``."""
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidInput(_l("未知的格式“%(fmt)s”；应为以下之一：%(known)s", fmt=fmt,
                              known=", ".join(FORMATS)))
    gdf, title = layer_frame(app, name)
    path = Path(path)
    if fmt == "shp" and path.suffix.lower() == ".shp":  # the download is a zip of the parts
        path = path.with_suffix(".zip")
    if fmt == "kml":  # people read these descriptions: Chinese words, not machine values
        gdf = _chinese_values(gdf)
    out = write_layer(gdf, path, fmt, layer=name, title=f"{app.city.name}{title}",
                      descriptions=_LABELS)
    log.info("exported layer %s (%d features) as %s", name, len(gdf), fmt)
    return {"layer": name, "title": title, "format": fmt, "features": len(gdf),
            "path": str(out)}


def _chinese_values(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = gdf.copy()
    for col, enum in (("classification", Classification), ("stage", Stage),
                      ("status", WorkshopStatus)):
        if col in out.columns:
            out[col] = out[col].map(lambda v, e=enum: e(v).zh if v in set(e) else v)
    return out
