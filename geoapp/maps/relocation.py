"""The relocation map: enterprises by classification and stage, old site -> new site.

Three canvas layers of :mod:`geoapp.maps.points` (compact arrays, no Leaflet object or GeoJSON
feature per enterprise), each a switchable overlay with its count: the old->new lines, the new
sites and the current sites, drawn in that order so the markers sit on the lines. A current
site is filled with its classification's colour and outlined by its stage; a new site is a
ring in its classification's colour. Popups and tooltips are built in the browser, names shown
as text: enterprise names are user-edited data and never become HTML.

A relocating enterprise whose new site breaks a rule (the stored hits with point ``new_site``)
gets a warning: its new site is drawn as a thick dark-red ring, the old->new line as a solid
red line, and the new site's popup and tooltip name the rules broken there.

Data that comes in two languages (vocabulary names, rule titles) arrives in the page's
language from the caller; the map's own words go through ``gettext``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from geoapp.domain.deadlines import Status as DeadlineStatus
from geoapp.domain.vocab import Classification, Stage
from geoapp.maps.base import Translate, base_map, identity, shift_for_tiles
from geoapp.maps.layers import CLASSIFICATION_COLOURS
from geoapp.maps.legend import add_legend
from geoapp.maps.points import add_fast_points
from geoapp.spatial.crs import WGS84

#: Marker outline per progress stage: (colour, weight, dash, fill opacity).
STAGE_OUTLINES: dict[str, tuple[str, float, str | None, float]] = {
    Stage.NOT_STARTED: ("#ffffff", 1.0, None, 0.45),
    Stage.STARTED: ("#ffb000", 3.0, None, 0.9),
    Stage.COMPLETED: ("#33cc33", 3.0, None, 0.9),
    Stage.ACCEPTED: ("#00c8e0", 3.0, None, 0.9),
}
SITE_RADIUS = 7
NEW_SITE_RADIUS = 5
#: A new site that breaks a rule: ring colour, ring weight, radius; and its old->new line.
WARN_RING = ("#a50f15", 4.0, 8)
WARN_LINE = ("#a50f15", 3.0)
#: An old->new line otherwise: weight, opacity, dash (in the classification's colour).
LINE = (1.5, 0.8, (6, 4))
#: Fill of an enterprise whose classification has no colour.
OTHER_COLOUR = "#1f77b4"
#: Category of a new site or line that breaks a rule.
WARN = "warn"
#: The ring drawn around an enterprise with an overdue obligation: colour, weight, radius.
OVERDUE_RING = ("#d7191c", 3.0, 12)

#: One rule hit as the caller gives it: ``rule_id``, ``title`` (in the page's language),
#: ``feature``, ``distance_m`` (None: unknown) and ``severity``.
Hit = Mapping[str, Any]


def _bounds(sites: pd.DataFrame) -> list[list[float]] | None:
    lon = pd.concat([sites["lon"], pd.to_numeric(sites["new_lon"], errors="coerce")]).dropna()
    lat = pd.concat([sites["lat"], pd.to_numeric(sites["new_lat"], errors="coerce")]).dropna()
    if lon.empty:
        return None
    return [[float(lat.min()), float(lon.min())], [float(lat.max()), float(lon.max())]]


def _hits(by_site: Mapping[str, Sequence[Hit]]
          ) -> tuple[dict[str, list[tuple[str, float | None, str]]], dict[str, tuple[str, str]]]:
    """Hits as :func:`geoapp.maps.points.encode_points` takes them: per site (rule id,
    distance, feature) in the given order, and rule id -> (title, severity)."""
    out: dict[str, list[tuple[str, float | None, str]]] = {}
    rules: dict[str, tuple[str, str]] = {}
    for site_id, rows in by_site.items():
        for h in rows:
            rule_id = str(h["rule_id"])
            rules.setdefault(rule_id, (str(h.get("title") or rule_id),
                                       str(h.get("severity") or "")))
            out.setdefault(str(site_id), []).append(
                (rule_id, h.get("distance_m"), h.get("feature") or ""))
    return out, rules


def _text(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").astype(str)


def _frames(sites: pd.DataFrame, new_site_hits: Mapping[str, Sequence[Hit]], tiles: str,
            class_names: Mapping[str, str], stage_names: Mapping[str, str],
            status_names: Mapping[str, str] | None = None
            ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The current sites, the new sites, and the current sites of the moved rows (the lines'
    starts, aligned with the new sites), shifted for the basemap, with the popups' display
    columns and each row's drawing category in ``look``."""
    cls = sites["classification"].astype(object)
    stage = sites["stage"].astype(object)
    known_cls = cls.where(cls.isin(list(CLASSIFICATION_COLOURS)), "").astype(str)
    known_stage = stage.where(stage.isin(list(STAGE_OUTLINES)), Stage.NOT_STARTED.value)
    frame = gpd.GeoDataFrame({
        "id": _text(sites["id"]).to_numpy(), "name": _text(sites["name"]).to_numpy(),
        "district": _text(sites["district"]).to_numpy(),
        "industry": _text(sites["industry"]).to_numpy(),
        "cls_name": _text(cls.map(class_names).fillna(cls)).to_numpy(),
        "stage_name": _text(stage.map(stage_names).fillna(stage)).to_numpy(),
        "look": (known_cls + "|" + known_stage.astype(str)).to_numpy(),
        "cls": known_cls.to_numpy(),
    }, geometry=gpd.points_from_xy(sites["lon"].to_numpy(float), sites["lat"].to_numpy(float)),
        crs=WGS84)
    if "vacated_mu" in sites:
        frame["vacated_mu"] = pd.to_numeric(sites["vacated_mu"], errors="coerce").round(1) \
            .to_numpy()
    if "deadline_status" in sites:
        status = sites["deadline_status"].astype(object)
        frame["deadline_status"] = _text(status).to_numpy()
        frame["deadline_name"] = _text(status.map(status_names).fillna("")).to_numpy()
        frame["days_overdue"] = pd.to_numeric(sites["days_overdue"], errors="coerce") \
            .to_numpy(dtype=float)
    frame = shift_for_tiles(frame, tiles)
    nlon = pd.to_numeric(sites["new_lon"], errors="coerce").to_numpy(float)
    nlat = pd.to_numeric(sites["new_lat"], errors="coerce").to_numpy(float)
    moved = ~(np.isnan(nlon) | np.isnan(nlat))
    new_names = _text(sites["new_site_name"]).to_numpy() if "new_site_name" in sites \
        else np.full(len(sites), "", dtype=object)
    starts = frame[moved].reset_index(drop=True)
    starts["look"] = [WARN if new_site_hits.get(i) else c
                      for i, c in zip(starts["id"], starts["cls"], strict=True)]
    new = starts.drop(columns=["district", "vacated_mu", "deadline_status", "deadline_name",
                               "days_overdue"], errors="ignore").assign(
        **{"from": starts["name"],
           "name": [n or old for n, old in zip(new_names[moved], starts["name"], strict=True)]})
    new = shift_for_tiles(new.set_geometry(
        gpd.points_from_xy(nlon[moved], nlat[moved], crs=WGS84)), tiles)
    return frame, new, starts


