"""domain.units: categories, unit codes, list lines, the lines naming an industry, and the
reading of the published sheet (title rows, two-row headers, wrong columns, bad rows)."""

from __future__ import annotations

import pytest

from geoapp.domain.city import City
from geoapp.domain.errors import ConfigError, ValidationFailed
from geoapp.domain.units import (
    PART_KEYS,
    PARTS,
    LayerUnit,
    UnitCategory,
    UnitRequirements,
    canonical_industry,
    category_colour,
    code_category,
    flagged_lines,
    industry_words,
    is_valid_unit_code,
    keyword_table,
    lines_naming,
    make_unit_code,
    normalise_unit_code,
    parse_category,
    read_unit_sheet,
    requirement_lines,
    sheet_records,
    unit_code_problem,
)

KEYWORDS = {"化工": ("化学原料", "石化", "危险化学品"), "商混站": ("商品混凝土", "混凝土搅拌", "商混"),
            "畜禽养殖": ("畜禽", "养殖场")}


# ------------------------------------------------------------------------------ vocabulary
def test_categories_parts_and_colours():
    assert [c.value for c in UnitCategory] == ["优先保护", "重点管控", "一般管控"]
    assert [c.digit for c in UnitCategory] == ["1", "2", "3"]
    assert UnitCategory.parse("Key control") is UnitCategory.KEY
    assert parse_category("优先保护单元") is UnitCategory.PRIORITY
    assert parse_category(" 一般管控类 ") is UnitCategory.GENERAL
    assert parse_category("重点") is None and parse_category(None) is None
    with pytest.raises(ValueError):
        UnitCategory.parse("其他")
    colours = {category_colour(c) for c in UnitCategory}
    assert len(colours) == 3 and category_colour("?") == category_colour(None) == "#999999"
    assert PART_KEYS == ("spatial_layout", "emission_control", "risk_prevention",
                         "resource_efficiency")
    assert dict(PARTS)["resource_efficiency"] == "资源开发效率要求"
    assert UnitCategory.KEY.en == "Key control" and UnitCategory.KEY.zh == "重点管控"


def test_unit_codes():
    assert is_valid_unit_code("ZH41080220001")
    assert normalise_unit_code(" zh4108 0220001 ") == "ZH41080220001"
    assert normalise_unit_code("ＺＨ４１０８０２２０００１") == "ZH41080220001"
    assert code_category("ZH41082110005") is UnitCategory.PRIORITY
    assert make_unit_code("410800", UnitCategory.GENERAL, 1) == "ZH41080030001"
    for bad in ("ZH4108022001", "ZH41080240001", "YS41080220001", "ZH410802200011"):
        assert not is_valid_unit_code(bad) and unit_code_problem(bad) is not None
        assert code_category(bad) is None
    assert "缺少" in unit_code_problem("  ")
    assert unit_code_problem("ZH41080220001") is None
    with pytest.raises(ValueError):
        make_unit_code("4108", UnitCategory.KEY, 1)


def test_unit_requirements_to_dict():
    req = UnitRequirements(code="ZH41080220001", name="解放区重点管控单元（主城区）",
                           category="重点管控", county="解放区",
                           requirements={"spatial_layout": "1.禁止"}, version=3,
                           updated_at="2026-12-01T00:00:00Z", updated_by="planner")
    d = req.to_dict()
    assert d["requirements"] == {"spatial_layout": "1.禁止", "emission_control": "",
                                 "risk_prevention": "", "resource_efficiency": ""}
    assert (d["code"], d["category"], d["version"], d["updated_by"]) == \
        ("ZH41080220001", "重点管控", 3, "planner")
    assert UnitRequirements.from_row({**d, **d["requirements"]}) == \
        UnitRequirements(**{**{k: v for k, v in d.items() if k != "requirements"},
                            "requirements": d["requirements"]})


