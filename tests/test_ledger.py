"""The ledger (整治工作台账) in the bureau's Excel template: export, import, rejection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from catalogue import english, raises_english
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from pyproj import Geod

from geoapp.cli import main
from geoapp.config import load_settings
from geoapp.domain import ledger as L
from geoapp.domain.creditcode import make_credit_code
from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.services import open_geoapp, upload_limits
from geoapp.services.ledger import export_ledger, import_ledger
from geoapp.spatial.crs import gcj02_to_wgs84, wgs84_to_gcj02

FIRST_DATA_ROW = 5
STABLE = [c.field for c in L.LEDGER_COLUMNS] + ["lon", "lat", "stage", "new_site_name"]


@pytest.fixture
def core(instance: Path):
    app = open_geoapp(load_settings(instance, environ={}))
    yield app
    app.repo.close()


def _stored(core) -> dict[str, dict]:
    df = core.repo.sites("enterprise").drop(columns="geometry")
    df = df.astype(object).where(df.notna(), None)
    return {r["id"]: {k: r[k] for k in STABLE} for r in df.to_dict("records")}


def _data_rows(path: Path) -> list[tuple]:
    ws = load_workbook(path).active
    rows = []
    for r in ws.iter_rows(min_row=FIRST_DATA_ROW, values_only=True):
        if r[0] is not None and str(r[0]).startswith(L.NOTE_PREFIX):
            break
        if any(v is not None for v in r):
            rows.append(r)
    return rows


def _column(ws, header: str) -> int:
    for row in (3, 4):
        for cell in ws[row]:
            if cell.value == header:
                return cell.column
    raise AssertionError(f"no header {header}")


def _edit(path: Path, out: Path, changes: dict[tuple[int, str], object]) -> Path:
    """Change cells of an exported workbook: (data row index from 0, header) -> value."""
    wb = load_workbook(path)
    ws = wb.active
    for (i, header), value in changes.items():
        ws.cell(row=FIRST_DATA_ROW + i, column=_column(ws, header), value=value)
    wb.save(out)
    return out


def _bureau_template(path: Path, rows: list[dict[str, object]]) -> Path:
    """A template file as the bureau circulates it, built cell by cell (not by the exporter)."""
    cols = [*L.LEDGER_COLUMNS, *L.LOCATION_COLUMNS]
    wb = Workbook()
    ws = wb.active
    ws["A1"] = "焦作市百企退城企业整治工作台账"
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(cols))
    ws["A2"] = "填报单位：焦作市搬迁办"
    ws["P2"] = "填表时间：2019年6月30日"
    for c, col in enumerate(cols, start=1):
        if col.group:
            ws.cell(row=3, column=c, value=col.group)
            ws.cell(row=4, column=c, value=col.header)
        else:
            ws.cell(row=3, column=c, value=col.header)
            ws.merge_cells(start_row=3, start_column=c, end_row=4, end_column=c)
    ws.merge_cells("H3:M3")
    ws.merge_cells(start_row=3, start_column=20, end_row=3, end_column=22)
    for r, values in enumerate(rows, start=5):
        for c, col in enumerate(cols, start=1):
            ws.cell(row=r, column=c, value=values.get(col.header))
    ws.cell(row=5 + len(rows) + 1, column=1, value="填表说明：按模板填写。")
    wb.save(path)
    return path


NEW_ROW = {
    "序号": 101, "辖区": "温县", "企业名称": "温县新兴铸造有限公司", "企业详细地址": "温县黄河路8号",
    "工商营业执照（统一社会信用代码）": make_credit_code("91410825MA4ABCDE1"),
    "行业类别": "铸造", "职工人数": 56, "厂区土地性质": "租用", "有无安全评价": "有",
    "有无节能审查": "无", "环评批复文号": "温环审〔2018〕3号", "排污许可证号": "",
    "有无在线监测": "无", "存在主要环保问题": "无组织排放", "整改措施": "提标改造",
    "整治分类": "改造提升", "整改完成时限": dt.datetime(2020, 6, 30), "进展情况": "已启动",
    "备注": "",
}


# ------------------------------------------------------------------------------ export
def test_export_then_import_gives_back_the_same_ledger(core, tmp_path):
    before = _stored(core)
    first = export_ledger(core, tmp_path / "a.xlsx", filled_on=dt.date(2020, 1, 2))
    report = import_ledger(core, tmp_path / "a.xlsx", user="planner1")
    assert (report["created"], report["updated"]) == (0, len(before))
    assert _stored(core) == before
    export_ledger(core, tmp_path / "b.xlsx", filled_on=dt.date(2020, 1, 2))
    assert _data_rows(tmp_path / "a.xlsx") == _data_rows(tmp_path / "b.xlsx")
    assert first["rows"] == len(before) == 100
    assert core.repo.history("E0001")[-1]["user"] == "planner1"


def test_export_has_title_merged_two_row_header_note_widths_and_frozen_header(core, tmp_path):
    export_ledger(core, tmp_path / "l.xlsx", unit="焦作市搬迁办", filled_on=dt.date(2020, 3, 5))
    ws = load_workbook(tmp_path / "l.xlsx").active
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:V1", "A3:A4", "E3:E4", "H3:M3", "T3:V3"} <= merged
    assert ws["A1"].value == "焦作市百企退城企业整治工作台账"
    assert ws["A2"].value == "填报单位：焦作市搬迁办"
    assert "填表时间：2020年3月5日" in [c.value for c in ws[2]]
    assert [ws.cell(row=4, column=c).value for c in range(8, 14)] == [
        "厂区土地性质", "有无安全评价", "有无节能审查", "环评批复文号", "排污许可证号", "有无在线监测"]
    assert ws["E3"].value == "工商营业执照（统一社会信用代码）"
    assert ws["P3"].value == "整治分类" and ws["S3"].value == "备注"
    last = ws.max_row
    assert ws.cell(row=last, column=1).value.startswith("填表说明")
    assert f"A{last}:V{last}" in merged
    assert ws.freeze_panes == "D5"
    assert ws.column_dimensions["C"].width > ws.column_dimensions["A"].width
    assert ws["I5"].value in ("有", "无") and ws["P5"].value in [c.zh for c in
                                                                L.Classification]


def test_district_export_lists_only_that_district(core, tmp_path):
    report = export_ledger(core, tmp_path / "w.xlsx", district="温县")
    rows = _data_rows(tmp_path / "w.xlsx")
    assert report["rows"] == len(rows) == len(core.repo.sites("enterprise", district="温县")) > 0
    assert {r[1] for r in rows} == {"温县"}
    assert load_workbook(tmp_path / "w.xlsx").active["A1"].value.startswith("焦作市温县")


def test_unknown_district_is_refused(core, tmp_path):
    with pytest.raises(InvalidInput, match="洛阳区"):
        export_ledger(core, tmp_path / "x.xlsx", district="洛阳区")


def test_with_hits_adds_rule_columns_with_distances(core, tmp_path):
    export_ledger(core, tmp_path / "h.xlsx", with_hits=True)
    ws = load_workbook(tmp_path / "h.xlsx").active
    assert ws["W3"].value == L.GROUP_HITS and ws["X4"].value == "命中规则及距离"
    hits = core.repo.site_hits("E0001")
    assert ws["W5"].value == len(hits) > 0
    assert " m）" in ws["X5"].value
    import_ledger(core, tmp_path / "h.xlsx", user="t")  # extra columns are ignored


def test_formula_like_text_survives_the_round_trip(core, tmp_path):
    site = core.repo.site("E0003")
    core.repo.update_site("E0003", {"measures": "=拆除设备"}, user="t",
                          expected_version=site["version"])
    export_ledger(core, tmp_path / "f.xlsx")
    ws = load_workbook(tmp_path / "f.xlsx").active
    assert ws.cell(row=7, column=15).value == "'=拆除设备"
    import_ledger(core, tmp_path / "f.xlsx", user="t")
    assert core.repo.site("E0003")["measures"] == "=拆除设备"


# ------------------------------------------------------------------------------ import
def test_new_enterprise_in_gcj02_is_created_at_its_wgs84_position(core, tmp_path):
    lon, lat = 113.0650, 34.9420
    glon, glat = wgs84_to_gcj02(lon, lat)
    path = _bureau_template(tmp_path / "ledger_template.xlsx",
                            [{**NEW_ROW, "经度": glon, "纬度": glat, "坐标系": "gcj02"}])
    report = import_ledger(core, path, user="planner1")
    assert (report["created"], report["updated"]) == (1, 0)
    assert report["unit"] == "焦作市搬迁办"
    new = core.repo.sites("enterprise", district="温县")
    row = new[new["name"] == "温县新兴铸造有限公司"].iloc[0]
    assert row["id"] == "E0101"
    assert row["classification"] == "upgrade" and row["deadline"] == "2020-06-30"
    assert row["safety_assessment"] == "true" and not row["online_monitoring"]
    _, _, moved = Geod(ellps="WGS84").inv(glon, glat, row["lon"], row["lat"])
    assert moved > 300  # GCJ-02 was converted, not stored as WGS84
    back = gcj02_to_wgs84(glon, glat)
    assert abs(row["lon"] - back[0]) < 1e-6 and abs(row["lat"] - back[1]) < 1e-6


def test_known_enterprise_is_matched_by_credit_code_without_coordinates(core, tmp_path):
    old = core.repo.site("E0002")
    row = {L.LEDGER_COLUMNS[i].header: v for i, v in enumerate([
        2, old["district"], "改名后的特钢公司", old["address"], old["credit_code"],
        old["industry"], 900, "征用", "有", "有", old["eia_approval"], "", "有", "问题", "措施",
        "搬迁升级", "2021/3/31", "已签订搬迁协议", "新址占地约120亩"])}
    import_ledger(core, _bureau_template(tmp_path / "t.xlsx", [row]), user="planner2")
    new = core.repo.site("E0002")
    assert (new["name"], new["employees"], new["classification"]) == (
        "改名后的特钢公司", 900, "relocate")
    assert new["deadline"] == "2021-03-31" and new["remarks"] == "新址占地约120亩"
    assert (new["lon"], new["lat"], new["stage"]) == (old["lon"], old["lat"], old["stage"])
    assert new["version"] == old["version"] + 1
    last = core.repo.history("E0002")[-1]
    assert last["user"] == "planner2" and last["before"]["name"] != last["after"]["name"]


@pytest.mark.parametrize(("header", "value", "reason"), [
    ("工商营业执照（统一社会信用代码）", "91410803MAYY9GXF5F", "check character"),
    ("有无安全评价", "是", "有"),
    ("整治分类", "停产整顿", "classification"),
    ("整改完成时限", "2020-13-45", "not a date"),
    ("职工人数", "很多", "whole number"),
    ("辖区", "洛阳区", "not a county"),
    ("厂区土地性质", "自有", "租用"),
])
def test_one_bad_cell_rejects_the_whole_file(core, tmp_path, header, value, reason):
    export_ledger(core, tmp_path / "a.xlsx")
    bad = _edit(tmp_path / "a.xlsx", tmp_path / "bad.xlsx",
                {(0, "进展情况"): "这一行本身没有问题", (5, header): value})
    before = _stored(core)
    last = core.repo.last_change_id()
    with pytest.raises(ValidationFailed) as err:
        import_ledger(core, bad, user="t")
    problems = err.value.details
    assert len(problems) == 1
    assert problems[0]["row"] == FIRST_DATA_ROW + 5
    assert problems[0]["column"] == header
    assert reason in english(problems[0]["message"])
    assert _stored(core) == before and core.repo.last_change_id() == last


def test_every_bad_row_is_reported_at_once(core, tmp_path):
    export_ledger(core, tmp_path / "a.xlsx")
    bad = _edit(tmp_path / "a.xlsx", tmp_path / "bad.xlsx",
                {(1, "有无在线监测"): "不详", (7, "整治分类"): "关停", (9, "经度"): 500000.0})
    with pytest.raises(ValidationFailed) as err:
        import_ledger(core, bad, user="t")
    got = {(p["row"], p["column"]) for p in err.value.details}
    assert got == {(6, "有无在线监测"), (12, "整治分类"), (14, "经度/纬度")}


@pytest.mark.parametrize("change", ["drop", "rename"])
def test_wrong_column_set_is_rejected_naming_the_column(core, tmp_path, change):
    export_ledger(core, tmp_path / "a.xlsx")
    wb = load_workbook(tmp_path / "a.xlsx")
    ws = wb.active
    if change == "drop":
        ws.unmerge_cells("N3:N4")
        ws.delete_cols(14)  # 存在主要环保问题
        expected = "存在主要环保问题"
    else:
        ws["N3"] = "污染物种类"
        expected = "污染物种类"
    wb.save(tmp_path / "b.xlsx")
    before = _stored(core)
    with raises_english(ValidationFailed, "wrong column set") as err:
        import_ledger(core, tmp_path / "b.xlsx", user="t")
    assert expected in {p["column"] for p in err.value.details}
    assert _stored(core) == before


def test_new_enterprise_without_coordinates_is_rejected(core, tmp_path):
    path = _bureau_template(tmp_path / "t.xlsx", [NEW_ROW])
    with pytest.raises(ValidationFailed) as err:
        import_ledger(core, path, user="t")
    assert err.value.details[0]["row"] == 5 and err.value.details[0]["column"] == "经度"


def test_same_enterprise_twice_in_one_file_is_rejected(core, tmp_path):
    path = _bureau_template(tmp_path / "t.xlsx", [
        {**NEW_ROW, "经度": 113.06, "纬度": 34.94, "坐标系": "wgs84"},
        {**NEW_ROW, "经度": 113.07, "纬度": 34.95, "坐标系": "wgs84"}])
    with pytest.raises(ValidationFailed) as err:
        import_ledger(core, path, user="t")
    assert "row 5" in english(err.value.details[0]["message"])
    assert err.value.details[0]["row"] == 6


def test_coordinates_without_their_system_are_rejected(core, tmp_path):
    path = _bureau_template(tmp_path / "t.xlsx", [{**NEW_ROW, "经度": 113.06, "纬度": 34.94}])
    with pytest.raises(ValidationFailed) as err:
        import_ledger(core, path, user="t")
    assert err.value.details[0]["column"] == "坐标系"


def test_a_file_that_is_not_a_workbook_is_rejected(core, tmp_path):
    (tmp_path / "x.xlsx").write_text("序号,辖区\n1,温县\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="XLSX"):
        import_ledger(core, tmp_path / "x.xlsx", user="t")


# ------------------------------------------------------------------------------ domain
@pytest.mark.parametrize("text", ["2020-06-30", "2020/6/30", "2020.6.30", "2020年6月30日",
                                  dt.datetime(2020, 6, 30), dt.date(2020, 6, 30)])
def test_template_dates_in_their_common_spellings_are_read(text):
    assert L.parse_date(text) == "2020-06-30"


def test_yes_no_cells_accept_only_you_and_wu():
    assert (L.parse_yes_no("有"), L.parse_yes_no("无"), L.parse_yes_no("")) == (True, False, None)
    with pytest.raises(ValueError):
        L.parse_yes_no("true")


@pytest.mark.parametrize(("zh", "value"), [("原址关闭", "close"), ("改造提升", "upgrade"),
                                           ("搬迁升级", "relocate"), ("退二进三", "convert"),
                                           ("破产", "bankrupt")])
def test_classifications_are_read_from_chinese(zh, value):
    assert L.parse_classification(zh) == value


# ------------------------------------------------------------------------------ CLI
def test_cli_exports_a_district_and_rejects_a_bad_file_with_status_2(instance, monkeypatch,
                                                                      tmp_path):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    runner = CliRunner()
    out = tmp_path / "jf.xlsx"
    r = runner.invoke(main, ["ledger", "export", "--district", "解放区", "--with-hits",
                             "--with-deadlines", "--as-of", "2026-12-03", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert {row[1] for row in _data_rows(out)} == {"解放区"}
    assert '"with_deadlines": true' in r.output
    _edit(out, tmp_path / "bad.xlsx", {(2, "整治分类"): "关停"})
    r = runner.invoke(main, ["ledger", "import", str(tmp_path / "bad.xlsx")])
    assert r.exit_code == 2 and "整治分类" in r.stderr and "第 7 行" in r.stderr
    r = runner.invoke(main, ["ledger", "import", str(out)])
    assert r.exit_code == 0 and '"updated": 27' in r.output


def test_ledger_with_more_rows_than_max_rows_is_refused_before_any_change(core, tmp_path):
    export_ledger(core, tmp_path / "a.xlsx", filled_on=dt.date(2020, 1, 2))
    before = _stored(core)
    core.settings["MAX_ROWS"] = 99
    with raises_english(InvalidInput, r"100 rows, more than the 99 accepted"):
        import_ledger(core, tmp_path / "a.xlsx", user="planner1",
                      limits=upload_limits(core.settings))
    assert _stored(core) == before
