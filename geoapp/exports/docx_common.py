"""What every Word document of geoapp shares (python-docx): the official layout of GB/T
9704-2012 (党政机关公文格式), paragraphs, tables, the issuing unit's signature and pinned
document properties.

``new_document`` gives every writer the same page and styles, so no writer sets a margin or a
font of its own (docs/documents.md):

- A4 (210 × 297 mm); margins top 37 mm, bottom 35 mm, left 28 mm, right 26 mm;
- the title 2号 (22 pt) 方正小标宋简体, centred;
- body text 3号 (16 pt) 仿宋_GB2312, fixed 28 pt line spacing, first line indented two
  characters; level-one headings (一、) 黑体, level-two headings (（一）) 楷体_GB2312;
- tables 小四 (12 pt) 仿宋_GB2312 at single spacing, so wide tables fit the text width;
- page numbers in the footer as ``— 1 —`` (4号 14 pt 宋体, a PAGE field), odd pages right and
  even pages left, one character in from the edge (``w:evenAndOddHeaders``);
- the issuing unit and the date (成文日期) at the end, the date four characters in from the
  right, the unit centred over it.

Fonts are named as a bureau PC has them (``w:rFonts`` ascii, hAnsi and eastAsia), and the
document's font table gives each an alternative Word uses where it is missing (仿宋_GB2312 ->
仿宋 ...). On a machine with neither, the viewer substitutes (LibreOffice through fontconfig:
the Noto Serif/Sans CJK fonts of the project's environment).

Document properties carry the date the document reports on, never the clock, so the same
figures give the same file content.

python-docx is imported inside the functions: importing it adds about 0.2 s to the start of
every process that loads this module, and most never write a document.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd

from geoapp.domain.text import document_text

# ----------------------------------------------------------------- GB/T 9704-2012 layout
PAGE_MM = (210.0, 297.0)
#: Page margins in mm (天头 37 mm, 订口 28 mm; the text block is 156 × 225 mm).
MARGINS_MM = {"top": 37.0, "bottom": 35.0, "left": 28.0, "right": 26.0}
HEADER_MM, FOOTER_MM = 15.0, 24.0

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING_FONT = "黑体"
SUBHEADING_FONT = "楷体_GB2312"
PAGE_NUMBER_FONT = "宋体"
#: Point sizes: 2号, 3号, 4号 and 小四.
TITLE_PT, BODY_PT, PAGE_NUMBER_PT, TABLE_PT = 22.0, 16.0, 14.0, 12.0
LINE_PT = 28.0
TITLE_LINE_PT = 36.0
#: Where a named font is missing Word takes this one (the document's font table).
FONT_ALTERNATES = {TITLE_FONT: "宋体", BODY_FONT: "仿宋", SUBHEADING_FONT: "楷体",
                   HEADING_FONT: "SimHei", PAGE_NUMBER_FONT: "SimSun"}
#: One dash each side of the page number (一字线).
PAGE_DASH = "—"
TABLE_STYLE = "Table Text"

#: Kept for callers naming the body font.
CJK_FONT = BODY_FONT
AUTHOR = "geoapp"


def new_document(title: str, stamp: datetime):
    """An empty document in the official layout with every property pinned to ``stamp``."""
    from docx import Document

    doc = Document()
    props = doc.core_properties
    props.created = props.modified = props.last_printed = stamp
    props.revision = 1
    props.author = props.last_modified_by = AUTHOR
    props.title = title
    official_layout(doc)
    return doc


def official_layout(doc) -> None:
    """Page, margins, styles, page numbers and font alternatives of GB/T 9704-2012."""
    from docx.enum.section import WD_ORIENT
    from docx.shared import Mm

    for section in doc.sections:
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = Mm(PAGE_MM[0]), Mm(PAGE_MM[1])
        section.top_margin, section.bottom_margin = Mm(MARGINS_MM["top"]), Mm(
            MARGINS_MM["bottom"])
        section.left_margin, section.right_margin = Mm(MARGINS_MM["left"]), Mm(
            MARGINS_MM["right"])
        section.header_distance, section.footer_distance = Mm(HEADER_MM), Mm(FOOTER_MM)
        section.gutter = Mm(0)
    default_font(doc)
    page_numbers(doc)
    font_alternates(doc)


def _east_asian(rpr, name: str) -> None:
    from docx.oxml.ns import qn

    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.insert(0, fonts)
    for slot in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(slot), name)


def set_font(run, name: str, size_pt: float | None = None, bold: bool = False) -> None:
    """The font of one run, East Asian slot included."""
    from docx.shared import Pt

    run.bold = bold
    if size_pt:
        run.font.size = Pt(size_pt)
    _east_asian(run._element.get_or_add_rPr(), name)


def default_font(doc) -> None:
    """Body font, size and line spacing on the styles once (per-run fonts are slow on long
    tables), and the paragraph style of table cells."""
    from docx.enum.style import WD_STYLE_TYPE
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.shared import Pt

    normal = doc.styles["Normal"]
    normal.font.size = Pt(BODY_PT)
    _east_asian(normal.element.get_or_add_rPr(), BODY_FONT)
    fmt = normal.paragraph_format
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = Pt(LINE_PT)
    fmt.space_before = fmt.space_after = Pt(0)
    fmt.first_line_indent = Pt(2 * BODY_PT)
    fmt.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    fmt.widow_control = False
    grid = doc.styles["Table Grid"]
    grid.font.size = Pt(TABLE_PT)
    _east_asian(grid.element.get_or_add_rPr(), BODY_FONT)
    cell = doc.styles.add_style(TABLE_STYLE, WD_STYLE_TYPE.PARAGRAPH)
    cell.base_style = normal
    cell.font.size = Pt(TABLE_PT)
    _east_asian(cell.element.get_or_add_rPr(), BODY_FONT)
    cfmt = cell.paragraph_format
    cfmt.line_spacing_rule = WD_LINE_SPACING.SINGLE
    cfmt.first_line_indent = Pt(0)
    cfmt.alignment = WD_ALIGN_PARAGRAPH.LEFT


def _page_field(paragraph) -> None:
    """``— N —``: the dashes around a PAGE field whose cached result is 1."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def run(text: str | None = None, fld: str | None = None, instr: str | None = None):
        r = paragraph.add_run()
        set_font(r, PAGE_NUMBER_FONT, PAGE_NUMBER_PT)
        if fld:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), fld)
            r._r.append(el)
        elif instr:
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = instr
            r._r.append(el)
        else:
            r.text = text
        return r

    run(f"{PAGE_DASH} ")
    run(fld="begin")
    run(instr=" PAGE ")
    run(fld="separate")
    run("1")
    run(fld="end")
    run(f" {PAGE_DASH}")


