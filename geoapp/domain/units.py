"""三线一单: environmental control units (环境管控单元) and their 生态环境准入清单.

A province divides its land into control units, each of one category (优先保护 priority
protection, 重点管控 key control, 一般管控 general control), and publishes for every unit an
access list in four parts. This module holds the vocabulary (categories with their colours,
the four parts), the unit code, the stored list of one unit (:class:`UnitRequirements`) and
the text helpers the parcel check uses: :func:`requirement_lines` cuts a part into its items
and :func:`lines_naming` finds the items that name a project's industry. No I/O: the
keyword table that widens an industry to its synonyms comes from the city file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from geoapp.domain.errors import Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.domain.text import document_text


class UnitCategory(StrEnum):
    """The three categories of control units. The value is the Chinese term itself, as the
    provinces publish it and the units layer stores it; ``digit`` is its place in the code."""

    PRIORITY = "优先保护"
    KEY = "重点管控"
    GENERAL = "一般管控"

    @property
    def zh(self) -> str:
        return self.value

    @property
    def en(self) -> str:
        return CATEGORY_EN[self]

    @classmethod
    def parse(cls, text: Any) -> UnitCategory:
        """The category named by its Chinese term or English name; ValueError otherwise."""
        t = str(text).strip()
        for m in cls:
            if t == m.value or t.lower() == m.en.lower():
                return m
        raise ValueError(_l("未知的管控单元分类“%(value)s”；应为：%(allowed)s", value=text,
                            allowed="、".join(m.value for m in cls)))

    @property
    def digit(self) -> str:
        """The category digit of a unit code (1 优先保护, 2 重点管控, 3 一般管控)."""
        return CATEGORY_DIGITS[self]

    @property
    def colour(self) -> str:
        return CATEGORY_COLOURS[self]

    @property
    def unit_label(self) -> str:
        """The category as a unit's kind: 优先保护单元."""
        return f"{self.value}单元"


CATEGORY_EN: dict[UnitCategory, str] = {
    UnitCategory.PRIORITY: "Priority protection", UnitCategory.KEY: "Key control",
    UnitCategory.GENERAL: "General control"}
CATEGORY_DIGITS: dict[UnitCategory, str] = {
    UnitCategory.PRIORITY: "1", UnitCategory.KEY: "2", UnitCategory.GENERAL: "3"}

#: Catalogue entries of the categories, so pages show them in their language.
CATEGORY_LABELS: dict[UnitCategory, _l] = {
    UnitCategory.PRIORITY: _l("优先保护"), UnitCategory.KEY: _l("重点管控"),
    UnitCategory.GENERAL: _l("一般管控")}

#: Map and page colours: protection green, key control red-orange, general blue-grey.
CATEGORY_COLOURS: dict[UnitCategory, str] = {
    UnitCategory.PRIORITY: "#2e8b3e",
    UnitCategory.KEY: "#e0561b",
    UnitCategory.GENERAL: "#6f8fab",
}
#: The colour of a unit whose category is missing or unknown.
UNKNOWN_COLOUR = "#999999"


def category_colour(category: Any) -> str:
    """The colour of a category given as its Chinese term, its English name or the enum;
    grey when missing or unknown."""
    found = parse_category(category)
    return found.colour if found is not None else UNKNOWN_COLOUR


def parse_category(text: Any) -> UnitCategory | None:
    """The category named by ``text`` (Chinese, English, or with 单元/类 after it, as some
    sheets write ``优先保护单元``); None when it names none."""
    if text is None:
        return None
    t = re.sub(r"\s+", "", str(text))
    for suffix in ("单元", "类"):
        if t.endswith(suffix) and len(t) > len(suffix):
            t = t[: -len(suffix)]
    try:
        return UnitCategory.parse(t)
    except ValueError:
        return None


