"""The GeoPackage repository: build, round trips, transactions, conflicts, audit, validity."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from catalogue import raises_english
from shapely.geometry import Point, box

from geoapp.domain.errors import ConfigError, Conflict, NotFound, ValidationFailed
from geoapp.storage import open_repository
from geoapp.storage.gpkg import GpkgRepository
from geoapp.storage.gpkg_schema import SCHEMA_VERSION
from geoapp.storage.sources import load_city, read_layer, read_sites, read_table

from tinycity import TINY_SITES, write_csv, write_tiny_city

#: the GeoPackage repository itself; the shared contract runs on both in test_postgis.py.
pytestmark = pytest.mark.backends("gpkg")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _new_farm(site_id: str, **extra: object) -> dict:
    return {"site_type": "livestock_farm", "id": site_id, "name": f"养殖场{site_id}",
            "district": "东区", "species": "生猪", "head_count": 300, "lon": 113.5,
            "lat": 35.1, **extra}


# --------------------------------------------------------------------------- build
def test_init_builds_every_layer_site_and_table(repo: GpkgRepository) -> None:
    meta = repo.meta()
    assert meta["schema_version"] == SCHEMA_VERSION and meta["city_name"] == "测试市"
    assert len(meta["content_hash"]) == 64 and meta["built_at"].endswith("Z")
    assert repo.layer_names() == ["counties", "rivers", "urban_core"]
    assert len(repo.sites()) == 7
    assert len(repo.table("grid_warnings")) == 2 and len(repo.table("complaints")) == 2
    assert repo.site_hits().empty
    assert list(repo.site_hits().columns) == ["site_id", "rule_id", "feature_id",
                                              "feature_name", "distance_m", "severity",
                                              "point"]
    assert repo.city().county_names == ("西区", "东区")
    assert repo.history("", entity="database") == []  # the build row has no entity id
    assert repo.table("changes")["action"].tolist() == ["initialize"]


def test_second_init_does_nothing_and_says_so(repo: GpkgRepository, tiny_data_dir: Path
                                              ) -> None:
    built_at = repo.meta()["built_at"]
    report = repo.initialize(tiny_data_dir)
    assert report["status"] == "unchanged" and report["stale"] is False
    assert "already" in report["message"]
    assert repo.meta()["built_at"] == built_at


def test_edited_source_is_reported_stale_and_force_rebuild_picks_it_up(
        repo: GpkgRepository, tiny_data_dir: Path) -> None:
    repo.update_site("E1", {"name": "改名"}, user="alice", expected_version=1)
    write_csv(tiny_data_dir / "sites" / "livestock_farms.csv",
              TINY_SITES["livestock_farms.csv"][:1])
    assert repo.initialize(tiny_data_dir)["stale"] is True
    report = repo.initialize(tiny_data_dir, force=True)
    assert report["status"] == "built" and report["counts"]["sites"] == 6
    assert len(repo.sites()) == 6
    assert repo.site("E1")["name"] == "甲钢铁厂"  # edits are dropped by a rebuild
    assert repo.site("E1")["version"] == 1


@pytest.mark.parametrize(("file", "content", "message"), [
    ("boundaries/rivers.geojson", '{"type": "FeatureCollection", "features": [',
     "rivers.geojson"),
    ("boundaries/urban_core.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "z9", "name": "坏", "source": "s"},
         "geometry": {"type": "Polygon", "coordinates": [[[113.2, 35.2], [113.4, 35.3],
                                                          [113.4, 35.2], [113.2, 35.3],
                                                          [113.2, 35.2]]]}}]}),
     "urban_core.*z9"),
    ("sites/workshops.csv", "id,name,district,lon,lat,source\nW1,x,西区,113.1,35.1,s\n",
     "workshops.csv(: missing column|：缺少列).*industry"),
    ("sites/enterprises.csv", None, "enterprises.csv (row 3, column lon|第 3 行 lon 列)"),
])
def test_broken_source_gives_clear_error_and_no_database(
        tmp_path: Path, file: str, content: str | None, message: str) -> None:
    data = write_tiny_city(tmp_path / "data")
    if content is None:
        rows = [dict(r) for r in TINY_SITES["enterprises.csv"]]
        rows[1]["lon"] = "东经113度"
        write_csv(data / file, rows)
    else:
        (data / file).write_text(content, encoding="utf-8")
    db = tmp_path / "db" / "geoapp.gpkg"
    repo = GpkgRepository(db)
    with pytest.raises(ValidationFailed, match=message):
        repo.initialize(data)
    assert not db.exists() and not repo.is_initialized()
    assert not db.parent.exists() or list(db.parent.iterdir()) == []


def test_failed_force_rebuild_keeps_the_old_database(repo: GpkgRepository,
                                                     tiny_data_dir: Path) -> None:
    (tiny_data_dir / "boundaries" / "rivers.geojson").write_text("not json")
    with pytest.raises(ValidationFailed):
        repo.initialize(tiny_data_dir, force=True)
    assert len(repo.sites()) == 7 and repo.layer("rivers").iloc[0]["name"] == "测试河"
    assert [p.name for p in repo.path.parent.iterdir() if "building" in p.name] == []


def test_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="oracle.*unknown"):
        open_repository({"STORAGE_BACKEND": "oracle", "DATABASE": str(tmp_path / "x")})


def test_reading_before_build_says_to_build_first(tmp_path: Path) -> None:
    repo = GpkgRepository(tmp_path / "missing.gpkg")
    assert not repo.is_initialized()
    with pytest.raises(ConfigError, match="build it first"):
        repo.sites()
    assert not (tmp_path / "missing.gpkg").exists()


# --------------------------------------------------------------------------- layers
def test_layer_round_trips_geometry_and_properties_in_wgs84(repo: GpkgRepository,
                                                            tiny_data_dir: Path) -> None:
    city = load_city(tiny_data_dir)
    source = read_layer(tiny_data_dir, city.layers["counties"])
    stored = repo.layer("counties")
    assert stored.crs.to_epsg() == 4326
    assert stored["id"].tolist() == ["419901", "419902"]
    assert stored["adcode"].tolist() == source["adcode"].tolist()
    assert all(shapely.equals_exact(stored.geometry.values, source.geometry.values, 1e-12))


def test_unknown_layer_is_not_found(repo: GpkgRepository) -> None:
    with pytest.raises(NotFound, match="no layer named 'lakes'"):
        repo.layer("lakes")


def test_replaced_layer_is_found_by_gdal_spatial_index(repo: GpkgRepository) -> None:
    new = gpd.GeoDataFrame({"id": ["core2"], "name": ["新城区"], "source": ["survey"],
                            "area_km2": [12.5]}, geometry=[box(113.5, 35.3, 113.55, 35.35)],
                           crs=4326)
    report = repo.replace_layer("urban_core", new, user="planner")
    assert report == {"layer": "urban_core", "before": 1, "after": 1}
    assert repo.layer("urban_core")["area_km2"].tolist() == [12.5]
    # GDAL answers a bbox query through the R-tree our sqlite3 triggers maintained
    hit = pyogrio.read_dataframe(repo.path, layer="layer_urban_core",
                                 bbox=(113.52, 35.32, 113.53, 35.33))
    old = pyogrio.read_dataframe(repo.path, layer="layer_urban_core",
                                 bbox=(113.25, 35.25, 113.26, 35.26))
    assert hit["id"].tolist() == ["core2"] and old.empty
    [change] = repo.history("urban_core", entity="layer")
    assert change["before"]["ids"] == ["core"] and change["after"]["ids"] == ["core2"]


def test_replacing_a_layer_with_an_invalid_polygon_changes_nothing(repo: GpkgRepository
                                                                  ) -> None:
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    bad = gpd.GeoDataFrame({"id": ["x"], "name": ["x"], "source": ["x"]}, geometry=[bowtie],
                           crs=4326)
    with pytest.raises(ValidationFailed, match="urban_core"):
        repo.replace_layer("urban_core", bad, user="planner")
    assert repo.layer("urban_core")["id"].tolist() == ["core"]


def test_derived_layer_keeps_its_metric_crs_apart_from_source_layers(repo: GpkgRepository
                                                                    ) -> None:
    buffers = gpd.GeoDataFrame({"rule_id": ["riverside_livestock"], "distance_m": [400.0]},
                               geometry=[Point(450000, 3896000).buffer(400)], crs=4547)
    repo.write_derived_layer("riverside_livestock", buffers)
    repo.write_derived_layer("riverside_livestock", buffers)  # rewriting replaces
    got = repo.derived_layer("riverside_livestock")
    assert repo.derived_layer_names() == ["riverside_livestock"]
    assert "riverside_livestock" not in repo.layer_names()
    assert got.crs.to_epsg() == 4547 and len(got) == 1
    assert got.geometry.iloc[0].area == pytest.approx(buffers.geometry.iloc[0].area)
    via_gdal = pyogrio.read_dataframe(repo.path, layer="zone_riverside_livestock")
    assert via_gdal.crs.to_epsg() == 4547


# --------------------------------------------------------------------------- sites
def test_sites_filter_by_type_district_and_label_lists(repo: GpkgRepository) -> None:
    assert repo.sites("enterprise")["id"].tolist() == ["E1", "E2", "E3"]
    assert repo.sites(district="东区")["id"].tolist() == ["E2", "E3", "F2", "W2"]
    assert repo.sites(classification=["relocate", "原址关闭"])["id"].tolist() == ["E1", "E3"]
    assert repo.sites("scattered_workshop", status="banned")["id"].tolist() == ["W1"]
    assert repo.sites(stage=[]).empty
    with pytest.raises(Exception, match="unknown site filter|未知的场所筛选条件 colour"):
        repo.sites(colour="red")


def test_site_record_has_plain_values_and_version(repo: GpkgRepository) -> None:
    e1 = repo.site("E1")
    assert e1["version"] == 1 and e1["online_monitoring"] is True
    assert e1["lon"] == 113.25 and e1["planned_completion"] is None
    assert "geometry" not in e1
    with pytest.raises(NotFound):
        repo.site("NOPE")


def test_update_with_a_stale_version_raises_conflict(repo: GpkgRepository) -> None:
    repo.update_site("E2", {"stage": "started"}, user="alice", expected_version=1)
    with pytest.raises(Conflict, match="alice") as info:
        repo.update_site("E2", {"stage": "completed"}, user="bob", expected_version=1)
    assert info.value.details["current_version"] == 2
    assert repo.site("E2")["stage"] == "started"


def test_two_editors_at_once_one_wins_one_is_told(repo: GpkgRepository) -> None:
    results: list[str] = []
    barrier = threading.Barrier(2)

    def edit(user: str) -> None:
        barrier.wait()
        try:
            repo.update_site("E1", {"progress": f"by {user}"}, user=user, expected_version=1)
            results.append("saved")
        except Conflict:
            results.append("conflict")
        finally:
            repo.close()

    threads = [threading.Thread(target=edit, args=(u,)) for u in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict", "saved"]
    assert repo.site("E1")["version"] == 2


def test_moving_a_site_moves_its_point(repo: GpkgRepository) -> None:
    repo.update_site("F1", {"lon": 113.12, "lat": 35.21}, user="inspector",
                     expected_version=1)
    moved = repo.sites("livestock_farm").set_index("id").loc["F1"]
    assert (moved.geometry.x, moved.geometry.y) == (113.12, 35.21)
    on_disk = pyogrio.read_dataframe(repo.path, layer="sites", bbox=(113.11, 35.2, 113.13, 35.22))
    assert on_disk["id"].tolist() == ["F1"]


def test_history_records_who_and_before_after(repo: GpkgRepository) -> None:
    repo.update_site("E2", {"stage": "已启动", "actual_start": "2020-03-01"}, user="alice",
                     expected_version=1)
    [change] = repo.history("E2")
    assert change["user"] == "alice" and change["action"] == "update"
    assert change["before"] == {"version": 1, "stage": "not_started", "actual_start": None}
    assert change["after"] == {"version": 2, "stage": "started", "actual_start": "2020-03-01"}
    assert change["at"].endswith("Z")


def test_invalid_update_is_refused_and_nothing_changes(repo: GpkgRepository) -> None:
    with pytest.raises(ValidationFailed, match="stage"):
        repo.update_site("E2", {"stage": "halfway"}, user="alice", expected_version=1)
    assert repo.site("E2")["version"] == 1 and repo.history("E2") == []


def test_create_site_validates_and_refuses_duplicate_ids(repo: GpkgRepository) -> None:
    made = repo.create_site(_new_farm("F9"), user="inspector")
    assert made["version"] == 1 and made["head_count"] == 300
    assert repo.history("F9")[0]["action"] == "create"
    with pytest.raises(Conflict, match="F9"):
        repo.create_site(_new_farm("F9"), user="inspector")
    with pytest.raises(ValidationFailed, match="district"):
        repo.create_site(_new_farm("F10", district="火星区"), user="inspector")


def test_delete_site_needs_the_current_version(repo: GpkgRepository) -> None:
    with pytest.raises(Conflict):
        repo.delete_site("W2", user="a", expected_version=7)
    repo.delete_site("W2", user="a", expected_version=1)
    with pytest.raises(NotFound):
        repo.site("W2")
    assert repo.history("W2")[-1]["before"]["name"] == "小石材加工点"


def test_import_creates_and_updates_in_one_go(repo: GpkgRepository) -> None:
    e2 = {k: v for k, v in repo.site("E2").items()}
    e2["stage"] = "completed"
    report = repo.import_sites([_new_farm("F7"), e2, _new_farm("F8")], user="planner")
    assert report == {"rows": 3, "created": 2, "updated": 1}
    assert repo.site("E2")["version"] == 2 and repo.site("E2")["stage"] == "completed"
    assert repo.history("E2")[0]["before"]["stage"] == "not_started"
    assert len(repo.sites()) == 9


def test_failing_import_changes_nothing_and_lists_every_bad_row(repo: GpkgRepository) -> None:
    db = repo.path
    before = (_count(db, "sites"), _count(db, "changes"))
    records = [_new_farm("F7"), _new_farm("F8", lat="north"), _new_farm("F7"),
               _new_farm("F9", head_count="many")]
    with pytest.raises(ValidationFailed) as info:
        repo.import_sites(records, user="planner")
    rows = {(p["row"], p["column"]) for p in info.value.details}
    assert rows == {(2, "lat"), (3, "id"), (4, "head_count")}
    assert (_count(db, "sites"), _count(db, "changes")) == before


def test_import_rolls_back_when_the_database_refuses_midway(repo: GpkgRepository) -> None:
    before = _count(repo.path, "sites")
    with pytest.raises(sqlite3.IntegrityError), repo.transaction() as conn:
        repo.import_sites([_new_farm("F7")], user="planner")
        conn.execute("INSERT INTO sites (id, site_type) VALUES ('E1', 'enterprise')")
    assert _count(repo.path, "sites") == before
    with pytest.raises(NotFound):
        repo.site("F7")


def test_concurrent_writers_wait_instead_of_failing(repo: GpkgRepository) -> None:
    errors: list[BaseException] = []

    def add(prefix: str) -> None:
        try:
            for i in range(6):
                repo.create_site(_new_farm(f"{prefix}{i}"), user=prefix)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            repo.close()

    threads = [threading.Thread(target=add, args=(p,)) for p in ("A", "B", "C")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(repo.sites()) == 7 + 18


# --------------------------------------------------------------------------- tables
def test_append_complaints_converts_gcj02_to_a_wgs84_point(repo: GpkgRepository) -> None:
    rows = pd.DataFrame([{"id": "C3", "received_at": "2026-11-18 10:00", "category": "水",
                          "lon": 113.2662, "lat": 35.2383, "crs": "gcj02", "district": "西区",
                          "summary": "河水发黑"}])
    assert repo.append_rows("complaints", rows, user="duty") == 1
    c3 = repo.table("complaints").set_index("id").loc["C3"]
    assert c3["category"] == "water" and c3["received_at"] == "2026-11-18T10:00:00"
    assert c3["lon"] == 113.2662  # the given coordinate is kept as given
    assert 0.002 < abs(c3.geometry.x - 113.2662) < 0.01  # the point is the WGS84 one


def test_append_with_a_bad_row_appends_nothing(repo: GpkgRepository) -> None:
    rows = pd.DataFrame([{"grid_code": "G03", "warned_at": "2026-11-18T10:00", "value": 90},
                         {"grid_code": "G04", "warned_at": "yesterday", "value": 95}])
    with raises_english(ValidationFailed, "row 2, column warned_at"):
        repo.append_rows("grid_warnings", rows, user="duty")
    assert len(repo.table("grid_warnings")) == 2


def test_site_hits_are_replaced_all_at_once(repo: GpkgRepository) -> None:
    hits = pd.DataFrame({"site_id": ["F1", "E1"], "rule_id": ["riverside_livestock",
                                                              "urban_core_heavy_industry"],
                         "feature_id": ["r1", "core"], "feature_name": ["测试河", "主城区"],
                         "distance_m": [390.0, 0.0], "severity": ["high", "high"]})
    assert repo.replace_site_hits(hits) == 2
    assert repo.site_hits("F1")["distance_m"].tolist() == [390.0]
    assert repo.replace_site_hits(hits.iloc[:1]) == 1
    assert repo.site_hits()["site_id"].tolist() == ["F1"]
    assert repo.table("changes")["entity"].tolist()[-1] == "site_hits"


# --------------------------------------------------------------------------- file format
def test_file_stays_a_geopackage_gdal_reads_after_sqlite_writes(repo: GpkgRepository) -> None:
    repo.create_site(_new_farm("F9"), user="inspector")
    repo.update_site("E1", {"lon": 113.26}, user="inspector", expected_version=1)
    layers = dict(pyogrio.list_layers(repo.path))
    assert layers["sites"] == "Point" and "layer_counties" in layers
    assert {"changes", "site_hits", "geoapp_meta", "grid_warnings"} <= set(layers)
    sites = pyogrio.read_dataframe(repo.path, layer="sites")
    assert len(sites) == 8 and sites.crs.to_epsg() == 4326
    assert pyogrio.read_info(repo.path, layer="sites")["features"] == 8
    with sqlite3.connect(repo.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_backup_is_a_complete_copy_while_in_use(repo: GpkgRepository, tmp_path: Path) -> None:
    repo.create_site(_new_farm("F9"), user="inspector")
    copy = repo.backup(tmp_path / "backups" / "copy.gpkg")
    assert len(pyogrio.read_dataframe(copy, layer="sites")) == 8
    assert GpkgRepository(copy).site("F9")["name"] == "养殖场F9"


# --------------------------------------------------------------------------- shipped data
def _real_data_ready() -> bool:
    data = REPO_ROOT / "data"
    try:
        city = load_city(data)
    except ConfigError:
        return False
    files = [data / s.file for s in city.layers.values()] + \
        [data / f for f in (*city.site_files.values(), *city.tables.values())]
    return all(f.is_file() for f in files)


@pytest.mark.skipif(not _real_data_ready(),
                    reason="data/ does not yet hold every file city.toml names")
def test_init_on_the_shipped_data_matches_the_files(tmp_path: Path) -> None:
    data = REPO_ROOT / "data"
    city = load_city(data)
    repo = GpkgRepository(tmp_path / "geoapp.gpkg")
    report = repo.initialize(data)
    assert report["status"] == "built"
    for name, spec in city.layers.items():
        assert len(repo.layer(name)) == len(read_layer(data, spec)), name
    assert len(repo.sites()) == len(read_sites(data, city))
    for name in city.tables:
        assert len(repo.table(name)) == len(read_table(data, city, name)), name
    for site_type, file in city.site_files.items():
        with (data / file).open(encoding="utf-8-sig") as fh:
            rows = len(pd.read_csv(fh, dtype=str))
        assert len(repo.sites(site_type)) == rows, site_type
    repo.close()
