"""A private PostgreSQL 15 + PostGIS server for the test session.

``pg_server`` starts a cluster in a temporary folder on a free loopback port (``initdb`` as
the ``postgres`` system user when the tests run as root), makes one database with
``CREATE EXTENSION postgis`` and stops the server at the session's end. ``pg_url`` gives a
test a fresh database of its own on that server (``CREATE DATABASE ... TEMPLATE`` the PostGIS
one), dropped after it. Without the PostgreSQL binaries the tests that use them
are skipped, except in CI (``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The PostgreSQL major version the project installs (scripts/system-deps.sh).
PG_VERSION = "15"
SUPERUSER = "geoapp"
TEMPLATE_DB = "geoapp_template"


def pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl, Debian's versioned one first."""
    for cand in (f"/usr/lib/postgresql/{PG_VERSION}/bin/initdb", shutil.which("initdb")):
        if cand and Path(cand).is_file():
            return Path(cand).resolve().parent
    return None


def has_postgis(bin_dir: Path) -> bool:
    share = subprocess.run([str(bin_dir / "pg_config"), "--sharedir"], check=True,
                           capture_output=True, text=True).stdout.strip()
    return bool(glob.glob(f"{share}/extension/postgis.control"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PgServer:
    """A running test server: where it listens and how to reach a database on it."""

    bin: Path
    folder: Path
    port: int
    user: str | None  # the system user running it (postgres when the tests run as root)

    def url(self, dbname: str = TEMPLATE_DB) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / program), *args], check=True, user=self.user,
                              capture_output=True, text=True, cwd=self.folder)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return self.run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                        "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", dbname,
                        "-c", sql).stdout.strip()


def start_server() -> PgServer:
    """initdb, start on a free loopback port, and make the PostGIS template database."""
    bin_dir = pg_bin()
    missing = ("PostgreSQL binaries (initdb)" if bin_dir is None
               else None if has_postgis(bin_dir) else "PostGIS")
    if missing:
        message = f"{missing} not installed (scripts/system-deps.sh installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    assert bin_dir is not None
    folder = Path(tempfile.mkdtemp(prefix="geoapp-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(folder, user)
    os.chmod(folder, 0o700)
    server = PgServer(bin_dir, folder, free_port(), user)
    data = folder / "data"
    server.run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
               "--no-locale")
    # fsync off: a test cluster is thrown away, and durability costs seconds per test.
    opts = (f"-k {folder} -p {server.port} -h 127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c jit=off")
    try:
        server.run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w",
                   "-t", "60", "start")
    except subprocess.CalledProcessError as exc:
        log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from exc
    server.psql(f"CREATE DATABASE {TEMPLATE_DB}")
    server.psql("CREATE EXTENSION postgis", TEMPLATE_DB)
    return server


def stop_server(server: PgServer) -> None:
    try:
        server.run("pg_ctl", "-D", str(server.folder / "data"), "-m", "immediate", "-w",
                   "stop")
    finally:
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL + PostGIS server (started on first use)."""
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


@contextmanager
def new_database(server: PgServer, template: str = TEMPLATE_DB, prefix: str = "t"
                 ) -> Iterator[str]:
    """The URL of a new database copied from ``template`` (the PostGIS one by default;
    ``template0`` for one without PostGIS), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield server.url(name)
    finally:
        server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database with PostGIS, dropped after the test."""
    with new_database(pg_server) as url:
        yield url
