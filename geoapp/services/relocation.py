"""The planners' relocation view (百企退城): filtered enterprises, programme summary, ledger.

One pass: parse the filters (unknown values are an error naming the value, never an empty
map that looks like "no enterprises"), read the matching enterprises, count them against the
year's targets from ``programme.toml``, and hand the rows to the map, the table and the
exports, so all three always show exactly the same enterprises.
"""

from __future__ import annotations

import datetime as dt
import logging
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import pandas as pd

from geoapp.domain import deadlines as D
from geoapp.domain.errors import ConfigError, InvalidInput
from geoapp.domain.fields import header, ledger_header
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import Classification, SiteType, Stage
from geoapp.exports.tables import write_csv, write_xlsx
from geoapp.maps.relocation import relocation_map as build_relocation_map
from geoapp.services import deadlines as dl
from geoapp.services.checks import read_rules

log = logging.getLogger(__name__)

PROGRAMME_FILE = "programme.toml"
FILTER_NAMES: tuple[str, ...] = ("district", "industry", "classification", "stage")
STARTED_STAGES = (Stage.STARTED, Stage.COMPLETED, Stage.ACCEPTED)
COMPLETED_STAGES = (Stage.COMPLETED, Stage.ACCEPTED)
MU_PER_HECTARE = 15.0

#: Ledger columns (整治工作台账 order, then the programme's tracking columns): field -> header,
#: as the ledger template and the vocabulary (domain.fields) write them.
LEDGER_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (f, ledger_header(f.removesuffix("_zh"))) for f in (
        "seq", "district", "name", "address", "credit_code", "industry", "employees",
        "land_tenure", "safety_assessment", "energy_review", "eia_approval", "discharge_permit",
        "online_monitoring", "main_problems", "measures", "classification_zh", "deadline",
        "progress", "remarks", "stage_zh", "actual_start", "actual_completion", "new_site_name",
        "new_lon", "new_lat", "new_site_area_mu", "vacated_mu", "listed_mu", "sale_revenue_wan",
        "lon", "lat", "id"))
#: Derived columns of the ledger downloads: the 整改完成时限's status and days overdue as of
#: the view's day (docs/deadlines.md).
DEADLINE_COLUMNS: tuple[tuple[str, str], ...] = (("deadline_status_zh", "时限状态"),
                                                 ("deadline_days_overdue", "逾期天数"))
_YES_NO = ("safety_assessment", "energy_review", "online_monitoring")
_COLUMNS = [f for f, _ in LEDGER_COLUMNS if not f.endswith("_zh")] + [
    "classification", "stage", "planned_start", "planned_completion"]


@dataclass(frozen=True)
class Target:
    started: int
    completed: int


@dataclass(frozen=True)
class Programme:
    """The programme's name and its cumulative year-end targets."""

    name: str = "百企退城"
    targets: Mapping[int, Target] = field(default_factory=dict)

    def default_year(self, today: dt.date | None = None) -> int | None:
        """The current year if it has targets, else the latest year that has."""
        if not self.targets:
            return None
        year = (today or dt.date.today()).year
        return year if year in self.targets else max(self.targets)


@dataclass(frozen=True)
class RelocationFilters:
    """Chosen values per filter; an empty tuple means "all"."""

    district: tuple[str, ...] = ()
    industry: tuple[str, ...] = ()
    classification: tuple[str, ...] = ()
    stage: tuple[str, ...] = ()
    #: Only the enterprises with an overdue obligation (``?overdue=1``).
    overdue: bool = False
    #: The day deadlines are judged on (``?as_of=``); None: today.
    as_of: dt.date | None = None

    @property
    def active(self) -> bool:
        return any(getattr(self, n) for n in FILTER_NAMES) or self.overdue

    def as_query(self) -> dict[str, list[str]]:
        """The filters as URL query values (what makes a view a shareable link)."""
        out = {n: list(getattr(self, n)) for n in FILTER_NAMES if getattr(self, n)}
        if self.overdue:
            out["overdue"] = ["1"]
        if self.as_of is not None:
            out["as_of"] = [self.as_of.isoformat()]
        return out


@dataclass
class RelocationView:
    """Everything the page, the API and the exports show for one set of filters."""

    filters: RelocationFilters
    year: int | None
    sites: gpd.GeoDataFrame
    summary: dict[str, Any]
    #: Rule hits at each enterprise's current site, by site id.
    hits: dict[str, list[dict[str, Any]]]
    options: dict[str, list[str]]
    #: Rule hits at a relocating enterprise's new site (stored hits with point "new_site").
    new_site_hits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Deadline counts (``overdue_total``, ``due_soon_total``) and the day (``as_of``...).
    deadlines: dict[str, Any] = field(default_factory=dict)


