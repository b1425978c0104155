"""The weekly map as a PNG, drawn on the server with matplotlib (Agg, no browser).

The PNG goes into the Word bulletin and is sent around on its own, so it carries everything a
reader needs without the interactive map: every grid cell, key cells outlined, warned cells
coloured by their count, county boundaries and names, a legend, a north arrow, a scale bar and
a title with the date range. It is drawn in the city's metric CRS so the scale bar is true.
The figure is built without pyplot (no global state), which keeps web requests thread-safe.
matplotlib is imported by the drawing functions: it adds about 0.5 s to the start of every
process that loads this module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geoapp.domain.bulletin import COUNT_CLASSES, KEY_COLOUR, count_colour
from geoapp.exports.fonts import cjk_font_properties

log = logging.getLogger(__name__)

WIDTH_PX = 1200
HEIGHT_PX = 1300
DPI = 150
_NICE_KM = (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)


def render_png(report: Any, path: str | Path, *, metric_crs: str) -> Path:
    """Draw ``report`` (a WeeklyReport) to ``path``; WIDTH_PX x HEIGHT_PX pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, 0.04, 0.94, 0.84))
    grids = report.grids.to_crs(metric_crs)
    counties = report.counties.to_crs(metric_crs)
    _draw(ax, grids, counties)
    _decorate(fig, ax, report, grids)
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    log.debug("map image %s", path)
    return path


def rings(geoms) -> list:
    """Exterior and interior rings of (multi)polygons as coordinate arrays."""
    parts = shapely.get_parts(np.asarray(geoms, dtype=object))
    rings = [shapely.get_exterior_ring(parts)]
    n_int = shapely.get_num_interior_rings(parts)
    for i in range(int(n_int.max()) if len(n_int) else 0):
        rings.append(shapely.get_interior_ring(parts[n_int > i], i))
    return [shapely.get_coordinates(r) for group in rings for r in group]


def fill(ax, geoms, zorder: int, **style) -> None:
    """Polygons as one collection: geopandas' plot redraws the whole figure per call."""
    from matplotlib.collections import PolyCollection

    ax.add_collection(PolyCollection(rings(geoms), zorder=zorder, **style))


def _draw(ax, grids, counties) -> None:
    from matplotlib.collections import LineCollection

    fill(ax, counties.geometry, 1, facecolors="#fbfbf8", edgecolors="none")
    fill(ax, grids.geometry, 2, facecolors="#eeeeee", edgecolors="#9a9a9a", linewidths=0.4)
    warned = grids[grids["count"] > 0]
    if len(warned):
        for geom, count in zip(warned.geometry, warned["count"], strict=True):
            fill(ax, [geom], 3, facecolors=count_colour(int(count)), edgecolors="#555555",
                  linewidths=0.5)
    key = grids[grids["key"]]
    if len(key):
        fill(ax, key.geometry, 4, facecolors="none", edgecolors=KEY_COLOUR, linewidths=1.6)
    ax.add_collection(LineCollection(rings(counties.geometry), colors="#333333",
                                     linewidths=0.9, linestyles="--", zorder=5))
    font = cjk_font_properties(9)
    for name, geom in zip(counties["name"], counties.geometry, strict=True):
        p = geom.representative_point()
        ax.text(p.x, p.y, str(name), fontproperties=font, ha="center", va="center",
                color="#222222", zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.6})
    minx, miny, maxx, maxy = counties.total_bounds
    pad = 0.03 * max(maxx - minx, maxy - miny)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _decorate(fig, ax, report, grids) -> None:
    from matplotlib.patches import Patch

    fig.text(0.5, 0.955, report.title, ha="center", va="center",
             fontproperties=cjk_font_properties(15))
    fig.text(0.5, 0.915, f"{report.date_range}（{report.week}）", ha="center", va="center",
             fontproperties=cjk_font_properties(11), color="#333333")
    handles = [Patch(facecolor="#eeeeee", edgecolor="#9a9a9a", label="热点网格（无预警）"),
               Patch(facecolor="none", edgecolor=KEY_COLOUR, linewidth=1.6,
                     label="重点监控网格")]
    handles += [Patch(facecolor=c, edgecolor="#555555", label=f"预警 {label}")
                for _, c, label in COUNT_CLASSES]
    handles.append(Patch(facecolor="none", edgecolor="#333333", linestyle="--",
                         label="区县界"))
    ax.legend(handles=handles, loc="upper left", prop=cjk_font_properties(8),
              title="图例", title_fontproperties=cjk_font_properties(9), framealpha=0.9)
    north_arrow(ax)
    scale_bar(ax)


def north_arrow(ax) -> None:
    """A north arrow in the top right corner (in a Gauss-Krüger zone grid north is up)."""
    ax.annotate("北\nN", xy=(0.95, 0.97), xytext=(0.95, 0.86), xycoords="axes fraction",
                ha="center", va="center", fontproperties=cjk_font_properties(10),
                arrowprops={"facecolor": "black", "width": 3, "headwidth": 10})


def scale_bar(ax) -> None:
    """A scale bar of a round length near a fifth of the map width (axes in metres)."""
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    target = (x1 - x0) / 5 / 1000
    km = max([k for k in _NICE_KM if k <= target] or [_NICE_KM[0]])
    length = km * 1000
    bx, by, h = x1 - (x1 - x0) * 0.05 - length, y0 + (y1 - y0) * 0.04, (y1 - y0) * 0.008
    for i in range(2):
        ax.add_patch(Rectangle((bx + i * length / 2, by), length / 2, h, zorder=7,
                               facecolor="black" if i == 0 else "white", edgecolor="black"))
    for frac, label in ((0, "0"), (1, f"{km * 1000:g} m" if km < 1 else f"{km:g} km")):
        ax.text(bx + frac * length, by + 2.2 * h, label, ha="center", va="bottom", zorder=7,
                fontproperties=cjk_font_properties(8))
