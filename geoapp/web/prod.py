"""Production serving: the WSGI entry for gunicorn (or waitress) and a gunicorn runner.

``gunicorn 'geoapp.web.prod:create_production_app()'`` (or ``geoapp.web.prod:app``) builds the
app inside each worker after the fork, so every worker has its own SQLite connections and its
own rule engine; nothing opened in the master crosses a fork. The same check as
``geoapp serve --prod`` runs first: a default or short SECRET_KEY refuses to start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask

from geoapp.config import check_production, load_settings

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
    from geoapp.services import open_geoapp

    settings = check_instance(inst)
    core = open_geoapp(settings)
    city = core.city.name
    core.repo.close()
    return {"city": city, "database": settings["DATABASE"]}


def create_production_app(path: str | os.PathLike | None = None) -> Flask:
    """The app for one worker process (gunicorn's factory call or waitress ``--call``)."""
    from geoapp.services import checks
    from geoapp.web import create_app

    inst = instance_path(path)
    check_instance(inst)
    app = create_app(production_overrides(inst))
    checks.warm_engine(app.extensions["geoapp"])
    log.info("worker %d serving %s", os.getpid(), app.config["DATABASE"])
    return app


def __getattr__(name: str) -> Any:
    """``geoapp.web.prod:app`` for gunicorn, built on first access (in the worker)."""
    if name == "app":
        return create_production_app()
    raise AttributeError(name)


def run_gunicorn(inst: Path, *, host: str, port: int, workers: int, threads: int,
                 timeout: int = 120) -> None:
    """Serve with gunicorn: ``workers`` processes of ``threads`` threads each (gthread).

    Threads let one worker keep several keep-alive connections while its requests wait on
    SQLite; processes use every core for the CPU-bound checks and map rendering.
    """
    from gunicorn.app.base import BaseApplication

    options = {"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread",
               "threads": threads, "timeout": timeout, "graceful_timeout": 30,
               "keepalive": 5, "proc_name": "geoapp", "preload_app": False,
               "control_socket_disable": True}

    class _Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return create_production_app(inst)

    _Server().run()
