"""Parcel input in every form: one square known exactly in CGCS2000 GK zone 38 (EPSG:4547),
written in every format and coordinate system, reads back as the same lon/lat polygon within
5 cm; multipart parcels and holes; every geometry problem named by parcel and point."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, mapping

from geoapp.domain.errors import InvalidInput, Problem, ValidationFailed
from geoapp.spatial.crs import wgs84_to_bd09, wgs84_to_gcj02
from geoapp.storage.parcel_in import (
    InputParcel,
    ParcelSet,
    parcels_from_geojson,
    parcels_from_text,
    read_parcel_file,
)
from tests.catalogue import english

from webutil import login

FIXTURES = Path(__file__).parent / "fixtures"
GEOD = Geod(ellps="GRS80")
TO_LONLAT = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
#: The 200 m square of survey/one_parcel.txt: EPSG:4547 easting/northing (no zone number).
E0, N0 = 427046.805, 3896974.574
SQUARE_GK = [(E0, N0), (E0 + 200, N0), (E0 + 200, N0 + 200), (E0, N0 + 200)]
SQUARE_LL = [TO_LONLAT.transform(x, y) for x, y in SQUARE_GK]
HOLE_GK = [(E0 + 75, N0 + 75), (E0 + 125, N0 + 75), (E0 + 125, N0 + 125), (E0 + 75, N0 + 125)]
TOLERANCE_M = 0.05


def shifted(points, de=0.0, dn=0.0):
    return [(x + de, y + dn) for x, y in points]


def lonlat(points_gk):
    return [TO_LONLAT.transform(x, y) for x, y in points_gk]


def ground_m2(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def assert_same_ring(got, want, tol=TOLERANCE_M):
    """Every expected vertex has a vertex of ``got`` within ``tol`` m on the ground, and the
    rings have as many vertices (closing point left out)."""
    got = np.asarray(got)[:-1] if np.allclose(np.asarray(got)[0], np.asarray(got)[-1]) \
        else np.asarray(got)
    assert len(got) == len(want)
    for lon, lat in want:
        d = GEOD.inv(np.full(len(got), lon), np.full(len(got), lat), got[:, 0], got[:, 1])[2]
        assert d.min() < tol, (lon, lat, d.min())


def assert_square(p: InputParcel, *, hole: bool = False):
    assert isinstance(p.lonlat, Polygon) and p.lonlat.is_valid
    assert_same_ring(p.lonlat.exterior.coords, SQUARE_LL)
    assert p.lonlat.exterior.is_ccw
    if hole:
        (inner,) = p.lonlat.interiors
        assert_same_ring(inner.coords, lonlat(HOLE_GK))
        assert ground_m2(p.lonlat) == pytest.approx(200 * 200 - 50 * 50, rel=1e-3)
    else:
        assert not p.lonlat.interiors
        assert ground_m2(p.lonlat) == pytest.approx(40_000, rel=1e-3)


def problems(call, *args, **kw) -> list[Problem]:
    with pytest.raises(ValidationFailed) as info:
        call(*args, **kw)
    assert all(isinstance(p, Problem) for p in info.value.details)
    return info.value.details


def texts(found) -> str:
    return "\n".join(english(p.message) for p in found)


def refused(call, *args, **kw) -> str:
    with pytest.raises(InvalidInput) as info:
        call(*args, **kw)
    assert not isinstance(info.value, ValidationFailed)
    return english(info.value.message)


# --- Writers ---------------------------------------------------------------------------------

def feature(rings_ll, props=None, fid=None):
    f = {"type": "Feature", "properties": props or {},
         "geometry": {"type": "Polygon",
                      "coordinates": [[list(p) for p in r] + [list(r[0])] for r in rings_ll]}}
    if fid is not None:
        f["id"] = fid
    return f


def collection(*features, crs=None):
    doc = {"type": "FeatureCollection", "features": list(features)}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def kml(placemarks: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">'
            f"<Document>{placemarks}</Document></kml>").encode()


def kml_polygon(*rings_ll) -> str:
    def coords(r):
        return " ".join(f"{x:.10f},{y:.10f},0" for x, y in [*r, r[0]])
    inner = "".join(f"<innerBoundaryIs><LinearRing><coordinates>{coords(r)}</coordinates>"
                    "</LinearRing></innerBoundaryIs>" for r in rings_ll[1:])
    return (f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{coords(rings_ll[0])}"
            f"</coordinates></LinearRing></outerBoundaryIs>{inner}</Polygon>")


def zipped(entries: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def dxf(*entities: str) -> bytes:
    return ("0\nSECTION\n2\nENTITIES\n" + "".join(entities) + "0\nENDSEC\n0\nEOF\n").encode()


def lwpolyline(points, closed=True, layer="红线") -> str:
    s = f"0\nLWPOLYLINE\n8\n{layer}\n90\n{len(points)}\n70\n{1 if closed else 0}\n"
    return s + "".join(f"10\n{x:.3f}\n20\n{y:.3f}\n" for x, y in points)


def polyline(points) -> str:
    s = "0\nPOLYLINE\n8\n0\n66\n1\n70\n1\n10\n0\n20\n0\n30\n0\n"
    s += "".join(f"0\nVERTEX\n8\n0\n10\n{x:.3f}\n20\n{y:.3f}\n30\n0\n" for x, y in points)
    return s + "0\nSEQEND\n"


def gdal_file(tmp_path: Path, driver: str, name: str, crs: str | None, geoms,
              props=None) -> dict[str, bytes]:
    folder = tmp_path / f"out-{driver.replace(' ', '')}-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    gdf = gpd.GeoDataFrame(props or {"地块编号": [f"P{i + 1}" for i in range(len(geoms))]},
                           geometry=list(geoms), crs=crs)
    # a Shapefile as Chinese desktop GIS writes it: GBK attributes (field names up to 10 bytes)
    gdf.to_file(folder / name, driver=driver, **({"encoding": "GBK"} if driver ==
                                                 "ESRI Shapefile" else {}))
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# --- Every format, every coordinate system: the same square ---------------------------------

def test_survey_file_with_and_without_zone_prefix():
    for name in ("one_parcel.txt", "gbk_no_prefix.txt"):
        ps = read_parcel_file(FIXTURES / "survey" / name, filename=name)
        assert (ps.format, ps.crs) == ("survey", "CGCS2000 3° Gauss-Krüger zone 38 (EPSG:4547)")
        (p,) = ps.parcels
        assert (p.id, p.name, p.feature) == ("JZ-2024-001", "焦作市示范区工业用地一号地块", 1)
        assert p.declared_area_m2 == pytest.approx(40_000)
        assert p.attributes == {"地块用途": "工业用地", "地类编码": "0601", "图幅号": "I49G066037"}
        assert_square(p)


def test_survey_file_with_hole_and_two_parcels_keeps_ids_and_order():
    ps = read_parcel_file((FIXTURES / "survey" / "two_parcels_hole.txt").read_bytes(),
                          filename="批复坐标.txt")
    assert [(p.id, p.feature) for p in ps.parcels] == [("JZ-2024-002", 1), ("JZ-2024-003", 2)]
    assert len(ps.parcels[1].lonlat.interiors) == 1


def test_geojson_wgs84():
    ps = read_parcel_file(collection(feature([SQUARE_LL], {"地块编号": "A1"})),
                          filename="a.geojson")
    assert (ps.format, ps.crs, ps.warnings) == ("geojson", "WGS84 (EPSG:4326)", ())
    assert_square(ps.parcels[0])
    assert ps.parcels[0].id == "A1"


def test_geojson_gcj02_converted_with_crs_py():
    gcj = [wgs84_to_gcj02(x, y) for x, y in SQUARE_LL]
    raw = parcels_from_geojson({"type": "Polygon", "coordinates": [[*map(list, gcj), list(gcj[0])]]})
    d = GEOD.inv(*raw.parcels[0].lonlat.exterior.coords[0], *SQUARE_LL[0])[2]
    assert d > 100  # unconverted GCJ-02 is hundreds of metres off
    ps = read_parcel_file(collection(feature([gcj])), filename="amap.json", crs="gcj02")
    assert ps.crs == "GCJ-02"
    assert_square(ps.parcels[0])


def test_amap_export_declaring_wgs84_is_read_as_gcj02_when_told():
    gcj = [wgs84_to_gcj02(x, y) for x, y in SQUARE_LL]
    data = collection(feature([gcj]), crs="urn:ogc:def:crs:OGC:1.3:CRS84")
    assert_square(read_parcel_file(data, filename="amap.geojson", crs="GCJ-02").parcels[0])


def test_bd09_pasted():
    bd = [wgs84_to_bd09(x, y) for x, y in SQUARE_LL]
    ps = parcels_from_text("\n".join(f"{x:.10f},{y:.10f}" for x, y in bd), crs="bd09")
    assert ps.crs == "BD-09"
    assert_square(ps.parcels[0])


def test_geojson_declaring_gk_metres():
    ps = read_parcel_file(collection(feature([SQUARE_GK]), crs="EPSG:4547"), filename="gk.json")
    assert ps.crs == "CGCS2000 3° Gauss-Krüger zone 38 (EPSG:4547)"
    assert_square(ps.parcels[0])


def test_geojson_metres_with_zone_number_and_no_crs():
    ps = read_parcel_file(collection(feature([shifted(SQUARE_GK, 38e6)])), filename="gk.json")
    assert ps.crs == "CGCS2000 3° Gauss-Krüger zone 38 (EPSG:4547)"
    assert_square(ps.parcels[0])


def test_kml_and_kmz():
    doc = kml(f"<Folder><Placemark><name>一号</name>{kml_polygon(SQUARE_LL)}</Placemark></Folder>")
    for data, name, fmt in ((doc, "a.kml", "kml"),
                            (zipped({"doc.kml": doc, "files/icon.png": b"\x89PNG"}), "a.kmz",
                             "kmz")):
        ps = read_parcel_file(data, filename=name)
        assert (ps.format, ps.crs) == (fmt, "WGS84 (EPSG:4326)")
        assert (ps.parcels[0].id, ps.parcels[0].name) == ("1", "一号")
        assert_square(ps.parcels[0])


def test_kml_nested_folders_chinese_data_names_multigeometry_and_hole():
    ps = read_parcel_file(FIXTURES / "parcels" / "folders.kml", filename="folders.kml")
    one, two = ps.parcels
    assert (one.id, one.name, one.feature) == ("JZ-2024-001", "示范区一号地块", 1)
    assert one.attributes["地块用途"] == "工业用地"
    assert one.declared_area_m2 == pytest.approx(40_000)
    assert_square(one)
    assert (two.id, two.feature) == ("JZ-2024-002", 2)
    assert_same_ring(two.lonlat.exterior.coords, lonlat(shifted(SQUARE_GK, 400)))
    assert_same_ring(two.lonlat.interiors[0].coords, lonlat(shifted(HOLE_GK, 400)))
    warnings = texts(ps.warnings)
    assert "network link" in warnings and "1 point(s)" in warnings


def test_geopackage_in_epsg_4547(tmp_path):
    files = gdal_file(tmp_path, "GPKG", "p.gpkg", "EPSG:4547", [Polygon(SQUARE_GK)])
    ps = read_parcel_file(files["p.gpkg"], filename="红线.gpkg")
    assert (ps.format, ps.crs) == ("gpkg", "CGCS2000 3° Gauss-Krüger zone 38 (EPSG:4547)")
    assert ps.parcels[0].id == "P1"
    assert_square(ps.parcels[0])


def test_zipped_shapefile_with_prj_and_without(tmp_path):
    files = gdal_file(tmp_path, "ESRI Shapefile", "p.shp", "EPSG:4547", [Polygon(SQUARE_GK)],
                      {"地块编号": ["S1"], "地块名称": ["一号"]})
    ps = read_parcel_file(zipped(files), filename="p.zip")
    assert (ps.format, ps.crs) == ("shapefile", "CGCS2000 3° Gauss-Krüger zone 38 (EPSG:4547)")
    assert (ps.parcels[0].id, ps.parcels[0].name) == ("S1", "一号")
    assert_square(ps.parcels[0])
    no_prj = {k: v for k, v in files.items() if not k.endswith((".prj", ".cpg"))}
    assert "EPSG:4547" in refused(read_parcel_file, zipped(no_prj), filename="p.zip")
    ps = read_parcel_file(zipped(no_prj), filename="p.zip", crs="EPSG:4547")
    assert (ps.parcels[0].id, ps.parcels[0].name) == ("S1", "一号")  # GBK found without .cpg
    assert_square(ps.parcels[0])


def test_dxf_with_zone_prefix_needs_no_crs():
    ps = read_parcel_file(dxf(lwpolyline(shifted(SQUARE_GK, 38e6))), filename="红线.dxf")
    assert (ps.format, ps.crs) == ("dxf", "CGCS2000 3° Gauss-Krüger zone 38 (EPSG:4547)")
    assert_square(ps.parcels[0])


def test_dxf_without_zone_prefix_asks_for_the_crs_then_reads():
    data = dxf(lwpolyline(SQUARE_GK))
    message = refused(read_parcel_file, data, filename="a.dxf")
    assert "without a zone number" in message and "EPSG:4547" in message
    assert_square(read_parcel_file(data, filename="a.dxf", crs="EPSG:4547").parcels[0])
    # the prefixed zone-38 system (EPSG:4526) takes eastings written either way
    assert_square(read_parcel_file(data, filename="a.dxf", crs="EPSG:4526").parcels[0])


def test_dxf_polyline_and_hatch_written_by_gdal(tmp_path):
    assert_square(read_parcel_file(dxf(polyline(shifted(SQUARE_GK, 38e6))),
                                   filename="a.dxf").parcels[0])
    with pytest.warns(UserWarning, match="crs"):  # DXF has no CRS to write
        files = gdal_file(tmp_path, "DXF", "h.dxf", None, [Polygon(shifted(SQUARE_GK, 38e6))],
                          {"Layer": ["红线"]})
    assert b"HATCH" in files["h.dxf"]
    assert_square(read_parcel_file(files["h.dxf"], filename="h.dxf").parcels[0])


def test_dxf_drawing_as_cad_saves_it():
    """GBK code page, a hatch over its outline, a label inside, a road line, a paper-space
    frame: one parcel, named by its label, and a warning for what was not read."""
    ps = read_parcel_file(FIXTURES / "parcels" / "red_line_gbk.dxf", filename="红线.dxf")
    (p,) = ps.parcels
    assert (p.id, p.name, p.feature) == ("1", "JZ-2024-001", 1)
    assert p.attributes == {"Layer": "用地红线", "EntityHandle": "2A0"}
    assert_square(p)
    warnings = texts(ps.warnings)
    assert "counted once" in warnings and "1 line(s)" in warnings


@pytest.mark.parametrize("text", [
    "\n".join(f"{x:.10f},{y:.10f}" for x, y in SQUARE_LL),
    "经度\t纬度\n" + "\n".join(f"{x:.10f}\t{y:.10f}" for x, y in SQUARE_LL),
    "\n".join(f"{x:.10f}，{y:.10f}" for x, y in SQUARE_LL),  # full-width commas
    "\n".join(f"  {x:.10f}   {y:.10f} 0" for x, y in SQUARE_LL),  # lon lat altitude
])
def test_pasted_lon_lat(text):
    ps = parcels_from_text(text)
    assert (ps.format, ps.crs) == ("text", "WGS84 (EPSG:4326)")
    (p,) = ps.parcels
    assert (p.id, p.name, p.feature, p.attributes) == ("1", None, 1, {})
    assert_square(p)
    assert "WGS84" in texts(ps.warnings)  # read as WGS84 because nothing was named


def dms(value: float) -> str:
    d = int(value)
    m = int((value - d) * 60)
    s = ((value - d) * 60 - m) * 60
    return f"{d}°{m}′{s:.5f}″"


def test_pasted_degrees_minutes_seconds():
    text = "\n".join(f"东经{dms(x)} 北纬{dms(y)}" for x, y in SQUARE_LL)
    for crs in ("wgs84", "dms"):
        ps = parcels_from_text(text, crs=crs)
        assert ps.crs == "WGS84 (EPSG:4326)" and ps.warnings == ()
        assert_square(ps.parcels[0])
    text = "\n".join(f"{dms(x)}E,{dms(y)}N".replace("′", "'").replace("″", '"')
                     for x, y in SQUARE_LL)
    assert_square(parcels_from_text(text).parcels[0])


@pytest.mark.parametrize("text, crs", [
    ("\n".join(f"{n:.3f},{38e6 + e:.3f}" for e, n in SQUARE_GK), None),  # X,Y survey order
    ("\n".join(f"{n:.3f}, {e:.3f}" for e, n in SQUARE_GK), "EPSG:4547"),
    ("\n".join(f"{e:.3f}\t{n:.3f}" for e, n in SQUARE_GK), "EPSG:4547"),  # GIS order
    ("点号,圈号,X,Y\n" + "\n".join(f"J{i + 1},1,{n:.3f},{38e6 + e:.3f}"
                                    for i, (e, n) in enumerate(SQUARE_GK)), None),
])
def test_pasted_gauss_kruger(text, crs):
    ps = parcels_from_text(text, crs=crs)
    assert ps.crs == "CGCS2000 3° Gauss-Krüger zone 38 (EPSG:4547)" and ps.warnings == ()
    assert_square(ps.parcels[0])


def test_pasted_survey_file_is_read_as_one():
    text = (FIXTURES / "survey" / "two_parcels_hole.txt").read_text("utf-8")
    ps = parcels_from_text(text)
    assert ps.format == "survey" and [p.id for p in ps.parcels] == ["JZ-2024-002", "JZ-2024-003"]


def test_drawn_polygon_feature_and_geometry():
    geometry = {"type": "Polygon", "coordinates": [[*map(list, SQUARE_LL), list(SQUARE_LL[0])]]}
    for obj in (geometry, {"type": "Feature", "geometry": geometry, "properties": None},
                json.dumps(geometry)):
        ps = parcels_from_geojson(obj, kind="drawn")
        assert (ps.format, ps.crs, ps.warnings) == ("drawn", "WGS84 (EPSG:4326)", ())
        assert isinstance(ps, ParcelSet) and ps.parcels[0].id == "1"
        assert_square(ps.parcels[0])


def test_feature_id_member_and_id_property():
    data = collection(feature([SQUARE_LL], fid=7),
                      feature([lonlat(shifted(SQUARE_GK, 400))], {"id": 12.0, "name": "二"}))
    ps = read_parcel_file(data, filename="a.geojson")
    assert [(p.id, p.name, p.feature) for p in ps.parcels] == [("7", None, 1), ("12", "二", 2)]


# --- Multipart parcels and holes ---------------------------------------------------------------

def test_multipolygon_and_hole():
    far = lonlat(shifted(SQUARE_GK, 400))
    doc = {"type": "MultiPolygon", "coordinates": [
        [[*map(list, SQUARE_LL), list(SQUARE_LL[0])],
         [*map(list, lonlat(HOLE_GK)), list(lonlat(HOLE_GK)[0])]],
        [[*map(list, far), list(far[0])]]]}
    (p,) = parcels_from_geojson(doc).parcels
    assert isinstance(p.lonlat, MultiPolygon) and len(p.lonlat.geoms) == 2
    assert ground_m2(p.lonlat) == pytest.approx(2 * 40_000 - 2_500, rel=1e-3)


def test_pasted_blank_line_separates_parcels_and_ring_numbers_make_holes():
    outer = "\n".join(f"{x:.10f},{y:.10f}" for x, y in SQUARE_LL)
    inner = "\n".join(f"{x:.10f},{y:.10f}" for x, y in lonlat(HOLE_GK))
    ps = parcels_from_text(f"{outer}\n\n{inner}")
    one, two = ps.parcels
    assert [(p.id, p.feature) for p in ps.parcels] == [("1", 1), ("2", 2)]
    assert_square(one)
    assert_same_ring(two.lonlat.exterior.coords, lonlat(HOLE_GK))
    assert ground_m2(two.lonlat) == pytest.approx(2_500, rel=1e-3)
    # the second block lies in the first: said, in case a hole was meant
    assert "parcel no. 2 lies inside parcel no. 1" in texts(ps.warnings).lower()
    assert "ring number" in texts(ps.warnings)
    lines = [f"J{i + 1},1,{n:.3f},{38e6 + e:.3f}" for i, (e, n) in enumerate(SQUARE_GK)]
    lines += [f"K{i + 1},2,{n:.3f},{38e6 + e:.3f}" for i, (e, n) in enumerate(HOLE_GK)]
    (p,) = parcels_from_text("\n".join(lines)).parcels
    assert_square(p, hole=True)
    # a blank line between a parcel's outer ring and its hole does not split them
    (p,) = parcels_from_text("\n".join(lines[:4]) + "\n\n" + "\n".join(lines[4:])).parcels
    assert_square(p, hole=True)


def test_two_pasted_parcels_from_the_page_are_two_parcels():
    """Two blocks side by side: two parcels with their own areas, nothing subtracted."""
    text = ("113.2,35.2\n113.21,35.2\n113.21,35.21\n113.2,35.21\n\n"
            "113.212,35.2\n113.214,35.2\n113.214,35.202\n113.212,35.202\n")
    ps = parcels_from_text(text)
    assert [p.id for p in ps.parcels] == ["1", "2"]
    one = Polygon([(113.2, 35.2), (113.21, 35.2), (113.21, 35.21), (113.2, 35.21)])
    assert ground_m2(ps.parcels[0].lonlat) == pytest.approx(ground_m2(one), rel=1e-6)
    assert not ps.parcels[0].lonlat.interiors
    # a parcel in the middle of another stays a parcel of its own (not a hole)
    text = text.replace("113.212,35.2\n113.214,35.2\n113.214,35.202\n113.212,35.202",
                        "113.202,35.202\n113.204,35.202\n113.204,35.204\n113.202,35.204")
    ps = parcels_from_text(text)
    assert len(ps.parcels) == 2 and not ps.parcels[0].lonlat.interiors


def test_pasted_parcel_problems_name_the_parcel_by_its_block():
    text = "\n".join(f"{x:.10f},{y:.10f}" for x, y in SQUARE_LL) + "\n\n113.3,35.3\n113.31,35.3\n"
    (p,) = problems(parcels_from_text, text)
    assert p.feature == 2 and "parcel no. 2" in english(p.message).lower() and p.row == 6


def test_pasted_ring_number_two_without_an_outer_ring_is_refused():
    lines = [f"K{i + 1},2,{n:.3f},{38e6 + e:.3f}" for i, (e, n) in enumerate(HOLE_GK)]
    (p,) = problems(parcels_from_text, "\n".join(lines))
    assert "ring number 1" in english(p.message)


def test_pasted_amap_one_line_polygon():
    one_line = ";".join(f"{x:.10f},{y:.10f}" for x, y in SQUARE_LL)
    for text in (one_line, one_line + ";", "；".join(f"{x:.10f}，{y:.10f}" for x, y in SQUARE_LL)):
        (p,) = parcels_from_text(text).parcels
        assert_square(p)
    gcj = ";".join(f"{x:.10f},{y:.10f}" for x, y in (wgs84_to_gcj02(*q) for q in SQUARE_LL))
    two = parcels_from_text(f"{gcj}\n\n{gcj}", crs="gcj02").parcels
    assert len(two) == 2
    assert_square(two[0])


@pytest.mark.parametrize("header", ["", "序号,经度,纬度\n", "点号 经度 纬度\n"])
def test_pasted_point_number_longitude_latitude(header):
    """序号,经度,纬度: the first number is the point's number, not the longitude, even when a
    number such as 35 could be a latitude."""
    first = 34  # 34,113.2,35.2 could also read as lat 34 / lon 113.2 / altitude 35.2
    text = header + "\n".join(f"{first + i},{x:.10f},{y:.10f}" for i, (x, y) in enumerate(SQUARE_LL))
    (p,) = parcels_from_text(text).parcels
    assert_square(p)
    pts = [(x + 0.0001 * i, y) for i, (x, y) in enumerate(SQUARE_LL)]
    bow = [pts[0], pts[2], pts[1], pts[3]]
    text = header + "\n".join(f"{first + i},{x:.10f},{y:.10f}" for i, (x, y) in enumerate(bow))
    (problem,) = problems(parcels_from_text, text)
    assert "points 34, 35, 36, 37" in english(problem.message)


def test_pasted_lon_lat_altitude_is_still_read():
    text = "经度,纬度,高程\n" + "\n".join(f"{x:.10f},{y:.10f},35" for x, y in SQUARE_LL)
    assert_square(parcels_from_text(text).parcels[0])


def test_pasted_comment_lines_do_not_split_a_ring():
    lines = [f"{x:.10f},{y:.10f}" for x, y in SQUARE_LL]
    text = "# 用地红线\n" + "\n".join(lines[:2]) + "\n# 北侧\n" + "\n".join(lines[2:])
    (p,) = parcels_from_text(text).parcels
    assert_square(p)


def test_parts_sharing_an_edge_are_one_polygon():
    right = lonlat(shifted(SQUARE_GK, 200))
    doc = {"type": "MultiPolygon", "coordinates": [[[*map(list, SQUARE_LL), list(SQUARE_LL[0])]],
                                                   [[*map(list, right), list(right[0])]]]}
    (p,) = parcels_from_geojson(doc).parcels
    assert p.lonlat.is_valid
    assert ground_m2(p.lonlat) == pytest.approx(80_000, rel=1e-3)


def test_open_ring_is_closed_silently():
    doc = {"type": "Polygon", "coordinates": [[list(p) for p in SQUARE_LL]]}  # not closed
    assert_square(parcels_from_geojson(doc).parcels[0])


def test_declared_area_property_with_its_unit_only():
    props = [({"面积(公顷)": 4}, 40_000.0), ({"area_m2": "40000"}, 40_000.0),
             ({"面积_亩": 60}, 40_000.0), ({"面积": 4}, None), ({"Shape_Area": 4}, None)]
    for prop, want in props:
        p = parcels_from_geojson(json.loads(collection(feature([SQUARE_LL], prop)))).parcels[0]
        assert p.declared_area_m2 == (pytest.approx(want) if want else None), prop


def test_declared_area_far_off_is_a_warning_naming_the_parcel():
    ps = parcels_from_geojson(json.loads(collection(
        feature([SQUARE_LL], {"地块编号": "A9", "地块面积(公顷)": 5}))))
    (w,) = ps.warnings
    assert w.id == "A9" and w.feature == 1 and "A9" in english(w.message)
    assert "declared area 5 ha" in english(w.message)


# --- Geometry problems: parcel and point named ----------------------------------------------

def test_self_intersection_names_parcel_vertices_and_place():
    bow = [SQUARE_LL[0], SQUARE_LL[2], SQUARE_LL[1], SQUARE_LL[3]]
    (p,) = problems(read_parcel_file, collection(feature([bow], {"地块编号": "B1"})),
                    filename="b.geojson")
    msg = english(p.message)
    assert (p.id, p.feature, p.file) == ("B1", 1, "b.geojson")
    assert "Parcel B1" in msg and "intersects itself" in msg and "vertices 1, 2, 3, 4" in msg
    centre = TO_LONLAT.transform(E0 + 100, N0 + 100)
    assert f"{centre[0]:.4f}" in msg and f"{centre[1]:.4f}" in msg


def test_self_intersection_in_pasted_survey_points_names_the_points():
    pts = [SQUARE_GK[0], SQUARE_GK[2], SQUARE_GK[1], SQUARE_GK[3]]
    text = "\n".join(f"J{i + 1},1,{n:.3f},{38e6 + e:.3f}" for i, (e, n) in enumerate(pts))
    (p,) = problems(parcels_from_text, text)
    msg = english(p.message)
    assert "points J1, J2, J3, J4" in msg and p.row == 1


def test_fewer_than_three_points():
    ring = [SQUARE_LL[0], SQUARE_LL[1], SQUARE_LL[0]]
    (p,) = problems(parcels_from_geojson, json.loads(collection(
        feature([SQUARE_LL], {"编号": "OK"}), feature([ring], {"编号": "C3"}))))
    assert p.id == "C3" and p.feature == 2
    assert "at least 3" in english(p.message) and "vertex 1" in english(p.message)


def test_hole_outside_its_outer_ring():
    hole = lonlat(shifted(HOLE_GK, 0, 300))
    (p,) = problems(parcels_from_geojson, json.loads(collection(
        feature([SQUARE_LL, hole], {"地块编号": "H1"}))))
    msg = english(p.message)
    assert "H1" in msg and "inner ring 1" in msg and "vertex 1" in msg


def test_overlapping_parts_are_refused():
    over = lonlat(shifted(SQUARE_GK, 100))
    doc = {"type": "MultiPolygon", "coordinates": [[[*map(list, SQUARE_LL), list(SQUARE_LL[0])]],
                                                   [[*map(list, over), list(over[0])]]]}
    (p,) = problems(parcels_from_geojson, doc)
    assert "part 1 and part 2 overlap by about 20,000" in english(p.message)


def test_lon_lat_swapped_is_named():
    swapped = "\n".join(f"{y:.10f},{x:.10f}" for x, y in SQUARE_LL)
    (p,) = problems(parcels_from_text, swapped)
    assert "swapped" in english(p.message) and "vertex 1" in english(p.message)
    (p,) = problems(parcels_from_geojson, {"type": "Polygon", "coordinates": [
        [[y, x] for x, y in [*SQUARE_LL, SQUARE_LL[0]]]]})
    assert "swapped" in english(p.message)


def test_x_y_swapped_in_a_drawing_is_named():
    data = dxf(lwpolyline([(n, 38e6 + e) for e, n in SQUARE_GK]))
    assert "swapped" in refused(read_parcel_file, data, filename="a.dxf")
    data = dxf(lwpolyline([(n, e) for e, n in SQUARE_GK]))
    (p,) = problems(read_parcel_file, data, filename="a.dxf", crs="EPSG:4547")
    assert "swapped" in english(p.message)


def test_wrong_zone_is_caught():
    far_west = shifted(SQUARE_GK, 150_000 - E0)  # easting 150 km: 3.9 degrees west of 114E
    text = "\n".join(f"{n:.3f},{38e6 + e:.3f}" for e, n in far_west)
    (p,) = problems(parcels_from_text, text)
    assert "outside zone 38" in english(p.message) and "vertex 1" in english(p.message)


def test_duplicate_ids_are_refused_naming_both():
    data = collection(feature([SQUARE_LL], {"地块编号": "D1"}),
                      feature([lonlat(shifted(SQUARE_GK, 400))], {"地块编号": "D1"}))
    (p,) = problems(read_parcel_file, data, filename="d.geojson")
    assert p.feature == 2 and "D1" in english(p.message) and "parcel no. 1" in english(p.message)


def test_empty_and_zero_area_geometries():
    line = [SQUARE_LL[0], SQUARE_LL[1], lonlat([(E0 + 400, N0)])[0]]
    found = problems(parcels_from_geojson, json.loads(collection(
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": []}},
        feature([line]))))
    msg = texts(found)
    assert "no coordinates" in msg
    assert [p.feature for p in found] == [1, 2]


def test_every_problem_of_a_file_is_reported_at_once():
    bow = [SQUARE_LL[0], SQUARE_LL[2], SQUARE_LL[1], SQUARE_LL[3]]
    few = [SQUARE_LL[0], SQUARE_LL[1]]
    found = problems(read_parcel_file, collection(feature([bow]), feature([SQUARE_LL]),
                                                  feature([few])), filename="x.geojson")
    assert [p.feature for p in found] == [1, 3]


def test_lines_and_points_only_is_refused_and_mixed_is_a_warning():
    line = {"type": "Feature", "properties": {},
            "geometry": {"type": "LineString", "coordinates": [list(p) for p in SQUARE_LL]}}
    point = {"type": "Feature", "properties": {},
             "geometry": {"type": "Point", "coordinates": list(SQUARE_LL[0])}}
    msg = refused(read_parcel_file, collection(line, point), filename="l.geojson")
    assert "no polygons" in msg and "1 point(s), 1 line(s)" in msg
    msg = refused(read_parcel_file, dxf(lwpolyline(SQUARE_GK, closed=False)), filename="l.dxf")
    assert "no polygons" in msg
    ps = read_parcel_file(collection(line, feature([SQUARE_LL]), point), filename="m.geojson")
    assert [p.feature for p in ps.parcels] == [2]
    assert "1 point(s), 1 line(s)" in texts(ps.warnings)


# --- Coordinate systems that contradict or are missing ---------------------------------------

def test_declared_projected_crs_contradicting_the_argument_is_refused():
    data = collection(feature([SQUARE_GK]), crs="EPSG:4547")
    assert "contradicts" in refused(read_parcel_file, data, filename="a.json", crs="EPSG:4546")
    assert "contradicts" in refused(read_parcel_file, data, filename="a.json", crs="gcj02")
    assert_square(read_parcel_file(data, filename="a.json", crs="EPSG:4547").parcels[0])
    kml_doc = kml(f"<Placemark>{kml_polygon(SQUARE_LL)}</Placemark>")
    assert "contradicts" in refused(read_parcel_file, kml_doc, filename="a.kml",
                                    crs="EPSG:4547")


def test_survey_file_with_another_crs_is_refused():
    path = FIXTURES / "survey" / "one_parcel.txt"
    assert "contradicts" in refused(read_parcel_file, path, filename="s.txt", crs="wgs84")
    assert "contradicts" in refused(read_parcel_file, path, filename="s.txt", crs="EPSG:4546")
    assert read_parcel_file(path, filename="s.txt", crs="EPSG:4547").parcels


def test_metres_given_as_degrees_and_degrees_given_as_metres():
    (p,) = problems(parcels_from_text, "\n".join(f"{x:.10f},{y:.10f}" for x, y in SQUARE_LL),
                    crs="EPSG:4547")
    assert "degrees" in english(p.message)
    gcj_metres = "\n".join(f"{e:.3f},{n:.3f}" for e, n in SQUARE_GK)
    assert "not longitude/latitude" in english(problems(parcels_from_text, gcj_metres,
                                                        crs="gcj02")[0].message)


def test_unknown_crs_name_and_dms_for_a_file_are_refused():
    data = collection(feature([SQUARE_LL]))
    refused(read_parcel_file, data, filename="a.json", crs="EPSG:99999999")
    refused(read_parcel_file, data, filename="a.json", crs="mars")
    assert "pasted" in refused(read_parcel_file, data, filename="a.json", crs="dms")


# --- Formats refused clearly ---------------------------------------------------------------

@pytest.mark.parametrize("data, name, words", [
    (b"AC1032\x00\x00binary", "a.dwg", "DWG"),
    (b"\x00\x00\x27\x0a" + b"\x00" * 96, "a.shp", ".shx"),
    (zipped({"readme.txt": b"x"}), "a.zip", "neither a Shapefile"),
    (b"<OGRVRTDataSource><OGRVRTLayer name='x'/></OGRVRTDataSource>", "a.kml", "not KML"),
    (b'{"type": "FeatureCollection", "features": []}', "a.kml", "does not match"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "a.png", "Unsupported"),
    (b"   \n", "a.txt", "empty"),
])
def test_unsupported_or_mismatched_files_are_refused(data, name, words):
    assert words in refused(read_parcel_file, data, filename=name)


def test_text_that_is_no_coordinate_list_names_the_line():
    found = problems(parcels_from_text, f"{SQUARE_LL[0][0]},{SQUARE_LL[0][1]}\nhello world 1\n")
    assert found[0].row == 2 and "Line 2" in english(found[0].message)


def test_numbers_by_position_never_repeat_a_number_the_input_gave():
    data = collection(feature([SQUARE_LL]), feature([lonlat(shifted(SQUARE_GK, 400))],
                                                    {"地块编号": "1", "id": 99, "用途": "仓储"}))
    first, second = read_parcel_file(data, filename="a.geojson").parcels
    assert (first.id, second.id) == ("1-2", "1")
    assert second.attributes == {"id": 99, "用途": "仓储"}  # only the property used is taken


def test_a_point_that_does_not_convert_is_named():
    points = [*SQUARE_GK[:2], (5e7, N0 + 200), SQUARE_GK[3]]  # no easting of any zone
    (p,) = problems(parcels_from_text, "\n".join(f"{e:.3f} {n:.3f}" for e, n in points),
                    crs="EPSG:32649")
    msg = english(p.message)
    assert "vertex 3" in msg and "cannot be converted" in msg and "EPSG:32649" in msg


def test_the_paste_box_says_blank_lines_separate_parcels_and_ring_numbers_make_holes(
        offline_app):
    c = offline_app.test_client()
    login(c, "viewer")
    for lang, words in (("zh", ("空行分隔地块", "圈号 2、3…… 为该地块的内圈")),
                        ("en", ("a blank line between parcels", "rings 2, 3, … are holes"))):
        page = c.get(f"/parcel?lang={lang}").get_data(as_text=True)
        box = page[page.index('id="pc-text"'):]
        box = box[:box.index(">")]
        assert all(w in box for w in words), (lang, box)


# --- Datums: Xi'an 80 / Beijing 54 need parameters in every format ----------------------------

#: The synthetic Xi'an 80 parameters tests/fixtures/survey/xian80.txt was written with.
XIAN_TOWGS84 = (-45.0, 120.0, 75.0, 0.6, -1.2, 0.8, 2.5)
BEIJING_TOWGS84 = (15.8, -154.4, -82.3, 0.0, 0.0, 0.0, 0.0)
XIAN_SURVEY = FIXTURES / "survey" / "xian80.txt"


def survey_points(path: Path) -> list[tuple[float, float]]:
    """The (easting without zone number, northing) of a survey file's points, closing one
    left out."""
    lines = [ln.split(",") for ln in path.read_text("utf-8").splitlines() if ln.startswith("J")]
    pts = [(float(y) - 38e6, float(x)) for _, _, x, y in lines]
    return pts[:-1]


def test_xian80_by_epsg_code_is_refused_without_parameters_in_every_format(tmp_path):
    pts = survey_points(XIAN_SURVEY)
    data = collection(feature([pts], {"id": "X"}), crs="EPSG:2383")
    files = {"x.geojson": data,
             "x.zip": zipped(gdal_file(tmp_path, "ESRI Shapefile", "x.shp", "EPSG:2383",
                                       [Polygon(pts)])),
             "x.gpkg": gdal_file(tmp_path, "GPKG", "x.gpkg", "EPSG:2383", [Polygon(pts)])["x.gpkg"]}
    for name, raw in files.items():
        message = refused(read_parcel_file, raw, filename=name)
        assert "Xi'an 1980" in message and "seven transformation parameters" in message, name
    pasted = "\n".join(f"{e:.3f},{n:.3f}" for e, n in pts)
    for code in ("EPSG:2383", "EPSG:2435"):
        message = refused(parcels_from_text, pasted, crs=code)
        assert "seven transformation parameters" in message, code
    assert "Beijing 1954" in refused(parcels_from_text, pasted, crs="EPSG:2435")


def test_xian80_with_parameters_reads_like_the_survey_file_in_every_format(tmp_path):
    survey = read_parcel_file(XIAN_SURVEY, filename="x.txt", towgs84=XIAN_TOWGS84).parcels[0]
    pts = survey_points(XIAN_SURVEY)
    shp = zipped(gdal_file(tmp_path, "ESRI Shapefile", "x.shp", "EPSG:2383", [Polygon(pts)]))
    pasted = "\n".join(f"{n:.3f},{e:.3f}" for e, n in pts)  # X (north), Y (east)
    for ps in (read_parcel_file(collection(feature([pts])), filename="x.json", crs="EPSG:2383",
                                towgs84=XIAN_TOWGS84),
               read_parcel_file(shp, filename="x.zip", towgs84=XIAN_TOWGS84),
               parcels_from_text(pasted, crs="EPSG:2383", towgs84=XIAN_TOWGS84)):
        (p,) = ps.parcels
        assert_same_ring(p.lonlat.exterior.coords, survey.lonlat.exterior.coords[:-1], tol=0.01)
        assert "towgs84" in ps.crs and "Xian 1980" in ps.crs and ps.warnings == ()
    # ...and the parameters matter: tens of metres, more than the tightest rule's 50 m
    ballpark = Transformer.from_crs("EPSG:2383", "EPSG:4326", always_xy=True)
    lon, lat = ballpark.transform(*pts[0])
    assert GEOD.inv(lon, lat, *survey.lonlat.exterior.coords[0])[2] > 20


def test_beijing54_with_parameters_reads_like_the_survey_file():
    text = XIAN_SURVEY.read_text("utf-8").replace("80国家大地坐标系", "1954北京坐标系")
    survey = parcels_from_text(text, towgs84=BEIJING_TOWGS84).parcels[0]
    pasted = "\n".join(f"{e:.3f},{n:.3f}" for e, n in survey_points(XIAN_SURVEY))
    (p,) = parcels_from_text(pasted, crs="EPSG:2435", towgs84=BEIJING_TOWGS84).parcels
    assert_same_ring(p.lonlat.exterior.coords, survey.lonlat.exterior.coords[:-1], tol=0.01)
    # the parameters given are applied, not PROJ's own Beijing 1954 operation
    own = Transformer.from_crs("EPSG:2435", "EPSG:4326", always_xy=True)
    lon, lat = own.transform(*survey_points(XIAN_SURVEY)[0])
    assert GEOD.inv(lon, lat, *p.lonlat.exterior.coords[0])[2] > 20


def test_a_datum_only_a_ballpark_ties_to_wgs84_is_refused_and_a_rough_one_warned():
    ed50 = collection(feature([SQUARE_LL]), crs="EPSG:4230")  # European Datum 1950
    message = refused(read_parcel_file, ed50, filename="ed50.json")
    assert "European Datum 1950" in message and "seven transformation parameters" in message
    ps = read_parcel_file(ed50, filename="ed50.json", towgs84=(-87, -98, -121))
    assert "towgs84=-87,-98,-121" in ps.crs
    pulkovo = collection(feature([SQUARE_LL]), crs="EPSG:4284")  # Pulkovo 1942: 4.5 m here
    ps = read_parcel_file(pulkovo, filename="p.json")
    assert "4.5 m" in texts(ps.warnings)


def test_parameters_for_a_wgs84_or_cgcs2000_input_are_not_used_and_it_is_said():
    ps = read_parcel_file(collection(feature([SQUARE_LL])), filename="a.json",
                          towgs84=XIAN_TOWGS84)
    assert_square(ps.parcels[0])
    assert "not used" in texts(ps.warnings)
    ps = read_parcel_file(FIXTURES / "survey" / "one_parcel.txt", filename="s.txt",
                          towgs84=XIAN_TOWGS84)
    assert_square(ps.parcels[0])
    assert "not used" in texts(ps.warnings)
    assert "3 or 7" in refused(read_parcel_file, collection(feature([SQUARE_GK]), crs="EPSG:2383"),
                               filename="x.json", towgs84=(1.0, 2.0))


# --- DXF: text encodings, holes, closed open polylines ---------------------------------------

def dxf_with_header(header: str | None, *entities: str, encoding: str = "utf-8") -> bytes:
    body = dxf(*entities).decode()
    if header is not None:
        body = f"0\nSECTION\n2\nHEADER\n{header}0\nENDSEC\n" + body
    return body.encode(encoding)


def label_text(x: float, y: float, text: str, layer: str = "红线") -> str:
    return f"0\nTEXT\n8\n{layer}\n10\n{x:.3f}\n20\n{y:.3f}\n40\n2\n1\n{text}\n"


@pytest.mark.parametrize("header, encoding", [
    ("9\n$ACADVER\n1\nAC1021\n9\n$DWGCODEPAGE\n3\nANSI_936\n", "utf-8"),  # AutoCAD 2007+
    ("9\n$ACADVER\n1\nAC1032\n9\n$DWGCODEPAGE\n3\nANSI_1252\n", "utf-8"),
    ("9\n$ACADVER\n1\nAC1015\n9\n$DWGCODEPAGE\n3\nANSI_936\n", "gbk"),  # by its code page
    ("9\n$ACADVER\n1\nAC1015\n", "gbk"),  # no code page: UTF-8, else GBK
    (None, "utf-8"),  # no header at all
    (None, "gbk"),
])
def test_dxf_text_encodings(header, encoding):
    square = shifted(SQUARE_GK, 38e6)
    data = dxf_with_header(header, lwpolyline(square, layer="用地红线"),
                           label_text(38e6 + E0 + 100, N0 + 100, "一号地块", layer="用地红线"),
                           encoding=encoding)
    (p,) = read_parcel_file(data, filename="a.dxf").parcels
    assert (p.name, p.attributes["Layer"]) == ("一号地块", "用地红线")


def test_dxf_closed_shape_inside_another_of_its_layer_is_a_hole():
    outer, hole = shifted(SQUARE_GK, 38e6), shifted(HOLE_GK, 38e6)
    ps = read_parcel_file(dxf(lwpolyline(outer), lwpolyline(hole)), filename="a.dxf")
    (p,) = ps.parcels
    assert_square(p, hole=True)
    assert "1 closed shape(s) inside" in texts(ps.warnings)
    # on another layer it is a parcel of its own
    ps = read_parcel_file(dxf(lwpolyline(outer), lwpolyline(hole, layer="绿地")), filename="a.dxf")
    assert len(ps.parcels) == 2 and not ps.parcels[0].lonlat.interiors
    # an island in the hole is a parcel again
    island = shifted([(E0 + 90, N0 + 90), (E0 + 110, N0 + 90), (E0 + 110, N0 + 110),
                      (E0 + 90, N0 + 110)], 38e6)
    ps = read_parcel_file(dxf(lwpolyline(outer), lwpolyline(hole), lwpolyline(island)),
                          filename="a.dxf")
    big, small = ps.parcels
    assert_square(big, hole=True)
    assert ground_m2(small.lonlat) == pytest.approx(400, rel=1e-3)
    assert [p.id for p in ps.parcels] == ["1", "2"]


def test_dxf_shapes_sharing_an_edge_with_the_outline_are_not_holes():
    """A subdivided outline (the whole and its two halves) and a building drawn on the
    parcel's edge are shapes of their own: a hole cannot share an edge with its ring."""
    outer = shifted(SQUARE_GK, 38e6)
    xs = [x for x, _ in outer]
    ys = [y for _, y in outer]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    xm = (x0 + x1) / 2
    west = [(x0, y0), (xm, y0), (xm, y1), (x0, y1)]
    east = [(xm, y0), (x1, y0), (x1, y1), (xm, y1)]
    ps = read_parcel_file(dxf(lwpolyline(outer), lwpolyline(west), lwpolyline(east)),
                          filename="a.dxf")
    assert len(ps.parcels) == 3 and not any(p.lonlat.interiors for p in ps.parcels)
    building = [(x0, y0 + 20), (x0 + 30, y0 + 20), (x0 + 30, y0 + 50), (x0, y0 + 50)]
    ps = read_parcel_file(dxf(lwpolyline(outer), lwpolyline(building)), filename="a.dxf")
    assert len(ps.parcels) == 2 and not ps.parcels[0].lonlat.interiors


