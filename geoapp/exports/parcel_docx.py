"""项目选址环境合理性预判报告: a parcel check's answer as a Word document.

Takes the answer's JSON form (``ParcelReport.to_dict()``) and, per parcel, an optional map
image (``exports.parcel_map``). The document states what was checked (project, file,
coordinate system), the conclusion per parcel, and for each parcel: its ground area, the
rules it breaks or may break with distances and overlaps, the layer features it overlaps,
and every environmental control unit it touches with the unit's full 准入清单 — the lines
naming the project's industry marked — followed by how it was measured and what a
pre-assessment is not, signed by the issuing unit with the day of the check. The page and
fonts are the official layout of ``docx_common`` (docs/documents.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from geoapp.domain.text import document_text
from geoapp.domain.units import PARTS, requirement_lines
from geoapp.domain.vocab import SiteType
from geoapp.exports.docx_common import (
    heading,
    new_document,
    paragraph,
    picture,
    signature,
    small_paragraph,
    table,
    title,
)
from geoapp.exports.parcel_tables import OUTCOME_ZH, VERDICT_ZH

TITLE = "项目选址环境合理性预判报告"
#: Parcels described one by one; the summary table lists every parcel.
MAX_DETAILED = 100
FLAG_COLOUR = (0xC0, 0x00, 0x00)


def _fmt_m2(v: float | None) -> str:
    return "" if v is None else f"{v:,.1f}"


def _fmt_m(v: float | None) -> str:
    return "" if v is None else f"{v:,.1f}"


def _area_text(area: Mapping[str, float]) -> str:
    return f"{area['m2']:,.1f} 平方米（{area['mu']:,.2f} 亩，{area['ha']:,.4f} 公顷）"


def _site_type_zh(value: str | None) -> str:
    if not value:
        return "未填写"
    try:
        return SiteType.parse(value).zh
    except ValueError:
        return value


def _industry_text(inp: Mapping[str, Any]) -> str:
    given, used = inp.get("industry_given"), inp.get("industry")
    if given and used:
        return f"{given}（按“{used}”核查）"
    if given:
        return f"{given}（不是管控规则使用的行业，按未填写行业核查）"
    return used or "未填写"


def _title(h: Mapping[str, Any]) -> str:
    t = h.get("title") or {}
    return t.get("zh", "") if isinstance(t, Mapping) else str(t)


def write_parcel_docx(answer: Mapping[str, Any], path: str | Path, *,
                      maps: Sequence[Path | None] = (), issuer: str = "") -> Path:
    """Write the report of ``answer`` to ``path``; ``maps[i]`` is the PNG of parcel ``i``."""
    from docx.shared import RGBColor

    stamp = datetime.fromisoformat(answer["checked_at"])
    doc = new_document(TITLE, stamp.replace(tzinfo=None))
    title(doc, TITLE)
    paragraph(doc, f"核查时间：{stamp:%Y年%m月%d日 %H:%M}", center=True)

    inp, src, summary = answer["input"], answer["source"], answer["summary"]
    heading(doc, "一、项目与地块")
    rows = [("场所类型", _site_type_zh(inp.get("site_type"))),
            ("行业", _industry_text(inp)),
            ("地块来源", src.get("filename") or {"drawn": "地图上绘制", "text": "粘贴的坐标"}
             .get(src.get("format"), src.get("format") or "")),
            ("坐标系", src.get("crs") or ""),
            ("地块数", str(summary["parcels"])),
            ("总面积", _area_text({"m2": summary["area_m2"], "mu": summary["area_m2"] / (
                10000 / 15), "ha": summary["area_m2"] / 10000}))]
    rows += [(k, str(v)) for k, v in inp.items()
             if k not in ("site_type", "industry", "industry_given") and v not in (None, "")]
    table(doc, "基本信息", pd.DataFrame(rows, columns=["项目", "内容"]))
    if answer.get("warnings"):
        heading(doc, "读取地块时的提示", level=2)
        for w in answer["warnings"]:
            paragraph(doc, f"· {w.get('message', '')}")

    heading(doc, "二、预判结论")
    counts = summary["verdicts"]
    paragraph(doc, "；".join(f"{VERDICT_ZH[k]} {n} 宗" for k, n in counts.items() if n) + "。")
    table(doc, "各地块结论", pd.DataFrame(
        [(p["id"], p.get("name") or "", f"{p['area']['mu']:,.2f}", VERDICT_ZH[p["verdict"]],
          "；".join(_title(h) for h in p["hits"]) or "无",
          "；".join(u["code"] for u in p["units"]))
         for p in answer["parcels"]],
        columns=["地块编号", "地块名称", "面积（亩）", "结论", "触发规则", "涉及管控单元"]))

    parcels = answer["parcels"]
    for i, p in enumerate(parcels[:MAX_DETAILED]):
        _parcel_section(doc, i, p, maps[i] if i < len(maps) else None, bool(inp.get("industry")),
                        RGBColor(*FLAG_COLOUR))
    if len(parcels) > MAX_DETAILED:
        paragraph(doc, f"（共 {len(parcels)} 宗地块，逐宗详情仅列前 {MAX_DETAILED} 宗；"
                  "全部结果见 XLSX 或 GeoPackage 输出。）")

    heading(doc, "四、说明")
    for line in (
        "1. 本报告为选址环境合理性预判，依据本系统当前的管控图层、规则和环境管控单元生态环境准入清单"
        "自动生成，供项目前期选址参考，不替代规划选址、环境影响评价审批等法定程序。",
        "2. 面积和距离在 CGCS2000（GRS80 椭球）上按椭球面计算：面积精确到 0.1 平方米，"
        "距离为地块边界到要素的最小地面距离，重叠时为 0。1 亩 = 666.67 平方米。",
        "3. 结论含义：不符合——地块触及适用规则的管控范围；待核实——是否适用取决于尚未提供的信息"
        "（如场所类型、行业）；符合——所有可能适用的规则均已核查且未触发；"
        "超出本市数据范围——地块不在本市数据覆盖范围内，未作判断。",
        "4. 准入清单中标注【涉及本行业】的条款是按行业关键词检索出的条款，请结合全文逐条核对。",
    ):
        paragraph(doc, line)
    unit = issuer or answer.get("city", "")
    if unit:
        signature(doc, unit, stamp.date())
    path = Path(path)
    doc.save(str(path))
    return path


def _parcel_section(doc, i: int, p: Mapping[str, Any], map_png: Path | None,
                    has_industry: bool, flag_colour) -> None:
    name = p.get("name") or ""
    heading(doc, f"三-{i + 1}、地块 {p['id']}{('：' + name) if name else ''}")
    paragraph(doc, f"结论：{VERDICT_ZH[p['verdict']]}", bold=True)
    paragraph(doc, f"用地面积：{_area_text(p['area'])}")
    if p.get("declared_area_m2") is not None:
        paragraph(doc, f"申报面积：{_fmt_m2(p['declared_area_m2'])} 平方米")
    if p.get("counties"):
        paragraph(doc, "所在区县：" + "、".join(
            f"{c['name']}（{c['share'] * 100:.1f}%）" for c in p["counties"]))
    if map_png is not None:
        picture(doc, map_png)
    table(doc, "触发的管控规则", pd.DataFrame(
        [(_title(h), h.get("feature_name") or "", _fmt_m(h.get("distance_m")),
          _fmt_m2(h.get("overlap_m2")), h.get("basis") or "", h.get("action") or "")
         for h in p["hits"]],
        columns=["规则", "管控要素", "最小距离（米）", "重叠面积（平方米）", "依据", "措施"]))
    if p["conditional_hits"]:
        table(doc, "待核实的规则（补充信息后重新核查）", pd.DataFrame(
            [(h["sentence"]["zh"] if isinstance(h.get("sentence"), Mapping) else _title(h),
              "、".join(h.get("missing") or []))
             for h in p["conditional_hits"]], columns=["规则", "缺少的信息"]))
    table(doc, "与管控图层要素的重叠", pd.DataFrame(
        [(o.get("layer_title") or o["layer"], o.get("feature_name") or o.get("feature_id") or "",
          _fmt_m2(o["area_m2"]), f"{o['share'] * 100:.2f}%") for o in p["overlaps"]],
        columns=["图层", "要素", "重叠面积（平方米）", "占地块比例"]))
    table(doc, "逐条规则核查", pd.DataFrame(
        [(r["rule_id"], r.get("feature_name") or "", _fmt_m(r.get("distance_m")),
          _fmt_m2(r.get("overlap_m2")), OUTCOME_ZH.get(r["outcome"], r["outcome"]),
          "是" if r["applies"] else "视属性而定") for r in p["rules"]],
        columns=["规则", "最近要素", "最小距离（米）", "重叠面积（平方米）", "结果", "适用"]))
    heading(doc, "涉及的环境管控单元及生态环境准入清单", level=2)
    if not p["units"]:
        paragraph(doc, "（无）")
    for u in p["units"]:
        paragraph(doc, f"{u['code']}　{u.get('name') or ''}（{u.get('category') or ''}）"
                  f"　重叠 {_fmt_m2(u['overlap_m2'])} 平方米，占地块 {u['share'] * 100:.2f}%",
                  bold=True)
        if not u.get("requirements_known", True):
            paragraph(doc, "（本单元未录入准入清单。）")
            continue
        flagged = {(f["part"], f["line"]) for f in u["flagged_lines"]}
        for key, part_name in PARTS:
            paragraph(doc, f"{part_name}：", bold=True)
            text = u["requirements"].get(key) or ""
            lines = requirement_lines(text) or ["（无）"]
            for line in lines:
                para = small_paragraph(doc)
                if (key, line) in flagged:
                    run = para.add_run(document_text("【涉及本行业】" + line))
                    run.bold = True
                    run.font.color.rgb = flag_colour
                else:
                    para.add_run(document_text(line))
        if has_industry and not u["flagged_lines"]:
            paragraph(doc, "（本单元准入清单中未检索到涉及本行业的条款。）")


__all__ = ["TITLE", "write_parcel_docx"]