def page_numbers(doc) -> None:
    """Odd pages' numbers on the right, even pages' on the left, one character in."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    doc.settings.odd_and_even_pages_header_footer = True
    for section in doc.sections:
        for footer, align in ((section.footer, WD_ALIGN_PARAGRAPH.RIGHT),
                              (section.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT)):
            footer.is_linked_to_previous = False
            p = footer.paragraphs[0]
            fmt = p.paragraph_format
            fmt.alignment = align
            fmt.first_line_indent = Pt(0)
            fmt.line_spacing = 1.0
            if align == WD_ALIGN_PARAGRAPH.RIGHT:
                fmt.right_indent = Pt(PAGE_NUMBER_PT)
            else:
                fmt.left_indent = Pt(PAGE_NUMBER_PT)
            _page_field(p)


def font_alternates(doc) -> None:
    """Each official font in the font table, with the font Word takes where it is missing."""
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from lxml import etree

    part = doc.part.part_related_by(RT.FONT_TABLE)
    root = etree.fromstring(part.blob)
    w = root.nsmap["w"]
    for name, alt in FONT_ALTERNATES.items():
        font = etree.SubElement(root, f"{{{w}}}font", {f"{{{w}}}name": name})
        etree.SubElement(font, f"{{{w}}}altName", {f"{{{w}}}val": alt})
        etree.SubElement(font, f"{{{w}}}charset", {f"{{{w}}}val": "86"})  # GB2312
        etree.SubElement(font, f"{{{w}}}family",
                         {f"{{{w}}}val": "modern" if name == HEADING_FONT else "roman"})
        etree.SubElement(font, f"{{{w}}}pitch", {f"{{{w}}}val": "variable"})
    part._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                standalone=True)


# ----------------------------------------------------------------------- paragraphs
def paragraph(doc, text: str, *, font: str = BODY_FONT, bold: bool = False,
              center: bool = False, indent: bool = True):
    """A body paragraph of one run (3号, fixed 28 pt lines, first line indented two
    characters unless ``center`` or not ``indent``)."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    p = doc.add_paragraph()
    if center:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    if center or not indent:
        p.paragraph_format.first_line_indent = Pt(0)
    run = p.add_run(document_text(text))
    if font != BODY_FONT or bold:
        set_font(run, font, None, bold)
    return p


