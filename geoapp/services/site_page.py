"""The site page (/sites/<id>) as a person reads it: the stored site with its live check
(:func:`geoapp.services.inspection.site_page`), its small map, and the raw values the store
keeps put into words — the data origin (``synthetic``), the account of automatic changes
(``system``) and UTC timestamps as local time (``2026-11-30 14:05``, Asia/Shanghai).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

import folium

from geoapp.domain.bulletin import LOCAL_TZ
from geoapp.domain.vocab import SiteType
from geoapp.maps.base import Translate, identity
from geoapp.maps.site import site_map
from geoapp.services import deadlines, emergency, inspection, pagemap, photos
from geoapp.services.complaints import site_complaints
from geoapp.services.core import Geoapp

#: How a local time is written on the pages.
TIME_FORMAT = "%Y-%m-%d %H:%M"
#: Site attributes that hold a timestamp, an account and the data origin.
TIME_FIELDS = ("updated_at",)
ACCOUNT_FIELDS = ("updated_by",)
ORIGIN_FIELDS = ("source",)


def N_(text: str) -> str:  # noqa: N802 (the conventional name of a gettext marker)
    """Marks ``text`` for the message catalogue; it is translated where it is shown."""
    return text


#: Accounts the app itself writes under, in words.
ACCOUNT_WORDS = {"system": N_("系统（自动）"), "rules": N_("规则核查（自动）"),
                 "cli": N_("命令行")}
#: Data origins in words (any other origin is the source's own name).
ORIGIN_WORDS = {"synthetic": N_("合成示例数据")}
#: The change kinds of the history, as :mod:`geoapp.services.inspection` names them.
ACTION_WORDS = (N_("新增"), N_("修改"), N_("删除"), N_("导入"))


def local_time(value: Any, tz: tzinfo = LOCAL_TZ) -> str:
    """An ISO timestamp (UTC when it names no offset) as local time, ``2026-11-30 14:05``;
    anything that is not a timestamp comes back as text, unchanged."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, datetime):
        stamp = value
    else:
        text = str(value).strip()
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            return text
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(tz).strftime(TIME_FORMAT)


def account_words(user: Any, gettext: Translate = identity) -> str:
    """An account name, or what the app's own accounts (``system``...) stand for."""
    name = "" if user is None else str(user)
    return gettext(ACCOUNT_WORDS[name]) if name in ACCOUNT_WORDS else name


def origin_words(source: Any, gettext: Translate = identity) -> str:
    """A data origin in words: ``synthetic`` is demonstration data; a source's name stays."""
    name = "" if source is None else str(source)
    return gettext(ORIGIN_WORDS[name]) if name in ORIGIN_WORDS else name


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def new_site_of(site: Mapping[str, Any]) -> tuple[float, float, str] | None:
    """(lon, lat, name) of a relocation's new site, or None when it has no point."""
    lon, lat = _number(site.get("new_lon")), _number(site.get("new_lat"))
    if lon is None or lat is None:
        return None
    return lon, lat, str(site.get("new_site_name") or "")


def page_map(app: Geoapp, site: Mapping[str, Any], check: Any, verdict: str, *,
             gettext: Translate = identity) -> folium.Map:
    """The site on a small map: in its verdict's colour, with the features of the rules it
    breaks there and its new site."""
    # Only the hits are drawn: their features alone are read (not every layer's nearest).
    hits_only = dataclasses.replace(check, nearest=(), conditional_hits=())
    features = inspection.map_features(app, hits_only)
    hits = features[features["hit"].astype(bool)]
    tiles, key = pagemap.basemap(app)
    return site_map(float(site["lon"]), float(site["lat"]), verdict=verdict,
                    name=str(site.get("name") or site["id"]), metric_crs=app.metric_crs,
                    hits=hits, new_site=new_site_of(site), tiles=tiles, tianditu_key=key,
                    gettext=gettext)


def view(app: Geoapp, site_id: str, *, gettext: Translate = identity,
         tz: tzinfo = LOCAL_TZ, as_of: str | None = None) -> dict[str, Any]:
    """Everything /sites/<id> shows (NotFound for an unknown id): the keys of
    :func:`geoapp.services.inspection.site_page` with stored values in words and local
    time, plus ``map`` (folium), ``new_site`` and ``type_labels`` (zh, en). ``as_of``
    (``?as_of=2026-12-03``) is the day the deadlines are judged on (today without one;
    InvalidInput for anything that is not a date)."""
    day = deadlines.as_of_day(as_of)
    data = inspection.site_page(app, site_id)
    for attr in data["attributes"]:
        if attr["field"] in TIME_FIELDS:
            attr["value"] = local_time(attr["value"], tz)
        elif attr["field"] in ACCOUNT_FIELDS:
            attr["value"] = account_words(attr["value"], gettext)
        elif attr["field"] in ORIGIN_FIELDS:
            attr["value"] = origin_words(attr["value"], gettext)
    data["history"] = [{**row, "at": local_time(row["at"], tz),
                        "user": account_words(row["user"], gettext),
                        "action": gettext(row["action"])} for row in data["history"]]
    data["inspections"] = [{**rec, "at": local_time(rec.get("at"), tz),
                            "inspector": account_words(rec.get("inspector"), gettext)}
                           for rec in data["inspections"]]
    data["inspection_photos"] = photos.site_photos(app, site_id)
    data["suspected_complaints"] = site_complaints(app, site_id)
    data["deadlines"] = deadlines.site_section(app, data["site"], as_of=day.date,
                                               gettext=gettext)
    data["emergency"] = emergency.site_measures(app, site_id)
    kind = SiteType(data["site"]["site_type"])
    data["type_labels"] = {"zh": kind.zh, "en": kind.en}
    data["new_site"] = new_site_of(data["site"])
    data["map"] = page_map(app, data["site"], data["check"], data["shown"]["verdict"],
                           gettext=gettext)
    return data


def conflict_words(details: Mapping[str, Any] | None, *, gettext: Translate = identity,
                   tz: tzinfo = LOCAL_TZ) -> dict[str, Any]:
    """A save conflict's details (who saved, when, what) in words and local time."""
    d = dict(details or {})
    d["updated_at"] = local_time(d.get("updated_at"), tz)
    d["updated_by"] = account_words(d.get("updated_by"), gettext)
    d["changes"] = [{**c, "at": local_time(c.get("at"), tz),
                     "user": account_words(c.get("user"), gettext)}
                    for c in d.get("changes") or []]
    return d
