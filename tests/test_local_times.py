"""Stored UTC stamps are shown as local time (Asia/Shanghai, 2026-11-30 14:05) on the
account list, the audit log and the layer list (the ``local_time`` template filter)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from flask import render_template_string

from webutil import login

ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _local(iso: str) -> str:
    stamp = datetime.fromisoformat(iso)
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return stamp.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


@pytest.fixture(scope="module")
def admin(offline_app):
    c = offline_app.test_client()
    login(c, "admin")
    return c


def test_last_login_is_local_time(offline_app, admin):
    html = admin.get("/admin/users").get_data(as_text=True)
    stamp = offline_app.extensions["geoapp"].repo.get_user("admin")["last_login_at"]
    row = html[html.index('id="user-admin"'):]
    row = row[:row.index("</tr>")]
    assert f">{_local(stamp)}</td>" in row
    assert not ISO.search(row)


def test_audit_times_are_local_time(admin):
    html = admin.get("/admin/audit").get_data(as_text=True)
    table = html[html.index('id="audit"'):html.index("</table>")]
    shown = re.findall(r'<td class="ga-nowrap">([^<]*)</td>', table)
    assert shown and all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", s) for s in shown)


@pytest.mark.parametrize(("stamp", "shown"), [
    ("2026-11-30 06:05:09", "2026-11-30 14:05"),  # the layer list's UTC without a zone
    ("2026-11-30T06:05:09Z", "2026-11-30 14:05"),
    ("", ""),
])
def test_the_filter_in_any_template(offline_app, stamp, shown):
    with offline_app.test_request_context():
        assert render_template_string("{{ s | local_time }}", s=stamp) == shown
