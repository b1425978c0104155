"""Stored cross-site scripting: hostile text put in by a planner (and an admin) never runs.

A planner uploads zone, river and grid layers, imports a ledger and complaints, records an
inspection; an admin replaces the counties and creates an account — every name, id, address,
progress note, file name and display name is hostile (``<img onerror>``, ``</script>``,
attribute break-outs, ``javascript:``, ``{{7*7}}`` and an unclosed ``{% if`` (folium's renderer
once ran names as Jinja), U+2028). Then an admin opens every page in
Chromium with the Content-Security-Policy enforced, opens the popups and tooltips of the
hostile features (by mouse where the map can be hit reliably, and through Leaflet for every
hostile feature), uses the measure control, and the test fails on any dialog, any console
error (a CSP violation is one) or hostile text missing from what the user sees.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from openpyxl import load_workbook

from geoapp.web import create_app

from browserutil import new_page, serve
from webutil import copy_database, login

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # seeding re-flags every site per upload

DATA = Path(__file__).resolve().parents[2] / "data" / "boundaries"

#: Each lands in some name, id or free-text field; MARK finds them again on the page.
MARK = "xss"
HOSTILE = (
    f"<img src=x onerror=alert(1)>{MARK}",
    f'"><script>alert(1)</script>{MARK}',
    f"</script><script>alert(1)</script>{MARK}",
    f"javascript:alert(1)//{MARK}",
    f"{{{{7*7}}}}{MARK}",
    f"{{% if %}}{{#{MARK}",
    f"line\u2028sep\u2029{MARK}",
    f"'-alert(1)-'`${{alert(1)}}`{MARK}",
)
ALL_IN_ONE = "".join(HOSTILE)


def hostile(i: int) -> str:
    return HOSTILE[i % len(HOSTILE)] + f"-{i}"


def _wait_until(check, timeout: float = 15.0, what: str = "condition"):
    """Poll ``check()`` (a cheap page.evaluate) until it is truthy; no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- seeding through the app's own routes -----------------------------------------------

def _upload_layer(client, token: str, layer: str, tmp: Path, *, fields=("name", "id")) -> None:
    fc = json.loads((DATA / f"{layer}.geojson").read_text(encoding="utf-8"))
    for i, f in enumerate(fc["features"]):
        for field in fields:
            f["properties"][field] = hostile(i) if field != "name" or i else ALL_IN_ONE
    path = tmp / f"{layer}.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    with path.open("rb") as fh:
        r = client.post(f"/layers/{layer}", content_type="multipart/form-data",
                        data={"csrf_token": token,
                              "file": (fh, f"{HOSTILE[0]}{layer}.geojson")})
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="ly-report"' in body, (layer, body[-1500:])


def _import_ledger(client, token: str) -> None:
    wb = load_workbook(io.BytesIO(client.get("/ledger/export").data))
    ws = wb.active
    for i, row in enumerate(range(5, ws.max_row + 1)):
        if ws.cell(row=row, column=3).value is None:
            continue
        ws.cell(row=row, column=3).value = ALL_IN_ONE if i == 0 else hostile(i)  # name
        ws.cell(row=row, column=4).value = hostile(i + 1)                         # address
        ws.cell(row=row, column=6).value = hostile(i + 2)                         # industry
        ws.cell(row=row, column=14).value = hostile(i + 3)                        # problems
        ws.cell(row=row, column=18).value = hostile(i + 4)                        # progress
        ws.cell(row=row, column=19).value = hostile(i + 5)                        # remarks
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    r = client.post("/ledger/import", content_type="multipart/form-data",
                    data={"csrf_token": token, "file": (out, f"{HOSTILE[0]}.xlsx")})
    assert r.status_code == 200, r.get_data(as_text=True)[-1500:]


def _import_complaints(client, token: str, tmp: Path) -> None:
    lines = ["received_at,category,summary,id"]
    for i in range(len(HOSTILE)):
        summary = hostile(i).replace('"', '""')
        lines.append(f'2026-11-17T09:0{i},噪声,"{summary}",C-{MARK}-{i}')
    path = tmp / "complaints.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with path.open("rb") as fh:
        r = client.post("/weekly/import", content_type="multipart/form-data",
                        data={"csrf_token": token, "kind": "complaints", "week": "2026-W47",
                              "file": (fh, f"{HOSTILE[0]}.csv")})
    assert r.status_code in (200, 302), r.get_data(as_text=True)[-1500:]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory, jiaozuo_users_db):
    """A live server of its own (the shared one stays clean), seeded with hostile data."""
    inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp("hostile-instance")).parent
    tmp = tmp_path_factory.mktemp("hostile-files")
    app = create_app({"INSTANCE_PATH": str(inst), "INTRANET": True, "TILES": "none",
                      "TESTING": True})

    planner = app.test_client()
    token = login(planner, "planner")
    _import_ledger(planner, token)
    for layer in ("urban_core", "water_source_zones", "chemical_parks", "rivers"):
        _upload_layer(planner, token, layer, tmp)
    _upload_layer(planner, token, "hotspot_grids", tmp, fields=("name", "id"))
    _import_complaints(planner, token, tmp)

    admin = app.test_client()
    token = login(admin, "admin")
    _upload_layer(admin, token, "counties", tmp, fields=("name",))
    r = admin.post("/check/inspections", data={
        "csrf_token": token, "site": "E0001", "notes": ALL_IN_ONE})
    assert r.status_code in (200, 302), r.get_data(as_text=True)[-1500:]
    r = admin.post("/admin/users", data={
        "csrf_token": token, "username": "hostile.user", "display_name": ALL_IN_ONE[:100],
        "role": "viewer", "password": "Vq8#longer-pass-77", "password2": "Vq8#longer-pass-77"})
    assert r.status_code in (200, 302), r.get_data(as_text=True)[-1500:]

    yield from serve(app)


