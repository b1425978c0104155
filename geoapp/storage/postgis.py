"""The PostGIS repository: one store in PostgreSQL shared by several app servers.

Same tables and columns as the GeoPackage (so the rest of the app and an operator's SQL read
either), geometry in PostGIS columns with GiST indexes, connections from a psycopg pool.
Every write is one transaction that first takes one advisory lock, so writers queue like
SQLite's ``BEGIN IMMEDIATE`` across every server and ``changes.id`` grows in commit order:
the newest audit id is the change counter other servers poll. See docs/postgis.md.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyproj
import shapely
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from geoapp.domain.city import City
from geoapp.domain.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    NotFound,
    StorageUnavailable,
    ValidationFailed,
)
from geoapp.domain.messages import Text as _l
from geoapp.storage import build as b
from geoapp.storage.apptables import APP_TABLES, COUNTED_TABLES, KEPT_ROWS
from geoapp.storage.base import (
    AUDIT_COLUMNS,
    AUDIT_FILTERS,
    SITE_HIT_COLUMNS,
    Repository,
    clean_audit_filters,
)
from geoapp.storage.emergency_in import seed_rows as emergency_seed_rows
from geoapp.storage.migrations import Migration, Migrations
from geoapp.storage.postgis_accounts import PgAccountStore
from geoapp.storage.postgis_emergency import PgEmergencyStore
from geoapp.storage.postgis_units import PgUnitStore
from geoapp.storage.sites import (
    IGNORED_INPUT,
    IMMUTABLE,
    check_version,
    site_filters,
    site_record,
    site_records,
    validate_site_records,
)
from geoapp.storage.sources import (
    TABLE_COLUMNS,
    complaint_points,
    convert_frame,
    dumps,
    validate_layer_frame,
)
from geoapp.storage.units_in import seed_rows

log = logging.getLogger(__name__)

#: The advisory lock every write transaction holds ('geoapp' in ASCII).
WRITE_LOCK = 0x67656F617070
#: The most connections one process's pool opens.
POOL_MAX = 20
#: How long one connection attempt waits for the server (libpq ``connect_timeout``, whole
#: seconds, at least 2).
CONNECT_TIMEOUT_S = 3
#: How long a request waits for a pooled connection before it answers 503.
POOL_TIMEOUT_S = 5.0
#: After the server could not be reached, requests fail at once for this long instead of
#: each waiting again; the next one after it tries the server afresh.
FAIL_FAST_S = 2.0

_BOOL, _INTS, _FLOATS = 16, {20, 21, 23}, {700, 701, 1700}


class NotInitialized(ConfigError):
    """The database has no geoapp store built in it."""


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


class NoPostgis(ConfigError):
    """The database lacks the PostGIS extension (or cannot see its types): geoapp neither
    builds nor migrates anything in it."""


def require_postgis(conn: psycopg.Connection, where: str) -> None:
    """NoPostgis unless the connection resolves PostGIS's ``geometry`` type, saying what the
    database's administrator runs. (PostGIS is not a trusted extension: only a superuser can
    create it; the database's owner cannot unless a superuser.)"""
    if conn.execute("SELECT to_regtype('geometry')").fetchone()[0] is not None:
        return
    row = conn.execute("SELECT n.nspname, current_database() FROM pg_extension e JOIN "
                       "pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'"
                       ).fetchone()
    if row is None:
        raise NoPostgis(f"数据库没有 PostGIS No PostGIS in the PostgreSQL database {where}; run "
                        "`CREATE EXTENSION postgis;` in it as a PostgreSQL superuser, then run "
                        "geoapp again: it builds its tables there.")
    schema, db = row
    raise NoPostgis(f"数据库看不到 PostGIS PostGIS is installed in schema {schema} of the "
                    f"PostgreSQL database {where}, which is not on its search_path; add it "
                    f"(ALTER DATABASE {q(db)} SET search_path = \"$user\", public, "
                    f"{q(schema)}), then run geoapp again.")


# ---------------------------------------------------------------------------- migrations
def _v1_tables(conn: psycopg.Connection) -> None:
    """The tables that are not the city's: build facts, audit log, rule hits, app data."""
    conn.execute("""
        CREATE TABLE geoapp_meta (key text PRIMARY KEY, value text);
        CREATE TABLE changes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at text NOT NULL, "user" text NOT NULL, action text NOT NULL,
            entity text NOT NULL, entity_id text, before text, after text);
        CREATE INDEX changes_entity ON changes (entity_id, entity);
        CREATE INDEX changes_entity_kind ON changes (entity, id);
        CREATE TABLE site_hits (fid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            site_id text NOT NULL, rule_id text NOT NULL, feature_id text,
            feature_name text, distance_m double precision, severity text,
            point text NOT NULL DEFAULT 'site');
        CREATE INDEX site_hits_site ON site_hits (site_id);
        CREATE TABLE users (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            username text NOT NULL UNIQUE, password_hash text NOT NULL, role text NOT NULL,
            display_name text NOT NULL DEFAULT '', active integer NOT NULL DEFAULT 1,
            created_at text NOT NULL, updated_at text NOT NULL, last_login_at text,
            session_version integer NOT NULL DEFAULT 0, username_key text UNIQUE);
        CREATE TABLE login_attempts (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            at text NOT NULL, username text NOT NULL, remote_addr text NOT NULL DEFAULT '',
            success integer NOT NULL);
        CREATE INDEX login_attempts_user ON login_attempts (username, at);
        CREATE INDEX login_attempts_addr ON login_attempts (remote_addr, at);
        CREATE TABLE inspections (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            at text NOT NULL, inspector text NOT NULL, site_id text,
            lon double precision NOT NULL, lat double precision NOT NULL,
            input_json text NOT NULL, verdict text NOT NULL, hits_json text NOT NULL,
            notes text NOT NULL DEFAULT '', conditional_hits_json text NOT NULL DEFAULT '[]');
        CREATE INDEX inspections_site ON inspections (site_id, at);
        CREATE TABLE unit_requirements (
            fid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            code text NOT NULL UNIQUE, name text NOT NULL DEFAULT '',
            category text NOT NULL DEFAULT '', county text NOT NULL DEFAULT '',
            spatial_layout text NOT NULL DEFAULT '', emission_control text NOT NULL DEFAULT '',
            risk_prevention text NOT NULL DEFAULT '',
            resource_efficiency text NOT NULL DEFAULT '', version integer NOT NULL DEFAULT 1,
            updated_at text NOT NULL, updated_by text NOT NULL,
            origin text NOT NULL DEFAULT 'source');
    """)


def _v2_api_tokens(conn: psycopg.Connection) -> None:
    """API tokens for GIS clients: the SHA-256 of each token (never the token), its owner
    (``users.id``), the owner's role when issued, when made, last used and revoked."""
    conn.execute("""
        CREATE TABLE api_tokens (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            user_id bigint NOT NULL, name text NOT NULL DEFAULT '',
            token_hash text NOT NULL UNIQUE, role text NOT NULL, created_at text NOT NULL,
            created_by text NOT NULL, last_used_at text, revoked_at text, revoked_by text);
        CREATE INDEX api_tokens_user ON api_tokens (user_id);
    """)


