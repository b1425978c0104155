"""Hostile parcel input: zip bombs and escaping entries in KMZ and zipped Shapefiles, XML
entities, references that must never be followed, block bombs in drawings, huge coordinate
counts, NaN and Infinity, wrong encodings, a million features — each refused quickly with a
clear message, or read without following anything."""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import secrets
import stat
import threading
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Polygon

from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.storage import parcel_in
from geoapp.storage.parcel_in import parcels_from_geojson, parcels_from_text, read_parcel_file
from tests.catalogue import english

SQUARE = [(113.200, 35.200), (113.202, 35.200), (113.202, 35.202), (113.200, 35.202)]
CANARY = "canary-" + secrets.token_hex(8)


def refused(call, *args, **kw) -> str:
    with pytest.raises(InvalidInput) as info:
        call(*args, **kw)
    text = english(info.value.message)
    if isinstance(info.value, ValidationFailed):
        text += "\n" + "\n".join(english(p.message) for p in info.value.details)
    assert CANARY not in text and CANARY not in str(info.value.to_dict())
    return text


def kml_doc(body: str = "", prolog: str = "") -> bytes:
    coords = " ".join(f"{x},{y}" for x, y in [*SQUARE, SQUARE[0]])
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<kml xmlns="http://www.opengis.net/kml/2.2">'
            f"<Document>{body}<Placemark><name>p</name><Polygon><outerBoundaryIs><LinearRing>"
            f"<coordinates>{coords}</coordinates></LinearRing></outerBoundaryIs></Polygon>"
            "</Placemark></Document></kml>").encode()


def zipped(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            info.create_system = 3
            zf.writestr(info, target)
    return buf.getvalue()


def shapefile_parts(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "shp"
    folder.mkdir(exist_ok=True)
    gpd.GeoDataFrame({"id": ["1"]}, geometry=[Polygon(SQUARE)], crs="EPSG:4326").to_file(
        folder / "p.shp")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def geojson_polygon(n: int) -> dict:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack((113.2 + 0.01 * np.cos(t), 35.2 + 0.01 * np.sin(t))).tolist()
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


@pytest.fixture
def listener():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


# --- Archives ---------------------------------------------------------------------------------

def test_kmz_zip_bomb_is_refused_before_extraction():
    bomb = zipped({"doc.kml": kml_doc() + b" " * (30 * 1024 * 1024)})
    assert len(bomb) < 100_000
    assert "zip bomb" in refused(read_parcel_file, bomb, filename="bomb.kmz")


@pytest.mark.parametrize("entry", ["../../evil.kml", "/etc/evil.kml", "a/../../evil.kml",
                                   "..\\..\\evil.kml"])
def test_kmz_entries_pointing_outside_are_refused(entry, tmp_path):
    data = zipped({"doc.kml": kml_doc(), entry: kml_doc()})
    assert "outside the archive" in refused(read_parcel_file, data, filename="slip.kmz")
    assert not (tmp_path.parent / "evil.kml").exists()


def test_kmz_symlink_entry_is_refused():
    data = zipped({"doc.kml": kml_doc()}, links={"passwd.kml": "/etc/passwd"})
    assert "link" in refused(read_parcel_file, data, filename="link.kmz")


def test_kmz_document_larger_than_declared_is_cut(monkeypatch):
    monkeypatch.setattr(parcel_in, "MAX_BYTES", 2048)
    data = zipped({"doc.kml": kml_doc() + b"<!-- " + b"x" * 4096 + b" -->"})
    assert "MB" in refused(read_parcel_file, data, filename="big.kmz")


def test_zipped_shapefile_bomb_and_escaping_entries_are_refused(tmp_path):
    parts = shapefile_parts(tmp_path)
    bomb = zipped({**parts, "p.dbf": parts["p.dbf"] + b"\x00" * (30 * 1024 * 1024)})
    assert "zip bomb" in refused(read_parcel_file, bomb, filename="bomb.zip")
    slip = zipped({**parts, "../../evil.shp": b"x"})
    assert "outside the archive" in refused(read_parcel_file, slip, filename="slip.zip")
    assert not (tmp_path.parent / "evil.shp").exists()


# --- XML and references -----------------------------------------------------------------------

def test_kml_entity_expansion_is_refused_quickly():
    laughs = ('<!DOCTYPE kml [<!ENTITY a "aaaaaaaaaa">'
              + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'
                        for i in range(9)) + "]>")
    data = kml_doc(body="<name>&j;</name>", prolog=laughs)
    start = time.perf_counter()
    assert "DTD" in refused(read_parcel_file, data, filename="laughs.kml")
    assert time.perf_counter() - start < 1


def test_kml_external_entity_is_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(CANARY)
    data = kml_doc(body="<name>&x;</name>",
                   prolog=f'<!DOCTYPE kml [<!ENTITY x SYSTEM "file://{secret}">]>')
    refused(read_parcel_file, data, filename="xxe.kml")


def test_kml_network_link_is_counted_never_followed(listener):
    url, hits = listener
    data = kml_doc(body=f"<NetworkLink><Link><href>{url}/more.kml</href></Link></NetworkLink>")
    ps = read_parcel_file(data, filename="links.kml")
    assert len(ps.parcels) == 1 and "network link" in english(ps.warnings[0].message)
    time.sleep(0.2)
    assert hits == []


def test_geojson_crs_link_or_crs_below_the_top_is_refused(listener):
    url, hits = listener
    ring = [list(p) for p in [*SQUARE, SQUARE[0]]]
    linked = {"type": "FeatureCollection", "features": [],
              "crs": {"type": "link", "properties": {"href": f"{url}/crs.wkt"}}}
    refused(read_parcel_file, json.dumps(linked).encode(), filename="link.geojson")
    nested = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Polygon", "coordinates": [ring],
                      "crs": {"type": "name", "properties": {"name": "EPSG:4547"}}}}]}
    assert "top level" in refused(read_parcel_file, json.dumps(nested).encode(),
                                  filename="n.geojson")
    assert hits == []


