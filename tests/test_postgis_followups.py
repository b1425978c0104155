"""The PostGIS backend as an operator meets it: the database is named alike everywhere (without
its password), a database without PostGIS is refused in one line, a backup counts every table
the app writes, and the change counter stays cheap behind a long audit log."""

from __future__ import annotations

import ast
import io
import json
import logging
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from PIL import Image

from geoapp.cli import main
from geoapp.config import load_settings
from geoapp.domain.errors import ValidationFailed
from geoapp.services import DatabaseMissing, checks, maintenance, photos
from geoapp.storage import open_repository
from geoapp.storage.postgis import (
    COUNTED_TABLES,
    NoPostgis,
    PostgisRepository,
    last_change_query,
)
from geoapp.web import prod

from pg import PgServer, new_database

ROOT = Path(__file__).resolve().parent.parent
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


# --------------------------------------------------------------------------- a database without PostGIS
@pytest.fixture
def bare_url(pg_server: PgServer) -> Iterator[str]:
    """A new database without PostGIS (made from template0), dropped after the test."""
    with new_database(pg_server, "template0", prefix="bare") as url:
        yield url


def tables_in(server: PgServer, url: str) -> list[str]:
    return server.psql("SELECT tablename FROM pg_tables WHERE schemaname NOT IN "
                       "('pg_catalog', 'information_schema') ORDER BY 1",
                       url.rsplit("/", 1)[1]).split()


def use_postgis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("GEOAPP_STORAGE_BACKEND", "postgis")
    monkeypatch.setenv("GEOAPP_DATABASE_URL", url)
    monkeypatch.setenv("GEOAPP_SECRET_KEY", secrets.token_urlsafe(48))


@pytest.mark.parametrize("args", [["init-db"], ["init-db", "--force"], ["serve", "--port", "1"],
                                  ["serve", "--prod", "--port", "1", "--workers", "1"],
                                  ["users", "list"], ["backup", "-o", "nightly.dump"]])
def test_a_database_without_postgis_is_refused_in_one_line_before_anything_is_made(
        args, bare_url, pg_server, tmp_path, monkeypatch):
    url = with_password(bare_url)
    use_postgis(monkeypatch, tmp_path, url)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "geometry" not in result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("错误 Error: 数据库没有 PostGIS No PostGIS in the PostgreSQL "
                                    f"database {bare_url}; run `CREATE EXTENSION postgis;` in "
                                    "it as a PostgreSQL superuser"), result.stderr
    assert PASSWORD not in result.output
    assert tables_in(pg_server, bare_url) == []  # not even the migrations ran
    assert not (tmp_path / "nightly.dump").exists()


@pytest.mark.slow
def test_once_postgis_is_created_as_told_init_db_builds_the_city(bare_url, pg_server,
                                                                tmp_path, monkeypatch):
    use_postgis(monkeypatch, tmp_path, bare_url)
    assert CliRunner().invoke(main, ["init-db"]).exit_code == 2
    with pytest.raises(NoPostgis) as err:
        postgis(bare_url).is_initialized()
    told = re.search(r"`(CREATE EXTENSION postgis;)`", err.value.message)
    assert told is not None, err.value.message
    pg_server.psql(told.group(1), bare_url.rsplit("/", 1)[1])
    result = CliRunner().invoke(main, ["init-db"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "built"
    assert {"sites", "changes", "users"} <= set(tables_in(pg_server, bare_url))


def test_postgis_outside_the_search_path_is_named_with_the_statement_that_fixes_it(
        bare_url, pg_server):
    db = bare_url.rsplit("/", 1)[1]
    pg_server.psql("CREATE SCHEMA gis; CREATE EXTENSION postgis SCHEMA gis", db)
    repo = postgis(bare_url)
    with pytest.raises(NoPostgis) as err:
        repo.is_initialized()
    message = err.value.message
    assert "schema gis" in message and bare_url in message and "\n" not in message
    assert tables_in(pg_server, bare_url) == ["spatial_ref_sys"]  # PostGIS's own only
    fix = re.search(r"\((ALTER DATABASE .*?)\)", message)
    assert fix is not None, message
    pg_server.psql(fix.group(1), db)
    repo = postgis(bare_url)
    assert repo.is_initialized() is False  # now it can be built
    repo.close()


# --------------------------------------------------------------------------- what a backup counts
def app_writes(repo) -> None:
    """At least one row in every table the app writes (the build fills the rest)."""
    repo.create_user("alice", "scrypt:not-a-real-hash", "planner", user="test")
    repo.create_token("alice", "ab" * 32, name="qgis", user="test")
    repo.record_login("alice", "127.0.0.1", True)
    rec = repo.add_inspection({"lon": 113.3, "lat": 35.2, "verdict": "pass", "hits": []},
                              user="alice")
    png = io.BytesIO()
    Image.new("RGB", (8, 6), "green").save(png, "PNG")
    photo = photos.read_photo(photos.Upload("p.png", png.getvalue()),
                              photos.Limits(max_bytes=1 << 20, max_count=12, mismatch_m=200))
    repo.add_inspection_photos(rec["id"], [photo], user="alice")


def stored_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        present = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for t in COUNTED_TABLES if t in present}


@pytest.mark.slow
def test_geoapp_backup_on_postgis_counts_what_the_geopackage_backup_counts(
        pg_url, tmp_path, monkeypatch):
    runner, reports = CliRunner(), {}
    for backend in ("gpkg", "postgis"):
        inst = tmp_path / backend
        monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(inst))
        if backend == "postgis":
            monkeypatch.setenv("GEOAPP_STORAGE_BACKEND", "postgis")
            monkeypatch.setenv("GEOAPP_DATABASE_URL", pg_url)
        built = runner.invoke(main, ["init-db"])
        assert built.exit_code == 0, built.output
        repo = open_repository(load_settings(inst))
        app_writes(repo)
        repo.close()
        done = runner.invoke(main, ["backup", "-o", str(tmp_path / f"nightly.{backend}")])
        assert done.exit_code == 0, done.output
        reports[backend] = json.loads(done.stdout)
    counts = reports["postgis"]["counts"]
    assert counts == stored_counts(pg_url)  # every counted table, each row
    assert list(counts) == list(reports["gpkg"]["counts"])  # the same tables, same order
    assert set(counts) == set(COUNTED_TABLES) == set(maintenance.COUNTED_TABLES)
    # Every table has rows: the build seeds the emergency list, ``app_writes`` the rest.
    assert all(counts[t] > 0 for t in COUNTED_TABLES), counts
    assert counts == reports["gpkg"]["counts"]  # and the same rows: one city, one history
    assert reports["postgis"]["database"] == pg_url


