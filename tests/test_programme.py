"""The programme dashboard, its JSON and the quarterly report, against a hand count of the data."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import docx
import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from geoapp.cli import main
from geoapp.domain.errors import ConfigError
from geoapp.domain.quarters import Quarter
from geoapp.services import programme as svc
from geoapp.services import relocation as rel

CSV = Path(__file__).resolve().parent.parent / "data" / "sites" / "enterprises.csv"
STARTED = ("started", "completed", "accepted")
COMPLETED = ("completed", "accepted")


@pytest.fixture(scope="module")
def ledger() -> pd.DataFrame:
    return pd.read_csv(CSV, dtype={"credit_code": str})


def _by(ledger: pd.DataFrame, col: str, day: str) -> pd.Series:
    """Rows whose ``col`` date is on or before ``day`` (figures are counted as of a day)."""
    return pd.to_datetime(ledger[col]) <= pd.Timestamp(day)


@pytest.fixture(scope="module")
def app(offline_app):
    return offline_app


@pytest.fixture(scope="module")
def client(viewer_client):
    return viewer_client


@pytest.fixture(scope="module")
def core(app):
    return app.extensions["geoapp"]


# -- figures against a plain pandas count ----------------------------------------------------
def test_started_and_completed_match_a_hand_count_against_2019_targets(client, ledger):
    data = client.get("/api/programme?year=2019").get_json()
    started = int((ledger["stage"].isin(STARTED) & _by(ledger, "actual_start", "2019-12-31")).sum())
    completed = int((ledger["stage"].isin(COMPLETED)
                     & _by(ledger, "actual_completion", "2019-12-31")).sum())
    s = data["summary"]
    assert (s["started"], s["completed"]) == (started, completed)
    assert (s["started_target"], s["completed_target"]) == (65, 40)
    assert s["started_pct"] == round(100 * started / 65, 1)
    assert data["headline"] == (f"已启动{started}家，完成年度目标的{100 * started / 65:.1f}%；"
                                f"已完成{completed}家，完成年度目标的{100 * completed / 40:.1f}%")


def test_land_and_revenue_match_a_hand_count(client, ledger):
    land = client.get("/api/programme?year=2020").get_json()["land"]
    ledger = ledger[_by(ledger, "actual_completion", "2020-12-31")]  # land goes with completion
    sold = ledger.loc[ledger["sale_revenue_wan"].fillna(0) > 0, "listed_mu"].sum()
    assert land["vacated_mu"] == round(ledger["vacated_mu"].sum(), 1)
    assert land["vacated_ha"] == round(round(ledger["vacated_mu"].sum(), 1) / 15, 2)
    assert land["listed_mu"] == round(ledger["listed_mu"].sum(), 1)
    assert land["sold_mu"] == round(sold, 1)
    assert land["revenue_wan"] == round(ledger["sale_revenue_wan"].sum(), 1)
    assert land["revenue_yi"] == round(round(ledger["sale_revenue_wan"].sum(), 1) / 10000, 2)
    assert land["vacated_mu_pct"] == round(100 * land["vacated_mu"] / 6000, 1)


def test_by_district_and_by_industry_match_a_groupby(client, ledger):
    data = client.get("/api/programme?year=2020").get_json()
    ledger = ledger.assign(started=_by(ledger, "actual_start", "2020-12-31"))
    expected = ledger.groupby("district")["started"].agg(total="size", started="sum")
    got = {r["name"]: r for r in data["by_district"]}
    assert set(got) == set(expected.index)
    for name, row in expected.iterrows():
        assert (got[name]["total"], got[name]["started"]) == (row["total"], row["started"])
    industries = ledger["industry"].value_counts()
    assert [r["total"] for r in data["by_industry"]] == sorted(industries, reverse=True)
    assert sum(r["total"] for r in data["by_classification"]) == len(ledger)


def test_trend_counts_starts_and_completions_per_quarter_from_dates(client, ledger):
    trend = client.get("/api/programme?year=2020").get_json()["trend"]
    starts = pd.to_datetime(ledger["actual_start"]).dropna()
    done = pd.to_datetime(ledger["actual_completion"]).dropna()
    starts, done = starts[starts <= "2020-12-31"], done[done <= "2020-12-31"]
    by_q = {r["quarter"]: r for r in trend}
    for label in ("2018Q2", "2019Q3", "2020Q1"):
        q = Quarter.parse(label)
        assert by_q[label]["started"] == int(((starts.dt.year == q.year)
                                              & (starts.dt.quarter == q.quarter)).sum())
        assert by_q[label]["completed"] == int(((done.dt.year == q.year)
                                                & (done.dt.quarter == q.quarter)).sum())
    assert (trend[0]["quarter"], trend[-1]["quarter"]) == ("2018Q1", "2020Q4")  # as of year end
    assert trend[-1]["started_cum"] == len(starts) and trend[-1]["completed_cum"] == len(done)


def test_percentages_round_to_one_decimal():
    summary = {"started": 30, "started_pct": round(100 * 30 / 28.5, 1),
               "completed": 9, "completed_pct": round(100 * 9 / 11, 1)}
    assert svc.headline(summary) == "已启动30家，完成年度目标的105.3%；已完成9家，完成年度目标的81.8%"
    assert svc.headline({"started": 3, "started_pct": None, "completed": 0,
                         "completed_pct": None}) == "已启动3家；已完成0家"


def test_sold_land_is_listed_land_with_revenue():
    df = pd.DataFrame({"vacated_mu": [10.0, 20.0, None], "listed_mu": [6.0, 9.0, None],
                       "sale_revenue_wan": [500.0, 0.0, None]})
    land = svc.land_figures(df)
    assert (land["listed_mu"], land["sold_mu"], land["sold_count"]) == (15.0, 6.0, 1)
    assert (land["sold_ha"], land["revenue_yi"]) == (0.4, 0.05)


# -- page and JSON agree ----------------------------------------------------------------------
def test_page_shows_the_same_figures_as_the_json(client):
    html = client.get("/programme?year=2019").get_data(as_text=True)
    data = client.get("/api/programme?year=2019").get_json()
    s, land = data["summary"], data["land"]
    assert data["headline"] in html
    card = re.search(r'id="pg-started" data-count="(\d+)" data-target="(\d+)" data-pct="([\d.]+)"',
                     html)
    assert card.groups() == (str(s["started"]), "65", f"{s['started_pct']:.1f}")
    assert f'id="pg-sold" data-mu="{land["sold_mu"]:.1f}" data-ha="{land["sold_ha"]:.2f}"' in html
    assert f'data-wan="{land["revenue_wan"]:.1f}" data-yi="{land["revenue_yi"]:.2f}"' in html
    for row in data["by_district"]:
        block = html.split(f'<tr data-name="{row["name"]}">', 1)[1].split("</tr>", 1)[0]
        assert f'data-key="completed">{row["completed"]}<' in block
    assert html.count('class="pg-col pg-col-started"') == len(data["trend"])


def test_dashboard_counted_today_gives_the_relocation_pages_counts(client, core):
    """The relocation page shows today's ledger; the dashboard, counted as of today, agrees."""
    filters = rel.parse_filters(core, {"district": "解放区"})
    today = svc.AsOf(pd.Timestamp.today().date(), today=True)
    prog = svc.dashboard(core, filters, 2018, as_of=today).summary
    reloc = client.get("/api/relocation?year=2018&district=解放区").get_json()["summary"]
    assert prog == reloc


