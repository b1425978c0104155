"""The PostGIS backend against a real PostgreSQL + PostGIS server (tests/pg.py).

The repository's contract runs on both backends (``store`` is parametrised: the embedded
GeoPackage and PostGIS); the PostGIS-only tests check what only a shared server has: PostGIS
columns and GiST indexes, two app servers on one database, the change counter.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
import shapely
from shapely.geometry import Point, box

from geoapp.config import load_settings
from geoapp.domain.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    NotFound,
    StorageUnavailable,
    ValidationFailed,
)
from geoapp.storage import open_repository
from geoapp.storage.postgis import SCHEMA_VERSION, NotInitialized, PostgisRepository
from geoapp.storage.sources import load_city, read_layer

import pg
from pg import PgServer
from tinycity import TINY_SITES, write_csv
from webutil import PgDatabase, copy_database

BACKENDS = ["gpkg", "postgis"]


def _settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict:
    if backend == "gpkg":
        return {"DATABASE": str(tmp_path / "db" / "geoapp.gpkg")}
    return {"STORAGE_BACKEND": "postgis", "DATABASE_URL": request.getfixturevalue("pg_url")}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tiny_data_dir: Path, tmp_path: Path):
    """The tiny city built in each backend."""
    repo = open_repository(_settings(request.param, tmp_path, request))
    repo.initialize(tiny_data_dir)
    yield repo
    repo.close()


@pytest.fixture
def pg_store(pg_url: str, tiny_data_dir: Path):
    repo = open_repository({"STORAGE_BACKEND": "postgis", "DATABASE_URL": pg_url})
    repo.initialize(tiny_data_dir)
    yield repo
    repo.close()


def _new_farm(site_id: str, **extra: object) -> dict:
    return {"site_type": "livestock_farm", "id": site_id, "name": f"养殖场{site_id}",
            "district": "东区", "species": "生猪", "head_count": 300, "lon": 113.5,
            "lat": 35.1, **extra}


# --------------------------------------------------------------------------- the test server
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


# --------------------------------------------------------------------------- choosing it
def test_postgis_is_chosen_by_name_and_needs_a_url() -> None:
    repo = open_repository({"STORAGE_BACKEND": "postgis",
                            "DATABASE_URL": "postgresql://geoapp:secret@db.example:6543/city"})
    assert isinstance(repo, PostgisRepository)
    assert repo.where == "postgresql://geoapp@db.example:6543/city"  # no password shown
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        open_repository({"STORAGE_BACKEND": "postgis", "DATABASE_URL": " "})
    with pytest.raises(ConfigError, match="unknown; available: gpkg, postgis"):
        open_repository({"STORAGE_BACKEND": "oracle"})


def test_an_empty_database_is_not_initialised_and_says_to_build(pg_url: str) -> None:
    repo = PostgisRepository(pg_url)
    try:
        assert not repo.is_initialized()
        with pytest.raises(NotInitialized, match="build it first"):
            repo.meta()
        with pytest.raises(NotInitialized, match="build it first"):
            repo.sites()
    finally:
        repo.close()


# --------------------------------------------------------------------------- build
def test_build_makes_every_layer_site_and_table(store) -> None:
    meta = store.meta()
    assert meta["city_name"] == "测试市" and len(meta["content_hash"]) == 64
    assert meta["built_at"].endswith("Z")
    assert store.layer_names() == ["counties", "rivers", "urban_core"]
    assert store.feature_counts() == {"counties": 2, "rivers": 1, "urban_core": 1}
    assert len(store.sites()) == 7
    assert len(store.table("grid_warnings")) == 2 and len(store.table("complaints")) == 2
    assert list(store.site_hits().columns) == ["site_id", "rule_id", "feature_id",
                                               "feature_name", "distance_m", "severity",
                                               "point"]
    assert store.city().county_names == ("西区", "东区")
    assert store.table("changes")["action"].tolist() == ["initialize"]


def test_postgis_build_records_its_schema_version(pg_store: PostgisRepository) -> None:
    assert pg_store.meta()["schema_version"] == SCHEMA_VERSION


def test_second_build_does_nothing_and_says_so(store, tiny_data_dir: Path) -> None:
    built_at = store.meta()["built_at"]
    report = store.initialize(tiny_data_dir)
    assert report["status"] == "unchanged" and report["stale"] is False
    assert store.meta()["built_at"] == built_at


def test_edited_source_is_stale_and_a_forced_rebuild_takes_it(store, tiny_data_dir: Path
                                                              ) -> None:
    store.update_site("E1", {"name": "改名"}, user="alice", expected_version=1)
    write_csv(tiny_data_dir / "sites" / "livestock_farms.csv",
              TINY_SITES["livestock_farms.csv"][:1])
    assert store.initialize(tiny_data_dir)["stale"] is True
    report = store.initialize(tiny_data_dir, force=True)
    assert report["status"] == "built" and report["counts"]["sites"] == 6
    assert len(store.sites()) == 6
    assert store.site("E1")["name"] == "甲钢铁厂" and store.site("E1")["version"] == 1
    assert store.table("changes")["action"].tolist() == ["initialize"]


def test_a_failed_rebuild_keeps_the_old_data(store, tiny_data_dir: Path) -> None:
    (tiny_data_dir / "boundaries" / "rivers.geojson").write_text("not json")
    with pytest.raises(ValidationFailed):
        store.initialize(tiny_data_dir, force=True)
    assert len(store.sites()) == 7 and store.layer("rivers").iloc[0]["name"] == "测试河"


def test_postgis_rebuild_keeps_the_change_counter_moving(pg_store: PostgisRepository,
                                                          tiny_data_dir: Path) -> None:
    pg_store.update_site("E1", {"name": "改名"}, user="alice", expected_version=1)
    before = pg_store.last_change_id()
    pg_store.initialize(tiny_data_dir, force=True)
    assert pg_store.last_change_id() > before


# --------------------------------------------------------------------------- layers
def test_layer_round_trips_geometry_and_properties(store, tiny_data_dir: Path) -> None:
    source = read_layer(tiny_data_dir, load_city(tiny_data_dir).layers["counties"])
    stored = store.layer("counties")
    assert stored.crs.to_epsg() == 4326
    assert list(stored.columns) == ["id", "name", "adcode", "source", "geometry"]
    assert stored["id"].tolist() == ["419901", "419902"]
    assert all(shapely.equals_exact(stored.geometry.values, source.geometry.values, 1e-12))
    with pytest.raises(NotFound, match="no layer named 'lakes'"):
        store.layer("lakes")


def test_replacing_a_layer_adds_columns_and_is_audited(store) -> None:
    new = gpd.GeoDataFrame({"id": ["core2"], "name": ["新城区"], "source": ["survey"],
                            "area_km2": [12.5]}, geometry=[box(113.5, 35.3, 113.55, 35.35)],
                           crs=4326)
    assert store.replace_layer("urban_core", new, user="planner") == {
        "layer": "urban_core", "before": 1, "after": 1}
    got = store.layer("urban_core")
    assert got["area_km2"].tolist() == [12.5] and got["id"].tolist() == ["core2"]
    [change] = store.history("urban_core", entity="layer")
    assert change["before"]["ids"] == ["core"] and change["after"]["ids"] == ["core2"]
    assert change["user"] == "planner"


def test_an_invalid_layer_changes_nothing(store) -> None:
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    bad = gpd.GeoDataFrame({"id": ["x"], "name": ["x"], "source": ["x"]}, geometry=[bowtie],
                           crs=4326)
    with pytest.raises(ValidationFailed, match="urban_core"):
        store.replace_layer("urban_core", bad, user="planner")
    assert store.layer("urban_core")["id"].tolist() == ["core"]


def test_derived_layer_keeps_its_metric_crs(store) -> None:
    buffers = gpd.GeoDataFrame({"rule_id": ["riverside_livestock"], "distance_m": [400.0]},
                               geometry=[Point(450000, 3896000).buffer(400)], crs=4547)
    store.write_derived_layer("riverside_livestock", buffers)
    store.write_derived_layer("riverside_livestock", buffers)  # rewriting replaces
    got = store.derived_layer("riverside_livestock")
    assert store.derived_layer_names() == ["riverside_livestock"]
    assert "riverside_livestock" not in store.layer_names()
    assert got.crs.to_epsg() == 4547 and len(got) == 1
    assert got.geometry.iloc[0].area == pytest.approx(buffers.geometry.iloc[0].area)
    assert [c["action"] for c in store.history("riverside_livestock")] == ["create", "replace"]
    with pytest.raises(NotFound):
        store.derived_layer("nothing")


# --------------------------------------------------------------------------- sites
def test_sites_read_with_the_same_columns_and_types(store) -> None:
    sites = store.sites()
    assert sites.crs.to_epsg() == 4326 and sites["id"].tolist()[:3] == ["E1", "E2", "E3"]
    assert str(sites["employees"].dtype) == "Int64"
    assert str(sites["online_monitoring"].dtype) == "boolean"
    assert sites["new_lon"].dtype == float and sites["name"].dtype == object
    assert list(sites.columns)[:3] == ["site_type", "id", "seq"]
    assert list(sites.columns)[-4:] == ["version", "updated_at", "updated_by", "geometry"]
    few = store.sites("enterprise", columns=["name"])
    assert list(few.columns) == ["site_type", "id", "name", "geometry"]
    with pytest.raises(InvalidInput, match="colour"):
        store.sites(columns=["colour"])


def test_sites_filter_by_type_district_and_label_lists(store) -> None:
    assert store.sites("enterprise")["id"].tolist() == ["E1", "E2", "E3"]
    assert store.sites(district="东区")["id"].tolist() == ["E2", "E3", "F2", "W2"]
    assert store.sites(classification=["relocate", "原址关闭"])["id"].tolist() == ["E1", "E3"]
    assert store.sites("scattered_workshop", status="banned")["id"].tolist() == ["W1"]
    assert store.sites(stage=[]).empty
    with pytest.raises(InvalidInput, match="colour"):
        store.sites(colour="red")


def test_site_record_has_plain_values_and_version(store) -> None:
    e1 = store.site("E1")
    assert e1["version"] == 1 and e1["online_monitoring"] is True
    assert e1["lon"] == 113.25 and e1["planned_completion"] is None
    assert e1["employees"] == 420 and isinstance(e1["employees"], int)
    assert "geometry" not in e1
    with pytest.raises(NotFound):
        store.site("NOPE")


def test_update_with_a_stale_version_raises_conflict(store) -> None:
    store.update_site("E2", {"stage": "started"}, user="alice", expected_version=1)
    with pytest.raises(Conflict, match="alice") as info:
        store.update_site("E2", {"stage": "completed"}, user="bob", expected_version=1)
    assert info.value.details["current_version"] == 2
    assert store.site("E2")["stage"] == "started"


def test_two_editors_at_once_one_wins_one_is_told(store) -> None:
    results: list[str] = []
    barrier = threading.Barrier(2)

    def edit(user: str) -> None:
        barrier.wait()
        try:
            store.update_site("E1", {"progress": f"by {user}"}, user=user, expected_version=1)
            results.append("saved")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=edit, args=(u,)) for u in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict", "saved"]
    assert store.site("E1")["version"] == 2


def test_moving_a_site_moves_its_point(store) -> None:
    store.update_site("F1", {"lon": 113.12, "lat": 35.21}, user="inspector",
                      expected_version=1)
    moved = store.sites("livestock_farm").set_index("id").loc["F1"]
    assert (moved.geometry.x, moved.geometry.y) == (113.12, 35.21)


def test_history_records_who_and_before_after(store) -> None:
    store.update_site("E2", {"stage": "已启动", "actual_start": "2020-03-01"}, user="alice",
                      expected_version=1)
    [change] = store.history("E2")
    assert change["user"] == "alice" and change["action"] == "update"
    assert change["before"] == {"version": 1, "stage": "not_started", "actual_start": None}
    assert change["after"] == {"version": 2, "stage": "started", "actual_start": "2020-03-01"}


def test_an_update_that_changes_nothing_writes_nothing(store) -> None:
    assert store.update_site("E2", {"name": store.site("E2")["name"]}, user="alice",
                             expected_version=1)["version"] == 1
    assert store.history("E2") == []


def test_invalid_update_is_refused_and_nothing_changes(store) -> None:
    with pytest.raises(ValidationFailed, match="stage"):
        store.update_site("E2", {"stage": "halfway"}, user="alice", expected_version=1)
    with pytest.raises(InvalidInput):
        store.update_site("E2", {"id": "E9"}, user="alice", expected_version=1)
    assert store.site("E2")["version"] == 1 and store.history("E2") == []


def test_create_site_validates_and_refuses_duplicate_ids(store) -> None:
    made = store.create_site(_new_farm("F9"), user="inspector")
    assert made["version"] == 1 and made["head_count"] == 300
    assert store.history("F9")[0]["action"] == "create"
    with pytest.raises(Conflict, match="F9"):
        store.create_site(_new_farm("F9"), user="inspector")
    with pytest.raises(ValidationFailed, match="district"):
        store.create_site(_new_farm("F10", district="火星区"), user="inspector")


def test_delete_site_needs_the_current_version(store) -> None:
    with pytest.raises(Conflict):
        store.delete_site("W2", user="a", expected_version=7)
    store.delete_site("W2", user="a", expected_version=1)
    with pytest.raises(NotFound):
        store.site("W2")
    assert store.history("W2")[-1]["before"]["name"] == "小石材加工点"


def test_import_creates_and_updates_in_one_go(store) -> None:
    e2 = dict(store.site("E2"))
    e2["stage"] = "completed"
    report = store.import_sites([_new_farm("F7"), e2, _new_farm("F8")], user="planner")
    assert report == {"rows": 3, "created": 2, "updated": 1}
    assert store.site("E2")["version"] == 2 and store.site("E2")["stage"] == "completed"
    assert store.history("E2")[0]["before"]["stage"] == "not_started"
    assert len(store.sites()) == 9


def test_failing_import_changes_nothing_and_lists_every_bad_row(store) -> None:
    before = (len(store.sites()), len(store.table("changes")))
    records = [_new_farm("F7"), _new_farm("F8", lat="north"), _new_farm("F7"),
               _new_farm("F9", head_count="many")]
    with pytest.raises(ValidationFailed) as info:
        store.import_sites(records, user="planner")
    assert {(p["row"], p["column"]) for p in info.value.details} == {
        (2, "lat"), (3, "id"), (4, "head_count")}
    assert (len(store.sites()), len(store.table("changes"))) == before


def test_a_transaction_that_fails_midway_leaves_nothing(store) -> None:
    before = len(store.table("changes"))
    with pytest.raises(RuntimeError), store.transaction():
        store.import_sites([_new_farm("F7")], user="planner")
        store.update_site("E1", {"progress": "x"}, user="planner", expected_version=1)
        raise RuntimeError("refused midway")
    with pytest.raises(NotFound):
        store.site("F7")
    assert store.site("E1")["version"] == 1 and len(store.table("changes")) == before


def test_concurrent_writers_wait_instead_of_failing(store) -> None:
    errors: list[BaseException] = []

    def add(prefix: str) -> None:
        try:
            for i in range(6):
                store.create_site(_new_farm(f"{prefix}{i}"), user=prefix)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(p,)) for p in ("A", "B", "C")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(store.sites()) == 7 + 18


# --------------------------------------------------------------------------- tables, hits, log
def test_append_complaints_converts_gcj02_to_a_wgs84_point(store) -> None:
    rows = pd.DataFrame([{"id": "C3", "received_at": "2026-11-18 10:00", "category": "水",
                          "lon": 113.2662, "lat": 35.2383, "crs": "gcj02", "district": "西区",
                          "summary": "河水发黑"}])
    assert store.append_rows("complaints", rows, user="duty") == 1
    c3 = store.table("complaints").set_index("id").loc["C3"]
    assert c3["category"] == "water" and c3["received_at"] == "2026-11-18T10:00:00"
    assert c3["lon"] == 113.2662
    assert 0.002 < abs(c3.geometry.x - 113.2662) < 0.01


def test_append_with_a_bad_row_appends_nothing(store) -> None:
    rows = pd.DataFrame([{"grid_code": "G03", "warned_at": "2026-11-18T10:00", "value": 90},
                         {"grid_code": "G04", "warned_at": "yesterday", "value": 95}])
    with pytest.raises(ValidationFailed, match="warned_at"):
        store.append_rows("grid_warnings", rows, user="duty")
    assert len(store.table("grid_warnings")) == 2
    with pytest.raises(NotFound):
        store.table("nothing")


def test_site_hits_are_replaced_all_at_once(store) -> None:
    hits = pd.DataFrame({"site_id": ["F1", "E1"], "rule_id": ["riverside_livestock",
                                                              "urban_core_heavy_industry"],
                         "feature_id": ["r1", "core"], "feature_name": ["测试河", "主城区"],
                         "distance_m": [390.0, 0.0], "severity": ["high", "high"]})
    assert store.replace_site_hits(hits) == 2
    assert store.site_hits("F1")["distance_m"].tolist() == [390.0]
    assert store.site_hits()["point"].tolist() == ["site", "site"]
    assert store.replace_site_hits(hits.iloc[:1]) == 1
    assert store.site_hits()["site_id"].tolist() == ["F1"]
    assert store.table("changes")["entity"].tolist()[-1] == "site_hits"


def test_the_change_counter_and_the_audit_queries(store) -> None:
    first = store.last_change()
    assert first is not None and first["at"].endswith("Z")
    store.update_site("E2", {"stage": "started"}, user="alice", expected_version=1)
    store.log_event(user="bob", action="export", entity="sites", details={"rows": 7})
    assert store.last_change_id() == first["id"] + 2
    assert store.last_change_id(only=["site"]) == first["id"] + 1
    assert store.last_change_id(exclude=["site", "sites"]) == first["id"]
    assert store.last_change(only=["nothing"]) is None
    rows, total = store.audit_page({"user": "alice"}, offset=0, limit=10)
    assert total == 1 and rows[0]["entity_id"] == "E2"
    assert json.loads(rows[0]["after"])["stage"] == "started"
    rows, total = store.audit_page({}, offset=1, limit=1)
    assert total == 3 and rows[0]["user"] == "alice"
    assert store.audit_values("user") == ["alice", "bob", "system"]
    assert store.latest_changes("site")["E2"]["user"] == "alice"
    with pytest.raises(InvalidInput):
        store.log_event(user=" ", action="export", entity="sites")


# --------------------------------------------------------------------------- PostGIS only
def _sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params or None).fetchall()


def test_geometry_is_in_postgis_columns_with_gist_indexes(pg_store: PostgisRepository,
                                                          pg_url: str) -> None:
    cols = dict(_sql(pg_url, "SELECT f_table_name, type FROM geometry_columns "
                             "WHERE srid = 4326"))
    assert cols["sites"] == "POINT" and cols["complaints"] == "POINT"
    assert cols["layer_counties"] == "GEOMETRY"
    gist = {r[0] for r in _sql(pg_url, "SELECT tablename FROM pg_indexes "
                                       "WHERE indexdef LIKE '%USING gist (geom)%'")}
    assert {"sites", "complaints", "layer_counties", "layer_rivers"} <= gist
    # a spatial query any PostGIS client would make: sites in the east county
    east = _sql(pg_url, "SELECT s.id FROM sites s JOIN layer_counties c "
                        "ON ST_Intersects(s.geom, c.geom) WHERE c.id = '419902' ORDER BY s.id")
    assert [r[0] for r in east] == ["E2", "E3", "F2", "W2"]


def test_a_moved_site_is_found_by_a_spatial_query(pg_store: PostgisRepository,
                                                  pg_url: str) -> None:
    pg_store.update_site("F1", {"lon": 113.12, "lat": 35.21}, user="inspector",
                         expected_version=1)
    found = _sql(pg_url, "SELECT id FROM sites WHERE geom && "
                         "ST_MakeEnvelope(113.11, 35.2, 113.13, 35.22, 4326)")
    assert found == [("F1",)]


def test_two_servers_on_one_database_see_each_others_writes(pg_store: PostgisRepository,
                                                            pg_url: str) -> None:
    other = PostgisRepository(pg_url)  # a second app server's repository
    try:
        seen = other.last_change_id()
        pg_store.update_site("E1", {"progress": "一号服务器"}, user="alice", expected_version=1)
        assert other.site("E1")["progress"] == "一号服务器"
        assert other.last_change_id() > seen
        with pytest.raises(Conflict, match="alice"):
            other.update_site("E1", {"progress": "二号服务器"}, user="bob", expected_version=1)
        other.update_site("E1", {"progress": "二号服务器"}, user="bob", expected_version=2)
        assert pg_store.site("E1")["version"] == 3
    finally:
        other.close()


def test_a_write_waits_for_another_servers_transaction(pg_store: PostgisRepository,
                                                       pg_url: str) -> None:
    other = PostgisRepository(pg_url)
    order: list[str] = []
    started = threading.Event()

    def second() -> None:
        started.wait()
        other.create_site(_new_farm("F8"), user="bob")
        order.append("second")

    thread = threading.Thread(target=second)
    try:
        with pg_store.transaction():
            pg_store.create_site(_new_farm("F7"), user="alice")
            thread.start()
            started.set()
            thread.join(0.5)
            assert thread.is_alive()  # queued on the write lock, not failed
            order.append("first")
        thread.join(10)
        assert order == ["first", "second"]
        assert other.history("F7")[0]["id"] < other.history("F8")[0]["id"]
    finally:
        other.close()


def test_an_unreachable_server_is_storage_unavailable(pg_server: PgServer) -> None:
    repo = PostgisRepository(f"postgresql://geoapp@127.0.0.1:{pg.free_port()}/x")
    with pytest.raises(StorageUnavailable) as info:
        repo.is_initialized()
    assert "Connection refused" in info.value.details["database_error"]
    missing = PostgisRepository(pg_server.url("no_such_database"))
    with pytest.raises(StorageUnavailable) as info:
        missing.sites()
    assert "no_such_database" in info.value.details["database_error"]



# --------------------------------------------------------------------------- accounts
def test_accounts_are_unique_by_normalised_name_and_hide_their_hash(store) -> None:
    made = store.create_user("Alice", "hash1", "inspector", display_name="爱丽丝", user="admin")
    assert made["username"] == "Alice" and made["active"] is True
    assert "password_hash" not in made and made["session_version"] == 0
    with pytest.raises(Conflict, match="Alice"):
        store.create_user("ａｌｉｃｅ", "hash2", "viewer", user="admin")
    assert store.get_user("alice")["username"] == "Alice"
    assert store.user_with_hash("Alice")["password_hash"] == "hash1"
    assert store.get_user("nobody") is None
    store.create_user("bob", "h", "viewer", user="admin")
    assert [u["username"] for u in store.list_users()] == ["Alice", "bob"]
    assert store.history("Alice", entity="user")[0]["after"]["role"] == "inspector"
    with pytest.raises(InvalidInput):
        store.create_user("  ", "h", "viewer", user="admin")


def test_changing_role_password_or_active_ends_sessions(store) -> None:
    store.create_user("carol", "h", "viewer", user="admin")
    after = store.update_user("carol", {"display_name": "卡罗尔"}, user="admin")
    assert after["display_name"] == "卡罗尔" and after["session_version"] == 0
    after = store.update_user("carol", {"role": "planner", "active": False}, user="admin")
    assert after["role"] == "planner" and after["active"] is False
    assert after["session_version"] == 1
    assert store.end_sessions("carol", user="carol") == 2
    assert store.get_user("carol")["session_version"] == 2
    change = store.history("carol", entity="user")[-1]
    assert change["after"]["changed"] == {"role": "planner", "active": False}
    store.update_user("carol", {"password_hash": "new"}, user="admin")
    assert store.history("carol", entity="user")[-1]["after"]["changed"] == {
        "password_hash": "(changed)"}
    with pytest.raises(InvalidInput):
        store.update_user("carol", {"username": "x"}, user="admin")
    with pytest.raises(NotFound):
        store.update_user("nobody", {"role": "admin"}, user="admin")


def test_login_attempts_are_counted_claimed_and_settled(store) -> None:
    store.create_user("dave", "h", "viewer", user="admin")
    since = "2000-01-01T00:00:00Z"
    store.record_login("dave", "10.0.0.1", False)
    store.record_login("dave", "10.0.0.1", False)
    assert store.failed_logins_since(since, username="dave") == 2
    assert store.failed_logins_since(since, remote_addr="10.0.0.2") == 0
    assert store.claim_login_attempt("dave", "10.0.0.1", since, max_pair=2, max_addr=9) is None
    claimed = store.claim_login_attempt("dave", "10.0.0.1", since, max_pair=3, max_addr=9)
    assert isinstance(claimed, int)
    assert store.failed_logins_since(since, username="dave", remote_addr="10.0.0.1") == 3
    store.finish_login_attempt(claimed, "dave", "10.0.0.1", True, account="dave")
    assert store.failed_logins_since(since, username="dave", remote_addr="10.0.0.1",
                                     reset_by_success=True) == 0
    assert store.get_user("dave")["last_login_at"].endswith("Z")
    actions = [c["action"] for c in store.history("dave", entity="session")]
    assert actions == ["login_failed", "login_failed", "login"]


def test_inspections_keep_the_check_and_come_back_newest_first(store) -> None:
    first = store.add_inspection({"site_id": "E1", "lon": 113.25, "lat": 35.25,
                                  "input": {"lon": "113.25"}, "verdict": "fail",
                                  "hits": [{"rule_id": "r"}], "notes": "现场"}, user="insp")
    second = store.add_inspection({"lon": 113.3, "lat": 35.3, "verdict": "pass"}, user="insp")
    assert first["inspector"] == "insp" and first["hits"] == [{"rule_id": "r"}]
    assert first["input"] == {"lon": "113.25"} and first["conditional_hits"] == []
    assert [r["id"] for r in store.inspections()] == [second["id"], first["id"]]
    assert [r["id"] for r in store.inspections("E1")] == [first["id"]]
    assert store.inspection(first["id"])["notes"] == "现场"
    with pytest.raises(NotFound):
        store.inspection(99999)


def test_app_made_rows_survive_a_rebuild(store, tiny_data_dir: Path) -> None:
    store.create_user("erin", "h", "admin", user="admin")
    store.add_inspection({"lon": 113.3, "lat": 35.3, "verdict": "pass"}, user="erin")
    report = store.initialize(tiny_data_dir, force=True)
    assert report["kept"]["users"] == 1 and report["kept"]["inspections"] == 1
    assert store.get_user("erin")["role"] == "admin" and len(store.inspections()) == 1


def test_a_session_ended_on_one_server_is_seen_by_the_other(pg_store: PostgisRepository,
                                                            pg_url: str) -> None:
    pg_store.create_user("frank", "h", "viewer", user="admin")
    other = PostgisRepository(pg_url)
    try:
        assert other.get_user("frank")["session_version"] == 0
        pg_store.end_sessions("frank", user="frank")
        assert other.get_user("frank")["session_version"] == 1
    finally:
        other.close()


# --------------------------------------------------------------------------- API tokens
def test_tokens_are_kept_by_hash_listed_and_revoked(store) -> None:
    store.create_user("gis", "h", "viewer", user="admin")
    token = store.create_token("gis", "sha-1", name="QGIS", user="admin")
    assert token["username"] == "gis" and token["role"] == "viewer"
    assert token["owner_active"] is True and "token_hash" not in token
    assert store.token_by_hash("sha-1")["id"] == token["id"]
    assert store.token_by_hash("unknown") is None
    store.token_used(token["id"])
    assert store.tokens("gis")[0]["last_used_at"].endswith("Z")
    revoked = store.revoke_token(token["id"], user="admin")
    assert revoked["revoked_by"] == "admin" and store.token_by_hash("sha-1")["revoked_at"]
    with pytest.raises(NotFound):
        store.revoke_token(99999, user="admin")
    with pytest.raises(NotFound):
        store.create_token("nobody", "sha-2", user="admin")


def test_a_role_change_revokes_the_accounts_tokens(store) -> None:
    store.create_user("gis2", "h", "viewer", user="admin")
    first = store.create_token("gis2", "sha-a", user="admin")
    store.update_user("gis2", {"display_name": "GIS"}, user="admin")
    assert store.token_by_hash("sha-a")["revoked_at"] is None
    store.update_user("gis2", {"role": "planner"}, user="admin")
    assert store.token_by_hash("sha-a")["revoked_at"] is not None
    [change] = store.history(str(first["id"]), entity="api_token")[-1:]
    assert change["action"] == "revoke" and change["after"]["reason"] == "role changed"


# --------------------------------------------------------------------------- the Jiaozuo data
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def jiaozuo_pg(pg_server: PgServer):
    """The shipped Jiaozuo data built in PostGIS once for this module."""
    name = "jiaozuo_module"
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE {pg.TEMPLATE_DB}")
    repo = PostgisRepository(pg_server.url(name))
    report = repo.initialize(DATA)
    yield repo, report
    repo.close()
    pg_server.psql(f"DROP DATABASE {name} WITH (FORCE)")


def test_jiaozuo_reads_the_same_from_both_backends(jiaozuo_pg, tmp_path: Path) -> None:
    pg_repo, report = jiaozuo_pg
    gpkg = open_repository({"DATABASE": str(tmp_path / "j.gpkg")})
    try:
        assert gpkg.initialize(DATA)["counts"] == report["counts"]
        built = ["updated_at"]  # the build time: the two builds ran a moment apart
        pd.testing.assert_frame_equal(pg_repo.sites().drop(columns=built),
                                      gpkg.sites().drop(columns=built))
        for name in gpkg.layer_names():
            pd.testing.assert_frame_equal(pg_repo.layer(name), gpkg.layer(name), obj=name)
        for name in gpkg.meta()["tables"]:
            pd.testing.assert_frame_equal(pg_repo.table(name), gpkg.table(name), obj=name)
        def lists(repo) -> dict:
            return {c: {**r.to_dict(), "updated_at": None}
                    for c, r in repo.unit_requirements().items()}

        assert lists(pg_repo) == lists(gpkg) and len(lists(gpkg)) > 10
        assert ({c: {**r, "updated_at": None} for c, r in pg_repo.unit_list_summary().items()}
                == {c: {**r, "updated_at": None} for c, r in gpkg.unit_list_summary().items()})
        units = pg_repo.city().units_layer
        assert units and pg_repo.layer_unit_rows(units) == gpkg.layer_unit_rows(units)
        assert pg_repo.feature_counts() == gpkg.feature_counts()
    finally:
        gpkg.close()


@pytest.fixture
def jiaozuo_store(tmp_path: Path, jiaozuo_db: Path | PgDatabase):
    """A writable copy of the session's Jiaozuo database in this test's backend (a PostGIS
    copy is dropped after the test)."""
    instance = copy_database(jiaozuo_db, tmp_path / "jiaozuo").parent
    repo = open_repository(load_settings(instance, environ={}))
    yield repo
    repo.close()


def test_unit_lists_are_edited_with_versions_and_imported(jiaozuo_store) -> None:
    repo = jiaozuo_store
    lists = repo.unit_requirements()
    code, first = next(iter(lists.items()))
    assert first.version == 1 and repo.unit_requirement(code.lower()).code == code
    saved = repo.update_unit_requirements(code, {"spatial_layout": "禁止新建化工项目。"},
                                          user="planner", expected_version=1)
    assert saved.version == 2 and saved.part("spatial_layout") == "禁止新建化工项目。"
    with pytest.raises(Conflict, match="planner"):
        repo.update_unit_requirements(code, {"spatial_layout": "x"}, user="other",
                                      expected_version=1)
    same = repo.update_unit_requirements(code, {"spatial_layout": "禁止新建化工项目。"},
                                         user="planner", expected_version=2)
    assert same.version == 2
    with pytest.raises(InvalidInput):
        repo.update_unit_requirements(code, {"colour": "x"}, user="p", expected_version=2)
    with pytest.raises(NotFound):
        repo.update_unit_requirements("ZH00000000000", {"spatial_layout": "x"}, user="p",
                                      expected_version=0)
    record = {**first.to_dict(), "code": code, "emission_control": "新的排放要求"}
    report = repo.import_unit_requirements([record], user="planner", file="lists.xlsx")
    assert report == {"rows": 1, "created": 0, "updated": 1, "unchanged": 0}
    assert repo.unit_requirement(code).version == 3
    assert repo.unit_list_summary()[code]["origin"] == "import"
    actions = [c["action"] for c in repo.history(code, entity="unit_requirements")]
    assert actions == ["update", "import"]


# --------------------------------------------------------------------------- backup, restore
def test_backup_and_restore_through_pg_dump(pg_store: PostgisRepository, tmp_path: Path
                                            ) -> None:
    pg_store.create_user("gina", "h", "admin", user="admin")
    pg_store.create_site(_new_farm("F9"), user="inspector")
    dump = pg_store.backup(tmp_path / "backups" / "city.dump")
    assert dump.is_file() and not list(dump.parent.glob(".*partial"))
    pg_store.delete_site("F9", user="inspector", expected_version=1)
    pg_store.update_site("E1", {"name": "备份后改名"}, user="alice", expected_version=1)
    buffers = gpd.GeoDataFrame({"rule_id": ["r"]}, geometry=[Point(450000, 3896000).buffer(9)],
                               crs=4547)
    pg_store.write_derived_layer("made_after_the_backup", buffers)
    seen = pg_store.last_change_id()
    report = pg_store.restore(dump, user="admin")
    assert report["city"] == "测试市" and report["schema_version"]["backup"] == SCHEMA_VERSION
    assert pg_store.site("F9")["name"] == "养殖场F9"
    assert pg_store.site("E1")["name"] == "甲钢铁厂" and pg_store.get_user("gina")
    assert pg_store.derived_layer_names() == []  # tables made after the backup are gone
    assert pg_store.last_change_id() > seen  # the counter never goes back
    assert pg_store.history("", entity="database") == []
    assert pg_store.table("changes")["action"].tolist()[-1] == "restore"
    pg_store.create_site(_new_farm("F10"), user="inspector")  # ids and versions still work


def test_restore_refuses_what_is_no_geoapp_dump(pg_store: PostgisRepository,
                                                tmp_path: Path) -> None:
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not a dump")
    with pytest.raises(ValidationFailed, match="not a PostgreSQL dump"):
        pg_store.restore(junk)
    with pytest.raises(ValidationFailed, match="no such file"):
        pg_store.restore(tmp_path / "missing.dump")
    assert len(pg_store.sites()) == 7


def test_restore_refuses_a_dump_from_a_newer_release(pg_store: PostgisRepository,
                                                     pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE geoapp_meta SET value = '99' WHERE key = 'schema_version'")
    dump = pg_store.backup(tmp_path / "newer.dump")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE geoapp_meta SET value = %s WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION),))
    pg_store.update_site("E1", {"name": "留下"}, user="alice", expected_version=1)
    with pytest.raises(ConfigError, match="newer"):
        pg_store.restore(dump)
    assert pg_store.site("E1")["name"] == "留下"


def test_cli_backup_and_restore_on_postgis(pg_store: PostgisRepository, pg_url: str,
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from geoapp.cli import main

    inst = tmp_path / "inst"
    inst.mkdir()
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(inst))
    monkeypatch.setenv("GEOAPP_STORAGE_BACKEND", "postgis")
    monkeypatch.setenv("GEOAPP_DATABASE_URL", pg_url)
    runner = CliRunner()
    out = tmp_path / "nightly.dump"
    result = runner.invoke(main, ["backup", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert '"sites": 7' in result.output and '"city": "测试市"' in result.output
    pg_store.delete_site("W2", user="planner", expected_version=1)
    result = runner.invoke(main, ["restore", "--yes", str(out)])
    assert result.exit_code == 0, result.output
    assert pg_store.site("W2")["version"] == 1
    assert len(list(tmp_path.glob("nightly.dump.before-restore-*.dump"))) == 1
    gpkg = tmp_path / "other.gpkg"
    gpkg.write_bytes(b"SQLite format 3\0" + bytes(100))
    result = runner.invoke(main, ["restore", "--yes", str(gpkg)])
    assert result.exit_code == 2 and "W2" not in result.output
    assert len(pg_store.sites()) == 7
