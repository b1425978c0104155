"""Batch flagging: every rule against many sites, vectorised over the sites.

Loops run over rules and layers only. Per (layer, point kind) the sites any rule concerns (or
may concern: see ``domain.rules.applicability_masks``) are gathered; the grid drops those that
cannot be within reach before anything is projected; the rest are measured once and each rule
of the layer is decided on the same figures by ``domain.rules.decide``, the decision the
single-point check makes too. This module measures and gathers; it decides nothing itself.

It reads only what the engine prepared (``spatial.prepared.PreparedRules``) and never
imports the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geoapp.domain.rules import (
    CONDITIONAL_HIT,
    IMPLIED_ATTRS,
    POINTS,
    Condition,
    RuleSpec,
    applicability_masks,
    checked_at,
    decide,
    is_missing,
)
from geoapp.spatial.prepared import PreparedRules

log = logging.getLogger(__name__)

HIT_COLUMNS = ["row", "rule_id", "feature_id", "feature_name", "distance_m", "severity",
               "conditional", "point"]


class SiteColumns:
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


def flag_sites(prepared: PreparedRules, lon: np.ndarray, lat: np.ndarray,
               columns: Mapping[str, Any]) -> pd.DataFrame:
    """Implementation of ``RuleEngine.flag`` (see there) on the engine's prepared data."""
    n = len(lon)
    rules = prepared.rules
    cols = dict(columns)
    points = {"site": (lon, lat)}
    new_lon, new_lat = cols.pop("new_lon", None), cols.pop("new_lat", None)
    if new_lon is not None and new_lat is not None:
        points["new_site"] = (np.broadcast_to(np.asarray(new_lon, dtype=float), n),
                              np.broadcast_to(np.asarray(new_lat, dtype=float), n))
    attrs = SiteColumns(cols, n)
    finite = {k: np.isfinite(p[0]) & np.isfinite(p[1]) for k, p in points.items()}
    groups: dict[tuple[str, str], list[tuple[RuleSpec, np.ndarray, np.ndarray]]] = {}
    for kind in points:
        for rule in rules:
            if not checked_at(rule, kind):
                continue
            sure, maybe = attrs.masks(rule)
            mask = (sure | maybe) & finite[kind]
            if mask.any():
                groups.setdefault((rule.layer, kind), []).append((rule, sure, maybe))
    cells = {k: prepared.grid.cells(*p) for k, p in points.items()}
    plan = []
    need = {k: np.zeros(n, dtype=bool) for k in points}
    for (layer, kind), members in groups.items():
        index = prepared.index[layer]
        radius = prepared.reach[layer]
        wanted = np.logical_or.reduce([s | m for _, s, m in members]) & finite[kind]
        idx = np.flatnonzero(wanted)
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
            x[todo], y[todo] = prepared.to_metric.transform(plon[todo], plat[todo])
        xy[kind] = (x, y)
    parts: list[tuple[np.ndarray, ...]] = []
    order = {r.id: i for i, r in enumerate(rules)}
    texts = prepared.texts
    for layer, kind, members, radius, sel in plan:
        x, y = xy[kind]
        m = prepared.index[layer].measure(x[sel], y[sel], cells[kind][sel], radius)
        ground = prepared.ground(points[kind][0][sel], points[kind][1][sel], x[sel], y[sel], m)
        found = m.feat >= 0
        feature_offset = texts.feature_offset[layer]
        point_no = POINTS.index(kind)
        for rule, sure, maybe in members:
            decision = decide(rule.test_code, rule.limit_m, ground, m.inside, found,
                              sure[sel], maybe[sel])
            hit = decision.nonzero()[0]
            rows = sel[hit]
            f = m.feat[hit]
            parts.append((rows, np.full(len(f), order[rule.id] * 2 + point_no, dtype=np.int64),
                          f + feature_offset,
                          np.round(np.where(m.inside[hit], 0.0, ground[hit]), 1),
                          f + texts.severity_offset[rule.id],
                          decision[hit] == CONDITIONAL_HIT))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            HIT_COLUMNS, ["int64", object, object, object, "float64", object, bool, object],
            strict=True)})
    row, key, feat, dist, sev, cond = (np.concatenate(c) for c in zip(*parts, strict=True))
    # by site, then point (site first), then rule
    by = np.argsort(row * (2 * len(rules)) + (key % 2) * len(rules) + key // 2,
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
