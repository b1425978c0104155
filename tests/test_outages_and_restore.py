"""The PostgreSQL server going away and coming back, and restores of another city's dump.

A private server (not the session's shared one) is stopped and started again under a running
app: pages, the health probe and the check API answer 503 within seconds while it is down,
never 500, and 200 again once it is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from geoapp.cli import main
from geoapp.config import load_settings
from geoapp.domain.errors import ConfigError, ValidationFailed
from geoapp.services.maintenance import restore_database
from geoapp.storage import open_repository
from geoapp.storage.postgis import CONNECT_TIMEOUT_S, FAIL_FAST_S, POOL_TIMEOUT_S
from geoapp.web import create_app

from pg import PgServer, start_server, stop_server
from webutil import instance_settings, login, make_users, on_postgis, sql


@pytest.fixture(scope="module")
def private_server() -> Iterator[PgServer]:
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


def _pg_ctl(server: PgServer, action: str) -> None:
    data = str(server.folder / "data")
    if action == "stop":
        server.run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    else:
        opts = (f"-k {server.folder} -p {server.port} -h 127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c jit=off")
        server.run("pg_ctl", "-D", data, "-o", opts, "-l", str(server.folder / "log"), "-w",
                   "-t", "60", "start")


@pytest.fixture(scope="module")
def outage_app(private_server: PgServer, tmp_path_factory) -> Iterator[Flask]:
    root = tmp_path_factory.mktemp("outage")
    private_server.psql("CREATE DATABASE outage TEMPLATE geoapp_template")
    inst = root / "instance"
    inst.mkdir()
    (inst / "geoapp.toml").write_text(instance_settings(private_server.url("outage")),
                                      encoding="utf-8")
    app = create_app({"INSTANCE_PATH": str(inst), "TESTING": True, "TILES": "none",
                      "INTRANET": True})
    make_users(app)
    yield app
    app.extensions["geoapp"].repo.close()


def _timed(client, url: str):
    started = time.perf_counter()
    r = client.get(url)
    return r, time.perf_counter() - started


URLS = ("/", "/healthz", "/api/check?lon=113.24&lat=35.22")


def test_server_down_is_a_fast_503_and_back_is_200_at_once(outage_app, private_server):
    """Stopped server: every page, the probe and the check API answer 503 within seconds
    (the first request waits for a connection once, the next ones fail at once), the page
    drawn without loading the account; started again: 200 on the next requests."""
    client = outage_app.test_client()
    login(client, "viewer")
    for url in URLS:
        r = client.get(url)
        assert r.status_code == 200, (url, r.get_data(as_text=True)[:600])
    assert 'class="ga-user"' in client.get("/").get_data(as_text=True)
    _pg_ctl(private_server, "stop")
    try:
        seconds = []
        for url in (*URLS, "/weekly", "/no-such-page", *URLS):
            r, took = _timed(client, url)
            seconds.append((url, round(took, 2)))
            assert r.status_code == 503, (url, r.get_data(as_text=True)[:300])
            if url == "/healthz":
                assert r.get_json() == {"status": "unavailable"}
            elif url.startswith("/api/"):
                assert r.get_json()["error"] == "storage_unavailable"
                assert r.get_json()["message"] == "数据库暂时无法访问，请稍后再试。"
            else:
                body = r.get_data(as_text=True)
                assert "数据库暂时无法访问" in body and "未保存任何内容" not in body
                assert 'class="ga-user"' not in body  # the header of an anonymous visitor
        print("seconds while down:", seconds)
        assert seconds[0][1] < POOL_TIMEOUT_S + 3, seconds  # waits for a connection once
        assert max(took for _, took in seconds[1:]) < 1, seconds  # then fails at once
        time.sleep(FAIL_FAST_S)
        r, took = _timed(client, "/healthz")  # tries the server afresh: refused at once
        assert r.status_code == 503 and took < CONNECT_TIMEOUT_S + 1, took
    finally:
        _pg_ctl(private_server, "start")
    time.sleep(FAIL_FAST_S)  # the last failure's fail-fast interval
    for url in URLS:
        r, took = _timed(client, url)
        assert r.status_code == 200, (url, r.get_data(as_text=True)[:300])
    assert 'class="ga-user"' in client.get("/").get_data(as_text=True)  # still logged in


def test_broken_pool_connections_are_replaced(outage_app, private_server):
    """The server restarted between two requests: the pool's connections are all broken;
    the next request gets a new one and answers 200 at once."""
    client = outage_app.test_client()
    login(client, "viewer")
    assert client.get("/healthz").status_code == 200
    _pg_ctl(private_server, "stop")
    _pg_ctl(private_server, "start")
    for url in URLS:
        r, took = _timed(client, url)
        assert r.status_code == 200, (url, r.get_data(as_text=True)[:300])
        assert took < CONNECT_TIMEOUT_S, (url, took)


# ---------------------------------------------------------------------------- restore
def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: dict) -> None:
    inst = tmp_path / "inst"
    inst.mkdir(exist_ok=True)
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(inst))
    for key, value in settings.items():
        monkeypatch.setenv(f"GEOAPP_{key}", value)


def _sites(settings: dict) -> list[tuple]:
    return sql(settings, "SELECT id, version FROM sites ORDER BY id")


def test_restore_of_another_citys_backup_is_refused_unless_other_city(
        repo, store_settings: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backup whose city is not the instance's is refused, naming both cities, with
    nothing changed; ``--other-city`` restores it."""
    backup = tmp_path / ("b.dump" if on_postgis(store_settings) else "b.gpkg")
    _cli_env(monkeypatch, tmp_path, store_settings)
    runner = CliRunner()
    assert runner.invoke(main, ["backup", "-o", str(backup)]).exit_code == 0
    repo.delete_site("W2", user="planner", expected_version=1)
    sql(store_settings, "UPDATE geoapp_meta SET value = '别的市' WHERE key = 'city_name'",
        write=True)  # the instance now serves another city than the backup's
    repo.close()
    before = _sites(store_settings)
    result = runner.invoke(main, ["restore", "--yes", str(backup)])
    assert result.exit_code == 2, result.output
    assert "测试市" in result.output and "别的市" in result.output
    assert "--other-city" in result.output
    assert _sites(store_settings) == before
    assert not list(tmp_path.rglob("*before-restore*"))
    with pytest.raises(ValidationFailed, match="测试市.*别的市"):
        restore_database(load_settings(tmp_path / "inst"), backup)
    result = runner.invoke(main, ["restore", "--yes", "--other-city", str(backup)])
    assert result.exit_code == 0, result.output
    assert ("W2", 1) in _sites(store_settings)
    assert sql(store_settings, "SELECT value FROM geoapp_meta WHERE key = 'city_name'"
               ) == [("测试市",)]
    # the same city restores without the flag
    assert runner.invoke(main, ["restore", "--yes", str(backup)]).exit_code == 0