def _v3_inspection_photos(conn: psycopg.Connection) -> None:
    """The device's GPS accuracy of an inspection, and its photos (see the GeoPackage step)."""
    conn.execute("""
        ALTER TABLE inspections ADD COLUMN gps_accuracy_m double precision;
        CREATE TABLE inspection_photos (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            inspection_id bigint NOT NULL, site_id text, uploaded_at text NOT NULL,
            uploaded_by text NOT NULL, filename text NOT NULL DEFAULT '',
            media_type text NOT NULL, size integer NOT NULL, width integer NOT NULL,
            height integer NOT NULL, sha256 text NOT NULL, taken_at text,
            exif_lon double precision, exif_lat double precision,
            exif_distance_m double precision, position_mismatch integer NOT NULL DEFAULT 0,
            data bytea NOT NULL, thumb bytea NOT NULL);
        CREATE INDEX inspection_photos_inspection ON inspection_photos (inspection_id);
        CREATE INDEX inspection_photos_site ON inspection_photos (site_id);
    """)


def _v4_emergency_measures(conn: psycopg.Connection) -> None:
    """The 重污染天气应急减排清单 (see the GeoPackage step)."""
    conn.execute("""
        CREATE TABLE emergency_measures (
            fid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            key text NOT NULL UNIQUE, site_id text, name text NOT NULL,
            credit_code text NOT NULL DEFAULT '', county text NOT NULL DEFAULT '',
            industry text NOT NULL DEFAULT '', grade text NOT NULL,
            yellow_cut_pct double precision, yellow_processes text NOT NULL DEFAULT '',
            yellow_transport text NOT NULL DEFAULT '',
            orange_cut_pct double precision, orange_processes text NOT NULL DEFAULT '',
            orange_transport text NOT NULL DEFAULT '',
            red_cut_pct double precision, red_processes text NOT NULL DEFAULT '',
            red_transport text NOT NULL DEFAULT '',
            remarks text NOT NULL DEFAULT '', version integer NOT NULL DEFAULT 1,
            updated_at text NOT NULL, updated_by text NOT NULL,
            origin text NOT NULL DEFAULT 'source');
        CREATE INDEX emergency_measures_site ON emergency_measures (site_id);
    """)


#: The PostgreSQL schema steps (a new step goes at the end; released steps are never
#: edited). The city's own tables are made by the build from its source files.
PG_MIGRATIONS = Migrations("postgis", (
    Migration(1, "meta, audit log, rule hits, accounts, inspections, unit lists", _v1_tables),
    Migration(2, "api_tokens", _v2_api_tokens),
    Migration(3, "inspections.gps_accuracy_m, inspection_photos", _v3_inspection_photos),
    Migration(4, "emergency_measures", _v4_emergency_measures),
))
SCHEMA_VERSION = PG_MIGRATIONS.latest


class _VersionStore:
    """The ``schema_version`` row of ``geoapp_meta`` on one autocommit connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def read_version(self) -> int | None:
        if self.conn.execute("SELECT to_regclass('geoapp_meta')").fetchone()[0] is None:
            return None
        row = self.conn.execute("SELECT value FROM geoapp_meta WHERE key = 'schema_version'"
                                ).fetchone()
        return None if row is None else int(row[0])

    def write_version(self, version: int) -> None:
        self.conn.execute("INSERT INTO geoapp_meta (key, value) VALUES ('schema_version', %s) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                          (str(version),))

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield self.conn


# ---------------------------------------------------------------------------- frames
def _pg_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(series.dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(series.dtype):
        return "double precision"
    return "text"


def _plain(series: pd.Series) -> list[Any]:
    """Python values for the driver: None for NaN/NA, numpy scalars as Python ones."""
    out: list[Any] = []
    for v in series.tolist():
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            out.append(None)
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return out


def _ewkb(geoms: Any, srid: int) -> list[str | None]:
    """Hex EWKB with the SRID, as PostGIS reads it in COPY and parameters."""
    arr = shapely.set_srid(np.asarray(geoms, dtype=object), srid)
    return list(shapely.to_wkb(arr, hex=True, include_srid=True, flavor="extended"))


def _attributes(df: pd.DataFrame) -> list[str]:
    geom = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    return [c for c in df.columns if c != geom]


def _create_table(conn: psycopg.Connection, table: str, df: pd.DataFrame, *,
                  geometry: str | None = None, srid: int = 4326) -> None:
    """A table with the frame's columns (and ``geom`` of ``geometry`` type with a GiST
    index), keyed by an integer ``fid``."""
    cols = "".join(f", {q(c)} {_pg_type(df[c])}" for c in _attributes(df))
    geom = f", geom geometry({geometry}, {int(srid)})" if geometry else ""
    conn.execute(f"CREATE TABLE {q(table)} (fid bigint GENERATED BY DEFAULT AS IDENTITY "
                 f"PRIMARY KEY{cols}{geom})")
    if geometry:
        conn.execute(f"CREATE INDEX {q(table + '_geom')} ON {q(table)} USING gist (geom)")


def _copy_frame(conn: psycopg.Connection, table: str, df: pd.DataFrame, *,
                srid: int = 4326) -> int:
    """Every row of a frame in one COPY; a GeoDataFrame's geometry goes to ``geom``."""
    cols = _attributes(df)
    data = [_plain(df[c]) for c in cols]
    names = [q(c) for c in cols]
    if isinstance(df, gpd.GeoDataFrame):
        data.append(_ewkb(df.geometry.values, srid))
        names.append("geom")
    if not names or df.empty:
        return 0
    with conn.cursor().copy(f"COPY {q(table)} ({', '.join(names)}) FROM STDIN") as copy:
        for row in zip(*data, strict=True):
            copy.write_row(row)
    return len(df)


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    cur = conn.execute(f"SELECT * FROM {q(table)} WHERE false")
    return [d.name for d in cur.description]


