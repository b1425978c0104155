"""`geoapp flag` in and out of every format, a partition at a time.

Parquet and GeoParquet in (a file, or a folder of files) give the same answers as the same
rows in CSV; Parquet out holds the rule ids and the hits as list columns, the GeoPackage the
rule ids as a string list; a refused input leaves no file behind and an older output
untouched; broken inputs get one clear message.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.services.flagfile import OUTPUT_HEADERS, OUTPUT_KEYS, FlagOptions, flag_file

from webutil import login, river_point

H = dict(zip(OUTPUT_KEYS, OUTPUT_HEADERS["en"], strict=True))


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture(scope="module")
def sites(core) -> pd.DataFrame:
    """600 sites: random over the city and beyond it, some next to a river, every type, some
    with a fuel, text cells as a CSV holds them."""
    rng = np.random.default_rng(5)
    n = 600
    x0, y0, x1, y1 = 112.4, 34.7, 113.8, 35.5  # the city and some country around it
    lon, lat = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    for i, metres in enumerate((50, 150, 300, 450, 900)):
        lon[i * 7], lat[i * 7] = river_point(core, metres)
    kinds = np.array(["enterprise", "畜禽养殖场", "scattered_workshop", ""], dtype=object)
    return pd.DataFrame({
        "name": [f"企业{i}" for i in range(n)],
        "lon": [f"{v:.6f}" for v in lon], "lat": [f"{v:.6f}" for v in lat],
        "site_type": rng.choice(kinds, n), "industry": rng.choice(
            np.array(["食品", "化工", "焦化", ""], dtype=object), n),
        "fuel": rng.choice(np.array(["", "燃煤", "天然气"], dtype=object), n),
    })


def _csv(path, frame: pd.DataFrame):
    frame.to_csv(path, index=False)
    return path


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _answers(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[H[k] for k in ("verdict", "rule_ids", "hit_count", "min_distance_m")]]


def test_parquet_in_answers_as_csv_in(core, sites, tmp_path):
    flag_file(core, _csv(tmp_path / "in.csv", sites), tmp_path / "a.csv", FlagOptions(lang="en"))
    table = pa.Table.from_pandas(sites.assign(lon=sites["lon"].astype(float),
                                              lat=sites["lat"].astype(float)),
                                 preserve_index=False)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=97)
    summary = flag_file(core, tmp_path / "in.parquet", tmp_path / "b.csv",
                        FlagOptions(lang="en"), partition_rows=150)
    a, b = _read(tmp_path / "a.csv"), _read(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(_answers(a), _answers(b))
    assert summary["rows"] == len(sites)
    assert b["name"].tolist() == sites["name"].tolist()
    # a folder of Parquet files is one input, in file-name order
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, len(sites), 250)):
        pq.write_table(table.slice(start, 250), folder / f"part-{i:03d}.parquet")
    flag_file(core, folder, tmp_path / "c.csv", FlagOptions(lang="en"))
    pd.testing.assert_frame_equal(_answers(a), _answers(_read(tmp_path / "c.csv")))


def test_geoparquet_in_any_crs_and_parquet_out_with_list_columns(core, sites, tmp_path):
    flag_file(core, _csv(tmp_path / "in.csv", sites), tmp_path / "a.csv", FlagOptions(lang="en"))
    a = _read(tmp_path / "a.csv")
    lon, lat = sites["lon"].astype(float), sites["lat"].astype(float)
    gdf = gpd.GeoDataFrame(sites.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    # CGCS2000 / 3-degree Gauss-Kruger CM 114E: the city's metric system
    gdf.to_crs("EPSG:4547").to_parquet(tmp_path / "in.parquet", row_group_size=128)
    flag_file(core, tmp_path / "in.parquet", tmp_path / "out.parquet", FlagOptions(lang="en"),
              partition_rows=200)
    out = gpd.read_parquet(tmp_path / "out.parquet")
    assert out.crs.equals(gpd.GeoSeries([], crs="OGC:CRS84").crs) or out.crs.to_epsg() == 4326
    assert out[H["verdict"]].tolist() == a[H["verdict"]].tolist()
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert schema.field(H["rule_ids"]).type == pa.list_(pa.string())
    hits_type = schema.field("hits").type
    assert pa.types.is_large_list(hits_type) or pa.types.is_list(hits_type)
    raw = pq.read_table(tmp_path / "out.parquet")
    for i, row in enumerate(raw.to_pylist()):
        expected = json.loads(a["hits"].iloc[i])
        assert [h["rule_id"] for h in row["hits"]] == [h["rule_id"] for h in expected]
        for got, exp in zip(row["hits"], expected, strict=True):
            assert got["feature_name"] == exp["feature_name"]
            assert got["distance_m"] == pytest.approx(exp["distance_m"], abs=0.11)
            assert got["basis"] == exp["basis"] and got["title"] == exp["title"]
        assert row[H["rule_ids"]] == [r for r in a[H["rule_ids"]].iloc[i].split(";") if r]
        expected_cond = json.loads(a["conditional_hits"].iloc[i])
        assert [h["missing"] for h in row["conditional_hits"]] == \
            [h["missing"] for h in expected_cond]
    # the checked point, in WGS84, within a millimetre or so of the input's point
    assert np.allclose(out.geometry.x, lon, atol=1e-7) and np.allclose(out.geometry.y, lat,
                                                                       atol=1e-7)


def test_geopackage_out_keeps_rule_ids_as_a_list(core, sites, tmp_path):
    flag_file(core, _csv(tmp_path / "in.csv", sites), tmp_path / "out.gpkg",
              FlagOptions(lang="en"), partition_rows=100)
    out = pyogrio.read_dataframe(tmp_path / "out.gpkg")
    info = pyogrio.read_info(tmp_path / "out.gpkg")
    assert len(out) == len(sites) and info["crs"] == "EPSG:4326"
    ids = out[H["rule_ids"]]
    assert all(isinstance(v, list) for v in ids) and any(len(v) > 1 for v in ids)


def test_a_refused_input_leaves_nothing_and_keeps_an_older_output(core, sites, tmp_path):
    broken = sites.copy()
    broken.loc[len(broken) - 1, "lon"] = "东经一百一十三度"
    dst = tmp_path / "out.csv"
    dst.write_text("an older answer\n")
    with pytest.raises(ValidationFailed) as err:
        flag_file(core, _csv(tmp_path / "in.csv", broken), dst, partition_rows=50)
    assert err.value.details and err.value.details[0]["row"] == len(broken) + 1
    assert dst.read_text() == "an older answer\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.parametrize("content, words", [
    (b"name,lon,lat\n\xd6\xd0\xce\xc4,113.2,35.2\n", "UTF-8"),
    (b"name,lon,lat\na,113.2,35.2\nb,113.3\n", "列数"),
    (b"name,lon,lat\na,113.2,35.2,extra\n", "列数"),
    (b'name,lon,lat\n"open quote,113.2,35.2\n', "CSV"),
    (b"name,lon,lat\ra,113.2,35.2\rb,113.3,35.1\r", "LF"),
])
def test_broken_csv_gets_one_clear_message(core, tmp_path, content, words):
    (tmp_path / "in.csv").write_bytes(content)
    with pytest.raises((ValidationFailed, InvalidInput)) as err:
        flag_file(core, tmp_path / "in.csv", tmp_path / "out.csv")
    assert words in str(err.value.message)
    assert not (tmp_path / "out.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


def test_header_only_and_blank_lines_give_an_empty_answer(core, tmp_path):
    (tmp_path / "in.csv").write_bytes(b"\xef\xbb\xbfname,lon,lat\r\n\r\n\r\n")
    summary = flag_file(core, tmp_path / "in.csv", tmp_path / "out.csv")
    assert summary["rows"] == 0
    assert _read(tmp_path / "out.csv").columns.tolist()[:3] == ["name", "lon", "lat"]
    flag_file(core, tmp_path / "in.csv", tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 0


@pytest.mark.parametrize("case", ["no-crs", "not-parquet", "bad-wkb"])
def test_broken_parquet_gets_one_clear_message(core, tmp_path, case):
    src = tmp_path / "in.parquet"
    if case == "not-parquet":
        src.write_bytes(b"PAR1 but not really")
        with pytest.raises(InvalidInput, match="Parquet"):
            flag_file(core, src, tmp_path / "out.csv")
        return
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"]}}}
    if case == "no-crs":
        geo["columns"]["geometry"]["crs"] = None
    wkb = [shapely.to_wkb(shapely.Point(113.2, 35.2)),
           b"\x01\x02 not wkb" if case == "bad-wkb" else shapely.to_wkb(shapely.Point(1, 1))]
    table = pa.table({"name": ["a", "b"], "geometry": pa.array(wkb, pa.binary())})
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo).encode()}), src)
    if case == "no-crs":
        with pytest.raises(InvalidInput, match="coordinate system"):
            flag_file(core, src, tmp_path / "out.csv")
        return
    with pytest.raises(ValidationFailed) as err:  # the unreadable geometry is a bad row
        flag_file(core, src, tmp_path / "out.csv")
    assert [d["row"] for d in err.value.details] == [2]
    summary = flag_file(core, src, tmp_path / "out.csv", FlagOptions(skip_bad=True))
    assert summary["bad_rows"] == 1 and summary["rows"] == 2


def test_the_web_upload_takes_no_parquet(offline_app, sites, tmp_path):
    """Parquet is for the command line: an upload of it is refused before anything reads it."""
    client = offline_app.test_client()
    csrf = login(client, "inspector")
    pq.write_table(pa.Table.from_pandas(sites, preserve_index=False), tmp_path / "s.parquet")
    r = client.post("/api/flag", data={"file": (io.BytesIO((tmp_path / "s.parquet").read_bytes()),
                                                "s.parquet")},
                    content_type="multipart/form-data", headers={"X-CSRFToken": csrf})
    assert r.status_code == 400 and "geoapp flag" in r.get_data(as_text=True)


def test_a_folder_output_holds_one_geoparquet_file_per_partition(core, sites, tmp_path):
    """``-o OUT/``: each partition writes its own file (on a cluster, the worker that flagged
    it); read together they equal the single Parquet file; a refused input leaves no folder,
    and a folder that holds something is not written into."""
    src = _csv(tmp_path / "in.csv", sites)
    flag_file(core, src, tmp_path / "one.parquet", FlagOptions(lang="en"))
    summary = flag_file(core, src, f"{tmp_path / 'out'}/", FlagOptions(lang="en"),
                        partition_rows=128)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [f"part-{i:05d}.parquet" for i in range(5)]
    assert summary["rows"] == len(sites)
    whole = pq.read_table(tmp_path / "one.parquet")
    parts = pq.read_table(tmp_path / "out")
    assert parts.column_names == whole.column_names
    assert parts.to_pylist() == whole.to_pylist()
    broken = sites.copy()
    broken.loc[400, "lat"] = "95"
    with pytest.raises(ValidationFailed):
        flag_file(core, _csv(tmp_path / "bad.csv", broken), f"{tmp_path / 'out2'}/",
                  partition_rows=128)
    assert not (tmp_path / "out2").exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    with pytest.raises(InvalidInput, match="new or empty"):
        flag_file(core, src, tmp_path / "out", partition_rows=128)


def test_a_neutralised_record_with_a_line_break_stays_one_record(core, tmp_path):
    """A record rewritten because one cell looks like a formula keeps its other cells'
    quotes: a line break inside a cell never splits the row."""
    (tmp_path / "in.csv").write_bytes(
        b'id,n0,lon,lat,note\r\nA,=1,113.2,35.2,"l1\nl2"\r\nB,\x01x,113.3,35.25,"c\rd"\r\n'
        b'C,x,113.3,35.25,plain\r\n')
    flag_file(core, tmp_path / "in.csv", tmp_path / "out.csv",
              FlagOptions(default_site_type="enterprise"))
    out = _read(tmp_path / "out.csv")
    assert out["id"].tolist() == ["A", "B", "C"]
    assert out["n0"].tolist() == ["'=1", "x", "x"]
    assert out["note"].tolist() == ["l1\nl2", "c\rd", "plain"]


def test_an_unknown_site_type_or_a_polygon_is_not_checked(core, sites, tmp_path):
    """Text no site type answers to is refused as the single check refuses it (never 符合);
    a polygon or a line is not checked at one of its points."""
    frame = sites.head(3).copy()
    frame["site_type"] = ["企业", "enterprise", ""]
    with pytest.raises(ValidationFailed) as err:
        flag_file(core, _csv(tmp_path / "in.csv", frame), tmp_path / "out.csv")
    assert [d["row"] for d in err.value.details] == [2]
    assert "企业" in err.value.details[0]["reason"]
    summary = flag_file(core, tmp_path / "in.csv", tmp_path / "out.csv",
                        FlagOptions(skip_bad=True, lang="en"))
    out = _read(tmp_path / "out.csv")
    assert out[H["verdict"]].iloc[0] == "error" and summary["bad_rows"] == 1
    assert out[H["verdict"]].iloc[2] != "error"  # blank: a missing type, checked as such
    shapes = gpd.GeoDataFrame({"name": ["p", "pt", "line"]}, geometry=[
        shapely.Point(113.2, 35.2).buffer(0.01), shapely.Point(113.2, 35.2),
        shapely.LineString([(113.2, 35.2), (113.3, 35.3)])], crs="EPSG:4326")
    shapes.to_parquet(tmp_path / "shapes.parquet")
    with pytest.raises(ValidationFailed) as err:
        flag_file(core, tmp_path / "shapes.parquet", tmp_path / "out.csv",
                  FlagOptions(default_site_type="enterprise"))
    assert [d["row"] for d in err.value.details] == [1, 3]
    assert "geoapp parcel" in err.value.details[0]["reason"]


@pytest.mark.backends("gpkg")  # the database as a file the output could land on
def test_the_output_never_overwrites_the_input_or_the_database(core, sites, tmp_path):
    src = _csv(tmp_path / "in.csv", sites)
    before = src.read_bytes()
    with pytest.raises(InvalidInput, match="overwrite the input"):
        flag_file(core, src, src)
    assert src.read_bytes() == before
    database = Path(core.settings["DATABASE"])
    size = database.stat().st_size
    for target in (database, database.with_name(database.name + "-wal.gpkg")):
        with pytest.raises(InvalidInput, match="database"):
            flag_file(core, src, target)
    assert database.stat().st_size == size


def test_a_ragged_row_is_named_by_its_line(core, tmp_path):
    rows = ["id,lon,lat"] + [f"r{i},113.2,35.2" for i in range(20)]
    rows[10] = "r9,113.2"
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValidationFailed) as err:
        flag_file(core, tmp_path / "in.csv", tmp_path / "out.csv")
    assert err.value.details[0]["row"] == 11 and "第 11 行" in str(err.value.message)
