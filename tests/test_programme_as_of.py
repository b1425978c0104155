"""Programme figures as of a date: a year as of its 31 December, a quarter as of its last day,
the current period as of today; nothing dated later is counted."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import docx
import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from geoapp.cli import main
from geoapp.domain.quarters import Quarter, report_quarter
from geoapp.services import programme as svc
from geoapp.services import relocation as rel

from webutil import login

CSV = Path(__file__).resolve().parent.parent / "data" / "sites" / "enterprises.csv"


def _zh(day: dt.date) -> str:
    return f"截至{day.year}年{day.month}月{day.day}日"


@pytest.fixture(scope="module")
def client(viewer_client):
    return viewer_client


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture
def writable(make_app):
    """An app on a private copy of the Jiaozuo database, for tests that change the ledger."""
    app = make_app(INTRANET=True, TILES="none")
    c = app.test_client()
    login(c, "viewer")
    return app, c


# -- the embedded data reproduces the programme's 2018 results ------------------------------
def test_2018_figures_are_the_reported_year_end_results(client):
    data = client.get("/api/programme?year=2018").get_json()
    s, land = data["summary"], data["land"]
    assert (s["started"], s["started_target"], s["started_pct"]) == (66, 61, 108.2)
    assert (s["completed"], s["completed_target"], s["completed_pct"]) == (17, 19, 89.5)
    assert data["headline"] == "已启动66家，完成年度目标的108.2%；已完成17家，完成年度目标的89.5%"
    assert (land["vacated_mu"], land["listed_mu"]) == (924.6, 403.0)
    assert (land["revenue_wan"], land["revenue_yi"]) == (117700.0, 11.77)
    done = {r["name"]: r for r in data["by_classification"]}
    assert sum(r["completed"] for r in done.values()) == 17
    assert data["trend"][-1]["quarter"] == "2018Q4"


def test_later_years_keep_growing(client):
    years = [client.get(f"/api/programme?year={y}").get_json() for y in (2018, 2019, 2020)]
    for key in ("started", "completed"):
        counts = [d["summary"][key] for d in years]
        assert counts == sorted(set(counts)), (key, counts)  # strictly more each year
    for key in ("vacated_mu", "listed_mu", "revenue_wan"):
        amounts = [d["land"][key] for d in years]
        assert amounts == sorted(set(amounts)), (key, amounts)


def test_the_ledgers_own_dates_give_the_2018_counts():
    ledger = pd.read_csv(CSV, dtype={"credit_code": str})
    end = pd.Timestamp("2018-12-31")
    assert int((pd.to_datetime(ledger["actual_start"]) <= end).sum()) == 66
    done = pd.to_datetime(ledger["actual_completion"]) <= end
    assert int(done.sum()) == 17
    assert round(ledger.loc[done, "vacated_mu"].sum(), 1) == 924.6


def test_api_and_page_say_which_day_the_figures_are_as_of(client):
    data = client.get("/api/programme?year=2018").get_json()
    assert data["as_of"] == "2018-12-31" and data["as_of_today"] is False
    assert data["as_of_text"] == "截至2018年12月31日"
    assert data["as_of_text_en"] == "as of 2018-12-31"
    html = client.get("/programme?year=2018").get_data(as_text=True)
    assert 'id="pg-as-of" data-date="2018-12-31" data-today="false">截至2018年12月31日<' in html
    en = client.get("/programme?year=2018&lang=en").get_data(as_text=True)
    client.get("/programme?lang=zh")  # the language choice sticks: leave Chinese behind
    assert ">as of 2018-12-31<" in en


# -- the 2020 Q4 report -----------------------------------------------------------------------
def test_2020_q4_report_counts_nothing_dated_after_2020(core):
    report = svc.quarterly_report(core, Quarter(2020, 4))
    assert report.as_of == svc.AsOf(dt.date(2020, 12, 31))
    assert report.text.startswith("截至2020年12月31日，")
    assert "截至目前" not in report.text
    ledger = pd.read_csv(CSV, dtype={"credit_code": str})
    done = pd.to_datetime(ledger["actual_completion"])
    assert (done > "2020-12-31").any()  # the ledger has later completions to leave out
    s = report.dashboard.summary
    assert s["completed"] == int((done <= "2020-12-31").sum()) == 57
    assert report.dashboard.land["vacated_mu"] == round(
        ledger.loc[done <= "2020-12-31", "vacated_mu"].sum(), 1)
    assert report.dashboard.trend[-1]["completed_cum"] == 57


def test_2020_q4_download_and_cli_say_as_of_2020_12_31(client, tmp_path, instance, monkeypatch):
    wb = load_workbook(io.BytesIO(client.get("/programme/report.xlsx?year=2020&quarter=4").data))
    assert wb["总体情况"]["A3"].value.startswith("截至2020年12月31日，")
    rows = {r[0]: r[1:] for r in wb["总体情况"].iter_rows(min_row=5, values_only=True)}
    assert rows["已完成(家)"][0] == 57
    assert wb["按行业"]["A3"].value == "焦作市生态环境局　统计截至2020年12月31日"

    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    result = CliRunner().invoke(main, ["report", "quarterly", "--year", "2020", "--quarter",
                                       "4", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    texts = [p.text for p in docx.Document(str(tmp_path / "programme-2020Q4.docx")).paragraphs]
    assert "（统计截至2020年12月31日）" in texts
    assert any(t.startswith("截至2020年12月31日，全市纳入") and "已完成57家" in t for t in texts)


# -- a completion made today does not rewrite history ------------------------------------------
def test_a_completion_dated_2026_is_not_in_the_2018_to_2020_figures(writable):
    app, c = writable
    core = app.extensions["geoapp"]
    years = (2018, 2019, 2020)
    before = {y: c.get(f"/api/programme?year={y}").get_json() for y in years}
    reports = {y: svc.quarterly_report(core, Quarter(y, 4)).text for y in years}
    site = core.repo.site("E0088")
    assert site["stage"] == "started" and site["actual_start"] < "2019-01-01"
    core.repo.update_site("E0088", {"stage": "completed", "actual_completion": "2026-05-20",
                                    "vacated_mu": 42.5, "listed_mu": 30.0,
                                    "sale_revenue_wan": 5000.0},
                          user="planner", expected_version=site["version"])
    for y in years:
        assert c.get(f"/api/programme?year={y}").get_json() == before[y], y
        assert svc.quarterly_report(core, Quarter(y, 4)).text == reports[y], y
    today = svc.dashboard(core, year=2020, as_of=svc.AsOf(dt.date(2026, 12, 31)))
    assert today.summary["completed"] == before[2020]["summary"]["completed"] + 6 + 1
    assert today.land["vacated_mu"] == pytest.approx(
        svc.dashboard(core, year=2020, as_of=svc.AsOf(dt.date(2026, 5, 19))).land["vacated_mu"]
        + 42.5)


# -- the current year ----------------------------------------------------------------------
def test_the_current_year_is_counted_as_of_today(client, core, monkeypatch):
    today = dt.date.today()
    real = rel.programme

    def with_this_year(app):
        prog = real(app)
        return rel.Programme(name=prog.name,
                             targets={**prog.targets, today.year: rel.Target(95, 90)})

    monkeypatch.setattr(rel, "programme", with_this_year)
    data = client.get("/api/programme").get_json()
    assert data["year"] == today.year
    assert data["as_of"] == today.isoformat() and data["as_of_today"] is True
    assert data["as_of_text"] == f"{_zh(today)}（今天）"
    assert data["summary"]["completed"] == 63  # every completion in the ledger, 2021 too
    html = client.get("/programme").get_data(as_text=True)
    assert f'data-today="true">{_zh(today)}（今天）<' in html
    report = svc.quarterly_report(core, report_quarter(today))
    assert report.text.startswith(f"{_zh(today)}，")


def test_a_year_in_progress_counts_up_to_that_day(core):
    """On 2020-11-05 the 2020 figures were as of that day, and said so."""
    as_of = svc.year_as_of(2020, today=dt.date(2020, 11, 5))
    assert as_of == svc.AsOf(dt.date(2020, 11, 5), today=True)
    assert as_of.to_dict()["as_of_text"] == "截至2020年11月5日（今天）"
    ledger = pd.read_csv(CSV, dtype={"credit_code": str})
    dash = svc.dashboard(core, year=2020, as_of=as_of)
    done = pd.to_datetime(ledger["actual_completion"]) <= "2020-11-05"
    assert dash.summary["completed"] == int(done.sum())
    assert dash.trend[-1]["quarter"] == "2020Q4"
    assert svc.quarter_as_of(Quarter(2020, 3), today=dt.date(2020, 11, 5)) == \
        svc.AsOf(dt.date(2020, 9, 30))


# -- the counting rules, on a hand-made ledger ----------------------------------------------
def _ledger() -> pd.DataFrame:
    return pd.DataFrame([
        # dated: started 2018, completed 2019 (with land), accepted later
        {"id": "A", "stage": "accepted", "actual_start": "2018-05-01",
         "actual_completion": "2019-03-01", "vacated_mu": 10.0, "listed_mu": 6.0,
         "sale_revenue_wan": 600.0},
        # started in 2018, not completed, but land already recorded: no date to place it
        {"id": "B", "stage": "started", "actual_start": "2018-06-01", "actual_completion": None,
         "vacated_mu": 4.0, "listed_mu": None, "sale_revenue_wan": None},
        # a stage without its date (an uploaded ledger): only today knows it
        {"id": "C", "stage": "completed", "actual_start": None, "actual_completion": None,
         "vacated_mu": 2.0, "listed_mu": None, "sale_revenue_wan": None},
        {"id": "D", "stage": "not_started", "actual_start": None, "actual_completion": None,
         "vacated_mu": None, "listed_mu": None, "sale_revenue_wan": None},
    ])


def test_counting_rules_as_of_a_past_day_and_today():
    past = svc.ledger_as_of(_ledger(), svc.AsOf(dt.date(2018, 12, 31)))
    assert list(past["stage"]) == ["started", "started", "not_started", "not_started"]
    assert past["actual_completion"].isna().all()  # the 2019 completion is not there yet
    assert svc.land_figures(past)["vacated_mu"] == 0.0  # land goes with completion

    later = svc.ledger_as_of(_ledger(), svc.AsOf(dt.date(2019, 12, 31)))
    assert list(later["stage"]) == ["completed", "started", "not_started", "not_started"]
    land = svc.land_figures(later)
    assert (land["vacated_mu"], land["listed_mu"], land["revenue_wan"]) == (10.0, 6.0, 600.0)

    now = svc.ledger_as_of(_ledger(), svc.AsOf(dt.date(2026, 12, 2), today=True))
    assert list(now["stage"]) == ["accepted", "started", "completed", "not_started"]
    assert svc.land_figures(now)["vacated_mu"] == 16.0  # undated amounts count today
