"""The one-map (一张图) overview: every layer switchable, legend, scale, measure, coordinates.

Layers arrive in EPSG:4326; with Amap tiles every overlay (zones, buffers, lines, grids and
sites) is shifted to GCJ-02 here, in one place, so nothing can be forgotten. Sites are drawn by
:mod:`geoapp.maps.points` (compact arrays on one canvas), which keeps a page with 10,000 sites
well under a megabyte.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import folium
import geopandas as gpd

from geoapp.domain.vocab import Classification, SiteType, Stage, WorkshopStatus
from geoapp.maps import layers as L
from geoapp.maps.base import base_map, shift_for_tiles
from geoapp.maps.legend import add_legend
from geoapp.maps.points import add_fast_points
from geoapp.maps.weekly import add_complaints

__all__ = ["ZONE_ORDER", "overview_map", "shift_for_tiles"]

log = logging.getLogger(__name__)

#: Drawing order (bottom first) of the polygon zones.
ZONE_ORDER = ("eco_redline", "water_source_zones", "coal_ban_zones", "dense_area", "urban_core",
              "industrial_clusters", "chemical_parks")

Translate = Callable[[str], str]


def _identity(text: str) -> str:
    return text


def overview_map(center: tuple[float, float], zoom: int, layers: Mapping[str, gpd.GeoDataFrame],
                 titles: Mapping[str, str], sites: gpd.GeoDataFrame | None, *, tiles: str = "osm",
                 tianditu_key: str = "",
                 bounds: tuple[float, float, float, float] | None = None,
                 zones: gpd.GeoDataFrame | None = None,
                 hits: Mapping[str, list[tuple[str, float, str]]] | None = None,
                 rules: Mapping[str, tuple[str, str]] | None = None,
                 site_link: str | None = None,
                 units_layer: str | None = None,
                 gettext: Translate | None = None,
                 complaints: Any = None) -> folium.Map:
    """Build the overview. ``center`` is (lat, lon); ``bounds`` (minx, miny, maxx, maxy) of
    the city, which the view fits; ``titles`` maps layer names to labels.

    ``zones`` is the stored ``exclusion_zones`` layer (one buffer per distance rule becomes a
    switchable layer); ``hits`` and ``rules`` (see :func:`geoapp.maps.points.hits_by_site`)
    put each site's rule hits in its popup; ``site_link`` is the site page URL with ``{id}``;
    ``units_layer`` names the layer of 三线一单 control units (drawn at the bottom, switched
    off); ``gettext`` translates the map's own labels (identity by default); ``complaints``
    (``services.complaints.ComplaintPoints``) adds the 12369 complaints, a layer per category.
    """
    _ = gettext or _identity
    m = base_map(center, zoom, tiles, tianditu_key, gettext=_)
    if bounds is not None:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    shifted = {k: shift_for_tiles(v, tiles) for k, v in layers.items()}
    legend: list[tuple[str, str, str]] = []

    if units_layer and units_layer in shifted:
        L.add_units(m, shifted[units_layer], titles.get(units_layer, _("环境管控单元")),
                    show=False, gettext=_)
        legend += [("fill", colour, _(category))
                   for category, (colour, _opacity) in L.UNIT_STYLES.items()]
    if "counties" in shifted:
        L.add_counties(m, shifted["counties"], titles.get("counties", _("区县界")), gettext=_)
        legend.append(("line", "#333333", titles.get("counties", _("区县界"))))
    for name in ZONE_ORDER:
        if name in shifted:
            L.add_zone(m, name, shifted[name], titles.get(name, name),
                       show=name not in ("dense_area", "coal_ban_zones"), gettext=_)
            legend.append(("fill", L.ZONE_STYLES[name][0], titles.get(name, name)))
    if "hotspot_grids" in shifted:
        L.add_grids(m, shifted["hotspot_grids"], titles.get("hotspot_grids", _("热点网格")),
                    gettext=_)
        legend += [("outline", "#c00000", _("重点监控网格")),
                   ("outline", "#e6a000", _("一般热点网格"))]
    if zones is not None and not zones.empty:
        _add_buffers(m, shift_for_tiles(zones, tiles), legend, _)
    if "rivers" in shifted:
        L.add_lines(m, shifted["rivers"], titles.get("rivers", _("河流")), "#2b7bba", 2.5,
                    gettext=_)
        legend.append(("line", "#2b7bba", titles.get("rivers", _("河流"))))
    if "canal" in shifted:
        L.add_lines(m, shifted["canal"], titles.get("canal", _("南水北调")), "#08306b", 4,
                    gettext=_)
        legend.append(("line", "#08306b", titles.get("canal", _("南水北调"))))

    if sites is not None and not sites.empty:
        _add_sites(m, shift_for_tiles(sites, tiles), legend, _, hits=hits, rules=rules,
                   link=site_link)

    if complaints is not None:
        legend += add_complaints(m, complaints, tiles=tiles, gettext=_, site_link=link_of(
            site_link))

    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    add_legend(m, _("图例"), legend)
    return m


def link_of(site_link: str | None) -> str | None:
    """The site page URL with ``{id}`` (None: no links)."""
    return site_link if site_link and "{id}" in site_link else None


def buffer_title(row: Mapping, _: Translate = _identity) -> str:
    """Layer name of one rule buffer: the rule's title and its distance."""
    return f"{_('缓冲区')}·{row['title_zh']}（{int(row['distance_m'])}{_('米')}）"


