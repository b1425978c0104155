"""Build a GeoPackage database from a city's source files, atomically.

Everything is read and validated before a byte is written; the database is then written to a
temporary file next to the target and renamed over it, so a failed or interrupted build never
leaves a half database behind and a running app keeps its old one until the new one is whole.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from geoapp.domain.city import City
from geoapp.storage import geopackage as gp
from geoapp.storage.apptables import copy_app_tables
from geoapp.storage.emergency_in import read_emergency_file
from geoapp.storage.emergency_in import seed_rows as emergency_seed_rows
from geoapp.storage.gpkg_schema import (
    CHANGES,
    DERIVED_PREFIX,
    LAYER_PREFIX,
    META,
    SCHEMA_VERSION,
    SITE_HITS,
    SITES,
    UNIT_REQUIREMENTS,
    migrate,
    schema_version,
)
from geoapp.storage.sources import (
    complaint_points,
    dumps,
    load_city,
    read_layer,
    read_sites,
    read_table,
    source_files,
)
from geoapp.storage.units_in import read_requirements_file, seed_rows

log = logging.getLogger(__name__)

#: The table of the 重污染天气应急减排清单 (GeoPackage migration 11).
EMERGENCY_MEASURES = "emergency_measures"
#: Table names and the schema version, for the modules that read this database.
__all__ = ["CHANGES", "DERIVED_PREFIX", "LAYER_PREFIX", "META", "SCHEMA_VERSION", "SITES",
           "SITE_HITS", "Sources", "build_database", "content_hash", "read_sources", "source_hash",
           "utc_now"]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def content_hash(files: list[Path], root: Path) -> str:
    """SHA-256 over the source files' relative names and bytes: tells a stale database."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes() if f.is_file() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def source_hash(data_dir: str | Path) -> str:
    root = Path(data_dir)
    return content_hash(source_files(root, load_city(root)), root)


@dataclass(frozen=True)
class Sources:
    """A city's source files read and validated: what every backend's build writes."""

    city: City
    layers: dict[str, gpd.GeoDataFrame]
    sites: gpd.GeoDataFrame
    tables: dict[str, pd.DataFrame]
    unit_lists: list[dict[str, Any]]
    meta: dict[str, str]  # the build facts for geoapp_meta (built_at: now)
    emergency: list[dict[str, Any]] = field(default_factory=list)  # docs/emergency.md

    def counts(self) -> dict[str, int]:
        """Rows per layer, table and the sites, for the build report and audit row."""
        counts = {"sites": len(self.sites),
                  **{f"layer:{n}": len(g) for n, g in self.layers.items()},
                  **{n: len(t) for n, t in self.tables.items()}}
        if self.city.unit_requirements:
            counts[UNIT_REQUIREMENTS] = len(self.unit_lists)
        if self.emergency:
            counts[EMERGENCY_MEASURES] = len(self.emergency)
        return counts


def read_sources(data_dir: str | Path) -> Sources:
    """Read and validate every source file of a city (ValidationFailed lists problems)."""
    data_dir = Path(data_dir)
    city = load_city(data_dir)
    layers = {name: read_layer(data_dir, spec) for name, spec in city.layers.items()}
    sites = read_sites(data_dir, city)
    tables = {name: read_table(data_dir, city, name) for name in city.tables}
    unit_lists = read_requirements_file(data_dir, city, layers.get(city.units_layer or ""))
    meta = {"data_dir": str(data_dir.resolve()),
            "content_hash": content_hash(source_files(data_dir, city), data_dir),
            "built_at": utc_now(), "city_name": city.name,
            "city_toml": (data_dir / "city.toml").read_text(encoding="utf-8"),
            "layers": dumps(list(city.layers)), "tables": dumps(list(city.tables))}
    emergency = read_emergency_file(data_dir, city, sites)
    return Sources(city, layers, sites, tables, unit_lists, meta, emergency)


def build_database(target: str | Path, data_dir: str | Path, *,
                   user: str = "system") -> dict[str, Any]:
    """Read, validate and write everything; rename into place only when complete."""
    started = time.perf_counter()
    target = Path(target)
    src = read_sources(data_dir)
    city, layers, sites, tables = src.city, src.layers, src.sites, src.tables
    unit_lists, meta = src.unit_lists, src.meta
    digest, built_at = meta["content_hash"], meta["built_at"]

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.building.gpkg")
    try:
        _write_with_gdal(tmp, layers, sites, tables, built_at, user, city.metric_crs or None)
        counts = src.counts()
        _finish_schema(tmp, meta, counts, user)
        kept = _carry_app_tables(target, tmp)
        _seed_unit_lists(tmp, unit_lists, built_at, user)
        _seed_emergency(tmp, src.emergency, built_at, user)
        _swap_into_place(tmp, target)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    seconds = round(time.perf_counter() - started, 3)
    log.info("built %s from %s in %.2fs (%d sites)", target, data_dir, seconds, len(sites))
    return {"status": "built", "path": str(target), "city": city.name, "content_hash": digest,
            "built_at": built_at, "counts": counts, "kept": kept, "seconds": seconds}


