"""Batch flagging: every rule against many sites, vectorised over the sites.

Loops run over rules and layers only. Per (layer, point kind) the sites any rule concerns are
gathered; the grid drops those that cannot be within reach before anything is projected; the
rest are measured once and each rule of the layer applies its own test to the same figures.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geoapp.domain.rules import Condition, RuleSpec
from geoapp.spatial.index import INSIDE_TOLERANCE_M, SEARCH_SLACK

if TYPE_CHECKING:
    from geoapp.spatial.engine import RuleEngine

log = logging.getLogger(__name__)

HIT_COLUMNS = ["row", "rule_id", "feature_id", "feature_name", "distance_m", "severity"]


class _Columns:
    """Site attribute columns, factorised once so a condition is an integer ``isin``."""

    def __init__(self, columns: Mapping[str, Any], n: int) -> None:
        self.n = n
        self.raw = {k: v for k, v in columns.items() if v is not None}
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def condition(self, cond: Condition) -> np.ndarray:
        if cond.attr not in self.raw:
            return np.zeros(self.n, dtype=bool)
        if cond.attr not in self._codes:
            values = self.raw[cond.attr]
            if np.ndim(values) == 0:
                values = np.full(self.n, values, dtype=object)
            self._codes[cond.attr] = pd.factorize(np.asarray(values, dtype=object))
        codes, uniques = self._codes[cond.attr]
        table = np.zeros(len(uniques) + 1, dtype=bool)  # last slot: missing (code -1)
        table[:-1] = [cond.matches(u) for u in uniques]
        return table[codes]

    def mask(self, rule: RuleSpec) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for clause in rule.applies_to.clauses:
            part = np.ones(self.n, dtype=bool)
            for cond in clause:
                part &= self.condition(cond)
            out |= part
        return out


def search_radius(rule: RuleSpec) -> float:
    """How far (projected metres) to look so the ground-distance decision is exact."""
    if rule.test == "within_distance":
        return float(rule.distance_m) * SEARCH_SLACK + 1.0
    return np.inf if rule.test == "not_inside" else 2 * INSIDE_TOLERANCE_M


def flag_sites(engine: RuleEngine, lon: np.ndarray, lat: np.ndarray,
               columns: Mapping[str, Any]) -> pd.DataFrame:
    """Implementation of ``RuleEngine.flag`` (see there)."""
    n = len(lon)
    cols = dict(columns)
    points = {"site": (lon, lat)}
    if cols.get("new_lon") is not None and cols.get("new_lat") is not None:
        points["new_site"] = (np.asarray(cols.pop("new_lon"), dtype=float),
                              np.asarray(cols.pop("new_lat"), dtype=float))
    attrs = _Columns(cols, n)
    groups: dict[tuple[str, str], list[tuple[RuleSpec, np.ndarray]]] = {}
    for rule in engine.rules:
        kind = rule.applies_to.point
        if kind not in points:
            continue
        plon, plat = points[kind]
        mask = attrs.mask(rule) & np.isfinite(plon) & np.isfinite(plat)
        if mask.any():
            groups.setdefault((rule.layer, kind), []).append((rule, mask))
    cells = {k: engine.grid.cells(*p) for k, p in points.items()}
    plan = []
    need = {k: np.zeros(n, dtype=bool) for k in points}
    for (layer, kind), members in groups.items():
        index = engine.index[layer]
        radius = engine._layer_radius[layer]
        idx = np.flatnonzero(np.logical_or.reduce([m for _, m in members]))
        c = cells[kind][idx]
        cc = np.where(c >= 0, c, 0)
        cover = np.where(c >= 0, index.cover[cc], -1) >= 0
        reach = (c < 0) | cover | (index.lower_bound[cc] <= radius)
        sel = idx[reach]
        need[kind][idx[reach & ~cover]] = True
        plan.append((layer, kind, members, radius, sel))
    xy = {}
    for kind, (plon, plat) in points.items():
        x, y = np.full(n, np.nan), np.full(n, np.nan)
        todo = np.flatnonzero(need[kind])
        if len(todo):
            x[todo], y[todo] = engine._fwd.transform(plon[todo], plat[todo])
        xy[kind] = (x, y)
    frames = []
    order = {r.id: i for i, r in enumerate(engine.rules)}
    for layer, kind, members, radius, sel in plan:
        x, y = xy[kind]
        m = engine.index[layer].measure(x[sel], y[sel], cells[kind][sel], radius)
        ground = engine._ground(points[kind][0][sel], points[kind][1][sel], x[sel], y[sel], m)
        table = engine._features[layer]
        for rule, mask in members:
            if rule.test == "within_distance":
                decided = ground <= rule.distance_m
            elif rule.test == "inside":
                decided = m.inside
            else:
                decided = ~m.inside
            hit = mask[sel] & (m.feat >= 0) & decided
            f = m.feat[hit]
            frames.append(pd.DataFrame({
                "row": sel[hit],
                "rule_id": rule.id,
                "feature_id": table["id"][f],
                "feature_name": table["name"][f],
                "distance_m": np.round(np.where(m.inside[hit], 0.0, ground[hit]), 1),
                "severity": engine._rule_severity[rule.id][f],
                "_order": order[rule.id],
            }))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            HIT_COLUMNS, ["int64", object, object, object, "float64", object], strict=True)})
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["row", "_order"], kind="stable").drop(columns="_order")
    log.debug("flagged %d sites: %d hits", n, len(out))
    return out.reset_index(drop=True)