# ------------------------------------------------------------------------------ the four parts
#: The four parts of a 准入清单: (stable key, Chinese name), in the published order.
PARTS: tuple[tuple[str, str], ...] = (
    ("spatial_layout", "空间布局约束"),
    ("emission_control", "污染物排放管控"),
    ("risk_prevention", "环境风险防控"),
    ("resource_efficiency", "资源开发效率要求"),
)
PART_KEYS: tuple[str, ...] = tuple(k for k, _ in PARTS)
#: English names of the parts (the Chinese name is the catalogue msgid of each).
PART_NAMES_EN: dict[str, str] = {
    "spatial_layout": "Spatial layout constraints",
    "emission_control": "Pollutant emission control",
    "risk_prevention": "Environmental risk prevention",
    "resource_efficiency": "Resource use efficiency",
}
#: Catalogue entries of the part names, for pages (``str()`` gives the page's language).
PART_LABELS: dict[str, _l] = {
    "spatial_layout": _l("空间布局约束"),
    "emission_control": _l("污染物排放管控"),
    "risk_prevention": _l("环境风险防控"),
    "resource_efficiency": _l("资源开发效率要求"),
}
#: Most characters of one part's text (the longest published parts run to a few thousand).
MAX_PART_CHARS = 20_000


# ------------------------------------------------------------------------------ unit codes
#: ZH + the county's 6-digit administrative code + the category digit + a 4-digit serial.
UNIT_CODE = re.compile(r"ZH(\d{6})([123])(\d{4})")
UNIT_CODE_FORM = _l("ZH + 6 位行政区划代码 + 1 位类别（1 优先保护、2 重点管控、3 一般管控）+ 4 位序号")


def normalise_unit_code(code: Any) -> str:
    """A code as compared and stored: full-width forms folded (ＺＨ４１…), blanks removed,
    letters upper case."""
    if code is None:
        return ""
    text = unicodedata.normalize("NFKC", str(code))
    return re.sub(r"\s+", "", text).upper()


def is_valid_unit_code(code: Any) -> bool:
    return UNIT_CODE.fullmatch(normalise_unit_code(code)) is not None


def unit_code_problem(code: Any) -> str | None:
    """Why ``code`` is not a unit code (a catalogue message), or None when it is one."""
    text = normalise_unit_code(code)
    if not text:
        return _l("缺少环境管控单元编码")
    if UNIT_CODE.fullmatch(text) is None:
        return _l("编码“%(code)s”格式不对：应为 %(form)s，如 ZH41080220001", code=text,
                  form=UNIT_CODE_FORM)
    return None


def code_category(code: Any) -> UnitCategory | None:
    """The category a valid code's digit names; None for an invalid code."""
    m = UNIT_CODE.fullmatch(normalise_unit_code(code))
    if m is None:
        return None
    return next(c for c, d in CATEGORY_DIGITS.items() if d == m.group(2))


def make_unit_code(adcode: str, category: UnitCategory, serial: int) -> str:
    """The code of the ``serial``-th unit of ``category`` in the county ``adcode``."""
    code = f"ZH{adcode}{category.digit}{int(serial):04d}"
    if UNIT_CODE.fullmatch(code) is None:
        raise ValueError(f"not a unit code: {code!r} (adcode {adcode!r}, serial {serial})")
    return code


# ------------------------------------------------------------------------------ a unit's list
@dataclass(frozen=True)
class UnitRequirements:
    """The stored 准入清单 of one control unit: its four parts (part key -> text), and the
    version, time and user of its last change (optimistic concurrency, as for sites)."""

    code: str
    name: str
    category: str
    county: str = ""
    requirements: Mapping[str, str] = field(default_factory=dict)
    version: int = 1
    updated_at: str = ""
    updated_by: str = ""

    def part(self, key: str) -> str:
        return self.requirements.get(key, "") or ""

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "category": self.category,
                "county": self.county,
                "requirements": {k: self.part(k) for k in PART_KEYS},
                "version": self.version, "updated_at": self.updated_at,
                "updated_by": self.updated_by}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> UnitRequirements:
        """From a stored row: the part texts are columns named by their keys."""
        return cls(code=str(row["code"]), name=str(row.get("name") or ""),
                   category=str(row.get("category") or ""), county=str(row.get("county") or ""),
                   requirements={k: str(row.get(k) or "") for k in PART_KEYS},
                   version=int(row.get("version") or 1),
                   updated_at=str(row.get("updated_at") or ""),
                   updated_by=str(row.get("updated_by") or ""))


def clean_part_text(text: Any) -> str:
    """A part's text as stored: line ends made ``\\n``, blanks at line ends and blank lines
    at either end dropped; the wording itself is kept."""
    if text is None:
        return ""
    t = document_text(str(text).replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.rstrip() for line in t.split("\n")]
    return "\n".join(lines).strip("\n").strip()


