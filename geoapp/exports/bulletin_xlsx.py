"""The weekly bulletin's tables as an Excel workbook, with Chinese headers.

Sheets, in the order the duty officer reads them: warnings per grid, per county, complaints by
category, enterprises inside warned grids (for dispatching inspections), grids warned in
consecutive weeks (连续预警) and the 8-week history of every warned grid. The workbook's
creation time is pinned to the week's Monday so the same inputs give the same file content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from geoapp.exports.tables import (
    TITLE_ROWS,
    fit_column_widths,
    issued_line,
    neutralise_frame,
    title_rows,
    write_titled_xlsx,
)

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
SHEETS = ("网格预警", "区县统计", "投诉分类", "预警网格内企业", "连续预警网格", "近8周预警",
          "约谈名单", "逾期督办统计", "逾期清单")


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
        **interview_sheets(report),
        **overdue_sheets(report),
    }


# ------------------------------------------------------------------ the 约谈 (interview) list
INTERVIEW_SHEET = SHEETS[6]
INTERVIEW_HEADERS = ("区县", "网格编号", "网格名称", "重点监控", "连续预警周数", "预警次数",
                     "首要污染物", "企业编号", "企业名称", "行业类别", "整治分类", "进展")
#: What a county without any grid on the list shows.
NO_INTERVIEW = "无"


def _same(text: str) -> str:
    return text


def interview_frame(interviews: Any, gettext: Callable[[str], str] = _same) -> pd.DataFrame:
    """The 约谈 list as one table: every county in bulletin order, one row per enterprise
    inside each listed grid (one row for a grid without any), and ``无`` for a county
    without any grid; headers and words in the language of ``gettext``."""
    rows = []
    none = gettext(NO_INTERVIEW)

    def yes_no(v: Any) -> str:
        return gettext(_yes_no(v))

    for county in interviews.counties:
        if not county["grids"]:
            rows.append([county["county"], none] + [""] * (len(INTERVIEW_HEADERS) - 2))
            continue
        for g in county["grids"]:
            head = [county["county"], g["code"], g["name"], yes_no(g["key"]), g["streak"],
                    g["warnings"], g["pollutants"]]
            for e in g["enterprises"] or [None]:
                rows.append(head + ([e["id"], e["name"], e["industry"],
                                     _word(gettext, e["classification"]),
                                     _word(gettext, e["stage"])] if e else [""] * 5))
    return pd.DataFrame(rows, columns=[gettext(h) for h in INTERVIEW_HEADERS])


def _word(gettext: Callable[[str], str], text: Any) -> str:
    return gettext(text) if text else ""


def interview_sheets(report: Any) -> dict[str, pd.DataFrame]:
    """The bulletin's 约谈名单 sheet (none for a report without the list)."""
    interviews = getattr(report, "interviews", None)
    return {} if interviews is None else {INTERVIEW_SHEET: interview_frame(interviews)}


def write_interviews_xlsx(interviews: Any, path: str | Path, *,
                          lines: tuple[str, str, str] | None = None,
                          gettext: Callable[[str], str] = _same) -> Path:
    """The 约谈 list alone as a workbook: the title rows (``lines``: title, week, issuing
    unit and date), then the table; sheet name, headers and words in the language of
    ``gettext``; the properties carry the week, not the clock."""
    stamp = datetime.combine(interviews.week.monday, datetime.min.time())
    lines = lines or (f"{interviews.title} {interviews.week}", "", "")
    return write_titled_xlsx({gettext(INTERVIEW_SHEET): interview_frame(interviews, gettext)},
                             path, lines, stamp=stamp, per_char=1.6)


# ------------------------------------------------------------------ the 逾期督办 section
OVERDUE_SHEETS = SHEETS[7:9]
OVERDUE_COUNTY_HEADERS = {"county": "区县", "overdue": "逾期事项", "sites_overdue": "逾期单位",
                          "due_soon": "即将到期事项"}
OVERDUE_ROW_HEADERS = {"county": "区县", "site_id": "编号", "name": "名称", "type": "类型",
                       "label": "事项", "due": "应完成日期", "days_overdue": "逾期天数"}


def overdue_frames(section: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The section's counts by county (every county, a 合计 row, the as-of day in a last
    note row) and its list of overdue obligations, with Chinese headers."""
    per = section.per_county
    total = pd.DataFrame([{"county": "合计", "overdue": int(per["overdue"].sum()),
                           "sites_overdue": int(section.sites),
                           "due_soon": int(per["due_soon"].sum())}])
    day = section.as_of
    note = pd.DataFrame([{"county": f"统计截至{day.year}年{day.month}月{day.day}日"}])
    counts = pd.concat([per, total, note], ignore_index=True)
    return _renamed(counts, OVERDUE_COUNTY_HEADERS), _renamed(section.rows, OVERDUE_ROW_HEADERS)


def overdue_sheets(report: Any) -> dict[str, pd.DataFrame]:
    """The bulletin's 逾期督办 sheets (none for a report without the section)."""
    section = getattr(report, "overdue", None)
    if section is None:
        return {}
    counts, rows = overdue_frames(section)
    return {OVERDUE_SHEETS[0]: counts, OVERDUE_SHEETS[1]: rows}


def bulletin_title_lines(report: Any, issuer: str, issue: int | None) -> tuple[str, str, str]:
    """``(title, week line with 第N期, issuing unit and date of issue)``."""
    week = report.text.split("\n", 2)[1]
    issued = report.week.sunday + timedelta(days=1)
    return (report.title, f"{week}　第{issue}期" if issue else week,
            issued_line(issuer, issued))


def write_bulletin_xlsx(report: Any, path: str | Path, *, issuer: str = "",
                        issue: int | None = None) -> Path:
    """Write the workbook in one pass: on every sheet the title rows, then the table;
    document properties carry the week, not the clock."""
    path = Path(path)
    stamp = datetime.combine(report.week.monday, datetime.min.time())
    lines = bulletin_title_lines(report, issuer, issue)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in bulletin_sheets(report).items():
            frame = neutralise_frame(df)
            frame.to_excel(xw, sheet_name=name, index=False, startrow=TITLE_ROWS)
            ws = xw.sheets[name]
            title_rows(ws, lines)
            ws.freeze_panes = f"A{TITLE_ROWS + 2}"
            fit_column_widths(ws, frame, header_row=TITLE_ROWS + 1, max_width=60,
                              per_char=1.6)
        props = xw.book.properties
        props.created = props.modified = stamp
        props.title = f"{report.title} {report.week}"
        props.creator = "geoapp"
    log.debug("bulletin workbook %s", path)
    return path
