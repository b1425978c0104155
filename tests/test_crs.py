"""Coordinate systems: conversions are exact enough for metre-scale rules, errors are named."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from catalogue import english, raises_english
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geoapp.domain.errors import CoordinateError
from geoapp.spatial import crs as C

FIXTURES = Path(__file__).parent / "fixtures"
GEOD = Geod(ellps="WGS84")
JIAOZUO = (113.2418, 35.2028)  # a point in 解放区, WGS84

china_lon = st.floats(73.0, 135.0)
china_lat = st.floats(18.0, 53.0)


def metres_apart(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


# --- GCJ-02 / BD-09 -------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(china_lon, china_lat)
def test_wgs84_gcj02_round_trip_is_within_half_a_metre_everywhere_in_china(lon, lat):
    back = C.gcj02_to_wgs84(*C.wgs84_to_gcj02(lon, lat))
    assert metres_apart(lon, lat, *back) < 0.5


@settings(max_examples=400, deadline=None)
@given(china_lon, china_lat)
def test_wgs84_bd09_round_trip_is_within_half_a_metre_everywhere_in_china(lon, lat):
    back = C.bd09_to_wgs84(*C.wgs84_to_bd09(lon, lat))
    assert metres_apart(lon, lat, *back) < 0.5


@settings(max_examples=200, deadline=None)
@given(china_lon, china_lat)
def test_gcj02_inverse_reproduces_its_input_through_the_forward(lon, lat):
    wlon, wlat = C.gcj02_to_wgs84(lon, lat)
    flon, flat = C.wgs84_to_gcj02(wlon, wlat)
    assert abs(flon - lon) < 1e-9 and abs(flat - lat) < 1e-9


def test_gcj02_round_trip_on_a_dense_grid_is_sub_millimetre():
    lon, lat = np.meshgrid(np.linspace(73, 135, 125), np.linspace(18, 53, 71))
    blon, blat = C.gcj02_to_wgs84(*C.wgs84_to_gcj02(lon, lat))
    assert blon.shape == lon.shape
    assert metres_apart(lon, lat, blon, blat).max() < 0.001


def test_gcj02_offset_around_jiaozuo_is_hundreds_of_metres():
    glon, glat = C.wgs84_to_gcj02(*JIAOZUO)
    assert 300 < metres_apart(*JIAOZUO, glon, glat) < 700
    assert glon > JIAOZUO[0]  # Amap points sit east of the GPS position here


def test_bd09_is_shifted_further_than_gcj02():
    gcj = C.wgs84_to_gcj02(*JIAOZUO)
    bd = C.wgs84_to_bd09(*JIAOZUO)
    assert metres_apart(*gcj, *bd) > 500


def test_points_outside_china_are_unchanged_by_the_gcj02_forward():
    assert C.wgs84_to_gcj02(2.3522, 48.8566) == (2.3522, 48.8566)
    assert C.gcj02_to_wgs84(2.3522, 48.8566) == (2.3522, 48.8566)


def test_conversions_return_floats_for_scalars_and_arrays_for_arrays():
    lon, lat = C.wgs84_to_gcj02(*JIAOZUO)
    assert type(lon) is float and type(lat) is float
    alon, alat = C.bd09_to_wgs84(np.array([113.25, 113.3]), np.array([35.2, 35.25]))
    assert isinstance(alon, np.ndarray) and alon.shape == (2,)


def test_nan_in_an_array_stays_nan_without_disturbing_other_points():
    lon, lat = C.gcj02_to_wgs84(np.array([113.25, np.nan, np.inf]), np.array([35.2, 35.2, 35.2]))
    assert np.isfinite(lon[0]) and np.isnan(lon[1]) and not np.isfinite(lon[2])


# --- EPSG systems and Gauss-Krüger ----------------------------------------------------------

def test_metric_crs_for_jiaozuo_is_cgcs2000_gk_cm_114():
    assert C.metric_crs_for(113.2, 35.2) == "EPSG:4547"


@pytest.mark.parametrize(("lon", "lat", "expected"), [
    (107.47, 31.21, "EPSG:4545"),  # Dazhou, CM 108
    (87.6, 43.8, "EPSG:4538"),  # Urumqi, CM 87
    (73.5, 39.0, "EPSG:4534"),  # far west, CM 75
    (134.9, 48.0, "EPSG:4554"),  # far east, CM 135
])
def test_metric_crs_for_picks_the_nearest_central_meridian(lon, lat, expected):
    assert C.metric_crs_for(lon, lat) == expected


def test_metric_crs_for_a_point_outside_china_is_refused():
    with raises_english(CoordinateError, "outside China"):
        C.metric_crs_for(2.35, 48.85)


def test_gk_crs_with_and_without_zone_prefix():
    assert C.gk_crs(114) == "EPSG:4547"
    assert C.gk_crs(114, with_zone_prefix=True) == "EPSG:4526"
    assert C.gk_crs(75) == "EPSG:4534" and C.gk_crs(135, True) == "EPSG:4533"


@pytest.mark.parametrize("cm", [113, 72, 138, 114.5])
def test_gk_crs_rejects_a_meridian_that_is_no_3_degree_zone(cm):
    with raises_english(CoordinateError, "central meridian"):
        C.gk_crs(cm)


@pytest.mark.parametrize("name", ["wgs84", "WGS84", "EPSG:4326", "epsg:4326", "4326"])
def test_resolve_crs_accepts_names_and_codes_for_wgs84(name):
    assert C.resolve_crs(name).to_epsg() == 4326


def test_resolve_crs_cgcs2000_is_epsg_4490():
    assert C.resolve_crs("cgcs2000").to_epsg() == 4490


def test_resolve_crs_unknown_name_lists_the_accepted_ones():
    with raises_english(CoordinateError, "accepted: wgs84, cgcs2000, gcj02, bd09, gk"):
        C.resolve_crs("mercator")


def test_resolve_crs_unknown_epsg_code_is_refused():
    with raises_english(CoordinateError, "unknown EPSG code"):
        C.resolve_crs("EPSG:99999")


def test_resolve_crs_refuses_gcj02_which_has_no_epsg_code():
    with raises_english(CoordinateError, "no EPSG code"):
        C.resolve_crs("gcj02")


def test_transformer_is_built_once_per_pair():
    assert C.transformer(C.WGS84, "EPSG:4547") is C.transformer(C.WGS84, "EPSG:4547")


def test_to_metric_and_from_metric_take_scalars_and_arrays():
    x, y = C.to_metric(*JIAOZUO, "EPSG:4547")
    assert 400_000 < x < 500_000 and 3_800_000 < y < 4_000_000
    lon, lat = C.from_metric(np.array([x, x + 1000]), np.array([y, y]), "EPSG:4547")
    assert lon.shape == (2,)
    assert metres_apart(lon[0], lat[0], lon[1], lat[1]) == pytest.approx(1000, abs=1)


def test_gk_without_zone_prefix_round_trips_below_a_millimetre():
    x, y = C.to_metric(*JIAOZUO, "EPSG:4547")
    lon, lat = C.to_wgs84(x, y, "gk", metric_crs="EPSG:4547")
    x2, y2 = C.to_metric(lon, lat, "EPSG:4547")
    assert math.hypot(x2 - x, y2 - y) < 0.001


def test_gk_with_zone_prefix_round_trips_below_a_millimetre_without_metric_crs():
    x, y = C.to_metric(*JIAOZUO, C.gk_crs(114, with_zone_prefix=True))
    assert 38_400_000 < x < 38_500_000
    lon, lat = C.to_wgs84(x, y, "gk")
    x2, y2 = C.to_metric(lon, lat, C.gk_crs(114, with_zone_prefix=True))
    assert math.hypot(x2 - x, y2 - y) < 0.001


def test_gk_zone_prefix_wins_over_the_city_metric_crs():
    x, y = C.to_metric(107.47, 31.21, C.gk_crs(108, with_zone_prefix=True))  # zone 36
    lon, lat = C.to_wgs84(x, y, "gk", metric_crs="EPSG:4547")
    assert metres_apart(107.47, 31.21, lon, lat) < 0.001


def test_cgcs2000_and_wgs84_agree_to_centimetres():
    lon, lat = C.to_wgs84(*JIAOZUO, "cgcs2000")
    assert metres_apart(*JIAOZUO, lon, lat) < 0.05


def test_projected_epsg_input_is_converted():
    x, y = C.to_metric(*JIAOZUO, "EPSG:4547")
    lon, lat = C.to_wgs84(x, y, "EPSG:4547")
    assert metres_apart(*JIAOZUO, lon, lat) < 0.001


def test_to_wgs84_of_gcj02_lands_on_the_gps_position():
    glon, glat = C.wgs84_to_gcj02(*JIAOZUO)
    lon, lat = C.to_wgs84(glon, glat, "GCJ-02")
    assert metres_apart(*JIAOZUO, lon, lat) < 0.01


# --- Errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("x", "y", "crs", "kwargs", "message"), [
    (math.nan, 35.2, "wgs84", {}, "missing or not a number"),
    (113.2, math.inf, "gcj02", {}, "missing or not a number"),
    (200.0, 35.0, "wgs84", {}, "longitude 200 is outside -180..180"),
    (100.0, -95.0, "wgs84", {}, "latitude -95 is outside -90..90"),
    (2.35, 48.85, "wgs84", {}, r"point \(lon 2.35, lat 48.85\) is outside China"),
    (35.2, 113.2, "wgs84", {}, "longitude and latitude look swapped"),
    (35.2, 113.2, "bd09", {}, "longitude and latitude look swapped"),
    (430956.0, 3897355.0, "wgs84", {}, r"projected metres \(Gauss-Krüger x/y\); choose crs=gk"),
    (38430956.0, 3897355.0, "gcj02", {}, "choose crs=gk"),
    (113.2, 35.2, "gk", {}, "look like degrees, not Gauss-Krüger metres"),
    (3897355.0, 430956.0, "gk", {"metric_crs": "EPSG:4547"}, "easting and northing look swapped"),
    (3897355.0, 38430956.0, "gk", {}, "easting and northing look swapped"),
    (430956.0, 3897355.0, "gk", {}, "has no zone number in front"),
    (20430956.0, 3897355.0, "gk", {}, "6-degree zone"),
    (5000.0, 3897355.0, "gk", {"metric_crs": "EPSG:4547"}, "not a CGCS2000 Gauss-Krüger"),
    (113.2, 35.2, "EPSG:4547", {}, "look like degrees"),
    (38430956.0, 3897355.0, "EPSG:4547", {}, "converts to a point outside China"),
    (113.2, 35.2, "utm50", {}, "unknown coordinate system 'utm50'; accepted: wgs84"),
    (430956.0, 3897355.0, "gk", {"metric_crs": "EPSG:32650"}, "not a CGCS2000 3-degree"),
    (113.2, 35.2, "dms", {}, "crs=dms is degrees-minutes-seconds text"),
])
def test_to_wgs84_names_the_problem_and_the_value(x, y, crs, kwargs, message):
    with raises_english(CoordinateError, message) as err:
        C.to_wgs84(x, y, crs, **kwargs)
    assert err.value.status == 400


# --- DMS ------------------------------------------------------------------------------------

DMS_LON = 113 + 14 / 60 + 30.5 / 3600
DMS_LAT = 35 + 12 / 60 + 10 / 3600


@pytest.mark.parametrize("text", [
    "113°14'30.5\"E 35°12'10\"N",
    "35°12'10\"N, 113°14'30.5\"E",
    "113 14 30.5 E 35 12 10 N",
    "113 14 30.5 E, 35 12 10 N",
    "N35°12′10″ E113°14′30.5″",
    "东经113度14分30.5秒 北纬35度12分10秒",
    "北纬35°12′10″，东经113°14′30.5″",
    "113º14'30.5''E 35º12'10''N",
    "113°14'30.5\", 35°12'10\"",
    "e113°14'30.5\" n35°12'10\"",
])
def test_parse_dms_reads_what_inspectors_write(text):
    lon, lat = C.parse_dms(text)
    assert lon == pytest.approx(DMS_LON, abs=1e-9) and lat == pytest.approx(DMS_LAT, abs=1e-9)


@pytest.mark.parametrize(("text", "expected"), [
    ("113.2418E 35.2028N", (113.2418, 35.2028)),
    ("35.2028N 113.2418E", (113.2418, 35.2028)),
    ("113°14.5'E 35°12.25'N", (113 + 14.5 / 60, 35 + 12.25 / 60)),
    ("35°12'10\"S 113°14'30.5\"W", (-DMS_LON, -DMS_LAT)),
    ("西经73.5 南纬40.25", (-73.5, -40.25)),
    ("-113.5, 35.25", (-113.5, 35.25)),
    ("35.25, -113.5", (-113.5, 35.25)),
])
def test_parse_dms_handles_decimals_and_hemispheres(text, expected):
    assert C.parse_dms(text) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("text", "message"), [
    ("113°60'30\"E 35°12'10\"N", "minutes 60 must be below 60"),
    ("113°14'75\"E 35°12'10\"N", "seconds 75 must be below 60"),
    ("hello world", "could not read 'hello world'"),
    ("", "no coordinates given"),
    ("113°14'30\"E", "found 1"),
    ("35N 36N", "both values are latitudes"),
    ("113E 114W", "both values are longitudes"),
    ("35.2, 36.1", "cannot tell longitude from latitude"),
    ("113.5°14'E 35N", "decimal degrees 113.5 cannot be followed by minutes"),
    ("-113E 35N", "either a minus sign or a hemisphere letter"),
    ("200E 35N", "out of range"),
    ("113 14 30.5 35 12 10", "two coordinates"),
    ("113E 35 N 12", "consistently before or after"),
])
def test_parse_dms_rejects_with_a_clear_message(text, message):
    with raises_english(CoordinateError, message):
        C.parse_dms(text)


# --- Form input -----------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b"), [
    ("113.2418", "35.2028"),
    (" 113.2418 ", "35.2028\n"),
    ("113.2418, 35.2028", None),
    ("113.2418，35.2028", ""),
    ("113.2418 35.2028", None),
    ("１１３.２４１８", "３５.２０２８"),
    (113.2418, 35.2028),
])
def test_parse_point_reads_form_fields(a, b):
    assert C.parse_point(a, b, "wgs84") == pytest.approx(JIAOZUO)


def test_parse_point_reads_gk_metres_with_digit_grouping():
    x, y = C.to_metric(*JIAOZUO, C.gk_crs(114, with_zone_prefix=True))
    text_x, text_y = f"{x:,.3f}", f"{y:,.3f}".replace(",", " ")
    lon, lat = C.parse_point(text_x, text_y, "gk")
    assert metres_apart(*JIAOZUO, lon, lat) < 0.01


def test_parse_point_dms_takes_one_text_and_validates_china():
    assert C.parse_point("东经113度14分30.5秒 北纬35度12分10秒", None, "dms") == pytest.approx(
        (DMS_LON, DMS_LAT))
    with raises_english(CoordinateError, "outside China"):
        C.parse_point("2°21'E 48°51'N", None, "dms")


@pytest.mark.parametrize(("a", "b", "message"), [
    ("", "35.2", "coordinate missing"),
    ("abc", "35.2", "'abc' is not a number"),
    ("113,2418", "35,2028", "write decimals with a dot"),
    ("113.2 35.2 36", None, "expected two numbers"),
])
def test_parse_point_rejects_unreadable_fields(a, b, message):
    with raises_english(CoordinateError, message):
        C.parse_point(a, b, "wgs84")


# --- Batch ----------------------------------------------------------------------------------

def test_array_to_wgs84_reports_bad_rows_and_converts_the_rest():
    glon, glat = C.wgs84_to_gcj02(*JIAOZUO)
    x = np.array([glon, 35.2, np.nan, 500000.0, glon])
    y = np.array([glat, 113.2, 35.0, 3900000.0, glat])
    lon, lat, bad, reasons = C.array_to_wgs84(x, y, "gcj02")
    assert bad.tolist() == [False, True, True, True, False]
    assert set(reasons) == {1, 2, 3}
    texts = {i: english(r) for i, r in reasons.items()}
    assert "swapped" in texts[1] and "not a number" in texts[2] and "crs=gk" in texts[3]
    assert "填反" in reasons[1]  # the message itself is the catalogue's Chinese
    assert np.isnan(lon[1:4]).all()
    assert metres_apart(*JIAOZUO, lon[4], lat[4]) < 0.01


def test_array_to_wgs84_converts_gk_rows_from_several_zones():
    pts = [(113.24, 35.2), (107.47, 31.21), (87.6, 43.8)]
    xs, ys = [], []
    for lon, lat in pts:
        x, y = C.to_metric(lon, lat, C.gk_crs(C.gk_central_meridian(C.metric_crs_for(lon, lat)),
                                             with_zone_prefix=True))
        xs.append(x)
        ys.append(y)
    lon, lat, bad, reasons = C.array_to_wgs84(xs, ys, "gk")
    assert not bad.any() and reasons == {}
    assert metres_apart(lon, lat, *np.array(pts).T).max() < 0.001


def test_array_to_wgs84_plain_gk_rows_without_metric_crs_are_reported():
    lon, lat, bad, reasons = C.array_to_wgs84([430956.0], [3897355.0], "gk")
    assert bad.tolist() == [True] and "no zone number" in english(reasons[0])


def test_array_to_wgs84_reads_text_cells():
    lon, lat, bad, reasons = C.array_to_wgs84(["113.2418", "x"], ["35.2028", "35"], "wgs84")
    assert bad.tolist() == [False, True] and lon[0] == pytest.approx(113.2418)


# --- UI labels ------------------------------------------------------------------------------

def test_describe_crs_gives_chinese_and_english_labels():
    gcj = C.describe_crs("GCJ-02")
    assert gcj["name"] == "gcj02" and "高德" in gcj["zh"] and "Amap" in gcj["en"]
    assert "百度" in C.describe_crs("bd09")["zh"]
    assert "高斯-克吕格" in C.describe_crs("gk")["zh"]
    assert C.describe_crs("dms")["zh"] == "度分秒"
    assert C.describe_crs("wgs84")["epsg"] == "EPSG:4326"


def test_describe_crs_of_an_epsg_code_uses_its_official_name():
    info = C.describe_crs("epsg:4547")
    assert info["kind"] == "projected" and "114E" in info["en"]


def test_crs_choices_follow_the_form_order():
    assert [c["name"] for c in C.crs_choices()] == list(C.CRS_CHOICES)


# --- Real data: Amap boundaries published in GCJ-02 and as converted to WGS84 ----------------

SAME_VINTAGE = {
    "jiaozuo": {410800, 410802, 410811},
    "dazhou": {511700, 511702, 511703, 511722, 511723, 511724, 511725, 511781},
}


def _features(name: str) -> dict[int, shapely.Geometry]:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return {f["properties"]["adcode"]: shapely.geometry.shape(f["geometry"])
            for f in data["features"]}


def _median_vertex_distance(vertices: np.ndarray, target: shapely.Geometry, metric: str) -> float:
    """Median distance (m) from each vertex to the nearest point of the target's boundary."""
    x, y = C.to_metric(vertices[:, 0], vertices[:, 1], metric)
    boundary = shapely.transform(target.boundary,
                                 lambda xy: np.column_stack(C.to_metric(xy[:, 0], xy[:, 1], metric)))
    return float(np.median(shapely.distance(shapely.points(x, y), boundary)))


@pytest.mark.parametrize("city", sorted(SAME_VINTAGE))
def test_amap_gcj02_boundaries_converted_by_geoapp_land_on_the_wgs84_copy(city):
    gcj = _features(f"amap_{city}_gcj02.geojson")
    wgs = _features(f"amap_{city}_wgs84.geojson")
    for adcode in sorted(SAME_VINTAGE[city]):
        vertices = shapely.get_coordinates(gcj[adcode])
        metric = C.metric_crs_for(*vertices.mean(axis=0))
        before = _median_vertex_distance(vertices, wgs[adcode], metric)
        converted = np.column_stack(C.gcj02_to_wgs84(vertices[:, 0], vertices[:, 1]))
        after = _median_vertex_distance(converted, wgs[adcode], metric)
        assert before > 200, (adcode, before)
        assert after < 10, (adcode, after)
