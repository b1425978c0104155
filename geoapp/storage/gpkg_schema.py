"""The GeoPackage database's own tables and the numbered migrations that make and upgrade them.

GDAL writes the city's layers, sites and event tables at build time; everything else — the
indexes on ``sites``, the audit log, the rule hits, the build facts and the tables the app
itself writes (accounts, login attempts, inspections, the control units' lists, API tokens)
— is made by the steps below, for a new database and for one made by an older release alike.

**Where the version lives.** The ``schema_version`` row of ``geoapp_meta``. Not ``PRAGMA
user_version``: a GeoPackage's header is the standard's own (``application_id`` 'GPKG' and
``user_version`` = the GeoPackage version, 10400 for 1.4 as GDAL writes it), and changing it
would make QGIS and GDAL read the file as another GeoPackage version. A PostGIS backend keeps
the same row in its own ``geoapp_meta`` table with its own list of steps.

**Version 1** is the layout of the first release (the core tables). Releases before numbered
migrations recorded 1 and added the columns of steps 2-7 on their own when they opened a file,
so steps 2-7 add only what a table lacks; later steps need not.

Add a schema change as a new step at the end of :data:`GPKG_MIGRATIONS`; never edit a step
that was released. Steps spell their SQL out rather than using the constants of this module,
so a later rename cannot change what an old step does.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from geoapp.storage.apptables import username_key
from geoapp.storage.migrations import Migration, Migrations

log = logging.getLogger(__name__)

LAYER_PREFIX = "layer_"
DERIVED_PREFIX = "zone_"
SITES = "sites"
CHANGES = "changes"
SITE_HITS = "site_hits"
UNIT_REQUIREMENTS = "unit_requirements"
META = "geoapp_meta"
#: The ``geoapp_meta`` key holding the schema version.
VERSION_KEY = "schema_version"


# ---------------------------------------------------------------------------- helpers
def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}


def _add_column(conn: sqlite3.Connection, table: str, name: str, declaration: str) -> None:
    """ALTER TABLE ADD COLUMN unless the column is there already (see the module's note)."""
    if name not in _columns(conn, table):
        conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {declaration}')


def _register(conn: sqlite3.Connection, table: str) -> None:
    """List a plain table in gpkg_contents as attributes, so QGIS and GDAL show it."""
    conn.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                 "last_change) VALUES (?, 'attributes', ?, strftime('%Y-%m-%dT%H:%M:%fZ', "
                 "'now'))", (table, table))


# ---------------------------------------------------------------------------- steps
def _v1_core_tables(conn: sqlite3.Connection) -> None:
    """Indexes on the GDAL-written sites; the audit log, rule hits and build facts."""
    conn.execute("CREATE UNIQUE INDEX sites_id ON sites (id)")
    conn.execute("CREATE INDEX sites_type ON sites (site_type)")
    conn.execute('CREATE TABLE "changes" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 '"at" TEXT NOT NULL, "user" TEXT NOT NULL, "action" TEXT NOT NULL, '
                 '"entity" TEXT NOT NULL, "entity_id" TEXT, "before" TEXT, "after" TEXT)')
    conn.execute("CREATE INDEX changes_entity ON changes (entity_id, entity)")
    conn.execute('CREATE TABLE "site_hits" ("fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 '"site_id" TEXT NOT NULL, "rule_id" TEXT NOT NULL, "feature_id" TEXT, '
                 '"feature_name" TEXT, "distance_m" REAL, "severity" TEXT)')
    conn.execute("CREATE INDEX site_hits_site ON site_hits (site_id)")
    conn.execute('CREATE TABLE "geoapp_meta" ("fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT '
                 'NULL, "key" TEXT NOT NULL UNIQUE, "value" TEXT)')
    for table in ("changes", "site_hits", "geoapp_meta"):
        conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier) "
                     "VALUES (?, 'attributes', ?)", (table, table))


def _v2_app_tables(conn: sqlite3.Connection) -> None:
    """Accounts, login attempts and inspection records, as the first release made them."""
    conn.execute("""CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT '',
        active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        last_login_at TEXT)""")
    conn.execute("""CREATE TABLE IF NOT EXISTS login_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        username TEXT NOT NULL,
        remote_addr TEXT NOT NULL DEFAULT '',
        success INTEGER NOT NULL)""")
    conn.execute("""CREATE TABLE IF NOT EXISTS inspections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        inspector TEXT NOT NULL,
        site_id TEXT,
        lon REAL NOT NULL,
        lat REAL NOT NULL,
        input_json TEXT NOT NULL,
        verdict TEXT NOT NULL,
        hits_json TEXT NOT NULL,
        notes TEXT NOT NULL DEFAULT '')""")
    for table in ("users", "login_attempts", "inspections"):
        _register(conn, table)
    conn.execute("CREATE INDEX IF NOT EXISTS login_attempts_user ON login_attempts "
                 "(username, at)")
    conn.execute("CREATE INDEX IF NOT EXISTS inspections_site ON inspections (site_id, at)")


