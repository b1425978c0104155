"""Intranet mode: point every script and stylesheet folium asks for at static/vendor/.

folium and its plugins name CDN URLs in ``default_js`` / ``default_css``. A bureau's intranet
has no internet (and CDNs are often blocked), so with INTRANET on, each known URL is replaced
by the local copy vendored by ``scripts/vendor-assets.sh``. An unknown CDN URL is an error, so
a new plugin cannot silently reintroduce a network dependency.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from pathlib import Path

from branca.element import Element

log = logging.getLogger(__name__)

#: CDN URL -> path under static/ (None: not needed by geoapp's pages, dropped).
LOCAL_ASSETS: dict[str, str | None] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "vendor/leaflet/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "vendor/leaflet/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "vendor/jquery/jquery.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js":
        "vendor/bootstrap/bootstrap.bundle.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css":
        "vendor/bootstrap/bootstrap.min.css",
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": None,
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js":
        "vendor/awesome-markers/leaflet.awesome-markers.js",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css":
        "vendor/awesome-markers/leaflet.awesome-markers.css",
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css":
        "vendor/fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css":
        None,
    "https://cdn.jsdelivr.net/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.js":
        "vendor/leaflet-measure/leaflet-measure.js",
    "https://cdn.jsdelivr.net/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.css":
        "vendor/leaflet-measure/leaflet-measure.css",
    "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js":
        "vendor/leaflet-fullscreen/Control.FullScreen.js",
    "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css":
        "vendor/leaflet-fullscreen/Control.FullScreen.css",
    "https://cdn.jsdelivr.net/gh/ardhi/Leaflet.MousePosition/src/L.Control.MousePosition.min.js":
        "vendor/mouse-position/L.Control.MousePosition.js",
    "https://cdn.jsdelivr.net/gh/ardhi/Leaflet.MousePosition/src/L.Control.MousePosition.min.css":
        "vendor/mouse-position/L.Control.MousePosition.css",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js":
        "vendor/markercluster/leaflet.markercluster.js",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css":
        "vendor/markercluster/MarkerCluster.css",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css":
        "vendor/markercluster/MarkerCluster.Default.css",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.js":
        "vendor/leaflet-draw/leaflet.draw.js",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.css":
        "vendor/leaflet-draw/leaflet.draw.css",
}


#: geoapp's own browser code under static/ (written here, on no CDN). A folium element names
#: one as ``own_asset(path)``; pages and standalone files resolve it in every mode.
OWN_PREFIX = "geoapp-static:"
OWN_ASSETS = ("js/geoapp-points.js", "css/geoapp-points.css", "js/geoapp-basemap.js",
              "css/geoapp-basemap.css", "vendor/protomaps-leaflet/protomaps-leaflet.js")


class UnknownAsset(RuntimeError):
    """A folium element asks for a CDN file that has no local copy."""


def own_asset(path: str) -> str:
    """The URL a folium element gives for one of :data:`OWN_ASSETS`."""
    if path not in OWN_ASSETS:
        raise UnknownAsset(f"{path} is not one of geoapp's own assets {OWN_ASSETS}")
    return OWN_PREFIX + path


def _walk(element: Element):
    yield element
    for child in list(getattr(element, "_children", {}).values()):
        yield from _walk(child)


def _localize(pairs: list[tuple[str, str]], static_url: Callable[[str], str],
              cdn: bool = True) -> list[tuple[str, str]]:
    out = []
    for name, url in pairs:
        if url.startswith(OWN_PREFIX):
            out.append((name, static_url(url[len(OWN_PREFIX):])))
            continue
        if not cdn or not url.startswith(("http://", "https://")):
            out.append((name, url))
            continue
        if url not in LOCAL_ASSETS:
            raise UnknownAsset(f"no local copy of {url} ({name}); add it to scripts/vendor-assets.sh "
                               "and geoapp.maps.assets.LOCAL_ASSETS")
        local = LOCAL_ASSETS[url]
        if local is not None:
            out.append((name, static_url(local)))
    return out


def localize_assets(root: Element, static_url: Callable[[str], str], *, cdn: bool = True) -> None:
    """Rewrite the JS/CSS links of ``root`` and all its children to local static files: geoapp's
    own assets always, the CDN ones too unless ``cdn`` is false (INTRANET off)."""
    for el in _walk(root):
        for attr in ("default_js", "default_css"):
            pairs = getattr(el, attr, None)
            if pairs:
                setattr(el, attr, _localize(list(pairs), static_url, cdn))


def static_root() -> Path:
    """static/ at the top of the checkout, or inside the installed wheel."""
    pkg = Path(__file__).resolve().parent.parent
    for cand in (pkg / "static", pkg.parent / "static"):
        if cand.is_dir():
            return cand
    return pkg.parent / "static"


_INLINE_PREFIX = "geoapp-inline:"
_INLINE_SCRIPT = re.compile(r'<script[^>]*\bsrc="geoapp-inline:([^"]+)"[^>]*>\s*</script>')
_INLINE_LINK = re.compile(r'<link[^>]*\bhref="geoapp-inline:([^"]+)"[^>]*/?>')
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^)'"]*)\1\s*\)""")
#: Images a stylesheet names that are written into the file (small icons and sprites).
_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}
_MAX_IMAGE = 32 * 1024
LEAFLET_JS = "vendor/leaflet/leaflet.js"


