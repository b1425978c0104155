"""One error handler: JSON under /api, an HTML page elsewhere; never a traceback."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from geoapp.domain.errors import GeoappError, StorageUnavailable

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def render_error(status: int, code: str, message: str, details=None):
    """The error answer: JSON ``{"error", "message", "details"}`` under /api and for the
    health probe, the error page elsewhere."""
    if _wants_json():
        body = {"error": code, "message": message}
        if details is not None:
            body["details"] = details
        return jsonify(body), status
    try:
        return render_template("error.html", status=status, code=code, message=message,
                               details=details), status
    except StorageUnavailable as exc:  # the header's account could not be loaded
        body = exc.to_dict()
        return _storage_unavailable(exc, body)


def _storage_unavailable(exc: StorageUnavailable, body: dict):
    """The 503 answer when the database cannot be read or written, drawn without asking the
    database anything: the page's header shows no account (the user is not loaded again,
    which would wait for the same database), and a read is told its data could not be read
    rather than that nothing was saved."""
    g._login_user = current_app.login_manager.anonymous_user()
    message = body["message"]
    if request.method in ("GET", "HEAD", "OPTIONS"):
        message = _("数据库暂时无法访问，请稍后再试。")
    return render_error(exc.status, exc.code, message, body.get("details"))


def register(app: Flask) -> None:
    @app.errorhandler(GeoappError)
    def _domain(exc: GeoappError):
        body = exc.to_dict()  # messages in the page's language, problems as plain data
        if isinstance(exc, StorageUnavailable):
            return _storage_unavailable(exc, body)
        return render_error(exc.status, exc.code, body["message"], body.get("details"))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return render_error(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # The traceback goes to the log under a reference the user can quote; the page and
        # the JSON answer never carry exception text, paths or library messages.
        ref = secrets.token_hex(4)
        log.exception("unhandled error, reference %s, on %s", ref, request.path)
        # Both languages at once: this answer must not depend on anything that may have failed.
        return render_error(500, "internal_error",
                            f"服务器内部错误 Internal server error. 参考编号 Reference: {ref} "
                            "（请将此编号告知管理员 quote it to the administrator）",
                            {"reference": ref})
