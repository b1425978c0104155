"""Rule checks: one point (the inspector), one stored site, every stored site.

The rule engine is built once per process from the stored layers and the rules file and
rebuilt only when one of them changes (a cheap probe of the audit log and the file's mtime).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geoapp.domain.errors import ConfigError, InvalidInput
from geoapp.domain.messages import Text as _l
from geoapp.domain.results import CheckResult, Verdict, row_verdicts
from geoapp.domain.rules import RuleSet, is_missing, load_rules
from geoapp.domain.text import document_text
from geoapp.domain.units import canonical_industry
from geoapp.domain.vocab import SiteType
from geoapp.services import engine_cache
from geoapp.spatial.crs import parse_point
from geoapp.spatial.engine import RuleEngine

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

#: Audit entities whose changes do not touch the engine's inputs (a download only reads).
_NOT_ENGINE_INPUTS = ("site_hits", "derived_layer", "grid_warnings", "complaints", "user",
                      "session", "inspection", "download", "unit_requirements")

#: Site attributes the shipped rules' filters read, plus the new site of a relocation. The
#: attributes the current rules read are ``engine(app).rules.attributes()`` (any column).
RULE_ATTRS = ("classification", "stage", "status", "programme", "new_lon", "new_lat")
#: Attributes passed to the engine as its own arguments, not as ``attrs``.
_OWN_ARGS = ("site_type", "industry")

ZONES_LAYER = "exclusion_zones"


@dataclass
class _Built:
    key: tuple
    engine: RuleEngine
    #: "built" in this process, or "disk" when loaded from the engine cache file.
    source: str = "built"


_lock = threading.Lock()


def read_rules(path: str | Path, layers: list[str] | None = None) -> RuleSet:
    """Load and validate a rules file; a missing or broken file is a ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"rules file {p} does not exist")
    return load_rules(p.read_text(encoding="utf-8"), layers=layers)


def inputs_key(app: Geoapp) -> tuple:
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
    """The current rule engine, rebuilt when layers, sites or the rules file changed.

    A process that has none for the current inputs first looks for it in the engine cache
    file (``engine_cache``, setting ENGINE_CACHE) and writes the one it builds there.
    """
    key = inputs_key(app)
    built: _Built | None = app.cache.get("engine")
    if built is not None and built.key == key:
        return built.engine
    with _lock:
        built = app.cache.get("engine")
        if built is not None and built.key == key:
            return built.engine
        cache = engine_cache_file(app, key)
        started = time.perf_counter()
        eng = cache.load() if cache is not None else None
        if eng is not None:
            app.cache["engine"] = _Built(key, eng, "disk")
            log.info("rule engine loaded from %s in %.2f s", cache.path,
                     time.perf_counter() - started)
            return eng
        eng = _build_engine(app)
        app.cache["engine"] = _Built(key, eng)
        if cache is not None and inputs_key(app) == key:
            cache.store(eng)
        return eng


def engine_cache_file(app: Geoapp, key: tuple | None = None) -> engine_cache.EngineCache | None:
    """The engine cache file for the current inputs (``key``: ``inputs_key(app)`` read just
    before); None when ENGINE_CACHE is off, or an edit came in since ``key`` was read."""
    if not engine_cache.enabled(app.settings):
        return None
    full = engine_cache.disk_key(app, _NOT_ENGINE_INPUTS)
    if key is not None and full["change"]["id"] != key[2]:
        return None
    return engine_cache.EngineCache.for_app(app, full)


def _build_engine(app: Geoapp) -> RuleEngine:
    names = app.repo.layer_names()
    rules = read_rules(app.settings["RULES_FILE"], names)
    layers = {n: app.repo.layer(n) for n in {r.stored_layer for r in rules
                                              if r.stored_layer is not None}
              if n in names}
    extent, outline = None, None
    if "city" in names:
        outline = app.repo.layer("city")
        extent = tuple(outline.total_bounds) if len(outline) else None
    eng = RuleEngine.build(layers, rules, app.metric_crs, sites=app.repo.sites(),
                           extent=extent, outline=outline)
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


def rule_attributes(app: Geoapp) -> tuple[str, ...]:
    """The site attributes the current rules read besides site_type and industry (e.g.
    ``classification``, ``status``, ``fuel``): what a check may pass as ``attrs``."""
    return tuple(a for a in engine(app).rules.attributes() if a not in _OWN_ARGS)


def _given(attrs: Any, read: Any = None) -> dict[str, Any]:
    """The attributes actually given (and, with ``read``, read by some rule): blanks
    dropped, text stripped."""
    out = {}
    for k, v in (attrs or {}).items():
        if k in _OWN_ARGS or is_missing(v) or (read is not None and k not in read):
            continue
        out[str(k)] = v.strip() if isinstance(v, str) else v
    return out


