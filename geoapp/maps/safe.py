"""Putting data into a map page without letting it become markup or script.

Every string that reaches a map comes from data someone typed or uploaded (feature names and
ids of uploaded layers, site names, ledger fields), so nothing here trusts it:

- :func:`script_json` writes a value as JSON that is safe *inside* an inline ``<script>``: a
  name holding ``</script>`` or ``<!--`` cannot end or confuse the script block.
- :class:`SafeGeoJsonTooltip` and :class:`SafeGeoJsonPopup` replace folium's GeoJsonTooltip
  and GeoJsonPopup, which paste property values into ``innerHTML``; these build the table
  with ``textContent``.
- :class:`TextTooltip` replaces a folium ``Tooltip`` made from a plain string (folium puts
  the string into a JavaScript template literal as HTML); the text is shown as text.
- :func:`control_name` is a layer's name for the LayerControl, which Leaflet shows as HTML.
- :class:`LiteralElement` puts text into a figure as it is. branca's ``Element(text)`` takes
  its argument as a *Jinja template*, and branca's ``MacroElement.render`` wraps every
  element's rendered header/html/script in such an ``Element`` — so a feature named
  ``{{7*7}}`` came out as ``49`` and one named ``{% if`` broke every map page: server-side
  template injection from uploaded data. Importing this module makes ``MacroElement``
  output literal (:func:`_render_literally`); every map module imports it through
  :mod:`geoapp.maps.base`.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from branca.element import Element, Figure, MacroElement
from folium.features import GeoJsonPopup, GeoJsonTooltip
from folium.map import Tooltip
from folium.template import Template

#: Replaced one by one: ``str.replace`` is about 15x faster than ``str.translate`` on the
#: megabytes of JSON a large point layer writes.
_SCRIPT_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                   ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


class LiteralElement(Element):
    """Text added to a figure verbatim (``branca.element.Element(text)`` would run it as a
    Jinja template)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "LiteralElement"
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


def _render_literally(self: MacroElement, **kwargs: Any) -> None:
    """``MacroElement.render`` as in branca 0.8, but the rendered macros are added to the
    figure as :class:`LiteralElement` instead of being parsed and rendered a second time."""
    figure = self.get_root()
    assert isinstance(figure, Figure), "You cannot render this Element if it is not in a Figure."
    macros = self._template.module.__dict__
    for part in ("header", "html", "script"):
        macro = macros.get(part)
        if macro is not None:
            getattr(figure, part).add_child(LiteralElement(macro(self, kwargs)),
                                            name=self.get_name())
    for element in self._children.values():
        element.render(**kwargs)


MacroElement.render = _render_literally


def script_json(value: Any, **kwargs: Any) -> str:
    """``value`` as compact JSON fit to sit in an inline script (and still valid JSON).

    ``<``, ``>`` and ``&`` become ``\\u003c``-style escapes, so no ``</script>``, ``<!--`` or
    ``]]>`` can appear; U+2028/U+2029 are escaped for older JavaScript engines.
    """
    kwargs.setdefault("ensure_ascii", False)
    kwargs.setdefault("separators", (",", ":"))
    text = json.dumps(value, **kwargs)
    for char, escaped in _SCRIPT_ESCAPES:
        text = text.replace(char, escaped)
    return text


def control_name(text: str) -> str:
    """A layer name as the LayerControl shows it (Leaflet inserts names as HTML)."""
    return escape(str(text), quote=False)


# The table of a feature's properties, built with textContent. ``labels`` shows the aliases
# as row headers; ``localize`` formats numbers in the browser's locale, as folium's did.
_DETAIL_JS = """function (layer) {
      var fields = {{ this.fields | tojson }}, aliases = {{ this.aliases | tojson }};
      var props = (layer.feature && layer.feature.properties) || {};
      var div = L.DomUtil.create('div', {{ this.class_name | tojson }});
      var table = L.DomUtil.create('table', '', div);
      fields.forEach(function (f, i) {
        var v = props[f], tr = table.insertRow();
        {% if this.labels %}var th = document.createElement('th');
        th.textContent = aliases[i];
        tr.appendChild(th);{% endif %}
        if (v === null || v === undefined) { v = ''; }
        else if (typeof v === 'object') { v = JSON.stringify(v); }
        {% if this.localize %}else if (typeof v === 'number') { v = v.toLocaleString(); }{% endif %}
        tr.insertCell().textContent = String(v);
      });
      return div;
    }"""


class SafeGeoJsonTooltip(GeoJsonTooltip):
    """folium's GeoJsonTooltip (same arguments), property values shown as text."""

    _template = Template("""
{% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.bindTooltip(""" + _DETAIL_JS + """,
      {{ this.tooltip_options | tojavascript }});
{% endmacro %}
""")


class SafeGeoJsonPopup(GeoJsonPopup):
    """folium's GeoJsonPopup (same arguments), property values shown as text."""

    _template = Template("""
{% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.bindPopup(""" + _DETAIL_JS + """,
      {{ this.popup_options | tojavascript }});
{% endmacro %}
""")


class TextTooltip(Tooltip):
    """A tooltip showing ``text`` as plain text (folium's Tooltip treats it as HTML)."""

    _template = Template("""
{% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.bindTooltip(function () {
      var div = document.createElement('div');
      div.textContent = {{ this.text_json }};
      return div;
    }, {{ this.options | tojavascript }});
{% endmacro %}
""")

    def __init__(self, text: str, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.text_json = script_json(str(text))
