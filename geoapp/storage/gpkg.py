"""The GeoPackage (SQLite) repository: the embedded default store.

One file QGIS opens. GDAL writes it at build time; afterwards every read and write goes
through ``sqlite3`` with one connection per thread, WAL journalling (readers never block the
writer) and a busy timeout (two writers queue instead of failing with "database is locked").
Every write runs in one ``BEGIN IMMEDIATE`` transaction and leaves a ``changes`` row.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geoapp.domain.city import City
from geoapp.domain.errors import (
    ConfigError,
    InvalidInput,
    NotFound,
    StorageUnavailable,
    ValidationFailed,
)
from geoapp.domain.messages import Text as _l
from geoapp.storage import build as b
from geoapp.storage import geopackage as gp
from geoapp.storage.accounts import AccountStore
from geoapp.storage.base import SITE_HIT_COLUMNS, Repository
from geoapp.storage.emergency import GpkgEmergencyStore
from geoapp.storage.gpkg_schema import (
    CHANGES,
    DERIVED_PREFIX,
    LAYER_PREFIX,
    META,
    SITE_HITS,
    VERSION_KEY,
    migrate,
)
from geoapp.storage.sites import SiteStore
from geoapp.storage.sources import (
    TABLE_COLUMNS,
    complaint_points,
    convert_frame,
    dumps,
    validate_layer_frame,
)
from geoapp.storage.units import UnitStore

log = logging.getLogger(__name__)


class NotInitialized(ConfigError):
    """The database file is missing or was never built."""


#: SQLite result-code prefixes (``sqlite_errorname``) and message starts that mean the store
#: is unavailable rather than the request wrong, with what the user is told.
_UNAVAILABLE = (
    (("SQLITE_FULL",), "database or disk is full",
     _l("数据库所在磁盘已满，未保存任何内容；请管理员释放磁盘空间。")),
    (("SQLITE_READONLY",), "attempt to write a readonly database",
     _l("数据库只读，未保存任何内容；请管理员检查文件权限和磁盘。")),
    (("SQLITE_BUSY", "SQLITE_LOCKED"), "database is locked",
     _l("数据库繁忙：另一次写入占用太久，未保存任何内容；请稍后再试。")),
    (("SQLITE_IOERR", "SQLITE_CANTOPEN"), "disk i/o error",
     _l("数据库读写失败（磁盘 I/O 错误），未保存任何内容；请管理员检查磁盘。")),
)


def storage_error(exc: sqlite3.Error, path: str | Path) -> StorageUnavailable | None:
    """The domain error for a disk-full / read-only / I/O / busy SQLite error, else None.

    Users must see what happened and that nothing was saved, not "disk I/O error" in a
    traceback; operators get the raw SQLite message in the log.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    for prefixes, start, message in _UNAVAILABLE:
        if name.startswith(prefixes) or text.startswith(start):
            log.error("database %s unavailable: %s (%s)", path, exc, name or "no code")
            return StorageUnavailable(message, details={"database_error": str(exc)})
    return None


