"""The weekly bulletin's tables as an Excel workbook, with Chinese headers.

Sheets, in the order the duty officer reads them: warnings per grid, per county, complaints by
category, enterprises inside warned grids (for dispatching inspections), grids warned in
consecutive weeks (连续预警) and the 8-week history of every warned grid. The workbook's
creation time is pinned to the week's Monday so the same inputs give the same file content.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from geoapp.exports.tables import fit_column_widths, neutralise_frame

log = logging.getLogger(__name__)

GRID_HEADERS = {"code": "网格编号", "county": "所属区县", "key": "重点监控", "count": "预警次数",
                "pollutants": "首要污染物", "max_value": "最高浓度(µg/m³)",
                "streak": "连续预警周数"}
COUNTY_HEADERS = {"county": "区县", "count": "预警次数"}
COMPLAINT_HEADERS = {"label": "投诉类别", "count": "投诉件数", "percent": "占比(%)"}
ENTERPRISE_HEADERS = {"grid_code": "网格编号", "grid_county": "网格所属区县", "key": "重点监控",
                      "warnings": "本周预警次数", "id": "企业编号", "name": "企业名称",
                      "district": "辖区", "industry": "行业类别", "classification": "整治分类",
                      "stage": "进展"}

#: Sheet names (Excel allows 31 characters).
SHEETS = ("网格预警", "区县统计", "投诉分类", "预警网格内企业", "连续预警网格", "近8周预警")


def _yes_no(v: Any) -> str:
    return "是" if bool(v) and not pd.isna(v) else "否"


def _renamed(df: pd.DataFrame, headers: Mapping[str, str]) -> pd.DataFrame:
    out = df.loc[:, [c for c in headers if c in df.columns]].copy()
    if "key" in out.columns:
        out["key"] = out["key"].map(_yes_no)
    return out.rename(columns=dict(headers))


def bulletin_sheets(report: Any) -> dict[str, pd.DataFrame]:
    """The workbook's sheets as frames with Chinese headers (also used by tests and the page)."""
    complaints = report.complaints.copy()
    total = pd.DataFrame([{"label": "合计", "count": int(complaints["count"].sum()),
                           "percent": 100 if int(complaints["count"].sum()) else 0}])
    complaints = pd.concat([complaints, total], ignore_index=True)
    county = pd.concat([report.per_county, pd.DataFrame(
        [{"county": "合计", "count": int(report.per_county["count"].sum())}])],
        ignore_index=True)
    history = report.history.rename(columns={"code": "网格编号"})
    return {
        SHEETS[0]: _renamed(report.per_grid, GRID_HEADERS),
        SHEETS[1]: _renamed(county, COUNTY_HEADERS),
        SHEETS[2]: _renamed(complaints, COMPLAINT_HEADERS),
        SHEETS[3]: _renamed(report.enterprises, ENTERPRISE_HEADERS),
        SHEETS[4]: _renamed(report.consecutive, GRID_HEADERS),
        SHEETS[5]: history,
    }


def write_bulletin_xlsx(report: Any, path: str | Path) -> Path:
    """Write the workbook in one pass; document properties carry the week, not the clock."""
    path = Path(path)
    stamp = datetime.combine(report.week.monday, datetime.min.time())
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in bulletin_sheets(report).items():
            frame = neutralise_frame(df)
            frame.to_excel(xw, sheet_name=name, index=False)
            ws = xw.sheets[name]
            ws.freeze_panes = "A2"
            fit_column_widths(ws, frame, header_row=1, max_width=60, per_char=1.6)
        props = xw.book.properties
        props.created = props.modified = stamp
        props.title = f"{report.title} {report.week}"
        props.creator = "geoapp"
    log.debug("bulletin workbook %s", path)
    return path
