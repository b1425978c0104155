"""The column vocabulary: every field's one Chinese header, defined once.

A field is known by its machine name (the English name: database column, API key, source-CSV
header) and by one Chinese header, which every writer uses (ledger workbook, relocation
ledger, inspection and layer exports) and every form and page shows. Readers (source files,
ledger, event and layer uploads) accept the machine name, the header, the bureau template's
title and the other spellings seen in circulated files (``aliases``), and map them all to
the machine name, so a file the app wrote always reads back and an older spelling still does.

Headers are catalogue messages (:class:`~geoapp.domain.messages.Text`): a file gets the
Chinese text (``header()``), a page shows ``label()`` in its language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from geoapp.domain.messages import Text
from geoapp.domain.messages import Text as _l


@dataclass(frozen=True)
class Field:
    """One field: machine name, Chinese header (a catalogue message), other spellings."""

    name: str
    label: Text
    #: The title the bureau's ledger template (整治工作台账) prints, where it differs.
    ledger: str = ""
    #: Other headers accepted on import (older or circulated spellings); never written.
    aliases: tuple[str, ...] = ()

    @property
    def zh(self) -> str:
        """The Chinese header as plain text (what files carry)."""
        return str.__str__(self.label)


_FIELDS: tuple[Field, ...] = (
    # every site
    Field("id", _l("编号")),
    Field("site_type", _l("类型")),
    Field("name", _l("名称"), ledger="企业名称"),
    Field("district", _l("辖区"), aliases=("所在辖区",)),
    Field("industry", _l("行业类别")),
    Field("lon", _l("经度"), aliases=("经度（WGS84）",)),
    Field("lat", _l("纬度"), aliases=("纬度（WGS84）",)),
    Field("crs", _l("坐标系")),
    Field("source", _l("数据来源")),
    Field("version", _l("版本")),
    Field("updated_at", _l("更新时间")),
    Field("updated_by", _l("更新人")),
    # enterprises: the ledger template's columns
    Field("seq", _l("序号")),
    Field("address", _l("地址"), ledger="企业详细地址", aliases=("企业地址", "详细地址")),
    Field("credit_code", _l("统一社会信用代码"), ledger="工商营业执照（统一社会信用代码）",
          aliases=("工商营业执照",)),
    Field("industry_code", _l("行业代码")),
    Field("employees", _l("职工人数")),
    Field("land_tenure", _l("厂区土地性质"), aliases=("土地性质",)),
    Field("safety_assessment", _l("有无安全评价")),
    Field("energy_review", _l("有无节能审查")),
    Field("eia_approval", _l("环评批复文号")),
    Field("discharge_permit", _l("排污许可证号")),
    Field("online_monitoring", _l("有无在线监测")),
    Field("main_problems", _l("存在主要环保问题")),
    Field("measures", _l("整改措施")),
    Field("classification", _l("整治分类")),
    Field("deadline", _l("整改完成时限"), aliases=("完成时限",)),
    Field("progress", _l("进展情况")),
    Field("remarks", _l("备注")),
    # enterprises: the programme's progress tracking
    Field("stage", _l("进度阶段"), aliases=("进展阶段",)),
    Field("planned_start", _l("计划启动"), aliases=("计划启动日期",)),
    Field("actual_start", _l("实际启动"), aliases=("实际启动日期",)),
    Field("planned_completion", _l("计划完成"), aliases=("计划完成日期",)),
    Field("actual_completion", _l("实际完成"), aliases=("实际完成日期",)),
    Field("new_site_name", _l("新址名称")),
    Field("new_lon", _l("新址经度")),
    Field("new_lat", _l("新址纬度")),
    Field("new_site_area_mu", _l("新址面积（亩）"), aliases=("新址占地（亩）",)),
    Field("vacated_mu", _l("腾退土地（亩）")),
    Field("listed_mu", _l("挂牌出让（亩）"), aliases=("挂牌出让土地（亩）",)),
    Field("sale_revenue_wan", _l("出让收入（万元）")),
    Field("programme", _l("所属专项")),
    # livestock farms
    Field("species", _l("养殖品种"), aliases=("畜种",)),
    Field("head_count", _l("存栏量")),
    Field("scale", _l("规模")),
    # scattered workshops
    Field("status", _l("状态")),
    Field("found_date", _l("排查日期")),
    Field("banned_date", _l("取缔日期")),
    Field("water_cut_date", _l("断水日期")),
    Field("power_cut_date", _l("断电日期")),
    Field("materials_cleared_date", _l("清原料日期")),
    Field("products_cleared_date", _l("清产品日期")),
    Field("equipment_cleared_date", _l("清设备日期")),
    # rule hits an export may add
    Field("hit_count", _l("命中规则数")),
    Field("hits", _l("命中规则及距离")),
    # event tables
    Field("grid_code", _l("网格编号")),
    Field("warned_at", _l("预警时间")),
    Field("pollutant", _l("污染物")),
    Field("value", _l("浓度值")),
    Field("received_at", _l("受理时间")),
    Field("category", _l("投诉类别")),
    Field("summary", _l("投诉内容")),
    # layers
    Field("code", _l("网格代码")),
    Field("county", _l("区县")),
    Field("key", _l("重点监控")),
    Field("size_m", _l("边长（米）")),
)

FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}


def header(name: str) -> str:
    """The Chinese header of a field as plain text (files); the name itself if unknown."""
    f = FIELDS.get(name)
    return f.zh if f else name


def ledger_header(name: str) -> str:
    """The title the ledger template prints for a field (its header unless it differs)."""
    f = FIELDS.get(name)
    return (f.ledger or f.zh) if f else name


def label(name: str) -> str:
    """A field's header for a page or form: a catalogue message in the page's language."""
    f = FIELDS.get(name)
    return f.label if f else name


def labels(names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(name, label) pairs in the given order, for forms and attribute lists."""
    return tuple((n, label(n)) for n in names)


def header_key(text: Any) -> str:
    """A header as compared: no blanks or line breaks, full-width brackets half-width,
    lower case (for machine names)."""
    t = "" if text is None else str.__str__(text) if isinstance(text, str) else str(text)
    t = re.sub(r"\s+", "", t)
    return t.replace("（", "(").replace("）", ")").lower()


def spellings(f: Field) -> tuple[str, ...]:
    """Every header a reader accepts for ``f``: machine name, header, ledger title, aliases."""
    return tuple(s for s in (f.name, f.zh, f.ledger, *f.aliases) if s)


def field_for(text: Any, among: Iterable[str] | None = None) -> str | None:
    """The machine name a header stands for (any accepted spelling), or None.

    ``among`` limits the answer to the fields a reader knows, since two tables may use the
    same word for different fields.
    """
    key = header_key(text)
    allowed = set(FIELDS) if among is None else set(among)
    for name in allowed:
        f = FIELDS.get(name)
        if f is None:
            if header_key(name) == key:
                return name
            continue
        if any(header_key(s) == key for s in spellings(f)):
            return name
    return None


def rename_headers(columns: Iterable[Any], among: Iterable[str]) -> dict[Any, str]:
    """Column renames for a reader: every column whose header names one of ``among``."""
    known = list(among)
    out: dict[Any, str] = {}
    for c in columns:
        name = field_for(c, known)
        if name is not None and name != c:
            out[c] = name
    return out
