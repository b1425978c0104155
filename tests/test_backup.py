"""Backups are consistent copies taken while writers run; restores bring back exactly them."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.domain.errors import ValidationFailed
from geoapp.services.maintenance import backup_database, inspect_database, restore_database
from geoapp.storage.gpkg import GpkgRepository

#: GeoPackage backups (file copies under writers); PostGIS backups (pg_dump) are in test_postgis.py.
pytestmark = pytest.mark.backends("gpkg")

COMPARED = ("sites", "changes", "users")


def _farm(site_id: str) -> dict:
    return {"site_type": "livestock_farm", "id": site_id, "name": f"养殖场{site_id}",
            "district": "东区", "species": "生猪", "head_count": 300, "lon": 113.5, "lat": 35.1}


def _rows(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in COMPARED}


def _settings(repo: GpkgRepository) -> dict:
    return {"DATABASE": str(repo.path)}


def test_backup_during_writes_restores_identical_sites_changes_and_users(
        repo: GpkgRepository, tmp_path: Path) -> None:
    repo.create_user("duty", "hash-not-a-password", "viewer", user="test")
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:  # a second editor keeps saving while the backup is taken
        own = GpkgRepository(repo.path)
        while not stop.is_set():
            site = own.site("E2")
            own.update_site("E2", {"employees": int(site["employees"] or 0) + 1},
                            user="editor", expected_version=site["version"])
            written.append(1)
        own.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 3:
            threading.Event().wait(0.01)
        report = backup_database(_settings(repo), tmp_path / "b" / "copy.gpkg")
    finally:
        stop.set()
        thread.join()
    backup = tmp_path / "b" / "copy.gpkg"
    assert report["integrity"] == "ok"
    saved = _rows(backup)
    assert report["counts"]["sites"] == len(saved["sites"])
    assert report["counts"]["users"] == 1
    # the copy is one snapshot: the site's version and its change-log rows agree
    e2_version = inspect_rows(backup, "SELECT version FROM sites WHERE id='E2'")[0]
    updates = inspect_rows(backup, "SELECT count(*) FROM changes WHERE entity_id='E2' "
                                   "AND action='update'")[0]
    assert e2_version == updates + 1

    repo.import_sites([_farm("F9")], user="planner")  # a change made after the backup
    after_backup = _rows(repo.path)
    result = restore_database(_settings(repo), backup)
    repo.close()
    assert _rows(repo.path) == saved
    assert _rows(Path(result["kept"])) == after_backup
    assert inspect_database(repo.path)["integrity"] == "ok"
    assert GpkgRepository(repo.path).sites()["id"].tolist().count("F9") == 0


def inspect_rows(db: Path, sql: str) -> list:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute(sql)]


def _broken_files(tmp_path: Path, good: Path) -> dict[str, Path]:
    files = {}
    files["garbage"] = tmp_path / "garbage.gpkg"
    files["garbage"].write_bytes(b"not a database at all\n" * 100)
    files["truncated"] = tmp_path / "truncated.gpkg"
    data = good.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["foreign"] = tmp_path / "foreign.sqlite"
    with sqlite3.connect(files["foreign"]) as conn:
        conn.execute("CREATE TABLE things (a)")
    files["newer"] = tmp_path / "newer.gpkg"
    with sqlite3.connect(good) as src, sqlite3.connect(files["newer"]) as dst:
        src.backup(dst)
        dst.execute("UPDATE geoapp_meta SET value = '99' WHERE key = 'schema_version'")
    return files


@pytest.mark.parametrize("kind, message", [
    ("garbage", "not a readable SQLite database"), ("truncated", "damaged|not a readable"),
    ("foreign", "not a geoapp database"), ("newer", "schema version 99")])
def test_restore_refuses_a_broken_or_foreign_file_and_changes_nothing(
        repo: GpkgRepository, tmp_path: Path, kind: str, message: str) -> None:
    good = tmp_path / "good.gpkg"
    repo.backup(good)
    (tmp_path / "bad").mkdir()
    bad = _broken_files(tmp_path / "bad", good)
    before = _rows(repo.path)
    with pytest.raises(ValidationFailed, match=message):
        restore_database(_settings(repo), bad[kind])
    assert _rows(repo.path) == before
    assert not list(repo.path.parent.glob("*before-restore*"))


def test_cli_backup_and_restore_round_trip_and_refusal_exits_2(
        repo: GpkgRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = tmp_path / "inst"
    inst.mkdir()
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(inst))
    monkeypatch.setenv("GEOAPP_DATABASE", str(repo.path))
    runner = CliRunner()
    out = tmp_path / "nightly.gpkg"
    result = runner.invoke(main, ["backup", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert '"integrity": "ok"' in result.output and '"sites": 7' in result.output
    saved = _rows(out)
    repo.delete_site("W2", user="planner", expected_version=1)
    repo.close()
    result = runner.invoke(main, ["restore", "--yes", str(out)])
    assert result.exit_code == 0, result.output
    assert _rows(repo.path) == saved
    junk = tmp_path / "junk.gpkg"
    junk.write_text("hello", encoding="utf-8")
    result = runner.invoke(main, ["restore", "--yes", str(junk)])
    assert result.exit_code == 2
    assert "not a readable SQLite database" in result.output
    assert _rows(repo.path) == saved
