"""Storage: the repository interface and its backends, chosen by name in the settings.

Callers do ``repo = open_repository(settings)`` and then ``repo.initialize(settings["DATA_DIR"])``
(a no-op once built). The backend module is imported only when chosen, so a PostGIS backend
with heavy dependencies costs nothing to installations that use the embedded GeoPackage.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any

from geoapp.domain.errors import ConfigError
from geoapp.storage.base import Repository

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "gpkg"

#: Backend name -> "module:class". Each class offers ``from_settings(settings)``.
BACKENDS: dict[str, str] = {
    "gpkg": "geoapp.storage.gpkg:GpkgRepository",
    "postgis": "geoapp.storage.postgis:PostgisRepository",
}

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Repository", "open_repository"]


def open_repository(settings: Mapping[str, Any]) -> Repository:
    """Open the repository named by ``STORAGE_BACKEND`` (default ``gpkg``)."""
    name = str(settings.get("STORAGE_BACKEND") or DEFAULT_BACKEND).strip().lower()
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(f"STORAGE_BACKEND {name!r} is unknown; available: "
                          f"{', '.join(sorted(BACKENDS))}")
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    backend = getattr(module, class_name)
    log.debug("storage backend %s (%s)", name, target)
    return backend.from_settings(settings)
