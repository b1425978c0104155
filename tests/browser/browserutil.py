"""Helpers for the browser tests: serve an app on loopback, open a logged-in page that
records console errors and requests off loopback, and wait for a page to settle."""

from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import make_server

from webutil import csrf_token, password_for


def serve(app: Flask):
    """Serve ``app`` on a free loopback port in a thread; yields the base URL, then stops."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


#: Resolves once the fonts are loaded and every folium map on the page is ready and still
#: (no zoom or pan animation running), two frames later; fails after ``limit`` ms.
SETTLE = """async (limit) => {
  const settle = async () => {
    await document.fonts.ready;
    for (const box of document.querySelectorAll('.folium-map')) {
      const map = window[box.id];
      if (!map || !map.whenReady) { continue; }
      await new Promise((done) => map.whenReady(done));
      while (map._animatingZoom || (map._panAnim && map._panAnim._inProgress)) {
        await new Promise((done) => map.once('zoomend moveend', done));
      }
    }
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    return true;
  };
  const late = new Promise((_, fail) =>
    setTimeout(() => fail(new Error('page not settled after ' + limit + ' ms')), limit));
  return Promise.race([settle(), late]);
}"""


def settle(pg, limit_ms: int = 15000) -> None:
    """Wait until the page has drawn and stopped moving (fonts loaded, maps ready, no zoom
    or pan animation): what a screenshot or a PDF needs, without a fixed sleep. Works under
    the enforced CSP (``page.evaluate`` is not ``eval``)."""
    pg.evaluate(SETTLE, limit_ms)


def log_in(pg, base_url: str, role: str) -> None:
    """Log a browser page in through the real login form, typed and clicked (it lands on
    the page after the login, the overview)."""
    pg.goto(base_url + "/login")
    pg.fill("input[name=username]", role)
    pg.fill("input[name=password]", password_for(role))
    pg.click("button[type=submit]")
    pg.wait_for_url(lambda url: "/login" not in url)


def sign_in(context, base_url: str, role: str) -> None:
    """Log a browser context in by sending the login form's own request (its CSRF token,
    the role's password) from the context: the session cookie lands in the context and no
    page is drawn. ``log_in`` is the form as a user fills it in."""
    form = context.request.get(base_url + "/login")
    r = context.request.post(base_url + "/login", max_redirects=0, form={
        "username": role, "password": password_for(role), "csrf_token": csrf_token(form.text())})
    assert r.status == 302, (role, r.status, r.text()[:300])


def new_page(browser, live_server, role: str | None = "viewer", **context_args):
    """A page (its context logged in as ``role``, see ``sign_in``) recording console errors
    and requests off loopback; it has not opened any address yet."""
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
        sign_in(ctx, live_server, role)
    return pg