def test_dxf_open_polyline_ending_where_it_starts_is_a_closed_ring():
    outer = shifted(SQUARE_GK, 38e6)
    ps = read_parcel_file(dxf(lwpolyline([*outer, outer[0]], closed=False)), filename="a.dxf")
    assert_square(ps.parcels[0])
    assert "1 polyline(s)" in texts(ps.warnings)


def test_dxf_separate_closed_shapes_are_separate_parcels_and_it_is_said():
    one, two = shifted(SQUARE_GK, 38e6), shifted(SQUARE_GK, 38e6 + 400)
    ps = read_parcel_file(dxf(lwpolyline(one), lwpolyline(two)), filename="a.dxf")
    assert [p.id for p in ps.parcels] == ["1", "2"]
    assert "2 closed shapes read as 2 parcels" in texts(ps.warnings)


# --- KMZ: every KML of the archive ------------------------------------------------------------

def test_kmz_reads_every_kml_doc_kml_first():
    second = lonlat(shifted(SQUARE_GK, 400))
    doc = kml(f"<Placemark><name>一号</name>{kml_polygon(SQUARE_LL)}</Placemark>")
    more = kml(f"<Placemark><name>二号</name>{kml_polygon(second)}</Placemark>")
    data = zipped({"files/more.kml": more, "doc.kml": doc, "files/icon.png": b"\x89PNG"})
    ps = read_parcel_file(data, filename="a.kmz")
    assert [(p.id, p.name) for p in ps.parcels] == [("1", "一号"), ("2", "二号")]
    assert_square(ps.parcels[0])
    assert_same_ring(ps.parcels[1].lonlat.exterior.coords, second)