@pytest.fixture(scope="module")
def admin_page(browser, hostile_server):
    """One admin page, CSP enforced, recording dialogs as well as console errors."""
    pg = new_page(browser, hostile_server, "admin", bypass_csp=False)
    pg.dialogs = []

    def _dialog(d):
        pg.dialogs.append(d.message)
        d.dismiss()

    pg.on("dialog", _dialog)
    yield pg
    pg.context.close()


# --- in the page -----------------------------------------------------------------------

#: Opens the tooltip and popup of every layer on the page's folium map that is on the map and
#: carries hostile text (features) or has no feature (distance lines, markers), and returns
#: what the user would read in them.
OPEN_ALL = """(mark) => {
  const box = document.querySelector('.folium-map');
  const map = box && window[box.id];
  if (!map) { return null; }
  const texts = [];
  const read = (el) => el ? el.textContent : '';
  map.eachLayer((l) => {
    const hostile = l.feature ? JSON.stringify(l.feature.properties || {}).includes(mark)
                              : true;
    if (!hostile || !(l.getTooltip || l.getPopup)) { return; }
    const at = l.getLatLng ? l.getLatLng() : (l.getBounds ? l.getBounds().getCenter() : null);
    if (l.getTooltip && l.getTooltip()) {
      l.openTooltip(at || undefined);
      texts.push(read(l.getTooltip().getElement()));
      l.closeTooltip();
    }
    if (l.getPopup && l.getPopup()) {
      l.openPopup(at || undefined);
      texts.push(read(l.getPopup().getElement()));
      l.closePopup();
    }
  });
  Object.keys(window).filter((k) => k.startsWith('fast_points_')).forEach((k) => {
    const fp = window[k];
    if (!fp || !fp.geoappPopup || !fp._map) { return; }
    for (let i = 0; i < Math.min(fp.pointCount(), 40); i++) {
      fp.openPopup(i);
      const open = document.querySelectorAll('.leaflet-popup-content');
      texts.push(read(open[open.length - 1]));
      map.closePopup();
    }
  });
  return texts;
}"""

MAP_READY = """() => {
  const box = document.querySelector('.folium-map');
  return !!(box && window[box.id] && window[box.id]._loaded &&
            document.readyState === 'complete');
}"""


def _open(page, url: str) -> str:
    r = page.goto(url)
    assert r.status == 200, (url, r.status)
    csp = r.headers["content-security-policy"]
    script_src = csp.split("script-src")[1].split(";")[0]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "'nonce-" in script_src
    assert r.headers["cache-control"] == "no-store"
    page.wait_for_load_state("load")
    return page.content()


def _assert_clean(page, where: str) -> None:
    assert page.dialogs == [], (where, page.dialogs)
    assert page.console_errors == [], (where, page.console_errors)
    assert page.external_requests == [], (where, page.external_requests)
    # No hostile markup became an element: no injected <img src=x>, no script without the nonce.
    injected = page.evaluate("""() => ({
      imgs: [...document.querySelectorAll('img')].filter((i) =>
        (i.getAttribute('src') || '') === 'x').length,
      handlers: [...document.querySelectorAll('*')].filter((e) =>
        e.hasAttribute('onerror') || e.hasAttribute('onload')).length,
      scripts: [...document.querySelectorAll('script')].filter((s) =>
        !s.src && !s.nonce).length,
      jsLinks: [...document.querySelectorAll('a[href]')].filter((a) =>
        a.getAttribute('href').trim().toLowerCase().startsWith('javascript:')).length})""")
    assert injected == {"imgs": 0, "handlers": 0, "scripts": 0, "jsLinks": 0}, (where, injected)


def _visible_text(page) -> str:
    return page.evaluate("() => document.body.innerText")


def _open_popups(page, where: str) -> list[str]:
    _wait_until(lambda: page.evaluate(MAP_READY), what=f"the map of {where}")
    texts = page.evaluate(OPEN_ALL, MARK)
    assert texts is not None, where
    return texts


