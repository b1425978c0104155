"""Land-survey coordinate files (建设用地报批 电子报盘格式) read into validated parcels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod, Transformer
from shapely.geometry import Polygon

from geoapp.domain.errors import InvalidInput, Problem, ValidationFailed
from geoapp.spatial.datums import datum_of_text
from geoapp.spatial.parcel_geometry import MAX_PARCELS
from geoapp.spatial.survey_file import parse_survey_text, read_survey_file
from tests.catalogue import english

FIXTURES = Path(__file__).parent / "fixtures" / "survey"
GEOD = Geod(ellps="GRS80")
TO_GK = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
#: Synthetic Xi'an 80 -> WGS84 parameters the xian80.txt fixture was written with.
XIAN_TOWGS84 = (-45.0, 120.0, 75.0, 0.6, -1.2, 0.8, 2.5)
#: The lon/lat the second parcel of two_parcels_hole.txt was computed from.
B_LONLAT = [(113.2140, 35.2040), (113.2175, 35.2038), (113.2188, 35.2066),
            (113.2160, 35.2085), (113.2132, 35.2069)]

HEADER = ("[属性描述]\n格式版本号=1.01版本\n坐标系=2000国家大地坐标系\n几度分带=3\n"
          "投影类型=高斯克吕格\n计量单位=米\n{zone}[地块坐标]\n")


def ground_m2(poly: Polygon) -> float:
    return abs(GEOD.geometry_area_perimeter(poly)[0])


def square_gk(lon: float, lat: float, side: float) -> list[tuple[float, float]]:
    e, n = TO_GK.transform(lon, lat)
    h = side / 2
    return [(e - h, n - h), (e + h, n - h), (e + h, n + h), (e - h, n + h)]


def survey_text(parcels: list[tuple[str, list[tuple[str, int, float, float]]]], *,
                zone: str = "带号=38\n", header: str | None = None) -> str:
    """A survey file: parcels as (header line, [(点号, 圈号, easting, northing)]), Y written
    with the zone number in front."""
    out = [header if header is not None else HEADER.format(zone=zone)]
    for head, points in parcels:
        out.append(head)
        out += [f"{name},{ring},{n:.3f},{38_000_000 + e:.3f}" for name, ring, e, n in points]
    return "\n".join(out) + "\n"


def ring(coords: list[tuple[float, float]], ring_no: int = 1, first: int = 1,
         ) -> list[tuple[str, int, float, float]]:
    pts = [(f"J{first + i}", ring_no, e, n) for i, (e, n) in enumerate(coords)]
    return pts + [pts[0]]


def problems(text: str, **kw) -> list[Problem]:
    with pytest.raises(ValidationFailed) as info:
        parse_survey_text(text, name="test.txt", **kw)
    details = info.value.details
    assert isinstance(details, list) and all(isinstance(p, Problem) for p in details)
    return details


def texts(found: list[Problem]) -> str:
    return "\n".join(english(p.message) for p in found)


# --- Reading ------------------------------------------------------------------------------

def test_one_parcel_square_200m_is_4_hectares_on_the_ground():
    survey = read_survey_file(FIXTURES / "one_parcel.txt")
    assert survey.attributes["坐标系"] == "2000国家大地坐标系"
    assert (survey.zone, survey.zone_width, survey.central_meridian) == (38, 3, 114)
    assert survey.metric_crs == "EPSG:4547"
    (p,) = survey.parcels
    assert (p.id, p.name, p.use, p.land_class, p.sheet) == (
        "JZ-2024-001", "焦作市示范区工业用地一号地块", "工业用地", "0601", "I49G066037")
    assert p.declared_ha == 4.0
    assert p.metric.area == pytest.approx(40_000.0, abs=0.01)
    assert p.ground_area_m2 == pytest.approx(40_000.0, rel=1e-3)
    assert ground_m2(p.lonlat) == pytest.approx(p.ground_area_m2)
    assert p.lonlat.centroid.x == pytest.approx(113.2, abs=1e-6)
    assert p.lonlat.centroid.y == pytest.approx(35.2, abs=1e-6)
    assert survey.warnings == ()


def test_two_parcels_one_with_a_hole():
    survey = read_survey_file(FIXTURES / "two_parcels_hole.txt")
    assert [p.id for p in survey.parcels] == ["JZ-2024-002", "JZ-2024-003"]
    hole = survey.parcels[1]
    assert len(hole.metric.interiors) == 1
    assert hole.metric.area == pytest.approx(300 * 300 - 100 * 100, abs=0.01)
    assert hole.ground_area_m2 == pytest.approx(80_000.0, rel=1e-3)
    assert hole.lonlat.is_valid and hole.metric.is_valid
    assert survey.warnings == ()


def test_parcel_equals_the_polygon_built_from_its_lon_lat_within_5_cm():
    survey = read_survey_file(FIXTURES / "two_parcels_hole.txt")
    p = survey.parcels[0]
    got = np.asarray(p.lonlat.exterior.coords)[:-1]
    assert len(got) == len(B_LONLAT)
    # compare vertex by vertex, on the ground, in either ring orientation
    want = B_LONLAT if Polygon(B_LONLAT).exterior.is_ccw == p.lonlat.exterior.is_ccw \
        else [B_LONLAT[0], *B_LONLAT[:0:-1]]
    for (lon, lat), (wlon, wlat) in zip(got, want, strict=True):
        assert GEOD.inv(lon, lat, wlon, wlat)[2] < 0.05
    e, n = TO_GK.transform(*zip(*want, strict=True))
    assert np.hypot(np.asarray(p.metric.exterior.coords)[:-1, 0] - e,
                    np.asarray(p.metric.exterior.coords)[:-1, 1] - n).max() < 0.05
    # coordinates are written to the millimetre: ~1.6 km of edge x 0.5 mm ~ 1 m²
    assert p.ground_area_m2 == pytest.approx(ground_m2(Polygon(B_LONLAT)), abs=1.0)


def test_gbk_file_with_full_width_commas_and_no_zone_prefix_reads_like_the_utf8_one():
    raw = (FIXTURES / "gbk_no_prefix.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "，" in raw.decode("gbk")
    gbk = read_survey_file(raw, name="gbk.txt").parcels[0]
    utf8 = read_survey_file(FIXTURES / "one_parcel.txt").parcels[0]
    assert gbk.id == utf8.id and gbk.name == utf8.name
    assert gbk.metric.equals_exact(utf8.metric, 1e-6)
    assert gbk.lonlat.equals_exact(utf8.lonlat, 1e-9)


def test_no_zone_prefix_and_no_zone_number_is_refused():
    text = (FIXTURES / "gbk_no_prefix.txt").read_bytes().decode("gbk").replace("带号=38", "")
    found = problems(text)
    assert "zone" in texts(found).lower()


def test_zone_number_and_prefix_must_agree():
    text = (FIXTURES / "one_parcel.txt").read_text("utf-8").replace("带号=38", "带号=39")
    assert "39" in texts(problems(text)) and "38" in texts(problems(text))


def test_six_degree_zone_is_read_with_its_central_meridian():
    # 6-degree zone 19 has CM 111E, the same as 3-degree zone 37
    t = Transformer.from_crs("EPSG:4326", "EPSG:4546", always_xy=True)  # CGCS2000 CM 111E
    e, n = t.transform(111.5, 35.0)
    pts = [(e, n), (e + 100, n), (e + 100, n + 100), (e, n + 100), (e, n)]
    text = HEADER.replace("几度分带=3", "几度分带=6").format(zone="带号=19\n") + (
        "5,1.0000,A1,六度带地块,面,,,,@\n"
        + "\n".join(f"J{i},1,{y:.3f},{19_000_000 + x:.3f}" for i, (x, y) in enumerate(pts)))
    survey = parse_survey_text(text)
    assert (survey.zone, survey.zone_width, survey.central_meridian) == (19, 6, 111)
    lon, lat = survey.parcels[0].lonlat.exterior.coords[0]
    assert (lon, lat) == pytest.approx((111.5, 35.0), abs=1e-8)


# --- Xi'an 80 / Beijing 54 ------------------------------------------------------------------

def test_xian80_is_refused_without_parameters():
    found = problems((FIXTURES / "xian80.txt").read_text("utf-8"))
    assert len(found) == 1
    assert "Xi'an 1980" in texts(found) or "1980" in texts(found)
    assert "parameters" in texts(found)


def test_xian80_with_towgs84_lands_where_it_was_surveyed():
    survey = read_survey_file(FIXTURES / "xian80.txt", towgs84=XIAN_TOWGS84)
    p = survey.parcels[0]
    assert survey.datum == "xian80" and p.metric_crs == "EPSG:4547"
    lon, lat = p.lonlat.centroid.x, p.lonlat.centroid.y
    assert GEOD.inv(lon, lat, 113.2, 35.2)[2] < 0.05
    assert p.ground_area_m2 == pytest.approx(40_000.0, rel=1e-3)
    # the same coordinates read as CGCS2000 land tens of metres away
    as_2000 = (FIXTURES / "xian80.txt").read_text("utf-8").replace("80国家大地坐标系",
                                                                   "2000国家大地坐标系")
    moved = parse_survey_text(as_2000).parcels[0].lonlat.centroid
    assert GEOD.inv(moved.x, moved.y, 113.2, 35.2)[2] > 10


def test_beijing54_is_refused_and_bad_parameter_count_too():
    text = (FIXTURES / "xian80.txt").read_text("utf-8").replace("80国家大地坐标系", "54北京坐标系")
    assert "1954" in texts(problems(text))
    assert "3 or 7" in texts(problems(text, towgs84=(1.0, 2.0)))


# --- Validation ---------------------------------------------------------------------------

def test_swapped_x_and_y_names_the_parcel_and_point():
    text = survey_text([("5,4.0000,P1,甲地块,面,,,,@", [])])
    sq = square_gk(113.2, 35.2, 200)
    lines = [f"J{i + 1},1,{38_000_000 + e:.3f},{n:.3f}" for i, (e, n) in enumerate(sq)]
    text += "\n".join(lines) + "\n"
    found = problems(text)
    assert len(found) == 1
    p = found[0]
    assert p.id == "P1" and p.row == text.splitlines().index(lines[0]) + 1
    assert "J1" in english(p.message) and "P1" in english(p.message)
    assert "swapped" in english(p.message)


def test_self_intersecting_bowtie_names_the_crossing_edges_points():
    e, n = TO_GK.transform(113.2, 35.2)
    bowtie = [(e, n), (e + 200, n + 200), (e + 200, n), (e, n + 200)]
    found = problems(survey_text([("5,4.0000,P2,乙地块,面,,,,@", ring(bowtie))]))
    assert len(found) == 1
    msg = english(found[0].message)
    assert "intersects itself" in msg and "P2" in msg
    for point in ("J1", "J2", "J3", "J4"):
        assert point in msg
    assert f"X={n + 100:.3f}" in msg


def test_fewer_than_three_points():
    e, n = TO_GK.transform(113.2, 35.2)
    found = problems(survey_text([("3,1.0000,P3,丙地块,面,,,,@",
                                   ring([(e, n), (e + 100, n)]))]))
    msg = texts(found)
    assert "P3" in msg and "J1" in msg and "at least 3" in msg


def test_open_ring_is_closed():
    sq = square_gk(113.2, 35.2, 200)
    pts = ring(sq)[:-1]  # no repeated first point
    survey = parse_survey_text(survey_text([("4,4.0000,P4,丁地块,面,,,,@", pts)]))
    assert survey.parcels[0].metric.area == pytest.approx(40_000.0, abs=0.01)
    assert survey.warnings == ()


def test_non_numeric_value_names_the_line_and_every_problem_is_reported():
    sq = square_gk(113.2, 35.2, 200)
    text = survey_text([("5,4.0000,P5,戊地块,面,,,,@", ring(sq)),
                        ("5,4.0000,P6,己地块,面,,,,@", ring(square_gk(113.21, 35.2, 200)))])
    lines = text.splitlines()
    j2 = lines.index(next(x for x in lines if x.startswith("J2,")))  # P5, J2
    j3 = [i for i, x in enumerate(lines) if x.startswith("J3,")][1]  # P6, J3
    lines[j2] = lines[j2].replace(lines[j2].split(",")[2], "3897l00.5")  # l for 1
    lines[j3] = lines[j3].replace(",1,", ",一,")
    found = problems("\n".join(lines))
    rows = sorted(p.row for p in found)
    assert rows == [j2 + 1, j3 + 1]
    msg = texts(found)
    assert "3897l00.5" in msg and "P5" in msg and "J2" in msg and f"Line {j2 + 1}:" in msg
    assert "ring number" in msg
    assert "P6" in msg and "J3" in msg


def test_hole_outside_its_outer_ring():
    outer = square_gk(113.2, 35.2, 200)
    hole = square_gk(113.2, 35.2 + 0.002, 50)  # ~220 m north: outside
    found = problems(survey_text([("10,4.0000,P7,庚地块,面,,,,@",
                                   ring(outer) + ring(hole, 2, 5))]))
    msg = texts(found)
    assert "P7" in msg and "J5" in msg and "inner" in msg.lower()


def test_points_outside_their_zone_are_caught():
    # surveyed at 110.5E (zone 37) but computed in zone 38: 3.5 degrees west of CM 114E
    sq = square_gk(110.5, 35.2, 200)
    found = problems(survey_text([("5,4.0000,P8,辛地块,面,,,,@", ring(sq))]))
    msg = texts(found)
    assert "P8" in msg and "J1" in msg and "outside zone 38" in msg


def test_parcel_far_from_the_others_is_refused():
    text = survey_text([("5,4.0000,P9,近地块,面,,,,@", ring(square_gk(113.2, 35.2, 200))),
                        ("5,4.0000,P10,远地块,面,,,,@", ring(square_gk(113.2, 37.0, 200)))])
    found = problems(text)
    assert {p.id for p in found} == {"P9", "P10"}


def test_declared_area_off_by_more_than_one_percent_is_a_warning():
    sq = square_gk(113.2, 35.2, 200)
    survey = parse_survey_text(survey_text([("5,4.1000,P11,壬地块,面,,,,@", ring(sq)),
                                            ("5,4.0200,P12,癸地块,面,,,,@",
                                             ring(square_gk(113.21, 35.2, 200)))]))
    assert len(survey.parcels) == 2
    (w,) = survey.warnings
    assert w.id == "P11" and "4.1" in english(w.message)


def test_messages_have_english_translations():
    found = problems(survey_text([("5,4.0000,P13,地块,面,,,,@",
                                   [("J1", 1, 1.0, 2.0)])]))
    for p in found:
        assert english(p.message) != str.__str__(p.message)


def test_fixture_line_ends_are_crlf_and_blank_lines_and_spaces_are_read():
    raw = (FIXTURES / "two_parcels_hole.txt").read_bytes()
    assert b"\r\n" in raw and b"\r\n\r\n" in raw and b" , " in raw
    assert len(read_survey_file(raw).parcels) == 2


def test_wrong_point_count_in_the_header_is_a_warning():
    sq = square_gk(113.2, 35.2, 200)
    survey = parse_survey_text(survey_text([("7,4.0000,P14,地块,面,,,,@", ring(sq))]))
    (w,) = survey.warnings
    assert w.id == "P14" and "declares 7" in english(w.message)
    assert "has 5" in english(w.message)


def test_a_line_parcel_is_refused():
    sq = square_gk(113.2, 35.2, 200)
    msg = texts(problems(survey_text([("5,4.0000,P15,地块,线,,,,@", ring(sq))])))
    assert "P15" in msg and "only polygons" in msg


def test_more_parcels_than_the_limit_is_refused_at_once():
    text = HEADER.format(zone="带号=38\n") + "".join(
        f"4,1.0,P{i},地块,面,,,,@\n" for i in range(MAX_PARCELS + 1))
    with pytest.raises(InvalidInput) as info:
        parse_survey_text(text)
    assert not isinstance(info.value, ValidationFailed)
    assert "10,000" in english(info.value.message)


# --- Control characters and ids --------------------------------------------------------------

def test_control_characters_are_cleaned_and_an_id_holding_one_is_refused():
    sq = square_gk(113.2, 35.2, 200)
    text = survey_text([("5,4.0,JZ-1,一号\u0007地块,面,I49\u001b,工业\u0085用地,0601,@", ring(sq))])
    text = text.replace("J2,", "J2\u0007,").replace("格式版本号=1.01版本", "格式版本号=1.01\u0007版本")
    survey = parse_survey_text(text)
    (p,) = survey.parcels
    assert (p.id, p.name, p.sheet, p.use) == ("JZ-1", "一号地块", "I49", "工业用地")
    assert survey.attributes["格式版本号"] == "1.01版本"
    found = problems(text.replace("JZ-1", "JZ\u0007-1").replace("J3,", "J3\ud800,"))
    msg = texts(found)
    assert "control" in msg and "U+0007" in msg
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]",
                         msg + "".join(str(p.id) + str(p.value) for p in found))


def test_an_id_longer_than_100_characters_is_refused_not_cut():
    sq = square_gk(113.2, 35.2, 200)
    long_id = "JZ-" + "9" * 100
    msg = texts(problems(survey_text([(f"5,4.0,{long_id},一号,面,,,,@", ring(sq))])))
    assert "103 characters" in msg


@pytest.mark.parametrize("name, datum", [
    ("2000国家大地坐标系", "cgcs2000"), ("CGCS2000", "cgcs2000"), ("CGCS 2000", "cgcs2000"),
    ("国家2000坐标系", "cgcs2000"), ("China Geodetic Coordinate System 2000", "cgcs2000"),
    ("1980西安坐标系", "xian80"), ("西安80", "xian80"), ("80国家大地坐标系", "xian80"),
    ("Xian 1980", "xian80"), ("Xi'an 80", "xian80"), ("1980西安坐标系(2000年平差)", "xian80"),
    ("西安2000", "xian80"), ("1954北京坐标系", "beijing54"), ("北京54", "beijing54"),
    ("新北京54坐标系", "beijing54"), ("BJ54", "beijing54"), ("Beijing 1954", "beijing54"),
    ("WGS84", None), ("地方坐标系", None),
])
def test_datum_names_are_matched_as_names_not_substrings(name, datum):
    assert datum_of_text(name) == datum


def test_xian80_adjusted_in_2000_is_not_read_as_cgcs2000():
    text = (FIXTURES / "xian80.txt").read_text("utf-8").replace(
        "80国家大地坐标系", "1980西安坐标系(2000年平差)")
    msg = texts(problems(text))
    assert "Xi'an 1980" in msg and "seven transformation parameters" in msg
    assert parse_survey_text(text, towgs84=XIAN_TOWGS84).datum == "xian80"