def test_vrt_or_other_xml_under_a_parcel_name_never_reaches_gdal(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text(f"WKT,name\n\"POLYGON((113.2 35.2,113.3 35.2,113.3 35.3,113.2 35.2))\","
                      f"{CANARY}\n")
    vrt = (f"<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>{secret}</SrcDataSource>"
           "</OGRVRTLayer></OGRVRTDataSource>").encode()
    for name in ("a.dxf", "a.kml", "a.gpkg", "a.geojson", "a.txt"):
        refused(read_parcel_file, vrt, filename=name)


def test_dxf_nested_block_bomb_is_not_expanded():
    """Block B9 inserts B8 ten times, … B1 inserts B0 (a closed square) ten times: inlined,
    one INSERT of B9 would be 10⁹ squares. Blocks are not inlined: no parcel, at once."""
    blocks = "0\nBLOCK\n8\n0\n2\nB0\n70\n0\n10\n0\n20\n0\n0\nLWPOLYLINE\n8\n0\n90\n4\n70\n1\n"
    blocks += "10\n0\n20\n0\n10\n1\n20\n0\n10\n1\n20\n1\n10\n0\n20\n1\n0\nENDBLK\n"
    for level in range(1, 10):
        blocks += f"0\nBLOCK\n8\n0\n2\nB{level}\n70\n0\n10\n0\n20\n0\n"
        blocks += "".join(f"0\nINSERT\n8\n0\n2\nB{level - 1}\n10\n{i}\n20\n0\n" for i in range(10))
        blocks += "0\nENDBLK\n"
    data = ("0\nSECTION\n2\nHEADER\n9\n$ACADVER\n1\nAC1015\n0\nENDSEC\n"
            f"0\nSECTION\n2\nBLOCKS\n{blocks}0\nENDSEC\n0\nSECTION\n2\nENTITIES\n"
            "0\nINSERT\n8\n0\n2\nB9\n10\n38427000\n20\n3897000\n0\nENDSEC\n0\nEOF\n").encode()
    start = time.perf_counter()
    assert "no polygons" in refused(read_parcel_file, data, filename="bomb.dxf")
    assert time.perf_counter() - start < 5


def test_symlink_path_is_refused(tmp_path):
    target = tmp_path / "secret.geojson"
    target.write_text(json.dumps({"type": "Polygon", "coordinates": [[[1, 2]]], "x": CANARY}))
    link = tmp_path / "parcel.geojson"
    os.symlink(target, link)
    assert "link" in refused(read_parcel_file, link, filename="parcel.geojson")


# --- Sizes and counts ---------------------------------------------------------------------------

def test_a_million_features_is_refused_quickly():
    one = b'{"type":"Feature","properties":{},"geometry":null}'
    data = b'{"type":"FeatureCollection","features":[' + b",".join([one] * 1_000_000) + b"]}"
    start = time.perf_counter()
    assert "Too many features" in refused(read_parcel_file, data, filename="million.geojson")
    assert time.perf_counter() - start < 1


def test_more_than_200000_vertices_is_refused():
    assert "200,000" in refused(parcels_from_geojson, geojson_polygon(200_001))
    many = "\n".join(f"{113.2 + i * 1e-7:.7f},35.2" for i in range(200_001))
    assert "200,000" in refused(parcels_from_text, many)
    assert parcels_from_geojson(geojson_polygon(20_000)).parcels  # a large but fair parcel


def test_more_than_10000_parcels_is_refused():
    ring = [list(p) for p in [*SQUARE, SQUARE[0]]]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
                                                                 "coordinates": [ring]}}
    data = json.dumps({"type": "FeatureCollection", "features": [feature] * 10_001}).encode()
    assert "10,000" in refused(read_parcel_file, data, filename="many.geojson")