@pytest.mark.parametrize("url, word", [("/api/programme?year=1999", "1999"),
                                       ("/api/programme?year=abc", "年度"),
                                       ("/api/programme?district=火星区", "火星区"),
                                       ("/programme/report.xlsx?year=2019&quarter=5", "quarter"),
                                       ("/programme/report.docx?year=2019", "quarter"),
                                       ("/programme/report.docx?year=2031&quarter=1", "2031")])
def test_invalid_year_or_quarter_is_a_400_naming_it(client, url, word):
    resp = client.get(url)
    assert resp.status_code == 400
    body = resp.get_json()["message"] if resp.is_json else resp.get_data(as_text=True)
    assert word in body


def test_unknown_report_format_is_404(client):
    assert client.get("/programme/report.pdf?year=2019&quarter=1").status_code == 404


def test_dashboard_needs_an_account(app):
    resp = app.test_client().get("/programme")
    assert resp.status_code in (302, 401)


# -- quarterly report files ----------------------------------------------------------------
def test_quarterly_workbook_holds_title_deadline_and_tables(client, ledger):
    resp = client.get("/programme/report.xlsx?year=2019&quarter=3")
    assert resp.status_code == 200
    assert 'filename="programme-2019Q3.xlsx"' in resp.headers["Content-Disposition"]
    assert resp.headers["Cache-Control"] == "no-store"  # a download is never kept by a cache
    wb = load_workbook(io.BytesIO(resp.data))
    assert wb.sheetnames == ["总体情况", "按整治分类", "按辖区", "按行业", "季度趋势"]
    ws = wb["总体情况"]
    assert ws["A1"].value == "「百企退城」工作进展情况（2019年第3季度）"
    assert ws["A2"].value == "报送时限：2019年9月25日前"
    assert ws["A3"].value.startswith("截至2019年9月30日，")
    assert wb["按辖区"]["A3"].value == "焦作市生态环境局　统计截至2019年9月30日"
    rows = {r[0]: r[1:] for r in ws.iter_rows(min_row=5, values_only=True)}
    started = int(_by(ledger, "actual_start", "2019-09-30").sum())
    assert rows["已启动(家)"] == (started, 65, round(100 * started / 65, 1))
    q3 = pd.to_datetime(ledger["actual_start"]).between("2019-07-01", "2019-09-30").sum()
    assert rows["本季度新启动(家)"][0] == q3
    district = {r[0]: r for r in wb["按辖区"].iter_rows(min_row=5, values_only=True)}
    assert district["合计"][1] == len(ledger)
    trend = list(wb["季度趋势"].iter_rows(min_row=5, values_only=True))
    assert trend[-1][0] == "2019年第3季度"  # nothing after the report's quarter


