"""12369 complaints on the maps, with their suspected sources (疑似污染源).

Every complaint with coordinates (stored as WGS84 points: GCJ-02 and BD-09 input is converted
when it is read, ``storage.sources.complaint_points``) is linked to the registered sites within
COMPLAINT_SOURCE_RADIUS_M metres whose type may cause a complaint of its category
(``[complaints.sources]`` in city.toml, decided by :func:`geoapp.domain.complaints.matches`).
Distances are measured on the ground in the city's metric CRS, by one spatial-index query over
all complaints and sites (an STRtree ``dwithin`` query), never a loop over pairs. Complaints
without coordinates are counted, never placed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoapp.domain import bulletin
from geoapp.domain.bulletin import IsoWeek
from geoapp.domain.complaints import category_label, matches
from geoapp.domain.vocab import ComplaintCategory, SiteType

log = logging.getLogger(__name__)

#: Site columns a suspected source shows.
SITE_COLUMNS = ("name", "industry", "district")
SOURCE_COLUMNS = ["complaint_id", "site_id", "site_name", "site_type", "industry", "district",
                  "distance_m"]
#: How many complaints a site page lists (newest first); the count says how many there are.
SITE_PAGE_LIMIT = 50


@dataclass
class ComplaintPoints:
    """Complaints for a map: ``points`` (WGS84, one row per located complaint: id, time,
    category, label, summary, sources — a list of dicts, nearest first), how many complaints
    there were and how many had no coordinates (not drawn)."""

    points: gpd.GeoDataFrame
    total: int
    unlocated: int
    radius_m: int
    first_week: IsoWeek | None = None
    last_week: IsoWeek | None = None

    @property
    def located(self) -> int:
        return len(self.points)


def radius(app) -> int:
    return int(app.settings.get("COMPLAINT_SOURCE_RADIUS_M", 500))


def _times(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series.astype(str), format="ISO8601", errors="coerce")


def _has_point(complaints: pd.DataFrame) -> np.ndarray:
    if "geometry" not in complaints.columns or not len(complaints):
        return np.zeros(len(complaints), dtype=bool)
    geom = gpd.GeoSeries(complaints["geometry"], crs=4326)
    return np.asarray(geom.notna() & ~geom.is_empty, dtype=bool)


def suspected_sources(app, complaints: pd.DataFrame, *, sites: gpd.GeoDataFrame | None = None,
                      radius_m: float | None = None) -> pd.DataFrame:
    """One row per (complaint, matching site within the radius): ``complaint_id``, the site's
    id, name, type, industry and district, and ``distance_m`` (metres on the ground, in the
    metric CRS), nearest first per complaint. Complaints without a point have no row."""
    r = float(radius(app) if radius_m is None else radius_m)
    ok = _has_point(complaints)
    if not ok.any():
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    if sites is None:
        sites = app.repo.sites(columns=SITE_COLUMNS)
    if sites.empty:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    located = gpd.GeoDataFrame(complaints.loc[ok, ["id", "category"]],
                               geometry=gpd.GeoSeries(complaints.loc[ok, "geometry"], crs=4326))
    pts = located.to_crs(app.metric_crs).geometry.values
    site_pts = sites.to_crs(app.metric_crs).geometry.values
    tree = gpd.GeoSeries(site_pts).sindex
    left, right = tree.query(pts, predicate="dwithin", distance=r)
    if not len(left):
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    industry = sites["industry"] if "industry" in sites.columns else pd.Series("", sites.index)
    # The type rule decided once per (category, site), then looked up for every pair: the
    # candidate pairs are many more than categories times sites in a dense city.
    cat_codes, cats = pd.factorize(located["category"].astype(str))
    kinds, inds = sites["site_type"].to_numpy(), industry.to_numpy()
    allowed = np.vstack([matches(app.city.complaint_sources, np.full(len(sites), c, object),
                                 kinds, inds) for c in cats])
    keep = allowed[cat_codes[left], right]
    left, right = left[keep], right[keep]
    dist = np.asarray(shapely.distance(pts[left], site_pts[right]), dtype=float)
    near = dist <= r
    left, right, dist = left[near], right[near], dist[near]
    complaint_ids = located["id"].astype(str).to_numpy()
    site_ids = sites["id"].astype(str).to_numpy()
    # Nearest first per complaint, complaints in id order, ties by site id.
    order = np.lexsort((_ranks(site_ids)[right], dist, _ranks(complaint_ids)[left]))
    left, right, dist = left[order], right[order], dist[order]
    return pd.DataFrame({
        "complaint_id": complaint_ids[left],
        "site_id": site_ids[right],
        "site_name": sites["name"].astype(str).to_numpy()[right],
        "site_type": sites["site_type"].astype(str).to_numpy()[right],
        "industry": industry.fillna("").astype(str).to_numpy()[right],
        "district": (sites["district"].fillna("").astype(str).to_numpy()[right]
                     if "district" in sites.columns else ""),
        "distance_m": dist,
    })


def _ranks(values: np.ndarray) -> np.ndarray:
    """Each value's rank in sorted order (equal values share no rank; order is stable)."""
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return ranks