def _read_frame(conn: psycopg.Connection, table: str, tail: str = "",
                params: Sequence[Any] = (), *, columns: Sequence[str] | None = None,
                crs: Any = 4326) -> pd.DataFrame:
    """Rows as a typed frame like the GeoPackage's (a GeoDataFrame when the table has
    ``geom``; fid dropped): booleans ``boolean``, integers ``Int64``, reals float, the rest
    objects. Read in binary, so geometries arrive as EWKB bytes."""
    select = "*"
    if columns is not None:
        have = _columns(conn, table)
        unknown = [c for c in columns if c not in have]
        if unknown:
            raise KeyError(f"{table} has no column(s) {', '.join(unknown)}")
        select = ", ".join(q(c) for c in have if c in set(columns) or c == "geom")
    with conn.cursor(binary=True) as cur:
        cur.execute(f"SELECT {select} FROM {q(table)} {tail}", tuple(params))
        desc = [(d.name, d.type_code) for d in cur.description]
        rows = cur.fetchall()
    names = [n for n, _ in desc]
    block = np.empty((len(rows), len(names)), dtype=object)
    for i, row in enumerate(rows):
        block[i, :] = row
    keep = [i for i, n in enumerate(names) if n not in ("fid", "geom")]
    df = pd.DataFrame(block[:, keep], columns=[names[i] for i in keep], dtype=object,
                      copy=False)
    for i in keep:
        name, oid = desc[i]
        if oid == _BOOL:
            df[name] = pd.array(block[:, i], dtype="boolean")
        elif oid in _INTS:
            df[name] = pd.array(block[:, i], dtype="Int64")
        elif oid in _FLOATS:
            df[name] = block[:, i].astype(float)
    if "geom" not in names:
        return df
    wkb = [None if v is None else bytes(v) for v in block[:, names.index("geom")]]
    geoms = shapely.from_wkb(np.array(wkb, dtype=object))
    return gpd.GeoDataFrame(df, geometry=geoms, crs=crs)


