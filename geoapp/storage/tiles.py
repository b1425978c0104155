"""Tile archives on disk: read tiles and metadata from a PMTiles or MBTiles file, and write both.

The readers open the file read-only (PMTiles with positional reads, ``os.pread``, never a
memory map: a file truncated under a map would kill the process with SIGBUS; MBTiles through
SQLite's ``mode=ro`` URI) and answer a tile by its XYZ address (``y`` counted from the north,
as Leaflet asks). MBTiles stores TMS rows (``y`` counted from the south), so its reader flips
``y``.

A file that is missing, not a regular file, unreadable, truncated or not a tile archive
raises :class:`TileArchiveError` (a ``ConfigError`` naming the file, Chinese first) when it
is opened: a PMTiles file's sections (root directory, metadata, leaf directories, tile data)
must lie inside the file and its root directory and metadata must decode; an MBTiles file
must be as long as its header says, pass SQLite's ``quick_check`` (files up to
:data:`QUICK_CHECK_MAX_BYTES`) and have a ``tiles`` table. Metadata that makes no sense
(zooms that are not whole numbers in 0..30 or out of order, bounds that are not finite
degrees) is ignored with a warning: zooms then come from the tiles, bounds are the world's.
:meth:`TileArchive.changed` tells whether the file on disk is no longer the one opened.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import math
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pmtiles.tile import (
    Compression,
    TileType,
    deserialize_directory,
    deserialize_header,
    find_tile,
    zxy_to_tileid,
)
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
#: The longest attribution text kept from a file's metadata (characters).
MAX_ATTRIBUTION = 200
#: The world in Web Mercator (bounds used when a file's own make no sense).
WORLD_BOUNDS = (-180.0, -85.0511, 180.0, 85.0511)
#: MBTiles files up to this size get SQLite's ``PRAGMA quick_check`` when opened.
QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024
_HEADER_LEN = 127

log = logging.getLogger(__name__)


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
    if not isinstance(raw, list):
        return ()
    return tuple(str(v.get("id")) for v in raw if isinstance(v, dict) and v.get("id"))


def clean_attribution(raw) -> str:
    """A file's attribution as plain text: one line, no control characters, at most
    :data:`MAX_ATTRIBUTION` characters (the page escapes it: it is never HTML)."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(raw or "")).split())
    return text if len(text) <= MAX_ATTRIBUTION else text[:MAX_ATTRIBUTION - 1] + "…"


def _zoom(raw) -> int | None:
    """A zoom from metadata: a whole number 0..MAX_ZOOM, else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip()
        if not text.isascii() or not text.isdigit():
            return None
        value = int(text)
    return value if 0 <= value <= MAX_ZOOM else None


def _zooms(path: Path, minzoom, maxzoom, fallback: tuple[int, int]) -> tuple[int, int]:
    """(minzoom, maxzoom) from metadata when they make sense, else ``fallback`` (from the
    tiles themselves), with a warning naming the file."""
    lo, hi = _zoom(minzoom), _zoom(maxzoom)
    if lo is None or hi is None or lo > hi:
        if (minzoom, maxzoom) != (None, None):
            log.warning("basemap tile file %s: ignoring invalid minzoom/maxzoom %r/%r, "
                        "using %s..%s from the tiles", path, minzoom, maxzoom, *fallback)
        return fallback
    return lo, hi


def _bounds(path: Path, raw) -> tuple[float, float, float, float]:
    """(west, south, east, north) when finite degrees in order, else the world's."""
    values: tuple = ()
    try:
        if isinstance(raw, str):
            values = tuple(float(v) for v in raw.split(","))
        elif isinstance(raw, (list, tuple)):
            values = tuple(float(v) for v in raw)
    except (TypeError, ValueError):
        values = ()
    if (len(values) == 4 and all(math.isfinite(v) for v in values)
            and -180 <= values[0] < values[2] <= 180 and -90 <= values[1] < values[3] <= 90):
        return values  # type: ignore[return-value]
    if raw not in (None, ""):
        log.warning("basemap tile file %s: ignoring invalid bounds %r", path, raw)
    return WORLD_BOUNDS


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class TileArchive:
    """One open archive: :attr:`meta` and :meth:`tile` (bytes as stored, or None)."""

    path: Path
    meta: TileMeta
    #: (device, inode, size, mtime) of the file when it was opened.
    stamp: tuple[int, int, int, int] = (0, 0, 0, 0)

    def tile(self, z: int, x: int, y: int) -> bytes | None:  # pragma: no cover - interface
        raise NotImplementedError

    def changed(self) -> bool:
        """True when the file at :attr:`path` is not the one opened (replaced, rewritten,
        truncated or removed)."""
        try:
            return _stamp(os.stat(self.path)) != self.stamp
        except OSError:
            return True

    def close(self) -> None:  # pragma: no cover - interface
        pass

    def __del__(self) -> None:
        # An archive replaced while the server runs is not closed by whoever replaced it (a
        # request may still be reading it): it closes its file when the last reference goes.
        with contextlib.suppress(Exception):
            self.close()


