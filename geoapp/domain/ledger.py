"""The enterprise remediation ledger (整治工作台账) in the bureau's Excel template: pure rules.

Planners keep and submit the ledger as an Excel file with fixed Chinese headers. This module
knows that template (columns in order, the two-row header grouping, the cell vocabularies) and
turns one row of cell values into machine values plus a list of problems, so the import service
can report *every* bad cell (row, column, reason) before anything is written. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from geoapp.domain.creditcode import validate_credit_code
from geoapp.domain.errors import InvalidInput, Problem
from geoapp.domain.fields import FIELDS, label, ledger_header, spellings
from geoapp.domain.fields import header_key as _field_key
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import Classification, Stage


@dataclass(frozen=True)
class LedgerColumn:
    """One template column: machine field, Chinese header, header group, value kind."""

    field: str
    header: str
    kind: str = "text"  # text, int, yesno, tenure, classification, date, credit_code, ...
    group: str = ""  # the upper header cell spanning several columns; "" = merged vertically
    required: bool = False


def _col(field: str, kind: str = "text", group: str = "", required: bool = False
         ) -> LedgerColumn:
    """A column headed as the vocabulary (domain.fields) says the template prints it."""
    return LedgerColumn(field, ledger_header(field), kind, group, required)


#: Group headers of the two-row header.
GROUP_PERMITS = "企业手续情况"
GROUP_LOCATION = "厂区位置"
GROUP_HITS = "规则核查结果"
GROUP_PROGRESS = "整治进度"
GROUP_DEADLINE = "时限督办"

#: The template's columns in the order of DOMAIN.md (整治工作台账).
LEDGER_COLUMNS: tuple[LedgerColumn, ...] = (
    _col("seq", "int"),
    _col("district", required=True),
    _col("name", required=True),
    _col("address"),
    _col("credit_code", "credit_code", required=True),
    _col("industry"),
    _col("employees", "int"),
    _col("land_tenure", "tenure", GROUP_PERMITS),
    _col("safety_assessment", "yesno", GROUP_PERMITS),
    _col("energy_review", "yesno", GROUP_PERMITS),
    _col("eia_approval", "text", GROUP_PERMITS),
    _col("discharge_permit", "text", GROUP_PERMITS),
    _col("online_monitoring", "yesno", GROUP_PERMITS),
    _col("main_problems"),
    _col("measures"),
    _col("classification", "classification", required=True),
    _col("deadline", "date"),
    _col("progress"),
    _col("remarks"),
)

#: Location columns that follow the template's columns (optional when the enterprise is known).
LOCATION_COLUMNS: tuple[LedgerColumn, ...] = (
    _col("lon", "coordinate", GROUP_LOCATION),
    _col("lat", "coordinate", GROUP_LOCATION),
    _col("crs", "text", GROUP_LOCATION),
)

#: The programme's progress columns (the /sites progress form's fields): optional on import,
#: written by an export that asks for them. The row's 坐标系 applies to 新址经度/新址纬度 too.
PROGRESS_COLUMNS: tuple[LedgerColumn, ...] = (
    _col("stage", "stage", GROUP_PROGRESS),
    _col("planned_start", "date", GROUP_PROGRESS),
    _col("actual_start", "date", GROUP_PROGRESS),
    _col("planned_completion", "date", GROUP_PROGRESS),
    _col("actual_completion", "date", GROUP_PROGRESS),
    _col("new_site_name", "text", GROUP_PROGRESS),
    _col("new_lon", "coordinate", GROUP_PROGRESS),
    _col("new_lat", "coordinate", GROUP_PROGRESS),
    _col("new_site_area_mu", "amount", GROUP_PROGRESS),
    _col("vacated_mu", "amount", GROUP_PROGRESS),
    _col("listed_mu", "amount", GROUP_PROGRESS),
    _col("sale_revenue_wan", "amount", GROUP_PROGRESS),
)

#: Informational columns an export may add; an import ignores them.
HIT_COLUMNS: tuple[LedgerColumn, ...] = (
    _col("hit_count", "int", GROUP_HITS),
    _col("hits", "text", GROUP_HITS),
)

#: Derived columns an export adds (the 整改完成时限's status and days overdue on the day of
#: the export, docs/deadlines.md); an import ignores them.
DEADLINE_COLUMNS: tuple[LedgerColumn, ...] = (
    LedgerColumn("deadline_status", "时限状态", "text", GROUP_DEADLINE),
    LedgerColumn("days_overdue", "逾期天数", "int", GROUP_DEADLINE),
)
#: Columns an export may add that an import ignores.
DERIVED_COLUMNS: tuple[LedgerColumn, ...] = (*HIT_COLUMNS, *DEADLINE_COLUMNS)

YES, NO = "有", "无"
TENURES = ("租用", "征用")
TITLE_SUFFIX = "企业整治工作台账"
NOTE_PREFIX = "填表说明"
UNIT_LABEL = "填报单位："
DATE_LABEL = "填表时间："

NOTE_LINES: tuple[str, ...] = (
    "1. 工商营业执照（统一社会信用代码）填18位代码，末位校验码按GB 32100-2015核对。",
    "2. 有无安全评价、有无节能审查、有无在线监测填“有”或“无”；厂区土地性质填“租用”或“征用”。",
    "3. 整治分类填“原址关闭”“改造提升”“搬迁升级”（另可填“退二进三”“破产”）。",
    "4. 整改完成时限填日期，如2020-06-30；职工人数填整数。",
    "5. 新增企业须填经度、纬度和坐标系（wgs84、cgcs2000、gcj02、bd09、gk或EPSG:代码）；"
    "已在系统中的企业可按信用代码或名称匹配，不填坐标。",
    "6. 搬迁升级企业在备注中注明新址占地面积（亩）。",
)


def header_key(text: Any) -> str:
    """A header as compared: no blanks or line breaks, full-width brackets made half-width."""
    return _field_key(text)


def columns_by_header() -> dict[str, LedgerColumn]:
    """Every header an import accepts (every spelling the vocabulary knows for the template,
    location, progress and hit columns) to its column."""
    cols: dict[str, LedgerColumn] = {}
    for c in (*LEDGER_COLUMNS, *LOCATION_COLUMNS, *PROGRESS_COLUMNS, *DERIVED_COLUMNS):
        cols[header_key(c.header)] = c
        for s in (spellings(FIELDS[c.field]) if c.field in FIELDS else ()):
            cols.setdefault(header_key(s), c)
    return cols


def column_for(header: Any) -> LedgerColumn | None:
    """The column a header names (any spelling), or None."""
    return columns_by_header().get(header_key(header))


# -------------------------------------------------------------------------- value parsing
class CellError(ValueError):
    """A cell that cannot be read; ``message`` is the catalogue message saying why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_yes_no(value: Any) -> bool | None:
    """有 → True, 无 → False, empty → None; anything else is an error (the template says so)."""
    t = cell_text(value)
    if t == "":
        return None
    if t == YES:
        return True
    if t == NO:
        return False
    raise CellError(_l("应填“有”或“无”，而不是“%(value)s”", value=t))


