"""Deadline statuses in the ledger downloads: the template export (read back by the import,
which ignores the derived columns) and the relocation ledger's CSV and XLSX."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from geoapp.config import load_settings
from geoapp.domain import ledger as L
from geoapp.services import open_geoapp
from geoapp.services.ledger import export_ledger, import_ledger

DAY = dt.date(2026, 12, 3)
STABLE = [c.field for c in (*L.LEDGER_COLUMNS, *L.PROGRESS_COLUMNS)] + ["lon", "lat"]


@pytest.fixture
def core(instance: Path):
    app = open_geoapp(load_settings(instance, environ={}))
    yield app
    app.repo.close()


def _stored(core) -> dict[str, dict]:
    df = core.repo.sites("enterprise").drop(columns="geometry")
    df = df.astype(object).where(df.notna(), None)
    return {r["id"]: {k: r[k] for k in STABLE} for r in df.to_dict("records")}


def _header_and_rows(path: Path) -> tuple[list[str], list[tuple]]:
    ws = load_workbook(path).active
    header = [c.value for c in ws[4]]
    top = [c.value for c in ws[3]]
    names = [low or up for low, up in zip(header, top, strict=True)]
    rows = []
    for r in ws.iter_rows(min_row=5, values_only=True):
        if r[0] is None or str(r[0]).startswith(L.NOTE_PREFIX):
            break
        rows.append(r)
    return names, rows


def test_template_export_with_deadlines_reads_back_unchanged(core, tmp_path):
    before = _stored(core)
    path = tmp_path / "ledger.xlsx"
    report = export_ledger(core, path, with_progress=True, with_deadlines=True, as_of=DAY)
    assert report["with_deadlines"]
    names, rows = _header_and_rows(path)
    assert names[-2:] == ["时限状态", "逾期天数"]
    ws = load_workbook(path).active
    assert ws.cell(row=3, column=len(names) - 1).value == "时限督办"
    status = [r[-2] for r in rows]
    days = [r[-1] for r in rows]
    assert status.count("逾期") == 37 and sum(d is not None for d in days) == 37
    assert all(d > 0 for d in days if d is not None)
    assert set(status) <= {"逾期", "已完成"}
    imported = import_ledger(core, path, user="planner1")
    assert (imported["created"], imported["updated"]) == (0, len(before))
    assert _stored(core) == before
    # and once more: the same file again
    export_ledger(core, tmp_path / "again.xlsx", with_progress=True, with_deadlines=True,
                  as_of=DAY)
    assert _header_and_rows(tmp_path / "again.xlsx")[1] == rows


def test_default_template_export_is_the_bureaus_template(core, tmp_path):
    export_ledger(core, tmp_path / "plain.xlsx")
    names, _rows = _header_and_rows(tmp_path / "plain.xlsx")
    assert "时限状态" not in names


def test_relocation_ledger_downloads_carry_status_and_days_overdue(viewer_client):
    csv = viewer_client.get("/relocation.csv?as_of=2026-12-03")
    df = pd.read_csv(io.BytesIO(csv.data), encoding="utf-8-sig", dtype=str)
    cols = list(df.columns)
    assert cols[cols.index("整改完成时限") + 1: cols.index("整改完成时限") + 3] == [
        "时限状态", "逾期天数"]
    assert (df["时限状态"] == "逾期").sum() == 37
    assert df.loc[df["时限状态"] == "逾期", "逾期天数"].notna().all()
    assert df.loc[df["时限状态"] != "逾期", "逾期天数"].isna().all()
    xlsx = viewer_client.get("/relocation.xlsx?as_of=2026-12-03&overdue=1")
    sheet = pd.read_excel(io.BytesIO(xlsx.data))
    assert len(sheet) == 37 and set(sheet["时限状态"]) == {"逾期"}
    old = pd.read_csv(io.BytesIO(viewer_client.get("/relocation.csv?as_of=2018-01-01").data),
                      encoding="utf-8-sig", dtype=str)
    assert (old["时限状态"] == "逾期").sum() < 37


def test_relocation_page_marks_and_filters_overdue(viewer_client):
    html = viewer_client.get("/relocation?as_of=2026-12-03").get_data(as_text=True)
    assert '<b id="rl-overdue-count">37</b>' in html
    assert html.count('data-deadline="overdue"') == 37
    assert "逾期企业 (37)" in html  # the red-ring layer and its count
    only = viewer_client.get("/relocation?as_of=2026-12-03&overdue=1").get_data(as_text=True)
    assert only.count('<tr data-id="') == 37
    assert 'id="rl-overdue-only" checked' in only
    api = viewer_client.get("/api/relocation?as_of=2026-12-03&overdue=1").get_json()
    assert len(api["sites"]) == 37 and api["filters"]["overdue"] == ["1"]
    assert all(s["deadline_status"] == "overdue" and s["days_overdue"] > 0
               for s in api["sites"])
