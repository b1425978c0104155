"""Tile archives on disk: read tiles and metadata from a PMTiles or MBTiles file, and write both.

The readers open the file read-only (PMTiles through a read-only memory map with the
``pmtiles`` package, MBTiles through SQLite's ``mode=ro`` URI) and answer a tile by its
XYZ address (``y`` counted from the north, as Leaflet asks). MBTiles stores TMS rows
(``y`` counted from the south), so its reader flips ``y``.

A file that is missing, unreadable or not a tile archive raises
:class:`TileArchiveError` (a ``ConfigError`` naming the file, Chinese first), once when it is
opened, never per tile.
"""

from __future__ import annotations

import gzip
import json
import math
import mmap
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pmtiles.reader import Reader as PMTilesReader
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer as PMTilesWriter

from geoapp.domain.errors import ConfigError

#: Tile formats and the HTTP type each is served as.
CONTENT_TYPES = {
    "pbf": "application/vnd.mapbox-vector-tile",
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}
VECTOR_FORMATS = ("pbf",)
_FORMAT_ALIASES = {"mvt": "pbf", "jpeg": "jpg"}
_PMTILES_TYPES = {TileType.MVT: "pbf", TileType.PNG: "png", TileType.JPEG: "jpg",
                  TileType.WEBP: "webp"}
#: Deepest zoom a tile address may name (beyond it a tile is narrower than a centimetre).
MAX_ZOOM = 30
GZIP_MAGIC = b"\x1f\x8b"


class TileArchiveError(ConfigError):
    """The configured tile archive cannot be used (missing, unreadable, not PMTiles/MBTiles)."""


def _fail(path: Path, why_zh: str, why_en: str) -> TileArchiveError:
    return TileArchiveError(f"底图瓦片文件 {path} 无法使用：{why_zh} / "
                            f"basemap tile file {path} cannot be used: {why_en}")


