"""The one-map (一张图) overview: every layer switchable, legend, scale, measure, coordinates."""

from __future__ import annotations

from collections.abc import Mapping

import folium
import geopandas as gpd
import shapely

from geoapp.domain.vocab import Classification, SiteType, WorkshopStatus
from geoapp.maps import layers as L
from geoapp.maps.base import base_map
from geoapp.maps.legend import add_legend

#: Drawing order (bottom first) of the polygon zones.
ZONE_ORDER = ("eco_redline", "water_source_zones", "coal_ban_zones", "dense_area", "urban_core",
              "industrial_clusters", "chemical_parks")


def shift_for_tiles(gdf: gpd.GeoDataFrame, tiles: str) -> gpd.GeoDataFrame:
    """Amap tiles are GCJ-02: shift WGS84 overlays so they line up with the basemap."""
    if tiles != "amap" or gdf.empty:
        return gdf
    from geoapp.spatial.crs import wgs84_to_gcj02

    def _shift(coords):
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        coords = coords.copy()
        coords[:, 0], coords[:, 1] = lon, lat
        return coords

    out = gdf.copy()
    out["geometry"] = shapely.transform(out.geometry.values, _shift)
    return out


def overview_map(center: tuple[float, float], zoom: int, layers: Mapping[str, gpd.GeoDataFrame],
                 titles: Mapping[str, str], sites: gpd.GeoDataFrame | None, *, tiles: str = "osm",
                 tianditu_key: str = "",
                 bounds: tuple[float, float, float, float] | None = None) -> folium.Map:
    """Build the overview. ``center`` is (lat, lon); ``bounds`` (minx, miny, maxx, maxy) of
    the city, which the view fits; ``titles`` maps layer names to labels."""
    m = base_map(center, zoom, tiles, tianditu_key)
    if bounds is not None:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    shifted = {k: shift_for_tiles(v, tiles) for k, v in layers.items()}
    legend: list[tuple[str, str, str]] = []

    for name in ZONE_ORDER:
        if name in shifted:
            L.add_zone(m, name, shifted[name], titles.get(name, name),
                       show=name not in ("dense_area", "coal_ban_zones"))
            legend.append(("fill", L.ZONE_STYLES[name][0], titles.get(name, name)))
    if "hotspot_grids" in shifted:
        L.add_grids(m, shifted["hotspot_grids"], titles.get("hotspot_grids", "热点网格"))
        legend += [("outline", "#c00000", "重点监控网格 Key grid cell"),
                   ("outline", "#e6a000", "一般热点网格 Grid cell")]
    if "rivers" in shifted:
        L.add_lines(m, shifted["rivers"], titles.get("rivers", "河流"), "#2b7bba", 2.5)
        legend.append(("line", "#2b7bba", titles.get("rivers", "河流")))
    if "canal" in shifted:
        L.add_lines(m, shifted["canal"], titles.get("canal", "南水北调"), "#08306b", 4)
        legend.append(("line", "#08306b", titles.get("canal", "南水北调")))
    if "counties" in shifted:
        L.add_counties(m, shifted["counties"], titles.get("counties", "区县界"))
        legend.append(("line", "#333333", titles.get("counties", "区县界")))

    if sites is not None and not sites.empty:
        _add_sites(m, shift_for_tiles(L.label_classification(sites), tiles), legend)

    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    add_legend(m, "图例 Legend", legend)
    return m


def _add_sites(m: folium.Map, sites: gpd.GeoDataFrame, legend: list) -> None:
    ent = sites[sites["site_type"] == SiteType.ENTERPRISE]
    farms = sites[sites["site_type"] == SiteType.LIVESTOCK_FARM]
    shops = sites[sites["site_type"] == SiteType.SCATTERED_WORKSHOP]
    if not ent.empty:
        L.add_points(m, ent, f"{SiteType.ENTERPRISE.zh} ({len(ent)})", "classification",
                     L.CLASSIFICATION_COLOURS, "#1f77b4",
                     ["name", "district", "industry", "classification_zh", "stage_zh"],
                     ["企业名称", "辖区", "行业", "整治分类", "进展"], radius=6)
        for c in (Classification.RELOCATE, Classification.UPGRADE, Classification.CLOSE):
            legend.append(("point", L.CLASSIFICATION_COLOURS[c], f"企业·{c.zh}"))
    if not farms.empty:
        L.add_points(m, farms, f"{SiteType.LIVESTOCK_FARM.zh} ({len(farms)})", None, {},
                     L.FARM_COLOUR, ["name", "district", "species", "head_count"],
                     ["名称", "辖区", "畜种", "存栏"], radius=4)
        legend.append(("point", L.FARM_COLOUR, SiteType.LIVESTOCK_FARM.zh))
    if not shops.empty:
        L.add_points(m, shops, f"{SiteType.SCATTERED_WORKSHOP.zh} ({len(shops)})", "status",
                     L.WORKSHOP_COLOURS, "#ff7f0e", ["name", "district", "industry", "status_zh"],
                     ["名称", "辖区", "行业", "状态"], show=False, radius=4)
        for s in WorkshopStatus:
            legend.append(("point", L.WORKSHOP_COLOURS[s], f"散乱污·{s.zh}"))
