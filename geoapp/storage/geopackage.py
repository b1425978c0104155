"""GeoPackage at the SQLite level: connections, geometry blobs, typed reads and writes.

GDAL (through pyogrio) writes the initial layers, but transactional edits and fast reads go
through Python's ``sqlite3``. Two things make that work on a file GDAL created:

- GDAL's R-tree triggers call ``ST_IsEmpty`` / ``ST_MinX`` ... which plain SQLite lacks; they
  are registered here on every connection, so the spatial index stays right after our writes.
- Geometries are GeoPackage blobs ('GP' header, optional envelope, then WKB), decoded and
  encoded here in bulk with shapely.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import struct
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

log = logging.getLogger(__name__)

WGS84_SRS_ID = 4326
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_INT_TYPES = {"INTEGER", "INT", "BIGINT", "MEDIUMINT", "SMALLINT", "TINYINT"}
_REAL_TYPES = {"REAL", "FLOAT", "DOUBLE"}


# ---------------------------------------------------------------------------- connections
def connect(path: str | Path, *, create: bool = False, busy_timeout_ms: int = 30000
            ) -> sqlite3.Connection:
    """Open a GeoPackage for transactional use: WAL, busy timeout, ST_* functions.

    Autocommit mode (``isolation_level=None``): callers open transactions explicitly with
    ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of deadlocking.
    Without ``create`` a missing file is an error rather than a new empty database.
    """
    uri = Path(path).resolve().as_uri() + ("" if create else "?mode=rw")
    conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_ms / 1000,
                           isolation_level=None, check_same_thread=True)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    register_functions(conn)
    return conn


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions GDAL's GeoPackage R-tree triggers call."""
    conn.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
    for i, fn in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(fn, 1, _envelope_getter(i), deterministic=True)


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) of a GeoPackage blob, from its header when it has one."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0x10:
        return None
    if (flags >> 1) & 7:
        order = "<" if flags & 1 else ">"
        return struct.unpack_from(order + "dddd", blob, 8)
    if len(blob) == 29 and blob[8] == 1 and blob[9:13] == b"\x01\x00\x00\x00":
        x, y = struct.unpack_from("<dd", blob, 13)  # 2D little-endian point: the common case
        return (x, x, y, y) if x == x and y == y else None
    geom = shapely.from_wkb(bytes(blob[8:]))
    if geom is None or geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def _envelope_getter(i: int):
    def get(blob: bytes | None) -> float | None:
        env = _envelope(blob)
        return None if env is None else env[i]
    return get


def _st_is_empty(blob: bytes | None) -> int | None:
    if blob is None:
        return None
    return 1 if _envelope(blob) is None else 0


# ---------------------------------------------------------------------------- blobs
def decode_geometries(blobs: Sequence[bytes | None]) -> np.ndarray:
    """GeoPackage blobs to shapely geometries, one vectorised WKB parse."""
    wkbs = [None if b is None else bytes(b[8 + _ENVELOPE_BYTES[(b[3] >> 1) & 7]:])
            for b in blobs]
    return shapely.from_wkb(np.array(wkbs, dtype=object))


def encode_geometries(geoms: Sequence[Any] | np.ndarray, srs_id: int = WGS84_SRS_ID
                      ) -> list[bytes | None]:
    """Shapely geometries to GeoPackage blobs (points without envelope, as GDAL writes them)."""
    arr = np.asarray(geoms, dtype=object)
    wkbs = shapely.to_wkb(arr, byte_order=1, flavor="iso")
    bounds = shapely.bounds(arr)
    empty = shapely.is_empty(arr)
    points = shapely.get_type_id(arr) == 0
    srs = struct.pack("<i", srs_id)
    out: list[bytes | None] = []
    for wkb, (minx, miny, maxx, maxy), is_empty, is_point in zip(
            wkbs, bounds, empty, points, strict=True):
        if wkb is None:
            out.append(None)
        elif is_empty:
            out.append(b"GP\x00\x11" + srs + wkb)
        elif is_point:
            out.append(b"GP\x00\x01" + srs + wkb)
        else:
            out.append(b"GP\x00\x03" + srs + struct.pack("<dddd", minx, maxx, miny, maxy) + wkb)
    return out


