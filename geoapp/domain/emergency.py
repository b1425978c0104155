"""重污染天气应急减排清单: the heavy-pollution weather emergency emission-reduction list.

Every enterprise on the list has a 绩效分级 (performance grade: A, B, C, D, 引领性, 非引领性)
and its 一厂一策 measures for each warning level (黄色 yellow, 橙色 orange, 红色 red): the
production cut in per cent, the processes it stops and its transport restrictions. This module
holds the vocabulary (grades and levels with their stable codes, labels and colours), the
stored row (:class:`EmergencyMeasure`), the checks of one row's values and the reading of the
province's spreadsheet form (a two-row header with 黄色预警 / 橙色预警 / 红色预警 merged over
their three columns, or the same header flattened into one row). No I/O.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from geoapp.domain.creditcode import validate_credit_code
from geoapp.domain.errors import InvalidInput, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.domain.text import document_text


# ------------------------------------------------------------------------------ grades
class Grade(StrEnum):
    """The 绩效分级 of an enterprise; the value is the stable code stored in the database."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    LEADING = "leading"
    NON_LEADING = "non_leading"

    @property
    def zh(self) -> str:
        return GRADE_ZH[self]

    @property
    def en(self) -> str:
        return GRADE_EN[self]

    @property
    def label(self) -> _l:
        """The grade's catalogue entry (``str()`` gives the page's language)."""
        return GRADE_LABELS[self]

    @property
    def colour(self) -> str:
        return GRADE_COLOURS[self]


#: How the province's form writes each grade.
GRADE_ZH: dict[Grade, str] = {Grade.A: "A级", Grade.B: "B级", Grade.C: "C级", Grade.D: "D级",
                              Grade.LEADING: "引领性", Grade.NON_LEADING: "非引领性"}
GRADE_EN: dict[Grade, str] = {Grade.A: "Grade A", Grade.B: "Grade B", Grade.C: "Grade C",
                              Grade.D: "Grade D", Grade.LEADING: "Leading",
                              Grade.NON_LEADING: "Non-leading"}
GRADE_LABELS: dict[Grade, _l] = {Grade.A: _l("A级"), Grade.B: _l("B级"), Grade.C: _l("C级"),
                                 Grade.D: _l("D级"), Grade.LEADING: _l("引领性"),
                                 Grade.NON_LEADING: _l("非引领性")}
#: Map and page colours: A green to D red; the two 引领性 grades (industries without A-D
#: grading) blue and purple.
GRADE_COLOURS: dict[Grade, str] = {Grade.A: "#1a9850", Grade.B: "#91cf60",
                                   Grade.C: "#fc8d59", Grade.D: "#d73027",
                                   Grade.LEADING: "#4575b4", Grade.NON_LEADING: "#8e63b0"}
UNKNOWN_COLOUR = "#999999"

_GRADE_WORDS: dict[str, Grade] = {}
for _g in Grade:
    for _w in (_g.value, _g.zh, _g.en, _g.zh.removesuffix("级") + "类",
               _g.zh.removesuffix("级") + "级企业", _g.zh + "企业"):
        _GRADE_WORDS[re.sub(r"[\s_-]+", "", _w).casefold()] = _g
_GRADE_WORDS.update({"nonleading": Grade.NON_LEADING, "非引领": Grade.NON_LEADING,
                     "引领": Grade.LEADING, "引领性企业": Grade.LEADING,
                     "非引领性企业": Grade.NON_LEADING})


def parse_grade(text: Any) -> Grade | None:
    """The grade named by ``text`` (A, A级, A类, a, 引领性, non_leading, Leading …); None when
    it names none."""
    if text is None:
        return None
    if isinstance(text, Grade):
        return text
    t = re.sub(r"[\s_\-]+", "", unicodedata.normalize("NFKC", str(text))).casefold()
    return _GRADE_WORDS.get(t)


def grade_colour(grade: Any) -> str:
    found = parse_grade(grade)
    return found.colour if found is not None else UNKNOWN_COLOUR


def grade_zh(grade: Any) -> str:
    found = parse_grade(grade)
    return found.zh if found is not None else str(grade or "")


# ------------------------------------------------------------------------------ warning levels
class Level(StrEnum):
    """The warning levels of a heavy-pollution episode, mildest first."""

    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def zh(self) -> str:
        return LEVEL_ZH[self]

    @property
    def label(self) -> _l:
        return LEVEL_LABELS[self]

    @property
    def colour(self) -> str:
        return LEVEL_COLOURS[self]


