"""The parcel check as a use case and a command: every input form gives the same answer,
control units come with their 准入清单, and the answer is written as JSON, XLSX, GeoPackage and
the Word report.

Parcels are built in EPSG:4547 (CGCS2000 3° Gauss-Krüger zone 38, the city's metric CRS)
where their size is known, then written as a land-survey coordinate file, as GeoJSON in WGS84
and as GeoJSON in GCJ-02 (shifted with ``spatial.crs``), and checked through the service.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import openpyxl
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from docx import Document
from pyproj import Geod, Transformer
from shapely.geometry import Polygon, box, mapping

from geoapp.cli import main
from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.domain.units import PARTS
from geoapp.services import parcels as service
from geoapp.spatial.crs import wgs84_to_gcj02
from geoapp.storage.parcel_in import parcels_from_geojson, read_parcel_file

GEOD = Geod(ellps="GRS80")
TO_LONLAT = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
TO_METRIC = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)


def lonlat(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(
        TO_LONLAT.transform(xy[:, 0], xy[:, 1])))


def metric(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(
        TO_METRIC.transform(xy[:, 0], xy[:, 1])))


def gcj(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(
        wgs84_to_gcj02(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture(scope="module")
def places(core):
    """Metric points: inside a 一级 water-source zone, in the urban core, and open country
    far from every zone, found from the stored layers."""
    water = core.repo.layer("water_source_zones")
    first = water[water["level"] == "一级"].geometry.iloc[0]
    core_zone = core.repo.layer("urban_core").geometry.iloc[0]
    return {"water": metric(first).representative_point(),
            "core": metric(core_zone).representative_point()}


def survey_text(parcels: list[tuple[str, str, Polygon]], *, prefix: bool = True) -> str:
    """A land-survey coordinate file (电子报盘格式) of metric polygons: X north, Y east."""
    lines = ["[属性描述]", "格式版本号=1.01版本", "坐标系=2000国家大地坐标系", "几度分带=3",
             "投影类型=高斯克吕格", "计量单位=米", "带号=38", "精度=0.001", "[地块坐标]"]
    for pid, name, poly in parcels:
        rings = [poly.exterior, *poly.interiors]
        count = sum(len(r.coords) for r in rings)
        lines.append(f"{count},{poly.area / 10000:.4f},{pid},{name},面,,工业用地,0601,@")
        k = 0
        for ring_no, ring in enumerate(rings, start=1):
            for x, y in ring.coords:
                k += 1
                east = f"38{x:.3f}" if prefix else f"{x:.3f}"
                lines.append(f"J{k},{ring_no},{y:.3f},{east}")
    return "\r\n".join(lines) + "\r\n"


def feature_collection(parcels, transform=lambda g: g) -> dict:
    """A GeoJSON FeatureCollection as parsed from text (lists, not shapely's tuples)."""
    return json.loads(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": pid, "name": name},
         "geometry": mapping(transform(lonlat(poly)))} for pid, name, poly in parcels]}))


def test_a_square_in_the_metric_crs_has_its_area_on_the_ground(core, places):
    p = places["core"]
    sq = box(p.x - 100, p.y - 100, p.x + 100, p.y + 100)  # 40,000 m² on the grid
    report = service.check_parcels(core, parcels_from_geojson(
        feature_collection([("A", "方块", sq)])), site_type="enterprise", industry="化工")
    (answer,) = report.to_dict()["parcels"]
    expected = abs(GEOD.geometry_area_perimeter(lonlat(sq))[0])
    assert answer["area_m2"] == pytest.approx(expected, abs=0.1)
    assert answer["area_m2"] == pytest.approx(40000.0, rel=1e-3)  # GK scale ~1e-4 here
    assert answer["area"]["mu"] == pytest.approx(expected / (10000 / 15), rel=1e-4)
    assert answer["id"] == "A" and answer["name"] == "方块"


