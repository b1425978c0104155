"""/overdue and its workbook, the site page's deadline section, English mode."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from geoapp.services import deadlines as svc


@pytest.fixture(scope="module")
def client(viewer_client):
    return viewer_client


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


def test_overdue_page_lists_every_county_with_counts_and_site_links(client, core):
    html = client.get("/overdue?as_of=2026-12-03").get_data(as_text=True)
    view = svc.overdue_view(core, "2026-12-03")
    assert 'id="dl-as-of" data-date="2026-12-03">截至2026年12月3日' in html
    assert f'data-count="overdue"><b>{view.counts["overdue"]}</b>' in html
    assert f'data-count="sites_overdue"><b>{view.counts["sites_overdue"]}</b>' in html
    counties = re.findall(r'<section class="dl-section dl-county" id="county-\d+" '
                          r'data-county="([^"]+)"', html)
    assert counties == list(core.city.county_names)
    firms = set(re.findall(r'data-site="(E\d+)" data-kind="deadline" data-status="overdue"',
                           html))
    assert len(firms) == 37
    assert '/sites/E' in html and "逾期督办" in html
    # a county without any shows it has none
    empty = [g.county for g in view.groups if not g.overdue and not g.due_soon]
    if empty:
        assert "无逾期或即将到期事项" in html


def test_overdue_page_as_of_a_day_before_the_deadlines(client):
    html = client.get("/overdue?as_of=2017-01-01").get_data(as_text=True)
    assert 'data-count="overdue"><b>0</b>' in html


def test_bad_as_of_is_a_400(client):
    r = client.get("/overdue?as_of=2026-02-30")
    assert r.status_code == 400


def test_overdue_workbook_holds_the_pages_rows(client, core):
    r = client.get("/overdue.xlsx?as_of=2026-12-03")
    assert r.status_code == 200
    assert "overdue-20261203.xlsx" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["区县统计", "逾期及即将到期"]
    for ws in wb.worksheets:  # the title rows above each table
        assert ws["A1"].value == "焦作市逾期督办清单" and ws["A1"].font.b
        assert ws["A2"].value == "截至2026年12月3日"
        assert ws["A3"].value == "焦作市生态环境局　2026年12月3日"
        assert ws.freeze_panes == "A5"
    counts = list(wb["区县统计"].iter_rows(min_row=4, values_only=True))
    assert counts[0] == ("区县", "逾期事项", "逾期单位", "即将到期事项")
    assert [row[0] for row in counts[1:-1]] == list(core.city.county_names)
    view = svc.overdue_view(core, "2026-12-03")
    assert counts[-1] == ("合计", view.counts["overdue"], view.counts["sites_overdue"],
                          view.counts["due_soon"])
    rows = list(wb["逾期及即将到期"].iter_rows(min_row=4, values_only=True))
    assert len(rows) - 1 == view.counts["overdue"] + view.counts["due_soon"]
    assert sum(1 for row in rows[1:] if row[5] == "整改完成时限" and row[1] == "逾期") == 37


def test_english_mode(client):
    html = client.get("/overdue?as_of=2026-12-03&lang=en").get_data(as_text=True)
    wb = load_workbook(io.BytesIO(client.get("/overdue.xlsx?as_of=2026-12-03").data))
    client.get("/overdue?lang=zh")
    assert ">as of 2026-12-03" in html
    assert "Overdue" in html and "Deadline" in html
    assert "逾期督办" not in html.split("<main", 1)[-1]
    assert wb.sheetnames[0] == "By county"
    ws = wb.worksheets[0]
    assert ws["A1"].value == "Overdue obligations, Jiaozuo"
    assert ws["A2"].value == "as of 2026-12-03"
    assert ws["A3"].value == "焦作市生态环境局, 3 Dec 2026"



def test_site_page_shows_the_deadline_statuses(client, core):
    html = client.get("/sites/E0008").get_data(as_text=True)
    assert 'id="deadlines" data-status="overdue"' in html
    today = svc.local_today()
    site = core.repo.site("E0008")
    days = (today - dt.date.fromisoformat(site["deadline"])).days
    assert re.search(r'data-kind="deadline" data-status="overdue">.*?data-days="' + str(days),
                     html, re.S)
    assert 'data-kind="planned_start" data-status="overdue"' in html
    done = client.get("/sites/E0001").get_data(as_text=True)
    assert 'data-kind="deadline" data-status="done"' in done
    workshop = client.get("/sites/W0001").get_data(as_text=True)
    assert 'data-kind="water_cut" data-status="done"' in workshop
    assert "取缔日期推算" in workshop
    en = client.get("/sites/E0008?lang=en").get_data(as_text=True)
    client.get("/sites/E0008?lang=zh")
    assert ">Deadlines <" in en and "days overdue" in en


def test_site_page_judges_the_deadlines_on_the_as_of_day(client, core):
    due = dt.date.fromisoformat(core.repo.site("E0008")["deadline"])
    before = client.get(f"/sites/E0008?as_of={due - dt.timedelta(days=20)}")
    assert before.status_code == 200
    assert 'data-kind="deadline" data-status="not_due"' in before.get_data(as_text=True)
    soon = client.get(f"/sites/E0008?as_of={due - dt.timedelta(days=14)}").get_data(as_text=True)
    assert 'data-kind="deadline" data-status="due_soon"' in soon
    assert client.get("/sites/E0008?as_of=2026-13-40").status_code == 400