def promote_to_multi(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Single parts as multi-part geometries where a layer mixes the two (Polygon with
    MultiPolygon...), as GDAL writes such a layer to the GeoPackage: both backends then
    hand back the same geometries."""
    types = set(gdf.geom_type.dropna())
    singles = {t for t in types if not t.startswith("Multi") and f"Multi{t}" in types}
    if not singles:
        return gdf
    geoms = np.asarray(gdf.geometry.values, dtype=object).copy()
    for i, geom in enumerate(geoms):
        if geom is not None and geom.geom_type in singles:
            geoms[i] = getattr(shapely, f"multi{geom.geom_type.lower()}s")([geom])
    return gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))


def client_program(name: str) -> str:
    """A PostgreSQL client program: on the PATH, else Debian's versioned folders."""
    found = shutil.which(name) or next(iter(sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise StorageUnavailable(f"{name} is not installed (Debian: postgresql-client-15)")
    return found


def _pg_restore_list(path: str | Path) -> str:
    done = subprocess.run([client_program("pg_restore"), "--list", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ValidationFailed(f"{path} is not a PostgreSQL dump (pg_restore: "
                               f"{done.stderr.strip()[:300]}); nothing was changed")
    return done.stdout


def is_dump(path: str | Path) -> bool:
    """Whether a file is a ``pg_dump --format=custom`` archive (by its magic bytes)."""
    with open(path, "rb") as f:
        return f.read(5) == b"PGDMP"


def _dump_tables(listing: str) -> set[str]:
    """The tables whose rows a dump holds (its ``TABLE DATA`` entries, empty ones too)."""
    return {m.group(1) for m in _TABLE_DATA.finditer(listing)}


_TABLE_DATA = re.compile(r"^\d+; \d+ \d+ TABLE DATA \S+ (\S+) ", re.MULTILINE)
_COPY = re.compile(r"^COPY \S+\.(\S+) .*FROM stdin;$")


def _dump_rows(path: str | Path, tables: Sequence[str]) -> Iterator[tuple[str, str]]:
    """Every row of the dump's ``tables`` as (table, COPY text line), in one ``pg_restore``
    pass, streamed (an audit log of millions of rows is counted, never held)."""
    if not tables:
        return
    args = [client_program("pg_restore"), "--data-only", *[f"--table={t}" for t in tables],
            "-f", "-", str(path)]
    with tempfile.TemporaryFile() as stderr, subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=stderr, text=True, encoding="utf-8",
            errors="replace") as proc:
        assert proc.stdout is not None
        table = None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if table is None:
                found = _COPY.match(line)
                table = found.group(1).strip('"') if found else None
            elif line == "\\.":
                table = None
            else:
                yield table, line
        if proc.wait() != 0:
            stderr.seek(0)
            raise ValidationFailed(f"{path}: pg_restore cannot read its rows: "
                                   f"{stderr.read().decode(errors='replace').strip()[:300]}")


def dump_facts(path: str | Path) -> dict[str, Any]:
    """The schema version, city, build time and row counts of a geoapp dump: the tables a
    GeoPackage backup's report counts (``COUNTED_TABLES``, those the dump has), read in one
    pass. ValidationFailed for a file that is no PostgreSQL dump or holds no geoapp
    database."""
    if not Path(path).is_file():
        raise ValidationFailed(f"{path}: no such file")
    present = _dump_tables(_pg_restore_list(path))
    counts = {t: 0 for t in COUNTED_TABLES if t in present}
    meta: dict[str, str] = {}
    for table, row in _dump_rows(path, [t for t in ("geoapp_meta", *counts) if t in present]):
        if table == "geoapp_meta":
            key, _, value = row.partition("\t")
            meta[key] = value
        elif table in counts:
            counts[table] += 1
    if not meta.get("schema_version", "").isdigit():
        raise ValidationFailed(f"{path} is not a geoapp database dump (no schema version)")
    return {"schema_version": int(meta["schema_version"]), "city": meta.get("city_name"),
            "built_at": meta.get("built_at"), "counts": counts}


#: One ``key=value`` of a libpq connection string (a value may be single-quoted).
_CONNINFO_PAIR = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def shown_url(url: str) -> str:
    """A PostgreSQL connection string as it may be printed: ``postgresql://user@host:port/db``
    with any other parameters but the password, as written (a ``key=value`` string in the
    URL form, a Unix socket's folder as the ``host`` parameter)."""
    url = url.strip()
    if "://" not in url:  # key=value form: host=... dbname=... password=...
        pairs = {k: v.strip("'") for k, v in _CONNINFO_PAIR.findall(url) if k != "password"}
        user, host, port, db = (pairs.pop(k, "") for k in ("user", "host", "port", "dbname"))
        if host.startswith("/"):
            pairs["host"], host = host, ""
        return (f"postgresql://{user}{'@' if user else ''}{host}{':' if port else ''}{port}"
                f"/{db}" + (f"?{urlencode(pairs, safe='/')}" if pairs else ""))
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(invalid URL)"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k != "password"]
    return (f"{parts.scheme}://{user}{at}{hostport}{parts.path}"
            + (f"?{urlencode(query, safe='/')}" if query else ""))


def check_url(url: str) -> None:
    """ConfigError, in one line without the password, unless ``url`` is a PostgreSQL
    connection string libpq reads (``postgresql://`` or ``postgres://`` URL, or
    ``key=value`` pairs): libpq's own message quotes the string, password included."""
    scheme = url.partition("://")[0].lower() if "://" in url else None
    problem = None
    if scheme is not None and scheme not in ("postgresql", "postgres"):
        problem = f"its scheme is {scheme}://, not postgresql://"
    else:
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            problem = "libpq cannot read it (a bracket, quote or key=value pair malformed?)"
    if problem:
        raise ConfigError(f"DATABASE_URL {shown_url(url)} is not a PostgreSQL connection "
                          f"string: {problem}; write postgresql://user:password@host:port/"
                          "database")


#: How many of the newest audit rows ``last_change`` looks through before walking the kinds.
RECENT_CHANGES = 64
#: The newest audit row of each kind of entity, by a loose index scan of ``changes (entity,
#: id)``: the last entry of the index, then the last one of each smaller entity in turn, one
#: index probe per kind (a score of kinds) however long the log.
_ENTITY_HEADS = """WITH RECURSIVE heads(entity, id, at) AS (
        (SELECT entity, id, at FROM changes ORDER BY entity DESC, id DESC LIMIT 1)
      UNION ALL
        SELECT smaller.* FROM heads CROSS JOIN LATERAL (
            SELECT entity, id, at FROM changes WHERE entity < heads.entity
            ORDER BY entity DESC, id DESC LIMIT 1) smaller)"""


def last_change_query(only: Iterable[str] = (),
                      exclude: Iterable[str] = ()) -> tuple[str, list[Any]]:
    """The SQL (and parameters) of :meth:`PostgisRepository.last_change`: the newest audit
    row among the kinds ``only`` names (all if empty) less those in ``exclude``.

    ``WHERE entity ... ORDER BY id DESC LIMIT 1`` alone walks the id index back past every
    row of the other kinds: after 200,000 logins since the last edit, 3,000 pages and 30 ms
    on every request that asks whether the rule engine's inputs changed. So the newest
    ``RECENT_CHANGES`` rows are looked through first (usually one of them is of the kinds
    asked for: the answer in a few pages), and only when none is, the kinds' newest rows
    are walked (``UNION ALL ... LIMIT 1`` never starts the walk when the first part
    answered)."""
    keep, skip = list(only), list(exclude)
    if not keep and not skip:
        return "SELECT id, at FROM changes ORDER BY id DESC LIMIT 1", []
    clauses, params = [], []
    if keep:
        clauses.append("entity = ANY(%s)")
        params.append(keep)
    if skip:
        clauses.append("NOT (entity = ANY(%s))")
        params.append(skip)
    where = " AND ".join(clauses)
    return (f"{_ENTITY_HEADS} (SELECT id, at FROM (SELECT id, at, entity FROM changes ORDER BY "
            f"id DESC LIMIT {RECENT_CHANGES}) recent WHERE {where} ORDER BY id DESC LIMIT 1) "
            f"UNION ALL (SELECT id, at FROM heads WHERE {where} ORDER BY id DESC LIMIT 1) "
            "LIMIT 1", [*params, *params])


def _literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings)."""
    return "'" + text.replace("'", "''") + "'"


def _prefixed(prefix: str) -> str:
    """A LIKE pattern for names starting with ``prefix`` (its ``_`` taken literally)."""
    return prefix.replace("_", "\\_") + "%"


def _where(pairs: list[tuple[str, list[str]]]) -> tuple[str, list[Any]]:
    clauses = [f"{q(col)} = ANY(%s)" for col, _ in pairs]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", [v for _, v in pairs]


# ---------------------------------------------------------------------------- repository
class PostgisRepository(PgAccountStore, PgUnitStore, PgEmergencyStore, Repository):
    """A city's store in a PostgreSQL database with PostGIS."""

    def __init__(self, url: str, *, pool_max: int = POOL_MAX) -> None:
        self.url = url
        self.pool_max = pool_max
        self._pool: ConnectionPool | None = None
        self._pid = 0
        self._open_lock = threading.RLock()
        self._local = threading.local()
        self._down_until = 0.0  # time.monotonic() before which the server counts as down
        self._down_error: StorageUnavailable | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PostgisRepository:
        url = str(settings.get("DATABASE_URL") or "").strip()
        if not url:
            raise ConfigError("DATABASE_URL is empty: the postgis backend needs the "
                              "postgresql:// URL of a database with PostGIS")
        check_url(url)
        return cls(url)

    @property
    def where(self) -> str:
        """The database named without its password (``postgresql://user@host:port/db``), for
        messages and reports: the same words as the "not built" message's."""
        return shown_url(self.url)

    def __repr__(self) -> str:
        return f"PostgisRepository({self.where!r})"

    # -- connections and transactions ------------------------------------------------------
    def _get_pool(self) -> ConnectionPool:
        """The process's pool, opened on first use (again after ``close`` or a fork), with
        PostGIS checked for and the schema brought forward once."""
        pool = self._pool
        if pool is not None and self._pid == os.getpid():
            return pool
        self._fail_fast()
        with self._open_lock:
            if self._pool is not None and self._pid == os.getpid():
                return self._pool
            self._fail_fast()  # another thread just found the server down
            try:  # one plain connection first: a wrong URL fails at once, with its reason
                with psycopg.connect(self.url, autocommit=True,
                                     connect_timeout=CONNECT_TIMEOUT_S) as conn:
                    require_postgis(conn, self.where)
                    PG_MIGRATIONS.migrate(_VersionStore(conn), self.where)
            except psycopg.OperationalError as exc:
                raise self._went_down(None, exc) from exc
            pool = ConnectionPool(self.url, min_size=1, max_size=self.pool_max, open=False,
                                  kwargs={"autocommit": True,
                                          "connect_timeout": CONNECT_TIMEOUT_S},
                                  check=ConnectionPool.check_connection,
                                  timeout=POOL_TIMEOUT_S, name="geoapp")
            try:
                pool.open(wait=True, timeout=POOL_TIMEOUT_S)
            except PoolTimeout as exc:
                pool.close()
                raise self._went_down(None, exc) from exc
            self._pool, self._pid = pool, os.getpid()
            return pool

    def _fail_fast(self) -> None:
        """StorageUnavailable at once while the server counts as down (``FAIL_FAST_S`` after
        it could not be reached): requests then never queue behind connection attempts."""
        error = self._down_error
        if error is not None and time.monotonic() < self._down_until:
            raise StorageUnavailable(error.message, details=error.details)

    def _went_down(self, pool: ConnectionPool | None, exc: BaseException) -> StorageUnavailable:
        """The server could not be reached: fail fast for ``FAIL_FAST_S``, and drop the pool
        (closed in the background: its workers may be inside a connection attempt) so the
        next request after that opens a new one at once instead of waiting out the pool's
        reconnection back-off."""
        error = self._unavailable(exc)
        with self._open_lock:
            self._down_error, self._down_until = error, time.monotonic() + FAIL_FAST_S
            if pool is not None and self._pool is pool:
                self._pool = None
                threading.Thread(target=pool.close, kwargs={"timeout": CONNECT_TIMEOUT_S},
                                 name="geoapp-pool-close", daemon=True).start()
        return error

    def _unavailable(self, exc: BaseException) -> StorageUnavailable:
        """What the user is told when the server cannot do the work; nothing was saved."""
        log.error("database %s unavailable: %s", self.where, exc)
        if isinstance(exc, psycopg.errors.DiskFull):
            message = _l("数据库所在磁盘已满，未保存任何内容；请管理员释放磁盘空间。")
        elif isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
            message = _l("数据库只读（服务器设置了只读事务，或是备用服务器），未保存任何内容；"
                         "请管理员检查数据库服务器。")
        elif isinstance(exc, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)):
            message = _l("数据库繁忙：另一次写入占用太久，未保存任何内容；请稍后再试。")
        else:
            message = _l("无法连接数据库服务器，未保存任何内容；请管理员检查数据库服务。")
        return StorageUnavailable(message, details={"database_error": str(exc).strip()})

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """The calling thread's transaction connection, else one borrowed from the pool."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        pool = self._get_pool()
        connected = False
        try:
            with pool.connection() as conn:
                connected = True
                yield conn
        except psycopg.errors.UndefinedTable:
            if not self.is_initialized():
                raise NotInitialized(f"database {self.where} has no geoapp data; build it "
                                     "first (geoapp init-db)") from None
            raise
        except (PoolTimeout, PoolClosed, psycopg.OperationalError) as exc:
            if not connected:  # no connection to be had: the server is down or unreachable
                raise self._went_down(pool, exc) from exc
            raise self._unavailable(exc) from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One write transaction holding the write lock; nested blocks join it."""
        if getattr(self._local, "conn", None) is not None:
            yield self._local.conn
            return
        with self._connection() as conn:
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                    self._local.conn = conn
                    yield conn
            finally:
                self._local.conn = None

    def close(self) -> None:
        """Close the pool (a later call opens a new one)."""
        with self._open_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()

    def _log(self, conn: psycopg.Connection, *, user: str, action: str, entity: str,
             entity_id: str | None, before: Any, after: Any) -> None:
        if not str(user or "").strip():
            raise InvalidInput("every write must name the user who made it")
        conn.execute('INSERT INTO changes (at, "user", action, entity, entity_id, before, '
                     "after) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (b.utc_now(), user, action, entity, entity_id,
                      None if before is None else dumps(before),
                      None if after is None else dumps(after)))

    def log_event(self, *, user: str, action: str, entity: str, entity_id: str | None = None,
                  details: Mapping[str, Any] | None = None) -> None:
        with self.transaction() as conn:
            self._log(conn, user=user, action=action, entity=entity, entity_id=entity_id,
                      before=None, after=None if details is None else dict(details))

    # -- lifecycle -------------------------------------------------------------------------
    def initialize(self, data_dir: Any, force: bool = False) -> dict[str, Any]:
        """Build from the source files unless built (then report, and whether stale): read
        and validate everything, then replace the city's tables in one transaction."""
        if self.is_initialized() and not force:
            meta = self.meta()
            stale = meta.get("content_hash") != b.source_hash(data_dir)
            if stale:
                log.warning("database %s is older than the files in %s; rebuild with force",
                            self.where, data_dir)
            return {"status": "unchanged", "path": self.where, "city": meta["city_name"],
                    "built_at": meta["built_at"], "stale": stale,
                    "message": "database already initialised; use force to rebuild"}
        started = time.perf_counter()
        src = b.read_sources(data_dir)
        user = "system"
        with self._connection() as conn:
            PG_MIGRATIONS.migrate(_VersionStore(conn), self.where, start=0)
        rebuilt = self.is_initialized()
        counts = src.counts()
        with self.transaction() as conn:
            self._drop_city_tables(conn, list(src.tables))
            self._write_city(conn, src, user)
            kept = self._kept_app_rows(conn) if rebuilt else {}
            self._seed_unit_lists(conn, src, user)
            self._seed_emergency(conn, src, user)
            conn.execute("DELETE FROM geoapp_meta WHERE key <> 'schema_version'")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO geoapp_meta (key, value) VALUES (%s, %s)",
                                [(k, str(v)) for k, v in src.meta.items()])
            conn.execute("DELETE FROM changes")  # the log restarts; its ids carry on
            conn.execute('INSERT INTO changes (at, "user", action, entity, entity_id, before, '
                         "after) VALUES (%s, %s, 'initialize', 'database', NULL, NULL, %s)",
                         (src.meta["built_at"], user,
                          dumps({"counts": counts, "content_hash": src.meta["content_hash"]})))
        seconds = round(time.perf_counter() - started, 3)
        log.info("built %s from %s in %.2fs (%d sites)", self.where, data_dir, seconds,
                 len(src.sites))
        return {"status": "built", "path": self.where, "city": src.city.name,
                "content_hash": src.meta["content_hash"], "built_at": src.meta["built_at"],
                "counts": counts, "kept": kept, "seconds": seconds}

    def _drop_city_tables(self, conn: psycopg.Connection, tables: list[str]) -> None:
        """The tables a build makes from the source files (and the derived layers)."""
        names = [b.SITES, *self._meta_list(conn, "tables"), *tables]
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND "
            "(tablename LIKE %s OR tablename LIKE %s OR tablename = ANY(%s))",
            (_prefixed(b.LAYER_PREFIX), _prefixed(b.DERIVED_PREFIX), names)).fetchall()
        for (name,) in rows:
            conn.execute(f"DROP TABLE {q(name)}")
        conn.execute("DELETE FROM site_hits")

    def _write_city(self, conn: psycopg.Connection, src: b.Sources, user: str) -> None:
        for name, gdf in src.layers.items():
            table = f"{b.LAYER_PREFIX}{name}"
            gdf = promote_to_multi(gdf)
            _create_table(conn, table, gdf, geometry="Geometry")
            _copy_frame(conn, table, gdf)
        sites = src.sites.assign(version=1, updated_at=src.meta["built_at"], updated_by=user)
        _create_table(conn, b.SITES, sites, geometry="Point")
        _copy_frame(conn, b.SITES, sites)
        conn.execute("CREATE UNIQUE INDEX sites_id ON sites (id)")
        conn.execute("CREATE INDEX sites_type ON sites (site_type)")
        for name, df in src.tables.items():
            if name == "complaints":
                points = complaint_points(df, src.city.metric_crs or None)[0]
                df = gpd.GeoDataFrame(df, geometry=points, crs=4326)
                _create_table(conn, name, df, geometry="Point")
            else:
                _create_table(conn, name, df)
            _copy_frame(conn, name, df)

    @staticmethod
    def _kept_app_rows(conn: psycopg.Connection) -> dict[str, int]:
        """How many app-made rows the rebuild kept (it never touches them)."""
        out = {}
        for name in APP_TABLES:
            where = f" WHERE {KEPT_ROWS[name]}" if name in KEPT_ROWS else ""
            out[name] = int(conn.execute(f"SELECT count(*) FROM {q(name)}{where}"
                                         ).fetchone()[0])
        return out

    @staticmethod
    def _seed_unit_lists(conn: psycopg.Connection, src: b.Sources, user: str) -> None:
        """The lists from the data file, for every unit the app-made rows leave."""
        conn.execute("DELETE FROM unit_requirements WHERE origin = 'source'")
        if not src.unit_lists:
            return
        cols, rows = seed_rows(src.unit_lists, at=src.meta["built_at"], user=user)
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO unit_requirements ({', '.join(map(q, cols))}) "
                            f"VALUES ({', '.join(['%s'] * len(cols))}) "
                            "ON CONFLICT (code) DO NOTHING", rows)

    @staticmethod
    def _seed_emergency(conn: psycopg.Connection, src: b.Sources, user: str) -> None:
        """The emergency list from the data file, for every enterprise the app-made rows
        leave."""
        conn.execute("DELETE FROM emergency_measures WHERE origin = 'source'")
        if not src.emergency:
            return
        cols, rows = emergency_seed_rows(src.emergency, at=src.meta["built_at"], user=user)
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO emergency_measures ({', '.join(map(q, cols))}) "
                            f"VALUES ({', '.join(['%s'] * len(cols))}) "
                            "ON CONFLICT (key) DO NOTHING", rows)

    def is_initialized(self) -> bool:
        with self._connection() as conn:
            if conn.execute("SELECT to_regclass('geoapp_meta')").fetchone()[0] is None:
                return False
            return conn.execute("SELECT 1 FROM geoapp_meta WHERE key = 'built_at'"
                                ).fetchone() is not None

    @staticmethod
    def _meta_list(conn: psycopg.Connection, key: str) -> list[str]:
        row = conn.execute("SELECT value FROM geoapp_meta WHERE key = %s", (key,)).fetchone()
        return [] if row is None else list(json.loads(row[0]))

    def meta(self) -> dict[str, Any]:
        with self._connection() as conn:
            rows = conn.execute("SELECT key, value FROM geoapp_meta").fetchall()
        out: dict[str, Any] = dict(rows)
        if "built_at" not in out:  # migrated but never built
            raise NotInitialized(f"database {self.where} has no geoapp data; build it first "
                                 "(geoapp init-db)")
        out["schema_version"] = int(out.get("schema_version", 0))
        for key in ("layers", "tables"):
            if key in out:
                out[key] = json.loads(out[key])
        return out

    def city(self) -> City:
        return City.from_mapping(tomllib.loads(self.meta()["city_toml"]))

    # -- backup and restore (pg_dump / pg_restore) -----------------------------------------
    def _client(self, program: str, *args: str, stdin: Any = None,
                input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL client program on this database; the password, if any, goes in
        the environment, never on the command line."""
        info = conninfo_to_dict(self.url)
        env = {**os.environ, "PGCONNECT_TIMEOUT": str(int(CONNECT_TIMEOUT_S))}
        if info.get("password"):
            env["PGPASSWORD"] = str(info.pop("password"))
        try:
            done = subprocess.run([client_program(program), *args,
                                   f"--dbname={make_conninfo(**info)}"],
                                  stdin=stdin, input=input_text, capture_output=True,
                                  text=True, env=env, check=False)
        except OSError as exc:
            raise StorageUnavailable(f"{program} could not run: {exc}") from None
        if done.returncode != 0:
            log.error("%s on %s failed: %s", program, self.where, done.stderr.strip())
            raise StorageUnavailable(f"{program} failed: {done.stderr.strip()[:2000]}",
                                     details={"database_error": done.stderr.strip()})
        return done

    def backup(self, path: str | Path) -> Path:
        """``pg_dump --format=custom`` of the database: one snapshot, consistent while the
        servers write. Written beside ``path`` and renamed, so a failed backup never leaves
        a half file where the last good one was."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            self._client("pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                         f"--file={tmp}")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("backed up %s to %s", self.where, path)
        return path

    def restore(self, path: str | Path, *, user: str = "system") -> dict[str, Any]:
        """Replace every geoapp table with the backup's, in one transaction under the write
        lock (``pg_restore`` of the dump's tables through ``psql --single-transaction``),
        then bring it forward with the migrations. A file that is no geoapp dump, or one
        written by a newer release, is refused before anything changes. The audit log's
        ids carry on from where they were, so the change counter never goes back."""
        facts = dump_facts(path)
        PG_MIGRATIONS.check(facts["schema_version"], str(path))
        listing = "\n".join(
            line for line in _pg_restore_list(path).splitlines()
            if not any(word in line for word in (" EXTENSION ", " SCHEMA - ")))
        list_file = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.list")
        list_file.write_text(listing + "\n", encoding="utf-8")
        try:
            script = subprocess.run([client_program("pg_restore"), "--no-owner",
                                     "--no-privileges", f"--use-list={list_file}", "-f", "-",
                                     str(path)], capture_output=True, text=True, check=False)
        finally:
            list_file.unlink(missing_ok=True)
        if script.returncode != 0:
            raise ValidationFailed(f"{path}: pg_restore cannot read it: "
                                   f"{script.stderr.strip()[:500]}")
        with self._connection() as conn:
            last = conn.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone()[0] \
                if conn.execute("SELECT to_regclass('changes')").fetchone()[0] else 0
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND "
                "tablename <> 'spatial_ref_sys'").fetchall()]
        drops = "".join(f"DROP TABLE IF EXISTS {q(t)} CASCADE;\n" for t in tables)
        after = ("RESET search_path;\n"  # the dump's script empties it
                 f"SELECT setval(pg_get_serial_sequence('changes', 'id'), "
                 f"greatest({int(last)}, (SELECT coalesce(max(id), 0) FROM changes)));\n"
                 "INSERT INTO changes (at, \"user\", action, entity, entity_id, before, after) "
                 f"VALUES ('{b.utc_now()}', {_literal(user)}, 'restore', 'database', NULL, "
                 f"NULL, {_literal(dumps({'file': Path(path).name, **facts}))});\n")
        self._client("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                     "-f", "-", input_text=(f"SELECT pg_advisory_xact_lock({WRITE_LOCK});\n{drops}"
                                 f"{script.stdout}\n{after}"))
        with self._connection() as conn:
            applied = PG_MIGRATIONS.migrate(_VersionStore(conn), self.where)
        log.warning("restored %s from %s", self.where, path)
        return {"database": self.where, "restored_from": str(path), "city": facts["city"],
                "schema_version": {"backup": facts["schema_version"],
                                   "restored": self.meta()["schema_version"]},
                "migrations": [f"{s.version}: {s.name}" for s in applied]}

    # -- layers ----------------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        return list(self.meta()["layers"])

    def _layer_table(self, name: str) -> str:
        names = self.layer_names()
        if name not in names:
            raise NotFound(f"no layer named {name!r}; known: {', '.join(names)}")
        return f"{b.LAYER_PREFIX}{name}"

    def layer(self, name: str) -> gpd.GeoDataFrame:
        table = self._layer_table(name)
        with self._connection() as conn:
            return _read_frame(conn, table, "ORDER BY fid")

    def feature_counts(self) -> dict[str, int]:
        names = self.layer_names()
        with self._connection() as conn:
            return {n: int(conn.execute(f"SELECT count(*) FROM {q(b.LAYER_PREFIX + n)}"
                                        ).fetchone()[0]) for n in names}

    def replace_layer(self, name: str, gdf: gpd.GeoDataFrame, *, user: str) -> dict[str, Any]:
        table = self._layer_table(name)
        gdf = validate_layer_frame(gdf, name)
        with self.transaction() as conn:
            before = [r[0] for r in conn.execute(f"SELECT id FROM {q(table)} ORDER BY fid")]
            existing = set(_columns(conn, table))
            for col in _attributes(gdf):
                if col not in existing:
                    conn.execute(f"ALTER TABLE {q(table)} ADD COLUMN {q(col)} "
                                 f"{_pg_type(gdf[col])}")
            conn.execute(f"DELETE FROM {q(table)}")
            _copy_frame(conn, table, gdf)
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
        srid = pyproj.CRS.from_user_input(gdf.crs).to_epsg()
        if srid is None:
            raise InvalidInput(f"derived layer {name}: CRS {gdf.crs.to_string()} has no "
                               "EPSG code")
        table = f"{b.DERIVED_PREFIX}{name}"
        types = set(gdf.geom_type.dropna())
        geom_type = types.pop() if len(types) == 1 else "Geometry"
        with self.transaction() as conn:
            existed = conn.execute("SELECT to_regclass(%s)", (q(table),)).fetchone()[0]
            conn.execute(f"DROP TABLE IF EXISTS {q(table)}")
            _create_table(conn, table, gdf, geometry=geom_type, srid=srid)
            _copy_frame(conn, table, gdf, srid=srid)
            self._log(conn, user=user, action="replace" if existed else "create",
                      entity="derived_layer", entity_id=name, before=None,
                      after={"count": len(gdf), "crs": gdf.crs.to_string()})

    def derived_layer_names(self) -> list[str]:
        with self._connection() as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = "
                                "current_schema() AND tablename LIKE %s ORDER BY tablename",
                                (_prefixed(b.DERIVED_PREFIX),)).fetchall()
        return [r[0][len(b.DERIVED_PREFIX):] for r in rows]

    def derived_layer(self, name: str) -> gpd.GeoDataFrame:
        if name not in self.derived_layer_names():
            raise NotFound(f"no derived layer named {name!r}")
        table = f"{b.DERIVED_PREFIX}{name}"
        with self._connection() as conn:
            srid = conn.execute("SELECT Find_SRID(current_schema()::text, %s, 'geom')",
                                (table,)).fetchone()[0]
            return _read_frame(conn, table, "ORDER BY fid", crs=int(srid))

    # -- sites -----------------------------------------------------------------------------
    def sites(self, site_type: str | Iterable[str] | None = None, *,
              columns: Iterable[str] | None = None, **filters: Any) -> gpd.GeoDataFrame:
        where, params = _where(site_filters(site_type, filters))
        if columns is not None:
            columns = ["id", "site_type", *[c for c in columns if c not in ("id", "site_type")]]
        try:
            with self._connection() as conn:
                return _read_frame(conn, b.SITES, f"{where} ORDER BY fid", params,
                                   columns=columns)
        except KeyError as exc:
            raise InvalidInput(_l("场所：%(why)s", why=exc.args[0])) from None

    def site(self, site_id: str) -> dict[str, Any]:
        with self._connection() as conn:
            return self._site_row(conn, site_id)

    @staticmethod
    def _site_row(conn: psycopg.Connection, site_id: str) -> dict[str, Any]:
        df = _read_frame(conn, b.SITES, "WHERE id = %s", (str(site_id),))
        if df.empty:
            raise NotFound(_l("没有编号为“%(id)s”的场所", id=site_id))
        return site_record(df.iloc[0])

    def _validate(self, records: list[Mapping[str, Any]]) -> gpd.GeoDataFrame:
        with self._connection() as conn:
            stored = _columns(conn, b.SITES)
        return validate_site_records(records, self.city(), stored)

    def create_site(self, record: Mapping[str, Any], *, user: str) -> dict[str, Any]:
        clean = self._validate([record])
        site_id = clean["id"].iat[0]
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM sites WHERE id = %s", (site_id,)).fetchone():
                raise Conflict(_l("编号为“%(id)s”的场所已存在", id=site_id))
            self._insert_sites(conn, clean, user)
            after = self._site_row(conn, site_id)
            self._log(conn, user=user, action="create", entity="site", entity_id=site_id,
                      before=None, after=after)
        return after

    def update_site(self, site_id: str, changes: Mapping[str, Any], *, user: str,
                    expected_version: int) -> dict[str, Any]:
        bad = [k for k in changes if k in IMMUTABLE]
        if bad:
            raise InvalidInput(_l("场所 %(id)s：%(fields)s 不能修改；请另建一个场所", id=site_id,
                                  fields=", ".join(bad)))
        with self.transaction() as conn:
            current = self._site_row(conn, site_id)
            check_version(current, expected_version)
            merged = {k: v for k, v in current.items() if k not in IGNORED_INPUT}
            merged.update({k: v for k, v in changes.items() if k not in IGNORED_INPUT})
            clean = self._validate([merged])
            new = site_record(clean.iloc[0])
            diff = [k for k in new if k in current and new[k] != current[k]]
            if not diff:
                return current
            self._update_sites(conn, clean, user, expected_version)
            after = self._site_row(conn, site_id)
            self._log(conn, user=user, action="update", entity="site", entity_id=site_id,
                      before={"version": current["version"], **{k: current[k] for k in diff}},
                      after={"version": after["version"], **{k: after[k] for k in diff}})
        return after

    def delete_site(self, site_id: str, *, user: str, expected_version: int) -> None:
        with self.transaction() as conn:
            current = self._site_row(conn, site_id)
            check_version(current, expected_version)
            conn.execute("DELETE FROM sites WHERE id = %s", (str(site_id),))
            conn.execute("DELETE FROM site_hits WHERE site_id = %s", (str(site_id),))
            self._log(conn, user=user, action="delete", entity="site", entity_id=site_id,
                      before=current, after=None)

    def import_sites(self, records: Iterable[Mapping[str, Any]], *,
                     user: str) -> dict[str, Any]:
        """All-or-nothing: every record valid, then one transaction for all of them."""
        records = list(records)
        if not records:
            return {"rows": 0, "created": 0, "updated": 0}
        clean = self._validate(records)
        ids = clean["id"].tolist()
        with self.transaction() as conn:
            old = _read_frame(conn, b.SITES, "WHERE id = ANY(%s)", (ids,))
            old = old.set_index("id", drop=False)
            is_new = ~clean["id"].isin(old.index)
            moved = sorted(old.index[old["site_type"] != clean.set_index("id").loc[
                old.index, "site_type"]])
            if moved:
                raise ValidationFailed(_l("导入：场所类型不能改变（%(ids)s）", ids=", ".join(moved)))
            self._insert_sites(conn, clean[is_new], user)
            self._update_sites(conn, clean[~is_new], user, None)
            before = {r["id"]: r for r in site_records(old)}
            for after in site_records(clean):
                self._log(conn, user=user, action="import", entity="site",
                          entity_id=after["id"], before=before.get(after["id"]), after=after)
        report = {"rows": len(clean), "created": int(is_new.sum()),
                  "updated": int((~is_new).sum())}
        log.info("imported %(rows)d sites (%(created)d new, %(updated)d updated)", report)
        return report

    @staticmethod
    def _insert_sites(conn: psycopg.Connection, clean: gpd.GeoDataFrame, user: str) -> None:
        _copy_frame(conn, b.SITES, clean.assign(version=1, updated_at=b.utc_now(),
                                                updated_by=user))

    @staticmethod
    def _update_sites(conn: psycopg.Connection, clean: gpd.GeoDataFrame, user: str,
                      expected_version: int | None) -> None:
        """UPDATE by id; with ``expected_version`` the row must still carry it."""
        if clean.empty:
            return
        cols = [c for c in _attributes(clean) if c not in IMMUTABLE]
        sets = ", ".join(f"{q(c)} = %s" for c in cols)
        check = [] if expected_version is None else [int(expected_version)]
        sql = (f"UPDATE sites SET {sets}, geom = %s::geometry, version = version + 1, "
               "updated_at = %s, updated_by = %s WHERE id = %s"
               + (" AND version = %s" if check else ""))
        values = [_plain(clean[c]) for c in cols]
        now = b.utc_now()
        rows = [(*vals, g, now, user, sid, *check) for *vals, g, sid in
                zip(*values, _ewkb(clean.geometry.values, 4326), clean["id"], strict=True)]
        with conn.cursor() as cur:
            cur.executemany(sql, rows)
            if cur.rowcount != len(rows):
                raise Conflict(_l("保存时场所被他人修改；请刷新后重试"))

    # -- event tables, rule hits, the audit log --------------------------------------------
    def _table_names(self) -> list[str]:
        return [*self.meta().get("tables", []), b.CHANGES, b.SITE_HITS]

    def table(self, name: str) -> pd.DataFrame:
        names = self._table_names()
        if name not in names:
            raise NotFound(f"no table named {name!r}; known: {', '.join(names)}")
        with self._connection() as conn:
            return _read_frame(conn, name, "ORDER BY id" if name == b.CHANGES
                               else "ORDER BY fid")

    def append_rows(self, name: str, df: pd.DataFrame, *, user: str) -> int:
        if name not in self.meta().get("tables", []):
            raise NotFound(f"no event table named {name!r}")
        with self.transaction() as conn:
            have = _columns(conn, name)
            allowed = set(have) - {"fid", "geom"}
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
            if "geom" in have:
                points, bad = complaint_points(clean, self.city().metric_crs or None, name,
                                               row_base=1)
                if bad:
                    raise ValidationFailed(
                        _l("%(file)s：%(count)s 处坐标有误；第一处：第 %(row)s 行：%(message)s",
                           file=name, count=len(bad), row=bad[0]["row"],
                           message=bad[0]["message"]), details=bad)
                clean = gpd.GeoDataFrame(clean, geometry=points, crs=4326)
            count = _copy_frame(conn, name, clean)
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
            before = conn.execute("SELECT count(*) FROM site_hits").fetchone()[0]
            conn.execute("DELETE FROM site_hits")
            count = _copy_frame(conn, b.SITE_HITS, hits)
            self._log(conn, user=user, action="replace", entity="site_hits", entity_id=None,
                      before={"rows": before}, after={"rows": count})
        return count

    def site_hits(self, site_id: str | None = None) -> pd.DataFrame:
        with self._connection() as conn:
            if site_id is None:
                return _read_frame(conn, b.SITE_HITS, "ORDER BY site_id, rule_id, fid")
            return _read_frame(conn, b.SITE_HITS, "WHERE site_id = %s ORDER BY rule_id, fid",
                               (site_id,))

    def last_change(self, *, only: Iterable[str] = (),
                    exclude: Iterable[str] = ()) -> dict[str, Any] | None:
        sql, params = last_change_query(only, exclude)
        with self._connection() as conn:
            row = conn.execute(sql, params).fetchone()
        return None if row is None else {"id": int(row[0]), "at": row[1]}

    def history(self, entity_id: str, entity: str | None = None) -> list[dict[str, Any]]:
        where, params = "WHERE entity_id = %s", [entity_id]
        if entity is not None:
            where, params = where + " AND entity = %s", [*params, entity]
        keys = ("id", "at", "user", "action", "entity", "entity_id", "before", "after")
        with self._connection() as conn:
            rows = conn.execute(f"SELECT {', '.join(map(q, keys))} FROM changes {where} "
                                "ORDER BY id", params).fetchall()
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for rec in out:
            for k in ("before", "after"):
                rec[k] = None if rec[k] is None else json.loads(rec[k])
        return out

    def audit_page(self, filters: Mapping[str, str], *, offset: int,
                   limit: int) -> tuple[list[dict[str, Any]], int]:
        wanted = clean_audit_filters(filters)
        where = " AND ".join(f"{q(k)} = %s" for k in wanted)
        where = f"WHERE {where}" if where else ""
        params = list(wanted.values())
        with self._connection() as conn:
            total = conn.execute(f"SELECT count(*) FROM changes {where}", params).fetchone()[0]
            rows = conn.execute(f"SELECT {', '.join(map(q, AUDIT_COLUMNS))} FROM changes "
                                f"{where} ORDER BY id DESC LIMIT %s OFFSET %s",
                                [*params, int(limit), int(offset)]).fetchall()
        return [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in rows], int(total)

    def audit_values(self, column: str) -> list[str]:
        if column not in AUDIT_FILTERS:
            raise ValueError(f"not an audit filter column: {column!r}")
        with self._connection() as conn:
            rows = conn.execute(f"SELECT DISTINCT {q(column)} FROM changes "
                                f"WHERE {q(column)} IS NOT NULL").fetchall()
        return sorted(str(r[0]) for r in rows)

    def latest_changes(self, entity: str) -> dict[str, dict[str, Any]]:
        with self._connection() as conn:
            rows = conn.execute(
                'SELECT DISTINCT ON (entity_id) entity_id, id, at, "user", action FROM changes '
                "WHERE entity = %s AND entity_id IS NOT NULL ORDER BY entity_id, id DESC",
                (entity,)).fetchall()
        return {str(r[0]): {"id": r[1], "at": r[2], "user": r[3], "action": r[4]}
                for r in rows}