def test_the_same_parcel_as_survey_file_geojson_wgs84_and_gcj02_gives_one_answer(core, places):
    w = places["water"]
    parcels = [("JZ-1", "水源地旁地块", box(w.x - 150, w.y - 90, w.x + 250, w.y + 110)),
               ("JZ-2", "主城区地块", Polygon(
                   [(places["core"].x + dx, places["core"].y + dy)
                    for dx, dy in ((0, 0), (300, 0), (300, 200), (120, 260), (0, 200))],
                   [[(places["core"].x + dx, places["core"].y + dy)
                     for dx, dy in ((100, 50), (150, 50), (150, 100), (100, 100))]]))]
    kw = {"site_type": "enterprise", "industry": "化工"}
    from_survey = service.check_parcel_file(
        core, survey_text(parcels).encode("gbk"), filename="报盘.txt", **kw).to_dict()
    unprefixed = service.check_parcel_file(
        core, survey_text(parcels, prefix=False).encode("utf-8"), filename="报盘.txt",
        **kw).to_dict()
    from_wgs84 = service.check_parcel_geojson(core, feature_collection(parcels), **kw).to_dict()
    from_gcj = service.check_parcel_geojson(core, feature_collection(parcels, gcj),
                                            crs="gcj02", **kw).to_dict()
    assert from_survey["source"]["format"] == "survey"
    assert "4547" in from_survey["source"]["crs"] or "38" in from_survey["source"]["crs"]
    answers = [from_survey, unprefixed, from_wgs84, from_gcj]
    for other in answers[1:]:
        for a, b in zip(from_survey["parcels"], other["parcels"], strict=True):
            assert a["id"] == b["id"] and a["verdict"] == b["verdict"]
            assert b["area_m2"] == pytest.approx(a["area_m2"], rel=1e-3)
            assert [(o["layer"], o["feature_id"]) for o in a["overlaps"]] == \
                [(o["layer"], o["feature_id"]) for o in b["overlaps"]]
            for oa, ob in zip(a["overlaps"], b["overlaps"], strict=True):
                assert ob["area_m2"] == pytest.approx(oa["area_m2"], rel=1e-3, abs=1.0)
            assert [h["rule_id"] for h in a["hits"]] == [h["rule_id"] for h in b["hits"]]
            da = {r["rule_id"]: r["distance_m"] for r in a["rules"]}
            db = {r["rule_id"]: r["distance_m"] for r in b["rules"]}
            assert da.keys() == db.keys()
            for k in da:
                assert (da[k] is None) == (db[k] is None)
                if da[k] is not None:
                    assert db[k] == pytest.approx(da[k], abs=0.5)
            assert [u["code"] for u in a["units"]] == [u["code"] for u in b["units"]]
    first = from_survey["parcels"][0]
    assert first["verdict"] == "fail"
    assert any(o["layer"].startswith("water_source_zones") for o in first["overlaps"])
    # the hole is not part of the parcel
    hole_parcel = from_survey["parcels"][1]
    oriented = shapely.orient_polygons(lonlat(parcels[1][2]), exterior_cw=False)
    assert hole_parcel["area_m2"] == pytest.approx(
        abs(GEOD.geometry_area_perimeter(oriented)[0]), abs=0.5)
    assert hole_parcel["area_m2"] == pytest.approx(
        abs(GEOD.geometry_area_perimeter(lonlat(Polygon(parcels[1][2].exterior)))[0])
        - abs(GEOD.geometry_area_perimeter(lonlat(Polygon(parcels[1][2].interiors[0])))[0]),
        abs=0.5)


def test_every_unit_touched_comes_with_its_full_list_and_the_industry_lines(core, places):
    p = places["water"]
    sq = box(p.x - 50, p.y - 50, p.x + 50, p.y + 50)
    report = service.check_parcels(core, parcels_from_geojson(
        feature_collection([("W", "", sq)])), site_type="enterprise", industry="化工")
    (answer,) = report.to_dict()["parcels"]
    assert answer["units"], "every place in the city lies in some control unit"
    assert sum(u["share"] for u in answer["units"]) == pytest.approx(1.0, abs=1e-6)
    unit = answer["units"][0]
    assert re.fullmatch(r"ZH\d{6}[123]\d{4}", unit["code"])
    assert unit["category"] == "优先保护"  # the water-source zone lies in a priority unit
    assert set(unit["requirements"]) == {k for k, _ in PARTS}
    assert all(unit["requirements"][k] for k, _ in PARTS)
    for f in unit["flagged_lines"]:
        assert f["line"] in unit["requirements"][f["part"]]
    # with no industry nothing is flagged
    plain = service.check_parcels(core, parcels_from_geojson(
        feature_collection([("W", "", sq)]))).to_dict()["parcels"][0]
    assert all(not u["flagged_lines"] for u in plain["units"])


