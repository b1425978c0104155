"""The 百企退城 programme dashboard and its quarterly report: figures per year and quarter.

Every figure is counted **as of a date**: the end of the period (a year's 31 December, a
quarter's last day) or today while the period is not over. :func:`ledger_as_of` turns the
current ledger into the ledger as it stood on that date, from the dated entries (actual
start, actual completion; land and revenue go with the completion), and the headline figures
then come from :func:`geoapp.services.relocation.summarize` over it, the same summary the
relocation page shows for today's ledger. This module adds what only the dashboard shows:
land sold, revenue in 亿元, the breakdowns by district, industry and classification, per-year
land and revenue targets, and the quarterly trend counted from the actual dates.
"""

from __future__ import annotations

import datetime as dt
import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from geoapp.domain.asof import AsOf
from geoapp.domain.errors import ConfigError, InvalidInput
from geoapp.domain.quarters import Quarter, parse_quarter, quarters_between
from geoapp.domain.vocab import Classification, Stage
from geoapp.exports import charts
from geoapp.exports import quarterly as out
from geoapp.services import relocation as rel

log = logging.getLogger(__name__)

WAN_PER_YI = 10_000.0
#: Optional per-year targets beyond started/completed (``[targets.<year>]`` keys).
EXTRA_TARGETS = ("vacated_mu", "listed_mu", "revenue_wan")
#: Amounts without a date of their own: they count from the enterprise's actual completion.
AMOUNT_COLUMNS = ("vacated_mu", "listed_mu", "sale_revenue_wan")


def period_as_of(last_day: dt.date | None, today: dt.date | None = None) -> AsOf:
    """The period's last day once it is over, else today (no period: today)."""
    today = today or dt.date.today()
    if last_day is not None and last_day < today:
        return AsOf(last_day)
    return AsOf(today, today=True)


def year_as_of(year: int | None, today: dt.date | None = None) -> AsOf:
    """A year's figures: as of its 31 December, or today for the current (or a later) year."""
    return period_as_of(dt.date(year, 12, 31) if year is not None else None, today)


def quarter_as_of(quarter: Quarter, today: dt.date | None = None) -> AsOf:
    """A quarter's figures: as of its last day, or today for the current quarter."""
    return period_as_of(quarter.last_day, today)


