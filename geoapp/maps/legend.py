"""A legend box drawn as a Leaflet control (collapsible on small screens)."""

from __future__ import annotations

from html import escape

import folium
from branca.element import MacroElement, Template

from geoapp.maps.safe import script_json

_TEMPLATE = """
{% macro script(this, kwargs) %}
(function() {
  var legend = L.control({position: 'bottomleft'});
  legend.onAdd = function () {
    var div = L.DomUtil.create('div', 'geoapp-legend');
    div.innerHTML = {{ this.html_json }};
    // On a phone the legend starts folded so the map stays visible.
    div.querySelector('details').open = window.innerWidth > 600;
    L.DomEvent.disableClickPropagation(div);
    return div;
  };
  legend.addTo({{ this._parent.get_name() }});
})();
{% endmacro %}
"""


class Legend(MacroElement):
    """Legend entries: (kind, colour, label) with kind in 'line', 'fill', 'point', 'outline'."""

    _template = Template(_TEMPLATE)

    def __init__(self, title: str, entries: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self._name = "Legend"
        rows = []
        for kind, colour, label in entries:
            c = escape(colour)
            if kind == "line":
                sw = f'<span class="lg-line" style="border-top:3px solid {c}"></span>'
            elif kind == "point":
                sw = f'<span class="lg-point" style="background:{c}"></span>'
            elif kind == "outline":
                sw = f'<span class="lg-fill" style="border:2px solid {c}"></span>'
            else:
                sw = f'<span class="lg-fill" style="background:{c};opacity:.6"></span>'
            rows.append(f'<div class="lg-row">{sw}<span>{escape(label)}</span></div>')
        html = (f'<details open><summary>{escape(title)}</summary>{"".join(rows)}</details>')
        self.html_json = script_json(html)


def add_legend(m: folium.Map, title: str, entries: list[tuple[str, str, str]]) -> None:
    Legend(title, entries).add_to(m)