def test_industry_lines_are_flagged_where_the_list_names_the_industry(core):
    stored = service.unit_requirements(core, [r["code"] for r in core.repo.layer(
        service.units_layer_name(core)).to_dict("records")])
    named = [(code, r) for code, r in stored.items()
             if any("化工" in t for t in r.requirements.values())]
    assert named, "the shipped lists name 化工 somewhere"
    code, req = named[0]
    layer = core.repo.layer(service.units_layer_name(core))
    unit = layer[layer["code"] == code].geometry.iloc[0]
    inner = metric(unit).buffer(-30).representative_point() if metric(unit).buffer(-30).area \
        else metric(unit).representative_point()
    sq = box(inner.x - 10, inner.y - 10, inner.x + 10, inner.y + 10)
    answer = service.check_parcels(core, parcels_from_geojson(
        feature_collection([("U", "", sq)])), industry="化工").to_dict()["parcels"][0]
    touched = {u["code"]: u for u in answer["units"]}
    assert code in touched
    assert any("化工" in f["line"] for f in touched[code]["flagged_lines"])


def test_the_json_answer_has_the_documented_shape(core, places):
    p = places["core"]
    report = service.check_parcels(core, parcels_from_geojson(feature_collection(
        [("A", "一", box(p.x, p.y, p.x + 80, p.y + 80)),
         ("B", "二", box(p.x + 200, p.y, p.x + 280, p.y + 80))])), site_type="enterprise")
    data = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert [q["id"] for q in data["parcels"]] == ["A", "B"]
    for q in data["parcels"]:
        assert {"id", "name", "area_m2", "verdict", "overlaps", "hits", "units"} <= set(q)
        for o in q["overlaps"]:
            assert {"layer", "feature_id", "feature_name", "area_m2", "share"} <= set(o)
        for h in q["hits"]:
            assert {"rule_id", "distance_m", "overlap_m2"} <= set(h)
        for u in q["units"]:
            assert {"code", "category", "overlap_m2", "requirements"} <= set(u)
    assert data["summary"]["parcels"] == 2


def test_a_parcel_outside_the_city_is_out_of_area_not_pass(core):
    far = Polygon([(116.0, 39.9), (116.001, 39.9), (116.001, 39.901), (116.0, 39.901)])
    answer = service.check_parcels(core, parcels_from_geojson(json.dumps(
        {"type": "Feature", "properties": {"id": "BJ"}, "geometry": mapping(far)}))
    ).to_dict()["parcels"][0]
    assert answer["verdict"] == "out_of_area"
    assert answer["units"] == []


def test_bad_input_is_refused_with_the_parcel_and_point_named(core):
    crossing = {"type": "Feature", "properties": {"id": "X1"}, "geometry": {
        "type": "Polygon", "coordinates": [[[113.20, 35.20], [113.21, 35.21], [113.21, 35.20],
                                            [113.20, 35.21], [113.20, 35.20]]]}}
    with pytest.raises(ValidationFailed) as err:
        service.check_parcel_geojson(core, crossing)
    text = json.dumps([p.to_dict() for p in err.value.details], ensure_ascii=False)
    assert "X1" in text
    with pytest.raises(InvalidInput):
        service.check_parcel_text(core, "   ")


# --------------------------------------------------------------------------- outputs


@pytest.fixture(scope="module")
def two_parcel_file(tmp_path_factory, places):
    w, c = places["water"], places["core"]
    parcels = [("JZ-1", "水源地旁地块", box(w.x - 150, w.y - 90, w.x + 250, w.y + 110)),
               ("JZ-2", "主城区地块", box(c.x, c.y, c.x + 120, c.y + 90))]
    path = tmp_path_factory.mktemp("parcel-files") / "报盘.txt"
    path.write_bytes(survey_text(parcels).encode("gbk"))
    return path


