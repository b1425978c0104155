"""The weekly bulletin's interactive map (folium): a page element and a standalone file.

``map.html`` is e-mailed around, so it must open on its own. By default it uses folium's CDN
links for Leaflet and friends (the smallest file, and the normal case for a recipient with
internet). With INTRANET on, every script and stylesheet is read from the vendored copies
under static/vendor/ and written into the file itself, so it also opens on a machine with no
internet at all (icon fonts are the only thing that may then be missing).
"""

from __future__ import annotations

import logging
import re
from html import escape
from pathlib import Path
from typing import Any

import folium
from branca.element import MacroElement
from folium.template import Template

from geoapp.domain.bulletin import COUNT_CLASSES, KEY_COLOUR, count_colour
from geoapp.domain.complaints import CATEGORY_STYLE
from geoapp.domain.vocab import ComplaintCategory
from geoapp.maps.assets import localize_assets
from geoapp.maps.base import Translate, base_map, identity, shift_for_tiles
from geoapp.maps.layers import geojson_dict
from geoapp.maps.legend import add_legend
from geoapp.maps.points import FastPoints
from geoapp.maps.safe import LiteralElement, SafeGeoJsonTooltip, control_name, script_json

log = logging.getLogger(__name__)

_LOCAL = "geoapp-static:"
_SCRIPT_RE = re.compile(r'<script src="geoapp-static:([^"]+)"></script>')
_LINK_RE = re.compile(r'<link rel="stylesheet" href="geoapp-static:([^"]+)"/>')


def weekly_map(report: Any, *, tiles: str = "osm", tianditu_key: str = "",
               gettext: Translate = identity, site_link: str | None = None) -> folium.Map:
    """Counties, every grid cell (warned ones coloured by count, key ones outlined), the
    week's 12369 complaints (one switchable layer per category, see :func:`add_complaints`),
    a title, a legend and a scale bar; the view fits the city. ``gettext`` translates its
    words; ``site_link`` (a URL with ``{id}``) links the suspected sources in the popups."""
    _ = gettext
    counties = shift_for_tiles(report.counties, tiles)
    grids = shift_for_tiles(report.grids, tiles)
    minx, miny, maxx, maxy = counties.total_bounds
    m = base_map(((miny + maxy) / 2, (minx + maxx) / 2), 10, tiles, tianditu_key, gettext=_)
    _add_counties(m, counties, report, _)
    _add_grids(m, grids, _)
    entries = [("fill", "#eeeeee", _("无预警网格")), ("outline", KEY_COLOUR, _("重点监控网格"))]
    entries += [("fill", c, f"{_('预警')} {label}") for _low, c, label in COUNT_CLASSES]
    entries.append(("line", "#333333", _("区县界")))
    located = getattr(report, "complaint_points", None)
    if located is not None:
        entries += add_complaints(m, located, tiles=tiles, gettext=_, site_link=site_link)
        folium.LayerControl(collapsed=True, position="topright").add_to(m)
    add_legend(m, f"{report.week} {_('热点网格预警')}", entries)
    title = (f'<div class="weekly-map-title" style="position:absolute;top:8px;left:50%;'
             f'transform:translateX(-50%);z-index:800;background:rgba(255,255,255,.9);'
             f'padding:4px 10px;border-radius:4px;font-size:14px;text-align:center">'
             f'{escape(str(report.title))}<br><small>{escape(str(report.date_range))}</small>'
             f'</div>')
    m.get_root().html.add_child(LiteralElement(title))
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def _add_counties(m: folium.Map, counties, report: Any, _) -> None:
    counts = dict(zip(report.per_county["county"], report.per_county["count"], strict=True))
    gdf = counties.copy()
    gdf["warnings"] = gdf["name"].map(counts).fillna(0).astype(int)
    folium.GeoJson(
        geojson_dict(gdf, ["name", "warnings"]), name=_("区县界"),
        style_function=lambda f: {"color": "#333333", "weight": 1.5, "dashArray": "6 4",
                                  "fillOpacity": 0.0},
        tooltip=SafeGeoJsonTooltip(fields=["name", "warnings"],
                                   aliases=[_("区县"), _("预警次数")]),
    ).add_to(m)
    for name, geom in zip(gdf["name"], gdf.geometry, strict=True):
        p = geom.representative_point()
        folium.Marker([p.y, p.x], icon=folium.DivIcon(
            html=f'<div class="weekly-county-label" style="font-size:12px;white-space:nowrap;'
                 f'transform:translate(-50%,-50%);color:#222">{escape(str(name))}</div>'),
        ).add_to(m)


