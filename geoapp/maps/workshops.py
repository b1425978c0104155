"""The 散乱污 register map: workshops coloured by status, and the suspected relapses (a new
find near a banned workshop) as dashed lines between the two."""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd
import pandas as pd
import shapely

from geoapp.domain.vocab import WorkshopStatus
from geoapp.maps.base import Translate, base_map, identity, shift_for_tiles
from geoapp.maps.layers import WORKSHOP_COLOURS
from geoapp.maps.legend import add_legend
from geoapp.maps.points import add_fast_points
from geoapp.maps.safe import TextTooltip

RELAPSE_COLOUR = "#b3141b"


def workshops_map(frame: gpd.GeoDataFrame, relapses: pd.DataFrame, *, zoom: int,
                  tiles: str = "osm", tianditu_key: str = "", link: Any = None,
                  gettext: Translate = identity) -> folium.Map:
    """Workshops coloured by status (``link``: the site page URL with ``{id}``) and the
    relapse lines; ``gettext`` translates the map's words."""
    _ = gettext
    m = base_map((float(frame.geometry.y.mean()), float(frame.geometry.x.mean())), zoom,
                 tiles, tianditu_key, gettext=_)
    cats = {s.value: (s.zh, WORKSHOP_COLOURS[s]) for s in WorkshopStatus}
    pts = shift_for_tiles(frame, tiles).assign(
        status_zh=[WorkshopStatus(s).zh for s in frame["status"]])
    add_fast_points(m, pts, _("散乱污作坊"), colour_by="status", categories=cats,
                    fields=[("district", _("辖区")), ("status_zh", _("状态")),
                            ("found_date", _("排查日期")), ("banned_date", _("取缔日期"))],
                    link=link, radius=5, gettext=_)
    if len(relapses):
        _add_relapses(m, relapses, tiles, _("疑似死灰复燃"))
    add_legend(m, _("散乱污"),
               [*[("point", colour, label) for label, colour in cats.values()],
                ("line", RELAPSE_COLOUR, _("疑似死灰复燃"))])
    folium.LayerControl(collapsed=True).add_to(m)
    return m


def _add_relapses(m: folium.Map, rel: pd.DataFrame, tiles: str, name: str) -> None:
    # A handful of lines: one PolyLine each in a group (folium's GeoJson layer evaluates
    # generated code at run time, which the page's Content-Security-Policy forbids).
    group = folium.FeatureGroup(name=name)
    lines = shift_for_tiles(gpd.GeoDataFrame(
        {"label": [f"{a} → {b}：{d:.0f} m" for a, b, d in
                   zip(rel["name"], rel["banned_name"], rel["distance_m"], strict=True)]},
        geometry=shapely.linestrings(
            [[(a, b), (c, d)] for a, b, c, d in
             zip(rel["lon"], rel["lat"], rel["banned_lon"], rel["banned_lat"], strict=True)]),
        crs=4326), tiles)
    for label, geom in zip(lines["label"], lines.geometry, strict=True):
        line = folium.PolyLine([(y, x) for x, y in geom.coords], color=RELAPSE_COLOUR,
                               weight=3, dash_array="6 4")
        TextTooltip(label).add_to(line)  # workshop names are data: shown as text
        line.add_to(group)
    group.add_to(m)
