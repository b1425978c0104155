"""What every Word document of geoapp shares (python-docx): fonts, paragraphs, tables and
pinned document properties.

Body text is 宋体 and headings 黑体, set on the styles once and on the East Asian font slot
too (Word picks the Chinese font from ``w:eastAsia``). Document properties carry the date the
document reports on, never the clock, so the same figures give the same file content.

python-docx is imported inside the functions: importing it adds about 0.2 s to the start of
every process that loads this module, and most never write a document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from geoapp.domain.text import document_text

CJK_FONT = "宋体"
HEADING_FONT = "黑体"
AUTHOR = "geoapp"


def new_document(title: str, stamp: datetime):
    """An empty document with the Chinese body font and every property pinned to ``stamp``."""
    from docx import Document

    doc = Document()
    props = doc.core_properties
    props.created = props.modified = props.last_printed = stamp
    props.revision = 1
    props.author = props.last_modified_by = AUTHOR
    props.title = title
    default_font(doc)
    return doc


def _east_asian(rpr, name: str) -> None:
    from docx.oxml.ns import qn

    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), name)


def set_font(run, name: str, size_pt: float | None = None, bold: bool = False) -> None:
    """The font of one run, East Asian slot included."""
    from docx.shared import Pt

    run.font.name = name
    run.bold = bold
    if size_pt:
        run.font.size = Pt(size_pt)
    _east_asian(run._element.get_or_add_rPr(), name)


def default_font(doc) -> None:
    """Chinese body font on the styles once (per-run fonts are slow on long tables)."""
    from docx.shared import Pt

    for style_name in ("Normal", "Table Grid"):
        style = doc.styles[style_name]
        style.font.name = CJK_FONT
        style.font.size = Pt(10.5)
        _east_asian(style.element.get_or_add_rPr(), CJK_FONT)


def paragraph(doc, text: str, *, font: str = CJK_FONT, size: float = 12, bold: bool = False,
              center: bool = False):
    """A paragraph of one run in ``font`` at ``size`` points."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    p = doc.add_paragraph()
    if center:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    set_font(p.add_run(document_text(text)), font, size, bold)
    return p


def heading(doc, text: str, *, size: float = 14):
    """A bold 黑体 heading line."""
    return paragraph(doc, text, font=HEADING_FONT, size=size, bold=True)


def picture(doc, path, *, width_cm: float = 15.5) -> None:
    """An image across the text width (15.5 cm between A4 margins)."""
    from docx.shared import Cm

    doc.add_picture(str(path), width=Cm(width_cm))


def cell_text(v: Any) -> str:
    """A table cell's text: blank for missing values, whole floats without ``.0``."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return document_text(str(v))


def table(doc, title: str, df: pd.DataFrame) -> None:
    """``title`` as a heading, then ``df`` as a grid table with a bold header row
    (``（无）`` when it has no rows)."""
    heading(doc, title, size=12)
    if df.empty:
        paragraph(doc, "（无）")
        return
    ncols = len(df.columns)
    grid = doc.add_table(rows=len(df) + 1, cols=ncols)
    grid.style = "Table Grid"
    cells = grid._cells  # one pass; row.cells per row is quadratic on long tables
    for c, name in enumerate(df.columns):
        cells[c].paragraphs[0].add_run(document_text(str(name))).bold = True
    for r, row in enumerate(df.itertuples(index=False), start=1):
        for c, value in enumerate(row):
            # Straight to the XML: the ``cell.text`` setter clears and rebuilds each cell.
            cells[r * ncols + c]._tc.p_lst[0].add_r().text = cell_text(value)
