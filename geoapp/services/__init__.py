"""Use cases: one function per thing a user does. The web app and the CLI both call these.

A :class:`Geoapp` bundles what every use case needs (settings, the repository, the city) and
is built once per process by :func:`open_geoapp`; nothing here knows about HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from geoapp import __version__
from geoapp.domain.city import City
from geoapp.storage import open_repository
from geoapp.storage.base import Repository

if TYPE_CHECKING:
    from geoapp.storage.tables_in import Limits

log = logging.getLogger(__name__)

T = TypeVar("T")


def upload_limits(settings: dict[str, Any]) -> Limits:
    """What one uploaded table may cost on the server: MAX_ROWS rows, and the fixed column,
    cell and unpacked-size caps of :mod:`geoapp.storage.tables_in`. The web passes these."""
    from geoapp.storage.tables_in import Limits

    return Limits.server(settings.get("MAX_ROWS"), settings.get("MAX_UPLOAD_MB"))


def command_line_limits(max_rows: int | None) -> Limits:
    """The command line works on the user's own files: any size, unless ``--max-rows``."""
    from geoapp.storage.tables_in import Limits

    return Limits(max_rows=max_rows or None)


def check_row_limit(rows: int, label: str, limits: Limits | None) -> None:
    """Refuse a file with more (data) rows than ``limits`` allow, before any row is checked;
    the message names the setting (web) or the option (command line) that set the limit."""
    from geoapp.storage.tables_in import check_rows

    check_rows(label, rows, limits)


@dataclass
class Geoapp:
    """The application core: settings, storage and derived, cached state."""

    settings: dict[str, Any]
    repo: Repository
    started: float = field(default_factory=time.time)
    #: Per-process derived state (the rule engine...), keyed by name.
    cache: dict[str, Any] = field(default_factory=dict)

    def file_cached(self, name: str, path: Path, load: Callable[[Path], T]) -> T:
        """``load(path)``, kept in ``cache[name]`` until the file's modification time changes
        (or it appears or disappears)."""
        stamp = path.stat().st_mtime_ns if path.is_file() else None
        cached = self.cache.get(name)
        if cached is None or cached[0] != stamp:
            cached = (stamp, load(path))
            self.cache[name] = cached
        return cached[1]

    @cached_property
    def city(self) -> City:
        return self.repo.city()

    @cached_property
    def metric_crs(self) -> str:
        """Setting, else city.toml, else the Gauss-Krüger zone of the city's centroid."""
        from geoapp.spatial.crs import metric_crs_for

        chosen = self.settings.get("METRIC_CRS") or self.city.metric_crs
        if chosen:
            return chosen
        outline = self.repo.layer("city")
        c = outline.geometry.union_all().centroid
        return metric_crs_for(c.x, c.y)


def open_geoapp(settings: dict[str, Any], *, init: bool = True) -> Geoapp:
    """Open the store named by ``settings``; build it from DATA_DIR on first start."""
    Path(settings["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)
    repo = open_repository(settings)
    if init and not repo.is_initialized():
        log.info("first start: building %s from %s", settings["DATABASE"], settings["DATA_DIR"])
        repo.initialize(settings["DATA_DIR"])
    app = Geoapp(settings=settings, repo=repo)
    if init:
        from geoapp.services.checks import refresh_hits

        refresh_hits(app)
    return app


def init_db(settings: dict[str, Any], *, force: bool = False) -> dict:
    """Build (or with ``force`` rebuild) the store from the source files, then flag sites."""
    from geoapp.services.checks import refresh_hits

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


from geoapp.services.overview import overview_map as overview_map  # noqa: E402  (re-export)
