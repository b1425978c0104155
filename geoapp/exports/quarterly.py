"""The 百企退城 quarterly progress report as Excel and Word files, in Chinese.

Same habits as the weekly bulletin: Chinese headers, the document in the official layout of
``docx_common`` (docs/documents.md) signed by the issuing unit on the reporting deadline, every
document property pinned to the quarter's reporting deadline (not the clock) and the chart
drawn with no software stamp, so the same figures always give the same file content. Every
figure is counted as of the quarter's last day (today for the current quarter), and the files
say so (统计截至YYYY年M月D日).
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl.styles import Font

from geoapp.exports.charts import TrendChart, trend_png
from geoapp.exports.docx_common import (
    heading,
    new_document,
    paragraph,
    picture,
    signature,
    table,
    table_caption,
    title,
)
from geoapp.exports.tables import fit_column_widths, neutralise_frame

log = logging.getLogger(__name__)

GROUP_HEADERS = {"name": "名称", "total": "企业数", "not_started": "未启动", "started": "已启动",
                 "completed": "已完成", "vacated_mu": "腾退土地(亩)",
                 "listed_mu": "挂牌出让(亩)", "sold_mu": "已出让(亩)",
                 "revenue_wan": "出让收入(万元)"}
TREND_HEADERS = {"label": "季度", "started": "本季度启动", "completed": "本季度完成",
                 "started_cum": "累计启动", "completed_cum": "累计完成"}
#: Sheet names in reading order; the first holds the summary figures.
SHEETS = ("总体情况", "按整治分类", "按辖区", "按行业", "季度趋势")


def _group_frame(rows: list[dict[str, Any]], first_header: str) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(GROUP_HEADERS))
    if not df.empty:
        total = {k: (df[k].sum() if k != "name" else "合计") for k in GROUP_HEADERS}
        for k in ("vacated_mu", "listed_mu", "sold_mu", "revenue_wan"):
            total[k] = round(float(total[k]), 1)
        df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    return df.rename(columns={**GROUP_HEADERS, "name": first_header})


def summary_frame(report: Any) -> pd.DataFrame:
    """Indicator / value / target / percent rows of the summary sheet."""
    s, land, t = report.dashboard.summary, report.dashboard.land, report.dashboard.targets
    rows = [("企业总数(家)", s["total"], None, None),
            ("已启动(家)", s["started"], s["started_target"], s["started_pct"]),
            ("已完成(家)", s["completed"], s["completed_target"], s["completed_pct"]),
            ("本季度新启动(家)", report.quarter_started, None, None),
            ("本季度新完成(家)", report.quarter_completed, None, None),
            ("腾退土地(亩)", land["vacated_mu"], t.get("vacated_mu"), land["vacated_mu_pct"]),
            ("腾退土地(公顷)", land["vacated_ha"], None, None),
            ("挂牌出让土地(亩)", land["listed_mu"], t.get("listed_mu"), land["listed_mu_pct"]),
            ("挂牌出让土地(公顷)", land["listed_ha"], None, None),
            ("已出让土地(亩)", land["sold_mu"], None, None),
            ("已出让土地(公顷)", land["sold_ha"], None, None),
            ("土地出让收入(万元)", land["revenue_wan"], t.get("revenue_wan"),
             land["revenue_wan_pct"]),
            ("土地出让收入(亿元)", land["revenue_yi"], None, None)]
    return pd.DataFrame(rows, columns=["指标", "数值", "年度目标", "完成目标(%)"])


def quarterly_sheets(report: Any) -> dict[str, pd.DataFrame]:
    """The report's tables with Chinese headers (the workbook and the document share them)."""
    d = report.dashboard
    trend = pd.DataFrame(d.trend, columns=list(TREND_HEADERS)).rename(columns=TREND_HEADERS)
    return {SHEETS[0]: summary_frame(report),
            SHEETS[1]: _group_frame(d.by_classification, "整治分类"),
            SHEETS[2]: _group_frame(d.by_district, "辖区"),
            SHEETS[3]: _group_frame(d.by_industry, "行业类别"),
            SHEETS[4]: trend}


def _as_of_line(report: Any) -> str:
    """``统计截至2020年12月31日``: the day every table of the report is counted at."""
    return f"统计{report.as_of.zh}"


def _stamp(report: Any) -> datetime:
    return datetime.combine(report.deadline, datetime.min.time())


def _issuer_line(report: Any, issuer: str) -> str:
    """``焦作市生态环境局　统计截至2020年12月31日`` (the issuing unit and the period's end)."""
    return f"{issuer}　{_as_of_line(report)}" if issuer else _as_of_line(report)


def write_quarterly_xlsx(report: Any, path: str | Path, *, issuer: str = "") -> Path:
    """Write the workbook: title, deadline and summary text above each sheet's table (the
    issuing unit with the 统计截至 line)."""
    path = Path(path)
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in quarterly_sheets(report).items():
            frame = neutralise_frame(df)
            frame.to_excel(xw, sheet_name=name, index=False, startrow=3)
            ws = xw.sheets[name]
            ws["A1"] = report.title
            ws["A2"] = report.deadline_text
            ws["A3"] = report.text if name == SHEETS[0] else _issuer_line(report, issuer)
            ws["A1"].font = Font(bold=True, size=14)
            ws.freeze_panes = "A5"
            fit_column_widths(ws, frame, header_row=4, max_width=40, per_char=1.6)
        props = xw.book.properties
        props.created = props.modified = _stamp(report)
        props.title = report.title
        props.creator = "geoapp"
    log.debug("quarterly workbook %s", path)
    return path


def trend_chart(report: Any) -> TrendChart:
    """The trend chart of the report: its quarters up to the report's, its year shaded (the
    dashboard page of that year draws the same chart)."""
    return TrendChart.from_trend(report.dashboard.trend, report.quarter.year)


def write_quarterly_docx(report: Any, path: str | Path, *, issuer: str = "") -> Path:
    """Write the document: title, deadline, the period's end (统计截至), summary, trend chart,
    the tables, then the issuing unit and the date (the reporting deadline)."""
    path = Path(path)
    doc = new_document(report.title, _stamp(report))
    title(doc, report.title)
    paragraph(doc, report.deadline_text, center=True)
    paragraph(doc, f"（{_as_of_line(report)}）", center=True)
    heading(doc, "一、总体进展")
    paragraph(doc, report.text)
    heading(doc, "二、季度趋势")
    with tempfile.TemporaryDirectory() as tmp:
        table_caption(doc, "季度趋势图")
        picture(doc, trend_png(trend_chart(report), Path(tmp) / "trend.png"))
    heading(doc, "三、分类统计")
    sheets = quarterly_sheets(report)
    for name in SHEETS[1:]:
        table(doc, name, sheets[name])
    if issuer:
        signature(doc, issuer, report.deadline)
    doc.save(str(path))
    log.debug("quarterly document %s", path)
    return path
