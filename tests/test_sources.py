"""The city file model and the source-file readers: typed values, clear errors."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from catalogue import english, raises_english

from geoapp.domain.city import City
from geoapp.domain.errors import ConfigError, ValidationFailed
from geoapp.storage.sources import load_city, read_layer, read_sites, read_table

from tinycity import TINY_CITY_TOML, TINY_SITES, feature_collection, write_csv


def _city_dict() -> dict:
    return tomllib.loads(TINY_CITY_TOML)


def test_city_file_gives_counties_layers_and_site_files_in_order(tiny_data_dir: Path) -> None:
    city = load_city(tiny_data_dir)
    assert city.name == "测试市" and city.zoom == 11 and city.metric_crs == ""
    assert city.county_names == ("西区", "东区")
    assert city.counties[1].full_name == "测试市东区"
    assert city.counties[0].full_name == "西区"
    assert list(city.layers) == ["counties", "rivers", "urban_core"]
    assert city.layers["rivers"].title_zh == "河流" and city.layers["rivers"].kind == "water"
    assert city.site_files["livestock_farm"] == "sites/livestock_farms.csv"
    assert set(city.tables) == {"grid_warnings", "complaints"}


def test_shipped_city_file_is_valid() -> None:
    data = Path(__file__).resolve().parents[1] / "data"
    city = load_city(data)
    assert city.adcode == "410800"
    assert "示范区" in city.county_names


@pytest.mark.parametrize(("path", "value", "named"), [
    (("city", "adcode"), None, "city.adcode"),
    (("city", "zoom"), "ten", "city.zoom"),
    (("layers", "rivers", "kind"), "lake", "layers.rivers.kind"),
    (("layers", "rivers", "title"), None, "layers.rivers.title"),
    (("layers", "rivers", "file"), "../outside.geojson", "layers.rivers.file"),
])
def test_bad_city_key_is_named_in_the_error(path: tuple, value: object, named: str) -> None:
    d = _city_dict()
    parent = d
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with raises_english(ConfigError, named.replace(".", r"\.")):
        City.from_mapping(d)


def test_unknown_site_type_in_city_file_is_rejected() -> None:
    d = _city_dict()
    d["sites"]["factory"] = {"file": "sites/x.csv"}
    with raises_english(ConfigError, "sites.factory.*enterprise"):
        City.from_mapping(d)


def test_city_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "city.toml").write_text("[city\nname = 1", encoding="utf-8")
    with raises_english(ConfigError, "city.toml: not valid TOML"):
        load_city(tmp_path)


def test_layer_declared_in_gauss_kruger_is_reprojected_to_degrees(tiny_data_dir: Path) -> None:
    # EPSG:4547 (CGCS2000 / 3-degree GK CM 114E): x 400 km east of false origin... ~113.0E
    fc = feature_collection([({"id": "r1", "name": "河", "source": "synthetic"},
                              {"type": "LineString",
                               "coordinates": [[409000, 3896000], [450000, 3896000]]})])
    fc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}}
    (tiny_data_dir / "boundaries" / "rivers.geojson").write_text(json.dumps(fc))
    city = load_city(tiny_data_dir)
    gdf = read_layer(tiny_data_dir, city.layers["rivers"])
    minx, miny, maxx, maxy = gdf.total_bounds
    assert gdf.crs.to_epsg() == 4326
    assert 112.5 < minx < maxx < 113.6 and 35.1 < miny <= maxy < 35.3


def test_undeclared_metre_coordinates_are_an_error(tiny_data_dir: Path) -> None:
    fc = feature_collection([({"id": "r1", "name": "河", "source": "synthetic"},
                              {"type": "LineString",
                               "coordinates": [[409000, 3896000], [450000, 3896000]]})])
    (tiny_data_dir / "boundaries" / "rivers.geojson").write_text(json.dumps(fc))
    city = load_city(tiny_data_dir)
    with raises_english(ValidationFailed, "not degrees"):
        read_layer(tiny_data_dir, city.layers["rivers"])


def test_self_intersecting_zone_is_reported_with_layer_and_feature_id(tiny_data_dir: Path
                                                                      ) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[113.2, 35.2], [113.4, 35.3], [113.4, 35.2],
                                                  [113.2, 35.3], [113.2, 35.2]]]}
    fc = feature_collection([({"id": "ok", "name": "好", "source": "s"},
                              {"type": "Point", "coordinates": [113.3, 35.25]}),
                             ({"id": "bad-zone", "name": "坏", "source": "s"}, bowtie)])
    (tiny_data_dir / "boundaries" / "urban_core.geojson").write_text(json.dumps(fc))
    city = load_city(tiny_data_dir)
    with raises_english(ValidationFailed, "urban_core.*bad-zone") as info:
        read_layer(tiny_data_dir, city.layers["urban_core"])
    [problem] = info.value.details
    assert problem["layer"] == "urban_core" and problem["id"] == "bad-zone"
    assert "Self-intersection" in problem["message"]


def test_layer_without_source_property_names_the_column(tiny_data_dir: Path) -> None:
    fc = feature_collection([({"id": "r1", "name": "河"},
                              {"type": "LineString", "coordinates": [[113, 35.2], [113.5, 35.2]]})])
    (tiny_data_dir / "boundaries" / "rivers.geojson").write_text(json.dumps(fc))
    city = load_city(tiny_data_dir)
    with raises_english(ValidationFailed, "rivers.geojson: missing column.*source"):
        read_layer(tiny_data_dir, city.layers["rivers"])


def test_broken_json_names_the_file(tiny_data_dir: Path) -> None:
    (tiny_data_dir / "boundaries" / "rivers.geojson").write_text('{"type": "FeatureCol')
    city = load_city(tiny_data_dir)
    with raises_english(ValidationFailed, "boundaries/rivers.geojson"):
        read_layer(tiny_data_dir, city.layers["rivers"])


def test_sites_of_all_types_come_in_one_typed_frame(tiny_data_dir: Path) -> None:
    sites = read_sites(tiny_data_dir, load_city(tiny_data_dir))
    assert sites.crs.to_epsg() == 4326 and len(sites) == 7
    assert sites["site_type"].value_counts().to_dict() == {
        "enterprise": 3, "livestock_farm": 2, "scattered_workshop": 2}
    e1 = sites.set_index("id").loc["E1"]
    monitoring = sites["online_monitoring"]
    assert str(monitoring.dtype) == "boolean"
    assert monitoring.astype(object).where(monitoring.notna(), None).tolist()[:3] == [
        True, False, None]
    assert str(sites["employees"].dtype) == "Int64" and e1["employees"] == 420
    assert sites["vacated_mu"].dtype == float and e1["vacated_mu"] == 210.5
    assert e1["planned_start"] == "2019-03-01"
    assert e1["actual_completion"] is None
    assert (e1.geometry.x, e1.geometry.y) == (113.25, 35.25)
    farm = sites.set_index("id").loc["F2"]
    assert pd.isna(farm["head_count"]) and farm["classification"] == ""


def test_county_full_name_is_stored_as_the_short_name(tiny_data_dir: Path) -> None:
    sites = read_sites(tiny_data_dir, load_city(tiny_data_dir)).set_index("id")
    assert sites.loc["E3", "district"] == "东区"


def test_bad_site_values_are_reported_row_by_row(tiny_data_dir: Path) -> None:
    rows = [dict(r) for r in TINY_SITES["workshops.csv"]]
    rows[0]["banned_date"] = "2019/05/20"
    rows[1]["status"] = "closed"
    rows[1]["lat"] = "3893000"  # projected metres in a degree column
    write_csv(tiny_data_dir / "sites" / "workshops.csv", rows)
    with pytest.raises(ValidationFailed) as info:
        read_sites(tiny_data_dir, load_city(tiny_data_dir))
    found = {(p["file"], p["row"], p["column"]) for p in info.value.details}
    assert found == {("sites/workshops.csv", 2, "banned_date"),
                     ("sites/workshops.csv", 3, "status"), ("sites/workshops.csv", 3, "lat")}
    assert "sites/workshops.csv row 2, column banned_date" in english(info.value.message)
    assert "sites/workshops.csv 第 2 行 banned_date 列" in info.value.message


def test_missing_csv_column_names_file_and_column(tiny_data_dir: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "species"}
            for r in TINY_SITES["livestock_farms.csv"]]
    write_csv(tiny_data_dir / "sites" / "livestock_farms.csv", rows)
    with raises_english(ValidationFailed, "livestock_farms.csv: missing column.*species"):
        read_sites(tiny_data_dir, load_city(tiny_data_dir))


def test_site_id_used_twice_across_files_is_an_error(tiny_data_dir: Path) -> None:
    rows = [dict(r) for r in TINY_SITES["livestock_farms.csv"]]
    rows[1]["id"] = "E1"
    write_csv(tiny_data_dir / "sites" / "livestock_farms.csv", rows)
    with raises_english(ValidationFailed, "id"):
        read_sites(tiny_data_dir, load_city(tiny_data_dir))


def test_event_tables_are_typed_and_normalised(tiny_data_dir: Path) -> None:
    city = load_city(tiny_data_dir)
    warnings = read_table(tiny_data_dir, city, "grid_warnings")
    assert list(warnings["warned_at"]) == ["2026-11-16T09:00:00", "2026-11-17T14:30:00"]
    assert warnings["value"].tolist() == [118.0, 205.0]
    complaints = read_table(tiny_data_dir, city, "complaints")
    assert complaints["category"].tolist() == ["air", "noise"]  # 噪声 read as noise


def test_complaint_coordinates_without_a_named_system_are_rejected(tiny_data_dir: Path
                                                                   ) -> None:
    rows = [dict(r) for r in TINY_SITES["complaints.csv"]]
    rows[0]["crs"] = ""
    write_csv(tiny_data_dir / "sites" / "complaints.csv", rows)
    with raises_english(ValidationFailed, "row 2, column crs"):
        read_table(tiny_data_dir, load_city(tiny_data_dir), "complaints")