def _add_grids(m: folium.Map, grids, _) -> None:
    gdf = grids.copy()
    gdf["key_label"] = gdf["key"].map({True: _("重点监控"), False: _("一般")})
    data = geojson_dict(gdf, ["code", "county", "key", "key_label", "count", "streak"])

    def style(f):
        p = f["properties"]
        fill = count_colour(int(p.get("count") or 0))
        key = bool(p.get("key"))
        return {"color": KEY_COLOUR if key else "#9a9a9a", "weight": 2.5 if key else 0.8,
                "fillColor": fill or "#eeeeee", "fillOpacity": 0.75 if fill else 0.25}

    folium.GeoJson(
        data, name=_("热点网格"), style_function=style,
        tooltip=SafeGeoJsonTooltip(
            fields=["code", "county", "key_label", "count", "streak"],
            aliases=[_("网格编号"), _("区县"), _("类别"), _("本周预警次数"), _("连续预警周数")]),
    ).add_to(m)


#: Above this many located complaints a map draws them as one canvas layer per category
#: (:class:`geoapp.maps.points.FastPoints`) instead of a marker each: 20,000 markers froze a
#: browser for over a minute. The popups keep the time, number, summary and suspected
#: sources (as text, without links).
MARKER_LIMIT = 1000

_COMPLAINTS_JS = """
{% macro script(this, kwargs) %}
(function () {
  var d = {{ this.data_json }}, group = {{ this._parent.get_name() }};
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  d.items.forEach(function (it) {
    var badge = el('span', 'geoapp-complaint cat-' + d.category, d.glyph);
    badge.style.cssText = 'display:flex;align-items:center;justify-content:center;' +
      'width:20px;height:20px;border-radius:50%;border:2px solid #fff;color:#fff;' +
      'font-size:11px;font-weight:bold;box-shadow:0 0 2px rgba(0,0,0,.6);background:' +
      d.colour;
    badge.setAttribute('data-complaint', it[2]);
    var icon = L.divIcon({html: badge, className: 'geoapp-complaint-icon',
                          iconSize: [24, 24], iconAnchor: [12, 12], popupAnchor: [0, -10]});
    var marker = L.marker([it[0], it[1]], {icon: icon, title: d.label + ' ' + it[3]});
    marker.bindPopup(function () {
      var div = el('div', 'geoapp-complaint-popup');
      div.appendChild(el('strong', '', d.words.title + '·' + d.label));
      var t = el('table'), rows = [[d.words.time, it[3]], [d.words.id, it[2]],
                                    [d.words.summary, it[4]]];
      rows.forEach(function (r) {
        var tr = t.insertRow(), th = el('th', '', r[0]);
        tr.appendChild(th);
        tr.insertCell().textContent = r[1];
      });
      div.appendChild(t);
      div.appendChild(el('div', 'cp-sources-title', d.words.sources));
      if (!it[5].length) {
        div.appendChild(el('div', 'cp-none', d.words.none));
      } else {
        var ul = el('ul', 'cp-sources');
        it[5].forEach(function (s) {
          var li = el('li');
          li.setAttribute('data-site', s[0]);
          if (d.link) {
            var a = el('a', '', s[1]);
            a.href = d.link.replace('{id}', encodeURIComponent(s[0]));
            a.target = '_top';
            li.appendChild(a);
          } else {
            li.appendChild(el('span', '', s[1]));
          }
          li.appendChild(document.createTextNode('（' + s[2] + '）' + s[3] + ' ' + d.words.m));
          ul.appendChild(li);
        });
        div.appendChild(ul);
      }
      return div;
    }, {maxWidth: 300, autoPanPaddingTopLeft: [10, 70]});
    marker.addTo(group);
  });
})();
{% endmacro %}
"""


class _ComplaintMarkers(MacroElement):
    """One category's complaints as markers in their FeatureGroup; every text reaches the
    page as JSON and is shown with ``textContent`` (summaries are typed by the public)."""

    _template = Template(_COMPLAINTS_JS)

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__()
        self._name = "ComplaintMarkers"
        self.data_json = script_json(payload)


_NOTE_JS = """
{% macro script(this, kwargs) %}
(function () {
  var note = L.control({position: 'bottomright'});
  note.onAdd = function () {
    var div = L.DomUtil.create('div', 'geoapp-complaint-note');
    div.style.cssText = 'background:rgba(255,255,255,.9);padding:2px 8px;' +
      'border-radius:4px;font-size:12px;max-width:60vw';
    div.textContent = {{ this.text_json }};
    return div;
  };
  note.addTo({{ this._parent.get_name() }});
})();
{% endmacro %}
"""


class _ComplaintNote(MacroElement):
    """How many complaints there were and how many had no coordinates, as a map control."""

    _template = Template(_NOTE_JS)

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "ComplaintNote"
        self.text_json = script_json(text)


