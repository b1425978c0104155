"""Numbered schema migrations: a database of any earlier release is brought forward once,
in one transaction per step; a newer one is refused; the GeoPackage header is left alone."""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.domain.errors import ValidationFailed
from geoapp.services.maintenance import restore_database
from geoapp.storage import geopackage as gp
from geoapp.storage.gpkg import GpkgRepository
from geoapp.storage.gpkg_schema import (
    GPKG_MIGRATIONS,
    SCHEMA_VERSION,
    SqliteVersionStore,
    migrate,
    schema_version,
)
from geoapp.storage.migrations import Migration, Migrations, SchemaTooNew

#: the GeoPackage's migrations; PostGIS migrations are in test_postgis.py.
pytestmark = pytest.mark.backends("gpkg")

FIXTURES = Path(__file__).parent / "fixtures"
LATER_COLUMNS = {"users": {"session_version", "username_key"},
                 "inspections": {"conditional_hits_json"}, "site_hits": {"point"}}
LATER_INDEXES = {"users_username_key", "login_attempts_addr"}


def release1(path: Path) -> Path:
    """A database with the geoapp tables exactly as the first release wrote them."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript((FIXTURES / "release1.sql").read_text(encoding="utf-8"))
    return path


def make_previous_release(db: Path) -> None:
    """Turn a database built now into what the release before migrations left: version 1
    recorded, the later columns and indexes missing."""
    with closing(sqlite3.connect(db)) as conn:
        for index in sorted(LATER_INDEXES):
            conn.execute(f"DROP INDEX {index}")
        for table, cols in LATER_COLUMNS.items():
            for col in sorted(cols):
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
        conn.execute("UPDATE geoapp_meta SET value = '1' WHERE key = 'schema_version'")
        conn.commit()


def columns(conn: sqlite3.Connection, table: str) -> list[tuple]:
    return [(r[1], r[2], r[3], r[4]) for r in conn.execute(f"PRAGMA table_info({table})")]


def indexes(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                             "sql IS NOT NULL AND name NOT LIKE 'rtree%'"))


def shape(conn: sqlite3.Connection) -> dict:
    tables = ("users", "login_attempts", "inspections", "site_hits", "changes", "geoapp_meta",
              "api_tokens")
    return {"columns": {t: columns(conn, t) for t in tables},
            "indexes": {k: " ".join(v.split()) for k, v in indexes(conn).items()}}


# --------------------------------------------------------------------------- the list
def test_steps_are_numbered_one_to_n_and_the_version_is_the_last() -> None:
    assert [s.version for s in GPKG_MIGRATIONS.steps] == list(range(1, SCHEMA_VERSION + 1))
    with pytest.raises(ValueError, match="numbered 1..n"):
        Migrations("x", [Migration(1, "a", print), Migration(3, "c", print)])
    with pytest.raises(ValueError, match="numbered 1..n"):
        Migrations("x", [Migration(2, "b", print), Migration(1, "a", print)])


class FakeStore:
    """A backend whose version another process moves on between read and lock."""

    def __init__(self, version: int, *, jump_to: int | None = None) -> None:
        self.version, self.jump_to, self.applied = version, jump_to, []

    def read_version(self) -> int | None:
        return self.version

    def write_version(self, version: int) -> None:
        self.version = version

    @contextmanager
    def transaction(self):
        if self.jump_to is not None:  # the other process finished first
            self.version, self.jump_to = self.jump_to, None
        yield self


def test_a_step_another_process_applied_meanwhile_is_not_run_again() -> None:
    ran: list[int] = []
    steps = Migrations("x", [Migration(i, str(i), lambda _c, i=i: ran.append(i))
                             for i in (1, 2, 3)])
    store = FakeStore(1, jump_to=2)
    applied = steps.migrate(store, "test")
    assert ran == [3] and [s.version for s in applied] == [3] and store.version == 3
    assert steps.migrate(store, "test") == []


# --------------------------------------------------------------------------- SQLite
def test_a_first_release_database_is_brought_forward_and_keeps_its_rows(tmp_path) -> None:
    db = release1(tmp_path / "old.gpkg")
    with closing(gp.connect(db)) as conn:
        assert schema_version(conn) == 1
        applied = migrate(conn, str(db))
        assert [s.version for s in applied] == list(range(2, SCHEMA_VERSION + 1))
        assert schema_version(conn) == SCHEMA_VERSION
        for table, cols in LATER_COLUMNS.items():
            assert cols <= {c[0] for c in columns(conn, table)}, table
        assert set(indexes(conn)) >= LATER_INDEXES
        assert "UNIQUE" in indexes(conn)["users_username_key"]
        users = conn.execute("SELECT username, username_key, session_version FROM users "
                             "ORDER BY id").fetchall()
        assert users == [("Chief", "chief", 0), ("inspector", "inspector", 0)]
        assert conn.execute("SELECT conditional_hits_json FROM inspections").fetchall() == \
            [("[]",)]
        assert conn.execute("SELECT point, distance_m FROM site_hits").fetchall() == \
            [("site", 120.5)]
        assert conn.execute("SELECT count(*) FROM login_attempts").fetchone()[0] == 1
        assert migrate(conn, str(db)) == []  # once only


def test_usernames_equal_after_normalisation_keep_a_plain_key_index(tmp_path) -> None:
    db = release1(tmp_path / "old.gpkg")
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO users (username, password_hash, role, created_at, updated_at)"
                     " VALUES ('ｃｈｉｅｆ', 'h', 'viewer', 'now', 'now')")
        conn.commit()
    with closing(gp.connect(db)) as conn:
        migrate(conn, str(db))
        sql = indexes(conn)["users_username_key"]
        assert "UNIQUE" not in sql
        keys = [r[0] for r in conn.execute("SELECT username_key FROM users ORDER BY id")]
        assert keys == ["chief", "inspector", "chief"]


def test_a_failing_step_leaves_the_database_as_it_was(tmp_path) -> None:
    db = release1(tmp_path / "old.gpkg")

    def breaks(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE users ADD COLUMN half TEXT")
        raise RuntimeError("disk gone")

    steps = Migrations("gpkg", [*GPKG_MIGRATIONS.steps[:2], Migration(3, "breaks", breaks)])
    with closing(gp.connect(db)) as conn:
        with pytest.raises(RuntimeError, match="disk gone"):
            steps.migrate(SqliteVersionStore(conn), str(db))
        assert schema_version(conn) == 2  # step 2 committed, step 3 rolled back whole
        assert "half" not in {c[0] for c in columns(conn, "users")}


def test_a_new_build_and_a_brought_forward_one_have_the_same_schema(repo, tmp_path) -> None:
    old = release1(tmp_path / "old.gpkg")
    with closing(gp.connect(old)) as conn:
        migrate(conn, str(old))
        upgraded = shape(conn)
    with closing(sqlite3.connect(repo.path)) as conn:
        built = shape(conn)
    assert built["columns"] == upgraded["columns"]
    ours = {k: v for k, v in built["indexes"].items() if k in upgraded["indexes"]}
    assert ours == upgraded["indexes"]


def test_the_geopackage_header_is_left_to_the_standard(repo) -> None:
    with closing(sqlite3.connect(repo.path)) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # 'GPKG'
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 10200  # GPKG 1.2+
        assert schema_version(conn) == SCHEMA_VERSION


# --------------------------------------------------------------------------- repository
def test_opening_a_previous_release_database_brings_it_forward(repo, tiny_data_dir) -> None:
    repo.create_user("Alice", "pbkdf2:sha256$x", "admin", user="test")
    repo.add_inspection({"lon": 113.3, "lat": 35.2, "verdict": "pass", "hits": []},
                        user="alice")
    path = repo.path
    repo.close()
    make_previous_release(path)
    reopened = GpkgRepository(path)
    try:
        assert reopened.is_initialized()
        assert reopened.meta()["schema_version"] == SCHEMA_VERSION
        assert reopened.get_user("ALICE")["username"] == "Alice"
        assert reopened.get_user("Alice")["session_version"] == 0
        assert reopened.inspections()[0]["conditional_hits"] == []
        reopened.replace_site_hits(pd.DataFrame([{
            "site_id": "F1", "rule_id": "r", "feature_id": "x", "feature_name": "河",
            "distance_m": 1.0, "severity": "high", "point": "new_site"}]))
        assert reopened.site_hits()["point"].tolist() == ["new_site"]
    finally:
        reopened.close()


def test_a_forced_rebuild_over_a_previous_release_database_keeps_its_accounts(
        repo, tiny_data_dir) -> None:
    repo.create_user("alice", "pbkdf2:sha256$x", "admin", user="test")
    path = repo.path
    repo.close()
    make_previous_release(path)
    fresh = GpkgRepository(path)
    try:
        report = fresh.initialize(tiny_data_dir, force=True)
        assert report["kept"]["users"] == 1
        assert fresh.get_user("ALICE")["username"] == "alice"
        assert fresh.meta()["schema_version"] == SCHEMA_VERSION
    finally:
        fresh.close()


def _make_newer(path: Path) -> bytes:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE geoapp_meta SET value = ? WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION + 5),))
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


def test_a_database_newer_than_the_code_is_refused_and_left_alone(repo, tiny_data_dir) -> None:
    path = repo.path
    repo.close()
    before = _make_newer(path)
    newer = GpkgRepository(path)
    with pytest.raises(SchemaTooNew, match=rf"schema version {SCHEMA_VERSION + 5}, newer") as e:
        newer.is_initialized()
    assert "nothing was changed" in e.value.message
    with pytest.raises(SchemaTooNew):
        newer.initialize(tiny_data_dir, force=True)  # a rebuild would lose its new columns
    newer.close()
    assert path.read_bytes() == before


def test_the_cli_refuses_a_newer_database_with_exit_2(instance, monkeypatch) -> None:
    db = instance / "geoapp.gpkg"
    _make_newer(db)
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    result = CliRunner().invoke(main, ["users", "list"])
    assert result.exit_code == 2
    assert f"schema version {SCHEMA_VERSION + 5}" in result.stderr
    assert "Traceback" not in result.output


def test_restoring_a_backup_of_a_previous_release_brings_it_forward(
        repo, tmp_path, monkeypatch) -> None:
    repo.create_user("duty", "pbkdf2:sha256$x", "viewer", user="test")
    old = tmp_path / "backups" / "2026-11-20.gpkg"
    repo.backup(old)
    make_previous_release(old)
    repo.create_user("later", "pbkdf2:sha256$x", "viewer", user="test")  # not in the backup
    repo.close()
    inst = tmp_path / "inst"
    inst.mkdir()
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(inst))
    monkeypatch.setenv("GEOAPP_DATABASE", str(repo.path))
    result = CliRunner().invoke(main, ["restore", "--yes", str(old)])
    assert result.exit_code == 0, result.output
    assert f'"restored": {SCHEMA_VERSION}' in result.output and '"backup": 1' in result.output
    with closing(sqlite3.connect(repo.path)) as conn:
        assert schema_version(conn) == SCHEMA_VERSION
        for table, cols in LATER_COLUMNS.items():
            assert cols <= {c[0] for c in columns(conn, table)}, table
        users = conn.execute("SELECT username, username_key FROM users").fetchall()
    assert users == [("duty", "duty")]
    with closing(sqlite3.connect(old)) as conn:
        assert schema_version(conn) == 1  # the backup itself is left as it was


def test_restore_refuses_a_backup_from_a_newer_release(repo, tmp_path) -> None:
    newer = tmp_path / "newer.gpkg"
    repo.backup(newer)
    _make_newer(newer)
    with pytest.raises(ValidationFailed, match="written by a newer geoapp"):
        restore_database({"DATABASE": str(repo.path)}, newer)