@dataclass
class Dashboard:
    """Everything ``/programme`` and ``/api/programme`` show for one year."""

    year: int | None
    summary: dict[str, Any]
    land: dict[str, Any]
    targets: dict[str, float | None]
    by_classification: list[dict[str, Any]]
    by_district: list[dict[str, Any]]
    by_industry: list[dict[str, Any]]
    trend: list[dict[str, Any]]
    years: list[int] = field(default_factory=list)
    as_of: AsOf = field(default_factory=lambda: AsOf(dt.date.today(), today=True))

    @property
    def headline(self) -> str:
        return headline(self.summary)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of ``/api/programme`` (the page renders the same values)."""
        return {"year": self.year, "years": self.years, **self.as_of.to_dict(),
                "headline": self.headline,
                "summary": self.summary, "land": self.land, "targets": self.targets,
                "by_classification": self.by_classification,
                "by_district": self.by_district, "by_industry": self.by_industry,
                "trend": self.trend}


# -- programme file extras -----------------------------------------------------------------
def read_extras(path: Path) -> dict[str, Any]:
    """First/last year and the optional per-year land and revenue targets of the programme
    file (``ConfigError`` naming a bad value)."""
    if not path.is_file():
        return {"first_year": None, "last_year": None, "targets": {}}
    data = tomllib.loads(path.read_text(encoding="utf-8"))  # broken files fail in rel first
    head = data.get("programme", {})
    targets: dict[int, dict[str, float]] = {}
    for key, item in (data.get("targets") or {}).items():
        extra = {}
        for name in EXTRA_TARGETS:
            if name in item:
                try:
                    value = float(item[name])
                except (TypeError, ValueError):
                    value = -1.0
                if value < 0:
                    raise ConfigError(f"{path}: [targets.{key}] {name} must be a "
                                          "non-negative number")
                extra[name] = value
        targets[int(key)] = extra

    def year(name: str) -> int | None:
        try:
            return int(head[name]) if name in head else None
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: [programme] {name} must be a year") from None

    return {"first_year": year("first_year"), "last_year": year("last_year"),
            "targets": targets}


def programme_extras(app) -> dict[str, Any]:
    """First/last year and the optional land and revenue targets, re-read on change."""
    rel.programme(app)  # validates the file (ConfigError naming it) and keeps its cache fresh
    path = Path(app.settings["DATA_DIR"]) / rel.PROGRAMME_FILE
    return app.file_cached("programme_extras", path, read_extras)


# -- figures -------------------------------------------------------------------------------
def _num(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce").fillna(0.0) if col in df else \
        pd.Series(0.0, index=df.index)


def land_figures(df: pd.DataFrame) -> dict[str, Any]:
    """Land vacated, listed and sold (亩 and 公顷) and revenue (万元 and 亿元).

    Sold land is the listed land of enterprises whose sale revenue is above zero: the ledger
    records a revenue only once a plot has been sold, and has no separate sold-area column.
    """
    listed, revenue = _num(df, "listed_mu"), _num(df, "sale_revenue_wan")
    vacated = round(float(_num(df, "vacated_mu").sum()), 1)
    listed_total = round(float(listed.sum()), 1)
    sold = round(float(listed[revenue > 0].sum()), 1)
    wan = round(float(revenue.sum()), 1)
    return {"vacated_mu": vacated, "vacated_ha": round(vacated / rel.MU_PER_HECTARE, 2),
            "listed_mu": listed_total, "listed_ha": round(listed_total / rel.MU_PER_HECTARE, 2),
            "sold_mu": sold, "sold_ha": round(sold / rel.MU_PER_HECTARE, 2),
            "sold_count": int(((revenue > 0) & (listed > 0)).sum()),
            "revenue_wan": wan, "revenue_yi": round(wan / WAN_PER_YI, 2)}


def _parsed(df: pd.DataFrame, col: str) -> pd.Series:
    """The column as dates (NaT for blank or unparsable cells)."""
    if col not in df:
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    return pd.to_datetime(df[col], errors="coerce", format="mixed")


def ledger_as_of(df: pd.DataFrame, as_of: AsOf) -> pd.DataFrame:
    """The ledger as it stood on ``as_of.date``, derived from the dated entries.

    - **started**: the stage is 已启动 or later and the actual start is on or before the day
      (or the enterprise counts as completed by then);
    - **completed**: the stage is 已完成 / 已验收销号 and the actual completion is on or before
      the day. 验收销号 has no date of its own, so before today it shows as 已完成;
    - **land and revenue** (vacated, listed, sale revenue) have no dates of their own: they
      count from the enterprise's actual completion, on or before the day;
    - an entry **without a date** (a stage without its actual date, an amount on an
      enterprise that has no completion date) can only be placed today: it counts in
      today's figures and in no past period;
    - actual dates after the day are blanked, so the trend stops at it.
    """
    out = df.copy()
    if out.empty:
        return out
    day = pd.Timestamp(as_of.date)
    stage = out["stage"]
    start, done = _parsed(out, "actual_start"), _parsed(out, "actual_completion")
    completed = stage.isin(list(rel.COMPLETED_STAGES)) & (
        (done <= day) | (done.isna() & as_of.today))
    started = completed | (stage.isin(list(rel.STARTED_STAGES)) & (
        (start <= day) | (start.isna() & as_of.today)))
    accepted = stage == Stage.ACCEPTED
    out["stage"] = Stage.NOT_STARTED.value
    out.loc[started, "stage"] = Stage.STARTED.value
    out.loc[completed, "stage"] = Stage.COMPLETED.value
    if as_of.today:
        out.loc[completed & accepted, "stage"] = Stage.ACCEPTED.value
    counts = completed | (done.isna() & as_of.today)
    for col in AMOUNT_COLUMNS:
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce").where(counts)
    for col, when in (("actual_start", start), ("actual_completion", done)):
        if col in out:
            out[col] = out[col].astype(object).where(~(when > day), None)
    return out


def _group_row(name: str, df: pd.DataFrame) -> dict[str, Any]:
    stage = df["stage"]
    land = land_figures(df)
    return {"name": name, "total": len(df),
            "not_started": int((stage == Stage.NOT_STARTED).sum()),
            "started": int(stage.isin(list(rel.STARTED_STAGES)).sum()),
            "completed": int(stage.isin(list(rel.COMPLETED_STAGES)).sum()),
            "vacated_mu": land["vacated_mu"], "listed_mu": land["listed_mu"],
            "sold_mu": land["sold_mu"], "revenue_wan": land["revenue_wan"]}


def breakdown(df: pd.DataFrame, column: str, order: list[str] | None = None) -> list[dict]:
    """One row of counts and land per value of ``column`` (in ``order``, then by count)."""
    values = [v for v in (order or []) if (df[column] == v).any()]
    rest = df.loc[~df[column].isin(values), column].fillna("").astype(str)
    values += list(rest.value_counts().sort_index(kind="stable")
                   .sort_values(ascending=False, kind="stable").index)
    return [_group_row(str(v) or "（未填）", df[df[column].fillna("") == v]) for v in values]


def by_classification(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows per classification in the programme's order, zero rows included."""
    out = []
    for c in Classification:
        row = _group_row(c.zh, df[df["classification"] == c.value])
        row["value"] = c.value
        out.append(row)
    return out


