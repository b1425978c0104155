"""Browser tests: Debian's Chromium driven by Playwright against a live server on loopback.

The server runs the real app on the embedded data in a thread; Chromium runs headless with
no network beyond 127.0.0.1, so every asset must come from the app itself (intranet mode).
Screenshots land in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, jiaozuo_db):
    from geoapp.web import create_app

    from webutil import make_users

    inst = tmp_path_factory.mktemp("instance")
    shutil.copyfile(jiaozuo_db, inst / "geoapp.gpkg")
    app = create_app({"INSTANCE_PATH": str(inst), "INTRANET": True, "TILES": "none",
                      "TESTING": True})
    make_users(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed (scripts/system-deps.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu",
                                     "--disable-background-networking"])
        yield b
        b.close()


def log_in(pg, base_url: str, role: str) -> None:
    """Log a browser page in through the real login form."""
    from webutil import password_for

    pg.goto(base_url + "/login")
    pg.fill("input[name=username]", role)
    pg.fill("input[name=password]", password_for(role))
    pg.click("button[type=submit]")
    pg.wait_for_url(lambda url: "/login" not in url)


def new_page(browser, live_server, role: str | None = "viewer", **context_args):
    """A page (logged in as ``role``) recording console errors and requests off loopback."""
    # Playwright's wait_for_function evaluates strings, which the app's CSP forbids; the
    # CSP itself is checked with bypass_csp=False in test_csp_browser.py.
    ctx = browser.new_context(**{"viewport": {"width": 1280, "height": 800},
                                 "locale": "zh-CN", "bypass_csp": True, **context_args})
    pg = ctx.new_page()
    pg.console_errors = []
    pg.external_requests = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))

    def _route(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            pg.external_requests.append(url)
            route.abort()

    pg.route("**/*", _route)
    if role:
        log_in(pg, live_server, role)
    return pg


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