def test_restore_of_a_foreign_or_missing_file_says_so_for_the_backend(
        repo, store_settings: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_env(monkeypatch, tmp_path, store_settings)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello, not a backup\n" * 10)
    settings = load_settings(tmp_path / "inst")
    wanted = ("not a pg_dump archive" if on_postgis(store_settings)
              else "not a readable SQLite database")
    with pytest.raises(ValidationFailed, match=wanted):
        restore_database(settings, junk)
    with pytest.raises(ValidationFailed, match="no such file"):
        restore_database(settings, tmp_path / "missing.dump")
    result = CliRunner().invoke(main, ["restore", "--yes", str(junk)])
    assert result.exit_code == 2 and wanted in result.output, result.output
    if on_postgis(store_settings):
        assert "gpkg_contents" not in result.output and "SQLite" not in result.output


@pytest.mark.parametrize("url", ["mysql://x:pw123@h/db", "postgresql://x:pw123@[::1",
                                 "host=h password=pw123 dbname"])
def test_a_malformed_database_url_is_one_line_without_the_password(
        url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cli_env(monkeypatch, tmp_path, {"STORAGE_BACKEND": "postgis", "DATABASE_URL": url})
    result = CliRunner().invoke(main, ["backup", "-o", str(tmp_path / "b.dump")])
    assert result.exit_code == 2, result.output
    assert "pw123" not in result.output and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert "DATABASE_URL" in result.output and "not a PostgreSQL connection string" in \
        result.output
    with pytest.raises(ConfigError) as raised:
        open_repository({"STORAGE_BACKEND": "postgis", "DATABASE_URL": url})
    assert "pw123" not in str(raised.value.message)