class GpkgRepository(SiteStore, AccountStore, UnitStore, GpkgEmergencyStore, Repository):
    """A city's store in one GeoPackage file."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._generation = 0  # bumped by a rebuild so every thread reopens the new file
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> GpkgRepository:
        path = str(settings.get("DATABASE") or "").strip()
        if not path:
            raise ConfigError("DATABASE is empty: set the path of the GeoPackage database")
        return cls(path)

    def __repr__(self) -> str:
        return f"GpkgRepository({str(self.path)!r})"

    # -- connections and transactions ------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.generation == self._generation:
            return conn
        if conn is not None:
            conn.close()
        if not self.path.is_file():
            raise NotInitialized(f"database {self.path} does not exist; build it first "
                                 "(geoapp init-db)")
        conn = None
        try:
            conn = gp.connect(self.path, busy_timeout_ms=self.busy_timeout_ms)
            migrate(conn, str(self.path))
        except BaseException as exc:
            if conn is not None:
                conn.close()
            err = storage_error(exc, self.path) if isinstance(exc, sqlite3.Error) else None
            if err is None:
                raise
            raise err from exc
        self._local.conn = conn
        self._local.generation = self._generation
        return conn

    def _memo(self) -> dict[Any, Any] | None:
        """This thread's cache of small reads, valid while the database is unchanged.

        ``PRAGMA data_version`` changes when another connection (thread or process) commits,
        ``total_changes`` when this one writes, so a cached answer is never stale. Inside a
        transaction nothing is cached (a rollback would leave uncommitted rows in the cache).
        """
        conn = self._conn()
        if conn.in_transaction:
            return None
        stamp = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        memo = getattr(self._local, "memo", None)
        if memo is None or memo[0] != stamp or memo[1] is not conn:
            memo = (stamp, conn, {})
            self._local.memo = memo
        return memo[2]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        if conn.in_transaction:  # nested: the outer block commits or rolls back
            yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        except sqlite3.Error as exc:
            err = storage_error(exc, self.path)
            if err is None:
                raise
            raise err from exc

    def _rollback(self, conn: sqlite3.Connection) -> None:
        """Roll back if SQLite has not already (it does by itself after SQLITE_FULL/IOERR)."""
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("rollback on %s failed: %s", self.path, exc)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def log_event(self, *, user: str, action: str, entity: str, entity_id: str | None = None,
                  details: Mapping[str, Any] | None = None) -> None:
        with self.transaction() as conn:
            self._log(conn, user=user, action=action, entity=entity, entity_id=entity_id,
                      before=None, after=None if details is None else dict(details))

    def _log(self, conn: sqlite3.Connection, *, user: str, action: str, entity: str,
             entity_id: str | None, before: Any, after: Any) -> None:
        if not str(user or "").strip():
            raise InvalidInput("every write must name the user who made it")
        conn.execute(f"INSERT INTO {CHANGES} (at, user, action, entity, entity_id, before, "
                     "after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (b.utc_now(), user, action, entity, entity_id,
                      None if before is None else dumps(before),
                      None if after is None else dumps(after)))

    # -- lifecycle -------------------------------------------------------------------------
    def initialize(self, data_dir: str | Path, force: bool = False) -> dict[str, Any]:
        """Build from the source files unless already built (then report, and whether stale)."""
        if self.is_initialized() and not force:
            meta = self.meta()
            stale = meta.get("content_hash") != b.source_hash(data_dir)
            if stale:
                log.warning("database %s is older than the files in %s; rebuild with force",
                            self.path, data_dir)
            return {"status": "unchanged", "path": str(self.path), "city": meta["city_name"],
                    "built_at": meta["built_at"], "stale": stale,
                    "message": "database already initialised; use force to rebuild"}
        if self.path.exists() and not force:
            raise NotInitialized(f"{self.path} exists but is not a geoapp database; "
                                 "rebuild with force to replace it")
        with self._lock:
            self.close()
            report = b.build_database(self.path, data_dir)
            self._generation += 1
        return report

    def is_initialized(self) -> bool:
        if not self.path.is_file():
            return False
        try:
            row = self._conn().execute(f"SELECT value FROM {META} WHERE key = ?",
                                       (VERSION_KEY,)).fetchone()
        except sqlite3.DatabaseError:
            return False
        return row is not None

    def meta(self) -> dict[str, Any]:
        rows = self._conn().execute(f"SELECT key, value FROM {META}").fetchall()
        out: dict[str, Any] = dict(rows)
        out["schema_version"] = int(out.get("schema_version", 0))
        for key in ("layers", "tables"):
            if key in out:
                out[key] = json.loads(out[key])
        return out

    def city(self) -> City:
        return City.from_mapping(tomllib.loads(self.meta()["city_toml"]))

    def backup(self, path: str | Path) -> Path:
        """Online backup (sqlite3 API): consistent even while others write."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed: a failed backup never leaves a half file
        # where the last good one was.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            dst = sqlite3.connect(tmp)
            try:
                self._conn().backup(dst)
            finally:
                dst.close()
            os.replace(tmp, path)
        finally:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        log.info("backed up %s to %s", self.path, path)
        return path

    # -- layers ----------------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        return list(self.meta()["layers"])

    def _layer_table(self, name: str) -> str:
        if name not in self.layer_names():
            raise NotFound(f"no layer named {name!r}; known: {', '.join(self.layer_names())}")
        return f"{LAYER_PREFIX}{name}"

    def layer(self, name: str) -> gpd.GeoDataFrame:
        return gp.read_frame(self._conn(), self._layer_table(name))

    def replace_layer(self, name: str, gdf: gpd.GeoDataFrame, *, user: str) -> dict[str, Any]:
        table = self._layer_table(name)
        gdf = validate_layer_frame(gdf, name)
        with self.transaction() as conn:
            before = [r[0] for r in conn.execute(f"SELECT id FROM {gp.quote(table)}")]
            existing = gp.table_columns(conn, table)
            for col in gdf.columns:
                if col != gdf.geometry.name and col not in existing:
                    conn.execute(f"ALTER TABLE {gp.quote(table)} ADD COLUMN {gp.quote(col)} "
                                 f"{gp.sql_type(gdf[col])}")
            conn.execute(f"DELETE FROM {gp.quote(table)}")
            gp.insert_frame(conn, table, gdf)
            gp.update_extent(conn, table, gdf.total_bounds)
            report = {"layer": name, "before": len(before), "after": len(gdf)}
            self._log(conn, user=user, action="replace", entity="layer", entity_id=name,
                      before={"count": len(before), "ids": before},
                      after={"count": len(gdf), "ids": list(gdf["id"])})
        return report

    def write_derived_layer(self, name: str, gdf: gpd.GeoDataFrame,
                            *, user: str = "system") -> None:
        if not name.isidentifier():
            raise InvalidInput(f"derived layer name {name!r} must be letters, digits, _")
        if gdf.crs is None:
            raise InvalidInput(f"derived layer {name}: the frame has no CRS")
        table = f"{DERIVED_PREFIX}{name}"
        types = set(gdf.geom_type.dropna())
        geom_type = types.pop().upper() if len(types) == 1 else "GEOMETRY"
        attrs = gdf.drop(columns=gdf.geometry.name)
        with self.transaction() as conn:
            try:
                srs_id = gp.ensure_srs(conn, gdf.crs)
            except ValueError as exc:
                raise InvalidInput(f"derived layer {name}: {exc}") from None
            existed = gp.table_exists(conn, table)
            gp.drop_table(conn, table)
            gp.create_feature_table(conn, table, {c: gp.sql_type(attrs[c]) for c in attrs},
                                    geom_type, srs_id)
            gp.insert_frame(conn, table, gdf, srs_id=srs_id)
            if len(gdf):
                gp.update_extent(conn, table, gdf.total_bounds)
            self._log(conn, user=user, action="replace" if existed else "create",
                      entity="derived_layer", entity_id=name, before=None,
                      after={"count": len(gdf), "crs": gdf.crs.to_string()})

    def derived_layer_names(self) -> list[str]:
        rows = self._conn().execute("SELECT table_name FROM gpkg_contents WHERE table_name "
                                    "LIKE ? ESCAPE '\\' ORDER BY table_name",
                                    (DERIVED_PREFIX.replace("_", "\\_") + "%",)).fetchall()
        return [r[0][len(DERIVED_PREFIX):] for r in rows]

    def derived_layer(self, name: str) -> gpd.GeoDataFrame:
        if name not in self.derived_layer_names():
            raise NotFound(f"no derived layer named {name!r}")
        return gp.read_frame(self._conn(), f"{DERIVED_PREFIX}{name}")

    # -- event tables ----------------------------------------------------------------------
    def _table_names(self) -> list[str]:
        return [*self.meta().get("tables", []), CHANGES, SITE_HITS]

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._table_names():
            raise NotFound(f"no table named {name!r}; known: {', '.join(self._table_names())}")
        return gp.read_frame(self._conn(), name)

    def append_rows(self, name: str, df: pd.DataFrame, *, user: str) -> int:
        if name not in self.meta().get("tables", []):
            raise NotFound(f"no event table named {name!r}")
        with self.transaction() as conn:
            allowed = set(gp.table_columns(conn, name)) - {"fid", "geom"}
            extra = [c for c in df.columns if c not in allowed and c != "geometry"]
            if extra:
                raise ValidationFailed(_l("%(file)s：未知的列 %(columns)s", file=name,
                                          columns=", ".join(extra)))
            raw = pd.DataFrame({c: df[c] if c in df.columns else "" for c in sorted(allowed)},
                               index=pd.RangeIndex(len(df)))
            clean, problems = convert_frame(raw, TABLE_COLUMNS.get(name, {}), name,
                                            row_base=1)
            if problems:
                p = problems[0]
                raise ValidationFailed(
                    _l("%(file)s：%(count)s 处无效值；第一处：第 %(row)s 行 %(column)s 列：%(message)s",
                       file=name, count=len(problems), row=p["row"], column=p["column"],
                       message=p["message"]), details=problems)
            if gp.geometry_column(conn, name):
                points, bad = complaint_points(clean, self.city().metric_crs or None, name,
                                               row_base=1)
                if bad:
                    raise ValidationFailed(
                        _l("%(file)s：%(count)s 处坐标有误；第一处：第 %(row)s 行：%(message)s",
                           file=name, count=len(bad), row=bad[0]["row"],
                           message=bad[0]["message"]), details=bad)
                clean = gpd.GeoDataFrame(clean, geometry=points, crs=4326)
            count = gp.insert_frame(conn, name, clean)
            self._log(conn, user=user, action="append", entity=name, entity_id=None,
                      before=None, after={"rows": count})
        return count

    def replace_site_hits(self, df: pd.DataFrame, *, user: str = "rules") -> int:
        if "point" not in df.columns:  # where the site was checked; the site itself if unsaid
            df = df.assign(point="site")
        missing = [c for c in SITE_HIT_COLUMNS if c not in df.columns]
        if missing:
            raise ValidationFailed(f"site hits: missing column(s) {', '.join(missing)}")
        hits = df.loc[:, list(SITE_HIT_COLUMNS)].copy()
        hits["distance_m"] = pd.to_numeric(hits["distance_m"], errors="raise").astype(float)
        for col in ("site_id", "rule_id", "feature_id", "feature_name", "severity", "point"):
            hits[col] = hits[col].map(lambda v: None if pd.isna(v) else str(v))
        with self.transaction() as conn:
            before = conn.execute(f"SELECT count(*) FROM {SITE_HITS}").fetchone()[0]
            conn.execute(f"DELETE FROM {SITE_HITS}")
            count = gp.insert_frame(conn, SITE_HITS, hits)
            self._log(conn, user=user, action="replace", entity="site_hits", entity_id=None,
                      before={"rows": before}, after={"rows": count})
        return count

    def site_hits(self, site_id: str | None = None) -> pd.DataFrame:
        if site_id is None:
            return gp.read_frame(self._conn(), SITE_HITS, "ORDER BY site_id, rule_id")
        return gp.read_frame(self._conn(), SITE_HITS, "WHERE site_id = ? ORDER BY rule_id",
                             (site_id,))

    def last_change(self, *, only: Iterable[str] = (),
                    exclude: Iterable[str] = ()) -> dict[str, Any] | None:
        keep, skip = tuple(only), tuple(exclude)
        memo = self._memo()
        key = ("last_change", keep, skip)
        if memo is not None and key in memo:
            return dict(memo[key]) if memo[key] else None
        clauses = []
        if keep:
            clauses.append(f"entity IN ({', '.join('?' * len(keep))})")
        if skip:
            clauses.append(f"entity NOT IN ({', '.join('?' * len(skip))})")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        row = self._conn().execute(f"SELECT id, at FROM {CHANGES} {where} "
                                   "ORDER BY id DESC LIMIT 1", [*keep, *skip]).fetchone()
        found = None if row is None else {"id": int(row[0]), "at": row[1]}
        if memo is not None:
            memo[key] = found
        return dict(found) if found else None

    def history(self, entity_id: str, entity: str | None = None) -> list[dict[str, Any]]:
        where, params = "WHERE entity_id = ?", [entity_id]
        if entity is not None:
            where, params = where + " AND entity = ?", [*params, entity]
        rows = self._conn().execute(
            f"SELECT id, at, user, action, entity, entity_id, before, after FROM {CHANGES} "
            f"{where} ORDER BY id", params).fetchall()
        keys = ("id", "at", "user", "action", "entity", "entity_id", "before", "after")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for rec in out:
            for k in ("before", "after"):
                rec[k] = None if rec[k] is None else json.loads(rec[k])
        return out
