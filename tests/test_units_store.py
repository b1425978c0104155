"""The control units' lists in the database: the migration, the seed, edits with versions,
rebuilds that keep edits, imports (all or nothing, every problem by row and column, hostile
files refused) and the export that an import reads back unchanged."""

from __future__ import annotations

import csv
import shutil
import sqlite3
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from geoapp.config import load_settings
from geoapp.domain.errors import Conflict, NotFound, ValidationFailed
from geoapp.domain.units import PART_KEYS, SHEET_COLUMNS, UnitRequirements
from geoapp.services import open_geoapp
from geoapp.services import units as svc
from geoapp.services.checks import hits_are_stale, inputs_key
from geoapp.storage import geopackage as gp
from geoapp.storage import open_repository
from geoapp.storage.gpkg_schema import SCHEMA_VERSION, migrate, schema_version
from geoapp.storage.tables_in import Limits

from webutil import on_postgis, sql

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = Path(__file__).parent / "fixtures"
CORE = "ZH41080220001"      # 解放区重点管控单元（主城区）
GENERAL = "ZH41080230001"   # 解放区一般管控单元
WATER = "ZH41080210001"     # 解放区优先保护单元（…水源地保护区）
HEADERS = [c.header for c in SHEET_COLUMNS]


@pytest.fixture
def app(instance):
    core = open_geoapp(load_settings(instance, environ={}), init=False)
    yield core
    core.repo.close()


def _audit(app, where: str = "entity = 'unit_requirements'") -> list[tuple]:
    return [tuple(r) for r in sql(app, f"SELECT action, entity_id, after FROM changes WHERE "
                                       f"{where} ORDER BY id")]


def _versions(app) -> dict[str, int]:
    return {c: r.version for c, r in app.repo.unit_requirements().items()}