# ------------------------------------------------------------------------------ lines
#: Where an item starts: a number 1. 1． 1、 1) 一、 （1） （一） at the start of the text or
#: after a blank or a punctuation mark (not the 1.5 of a number, nor the 2.5 of PM2.5, nor
#: the (1) of 表2(1)级 or the （2） of 附表（2）), or a circled number ① anywhere.
_ITEM_START = re.compile(
    r"(?:^|(?<=[\s。；;！!？?：:，,]))"
    r"(?=\d{1,2}(?:[.．、](?!\d)|[)）])|[一二三四五六七八九十]{1,3}、"
    r"|[（(](?:\d{1,2}|[一二三四五六七八九十]{1,3})[)）])"
    r"|(?=[\u2460-\u2473\u2776-\u277f])")
#: In a line that itself starts with （1） or （一）, the next such number starts an item
#: wherever it stands (``（1）禁止A（2）禁止B``).
_PAREN_ITEM = re.compile(r"^[（(](?:\d{1,2}|[一二三四五六七八九十]{1,3})[)）]")
_PAREN_START = re.compile(r"(?=[（(](?:\d{1,2}|[一二三四五六七八九十]{1,3})[)）])")


def requirement_lines(text: Any) -> list[str]:
    """The items of a part's text: one per line, and a line holding several numbered items
    (``1.禁止…；2.禁止…``, ``（1）…（2）…``, ``①…②…``) cut before each number. Blank
    lines are dropped; each item keeps its number."""
    out: list[str] = []
    for line in clean_part_text(text).split("\n"):
        for piece in _ITEM_START.split(line):
            subs = _PAREN_START.split(piece) if _PAREN_ITEM.match(piece.strip()) else [piece]
            for sub in subs:
                sub = sub.strip()
                if sub:
                    out.append(sub)
    return out


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def industry_words(industry: Any,
                   keywords: Mapping[str, Sequence[str]] | None = None) -> tuple[str, ...]:
    """The words that name ``industry`` in a line: itself and its synonyms from the keyword
    table (an industry the table does not know is only itself); none for an empty one."""
    name = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(industry or "")))
    if not name:
        return ()
    words = [name]
    table = keywords or {}
    extra = table.get(name)
    if extra is None:  # the table's keys compared the way the words are
        extra = next((v for k, v in table.items() if _fold(k) == _fold(name)), ())
    for w in extra:
        w = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(w or "")))
        if w and w not in words:
            words.append(w)
    return tuple(words)


def line_names(line: str, words: Iterable[str]) -> bool:
    """Whether ``line`` contains one of ``words`` (NFKC, case-folded, blanks ignored)."""
    folded = _fold(re.sub(r"\s+", "", line))
    return any(_fold(w) in folded for w in words if w)