LEVELS: tuple[Level, ...] = tuple(Level)
LEVEL_ZH: dict[Level, str] = {Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
LEVEL_LABELS: dict[Level, _l] = {Level.YELLOW: _l("黄色预警"), Level.ORANGE: _l("橙色预警"),
                                 Level.RED: _l("红色预警")}
LEVEL_COLOURS: dict[Level, str] = {Level.YELLOW: "#e6b800", Level.ORANGE: "#f07c00",
                                   Level.RED: "#d7191c"}


def parse_level(text: Any) -> Level | None:
    """The level named by its code, Chinese name (红色, 红色预警) or English name."""
    t = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or ""))).casefold()
    for lv in LEVELS:
        if t in (lv.value, lv.zh, lv.zh + "预警", lv.value + "warning"):
            return lv
    return None


#: The three measures of one level: (suffix of the column, header in the form).
LEVEL_FIELDS: tuple[tuple[str, str], ...] = (
    ("cut_pct", "限产比例(%)"), ("processes", "停产工序"), ("transport", "运输管控措施"))
MEASURE_LABELS: dict[str, _l] = {"cut_pct": _l("限产比例(%)"), "processes": _l("停产工序"),
                                 "transport": _l("运输管控措施")}
MEASURE_FIELDS: tuple[str, ...] = tuple(f"{lv.value}_{k}" for lv in LEVELS
                                        for k, _h in LEVEL_FIELDS)
CUT_FIELDS: tuple[str, ...] = tuple(f"{lv.value}_cut_pct" for lv in LEVELS)
#: The columns of a stored row besides the system columns (version, updated_*, origin).
FIELDS: tuple[str, ...] = ("key", "site_id", "name", "credit_code", "county", "industry",
                           "grade", *MEASURE_FIELDS, "remarks")
#: What an edit may change (the enterprise itself is fixed by its key).
EDIT_FIELDS: tuple[str, ...] = ("industry", "grade", *MEASURE_FIELDS, "remarks")
#: Most characters of one text (processes, transport, remarks, industry, name).
MAX_TEXT = 2000
MAX_NAME = 200


# ------------------------------------------------------------------------------ keys
def normalise_name(name: Any) -> str:
    """An enterprise name as compared: NFKC (full-width brackets half-width), no blanks."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(name or "")))


def normalise_credit_code(code: Any) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(code or ""))).upper()


def measure_key(credit_code: Any, name: Any) -> str:
    """The row's key: the credit code, or the normalised name where the list has none."""
    return normalise_credit_code(credit_code) or normalise_name(name)


