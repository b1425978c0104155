"""The weekly hotspot-grid warning and 12369 hotline bulletin, as one use case.

Every Monday the duty officer publishes last week's warnings and complaints. This module
counts them (per grid, per county, per complaint category), finds the enterprises inside the
warned grids and the grids warned in consecutive weeks, and hands the result to the exporters
(text, folium HTML, PNG, DOCX, XLSX). The CLI and the web page both call :func:`weekly_report`
then :func:`write_weekly`; the page also shows :func:`weekly_map`. Nothing here knows about
HTTP.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import pandas as pd

from geoapp.domain import bulletin
from geoapp.domain.bulletin import IsoWeek
from geoapp.domain.errors import NotFound
from geoapp.domain.vocab import Classification, ComplaintCategory, Stage
from geoapp.exports.bulletin_docx import write_docx
from geoapp.exports.bulletin_xlsx import write_bulletin_xlsx
from geoapp.exports.mapimage import render_png
from geoapp.maps.weekly import weekly_map as draw_weekly_map
from geoapp.services import complaints as complaint_points
from geoapp.services import deadlines
from geoapp.services import interviews as interview_list
from geoapp.services.pagemap import basemap, standalone

log = logging.getLogger(__name__)

HISTORY_WEEKS = 8
FILES = ("bulletin.txt", "map.html", "map.png", "bulletin.docx", "bulletin.xlsx")


@dataclass
class WeeklyReport:
    """Everything a bulletin shows, for one ISO week."""

    week: IsoWeek
    city_name: str
    county_order: tuple[str, ...]
    grids: gpd.GeoDataFrame        # every cell: code, key, county, count, streak, geometry
    counties: gpd.GeoDataFrame     # name, geometry
    per_grid: pd.DataFrame         # warned cells: code, county, key, count, pollutants, ...
    per_county: pd.DataFrame       # county, count (bulletin order, zeros included)
    complaints: pd.DataFrame       # category, label, count, percent (every category)
    complaints_total: int
    complaints_previous: int
    enterprises: pd.DataFrame      # enterprises inside warned cells
    consecutive: pd.DataFrame      # cells warned this week and the week(s) before
    history: pd.DataFrame          # warned cells x last 8 weeks, warning counts
    text: str
    #: The week's located complaints with their suspected sources (the map's markers) and
    #: how many had no coordinates; the 约谈 list (grids warned INTERVIEW_WEEKS weeks in a row).
    complaint_points: complaint_points.ComplaintPoints | None = field(default=None)
    interviews: interview_list.Interviews | None = field(default=None)
    #: The 逾期督办 section: overdue obligations as of the week's Sunday (docs/deadlines.md).
    overdue: deadlines.BulletinSection | None = field(default=None)

    @property
    def title(self) -> str:
        return f"{self.city_name}热点网格预警及12369环境热线投诉情况周报"

    @property
    def date_range(self) -> str:
        return bulletin.date_range_zh(self.week)

    @property
    def warnings_total(self) -> int:
        return int(self.per_grid["count"].sum()) if len(self.per_grid) else 0


# ------------------------------------------------------------------------------ helpers
def _times(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series.astype(str), format="ISO8601", errors="coerce")


def _in_week(times: pd.Series, week: IsoWeek) -> pd.Series:
    return (times >= pd.Timestamp(week.start)) & (times < pd.Timestamp(week.end))


def _week_labels(times: pd.Series) -> pd.Series:
    iso = times.dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)


def _warned_weeks(warnings: pd.DataFrame, upto: IsoWeek) -> dict[str, set[str]]:
    t = _times(warnings["warned_at"])
    keep = t < pd.Timestamp(upto.end)
    labels = _week_labels(t[keep])
    out: dict[str, set[str]] = {}
    for code, label in zip(warnings.loc[keep, "grid_code"].astype(str), labels, strict=True):
        out.setdefault(code, set()).add(label)
    return out


def _streak(weeks: set[str], week: IsoWeek) -> int:
    n = 0
    while str(week.shift(-n)) in weeks:
        n += 1
    return n


# ------------------------------------------------------------------------------ steps
def _per_grid(grids: gpd.GeoDataFrame, this_week: pd.DataFrame,
              weeks_by_grid: dict[str, set[str]], week: IsoWeek) -> pd.DataFrame:
    if this_week.empty:
        return pd.DataFrame(columns=["code", "county", "key", "count", "pollutants",
                                     "max_value", "streak"])
    g = this_week.groupby("grid_code", sort=True)
    per = pd.DataFrame({
        "count": g.size(),
        "pollutants": g["pollutant"].agg(lambda s: "、".join(sorted(set(map(str, s))))),
        "max_value": pd.to_numeric(this_week["value"], errors="coerce")
        .groupby(this_week["grid_code"]).max(),
    }).rename_axis("code").reset_index()
    info = pd.DataFrame(grids[["code", "county", "key"]])
    per = per.merge(info, on="code", how="left")
    per["streak"] = [_streak(weeks_by_grid.get(c, set()), week) for c in per["code"]]
    per = per.sort_values(["count", "code"], ascending=[False, True], kind="stable")
    return per[["code", "county", "key", "count", "pollutants", "max_value", "streak"]]\
        .reset_index(drop=True)


def _per_county(per_grid: pd.DataFrame, county_order: tuple[str, ...]) -> pd.DataFrame:
    counts = per_grid.groupby("county")["count"].sum().to_dict() if len(per_grid) else {}
    warned, quiet = bulletin.counties_in_bulletin_order(counts, county_order)
    rows = [(n, c) for n, c in warned] + [(n, 0) for n in quiet]
    return pd.DataFrame(rows, columns=["county", "count"])


def _complaint_counts(complaints: pd.DataFrame, week: IsoWeek) -> tuple[pd.DataFrame, int, int]:
    t = _times(complaints["received_at"]) if len(complaints) else pd.Series(dtype="datetime64[ns]")
    cats = complaints["category"].astype(str) if len(complaints) else pd.Series(dtype=str)
    this = cats[_in_week(t, week)] if len(complaints) else cats
    prev_total = int(_in_week(t, week.previous()).sum()) if len(complaints) else 0
    counts = [int((this == c.value).sum()) for c in ComplaintCategory]
    shares = bulletin.largest_remainder_percentages(counts)
    table = pd.DataFrame({"category": [c.value for c in ComplaintCategory],
                          "label": [bulletin.CATEGORY_PHRASE[c.value] for c in ComplaintCategory],
                          "count": counts, "percent": shares})
    return table, sum(counts), prev_total


def _enterprises(app, warned: gpd.GeoDataFrame, per_grid: pd.DataFrame) -> pd.DataFrame:
    cols = ["grid_code", "grid_county", "key", "warnings", "id", "name", "district",
            "industry", "classification", "stage"]
    if warned.empty:
        return pd.DataFrame(columns=cols)
    sites = app.repo.sites("enterprise", columns=["name", "district", "industry",
                                                  "classification", "stage"])
    if sites.empty:
        return pd.DataFrame(columns=cols)
    joined = gpd.sjoin(sites, warned[["code", "geometry"]], how="inner", predicate="within")
    joined = pd.DataFrame(joined.drop(columns="geometry")).rename(columns={"code": "grid_code"})
    info = per_grid.rename(columns={"code": "grid_code", "county": "grid_county",
                                    "count": "warnings"})[["grid_code", "grid_county", "key",
                                                           "warnings"]]
    joined = joined.merge(info, on="grid_code", how="left")
    joined["classification"] = joined["classification"].map(_label(Classification))
    joined["stage"] = joined["stage"].map(_label(Stage))
    joined = joined.sort_values(["warnings", "grid_code", "id"], ascending=[False, True, True],
                                kind="stable")
    return joined[cols].reset_index(drop=True)


def _label(enum) -> Any:
    def zh(v: Any) -> str:
        if v is None or (isinstance(v, float) and pd.isna(v)) or v == "":
            return ""
        try:
            return enum(str(v)).zh
        except ValueError:
            return str(v)
    return zh


def _history(warnings: pd.DataFrame, codes: list[str], week: IsoWeek) -> pd.DataFrame:
    weeks = [str(w) for w in bulletin.weeks_ending(week, HISTORY_WEEKS)]
    if not codes:
        return pd.DataFrame(columns=["code", *weeks])
    t = _times(warnings["warned_at"])
    sel = warnings["grid_code"].astype(str).isin(codes) & (t >= pd.Timestamp(
        week.shift(-(HISTORY_WEEKS - 1)).start)) & (t < pd.Timestamp(week.end))
    labels = _week_labels(t[sel])
    table = pd.crosstab(warnings.loc[sel, "grid_code"].astype(str), labels)
    table = table.reindex(index=codes, columns=weeks, fill_value=0).fillna(0).astype(int)
    return table.rename_axis(None, axis=1).rename_axis("code").reset_index()


# ------------------------------------------------------------------------------ use case
def default_week(app, now: datetime | None = None) -> IsoWeek:
    """The week a bulletin opens on: the last full week if it has warnings, else the latest
    earlier week that has some (so a quiet or not yet imported week does not hide the last
    data); the last full week when no warning is that old."""
    last = bulletin.last_full_week(now)
    warnings = app.repo.table("grid_warnings")
    if not len(warnings):
        return last
    times = _times(warnings["warned_at"])
    times = times[times < pd.Timestamp(last.end)].dropna()
    return IsoWeek.of(times.max().date()) if len(times) else last


def weekly_report(app, week: IsoWeek | str | None = None, *,
                  warnings: pd.DataFrame | None = None,
                  complaints: pd.DataFrame | None = None) -> WeeklyReport:
    """Count one week's warnings and complaints (default: the last full week).

    ``warnings`` / ``complaints`` replace the stored tables (validated frames from
    :func:`geoapp.services.events.load_events`), to report on files without importing them.
    """
    if week is None:
        week = bulletin.last_full_week()
    elif isinstance(week, str):
        week = IsoWeek.parse(week)
    if warnings is None:
        warnings = app.repo.table("grid_warnings")
    if complaints is None:
        complaints = app.repo.table("complaints")
    city = app.city
    order = tuple(city.county_names)
    grids = app.repo.layer("hotspot_grids")[["code", "key", "county", "geometry"]].copy()
    grids["key"] = grids["key"].fillna(False).astype(bool)
    counties = app.repo.layer("counties")[["name", "geometry"]]

    this_week = warnings[_in_week(_times(warnings["warned_at"]), week)] if len(warnings) \
        else warnings
    weeks_by_grid = _warned_weeks(warnings, week) if len(warnings) else {}
    per_grid = _per_grid(grids, this_week, weeks_by_grid, week)
    counts = dict(zip(per_grid["code"], per_grid["count"], strict=True))
    streaks = dict(zip(per_grid["code"], per_grid["streak"], strict=True))
    grids["count"] = grids["code"].map(counts).fillna(0).astype(int)
    grids["streak"] = grids["code"].map(streaks).fillna(0).astype(int)
    per_county = _per_county(per_grid, order)
    cat_table, total, previous = _complaint_counts(complaints, week)
    warned = grids[grids["count"] > 0]
    enterprises = _enterprises(app, warned, per_grid)
    consecutive = per_grid[per_grid["streak"] >= 2].sort_values(
        ["streak", "code"], ascending=[False, True], kind="stable").reset_index(drop=True)
    history = _history(warnings, list(per_grid["code"]), week) if len(warnings) else \
        _history(warnings, [], week)
    text = bulletin.bulletin_text(
        city.name, week, dict(zip(per_county["county"], per_county["count"], strict=True)),
        order, dict(zip(cat_table["category"], cat_table["count"], strict=True)), previous,
        list(consecutive["code"]))
    return WeeklyReport(week=week, city_name=city.name, county_order=order, grids=grids,
                        counties=counties, per_grid=per_grid, per_county=per_county,
                        complaints=cat_table, complaints_total=total,
                        complaints_previous=previous, enterprises=enterprises,
                        consecutive=consecutive, history=history, text=text,
                        complaint_points=complaint_points.map_points(
                            app, complaint_points.in_weeks(complaints, week, week),
                            first_week=week, last_week=week),
                        interviews=interview_list.interview_list(app, week,
                                                                 warnings=warnings),
                        overdue=deadlines.bulletin_section(app, week))


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as plain dicts, missing values as empty text."""
    return df.astype(object).where(df.notna(), "").to_dict("records")


