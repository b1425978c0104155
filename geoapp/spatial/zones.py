"""Exclusion zones per rule, as polygons for maps and exports.

These are *drawings* of the rules: a buffer polygon approximates each arc by chords, so it is
slightly inside the true zone. Verdicts never use them; the engine measures distances.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import shapely

from geoapp.domain.rules import RuleSet

log = logging.getLogger(__name__)

#: Segments per quarter circle of a buffer: the chord error at 2 km is then under 2.5 m.
QUAD_SEGS = 16


def exclusion_zones(rules: RuleSet, projected: Mapping[str, np.ndarray], metric_crs: str,
                    geographic_crs) -> gpd.GeoDataFrame:
    """One dissolved zone per rule: within_distance rules buffered by their distance; inside
    rules their polygons; not_inside rules the allowed area (``test`` tells them apart).
    ``show_on_map`` is the rule's own flag: the overview map opens with that zone on."""
    rows = []
    for rule in rules:
        geoms = np.asarray(projected.get(rule.layer, np.empty(0, dtype=object)), dtype=object)
        geoms = geoms[~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)] \
            if len(geoms) else geoms
        if len(geoms) == 0:
            continue
        if rule.test == "within_distance":
            zone = shapely.union_all(shapely.buffer(geoms, rule.distance_m, quad_segs=QUAD_SEGS))
        else:
            parts = shapely.get_parts(geoms)
            zone = shapely.union_all(parts[shapely.get_type_id(parts) == 3])
        if zone.is_empty:
            continue
        rows.append({"rule_id": rule.id, "title_zh": rule.title_zh, "title_en": rule.title_en,
                     "test": rule.test, "layer": rule.layer, "distance_m": rule.distance_m,
                     "show_on_map": rule.show_on_map, "geometry": zone})
    cols = ["rule_id", "title_zh", "title_en", "test", "layer", "distance_m", "show_on_map"]
    frame = gpd.GeoDataFrame(rows, columns=[*cols, "geometry"], geometry="geometry",
                             crs=metric_crs)
    log.debug("built %d exclusion zones", len(frame))
    return frame.to_crs(geographic_crs)
