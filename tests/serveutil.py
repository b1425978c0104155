"""Real ``geoapp serve`` processes for tests over HTTP, and a client that uses them as a
browser does.

``Server.start`` runs ``geoapp serve`` on a free loopback port with its own instance folder and
the given ``GEOAPP_*`` settings; ``Server.wait`` returns once it answers /healthz.
``Browser`` keeps cookies, logs in through the real login form with its CSRF token, and reads
a form from a page as a browser would send it. Cookies are kept by host, not by port (as
browsers do), so one ``Browser`` presents the same session cookie to every server on
127.0.0.1: what a user behind a load balancer does.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import requests

#: How long a request may take: an engine rebuild or a layer upload on a busy machine.
TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def geoapp_command() -> Path:
    """The ``geoapp`` entry point of the Python running the tests."""
    return Path(sys.executable).parent / "geoapp"


@dataclass
class Server:
    """One ``geoapp serve`` process: its base URL, instance folder and log."""

    base: str
    instance: Path
    proc: subprocess.Popen
    log: Any

    @classmethod
    def start(cls, instance: Path, settings: Mapping[str, str]) -> Server:
        """Start ``geoapp serve`` with ``GEOAPP_INSTANCE_PATH=instance`` and ``settings``
        (``GEOAPP_*`` names); every other ``GEOAPP_*`` variable of the caller is left out."""
        instance.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEOAPP_")}
        env.update({"GEOAPP_INSTANCE_PATH": str(instance), **settings})
        log = (instance / "serve.log").open("wb")
        proc = subprocess.Popen([geoapp_command(), "serve", "--host", "127.0.0.1", "--port",
                                 str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        return cls(f"http://127.0.0.1:{port}", instance, proc, log)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.instance / "serve.log").read_text(errors="replace")

    def wait(self, deadline: float) -> None:
        """Return once /healthz answers 200; fail with the log if the process ended or
        ``deadline`` (a ``time.time()``) passed."""
        while True:
            assert self.proc.poll() is None, self.output()[-3000:]
            try:
                if requests.get(self.base + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert time.time() < deadline, f"{self.base} did not answer in time\n" + \
                self.output()[-3000:]
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


def run_geoapp(instance: Path, settings: Mapping[str, str],
               *args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``geoapp`` command as an operator would on a server (it must succeed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOAPP_")}
    env.update({"GEOAPP_INSTANCE_PATH": str(instance), **settings})
    done = subprocess.run([geoapp_command(), *args], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class _FormReader(HTMLParser):
    """The fields of one form (by id) with the values a browser would submit."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.found = False
        self.inside = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
            self.found = self.found or self.inside
            return
        name = a.get("name")
        if not self.inside:
            return
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields[name] = a.get("value") or "on"
            elif kind not in ("submit", "button", "reset", "file", "image"):
                self.fields[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select:
            if "selected" in a or self._select not in self.fields:  # else the first option
                self.fields[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self.inside and self._textarea:
            self.fields[self._textarea] += data


def form_fields(html: str, form_id: str) -> dict[str, str]:
    """What submitting form ``form_id`` of ``html`` unchanged would send."""
    reader = _FormReader(form_id)
    reader.feed(html)
    reader.close()
    assert reader.found, f"no form {form_id!r} in the page"
    return reader.fields


def csrf_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html) or \
        re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


class Browser:
    """Cookies and the requests a browser makes; ``base`` names the server each time."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    def get(self, base: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(base + path, allow_redirects=False, timeout=TIMEOUT, **kwargs)

    def post(self, base: str, path: str, data: Mapping[str, Any],
             **kwargs: Any) -> requests.Response:
        return self.http.post(base + path, data=data, allow_redirects=False, timeout=TIMEOUT,
                              **kwargs)

    def csrf(self, base: str) -> str:
        """A CSRF token for this browser's session, from a page of ``base``."""
        r = self.get(base, "/login")
        assert r.status_code == 200, r.status_code
        return csrf_token(r.text)

    def login(self, base: str, username: str, password: str) -> requests.Response:
        """Fill in and send the login form of ``base``; the answer (302 when it worked)."""
        return self.post(base, "/login", {"username": username, "password": password,
                                          "csrf_token": self.csrf(base)})

    def cookie(self, name: str = "session") -> str:
        value = self.http.cookies.get(name)
        assert value, f"no {name} cookie"
        return value

    @classmethod
    def with_cookie(cls, value: str, name: str = "session") -> Browser:
        """A fresh browser presenting a saved cookie, as a copied or forgotten one would."""
        b = cls()
        b.http.cookies.set(name, value, domain="127.0.0.1", path="/")
        return b
