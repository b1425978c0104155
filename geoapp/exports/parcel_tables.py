"""A parcel check's answer as tables: XLSX (one sheet per kind of row) and GeoPackage (the
parcels as polygons with their verdicts, plus attribute tables for the rows below them).

The writers take the answer as its JSON form (``ParcelReport.to_dict()``) and the parcels'
lon/lat polygons in the same order, so they depend on nothing above them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from geoapp.domain.results import Verdict
from geoapp.domain.units import PARTS
from geoapp.exports.tables import document_frame, write_xlsx
from geoapp.spatial.crs import WGS84

#: The four parts of a 准入清单 (key → Chinese name), in the order provinces publish them.
PART_NAMES = dict(PARTS)
VERDICT_ZH = {v.value: v.zh for v in Verdict}
OUTCOME_ZH = {"hit": "命中", "conditional_hit": "待核实", "no_hit": "未命中"}


def _title(h: Mapping[str, Any]) -> str:
    t = h.get("title") or {}
    return t.get("zh") if isinstance(t, Mapping) else str(t or h.get("rule_id") or "")


def _unit_label(u: Mapping[str, Any]) -> str:
    return f"{u['code']} {u.get('name') or ''}（{u.get('category') or ''}）".strip()


def parcel_rows(answer: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The answer's rows as frames with machine column names: ``parcels`` (one row per
    parcel), ``hits``, ``overlaps``, ``units`` and ``rules`` (several rows per parcel)."""
    parcels, hits, overlaps, units, rules = [], [], [], [], []
    for p in answer["parcels"]:
        pid = p["id"]
        area = p["area"]
        parcels.append({
            "id": pid, "name": p.get("name"), "area_m2": area["m2"], "area_mu": area["mu"],
            "area_ha": area["ha"], "declared_area_m2": p.get("declared_area_m2"),
            "verdict": p["verdict"], "verdict_zh": VERDICT_ZH.get(p["verdict"], p["verdict"]),
            "county": "；".join(c["name"] for c in p.get("counties", [])),
            "hits": "；".join(_title(h) for h in p["hits"]),
            "conditional_hits": "；".join(_title(h) for h in p["conditional_hits"]),
            "units": "；".join(_unit_label(u) for u in p["units"]),
            "flagged_lines": sum(len(u["flagged_lines"]) for u in p["units"]),
        })
        for kind, rows in (("hit", p["hits"]), ("conditional_hit", p["conditional_hits"])):
            for h in rows:
                hits.append({"parcel_id": pid, "kind": OUTCOME_ZH[kind], "rule_id": h["rule_id"],
                             "title": _title(h), "severity": h.get("severity"),
                             "feature_id": h.get("feature_id"),
                             "feature_name": h.get("feature_name"),
                             "distance_m": h.get("distance_m"), "overlap_m2": h.get("overlap_m2"),
                             "limit_m": h.get("limit_m"), "basis": h.get("basis"),
                             "action": h.get("action")})
        for o in p["overlaps"]:
            overlaps.append({"parcel_id": pid, "layer": o["layer"],
                             "layer_title": o.get("layer_title", o["layer"]),
                             "feature_id": o["feature_id"], "feature_name": o["feature_name"],
                             "area_m2": o["area_m2"], "share": o["share"]})
        for u in p["units"]:
            row = {"parcel_id": pid, "code": u["code"], "name": u.get("name"),
                   "category": u.get("category"), "county": u.get("county"),
                   "overlap_m2": u["overlap_m2"], "share": u["share"]}
            for key in PART_NAMES:
                row[key] = u["requirements"].get(key, "")
            row["flagged_lines"] = "\n".join(f"【{f['part_name']}】{f['line']}"
                                             for f in u["flagged_lines"])
            units.append(row)
        for r in p["rules"]:
            rules.append({"parcel_id": pid, "rule_id": r["rule_id"], "test": r["test"],
                          "layer": r["layer"], "applies": r["applies"],
                          "feature_id": r["feature_id"], "feature_name": r["feature_name"],
                          "distance_m": r["distance_m"], "overlap_m2": r["overlap_m2"],
                          "outcome": r["outcome"]})
    return {"parcels": pd.DataFrame(parcels, columns=list(_PARCEL_HEADERS)),
            "hits": pd.DataFrame(hits, columns=list(_HIT_HEADERS)),
            "overlaps": pd.DataFrame(overlaps, columns=list(_OVERLAP_HEADERS)),
            "units": pd.DataFrame(units, columns=list(_UNIT_HEADERS)),
            "rules": pd.DataFrame(rules, columns=list(_RULE_HEADERS))}


