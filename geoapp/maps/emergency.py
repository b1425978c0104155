"""The emergency-list map: the enterprises on the 重污染天气应急减排清单 coloured by their
绩效分级, with a legend (rows not linked to a registered enterprise have no place and are
not drawn)."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd

from geoapp.domain.emergency import Grade
from geoapp.maps.base import Translate, base_map, identity, shift_for_tiles
from geoapp.maps.legend import add_legend
from geoapp.maps.points import add_fast_points


def emergency_map(frame: gpd.GeoDataFrame, *, center: tuple[float, float], zoom: int,
                  tiles: str = "osm", tianditu_key: str = "", link: Any = None,
                  cut_title: str = "", gettext: Translate = identity) -> folium.Map:
    """``frame``: one point per enterprise with ``id`` (the site), ``name``, ``grade`` (a
    stable code), ``county``, ``industry``, ``grade_label`` and ``cut_label`` (one level's
    cut, titled ``cut_title`` in the popup); ``link`` is the site page URL with ``{id}``;
    ``gettext`` translates the map's words."""
    _ = gettext
    if len(frame):
        center = (float(frame.geometry.y.mean()), float(frame.geometry.x.mean()))
    m = base_map(center, zoom, tiles, tianditu_key, gettext=_)
    cats = {g.value: (_(g.zh), g.colour) for g in Grade}
    if len(frame):
        add_fast_points(m, shift_for_tiles(frame, tiles), _("应急减排清单企业"),
                        colour_by="grade", categories=cats,
                        fields=[("county", _("县（市、区）")), ("industry", _("行业")),
                                ("grade_label", _("绩效分级")), ("cut_label", cut_title or _("限产比例(%)"))],
                        link=link, radius=6, tooltip=1, gettext=_)
    if len(frame) > 1:
        x0, y0, x1, y1 = frame.total_bounds
        m.fit_bounds([[float(y0), float(x0)], [float(y1), float(x1)]], padding=(20, 20))
    add_legend(m, _("绩效分级"), [("point", colour, label) for label, colour in cats.values()])
    folium.LayerControl(collapsed=True).add_to(m)
    return m
