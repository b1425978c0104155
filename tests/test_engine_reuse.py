"""The rule engine is rebuilt when its inputs change, not when someone downloads a file:
every download leaves an audit row, and the next check must still use the built engine."""

from __future__ import annotations

import io

import pytest

from geoapp.spatial.engine import RuleEngine

from webutil import login

CHECK = "/api/check?lon=113.24&lat=35.22&site_type=livestock_farm"


def _refuse(*args, **kwargs):
    raise AssertionError("the rule engine was built again")


@pytest.mark.parametrize("download", ["/relocation.csv", "/ledger/export", "flagged file"])
def test_a_download_does_not_make_the_next_check_rebuild_the_engine(make_app, monkeypatch,
                                                                   download):
    app = make_app(INTRANET=True, TILES="none")
    client = app.test_client()
    token = login(client, "planner")
    assert client.get(CHECK).status_code == 200
    monkeypatch.setattr(RuleEngine, "build", _refuse)
    if download == "flagged file":
        r = client.post("/api/flag", data={"file": (io.BytesIO(b"lon,lat\n113.2,35.2\n"),
                                                    "a.csv")},
                        content_type="multipart/form-data", headers={"X-CSRFToken": token})
    else:
        r = client.get(download)
    assert r.status_code == 200
    assert "attachment" in r.headers["Content-Disposition"]  # audited as a download
    assert client.get(CHECK).status_code == 200
