"""Production serving: the WSGI entry for granian (or any WSGI server) and a granian runner.

``granian --interface wsgi --factory geoapp.web.prod:create_production_app`` (or the target
``geoapp.web.prod:app`` without ``--factory``) builds the app inside each worker process, so
every worker has its own SQLite connections and its own rule engine; nothing opened in the
main process crosses into a worker. The same check as ``geoapp serve --prod`` runs first: a
default, short or low-entropy SECRET_KEY refuses to start. Production session cookies are
``Secure`` (unless COOKIE_SECURE is false, for plain-HTTP intranets), ``HttpOnly`` and
``SameSite=Lax``.

Why granian: it parses HTTP and manages connections in Rust and hands each worker's Python
threads only the WSGI call, so a small API request costs a fraction of the CPU it costs under
a pure-Python server, and queued requests wait outside the GIL (see docs/performance.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server import Server

from geoapp.config import check_production, load_settings
from geoapp.services import checks, open_geoapp
from geoapp.web import create_app

log = logging.getLogger(__name__)


def instance_path(path: str | os.PathLike | None = None) -> Path:
    """The instance folder: the argument, else GEOAPP_INSTANCE_PATH, else ./instance."""
    return Path(path or os.environ.get("GEOAPP_INSTANCE_PATH") or Path.cwd() / "instance")


def production_overrides(inst: Path) -> dict[str, Any]:
    """Like ``geoapp serve``: intranet assets unless GEOAPP_INTRANET says otherwise."""
    overrides: dict[str, Any] = {"INSTANCE_PATH": str(inst)}
    if "GEOAPP_INTRANET" not in os.environ:
        overrides["INTRANET"] = True
    return overrides


def check_instance(inst: Path) -> dict[str, Any]:
    """Resolve the settings and refuse production with an unsafe SECRET_KEY (ConfigError)."""
    inst.mkdir(parents=True, exist_ok=True)
    settings = load_settings(inst, overrides=production_overrides(inst))
    check_production(settings)
    return settings


def prepare_database(inst: Path) -> dict[str, Any]:
    """Build (first start) and flag the database once, before any worker exists.

    Otherwise N workers starting at once would all find no database and build it N times.
    The connections opened here are closed before the master forks.
    """
    settings = check_instance(inst)
    core = open_geoapp(settings)
    city = core.city.name
    # the store as the repository names it: a PostgreSQL database by its URL without the
    # password, the GeoPackage by its file
    database = str(getattr(core.repo, "where", settings["DATABASE"]))
    core.repo.close()
    log.info("database %s ready (%s)", database, city)
    return {"city": city, "database": database}


def secure_cookies(app: Flask) -> None:
    """Production cookie flags: Secure per COOKIE_SECURE, always HttpOnly and SameSite=Lax."""
    secure = bool(app.config.get("COOKIE_SECURE", True))
    app.config.update(SESSION_COOKIE_SECURE=secure, REMEMBER_COOKIE_SECURE=secure,
                      SESSION_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SAMESITE="Lax")
    if not secure:
        log.warning("COOKIE_SECURE is off: session cookies also travel over plain HTTP")


def create_production_app(path: str | os.PathLike | None = None) -> Flask:
    """The app for one worker process (granian's ``--factory``, waitress ``--call``)."""
    inst = instance_path(path)
    check_instance(inst)
    app = create_app(production_overrides(inst))
    secure_cookies(app)
    checks.warm_engine(app.extensions["geoapp"])
    log.info("worker %d serving %s", os.getpid(), app.config["DATABASE"])
    return app


def __getattr__(name: str) -> Any:
    """``geoapp.web.prod:app`` for a WSGI server, built on first access (in the worker)."""
    if name == "app":
        return create_production_app()
    raise AttributeError(name)


#: Python threads per worker process under ``geoapp serve --prod`` (granian's blocking
#: threads): two, so one slow page (a map, an export) does not hold up every request its
#: worker receives, while short API calls rarely wait for the GIL.
PROD_THREADS = 2


def run_granian(inst: Path, *, host: str, port: int, workers: int,
                threads: int = PROD_THREADS, log_level: str = "INFO") -> None:
    """Serve with granian: ``workers`` processes running ``threads`` Python threads each.

    Workers that die are started again; SIGTERM or SIGINT stops them gracefully.
    """
    os.environ["GEOAPP_INSTANCE_PATH"] = str(inst)  # the workers' create_production_app()
    level = getattr(LogLevels, log_level.lower(), LogLevels.info)
    Server("geoapp.web.prod:create_production_app", address=host, port=port,
           interface=Interfaces.WSGI, factory=True, workers=workers, blocking_threads=threads,
           respawn_failed_workers=True, workers_kill_timeout=30, log_level=level).serve()
