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
from geoapp.domain.errors import InvalidInput
from geoapp.domain.vocab import Classification


@dataclass(frozen=True)
class LedgerColumn:
    """One template column: machine field, Chinese header, header group, value kind."""

    field: str
    header: str
    kind: str = "text"  # text, int, yesno, tenure, classification, date, credit_code, ...
    group: str = ""  # the upper header cell spanning several columns; "" = merged vertically
    required: bool = False


#: Group headers of the two-row header.
GROUP_PERMITS = "企业手续情况"
GROUP_LOCATION = "厂区位置"
GROUP_HITS = "规则核查结果"

#: The template's columns in the order of DOMAIN.md (整治工作台账).
LEDGER_COLUMNS: tuple[LedgerColumn, ...] = (
    LedgerColumn("seq", "序号", "int"),
    LedgerColumn("district", "辖区", "text", required=True),
    LedgerColumn("name", "企业名称", "text", required=True),
    LedgerColumn("address", "企业详细地址"),
    LedgerColumn("credit_code", "工商营业执照（统一社会信用代码）", "credit_code", required=True),
    LedgerColumn("industry", "行业类别"),
    LedgerColumn("employees", "职工人数", "int"),
    LedgerColumn("land_tenure", "厂区土地性质", "tenure", GROUP_PERMITS),
    LedgerColumn("safety_assessment", "有无安全评价", "yesno", GROUP_PERMITS),
    LedgerColumn("energy_review", "有无节能审查", "yesno", GROUP_PERMITS),
    LedgerColumn("eia_approval", "环评批复文号", "text", GROUP_PERMITS),
    LedgerColumn("discharge_permit", "排污许可证号", "text", GROUP_PERMITS),
    LedgerColumn("online_monitoring", "有无在线监测", "yesno", GROUP_PERMITS),
    LedgerColumn("main_problems", "存在主要环保问题"),
    LedgerColumn("measures", "整改措施"),
    LedgerColumn("classification", "整治分类", "classification", required=True),
    LedgerColumn("deadline", "整改完成时限", "date"),
    LedgerColumn("progress", "进展情况"),
    LedgerColumn("remarks", "备注"),
)

#: Location columns that follow the template's columns (optional when the enterprise is known).
LOCATION_COLUMNS: tuple[LedgerColumn, ...] = (
    LedgerColumn("lon", "经度", "coordinate", GROUP_LOCATION),
    LedgerColumn("lat", "纬度", "coordinate", GROUP_LOCATION),
    LedgerColumn("crs", "坐标系", "text", GROUP_LOCATION),
)

#: Informational columns an export may add; an import ignores them.
HIT_COLUMNS: tuple[LedgerColumn, ...] = (
    LedgerColumn("hit_count", "命中规则数", "int", GROUP_HITS),
    LedgerColumn("hits", "命中规则及距离", "text", GROUP_HITS),
)

#: Other spellings of headers seen in circulated copies of the template.
HEADER_ALIASES: dict[str, str] = {
    "统一社会信用代码": "credit_code",
    "工商营业执照": "credit_code",
    "工商营业执照(统一社会信用代码)": "credit_code",
    "企业地址": "address",
    "详细地址": "address",
    "所在辖区": "district",
    "土地性质": "land_tenure",
    "完成时限": "deadline",
}

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
    t = "" if text is None else str(text)
    t = re.sub(r"\s+", "", t)
    return t.replace("（", "(").replace("）", ")")


def columns_by_header() -> dict[str, LedgerColumn]:
    """Every header an import accepts (template, location, hits, aliases) to its column."""
    cols = {header_key(c.header): c for c in (*LEDGER_COLUMNS, *LOCATION_COLUMNS, *HIT_COLUMNS)}
    by_field = {c.field: c for c in LEDGER_COLUMNS}
    for alias, field in HEADER_ALIASES.items():
        cols.setdefault(header_key(alias), by_field[field])
    return cols


# -------------------------------------------------------------------------- value parsing
def parse_yes_no(value: Any) -> bool | None:
    """有 → True, 无 → False, empty → None; anything else is an error (the template says so)."""
    t = cell_text(value)
    if t == "":
        return None
    if t == YES:
        return True
    if t == NO:
        return False
    raise ValueError(f"填“有”或“无” (expected 有 or 无), got {t!r}")


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
        raise ValueError(f"填“租用”或“征用” (expected 租用 or 征用), got {t!r}")
    return t


def parse_classification(value: Any) -> str:
    """整治分类 in Chinese (or the machine name) to the machine value."""
    t = cell_text(value)
    try:
        return Classification.parse(t).value
    except ValueError:
        allowed = "、".join(c.zh for c in Classification)
        raise ValueError(f"整治分类应为{allowed}之一 (unknown classification {t!r})") from None


def classification_zh(value: Any) -> str:
    try:
        return Classification.parse(str(value)).zh
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
            raise ValueError(f"expected a date without a time, got {value.isoformat()}")
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
    raise ValueError(f"not a date (expected e.g. 2020-06-30 or 2020年6月30日), got {t!r}")


def parse_int(value: Any) -> int | None:
    if isinstance(value, bool):
        raise ValueError(f"not a whole number: {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    else:
        t = cell_text(value).replace(",", "")
        if t == "":
            return None
        if not re.fullmatch(r"[+-]?\d+(\.0+)?", t):
            raise ValueError(f"not a whole number: {t!r}")
        n = int(float(t))
    if n < 0:
        raise ValueError(f"must not be negative: {n}")
    return n


def parse_number(value: Any) -> float | None:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    t = cell_text(value)
    if t == "":
        return None
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"not a number: {t!r}") from None


def parse_credit_code(value: Any) -> str:
    t = cell_text(value).upper()
    if t == "":
        return ""
    try:
        validate_credit_code(t)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    return t


_PARSERS = {
    "int": parse_int, "yesno": parse_yes_no, "tenure": parse_tenure,
    "classification": parse_classification, "date": parse_date, "coordinate": parse_number,
    "credit_code": parse_credit_code,
}


def parse_row(cells: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any, str]]]:
    """One data row (field → raw cell value) to machine values and (field, value, reason) problems.

    Every cell is checked, so one pass reports all problems of the row. Empty optional cells
    give ``""`` (text) or ``None`` (numbers, flags).
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, Any, str]] = []
    for col in (*LEDGER_COLUMNS, *LOCATION_COLUMNS):
        if col.field not in cells:
            continue
        raw = cells[col.field]
        if col.required and cell_text(raw) == "":
            problems.append((col.field, "", "必填 (required, but empty)"))
            values[col.field] = ""
            continue
        parse = _PARSERS.get(col.kind)
        if parse is None:
            values[col.field] = cell_text(raw)
            continue
        try:
            values[col.field] = parse(raw)
        except ValueError as exc:
            problems.append((col.field, cell_text(raw), str(exc)))
            values[col.field] = None
    problems += _location_problems(cells)
    return values, problems


def _location_problems(cells: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    lon, lat, crs = (cell_text(cells.get(f)) for f in ("lon", "lat", "crs"))
    if bool(lon) != bool(lat):
        return [("lon" if not lon else "lat", "", "经度和纬度须同时填写 (give both or neither)")]
    if lon and not crs:
        return [("crs", "", "填了坐标须注明坐标系 (name the coordinate system: wgs84, gcj02, "
                 "bd09, cgcs2000, gk or EPSG:n)")]
    return []


def cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def title_for(city_name: str, programme: str = "", district: str = "") -> str:
    """The sheet title, e.g. 焦作市解放区百企退城企业整治工作台账."""
    return f"{city_name}{district}{programme}{TITLE_SUFFIX}"
