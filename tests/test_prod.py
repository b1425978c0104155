"""Production serving: unsafe secret keys refuse to start; granian runs several workers."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.config import check_production, load_settings, worker_count
from geoapp.domain.errors import ConfigError
from geoapp.web.prod import create_production_app

GOOD_KEY = "Zq3v-Lm8xT2pW9rY_kB4nH7cJ1dF6gS0aE5u"  # 36 characters, no pattern


@pytest.mark.parametrize("key, reason", [(None, "is the default"),
                                         ("short-key", "has 9 characters")])
def test_prod_serve_refuses_default_or_short_secret_key_with_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str | None, reason: str) -> None:
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(tmp_path))
    if key is None:
        monkeypatch.delenv("GEOAPP_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("GEOAPP_SECRET_KEY", key)
    result = CliRunner().invoke(main, ["serve", "--prod", "--port", "1"])
    assert result.exit_code == 2
    assert f"SECRET_KEY {reason}" in result.output
    assert not (tmp_path / "geoapp.gpkg").exists()  # refused before building anything


def test_wsgi_factory_refuses_the_default_key(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOAPP_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="at least 32 characters"):
        create_production_app(tmp_path)


def test_long_random_key_passes_and_workers_default_to_one_per_core(tmp_path: Path) -> None:
    values = load_settings(tmp_path, environ={"GEOAPP_SECRET_KEY": GOOD_KEY})
    check_production(values)
    assert worker_count(values) == (os.cpu_count() or 1)
    assert worker_count(load_settings(tmp_path, environ={"GEOAPP_WORKERS": "3"})) == 3
    with pytest.raises(ConfigError, match="WORKERS"):
        worker_count({"WORKERS": -1})


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                out.append(int(entry.name))
    return out


@pytest.mark.slow
def test_prod_serve_runs_two_granian_workers_that_answer(instance: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(instance), "GEOAPP_SECRET_KEY": GOOD_KEY}
    proc = subprocess.Popen([Path(sys.executable).parent / "geoapp", "serve", "--prod",
                             "--workers", "2", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, status = time.time() + 180, None
        while time.time() < deadline and status != 200:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
            except OSError:
                time.sleep(0.3)
        assert status == 200
        assert len(_children(proc.pid)) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.slow  # builds the rule engine
def test_production_app_builds_its_rule_engine_in_the_background_at_start(
        instance: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOAPP_SECRET_KEY", GOOD_KEY)
    app = create_production_app(instance)
    core = app.extensions["geoapp"]
    warm = [t for t in threading.enumerate() if t.name == "geoapp-engine-warm-up"]
    assert warm, "no warm-up thread was started"
    for t in warm:
        t.join(timeout=300)
    assert "engine" in core.cache  # built before any request asked for it
    c = app.test_client()
    assert c.get("/healthz").status_code == 200
