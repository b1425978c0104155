"""The PostGIS backend as an operator meets it: the database is named alike everywhere (without
its password), a database without PostGIS is refused in one line, a backup counts every table
the app writes, and the change counter stays cheap behind a long audit log."""

from __future__ import annotations

import pytest

from geoapp.services import DatabaseMissing
from geoapp.storage import open_repository
from geoapp.storage.postgis import PostgisRepository

PASSWORD = "Pw-never-shown-7"

#: Connection strings in every form libpq takes (each with a password somewhere).
URL_FORMS = [
    "postgresql://gis:secret@db.example:5433/geo",
    "postgresql://gis:p%40ss@db/geo?sslmode=require&password=x",
    "postgres://db1,db2:5433/geo",
    "postgresql:///geo?host=/var/run/postgresql&password=x",
    "host=db.example port=5433 dbname=geo user=gis password='a secret'",
    "dbname=geo host=/var/run/postgresql password=secret sslmode=disable",
    "postgresql://geoapp@127.0.0.1:5432/city",
]


def with_password(url: str) -> str:
    """``url`` (``postgresql://user@host...``) with a password (the test server trusts
    loopback, so any password connects)."""
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:{PASSWORD}@{host}"


def postgis(url: str) -> PostgisRepository:
    repo = open_repository({"STORAGE_BACKEND": "postgis", "DATABASE_URL": url})
    assert isinstance(repo, PostgisRepository)
    return repo


# --------------------------------------------------------------------------- naming the database
@pytest.mark.parametrize("url", URL_FORMS)
def test_the_repository_names_its_database_as_the_not_built_message_does(url):
    where = postgis(url).where
    assert where == DatabaseMissing.shown_url(url)
    assert where in DatabaseMissing.for_settings({"STORAGE_BACKEND": "postgis",
                                                  "DATABASE_URL": url}).message
    assert "secret" not in where and "p%40ss" not in where and "password" not in where


def test_the_user_is_named_and_the_password_never(pg_url):
    url = with_password(pg_url)
    repo = postgis(url)
    assert repo.where == pg_url and repo.where.startswith("postgresql://geoapp@127.0.0.1:")
    assert PASSWORD not in repo.where and PASSWORD not in repr(repo)