# ---------------------------------------------------------------------------- schema
def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Column name -> declared type (upper case), in table order."""
    rows = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    return {r[1]: (r[2] or "").upper() for r in rows}


def geometry_column(conn: sqlite3.Connection, table: str) -> tuple[str, int] | None:
    row = conn.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns "
                       "WHERE table_name = ?", (table,)).fetchone()
    return None if row is None else (row[0], int(row[1]))


def table_exists(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (table,)).fetchone() is not None


def crs_of(conn: sqlite3.Connection, srs_id: int) -> pyproj.CRS | None:
    row = conn.execute("SELECT organization, organization_coordsys_id, definition FROM "
                       "gpkg_spatial_ref_sys WHERE srs_id = ?", (srs_id,)).fetchone()
    if row is None or srs_id <= 0:
        return None
    if str(row[0]).upper() == "EPSG":
        return _epsg_crs(int(row[1]))
    return pyproj.CRS.from_wkt(row[2])


@lru_cache(maxsize=32)
def _epsg_crs(code: int) -> pyproj.CRS:
    return pyproj.CRS.from_epsg(code)


def ensure_srs(conn: sqlite3.Connection, crs: Any) -> int:
    """Register an EPSG-coded CRS in gpkg_spatial_ref_sys; return its srs_id (= EPSG code)."""
    crs = pyproj.CRS.from_user_input(crs)
    code = crs.to_epsg()
    if code is None:
        raise ValueError(f"CRS {crs.to_string()} has no EPSG code")
    if conn.execute("SELECT 1 FROM gpkg_spatial_ref_sys WHERE srs_id = ?", (code,)).fetchone():
        return code
    conn.execute("INSERT INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, "
                 "organization_coordsys_id, definition) VALUES (?, ?, 'EPSG', ?, ?)",
                 (crs.name, code, code, crs.to_wkt("WKT1_GDAL")))
    return code


def sql_type(series: pd.Series) -> str:
    """SQLite/GeoPackage column type for a pandas column."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(series.dtype):
        return "INTEGER"
    if pd.api.types.is_float_dtype(series.dtype):
        return "REAL"
    return "TEXT"


def create_attribute_table(conn: sqlite3.Connection, table: str, columns: dict[str, str],
                           *, primary: str = "fid") -> None:
    """A non-spatial table registered in gpkg_contents, so QGIS and GDAL list it."""
    cols = ", ".join(f"{quote(c)} {t}" for c, t in columns.items())
    conn.execute(f"CREATE TABLE {quote(table)} ({quote(primary)} INTEGER PRIMARY KEY "
                 f"AUTOINCREMENT NOT NULL{', ' if cols else ''}{cols})")
    conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier) "
                 "VALUES (?, 'attributes', ?)", (table, table))


def create_feature_table(conn: sqlite3.Connection, table: str, columns: dict[str, str],
                         geometry_type: str, srs_id: int) -> None:
    """A spatial table without R-tree (optional in the spec; used for derived layers)."""
    cols = "".join(f", {quote(c)} {t}" for c, t in columns.items())
    conn.execute(f"CREATE TABLE {quote(table)} (fid INTEGER PRIMARY KEY AUTOINCREMENT "
                 f"NOT NULL, geom {geometry_type}{cols})")
    conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                 "VALUES (?, 'features', ?, ?)", (table, table, srs_id))
    conn.execute("INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)",
                 (table, geometry_type, srs_id))


def drop_table(conn: sqlite3.Connection, table: str) -> None:
    """Drop a table and its GeoPackage registrations (and GDAL's R-tree, if any)."""
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                "name LIKE ?", (f"rtree_{table}_%",)).fetchall():
        conn.execute(f"DROP TABLE IF EXISTS {quote(name)}")
    conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    for meta in ("gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents",
                 "gpkg_contents"):
        if table_exists(conn, meta):
            conn.execute(f"DELETE FROM {meta} WHERE lower(table_name) = lower(?)", (table,))


