"""One warning level's emergency measures by county as a Word document (python-docx).

A4 portrait, 2.5 cm / 2 cm margins; a 黑体 title naming the city and the level, one line on
what the list is, then per county a heading and a table of its enterprises: 企业名称, 绩效分级,
限产比例(%), 停产工序, 运输管控措施 (the columns the county's inspectors check). The document's
properties carry the list's last change, never the clock, so the same list gives the same
document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from geoapp.domain.emergency import format_cut, grade_zh
from geoapp.domain.text import document_text
from geoapp.exports.docx_common import heading, new_document, paragraph

#: The table of each county: (key, header, width in cm); 16.0 cm between the margins.
COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("seq", "序号", 1.0), ("name", "企业名称", 4.2), ("grade", "绩效分级", 1.6),
    ("cut_pct", "限产比例(%)", 1.7), ("processes", "停产工序", 3.6),
    ("transport", "运输管控措施", 3.9))


def write_level_docx(path: str | Path, *, title: str, intro: str,
                     groups: Sequence[Mapping[str, Any]], stamp: datetime) -> Path:
    """Write the document at ``path``; ``groups`` are the counties (``county``, ``rows``) in
    the city's order."""
    from docx.enum.section import WD_ORIENT
    from docx.shared import Cm

    path = Path(path)
    doc = new_document(title, stamp)
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2.5)
    section.top_margin = section.bottom_margin = Cm(2.0)
    paragraph(doc, title, font="黑体", size=16, bold=True, center=True)
    paragraph(doc, intro, size=10.5)
    for g in groups:
        rows = list(g["rows"])
        heading(doc, f"{g['county']}（{len(rows)} 家）", size=13)
        if not rows:
            paragraph(doc, "（无）")
            continue
        table = doc.add_table(rows=len(rows) + 1, cols=len(COLUMNS))
        table.style = "Table Grid"
        table.autofit = False
        cells = table._cells
        ncols = len(COLUMNS)
        for c, (_k, header, width) in enumerate(COLUMNS):
            cells[c].width = Cm(width)
            cells[c].paragraphs[0].add_run(header).bold = True
        for r, rec in enumerate(rows, start=1):
            for c, (k, _h, width) in enumerate(COLUMNS):
                if k == "seq":
                    text = str(r)
                elif k == "grade":
                    text = grade_zh(rec.get("grade"))
                elif k == "cut_pct":
                    text = format_cut(rec.get("cut_pct")) or "—"
                elif k == "name":
                    text = str(rec.get("name") or "")
                    if not rec.get("site_id"):
                        text += "（未匹配到登记企业）"
                else:
                    text = str(rec.get(k) or "") or "—"
                cell = cells[r * ncols + c]
                cell.width = Cm(width)
                cell._tc.p_lst[0].add_r().text = document_text(text)
    doc.save(path)
    return path