_PARCEL_HEADERS = {"id": "地块编号", "name": "地块名称", "area_m2": "面积（平方米）",
                   "area_mu": "面积（亩）", "area_ha": "面积（公顷）",
                   "declared_area_m2": "申报面积（平方米）", "verdict": "结论代码",
                   "verdict_zh": "结论", "county": "所在区县", "hits": "触发规则",
                   "conditional_hits": "待核实规则", "units": "涉及环境管控单元",
                   "flagged_lines": "涉及本行业的准入条款数"}
_HIT_HEADERS = {"parcel_id": "地块编号", "kind": "类型", "rule_id": "规则编号",
                "title": "规则", "severity": "严重程度", "feature_id": "要素编号",
                "feature_name": "要素名称", "distance_m": "最小距离（米）",
                "overlap_m2": "重叠面积（平方米）", "limit_m": "限值（米）", "basis": "依据",
                "action": "措施"}
_OVERLAP_HEADERS = {"parcel_id": "地块编号", "layer": "图层代码", "layer_title": "图层",
                    "feature_id": "要素编号", "feature_name": "要素名称",
                    "area_m2": "重叠面积（平方米）", "share": "占地块比例"}
_UNIT_HEADERS = {"parcel_id": "地块编号", "code": "环境管控单元编码",
                 "name": "环境管控单元名称", "category": "管控单元分类", "county": "区县",
                 "overlap_m2": "重叠面积（平方米）", "share": "占地块比例",
                 **PART_NAMES, "flagged_lines": "涉及本行业的条款"}
_RULE_HEADERS = {"parcel_id": "地块编号", "rule_id": "规则编号", "test": "检验方式",
                 "layer": "图层", "applies": "适用", "feature_id": "最近要素编号",
                 "feature_name": "最近要素", "distance_m": "最小距离（米）",
                 "overlap_m2": "重叠面积（平方米）", "outcome": "结果"}
_SHEETS = (("parcels", "地块", _PARCEL_HEADERS), ("hits", "规则命中", _HIT_HEADERS),
           ("overlaps", "重叠要素", _OVERLAP_HEADERS), ("units", "环境管控单元", _UNIT_HEADERS),
           ("rules", "逐条规则", _RULE_HEADERS))


def write_parcels_xlsx(answer: Mapping[str, Any], path: str | Path) -> Path:
    """One sheet per kind of row, Chinese headers: 地块, 规则命中, 重叠要素, 环境管控单元,
    逐条规则."""
    frames = parcel_rows(answer)
    sheets = {}
    for key, sheet, headers in _SHEETS:
        df = frames[key].copy()
        if key == "rules":
            df["outcome"] = df["outcome"].map(lambda v: OUTCOME_ZH.get(v, v))
            df["applies"] = df["applies"].map(lambda v: "是" if v else "视属性而定")
        sheets[sheet] = df.rename(columns=headers)
    return write_xlsx(sheets, path)


def write_parcels_gpkg(answer: Mapping[str, Any], geometries: Sequence[Any],
                       path: str | Path) -> Path:
    """Layer ``parcels`` (the parcels as EPSG:4326 polygons with their verdicts) and the
    attribute tables ``parcel_hits``, ``parcel_overlaps``, ``parcel_units`` and
    ``parcel_rules`` keyed by ``parcel_id``. Replaces ``path`` if it exists."""
    path = Path(path)
    frames = parcel_rows(answer)
    if path.exists():
        path.unlink()
    parcels = gpd.GeoDataFrame(document_frame(frames["parcels"]), geometry=list(geometries),
                               crs=WGS84)
    pyogrio.write_dataframe(parcels, path, layer="parcels", driver="GPKG",
                            promote_to_multi=True)
    for key in ("hits", "overlaps", "units", "rules"):
        pyogrio.write_dataframe(document_frame(frames[key]), path, layer=f"parcel_{key}",
                                driver="GPKG")
    return path


__all__ = ["OUTCOME_ZH", "PART_NAMES", "VERDICT_ZH", "parcel_rows", "write_parcels_gpkg",
           "write_parcels_xlsx"]
