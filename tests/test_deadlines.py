"""Deadlines: every status boundary of the domain rules, and the embedded data's overdue firms."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from geoapp.domain import deadlines as D
from geoapp.domain.errors import InvalidInput
from geoapp.services import deadlines as svc

DAY = dt.date(2026, 12, 3)
CSV = Path(__file__).resolve().parent.parent / "data" / "sites" / "enterprises.csv"


def _firm(**values) -> dict:
    base = {"id": "E9", "site_type": "enterprise", "name": "某企业", "district": "温县",
            "stage": "started", "deadline": None, "planned_start": None,
            "actual_start": "2026-01-01", "planned_completion": None, "actual_completion": None}
    return {**base, **values}


def _deadline(**values) -> D.Obligation:
    obs = D.enterprise_obligations(_firm(**values), DAY)
    return next(o for o in obs if o.kind == "deadline")


# -- status boundaries ------------------------------------------------------------------------
def test_due_today_is_due_soon_not_overdue():
    o = _deadline(deadline="2026-12-03")
    assert (o.status, o.days_left, o.days_overdue) == (D.Status.DUE_SOON, 0, 0)


def test_due_in_14_days_is_due_soon_and_in_15_is_not_yet_due():
    assert _deadline(deadline="2026-12-17").status == D.Status.DUE_SOON
    o = _deadline(deadline="2026-12-18")
    assert (o.status, o.days_left) == (D.Status.NOT_DUE, 15)


def test_due_yesterday_is_one_day_overdue():
    o = _deadline(deadline="2026-12-02")
    assert (o.status, o.days_overdue) == (D.Status.OVERDUE, 1)
    assert o.status.zh == "逾期"


def test_done_late_and_done_on_time():
    late = _deadline(deadline="2026-06-30", stage="completed", actual_completion="2026-07-10")
    assert (late.status, late.late, late.days_overdue) == (D.Status.DONE, True, 10)
    ok = _deadline(deadline="2026-06-30", stage="completed", actual_completion="2026-06-30")
    assert (ok.status, ok.late, ok.days_overdue) == (D.Status.DONE, False, 0)


def test_met_by_stage_or_by_an_actual_completion_date():
    assert _deadline(deadline="2020-01-01", stage="accepted").status == D.Status.DONE
    o = _deadline(deadline="2020-01-01", stage="started", actual_completion="2019-12-01")
    assert (o.status, o.late) == (D.Status.DONE, False)


def test_missing_and_unparseable_dates_are_to_be_verified_never_not_yet_due():
    for value in (None, "", float("nan"), "明年", "2026-13-45", "2026/02/30"):
        o = _deadline(deadline=value)
        assert o.status == D.Status.UNKNOWN, value
        assert o.status.zh == "待核实"
    assert _deadline(deadline="明年").bad_due == "明年"
    # a missing date on a finished firm is simply done
    assert _deadline(deadline=None, stage="completed",
                     actual_completion="2020-01-01").status == D.Status.DONE


def test_other_written_dates_are_read():
    for text in ("2026/12/2", "2026.12.2", "2026年12月2日", dt.date(2026, 12, 2),
                 pd.Timestamp("2026-12-02")):
        assert _deadline(deadline=text).status == D.Status.OVERDUE, text


def test_a_completion_after_the_as_of_day_had_not_happened_then():
    o = _deadline(deadline="2026-11-30", stage="completed", actual_completion="2026-12-10")
    assert (o.status, o.days_overdue) == (D.Status.OVERDUE, 3)


def test_due_soon_days_is_a_setting():
    obs = D.enterprise_obligations(_firm(deadline="2026-12-10"), DAY, D.Rules(due_soon_days=3))
    assert obs[0].status == D.Status.NOT_DUE


def test_relocation_milestones():
    firm = _firm(stage="not_started", actual_start=None, planned_start="2026-11-01",
                 planned_completion="2027-06-30", deadline="2027-06-30")
    got = {o.kind: o for o in D.enterprise_obligations(firm, DAY)}
    assert got["planned_start"].status == D.Status.OVERDUE
    assert got["planned_start"].days_overdue == 32
    assert got["planned_completion"].status == D.Status.NOT_DUE
    started = _firm(planned_start="2026-11-01", actual_start="2026-11-05")
    o = next(o for o in D.enterprise_obligations(started, DAY) if o.kind == "planned_start")
    assert (o.status, o.late, o.days_overdue) == (D.Status.DONE, True, 4)
    # no planned date: the programme set no milestone
    assert {o.kind for o in D.enterprise_obligations(_firm(), DAY)} == {"deadline"}


def test_two_cuts_three_clears_due_from_the_banned_date():
    ws = {"id": "W1", "site_type": "scattered_workshop", "name": "作坊", "district": "温县",
          "status": "banned", "banned_date": "2026-11-20", "water_cut_date": "2026-11-25",
          "power_cut_date": None, "materials_cleared_date": "2026-12-06",
          "products_cleared_date": None, "equipment_cleared_date": "坏日期"}
    got = {o.kind: o for o in D.site_obligations(ws, DAY)}
    assert got["water_cut"].due == dt.date(2026, 11, 27) and got["water_cut"].derived
    assert (got["water_cut"].status, got["water_cut"].late) == (D.Status.DONE, False)
    assert (got["power_cut"].status, got["power_cut"].days_overdue) == (D.Status.OVERDUE, 6)
    # done after the as-of day: not done yet then; due 12-05 -> due soon
    assert got["materials_cleared"].status == D.Status.DUE_SOON
    assert got["products_cleared"].due == dt.date(2026, 12, 5)
    assert got["equipment_cleared"].status == D.Status.UNKNOWN
    rules = D.Rules(two_cuts_days=20)
    assert next(o for o in D.site_obligations(ws, DAY, rules)
                if o.kind == "power_cut").status == D.Status.DUE_SOON
    assert D.site_obligations({**ws, "status": "found"}, DAY) == []
    no_date = D.site_obligations({**ws, "banned_date": None, "power_cut_date": None}, DAY)
    assert next(o for o in no_date if o.kind == "power_cut").status == D.Status.UNKNOWN


def test_as_of_text():
    assert D.parse_as_of("2026-12-03") == DAY
    assert D.parse_as_of("") is None and D.parse_as_of(None) is None
    for bad in ("2026-02-30", "03/12/2026", "today"):
        with pytest.raises(InvalidInput):
            D.parse_as_of(bad)
    when = svc.as_of_day("2026-12-01", today=DAY)
    assert (when.date, when.today, when.zh) == (dt.date(2026, 12, 1), False, "截至2026年12月1日")
    assert svc.as_of_day(None, today=DAY).today


def test_county_grouping_keeps_every_county_in_bulletin_order():
    obs = [*D.enterprise_obligations(_firm(id="A", district="温县", deadline="2026-12-01"), DAY),
           *D.enterprise_obligations(_firm(id="B", district="解放区", deadline="2026-12-10"),
                                     DAY),
           *D.enterprise_obligations(_firm(id="C", district="温县", deadline="2026-11-01"), DAY),
           *D.enterprise_obligations(_firm(id="D", district="孟州市", deadline="2027-12-01"),
                                     DAY)]
    groups = D.group_by_county(obs, ("解放区", "孟州市", "温县", "武陟县"))
    assert [g.county for g in groups] == ["解放区", "孟州市", "温县", "武陟县"]
    by = {g.county: g for g in groups}
    assert [o.site_id for o in by["温县"].overdue] == ["C", "A"]  # most overdue first
    assert [o.site_id for o in by["解放区"].due_soon] == ["B"]
    assert by["孟州市"].counts() == {"overdue": 0, "due_soon": 0, "sites_overdue": 0}
    assert by["武陟县"].overdue == [] and by["武陟县"].due_soon == []
    counts = D.count_statuses(obs)
    assert (counts["overdue"], counts["due_soon"], counts["not_due"]) == (2, 1, 1)


# -- the embedded data ------------------------------------------------------------------------
def test_embedded_ledger_has_37_firms_past_their_deadline_as_of_2026_12_03():
    ledger = pd.read_csv(CSV, dtype={"credit_code": str})
    obs = [o for rec in ledger.astype(object).where(ledger.notna(), None).to_dict("records")
           for o in D.enterprise_obligations({**rec, "site_type": "enterprise"}, DAY)
           if o.kind == "deadline"]
    over = [o for o in obs if o.status == D.Status.OVERDUE]
    assert len(over) == 37
    assert {o.site_id for o in over} == set(
        ledger.loc[~ledger["stage"].isin(["completed", "accepted"]), "id"])


def test_the_stored_data_as_of_2026_12_03(offline_app):
    core = offline_app.extensions["geoapp"]
    view = svc.overdue_view(core, "2026-12-03")
    firms = {o.site_id for o in view.obligations
             if o.site_type == "enterprise" and o.status == D.Status.OVERDUE}
    assert len(firms) == 37
    deadline = [o for o in view.obligations if o.kind == "deadline"
                and o.status == D.Status.OVERDUE]
    assert len(deadline) == 37
    assert [g.county for g in view.groups] == list(core.city.county_names)
    assert sum(len(g.overdue) for g in view.groups) == view.counts["overdue"]
    # banned workshops with a step not recorded are overdue too (derived due dates)
    steps = [o for o in view.obligations if o.site_type == "scattered_workshop"
             and o.status == D.Status.OVERDUE]
    assert steps and all(o.derived for o in steps)
    assert view.counts["sites_overdue"] == 37 + len({o.site_id for o in steps})