# ------------------------------------------------------------------------------ one row
@dataclass(frozen=True)
class EmergencyMeasure:
    """One enterprise's row of the list as stored."""

    key: str
    name: str
    grade: str
    site_id: str | None = None
    credit_code: str = ""
    county: str = ""
    industry: str = ""
    measures: Mapping[str, Any] = field(default_factory=dict)  # MEASURE_FIELDS -> value
    remarks: str = ""
    version: int = 1
    updated_at: str = ""
    updated_by: str = ""
    origin: str = "source"

    def value(self, name: str) -> Any:
        if name in MEASURE_FIELDS:
            v = self.measures.get(name)
            return v if v is not None or name in CUT_FIELDS else ""
        return getattr(self, name)

    def level(self, level: Level | str) -> dict[str, Any]:
        """``cut_pct``, ``processes``, ``transport`` of one warning level."""
        lv = Level(level)
        return {k: self.value(f"{lv.value}_{k}") for k, _h in LEVEL_FIELDS}

    @property
    def grade_enum(self) -> Grade | None:
        return parse_grade(self.grade)

    def record(self) -> dict[str, Any]:
        """The row's fields (FIELDS) as plain values."""
        return {f: self.value(f) for f in FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return {**self.record(), "version": self.version, "updated_at": self.updated_at,
                "updated_by": self.updated_by, "origin": self.origin}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EmergencyMeasure:
        def cut(v: Any) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        return cls(key=str(row["key"]), name=str(row.get("name") or ""),
                   grade=str(row.get("grade") or ""),
                   site_id=(str(row["site_id"]) if row.get("site_id") else None),
                   credit_code=str(row.get("credit_code") or ""),
                   county=str(row.get("county") or ""), industry=str(row.get("industry") or ""),
                   measures={f: (cut(row.get(f)) if f in CUT_FIELDS else str(row.get(f) or ""))
                             for f in MEASURE_FIELDS},
                   remarks=str(row.get("remarks") or ""), version=int(row.get("version") or 1),
                   updated_at=str(row.get("updated_at") or ""),
                   updated_by=str(row.get("updated_by") or ""),
                   origin=str(row.get("origin") or "source"))


def clean_text(value: Any) -> str:
    """A text cell as stored: line ends ``\\n``, blanks at either end dropped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    t = document_text(str(value).replace("\r\n", "\n").replace("\r", "\n"))
    return "\n".join(line.rstrip() for line in t.split("\n")).strip()


def parse_cut(value: Any) -> tuple[float | None, str | None]:
    """A production cut in per cent: (value, None), (None, None) when empty, or (None, why)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, _l("限产比例须为 0–100 的数字")
    if isinstance(value, int | float):
        number = float(value)
    else:
        t = unicodedata.normalize("NFKC", str(value)).strip().rstrip("%").strip()
        try:
            number = float(t)
        except ValueError:
            return None, _l("限产比例须为 0–100 的数字")
    if math.isnan(number) or math.isinf(number):
        return None, _l("限产比例须为 0–100 的数字")
    if not 0 <= number <= 100:
        return None, _l("限产比例须在 0 到 100 之间")
    return number, None


def check_values(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any, str]]]:
    """The clean values of one row's grade, measures, industry and remarks (those given), and
    its problems as (field, value, message): an unknown grade, a cut that is not a number
    from 0 to 100, a red cut lower than the orange or yellow one (or orange lower than
    yellow), a text too long."""
    out: dict[str, Any] = {}
    problems: list[tuple[str, Any, str]] = []
    if "grade" in values:
        grade = parse_grade(values["grade"])
        if grade is None:
            problems.append(("grade", values["grade"],
                             _l("绩效分级应为 A级、B级、C级、D级、引领性 或 非引领性")))
        else:
            out["grade"] = grade.value
    for f in CUT_FIELDS:
        if f in values:
            number, why = parse_cut(values[f])
            if why is not None:
                problems.append((f, values[f], why))
            else:
                out[f] = number
    for f in (*MEASURE_FIELDS, "industry", "remarks"):
        if f in values and f not in CUT_FIELDS:
            text = clean_text(values[f])
            if len(text) > MAX_TEXT:
                problems.append((f, text[:40] + "…", _l("过长：最多 %(limit)s 字", limit=MAX_TEXT)))
            out[f] = text
    cuts = {f: out.get(f) for f in CUT_FIELDS}
    yellow, orange, red = (cuts[f"{lv.value}_cut_pct"] for lv in LEVELS)
    if red is not None and orange is not None and red < orange:
        problems.append(("red_cut_pct", values.get("red_cut_pct"),
                         _l("红色预警限产比例低于橙色预警（%(other)s%%）", other=_num(orange))))
    elif red is not None and yellow is not None and red < yellow:
        problems.append(("red_cut_pct", values.get("red_cut_pct"),
                         _l("红色预警限产比例低于黄色预警（%(other)s%%）", other=_num(yellow))))
    if orange is not None and yellow is not None and orange < yellow:
        problems.append(("orange_cut_pct", values.get("orange_cut_pct"),
                         _l("橙色预警限产比例低于黄色预警（%(other)s%%）", other=_num(yellow))))
    # A stricter level left empty while a milder one cuts: the red list would show no cut
    # for a firm that cuts under a yellow warning.
    milder: tuple[str, float] | None = None
    for lv in LEVELS:
        f = f"{lv.value}_cut_pct"
        if cuts[f] is not None:
            milder = (lv.zh, cuts[f])
        elif milder is not None and f in values and not any(p[0] == f for p in problems):
            problems.append((f, values.get(f), _l(
                "%(level)s预警限产比例为空，但%(milder)s预警为 %(other)s%%：级别越高，限产比例不应越低",
                level=lv.zh, milder=milder[0], other=_num(milder[1]))))
    return out, problems


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def format_cut(v: Any) -> str:
    """A cut for a page or document: ``30``, ``12.5``; empty when none."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return _num(float(v))


# ------------------------------------------------------------------------------ the sheet
@dataclass(frozen=True)
class SheetColumn:
    field: str
    header: str
    aliases: tuple[str, ...] = ()


#: The columns before the level groups, in the province's order (序号 first, not a field).
BASE_COLUMNS: tuple[SheetColumn, ...] = (
    SheetColumn("county", "县（市、区）", ("县(市、区)", "县(市区)", "区县", "县区", "县(区)",
                                       "所在县区", "所属县区", "县(市)", "区(县)")),
    SheetColumn("name", "企业名称", ("单位名称", "企业(单位)名称", "名称")),
    SheetColumn("credit_code", "统一社会信用代码", ("社会信用代码", "信用代码",
                                               "统一社会信用代码(组织机构代码)")),
    SheetColumn("industry", "行业", ("所属行业", "行业类别", "行业名称", "涉及行业")),
    SheetColumn("grade", "绩效分级", ("绩效等级", "绩效评级", "绩效分级级别", "分级", "企业绩效分级")),
)
REMARKS = SheetColumn("remarks", "备注", ("说明",))
#: Headers of each level's group and of the measures under it.
LEVEL_GROUPS: dict[Level, tuple[str, ...]] = {
    lv: (f"{lv.zh}预警", lv.zh, f"{lv.zh}预警期间", f"{lv.zh}预警措施", f"{lv.zh}预警减排措施")
    for lv in LEVELS}
MEASURE_ALIASES: dict[str, tuple[str, ...]] = {
    "cut_pct": ("限产比例(%)", "限产比例", "限产比例%", "减排比例(%)", "减排比例", "限产比例(%)",
                "停限产比例(%)", "停限产比例", "限产"),
    "processes": ("停产工序", "停产工序(生产线)", "停产生产线", "停限产工序", "停产设备(工序)",
                  "停产设备", "停产"),
    "transport": ("运输管控措施", "运输管控", "运输措施", "运输管控要求", "运输"),
}
IGNORED_HEADERS: tuple[str, ...] = ("序号", "编号", "市", "地市", "省辖市", "城市")
NOTE_STARTS: tuple[str, ...] = ("注：", "注:", "说明：", "说明:", "填表说明", "填报说明")
HEADER_SCAN_ROWS = 10
#: Fields the form must have.
REQUIRED_FIELDS: tuple[str, ...] = ("county", "name", "credit_code", "grade", *MEASURE_FIELDS)


def header_key(text: Any) -> str:
    """A header as compared: NFKC (full-width brackets half-width), no blanks, line breaks,
    ``*`` marks or separators between a level and its measure."""
    t = unicodedata.normalize("NFKC", "" if text is None else str(text))
    return re.sub(r"[\s*※\-_—/·:：]+", "", t)


def _base_keys() -> dict[str, str]:
    out: dict[str, str] = {}
    for col in (*BASE_COLUMNS, REMARKS):
        for h in (col.header, *col.aliases):
            out.setdefault(header_key(h), col.field)
    return out


_BASE = _base_keys()
_MEASURE = {header_key(a): k for k, aliases in MEASURE_ALIASES.items() for a in aliases}
_GROUPS = sorted(((header_key(g), lv) for lv, gs in LEVEL_GROUPS.items() for g in gs),
                 key=lambda p: -len(p[0]))
_IGNORED = {header_key(h) for h in IGNORED_HEADERS}


def _group_of(key: str) -> Level | None:
    return next((lv for g, lv in _GROUPS if key == g), None)


def _flat_field(key: str) -> str | None:
    """The measure field a flattened header (黄色预警限产比例(%)) names, or None."""
    for g, lv in _GROUPS:
        if key.startswith(g) and key[len(g):] in _MEASURE:
            return f"{lv.value}_{_MEASURE[key[len(g):]]}"
    return None


def sheet_cell_text(value: Any) -> str:
    """A cell as text: whole floats without ``.0``, blanks at either end dropped."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


