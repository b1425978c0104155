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
        self._conditions: dict[Condition, np.ndarray] = {}
        self._masks: dict[Any, np.ndarray] = {}

    def condition(self, cond: Condition) -> np.ndarray:
        """Rows meeting one condition (memoised: rules share conditions; do not modify)."""
        found = self._conditions.get(cond)
        if found is not None:
            return found
        if cond.attr not in self.raw:
            out = np.zeros(self.n, dtype=bool)
        else:
            if cond.attr not in self._codes:
                values = self.raw[cond.attr]
                if np.ndim(values) == 0:
                    values = np.full(self.n, values, dtype=object)
                self._codes[cond.attr] = pd.factorize(np.asarray(values, dtype=object))
            codes, uniques = self._codes[cond.attr]
            table = np.zeros(len(uniques) + 1, dtype=bool)  # last slot: missing (code -1)
            table[:-1] = [cond.matches(u) for u in uniques]
            out = table[codes]
        self._conditions[cond] = out
        return out

    def mask(self, rule: RuleSpec) -> np.ndarray:
        """Rows the rule's filter selects (memoised per filter; do not modify)."""
        key = rule.applies_to.clauses
        found = self._masks.get(key)
        if found is not None:
            return found
        out = np.zeros(self.n, dtype=bool)
        for clause in rule.applies_to.clauses:
            if not clause:
                out[:] = True
                continue
            part = self.condition(clause[0]).copy()
            for cond in clause[1:]:
                part &= self.condition(cond)
            out |= part
        self._masks[key] = out
        return out


class HitTables:
    """Every text a hit row can carry (rule ids, feature ids and names, severities), each
    as one pandas array, so the result's text columns are gathered with ``take`` instead
    of being inferred again from object arrays on every call."""

    def __init__(self, engine: RuleEngine) -> None:
        rules = list(engine.rules)
        self.rule_ids = _text_array([r.id for r in rules])
        layers = list(engine.layer_names)
        sizes = [len(engine._features[n]["id"]) for n in layers]
        self.feature_offset = dict(zip(layers, np.cumsum([0] + sizes[:-1]).tolist(),
                                       strict=True))
        self.feature_ids = _text_array([v for n in layers for v in engine._features[n]["id"]])
        self.feature_names = _text_array([v for n in layers
                                          for v in engine._features[n]["name"]])
        sev = [engine._rule_severity[r.id] for r in rules]
        self.severity_offset = dict(zip([r.id for r in rules],
                                        np.cumsum([0] + [len(v) for v in sev[:-1]]).tolist(),
                                        strict=True))
        self.severities = _text_array([v for a in sev for v in a])


def _text_array(values: list) -> Any:
    """The pandas array a DataFrame column of these values would hold (str dtype, NaN for
    None, under pandas 3)."""
    flat = np.empty(len(values), dtype=object)  # 1-d whatever the values look like
    flat[:] = values
    return pd.Series(flat).array


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
    finite = {k: np.isfinite(p[0]) & np.isfinite(p[1]) for k, p in points.items()}
    groups: dict[tuple[str, str], list[tuple[RuleSpec, np.ndarray]]] = {}
    for rule in engine.rules:
        kind = rule.applies_to.point
        if kind not in points:
            continue
        mask = attrs.mask(rule) & finite[kind]
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
    parts: list[tuple[np.ndarray, ...]] = []
    order = {r.id: i for i, r in enumerate(engine.rules)}
    texts = engine._hit_tables
    for layer, kind, members, radius, sel in plan:
        x, y = xy[kind]
        m = engine.index[layer].measure(x[sel], y[sel], cells[kind][sel], radius)
        ground = engine._ground(points[kind][0][sel], points[kind][1][sel], x[sel], y[sel], m)
        feature_offset = texts.feature_offset[layer]
        for rule, mask in members:
            if rule.test == "within_distance":
                decided = ground <= rule.distance_m
            elif rule.test == "inside":
                decided = m.inside
            else:
                decided = ~m.inside
            hit = mask[sel] & (m.feat >= 0) & decided
            f = m.feat[hit]
            parts.append((sel[hit], np.full(len(f), order[rule.id], dtype=np.int64),
                          f + feature_offset,
                          np.round(np.where(m.inside[hit], 0.0, ground[hit]), 1),
                          f + texts.severity_offset[rule.id]))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            HIT_COLUMNS, ["int64", object, object, object, "float64", object], strict=True)})
    row, rule_no, feat, dist, sev = (np.concatenate(c) for c in zip(*parts, strict=True))
    by = np.argsort(row * len(engine.rules) + rule_no, kind="stable")  # by site, then rule
    feat = feat[by]
    out = pd.DataFrame({"row": row[by].astype(np.int64),
                        "rule_id": texts.rule_ids.take(rule_no[by]),
                        "feature_id": texts.feature_ids.take(feat),
                        "feature_name": texts.feature_names.take(feat),
                        "distance_m": dist[by], "severity": texts.severities.take(sev[by])})
    log.debug("flagged %d sites: %d hits", n, len(out))
    return out