class PMTilesArchive(TileArchive):
    """A PMTiles v3 file read with ``os.pread`` (thread-safe, no shared file position, no
    memory map). The header and root directory are read and checked once when opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = None
        try:
            self._fh = path.open("rb")
            st = os.fstat(self._fh.fileno())
        except OSError as exc:
            self.close()
            raise _fail(path, f"无法读取（{exc}）", f"cannot be read ({exc})") from None
        self.stamp = _stamp(st)
        self._size = st.st_size
        try:
            self._open()
        except TileArchiveError:
            self.close()
            raise
        except Exception as exc:  # the pmtiles package raises several kinds on a bad file
            self.close()
            raise _fail(path, f"不是有效的 PMTiles 文件（{exc}）",
                        f"not a valid PMTiles file ({exc})") from None

    def _read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` (OSError when the file is shorter now)."""
        fh = self._fh
        if fh is None:
            raise OSError("archive closed")
        data = os.pread(fh.fileno(), length, offset)
        if len(data) != length:
            raise OSError(f"short read at {offset} ({len(data)} of {length} bytes)")
        return data

    def _open(self) -> None:
        path = self.path
        if self._size < _HEADER_LEN:
            raise _fail(path, f"文件不完整（只有 {self._size} 字节）",
                        f"the file is truncated ({self._size} bytes)")
        header = deserialize_header(self._read(0, _HEADER_LEN))
        for section in ("root", "metadata", "leaf_directory", "tile_data"):
            start, length = header[f"{section}_offset"], header[f"{section}_length"]
            if start < 0 or length < 0 or start + length > self._size:
                raise _fail(path, f"文件不完整或已损坏（{section} 区段 {start}+{length} 超出文件长度 "
                                  f"{self._size} 字节）",
                            f"the file is truncated or damaged (its {section} section "
                            f"{start}+{length} ends beyond its {self._size} bytes)")
        kind = _PMTILES_TYPES.get(header["tile_type"])
        if kind is None:
            raise _fail(path, f"不支持的瓦片类型 {header['tile_type']}",
                        f"unsupported tile type {header['tile_type']}")
        if header["tile_compression"] not in (Compression.NONE, Compression.GZIP,
                                              Compression.UNKNOWN):
            raise _fail(path, f"不支持的瓦片压缩 {header['tile_compression'].name}（应为 gzip 或不压缩）",
                        f"unsupported tile compression {header['tile_compression'].name} "
                        "(gzip or none)")
        self._root = deserialize_directory(self._read(header["root_offset"],
                                                      header["root_length"]))
        if not self._root:
            raise _fail(path, "文件中没有瓦片", "the file holds no tiles")
        raw = self._read(header["metadata_offset"], header["metadata_length"])
        if header["internal_compression"] == Compression.GZIP:
            raw = gzip.decompress(raw)
        meta = json.loads(raw) if raw.strip() else {}
        if not isinstance(meta, dict):
            raise ValueError("the metadata is not a JSON object")
        self._header = header
        lo, hi = _zoom(header["min_zoom"]), _zoom(header["max_zoom"])
        if lo is None or hi is None or lo > hi:
            raise _fail(path, f"文件头的缩放级别无效（{header['min_zoom']}..{header['max_zoom']}）",
                        f"invalid zooms in its header ({header['min_zoom']}..."
                        f"{header['max_zoom']})")
        self.meta = TileMeta(
            format=kind, minzoom=lo, maxzoom=hi,
            bounds=_bounds(path, [header["min_lon_e7"] / 1e7, header["min_lat_e7"] / 1e7,
                                  header["max_lon_e7"] / 1e7, header["max_lat_e7"] / 1e7]),
            attribution=clean_attribution(meta.get("attribution", "")),
            name=str(meta.get("name", "")),
            vector_layers=_vector_layers(meta.get("vector_layers", [])))

    def _section(self, section: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` inside one section (ValueError outside it)."""
        h = self._header
        if offset < 0 or length < 0 or offset + length > h[f"{section}_length"]:
            raise ValueError(f"entry {offset}+{length} outside the {section} section")
        return self._read(h[f"{section}_offset"] + offset, length)

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        if not valid_address(z, x, y):
            return None
        tile_id = zxy_to_tileid(z, x, y)
        directory = self._root
        for _depth in range(4):
            entry = find_tile(directory, tile_id)
            if entry is None:
                return None
            if entry.run_length:
                data = self._section("tile_data", entry.offset, entry.length)
                return data or None
            directory = deserialize_directory(
                self._section("leaf_directory", entry.offset, entry.length))
        return None

    def close(self) -> None:
        fh, self._fh = getattr(self, "_fh", None), None
        if fh is not None:
            fh.close()


def _sqlite_header_ok(path: Path, size: int) -> tuple[bool, str]:
    """A SQLite file is at least as long as its header's page count says."""
    with path.open("rb") as fh:
        head = fh.read(100)
    if len(head) < 100:
        return False, f"{size} bytes"
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]  # the page count is valid for this change counter
    if valid and pages and pages * page > size:
        return False, f"{size} of {pages * page} bytes"
    return True, ""


class MBTilesArchive(TileArchive):
    """An MBTiles 1.3 file; rows are TMS (``tile_row`` counted from the south)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = None
        try:
            st = os.stat(path)
            self.stamp = _stamp(st)
            ok, why = _sqlite_header_ok(path, st.st_size)
        except OSError as exc:
            raise _fail(path, f"无法读取（{exc}）", f"cannot be read ({exc})") from None
        if not ok:
            raise _fail(path, f"文件不完整（{why}）", f"the file is truncated ({why})")
        try:
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                       check_same_thread=False)
            if st.st_size <= QUICK_CHECK_MAX_BYTES:
                check = self._db.execute("PRAGMA quick_check").fetchall()
                if check != [("ok",)]:
                    raise sqlite3.DatabaseError("quick_check: " + "; ".join(
                        str(r[0]) for r in check[:3]))
            kinds = dict(self._db.execute(
                "SELECT name, type FROM sqlite_master WHERE name IN ('tiles', 'metadata')"
            ).fetchall())
            if kinds.get("tiles") not in ("table", "view"):
                raise sqlite3.DatabaseError("no tiles table")
            rows = {}
            if kinds.get("metadata") in ("table", "view"):
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
        fallback = (min(max(int(zooms[0]), 0), MAX_ZOOM), min(max(int(zooms[1]), 0), MAX_ZOOM))
        try:
            fmt = _format(rows.get("format", "png"), path)
        except TileArchiveError:
            self.close()
            raise
        minzoom, maxzoom = _zooms(path, rows.get("minzoom", fallback[0]),
                                  rows.get("maxzoom", fallback[1]), fallback)
        self.meta = TileMeta(
            format=fmt, minzoom=minzoom, maxzoom=maxzoom, bounds=_bounds(path, rows.get("bounds")),
            attribution=clean_attribution(rows.get("attribution", "")),
            name=str(rows.get("name", "")), vector_layers=_vector_layers(rows.get("json", "")))

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        if not valid_address(z, x, y):
            return None
        tms_y = (1 << z) - 1 - y
        with self._lock:
            if self._db is None:
                raise sqlite3.ProgrammingError("archive closed")
            row = self._db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                (z, x, tms_y)).fetchone()
        return bytes(row[0]) if row and row[0] else None

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def open_archive(path: str | Path) -> TileArchive:
    """Open a PMTiles or MBTiles file read-only (the kind from its first bytes)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _fail(path, "文件不存在", "no such file") from None
    except OSError as exc:
        raise _fail(path, f"无法读取（{exc}）", f"cannot be read ({exc})") from None
    if not stat.S_ISREG(st.st_mode):
        kind_zh, kind_en = (("是一个目录", "a directory") if stat.S_ISDIR(st.st_mode)
                            else ("是设备或特殊文件", "a device or special file"))
        raise _fail(path, f"不是普通文件（{kind_zh}）", f"not a regular file ({kind_en})")
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