def _v3_session_version(conn: sqlite3.Connection) -> None:
    """Per-account session version: raising it ends every session of the account."""
    _add_column(conn, "users", "session_version", "INTEGER NOT NULL DEFAULT 0")


def _v4_username_key(conn: sqlite3.Connection) -> None:
    """Usernames unique after NFKC and case-folding: ``username_key``, filled and indexed.

    The index is UNIQUE unless rows made before normalisation already collide (say ``bob``
    and fullwidth ``ｂｏｂ``); those rows keep working under their exact names and new
    accounts are still refused when their key is taken (checked in the transaction).
    """
    _add_column(conn, "users", "username_key", "TEXT")
    rows = conn.execute("SELECT id, username, username_key FROM users").fetchall()
    keys = [key if key is not None else username_key(name) for _, name, key in rows]
    conn.executemany("UPDATE users SET username_key = ? WHERE id = ?",
                     [(username_key(name), uid) for uid, name, key in rows if key is None])
    if len(set(keys)) == len(keys):
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS users_username_key "
                     "ON users (username_key)")
    else:
        log.warning("users: some existing usernames are equal after normalisation; "
                    "they keep working under their exact names")
        conn.execute("DROP INDEX IF EXISTS users_username_key")
        conn.execute("CREATE INDEX users_username_key ON users (username_key)")


def _v5_login_attempts_by_address(conn: sqlite3.Connection) -> None:
    """The per-address login limit looks attempts up by address and time."""
    conn.execute("CREATE INDEX IF NOT EXISTS login_attempts_addr ON login_attempts "
                 "(remote_addr, at)")


def _v6_inspection_conditional_hits(conn: sqlite3.Connection) -> None:
    """Inspections keep the rules that apply if a missing attribute were known."""
    _add_column(conn, "inspections", "conditional_hits_json", "TEXT NOT NULL DEFAULT '[]'")


def _v7_site_hit_point(conn: sqlite3.Connection) -> None:
    """A hit names where it was measured: the site itself, or a relocation's new site."""
    _add_column(conn, "site_hits", "point", "TEXT NOT NULL DEFAULT 'site'")


def _v8_unit_requirements(conn: sqlite3.Connection) -> None:
    """The 准入清单 of the control units: one row per unit code, its four parts, the
    optimistic-concurrency version and where the row came from (``source``: seeded from the
    data file; ``edit``, ``import``: made in the app, kept by a rebuild)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS unit_requirements (
        fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        code TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        category TEXT NOT NULL DEFAULT '',
        county TEXT NOT NULL DEFAULT '',
        spatial_layout TEXT NOT NULL DEFAULT '',
        emission_control TEXT NOT NULL DEFAULT '',
        risk_prevention TEXT NOT NULL DEFAULT '',
        resource_efficiency TEXT NOT NULL DEFAULT '',
        version INTEGER NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        origin TEXT NOT NULL DEFAULT 'source')""")
    _register(conn, "unit_requirements")


def _v9_api_tokens(conn: sqlite3.Connection) -> None:
    """API tokens for GIS clients: the SHA-256 of each token (never the token), its owner
    (``users.id``), the owner's role when it was issued, when it was made, last used and
    revoked, and by whom."""
    conn.execute("""CREATE TABLE IF NOT EXISTS api_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        token_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT,
        revoked_by TEXT)""")
    conn.execute("CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_id)")
    _register(conn, "api_tokens")