# ------------------------------------------------------------------------------ lines
@pytest.mark.parametrize("text, lines", [
    ("1.禁止A。\n2.禁止B。", ["1.禁止A。", "2.禁止B。"]),
    ("1.禁止A；2.禁止B；3、禁止C", ["1.禁止A；", "2.禁止B；", "3、禁止C"]),
    ("（1）禁止A（2）禁止B", ["（1）禁止A", "（2）禁止B"]),
    ("(1)禁止A；(2)禁止B", ["(1)禁止A；", "(2)禁止B"]),
    ("①禁止A②禁止B", ["①禁止A", "②禁止B"]),
    ("一、空间布局\n1) 禁止A 2) 禁止B", ["一、空间布局", "1) 禁止A", "2) 禁止B"]),
    ("\r\n\r\n1.禁止A\r\n\r\n", ["1.禁止A"]),
    ("PM2.5浓度下降，距河道 1.5 公里以内；新建项目执行GB 16297-1996。",
     ["PM2.5浓度下降，距河道 1.5 公里以内；新建项目执行GB 16297-1996。"]),
    ("1.执行表2(1)级标准；2.见附表（2）要求。", ["1.执行表2(1)级标准；", "2.见附表（2）要求。"]),
    ("（一）禁止新建；（二）限制扩建。", ["（一）禁止新建；", "（二）限制扩建。"]),
    ("1.禁止A\x0b（含B）\x07", ["1.禁止A", "（含B）"]),
    ("", []),
    (None, []),
])
def test_requirement_lines(text, lines):
    assert requirement_lines(text) == lines


def test_lines_naming_finds_the_industry_and_its_synonyms():
    text = ("1.禁止新建化学原料药项目。\n2.禁止新建商品混凝土搅拌站。\n3.禁止新建畜禽规模养殖场。\n"
            "4.禁止新建铸造项目；5.危险化学品运输车辆禁止进入。")
    assert lines_naming(text, "化工", KEYWORDS) == ["1.禁止新建化学原料药项目。",
                                                   "5.危险化学品运输车辆禁止进入。"]
    assert lines_naming(text, "商混站", KEYWORDS) == ["2.禁止新建商品混凝土搅拌站。"]
    assert lines_naming(text, "畜禽养殖", KEYWORDS) == ["3.禁止新建畜禽规模养殖场。"]
    assert lines_naming(text, "铸造") == ["4.禁止新建铸造项目；"]
    # without the table an industry is only its own name
    assert lines_naming(text, "商混站") == []
    # an industry the table does not know matches its literal name only
    assert lines_naming(text, "服装", KEYWORDS) == []
    assert lines_naming("1.禁止新建服装厂", "服装", KEYWORDS) == ["1.禁止新建服装厂"]
    assert industry_words("商混站", KEYWORDS) == ("商混站", "商品混凝土", "混凝土搅拌", "商混")


@pytest.mark.parametrize("industry", ["", "  ", None])
def test_an_empty_industry_flags_nothing(industry):
    text = "1.禁止新建化工项目\n2.禁止一切建设"
    assert lines_naming(text, industry, KEYWORDS) == []
    req = UnitRequirements(code="ZH41080220001", name="x", category="重点管控",
                           requirements={k: text for k in PART_KEYS})
    assert flagged_lines(req, industry, KEYWORDS) == []
    assert industry_words(industry) == ()


def test_lines_naming_a_whole_list_and_flagged_lines_by_part():
    req = UnitRequirements(code="ZH41080220001", name="x", category="重点管控",
                           requirements={"spatial_layout": "1.禁止新建化工项目",
                                         "risk_prevention": "1.危险化学品企业编制应急预案"})
    assert lines_naming(req, "化工", KEYWORDS) == ["1.禁止新建化工项目", "1.危险化学品企业编制应急预案"]
    assert lines_naming(req.requirements, "化工") == ["1.禁止新建化工项目"]
    assert flagged_lines(req, "化工", KEYWORDS) == [
        ("spatial_layout", "1.禁止新建化工项目"), ("risk_prevention", "1.危险化学品企业编制应急预案")]