def lines_naming(source: str | UnitRequirements | Mapping[str, str] | None, industry: Any,
                 keywords: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The lines (items, see :func:`requirement_lines`) of ``source`` that name the project's
    ``industry``: the industry itself or one of its synonyms in ``keywords`` (the city's
    table, ``City.industry_keywords``). ``source`` is one part's text, a unit's
    :class:`UnitRequirements` or a part -> text mapping (then the lines of all four parts in
    order). An empty industry names nothing."""
    words = industry_words(industry, keywords)
    if not words or source is None:
        return []
    if isinstance(source, UnitRequirements):
        texts = [source.part(k) for k in PART_KEYS]
    elif isinstance(source, Mapping):
        texts = [str(source.get(k) or "") for k in PART_KEYS]
    else:
        texts = [str(source)]
    return [line for text in texts for line in requirement_lines(text) if line_names(line, words)]


def flagged_lines(requirements: UnitRequirements, industry: Any,
                  keywords: Mapping[str, Sequence[str]] | None = None
                  ) -> list[tuple[str, str]]:
    """(part key, line) of every line of a unit's list that names the industry, in order."""
    words = industry_words(industry, keywords)
    if not words:
        return []
    return [(key, line) for key in PART_KEYS for line in requirement_lines(requirements.part(key))
            if line_names(line, words)]


def keyword_table(raw: Any, where: str = "units.industry_keywords") -> dict[str, tuple[str, ...]]:
    """Validate a parsed keyword table (industry -> list of words); ValueError naming the
    offending entry."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a table of industry = [words]")
    out: dict[str, tuple[str, ...]] = {}
    for industry, words in raw.items():
        if not str(industry).strip():
            raise ValueError(f"{where}: an industry name is empty")
        if isinstance(words, str) or not isinstance(words, Sequence) \
                or not all(isinstance(w, str) and w.strip() for w in words):
            raise ValueError(f"{where}.{industry} must be a list of non-empty words")
        out[str(industry).strip()] = tuple(w.strip() for w in words)
    return out


# ------------------------------------------------------------------------------ the sheet
@dataclass(frozen=True)
class SheetColumn:
    """One column of the published form: its field, its header and the other headers
    provinces use for it."""

    field: str
    header: str
    aliases: tuple[str, ...] = ()


#: The columns of the form, in the published order (the export writes them so).
SHEET_COLUMNS: tuple[SheetColumn, ...] = (
    SheetColumn("code", "环境管控单元编码", ("管控单元编码", "单元编码", "环境管控单元代码",
                                           "管控单元代码", "单元代码", "编码", "代码")),
    SheetColumn("name", "环境管控单元名称", ("管控单元名称", "单元名称", "名称")),
    SheetColumn("province", "省", ("省份", "省(区、市)", "省级行政区")),
    SheetColumn("city", "市", ("地市", "地级市", "市(州)", "设区市", "城市")),
    SheetColumn("county", "区县", ("县(市、区)", "县(区)", "县区", "区(县)", "区、县", "县")),
    SheetColumn("category", "管控单元分类", ("环境管控单元分类", "单元分类", "管控类别", "管控单元类别",
                                          "环境管控单元类别", "单元类别", "分类", "类别")),
    SheetColumn("spatial_layout", "空间布局约束", ("空间布局约束要求", "空间布局")),
    SheetColumn("emission_control", "污染物排放管控", ("污染物排放管控要求", "污染物排放")),
    SheetColumn("risk_prevention", "环境风险防控", ("环境风险防控要求", "环境风险")),
    SheetColumn("resource_efficiency", "资源开发效率要求", ("资源利用效率要求", "资源开发利用效率要求",
                                                       "资源开发效率", "资源利用效率")),
)
#: Columns a sheet must have (the name may be left to the units layer).
REQUIRED_FIELDS: tuple[str, ...] = ("code", "category", *PART_KEYS)
#: Columns read and left alone.
IGNORED_HEADERS: tuple[str, ...] = ("序号", "备注", "面积", "面积(平方公里)", "面积(km2)",
                                    "面积(km²)")
#: Headers merged over the four part columns in a two-row header.
GROUP_HEADERS: tuple[str, ...] = ("管控要求", "生态环境准入清单", "准入清单", "生态环境准入清单管控要求",
                                  "管控要求(生态环境准入清单)")
#: A row starting with one of these ends the data (a note under the table).
NOTE_STARTS: tuple[str, ...] = ("注：", "注:", "说明", "填表说明")
#: Sheet rows searched for the header row.
HEADER_SCAN_ROWS = 10


def sheet_header_key(text: Any) -> str:
    """A header as compared: NFKC (full-width brackets half-width), no blanks or line
    breaks, no required-field stars."""
    t = unicodedata.normalize("NFKC", "" if text is None else str(text))
    return re.sub(r"[\s*※]+", "", t)


def columns_by_header() -> dict[str, SheetColumn]:
    out: dict[str, SheetColumn] = {}
    for col in SHEET_COLUMNS:
        for h in (col.header, *col.aliases):
            out.setdefault(sheet_header_key(h), col)
    return out


def sheet_cell_text(value: Any) -> str:
    """A cell as text: whole floats without ``.0`` (a code read as a number), line breaks
    kept, blanks at either end dropped."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


@dataclass
class UnitSheet:
    """What was read from a sheet: the header row (sheet numbering), the field of every
    column ('' for ignored columns) and every data row as (sheet row, field -> text)."""

    file: str
    header_row: int = 0
    fields: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def header_of(self, field_name: str) -> str:
        """The header the file itself gives the field (the form's header if absent)."""
        for f, h in zip(self.fields, self.headers, strict=False):
            if f == field_name:
                return h
        return next((c.header for c in SHEET_COLUMNS if c.field == field_name), field_name)


def read_unit_sheet(file: str, grid: Sequence[Sequence[Any]]) -> UnitSheet:
    """The form's rows from a sheet's cells (``grid[i]`` is sheet row ``i + 1``).

    Tolerated: title rows above the header, a two-row header with 管控要求 merged over the
    four part columns, a 序号 column, line breaks in cells, blank rows, a note under the
    table. Wrong columns (unknown, repeated, missing) raise ValidationFailed naming the header
    row and each column.
    """
    keys = columns_by_header()
    top = next((i for i, row in enumerate(grid[:HEADER_SCAN_ROWS])
                if any(keys.get(sheet_header_key(v)) is not None
                       and keys[sheet_header_key(v)].field == "code" for v in row)), None)
    if top is None:
        raise ValidationFailed(
            _l("%(file)s：前 %(rows)s 行里找不到表头（须有“环境管控单元编码”列），这是生态环境准入清单吗？",
               file=file, rows=HEADER_SCAN_ROWS),
            details=[Problem(file=file, row="", column="环境管控单元编码", value="",
                             message=_l("找不到表头"))])
    upper = list(grid[top])
    lower = list(grid[top + 1]) if top + 1 < len(grid) else []
    parts_below = any((keys.get(sheet_header_key(v)) or SHEET_COLUMNS[0]).field in PART_KEYS
                      for v in lower)
    two_rows = parts_below and not any(
        (keys.get(sheet_header_key(v)) or SHEET_COLUMNS[0]).field in PART_KEYS for v in upper)
    width = max(len(upper), len(lower) if two_rows else 0)
    headers = []
    for c in range(width):
        up = sheet_cell_text(upper[c]) if c < len(upper) else ""
        low = sheet_cell_text(lower[c]) if two_rows and c < len(lower) else ""
        headers.append(low or up)
    header_row = top + (2 if two_rows else 1)  # the sheet row the header ends on
    sheet = UnitSheet(file=file, header_row=header_row, headers=headers)
    sheet.fields = _sheet_fields(file, headers, header_row, keys)
    for i in range(header_row, len(grid)):
        cells = list(grid[i])
        texts = [sheet_cell_text(v) for v in cells]
        if not any(texts):
            continue
        if next(t for t in texts if t).startswith(NOTE_STARTS):
            break
        values = {f: _unquote(texts[c] if c < len(texts) else "")
                  for c, f in enumerate(sheet.fields) if f}
        extra = [c for c in range(len(sheet.fields), len(texts)) if texts[c]]
        if extra:
            raise ValidationFailed(
                _l("%(file)s：第 %(row)s 行在表头以外的第 %(column)s 列有内容", file=file,
                   row=i + 1, column=extra[0] + 1),
                details=[Problem(file=file, row=i + 1, column=str(extra[0] + 1),
                                 value=texts[extra[0]][:40],
                                 message=_l("此列没有表头"))])
        sheet.rows.append((i + 1, values))
    return sheet


#: A cell an export wrote with an apostrophe so that a spreadsheet would not run it as a
#: formula (``exports.tables.neutralise``).
_NEUTRALISED = ("'=", "'+", "'-", "'@", "'\t", "'\r")


def _unquote(text: str) -> str:
    return text[1:] if text.startswith(_NEUTRALISED) else text


def _sheet_fields(file: str, headers: list[str], header_row: int,
                  keys: Mapping[str, SheetColumn]) -> list[str]:
    ignored = {sheet_header_key(h) for h in (*IGNORED_HEADERS, *GROUP_HEADERS)}
    fields: list[str] = []
    problems: list[Problem] = []
    for c, h in enumerate(headers, start=1):
        key = sheet_header_key(h)
        col = keys.get(key)
        if not key or key in ignored:
            fields.append("")
        elif col is None:
            problems.append(Problem(file=file, row=header_row, column=h, value=h,
                                    message=_l("未知的列（第 %(column)s 列）", column=c)))
            fields.append("")
        elif col.field in fields:
            problems.append(Problem(file=file, row=header_row, column=h, value=h,
                                    message=_l("此列出现了两次")))
            fields.append("")
        else:
            fields.append(col.field)
    problems += [Problem(file=file, row=header_row, column=c.header, value="",
                         message=_l("缺少此列"))
                 for c in SHEET_COLUMNS if c.field in REQUIRED_FIELDS and c.field not in fields]
    if problems:
        raise ValidationFailed(
            _l("%(file)s：列不符合生态环境准入清单格式（%(count)s 处问题；第一处：第 %(row)s 行 %(column)s："
               "%(message)s）", file=file, count=len(problems), row=header_row,
               column=problems[0].column, message=problems[0].message), details=problems)
    return fields


@dataclass(frozen=True)
class LayerUnit:
    """A unit as the units layer has it."""

    code: str
    name: str
    category: str
    county: str


def sheet_records(sheet: UnitSheet, layer: Mapping[str, LayerUnit]
                  ) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Validated records (code, name, category, county and the four parts) of a sheet's
    rows against the units layer, and every problem by sheet row and the file's header:
    a missing or malformed code, a code not in the layer, a code twice, an unknown category
    or one the layer disagrees with, a part too long. The county is the layer's; the name
    the sheet's (the layer's when the sheet leaves it out)."""
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    file = sheet.file

    def problem(row: int, field_name: str, value: Any, message: str) -> None:
        problems.append(Problem(file=file, row=row, column=sheet.header_of(field_name),
                                value=value, message=message))

    for row, values in sheet.rows:
        before = len(problems)
        raw_code = values.get("code", "")
        code = normalise_unit_code(raw_code)
        why = unit_code_problem(code)
        unit = layer.get(code) if why is None else None
        if why is not None:
            problem(row, "code", raw_code, why)
        elif unit is None:
            problem(row, "code", raw_code, _l("管控单元图层中没有编码为 %(code)s 的单元", code=code))
        if code and code in seen:
            problem(row, "code", raw_code, _l("与第 %(row)s 行编码重复：每个管控单元在一个文件中只能出现一次",
                                              row=seen[code]))
        seen.setdefault(code, row)
        raw_cat = values.get("category", "")
        category = parse_category(raw_cat)
        if category is None:
            problem(row, "category", raw_cat, _l("管控单元分类应为 优先保护、重点管控 或 一般管控"))
        elif unit is not None and parse_category(unit.category) != category:
            problem(row, "category", raw_cat, _l("与管控单元图层不一致：图层中 %(code)s 是%(category)s单元",
                                                 code=code, category=unit.category))
        parts = {}
        for key in PART_KEYS:
            text = clean_part_text(values.get(key, ""))
            if len(text) > MAX_PART_CHARS:
                problem(row, key, text[:40] + "…", _l("过长：最多 %(limit)s 字", limit=MAX_PART_CHARS))
            parts[key] = text
        if len(problems) > before or unit is None or category is None:
            continue
        records.append({"code": code, "name": values.get("name") or unit.name,
                        "category": category.value, "county": unit.county, **parts,
                        "row": row})
    return records, problems


def canonical_industry(industry: Any, known: Iterable[str],
                       keywords: Mapping[str, Sequence[str]] | None = None
                       ) -> tuple[str | None, str | None]:
    """The industry the rules know that ``industry`` (free text) names, and how it was found.

    Returns ``(name, how)``: ``(industry, "exact")`` when the rules name it as given;
    ``(known_name, "matched")`` when exactly one most specific known industry, or one of its
    synonyms in ``keywords``, is part of the text (化工厂 → 化工, 化学原料和化学制品制造业 →
    化工, 煤化工厂 → 煤化工); ``(None, "unknown")`` otherwise, and ``(None, None)`` for an
    empty one. An unknown industry must not be taken as "none of the rules' industries": the
    caller treats it as not given, so rules on industries may apply (needs_info, never pass).
    """
    name = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(industry or "")))
    if not name:
        return None, None
    known_set = {re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(k))) for k in known if k}
    if name in known_set:
        return name, "exact"
    folded = _fold(name)
    # every place a known industry (or a synonym of it) is named in the text
    found: list[tuple[int, int, int, str]] = []  # start, end, own name?, industry
    for k in known_set:
        for w in industry_words(k, keywords):
            fw = _fold(w)
            start = folded.find(fw) if fw else -1
            while start >= 0:
                found.append((start, start + len(fw), int(w == k), k))
                start = folded.find(fw, start + 1)
    if not found:
        return None, "unknown"
    # a name inside a longer one (化工 in 煤化工) is not named on its own; at equal spans
    # a known industry's own name beats a synonym (化工厂 is 化工, not 煤化工 by its
    # synonym 化工)
    kept = [f for f in found if not any(
        (g[0] <= f[0] and f[1] <= g[1]) and ((g[1] - g[0], g[2]) > (f[1] - f[0], f[2]))
        for g in found)]
    winners = sorted({f[3] for f in kept})
    if len(winners) == 1:
        return winners[0], "matched"
    # a text naming two industries (化工及畜禽养殖) cannot be checked as either alone
    return None, "several:" + "、".join(winners)