def yes_no(value: Any) -> str:
    """A stored flag (bool, 'true'/'false', 有/无) shown as 有/无; empty stays empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    t = str(value).strip().lower()
    if t in ("true", "1", "有", "yes"):
        return YES
    if t in ("false", "0", "无", "no"):
        return NO
    return ""


def parse_tenure(value: Any) -> str:
    t = cell_text(value)
    if t and t not in TENURES:
        raise CellError(_l("应填“租用”或“征用”，而不是“%(value)s”", value=t))
    return t


def parse_classification(value: Any) -> str:
    """整治分类 in Chinese (or the machine name) to the machine value."""
    t = cell_text(value)
    try:
        return Classification.parse(t).value
    except ValueError:
        allowed = "、".join(c.zh for c in Classification)
        raise CellError(_l("整治分类应为%(allowed)s之一，而不是“%(value)s”", allowed=allowed,
                           value=t)) from None


def parse_stage(value: Any) -> str | None:
    """进度阶段 in Chinese (or the machine name) to the machine value; empty is None."""
    t = cell_text(value)
    if t == "":
        return None
    try:
        return Stage.parse(t).value
    except ValueError:
        allowed = "、".join(s.zh for s in Stage)
        raise CellError(_l("进度阶段应为%(allowed)s之一，而不是“%(value)s”", allowed=allowed,
                           value=t)) from None


def classification_zh(value: Any) -> str:
    try:
        return Classification.parse(str(value)).zh
    except ValueError:
        return "" if value is None else str(value)


def stage_zh(value: Any) -> str:
    try:
        return Stage.parse(str(value)).zh
    except ValueError:
        return "" if value is None else str(value)


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
)


def parse_date(value: Any) -> str:
    """A date cell (Excel date, 2020-06-30, 2020/6/30, 2020.6.30, 2020年6月30日) as ISO text."""
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise CellError(_l("应为日期，不带时刻，而不是 %(value)s",
                               value=value.isoformat()))
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    t = cell_text(value)
    if t == "":
        return ""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[ T]00:00(:00)?", t):
        t = t[:10]
    for pat in _DATE_PATTERNS:
        m = pat.match(t)
        if m:
            try:
                return date(*map(int, m.groups())).isoformat()
            except ValueError:
                break
    raise CellError(_l("“%(value)s”不是日期，应写作 2020-06-30 或 2020年6月30日", value=t))


def parse_int(value: Any) -> int | None:
    if isinstance(value, bool):
        raise CellError(_l("“%(value)s”不是整数", value=value))
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    else:
        t = cell_text(value).replace(",", "")
        if t == "":
            return None
        if not re.fullmatch(r"[+-]?\d+(\.0+)?", t):
            raise CellError(_l("“%(value)s”不是整数", value=t))
        n = int(float(t))
    if n < 0:
        raise CellError(_l("不能为负数：%(value)s", value=n))
    return n


def parse_number(value: Any) -> float | None:
    if isinstance(value, bool):
        raise CellError(_l("“%(value)s”不是数字", value=value))
    if isinstance(value, (int, float)):
        return float(value)
    t = cell_text(value)
    if t == "":
        return None
    try:
        return float(t)
    except ValueError:
        raise CellError(_l("“%(value)s”不是数字", value=t)) from None


def parse_amount(value: Any) -> float | None:
    """An area or a sum: a number not below 0 (commas of thousands allowed); empty is None."""
    n = parse_number(cell_text(value).replace(",", "") if isinstance(value, str) else value)
    if n is not None and (n != n or n in (float("inf"), float("-inf")) or n < 0):
        raise CellError(_l("须为不小于 0 的数"))
    return n


def parse_credit_code(value: Any) -> str:
    t = cell_text(value).upper()
    if t == "":
        return ""
    try:
        validate_credit_code(t)
    except InvalidInput as exc:
        raise CellError(exc.message) from None
    return t


_PARSERS = {
    "int": parse_int, "yesno": parse_yes_no, "tenure": parse_tenure,
    "classification": parse_classification, "date": parse_date, "coordinate": parse_number,
    "credit_code": parse_credit_code, "stage": parse_stage, "amount": parse_amount,
}

REQUIRED = _l("必填，不能为空")


def parse_row(cells: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """One data row (field → raw cell value) to machine values and its problems.

    Every cell is checked, so one pass reports all problems of the row (each a
    :class:`Problem` naming the ``field`` and ``value``). Empty optional cells give ``""``
    (text) or ``None`` (numbers, flags, stage).
    """
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for col in (*LEDGER_COLUMNS, *LOCATION_COLUMNS, *PROGRESS_COLUMNS):
        if col.field not in cells:
            continue
        raw = cells[col.field]
        if col.required and cell_text(raw) == "":
            problems.append(Problem(field=col.field, value="", message=REQUIRED))
            values[col.field] = ""
            continue
        parse = _PARSERS.get(col.kind)
        if parse is None:
            values[col.field] = cell_text(raw)
            continue
        try:
            values[col.field] = parse(raw)
        except CellError as exc:
            problems.append(Problem(field=col.field, value=cell_text(raw), message=exc.message))
            values[col.field] = None
    dates = {f: values.get(f) or None for f in DATE_FIELDS if f in values}
    if dates or "stage" in values:  # the stage is judged against all four dates only
        problems += progress_problems({**dates, "stage": values.get("stage")},
                                      stage_given="stage" in values and len(dates) == 4)
    problems += _location_problems(cells)
    return values, problems


def _location_problems(cells: Mapping[str, Any]) -> list[Problem]:
    lon, lat, crs = (cell_text(cells.get(f)) for f in ("lon", "lat", "crs"))
    new_lon, new_lat = (cell_text(cells.get(f)) for f in ("new_lon", "new_lat"))
    out = []
    for a, b, x, y in (("lon", "lat", lon, lat), ("new_lon", "new_lat", new_lon, new_lat)):
        if bool(x) != bool(y):
            out.append(Problem(field=a if not x else b, value="", message=BOTH_OR_NEITHER))
    if (lon or new_lon) and not crs:
        out.append(Problem(field="crs", value="", message=_l(
            "填了坐标须注明坐标系（wgs84、gcj02、bd09、cgcs2000、gk 或 EPSG:代码）")))
    return out


BOTH_OR_NEITHER = _l("经度和纬度须同时填写或同时不填")

#: The programme's dates, in form order.
DATE_FIELDS = ("planned_start", "actual_start", "planned_completion", "actual_completion")
#: Stages at or beyond which an actual start / an actual completion must be recorded.
NEEDS_START = (Stage.STARTED, Stage.COMPLETED, Stage.ACCEPTED)
NEEDS_COMPLETION = (Stage.COMPLETED, Stage.ACCEPTED)


def progress_problems(v: Mapping[str, Any], *, stage_given: bool = True) -> list[Problem]:
    """Dates in order, and the stage agreeing with the dates recorded (ISO date text or None;
    the stage as its machine name). The progress form and the ledger import both ask this.
    Without ``stage_given`` only the dates are compared with each other."""
    out = []
    before = {"planned_start": _l("早于计划启动日期"), "actual_start": _l("早于实际启动日期")}
    for start, end in (("planned_start", "planned_completion"),
                       ("actual_start", "actual_completion")):
        if v.get(start) and v.get(end) and v[end] < v[start]:
            out.append(_form_problem(end, v[end], before[start]))
    if v.get("actual_completion") and not v.get("actual_start") and "actual_start" in v:
        out.append(_form_problem("actual_start", "", _l("有实际完成日期时须填实际启动日期")))
    if not stage_given:
        return out
    stage = v.get("stage")
    if stage in NEEDS_START and not v.get("actual_start"):
        out.append(_form_problem("actual_start", "", _l(
            "进度阶段为“%(stage)s”时须填实际启动日期", stage=Stage(stage).zh)))
    if stage in NEEDS_COMPLETION and not v.get("actual_completion"):
        out.append(_form_problem("actual_completion", "", _l(
            "进度阶段为“%(stage)s”时须填实际完成日期", stage=Stage(stage).zh)))
    if stage == Stage.NOT_STARTED and (v.get("actual_start") or v.get("actual_completion")):
        out.append(_form_problem("stage", stage, _l("已填实际日期，进度阶段不能为“未启动”")))
    return out


def _form_problem(field: str, value: Any, message: str) -> Problem:
    return Problem(field=field, label=label(field), value=value, message=message)


def cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def title_for(city_name: str, programme: str = "", district: str = "") -> str:
    """The sheet title, e.g. 焦作市解放区百企退城企业整治工作台账."""
    return f"{city_name}{district}{programme}{TITLE_SUFFIX}"
