"""Layer downloads for other GIS tools: GeoPackage, GeoJSON, KML, zipped Shapefile."""

from __future__ import annotations

import zipfile
from pathlib import Path

import fiona
import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner
from shapely.geometry import Point, Polygon

from geoapp.cli import main
from geoapp.config import load_settings
from geoapp.domain.errors import InvalidInput, NotFound
from geoapp.exports.interchange import shapefile_field_names, write_layer
from geoapp.services import open_geoapp
from geoapp.services.interchange import export_layer, layer_choices

from webutil import copy_database

NAME = "焦作市中站区华星预制构件有限公司"


@pytest.fixture(scope="module")
def core(tmp_path_factory, jiaozuo_db):
    """Read-only use of the built Jiaozuo database (exports never write to it)."""
    inst = tmp_path_factory.mktemp("interchange")
    copy_database(jiaozuo_db, inst)
    app = open_geoapp(load_settings(inst, environ={}))
    yield app
    app.repo.close()


def _tiny() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": ["Z1", "Z2"], "name": ["示范区饮用水水源一级保护区", "温县化工园区"],
         "classification": ["relocate", None], "credit_code": ["91410803MAYY9GXF5E", ""]},
        geometry=[Polygon([(113.0, 35.0), (113.01, 35.0), (113.01, 35.01)]),
                  Polygon([(113.1, 35.0), (113.11, 35.0), (113.11, 35.01)])], crs=4326)


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_enterprises_read_back_with_chinese_names(core, tmp_path, fmt):
    out = tmp_path / f"e.{fmt}"
    report = export_layer(core, "enterprises", fmt, out)
    back = pyogrio.read_dataframe(out)
    assert report["features"] == len(back) == 100
    assert back.loc[back["id"] == "E0001", "name"].iat[0] == NAME
    assert back.crs.to_epsg() == 4326
    assert "species" not in back.columns  # only the enterprise's own columns
    assert back.geometry.iloc[0].x == pytest.approx(113.167141)


def test_shapefile_zip_has_utf8_cpg_prj_short_fields_and_chinese_names(core, tmp_path):
    out = tmp_path / "e.zip"
    export_layer(core, "enterprises", "shp", out)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert {"enterprises.shp", "enterprises.dbf", "enterprises.shx", "enterprises.prj",
                "enterprises.cpg", "enterprises_fields.csv"} <= names
        assert zf.read("enterprises.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
        assert "GCS_WGS_1984" in zf.read("enterprises.prj").decode() or \
            "WGS" in zf.read("enterprises.prj").decode()
    back = pyogrio.read_dataframe(f"/vsizip/{out}/enterprises.shp")
    assert all(len(c) <= 10 for c in back.columns)
    assert {"credit_cd", "classif", "online_mon", "permit_no"} <= set(back.columns)
    assert back.loc[back["id"] == "E0001", "name"].iat[0] == NAME
    assert back.loc[back["id"] == "E0001", "credit_cd"].iat[0] == "91410803MAYY9GXF5E"


def test_shapefile_reads_back_chinese_with_fiona_too(tmp_path):
    out = write_layer(_tiny(), tmp_path / "zones.zip", "shp", layer="zones")
    with fiona.open(f"zip://{out}!zones.shp") as src:
        names = [f["properties"]["name"] for f in src]
    assert names == ["示范区饮用水水源一级保护区", "温县化工园区"]


def test_kml_placemarks_carry_name_and_description_google_earth_shows(core, tmp_path):
    out = tmp_path / "e.kml"
    export_layer(core, "enterprises", "kml", out)
    text = out.read_text(encoding="utf-8")
    assert f"<name>{NAME}</name>" in text
    assert "<description>" in text and "地址：" in text and "整治分类：搬迁升级" in text
    back = pyogrio.read_dataframe(out)
    assert len(back) == 100 and NAME in set(back["Name"])
    assert pyogrio.list_layers(out)[0][0] == "焦作市工业企业"


def test_zone_layer_downloads_as_polygons_with_names(core, tmp_path):
    source = core.repo.layer("counties")
    for fmt in ("gpkg", "geojson", "kml", "shp"):
        out = Path(export_layer(core, "counties", fmt, tmp_path / f"c.{fmt}")["path"])
        assert out.suffix == (".zip" if fmt == "shp" else f".{fmt}")
        path = f"/vsizip/{out}/counties.shp" if fmt == "shp" else out
        back = pyogrio.read_dataframe(path)
        assert len(back) == len(source)
        names = set(back["Name" if fmt == "kml" else "name"])
        assert "解放区" in names, fmt
        assert back.geom_type.str.contains("Polygon").all(), fmt


def test_farms_and_workshops_are_downloadable(core, tmp_path):
    farms = export_layer(core, "farms", "geojson", tmp_path / "f.geojson")
    shops = export_layer(core, "workshops", "gpkg", tmp_path / "w.gpkg")
    assert farms["features"] == len(core.repo.sites("livestock_farm")) > 0
    assert shops["features"] == len(core.repo.sites("scattered_workshop")) > 0
    assert "status" in pyogrio.read_dataframe(tmp_path / "w.gpkg").columns


def test_unknown_layer_and_format_are_refused(core, tmp_path):
    with pytest.raises(NotFound, match="enterprises"):
        export_layer(core, "factories", "gpkg", tmp_path / "x.gpkg")
    with pytest.raises(InvalidInput, match="kml"):
        export_layer(core, "rivers", "dxf", tmp_path / "x.dxf")


def test_layer_choices_list_sites_then_every_zone_layer(core):
    names = [c["name"] for c in layer_choices(core)]
    assert names[:3] == ["enterprises", "farms", "workshops"]
    assert set(core.repo.layer_names()) <= set(names)


def test_long_field_names_become_unique_short_names():
    mapping = shapefile_field_names(["materials_cleared_date", "materials_cleared_count",
                                     "description_long", "description_longer", "name"])
    assert all(len(v) <= 10 for v in mapping.values())
    assert len({v.lower() for v in mapping.values()}) == 5
    assert mapping["materials_cleared_date"] == "materials" and mapping["name"] == "name"


def test_nullable_values_are_written_as_nulls(tmp_path):
    gdf = gpd.GeoDataFrame({"n": pd.array([1, None], dtype="Int64"),
                            "ok": pd.array([True, None], dtype="boolean"), "name": ["甲", "乙"]},
                           geometry=[Point(113.1, 35.1), Point(113.2, 35.2)], crs=4326)
    back = pyogrio.read_dataframe(write_layer(gdf, tmp_path / "n.gpkg", "gpkg", layer="n"))
    assert back["n"].iloc[0] == 1 and pd.isna(back["n"].iloc[1])
    assert bool(back["ok"].iloc[0]) and pd.isna(back["ok"].iloc[1])


def test_cli_exports_a_layer(instance: Path, monkeypatch, tmp_path):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    out = tmp_path / "rivers.zip"
    r = CliRunner().invoke(main, ["export", "layer", "rivers", "--format", "shp", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert zipfile.is_zipfile(out)
    r = CliRunner().invoke(main, ["export", "layer", "nope", "--format", "kml", "-o", str(out)])
    assert r.exit_code == 2 and "未知的图层" in r.stderr
