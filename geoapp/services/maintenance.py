"""Backups and restores of the database: the operator's use cases.

A bureau runs geoapp for years on one server, so a copy of the database must be takeable
while the server runs (sqlite3's online backup API reads one consistent snapshot, even with
writers busy) and must be proven good before anyone relies on it (``PRAGMA integrity_check``
and the row counts). A restore refuses anything that is not a whole geoapp database (or one
written by a newer release), brings a backup made by an older release forward to this
schema, keeps the current database next to it, and swaps the file in with one rename.

On PostGIS (``STORAGE_BACKEND=postgis``) a backup is a ``pg_dump`` file and a restore
replaces the tables in one transaction (``PostgisRepository.backup`` / ``restore``); the
database before the restore is kept as a dump beside the file restored.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tomllib
from contextlib import closing
from pathlib import Path
from typing import Any

from geoapp.config import default_data_dir
from geoapp.domain.city import City
from geoapp.domain.errors import GeoappError, StorageUnavailable, ValidationFailed
from geoapp.services.core import DatabaseMissing
from geoapp.storage import geopackage as gp
from geoapp.storage import open_repository
from geoapp.storage.apptables import COUNTED_TABLES
from geoapp.storage.build import utc_now
from geoapp.storage.gpkg import GpkgRepository
from geoapp.storage.gpkg_schema import (
    CHANGES,
    META,
    SCHEMA_VERSION,
    SITE_HITS,
    SITES,
    migrate,
)
from geoapp.storage.postgis import PostgisRepository, dump_facts, is_dump

log = logging.getLogger(__name__)

#: Tables every geoapp database has, and the ones whose rows a report counts (every table
#: the app itself writes among them: accounts, API tokens, inspections, unit lists...).
REQUIRED_TABLES = ("gpkg_contents", META, SITES, CHANGES, SITE_HITS)


def inspect_database(path: str | os.PathLike) -> dict[str, Any]:
    """Prove ``path`` is a whole geoapp database this code can read; its city, schema
    version and row counts.

    Raises ValidationFailed naming what is wrong: not SQLite, damaged (integrity_check),
    not a geoapp database, or a schema version newer than this code (an older one is
    fine: opening or restoring it brings it forward).
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file")
    if is_dump(path):
        return {"path": str(path), **dump_facts(path), "bytes": path.stat().st_size}
    try:
        with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)) as conn:
            return _inspect(conn, path)
    except sqlite3.DatabaseError as exc:
        raise ValidationFailed(f"{path} is not a readable SQLite database ({exc}); "
                               "nothing was changed") from None


def _inspect(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    problems = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise ValidationFailed(f"{path} is damaged: integrity check says "
                               f"{'; '.join(problems[:3])}", details={"integrity": problems})
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise ValidationFailed(f"{path} is not a geoapp database (no table "
                               f"{', '.join(missing)})")
    meta = dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())
    version = int(meta.get("schema_version") or 0)
    if version < 1:
        raise ValidationFailed(f"{path} is not a geoapp database (no schema version)")
    if version > SCHEMA_VERSION:
        raise ValidationFailed(f"{path} has database schema version {version}, written by a "
                               f"newer geoapp; this one reads versions up to {SCHEMA_VERSION}")
    counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
              for t in COUNTED_TABLES if t in tables}
    return {"path": str(path), "integrity": "ok", "schema_version": version,
            "city": meta.get("city_name"), "built_at": meta.get("built_at"),
            "bytes": path.stat().st_size, "counts": counts}


def backup_database(settings: dict[str, Any], output: str | os.PathLike) -> dict[str, Any]:
    """Online, consistent copy of the configured database into ``output``, verified."""
    if _postgis(settings):
        return _backup_postgis(settings, Path(output))
    repo = GpkgRepository.from_settings(settings)
    if not repo.is_initialized():
        raise DatabaseMissing(repo.path)
    output = Path(output)
    if output.resolve() == repo.path.resolve():
        raise ValidationFailed("the backup file must not be the database itself")
    try:
        repo.backup(output)
    except OSError as exc:
        raise StorageUnavailable(f"could not write the backup {output}: {exc}") from None
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"could not write the backup {output}: {exc} "
                                 "(is that disk full or read-only?)") from None
    finally:
        repo.close()
    try:
        report = inspect_database(output)
    except ValidationFailed:
        output.unlink(missing_ok=True)
        raise
    log.info("backup of %s written to %s (%s)", repo.path, output, report["counts"])
    return {"database": str(repo.path), "backup": str(output), **report}