def test_a_dump_counts_the_counted_tables_it_has_and_needs_geoapp_s_schema_version(
        pg_url, tiny_data_dir, tmp_path):
    repo = postgis(pg_url)
    repo.initialize(tiny_data_dir)
    app_writes(repo)
    repo.backup(tmp_path / "tiny.dump")
    repo.close()
    facts = maintenance.inspect_database(tmp_path / "tiny.dump")
    assert facts["counts"] == stored_counts(pg_url)  # the tables this city has, every row
    assert facts["city"] and facts["schema_version"] >= 2
    with psycopg.connect(pg_url, autocommit=True) as conn:  # no geoapp tables left
        conn.execute("DROP TABLE geoapp_meta")
    postgis(pg_url).backup(tmp_path / "other.dump")
    with pytest.raises(ValidationFailed, match="not a geoapp database dump"):
        maintenance.inspect_database(tmp_path / "other.dump")


# --------------------------------------------------------------------------- serve --prod's first step
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gpkg", "postgis"])
def test_the_production_start_names_the_store_it_prepared(kind, pg_url, tmp_path, monkeypatch,
                                                         caplog):
    inst = tmp_path / "inst"
    use_postgis(monkeypatch, tmp_path, with_password(pg_url))
    if kind == "gpkg":
        monkeypatch.delenv("GEOAPP_STORAGE_BACKEND")
    with caplog.at_level(logging.INFO, logger="geoapp.web.prod"):
        ready = prod.prepare_database(inst)
    expected = pg_url if kind == "postgis" else str(inst / "geoapp.gpkg")
    assert ready == {"city": "焦作市", "database": expected}
    assert f"database {expected} ready" in caplog.text and PASSWORD not in caplog.text