def test_matching_ignores_width_case_and_blanks():
    assert lines_naming("1.涉ＶＯＣｓ项目", "vocs") == ["1.涉ＶＯＣｓ项目"]
    assert lines_naming("1.禁止新建 化 工 项目", "化工") == ["1.禁止新建 化 工 项目"]


# ------------------------------------------------------------------------------ keyword table
def test_the_keyword_table_comes_from_the_city_file():
    base = {"city": {"name": "测试市", "name_en": "T", "adcode": "419900", "province": "河南省",
                     "counties": [{"name": "西区", "adcode": "419901"}]},
            "layers": {"units": {"file": "u.geojson", "title": {"zh": "单元", "en": "U"},
                                 "kind": "units"}},
            "sites": {}}
    city = City.from_mapping({**base, "units": {"requirements": "u.csv",
                                                "industry_keywords": {"化工": ["石化"]}}})
    assert city.units_layer == "units" and city.unit_requirements == "u.csv"
    assert city.industry_keywords == {"化工": ("石化",)}
    assert City.from_mapping(base).industry_keywords == {}
    for bad in ({"industry_keywords": {"化工": "石化"}}, {"industry_keywords": {"化工": [""]}},
                {"requirements": "../x.csv"}, {"other": 1}):
        with pytest.raises(ConfigError):
            City.from_mapping({**base, "units": bad})
    no_units = {**base, "layers": {"c": {**base["layers"]["units"], "kind": "zone"}}}
    with pytest.raises(ConfigError, match="no layer has kind units"):
        City.from_mapping({**no_units, "units": {"requirements": "u.csv"}})
    two = {**base, "layers": {"a": base["layers"]["units"], "b": base["layers"]["units"]}}
    with pytest.raises(ConfigError, match="only one layer"):
        City.from_mapping(two)
    with pytest.raises(ValueError):
        keyword_table(["化工"])


# ------------------------------------------------------------------------------ the sheet
HEAD = ["环境管控单元编码", "环境管控单元名称", "省", "市", "区县", "管控单元分类", "空间布局约束",
        "污染物排放管控", "环境风险防控", "资源开发效率要求"]
LAYER = {"ZH41080220001": LayerUnit("ZH41080220001", "解放区重点管控单元（主城区）", "重点管控", "解放区"),
         "ZH41080230001": LayerUnit("ZH41080230001", "解放区一般管控单元", "一般管控", "解放区")}


def _row(code, category="重点管控", name="", text="1.禁止"):
    return [code, name, "河南省", "焦作市", "解放区", category, text, text, text, text]


def test_a_plain_sheet():
    sheet = read_unit_sheet("f.csv", [HEAD, _row("ZH41080220001"), [], _row("ZH41080230001",
                                                                           "一般管控")])
    assert sheet.header_row == 1 and [r for r, _ in sheet.rows] == [2, 4]
    records, problems = sheet_records(sheet, LAYER)
    assert problems == []
    assert [r["code"] for r in records] == ["ZH41080220001", "ZH41080230001"]
    assert records[0]["name"] == "解放区重点管控单元（主城区）"  # the layer's when left empty
    assert records[0]["county"] == "解放区" and records[0]["spatial_layout"] == "1.禁止"


def test_a_title_row_a_merged_two_row_header_a_seq_column_and_line_breaks():
    grid = [["焦作市生态环境准入清单"], [],
            ["序号", "单元编码", "管控单元名称", "省", "市", "县（市、区）", "管控类别", "管控要求"],
            [None, None, None, None, None, None, None, "空间布局约束", "污染物排放管控",
             "环境风险防控", "资源利用效率要求"],
            [1, "ZH41080220001", "主城区", "河南省", "焦作市", "解放区", "重点管控单元",
             "1.禁止A\n2.禁止B", "1.x", "1.y", "1.z"],
            ["注：本表为示例"]]
    sheet = read_unit_sheet("f.xlsx", grid)
    assert sheet.header_row == 4 and len(sheet.rows) == 1
    records, problems = sheet_records(sheet, LAYER)
    assert problems == []
    assert records[0]["spatial_layout"] == "1.禁止A\n2.禁止B"
    assert records[0]["category"] == "重点管控" and records[0]["name"] == "主城区"
    assert records[0]["resource_efficiency"] == "1.z"


