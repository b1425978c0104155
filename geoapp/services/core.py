"""The application core every use case receives, and the upload limits it applies.

This module imports no other service module, so every service can import it at the top
(``from geoapp.services.core import Geoapp``) without a cycle; ``geoapp.services`` re-exports
what is here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from geoapp.domain.city import City
from geoapp.domain.errors import ConfigError
from geoapp.spatial.crs import metric_crs_for
from geoapp.storage.base import Repository
from geoapp.storage.postgis import shown_url
from geoapp.storage.tables_in import Limits, check_rows

T = TypeVar("T")


class DatabaseMissing(ConfigError):
    """The settings name a database that has not been built: a GeoPackage file that is not
    there, or a PostgreSQL database (named by :meth:`shown_url`, never with its password)
    without geoapp's tables. :meth:`for_settings` picks the message for the backend."""

    def __init__(self, database: str | Path, *, postgis: bool = False) -> None:
        if postgis:
            message = (f"数据库尚未建立 No geoapp data in the PostgreSQL database {database}; run "
                       "`geoapp init-db` to build it there (the database needs PostGIS: "
                       "CREATE EXTENSION postgis), or set GEOAPP_DATABASE_URL to the "
                       "database that holds it.")
        else:
            message = (f"没有数据库 No database at {database}; run `geoapp init-db` to build "
                       "it there, or set GEOAPP_INSTANCE_PATH (or GEOAPP_DATABASE) to where "
                       "it is.")
        super().__init__(message)
        #: Where the database was looked for (a file, or a URL without its password).
        self.database = str(database)

    @classmethod
    def for_settings(cls, settings: dict[str, Any]) -> DatabaseMissing:
        """The error for the store ``settings`` name (``STORAGE_BACKEND``)."""
        if str(settings.get("STORAGE_BACKEND") or "").strip().lower() == "postgis":
            return cls(cls.shown_url(str(settings.get("DATABASE_URL") or "")), postgis=True)
        return cls(settings["DATABASE"])

    #: A PostgreSQL connection string as it may be printed, never with its password.
    shown_url = staticmethod(shown_url)


def upload_limits(settings: dict[str, Any]) -> Limits:
    """What one uploaded table may cost on the server: MAX_ROWS rows, and the fixed column,
    cell and unpacked-size caps of :mod:`geoapp.storage.tables_in`. The web passes these."""
    return Limits.server(settings.get("MAX_ROWS"), settings.get("MAX_UPLOAD_MB"))


def command_line_limits(max_rows: int | None) -> Limits:
    """The command line works on the user's own files: any size, unless ``--max-rows``."""
    return Limits(max_rows=max_rows or None)


def check_row_limit(rows: int, label: str, limits: Limits | None) -> None:
    """Refuse a file with more (data) rows than ``limits`` allow, before any row is checked;
    the message names the setting (web) or the option (command line) that set the limit."""
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
        chosen = self.settings.get("METRIC_CRS") or self.city.metric_crs
        if chosen:
            return chosen
        outline = self.repo.layer("city")
        c = outline.geometry.union_all().centroid
        return metric_crs_for(c.x, c.y)
