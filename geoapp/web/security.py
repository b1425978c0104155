"""Security headers on every response, a clear answer to oversized uploads, and an audit row
for every file that leaves the system.

The Content-Security-Policy allows scripts only from 'self' (plus folium's CDNs outside
intranet mode) and inline scripts carrying this request's nonce: a fresh random nonce is made
for every request, put in the WSGI environ (templates read it as ``csp_nonce``) and in the
header, so a script injected through data never runs. No 'unsafe-inline', no 'unsafe-eval'
for scripts (the vendored leaflet-measure control is patched not to compile templates with
``new Function``). Styles keep 'unsafe-inline': Leaflet, folium and the legend write
``style`` attributes into the markup they build. Images may also come from the configured tile
server. Framing, foreign form targets, <base> hijacks and plugins are off.

HTML pages and JSON answers (and downloads) are ``Cache-Control: no-store``; with the
setting HSTS_MAX_AGE above 0, ``Strict-Transport-Security`` is sent too.
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask, Response, current_app, has_request_context, request
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header

from geoapp.services.audit import record_event
from geoapp.web import openapi
from geoapp.web.errors import render_error

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


#: Where the middleware puts the request's CSP nonce in the WSGI environ.
NONCE_KEY = "geoapp.csp_nonce"


def content_security_policy(tiles: str, intranet: bool, nonce: str = "") -> str:
    """The CSP for the configured basemap; without intranet mode folium's CDNs are allowed.

    ``nonce`` (this request's) lets the inline scripts carrying it run; without one no
    inline script runs at all.
    """
    intranet = intranet or tiles == "local"  # a local basemap serves every asset itself
    cdn = () if intranet else ("https://cdn.jsdelivr.net", "https://code.jquery.com",
                               "https://netdna.bootstrapcdn.com", "https://cdnjs.cloudflare.com",
                               "https://unpkg.com")
    hosts = " ".join(TILE_HOSTS.get(tiles, ()))
    extra = " ".join(cdn)
    inline = f"'nonce-{nonce}'" if nonce else ""
    parts = [
        "default-src 'self'",
        f"script-src 'self' {inline} {extra}".strip(),
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


def _no_store(content_type: str) -> bool:
    """HTML pages and JSON answers hold what an account may see: never kept by a cache."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime in ("text/html", "application/json") or mime.endswith("+json")


def csp_nonce() -> str:
    """This request's CSP nonce (for ``nonce="..."`` on inline scripts)."""
    if not has_request_context():
        return ""
    nonce = request.environ.get(NONCE_KEY)
    if not nonce:  # the app used without its middleware (a bare test_request_context)
        nonce = request.environ[NONCE_KEY] = secrets.token_urlsafe(16)
    return nonce


class SecurityHeaders:
    """WSGI middleware: every response gets the CSP (with a fresh nonce per request) and the
    other STATIC_HEADERS unless it set them itself; HTML, JSON, API answers and downloads get
    ``Cache-Control: no-store``.

    Done on the header list at ``start_response`` (plain list work, no per-header
    validation), so it also covers error pages and costs a few microseconds per request.
    """

    def __init__(self, wsgi_app, tiles: str, intranet: bool, hsts_max_age: int = 0) -> None:
        self.wsgi_app = wsgi_app
        marker = "NONCE"
        self.csp_head, self.csp_tail = content_security_policy(tiles, intranet,
                                                               marker).split(marker)
        pairs = dict(STATIC_HEADERS)
        if hsts_max_age > 0:
            pairs["Strict-Transport-Security"] = f"max-age={int(hsts_max_age)}"
        self.defaults = tuple((k.lower(), k, v) for k, v in pairs.items())

    def __call__(self, environ, start_response):
        api = environ.get("PATH_INFO", "").startswith("/api/")
        nonce = environ[NONCE_KEY] = secrets.token_urlsafe(16)
        csp = self.csp_head + nonce + self.csp_tail

        def _start(status, headers, exc_info=None):
            present = {k.lower(): v for k, v in headers}
            if "content-security-policy" not in present:
                headers.append(("Content-Security-Policy", csp))
            headers.extend((k, v) for low, k, v in self.defaults if low not in present)
            if "cache-control" not in present and (
                    api or "content-disposition" in present
                    or _no_store(present.get("content-type", ""))):
                headers.append(("Cache-Control", "no-store"))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, _start)


def _audit_download(resp: Response) -> Response:
    """Every attachment (ledger, weekly bulletin, layer, flagged file) leaves an audit row
    naming the file as the user's browser saves it (``filename*`` when there is one)."""
    disposition = resp.headers.get("Content-Disposition")
    if disposition is None or resp.status_code != 200:
        return resp
    kind, params = parse_options_header(disposition)
    if kind != "attachment" or not current_user.is_authenticated:
        return resp
    filename = params.get("filename", "")
    try:
        record_event(current_app.extensions["geoapp"], current_user.username, "export",
                     "download", request.endpoint or "",
                     {"path": request.path, "query": request.query_string.decode(
                         "utf-8", "replace")[:500], "file": filename})
    except Exception:  # an audit failure must not eat the user's download; it is logged
        log.exception("could not audit the download of %s", request.path)
    return resp


def _too_large(exc: RequestEntityTooLarge):
    mb = current_app.config.get("MAX_UPLOAD_MB")
    return render_error(413, "too_large", _("上传文件过大：上限为 %(mb)s MB（设置 MAX_UPLOAD_MB）",
                                            mb=mb))


def init_app(app: Flask) -> None:
    """Install the header middleware (and ``csp_nonce`` for templates), the 413 answer,
    download auditing and the OpenAPI document."""
    app.after_request(_audit_download)
    app.context_processor(lambda: {"csp_nonce": csp_nonce()})
    app.wsgi_app = SecurityHeaders(app.wsgi_app, app.config.get("TILES", "osm"),
                                   bool(app.config.get("INTRANET")),
                                   int(app.config.get("HSTS_MAX_AGE", 0) or 0))
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_blueprint(openapi.bp)
