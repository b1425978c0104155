"""The 约谈 (interview) list: hotspot grids warned in INTERVIEW_WEEKS consecutive weeks.

For one bulletin week, every grid warned in that week and in each of the weeks before it, up
to the setting's number (weeks as the bulletin defines them: ISO weeks, Asia/Shanghai), with
its county, whether it is key-monitored (重点监控), how many weeks in a row it has been warned,
the pollutants of those weeks, and the registered enterprises inside it (a spatial join of the
enterprise points with the grid cells). Every county of the city is listed, in bulletin order;
a county without any such grid says 无. The page, the bulletin's section and the XLSX download
all come from :func:`interview_list`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geoapp.domain import interviews as rules
from geoapp.domain.bulletin import IsoWeek, date_range_zh
from geoapp.domain.vocab import Classification, Stage
from geoapp.exports.bulletin_xlsx import write_interviews_xlsx
from geoapp.exports.tables import issued_line

log = logging.getLogger(__name__)

ENTERPRISE_COLUMNS = ("name", "district", "industry", "classification", "stage")

Translate = Callable[[str], str]


@dataclass
class Interviews:
    """The list of one week: ``counties`` is every county in bulletin order, each with its
    ``grids`` (code, name, county, key, streak, pollutants, weeks, enterprises)."""

    week: IsoWeek
    weeks_required: int
    counties: list[dict[str, Any]] = field(default_factory=list)

    @property
    def grids(self) -> list[dict[str, Any]]:
        return [g for c in self.counties for g in c["grids"]]

    @property
    def enterprise_count(self) -> int:
        return sum(len(g["enterprises"]) for g in self.grids)

    @property
    def title(self) -> str:
        return f"连续{self.weeks_required}周及以上预警网格约谈名单"


def _times(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series.astype(str), format="ISO8601", errors="coerce")


def _labels(times: pd.Series) -> pd.Series:
    iso = times.dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)


def _zh(enum, value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return ""
    try:
        return enum(str(value)).zh
    except ValueError:
        return str(value)


def interview_list(app, week: IsoWeek | str, *, warnings: pd.DataFrame | None = None,
                   weeks: int | None = None) -> Interviews:
    """The 约谈 list of ``week``; ``warnings`` replaces the stored table (a file reported on
    without importing it), ``weeks`` the INTERVIEW_WEEKS setting."""
    if isinstance(week, str):
        week = IsoWeek.parse(week)
    n = rules.required_weeks(app.settings.get("INTERVIEW_WEEKS", 3) if weeks is None
                             else weeks)
    if warnings is None:
        warnings = app.repo.table("grid_warnings")
    order = tuple(app.city.county_names)
    if not len(warnings):
        return Interviews(week, n, rules.by_county([], order))
    t = _times(warnings["warned_at"])
    keep = t.notna() & (t < pd.Timestamp(week.end)) & \
        (t >= pd.Timestamp(week.shift(-(n + 60)).start))
    w = pd.DataFrame({"code": warnings.loc[keep, "grid_code"].astype(str),
                      "label": _labels(t[keep]),
                      "pollutant": warnings.loc[keep, "pollutant"].astype(str)})
    weeks_by_grid = w.groupby("code")["label"].agg(set).to_dict()
    listed = rules.on_list(weeks_by_grid, week, n)
    if not listed:
        return Interviews(week, n, rules.by_county([], order))
    cells = app.repo.layer("hotspot_grids")
    cells = cells[cells["code"].astype(str).isin(listed)]
    enterprises = _enterprises(app, cells)
    grids = []
    for rec in cells.drop(columns="geometry").to_dict("records"):
        code = str(rec["code"])
        span = [str(week.shift(-i)) for i in range(listed[code])]
        mine = w[(w["code"] == code) & w["label"].isin(span)]
        grids.append({
            "code": code, "name": str(rec.get("name") or code),
            "county": str(rec.get("county") or ""),
            "key": bool(rec.get("key")) if not pd.isna(rec.get("key")) else False,
            "streak": listed[code], "weeks": sorted(span),
            "warnings": len(mine),
            "pollutants": "、".join(sorted(set(mine["pollutant"]))),
            "enterprises": enterprises.get(code, []),
        })
    return Interviews(week, n, rules.by_county(grids, order))


def _enterprises(app, cells: gpd.GeoDataFrame) -> dict[str, list[dict[str, Any]]]:
    """Grid code -> the registered enterprises inside the cell, by id."""
    sites = app.repo.sites("enterprise", columns=ENTERPRISE_COLUMNS)
    if sites.empty or cells.empty:
        return {}
    joined = gpd.sjoin(sites, cells[["code", "geometry"]], how="inner", predicate="within")
    joined = joined.sort_values(["code", "id"], kind="stable")
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in pd.DataFrame(joined.drop(columns="geometry")).to_dict("records"):
        out.setdefault(str(rec["code"]), []).append({
            "id": str(rec["id"]), "name": str(rec.get("name") or ""),
            "district": "" if pd.isna(rec.get("district")) else str(rec.get("district")),
            "industry": "" if pd.isna(rec.get("industry")) else str(rec.get("industry")),
            "classification": _zh(Classification, rec.get("classification")),
            "stage": _zh(Stage, rec.get("stage")),
        })
    return out


def N_(text: str) -> str:  # noqa: N802 (the conventional name of a gettext marker)
    """Mark ``text`` for the catalogue; translated where it is shown."""
    return text


def _same(text: str) -> str:
    return text


def title_lines(app, interviews: Interviews, gettext: Translate = _same, *,
                english: bool = False) -> tuple[str, str, str]:
    """The workbook's title rows: the title with the city, the week with its dates, the
    issuing unit with the date of issue (the Monday after the week, as the bulletin's)."""
    week = interviews.week
    city = app.city
    title = gettext(N_("%(city)s连续%(n)s周及以上预警网格约谈名单")) % {
        "city": city.name_en if english else city.name, "n": interviews.weeks_required}
    dates = (f"{week.monday:%d %b %Y} – {week.sunday:%d %b %Y}" if english
             else date_range_zh(week))
    period = gettext(N_("%(year)s年第%(week)s周（%(dates)s）")) % {
        "year": week.year, "week": week.week, "dates": dates}
    return title, period, issued_line(city.issuer, week.sunday + timedelta(days=1),
                                      english=english)


def write_xlsx(interviews: Interviews, path: str | Path, *,
               lines: tuple[str, str, str] | None = None,
               gettext: Translate = _same) -> Path:
    """The list as a workbook of one sheet (one row per enterprise; 无 for a quiet county)
    under its title rows, in the language of ``gettext``."""
    return write_interviews_xlsx(interviews, path, lines=lines, gettext=gettext)


def xlsx_bytes(app, interviews: Interviews, gettext: Translate = _same, *,
               english: bool = False) -> bytes:
    """The list's workbook as bytes, for a download."""
    lines = title_lines(app, interviews, gettext, english=english)
    with tempfile.TemporaryDirectory() as tmp:
        return write_xlsx(interviews, Path(tmp) / "interviews.xlsx", lines=lines,
                          gettext=gettext).read_bytes()