def test_the_command_prints_the_json_answer(instance, two_parcel_file, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    result = CliRunner().invoke(main, ["parcel", str(two_parcel_file), "--site-type",
                                       "enterprise", "--industry", "化工", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [p["id"] for p in data["parcels"]] == ["JZ-1", "JZ-2"]
    assert data["parcels"][0]["verdict"] == "fail"
    text = CliRunner().invoke(main, ["parcel", str(two_parcel_file), "--industry", "化工"])
    assert text.exit_code == 0, text.output
    assert "JZ-1" in text.stdout and "不符合" in text.stdout and "亩" in text.stdout


def test_the_answer_as_xlsx_gpkg_and_docx(core, two_parcel_file, tmp_path):
    report = service.check_parcel_file(core, two_parcel_file, filename=two_parcel_file.name,
                                       site_type="enterprise", industry="化工")
    data = report.to_dict()
    xlsx = service.write_answer(core, report, tmp_path / "a.xlsx")
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames == ["地块", "规则命中", "重叠要素", "环境管控单元", "逐条规则"]
    rows = list(wb["地块"].iter_rows(values_only=True))
    assert rows[0][0] == "地块编号" and [r[0] for r in rows[1:]] == ["JZ-1", "JZ-2"]
    assert rows[1][rows[0].index("结论")] == "不符合"
    units = list(wb["环境管控单元"].iter_rows(values_only=True))
    assert "空间布局约束" in units[0] and len(units) - 1 == sum(
        len(p["units"]) for p in data["parcels"])

    gpkg = service.write_answer(core, report, tmp_path / "a.gpkg")
    layers = dict(pyogrio.list_layers(gpkg))
    assert layers["parcels"] in ("MultiPolygon", "Polygon")
    assert {"parcel_hits", "parcel_overlaps", "parcel_units", "parcel_rules"} <= set(layers)
    frame = pyogrio.read_dataframe(gpkg, layer="parcels")
    assert list(frame["id"]) == ["JZ-1", "JZ-2"] and list(frame["verdict"])[0] == "fail"
    got = abs(GEOD.geometry_area_perimeter(frame.geometry.iloc[0])[0])
    assert got == pytest.approx(data["parcels"][0]["area_m2"], abs=0.5)

    docx = service.write_answer(core, report, tmp_path / "a.docx")
    doc = Document(str(docx))
    text = "\n".join(p.text for p in doc.paragraphs)
    tables = "\n".join(c.text for t in doc.tables for row in t.rows for c in row.cells)
    assert "项目选址环境合理性预判报告" in text
    assert "JZ-1" in text and "不符合" in text + tables
    assert data["parcels"][0]["units"][0]["code"] in text
    assert len(doc.inline_shapes) == 2  # a map per parcel
    flagged = [f for p in data["parcels"] for u in p["units"] for f in u["flagged_lines"]]
    if flagged:
        assert "【涉及本行业】" + flagged[0]["line"] in text

    with pytest.raises(InvalidInput):
        service.write_answer(core, report, tmp_path / "a.pdf")
    with pytest.raises(InvalidInput, match="输出文件夹不存在"):
        service.write_answer(core, report, tmp_path / "no" / "such" / "a.docx")


def test_names_with_control_characters_reach_every_output(core, places, tmp_path):
    """A bell or a vertical tab in a parcel's name (pasted from another program) must not
    break the Word, Excel or GeoPackage answer, and a formula-like id stays as it is in
    the GeoPackage (only spreadsheets run formulas)."""
    c = places["core"]
    report = service.check_parcels(core, parcels_from_geojson(feature_collection(
        [("=1+1", "一号\x0b地块\x07", box(c.x, c.y, c.x + 60, c.y + 60))])))
    report = replace(report, answers=tuple(
        replace(a, parcel=replace(a.parcel, name="一号\x0b地块\x07")) for a in report.answers))
    for ext in (".docx", ".xlsx", ".gpkg", ".json"):
        service.write_answer(core, report, tmp_path / f"c{ext}")
    frame = pyogrio.read_dataframe(tmp_path / "c.gpkg", layer="parcels")
    assert frame["id"].iloc[0] == "=1+1"
    assert frame["name"].iloc[0] == "一号\n地块"
    rows = list(openpyxl.load_workbook(tmp_path / "c.xlsx")["地块"].iter_rows(values_only=True))
    assert rows[1][0] == "'=1+1"


def test_many_parcels_give_one_answer_each_in_file_order(core, places):
    c = places["core"]
    parcels = [(f"P{i:03d}", "", box(c.x + 150 * (i % 10), c.y + 150 * (i // 10),
                                     c.x + 150 * (i % 10) + 100, c.y + 150 * (i // 10) + 100))
               for i in range(40)]
    report = service.check_parcel_file(
        core, json.dumps(feature_collection(parcels)).encode(), filename="many.geojson")
    assert [a.parcel.id for a in report.answers] == [p[0] for p in parcels]
    assert all(a.result.area.m2 == pytest.approx(10000.0, rel=1e-3) for a in report.answers)
    assert read_parcel_file(json.dumps(feature_collection(parcels)).encode(),
                            filename="many.geojson").format == "geojson"


# --------------------------------------------------------------------------- review findings


def _border_point(core):
    """A metric point on the city's outline, on a long straight stretch, and the outward
    normal there."""
    city = metric(core.repo.layer("city").geometry.iloc[0])
    ring = city.geoms[0].exterior if city.geom_type == "MultiPolygon" else city.exterior
    xy = np.asarray(ring.coords)
    seg = np.diff(xy, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    i = int(np.argmax(lengths))
    mid = (xy[i] + xy[i + 1]) / 2
    u = seg[i] / lengths[i]
    n = np.array([u[1], -u[0]])
    if city.contains(shapely.Point(*(mid + n * 5))):
        n = -n
    return mid, n, city


def test_a_parcel_half_outside_the_city_is_never_pass_and_says_why(core):
    mid, n, city = _border_point(core)
    sq = box(mid[0] - 60, mid[1] - 60, mid[0] + 60, mid[1] + 60)
    report = service.check_parcels(core, parcels_from_geojson(
        feature_collection([("B", "", sq)])), site_type="enterprise", industry="家具")
    answer = report.to_dict()["parcels"][0]
    assert answer["verdict"] != "pass"
    if not answer["hits"] and not answer["conditional_hits"]:
        assert answer["verdict"] == "needs_info"  # only because of the part outside
    assert 0.2 < answer["outside_city_share"] < 0.8
    assert any("范围以外" in w["message"] and w.get("id") == "B"
               for w in report.to_dict()["warnings"])
    # wholly outside the city, even within the rules' reach of it: out_of_area
    far = shapely.Point(*(mid + n * 1500)).buffer(50)
    assert not far.intersects(city)
    away = service.check_parcels(core, parcels_from_geojson(
        feature_collection([("F", "", far)])), site_type="enterprise", industry="家具")
    assert away.to_dict()["parcels"][0]["verdict"] == "out_of_area"


def test_an_industry_is_read_as_the_rules_name_it_and_an_unknown_one_never_passes(core, places):
    w = places["water"]
    sq = box(w.x - 40, w.y - 40, w.x + 40, w.y + 40)
    fc = feature_collection([("I", "", sq)])

    def answer(industry):
        return service.check_parcels(core, parcels_from_geojson(fc), site_type="enterprise",
                                     industry=industry).to_dict()

    plain = answer("化工")
    hits = [h["rule_id"] for h in plain["parcels"][0]["hits"]]
    assert plain["parcels"][0]["verdict"] == "fail" and hits
    for variant in ("化工厂", "化学原料和化学制品制造业"):
        got = answer(variant)
        assert got["input"]["industry"] == "化工"
        assert got["input"]["industry_given"] == variant
        assert [h["rule_id"] for h in got["parcels"][0]["hits"]] == hits
    for several in ("精细化工与橡胶制品", "化工及畜禽养殖", "养殖场化工"):
        got = answer(several)
        assert got["input"]["industry"] is None, several
        assert got["parcels"][0]["verdict"] != "pass", several
        assert any("多个行业" in w["message"] for w in got["warnings"]), several
    unknown = answer("量子纠缠研究所")
    assert unknown["input"]["industry"] is None
    assert unknown["parcels"][0]["verdict"] in ("needs_info", "fail")
    assert unknown["parcels"][0]["conditional_hits"]
    assert any("不是管控规则使用的行业" in w["message"] for w in unknown["warnings"])


def test_unit_codes_of_the_layer_are_compared_as_stored(instance, places):
    from geoapp.config import load_settings
    from geoapp.services import open_geoapp

    app = open_geoapp(load_settings(instance, environ={}))
    try:
        name = service.units_layer_name(app)
        layer = app.repo.layer(name)
        layer["code"] = layer["code"].str.lower()
        layer["id"] = layer["id"].str.lower()
        app.repo.replace_layer(name, layer, user="test")
        w = places["water"]
        got = service.check_parcels(app, parcels_from_geojson(feature_collection(
            [("L", "", box(w.x - 20, w.y - 20, w.x + 20, w.y + 20))])), industry="化工")
        unit = got.to_dict()["parcels"][0]["units"][0]
        assert unit["code"].startswith("ZH") and unit["requirements_known"]
        assert unit["flagged_lines"]
    finally:
        app.repo.close()