@dataclass(frozen=True)
class IndustryReading:
    """How a typed industry is checked: ``used`` is what the rules see (None: not given),
    ``given`` the text as typed, ``how`` one of exact / matched / other / several:… /
    unknown (see ``read_industry``)."""

    used: str | None
    given: str | None
    how: str | None

    @property
    def differs(self) -> bool:
        return self.given is not None and self.given != self.used


def rule_industries(eng: RuleEngine) -> set[str]:
    """The industries the rules' filters name."""
    return {v for rule in eng.rules for clause in rule.applies_to.clauses
            for c in clause if c.attr == "industry" for v in c.values}


def _site_industries(app: Geoapp) -> frozenset[str]:
    key = inputs_key(app)
    cached = app.cache.get("site_industries")
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        values = app.repo.sites(columns=["industry"])["industry"].dropna()
        found = frozenset(str(v).strip() for v in values if str(v).strip())
    except (KeyError, ValueError):
        found = frozenset()
    app.cache["site_industries"] = (key, found)
    return found


def read_industry(app: Geoapp, text: Any) -> IndustryReading:
    """The industry the rules should see for ``text`` typed by a user.

    * named as the rules name it → itself (``exact``);
    * naming exactly one rule industry by its name or a synonym of the city's keyword table
      (化工厂, 化学原料和化学制品制造业 → 化工) → that industry (``matched``);
    * naming several (化工及畜禽养殖) → not given (``several:化工、畜禽养殖``): it cannot be
      checked as one of them alone;
    * an industry the city knows the rules do not restrict (``[industries] other``, the
      keyword table's, the stored sites') → itself (``other``);
    * anything else → not given (``unknown``), so a rule on industries that could apply makes
      the verdict needs_info, never pass.
    """
    given = (document_text(str(text)) if text is not None else "").strip() or None
    if given is None:
        return IndustryReading(None, None, None)
    eng = engine(app)
    keywords = app.city.industry_keywords
    used, how = canonical_industry(given, rule_industries(eng), keywords)
    if how == "unknown":
        known = set(app.city.other_industries) | set(keywords) | _site_industries(app)
        if given in known:
            return IndustryReading(given, given, "other")
    return IndustryReading(used, given, how)


def check_point(app: Geoapp, x: Any, y: Any, crs: str = "wgs84", *,
                site_type: str | None = None, industry: str | None = None,
                attrs: dict[str, Any] | None = None) -> CheckResult:
    """The inspector's check: a point in a named coordinate system against every rule.

    ``attrs`` are further site attributes (``fuel``, ``status``…); those no rule reads are
    dropped (they cannot change the verdict). Both coordinates are required, except for
    ``crs=dms``, where ``x`` holds the whole text.
    """
    if is_missing(x) or (is_missing(y) and (crs or "wgs84") != "dms"):
        raise InvalidInput(_l("请填写经度和纬度（度分秒可整段填在第一栏）。"))
    st = parse_site_type(site_type)
    reading = read_industry(app, industry)
    ind = reading.used
    lon, lat = parse_point(x, y, crs or "wgs84", metric_crs=app.metric_crs)
    eng = engine(app)
    extra = _given(attrs, eng.rules.attributes()) if attrs else {}
    result = eng.check_point(lon, lat, site_type=st, industry=ind, attrs=extra or None)
    given = {"lon": x, "lat": y, "crs": crs or "wgs84", "site_type": st, "industry": ind,
             **({"industry_given": reading.given} if reading.differs else {}), **extra}
    return CheckResult(input=given, lon=lon, lat=lat, hits=result.hits, nearest=result.nearest,
                       conditional_hits=result.conditional_hits, covered=result.covered)