def page_tables(report: WeeklyReport) -> dict[str, Any]:
    """The bulletin's tables as rows for a page: ``history_weeks`` (column labels) and
    ``history``, ``enterprises``, ``per_grid``, ``per_county``, ``complaints``."""
    return {"history_weeks": [c for c in report.history.columns if c != "code"],
            "history": report.history.to_dict("records"),
            "enterprises": _rows(report.enterprises), "per_grid": _rows(report.per_grid),
            "per_county": report.per_county.to_dict("records"),
            "complaints": report.complaints.to_dict("records"),
            **interview_tables(report)}


def interview_tables(report: WeeklyReport) -> dict[str, Any]:
    """The 约谈 list and the complaints without coordinates, for the page: ``interviews``
    and ``complaints_unlocated``."""
    points = report.complaint_points
    return {"interviews": report.interviews,
            "complaints_unlocated": points.unlocated if points is not None else 0}


def weekly_map(app, report: WeeklyReport, *,
               gettext: Callable[[str], str] | None = None,
               site_link: str | None = None) -> folium.Map:
    """The bulletin's interactive map for a page, on the configured basemap; ``gettext``
    translates its words (Chinese without one); ``site_link`` (URL with ``{id}``) links the
    complaints' suspected sources to their site pages."""
    tiles, key = basemap(app)
    words = {"gettext": gettext} if gettext is not None else {}
    return draw_weekly_map(report, tiles=tiles, tianditu_key=key, site_link=site_link,
                           **words)


