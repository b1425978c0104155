"""The repository interface the rest of the app codes against.

Services never touch SQL, file paths or GDAL: they ask a ``Repository`` for layers, sites and
tables and hand it changes. The GeoPackage backend is the embedded default; a PostGIS backend
can implement the same methods and be chosen by name in the settings without touching callers.

Conventions every backend keeps:
- geometries are returned in EPSG:4326 (derived layers keep the CRS they were written in);
- every write is one transaction and leaves one ``changes`` row (who, when, what, before,
  after); an import is all-or-nothing;
- sites carry an integer ``version``; an update names the version the user saw and raises
  ``Conflict`` if it moved, so the second of two editors is told instead of overwriting;
- unknown names raise ``NotFound``, bad values ``ValidationFailed`` / ``InvalidInput``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geoapp.domain.city import City

log = logging.getLogger(__name__)

#: Filters ``sites()`` accepts (equality, or membership when given a list/tuple/set).
SITE_FILTERS: tuple[str, ...] = ("district", "industry", "classification", "stage", "status")

#: Columns of the rule-engine result table.
SITE_HIT_COLUMNS: tuple[str, ...] = ("site_id", "rule_id", "feature_id", "feature_name",
                                     "distance_m", "severity", "point")

#: Columns of the audit log a page may filter on (exact match).
AUDIT_FILTERS: tuple[str, ...] = ("user", "action", "entity", "entity_id")
#: Columns of an audit row as ``audit_page`` returns it.
AUDIT_COLUMNS: tuple[str, ...] = ("id", "at", "user", "action", "entity", "entity_id", "before",
                                  "after")


class Repository(ABC):
    """Storage of one city's layers, sites, event tables and audit log."""

    # -- lifecycle -------------------------------------------------------------------------
    @abstractmethod
    def initialize(self, data_dir: str | Path, force: bool = False) -> dict[str, Any]:
        """Build the store from the source files; a no-op (reported) if already built."""

    @abstractmethod
    def is_initialized(self) -> bool:
        """True once ``initialize`` has completed."""

    @abstractmethod
    def meta(self) -> dict[str, Any]:
        """Build facts: schema version, data dir, content hash, build time, city name."""

    @abstractmethod
    def city(self) -> City:
        """The city the store was built for."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """Group several writes into one transaction (nested use joins the outer one)."""

    @abstractmethod
    def backup(self, path: str | Path) -> Path:
        """Write a consistent copy of the store to ``path`` while it stays in use."""

    @abstractmethod
    def close(self) -> None:
        """Release connections held by the calling thread."""

    # -- layers ----------------------------------------------------------------------------
    @abstractmethod
    def layer_names(self) -> list[str]:
        """Names of the source layers (city.toml order)."""

    @abstractmethod
    def layer(self, name: str) -> gpd.GeoDataFrame:
        """One source layer in EPSG:4326; NotFound for unknown names."""

    def feature_counts(self) -> dict[str, int]:
        """How many features each source layer holds (``layer_names`` order). The default
        reads every layer; a backend counts rows without reading geometries."""
        return {name: len(self.layer(name)) for name in self.layer_names()}

    @abstractmethod
    def replace_layer(self, name: str, gdf: gpd.GeoDataFrame, *, user: str) -> dict[str, Any]:
        """Replace every feature of a source layer (validated) in one transaction."""

    @abstractmethod
    def write_derived_layer(self, name: str, gdf: gpd.GeoDataFrame,
                            *, user: str = "system") -> None:
        """Store a computed layer (rule buffers...) apart from the source layers."""

    @abstractmethod
    def derived_layer_names(self) -> list[str]:
        """Names of the computed layers written so far."""

    @abstractmethod
    def derived_layer(self, name: str) -> gpd.GeoDataFrame:
        """A computed layer as written; NotFound if never written."""

    # -- sites -----------------------------------------------------------------------------
    @abstractmethod
    def sites(self, site_type: str | Iterable[str] | None = None, *,
              columns: Iterable[str] | None = None, **filters: Any) -> gpd.GeoDataFrame:
        """Sites as points in EPSG:4326, filtered by type and ``SITE_FILTERS`` columns;
        ``columns`` limits the attributes read (id and site_type always come)."""

    @abstractmethod
    def site(self, site_id: str) -> dict[str, Any]:
        """One site as plain values (lon/lat, no geometry object); NotFound if absent."""

    @abstractmethod
    def create_site(self, record: Mapping[str, Any], *, user: str) -> dict[str, Any]:
        """Validate and insert a new site (version 1); return it as stored."""

    @abstractmethod
    def update_site(self, site_id: str, changes: Mapping[str, Any], *, user: str,
                    expected_version: int) -> dict[str, Any]:
        """Apply changes if the stored version is still ``expected_version``, else Conflict."""

    @abstractmethod
    def delete_site(self, site_id: str, *, user: str, expected_version: int) -> None:
        """Remove a site if its version is still ``expected_version``, else Conflict."""

    @abstractmethod
    def import_sites(self, records: Iterable[Mapping[str, Any]], *,
                     user: str) -> dict[str, Any]:
        """Insert or update many sites all-or-nothing; ValidationFailed lists bad rows."""

    @abstractmethod
    def last_change(self, *, only: Iterable[str] = (),
                    exclude: Iterable[str] = ()) -> dict[str, Any] | None:
        """The newest audit row's ``id`` and ``at`` (UTC ISO), among the entities in ``only``
        (all when empty) less those in ``exclude``; None if there is none. A cheap "has
        anything changed?" probe that works across processes."""

    def log_event(self, *, user: str, action: str, entity: str, entity_id: str | None = None,
                  details: Mapping[str, Any] | None = None) -> None:
        """Append one audit row for an event that is not a write (an export, a download).

        Joins the caller's transaction when one is open. The default keeps the event in the
        log file, for a backend without a change log."""
        log.info("audit %s %s %s %s by %s", action, entity, entity_id or "", details or "", user)

    def last_change_id(self, *, only: Iterable[str] = (), exclude: Iterable[str] = ()) -> int:
        row = self.last_change(only=only, exclude=exclude)
        return 0 if row is None else int(row["id"])

    @abstractmethod
    def history(self, entity_id: str, entity: str | None = None) -> list[dict[str, Any]]:
        """Audit rows for one entity, oldest first, with before/after decoded."""

    # The three reads below have plain defaults built on ``table`` and ``layer``; a backend
    # answers them with one query each (the pages call them on every view).
    def audit_page(self, filters: Mapping[str, str], *, offset: int,
                   limit: int) -> tuple[list[dict[str, Any]], int]:
        """Audit rows newest first whose ``AUDIT_FILTERS`` columns equal every non-empty
        value of ``filters``: ``limit`` rows from ``offset`` (before/after as stored JSON
        text), and how many rows match in all."""
        df = self.table("changes")
        for key, value in clean_audit_filters(filters).items():
            df = df[df[key].astype(str) == value]
        df = df.sort_values("id", ascending=False)
        rows = df.iloc[offset:offset + limit][list(AUDIT_COLUMNS)]
        return [{k: (None if pd.isna(v) else v) for k, v in r.items()}
                for r in rows.to_dict("records")], len(df)

    def audit_values(self, column: str) -> list[str]:
        """The distinct values of one ``AUDIT_FILTERS`` column of the audit log, sorted."""
        if column not in AUDIT_FILTERS:
            raise ValueError(f"not an audit filter column: {column!r}")
        return sorted(str(v) for v in self.table("changes")[column].dropna().unique())

    def latest_changes(self, entity: str) -> dict[str, dict[str, Any]]:
        """The newest audit row (id, at, user, action) of each ``entity_id`` of ``entity``."""
        df = self.table("changes")
        df = df[df["entity"] == entity].sort_values("id")
        return {str(r["entity_id"]): {k: r[k] for k in ("id", "at", "user", "action")}
                for r in df.to_dict("records") if not pd.isna(r["entity_id"])}

    # -- the control units' 准入清单 (storage/units.py) -------------------------------------
    def unit_requirements(self, codes: Iterable[str] | None = None) -> dict[str, Any]:
        """The stored lists (``domain.units.UnitRequirements``) by code: all, or those of
        ``codes`` (unknown codes absent)."""
        raise NotImplementedError

    def update_unit_requirements(self, code: str, parts: Mapping[str, Any], *, user: str,
                                 expected_version: int, unit: Any = None) -> Any:
        """Save some parts of one unit's list if its version is still ``expected_version``
        (else Conflict); audited."""
        raise NotImplementedError

    def import_unit_requirements(self, records: Iterable[Mapping[str, Any]], *, user: str,
                                 file: str = "") -> dict[str, Any]:
        """Insert or update many units' lists in one transaction; audited."""
        raise NotImplementedError

    # -- the 重污染天气应急减排清单 (storage/emergency.py) ------------------------------------
    def emergency_measures(self, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """The emergency list's rows (``domain.emergency.EmergencyMeasure``) by key: all, or
        those of ``keys``."""
        raise NotImplementedError

    def emergency_measure(self, key: str) -> Any:
        """One enterprise's row of the emergency list; NotFound when there is none."""
        raise NotImplementedError

    def update_emergency_measure(self, key: str, values: Mapping[str, Any], *, user: str,
                                 expected_version: int) -> Any:
        """Save checked values of one row if its version is still ``expected_version``
        (else Conflict); audited."""
        raise NotImplementedError

    def import_emergency_measures(self, records: Iterable[Mapping[str, Any]], *, user: str,
                                  file: str = "") -> dict[str, Any]:
        """Insert or update many rows of the emergency list in one transaction; audited."""
        raise NotImplementedError

    # -- event tables and rule results -----------------------------------------------------
    @abstractmethod
    def table(self, name: str) -> pd.DataFrame:
        """An event table (grid_warnings, complaints, changes, site_hits) as a frame."""

    @abstractmethod
    def append_rows(self, name: str, df: pd.DataFrame, *, user: str) -> int:
        """Validate and append rows to an event table in one transaction; return the count."""

    @abstractmethod
    def replace_site_hits(self, df: pd.DataFrame, *, user: str = "rules") -> int:
        """Replace all rule hits in one transaction; return the count."""

    @abstractmethod
    def site_hits(self, site_id: str | None = None) -> pd.DataFrame:
        """Rule hits, all or for one site."""

    # -- accounts and inspections (app-made data, kept across rebuilds) --------------------
    @abstractmethod
    def create_user(self, username: str, password_hash: str, role: str, *,
                    display_name: str = "", user: str) -> dict[str, Any]:
        """Add an account (Conflict if the name is taken); returns it without the hash."""

    @abstractmethod
    def user_with_hash(self, username: str) -> dict[str, Any] | None:
        """The account including its password hash, only for verifying a login."""

    @abstractmethod
    def get_user(self, username: str) -> dict[str, Any] | None:
        """The account without its hash, or None."""

    @abstractmethod
    def list_users(self) -> list[dict[str, Any]]:
        """Every account, without hashes."""

    @abstractmethod
    def update_user(self, username: str, changes: Mapping[str, Any], *,
                    user: str) -> dict[str, Any]:
        """Change password hash, role, display name or active flag (audited, hash hidden)."""

    @abstractmethod
    def end_sessions(self, username: str, *, user: str, reason: str = "logout") -> int:
        """End every session of the account (bump its session version, audited); returns
        the new version."""

    @abstractmethod
    def record_login(self, username: str, remote_addr: str, success: bool, *,
                     account: str | None = None) -> None:
        """Keep a login attempt under the normalised name typed (and audit it); on success
        ``account`` is the stored name whose last login is updated."""

    @abstractmethod
    def claim_login_attempt(self, username: str, remote_addr: str, since_iso: str, *,
                            max_pair: int, max_addr: int) -> int | None:
        """Atomically: None when the pair or the address is locked, else a new attempt row
        (a failure until settled) and its id."""

    @abstractmethod
    def finish_login_attempt(self, attempt_id: int, username: str, remote_addr: str,
                             success: bool, *, account: str | None = None) -> None:
        """Settle a claimed attempt and audit it."""

    @abstractmethod
    def failed_logins_since(self, since_iso: str, *, username: str | None = None,
                            remote_addr: str | None = None,
                            reset_by_success: bool = False) -> int:
        """How many failed attempts since a UTC ISO time, by username and/or address; with
        ``reset_by_success`` only those after the last success of the same key."""

    # -- API tokens (app-made, kept across rebuilds) -----------------------------------------
    # A token is stored as its hash only, names its owner by ``users.id`` and the owner's
    # role when issued. Rows come back as ``id, user_id, name, role, created_at, created_by,
    # last_used_at, revoked_at, revoked_by`` plus the owner's ``username``, ``owner_role``
    # and ``owner_active`` (None when the owner is gone), never the hash. ``update_user``
    # revokes every token of the account when its role or active flag changes.
    def create_token(self, username: str, token_hash: str, *, name: str = "",
                     user: str) -> dict[str, Any]:
        """Store a new token for the account (NotFound if unknown), with its current role;
        audited."""
        raise NotImplementedError

    def tokens(self, username: str | None = None) -> list[dict[str, Any]]:
        """Every token, or one account's (NotFound if unknown), oldest first."""
        raise NotImplementedError

    def revoke_token(self, token_id: int, *, user: str) -> dict[str, Any]:
        """Revoke one token (NotFound if unknown; a revoked one stays as it was); audited."""
        raise NotImplementedError

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        """The token with this hash and its owner's fields, revoked or not; None if none."""
        raise NotImplementedError

    def token_used(self, token_id: int) -> None:
        """Set the token's ``last_used_at`` to now (not audited: a use is not a change)."""
        raise NotImplementedError

    @abstractmethod
    def add_inspection(self, record: Mapping[str, Any], *, user: str,
                       photos: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """Record an inspection: site_id (optional), lon, lat, input, verdict, hits,
        conditional_hits (optional), notes, gps_accuracy_m (optional), and its ``photos``
        (as services/photos.py reads them) in the same transaction."""

    # -- inspection photos (evidence: bytes as uploaded, audited without them) -------------
    @abstractmethod
    def add_inspection_photos(self, inspection_id: int, photos: Iterable[Mapping[str, Any]],
                              *, user: str, max_count: int | None = None
                              ) -> list[dict[str, Any]]:
        """Add photos to a kept inspection, all or none, one audit row each (entity
        ``inspection``, action ``add_photo``, never the bytes); NotFound for an unknown
        inspection, InvalidInput when it would then hold more than ``max_count``."""

    @abstractmethod
    def inspection_photos(self, *, inspection_id: int | None = None,
                          site_id: str | None = None) -> list[dict[str, Any]]:
        """Photo metadata (no bytes) of one inspection and/or one site, oldest first."""

    @abstractmethod
    def inspection_photo(self, photo_id: int, *, part: str | None = None) -> dict[str, Any]:
        """One photo's metadata with ``part`` (``data`` or ``thumb``) as bytes; NotFound."""

    @abstractmethod
    def inspection(self, inspection_id: int) -> dict[str, Any]:
        """One inspection record; NotFound if absent."""

    @abstractmethod
    def inspections(self, site_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest inspection records first, all or for one site."""


def clean_audit_filters(filters: Mapping[str, str]) -> dict[str, str]:
    """The non-empty filters, each naming an ``AUDIT_FILTERS`` column (else ValueError)."""
    unknown = [k for k in filters if k not in AUDIT_FILTERS]
    if unknown:
        raise ValueError(f"not audit filter columns: {', '.join(unknown)}")
    return {k: str(v) for k, v in filters.items() if v not in (None, "")}