def test_file_larger_than_the_limit_is_refused_before_reading(monkeypatch, tmp_path):
    monkeypatch.setattr(parcel_in, "MAX_BYTES", 1000)
    path = tmp_path / "big.geojson"
    path.write_bytes(b" " * 2000)
    assert "MB" in refused(read_parcel_file, path, filename="big.geojson")
    assert "MB" in refused(read_parcel_file, b"{" + b" " * 2000, filename="big.geojson")


def test_deeply_nested_json_is_refused():
    data = b'{"type":"Polygon","coordinates":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    refused(read_parcel_file, data, filename="deep.geojson")


# --- Numbers and encodings ----------------------------------------------------------------------

@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_geojson_are_refused(literal):
    text = ('{"type":"Polygon","coordinates":[[[113.2,35.2],[113.21,35.2],'
            f'[113.21,{literal}],[113.2,35.2]]]}}')
    assert "NaN" in refused(read_parcel_file, text.encode(), filename="nan.geojson")
    assert "NaN" in refused(parcels_from_geojson, text)


def test_nan_in_pasted_text_names_the_line():
    text = "113.2,35.2\n113.21,35.2\nnan,35.21\n"
    msg = refused(parcels_from_text, text)
    assert "Line 3" in msg


def test_nan_coordinate_in_a_geopackage_names_the_point(tmp_path):
    with pytest.warns(RuntimeWarning, match="invalid value"):
        bad = Polygon([(113.2, 35.2), (113.21, 35.2), (float("nan"), 35.21), (113.2, 35.21)])
    gpd.GeoDataFrame({"id": ["N1"]}, geometry=[bad], crs="EPSG:4326").to_file(
        tmp_path / "n.gpkg", driver="GPKG")
    msg = refused(read_parcel_file, (tmp_path / "n.gpkg").read_bytes(), filename="n.gpkg")
    assert "N1" in msg and "vertex 3" in msg and "finite" in msg


def test_non_utf8_geojson_is_refused_and_gbk_kml_is_read():
    text = '{"type":"Feature","properties":{"名称":"一号"},"geometry":null}'
    assert "UTF-8" in refused(read_parcel_file, text.encode("gbk"), filename="gbk.geojson")
    gbk = kml_doc().decode().replace("UTF-8", "GBK").replace("<name>p</name>",
                                                               "<name>一号</name>")
    ps = read_parcel_file(gbk.encode("gbk"), filename="gbk.kml")
    assert ps.parcels[0].name == "一号"


def test_binary_noise_is_refused():
    assert "Unsupported" in refused(read_parcel_file, secrets.token_bytes(4096) + b"\x00",
                                    filename="noise.txt")
    bad_text = b"113.2,35.2\n" + bytes([0xff, 0xfe, 0xfa]) * 10
    assert "neither UTF-8 nor GBK" in refused(read_parcel_file, bad_text, filename="bad.txt")


# --- Odd shapes that must be named, never crash -----------------------------------------------

@pytest.mark.parametrize("geometry", [
    {"type": "Polygon", "coordinates": []},
    {"type": "MultiPolygon", "coordinates": []},
    {"type": "MultiPolygon", "coordinates": [[]]},
    {"type": "GeometryCollection", "geometries": []},
])
def test_an_empty_polygon_alone_is_named(geometry):
    text = refused(parcels_from_geojson, geometry)
    assert "no coordinates" in text and "parcel no. 1" in text.lower()
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"地块编号": "E1"}, "geometry": geometry}]}
    assert "Parcel E1" in refused(read_parcel_file, json.dumps(doc).encode(), filename="e.json")


def test_deeply_nested_multigeometry_is_read_without_recursion():
    coords = " ".join(f"{x},{y}" for x, y in [*SQUARE, SQUARE[0]])
    polygon = (f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{coords}</coordinates>"
               "</LinearRing></outerBoundaryIs></Polygon>")
    depth = 5_000
    data = ('<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>deep</name>'
            + "<MultiGeometry>" * depth + polygon + "</MultiGeometry>" * depth
            + "</Placemark></Document></kml>").encode()
    (p,) = read_parcel_file(data, filename="deep.kml").parcels
    assert p.name == "deep" and p.lonlat.equals(Polygon(SQUARE))


def dxf_text(*entities: str) -> bytes:
    return ("0\nSECTION\n2\nENTITIES\n" + "".join(entities) + "0\nENDSEC\n0\nEOF\n").encode()