def _shipped_rows() -> list[list[str]]:
    with (DATA / "units" / "requirements.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows(rows)
    return path


# ------------------------------------------------------------------------------ schema, seed
@pytest.mark.backends("gpkg")  # a GeoPackage file of the first release, migrated
def test_a_first_release_database_gets_the_table_a_new_build_has(tmp_path, app):
    old = tmp_path / "old.gpkg"
    with closing(sqlite3.connect(old)) as conn:
        conn.executescript((FIXTURES / "release1.sql").read_text(encoding="utf-8"))
    with closing(gp.connect(old)) as conn:
        applied = migrate(conn, str(old))
        assert "unit_requirements" in [m.name for m in applied] \
            and schema_version(conn) == SCHEMA_VERSION
        upgraded = conn.execute("PRAGMA table_info(unit_requirements)").fetchall()
        registered = conn.execute("SELECT data_type FROM gpkg_contents WHERE table_name = "
                                  "'unit_requirements'").fetchone()
        assert migrate(conn, str(old)) == []
    with closing(sqlite3.connect(app.settings["DATABASE"])) as conn:
        built = conn.execute("PRAGMA table_info(unit_requirements)").fetchall()
    assert upgraded == built and registered == ("attributes",)
    assert {c[1] for c in built} >= {"code", *PART_KEYS, "version", "updated_at", "updated_by",
                                     "origin"}


def test_the_database_is_seeded_with_every_units_list(app):
    stored = app.repo.unit_requirements()
    assert list(stored) == sorted(r[0] for r in _shipped_rows()[1:])
    core = stored[CORE]
    assert isinstance(core, UnitRequirements)
    assert (core.name, core.category, core.county, core.version, core.updated_by) == \
        ("解放区重点管控单元（主城区）", "重点管控", "解放区", 1, "system")
    assert core.part("spatial_layout").startswith("1.禁止新建、扩建钢铁")
    assert svc.units_layer_name(app) == "control_units"
    found = svc.unit_requirements(app, [CORE, "ZH41099920001", "nonsense"])
    assert list(found) == [CORE]


def test_a_city_without_units_has_no_units_layer(repo, tiny_data_dir, store_settings, tmp_path):
    settings = {**store_settings, "DATA_DIR": str(tiny_data_dir)}
    core = open_geoapp({**load_settings(tmp_path, environ={}), **settings}, init=False)
    assert svc.units_layer_name(core) is None
    assert svc.unit_requirements(core, [CORE]) == {}
    assert svc.unit_list(core)["rows"] == []
    with pytest.raises(NotFound):
        svc.import_units(core, DATA / "units" / "requirements.csv", user="planner")


# ------------------------------------------------------------------------------ edits
def test_an_edit_moves_the_version_and_is_audited(app):
    saved = svc.save_unit(app, CORE, {"version": "1", **app.repo.unit_requirement(CORE)
                                      .requirements, "spatial_layout": "1.禁止新建化工项目。"},
                          user="planner")
    assert (saved.version, saved.updated_by) == (2, "planner")
    assert saved.part("spatial_layout") == "1.禁止新建化工项目。"
    (action, entity_id, after), = _audit(app)
    assert (action, entity_id) == ("update", CORE) and "禁止新建化工项目" in after
    again = svc.save_unit(app, CORE, {"version": "2", **saved.requirements}, user="planner")
    assert again.version == 2 and len(_audit(app)) == 1  # nothing changed, nothing written


def test_a_stale_version_is_a_conflict_naming_who_saved(app):
    form = {"version": "1", **app.repo.unit_requirement(CORE).requirements}
    svc.save_unit(app, CORE, {**form, "risk_prevention": "1.甲"}, user="alice")
    with pytest.raises(Conflict) as e:
        svc.save_unit(app, CORE, {**form, "risk_prevention": "1.乙"}, user="bob")
    assert e.value.status == 409
    assert e.value.details["updated_by"] == "alice" and e.value.details["current_version"] == 2
    assert app.repo.unit_requirement(CORE).part("risk_prevention") == "1.甲"


def test_a_part_over_the_limit_is_refused_by_name(app):
    with pytest.raises(ValidationFailed) as e:
        svc.save_unit(app, CORE, {"version": "1", "emission_control": "长" * 20_001},
                      user="planner")
    assert e.value.details[0].field == "emission_control"
    assert app.repo.unit_requirement(CORE).version == 1


def test_a_forced_rebuild_keeps_edits_and_imports_and_reseeds_the_rest(tmp_path,
                                                                      store_settings):
    data = tmp_path / "data"
    shutil.copytree(DATA, data, ignore=shutil.ignore_patterns("sources"))
    repo = open_repository(store_settings)
    repo.initialize(data)
    edited = repo.update_unit_requirements(CORE, {"spatial_layout": "1.编辑过的文字"},
                                           user="planner", expected_version=1)
    general = repo.unit_requirement(GENERAL)
    repo.import_unit_requirements([{**general.to_dict(), **general.requirements,
                                    "emission_control": "1.导入的"}], user="planner")
    # the source file is corrected meanwhile, for all three units
    rows = _shipped_rows()
    for r in rows[1:]:
        if r[0] in (CORE, GENERAL, WATER):
            r[6] = "1.新版数据文件的文字"
    _write_csv(data / "units" / "requirements.csv", rows)
    report = repo.initialize(data, force=True)
    assert report["kept"]["unit_requirements"] == 2
    assert report["counts"]["unit_requirements"] == len(rows) - 1
    after = repo.unit_requirements()
    assert len(after) == len(rows) - 1
    assert after[CORE].part("spatial_layout") == "1.编辑过的文字"
    assert after[CORE].version == edited.version == 2 and after[CORE].updated_by == "planner"
    assert after[GENERAL].part("emission_control") == "1.导入的"
    assert after[GENERAL].part("spatial_layout") == general.part("spatial_layout")  # imported
    assert after[WATER].part("spatial_layout") == "1.新版数据文件的文字"
    assert after[WATER].version == 1 and after[WATER].updated_by == "system"
    repo.close()


def test_a_source_file_that_disagrees_with_the_layer_stops_the_build(tmp_path,
                                                                     store_settings):
    data = tmp_path / "data"
    shutil.copytree(DATA, data, ignore=shutil.ignore_patterns("sources"))
    rows = _shipped_rows()
    rows[1][5] = "一般管控"
    rows.append(["ZH41080229999", "无此单元", "河南省", "焦作市", "解放区", "重点管控", "1.a", "1.b",
                 "1.c", "1.d"])
    _write_csv(data / "units" / "requirements.csv", rows)
    repo = open_repository(store_settings)
    with pytest.raises(ValidationFailed) as e:
        repo.initialize(data)
    assert {p.row for p in e.value.details} == {2, len(rows)}
    assert not repo.is_initialized()
    repo.close()
    if on_postgis(store_settings):  # not a table made, not even the app's own
        assert sql(store_settings, "SELECT tablename FROM pg_tables WHERE schemaname = "
                                   "current_schema() AND tablename <> 'spatial_ref_sys'") == []
    else:
        assert not Path(store_settings["DATABASE"]).exists()


# ------------------------------------------------------------------------------ import
def test_importing_the_shipped_file_changes_nothing(app):
    before = _versions(app)
    report = svc.import_units(app, DATA / "units" / "requirements.csv", user="planner")
    assert report == {"rows": 64, "created": 0, "updated": 0, "unchanged": 64,
                      "file": "requirements.csv"}
    assert _versions(app) == before
    (action, entity_id, after), = _audit(app)
    assert (action, entity_id) == ("import", None) and '"unchanged": 64' in after


def test_a_good_csv_updates_its_units_each_with_an_audit_row(app, tmp_path):
    rows = _shipped_rows()
    changed = [r for r in rows[1:] if r[0] in (CORE, WATER)]
    for r in changed:
        r[7] = "1.新的排放要求\n2.第二条"
    path = _write_csv(tmp_path / "清单.csv", [rows[0], *changed], encoding="utf-8-sig")
    report = svc.import_units(app, path, user="planner")
    assert (report["updated"], report["unchanged"], report["created"]) == (2, 0, 0)
    assert app.repo.unit_requirement(CORE).part("emission_control") == "1.新的排放要求\n2.第二条"
    assert app.repo.unit_requirement(CORE).version == 2
    audit = _audit(app)
    assert [(a, e) for a, e, _ in audit] == [("import", WATER), ("import", CORE),
                                            ("import", None)] or \
        sorted((a, e or "") for a, e, _ in audit) == [("import", ""), ("import", CORE),
                                                      ("import", WATER)]


def test_a_gb18030_csv_from_excel_is_read(app, tmp_path):
    rows = _shipped_rows()
    row = next(r for r in rows if r[0] == CORE)
    row[8] = "1.GBK 编码的文字"
    path = _write_csv(tmp_path / "gbk.csv", [rows[0], row], encoding="gb18030")
    assert svc.import_units(app, path, user="planner")["updated"] == 1
    assert app.repo.unit_requirement(CORE).part("risk_prevention") == "1.GBK 编码的文字"


def _province_workbook(path: Path, rows: list[list[str]]) -> Path:
    """The form as a province publishes it: a title, a merged two-row header with 序号 and
    管控要求 over the four parts, multi-line cells, a note under the table."""
    wb = Workbook()
    ws = wb.active
    ws.append(["河南省焦作市环境管控单元生态环境准入清单"])
    ws.merge_cells("A1:K1")
    ws.append(["序号", "管控单元编码", "管控单元名称", "省", "市", "县（市、区）", "管控单元类别",
               "管控要求", None, None, None])
    ws.append([None] * 7 + ["空间布局约束", "污染物排放管控", "环境风险防控", "资源利用效率要求"])
    for col in "ABCDEFG":
        ws.merge_cells(f"{col}2:{col}3")
    ws.merge_cells("H2:K2")
    for i, r in enumerate(rows, start=1):
        ws.append([i, *r])
    ws.append([])
    ws.append(["注：管控要求以省级发布文本为准。"])
    wb.save(path)
    return path


def test_a_provincial_workbook_with_title_and_merged_header_is_read(app, tmp_path):
    rows = [r for r in _shipped_rows()[1:] if r[0] in (CORE, GENERAL)]
    rows[0][6] = "（1）禁止新建化工项目；（2）禁止新建铸造项目"
    rows[1][5] = "一般管控单元"
    path = _province_workbook(tmp_path / "province.xlsx", rows)
    report = svc.import_units(app, path, user="planner")
    assert (report["rows"], report["updated"], report["unchanged"]) == (2, 1, 1)
    assert app.repo.unit_requirement(CORE).part("spatial_layout") == \
        "（1）禁止新建化工项目；（2）禁止新建铸造项目"


@pytest.mark.parametrize("change, row, column, words", [
    (lambda r: r.__setitem__(0, ""), 2, "环境管控单元编码", "缺少环境管控单元编码"),
    (lambda r: r.__setitem__(0, "ZH4108022"), 2, "环境管控单元编码", "格式不对"),
    (lambda r: r.__setitem__(0, "ZH41080229999"), 2, "环境管控单元编码", "图层中没有"),
    (lambda r: r.__setitem__(5, "一般管控"), 2, "管控单元分类", "与管控单元图层不一致"),
    (lambda r: r.__setitem__(5, "限制开发"), 2, "管控单元分类", "应为 优先保护"),
])
def test_each_bad_row_refuses_the_whole_file(app, tmp_path, change, row, column, words):
    rows = _shipped_rows()
    first = next(r for r in rows if r[0] == CORE)
    good = next(r for r in rows if r[0] == GENERAL)
    good[6] = "1.这一行本身没有问题"
    change(first)
    path = _write_csv(tmp_path / "bad.csv", [rows[0], first, good])
    before = _versions(app)
    with pytest.raises(ValidationFailed) as e:
        svc.import_units(app, path, user="planner")
    (p,) = e.value.details
    assert (p.row, p.column) == (row, column) and words in str(p.message)
    assert f"第 {row} 行" in str(e.value.message) and "未导入任何内容" in str(e.value.message)
    assert _versions(app) == before and _audit(app) == []
    assert app.repo.unit_requirement(GENERAL).part("spatial_layout") != "1.这一行本身没有问题"


def test_a_duplicate_code_and_wrong_columns_are_reported(app, tmp_path):
    rows = _shipped_rows()
    core = next(r for r in rows if r[0] == CORE)
    path = _write_csv(tmp_path / "dup.csv", [rows[0], core, core])
    with pytest.raises(ValidationFailed) as e:
        svc.import_units(app, path, user="planner")
    assert [(p.row, p.column) for p in e.value.details] == [(3, "环境管控单元编码")]
    assert "与第 2 行编码重复" in str(e.value.details[0].message)
    wrong = _write_csv(tmp_path / "cols.csv", [[*rows[0][:6], "空间布局", "风险等级"], core[:8]])
    with pytest.raises(ValidationFailed) as e:
        svc.import_units(app, wrong, user="planner")
    found = {(p.row, p.column, str(p.message)) for p in e.value.details}
    assert (1, "风险等级", "未知的列（第 8 列）") in found
    assert (1, "资源开发效率要求", "缺少此列") in found and (1, "环境风险防控", "缺少此列") in found
    assert _audit(app) == []


def test_hostile_spreadsheets_are_refused_before_they_are_parsed(app, tmp_path):
    limits = Limits.server(max_rows=100, max_upload_mb=5)
    # a DTD (the door to XXE and entity expansion) in a workbook part
    good = _province_workbook(tmp_path / "good.xlsx", _shipped_rows()[1:3])
    evil = tmp_path / "evil.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE worksheet [<!ENTITY '
                        b'xxe SYSTEM "file:///etc/passwd">]>\n' + data.split(b"?>", 1)[-1])
            dst.writestr(item, data)
    with pytest.raises(ValidationFailed, match="DTD"):
        svc.import_units(app, evil, user="planner", limits=limits)
    # more rows than the limit, in a workbook and in a CSV
    wb = Workbook()
    ws = wb.active
    ws.append(HEADERS)
    for i in range(200):
        ws.append([f"ZH410802200{i:02d}", "x", "", "", "", "重点管控", "1.a", "1.b", "1.c", "1.d"])
    wb.save(tmp_path / "long.xlsx")
    with pytest.raises(ValidationFailed, match="行数超过上限"):
        svc.import_units(app, tmp_path / "long.xlsx", user="planner", limits=limits)
    rows = [HEADERS] + [[f"ZH410802200{i:02d}", "x", "", "", "", "重点管控", "1.a", "1.b", "1.c",
                         "1.d"] for i in range(200)]
    with pytest.raises(ValidationFailed, match="行数超过上限"):
        svc.import_units(app, _write_csv(tmp_path / "long.csv", rows), user="planner",
                         limits=limits)
    # too wide, a cell over the csv module's field limit, not a spreadsheet at all
    with pytest.raises(ValidationFailed, match="列数超过上限"):
        svc.import_units(app, _write_csv(tmp_path / "wide.csv", [HEADERS + ["x"] * 300]),
                         user="planner", limits=limits)
    (tmp_path / "huge.csv").write_text(",".join(HEADERS) + "\n" + CORE + ',"' + "长" * 200_000
                                       + '"\n', encoding="utf-8")
    with pytest.raises(ValidationFailed, match="无法读取此 CSV 文件"):
        svc.import_units(app, tmp_path / "huge.csv", user="planner", limits=limits)
    (tmp_path / "fake.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValidationFailed, match="无法读取此 XLSX 文件"):
        svc.import_units(app, tmp_path / "fake.xlsx", user="planner", limits=limits)
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ValidationFailed, match="文件为空"):
        svc.import_units(app, tmp_path / "empty.csv", user="planner", limits=limits)
    with pytest.raises(ValidationFailed, match="CSV 或 XLSX"):
        svc.import_units(app, tmp_path / "empty.csv".replace("csv", "doc"), user="planner")
    assert _audit(app) == []


