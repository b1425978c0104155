"""What a PostGIS installation is told when its database has not been built: the database's
URL without the password and the command that builds it, on the command line without a
traceback; a first start (``geoapp serve``) builds it and logs the same URL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.config import load_settings
from geoapp.services import DatabaseMissing, open_geoapp
from geoapp.storage import open_repository

PASSWORD = "Pw-never-shown-9"


def with_password(url: str) -> str:
    """``pg_url`` with a password (the test server trusts loopback, so any password works)."""
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:{PASSWORD}@{host}"


def shown(url: str) -> str:
    """The URL as the messages must name it: user, host, port, database."""
    return url.replace(f":{PASSWORD}@", "@")


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path) -> dict:
    """The shipped city's settings on an empty PostGIS database."""
    return load_settings(tmp_path / "inst", overrides={
        "STORAGE_BACKEND": "postgis", "DATABASE_URL": with_password(pg_url)}, environ={})


def test_an_unbuilt_postgis_database_is_named_by_its_url_without_the_password(pg_settings):
    with pytest.raises(DatabaseMissing) as err:
        open_geoapp(pg_settings, build=False)
    message = err.value.message
    url = shown(pg_settings["DATABASE_URL"])
    assert url.startswith("postgresql://geoapp@127.0.0.1:") and PASSWORD not in url
    assert url in message and err.value.database == url
    assert "geoapp init-db" in message and "GEOAPP_DATABASE_URL" in message
    assert PASSWORD not in message and ".gpkg" not in message
    assert "GEOAPP_INSTANCE_PATH" not in message
    repo = open_repository(pg_settings)
    assert not repo.is_initialized()  # nothing was built where nobody asked for it
    repo.close()


@pytest.mark.slow
def test_the_first_start_builds_it_and_logs_the_url_without_the_password(pg_settings, caplog):
    with caplog.at_level(logging.INFO, logger="geoapp.services"):
        core = open_geoapp(pg_settings)
    try:
        assert core.repo.is_initialized() and core.city.name == "焦作市"
    finally:
        core.repo.close()
    built = [r.getMessage() for r in caplog.records if "first start" in r.getMessage()]
    assert built == [f"first start: building {shown(pg_settings['DATABASE_URL'])} from "
                     f"{pg_settings['DATA_DIR']}"]


@pytest.mark.parametrize("args", [["check", "--lon", "113.24", "--lat", "35.22"],
                                  ["users", "list"], ["users", "token", "--username", "viewer"],
                                  ["backup", "-o", "nightly.dump"]])
def test_the_cli_says_so_in_one_message_without_a_traceback(args, pg_url, tmp_path,
                                                           monkeypatch):
    url = with_password(pg_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("GEOAPP_STORAGE_BACKEND", "postgis")
    monkeypatch.setenv("GEOAPP_DATABASE_URL", url)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.startswith("错误 Error: 数据库尚未建立 No geoapp data in the "
                                    f"PostgreSQL database {shown(url)};")
    assert "geoapp init-db" in result.stderr and PASSWORD not in result.output
    assert not (tmp_path / "nightly.dump").exists()


@pytest.mark.parametrize(("given", "expected"), [
    ("postgresql://gis:secret@db.example:5433/geo", "postgresql://gis@db.example:5433/geo"),
    ("postgresql://gis:p%40ss@db/geo?sslmode=require&password=x",
     "postgresql://gis@db/geo?sslmode=require"),
    ("postgres://db1,db2:5433/geo", "postgres://db1,db2:5433/geo"),
    ("postgresql:///geo?host=/var/run/postgresql&password=x",
     "postgresql:///geo?host=/var/run/postgresql"),
    ("host=db.example port=5433 dbname=geo user=gis password='a secret'",
     "postgresql://gis@db.example:5433/geo"),
    ("dbname=geo host=/var/run/postgresql password=secret sslmode=disable",
     "postgresql:///geo?sslmode=disable&host=/var/run/postgresql"),
])
def test_every_form_of_connection_string_is_shown_without_its_password(given, expected):
    assert DatabaseMissing.shown_url(given) == expected
    missing = DatabaseMissing.for_settings({"STORAGE_BACKEND": "postgis",
                                            "DATABASE_URL": given})
    assert expected in missing.message and "secret" not in missing.message


def test_a_geopackage_is_still_named_by_its_file(tmp_path):
    missing = DatabaseMissing.for_settings({"DATABASE": str(tmp_path / "geoapp.gpkg")})
    assert f"No database at {tmp_path / 'geoapp.gpkg'}" in missing.message
    assert "GEOAPP_INSTANCE_PATH" in missing.message and "PostgreSQL" not in missing.message
