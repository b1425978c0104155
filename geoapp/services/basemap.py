"""The basemap that works with no internet (``TILES=local``): the tile archive the settings
name, the city's own basemap package built from its layers, and the inline base of a
standalone map file.

* :func:`local_tiles` opens the archive named by LOCAL_TILES once per process (a missing or
  broken file is a :class:`~geoapp.storage.tiles.TileArchiveError` naming it) and
  :func:`tile_response` answers one tile address.
* :mod:`geoapp.services.basemap_build` builds the city's own package (a module of its own:
  the vector-tile encoder costs a quarter of a second to import).
* :func:`inline_base` gives the same layers as small GeoJSON for a map file opened from disk.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely

from geoapp.maps.base import local_tiles_spec
from geoapp.services.core import Geoapp
from geoapp.storage.tiles import (
    TileArchive,
    TileArchiveError,
    TileMeta,
    open_archive,
    plain_tile,
    valid_address,
)

log = logging.getLogger(__name__)

__all__ = ["TileArchiveError", "check_local_tiles", "inline_base", "local_tiles", "page_spec",
           "tile_response"]

#: The city's layers in the basemap (vector layer name = city.toml layer name).
SOURCE_LAYERS = ("city", "counties", "urban_core", "rivers", "yellow_river", "canal")
#: How long a browser may keep a tile before asking again (the ETag answers that with 304).
TILE_MAX_AGE = 3600


# --- serving -------------------------------------------------------------------------------

def local_tiles(app: Geoapp) -> TileArchive:
    """The archive named by LOCAL_TILES (opened read-only once, again when the file changes)."""
    path = Path(app.settings["LOCAL_TILES"])
    return app.file_cached("local_tiles", path, open_archive)


def check_local_tiles(settings: dict[str, Any]) -> TileMeta | None:
    """At start-up with TILES=local: open LOCAL_TILES once, so a missing or broken file stops
    the server with a message naming it instead of failing every tile. None otherwise."""
    if settings.get("TILES") != "local":
        return None
    archive = open_archive(settings["LOCAL_TILES"])
    try:
        return archive.meta
    finally:
        archive.close()


@dataclass(frozen=True)
class TileAnswer:
    """One tile's answer: ``status`` 200 (``data``), 204 (no tile there) or 404 (no such
    address or format); headers for type, encoding and caching."""

    status: int
    data: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    etag: str = ""


def tile_response(app: Geoapp, z: int, x: int, y: int, ext: str, *,
                  accepts_gzip: bool) -> TileAnswer:
    """The tile z/x/y of the local archive as the format ``ext`` (which must be the
    archive's): 404 for an impossible address or another format, 204 for a tile the archive
    does not hold, else the bytes (gzip'd vector tiles sent as they are with
    ``Content-Encoding: gzip`` when the client accepts it, else unpacked)."""
    archive = local_tiles(app)
    meta = archive.meta
    ext = {"mvt": "pbf", "jpeg": "jpg"}.get(ext, ext)
    if ext != meta.format or not valid_address(z, x, y):
        return TileAnswer(404)
    data = archive.tile(z, x, y)
    cache = (("Cache-Control", f"private, max-age={TILE_MAX_AGE}"),)
    if not data:
        return TileAnswer(204, headers=cache)
    headers = [("Content-Type", meta.content_type), *cache, ("Vary", "Accept-Encoding")]
    if meta.vector and data[:2] == b"\x1f\x8b":
        if accepts_gzip:
            headers.append(("Content-Encoding", "gzip"))
        else:
            data = plain_tile(data)
    etag = hashlib.blake2b(data, digest_size=12).hexdigest()
    return TileAnswer(200, data, tuple(headers), etag)


def page_spec(app: Geoapp, tiles_root: str) -> dict[str, Any]:
    """What a page's local basemap layer needs: the tile URL under ``tiles_root`` (the
    app's URL of ``/tiles``) and the archive's metadata."""
    meta = local_tiles(app).meta
    return local_tiles_spec(meta, f"{tiles_root.rstrip('/')}/{{z}}/{{x}}/{{y}}.{meta.format}")


# --- the inline base of a standalone file --------------------------------------------------

#: Simplification of the inline base (degrees, about 30 m) and coordinate precision.
INLINE_TOLERANCE = 0.0003
INLINE_DIGITS = 5


def _round(geom):
    return shapely.set_precision(geom, 10 ** -INLINE_DIGITS)


def inline_base(app: Geoapp) -> dict[str, Any]:
    """The base layers as GeoJSON FeatureCollections (simplified to about 30 m), for a map
    file that must draw the city with no server: ``{layer: collection}`` for each of
    :data:`SOURCE_LAYERS` the store holds, ``places`` the county names."""
    names = set(app.repo.layer_names())
    out: dict[str, Any] = {}
    for name in SOURCE_LAYERS:
        if name not in names:
            continue
        gdf = app.repo.layer(name)
        out[name] = _collection(gdf)
        if name == "counties":
            out["places"] = _places(gdf)
    return out


def _collection(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    geoms = shapely.simplify(gdf.geometry.values, INLINE_TOLERANCE, preserve_topology=True)
    feats = []
    for name, geom in zip(gdf["name"].astype(str), geoms, strict=True):
        if geom is None or geom.is_empty:
            continue
        feats.append({"type": "Feature", "properties": {"name": name},
                      "geometry": shapely.geometry.mapping(_round(geom))})
    return {"type": "FeatureCollection", "features": feats}


def _places(counties: gpd.GeoDataFrame) -> dict[str, Any]:
    feats = [{"type": "Feature", "properties": {"name": str(name)},
              "geometry": {"type": "Point",
                           "coordinates": [round(p.x, INLINE_DIGITS), round(p.y, INLINE_DIGITS)]}}
             for name, p in zip(counties["name"], counties.geometry.representative_point(),
                                strict=True)]
    return {"type": "FeatureCollection", "features": feats}