# ------------------------------------------------------------------------------ export
def test_export_then_import_changes_nothing(app, tmp_path):
    svc.save_unit(app, CORE, {"version": "1", **app.repo.unit_requirement(CORE).requirements,
                              "spatial_layout": "=1+1 看起来像公式\n2.第二条",
                              "resource_efficiency": "-开头的一行"}, user="planner")
    path = svc.export_units(app, tmp_path / "export.xlsx")
    ws = load_workbook(path).active
    assert ws["A1"].value == "焦作市环境管控单元生态环境准入清单"
    assert [ws.cell(row=2, column=c).value for c in range(1, 9)] == \
        ["序号", *HEADERS[:6], "管控要求"]
    assert [ws.cell(row=3, column=c).value for c in range(8, 12)] == HEADERS[6:]
    assert ws.max_row == 3 + 64
    row = next(r for r in ws.iter_rows(min_row=4, values_only=True) if r[1] == CORE)
    assert row[7].startswith("'=1+1")  # a spreadsheet shows it as text, never runs it
    before = _versions(app)
    audit = len(_audit(app))
    report = svc.import_units(app, path, user="planner")
    assert (report["rows"], report["unchanged"]) == (64, 64)
    assert _versions(app) == before and len(_audit(app)) == audit + 1
    assert app.repo.unit_requirement(CORE).part("spatial_layout") == "=1+1 看起来像公式\n2.第二条"


def test_a_list_edit_does_not_make_the_rule_hits_stale(app):
    assert not hits_are_stale(app)
    key = inputs_key(app)
    svc.save_unit(app, CORE, {"version": "1", "spatial_layout": "1.新文字"}, user="planner")
    assert not hits_are_stale(app) and inputs_key(app) == key
