"""Tables the app itself writes, which a rebuild from the source files must keep.

The source files describe the city; accounts (with their API tokens, which name the account by
``users.id``: the copy keeps the ids), login attempts, inspection records and their photos are
made in the app and exist nowhere else. ``geoapp init-db --force`` rebuilds the city's data
but carries these tables over into the new database unchanged. Their columns and indexes are
made by the numbered migrations in gpkg_schema.py.

The control units' 准入清单 (``unit_requirements``) and the heavy-pollution emergency list
(``emergency_measures``) are half of each: the rows seeded from the
data file are rebuilt from it (a corrected file comes through), the rows a planner edited or
imported are carried over and the seed fills only the units they leave.
"""

from __future__ import annotations

import sqlite3
import unicodedata

#: The tables the app writes, in the order a rebuild copies them.
APP_TABLES: tuple[str, ...] = ("users", "api_tokens", "login_attempts", "inspections",
                               "inspection_photos", "unit_requirements", "emergency_measures")
#: The tables whose rows a backup's report counts, on either backend: the sites, the audit,
#: the stored hits, every table the app writes, the grid warnings and the complaints.
COUNTED_TABLES: tuple[str, ...] = ("sites", "changes", "site_hits", *APP_TABLES,
                                   "grid_warnings", "complaints")
#: The rows of a table that are app-made, where not all of them are.
KEPT_ROWS: dict[str, str] = {"unit_requirements": "origin <> 'source'",
                             "emergency_measures": "origin <> 'source'"}


def username_key(username: str) -> str:
    """The form under which usernames are unique: NFKC, then case-folded (``Inspector``,
    ``INSPECTOR`` and fullwidth ``ｉｎｓｐｅｃｔｏｒ`` are all ``inspector``)."""
    text = unicodedata.normalize("NFKC", (username or "").strip())
    return unicodedata.normalize("NFKC", text.casefold())


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


def copy_app_tables(old: sqlite3.Connection, new: sqlite3.Connection) -> dict[str, int]:
    """Copy every app table's rows from the old database into the new one, in one
    transaction; returns the rows copied per table.

    Both databases should be at the same schema version (bring the old one forward first);
    only the columns both have are copied, and a username without its key gets one.
    """
    have = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    counts: dict[str, int] = {}
    new.execute("BEGIN IMMEDIATE")
    try:
        for name in APP_TABLES:
            if name not in have:
                continue
            wanted = set(_columns(new, name))
            cols = [c for c in _columns(old, name) if c in wanted]
            quoted = ", ".join(f'"{c}"' for c in cols)
            where = f" WHERE {KEPT_ROWS[name]}" if name in KEPT_ROWS else ""
            rows = old.execute(f'SELECT {quoted} FROM "{name}"{where}').fetchall()
            marks = ", ".join("?" * len(cols))
            new.executemany(f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})', rows)
            counts[name] = len(rows)
        unkeyed = new.execute("SELECT id, username FROM users WHERE username_key IS NULL")
        new.executemany("UPDATE users SET username_key = ? WHERE id = ?",
                        [(username_key(name), uid) for uid, name in unkeyed.fetchall()])
        new.execute("COMMIT")
    except BaseException:
        if new.in_transaction:
            new.execute("ROLLBACK")
        raise
    return counts
