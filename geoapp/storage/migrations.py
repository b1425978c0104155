"""Numbered schema migrations: an ordered list of steps per storage backend.

Every backend keeps its own list (:class:`Migrations`) of numbered steps, 1, 2, 3... Each
step is a small function that gets the backend's connection inside a write transaction; the
runner applies the steps a database lacks, one transaction per step, and records the new
version in the same transaction, so a step is either wholly there or not at all and two
processes starting at once never apply one twice (the version is read again once the write
lock is held).

Rules for steps: a released step is never edited (a database that already ran it would not
run it again); a change is a new step at the end of the list. Steps add tables, columns and
indexes and may rewrite rows; they never need the data files.

Where a backend records its version is its own business (see :class:`VersionStore`); the
GeoPackage backend uses the ``schema_version`` row of ``geoapp_meta`` (gpkg_schema.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from geoapp.domain.errors import ConfigError

log = logging.getLogger(__name__)


class SchemaTooNew(ConfigError):
    """The database was written by a newer release than this code."""


@dataclass(frozen=True)
class Migration:
    """One numbered step: ``apply(conn)`` runs inside the step's write transaction."""

    version: int
    name: str
    apply: Callable[[Any], None]


class VersionStore(Protocol):
    """What the runner needs from a backend: its version and a write transaction."""

    def read_version(self) -> int | None:
        """The recorded schema version; None when this is not a database of ours."""

    def write_version(self, version: int) -> None:
        """Record ``version`` (called inside the step's transaction)."""

    def transaction(self) -> AbstractContextManager[Any]:
        """An exclusive write transaction; yields the connection steps receive."""


class Migrations:
    """The ordered steps of one backend, numbered 1..n without gaps."""

    def __init__(self, backend: str, steps: Iterable[Migration]) -> None:
        self.backend = backend
        self.steps: tuple[Migration, ...] = tuple(steps)
        numbers = [s.version for s in self.steps]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"{backend} migrations must be numbered 1..n in order, "
                             f"got {numbers}")

    @property
    def latest(self) -> int:
        """The version a database has once every step ran."""
        return self.steps[-1].version if self.steps else 0

    def check(self, version: int, where: str) -> None:
        """Refuse a database newer than this code (its extra columns would be lost or
        misread)."""
        if version > self.latest:
            raise SchemaTooNew(
                f"数据库版本过新 The database {where} has schema version {version}, newer "
                f"than this geoapp knows ({self.latest}): a newer release wrote it. Install "
                "that release, or restore a backup made by this one; nothing was changed.",
                details={"schema_version": version, "supported": self.latest})

    def pending(self, version: int) -> tuple[Migration, ...]:
        return tuple(s for s in self.steps if s.version > version)

    def migrate(self, store: VersionStore, where: str, *,
                start: int | None = None) -> list[Migration]:
        """Apply the steps ``store`` lacks; return those applied (none when up to date).

        A database without a recorded version is not ours and is left alone, unless
        ``start`` (0 for a database being built) says where it stands.
        """
        version = store.read_version()
        if version is None:
            if start is None:
                return []
            version = start
        self.check(version, where)
        applied: list[Migration] = []
        for step in self.pending(version):
            with store.transaction() as conn:
                now = store.read_version()
                now = version if now is None else now
                self.check(now, where)
                if now >= step.version:  # another process got there first
                    continue
                step.apply(conn)
                store.write_version(step.version)
            applied.append(step)
            log.info("%s database %s: schema version %d (%s)", self.backend, where,
                     step.version, step.name)
        return applied