def _new_site(site: dict[str, Any]) -> tuple[float, float] | None:
    try:
        x, y = float(site.get("new_lon")), float(site.get("new_lat"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return (x, y) if np.isfinite(x) and np.isfinite(y) else None


def check_site(app: Geoapp, site_id: str) -> CheckResult:
    """A stored site against every rule that applies to it, with every stored attribute a
    rule reads; for a relocation its new site too, by every rule (hits marked new_site)."""
    site = app.repo.site(site_id)
    eng = engine(app)
    attrs = _given({k: site.get(k) for k in eng.rules.attributes()})
    st, ind = site["site_type"], site.get("industry") or None
    result = eng.check_point(site["lon"], site["lat"], site_type=st, industry=ind, attrs=attrs)
    hits, conditional = list(result.hits), list(result.conditional_hits)
    covered = result.covered
    new_site = _new_site(site)
    if new_site is not None:
        new = eng.check_point(*new_site, site_type=st, industry=ind, attrs=attrs,
                              point="new_site")
        hits += list(new.hits)
        conditional += list(new.conditional_hits)
        covered = covered and new.covered
    given = {"site_id": site_id, "name": site.get("name"), "site_type": st,
             "industry": site.get("industry"), **attrs}
    return CheckResult(input=given, lon=site["lon"], lat=site["lat"], hits=tuple(hits),
                       nearest=result.nearest, conditional_hits=tuple(conditional),
                       covered=covered)


def site_columns(sites: pd.DataFrame, attributes: Any = ()) -> dict[str, np.ndarray]:
    """The attribute columns the engine's filters read, as object arrays: site_type,
    industry, ``RULE_ATTRS`` and ``attributes`` (e.g. ``RuleSet.attributes()``)."""
    cols = {}
    for c in dict.fromkeys(("site_type", "industry", *RULE_ATTRS, *attributes)):
        if c not in sites.columns or c == "geometry":
            continue
        if c in ("new_lon", "new_lat"):
            cols[c] = pd.to_numeric(sites[c], errors="coerce").to_numpy(dtype=float)
        else:
            cols[c] = sites[c].to_numpy(dtype=object)
    return cols


#: Tries of ``flag_all`` outside the write lock before it flags inside it.
_FLAG_ATTEMPTS = 3


def _flag_stored_sites(app: Geoapp):
    """The engine, the stored sites, their rule columns and every hit (with ``row``)."""
    eng = engine(app)
    sites = app.repo.sites()
    cols = site_columns(sites, eng.rules.attributes())
    lon, lat = sites.geometry.x.to_numpy(), sites.geometry.y.to_numpy()
    found = eng.flag(lon, lat, cols.pop("site_type"), cols.pop("industry"), **cols)
    ids = sites["id"].to_numpy(dtype=object)
    return eng, sites, cols, found.assign(site_id=ids[found["row"].to_numpy()])


def flag_all(app: Geoapp, *, user: str = "rules") -> dict[str, Any]:
    """Re-flag every stored site and refresh the stored exclusion zones.

    ``site_hits`` keeps the definite hits (at the site and, for relocations, the new site:
    column ``point``); conditional hits (a stored site lacking an attribute a rule reads)
    are counted in the summary, not stored as hits.

    The sites are read and flagged outside the write lock (seconds for a big city), so another
    process may change a site or a layer meanwhile; the hits are written only if nothing the
    engine reads changed since they were read, else the work is done again, the last time
    inside the write transaction: stored hits never lag behind a committed change.
    """
    for attempt in range(_FLAG_ATTEMPTS):
        last_try = attempt == _FLAG_ATTEMPTS - 1
        with app.repo.transaction() if last_try else nullcontext():
            start = app.repo.last_change_id(exclude=_NOT_ENGINE_INPUTS)
            eng, sites, cols, found = _flag_stored_sites(app)
            conditional = found.loc[found["conditional"].to_numpy(dtype=bool)]
            hits = found.loc[~found["conditional"].to_numpy(dtype=bool)].drop(
                columns=["row", "conditional"])
            with app.repo.transaction():
                if app.repo.last_change_id(exclude=_NOT_ENGINE_INPUTS) != start:
                    log.info("sites or layers changed while flagging; flagging again")
                    continue
                count = app.repo.replace_site_hits(hits, user=user)
                app.repo.write_derived_layer(ZONES_LAYER, eng.exclusion_zones(), user=user)
            break
    lon, lat = sites.geometry.x.to_numpy(), sites.geometry.y.to_numpy()
    flagged = int(hits["site_id"].nunique())
    covered = eng.covered(lon, lat)
    has_new = np.isfinite(cols["new_lon"]) & np.isfinite(cols["new_lat"]) \
        if "new_lon" in cols and "new_lat" in cols else np.zeros(len(sites), dtype=bool)
    covered[has_new] &= eng.covered(cols["new_lon"][has_new], cols["new_lat"][has_new])
    is_cond = found["conditional"].to_numpy(dtype=bool)
    verdicts = row_verdicts(len(sites), found["row"].to_numpy()[~is_cond],
                            found["row"].to_numpy()[is_cond], covered)
    log.info("flagged %d of %d sites, %d hits", flagged, len(sites), count)
    return {"sites": len(sites), "flagged_sites": flagged, "hits": count,
            "by_rule": hits.groupby("rule_id").size().sort_index().to_dict(),
            "conditional_hits": len(conditional),
            "verdicts": {v.value: int((verdicts == v.value).sum()) for v in Verdict}}


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
