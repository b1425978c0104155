"""The inspector's use cases: a check from form input, its map, the record of an inspection,
and the site page (attributes, live hits, change history, inspections).

The check page, its printable sheet and the recorded inspection all go through
:func:`run_check`, so the three always agree on what the same query parameters mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import folium
import geopandas as gpd
import shapely

from geoapp.domain.errors import InvalidInput, NotFound
from geoapp.domain.fields import labels
from geoapp.domain.messages import Text as _l
from geoapp.domain.results import CheckResult, Verdict
from geoapp.domain.rules import split_layer_key
from geoapp.domain.vocab import Classification, SiteType, Stage, WorkshopStatus
from geoapp.maps.base import outline_map
from geoapp.maps.check import check_map as draw_check_map
from geoapp.services.checks import check_point, check_site, engine
from geoapp.services.core import Geoapp
from geoapp.services.pagemap import basemap
from geoapp.spatial.crs import WGS84, crs_choices, describe_crs

log = logging.getLogger(__name__)

#: Query parameters of a check (the same names as /api/check, plus ``site``).
CHECK_PARAMS = ("lon", "lat", "crs", "site_type", "industry", "site")
#: The longest inspection note kept, in characters.
NOTES_LIMIT = 4000

#: Attribute labels of the site page by site type (the vocabulary's headers, domain.fields).
LEDGER_LABELS: tuple[tuple[str, str], ...] = labels((
    "seq", "district", "name", "address", "credit_code", "industry", "industry_code",
    "employees", "land_tenure", "safety_assessment", "energy_review", "eia_approval",
    "discharge_permit", "online_monitoring", "main_problems", "measures", "classification",
    "deadline", "progress", "remarks", "stage", "planned_start", "actual_start",
    "planned_completion", "actual_completion", "new_site_name", "new_lon", "new_lat",
    "new_site_area_mu", "vacated_mu", "listed_mu", "sale_revenue_wan", "programme"))
FARM_LABELS: tuple[tuple[str, str], ...] = labels((
    "name", "district", "species", "head_count", "scale", "industry"))
WORKSHOP_LABELS: tuple[tuple[str, str], ...] = labels((
    "name", "district", "industry", "status", "found_date", "banned_date", "water_cut_date",
    "power_cut_date", "materials_cleared_date", "products_cleared_date",
    "equipment_cleared_date"))
COMMON_LABELS: tuple[tuple[str, str], ...] = labels((
    "lon", "lat", "source", "version", "updated_at", "updated_by"))
_LABELS_BY_TYPE = {SiteType.ENTERPRISE.value: LEDGER_LABELS,
                   SiteType.LIVESTOCK_FARM.value: FARM_LABELS,
                   SiteType.SCATTERED_WORKSHOP.value: WORKSHOP_LABELS}
_ENUMS = {"classification": Classification, "stage": Stage, "status": WorkshopStatus,
          "site_type": SiteType}
_YES_NO = ("safety_assessment", "energy_review", "online_monitoring")
_ACTIONS = {"create": "新增", "update": "修改", "delete": "删除", "import": "导入"}


@dataclass
class CheckQuery:
    """The query parameters of one check, stripped; ``url_args`` rebuilds the link."""

    lon: str = ""
    lat: str = ""
    crs: str = "wgs84"
    site_type: str = ""
    industry: str = ""
    site: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> CheckQuery:
        vals = {k: str(args.get(k) or "").strip() for k in CHECK_PARAMS}
        vals["crs"] = vals["crs"] or "wgs84"
        return cls(**vals)

    @property
    def empty(self) -> bool:
        return not (self.lon or self.lat or self.site)

    def url_args(self) -> dict[str, str]:
        if self.site:
            return {"site": self.site}
        return {k: v for k in ("lon", "lat", "crs", "site_type", "industry")
                if (v := getattr(self, k))}


@dataclass
class CheckView:
    """A check with everything a page needs to show it."""

    query: CheckQuery
    result: CheckResult
    site: dict[str, Any] | None
    crs_label: str
    layers: list[dict[str, Any]] = field(default_factory=list)
    checked_at: str = ""
    #: :func:`result_view` of ``result``: verdict, hits with their limits, conditional hits.
    shown: dict[str, Any] = field(default_factory=dict)

    @property
    def site_type_label(self) -> str:
        """The Chinese label of the site type the check used ("" when none was set)."""
        value = self.result.input.get("site_type")
        return SiteType(value).zh if value else ""

    @property
    def recheck_args(self) -> dict[str, str]:
        """The point of this check as form values (the site's own WGS84 point for a site)."""
        if self.site or not self.query.lon:
            return {"lon": f"{self.result.lon:.7f}", "lat": f"{self.result.lat:.7f}",
                    "crs": "wgs84"}
        return {k: v for k in ("lon", "lat", "crs") if (v := getattr(self.query, k))}


def site_id_from(text: str, app: Geoapp) -> str:
    """The site a picker value names: ``E0001``, ``E0001 企业名称`` or the exact name."""
    t = text.strip()
    if not t:
        raise InvalidInput(_l("请选择企业"))
    first = t.split()[0]
    try:
        app.repo.site(first)
        return first
    except NotFound:
        pass
    names = app.repo.sites(columns=["name"])
    match = names.loc[names["name"] == t, "id"]
    if len(match):
        return str(match.iloc[0])
    raise NotFound(_l("没有找到企业或点位“%(name)s”", name=t))


def form_choices(app: Geoapp) -> dict[str, Any]:
    """What the check form offers: coordinate systems, site types and every stored site."""
    return {"crs_choices": crs_choices(), "site_types": [(t.value, t.zh) for t in SiteType],
            "sites": site_choices(app)}


def run_check(app: Geoapp, query: CheckQuery) -> CheckView:
    """Check the point or stored site ``query`` names; InvalidInput/NotFound name the problem."""
    site = None
    if query.site:
        sid = site_id_from(query.site, app)
        query.site = sid
        site = app.repo.site(sid)
        result = check_site(app, sid)
        crs_label = describe_crs("wgs84")["zh"]
    else:
        crs_label = describe_crs(query.crs)["zh"]
        result = check_point(app, query.lon, query.lat, query.crs,
                             site_type=query.site_type or None, industry=query.industry or None)
    view = CheckView(query=query, result=result, site=site, crs_label=crs_label,
                     checked_at=datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M"))
    view.layers = nearest_by_layer(app, result)
    view.shown = result_view(app, result)
    return view


def _source_of(app: Geoapp, key: str):
    """The register source (LayerSource) behind a derived layer key, or None."""
    for rule in engine(app).rules:
        if rule.layer == key and rule.source is not None:
            return rule.source
    return None


def layer_title(app: Geoapp, key: str) -> str:
    """The Chinese title of a layer key, including layers derived from the site registers."""
    spec = app.city.layers.get(key)
    if spec is not None:
        return spec.title_zh
    base, where = split_layer_key(key)
    if where and base in app.city.layers:  # a subset, e.g. the 一级 water-source zones
        values = "、".join(v for vals in where.values() for v in vals)
        return f"{app.city.layers[base].title_zh}（{values}）"
    source = _source_of(app, key)
    if source is not None:
        if getattr(source, "title_zh", None):
            return source.title_zh
        try:
            label = SiteType(source.sites).zh
        except ValueError:
            label = source.sites
        return ("已取缔" + label) if "banned" in key else label
    return key


def nearest_by_layer(app: Geoapp, result: CheckResult) -> list[dict[str, Any]]:
    """One row per layer, nearest first: title, feature, distance, and the rules it broke."""
    hit_rules: dict[tuple[str, str | None], list[str]] = {}
    rules = engine(app).rules
    for h in result.hits:
        layer = rules[h.rule_id].layer if h.rule_id in rules else ""
        hit_rules.setdefault((layer, h.feature_id), []).append(h.title["zh"])
    rows = [{"layer": n.layer, "title": layer_title(app, n.layer), "feature_id": n.feature_id,
             "feature_name": n.feature_name, "distance_m": n.distance_m,
             "hit_titles": hit_rules.get((n.layer, n.feature_id), [])}
            for n in result.nearest]
    return sorted(rows, key=lambda r: (r["distance_m"], r["layer"]))


def map_features(app: Geoapp, result: CheckResult) -> gpd.GeoDataFrame:
    """Geometries (EPSG:4326) of every hit, conditional-hit and nearest feature.

    ``hit`` flags the features of rules broken here, ``conditional`` those of rules that
    would be broken if the site were of the type they name (needs_info); the check map
    draws those two and keeps the other nearest features off.
    """
    rules = engine(app).rules
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for n in result.nearest:
        if n.feature_id is not None:
            wanted[(n.layer, n.feature_id)] = {"name": n.feature_name, "hit": False,
                                               "conditional": False,
                                               "distance_m": n.distance_m}
    for flag, items in (("conditional", conditional_hits_of(result)),
                        ("hit", [_as_dict(h) for h in result.hits])):
        for h in items:
            if h.get("feature_id") is None or h.get("rule_id") not in rules:
                continue
            if _point_of(h, rules) == "new_site":
                continue  # measured from the new site, not from the point on this map
            key = (rules[h["rule_id"]].layer, str(h["feature_id"]))
            row = wanted.setdefault(key, {"name": h.get("feature_name"), "hit": False,
                                          "conditional": False,
                                          "distance_m": h.get("distance_m")})
            row[flag] = True
    rows = []
    for layer in dict.fromkeys(k[0] for k in wanted):
        ids = [k[1] for k in wanted if k[0] == layer]
        for fid, geom in _geometries(app, layer, ids):
            info = wanted[(layer, fid)]
            rows.append({"layer": layer, "title": layer_title(app, layer), "feature_id": fid,
                         "name": info["name"] or "", "hit": info["hit"],
                         "conditional": info["conditional"] and not info["hit"],
                         "distance_m": info["distance_m"], "geometry": geom})
    cols = ["layer", "title", "feature_id", "name", "hit", "conditional", "distance_m",
            "geometry"]
    return gpd.GeoDataFrame(rows, columns=cols, geometry="geometry", crs=WGS84)


def _geometries(app: Geoapp, layer: str, ids: list[str]) -> list[tuple[str, Any]]:
    if layer not in app.city.layers and _source_of(app, layer) is not None:
        out = []
        for fid in ids:
            try:
                s = app.repo.site(fid)
            except NotFound:
                continue
            out.append((fid, shapely.Point(float(s["lon"]), float(s["lat"]))))
        return out
    if layer not in app.repo.layer_names():
        return []
    gdf = app.repo.layer(layer)
    sel = gdf[gdf["id"].astype(str).isin(ids)]
    return [(str(i), g) for i, g in zip(sel["id"], sel.geometry, strict=True)]


def check_map(app: Geoapp, view: CheckView | None, *,
              gettext: Callable[[str], str] | None = None) -> folium.Map:
    """The map of a check: the point, the buffers and features its verdict rests on and a
    distance line to each; without a check (``view`` None), the city to pick a point in.
    ``gettext`` translates the map's words (Chinese without one)."""
    tiles, key = basemap(app)
    words = {"gettext": gettext} if gettext is not None else {}
    if view is None:
        outline = app.repo.layer("city").geometry.union_all()
        return outline_map(outline, app.city.zoom, tiles, key, **words)
    return draw_check_map(view.result.lon, view.result.lat, map_features(app, view.result),
                          zones_near(app, view.result), metric_crs=app.metric_crs,
                          tiles=tiles, tianditu_key=key, **words)


def zones_near(app: Geoapp, result: CheckResult) -> gpd.GeoDataFrame:
    """The rule buffers (exclusion zones) of the rules hit here (``hit``) and of the rules
    that would be hit with the missing site type (``conditional``); no other rule's zones.
    The map clips them around the point."""
    try:
        zones = app.repo.derived_layer("exclusion_zones")
    except NotFound:
        zones = engine(app).exclusion_zones()
    rules = engine(app).rules
    at_point = [h for h in (_as_dict(h) for h in result.hits)
                if _point_of(h, rules) != "new_site"]
    hit_rules = {h["rule_id"] for h in at_point}
    cond_rules = {h["rule_id"] for h in conditional_hits_of(result)} - hit_rules
    zones = zones[(zones["test"] != "not_inside")
                  & zones["rule_id"].isin(hit_rules | cond_rules)].copy()
    zones["hit"] = zones["rule_id"].isin(hit_rules)
    zones["conditional"] = zones["rule_id"].isin(cond_rules)
    return zones.to_crs(WGS84)


# --- What the check page, the print sheet and the site page show of a result -------------

def _as_dict(hit: Any) -> dict[str, Any]:
    """A hit (Hit, ConditionalHit or its dict) as a plain dict."""
    return dict(hit) if isinstance(hit, Mapping) else hit.to_dict()


def _point_of(hit: Mapping[str, Any], rules: Any) -> str:
    """Which point of the site a hit was measured from (``site`` or ``new_site``)."""
    if hit.get("point"):
        return str(hit["point"])
    try:
        return rules[hit.get("rule_id")].applies_to.point
    except KeyError:
        return "site"


def conditional_hits_of(result: CheckResult) -> list[dict[str, Any]]:
    """The rules that would be broken if the site were what they name (needs_info)."""
    return [_as_dict(h) for h in getattr(result, "conditional_hits", ())]


def _fmt(value: float) -> str:
    return f"{float(value):.1f}"


def hit_row(rules: Any, hit: Any) -> dict[str, Any]:
    """One hit as the pages show it: its ``to_dict()`` (the rule's test, limit, basis note
    and point filled in from the rules if a hit lacks them) plus the figures of "how
    close": ``distance`` ("145.5"), ``limit`` ("400"), ``margin`` ("254.5", how far inside
    the limit), and for a conditional hit ``suggest``, form values that make it apply."""
    row = _as_dict(hit)
    try:
        rule = rules[row.get("rule_id")]
    except KeyError:
        rule = None
    if rule is not None:
        if not row.get("test"):
            row["test"] = rule.test
        if row.get("limit_m") is None:
            row["limit_m"] = rule.distance_m
        if not row.get("basis_note"):
            row["basis_note"] = rule.basis_note
    row["point"] = _point_of(row, rules)
    dist, limit = row.get("distance_m"), row.get("limit_m")
    row["distance"] = None if dist is None else _fmt(dist)
    row["limit"] = None if limit is None else f"{float(limit):g}"
    row["margin"] = (_fmt(round(float(limit) - float(dist), 1))
                     if dist is not None and limit is not None else None)
    row["suggest"] = (_suggestion(rule, row.get("missing") or [])
                      if rule is not None and "missing" in row else {})
    return row


def _suggestion(rule: Any, missing: list[str]) -> dict[str, str]:
    """Form values that would make ``rule`` apply: the first site type / industry it names
    among the attributes the result says are missing (the check form has only those two)."""
    out: dict[str, str] = {}
    for clause in rule.applies_to.clauses:
        for cond in clause:
            if cond.attr in ("site_type", "industry") and cond.attr in missing \
                    and cond.attr not in out:
                out[cond.attr] = sorted(cond.values)[0]
        if out:
            return out
    return out


def result_view(app: Geoapp, result: CheckResult) -> dict[str, Any]:
    """Everything the check page, the print sheet and the site page show of a result: the
    verdict with its sentence, the hits at the site, the hits at a relocation's new site and
    the conditional hits (needs_info)."""
    verdict = Verdict(result.verdict)
    rules = engine(app).rules
    rows = [hit_row(rules, h) for h in result.hits]
    return {"verdict": verdict.value,
            "sentence": {"zh": verdict.sentence_zh, "en": verdict.sentence_en},
            "hits": [r for r in rows if r["point"] != "new_site"],
            "new_site_hits": [r for r in rows if r["point"] == "new_site"],
            # Outside the city's data no rule is decided; "if it were a chemical plant" is noise.
            "conditional_hits": ([] if verdict is Verdict.OUT_OF_AREA else
                                 [hit_row(rules, h) for h in conditional_hits_of(result)]),
            "covered": bool(getattr(result, "covered", True))}


def clean_notes(text: str) -> str:
    """Notes without control characters (NUL, ESC…): line breaks (CR LF, CR -> LF) and tabs
    stay; stripped at both ends."""
    text = str(text or "").replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or not _is_control(c)).strip()


def _is_control(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or 0x7F <= o < 0xA0


def record_inspection(app: Geoapp, view: CheckView, notes: str, *, user: str,
                      gps_accuracy_m: float | None = None,
                      photos: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Keep the check as an inspection record (re-run server-side, never taken from a form),
    with the device's GPS accuracy and the photos read by services/photos.py, in one write."""
    notes = clean_notes(notes)
    if len(notes) > NOTES_LIMIT:
        raise InvalidInput(_l("备注过长：最多 %(limit)s 字", limit=NOTES_LIMIT))
    rec = {"site_id": view.site["id"] if view.site else None, "lon": view.result.lon,
           "lat": view.result.lat, "input": dict(view.result.input),
           "verdict": view.result.verdict.value,
           "hits": [h.to_dict() for h in view.result.hits],
           "conditional_hits": [h.to_dict() for h in view.result.conditional_hits],
           "notes": notes, "gps_accuracy_m": gps_accuracy_m}
    saved = app.repo.add_inspection(rec, user=user, photos=photos)
    log.info("inspection %s recorded by %s (%s)", saved["id"], user, rec["verdict"])
    return saved


def site_choices(app: Geoapp) -> list[dict[str, str]]:
    """Every stored site for the searchable picker: id, name, type label."""
    sites = app.repo.sites(columns=["name"])
    return [{"id": str(i), "name": str(n or ""), "type": SiteType(t).zh}
            for i, n, t in zip(sites["id"], sites["name"], sites["site_type"], strict=True)]


def display_value(field_name: str, value: Any) -> str:
    """A stored value as the UI shows it: Chinese labels for vocabulary, 有/无 for flags."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return ""
    if field_name in _ENUMS:
        try:
            return _ENUMS[field_name](str(value)).zh
        except ValueError:
            return str(value)
    if field_name in _YES_NO:
        return {"true": "有", "false": "无", "1": "有", "0": "无"}.get(str(value).lower(),
                                                                     str(value))
    return str(value)


def site_page(app: Geoapp, site_id: str) -> dict[str, Any]:
    """Everything /sites/<id> shows; NotFound for an unknown id."""
    site = app.repo.site(site_id)
    labels = _LABELS_BY_TYPE.get(site["site_type"], ()) + COMMON_LABELS
    attrs = [{"field": f, "label": lab, "value": display_value(f, site.get(f))}
             for f, lab in labels if display_value(f, site.get(f)) != "" or f in ("name",)]
    label_of = dict(labels)
    history = [_history_row(r, label_of) for r in app.repo.history(site_id, "site")]
    check = check_site(app, site_id)
    return {"site": site, "type_label": SiteType(site["site_type"]).zh, "attributes": attrs,
            "check": check, "shown": result_view(app, check), "history": history,
            "inspections": app.repo.inspections(site_id)}


def _history_row(rec: Mapping[str, Any], label_of: Mapping[str, str]) -> dict[str, Any]:
    before, after = rec.get("before") or {}, rec.get("after") or {}
    skip = {"version", "updated_at", "updated_by"}
    fields = [k for k in dict.fromkeys([*before, *after])
              if k not in skip and before.get(k) != after.get(k)]
    changes = [{"field": k, "label": label_of.get(k, k), "before": display_value(k, before.get(k)),
                "after": display_value(k, after.get(k))} for k in fields]
    return {"at": rec["at"], "user": rec["user"],
            "action": _ACTIONS.get(rec["action"], rec["action"]), "changes": changes}
