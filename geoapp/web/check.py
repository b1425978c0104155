"""The inspectors' site check: /check (form, verdict, map), /check/print (one-page A4
sheet) and the POST that records an inspection with its photos. The URL of a check
reproduces it.

Photos of an inspection (services/photos.py) are seen by whoever may see their record: a
site's photos by every account that may open the site's page (``/sites/<id>/photos/<n>``),
the photos of an inspection without a site by inspectors and admins only
(``/inspections/<id>/photos/<n>``). Anything else — an unknown id, another site's or
inspection's photo, one the account may not see — is the same 404. Photos are added to a
kept inspection by its own inspector and by admins only.

A refused record or photo upload never loses what the inspector wrote: the check page comes
back with the message and the notes (or, when the check itself failed, the notes in a box
to copy), and a refused 「补充照片」 upload answers with the record's page and the message.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from geoapp.domain.errors import CoordinateError, GeoappError, InvalidInput, NotFound
from geoapp.services import inspection as svc
from geoapp.services import photos
from geoapp.web.auth import role_required
from geoapp.web.common import core, render_map_page, send_download

log = logging.getLogger(__name__)
bp = Blueprint("check", __name__)

#: Engine messages (as raised: the catalogue's Chinese; some English ones remain) -> a
#: sentence shown first (the detail follows).
_ZH_HINTS = (
    (r"lon and lat are required|请填写经度和纬度", _l("请填写经度和纬度（度分秒可整段填在第一栏）。")),
    (r"unknown coordinate system|未知的坐标系", _l("坐标系无效，请从列表中选择。")),
    (r"look swapped|像是填反了", _l("经纬度可能填反了：请先填经度（东经，约 110-120），再填纬度（北纬，约 30-40）。")),
    (r"outside China|在中国境外", _l("坐标不在中国境内，请检查数值和坐标系。")),
    (r"are not degrees|projected metres|像是投影坐标", _l("这像是投影坐标（米），请选择“高斯-克吕格 x/y”。")),
    (r"look like degrees|像是经纬度", _l("这像是经纬度（度），请选择 WGS84、GCJ-02 或 BD-09。")),
    (r"not a number|missing|expected two numbers|不是数字|坐标缺失|应填两个数", _l("坐标不是有效数字，请检查输入（小数点用“.”）。")),
    (r"outside -1[89]0|超出 -1[89]0", _l("经度或纬度超出范围。")),
    (r"Gauss-Krüger|easting|northing|zone|高斯-克吕格|东坐标|北坐标|带号", _l("高斯-克吕格坐标无效，请检查 x/y 与带号。")),
    (r"DMS|degrees-minutes|度分秒|minutes|seconds|方位字母|须小于 60|没有填写坐标", _l("度分秒格式无法识别，例如：东经113度14分30.5秒 北纬35度12分10秒。")),
    (r"site_type", _l("场所类型无效。")),
)


def _zh_message(exc: GeoappError) -> str:
    """A clear Chinese sentence first; the engine's own message stays as the detail."""
    if isinstance(exc, NotFound):
        return exc.message
    if isinstance(exc, InvalidInput):
        for pattern, zh in _ZH_HINTS:
            if re.search(pattern, exc.message):
                if str(zh) == str(exc.message):
                    return str(zh)
                return _("%(hint)s（%(detail)s）", hint=str(zh), detail=exc.message)
        if isinstance(exc, CoordinateError):
            return _("%(hint)s（%(detail)s）", hint=_("坐标有误，请检查数值和坐标系。"),
                     detail=exc.message)
    return exc.message


def _context(query: svc.CheckQuery) -> dict:
    return {"query": query, **svc.form_choices(core()),
            "can_record": current_user.has_role("inspector")}


def _run(query: svc.CheckQuery) -> tuple[svc.CheckView | None, str | None, int]:
    if query.empty:
        return None, None, 200
    try:
        return svc.run_check(core(), query), None, 200
    except GeoappError as exc:
        if exc.status >= 500:
            raise
        return None, _zh_message(exc), exc.status


@bp.get("/check")
def index():
    """The check form and, when the URL names a point or a site, its answer."""
    query = svc.CheckQuery.from_args(request.args)
    view, error, status = _run(query)
    page = render_map_page("check.html", svc.check_map(core(), view, gettext=_), view=view,
                           error=error, **_context(query))
    return page, status


@bp.get("/check/print")
def print_sheet():
    """The one-page A4 check sheet for the same parameters."""
    query = svc.CheckQuery.from_args(request.args)
    if query.empty:
        raise InvalidInput(_("请先填写坐标或选择企业"))
    view, error, status = _run(query)
    if view is None:
        raise (NotFound(error) if status == 404 else InvalidInput(error or ""))
    return render_map_page("check_print.html", svc.check_map(core(), view, gettext=_),
                           view=view, query=query)


def _uploads() -> list[photos.Upload]:
    """The photos of the request (the ``photos`` file field; empty fields left out)."""
    out = []
    for f in request.files.getlist("photos"):
        with f.stream:  # a large file is spooled to disk: closed at once, not at collection
            if f.filename or f.content_length:
                out.append(photos.Upload(f.filename or "", f.read()))
    return out