def write_file(app, report: WeeklyReport, name: str, out_dir: str | Path) -> Path:
    """Write one of FILES into ``out_dir`` (the document needs map.png, written if absent)."""
    if name not in FILES:
        raise NotFound(f"no bulletin file named {name!r}; known: {', '.join(FILES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    if name == "bulletin.txt":
        path.write_text(report.text, encoding="utf-8", newline="\n")
    elif name == "map.png":
        render_png(report, path, metric_crs=app.metric_crs)
    elif name == "map.html":
        # Opened from disk, maybe with no network: every script inside the file and the
        # city's own base layers drawn from it (docs/basemap.md); the bulletin's map labels
        # the counties itself, so the base's county names are left out.
        path.write_text(standalone(app, draw_weekly_map(report, tiles="local"),
                                   place_labels=False), encoding="utf-8")
    elif name == "bulletin.docx":
        png = out / "map.png"
        if not png.is_file():
            render_png(report, png, metric_crs=app.metric_crs)
        write_docx(report, path, map_png=png, issuer=app.city.issuer,
                   issue=app.city.issue_number(report.week))
    else:
        write_bulletin_xlsx(report, path, issuer=app.city.issuer,
                            issue=app.city.issue_number(report.week))
    return path


def write_weekly(app, report: WeeklyReport, out_dir: str | Path) -> dict[str, Path]:
    """Write bulletin.txt, map.html, map.png, bulletin.docx and bulletin.xlsx into a folder."""
    paths = {name: write_file(app, report, name, out_dir) for name in
             ("bulletin.txt", "map.png", "map.html", "bulletin.docx", "bulletin.xlsx")}
    log.info("weekly bulletin %s written to %s", report.week, out_dir)
    return {name: paths[name] for name in FILES}


def zip_files(paths: dict[str, Path], target: str | Path, week: IsoWeek) -> Path:
    """All files of one bulletin in a zip, with fixed member times so it is reproducible."""
    target = Path(target)
    stamp = (week.monday.year, week.monday.month, week.monday.day, 0, 0, 0)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in paths.items():
            info = zipfile.ZipInfo(f"{week}/{name}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return target