@dataclass
class EmergencySheet:
    """What was read from a sheet: the row the header ends on, each column's field ('' for
    ignored ones) and header, and every data row as (sheet row, field -> raw cell)."""

    file: str
    header_row: int = 0
    fields: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def header_of(self, name: str) -> str:
        for f, h in zip(self.fields, self.headers, strict=False):
            if f == name:
                return h
        return column_header(name)


def column_header(name: str) -> str:
    """The form's (flattened) header of a field."""
    for col in (*BASE_COLUMNS, REMARKS):
        if col.field == name:
            return col.header
    lv, _s, measure = name.partition("_")
    heads = dict(LEVEL_FIELDS)
    if parse_level(lv) is not None and measure in heads:
        return f"{Level(lv).zh}预警{heads[measure]}"
    return name


def read_emergency_sheet(file: str, grid: Sequence[Sequence[Any]]) -> EmergencySheet:
    """The form's rows from a sheet's cells (``grid[i]`` is sheet row ``i + 1``).

    The header is the first of the first 10 rows with an enterprise-name column; it may be
    one row (``黄色预警限产比例(%)`` …) or two, with 黄色预警 / 橙色预警 / 红色预警 merged over
    their three measures and the other headers merged over both rows. Title rows above it,
    a 序号 column, blank rows and a note under the table are tolerated. Wrong columns
    (unknown, repeated, missing) raise ValidationFailed naming the header row and column.
    """
    top = next((i for i, row in enumerate(grid[:HEADER_SCAN_ROWS])
                if any(_BASE.get(header_key(v)) == "name" for v in row)), None)
    if top is None:
        raise ValidationFailed(
            _l("%(file)s：前 %(rows)s 行里找不到表头（须有“企业名称”列），这是重污染天气应急减排清单吗？",
               file=file, rows=HEADER_SCAN_ROWS),
            details=[Problem(file=file, row="", column="企业名称", value="",
                             message=_l("找不到表头"))])
    upper = [sheet_cell_text(v) for v in grid[top]]
    lower = [sheet_cell_text(v) for v in grid[top + 1]] if top + 1 < len(grid) else []
    two_rows = any(_group_of(header_key(v)) is not None for v in upper) \
        and any(header_key(v) in _MEASURE for v in lower)
    width = max(len(upper), len(lower) if two_rows else 0)
    fields: list[str] = []
    headers: list[str] = []
    problems: list[Problem] = []
    header_row = top + (2 if two_rows else 1)
    group: Level | None = None
    for c in range(width):
        up = upper[c] if c < len(upper) else ""
        low = lower[c] if two_rows and c < len(lower) else ""
        if up:
            group = _group_of(header_key(up))
        if two_rows and low and header_key(low) in _MEASURE and group is not None:
            name = f"{group.value}_{_MEASURE[header_key(low)]}"
            shown = f"{group.zh}预警{low}"
        else:
            text = low or up
            key = header_key(text)
            shown = text
            known = _BASE.get(key) or _flat_field(key) or "?"
            name = "" if not key or key in _IGNORED else known
        if name == "?":
            problems.append(Problem(file=file, row=header_row, column=shown, value=shown,
                                    message=_l("未知的列（第 %(column)s 列）", column=c + 1)))
            name = ""
        elif name and name in fields:
            problems.append(Problem(file=file, row=header_row, column=shown, value=shown,
                                    message=_l("此列出现了两次")))
            name = ""
        fields.append(name)
        headers.append(shown)
    problems += [Problem(file=file, row=header_row, column=column_header(f), value="",
                         message=_l("缺少此列"))
                 for f in REQUIRED_FIELDS if f not in fields]
    if problems:
        raise ValidationFailed(
            _l("%(file)s：列不符合重污染天气应急减排清单格式（%(count)s 处问题；第一处：第 %(row)s 行 "
               "%(column)s：%(message)s）", file=file, count=len(problems), row=header_row,
               column=problems[0].column, message=problems[0].message), details=problems)
    sheet = EmergencySheet(file=file, header_row=header_row, fields=fields, headers=headers)
    for i in range(header_row, len(grid)):
        cells = list(grid[i])
        texts = [sheet_cell_text(v) for v in cells]
        if not any(texts):
            continue
        if next(t for t in texts if t).startswith(NOTE_STARTS):
            break
        extra = [c for c in range(len(fields), len(texts)) if texts[c]]
        if extra:
            raise ValidationFailed(
                _l("%(file)s：第 %(row)s 行在表头以外的第 %(column)s 列有内容", file=file,
                   row=i + 1, column=extra[0] + 1),
                details=[Problem(file=file, row=i + 1, column=str(extra[0] + 1),
                                 value=texts[extra[0]][:40], message=_l("此列没有表头"))])
        values = {f: _unquote(cells[c] if c < len(cells) else None)
                  for c, f in enumerate(fields) if f}
        sheet.rows.append((i + 1, values))
    return sheet