def _v10_inspection_photos(conn: sqlite3.Connection) -> None:
    """Inspections keep the device's GPS accuracy apart from the checked point, and their
    photos: the file as uploaded (after it was decoded in full), a thumbnail, the EXIF time
    and position, and how far that position is from the checked point."""
    _add_column(conn, "inspections", "gps_accuracy_m", "REAL")
    conn.execute("""CREATE TABLE IF NOT EXISTS inspection_photos (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        inspection_id INTEGER NOT NULL,
        site_id TEXT,
        uploaded_at TEXT NOT NULL,
        uploaded_by TEXT NOT NULL,
        filename TEXT NOT NULL DEFAULT '',
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        taken_at TEXT,
        exif_lon REAL,
        exif_lat REAL,
        exif_distance_m REAL,
        position_mismatch INTEGER NOT NULL DEFAULT 0,
        data BLOB NOT NULL,
        thumb BLOB NOT NULL)""")
    conn.execute("CREATE INDEX IF NOT EXISTS inspection_photos_inspection "
                 "ON inspection_photos (inspection_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS inspection_photos_site "
                 "ON inspection_photos (site_id)")
    _register(conn, "inspection_photos")


def _v11_emergency_measures(conn: sqlite3.Connection) -> None:
    """The 重污染天气应急减排清单: per enterprise its 绩效分级 and its 一厂一策 measures for the
    yellow, orange and red warnings; ``key`` identifies the enterprise (its credit code, or
    its name where the list gives none), ``origin`` says where the row came from (``source``:
    the data file; ``edit``, ``import``: made in the app, kept by a rebuild)."""
    levels = "".join(f"""
        {lv}_cut_pct REAL,
        {lv}_processes TEXT NOT NULL DEFAULT '',
        {lv}_transport TEXT NOT NULL DEFAULT '',""" for lv in ("yellow", "orange", "red"))
    conn.execute(f"""CREATE TABLE IF NOT EXISTS emergency_measures (
        fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        key TEXT NOT NULL UNIQUE,
        site_id TEXT,
        name TEXT NOT NULL,
        credit_code TEXT NOT NULL DEFAULT '',
        county TEXT NOT NULL DEFAULT '',
        industry TEXT NOT NULL DEFAULT '',
        grade TEXT NOT NULL,{levels}
        remarks TEXT NOT NULL DEFAULT '',
        version INTEGER NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        origin TEXT NOT NULL DEFAULT 'source')""")
    conn.execute("CREATE INDEX IF NOT EXISTS emergency_measures_site "
                 "ON emergency_measures (site_id)")
    _register(conn, "emergency_measures")


GPKG_MIGRATIONS = Migrations("gpkg", (
    Migration(1, "core tables", _v1_core_tables),
    Migration(2, "accounts, login attempts, inspections", _v2_app_tables),
    Migration(3, "users.session_version", _v3_session_version),
    Migration(4, "users.username_key", _v4_username_key),
    Migration(5, "index login_attempts by address", _v5_login_attempts_by_address),
    Migration(6, "inspections.conditional_hits_json", _v6_inspection_conditional_hits),
    Migration(7, "site_hits.point", _v7_site_hit_point),
    Migration(8, "unit_requirements", _v8_unit_requirements),
    Migration(9, "api_tokens", _v9_api_tokens),
    Migration(10, "inspections.gps_accuracy_m, inspection_photos", _v10_inspection_photos),
    Migration(11, "emergency_measures", _v11_emergency_measures),
))
#: The schema version this code writes and reads.
SCHEMA_VERSION = GPKG_MIGRATIONS.latest


# ---------------------------------------------------------------------------- runner
class SqliteVersionStore:
    """The version row in ``geoapp_meta`` of one sqlite3 connection in autocommit mode
    (``isolation_level=None``); steps run in ``BEGIN IMMEDIATE`` transactions."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def read_version(self) -> int | None:
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                             (META,)).fetchone() is None:
            return None
        row = self.conn.execute(f"SELECT value FROM {META} WHERE key = ?",
                                (VERSION_KEY,)).fetchone()
        return None if row is None else int(row[0])

    def write_version(self, version: int) -> None:
        self.conn.execute(f"INSERT INTO {META} (key, value) VALUES (?, ?) ON CONFLICT (key) "
                          "DO UPDATE SET value = excluded.value", (VERSION_KEY, str(version)))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The recorded schema version; None for a file that is not a geoapp database."""
    return SqliteVersionStore(conn).read_version()


def migrate(conn: sqlite3.Connection, where: str, *, new: bool = False) -> list[Migration]:
    """Bring a geoapp GeoPackage up to :data:`SCHEMA_VERSION` (``new``: one being built,
    with GDAL's tables only). A file newer than this code raises SchemaTooNew; a file that
    is no geoapp database is left alone."""
    return GPKG_MIGRATIONS.migrate(SqliteVersionStore(conn), where, start=0 if new else None)