def update_extent(conn: sqlite3.Connection, table: str, bounds: Iterable[float]) -> None:
    minx, miny, maxx, maxy = (None if not math.isfinite(v) else float(v) for v in bounds)
    conn.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?, "
                 "last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE table_name = ?",
                 (minx, miny, maxx, maxy, table))


# ---------------------------------------------------------------------------- rows
def read_frame(conn: sqlite3.Connection, table: str, where: str = "",
               params: Sequence[Any] = (), columns: Sequence[str] | None = None
               ) -> pd.DataFrame:
    """Rows of a table as a typed frame (GeoDataFrame if it has geometry); fid dropped.

    Built from one object block rather than column by column: with ~50 columns the
    per-column pandas overhead, not SQLite, is what a few hundred rows cost.
    """
    decl = table_columns(conn, table)
    geom = geometry_column(conn, table)
    wanted = [c for c in decl if c != "fid" and (geom is None or c != geom[0])]
    if columns is not None:
        unknown = [c for c in columns if c not in decl]
        if unknown:
            raise KeyError(f"{table} has no column(s) {', '.join(unknown)}")
        wanted = [c for c in wanted if c in set(columns)]
    select = [*wanted, *([geom[0]] if geom else [])]
    cur = conn.execute(f"SELECT {', '.join(quote(c) for c in select)} FROM {quote(table)} "
                       f"{where}", tuple(params))
    rows = cur.fetchall()
    block = np.array(rows, dtype=object) if rows else np.empty((0, len(select)), dtype=object)
    # One object block for all columns (no per-column dtype inference), then retype the
    # few numeric and boolean columns in place.
    df = pd.DataFrame(block[:, :len(wanted)], columns=wanted, dtype=object, copy=False)
    for name in wanted:
        typed = _typed(block[:, wanted.index(name)], decl[name])
        if typed is not None:
            df[name] = typed
    if geom is None:
        return df
    return gpd.GeoDataFrame(df, geometry=decode_geometries(block[:, -1]),
                            crs=crs_of(conn, geom[1]))


def _typed(values: np.ndarray, decl: str) -> Any:
    """Typed array for a numeric/boolean column; None leaves the object column as it is."""
    if decl == "BOOLEAN":
        return pd.array(values, dtype="boolean")
    if decl in _INT_TYPES:
        return pd.array(values, dtype="Int64")
    if decl in _REAL_TYPES:
        return values.astype(float)
    return None


def insert_frame(conn: sqlite3.Connection, table: str, df: pd.DataFrame, *,
                 srs_id: int = WGS84_SRS_ID, geom_column: str = "geom") -> int:
    """Insert every row of a frame; a GeoDataFrame's geometry goes to ``geom_column``."""
    columns = [c for c in df.columns if not _is_geometry_col(df, c)]
    data = [plain_values(df[c]) for c in columns]
    names = [quote(c) for c in columns]
    if isinstance(df, gpd.GeoDataFrame):
        data.append(encode_geometries(df.geometry.values, srs_id))
        names.append(quote(geom_column))
    if not names:
        return 0
    sql = (f"INSERT INTO {quote(table)} ({', '.join(names)}) "
           f"VALUES ({', '.join('?' * len(names))})")
    conn.executemany(sql, zip(*data, strict=True))
    return len(df)


def _is_geometry_col(df: pd.DataFrame, col: str) -> bool:
    return isinstance(df, gpd.GeoDataFrame) and col == df.geometry.name


def plain_values(series: pd.Series) -> list[Any]:
    """Values SQLite accepts: Python scalars, None for NaN/NA, bools as 0/1."""
    out = []
    for v in series.tolist():
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, (bool, np.bool_)):
            out.append(int(v))
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return out