# --------------------------------------------------------------------------- the documented challenges
@pytest.mark.backends("gpkg")  # the headers are the web layer's, whatever the store
def test_the_security_doc_gives_the_two_401_challenges_exactly_as_sent(offline_app):
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`WWW-Authenticate: ([^`]+)`", doc.replace("\n  ", " ")))
    client = offline_app.test_client()
    url = "/api/check?lon=113.24&lat=35.22"
    anonymous = client.get(url)
    bad = client.get(url, headers={"Authorization": "Bearer geoapp_" + "x" * 43})
    assert anonymous.status_code == bad.status_code == 401
    assert anonymous.get_json()["error"] == "unauthorized"
    assert bad.get_json()["error"] == "invalid_token"
    sent = {anonymous.headers["WWW-Authenticate"], bad.headers["WWW-Authenticate"]}
    assert documented == sent


# --------------------------------------------------------------------------- the figures quoted
def section(markdown: str, title: str) -> str:
    """The text of the ``## title`` section of a markdown file, up to the next ``## ``."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    assert found is not None, title
    return found.group(1)


def test_the_postgis_status_quotes_the_backend_figures_of_the_performance_doc():
    status = section((ROOT / "docs" / "postgis.md").read_text(encoding="utf-8"), "Status")
    backends = section((ROOT / "docs" / "performance.md").read_text(encoding="utf-8"),
                       "Backends")
    assert "to come" not in status.lower()
    assert 'the "Backends" section of docs/performance.md' in status.replace("\n", " ")
    quoted = re.findall(r"\d[\d,]*(?:\.\d+)?(?= ?(?:ms|x\b|req/s|/|\|))", status)
    assert len(quoted) >= 15, quoted
    missing = [f for f in quoted if not re.search(rf"(?<![\d.,]){re.escape(f)}(?![\d])",
                                                  backends)]
    assert missing == [], f"figures in docs/postgis.md that docs/performance.md lacks: {missing}"


# --------------------------------------------------------------------------- make bench
def declared_options(script: Path) -> set[str]:
    """The ``--options`` a script's argparse declares (``add_argument("--name", ...)``)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument" and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).startswith("--")}


def test_make_bench_runs_every_bench_with_options_its_script_declares():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^bench:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert target is not None and "bench/run_all.py" in target.group(1)
    done = subprocess.run([sys.executable, "bench/run_all.py", "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    commands = [line.split() for line in done.stdout.splitlines()]
    bench = ROOT / "bench"
    assert [c[1] for c in commands] == [
        *[f"bench/{p.name}" for p in sorted(bench.glob("bench_*.py"))], "bench/postgis.py"]
    for _python, script, *options in commands:
        declared = declared_options(ROOT / script)
        given = {o for o in options if o.startswith("--")}
        assert given <= declared, f"{script}: {sorted(given - declared)} not among {declared}"
    assert {c[1] for c in commands if "--quick" in c} == {"bench/bench_backends.py"}


# --------------------------------------------------------------------------- the change counter
ENGINE_INPUTS_EXCLUDED = checks._NOT_ENGINE_INPUTS


def plan(url: str, sql: str, params: list) -> dict:
    with psycopg.connect(url) as conn:
        return conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}",
                            params).fetchone()[0][0]


def blocks(node: dict) -> int:
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


KINDS = [((), ()), ((), ENGINE_INPUTS_EXCLUDED), (("site_hits",), ()), (("site",), ()),
         (("site", "layer"), ("layer",)), (("nothing-of-this-kind",), ()),
         ((), ("site", "session", "site_hits", "layer", "database", "user"))]


def test_the_newest_change_of_some_kinds_is_the_one_a_plain_scan_finds(pg_url, tiny_data_dir):
    repo = postgis(pg_url)
    repo.initialize(tiny_data_dir)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO changes (at, "user", action, entity)
            SELECT 't' || g, 'u', 'x', (ARRAY['site', 'session', 'site_hits', 'layer',
                'user'])[1 + (g * 7919) % 5] FROM generate_series(1, 3000) g""")
        for only, exclude in KINDS:
            keep, skip = list(only), list(exclude)
            expected = conn.execute(
                "SELECT id, at FROM changes WHERE (cardinality(%s::text[]) = 0 OR "
                "entity = ANY(%s)) AND NOT (entity = ANY(%s)) ORDER BY id DESC LIMIT 1",
                [keep, keep, skip]).fetchone()
            found = repo.last_change(only=only, exclude=exclude)
            assert found == (None if expected is None else
                             {"id": expected[0], "at": expected[1]}), (only, exclude)
    only_the_build = repo.last_change(exclude=("site", "session", "site_hits", "layer", "user"))
    assert only_the_build is not None and only_the_build["at"] == repo.meta()["built_at"]
    repo.close()


@pytest.mark.slow
def test_the_change_counter_stays_a_few_index_probes_behind_200000_logins(pg_url,
                                                                        tiny_data_dir):
    repo = postgis(pg_url)
    repo.initialize(tiny_data_dir)
    repo.create_user("alice", "scrypt:not-a-real-hash", "planner", user="test")
    site = repo.sites().iloc[0]
    repo.update_site(site["id"], {"name": "改过的名字"}, user="alice",
                     expected_version=int(site["version"]))
    last_edit = repo.last_change_id(exclude=ENGINE_INPUTS_EXCLUDED)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # then logins, a flag, a download
        conn.execute("""INSERT INTO changes (at, "user", action, entity)
            SELECT '2026-01-02T00:00:00Z', 'alice', 'login', 'session'
            FROM generate_series(1, 200000)""")
        for entity in ("site_hits", "derived_layer", "download", "inspection"):
            conn.execute("""INSERT INTO changes (at, "user", action, entity)
                VALUES ('2026-01-02T00:00:00Z', 'rules', 'replace', %s)""", (entity,))
        conn.execute("ANALYZE changes")
        newest = conn.execute("SELECT max(id) FROM changes").fetchone()[0]
    assert repo.last_change_id(exclude=ENGINE_INPUTS_EXCLUDED) == last_edit
    assert repo.last_change_id(only=("site_hits",)) == newest - 3
    assert newest - last_edit > 200_000
    for only, exclude in [((), ENGINE_INPUTS_EXCLUDED), (("site",), ()),
                          (("site_hits",), ())]:
        sql, params = last_change_query(only, exclude)
        root = plan(pg_url, sql, params)
        # a walk back through the id index past the logins reads thousands of pages
        assert blocks(root["Plan"]) < 200, (only, exclude, blocks(root["Plan"]))
        assert root["Execution Time"] < 50
    repo.update_site(site["id"], {"name": "又改了"}, user="alice",
                     expected_version=int(site["version"]) + 1)
    edit = repo.last_change_id(exclude=ENGINE_INPUTS_EXCLUDED)
    assert edit > newest and repo.last_change_id(only=("site",)) == edit
    repo.close()
