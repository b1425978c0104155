"""One warning level's emergency measures by county as a Word document (python-docx).

The official layout of ``docx_common`` (docs/documents.md); the title naming the city and the
level, one line on what the list is, then per county a heading and a table of its enterprises:
企业名称, 绩效分级, 限产比例(%), 停产工序, 运输管控措施 (the columns the county's inspectors
check), then the issuing unit and the date of the list's last change. The document's
properties carry that change, never the clock, so the same list gives the same document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from geoapp.domain.emergency import format_cut, grade_zh
from geoapp.exports.docx_common import grid, heading, new_document, paragraph, put, signature
from geoapp.exports.docx_common import title as _title

#: The table of each county: (key, header, width in cm); 15.6 cm between the margins.
COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("seq", "序号", 1.0), ("name", "企业名称", 3.8), ("grade", "绩效分级", 1.6),
    ("cut_pct", "限产比例(%)", 1.7), ("processes", "停产工序", 3.6),
    ("transport", "运输管控措施", 3.9))


def write_level_docx(path: str | Path, *, title: str, intro: str,
                     groups: Sequence[Mapping[str, Any]], stamp: datetime,
                     issuer: str = "") -> Path:
    """Write the document at ``path``; ``groups`` are the counties (``county``, ``rows``) in
    the city's order; ``issuer`` signs it with the day of ``stamp``."""
    path = Path(path)
    doc = new_document(title, stamp)
    _title(doc, title)
    paragraph(doc, intro)
    ncols = len(COLUMNS)
    widths = [w for _k, _h, w in COLUMNS]
    for g in groups:
        rows = list(g["rows"])
        heading(doc, f"{g['county']}（{len(rows)} 家）")
        if not rows:
            paragraph(doc, "（无）")
            continue
        _, cells = grid(doc, len(rows) + 1, ncols, [h for _k, h, _w in COLUMNS],
                        widths_cm=widths)
        for r, rec in enumerate(rows, start=1):
            for c, (k, _h, _w) in enumerate(COLUMNS):
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
                put(cells[r * ncols + c], text)
    if issuer:
        signature(doc, issuer, stamp.date())
    doc.save(path)
    return path
