"""One parcel's check as a PNG for the report, drawn on the server with matplotlib.

Drawn in the city's metric CRS (so the scale bar is true): the parts of the parcel each
control unit covers (by category colour), the parts each restricted layer feature covers
(hatched, labelled with the feature and its ground area), the shortest line to the nearest
feature of each rule layer the parcel does not touch (labelled with the ground distance),
and the parcel's outline on top, with a legend, a north arrow and a scale bar.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer

from geoapp.domain.units import category_colour
from geoapp.exports.fonts import cjk_font_properties
from geoapp.exports.mapimage import fill, north_arrow, rings, scale_bar
from geoapp.spatial.crs import WGS84

WIDTH_PX = 1200
HEIGHT_PX = 1000
DPI = 150
PARCEL_COLOUR = "#d62728"
PIECE_COLOUR = "#ff7f0e"
LINK_COLOUR = "#1f4e79"
CONTEXT_FILL = "#c9b3d9"
CONTEXT_EDGE = "#7b5a94"
WATER_COLOUR = "#3a7bd5"
#: Lines to features further than this are left off the map (they would shrink the parcel).
MAX_LINK_M = 3000.0


def _metric(geom: Any, tr: Transformer) -> Any:
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _mark(n: int) -> str:
    """①…⑳ for the first twenty overlaps, then (21), (22)…"""
    return chr(0x2460 + n - 1) if n <= 20 else f"({n})"


def render_parcel_png(parcel_lonlat: Any, drawing: Mapping[str, Any], path: str | Path, *,
                      metric_crs: str, title: str) -> Path:
    """Draw one parcel and what its check found (``services.parcels.drawing``) to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    tr = Transformer.from_crs(WGS84, metric_crs, always_xy=True)
    parcel = _metric(parcel_lonlat, tr)
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, 0.04, 0.94, 0.86))
    font = cjk_font_properties(8)
    handles = []
    seen_categories = set()
    for u in drawing.get("units", []):
        colour = category_colour(u.get("category"))
        fill(ax, [_metric(u["geometry"], tr)], 1, facecolors=colour, alpha=0.25,
             edgecolors=colour, linewidths=0.8)
        if u.get("category") not in seen_categories:
            seen_categories.add(u.get("category"))
            handles.append(Patch(facecolor=colour, alpha=0.4, edgecolor=colour,
                                 label=f"{u.get('category') or ''}单元"))
    context = drawing.get("features", [])
    for feat in context:
        geom = _metric(feat["geometry"], tr)
        polys = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
        lines = [shapely.get_coordinates(g) for g in shapely.get_parts(geom)
                 if g.geom_type in ("LineString", "LinearRing")]
        if polys:
            fill(ax, polys, 1, facecolors=CONTEXT_FILL, alpha=0.35, edgecolors=CONTEXT_EDGE,
                 linewidths=0.8)
        if lines:
            ax.add_collection(LineCollection(lines, colors=WATER_COLOUR, linewidths=1.6,
                                             zorder=3))
        label_at = geom.representative_point() if polys else (
            shapely.line_interpolate_point(geom, 0.5, normalized=True)
            if geom.geom_type in ("LineString", "MultiLineString") else None)
        if label_at is not None and not label_at.is_empty:
            ax.text(label_at.x, label_at.y, feat.get("feature_name") or feat["layer"],
                    fontproperties=font, color="#555555", ha="center", va="center", zorder=3,
                    alpha=0.9, clip_on=True)
    if context:
        handles.append(Patch(facecolor=CONTEXT_FILL, alpha=0.5, edgecolor=CONTEXT_EDGE,
                             label="管控要素"))
    notes = []
    for n, piece in enumerate(drawing.get("pieces", []), start=1):
        geom = _metric(piece["geometry"], tr)
        fill(ax, [geom], 2, facecolors="none", edgecolors=PIECE_COLOUR, hatch="///",
             linewidths=0.8)
        p = geom.representative_point()
        mark = _mark(n)
        ax.text(p.x, p.y, mark, fontproperties=cjk_font_properties(11), ha="center",
                va="center", zorder=6, clip_on=True,
                bbox={"boxstyle": "circle,pad=0.1", "fc": "white", "ec": PIECE_COLOUR})
        notes.append(f"{mark} {piece.get('feature_name') or piece['layer']}："
                     f"{piece['area_m2']:,.1f} m²")
    if drawing.get("pieces"):
        handles.append(Patch(facecolor="none", edgecolor=PIECE_COLOUR, hatch="///",
                             label="与管控图层重叠部分"))
    links = [lk for lk in drawing.get("links", []) if lk["distance_m"] <= MAX_LINK_M]
    for lk in links:
        line = _metric(lk["geometry"], tr)
        xy = shapely.get_coordinates(line)
        ax.add_collection(LineCollection([xy], colors=LINK_COLOUR, linewidths=1.0,
                                         linestyles="--", zorder=4))
        mid = xy.mean(axis=0)
        ax.text(mid[0], mid[1], f"{lk.get('feature_name') or lk['layer']} "
                f"{lk['distance_m']:,.1f} m", fontproperties=font, color=LINK_COLOUR,
                ha="center", va="bottom", zorder=6, clip_on=True)
    if links:
        handles.append(Patch(facecolor="none", edgecolor=LINK_COLOUR, linestyle="--",
                             label="至最近管控要素的最短距离"))
    ax.add_collection(LineCollection(rings([parcel]), colors=PARCEL_COLOUR, linewidths=2.0,
                                     zorder=5))
    handles.insert(0, Patch(facecolor="none", edgecolor=PARCEL_COLOUR, linewidth=2,
                            label="地块（用地红线）"))
    geoms = [parcel] + [_metric(lk["geometry"], tr) for lk in links]
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geoms, dtype=object))
    span = max(maxx - minx, maxy - miny, 50.0)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = span * 0.6
    ax.set_xlim(cx - half, cx + half)
    ax.set_ylim(cy - half * HEIGHT_PX / WIDTH_PX * 0.94 / 0.86,
                cy + half * HEIGHT_PX / WIDTH_PX * 0.94 / 0.86)
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()
    ax.legend(handles=handles, loc="lower left", prop=cjk_font_properties(8),
              title="图例", title_fontproperties=cjk_font_properties(9), framealpha=0.9)
    fig.text(0.5, 0.95, title, ha="center", va="center", fontproperties=cjk_font_properties(13))
    if notes:
        ax.text(0.01, 0.99, "重叠部分 Overlaps\n" + "\n".join(notes), transform=ax.transAxes,
                fontproperties=font, ha="left", va="top", zorder=8,
                bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "#999999",
                      "alpha": 0.9})
    north_arrow(ax)
    scale_bar(ax)
    path = Path(path)
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return path


__all__ = ["render_parcel_png"]
