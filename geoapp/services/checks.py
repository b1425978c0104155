"""Rule checks: one point (the inspector), one stored site, every stored site.

The rule engine is built once per process from the stored layers and the rules file and
rebuilt only when one of them changes (a cheap probe of the audit log and the file's mtime).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geoapp.domain.errors import ConfigError, InvalidInput
from geoapp.domain.results import CheckResult
from geoapp.domain.rules import RuleSet, load_rules
from geoapp.domain.vocab import SiteType

if TYPE_CHECKING:
    from geoapp.services import Geoapp
    from geoapp.spatial.engine import RuleEngine

log = logging.getLogger(__name__)

#: Audit entities whose changes do not touch the engine's inputs.
_NOT_ENGINE_INPUTS = ("site_hits", "derived_layer", "grid_warnings", "complaints", "user",
                      "session", "inspection")

#: Site attributes the rules' filters may read.
RULE_ATTRS = ("classification", "stage", "status", "programme", "new_lon", "new_lat")

ZONES_LAYER = "exclusion_zones"


@dataclass
class _Built:
    key: tuple
    engine: RuleEngine


_lock = threading.Lock()


def read_rules(path: str | Path, layers: list[str] | None = None) -> RuleSet:
    """Load and validate a rules file; a missing or broken file is a ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"rules file {p} does not exist")
    return load_rules(p.read_text(encoding="utf-8"), layers=layers)


def _engine_key(app: Geoapp) -> tuple:
    """What the engine was built from: the rules file's stamp and the newest relevant edit.

    Cheap (one stat, one indexed query), so every check can afford it and an edit made by
    another worker process is seen on the next request.
    """
    rules = Path(app.settings["RULES_FILE"])
    try:
        st = rules.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    return (str(rules), stamp, app.repo.last_change_id(exclude=_NOT_ENGINE_INPUTS))


def engine(app: Geoapp) -> RuleEngine:
    """The current rule engine, rebuilt when layers, sites or the rules file changed."""
    key = _engine_key(app)
    built: _Built | None = app.cache.get("engine")
    if built is not None and built.key == key:
        return built.engine
    with _lock:
        built = app.cache.get("engine")
        if built is not None and built.key == key:
            return built.engine
        from geoapp.spatial.engine import RuleEngine

        names = app.repo.layer_names()
        rules = read_rules(app.settings["RULES_FILE"], names)
        layers = {n: app.repo.layer(n) for n in {r.stored_layer for r in rules
                                                  if r.stored_layer is not None}
                  if n in names}
        extent = None
        if "city" in names:
            outline = app.repo.layer("city")
            extent = tuple(outline.total_bounds) if len(outline) else None
        eng = RuleEngine.build(layers, rules, app.metric_crs, sites=app.repo.sites(),
                               extent=extent)
        app.cache["engine"] = _Built(key, eng)
        log.info("rule engine built: %d rules, %d layers", len(rules), len(layers))
        return eng


def warm_engine(app: Geoapp) -> threading.Thread:
    """Build the engine in the background so the first check after a (worker) start does not
    wait for it; a check arriving meanwhile waits on the same lock instead of building twice.
    """

    def _build() -> None:
        try:
            engine(app)
        except Exception:  # the first real check reports the error to its caller
            log.exception("rule engine warm-up failed")

    thread = threading.Thread(target=_build, name="geoapp-engine-warm-up", daemon=True)
    thread.start()
    return thread


