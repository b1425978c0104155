"""The PostGIS backend against a real PostgreSQL + PostGIS server (tests/pg.py)."""

from __future__ import annotations

import psycopg
import pytest

import pg
from pg import PgServer


def test_the_test_server_has_postgis_and_listens_on_loopback_only(pg_server: PgServer,
                                                                  pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        port = conn.execute("SHOW port").fetchone()[0]
    assert version.startswith("3.")
    assert listen == "127.0.0.1" and int(port) == pg_server.port


def test_missing_binaries_skip_locally_and_fail_in_ci(monkeypatch) -> None:
    monkeypatch.setattr(pg, "pg_bin", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="initdb"):
        pg.start_server()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="system-deps"):
        pg.start_server()