def inspect_backup(settings: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """``inspect_database`` for the configured backend: on PostGIS only a ``pg_dump``
    archive is a backup (another file is refused as such, not as a broken SQLite file), on
    the GeoPackage only a GeoPackage."""
    path = Path(path)
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file; nothing was changed")
    if _postgis(settings) and not is_dump(path):
        raise ValidationFailed(f"{path} is not a pg_dump archive (a geoapp backup of a PostGIS "
                               "database, pg_dump --format=custom); nothing was changed")
    if not _postgis(settings) and is_dump(path):
        raise ValidationFailed(f"{path} is a PostgreSQL dump, not a GeoPackage: restore it "
                               "into a PostGIS database (STORAGE_BACKEND=postgis); nothing "
                               "was changed")
    return inspect_database(path)


def configured_city(settings: dict[str, Any]) -> str | None:
    """This instance's city: the one its database holds now, else (no database built yet)
    the one city.toml in DATA_DIR names; None if neither can be read."""
    try:
        repo = open_repository(settings)
        try:
            if repo.is_initialized():
                return repo.meta().get("city_name")
        finally:
            repo.close()
    except (GeoappError, sqlite3.Error, OSError) as exc:
        log.warning("restore: cannot read the current database's city: %s", exc)
    toml = Path(str(settings.get("DATA_DIR") or default_data_dir())) / "city.toml"
    try:
        return City.from_mapping(tomllib.loads(toml.read_text(encoding="utf-8"))).name
    except (GeoappError, OSError, tomllib.TOMLDecodeError) as exc:
        log.warning("restore: cannot read the city of %s: %s", toml, exc)
        return None


def check_city(settings: dict[str, Any], incoming: dict[str, Any], source: Any) -> None:
    """ValidationFailed, naming both cities, unless the backup is of this instance's city."""
    here = configured_city(settings)
    if here is None or incoming.get("city") != here:
        raise ValidationFailed(
            f"{source} is a backup of {incoming.get('city') or '(no city)'}, but this "
            f"instance is {here or '(unknown city)'}; nothing was changed (restore it anyway "
            "with --other-city)", details={"backup_city": incoming.get("city"),
                                           "instance_city": here})


def restore_database(settings: dict[str, Any], source: str | os.PathLike, *,
                     other_city: bool = False) -> dict[str, Any]:
    """Replace the configured database with ``source`` after proving ``source`` whole and
    of this instance's city (``configured_city``; ``other_city`` allows another).

    A backup made by an older release is brought forward to this schema (the numbered
    migrations) in the prepared copy, before it replaces anything. The current database is first copied (online backup) to ``<name>.before-restore-<time>``
    next to it; the new file is prepared beside the target and renamed over it, so a failure
    at any step leaves either the old database or the new one, never a mixture. Run it with
    the server stopped: running workers keep the file they opened.
    """
    incoming = inspect_backup(settings, source)
    if not other_city:
        check_city(settings, incoming, source)
    if _postgis(settings):
        return _restore_postgis(settings, Path(source), incoming)
    target = Path(str(settings.get("DATABASE") or ""))
    if not str(target):
        raise ValidationFailed("DATABASE is empty: nothing to restore into")
    if target.exists() and Path(source).resolve() == target.resolve():
        raise ValidationFailed("that file is the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.restoring")
    try:
        kept = _keep_current(target) if target.exists() else None
        _copy(Path(source), tmp)
        applied = _bring_forward(tmp)
        restored = inspect_database(tmp)
        _swap(tmp, target)
    except (OSError, sqlite3.Error) as exc:
        raise StorageUnavailable(f"could not restore into {target}: {exc}; the database "
                                 "was not changed") from None
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    log.warning("restored %s from %s (previous database kept as %s)", target, source, kept)
    return {"database": str(target), "restored_from": str(source),
            "kept": None if kept is None else str(kept), "city": incoming["city"],
            "counts": incoming["counts"],
            "schema_version": {"backup": incoming["schema_version"],
                               "restored": restored["schema_version"]},
            "migrations": applied}


def _postgis(settings: dict[str, Any]) -> bool:
    return str(settings.get("STORAGE_BACKEND") or "").strip().lower() == "postgis"


def _backup_postgis(settings: dict[str, Any], output: Path) -> dict[str, Any]:
    repo = open_repository(settings)
    assert isinstance(repo, PostgisRepository)
    try:
        if not repo.is_initialized():
            raise DatabaseMissing.for_settings(settings)
        repo.backup(output)
    finally:
        repo.close()
    report = inspect_database(output)
    log.info("backup of %s written to %s (%s)", repo.where, output, report["counts"])
    return {"database": repo.where, "backup": str(output), **report}


def _restore_postgis(settings: dict[str, Any], source: Path,
                     incoming: dict[str, Any]) -> dict[str, Any]:
    repo = open_repository(settings)
    assert isinstance(repo, PostgisRepository)
    try:
        kept = None
        if repo.is_initialized():
            kept = repo.backup(source.with_name(
                f"{source.name}.before-restore-{utc_now().replace(':', '')}.dump"))
        report = repo.restore(source)
    finally:
        repo.close()
    return {**report, "kept": None if kept is None else str(kept),
            "counts": incoming["counts"]}


def _bring_forward(path: Path) -> list[str]:
    """Run the migrations a restored copy lacks; the names of the steps applied."""
    with closing(gp.connect(path)) as conn:
        applied = migrate(conn, str(path))
    if applied:
        log.warning("restored database brought forward to schema version %d: %s",
                    SCHEMA_VERSION, ", ".join(s.name for s in applied))
    return [f"{s.version}: {s.name}" for s in applied]


def _keep_current(target: Path) -> Path:
    """A consistent copy of the current database (WAL included) next to it."""
    kept = target.with_name(f"{target.name}.before-restore-{utc_now().replace(':', '')}")
    try:
        _copy(target, kept)
    except sqlite3.DatabaseError as exc:  # a damaged database: keep its bytes as they are
        log.warning("could not back up %s (%s); keeping a raw copy", target, exc)
        for suffix in ("", "-wal"):
            if Path(f"{target}{suffix}").exists():
                shutil.copyfile(f"{target}{suffix}", f"{kept}{suffix}")
    return kept


def _copy(src: Path, dst: Path) -> None:
    """sqlite3 online backup of ``src`` into a fresh ``dst`` (one consistent snapshot)."""
    dst.unlink(missing_ok=True)
    with closing(sqlite3.connect(src.resolve().as_uri() + "?mode=ro", uri=True)) as s, \
            closing(sqlite3.connect(dst)) as d:
        s.backup(d)


def _swap(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` over ``target``; first flush and drop the old write-ahead log.

    A WAL left beside the new file would be replayed into it on the next open.
    """
    if target.exists():
        try:
            with closing(sqlite3.connect(target, timeout=30)) as old:
                old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            log.warning("could not checkpoint %s before the restore: %s", target, exc)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, target)