def add_complaints(m: folium.Map, located: Any, *, tiles: str = "osm",
                   gettext: Translate = identity, site_link: str | None = None,
                   show: bool = True) -> list[tuple[str, str, str]]:
    """12369 complaints as markers, one switchable layer per category (colour and glyph from
    :data:`geoapp.domain.complaints.CATEGORY_STYLE`), each with a popup: time, category,
    number, summary and its suspected sources with their distance. ``located`` is a
    ``services.complaints.ComplaintPoints``; complaints without coordinates are not drawn,
    a note on the map says how many. Returns the legend entries."""
    _ = gettext
    points = located.points
    if len(points):
        points = shift_for_tiles(points, tiles)
    words = {"title": _("12369投诉"), "time": _("时间"), "id": _("编号"),
             "summary": _("内容"), "sources": _("疑似污染源（%(r)s米内）").replace(
                 "%(r)s", str(located.radius_m)),
             "none": _("范围内无登记的相关点位"), "m": _("米")}
    entries: list[tuple[str, str, str]] = []
    canvas = len(points) > MARKER_LIMIT
    for cat in ComplaintCategory:
        colour, glyph = CATEGORY_STYLE[cat.value]
        sel = points[points["category"] == cat.value] if len(points) else points
        label = _(cat.zh)
        name = f"{_('12369投诉')}·{label} ({len(sel)})"
        if canvas:
            _fast_complaints(sel, name, label, colour, words, _, show=show).add_to(m)
            entries.append(("point", colour, name))
            continue
        group = folium.FeatureGroup(name=control_name(name), show=show)
        items = [[round(g.y, 6), round(g.x, 6), str(i), t, sm,
                  [[s["id"], s["name"], _(s["type"]), s["distance_m"]] for s in src]]
                 for g, i, t, sm, src in zip(sel.geometry, sel["id"], sel["time"],
                                             sel["summary"], sel["sources"], strict=True)]
        _ComplaintMarkers({"category": cat.value, "colour": colour, "glyph": glyph,
                           "label": label, "words": words, "link": site_link,
                           "items": items}).add_to(group)
        group.add_to(m)
        entries.append(("point", colour, name))
    note = f"{_('12369投诉')} {located.total} {_('件')}"
    first, last = getattr(located, "first_week", None), getattr(located, "last_week", None)
    if first is not None and last is not None and first != last:
        note = f"{first}–{last} {note}"
    if located.unlocated:
        note += f"，{located.unlocated} {_('件无坐标，未上图')}"
    _ComplaintNote(note).add_to(m)
    return entries


def _fast_complaints(sel: Any, name: str, label: str, colour: str, words: dict[str, str],
                     _: Translate, *, show: bool) -> FastPoints:
    """One category's complaints as a canvas layer (many complaints): the popup has the
    time, number, summary and the suspected sources as text."""
    frame = sel[["id", "time", "summary", "geometry"]].copy()
    frame["sources_text"] = [
        _("、").join(f"{s['name']}（{_(s['type'])}）{s['distance_m']} {words['m']}"
                    for s in src) or words["none"] for src in sel["sources"]]
    return FastPoints.from_frame(
        frame, name, show=show, default=(label, colour), name_field=None,
        fields=[("time", words["time"]), ("summary", words["summary"]),
                ("sources_text", words["sources"])],
        id_label=words["id"], category_label="", gettext=_, radius=5,
        popup_class="geoapp-complaint-popup")


def static_dir() -> Path:
    """static/ at the top of the checkout, or inside the installed wheel."""
    pkg = Path(__file__).resolve().parent.parent
    for cand in (pkg / "static", pkg.parent / "static"):
        if cand.is_dir():
            return cand
    return pkg.parent / "static"


def standalone_html(m: folium.Map, *, intranet: bool = False) -> str:
    """The map as one HTML document: geoapp's own scripts and styles inlined from static/,
    and with ``intranet`` every other asset too (else those stay CDN links)."""
    localize_assets(m.get_root(), lambda p: _LOCAL + p, cdn=intranet)
    html = m.get_root().render()
    root = static_dir()

    def inline(kind: str):
        def repl(match: re.Match) -> str:
            text = (root / match.group(1)).read_text(encoding="utf-8")
            text = text.replace("</script", "<\\/script") if kind == "script" else text
            return f"<{kind}>\n{text}\n</{kind}>"
        return repl

    html = _SCRIPT_RE.sub(inline("script"), html)
    return _LINK_RE.sub(inline("style"), html)


def write_weekly_html(report: Any, path: str | Path, *, intranet: bool = False,
                      tiles: str = "osm", tianditu_key: str = "") -> Path:
    """Write the standalone weekly map to ``path``."""
    path = Path(path)
    m = weekly_map(report, tiles=tiles, tianditu_key=tianditu_key)
    path.write_text(standalone_html(m, intranet=intranet), encoding="utf-8")
    return path