def _carry_app_tables(old_path: Path, tmp: Path) -> dict[str, int]:
    """Accounts, inspection records and the control units' lists made in the app survive a
    rebuild: copy them into the new file.

    The old database is brought forward first (as opening it would), so both files have
    the same columns; one newer than this code is refused (SchemaTooNew) rather than
    losing what its newer columns hold.
    """
    if not old_path.is_file():
        return {}
    new = gp.connect(tmp)
    try:
        old = gp.connect(old_path)
        try:
            migrate(old, str(old_path))
            return copy_app_tables(old, new)
        finally:
            old.close()
    finally:
        new.close()


def _seed_unit_lists(tmp: Path, records: list[dict[str, Any]], built_at: str,
                     user: str) -> int:
    """The control units' lists from the data file, for every unit the carried-over rows
    (a planner's edits and imports) leave; returns how many were seeded."""
    if not records:
        return 0
    cols, rows = seed_rows(records, at=built_at, user=user)
    conn = gp.connect(tmp)
    try:
        conn.execute("BEGIN IMMEDIATE")
        before = conn.total_changes
        conn.executemany(f"INSERT INTO {UNIT_REQUIREMENTS} ({', '.join(cols)}) VALUES "
                         f"({', '.join('?' * len(cols))}) ON CONFLICT (code) DO NOTHING", rows)
        seeded = conn.total_changes - before
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return seeded


def _seed_emergency(tmp: Path, records: list[dict[str, Any]], built_at: str,
                    user: str) -> int:
    """The emergency list from the data file, for every enterprise the carried-over rows
    (edits and imports made in the app) leave; returns how many were seeded."""
    if not records:
        return 0
    cols, rows = emergency_seed_rows(records, at=built_at, user=user)
    conn = gp.connect(tmp)
    try:
        conn.execute("BEGIN IMMEDIATE")
        before = conn.total_changes
        names = ", ".join(f'"{c}"' for c in cols)
        conn.executemany(f"INSERT INTO {EMERGENCY_MEASURES} ({names}) VALUES "
                         f"({', '.join('?' * len(cols))}) ON CONFLICT (key) DO NOTHING", rows)
        seeded = conn.total_changes - before
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return seeded


def _write_with_gdal(tmp: Path, layers: dict[str, gpd.GeoDataFrame], sites: gpd.GeoDataFrame,
                     tables: dict[str, pd.DataFrame], built_at: str, user: str,
                     metric_crs: str | None) -> None:
    """Standard GDAL-written layers (with R-tree) that QGIS opens as they are."""
    for name, gdf in layers.items():
        _write(gdf, tmp, f"{LAYER_PREFIX}{name}")
    sites = sites.assign(version=1, updated_at=built_at, updated_by=user)
    _write(sites, tmp, SITES, geometry_type="Point")
    for name, df in tables.items():
        if name == "complaints":
            df = gpd.GeoDataFrame(df, geometry=complaint_points(df, metric_crs)[0], crs=4326)
            _write(df, tmp, name, geometry_type="Point")
        else:
            _write(df, tmp, name)


def _write(df: pd.DataFrame, path: Path, layer: str, **kwargs: Any) -> None:
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object:  # all-empty object columns need a declared type: text
            df[col] = df[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
            df[col] = df[col].astype(pd.StringDtype(na_value=float("nan")))
    pyogrio.write_dataframe(df, path, layer=layer, driver="GPKG", **kwargs)


def _finish_schema(tmp: Path, meta: dict[str, Any], counts: dict[str, int], user: str) -> None:
    """Every migration step on the GDAL-written file, then the build facts and the first
    audit row."""
    conn = gp.connect(tmp)
    try:
        migrate(conn, str(tmp), new=True)
        assert schema_version(conn) == SCHEMA_VERSION
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO {META} (key, value) VALUES (?, ?)",
                         [(k, str(v)) for k, v in meta.items()])
        conn.execute(f"INSERT INTO {CHANGES} (at, user, action, entity, entity_id, before, "
                     "after) VALUES (?, ?, 'initialize', 'database', NULL, NULL, ?)",
                     (meta["built_at"], user,
                      dumps({"counts": counts, "content_hash": meta["content_hash"]})))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename over the target after flushing the old one's WAL, so no stale log replays."""
    if target.exists():
        try:
            old = sqlite3.connect(target, timeout=30)
            try:
                old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                old.close()
        except sqlite3.DatabaseError as exc:
            log.warning("could not checkpoint old database %s: %s", target, exc)
    os.replace(tmp, target)
