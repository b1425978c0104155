"""At most a few heavy uploads are worked on at once in each server process.

Reading, validating and flagging an uploaded file (``POST /api/flag``, layer, ledger and
weekly imports, a parcel file) or building a report of many parcels can take seconds of
CPU; the inspector's single-point check and a pasted or drawn parcel take milliseconds.
Each server process has only a few request threads (granian: 2 by default), so without a
bound a handful of uploads, hostile or not, would hold every thread and the checks would
queue behind them.

What is heavy is judged from the request's size alone, whatever its type: a POST whose
body is larger than ``HEAVY_BODY_BYTES`` (a file, a GeoJSON body of many parcels, a parcel
answer carried back for its Word report), or a multipart or chunked POST that names no
``Content-Length`` (its size is unknown until it has been read). A smaller body is never
heavy — a pasted coordinate list posted as multipart by the parcel page, a small CSV — so
one user's large download does not refuse another user's check. Each process works on at
most ``HEAVY_UPLOADS`` heavy requests at a time and answers the next one at once with 503
and ``Retry-After`` instead of waiting, since a waiting upload would still hold a thread
that a check needs.

An inspector's photo record (``POST /check/inspections``, ``POST /inspections/<id>/photos``)
is not an office upload: it has its own ``max(1, HEAVY_UPLOADS)`` slots, so a planner's flag
or import holding the upload slot never turns an inspector in the field away, and it may
wait up to ``PHOTO_SLOT_WAIT_S`` for one of them (another inspector's record takes a second
or two) before the 503. Its body may be as large as ``PHOTO_MAX_COUNT`` × ``PHOTO_MAX_MB``
plus a margin (for an inspector's session only), beyond ``MAX_UPLOAD_MB``, so twelve unshrunk
photos reach the route and a refusal comes back on the check page with the notes kept.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app, g, request
from flask_babel import gettext as _
from flask_login import current_user

from geoapp.domain.errors import GeoappError

log = logging.getLogger(__name__)

#: Uploads worked on at once per server process when the app config does not say.
DEFAULT_HEAVY_UPLOADS = 1
RETRY_AFTER_S = 15


class ServerBusy(GeoappError):
    """Every upload slot of this server process is taken; the client should retry."""

    status = 503
    code = "busy"


#: The inspector's photo records: their own slots and a larger body limit.
PHOTO_ENDPOINTS = frozenset({"check.record", "check.add_photos"})
#: How long a photo record waits for a photo slot before the 503.
PHOTO_SLOT_WAIT_S = 5.0
#: Room in a photo record's body beyond its photos (the form, multipart headers).
PHOTO_BODY_MARGIN_MB = 2

#: A POST body larger than this is heavy whatever its type; a smaller one never is (a
#: pasted parcel of a few hundred points, one small parcel as GeoJSON, an ordinary form).
HEAVY_BODY_BYTES = 16 * 1024


def is_heavy() -> bool:
    """Whether the current request takes an upload slot (see the module docstring)."""
    if request.method != "POST":
        return False
    length = request.content_length  # None without the header, or when chunked
    if length is not None:
        return length > HEAVY_BODY_BYTES
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return chunked or (request.mimetype or "") == "multipart/form-data"


def photo_body_limit(config) -> int:
    """The largest body of a photo record: every photo at its largest, plus a margin; never
    less than MAX_CONTENT_LENGTH."""
    mb = int(config.get("PHOTO_MAX_COUNT") or 12) * int(config.get("PHOTO_MAX_MB") or 15)
    ordinary = int(config.get("MAX_CONTENT_LENGTH") or 0)
    return max(ordinary, (mb + PHOTO_BODY_MARGIN_MB) * 1024 * 1024)


def _photo_record() -> bool:
    return request.method == "POST" and request.endpoint in PHOTO_ENDPOINTS


def _acquire():
    photo = _photo_record()
    if photo and current_user.is_authenticated and current_user.has_role("inspector"):
        request.max_content_length = photo_body_limit(current_app.config)
    if not is_heavy():
        return None
    key = "geoapp.photo_slots" if photo else "geoapp.upload_slots"
    slots: threading.BoundedSemaphore = current_app.extensions[key]
    if not (slots.acquire(timeout=PHOTO_SLOT_WAIT_S) if photo else slots.acquire(blocking=False)):
        log.info("upload to %s refused: every upload slot is busy", request.path)
        raise ServerBusy(_("服务器正在处理其他上传文件，请稍后重试（约 %(s)s 秒后）",
                             s=RETRY_AFTER_S), details={"retry_after_s": RETRY_AFTER_S})
    g.geoapp_upload_slot = slots
    return None


def _release(_exc=None) -> None:
    slots = g.pop("geoapp_upload_slot", None)
    if slots is not None:
        slots.release()


def _retry_after(resp):
    if resp.status_code == 503 and "Retry-After" not in resp.headers:
        resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp


def init_app(app: Flask) -> None:
    """Install the upload bound; it runs before every other request hook (CSRF included),
    so a refused upload's body is never parsed."""
    n = int(app.config.get("HEAVY_UPLOADS") or DEFAULT_HEAVY_UPLOADS)  # setting HEAVY_UPLOADS
    app.extensions["geoapp.upload_slots"] = threading.BoundedSemaphore(max(1, n))
    app.extensions["geoapp.photo_slots"] = threading.BoundedSemaphore(max(1, n))
    app.before_request_funcs.setdefault(None, []).insert(0, _acquire)
    app.teardown_request(_release)
    app.after_request(_retry_after)
