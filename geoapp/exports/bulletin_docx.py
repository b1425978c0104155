"""The weekly bulletin as a Word document (python-docx).

Title, date range, the text, the map image and the tables, in the order the bureau's
bulletins have them. Core properties (created/modified) are pinned to the week's Monday so
the same inputs give the same document content.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from geoapp.domain.bulletin import overdue_paragraph
from geoapp.exports.bulletin_xlsx import SHEETS, bulletin_sheets, interview_frame, overdue_frames
from geoapp.exports.docx_common import (
    CJK_FONT,
    HEADING_FONT,
    heading,
    new_document,
    paragraph,
    picture,
    table,
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
        paragraph(doc, f"连续{interviews.weeks_required}周及以上产生预警的网格：{parts}。",
                  font=CJK_FONT, size=12)
    if quiet:
        paragraph(doc, f"{'、'.join(quiet)}：无。", font=CJK_FONT, size=12)
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
                                     tuple(report.county_order), section.total, section.sites),
              font=CJK_FONT, size=12)
    counts, rows = overdue_frames(section)
    table(doc, "逾期督办统计", counts)
    if len(rows):
        table(doc, "逾期清单", rows)


def write_docx(report: Any, path: str | Path, *, map_png: str | Path | None = None) -> Path:
    """Write the bulletin document; ``map_png`` is embedded when given."""
    path = Path(path)
    stamp = datetime.combine(report.week.monday, datetime.min.time())
    doc = new_document(f"{report.title} {report.week}", stamp)
    lines = report.text.rstrip("\n").split("\n")
    paragraph(doc, lines[0], font=HEADING_FONT, size=18, bold=True, center=True)
    paragraph(doc, lines[1], size=12, center=True)
    for line in lines[2:]:
        if not line:
            continue
        if line.startswith(("一、", "二、", "三、")):
            heading(doc, line)
        else:
            paragraph(doc, line, font=CJK_FONT, size=12)
    if map_png is not None:
        heading(doc, "热点网格预警分布图", size=12)
        picture(doc, map_png)
    sheets = bulletin_sheets(report)
    for name in DOC_TABLES:
        table(doc, name, sheets[name])
    interviews_section(doc, report)
    overdue_section(doc, report)
    doc.save(str(path))
    log.debug("bulletin document %s", path)
    return path