#: A cell an export wrote with an apostrophe so that a spreadsheet would not run it.
_NEUTRALISED = ("'=", "'+", "'-", "'@", "'\t", "'\r")


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_NEUTRALISED):
        return value[1:]
    return value


@dataclass(frozen=True)
class KnownSite:
    """A registered enterprise a row may link to."""

    id: str
    name: str
    credit_code: str = ""
    county: str = ""


def link_site(credit_code: str, name: str, by_code: Mapping[str, KnownSite],
              by_name: Mapping[str, KnownSite]) -> KnownSite | None:
    """The registered enterprise of a row: by credit code, else by exact (normalised) name."""
    code = normalise_credit_code(credit_code)
    if code and code in by_code:
        return by_code[code]
    return by_name.get(normalise_name(name))


def site_indexes(sites: Iterable[KnownSite]
                 ) -> tuple[dict[str, KnownSite], dict[str, KnownSite]]:
    """The registered enterprises by credit code and by normalised name (a name held by two
    enterprises links neither)."""
    by_code: dict[str, KnownSite] = {}
    by_name: dict[str, KnownSite] = {}
    twice: set[str] = set()
    for s in sites:
        code = normalise_credit_code(s.credit_code)
        if code:
            by_code.setdefault(code, s)
        n = normalise_name(s.name)
        if n in by_name:
            twice.add(n)
        by_name.setdefault(n, s)
    for n in twice:
        by_name.pop(n, None)
    return by_code, by_name