@bp.post("/check/inspections")
@role_required("inspector")
def record():
    """Record the check as an inspection with its photos; the check is re-run here, not
    taken from the form. A refused photo refuses the whole record (400, the check page
    again with the message naming the file and the notes kept); nothing is kept."""
    query = svc.CheckQuery.from_args(request.form)
    notes = request.form.get("notes", "")
    if query.empty:
        return _unchecked(query, _("请先填写坐标或选择企业"), notes, 400)
    view, error, status = _run(query)
    if view is None:
        return _unchecked(query, error or "", notes, status)
    try:
        saved = photos.record_inspection(core(), view, notes, _uploads(),
                                         gps_accuracy_m=request.form.get("gps_accuracy_m"),
                                         user=current_user.username)
    except InvalidInput as exc:
        page = render_map_page("check.html", svc.check_map(core(), view, gettext=_),
                               view=view, error=None, record_error=_refused(exc),
                               notes=notes, **_context(query))
        return page, 400
    n = len(saved["photos"])
    flash(_("已记录检查（编号 %(id)s），照片 %(n)s 张", id=saved["id"], n=n) if n
          else _("已记录检查（编号 %(id)s）", id=saved["id"]))
    if view.site:
        return redirect(url_for("sites.show", site_id=view.site["id"]) + "#inspections")
    return redirect(url_for("check.index", **query.url_args()))


def _refused(exc: InvalidInput) -> str:
    """A refused upload's message; when photos were sent, that none was kept."""
    if request.files.getlist("photos") and any(f.filename for f in request.files.getlist("photos")):
        return _("%(msg)s 本次照片均未保存，请重新选择合格的照片后再提交。", msg=exc.message)
    return exc.message


def _unchecked(query: svc.CheckQuery, error: str, notes: str, status: int):
    """The check page when the record's check itself failed: the message and the notes
    (nothing was kept)."""
    page = render_map_page("check.html", svc.check_map(core(), None, gettext=_), view=None,
                           error=error, kept_notes=notes, **_context(query))
    return page, status


def _sees_records() -> bool:
    return current_user.has_role("inspector")


def _photo(photo_id: int, part: str, **where):
    data, meta = photos.photo_file(core(), photo_id, part=part, sees_records=_sees_records(),
                                   **where)
    if part == "thumb":
        return send_download(data, f"thumb-{meta['id']}.jpg", "image/jpeg", inline=True)
    return send_download(data, photos.download_name(meta), meta["media_type"])


@bp.get("/sites/<site_id>/photos/<int:photo_id>")
def site_photo(site_id: str, photo_id: int):
    """A photo of the site's inspections as uploaded (a download)."""
    return _photo(photo_id, "data", site_id=site_id)


@bp.get("/sites/<site_id>/photos/<int:photo_id>/thumb")
def site_photo_thumb(site_id: str, photo_id: int):
    """Its thumbnail (320 px JPEG, upright)."""
    return _photo(photo_id, "thumb", site_id=site_id)


@bp.get("/inspections/<int:inspection_id>/photos/<int:photo_id>")
def inspection_photo(inspection_id: int, photo_id: int):
    """A photo of an inspection as uploaded (a download)."""
    return _photo(photo_id, "data", inspection_id=inspection_id)


@bp.get("/inspections/<int:inspection_id>/photos/<int:photo_id>/thumb")
def inspection_photo_thumb(inspection_id: int, photo_id: int):
    return _photo(photo_id, "thumb", inspection_id=inspection_id)


@bp.get("/inspections/<int:inspection_id>/print")
def inspection_print(inspection_id: int):
    """The inspection's printable record: as recorded, with its photos and their marks."""
    rec = photos.visible_inspection(core(), inspection_id, sees_records=_sees_records())
    return render_template("inspection_print.html", rec=rec, city=core().city,
                           can_add=_may_add(rec))


def _may_add(rec) -> bool:
    return current_user.has_role("inspector") and photos.may_add_photos(
        rec, user=current_user.username, is_admin=current_user.has_role("admin"))


@bp.post("/inspections/<int:inspection_id>/photos")
@role_required("inspector")
def add_photos(inspection_id: int):
    """Add photos to a kept inspection, all or none (its own inspector and admins only);
    back to where it is shown. A refused upload answers with the record's page (400) and
    the message, with a link back to the site page."""
    rec = photos.visible_inspection(core(), inspection_id, sees_records=True)
    if not _may_add(rec):
        abort(403)
    try:
        saved = photos.add_photos(core(), inspection_id, _uploads(),
                                  user=current_user.username)
    except InvalidInput as exc:
        page = render_template("inspection_print.html", rec=rec, city=core().city,
                               can_add=True, add_error=_refused(exc))
        return page, 400
    flash(_("已添加照片 %(n)s 张（检查编号 %(id)s）", n=len(saved), id=inspection_id))
    if rec.get("site_id"):
        return redirect(url_for("sites.show", site_id=rec["site_id"])
                        + f"#inspection-{inspection_id}")
    return redirect(url_for("check.inspection_print", inspection_id=inspection_id))