def _site_looks(keys) -> tuple[dict[str, tuple[str, str]], dict[str, dict[str, Any]]]:
    """Categories and styles of current sites: fill by classification, outline by stage."""
    cats, styles = {}, {}
    for key in sorted(pd.unique(np.asarray(keys, dtype=object))):
        c, s = key.split("|")
        colour, weight, dash, fill_opacity = STAGE_OUTLINES[s]
        cats[key] = ("", CLASSIFICATION_COLOURS.get(c, OTHER_COLOUR))
        styles[key] = {"stroke": colour, "weight": weight, "fill_opacity": fill_opacity,
                       "opacity": 1.0, "dash": dash}
    return cats, styles


def relocation_map(sites: pd.DataFrame, hits: Mapping[str, Sequence[Hit]], *,
                   new_site_hits: Mapping[str, Sequence[Hit]] | None = None,
                   center: tuple[float, float], zoom: int,
                   city_bounds: tuple[float, float, float, float] | None,
                   tiles: str = "osm", tianditu_key: str = "",
                   site_link: str = "/sites/{id}",
                   classification_names: Mapping[str, str] | None = None,
                   stage_names: Mapping[str, str] | None = None,
                   gettext: Translate | None = identity) -> folium.Map:
    """Build the map. ``center`` is (lat, lon); the view fits the filtered sites (old and new),
    or the city when nothing matches. ``hits`` and ``new_site_hits`` are the rule hits
    (:data:`Hit`) at the current and at the new site, by site id; ``site_link`` is the site
    page URL with ``{id}`` in it. ``classification_names`` and ``stage_names`` name the
    vocabulary values in the page's language (default Chinese); ``gettext`` translates the
    map's own words (identity by default)."""
    _ = gettext or identity  # None: Chinese
    new_site_hits = new_site_hits or {}
    cls_names = classification_names or {c.value: c.zh for c in Classification}
    stg_names = stage_names or {s.value: s.zh for s in Stage}
    m = base_map(center, zoom, tiles, tianditu_key, gettext=_)
    fit = _bounds(sites)
    if fit is not None:
        m.fit_bounds(fit, max_zoom=15, padding=(20, 20))
    elif city_bounds is not None:
        b = city_bounds
        m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    status_names = {s.value: _(s.zh) for s in DeadlineStatus}
    current, new, starts = _frames(sites, new_site_hits, tiles, cls_names, stg_names,
                                   status_names)
    common = {"link": site_link, "gettext": _, "id_label": "", "category_label": "",
              "link_label": _("查看详情")}

    # Lines first so the markers sit on top of them.
    weight, opacity, dash = LINE
    line_cats = {c: ("", c_colour) for c, c_colour in CLASSIFICATION_COLOURS.items()}
    line_styles = {c: {"stroke": colour, "weight": weight, "opacity": opacity, "dash": dash}
                   for c, colour in CLASSIFICATION_COLOURS.items()}
    line_cats[WARN] = ("", WARN_LINE[0])
    line_styles[WARN] = {"stroke": WARN_LINE[0], "weight": WARN_LINE[1], "opacity": 0.95}
    add_fast_points(m, starts, f"{_('搬迁路线')} ({len(new)})", ends=new.geometry,
                    colour_by="look", categories=line_cats, styles=line_styles,
                    default_style={"stroke": OTHER_COLOUR, "weight": weight,
                                   "opacity": opacity, "dash": dash},
                    name_field=None, gettext=_)

    ring = {"fill_opacity": 1.0, "opacity": 1.0}
    new_cats = {c: ("", "#ffffff") for c in CLASSIFICATION_COLOURS}
    new_styles = {c: {**ring, "stroke": colour, "weight": 3.0, "radius": NEW_SITE_RADIUS}
                  for c, colour in CLASSIFICATION_COLOURS.items()}
    new_cats[WARN] = ("", "#ffffff")
    new_styles[WARN] = {**ring, "stroke": WARN_RING[0], "weight": WARN_RING[1],
                        "radius": WARN_RING[2]}
    new_hits, new_rules = _hits(new_site_hits)
    add_fast_points(m, new, f"{_('搬迁新址')} ({len(new)})", colour_by="look",
                    categories=new_cats, styles=new_styles, default=("", "#ffffff"),
                    default_style={**ring, "stroke": OTHER_COLOUR, "weight": 3.0},
                    radius=NEW_SITE_RADIUS, tooltip=2, popup_class="rl-new",
                    fields=[("from", _("原企业")), ("industry", _("行业")),
                            ("cls_name", _("整治分类")), ("stage_name", _("进展"))],
                    hits=new_hits, rules=new_rules, hits_label=_("新址规则命中"),
                    nohits_label=_("新址无规则命中"), **common)

    site_cats, site_styles = _site_looks(current["look"])
    site_hits, site_rules = _hits(hits)
    add_fast_points(m, current, f"{_('企业现址')} ({len(current)})", colour_by="look",
                    categories=site_cats, styles=site_styles, radius=SITE_RADIUS, tooltip=1,
                    popup_class="rl-site",
                    fields=[("district", _("辖区")), ("industry", _("行业")),
                            ("cls_name", _("整治分类")), ("stage_name", _("进展")),
                            ("vacated_mu", _("腾退土地（亩）")),
                            ("deadline_name", _("督办状态")), ("days_overdue", _("逾期天数"))],
                    hits=site_hits, rules=site_rules, hits_label=_("规则命中"),
                    nohits_label=_("无规则命中"), **common)

    if "deadline_status" in current:  # a red ring around every overdue enterprise, on top
        late = current[current["deadline_status"] == DeadlineStatus.OVERDUE.value]
        colour, weight, radius = OVERDUE_RING
        add_fast_points(m, late, f"{_('逾期企业')} ({len(late)})", default=("", colour),
                        default_style={"stroke": colour, "weight": weight, "opacity": 1.0,
                                       "fill_opacity": 0.0, "radius": radius},
                        radius=radius, tooltip=1, popup_class="rl-overdue",
                        fields=[("district", _("辖区")), ("deadline_name", _("督办状态")),
                                ("days_overdue", _("逾期天数"))], **common)

    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    add_legend(m, _("图例"), legend_entries(cls_names, stg_names, _))
    return m


def legend_entries(class_names: Mapping[str, str], stage_names: Mapping[str, str],
                   _: Translate = identity) -> list[tuple[str, str, str]]:
    """The legend as (kind, colour, label): classifications, stage outlines, new sites and
    lines, and the warning marks."""
    entries = [("point", CLASSIFICATION_COLOURS[c], class_names.get(c.value, c.zh))
               for c in Classification]
    entries += [("outline", STAGE_OUTLINES[s][0] if s != Stage.NOT_STARTED else "#bbbbbb",
                 f"{_('外圈')}: {stage_names.get(s.value, s.zh)}") for s in Stage]
    entries += [("outline", "#d62728", _("新址（空心圈）")),
                ("line", "#d62728", _("搬迁路线")),
                ("outline", WARN_RING[0], _("新址违反规则")),
                ("line", WARN_LINE[0], _("搬迁路线（新址违反规则）")),
                ("outline", OVERDUE_RING[0], _("逾期企业（红圈）"))]
    return entries