def parse_site_type(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    try:
        return SiteType.parse(value).value
    except ValueError as exc:
        raise InvalidInput(f"site_type: {exc}") from None


def check_point(app: Geoapp, x: Any, y: Any, crs: str = "wgs84", *,
                site_type: str | None = None, industry: str | None = None) -> CheckResult:
    """The inspector's check: a point in a named coordinate system against every rule."""
    from geoapp.spatial.crs import parse_point

    st = parse_site_type(site_type)
    ind = (industry or "").strip() or None
    lon, lat = parse_point(x, y, crs or "wgs84", metric_crs=app.metric_crs)
    result = engine(app).check_point(lon, lat, site_type=st, industry=ind)
    given = {"lon": x, "lat": y, "crs": crs or "wgs84", "site_type": st, "industry": ind}
    return CheckResult(input=given, lon=lon, lat=lat, hits=result.hits, nearest=result.nearest)


def check_site(app: Geoapp, site_id: str) -> CheckResult:
    """A stored site against every rule (and, for a relocation, its new site too)."""
    site = app.repo.site(site_id)
    eng = engine(app)
    attrs = {k: site.get(k) for k in RULE_ATTRS if site.get(k) not in (None, "")}
    result = eng.check_point(site["lon"], site["lat"], site_type=site["site_type"],
                             industry=site.get("industry") or None, attrs=attrs)
    hits = list(result.hits)
    if site.get("new_lon") not in (None, "") and site.get("new_lat") not in (None, ""):
        new = eng.check_point(float(site["new_lon"]), float(site["new_lat"]),
                              site_type=site["site_type"], industry=site.get("industry"),
                              attrs=attrs, point="new_site")
        hits += list(new.hits)
    given = {"site_id": site_id, "name": site.get("name"), "site_type": site["site_type"],
             "industry": site.get("industry")}
    return CheckResult(input=given, lon=site["lon"], lat=site["lat"], hits=tuple(hits),
                       nearest=result.nearest)


def site_columns(sites: pd.DataFrame) -> dict[str, np.ndarray]:
    """The attribute columns the engine's filters read, as object arrays."""
    cols = {}
    for c in ("site_type", "industry", *RULE_ATTRS):
        if c not in sites.columns:
            continue
        if c in ("new_lon", "new_lat"):
            cols[c] = pd.to_numeric(sites[c], errors="coerce").to_numpy(dtype=float)
        else:
            cols[c] = sites[c].to_numpy(dtype=object)
    return cols


def flag_all(app: Geoapp, *, user: str = "rules") -> dict[str, Any]:
    """Re-flag every stored site and refresh the stored exclusion zones."""
    eng = engine(app)
    sites = app.repo.sites()
    cols = site_columns(sites)
    hits = eng.flag(sites.geometry.x.to_numpy(), sites.geometry.y.to_numpy(),
                    cols.pop("site_type"), cols.pop("industry"), **cols)
    ids = sites["id"].to_numpy(dtype=object)
    hits = hits.assign(site_id=ids[hits["row"].to_numpy()]).drop(columns="row")
    with app.repo.transaction():
        count = app.repo.replace_site_hits(hits, user=user)
        app.repo.write_derived_layer(ZONES_LAYER, eng.exclusion_zones(), user=user)
    flagged = int(hits["site_id"].nunique())
    log.info("flagged %d of %d sites, %d hits", flagged, len(sites), count)
    return {"sites": len(sites), "flagged_sites": flagged, "hits": count,
            "by_rule": hits.groupby("rule_id").size().sort_index().to_dict()}


def hits_are_stale(app: Geoapp) -> bool:
    """True when sites, layers or the rules file changed after the stored hits were made."""
    last_hits = app.repo.last_change(only=("site_hits",))
    if last_hits is None:
        return True
    if app.repo.last_change_id(exclude=_NOT_ENGINE_INPUTS) > last_hits["id"]:
        return True
    rules = Path(app.settings["RULES_FILE"])
    if rules.is_file():
        flagged_at = datetime.fromisoformat(last_hits["at"])
        if flagged_at.tzinfo is None:
            flagged_at = flagged_at.replace(tzinfo=UTC)
        return datetime.fromtimestamp(rules.stat().st_mtime, UTC) > flagged_at
    return False


def refresh_hits(app: Geoapp) -> dict[str, Any] | None:
    """Re-flag the stored sites if anything they depend on changed; None if up to date."""
    return flag_all(app) if hits_are_stale(app) else None