def small_paragraph(doc):
    """An empty paragraph in the table style (小四, single spacing): long lists of clauses."""
    return doc.add_paragraph(style=TABLE_STYLE)


def title(doc, text: str):
    """The document's title: 2号 方正小标宋简体, centred, on 36 pt lines."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.shared import Pt

    p = doc.add_paragraph()
    fmt = p.paragraph_format
    fmt.alignment = WD_ALIGN_PARAGRAPH.CENTER
    fmt.first_line_indent = Pt(0)
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = Pt(TITLE_LINE_PT)
    set_font(p.add_run(document_text(text)), TITLE_FONT, TITLE_PT)
    return p


def heading(doc, text: str, *, level: int = 1):
    """A heading line: level 1 (一、) 黑体, level 2 (（一）) 楷体_GB2312, level 3 bold 仿宋."""
    font = {1: HEADING_FONT, 2: SUBHEADING_FONT}.get(level, BODY_FONT)
    return paragraph(doc, text, font=font, bold=level >= 3)


def blank(doc):
    """An empty body line."""
    return doc.add_paragraph()


def cjk_date(day: date) -> str:
    """``2026年12月3日`` (成文日期 in the form GB/T 9704-2012 uses)."""
    return f"{day.year}年{day.month}月{day.day}日"


def _width(text: str) -> float:
    """Width in characters of the body font: half a character for ASCII."""
    return sum(0.5 if ord(ch) < 128 else 1.0 for ch in text)


def signature(doc, unit: str, day: date) -> None:
    """The issuing unit and the date at the end: the date four characters in from the right,
    the unit centred over it (a blank line above)."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    blank(doc)
    when = cjk_date(day)
    offset = max(0.0, 4 + (_width(when) - _width(unit)) / 2)
    for text, chars in ((unit, offset), (when, 4.0)):
        p = paragraph(doc, text, indent=False)
        p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        p.paragraph_format.right_indent = Pt(chars * BODY_PT)


def picture(doc, path, *, width_cm: float = 15.5) -> None:
    """An image across the text width (15.6 cm between the margins), centred on a line of
    its own height (a fixed 28 pt line would clip it)."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.shared import Cm, Pt

    p = doc.add_paragraph()
    fmt = p.paragraph_format
    fmt.alignment = WD_ALIGN_PARAGRAPH.CENTER
    fmt.first_line_indent = Pt(0)
    fmt.line_spacing_rule = WD_LINE_SPACING.SINGLE
    p.add_run().add_picture(str(path), width=Cm(width_cm))


# ----------------------------------------------------------------------------- tables
def cell_text(v: Any) -> str:
    """A table cell's text: blank for missing values, whole floats without ``.0``."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return document_text(str(v))


def table_caption(doc, text: str):
    """A table's title: bold, centred, body font."""
    return paragraph(doc, text, bold=True, center=True)


def grid(doc, rows: int, cols: int, headers: list[str], *, widths_cm: list[float] | None = None):
    """An empty grid table in the table style (小四) with a bold header row; returns the
    table and its flat cell list."""
    from docx.shared import Cm

    t = doc.add_table(rows=rows, cols=cols)
    t.style = "Table Grid"
    if widths_cm:
        t.autofit = False
    cells = t._cells  # one pass; row.cells per row is quadratic on long tables
    style_id = doc.styles[TABLE_STYLE].style_id
    for i, cell in enumerate(cells):
        cell._tc.p_lst[0].get_or_add_pPr().style = style_id
        if widths_cm:
            cell.width = Cm(widths_cm[i % cols])
    for c, name in enumerate(headers):
        cells[c].paragraphs[0].add_run(document_text(str(name))).bold = True
    return t, cells


def put(cell, text: str) -> None:
    """A cell's text, straight to the XML (the ``cell.text`` setter rebuilds each cell)."""
    cell._tc.p_lst[0].add_r().text = document_text(text)


def table(doc, title: str, df: pd.DataFrame) -> None:
    """``title`` as a caption, then ``df`` as a grid table with a bold header row
    (``（无）`` when it has no rows)."""
    table_caption(doc, title)
    if df.empty:
        paragraph(doc, "（无）", center=True)
        return
    ncols = len(df.columns)
    _, cells = grid(doc, len(df) + 1, ncols, [str(c) for c in df.columns])
    for r, row in enumerate(df.itertuples(index=False), start=1):
        for c, value in enumerate(row):
            cells[r * ncols + c]._tc.p_lst[0].add_r().text = cell_text(value)
