"""Use cases: one function per thing a user does. The web app and the CLI both call these.

A :class:`Geoapp` (services/core.py) bundles what every use case needs (settings, the
repository, the city) and is built once per process by :func:`open_geoapp`; nothing here
knows about HTTP. Service modules import the core from ``geoapp.services.core``; this
package imports them, never the other way round, so importing any of them first is safe.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from geoapp import __version__
from geoapp.services.checks import refresh_hits
from geoapp.services.core import (
    DatabaseMissing,
    Geoapp,
    check_row_limit,
    command_line_limits,
    upload_limits,
)
from geoapp.storage import open_repository

__all__ = ["DatabaseMissing", "Geoapp", "check_row_limit", "command_line_limits", "health",
           "init_db", "open_geoapp", "upload_limits"]

log = logging.getLogger(__name__)


def open_geoapp(settings: dict[str, Any], *, init: bool = True, build: bool = True) -> Geoapp:
    """Open the store named by ``settings``, bring its schema forward (the repository's
    numbered migrations) and re-flag the sites if anything they depend on changed.

    A missing database is built from DATA_DIR (first start) — unless ``build`` is False
    (the command line's commands other than ``init-db`` and ``serve``), which refuse it
    naming where they looked (the GeoPackage file, or the PostgreSQL database's URL without
    its password). ``init=False`` only opens the store.
    """
    repo = open_repository(settings)
    if init and not repo.is_initialized():
        missing = DatabaseMissing.for_settings(settings)
        if not build:
            repo.close()
            raise missing
        log.info("first start: building %s from %s", missing.database, settings["DATA_DIR"])
        Path(settings["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)
        repo.initialize(settings["DATA_DIR"])
    app = Geoapp(settings=settings, repo=repo)
    if init:
        refresh_hits(app)
    return app


def init_db(settings: dict[str, Any], *, force: bool = False) -> dict:
    """Build (or with ``force`` rebuild) the store from the source files, then flag sites."""
    Path(settings["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)
    repo = open_repository(settings)
    report = repo.initialize(settings["DATA_DIR"], force=force)
    flagged = refresh_hits(Geoapp(settings=settings, repo=repo))
    if flagged is not None:
        report["flagged"] = flagged
    return report


def health(app: Geoapp) -> dict:
    """Liveness and a cheap readiness probe: the store answers and the city is known."""
    meta = app.repo.meta()
    return {"status": "ok", "version": __version__, "city": app.city.name,
            "database": {"built_at": meta.get("built_at"), "schema": meta.get("schema_version")},
            "uptime_s": round(time.time() - app.started, 1)}
