"""An inspection record as the check sheet DOCX (现场核查记录单, docs/documents.md).

Who may have it is decided exactly as for the record's print page:
``services.photos.visible_inspection`` (NotFound, the same as an unknown id, otherwise).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from geoapp.domain.bulletin import LOCAL_TZ
from geoapp.domain.errors import NotFound
from geoapp.domain.results import Verdict
from geoapp.exports.check_docx import TITLE, write_check_docx
from geoapp.services import photos
from geoapp.services.checks import engine
from geoapp.services.core import Geoapp
from geoapp.services.inspection import hit_row
from geoapp.services.site_page import local_time
from geoapp.spatial.crs import describe_crs


def _stamp(value: Any) -> datetime:
    """The record's time as a naive local datetime (the document's date and properties)."""
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(LOCAL_TZ).replace(tzinfo=None)


def _mark(p: dict[str, Any]) -> str:
    if p.get("state") == "mismatch":
        return f"位置不符 · 距核查点 {p.get('distance')} 米"
    if p.get("state") == "ok":
        return f"位置相符 · 距核查点 {p.get('distance')} 米"
    return "无GPS位置"


def _site_label(app: Geoapp, site_id: Any) -> str:
    try:
        name = app.repo.site(str(site_id)).get("name")
    except NotFound:
        name = None
    return f"{site_id} {name}" if name else str(site_id)


def sheet_data(app: Geoapp, inspection_id: int, *, sees_records: bool) -> dict[str, Any]:
    """What the check sheet holds, in Chinese; NotFound when the account may not see the
    record (``photos.visible_inspection``)."""
    rec = photos.visible_inspection(app, inspection_id, sees_records=sees_records)
    rid = int(rec["id"])
    stamp = _stamp(rec["at"])
    rules = engine(app).rules
    verdict = Verdict(rec["verdict"])
    given = rec.get("input") or {}
    facts: list[tuple[str, str]] = [("记录编号", str(rid)), ("检查人", str(rec.get("inspector") or "")),
                                    ("记录时间", local_time(rec["at"]))]
    if rec.get("site_id"):
        facts.append(("企业/点位", _site_label(app, rec["site_id"])))
    elif given.get("lon") not in (None, ""):
        crs = describe_crs(str(given.get("crs") or "wgs84"))["zh"]
        facts.append(("输入坐标", f"{given.get('lon')}, {given.get('lat') or ''}（{crs}）"))
    facts.append(("WGS84 坐标", f"{float(rec['lon']):.6f}, {float(rec['lat']):.6f}"))
    if rec.get("gps_accuracy_m") is not None:
        facts.append(("定位精度", f"±{float(rec['gps_accuracy_m']):.0f} 米"))
    shots = []
    for p in rec["photos"]:
        thumb, _meta = photos.photo_file(app, int(p["id"]), part="thumb", sees_records=True,
                                         inspection_id=rid)
        shots.append({**p, "thumb": thumb, "mark": _mark(p)})
    city = app.city
    return {
        "title": f"{city.name}{TITLE}", "serial": city.check_serial(stamp.year, rid),
        "stamp": stamp, "facts": facts, "verdict": verdict.zh,
        "sentence": verdict.sentence_zh,
        "hits": [hit_row(rules, h) for h in rec.get("hits") or []],
        "conditional_hits": ([] if verdict is Verdict.OUT_OF_AREA else
                             [hit_row(rules, h) for h in rec.get("conditional_hits") or []]),
        "notes": rec.get("notes") or "", "photos": shots, "issuer": city.issuer,
    }


def sheet_docx(app: Geoapp, inspection_id: int, *, sees_records: bool) -> tuple[bytes, str]:
    """The sheet's bytes and its file name (``现场核查记录单-12.docx``)."""
    data = sheet_data(app, inspection_id, sees_records=sees_records)
    buf = io.BytesIO()
    write_check_docx(data, buf)
    return buf.getvalue(), f"{TITLE}-{int(inspection_id)}.docx"