def _data_uri(path: Path) -> str | None:
    kind = _IMAGE_TYPES.get(path.suffix.lower())
    if kind is None or not path.is_file() or path.stat().st_size > _MAX_IMAGE:
        return None
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _marker_icons(base: Path) -> str:
    """A script run right after Leaflet: its default marker icons as data URIs (Leaflet
    would look for them beside its stylesheet, which a file from disk does not have)."""
    images = base / "vendor" / "leaflet" / "images"
    icons = {"iconUrl": "marker-icon.png", "iconRetinaUrl": "marker-icon-2x.png",
             "shadowUrl": "marker-shadow.png"}
    opts = ",".join(f'{k}:"{_data_uri(images / v) or ""}"' for k, v in icons.items())
    return f'<script>\nL.Icon.Default.imagePath="";L.Icon.Default.mergeOptions({{{opts}}});\n</script>'


def standalone_document(root: Element) -> str:
    """``root`` (a folium figure) as one HTML document that asks nothing from any server:
    every script and stylesheet — Leaflet and its plugins (the vendored copies of the CDN
    files), geoapp's own — written into the file, the small images the stylesheets name
    (layer switcher, toolbar sprites) and Leaflet's marker icons as data URIs. Fonts and
    bigger images the stylesheets name are dropped (``none``): icon glyphs may be missing,
    the map is not. An unknown CDN URL is an error, as in intranet mode."""
    localize_assets(root, lambda p: _INLINE_PREFIX + p, cdn=True)
    html = root.render()
    base = static_root()

    def script(match: re.Match) -> str:
        text = (base / match.group(1)).read_text(encoding="utf-8")
        out = "<script>\n" + text.replace("</script", "<\\/script") + "\n</script>"
        return out + _marker_icons(base) if match.group(1) == LEAFLET_JS else out

    def style(match: re.Match) -> str:
        sheet = base / match.group(1)

        def url(m: re.Match) -> str:
            ref = m.group(2)
            if ref.startswith("data:"):
                return m.group(0)
            uri = _data_uri(sheet.parent / ref.split("?")[0].split("#")[0])
            return f'url("{uri}")' if uri else "none"

        text = _CSS_URL.sub(url, sheet.read_text(encoding="utf-8"))
        return "<style>\n" + text.replace("</style", "<\\/style") + "\n</style>"

    html = _INLINE_SCRIPT.sub(script, html)
    html = _INLINE_LINK.sub(style, html)
    if _INLINE_PREFIX in html:
        raise UnknownAsset("a standalone map still names an asset it could not inline")
    return html