# -- programme file ------------------------------------------------------------------------
def load_programme(path: str | Path) -> Programme:
    """Read ``programme.toml``; a missing file means no targets, a broken one is an error."""
    p = Path(path)
    if not p.is_file():
        log.info("no programme file at %s: summary without targets", p)
        return Programme()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    name = str(data.get("programme", {}).get("name", "百企退城"))
    targets: dict[int, Target] = {}
    for key, item in (data.get("targets") or {}).items():
        try:
            year = int(key)
            started, completed = int(item["started"]), int(item["completed"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{p}: [targets.{key}] needs a year and whole numbers "
                              "'started' and 'completed'") from None
        if started < 0 or completed < 0:
            raise ConfigError(f"{p}: [targets.{key}] targets must not be negative")
        targets[year] = Target(started, completed)
    return Programme(name=name, targets=dict(sorted(targets.items())))


def programme(app) -> Programme:
    """The programme of the app's data folder, re-read when the file changes."""
    return app.file_cached("programme", Path(app.settings["DATA_DIR"]) / PROGRAMME_FILE,
                           load_programme)


# -- filters -------------------------------------------------------------------------------
def _values(args: Mapping[str, Any], name: str) -> list[str]:
    raw = args.getlist(name) if hasattr(args, "getlist") else args.get(name, [])
    if isinstance(raw, str):
        raw = [raw]
    out: list[str] = []
    for item in raw or []:
        out += [v.strip() for v in str(item).split(",") if v.strip()]
    return list(dict.fromkeys(out))


def filter_options(app) -> dict[str, list[str]]:
    """The values each filter accepts: the city's districts and the ledger's industries."""
    ent = app.repo.sites(SiteType.ENTERPRISE, columns=["industry"])
    industries = sorted({str(v) for v in ent["industry"].dropna() if str(v).strip()})
    return {"district": [c.name for c in app.city.counties], "industry": industries,
            "classification": [c.value for c in Classification],
            "stage": [s.value for s in Stage]}


def parse_filters(app, args: Mapping[str, Any]) -> RelocationFilters:
    """Query values to filters; labels (搬迁升级) and machine names (relocate) both work."""
    options = filter_options(app)
    chosen: dict[str, tuple[str, ...]] = {}
    full_names = {c.full_name: c.name for c in app.city.counties}
    for name in ("district", "industry"):
        vals = []
        for v in _values(args, name):
            v = full_names.get(v, v) if name == "district" else v
            if v not in options[name]:
                allowed = ", ".join(options[name])
                raise InvalidInput(
                    _l("未知的辖区“%(value)s”；应为以下之一：%(allowed)s", value=v,
                       allowed=allowed) if name == "district" else
                    _l("未知的行业“%(value)s”；应为以下之一：%(allowed)s", value=v,
                       allowed=allowed))
            vals.append(v)
        chosen[name] = tuple(vals)
    for name, enum in (("classification", Classification), ("stage", Stage)):
        try:
            chosen[name] = tuple(enum.parse(v).value for v in _values(args, name))
        except ValueError as exc:
            label = header(name)
            raise InvalidInput(_l("%(label)s：%(message)s", label=label,
                                  message=exc.args[0])) from None
    overdue = str(args.get("overdue") or "").strip().lower() in ("1", "true", "on", "yes")
    return RelocationFilters(**chosen, overdue=overdue,
                             as_of=D.parse_as_of(args.get("as_of")))


def parse_year(app, value: str | None) -> int | None:
    """``?year=``: a year the programme file has targets for; empty means the default."""
    prog = programme(app)
    if value in (None, ""):
        return prog.default_year()
    try:
        year = int(str(value).strip())
    except ValueError:
        raise InvalidInput(_l("年度须为整数，而不是“%(value)s”", value=value)) from None
    if prog.targets and year not in prog.targets:
        years = ", ".join(str(y) for y in prog.targets)
        raise InvalidInput(_l("%(year)s 年度没有目标；已定义：%(years)s", year=year,
                              years=years))
    return year


# -- the view ------------------------------------------------------------------------------
def relocation_view(app, filters: RelocationFilters, year: int | None = None) -> RelocationView:
    """The filtered enterprises with their hits and the programme summary."""
    criteria = {n: list(getattr(filters, n)) for n in FILTER_NAMES if getattr(filters, n)}
    sites = app.repo.sites(SiteType.ENTERPRISE, columns=_COLUMNS, **criteria)
    sites = sites.sort_values(["seq", "id"], na_position="last").reset_index(drop=True)
    sites, deadline_counts = _with_deadlines(app, sites, filters)
    prog = programme(app)
    hits, new_site_hits = _hits_for(app, sites["id"])
    return RelocationView(filters=filters, year=year, sites=sites,
                          summary=summarize(sites, prog, year), hits=hits,
                          options=filter_options(app), new_site_hits=new_site_hits,
                          deadlines=deadline_counts)


def _with_deadlines(app, sites: gpd.GeoDataFrame, filters: RelocationFilters
                    ) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Each enterprise's deadline status as of the filters' day (columns ``deadline_status``:
    its worst obligation, ``days_overdue``, ``deadline_status_zh`` and
    ``deadline_days_overdue``: the 整改完成时限 alone, for the ledger downloads), only the
    overdue ones with ``overdue``, and the counts for the summary panel."""
    when = dl.as_of_day(filters.as_of)
    rules = dl.rules(app)
    by_id = dl.frame_obligations(sites, when.date, rules)
    worst, days, ledger_status, ledger_days = [], [], [], []
    for sid in sites["id"].astype(str):
        obs = by_id.get(sid, [])
        summary = D.summarize_site(obs)
        worst.append(summary.status.value if summary.status else None)
        days.append(summary.days_overdue if summary.status == D.Status.OVERDUE else None)
        own = next((o for o in obs if o.kind == "deadline"), None)
        ledger_status.append(own.status.zh if own else "")
        ledger_days.append(own.days_overdue if own and own.status == D.Status.OVERDUE
                           else None)
    sites = sites.assign(deadline_status=worst, days_overdue=pd.array(days, dtype="Int64"),
                         deadline_status_zh=ledger_status,
                         deadline_days_overdue=pd.array(ledger_days, dtype="Int64"))
    all_count = {"overdue_total": int((sites["deadline_status"] == D.Status.OVERDUE).sum()),
                 "due_soon_total": int((sites["deadline_status"] == D.Status.DUE_SOON).sum())}
    if filters.overdue:
        sites = sites[sites["deadline_status"] == D.Status.OVERDUE].reset_index(drop=True)
    return sites, {**all_count, **when.to_dict()}


def _pct(count: int, target: int | None) -> float | None:
    if not target:
        return None
    return round(100.0 * count / target, 1)


def summarize(sites: pd.DataFrame, prog: Programme, year: int | None) -> dict[str, Any]:
    """Counts by classification and stage, progress against the year's targets, land, money."""
    cls = sites["classification"].value_counts() if len(sites) else pd.Series(dtype=int)
    stg = sites["stage"].value_counts() if len(sites) else pd.Series(dtype=int)
    started = int(sites["stage"].isin(list(STARTED_STAGES)).sum()) if len(sites) else 0
    completed = int(sites["stage"].isin(list(COMPLETED_STAGES)).sum()) if len(sites) else 0
    target = prog.targets.get(year) if year is not None else None

    def total(col: str) -> float:
        return round(float(pd.to_numeric(sites[col], errors="coerce").fillna(0).sum()), 1) \
            if len(sites) else 0.0

    vacated, listed = total("vacated_mu"), total("listed_mu")
    relocations = sites[(sites["classification"] == Classification.RELOCATE)
                        & sites["new_lon"].notna() & sites["new_lat"].notna()] \
        if len(sites) else sites
    return {
        "total": len(sites),
        "programme": prog.name,
        "by_classification": [{"value": c.value, "zh": c.zh, "en": c.en,
                               "count": int(cls.get(c.value, 0))} for c in Classification],
        "by_stage": [{"value": s.value, "zh": s.zh, "en": s.en, "count": int(stg.get(s.value, 0))}
                     for s in Stage],
        "year": year,
        "started": started, "started_target": target.started if target else None,
        "started_pct": _pct(started, target.started if target else None),
        "completed": completed, "completed_target": target.completed if target else None,
        "completed_pct": _pct(completed, target.completed if target else None),
        "vacated_mu": vacated, "vacated_ha": round(vacated / MU_PER_HECTARE, 2),
        "listed_mu": listed, "listed_ha": round(listed / MU_PER_HECTARE, 2),
        "revenue_wan": total("sale_revenue_wan"),
        "relocations_with_new_site": len(relocations),
    }


def _rule_titles(app) -> dict[str, dict[str, str]]:

    def load(path: Path) -> dict[str, dict[str, str]]:
        try:
            return {r.id: r.title for r in read_rules(path)}
        except ConfigError:
            log.warning("rules file %s unreadable; hits show rule ids", path)
            return {}

    return app.file_cached("rule_titles", Path(app.settings["RULES_FILE"]), load)


HitsById = dict[str, list[dict[str, Any]]]


def _hits_for(app, ids: Iterable[str]) -> tuple[HitsById, HitsById]:
    """The stored rule hits of ``ids``: (at the current site, at the new site).

    A relocating enterprise's new site is checked by every rule; those hits are stored with
    ``point == "new_site"`` and must not be shown as the current site's.
    """
    wanted = set(ids)
    hits = app.repo.site_hits()
    if hits.empty or not wanted:
        return {}, {}
    hits = hits[hits["site_id"].isin(wanted)]
    points = (hits["point"].fillna("site") if "point" in hits
              else pd.Series("site", index=hits.index))
    titles = _rule_titles(app)
    at_site: HitsById = {}
    at_new: HitsById = {}
    for row, point in zip(hits.itertuples(index=False), points, strict=True):
        title = titles.get(row.rule_id, {"zh": row.rule_id, "en": row.rule_id})
        dist = None if pd.isna(row.distance_m) else round(float(row.distance_m))
        out = at_new if point == "new_site" else at_site
        out.setdefault(row.site_id, []).append(
            {"rule_id": row.rule_id, "title_zh": title["zh"], "title_en": title["en"],
             "feature": row.feature_name or "", "distance_m": dist, "severity": row.severity,
             "point": "new_site" if point == "new_site" else "site"})
    return at_site, at_new


def rules_broken(hits: Iterable[Mapping[str, Any]], lang: str = "zh") -> list[str]:
    """The titles of the rules in ``hits``, each once, in the order first hit."""
    key = "title_en" if lang == "en" else "title_zh"
    return list(dict.fromkeys(h[key] for h in hits))


# -- outputs -------------------------------------------------------------------------------
def ledger_table(view: RelocationView) -> pd.DataFrame:
    """Exactly the filtered rows, ledger columns with Chinese headers (for CSV and XLSX)."""
    df = pd.DataFrame(view.sites.drop(columns="geometry", errors="ignore"))
    df["classification_zh"] = df["classification"].map(
        {c.value: c.zh for c in Classification}).fillna(df["classification"])
    df["stage_zh"] = df["stage"].map({s.value: s.zh for s in Stage}).fillna(df["stage"])
    for f, _ in DEADLINE_COLUMNS:
        if f not in df:
            df[f] = None
    for col in _YES_NO:
        df[col] = df[col].map(lambda v: "" if v is None or v is pd.NA or v == ""
                              else ("有" if str(v).lower() in ("true", "1", "有") else "无"))
    columns = (*LEDGER_COLUMNS[:17], *DEADLINE_COLUMNS, *LEDGER_COLUMNS[17:])
    fields = [f for f, _ in columns]
    for f in fields:
        if f not in df:
            df[f] = None
    return df[fields].rename(columns=dict(columns))


def write_ledger(view: RelocationView, path: str | Path, fmt: str) -> Path:
    """Write the filtered ledger as ``csv`` or ``xlsx`` (formula injection neutralised)."""

    table = ledger_table(view)
    if fmt == "csv":
        return write_csv(table, path)
    if fmt == "xlsx":
        return write_xlsx({"百企退城台账": table}, path)
    raise InvalidInput(f"unknown export format {fmt!r}; expected csv or xlsx")


def site_rows(view: RelocationView) -> list[dict[str, Any]]:
    """Plain rows for the table and the API (no geometry objects)."""
    df = pd.DataFrame(view.sites.drop(columns="geometry", errors="ignore"))
    df = df.astype(object).where(df.notna(), None)
    rows = df.to_dict(orient="records")
    for r in rows:
        r["hits"] = view.hits.get(r["id"], [])
        r["new_site_hits"] = view.new_site_hits.get(r["id"], [])
    return rows


def relocation_map(app, view: RelocationView, *, lang: str = "zh",
                   gettext: Callable[[str], str] | None = None,
                   site_link: str = "/sites/{id}") -> folium.Map:
    """The relocation map for ``view``: rule titles and vocabulary names in ``lang``, the
    map's own words through ``gettext``; ``site_link`` is the site page URL with ``{id}``."""
    english = lang == "en"
    title = "title_en" if english else "title_zh"

    def named(hits: HitsById) -> HitsById:
        return {k: [{**h, "title": h[title]} for h in v] for k, v in hits.items()}

    outline = app.repo.layer("city").geometry.union_all()
    c = outline.centroid
    return build_relocation_map(
        view.sites, named(view.hits), new_site_hits=named(view.new_site_hits),
        center=(c.y, c.x), zoom=app.city.zoom, city_bounds=tuple(outline.bounds),
        tiles=app.settings["TILES"], tianditu_key=app.settings["TIANDITU_KEY"],
        site_link=site_link, gettext=gettext,
        classification_names={m.value: m.en if english else m.zh for m in Classification},
        stage_names={m.value: m.en if english else m.zh for m in Stage})
