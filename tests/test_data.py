"""The embedded Jiaozuo data set: every layer loads, is valid and agrees with itself.

These checks guard the shipped files (made by scripts/make_demo_data.py): the rules and maps
trust them, so a broken polygon or a site in the wrong district would surface as a wrong
verdict far from its cause.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geoapp.domain.creditcode import is_valid_credit_code

DATA = Path(__file__).resolve().parents[1] / "data"
METRIC = "EPSG:4547"
CITY = tomllib.loads((DATA / "city.toml").read_text(encoding="utf-8"))
LAYERS = sorted(CITY["layers"])
SITE_FILES = {k: v["file"] for k, v in CITY["sites"].items()}


def _layer(name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(DATA / CITY["layers"][name]["file"])


def _sites(kind: str) -> gpd.GeoDataFrame:
    df = pd.read_csv(DATA / SITE_FILES[kind], dtype=str, keep_default_na=False)
    return gpd.GeoDataFrame(
        df, geometry=gpd.points_from_xy(df.lon.astype(float), df.lat.astype(float)),
        crs="EPSG:4326")


@pytest.fixture(scope="module")
def counties() -> gpd.GeoDataFrame:
    return _layer("counties")


@pytest.mark.parametrize("name", LAYERS)
def test_layer_loads_in_wgs84_with_valid_nonempty_geometries(name: str) -> None:
    gdf = _layer(name)
    assert len(gdf) > 0
    assert gdf.crs.to_epsg() == 4326
    assert gdf.geometry.notna().all()
    assert not gdf.geometry.is_empty.any()
    assert gdf.geometry.is_valid.all(), gdf.loc[~gdf.geometry.is_valid, "id"].tolist()


@pytest.mark.parametrize("name", LAYERS)
def test_every_feature_has_a_unique_id_a_name_and_a_source(name: str) -> None:
    gdf = _layer(name)
    for col in ("id", "name", "source"):
        assert col in gdf.columns
        assert (gdf[col].astype(str).str.strip() != "").all(), col
    assert gdf["id"].is_unique


@pytest.mark.parametrize("name", LAYERS)
def test_coordinates_have_at_most_six_decimals(name: str) -> None:
    text = (DATA / CITY["layers"][name]["file"]).read_text(encoding="utf-8")
    assert not re.search(r"\d+\.\d{7,}", text)


def test_counties_are_the_eleven_units_of_city_toml(counties: gpd.GeoDataFrame) -> None:
    assert list(counties["name"]) == [c["name"] for c in CITY["city"]["counties"]]
    for row, spec in zip(counties.itertuples(), CITY["city"]["counties"], strict=True):
        assert str(row.adcode or "") == spec["adcode"]


def test_counties_tile_the_city_without_overlaps_or_gaps(counties: gpd.GeoDataFrame) -> None:
    city = _layer("city").to_crs(METRIC).geometry.iloc[0]
    m = counties.to_crs(METRIC)
    overlap = 0.0
    geoms = list(m.geometry)
    for i, a in enumerate(geoms):
        for b in geoms[i + 1:]:
            if a.intersects(b):
                overlap += a.intersection(b).area
    assert overlap < 100.0  # m², i.e. nothing but floating-point slivers
    union = m.geometry.union_all()
    assert abs(union.area - city.area) / city.area < 0.001
    assert union.symmetric_difference(city).area / city.area < 0.001


def test_demonstration_zone_is_a_plausible_synthetic_unit(counties: gpd.GeoDataFrame) -> None:
    zone = counties[counties["name"] == "示范区"].iloc[0]
    assert zone["source"] == "synthetic"
    area_km2 = counties[counties["name"] == "示范区"].to_crs(METRIC).area.iloc[0] / 1e6
    assert 120 <= area_km2 <= 200


def test_hotspot_grid_has_99_cells_21_key_on_the_3km_lattice() -> None:
    grid = _layer("hotspot_grids")
    assert len(grid) == 99
    assert int(grid["key"].sum()) == 21
    assert (grid["id"] == grid["code"]).all()
    assert list(grid["code"]) == sorted(grid["code"])
    corners = grid.to_crs(METRIC).geometry.bounds
    for col in ("minx", "miny", "maxx", "maxy"):
        assert ((corners[col] / 3000).round() * 3000 - corners[col]).abs().max() < 0.5
    assert ((corners.maxx - corners.minx - 3000).abs() < 0.5).all()


def test_every_grid_cell_lies_in_its_county_and_every_county_has_a_cell(
        counties: gpd.GeoDataFrame) -> None:
    grid = _layer("hotspot_grids").to_crs(METRIC)
    cm = counties.to_crs(METRIC)[["name", "geometry"]]
    pieces = gpd.overlay(grid[["code", "geometry"]], cm, how="intersection",
                         keep_geom_type=True)
    pieces["area"] = pieces.area
    best = pieces.sort_values("area").groupby("code")["name"].last()
    assert best.reindex(grid["code"]).tolist() == grid["county"].tolist()
    assert set(grid["county"]) == set(counties["name"])


def test_enterprise_credit_codes_validate_and_are_unique() -> None:
    ent = _sites("enterprise")
    assert ent["credit_code"].is_unique
    bad = [c for c in ent["credit_code"] if not is_valid_credit_code(c)]
    assert bad == []


def test_enterprise_columns_follow_the_ledger_order() -> None:
    ent = _sites("enterprise")
    assert list(ent.columns[:8]) == ["id", "seq", "district", "name", "address", "credit_code",
                                     "industry", "industry_code"]
    assert set(ent["classification"]) <= {"relocate", "upgrade", "close", "convert", "bankrupt"}
    assert set(ent["stage"]) <= {"not_started", "started", "completed", "accepted"}


def test_enterprise_dates_match_their_stage() -> None:
    ent = _sites("enterprise")
    started = ent["stage"] != "not_started"
    done = ent["stage"].isin(["completed", "accepted"])
    assert (ent.loc[started, "actual_start"] != "").all()
    assert (ent.loc[~started, "actual_start"] == "").all()
    assert (ent.loc[done, "actual_completion"] != "").all()
    assert (ent.loc[~done, "actual_completion"] == "").all()
    assert (ent.loc[done, "actual_completion"] > ent.loc[done, "actual_start"]).all()


def test_relocations_have_new_sites_mostly_inside_industrial_clusters() -> None:
    ent = _sites("enterprise")
    reloc = ent[ent["classification"] == "relocate"]
    assert (reloc[["new_site_name", "new_lon", "new_lat"]] != "").all().all()
    new = gpd.GeoDataFrame(reloc, geometry=gpd.points_from_xy(
        reloc.new_lon.astype(float), reloc.new_lat.astype(float)), crs="EPSG:4326")
    inside = gpd.sjoin(new, _layer("industrial_clusters")[["geometry"]], predicate="within")
    share = inside.index.nunique() / len(new)
    assert 0.6 <= share < 1.0


@pytest.mark.parametrize("kind", sorted(SITE_FILES))
def test_every_site_is_inside_the_city_in_the_district_its_row_names(
        kind: str, counties: gpd.GeoDataFrame) -> None:
    sites = _sites(kind)
    city = _layer("city").geometry.iloc[0]
    assert sites.within(city).all()
    areas = counties[["name", "geometry"]].rename(columns={"name": "county"})
    joined = gpd.sjoin(sites, areas, predicate="within")
    assert joined.index.is_unique and len(joined) == len(sites)
    assert (joined["district"] == joined["county"]).all()
    assert sites["id"].is_unique
    assert (sites["source"] == "synthetic").all()


def test_some_farms_are_within_400m_of_a_river_and_some_near_the_edge() -> None:
    farms = _sites("livestock_farm").to_crs(METRIC)
    rivers = _layer("rivers").to_crs(METRIC).geometry.union_all()
    dist = farms.distance(rivers)
    assert (dist <= 400).sum() >= 30
    assert ((dist > 380) & (dist < 420)).sum() >= 10
    assert (dist > 400).sum() >= 80


def test_yellow_river_layer_copies_the_river_geometries() -> None:
    rivers = _layer("rivers").set_index("id")
    yellow = _layer("yellow_river").set_index("id")
    assert set(yellow["name"]) == {"黄河", "沁河", "蟒河"}
    for rid, row in yellow.iterrows():
        assert row.geometry.equals_exact(rivers.loc[rid].geometry, 0)


def test_canal_runs_through_the_urban_core() -> None:
    canal = _layer("canal").to_crs(METRIC).geometry.iloc[0]
    core = _layer("urban_core")
    central = core[core["name"] == "焦作市主城区"].to_crs(METRIC).geometry.iloc[0]
    assert canal.intersects(central)
    city = _layer("city").to_crs(METRIC).geometry.iloc[0]
    assert 80_000 <= canal.intersection(city).length <= 100_000


def test_workshop_relapses_lie_near_banned_workshops() -> None:
    ws = _sites("scattered_workshop").to_crs(METRIC)
    banned = ws[ws["status"] == "banned"]
    found = ws[ws["status"] == "found"]
    near = found.geometry.apply(lambda p: banned.distance(p).min())
    assert (near <= 500).sum() >= 5


def test_grid_warnings_name_existing_cells_in_weeks_38_to_47() -> None:
    warn = pd.read_csv(DATA / CITY["tables"]["grid_warnings"]["file"], dtype=str)
    codes = set(_layer("hotspot_grids")["code"])
    assert set(warn["grid_code"]) <= codes
    weeks = pd.to_datetime(warn["warned_at"]).dt.isocalendar().week
    assert set(weeks) == set(range(38, 48))
    assert set(warn["pollutant"]) <= {"PM2.5", "PM10", "O3"}


def test_complaints_have_coordinates_or_a_district_never_both() -> None:
    c = pd.read_csv(DATA / CITY["tables"]["complaints"]["file"], dtype=str,
                    keep_default_na=False)
    has_xy = c["lon"] != ""
    assert ((c.loc[has_xy, "crs"] == "wgs84") & (c.loc[has_xy, "district"] == "")).all()
    assert ((c.loc[~has_xy, "crs"] == "") & (c.loc[~has_xy, "district"] != "")).all()
    per_week = pd.to_datetime(c["received_at"]).dt.isocalendar().week.value_counts()
    assert per_week.between(20, 60).all() and len(per_week) == 10
