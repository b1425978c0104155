"""How a page gets its map: the basemap the settings name, and a built map made ready for a
page (the request's CSP nonce; in intranet mode every asset served by the app itself), or
for a file opened from disk (every asset and the city's own base layers inside the file).

The maps themselves are built by the use case that owns the data (``overview``,
``inspection``, ``weekly``, ``workshops``, ``relocation``) through :mod:`geoapp.maps`; the web
layer only embeds the parts returned here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from geoapp.maps.assets import standalone_document
from geoapp.maps.base import MapParts, local_tiles_of, page_parts, set_local_tiles
from geoapp.services import basemap as local_basemap
from geoapp.services.core import Geoapp


def basemap(app: Geoapp) -> tuple[str, str]:
    """(tiles, Tianditu key) from the settings; Tianditu without a key is no basemap."""
    tiles = app.settings.get("TILES") or "osm"
    key = app.settings.get("TIANDITU_KEY") or ""
    return ("none" if tiles == "tianditu" and not key else tiles), key


def tiles_root(static_url: Callable[[str], str]) -> str:
    """The URL of the app's ``/tiles`` route, beside its static files (so an app served under
    a path prefix asks its own prefix): ``/static/x`` -> ``/tiles``."""
    probe = static_url("__probe__")
    head = probe[: -len("__probe__")].rstrip("/")
    return head.rsplit("/", 1)[0] + "/tiles" if "/" in head else "/tiles"


def embed(app: Geoapp, m: Any, static_url: Callable[[str], str], *,
          nonce: str = "") -> MapParts:
    """The map ``m`` as header, html and script for a page template: ``static_url`` turns a
    path under static/ into the URL the app serves it at (geoapp's own scripts always, the
    vendored Leaflet and plugins in intranet mode); ``nonce`` is the page's
    Content-Security-Policy nonce. A local basemap (TILES=local) is pointed at the app's own
    ``/tiles`` with the archive's zooms and bounds. TILES=local means a network with no
    internet, so it serves every asset from the app, as intranet mode does."""
    if local_tiles_of(m):
        set_local_tiles(m, local_basemap.page_spec(app, tiles_root(static_url)))
    return page_parts(m, static_url, nonce=nonce, intranet=local_assets(app))


def local_assets(app: Geoapp) -> bool:
    """True when every map asset must come from the app: INTRANET on, or TILES=local."""
    return bool(app.settings.get("INTRANET")) or app.settings.get("TILES") == "local"


def standalone(app: Geoapp, m: Any, *, place_labels: bool = True) -> str:
    """The map ``m`` (built with tiles ``local``) as one HTML document that needs nothing but
    itself: Leaflet, its plugins, geoapp's scripts and styles inlined, and the city's own
    base layers (outline, counties, urban core, rivers, canal, county names) carried as
    GeoJSON, so it shows the city opened from disk on a machine with no network. A map that
    labels the counties itself (the weekly bulletin's) passes ``place_labels=False``, so
    the names are not drawn twice."""
    layers = local_basemap.inline_base(app)
    if not place_labels:
        layers.pop("places", None)
    set_local_tiles(m, {"mode": "inline", "layers": layers})
    return standalone_document(m.get_root())