def _local(value: Any) -> str:
    t = pd.to_datetime(str(value), format="ISO8601", errors="coerce")
    return "" if pd.isna(t) else t.strftime("%Y-%m-%d %H:%M")


def map_points(app, complaints: pd.DataFrame, *, first_week: IsoWeek | None = None,
               last_week: IsoWeek | None = None) -> ComplaintPoints:
    """The given complaints for a map: located ones with their suspected sources, and the
    count of those without coordinates."""
    r = radius(app)
    total = len(complaints)
    ok = _has_point(complaints)
    cols = ["id", "received_at", "time", "category", "label", "summary", "sources"]
    if not ok.any():
        empty = gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=4326)
        return ComplaintPoints(empty, total, total, r, first_week, last_week)
    links = suspected_sources(app, complaints, radius_m=r)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for rec in links.to_dict("records"):
        by_id.setdefault(rec["complaint_id"], []).append({
            "id": rec["site_id"], "name": rec["site_name"],
            "type": SiteType(rec["site_type"]).zh, "industry": rec["industry"],
            "distance_m": int(round(rec["distance_m"]))})
    sel = complaints.loc[ok]
    ids = sel["id"].astype(str)
    summary = sel["summary"] if "summary" in sel.columns else pd.Series("", sel.index)
    points = gpd.GeoDataFrame({
        "id": ids.to_numpy(),
        "received_at": sel["received_at"].astype(str).to_numpy(),
        "time": [_local(v) for v in sel["received_at"]],
        "category": sel["category"].astype(str).to_numpy(),
        "label": [category_label(v) for v in sel["category"]],
        "summary": summary.fillna("").astype(str).to_numpy(),
        "sources": [by_id.get(i, []) for i in ids],
    }, geometry=gpd.GeoSeries(sel["geometry"], crs=4326).to_numpy(), crs=4326)
    points = points.sort_values(["received_at", "id"], kind="stable").reset_index(drop=True)
    return ComplaintPoints(points, total, int(total - ok.sum()), r, first_week, last_week)


def in_weeks(complaints: pd.DataFrame, first: IsoWeek, last: IsoWeek) -> pd.DataFrame:
    """The complaints received from ``first``'s Monday to ``last``'s Sunday (local time)."""
    if not len(complaints):
        return complaints
    t = _times(complaints["received_at"])
    return complaints[(t >= pd.Timestamp(first.start)) & (t < pd.Timestamp(last.end))]


def window(app, complaints: pd.DataFrame, now: datetime | None = None
           ) -> tuple[IsoWeek, IsoWeek]:
    """The overview's weeks: COMPLAINT_MAP_WEEKS weeks ending with the last full week, or
    with the latest earlier week that has complaints (so a quiet or not yet imported week
    does not empty the map while there is data)."""
    weeks = int(app.settings.get("COMPLAINT_MAP_WEEKS", 4))
    last = bulletin.last_full_week(now)
    if len(complaints):
        t = _times(complaints["received_at"])
        t = t[t < pd.Timestamp(last.end)].dropna()
        if len(t) and t.max() < pd.Timestamp(last.shift(-(weeks - 1)).start):
            last = IsoWeek.of(t.max().date())
    return last.shift(-(weeks - 1)), last


def recent(app, now: datetime | None = None) -> ComplaintPoints:
    """The overview's complaints: those of :func:`window`'s weeks."""
    complaints = app.repo.table("complaints")
    first, last = window(app, complaints, now)
    return map_points(app, in_weeks(complaints, first, last), first_week=first,
                      last_week=last)


def site_complaints(app, site_id: str) -> dict[str, Any]:
    """The complaints a site is a suspected source of (疑似关联投诉), newest first:
    ``rows`` (id, time, category label, summary, distance in metres), ``count``, ``radius_m``."""
    r = radius(app)
    sites = app.repo.sites(columns=SITE_COLUMNS)
    sites = sites[sites["id"].astype(str) == str(site_id)]
    complaints = app.repo.table("complaints")
    links = suspected_sources(app, complaints, sites=sites, radius_m=r) if len(sites) else \
        pd.DataFrame(columns=SOURCE_COLUMNS)
    if links.empty:
        return {"rows": [], "count": 0, "radius_m": r, "limit": SITE_PAGE_LIMIT}
    info = pd.DataFrame(complaints[["id", "received_at", "category", "summary"]]).astype(
        {"id": str}).rename(columns={"id": "complaint_id"})
    rows = links.merge(info, on="complaint_id", how="left")
    rows = rows.sort_values(["received_at", "complaint_id"], ascending=[False, True],
                            kind="stable")
    out = [{"id": rec["complaint_id"], "time": _local(rec["received_at"]),
            "category": str(rec["category"]), "label": category_label(rec["category"]),
            "summary": "" if pd.isna(rec["summary"]) else str(rec["summary"]),
            "distance_m": int(round(rec["distance_m"]))}
           for rec in rows.head(SITE_PAGE_LIMIT).to_dict("records")]
    return {"rows": out, "count": len(rows), "radius_m": r, "limit": SITE_PAGE_LIMIT}


#: The categories in the order maps and legends show them.
CATEGORIES = tuple(c.value for c in ComplaintCategory)
