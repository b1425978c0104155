"""Nothing uploaded can corrupt the store: a live server takes every hostile file, then a
change committed through the web survives SIGKILL and restart, another process saw it before
the kill, and SQLite's own integrity check passes.

The hostile files are the ones that once made GDAL's bundled SQLite open the live database
(a VRT naming it, under every accepted extension) and delete its -wal/-shm files, which lost
a user created through the web afterwards.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import pytest

#: GDAL's bundled SQLite against the live GeoPackage file.
pytestmark = [pytest.mark.backends("gpkg"), pytest.mark.slow]

BIN = Path(sys.executable).parent
ADMIN_PW = "Hostile-Upload-Admin-2026"
NEW_PW = "Field-Inspector-Jz-2026"
BOUNDARY = "geoapp-test-boundary"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(inst: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(inst), "GEOAPP_LOG_LEVEL": "WARNING",
           "GEOAPP_TILES": "none"}
    proc = subprocess.Popen([BIN / "geoapp", "serve", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
        finally:
            c.close()
    proc.kill()
    raise AssertionError("server did not start")


class Client:
    """A cookie-keeping HTTP client for one live server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, str]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Cookie": self.cookie} if self.cookie else {}
        try:
            c.request(method, path, body=body, headers={**h, **(headers or {})})
            r = c.getresponse()
            text = r.read().decode("utf-8", "replace")
        finally:
            c.close()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie" and v.startswith("session="):
                self.cookie = v.split(";")[0]
        return r.status, text

    def token(self) -> str:
        _, page = self.request("GET", "/login")
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def login(self, user: str, password: str) -> int:
        form = urlencode({"username": user, "password": password, "csrf_token": self.token()})
        status, _ = self.request("POST", "/login", form.encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        return status

    def upload(self, path: str, data: bytes, filename: str, token: str) -> tuple[int, str]:
        body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
                f"{token}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
        return self.request("POST", path, body, {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "X-CSRFToken": token})


def _hostile_files(db: Path) -> list[tuple[bytes, str]]:
    vrt = (f'<OGRVRTDataSource><OGRVRTLayer name="users"><SrcDataSource>{db}</SrcDataSource>'
           f'<SrcLayer>users</SrcLayer></OGRVRTLayer></OGRVRTDataSource>').encode()
    sql_vrt = (f'<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>{db}</SrcDataSource>'
               f'<SrcSQL>SELECT * FROM users</SrcSQL></OGRVRTLayer></OGRVRTDataSource>').encode()
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("layer.shp", vrt)
        zf.writestr("layer.shx", b"")
        zf.writestr("layer.dbf", b"")
    files = [(vrt, name) for name in ("sites.geojson", "sites.csv", "sites.json", "sites.gpkg",
                                      "sites.xlsx")]
    files += [(sql_vrt, "q.geojson"), (zbuf.getvalue(), "zone.zip"),
              (db.read_bytes()[:4096], "copy.gpkg"), (b"/vsicurl/http://127.0.0.1:9/x",
                                                        "url.geojson")]
    return files


def _integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def _users_seen_by_another_process(db: Path) -> list[str]:
    """Ask a separate Python process (not this one, not the server) which users exist."""
    code = ("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
            "print('\\n'.join(r[0] for r in c.execute('SELECT username FROM users')))")
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout.split()


def test_committed_change_survives_hostile_uploads_sigkill_and_restart(instance: Path):
    db = instance / "geoapp.gpkg"
    env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(instance)}
    subprocess.run([BIN / "geoapp", "users", "create", "--username", "boss", "--role", "admin",
                    "--password", ADMIN_PW], env=env, check=True, capture_output=True)
    port = _free_port()
    proc = _start(instance, port)
    try:
        web = Client(port)
        assert web.login("boss", ADMIN_PW) == 302
        _, page = web.request("GET", "/layers")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        for data, name in _hostile_files(db):
            for route in ("/api/flag", "/layers/urban_core"):
                status, body = web.upload(route, data, name, token)
                assert status < 500, (route, name, status, body[:300])
                assert "pbkdf2" not in body and "scrypt" not in body, (route, name)
        # a change committed through the web after the hostile uploads
        form = urlencode({"username": "field1", "password": NEW_PW, "password2": NEW_PW,
                          "role": "inspector", "display_name": "外勤一", "csrf_token": token})
        status, body = web.request("POST", "/admin/users", form.encode(),
                                   {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 302, body[:500]
        assert "field1" in _users_seen_by_another_process(db)
        assert Path(f"{db}-wal").exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert _integrity(db) == "ok"
    assert "field1" in _users_seen_by_another_process(db)
    port = _free_port()
    again = _start(instance, port)
    try:
        fresh = Client(port)
        assert fresh.login("field1", NEW_PW) == 302
    finally:
        again.terminate()
        again.wait(timeout=30)
    assert _integrity(db) == "ok"
