"""One error handler: JSON under /api, an HTML page elsewhere; never a traceback."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from geoapp.domain.errors import GeoappError

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
    return render_template("error.html", status=status, code=code, message=message,
                           details=details), status


def register(app: Flask) -> None:
    @app.errorhandler(GeoappError)
    def _domain(exc: GeoappError):
        body = exc.to_dict()  # messages in the page's language, problems as plain data
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
