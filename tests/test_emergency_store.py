"""The 重污染天气应急减排清单 in the store, on both backends: seeded from the data file,
linked to the registered enterprises, edited with versions, imported in the province's form
(two-row merged header or flattened) all-or-nothing, kept by a rebuild, exported and read back
unchanged, and one level's measures by county as XLSX and DOCX."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from docx import Document
from openpyxl import Workbook, load_workbook

from geoapp.config import load_settings
from geoapp.domain.emergency import LEVELS, Grade
from geoapp.domain.errors import Conflict, ValidationFailed
from geoapp.services import emergency as svc
from geoapp.services import open_geoapp
from geoapp.storage import open_repository

from webutil import sql

DATA = Path(__file__).resolve().parents[1] / "data"
SOURCE = DATA / "sites" / "emergency.csv"
STEEL = "91410811MAH15U2W21"  # 焦作市山阳区昌盛特钢有限责任公司, A级 in the seed
TWO_ROW_BASE = ["序号", "县（市、区）", "企业名称", "统一社会信用代码", "行业", "绩效分级"]
MEASURES = ["限产比例(%)", "停产工序", "运输管控措施"]
LEVEL_NAMES = ["黄色预警", "橙色预警", "红色预警"]


@pytest.fixture
def app(instance):
    core = open_geoapp(load_settings(instance, environ={}), init=False)
    yield core
    core.repo.close()


def _source_rows() -> list[list[str]]:
    with SOURCE.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _enterprises() -> dict[str, dict[str, str]]:
    with (DATA / "sites" / "enterprises.csv").open(encoding="utf-8", newline="") as f:
        return {r["name"]: r for r in csv.DictReader(f)}


def _state(app) -> tuple[dict, int]:
    """Every row as stored and the number of audit rows: what a refused import keeps."""
    rows = {k: m.to_dict() for k, m in app.repo.emergency_measures().items()}
    return rows, sql(app, "SELECT count(*) FROM changes")[0][0]


def two_row_form(path: Path, rows: list[list], *, title: str = "焦作市重污染天气应急减排清单"
                 ) -> Path:
    """A province-style sheet: a title row, then a two-row header with the level groups
    merged over their three measures and the other headers merged over both rows."""
    wb = Workbook()
    ws = wb.active
    ws.append([title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=16)
    top = [*TWO_ROW_BASE]
    for name in LEVEL_NAMES:
        top += [name, None, None]
    top.append("备注")
    ws.append(top)
    ws.append([None] * 6 + MEASURES * 3 + [None])
    for c in range(1, 7):
        ws.merge_cells(start_row=2, start_column=c, end_row=3, end_column=c)
    for i in range(3):
        ws.merge_cells(start_row=2, start_column=7 + 3 * i, end_row=2, end_column=9 + 3 * i)
    ws.merge_cells(start_row=2, start_column=16, end_row=3, end_column=16)
    for r in rows:
        ws.append(r)
    ws.append(["注：限产比例以核定产能为基数。"])
    wb.save(path)
    return path


def flat_form(path: Path, rows: list[list]) -> Path:
    header = [*TWO_ROW_BASE]
    for name in LEVEL_NAMES:
        header += [f"{name}-{m}" for m in MEASURES]
    header.append("备注")
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def _row(seq, county, name, code, industry, grade, cuts=(10, 20, 30), remarks=""):
    out = [seq, county, name, code, industry, grade]
    for lv, cut in zip(LEVEL_NAMES, cuts, strict=True):
        out += [cut, f"{lv}停产烧结机", f"{lv}禁止国四及以下货车进出"]
    return [*out, remarks]


# ------------------------------------------------------------------------------ the seed
def test_the_build_seeds_the_list_linked_to_the_registered_enterprises(app):
    rows = app.repo.emergency_measures()
    source = _source_rows()[1:]
    assert len(rows) == len(source) == 60
    ents = _enterprises()
    for r in source:
        key = r[3] or r[2].replace(" ", "")
        m = rows[key]
        assert m.origin == "source" and m.version == 1 and m.updated_by == "system"
        assert Grade(m.grade).zh == r[5]
        if r[2] in ents:  # by credit code, or by name where the list has none
            assert m.site_id == ents[r[2]]["id"]
        else:
            assert m.site_id is None
    assert sum(1 for m in rows.values() if m.site_id is None) == 2
    assert sum(1 for r in source if not r[3]) == 3
    for m in rows.values():  # plausible: red >= orange >= yellow; A-grade firms are not cut
        cuts = [m.level(lv)["cut_pct"] for lv in LEVELS]
        if m.grade in ("A", "leading"):
            assert cuts == [None, None, None]
        else:
            assert cuts[0] <= cuts[1] <= cuts[2]


def test_an_edit_moves_the_version_is_audited_and_a_stale_one_is_a_conflict(app):
    saved = svc.save_measure(app, STEEL, {"grade": "B级", "red_cut_pct": "30",
                                          "red_processes": "烧结机全部停产", "version": "1"},
                             user="planner")
    assert saved.version == 2 and saved.grade == "B" and saved.level("red")["cut_pct"] == 30
    assert saved.updated_by == "planner" and saved.origin == "edit"
    audit = sql(app, "SELECT action, entity_id FROM changes WHERE entity = "
                     "'emergency_measures'")
    assert audit == [("update", STEEL)]
    same = svc.save_measure(app, STEEL, {"grade": "B", "version": "2"}, user="planner")
    assert same.version == 2  # nothing changed, nothing written
    with pytest.raises(Conflict) as err:
        svc.save_measure(app, STEEL, {"grade": "C", "version": "1"}, user="other")
    assert err.value.details["updated_by"] == "planner"
    assert err.value.details["current_version"] == 2
    with pytest.raises(ValidationFailed) as bad:
        svc.save_measure(app, STEEL, {"red_cut_pct": "150", "orange_cut_pct": "abc",
                                      "grade": "E", "version": "2"}, user="planner")
    assert {p.field for p in bad.value.details} == {"red_cut_pct", "orange_cut_pct", "grade"}
    assert app.repo.emergency_measure(STEEL).version == 2


def test_a_forced_rebuild_keeps_imports_and_edits_and_reseeds_the_rest(tmp_path,
                                                                      store_settings):
    data = tmp_path / "data"
    shutil.copytree(DATA, data, ignore=shutil.ignore_patterns("sources", "basemap"))
    repo = open_repository(store_settings)
    repo.initialize(data)
    core = open_geoapp({**load_settings(tmp_path, environ={}), **store_settings}, init=False)
    try:
        rows = _source_rows()
        mine = rows[1]  # imported with a new remark
        path = flat_form(tmp_path / "one.xlsx", [[*mine[:15], "导入的备注"]])
        report = svc.import_list(core, path, user="planner")
        assert report["updated"] == 1
        svc.save_measure(core, STEEL, {"remarks": "编辑过", "version": "1"}, user="planner")
        # the data file is corrected meanwhile, for these two and a third enterprise
        third = rows[3][3]
        for r in rows[1:]:
            if r[3] in (mine[3], STEEL, third):
                r[15] = "新版数据文件"
        with (data / "sites" / "emergency.csv").open("w", encoding="utf-8", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
        built = repo.initialize(data, force=True)
        assert built["kept"]["emergency_measures"] == 2
        assert built["counts"]["emergency_measures"] == 60
        after = repo.emergency_measures()
        assert len(after) == 60
        assert after[mine[3]].remarks == "导入的备注" and after[mine[3]].origin == "import"
        assert after[STEEL].remarks == "编辑过" and after[STEEL].version == 2
        assert after[third].remarks == "新版数据文件" and after[third].origin == "source"
    finally:
        core.repo.close()
        repo.close()


# ------------------------------------------------------------------------------ import
def test_a_good_two_row_provincial_file_is_imported_with_a_report(app, tmp_path):
    ents = _enterprises()
    coke = next(e for e in ents.values() if e["industry"] == "焦化")
    rows = [
        _row(1, "解放区", coke["name"], coke["credit_code"], "焦化", "C级", (20, 30, 50)),
        _row(2, "山阳区", "焦作市山阳区昌盛特钢有限责任公司", STEEL, "钢铁", "A", ("", "", ""),
             "自主减排"),
        _row(3, "焦作市城乡一体化示范区", "示范区新建铸造有限公司", "", "铸造", "D级",
             (30, 50, 100)),
    ]
    before = _state(app)[1]
    report = svc.import_list(app, two_row_form(tmp_path / "省级清单.xlsx", rows), user="planner",
                             name="省级清单.xlsx")
    assert report["rows"] == 3 and report["created"] == 1 and report["updated"] == 2
    assert report["unmatched_names"] == ["示范区新建铸造有限公司"]
    stored = app.repo.emergency_measures()
    new = stored["示范区新建铸造有限公司"]
    assert new.county == "示范区" and new.site_id is None and new.grade == "D"
    assert new.level("red") == {"cut_pct": 100.0, "processes": "红色预警停产烧结机",
                                "transport": "红色预警禁止国四及以下货车进出"}
    c = stored[coke["credit_code"]]
    assert c.site_id == coke["id"] and c.level("orange")["cut_pct"] == 30
    assert stored[STEEL].remarks == "自主减排" and stored[STEEL].origin == "import"
    audit = sql(app, "SELECT action, entity_id FROM changes WHERE entity = "
                     "'emergency_measures' AND id > (SELECT min(id) FROM changes) ORDER BY id")
    assert len(audit) == 4 and audit[-1] == ("import", None)
    assert _state(app)[1] == before + 4


def test_a_flattened_header_and_a_gb18030_csv_are_read(app, tmp_path):
    rows = [_row(1, "温县", "温县测试耐火材料有限公司", "", "耐火材料", "B级")]
    report = svc.import_list(app, flat_form(tmp_path / "flat.xlsx", rows), user="planner")
    assert report["created"] == 1
    text = io.StringIO()
    header = [*TWO_ROW_BASE, *(f"{lv}{m}" for lv in LEVEL_NAMES for m in MEASURES), "备注"]
    w = csv.writer(text)
    w.writerow(header)
    w.writerow(_row(1, "温县", "温县测试耐火材料有限公司", "", "耐火材料", "C级", (20, 30, 50)))
    path = tmp_path / "excel.csv"
    path.write_bytes(text.getvalue().encode("gb18030"))
    report = svc.import_list(app, path, user="planner")
    assert report["updated"] == 1
    assert app.repo.emergency_measure("温县测试耐火材料有限公司").grade == "C"


def test_wrong_columns_are_named_and_nothing_is_written(app, tmp_path):
    before = _state(app)
    wb = Workbook()
    ws = wb.active
    header = [*TWO_ROW_BASE, *(f"{lv}{m}" for lv in LEVEL_NAMES for m in MEASURES)]
    header[5] = "企业规模"  # no grade column, an unknown one instead
    header[7] = "黄色预警限产比例(%)"  # twice
    ws.append(header)
    ws.append(list(range(len(header))))
    wb.save(tmp_path / "cols.xlsx")
    with pytest.raises(ValidationFailed) as err:
        svc.import_list(app, tmp_path / "cols.xlsx", user="planner")
    said = {(p.column, str(p.message)) for p in err.value.details}
    assert ("企业规模", "未知的列（第 6 列）") in said
    assert ("黄色预警限产比例(%)", "此列出现了两次") in said
    assert ("绩效分级", "缺少此列") in said and ("黄色预警停产工序", "缺少此列") in said
    assert _state(app) == before


def test_bad_values_are_refused_whole_with_every_row_named(app, tmp_path):
    before = _state(app)
    ents = list(_enterprises().values())
    good = _row(1, ents[0]["district"], ents[0]["name"], ents[0]["credit_code"], "x", "B级")
    rows = [
        good,
        _row(2, "解放区", "甲公司", "91410802MA44XXXX1A", "化工", "B级"),   # bad check char
        _row(3, "解放区", "乙公司", "", "化工", "E级"),                     # unknown grade
        _row(4, "解放区", "丙公司", "", "化工", "C级", ("二十", 30, 50)),     # not a number
        _row(5, "解放区", "丁公司", "", "化工", "C级", (20, 130, 150)),       # over 100
        _row(6, "解放区", "戊公司", "", "化工", "C级", (20, 50, 30)),         # red < orange
        _row(7, "不存在县", "己公司", "", "化工", "C级"),                      # unknown county
        _row(8, ents[0]["district"], ents[0]["name"], ents[0]["credit_code"], "x", "C级"),
        _row(9, "解放区", "甲 公司", "", "化工", "B级"),  # 甲公司 again, without a code
        _row(10, "解放区", "庚公司", "", "化工", "C级", (30, "", "")),     # yellow cut only
    ]
    with pytest.raises(ValidationFailed) as err:
        svc.import_list(app, two_row_form(tmp_path / "bad.xlsx", rows), user="planner")
    by_row = {}
    for p in err.value.details:
        by_row.setdefault(p.row, []).append((p.column, str(p.message)))
    assert 4 not in by_row  # the first data row (sheet row 4) is good
    assert by_row[5][0][0] == "统一社会信用代码" and "校验码" in by_row[5][0][1]
    assert by_row[6] == [("绩效分级", "绩效分级应为 A级、B级、C级、D级、引领性 或 非引领性")]
    assert by_row[7] == [("黄色预警限产比例(%)", "限产比例须为 0–100 的数字")]
    assert ("橙色预警限产比例(%)", "限产比例须在 0 到 100 之间") in by_row[8]
    assert by_row[9] == [("红色预警限产比例(%)", "红色预警限产比例低于橙色预警（50%）")]
    assert by_row[10] == [("县（市、区）", "未知的县（市、区）“不存在县”")]
    assert "同一企业" in by_row[11][0][1]
    assert by_row[12] == [("企业名称", "与第 5 行企业名称相同：每家企业在清单中只能出现一次")]
    assert [c for c, _m in by_row[13]] == ["橙色预警限产比例(%)", "红色预警限产比例(%)"]
    assert "橙色预警限产比例为空，但黄色预警为 30%" in by_row[13][0][1]
    assert "未导入任何内容" in err.value.message
    assert _state(app) == before


def test_a_file_that_is_not_a_spreadsheet_is_refused(app, tmp_path):
    before = _state(app)
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValidationFailed):
        svc.import_list(app, path, user="planner")
    path = tmp_path / "other.xlsx"
    wb = Workbook()
    wb.active.append(["姓名", "电话"])
    wb.save(path)
    with pytest.raises(ValidationFailed) as err:
        svc.import_list(app, path, user="planner")
    assert "找不到表头" in err.value.message
    assert _state(app) == before


# ------------------------------------------------------------------------------ export
def test_export_then_import_changes_nothing(app, tmp_path):
    svc.save_measure(app, STEEL, {"remarks": "=HYPERLINK(\"x\")", "red_cut_pct": "12.5",
                                  "version": "1"}, user="planner")
    path = svc.export_list(app, tmp_path / "export.xlsx")
    ws = load_workbook(path).active
    day = svc._stamp(app).date()
    assert ws["A1"].value == "焦作市重污染天气应急减排清单"
    assert ws["A2"].value == f"截至{day.year}年{day.month}月{day.day}日　共60家企业"
    assert ws["A3"].value == f"焦作市生态环境局　{day.year}年{day.month}月{day.day}日"
    assert [c.value for c in ws[4]][:7] == [*TWO_ROW_BASE, "黄色预警"]
    assert [c.value for c in ws[5]][6:9] == MEASURES
    assert "G4:I4" in {str(r) for r in ws.merged_cells.ranges}
    before = _state(app)
    report = svc.import_list(app, path, user="planner")
    assert report == {**report, "rows": 60, "created": 0, "updated": 0, "unchanged": 60}
    rows_after, audits = _state(app)
    assert rows_after == before[0] and audits == before[1] + 1  # only the import's own row
    assert rows_after[STEEL]["remarks"] == "=HYPERLINK(\"x\")"


@pytest.mark.parametrize("level", [lv.value for lv in LEVELS])
def test_the_county_measure_list_of_each_level_as_xlsx_and_docx(app, tmp_path, level):
    groups = svc.county_measures(app, level)
    assert [g["county"] for g in groups] == [c for c in app.city.county_names
                                              if c in {g["county"] for g in groups}]
    total = sum(len(g["rows"]) for g in groups)
    assert total == 60
    lv = next(x for x in LEVELS if x.value == level)
    xlsx = svc.write_level(app, level, tmp_path / "l.xlsx", "xlsx")
    ws = load_workbook(xlsx).active
    assert ws["A1"].value == f"焦作市重污染天气{lv.zh}预警应急减排措施清单"
    # The title rows: the level, then the issuing unit with the list's last change.
    day = svc._stamp(app).date()
    assert ws["A2"].value == f"预警级别：{lv.zh}预警　共60家企业"
    assert ws["A3"].value == f"焦作市生态环境局　{day.year}年{day.month}月{day.day}日"
    assert [c.value for c in ws[4]][:9] == ["序号", "县（市、区）", "企业名称", "统一社会信用代码",
                                            "行业", "绩效分级", "限产比例(%)", "停产工序", "运输管控措施"]
    body = [[c.value for c in r] for r in ws.iter_rows(min_row=5)]
    assert len(body) == 60
    steel = next(r for r in body if r[3] == STEEL)
    m = app.repo.emergency_measure(STEEL)
    assert steel[5] == Grade(m.grade).zh and steel[7] == m.level(lv)["processes"]
    docx = svc.write_level(app, level, tmp_path / "l.docx", "docx")
    doc = Document(str(docx))
    section = doc.sections[0]
    assert round(section.page_width.cm, 1) == 21.0 and round(section.page_height.cm, 1) == 29.7
    assert doc.paragraphs[0].text == f"焦作市重污染天气{lv.zh}预警应急减排措施清单"
    heads = [p.text for p in doc.paragraphs if "家）" in p.text]
    assert [h.split("（")[0] for h in heads] == [g["county"] for g in groups]
    assert len(doc.tables) == len(groups)
    first = groups[0]
    cells = [[c.text for c in r.cells] for r in doc.tables[0].rows]
    assert cells[0] == ["序号", "企业名称", "绩效分级", "限产比例(%)", "停产工序", "运输管控措施"]
    assert len(cells) == len(first["rows"]) + 1
    r0 = first["rows"][0]
    assert cells[1][1].startswith(r0["name"]) and cells[1][4] == (r0["processes"] or "—")
    unmatched = [c for t in doc.tables for r in t.rows for c in r.cells
                 if "未匹配到登记企业" in c.text]
    assert len(unmatched) == 2
