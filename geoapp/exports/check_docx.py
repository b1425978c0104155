"""One inspection record as a Word document in the official layout (现场核查记录单).

The sheet holds what the record's print page shows (docs/documents.md): the serial number
and the record number, the inspector and the time, the site or the point (as entered, with
its coordinate system, and the WGS84 point), the verdict with its sentence, every hit (rule,
feature, distance, legal basis, action), the conditional hits, the notes, the photos as a
table (thumbnail, file name, EXIF time, position mark, SHA-256), then the issuing unit and
the record's date.

The writer takes a plain mapping (``services.check_sheet.sheet_data`` builds it); the
document properties carry the record's time, not the clock, so a record gives the same
document every time.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from geoapp.exports.docx_common import (
    blank,
    grid,
    heading,
    new_document,
    paragraph,
    put,
    signature,
    table_caption,
    title,
)

TITLE = "现场核查记录单"
#: Photo table: thumbnail, file name, EXIF time, position mark, SHA-256 (15.6 cm in all).
PHOTO_HEADERS = ("照片", "文件名", "拍摄时间", "位置标记", "SHA-256")
PHOTO_WIDTHS_CM = (3.4, 3.0, 2.6, 2.6, 4.0)
THUMB_WIDTH_CM = 3.0
HIT_HEADERS = ("规则", "要素", "距离（米）", "依据", "处置")
HIT_WIDTHS_CM = (3.2, 2.8, 2.2, 4.0, 3.4)


def measure_text(h: Mapping[str, Any]) -> str:
    """How close, as the print page says it: ``145.5 / 限 400，超入 254.5`` or 位于区内."""
    if h.get("test") == "inside":
        return "位于区内"
    if h.get("test") == "not_inside":
        d = h.get("distance")
        return "不在允许区域内" + (f"（距最近 {d}）" if d and d != "0.0" else "")
    if h.get("distance") is None:
        return ""
    if h.get("limit") is not None:
        return f"{h['distance']}（限 {h['limit']}，超入 {h['margin']}）"
    return str(h["distance"])


def _basis(h: Mapping[str, Any]) -> str:
    note = h.get("basis_note")
    return f"{h.get('basis') or ''}" + (f"（说明：{note}）" if note else "")


def _hits_table(doc, caption: str, hits: list[Mapping[str, Any]], *,
                conditional: bool = False) -> None:
    table_caption(doc, caption)
    if not hits:
        paragraph(doc, "（无）", center=True)
        return
    ncols = len(HIT_HEADERS)
    _, cells = grid(doc, len(hits) + 1, ncols, list(HIT_HEADERS), widths_cm=list(HIT_WIDTHS_CM))
    for r, h in enumerate(hits, start=1):
        rule = (h.get("title") or {}).get("zh") or str(h.get("rule_id") or "")
        if conditional:
            cond = (h.get("sentence") or {}).get("zh") or (h.get("condition") or {}).get("zh")
            rule = f"{rule}（{cond}）" if cond else rule
        values = (rule, h.get("feature_name") or "—", measure_text(h), _basis(h),
                  h.get("action") or "")
        for c, v in enumerate(values):
            put(cells[r * ncols + c], str(v))


def _photos_table(doc, photos: list[Mapping[str, Any]]) -> None:
    from docx.shared import Cm

    table_caption(doc, "现场照片")
    if not photos:
        paragraph(doc, "（无）", center=True)
        return
    ncols = len(PHOTO_HEADERS)
    _, cells = grid(doc, len(photos) + 1, ncols, list(PHOTO_HEADERS),
                    widths_cm=list(PHOTO_WIDTHS_CM))
    for r, p in enumerate(photos, start=1):
        thumb = p.get("thumb")
        cell = cells[r * ncols]
        if thumb:
            cell.paragraphs[0].add_run().add_picture(io.BytesIO(thumb),
                                                     width=Cm(THUMB_WIDTH_CM))
        values = (p.get("filename") or "", (p.get("taken_at") or "").replace("T", " ") or "—",
                  p.get("mark") or "", p.get("sha256") or "")
        for c, v in enumerate(values, start=1):
            put(cells[r * ncols + c], str(v))


def write_check_docx(sheet: Mapping[str, Any], path: str | Path | io.BytesIO) -> Any:
    """Write the sheet (see ``services.check_sheet.sheet_data``) to ``path`` (a file or a
    buffer) and return it."""
    stamp: datetime = sheet["stamp"]
    doc = new_document(f"{TITLE} {sheet['serial']}", stamp)
    title(doc, sheet.get("title") or TITLE)
    paragraph(doc, sheet["serial"], center=True)
    blank(doc)
    heading(doc, "一、基本情况")
    for label, value in sheet["facts"]:
        paragraph(doc, f"{label}：{value}")
    heading(doc, "二、核查结论")
    paragraph(doc, f"结论：{sheet['verdict']}")
    paragraph(doc, sheet["sentence"])
    heading(doc, "三、触发的规则")
    _hits_table(doc, "触发的规则", list(sheet["hits"]))
    if sheet.get("conditional_hits"):
        _hits_table(doc, "待核实的规则（取决于场所类型、行业等信息）",
                    list(sheet["conditional_hits"]), conditional=True)
    heading(doc, "四、检查备注")
    paragraph(doc, sheet.get("notes") or "（无）")
    heading(doc, "五、现场照片")
    _photos_table(doc, list(sheet["photos"]))
    signature(doc, sheet["issuer"], stamp.date())
    doc.save(path)
    return path
