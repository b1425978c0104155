"""The basemap that works with no internet (``TILES=local``): the tile archive the settings
name, the city's own basemap package built from its layers, and the inline base of a
standalone map file.

* :func:`local_tiles` opens the archive named by LOCAL_TILES once per process, again when
  the file on disk changes (a missing or broken file is a
  :class:`~geoapp.storage.tiles.TileArchiveError` naming it, logged once per change) and
  :func:`tile_response` answers one tile address: 200, 204 or 404, never an exception.
* :mod:`geoapp.services.basemap_build` builds the city's own package (a module of its own:
  the vector-tile encoder costs a quarter of a second to import).
* :func:`inline_base` gives the same layers as small GeoJSON for a map file opened from disk.
"""

from __future__ import annotations

import hashlib
import logging
import threading
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

_OPEN_LOCK = threading.Lock()


def _file_stamp(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def local_tiles(app: Geoapp) -> TileArchive:
    """The archive named by LOCAL_TILES, opened read-only once and again when the file on
    disk changes (device, inode, size or modification time): a file replaced or rewritten
    under a running server is re-read and re-checked. A file that cannot be used raises
    :class:`TileArchiveError`; the error is logged once per state of the file, and the file
    is not opened again until it changes."""
    path = Path(app.settings["LOCAL_TILES"])
    cached = app.cache.get("local_tiles")
    if cached is not None and not _stale(cached, path):
        return _result(cached)
    with _OPEN_LOCK:
        cached = app.cache.get("local_tiles")
        if cached is None or _stale(cached, path):
            stamp = _file_stamp(path)
            try:
                cached = (stamp, open_archive(path))
            except TileArchiveError as exc:
                log.error("%s", exc)
                cached = (stamp, exc)
            # The archive replaced is not closed here: a request may still be reading from
            # it; it is closed when the last reference goes.
            app.cache["local_tiles"] = cached
    return _result(cached)


def _stale(cached, path: Path) -> bool:
    stamp, value = cached
    if isinstance(value, TileArchive):
        return value.changed()
    return _file_stamp(path) != stamp


def _result(cached) -> TileArchive:
    value = cached[1]
    if isinstance(value, Exception):
        raise value
    return value


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
    try:
        archive = local_tiles(app)
    except TileArchiveError:  # logged once by local_tiles
        return TileAnswer(404)
    meta = archive.meta
    ext = {"mvt": "pbf", "jpeg": "jpg"}.get(ext, ext)
    if ext != meta.format or not valid_address(z, x, y):
        return TileAnswer(404)
    try:
        data = archive.tile(z, x, y)
        if data and meta.vector and data[:2] == b"\x1f\x8b" and not accepts_gzip:
            plain = plain_tile(data)
        else:
            plain = None
    except Exception as exc:  # noqa: BLE001 - a file changed or damaged under the server
        return _unreadable(app, archive, exc)
    cache = (("Cache-Control", f"private, max-age={TILE_MAX_AGE}"),)
    if not data:
        return TileAnswer(204, headers=cache)
    headers = [("Content-Type", meta.content_type), *cache, ("Vary", "Accept-Encoding")]
    if meta.vector and data[:2] == b"\x1f\x8b":
        if plain is None:
            headers.append(("Content-Encoding", "gzip"))
        else:
            data = plain
    etag = hashlib.blake2b(data, digest_size=12).hexdigest()
    return TileAnswer(200, data, tuple(headers), etag)


def _unreadable(app: Geoapp, archive: TileArchive, exc: Exception) -> TileAnswer:
    """A tile that could not be read: 404, the cause logged once per archive (a file
    changed on disk is opened again by the next request)."""
    if not getattr(archive, "_read_error_logged", False):
        archive._read_error_logged = True  # type: ignore[attr-defined]
        why = "it changed on disk" if archive.changed() else "it is damaged"
        log.error("basemap tile file %s cannot be read (%s): %s", archive.path, why, exc)
    return TileAnswer(404)


def page_spec(app: Geoapp, tiles_root: str) -> dict[str, Any]:
    """What a page's local basemap layer needs: the tile URL under ``tiles_root`` (the
    app's URL of ``/tiles``) and the archive's metadata; ``{"mode": "none"}`` (no basemap)
    when the file has become unusable since the start."""
    try:
        meta = local_tiles(app).meta
    except TileArchiveError:  # logged once by local_tiles: the page draws no basemap
        return {"mode": "none"}
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