def _click_first_site(page) -> str:
    """Click (with the mouse) the first drawn point of the first visible point layer."""
    point = page.evaluate("""() => {
      const box = document.querySelector('.folium-map'), map = window[box.id];
      const k = Object.keys(window).find((n) => n.startsWith('fast_points_') &&
                                             window[n] && window[n]._map);
      const fp = window[k];
      map.setView(fp.latLngAt(0), 15, {animate: false});
      const p = map.latLngToContainerPoint(fp.latLngAt(0)), r = box.getBoundingClientRect();
      return {x: r.left + p.x, y: r.top + p.y};
    }""")
    _wait_until(lambda: page.evaluate(
        "() => Object.keys(window).some((n) => n.startsWith('fast_points_') && window[n] &&"
        " window[n]._map && window[n].visibleCount() > 0)"), what="points drawn")
    assert page.locator(".leaflet-popup-content").count() == 0
    page.mouse.click(point["x"], point["y"])
    _wait_until(lambda: page.locator(".leaflet-popup-content").count(), what="a site popup")
    return page.locator(".leaflet-popup-content").first.inner_text()


def _measure(page) -> None:
    """Use the measure control (its templates once needed eval): two clicks and finish."""
    page.evaluate("() => { window[document.querySelector('.folium-map').id].closePopup(); }")
    page.locator(".leaflet-control-measure").hover()  # the control opens on hover
    page.locator(".leaflet-control-measure .js-start").click()
    box = page.locator(".folium-map").bounding_box()
    for dx in (-120, 80):
        page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + 40)
    _wait_until(lambda: page.locator(".leaflet-control-measure .js-results .group").count()
                >= 2, what="a measured length")
    page.locator(".leaflet-control-measure .js-finish").click()
    _wait_until(lambda: page.locator(".leaflet-popup-content h3").count(),
                what="the measurement popup")
    page.evaluate("() => { window[document.querySelector('.folium-map').id].closePopup(); }")


# --- the pages ---------------------------------------------------------------------------

def test_overview_shows_hostile_names_as_text_in_every_popup(admin_page, hostile_server,
                                                              artifacts):
    page = admin_page
    _open(page, hostile_server + "/")
    _wait_until(lambda: page.evaluate(MAP_READY), what="the overview map")
    site_popup = _click_first_site(page)
    assert MARK in site_popup
    texts = _open_popups(page, "/")
    shown = "\n".join(texts).replace("\u2028", "").replace("\u2029", "")
    for h in HOSTILE:
        assert h.replace("\u2028", "").replace("\u2029", "")[:12] in shown, h
    _measure(page)
    page.screenshot(path=str(artifacts / "xss-overview.png"))
    _assert_clean(page, "/")


@pytest.mark.parametrize("path", [
    "/check?lon=113.2418&lat=35.2159",
    "/check?site=E0001",
    "/check/print?site=E0001",
    "/relocation",
    "/sites/E0001",
    "/weekly?week=2026-W47",
    "/workshops",
])
def test_map_pages_show_hostile_text_without_running_it(admin_page, hostile_server, path):
    page = admin_page
    page.console_errors.clear()
    _open(page, hostile_server + path)
    texts = []
    if page.locator(".folium-map").count():
        texts = _open_popups(page, path)
    seen = _visible_text(page) + "\n".join(texts)
    if not path.startswith("/workshops"):
        assert MARK in seen, path
    if path.startswith("/sites/"):
        assert "{{7*7}}" in seen and "49" + MARK not in seen
    _assert_clean(page, path)


@pytest.mark.parametrize("path", ["/programme", "/ledger", "/layers", "/admin/users",
                                  "/admin/audit", "/admin/audit?action=import"])
def test_tables_and_logs_show_hostile_text_without_running_it(admin_page, hostile_server,
                                                              path):
    page = admin_page
    page.console_errors.clear()
    _open(page, hostile_server + path)
    seen = _visible_text(page)
    if path.startswith(("/programme", "/admin")):
        assert MARK in seen, path
    _assert_clean(page, path)


def test_a_rejected_upload_lists_hostile_cells_as_text(admin_page, hostile_server, tmp_path):
    """The row-by-row error table of a refused complaints file, uploaded through the page."""
    page = admin_page
    page.console_errors.clear()
    _open(page, hostile_server + "/weekly?week=2026-W47")
    bad = tmp_path / "bad.csv"
    bad.write_text("received_at,category\n" + "\n".join(
        f'not-a-date,"{h.replace(chr(34), chr(34) * 2)}"' for h in HOSTILE) + "\n",
        encoding="utf-8")
    page.locator(".wk-upload select[name=kind]").select_option("complaints")
    page.locator(".wk-upload input[type=file]").set_input_files(str(bad))
    with page.expect_navigation():
        page.locator(".wk-upload button[type=submit]").click()
    _wait_until(lambda: page.locator(".wk-errors").count(), what="the error table")
    assert MARK in page.locator(".wk-errors").inner_text()
    # The refused file is answered 400, which Chromium logs; nothing else may be logged.
    page.console_errors[:] = [e for e in page.console_errors if "status of 400" not in e]
    _assert_clean(page, "weekly import errors")
