"""Importing warnings and complaints: all or nothing, with every bad row named."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from catalogue import english, raises_english
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.config import load_settings
from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.services import open_geoapp, upload_limits
from geoapp.services.events import import_events, load_events


@pytest.fixture
def core(instance):
    app = open_geoapp(load_settings(instance, environ={}))
    yield app
    app.repo.close()


def _csv(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_warnings_file_is_rejected_whole_with_row_numbers(core, tmp_path):
    before = len(core.repo.table("grid_warnings"))
    path = _csv(tmp_path, "w.csv", "grid_code,warned_at,pollutant,value\n"
                "JZ3K-0001,2026-11-23T10:00,PM2.5,120\n"
                "JZ3K-9999,2026-11-23T11:00,PM10,80\n"
                "JZ3K-0002,tomorrow,O3,-5\n")
    with pytest.raises(ValidationFailed) as err:
        import_events(core, "warnings", path, user="test")
    rows = {(p["row"], p["column"]) for p in err.value.details}
    assert rows == {(3, "grid_code"), (4, "warned_at"), (4, "value")}
    assert "rows 3, 4" in english(err.value.message)
    assert english(next(p for p in err.value.details if p["row"] == 3)["message"]) == \
        "unknown hotspot grid code"
    assert len(core.repo.table("grid_warnings")) == before  # the good first row is not in


def test_missing_required_column_is_reported(core, tmp_path):
    path = _csv(tmp_path, "w.csv", "grid_code,pollutant\nJZ3K-0001,PM10\n")
    with raises_english(ValidationFailed, "warned_at"):
        import_events(core, "warnings", path, user="test")


def test_warnings_with_utc_offset_are_stored_in_shanghai_time(core, tmp_path):
    path = _csv(tmp_path, "w.csv", "grid_code,warned_at,pollutant\n"
                "JZ3K-0001,2026-11-23T02:00:00Z,pm2.5\n")
    assert import_events(core, "warnings", path, user="test")["rows"] == 1
    last = core.repo.table("grid_warnings").iloc[-1]
    assert (last["warned_at"], last["pollutant"]) == ("2026-11-23T10:00:00", "PM2.5")


def test_importing_the_same_warnings_twice_is_refused(core, tmp_path):
    path = _csv(tmp_path, "w.csv", "grid_code,warned_at,pollutant\nJZ3K-0003,2026-11-24T08:00,O3\n")
    import_events(core, "warnings", path, user="test")
    with raises_english(ValidationFailed, "row"):
        import_events(core, "warnings", path, user="test")


def test_complaints_xlsx_in_chinese_and_english_categories_get_districts_by_location(core,
                                                                                    tmp_path):
    county = core.repo.layer("counties").set_index("name").loc["温县", "geometry"]
    p = county.representative_point()
    df = pd.DataFrame({
        "received_at": ["2026-11-23T09:00", "2026-11-23T10:00", "2026-11-23T11:00"],
        "category": ["噪声", "Solid waste", "water"],
        "lon": [p.x, None, None], "lat": [p.y, None, None], "crs": ["wgs84", None, None],
        "district": [None, "博爱县", None],
    })
    path = tmp_path / "c.xlsx"
    df.to_excel(path, index=False)
    before = len(core.repo.table("complaints"))
    assert import_events(core, "complaints", path, user="test")["rows"] == 3
    new = core.repo.table("complaints").iloc[before:]
    assert list(new["category"]) == ["noise", "solid_waste", "water"]
    assert list(new["district"]) == ["温县", "博爱县", ""]


def test_complaint_coordinates_need_their_system_and_must_lie_in_the_city(core, tmp_path):
    before = len(core.repo.table("complaints"))
    path = _csv(tmp_path, "c.csv", "received_at,category,lon,lat,crs\n"
                "2026-11-23T09:00,大气,113.2,35.2,\n"
                "2026-11-23T09:30,大气,116.4,39.9,wgs84\n"
                "2026-11-23T10:00,smell,,,\n")
    with pytest.raises(ValidationFailed) as err:
        import_events(core, "complaints", path, user="test")
    by_row = {p["row"]: p["message"] for p in err.value.details}
    assert "naming their system" in english(by_row[2])
    assert "outside every county" in english(by_row[3])
    assert "大气/噪声" in by_row[4]
    assert len(core.repo.table("complaints")) == before


def test_gcj02_complaint_is_converted_before_the_spatial_join(core, tmp_path):
    path = _csv(tmp_path, "c.csv", "received_at,category,lon,lat,crs\n"
                "2026-11-23T09:00,大气,113.25,35.22,gcj02\n")
    df = load_events(core, "complaints", path)
    pt = df.geometry.iloc[0]
    assert 0.003 < abs(pt.x - 113.25) < 0.01  # GCJ-02 is a few hundred metres off WGS84
    assert df["district"].iloc[0] != ""


def test_cli_import_reports_bad_rows_and_exits_2(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    path = _csv(tmp_path, "w.csv", "grid_code,warned_at,pollutant\nNOPE,2026-11-23T08:00,PM10\n")
    result = CliRunner().invoke(main, ["import", "warnings", str(path)])
    assert result.exit_code == 2
    assert "未知的热点网格编号" in result.output


def test_cli_weekly_report_writes_all_files(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", "weekly", "--week", "2026-W46", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["bulletin.txt", "map.html", "map.png", "bulletin.docx", "bulletin.xlsx"])
    shutil.rmtree(out)


def test_file_with_more_rows_than_max_rows_is_refused_whole(core, tmp_path):
    before = len(core.repo.table("grid_warnings"))
    core.settings["MAX_ROWS"] = 2
    path = _csv(tmp_path, "w.csv", "grid_code,warned_at,pollutant,value\n"
                "JZ3K-0001,2026-11-23T10:00,PM2.5,120\n"
                "JZ3K-0002,2026-11-23T11:00,PM10,80\n"
                "JZ3K-0003,2026-11-23T12:00,O3,90\n")
    with raises_english(InvalidInput, r"w.csv: 3 rows, more than the 2 accepted") as err:
        import_events(core, "warnings", path, user="test", limits=upload_limits(core.settings))
    assert err.value.message.startswith("文件行数超过上限")  # Chinese first, as the pages show it
    assert len(core.repo.table("grid_warnings")) == before