def test_quarterly_document_has_summary_tables_and_chart(core, tmp_path, ledger):
    report = svc.quarterly_report(core, Quarter(2019, 3))
    path = svc.write_quarterly(core, report, "docx", tmp_path / "q.docx")
    doc = docx.Document(str(path))
    texts = [p.text for p in doc.paragraphs]
    assert texts[0] == "「百企退城」工作进展情况（2019年第3季度）"
    assert texts[1] == "报送时限：2019年9月25日前"
    assert f"全市纳入「百企退城」的企业共{len(ledger)}家" in report.text
    assert report.text in texts
    assert len(doc.tables) == 4
    assert doc.tables[1].rows[0].cells[0].text == "辖区"
    with zipfile.ZipFile(path) as z:
        png = [n for n in z.namelist() if n.startswith("word/media/")]
        assert len(png) == 1 and z.read(png[0])[:4] == b"\x89PNG"


def _no_save_stamp(xml: bytes) -> bytes:
    """openpyxl stamps ``modified`` with the clock at save time; everything else is pinned."""
    return re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\1T", xml)


def test_same_ledger_gives_the_same_report_contents(core, tmp_path):
    for fmt in ("xlsx", "docx"):
        paths = [svc.write_quarterly(core, svc.quarterly_report(core, Quarter(2019, 3)), fmt,
                                     tmp_path / f"{i}.{fmt}") for i in range(2)]
        with zipfile.ZipFile(paths[0]) as a, zipfile.ZipFile(paths[1]) as b:
            assert a.namelist() == b.namelist()
            for member in a.namelist():
                assert _no_save_stamp(a.read(member)) == _no_save_stamp(b.read(member)), \
                    (fmt, member)


def test_cli_writes_both_report_files(tmp_path, instance, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    result = CliRunner().invoke(main, ["report", "quarterly", "--year", "2020", "--quarter",
                                       "4", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "2020年第4季度" in result.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"programme-2020Q4.xlsx",
                                                             "programme-2020Q4.docx"}
    bad = CliRunner().invoke(main, ["report", "quarterly", "--year", "2020", "--quarter", "9",
                                    "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "quarter" in bad.output


# -- programme file extensions -------------------------------------------------------------
def test_extra_targets_are_optional_and_checked(tmp_path):
    p = tmp_path / "programme.toml"
    p.write_text("[programme]\nfirst_year = 2018\n[targets.2019]\nstarted = 1\ncompleted = 1\n"
                 "revenue_wan = 5000\n[targets.2020]\nstarted = 2\ncompleted = 2\n",
                 encoding="utf-8")
    extras = svc.read_extras(p)
    assert extras["first_year"] == 2018
    assert extras["targets"] == {2019: {"revenue_wan": 5000.0}, 2020: {}}
    p.write_text("[targets.2019]\nstarted = 1\ncompleted = 1\nvacated_mu = -3\n",
                 encoding="utf-8")
    with pytest.raises(ConfigError, match="vacated_mu"):
        svc.read_extras(p)
