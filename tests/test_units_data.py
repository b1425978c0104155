"""The shipped 三线一单 demo set: the control units tile the city, each inside one county,
the protection zones lie in 优先保护 units, and every unit has a four-part list that names
the industries the app's data uses."""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geoapp.domain.units import (
    PARTS,
    SHEET_COLUMNS,
    code_category,
    is_valid_unit_code,
    lines_naming,
    requirement_lines,
)
from geoapp.storage.sources import load_city

DATA = Path(__file__).resolve().parents[1] / "data"
METRIC = "EPSG:4547"
CITY = tomllib.loads((DATA / "city.toml").read_text(encoding="utf-8"))
UNITS_FILE = CITY["layers"]["control_units"]["file"]
LIST_FILE = CITY["units"]["requirements"]


def _layer(name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(DATA / CITY["layers"][name]["file"])


@pytest.fixture(scope="module")
def units() -> gpd.GeoDataFrame:
    return gpd.read_file(DATA / UNITS_FILE)


@pytest.fixture(scope="module")
def units_m(units) -> gpd.GeoDataFrame:
    return units.to_crs(METRIC)


@pytest.fixture(scope="module")
def lists() -> pd.DataFrame:
    return pd.read_csv(DATA / LIST_FILE, dtype=str, keep_default_na=False)


def test_the_units_layer_is_registered_with_kind_units():
    city = load_city(DATA)
    assert city.units_layer == "control_units"
    assert CITY["layers"]["control_units"]["kind"] == "units"
    assert city.unit_requirements == LIST_FILE
    assert city.industry_keywords["商混站"]


def test_units_tile_the_city_without_overlaps_or_gaps(units_m):
    city = _layer("city").to_crs(METRIC).geometry.iloc[0]
    geoms = list(units_m.geometry)
    overlap = 0.0
    for i, a in enumerate(geoms):
        for b in geoms[i + 1:]:
            if a.intersects(b):
                overlap += a.intersection(b).area
    assert overlap < 100.0  # m²: nothing but floating-point slivers
    union = units_m.geometry.union_all()
    assert union.symmetric_difference(city).area / city.area < 0.0001


def test_every_unit_lies_in_the_county_it_names_and_tiles_it(units_m):
    counties = _layer("counties").to_crs(METRIC).set_index("name")
    assert set(units_m["county"]) == set(counties.index)
    for row in units_m.itertuples():
        outside = row.geometry.difference(counties.loc[row.county].geometry).area
        assert outside < 1000.0, (row.code, outside)
    for name, group in units_m.groupby("county"):
        county = counties.loc[name].geometry
        assert abs(group.area.sum() - county.area) / county.area < 0.0001, name
        assert (group["category"] == "一般管控").sum() == 1, name


def test_no_sliver_survives(units_m):
    parts = units_m.explode(index_parts=False)
    assert parts.area.min() >= 1000.0


def test_codes_names_and_categories(units):
    assert (units["id"] == units["code"]).all() and units["code"].is_unique
    assert set(units["category"]) == {"优先保护", "重点管控", "一般管控"}
    assert (units["source"] == "synthetic").all()
    adcodes = {c["name"]: c["adcode"] or CITY["city"]["adcode"] for c in CITY["city"]["counties"]}
    for row in units.itertuples():
        assert is_valid_unit_code(row.code), row.code
        assert row.code[2:8] == adcodes[row.county], row.code  # 示范区: the city's 410800
        assert code_category(row.code).value == row.category, row.code
        assert row.name.startswith(f"{row.county}{row.category}单元"), row.name
    assert "ZH41080220001" in set(units["code"])  # 解放区重点管控单元（主城区）


@pytest.mark.parametrize("zone", ["eco_redline", "water_source_zones"])
def test_the_protection_zones_fall_in_priority_units(units_m, zone):
    priority = units_m[units_m["category"] == "优先保护"].geometry.union_all()
    for row in _layer(zone).to_crs(METRIC).itertuples():
        outside = row.geometry.difference(priority).area
        assert outside <= 1e-5 * row.geometry.area + 100.0, (row.id, outside)


def test_the_canal_band_is_a_priority_unit_and_key_zones_are_key_units(units_m):
    canal = _layer("canal").to_crs(METRIC).geometry.iloc[0]
    city = _layer("city").to_crs(METRIC).geometry.iloc[0]
    priority = units_m[units_m["category"] == "优先保护"].geometry.union_all()
    inside = canal.intersection(city)
    assert inside.difference(priority).length < 0.001 * inside.length
    key_or_better = units_m[units_m["category"] != "一般管控"].geometry.union_all()
    for zone in ("urban_core", "industrial_clusters", "chemical_parks"):
        for row in _layer(zone).to_crs(METRIC).itertuples():
            # a piece under 1,000 m² in a second county is a sliver: its general unit's
            assert row.geometry.difference(key_or_better).area < 2000.0, row.id


def test_every_unit_has_one_list_row_with_the_published_headers(units, lists):
    with (DATA / LIST_FILE).open(encoding="utf-8", newline="") as f:
        headers = next(csv.reader(f))
    assert headers == [c.header for c in SHEET_COLUMNS]
    assert list(lists["环境管控单元编码"]) == list(units["code"])
    by_code = units.set_index("code")
    for row in lists.itertuples(index=False):
        code, name, province, city, county, category, *parts = row
        assert (name, county, category) == (by_code.loc[code, "name"], by_code.loc[code, "county"],
                                            by_code.loc[code, "category"])
        assert (province, city) == ("河南省", "焦作市")
        for text in parts:
            lines = requirement_lines(text)
            assert len(lines) >= 1 and all(re.match(r"\d+\.", line) for line in lines)
        assert len(requirement_lines(parts[0])) >= 3  # several lines of spatial constraints


def test_the_lists_name_the_industries_the_app_uses(lists):
    city = load_city(DATA)
    industries = set()
    for rel in CITY["sites"].values():
        df = pd.read_csv(DATA / rel["file"], dtype=str, keep_default_na=False)
        if "industry" in df.columns:
            industries |= set(df["industry"]) - {""}
    text = "\n".join(lists[[name for _, name in PARTS]].to_numpy().ravel())
    unnamed = sorted(i for i in industries if not lines_naming(text, i, city.industry_keywords))
    assert unnamed == []


def test_lists_say_what_their_unit_is_made_of(lists):
    by_name = lists.set_index("环境管控单元名称")
    water = by_name.loc["解放区优先保护单元（焦作市北部地下水饮用水水源地保护区）", "空间布局约束"]
    assert "禁止新建、改建、扩建与供水设施和保护水源无关的建设项目" in water
    chemical = by_name.loc["孟州市重点管控单元（孟州市化工园区）", "空间布局约束"]
    assert "化工" in chemical and "进入本园区" in chemical
    cluster = by_name.loc["沁阳市重点管控单元（沁阳市沁北产业集聚区）"]
    assert all(w in cluster["污染物排放管控"] for w in ("焦化", "铸造", "水泥"))
    general = by_name.loc["温县一般管控单元", "空间布局约束"]
    assert "400米" in general and "畜禽" in general and "黄河" in general