def _dates(df: pd.DataFrame, col: str) -> list[dt.date]:
    """The column's valid dates (blank and unparsable cells are left out)."""
    if col not in df:
        return []
    parsed = pd.to_datetime(df[col], errors="coerce", format="mixed").dropna()
    return [t.date() for t in parsed]


def trend(df: pd.DataFrame, first: Quarter, last: Quarter) -> list[dict[str, Any]]:
    """Enterprises started and completed in each quarter, and the running totals."""
    start, done = _dates(df, "actual_start"), _dates(df, "actual_completion")
    rows: list[dict[str, Any]] = []
    for q in quarters_between(first, last):
        s = sum(1 for d in start if q.contains(d))
        c = sum(1 for d in done if q.contains(d))
        rows.append({"quarter": str(q), "year": q.year, "q": q.quarter, "label": q.label,
                     "started": s, "completed": c,
                     "started_cum": sum(1 for d in start if d <= q.last_day),
                     "completed_cum": sum(1 for d in done if d <= q.last_day)})
    return rows


def trend_span(df: pd.DataFrame, extras: Mapping[str, Any], year: int | None) -> tuple:
    """The quarters the chart covers: the programme's years widened to every dated event."""
    dated = [Quarter.of(d) for col in ("actual_start", "actual_completion")
             for d in _dates(df, col)]
    years = [y for y in (extras.get("first_year"), extras.get("last_year"), year) if y]
    lo = min([*years, *(q.year for q in dated)], default=dt.date.today().year)
    last = max([*(Quarter(y, 4) for y in years), *dated], default=Quarter(lo, 4))
    return Quarter(lo, 1), last


def headline(summary: Mapping[str, Any]) -> str:
    """``已启动30家，完成年度目标的105.3%；已完成9家，完成年度目标的81.8%``."""
    parts = []
    for key, word in (("started", "已启动"), ("completed", "已完成")):
        text = f"{word}{summary[key]}家"
        if summary.get(f"{key}_pct") is not None:
            text += f"，完成年度目标的{summary[f'{key}_pct']:.1f}%"
        parts.append(text)
    return "；".join(parts)


def _pct(value: float, target: float | None) -> float | None:
    return round(100.0 * value / target, 1) if target else None


def dashboard(app, filters: rel.RelocationFilters | None = None,
              year: int | None = None, *, as_of: AsOf | None = None) -> Dashboard:
    """The dashboard of ``year`` (targets of that year) over the filtered enterprises,
    counted as of ``as_of`` (default: the year's 31 December, or today for the current year).

    Filters pick enterprises by their current ledger values (a stage filter by today's stage).
    """
    as_of = as_of or year_as_of(year)
    view = rel.relocation_view(app, filters or rel.RelocationFilters(), year)
    current = pd.DataFrame(view.sites.drop(columns="geometry", errors="ignore"))
    sites = ledger_as_of(current, as_of)
    summary = rel.summarize(sites, rel.programme(app), year)
    extras = programme_extras(app)
    land = land_figures(sites)
    extra_targets = extras["targets"].get(year, {}) if year is not None else {}
    targets: dict[str, float | None] = {
        "started": summary["started_target"], "completed": summary["completed_target"]}
    for name in EXTRA_TARGETS:
        targets[name] = extra_targets.get(name)
        land[f"{name}_pct"] = _pct(land[name], extra_targets.get(name))
    first, last = trend_span(sites, extras, year)
    last = min(last, Quarter.of(as_of.date))  # nothing after the day the figures are as of
    first = min(first, last)
    counties = [c.name for c in app.city.counties]
    return Dashboard(year=year, summary=summary, land=land, targets=targets,
                     by_classification=by_classification(sites),
                     by_district=breakdown(sites, "district", counties),
                     by_industry=breakdown(sites, "industry"),
                     trend=trend(sites, first, last),
                     years=list(rel.programme(app).targets), as_of=as_of)


