"""Security headers on every response, a clear answer to oversized uploads, and an audit row
for every file that leaves the system.

The Content-Security-Policy lets the folium maps work: folium writes its map as inline
script and style, so script-src and style-src allow 'self' plus 'unsafe-inline' (no remote
origin: in intranet mode every asset comes from static/), and the vendored leaflet-measure
control compiles its templates at run time, so script-src also allows 'unsafe-eval'; images may also come from the
configured tile server. Framing, foreign form targets, <base> hijacks and plugins are off.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

log = logging.getLogger(__name__)

#: Hosts each TILES choice loads images from (the basemap is the only remote content).
TILE_HOSTS = {
    "osm": ("https://tile.openstreetmap.org", "https://*.tile.openstreetmap.org"),
    "tianditu": ("https://*.tianditu.gov.cn",),
    "amap": ("https://*.is.autonavi.com",),
    "none": (),
}

STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), payment=(), geolocation=(self)",
}


def content_security_policy(tiles: str, intranet: bool) -> str:
    """The CSP for the configured basemap; without intranet mode folium's CDNs are allowed."""
    cdn = () if intranet else ("https://cdn.jsdelivr.net", "https://code.jquery.com",
                               "https://netdna.bootstrapcdn.com", "https://cdnjs.cloudflare.com",
                               "https://unpkg.com")
    hosts = " ".join(TILE_HOSTS.get(tiles, ()))
    extra = " ".join(cdn)
    parts = [
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' 'unsafe-eval' {extra}".strip(),
        f"style-src 'self' 'unsafe-inline' {extra}".strip(),
        f"img-src 'self' data: blob: {hosts} {extra}".strip(),
        f"font-src 'self' data: {extra}".strip(),
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
    return "; ".join(" ".join(p.split()) for p in parts)


class SecurityHeaders:
    """WSGI middleware: every response gets the CSP and the other STATIC_HEADERS unless it set
    them itself, and API answers and downloads ``Cache-Control: no-store``.

    Done on the header list at ``start_response`` (plain list work, no per-header
    validation), so it also covers error pages and costs a few microseconds per request.
    """

    def __init__(self, wsgi_app, policy: str) -> None:
        self.wsgi_app = wsgi_app
        pairs = {"Content-Security-Policy": policy, **STATIC_HEADERS}
        self.defaults = tuple((k.lower(), k, v) for k, v in pairs.items())

    def __call__(self, environ, start_response):
        api = environ.get("PATH_INFO", "").startswith("/api/")

        def _start(status, headers, exc_info=None):
            present = {k.lower() for k, _ in headers}
            headers.extend((k, v) for low, k, v in self.defaults if low not in present)
            if "cache-control" not in present and (api or "content-disposition" in present):
                headers.append(("Cache-Control", "no-store"))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, _start)


def _audit_download(resp: Response) -> Response:
    """Every attachment (ledger, weekly bulletin, layer, flagged file) leaves an audit row."""
    disposition = resp.headers.get("Content-Disposition", "")
    if resp.status_code != 200 or "attachment" not in disposition:
        return resp
    from flask_login import current_user

    if not current_user.is_authenticated:
        return resp
    from geoapp.services.audit import record_event

    filename = disposition.split("filename=", 1)[-1].strip('"') if "filename=" in \
        disposition else ""
    try:
        record_event(current_app.extensions["geoapp"], current_user.username, "export",
                     "download", request.endpoint or "",
                     {"path": request.path, "query": request.query_string.decode(
                         "utf-8", "replace")[:500], "file": filename})
    except Exception:  # an audit failure must not eat the user's download; it is logged
        log.exception("could not audit the download of %s", request.path)
    return resp


def _too_large(exc: RequestEntityTooLarge):
    from geoapp.web.errors import _render

    mb = current_app.config.get("MAX_UPLOAD_MB")
    return _render(413, "too_large",
                   f"上传文件过大 File too large: the limit is {mb} MB (setting MAX_UPLOAD_MB)")




def init_app(app: Flask) -> None:
    """Install the header middleware, the 413 answer, download auditing and the OpenAPI document."""
    app.after_request(_audit_download)
    policy = content_security_policy(app.config.get("TILES", "osm"),
                                     bool(app.config.get("INTRANET")))
    app.wsgi_app = SecurityHeaders(app.wsgi_app, policy)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    from geoapp.web import openapi

    app.register_blueprint(openapi.bp)
