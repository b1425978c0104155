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

import pandas as pd

from geoapp.exports.bulletin_xlsx import SHEETS, bulletin_sheets

log = logging.getLogger(__name__)

CJK_FONT = "宋体"
HEADING_FONT = "黑体"
#: Tables shown in the document (the workbook has them all).
DOC_TABLES = (SHEETS[1], SHEETS[0], SHEETS[2], SHEETS[3], SHEETS[4])


def _set_font(run, name: str, size_pt: float | None = None, bold: bool = False) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    run.font.name = name
    run.bold = bold
    if size_pt:
        run.font.size = Pt(size_pt)
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), name)


def _paragraph(doc, text: str, *, font: str = CJK_FONT, size: float = 12, bold: bool = False,
               center: bool = False):
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    p = doc.add_paragraph()
    if center:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _set_font(p.add_run(text), font, size, bold)
    return p


def _cell_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _table(doc, title: str, df: pd.DataFrame) -> None:
    _paragraph(doc, title, font=HEADING_FONT, size=12, bold=True)
    if df.empty:
        _paragraph(doc, "（无）")
        return
    ncols = len(df.columns)
    table = doc.add_table(rows=len(df) + 1, cols=ncols)
    table.style = "Table Grid"
    cells = table._cells  # one pass; row.cells per row is quadratic on long tables
    for c, name in enumerate(df.columns):
        cells[c].paragraphs[0].add_run(str(name)).bold = True
    for r, row in enumerate(df.itertuples(index=False), start=1):
        for c, value in enumerate(row):
            # Straight to the XML: the ``cell.text`` setter clears and rebuilds each cell.
            cells[r * ncols + c]._tc.p_lst[0].add_r().text = _cell_text(value)


def _default_font(doc) -> None:
    """Chinese body font on the styles once (per-run fonts are slow on long tables)."""
    from docx.oxml.ns import qn
    from docx.shared import Pt

    for style_name in ("Normal", "Table Grid"):
        style = doc.styles[style_name]
        style.font.name = CJK_FONT
        style.font.size = Pt(10.5)
        rpr = style.element.get_or_add_rPr()
        fonts = rpr.find(qn("w:rFonts"))
        if fonts is None:
            fonts = rpr.makeelement(qn("w:rFonts"), {})
            rpr.append(fonts)
        fonts.set(qn("w:eastAsia"), CJK_FONT)


def write_docx(report: Any, path: str | Path, *, map_png: str | Path | None = None) -> Path:
    """Write the bulletin document; ``map_png`` is embedded when given."""
    from docx import Document
    from docx.shared import Cm

    path = Path(path)
    doc = Document()
    stamp = datetime.combine(report.week.monday, datetime.min.time())
    props = doc.core_properties
    props.created = stamp
    props.modified = stamp
    props.last_printed = stamp
    props.revision = 1
    props.author = "geoapp"
    props.last_modified_by = "geoapp"
    props.title = f"{report.title} {report.week}"
    _default_font(doc)
    lines = report.text.rstrip("\n").split("\n")
    _paragraph(doc, lines[0], font=HEADING_FONT, size=18, bold=True, center=True)
    _paragraph(doc, lines[1], size=12, center=True)
    for line in lines[2:]:
        if not line:
            continue
        heading = line.startswith(("一、", "二、", "三、"))
        _paragraph(doc, line, font=HEADING_FONT if heading else CJK_FONT, size=14 if heading
                   else 12, bold=heading)
    if map_png is not None:
        _paragraph(doc, "热点网格预警分布图", font=HEADING_FONT, size=12, bold=True)
        doc.add_picture(str(map_png), width=Cm(15.5))
    sheets = bulletin_sheets(report)
    for name in DOC_TABLES:
        _table(doc, name, sheets[name])
    doc.save(str(path))
    log.debug("bulletin document %s", path)
    return path