def county_names(counties: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Accepted county texts -> the city's short name, from (name, full name) pairs."""
    out: dict[str, str] = {}
    for name, full in counties:
        for t in (name, full):
            if t:
                out[normalise_name(t)] = name
    return out


def sheet_records(sheet: EmergencySheet, counties: Mapping[str, str],
                  sites: Iterable[KnownSite] = ()) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Validated records (FIELDS) of a sheet's rows and every problem by sheet row and the
    file's own header: a missing name, a malformed credit code (GB 32100), an enterprise
    twice, an unknown county, an unknown grade, a cut that is not a number from 0 to 100 or
    lower at a stricter level, a text too long. Each record is linked to a registered
    enterprise (``site_id``) by credit code, else by exact name; None when unmatched."""
    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    by_code, by_name = site_indexes(sites)

    def problem(row: int, name: str, value: Any, message: Any) -> None:
        problems.append(Problem(file=sheet.file, row=row, column=sheet.header_of(name),
                                value="" if value is None else str(value)[:80],
                                message=message))

    for row, raw in sheet.rows:
        before = len(problems)
        name = clean_text(raw.get("name"))
        if not name:
            problem(row, "name", "", _l("缺少企业名称"))
        elif len(name) > MAX_NAME:
            problem(row, "name", name[:40] + "…", _l("过长：最多 %(limit)s 字", limit=MAX_NAME))
        code = normalise_credit_code(sheet_cell_text(raw.get("credit_code")))
        if code:
            try:
                validate_credit_code(code)
            except InvalidInput as exc:
                problem(row, "credit_code", code, exc.message)
        key = measure_key(code, name)
        if key:
            # the same code, or the same name (with or without a code), is the same enterprise
            nkey = "name:" + normalise_name(name)
            if key in seen:
                problem(row, "credit_code" if code else "name", code or name,
                        _l("与第 %(row)s 行是同一企业：每家企业在清单中只能出现一次", row=seen[key]))
            elif name and nkey in seen:
                problem(row, "name", name, _l("与第 %(row)s 行企业名称相同：每家企业在清单中只能出现一次",
                                              row=seen[nkey]))
            seen.setdefault(key, row)
            if name:
                seen.setdefault(nkey, row)
        county_raw = clean_text(raw.get("county"))
        county = counties.get(normalise_name(county_raw))
        if not county_raw:
            problem(row, "county", "", _l("缺少县（市、区）"))
        elif county is None:
            problem(row, "county", county_raw, _l("未知的县（市、区）“%(name)s”", name=county_raw))
        values, bad = check_values({k: raw.get(k) for k in ("grade", *MEASURE_FIELDS,
                                                            "industry", "remarks")})
        for f, v, message in bad:
            problem(row, f, v, message)
        if len(problems) > before:
            continue
        site = link_site(code, name, by_code, by_name)
        records.append({"key": key, "site_id": site.id if site else None, "name": name,
                        "credit_code": code, "county": county, **values, "row": row})
    return records, problems


__all__ = ["BASE_COLUMNS", "CUT_FIELDS", "EDIT_FIELDS", "FIELDS", "GRADE_COLOURS",
           "LEVELS", "LEVEL_FIELDS", "MEASURE_FIELDS", "EmergencyMeasure", "EmergencySheet",
           "Grade", "KnownSite", "Level", "check_values", "format_cut", "grade_colour",
           "link_site", "measure_key", "normalise_name", "parse_cut", "parse_grade",
           "parse_level", "read_emergency_sheet", "sheet_records", "site_indexes"]