def _add_buffers(m: folium.Map, zones: gpd.GeoDataFrame, legend: list, _: Translate) -> None:
    """One switchable layer per distance rule, water rules first (grouped by source layer)."""
    within = zones[zones["test"] == "within_distance"]
    order = {"rivers": 0, "canal": 1, "yellow_river": 2}
    within = within.assign(_o=within["layer"].map(order).fillna(9)).sort_values(
        ["_o", "distance_m"], kind="stable")
    for row in within.to_dict("records"):
        colour = L.BUFFER_COLOURS.get(row["layer"], "#7f7f7f")
        title = buffer_title(row, _)
        L.add_rule_zones(m, zones, title, row["rule_id"], colour, gettext=_,
                         show=row.get("show_on_map") in (True, 1))  # the rule's show_on_map
        legend.append(("outline", colour, title))


def _labelled(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = sites.copy()
    if "stage" in out:
        out["stage_zh"] = out["stage"].map({s.value: s.zh for s in Stage}).fillna("")
    return out


def _add_sites(m: folium.Map, sites: gpd.GeoDataFrame, legend: list, _: Translate, *,
               hits, rules, link) -> None:
    sites = _labelled(sites)
    common = {"hits": hits if hits is not None else None, "rules": rules, "link": link,
              "gettext": _}
    by_type = {t: sites[sites["site_type"] == t] for t in SiteType}

    ent = by_type[SiteType.ENTERPRISE]
    if not ent.empty:
        cats = {c.value: (c.zh, L.CLASSIFICATION_COLOURS[c]) for c in Classification}
        add_fast_points(m, ent, f"{SiteType.ENTERPRISE.zh} ({len(ent)})",
                        colour_by="classification", categories=cats,
                        default=(_("未分类"), "#1f77b4"), radius=6,
                        fields=[("district", _("辖区")), ("industry", _("行业")),
                                ("stage_zh", _("进展")), ("progress", _("进展情况"))],
                        **common)
        for c in (Classification.RELOCATE, Classification.UPGRADE, Classification.CLOSE):
            legend.append(("point", L.CLASSIFICATION_COLOURS[c], f"{_('企业')}·{c.zh}"))
    farms = by_type[SiteType.LIVESTOCK_FARM]
    if not farms.empty:
        add_fast_points(m, farms, f"{SiteType.LIVESTOCK_FARM.zh} ({len(farms)})",
                        default=(SiteType.LIVESTOCK_FARM.zh, L.FARM_COLOUR), radius=4,
                        fields=[("district", _("辖区")), ("species", _("畜种")),
                                ("head_count", _("存栏")), ("scale", _("规模"))],
                        **common)
        legend.append(("point", L.FARM_COLOUR, SiteType.LIVESTOCK_FARM.zh))
    shops = by_type[SiteType.SCATTERED_WORKSHOP]
    if not shops.empty:
        cats = {s.value: (s.zh, L.WORKSHOP_COLOURS[s]) for s in WorkshopStatus}
        add_fast_points(m, shops, f"{SiteType.SCATTERED_WORKSHOP.zh} ({len(shops)})",
                        colour_by="status", categories=cats, default=("", "#ff7f0e"),
                        radius=4, show=False,
                        fields=[("district", _("辖区")), ("industry", _("行业")),
                                ("found_date", _("发现日期"))],
                        **common)
        for s in WorkshopStatus:
            legend.append(("point", L.WORKSHOP_COLOURS[s], f"{_('散乱污')}·{s.zh}"))
