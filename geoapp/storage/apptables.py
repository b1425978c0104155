"""Tables the app itself writes, which a rebuild from the source files must keep.

The source files describe the city; accounts, login attempts and inspection records are
made in the app and exist nowhere else. ``geoapp init-db --force`` rebuilds the city's data
but carries these tables over into the new database unchanged.
"""

from __future__ import annotations

import logging
import sqlite3
import unicodedata
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
        last_login_at TEXT,
        session_version INTEGER NOT NULL DEFAULT 0,
        username_key TEXT)""",
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
        notes TEXT NOT NULL DEFAULT '',
        conditional_hits_json TEXT NOT NULL DEFAULT '[]')""",
}
APP_INDEXES = (
    "CREATE INDEX IF NOT EXISTS login_attempts_user ON login_attempts (username, at)",
    "CREATE INDEX IF NOT EXISTS login_attempts_addr ON login_attempts (remote_addr, at)",
    "CREATE INDEX IF NOT EXISTS inspections_site ON inspections (site_id, at)",
)
#: Columns added to ``inspections`` after the first release: name -> ALTER TABLE clause.
INSPECTION_COLUMNS_ADDED = {
    "conditional_hits_json": "conditional_hits_json TEXT NOT NULL DEFAULT '[]'",
}
#: Columns added to ``users`` after the first release: name -> ALTER TABLE clause. A database
#: made before them is upgraded in place when it is opened (no migration framework yet).
USER_COLUMNS_ADDED = {
    "session_version": "session_version INTEGER NOT NULL DEFAULT 0",
    "username_key": "username_key TEXT",
}
USERS_KEY_INDEX = "users_username_key"


def username_key(username: str) -> str:
    """The form under which usernames are unique: NFKC, then case-folded (``Inspector``,
    ``INSPECTOR`` and fullwidth ``ｉｎｓｐｅｃｔｏｒ`` are all ``inspector``)."""
    text = unicodedata.normalize("NFKC", (username or "").strip())
    return unicodedata.normalize("NFKC", text.casefold())


def ensure_app_tables(conn: sqlite3.Connection) -> None:
    """Create the app tables if missing and upgrade ``users`` (idempotent; cheap on every
    open)."""
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not all(t in existing for t in APP_TABLES):
        _create_app_tables(conn)
    upgrade_users(conn)
    upgrade_inspections(conn)


def upgrade_inspections(conn: sqlite3.Connection) -> None:
    """Add the columns an older ``inspections`` table lacks (the verdict itself is TEXT:
    fail, pass, needs_info or out_of_area fit as they are)."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(inspections)")}
    todo = [clause for name, clause in INSPECTION_COLUMNS_ADDED.items() if name not in cols]
    if not todo:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for clause in todo:
            conn.execute(f"ALTER TABLE inspections ADD COLUMN {clause}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _users_need_upgrade(conn: sqlite3.Connection) -> bool:
    cols = {r[1] for r in conn.execute("PRAGMA table_info(users)")}
    if any(c not in cols for c in USER_COLUMNS_ADDED):
        return True
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    if USERS_KEY_INDEX not in indexes or "login_attempts_addr" not in indexes:
        return True
    return conn.execute("SELECT 1 FROM users WHERE username_key IS NULL LIMIT 1").fetchone() \
        is not None


def upgrade_users(conn: sqlite3.Connection) -> None:
    """Bring an older ``users`` table up to date: add the missing columns (ALTER TABLE ADD
    COLUMN), fill ``username_key`` for rows that lack it and index it.

    The key index is UNIQUE unless rows made before normalisation already collide (say
    ``bob`` and fullwidth ``ｂｏｂ``); those rows keep working under their exact names and
    new accounts are still refused when their key is taken (checked in the transaction).
    """
    if not _users_need_upgrade(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(users)")}
        for name, clause in USER_COLUMNS_ADDED.items():
            if name not in cols:
                conn.execute(f"ALTER TABLE users ADD COLUMN {clause}")
        rows = conn.execute("SELECT id, username, username_key FROM users").fetchall()
        keys = [key if key is not None else username_key(name) for _, name, key in rows]
        if len(set(keys)) == len(keys):
            unique = "UNIQUE "
        else:
            unique = ""
            log.warning("users: some existing usernames are equal after normalisation; "
                        "they keep working under their exact names")
            conn.execute(f"DROP INDEX IF EXISTS {USERS_KEY_INDEX}")
        conn.executemany("UPDATE users SET username_key = ? WHERE id = ?",
                         [(username_key(name), uid) for uid, name, key in rows if key is None])
        conn.execute(f"CREATE {unique}INDEX IF NOT EXISTS {USERS_KEY_INDEX} "
                     "ON users (username_key)")
        for ddl in APP_INDEXES:
            conn.execute(ddl)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _create_app_tables(conn: sqlite3.Connection) -> None:
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
    upgrade_users(new)  # rows copied from an older file have no username_key yet
    return counts


def row_dict(cursor: sqlite3.Cursor, row: tuple) -> Mapping[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}
