"""The weekly bulletin as a Word document (python-docx).

Title, issue number (第N期), date range, the text, the map image and the tables, in the order
the bureau's bulletins have them, then the issuing unit and the date of issue (the Monday after
the week), in the official layout of ``docx_common`` (docs/documents.md). Core properties
(created/modified) are pinned to the week's Monday so the same inputs give the same document
content.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from geoapp.domain.bulletin import overdue_paragraph
from geoapp.exports.bulletin_xlsx import SHEETS, bulletin_sheets, interview_frame, overdue_frames
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

log = logging.getLogger(__name__)

#: Tables shown in the document (the workbook has them all).
DOC_TABLES = (SHEETS[1], SHEETS[0], SHEETS[2], SHEETS[3], SHEETS[4])


def interviews_section(doc, report: Any) -> None:
    """The 约谈 list: grids warned in N consecutive weeks by county (无 for none), with the
    enterprises inside them; nothing for a report without the list."""
    interviews = getattr(report, "interviews", None)
    if interviews is None:
        return
    heading(doc, f"约谈名单（连续{interviews.weeks_required}周及以上预警网格）")
    quiet = [c["county"] for c in interviews.counties if not c["grids"]]
    listed = [c for c in interviews.counties if c["grids"]]
    if listed:
        parts = "；".join(f"{c['county']}{len(c['grids'])}个（{'、'.join(g['code'] for g in c['grids'])}）"
                         for c in listed)
        paragraph(doc, f"连续{interviews.weeks_required}周及以上产生预警的网格：{parts}。")
    if quiet:
        paragraph(doc, f"{'、'.join(quiet)}：无。")
    table(doc, "约谈网格及网格内企业", interview_frame(interviews))


def overdue_section(doc, report: Any) -> None:
    """The 逾期督办 section: overdue obligations as of the week's Sunday, by county (无 for
    none) and listed; nothing for a report without the section."""
    section = getattr(report, "overdue", None)
    if section is None:
        return
    day = section.as_of
    heading(doc, f"逾期督办（截至{day.year}年{day.month}月{day.day}日）")
    per = section.per_county
    paragraph(doc, overdue_paragraph(day, dict(zip(per["county"], per["overdue"], strict=True)),
                                     tuple(report.county_order), section.total, section.sites))
    counts, rows = overdue_frames(section)
    table(doc, "逾期督办统计", counts)
    if len(rows):
        table(doc, "逾期清单", rows)


def issue_line(issue: int | None) -> str:
    """``第47期`` (empty for a week before the bulletin's first issue)."""
    return f"第{issue}期" if issue else ""


def write_docx(report: Any, path: str | Path, *, map_png: str | Path | None = None,
               issuer: str = "", issue: int | None = None) -> Path:
    """Write the bulletin document; ``map_png`` is embedded when given. ``issuer`` (the
    issuing unit) signs it with the date of issue; ``issue`` is its number (第N期)."""
    path = Path(path)
    stamp = datetime.combine(report.week.monday, datetime.min.time())
    doc = new_document(f"{report.title} {report.week}", stamp)
    lines = report.text.rstrip("\n").split("\n")
    title(doc, lines[0])
    if issue:
        paragraph(doc, issue_line(issue), center=True)
    paragraph(doc, lines[1], center=True)
    for line in lines[2:]:
        if not line:
            continue
        if line.startswith(("一、", "二、", "三、")):
            heading(doc, line)
        else:
            paragraph(doc, line)
    if map_png is not None:
        table_caption(doc, "热点网格预警分布图")
        picture(doc, map_png)
    sheets = bulletin_sheets(report)
    for name in DOC_TABLES:
        table(doc, name, sheets[name])
    interviews_section(doc, report)
    overdue_section(doc, report)
    if issuer:
        signature(doc, issuer, report.week.sunday + timedelta(days=1))
    doc.save(str(path))
    log.debug("bulletin document %s", path)
    return path
