"""The basemap that works with no internet (``TILES=local``): the tile archive the settings
name, the city's own basemap package built from its layers, and the inline base of a
standalone map file.

* :func:`local_tiles` opens the archive named by LOCAL_TILES once per process (a missing or
  broken file is a :class:`~geoapp.storage.tiles.TileArchiveError` naming it) and
  :func:`tile_response` answers one tile address.
* :func:`build_basemap` cuts the city's layers (data/boundaries: city outline, counties,
  urban core, rivers, the Yellow River, the canal, and a label point per county) into gzip'd
  Mapbox vector tiles and writes them as one PMTiles file; ``scripts/build_basemap.py`` runs
  it for the shipped package (docs/basemap.md).
* :func:`inline_base` gives the same layers as small GeoJSON for a map file opened from disk.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import shapely

from geoapp.maps.base import local_tiles_spec
from geoapp.services.core import Geoapp
from geoapp.storage.tiles import (
    TileArchive,
    TileArchiveError,
    TileMeta,
    open_archive,
    plain_tile,
    tile_range,
    valid_address,
    write_pmtiles,
)

log = logging.getLogger(__name__)

__all__ = ["TileArchiveError", "build_basemap", "check_local_tiles", "inline_base",
           "local_tiles", "page_spec", "tile_response"]

#: The shipped package's zooms: a whole city at 7, streets' scale at 14 (Leaflet draws
#: deeper zooms from the level-14 data).
MIN_ZOOM, MAX_ZOOM = 7, 14
EXTENT = 4096
#: Tile edge kept around each tile (in tile units) so lines and fills meet across edges.
BUFFER = 64
#: Source layers of the package: vector layer name -> city.toml layer.
SOURCE_LAYERS = ("city", "counties", "urban_core", "rivers", "yellow_river", "canal")
ATTRIBUTION = "焦作市生态环境局 底图（市界、区县、河流，部分为示意数据）"
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


# --- building the city's package -----------------------------------------------------------

def _world(geoms: np.ndarray) -> np.ndarray:
    """lon/lat -> spherical Web Mercator in units of the world (0..1 both ways, y down)."""

    def to_world(c: np.ndarray) -> np.ndarray:
        lat = np.clip(c[:, 1], -85.0511287798, 85.0511287798)
        out = np.empty_like(c)
        out[:, 0] = (c[:, 0] + 180.0) / 360.0
        out[:, 1] = (1.0 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2.0
        return out

    return shapely.transform(geoms, to_world)


def read_source_layers(data_dir: str | Path) -> tuple[dict[str, gpd.GeoDataFrame], str]:
    """The package's layers from a data folder (city.toml's files), and the city's name."""
    data_dir = Path(data_dir)
    with (data_dir / "city.toml").open("rb") as fh:
        city = tomllib.load(fh)
    layers = {}
    for name in SOURCE_LAYERS:
        spec = city.get("layers", {}).get(name)
        if not spec:
            continue
        layers[name] = gpd.read_file(data_dir / spec["file"])
    if "counties" in layers:
        c = layers["counties"]
        layers["places"] = gpd.GeoDataFrame({"name": c["name"]},
                                            geometry=c.geometry.representative_point(),
                                            crs=c.crs)
    return layers, str(city.get("city", {}).get("name", ""))


def build_basemap(data_dir: str | Path, out: str | Path, *, minzoom: int = MIN_ZOOM,
                  maxzoom: int = MAX_ZOOM) -> dict[str, Any]:
    """Cut the city's layers from ``data_dir`` into vector tiles (zooms ``minzoom`` ..
    ``maxzoom``) and write them to the PMTiles file ``out``. The same data gives the same
    bytes. Returns a summary (tiles per zoom, size)."""
    layers, city_name = read_source_layers(data_dir)
    world = {name: (_world(gdf.geometry.values), gdf["name"].astype(str).tolist())
             for name, gdf in layers.items()}
    boxes = np.array([df.total_bounds for df in layers.values()])
    bounds = (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
              float(boxes[:, 3].max()))
    tiles: list[tuple[int, int, int, bytes]] = []
    per_zoom: dict[int, int] = {}
    for z in range(minzoom, maxzoom + 1):
        n = 1 << z
        # Simplify once per zoom to a quarter of a tile unit.
        simple = {name: (shapely.simplify(g, 0.25 / (n * EXTENT), preserve_topology=True), names)
                  for name, (g, names) in world.items()}
        x0, y0, x1, y1 = tile_range(bounds, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                data = _tile(simple, z, x, y)
                if data is not None:
                    tiles.append((z, x, y, data))
                    per_zoom[z] = per_zoom.get(z, 0) + 1
    metadata = {
        "name": f"{city_name} 底图 basemap", "format": "pbf",
        "attribution": ATTRIBUTION,
        "description": "Built by scripts/build_basemap.py from data/boundaries (docs/basemap.md)",
        "vector_layers": [{"id": name, "fields": {"name": "String"},
                           "minzoom": minzoom, "maxzoom": maxzoom} for name in world],
    }
    path = write_pmtiles(out, tiles, fmt="pbf", bounds=bounds, metadata=metadata, gzipped=True)
    return {"tiles": len(tiles), "per_zoom": per_zoom, "bytes": path.stat().st_size,
            "bounds": bounds}


def _tile(layers: dict[str, tuple[np.ndarray, list[str]]], z: int, x: int,
          y: int) -> bytes | None:
    n = 1 << z
    pad = BUFFER / EXTENT
    box = ((x - pad) / n, (y - pad) / n, (x + 1 + pad) / n, (y + 1 + pad) / n)
    out = []
    for name, (geoms, names) in layers.items():
        clipped = shapely.clip_by_rect(geoms, *box) if name != "places" else geoms
        feats = []
        for label, geom in zip(names, clipped, strict=True):
            if geom is None or geom.is_empty:
                continue
            if name == "places" and not (box[0] <= geom.x <= box[2] and box[1] <= geom.y <= box[3]):
                continue
            local = shapely.transform(geom, lambda c, x=x, y=y: np.column_stack(
                ((c[:, 0] * n - x) * EXTENT, (c[:, 1] * n - y) * EXTENT)))
            local = shapely.set_precision(local, 1.0)
            if local.is_empty:
                continue
            feats.append({"geometry": local, "properties": {"name": label}})
        if feats:
            out.append({"name": name, "features": feats})
    if not out:
        return None
    raw = mapbox_vector_tile.encode(out, default_options={"extents": EXTENT,
                                                          "y_coord_down": True})
    return gzip.compress(raw, compresslevel=9, mtime=0)


def summary_text(summary: dict[str, Any]) -> str:
    """A one-line account of a built package."""
    zooms = ", ".join(f"z{z}: {c}" for z, c in sorted(summary["per_zoom"].items()))
    return f"{summary['tiles']} tiles ({zooms}), {summary['bytes'] / 1024:.0f} KiB"