@dataclass(frozen=True)
class TileMeta:
    """What a page needs to draw an archive: format, zooms, bounds (west, south, east,
    north in degrees), attribution, and for vector tiles the names of their layers."""

    format: str
    minzoom: int
    maxzoom: int
    bounds: tuple[float, float, float, float]
    attribution: str = ""
    name: str = ""
    vector_layers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def vector(self) -> bool:
        return self.format in VECTOR_FORMATS

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def valid_address(z: int, x: int, y: int) -> bool:
    """True when z/x/y name a tile at all: whole numbers, 0 <= z <= MAX_ZOOM, x and y in
    0 .. 2**z - 1."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (z, x, y)):
        return False
    if not 0 <= z <= MAX_ZOOM:
        return False
    n = 1 << z
    return 0 <= x < n and 0 <= y < n


def _format(value: str, path: Path) -> str:
    fmt = _FORMAT_ALIASES.get(str(value).lower(), str(value).lower())
    if fmt not in CONTENT_TYPES:
        raise _fail(path, f"不支持的瓦片格式 {value!r}（支持 pbf、png、jpg、webp）",
                    f"unsupported tile format {value!r} (pbf, png, jpg, webp)")
    return fmt


def _vector_layers(raw) -> tuple[str, ...]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return ()
    if isinstance(raw, dict):
        raw = raw.get("vector_layers", [])
    return tuple(str(v.get("id")) for v in raw or () if isinstance(v, dict) and v.get("id"))


class TileArchive:
    """One open archive: :attr:`meta` and :meth:`tile` (bytes as stored, or None)."""

    path: Path
    meta: TileMeta

    def tile(self, z: int, x: int, y: int) -> bytes | None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        pass


class PMTilesArchive(TileArchive):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._map = None
        try:  # the map keeps its own handle: the file object is closed at once
            with path.open("rb") as fh:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise _fail(path, f"无法读取（{exc}）", f"cannot be read ({exc})") from None
        self._reader = PMTilesReader(lambda offset, length: self._map[offset:offset + length])
        try:
            header = self._reader.header()
            meta = self._reader.metadata()
        except Exception as exc:  # the pmtiles package raises several kinds on a bad file
            self.close()
            raise _fail(path, f"不是有效的 PMTiles 文件（{exc}）",
                        f"not a valid PMTiles file ({exc})") from None
        self._header = header
        kind = _PMTILES_TYPES.get(header["tile_type"])
        if kind is None:
            self.close()
            raise _fail(path, f"不支持的瓦片类型 {header['tile_type']}",
                        f"unsupported tile type {header['tile_type']}")
        if header["tile_compression"] not in (Compression.NONE, Compression.GZIP,
                                              Compression.UNKNOWN):
            self.close()
            raise _fail(path, f"不支持的瓦片压缩 {header['tile_compression'].name}（应为 gzip 或不压缩）",
                        f"unsupported tile compression {header['tile_compression'].name} "
                        "(gzip or none)")
        self.meta = TileMeta(
            format=kind, minzoom=int(header["min_zoom"]), maxzoom=int(header["max_zoom"]),
            bounds=(header["min_lon_e7"] / 1e7, header["min_lat_e7"] / 1e7,
                    header["max_lon_e7"] / 1e7, header["max_lat_e7"] / 1e7),
            attribution=str(meta.get("attribution", "")), name=str(meta.get("name", "")),
            vector_layers=_vector_layers(meta.get("vector_layers", [])))

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        if not valid_address(z, x, y):
            return None
        data = self._reader.get(z, x, y)
        return bytes(data) if data else None

    def close(self) -> None:
        if getattr(self, "_map", None) is not None:
            self._map.close()
            self._map = None


class MBTilesArchive(TileArchive):
    """An MBTiles 1.3 file; rows are TMS (``tile_row`` counted from the south)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                       check_same_thread=False)
            rows = dict(self._db.execute("SELECT name, value FROM metadata").fetchall())
            zooms = self._db.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles"
                                     ).fetchone()
        except sqlite3.Error as exc:
            self.close()
            raise _fail(path, f"不是有效的 MBTiles 文件（{exc}）",
                        f"not a valid MBTiles file ({exc})") from None
        if zooms is None or zooms[0] is None:
            self.close()
            raise _fail(path, "文件中没有瓦片", "the file holds no tiles")
        try:
            bounds = tuple(float(v) for v in str(rows.get("bounds", "")).split(","))
        except ValueError:
            bounds = ()
        if len(bounds) != 4:
            bounds = (-180.0, -85.0511, 180.0, 85.0511)
        self.meta = TileMeta(
            format=_format(rows.get("format", "png"), path),
            minzoom=int(rows.get("minzoom", zooms[0])), maxzoom=int(rows.get("maxzoom", zooms[1])),
            bounds=bounds, attribution=str(rows.get("attribution", "")),
            name=str(rows.get("name", "")), vector_layers=_vector_layers(rows.get("json", "")))

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        if not valid_address(z, x, y):
            return None
        tms_y = (1 << z) - 1 - y
        with self._lock:
            row = self._db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                (z, x, tms_y)).fetchone()
        return bytes(row[0]) if row and row[0] else None

    def close(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()
            self._db = None


def open_archive(path: str | Path) -> TileArchive:
    """Open a PMTiles or MBTiles file read-only (the kind from its first bytes)."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "文件不存在", "no such file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        raise _fail(path, f"无法读取（{exc}）", f"cannot be read ({exc})") from None
    if magic.startswith(b"PMTiles"):
        return PMTilesArchive(path)
    if magic.startswith(b"SQLite format 3\x00"):
        return MBTilesArchive(path)
    raise _fail(path, "既不是 PMTiles 也不是 MBTiles 文件", "neither a PMTiles nor an MBTiles file")


def plain_tile(data: bytes) -> bytes:
    """A tile's bytes without gzip (vector tiles are often stored gzip'd)."""
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


# --- writing -------------------------------------------------------------------------------

def _e7(v: float) -> int:
    return int(round(v * 1e7))


def write_pmtiles(path: str | Path, tiles: Iterable[tuple[int, int, int, bytes]], *,
                  fmt: str, bounds: tuple[float, float, float, float],
                  metadata: dict, gzipped: bool = False) -> Path:
    """Write ``tiles`` ((z, x, y, bytes), any order) to a PMTiles v3 file at ``path``."""
    path = Path(path)
    kind = {v: k for k, v in _PMTILES_TYPES.items()}[fmt]
    ordered = sorted(((zxy_to_tileid(z, x, y), data) for z, x, y, data in tiles),
                     key=lambda t: t[0])
    if not ordered:
        raise ValueError("no tiles to write")
    w, s, e, n = bounds
    with path.open("wb") as fh:
        writer = PMTilesWriter(fh)
        for tile_id, data in ordered:
            writer.write_tile(tile_id, data)
        writer.finalize({
            "tile_type": kind,
            "tile_compression": Compression.GZIP if gzipped else Compression.NONE,
            "min_lon_e7": _e7(w), "min_lat_e7": _e7(s), "max_lon_e7": _e7(e),
            "max_lat_e7": _e7(n), "center_zoom": 0,
            "center_lon_e7": _e7((w + e) / 2), "center_lat_e7": _e7((s + n) / 2),
        }, metadata)
    return path


def write_mbtiles(path: str | Path, tiles: Iterable[tuple[int, int, int, bytes]], *,
                  fmt: str, bounds: tuple[float, float, float, float],
                  metadata: dict) -> Path:
    """Write ``tiles`` ((z, x, y, bytes) with XYZ rows) to an MBTiles file (TMS rows)."""
    path = Path(path)
    tiles = list(tiles)
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, "
                   "tile_row INTEGER, tile_data BLOB)")
        db.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        zs = [t[0] for t in tiles]
        rows = {"format": fmt, "bounds": ",".join(f"{v:.6f}" for v in bounds),
                "minzoom": str(min(zs)), "maxzoom": str(max(zs)), **{
                    k: (v if isinstance(v, str) else json.dumps(v)) for k, v in metadata.items()}}
        db.executemany("INSERT INTO metadata VALUES (?, ?)", list(rows.items()))
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                       [(z, x, (1 << z) - 1 - y, sqlite3.Binary(d)) for z, x, y, d in tiles])
        db.commit()
    finally:
        db.close()
    return path


def tile_range(bounds: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive XYZ tile numbers at zoom ``z`` covering lon/lat ``bounds``."""
    w, s, e, n = bounds
    x0, y0 = lonlat_to_tile(w, n, z)
    x1, y1 = lonlat_to_tile(e, s, z)
    return x0, y0, x1, y1


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding lon/lat at zoom ``z`` (spherical Web Mercator)."""
    n = 1 << z
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)
