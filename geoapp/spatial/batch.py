"""Batch flagging: every rule against many sites, vectorised over the sites.

Loops run over rules and layers only. Per (layer, point kind) the sites any rule concerns (or
may concern: see ``domain.rules.applicability_masks``) are gathered; the grid drops those that
cannot be within reach before anything is projected; the rest are measured once and each rule
of the layer applies its own test (``domain.rules.hit_mask``) to the same figures.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geoapp.domain.rules import (
    IMPLIED_ATTRS,
    Condition,
    RuleSpec,
    applicability_masks,
    checked_at,
    hit_mask,
    is_missing,
)
from geoapp.spatial.index import INSIDE_TOLERANCE_M, SEARCH_SLACK

if TYPE_CHECKING:
    from geoapp.spatial.engine import RuleEngine

log = logging.getLogger(__name__)

HIT_COLUMNS = ["row", "rule_id", "feature_id", "feature_name", "distance_m", "severity",
               "conditional", "point"]
POINTS = ("site", "new_site")


class _Columns:
    """Site attribute columns, factorised once so a condition is an integer ``isin``.

    Attributes a site kind implies (``domain.rules.IMPLIED_ATTRS``: a livestock farm's
    industry) are filled in where missing, as the single-point check does.
    """

    def __init__(self, columns: Mapping[str, Any], n: int) -> None:
        self.n = n
        self.raw = {k: v for k, v in columns.items() if v is not None}
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._conditions: dict[Condition, np.ndarray] = {}
        self._missing: dict[str, np.ndarray] = {}
        self._masks: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
        self._fill_implied()

    def _factorized(self, attr: str) -> tuple[np.ndarray, np.ndarray]:
        if attr not in self._codes:
            values = self.raw[attr]
            if np.ndim(values) == 0:
                values = np.full(self.n, values, dtype=object)
            self._codes[attr] = pd.factorize(np.asarray(values, dtype=object))
        return self._codes[attr]

    def _fill_implied(self) -> None:
        if "site_type" not in self.raw:
            return
        codes, uniques = self._factorized("site_type")
        for kind, implied in IMPLIED_ATTRS.items():
            found = [i for i, u in enumerate(uniques) if str(u).strip() == kind]
            if not found:
                continue
            rows = np.isin(codes, found)
            for attr, value in implied.items():
                todo = rows & self.missing(attr)
                if not todo.any():
                    continue
                col = self.raw.get(attr)
                filled = (np.full(self.n, None, dtype=object) if col is None
                          else np.array(np.broadcast_to(np.asarray(col, dtype=object), self.n)))
                filled[todo] = value
                self.raw[attr] = filled
                self._codes.pop(attr, None)
                self._missing.pop(attr, None)

    def missing(self, attr: str) -> np.ndarray:
        """Rows without the attribute: no column, None/NaN or blank text (memoised)."""
        found = self._missing.get(attr)
        if found is not None:
            return found
        if attr not in self.raw:
            out = np.ones(self.n, dtype=bool)
        else:
            codes, uniques = self._factorized(attr)
            table = np.ones(len(uniques) + 1, dtype=bool)  # last slot: code -1 (NaN/None)
            table[:-1] = [is_missing(u) for u in uniques]
            out = table[codes]
        self._missing[attr] = out
        return out

    def condition(self, cond: Condition) -> np.ndarray:
        """Rows meeting one condition (memoised: rules share conditions; do not modify)."""
        found = self._conditions.get(cond)
        if found is not None:
            return found
        if cond.attr not in self.raw:
            out = np.zeros(self.n, dtype=bool)
        else:
            codes, uniques = self._factorized(cond.attr)
            table = np.zeros(len(uniques) + 1, dtype=bool)  # last slot: missing (code -1)
            table[:-1] = [cond.matches(u) for u in uniques]
            out = table[codes]
        self._conditions[cond] = out
        return out

    def masks(self, rule: RuleSpec) -> tuple[np.ndarray, np.ndarray]:
        """(applies, conditional): rows the rule's filter selects, rows it may select if a
        missing attribute had the value it names (memoised per filter; do not modify)."""
        key = rule.applies_to.clauses
        found = self._masks.get(key)
        if found is None:
            found = applicability_masks(rule.applies_to, self.n, self.condition, self.missing)
            self._masks[key] = found
        return found

    def mask(self, rule: RuleSpec) -> np.ndarray:
        """Rows the rule's filter surely selects (memoised per filter; do not modify)."""
        return self.masks(rule)[0]


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
        self.points = _text_array(list(POINTS))


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
    new_lon, new_lat = cols.pop("new_lon", None), cols.pop("new_lat", None)
    if new_lon is not None and new_lat is not None:
        points["new_site"] = (np.broadcast_to(np.asarray(new_lon, dtype=float), n),
                              np.broadcast_to(np.asarray(new_lat, dtype=float), n))
    attrs = _Columns(cols, n)
    finite = {k: np.isfinite(p[0]) & np.isfinite(p[1]) for k, p in points.items()}
    groups: dict[tuple[str, str], list[tuple[RuleSpec, np.ndarray, np.ndarray]]] = {}
    for kind in points:
        for rule in engine.rules:
            if not checked_at(rule, kind):
                continue
            sure, maybe = attrs.masks(rule)
            mask = (sure | maybe) & finite[kind]
            if mask.any():
                groups.setdefault((rule.layer, kind), []).append((rule, mask, maybe))
    cells = {k: engine.grid.cells(*p) for k, p in points.items()}
    plan = []
    need = {k: np.zeros(n, dtype=bool) for k in points}
    for (layer, kind), members in groups.items():
        index = engine.index[layer]
        radius = engine._layer_radius[layer]
        idx = np.flatnonzero(np.logical_or.reduce([m for _, m, _ in members]))
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
        point_no = POINTS.index(kind)
        for rule, mask, maybe in members:
            hit = hit_mask(rule.test, rule.distance_m, ground, m.inside, m.feat)
            hit &= mask[sel]
            rows = sel[hit]
            f = m.feat[hit]
            parts.append((rows, np.full(len(f), order[rule.id] * 2 + point_no, dtype=np.int64),
                          f + feature_offset,
                          np.round(np.where(m.inside[hit], 0.0, ground[hit]), 1),
                          f + texts.severity_offset[rule.id], maybe[rows]))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            HIT_COLUMNS, ["int64", object, object, object, "float64", object, bool, object],
            strict=True)})
    row, key, feat, dist, sev, cond = (np.concatenate(c) for c in zip(*parts, strict=True))
    # by site, then point (site first), then rule
    by = np.argsort(row * (2 * len(engine.rules)) + (key % 2) * len(engine.rules) + key // 2,
                    kind="stable")
    feat, key = feat[by], key[by]
    out = pd.DataFrame({"row": row[by].astype(np.int64),
                        "rule_id": texts.rule_ids.take(key // 2),
                        "feature_id": texts.feature_ids.take(feat),
                        "feature_name": texts.feature_names.take(feat),
                        "distance_m": dist[by], "severity": texts.severities.take(sev[by]),
                        "conditional": cond[by], "point": texts.points.take(key % 2)})
    log.debug("flagged %d sites: %d hits", n, len(out))
    return out
