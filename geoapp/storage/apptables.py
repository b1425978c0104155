"""Tables the app itself writes, which a rebuild from the source files must keep.

The source files describe the city; accounts, login attempts and inspection records are
made in the app and exist nowhere else. ``geoapp init-db --force`` rebuilds the city's data
but carries these tables over into the new database unchanged.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

#: Table name -> CREATE TABLE statement (plain SQLite tables, registered as GPKG attributes).
APP_TABLES: dict[str, str] = {
    "users": """CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        display_name TEXT NOT NULL DEFAULT '',
        active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        last_login_at TEXT)""",
    "login_attempts": """CREATE TABLE IF NOT EXISTS login_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        username TEXT NOT NULL,
        remote_addr TEXT NOT NULL DEFAULT '',
        success INTEGER NOT NULL)""",
    "inspections": """CREATE TABLE IF NOT EXISTS inspections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        inspector TEXT NOT NULL,
        site_id TEXT,
        lon REAL NOT NULL,
        lat REAL NOT NULL,
        input_json TEXT NOT NULL,
        verdict TEXT NOT NULL,
        hits_json TEXT NOT NULL,
        notes TEXT NOT NULL DEFAULT '')""",
}
APP_INDEXES = (
    "CREATE INDEX IF NOT EXISTS login_attempts_user ON login_attempts (username, at)",
    "CREATE INDEX IF NOT EXISTS inspections_site ON inspections (site_id, at)",
)


def ensure_app_tables(conn: sqlite3.Connection) -> None:
    """Create the app tables if missing (idempotent; cheap on every open)."""
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if all(t in existing for t in APP_TABLES):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, ddl in APP_TABLES.items():
            conn.execute(ddl)
            conn.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier,"
                         " last_change) VALUES (?, 'attributes', ?, strftime('%Y-%m-%dT%H:%M:%fZ',"
                         " 'now'))", (name, name))
        for ddl in APP_INDEXES:
            conn.execute(ddl)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def copy_app_tables(old: sqlite3.Connection, new: sqlite3.Connection) -> dict[str, int]:
    """Copy every app table's rows from the old database into the new one (same schema)."""
    ensure_app_tables(new)
    have = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    counts: dict[str, int] = {}
    new.execute("BEGIN IMMEDIATE")
    try:
        for name in APP_TABLES:
            if name not in have:
                continue
            cols = [r[1] for r in old.execute(f"PRAGMA table_info({name})")]
            rows = old.execute(f"SELECT {', '.join(cols)} FROM {name}").fetchall()
            marks = ", ".join("?" * len(cols))
            new.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({marks})", rows)
            counts[name] = len(rows)
        new.execute("COMMIT")
    except BaseException:
        new.execute("ROLLBACK")
        raise
    return counts


def row_dict(cursor: sqlite3.Cursor, row: tuple) -> Mapping[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}