def test_wrong_columns_are_named_with_the_header_row():
    grid = [["标题"], ["编码", "名称", "分类", "空间布局约束", "污染物排放管控", "环境风险", "面积", "颜色",
                      "编码"]]
    with pytest.raises(ValidationFailed) as e:
        read_unit_sheet("f.csv", grid)
    found = {(p.row, p.column, str(p.message)) for p in e.value.details}
    assert (2, "颜色", "未知的列（第 8 列）") in found
    assert (2, "编码", "此列出现了两次") in found
    assert (2, "资源开发效率要求", "缺少此列") in found
    with pytest.raises(ValidationFailed, match="找不到表头"):
        read_unit_sheet("f.csv", [["a", "b"], ["c"]])


def test_each_row_problem_is_named_by_row_and_column():
    grid = [HEAD,
            _row(""),                                   # 2 missing code
            _row("ZH4108022001"),                       # 3 malformed
            _row("ZH41082120009"),                      # 4 not in the layer
            _row("ZH41080220001"),                      # 5 fine
            _row("zh41080220001"),                      # 6 duplicate of row 5
            _row("ZH41080230001", "重点管控"),            # 7 category disagrees with the layer
            _row("ZH41080230001", "其他"),               # 8 unknown category (and duplicate)
            _row("ZH41080230001", "一般管控", text="长" * 20_001)]  # 9 too long, duplicate
    records, problems = sheet_records(read_unit_sheet("f.csv", grid), LAYER)
    by_row = {}
    for p in problems:
        by_row.setdefault(p.row, []).append((p.column, str(p.message)))
    assert by_row[2] == [("环境管控单元编码", "缺少环境管控单元编码")]
    assert "格式不对" in by_row[3][0][1]
    assert by_row[4] == [("环境管控单元编码", "管控单元图层中没有编码为 ZH41082120009 的单元")]
    assert 5 not in by_row
    assert by_row[6][0][0] == "环境管控单元编码" and "与第 5 行编码重复" in by_row[6][0][1]
    assert by_row[7] == [("管控单元分类", "与管控单元图层不一致：图层中 ZH41080230001 是一般管控单元")]
    assert ("管控单元分类", "管控单元分类应为 优先保护、重点管控 或 一般管控") in by_row[8]
    assert ("空间布局约束", "过长：最多 20000 字") in by_row[9]
    assert [r["code"] for r in records] == ["ZH41080220001"]


def test_an_apostrophe_an_export_put_before_formula_text_is_undone():
    sheet = read_unit_sheet("f.xlsx", [HEAD, _row("ZH41080220001", text="'=1+1")])
    records, _ = sheet_records(sheet, LAYER)
    assert records[0]["spatial_layout"] == "=1+1"


@pytest.mark.parametrize("text, expected", [
    ("化工", ("化工", "exact")),
    ("化工厂", ("化工", "matched")),
    ("煤化工厂", ("煤化工", "matched")),
    ("化学原料和化学制品制造业", ("化工", "matched")),
    ("危险化学品生产企业", ("危险化学品生产", "matched")),
    ("化工及畜禽养殖", (None, "several:化工、畜禽养殖")),
    ("养殖场化工", (None, "several:化工、畜禽养殖")),
    ("量子计算", (None, "unknown")),
    ("  ", (None, None)),
])
def test_canonical_industry_reads_free_text_as_the_rules_name_it(text, expected):
    keywords = {"化工": ["化学原料", "石化", "危险化学品"], "煤化工": ["化工", "焦化"],
                "危险化学品生产": ["危险化学品", "化工"], "畜禽养殖": ["畜禽", "养殖场"]}
    known = ["化工", "煤化工", "危险化学品生产", "畜禽养殖", "橡胶制品"]
    assert canonical_industry(text, known, keywords) == expected