# -- quarterly report ----------------------------------------------------------------------
@dataclass
class QuarterlyReport:
    """The quarterly progress report: the dashboard of the quarter's year, up to its end."""

    quarter: Quarter
    dashboard: Dashboard
    quarter_started: int
    quarter_completed: int
    text: str

    @property
    def title(self) -> str:
        return f"「{self.dashboard.summary['programme']}」工作进展情况（{self.quarter.label}）"

    @property
    def deadline(self) -> dt.date:
        return self.quarter.deadline

    @property
    def as_of(self) -> AsOf:
        """The day the figures are counted at: the quarter's last day, or today."""
        return self.dashboard.as_of

    @property
    def deadline_text(self) -> str:
        d = self.deadline
        return f"报送时限：{d.year}年{d.month}月{d.day}日前"


def parse_report_quarter(app, year: object, quarter: object) -> Quarter:
    """Validated year and quarter of a report: the year must have targets when any exist."""
    q = parse_quarter(year, quarter)
    rel.parse_year(app, str(q.year))
    return q


def quarterly_report(app, quarter: Quarter, *, today: dt.date | None = None) -> QuarterlyReport:
    """Build the report of ``quarter``: every figure as of the quarter's last day (today for
    the current quarter) against its year's targets, the tables and the trend to its end."""
    targets = rel.programme(app).targets
    as_of = quarter_as_of(quarter, today)
    dash = dashboard(app, year=quarter.year if quarter.year in targets else None, as_of=as_of)
    dash.trend = [r for r in dash.trend if Quarter(r["year"], r["q"]) <= quarter]
    this = next((r for r in dash.trend if r["quarter"] == str(quarter)),
                {"started": 0, "completed": 0})
    s, land = dash.summary, dash.land
    text = (f"{as_of.zh}，全市纳入「{s['programme']}」的企业共{s['total']}家。"
            f"{headline(s)}。{quarter.label}新启动{this['started']}家，新完成{this['completed']}家。"
            f"累计腾退土地{land['vacated_mu']:.1f}亩（{land['vacated_ha']:.2f}公顷），"
            f"挂牌出让{land['listed_mu']:.1f}亩（{land['listed_ha']:.2f}公顷），"
            f"已出让{land['sold_mu']:.1f}亩（{land['sold_ha']:.2f}公顷），"
            f"土地出让收入{land['revenue_wan']:.1f}万元（{land['revenue_yi']:.2f}亿元）。")
    log.info("quarterly report %s as of %s: %d enterprises", quarter, as_of.date, s["total"])
    return QuarterlyReport(quarter=quarter, dashboard=dash, quarter_started=this["started"],
                           quarter_completed=this["completed"], text=text)


def trend_chart(dash: Dashboard) -> charts.TrendChart:
    """The dashboard's quarterly trend chart, its year shaded (the quarterly report of a
    quarter of that year draws the same chart up to that quarter)."""
    return charts.TrendChart.from_trend(dash.trend, dash.year)


def trend_svg(dash: Dashboard, gettext: Callable[[str], str] | None = None) -> str:
    """The trend chart as inline SVG markup, its words translated by ``gettext``."""
    return charts.trend_svg(trend_chart(dash), gettext=gettext)


def write_quarterly(app, report: QuarterlyReport, fmt: str, path: str | Path) -> Path:
    """Write the report as ``xlsx`` or ``docx``."""
    if fmt == "xlsx":
        return out.write_quarterly_xlsx(report, path, issuer=app.city.issuer)
    if fmt == "docx":
        return out.write_quarterly_docx(report, path, issuer=app.city.issuer)
    raise InvalidInput(f"unknown report format {fmt!r}; expected xlsx or docx")
