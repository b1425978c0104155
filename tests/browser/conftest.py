"""Browser tests: Debian's Chromium driven by Playwright against a live server on loopback.

The server runs the real app on the embedded data in a thread; Chromium runs headless with
no network beyond 127.0.0.1, so every asset must come from the app itself (intranet mode).
Screenshots land in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from netlock import network_lock
from playwright.sync_api import sync_playwright

from geoapp.web import create_app

from browserutil import new_page, serve
from webutil import copy_database, share_engine

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(autouse=True)
def _steady_network():
    """No network-namespace lab changes the host's interfaces while this test's browser runs
    (Chromium aborts requests in flight on such a change; tests/netlock.py)."""
    with network_lock(exclusive=False):
        yield


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, jiaozuo_users_db, jiaozuo_engine):
    inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp("instance")).parent
    app = create_app({"INSTANCE_PATH": str(inst), "INTRANET": True, "TILES": "none",
                      "TESTING": True})
    share_engine(app, jiaozuo_engine)
    yield from serve(app)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed (scripts/system-deps.sh installs it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu",
                                     "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    """A desktop page logged in as a viewer."""
    pg = new_page(browser, live_server, "viewer")
    yield pg
    pg.context.close()


@pytest.fixture
def page_as(browser, live_server):
    """Factory: ``page_as("inspector", viewport={...})`` gives a logged-in page."""
    made = []

    def make(role: str | None = "viewer", **context_args):
        pg = new_page(browser, live_server, role, **context_args)
        made.append(pg)
        return pg

    yield make
    for pg in made:
        pg.context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