def test_a_self_intersecting_closed_polyline_in_a_drawing_is_named():
    pts = [(38427146.805, 3897074.574), (38427346.805, 3897274.574),
           (38427346.805, 3897074.574), (38427146.805, 3897274.574)]
    bowtie = "0\nLWPOLYLINE\n8\n0\n90\n4\n70\n1\n" + "".join(
        f"10\n{x}\n20\n{y}\n" for x, y in pts)
    text = refused(read_parcel_file, dxf_text(bowtie), filename="bowtie.dxf")
    assert "intersects itself" in text and "vertices 1, 2, 3, 4" in text


def test_a_drawing_without_entities_is_refused_with_a_message():
    assert "no features" in refused(read_parcel_file, dxf_text(), filename="empty.dxf")


# --- Control characters, lone surrogates, long ids ---------------------------------------------

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def carried_text(ps) -> str:
    """Every text of a parcel set an output writes, as one string (UTF-8 must hold it)."""
    text = json.dumps([[p.id, p.name, p.attributes] for p in ps.parcels], ensure_ascii=False)
    text += "".join(english(w.message) for w in ps.warnings)
    text.encode("utf-8")
    return text


def polygon_feature(props: dict) -> dict:
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [[*map(list, SQUARE), list(SQUARE[0])]]}}


def test_control_characters_and_lone_surrogates_are_cleaned_from_names_and_attributes():
    doc = {"type": "FeatureCollection", "features": [
        polygon_feature({"id": "A", "name": "bad\u0007name", "用途\u001b": "工业\u0085用地",
                         "note": "line one\nline\ttwo\r", "list": ["x\u0000y", {"k": "\ud800"}]}),
        polygon_feature({"id": "B", "name": "\ud800"})]}
    text = json.dumps(doc)  # JSON escapes: \u0007, \ud800 as written by the repro files
    ps = read_parcel_file(text.encode(), filename="names.geojson")
    a, b = ps.parcels
    assert (a.name, b.name) == ("badname", "\ufffd")
    assert a.attributes == {"用途": "工业用地", "note": "line one\nline\ttwo",
                            "list": ["xy", {"k": "\ufffd"}]}
    assert not CONTROL.search(carried_text(ps))


def test_control_characters_in_kml_shapefile_and_pasted_text_are_cleaned(tmp_path):
    coords = " ".join(f"{x},{y}" for x, y in [*SQUARE, SQUARE[0]])
    kml = ('<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark>'
           "<name>一号\u0085地块</name><Polygon><outerBoundaryIs><LinearRing><coordinates>"
           f"{coords}</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
           "</Document></kml>").encode()
    assert read_parcel_file(kml, filename="c1.kml").parcels[0].name == "一号地块"
    folder = tmp_path / "shp"
    folder.mkdir()
    gpd.GeoDataFrame({"地块名称": ["二号\u0007地块"], "备注": ["a\u001fb"]},
                     geometry=[Polygon(SQUARE)], crs="EPSG:4326").to_file(folder / "p.shp",
                                                                           encoding="GBK")
    ps = read_parcel_file(zipped({p.name: p.read_bytes() for p in folder.iterdir()}),
                          filename="p.zip")
    assert ps.parcels[0].name == "二号地块" and ps.parcels[0].attributes["备注"] == "ab"
    pasted = "\n".join(f"J{i}\u0007,{x},{y}" for i, (x, y) in enumerate(SQUARE, start=1))
    assert not CONTROL.search(carried_text(parcels_from_text(pasted)))
    problem = refused(parcels_from_text, pasted + "\nJ9\ud800,x\u0007y,1\n")
    assert not CONTROL.search(problem) and "Line 5" in problem


def test_an_id_with_control_characters_is_refused_naming_the_parcel():
    doc = {"type": "FeatureCollection", "features": [
        polygon_feature({"地块编号": "JZ\u0007-1", "name": "一号"})]}
    with pytest.raises(ValidationFailed) as info:
        parcels_from_geojson(doc)
    (p,) = info.value.details
    text = english(p.message)
    assert "control" in text and "U+0007" in text and "一号" in text and p.feature == 1
    assert not CONTROL.search(text + str(p.id) + str(p.value))


def test_ids_longer_than_100_characters_are_refused_not_cut():
    base = "JZ-" + "0" * 120
    doc = {"type": "FeatureCollection", "features": [
        polygon_feature({"地块编号": base + "1"}),
        polygon_feature({"地块编号": base + "2"}),
        polygon_feature({"地块编号": "x" * 100})]}
    with pytest.raises(ValidationFailed) as info:
        parcels_from_geojson(doc)
    found = info.value.details
    assert [p.feature for p in found] == [1, 2]
    assert all("124 characters" in english(p.message) and "100" in english(p.message)
               and "repeats" not in english(p.message) for p in found)
    (p,) = parcels_from_geojson({**doc, "features": doc["features"][2:]}).parcels
    assert p.id == "x" * 100
