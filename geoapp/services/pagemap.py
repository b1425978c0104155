"""How a page gets its map: the basemap the settings name, and a built map made ready for a
page (the request's CSP nonce; in intranet mode every asset served by the app itself).

The maps themselves are built by the use case that owns the data (``overview``,
``inspection``, ``weekly``, ``workshops``, ``relocation``) through :mod:`geoapp.maps`; the web
layer only embeds the parts returned here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from geoapp.maps.base import MapParts, page_parts
from geoapp.services.core import Geoapp


def basemap(app: Geoapp) -> tuple[str, str]:
    """(tiles, Tianditu key) from the settings; Tianditu without a key is no basemap."""
    tiles = app.settings.get("TILES") or "osm"
    key = app.settings.get("TIANDITU_KEY") or ""
    return ("none" if tiles == "tianditu" and not key else tiles), key


def embed(app: Geoapp, m: Any, static_url: Callable[[str], str], *,
          nonce: str = "") -> MapParts:
    """The map ``m`` as header, html and script for a page template: ``static_url`` turns a
    path under static/ into the URL the app serves it at (geoapp's own scripts always, the
    vendored Leaflet and plugins in intranet mode); ``nonce`` is the page's
    Content-Security-Policy nonce."""
    return page_parts(m, static_url, nonce=nonce, intranet=bool(app.settings.get("INTRANET")))