def test_kmz_whose_doc_kml_only_links_says_links_are_not_followed():
    link = kml("<NetworkLink><name>红线</name><Link><href>http://example.com/red.kml</href>"
               "</Link></NetworkLink>")
    message = refused(read_parcel_file, zipped({"doc.kml": link}), filename="link.kmz")
    assert "network link" in message and "not followed" in message
    assert "not followed" in refused(read_parcel_file, link, filename="link.kml")


# --- GeoPackage undefined SRS, shapefile text encoding, shapely's mapping() -------------------

@pytest.mark.parametrize("srs_id", [99999, -1, 0])
def test_geopackage_with_an_undefined_srs_is_read_with_the_crs_given(tmp_path, srs_id):
    with pytest.warns(UserWarning, match="crs"):
        files = gdal_file(tmp_path, "GPKG", "u.gpkg", None, [Polygon(SQUARE_GK)])
    path = tmp_path / "u.gpkg"
    path.write_bytes(files["u.gpkg"])
    con = sqlite3.connect(path)
    con.execute("INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES ('Undefined SRS', 99999, "
                "'GDAL', 99999, 'LOCAL_CS[\"Undefined SRS\",LOCAL_DATUM[\"unknown\",32767],"
                "UNIT[\"unknown\",0],AXIS[\"Easting\",EAST],AXIS[\"Northing\",NORTH]]', '')")
    con.execute("UPDATE gpkg_geometry_columns SET srs_id = ?", (srs_id,))
    con.execute("UPDATE gpkg_contents SET srs_id = ?", (srs_id,))
    con.commit()
    con.close()
    data = path.read_bytes()
    message = refused(read_parcel_file, data, filename="u.gpkg")
    assert "without a zone number" in message and "EPSG:4547" in message
    ps = read_parcel_file(data, filename="u.gpkg", crs="EPSG:4547")
    assert ps.crs == "CGCS2000 3° Gauss-Krüger zone 38 (EPSG:4547)"
    assert_square(ps.parcels[0])


def test_shapefile_text_in_an_unknown_encoding_asks_for_a_cpg_file(tmp_path):
    files = gdal_file(tmp_path, "ESRI Shapefile", "p.shp", "EPSG:4547", [Polygon(SQUARE_GK)],
                      {"note": ["zzzz"]})
    files["p.dbf"] = files["p.dbf"].replace(b"zzzz", b"\xff\x80\xff\x80")
    files = {k: v for k, v in files.items() if not k.endswith(".cpg")}
    message = refused(read_parcel_file, zipped(files), filename="p.zip")
    assert ".cpg" in message and "encoding field" not in message


def test_geojson_built_with_shapely_mapping_is_read():
    feature_dict = {"type": "Feature", "properties": {"id": "M1"},
                    "geometry": mapping(Polygon(SQUARE_LL, [lonlat(HOLE_GK)]))}
    assert isinstance(feature_dict["geometry"]["coordinates"], tuple)
    for obj in (feature_dict["geometry"], feature_dict,
                {"type": "FeatureCollection", "features": (feature_dict,)},
                mapping(MultiPolygon([Polygon(SQUARE_LL)]))):
        (p,) = parcels_from_geojson(obj).parcels
        assert_square(p, hole=bool(p.lonlat.interiors))
