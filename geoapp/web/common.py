"""What every route needs: the core object, a page with its map, and a file sent as a download.

Routes stay thin: they read the request, call one service and hand its answer to one of
these. Maps come from the services already built; :func:`render_map_page` only embeds them
(with this request's CSP nonce and, in intranet mode, local asset URLs).
"""

from __future__ import annotations

import io
import unicodedata
from urllib.parse import quote

from flask import Response, current_app, render_template, request, send_file, url_for

from geoapp.services import Geoapp, pagemap
from geoapp.web.security import csp_nonce

#: Characters RFC 5987 lets stand unescaped in ``filename*`` (attr-char).
_ATTR_CHARS = "!#$&+-.^_`|~"


def core() -> Geoapp:
    """The application core of this app (settings, repository, city, cached engine)."""
    return current_app.extensions["geoapp"]


def site_link() -> str:
    """The site page URL with an ``{id}`` placeholder, for popups built in the browser."""
    return request.script_root + "/sites/{id}"


def render_map_page(template: str, m, **context):
    """Render ``template`` with the map ``m`` (built by a service) embedded as header, html
    and script, and the city; every other keyword goes to the template."""
    parts = pagemap.embed(core(), m, lambda path: url_for("static", filename=path),
                          nonce=csp_nonce())
    return render_template(template, map=parts, city=core().city, **context)


def _ascii_name(filename: str) -> str:
    """A plain-ASCII stand-in for ``filename`` for clients that do not read ``filename*``:
    its ASCII letters, digits and ``-_`` (else ``download``) and its extension."""
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    plain = "".join(c for c in plain if c.isalnum() or c in "-_").strip("-_")
    ext = ext if ext.isascii() and ext.isalnum() else ""
    return (plain or "download") + (f".{ext}" if ext else "")


def content_disposition(filename: str, *, inline: bool = False,
                        ascii_name: str | None = None) -> str:
    """The ``Content-Disposition`` value (RFC 6266) naming ``filename``: a quoted ASCII
    ``filename`` for every client and, for any other name, ``filename*=UTF-8''…``."""
    kind = "inline" if inline else "attachment"
    safe = "".join(c for c in filename if c.isprintable() and c not in '"\\/')
    fallback = safe if safe.isascii() and safe else (ascii_name or _ascii_name(safe))
    value = f'{kind}; filename="{fallback}"'
    if not safe.isascii():
        value += f"; filename*=UTF-8''{quote(safe, safe=_ATTR_CHARS)}"
    return value


def send_download(data: bytes, filename: str, mimetype: str, *, inline: bool = False,
                  ascii_name: str | None = None) -> Response:
    """Send ``data`` as the file ``filename`` (any language) through ``flask.send_file``.

    ``inline`` asks the browser to show it (a PNG, a text) rather than save it;
    ``ascii_name`` is the name for clients that cannot read a Chinese one. Never cached
    (``no-store``: a download holds what only this account may see). Attachments leave an
    audit row (``web/security.py``).
    """
    resp = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=not inline,
                     download_name=filename, etag=False, conditional=False)
    resp.headers["Content-Disposition"] = content_disposition(filename, inline=inline,
                                                              ascii_name=ascii_name)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Type"] = mimetype  # send_file would add a second charset to text/*
    return resp
