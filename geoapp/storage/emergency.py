"""The 重污染天气应急减排清单 in the store (a mixin of both repositories).

One row per enterprise in ``emergency_measures`` (GeoPackage migration 11, PostGIS step 4),
keyed by its credit code (or normalised name): its grade and its measures for the three
warning levels, a ``version`` for optimistic concurrency (an edit names the version the
planner saw; if it moved, ``Conflict``), who changed it when, and its ``origin``: ``source``
for a row seeded from the data file at build time, ``edit`` or ``import`` for a row made in
the app (carried over by a rebuild, ``apptables.KEPT_ROWS``). Every edit and import leaves
audit rows (entity ``emergency_measures``).

The SQL is written once with ``?`` placeholders and double-quoted names, which both SQLite
and PostgreSQL read; each backend supplies how it runs a statement (:class:`EmergencyStore`
hooks), so the two stores cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from geoapp.domain.emergency import (
    EDIT_FIELDS,
    FIELDS,
    EmergencyMeasure,
)
from geoapp.domain.errors import Conflict, InvalidInput, NotFound
from geoapp.domain.messages import Text as _l
from geoapp.storage.build import utc_now
from geoapp.storage.emergency_in import ORIGIN_EDIT, ORIGIN_IMPORT

log = logging.getLogger(__name__)

#: The audit log's entity of the list's rows.
ENTITY = "emergency_measures"
TABLE = "emergency_measures"
SYSTEM_COLUMNS: tuple[str, ...] = ("version", "updated_at", "updated_by", "origin")
_SELECT = ", ".join(f'"{c}"' for c in (*FIELDS, *SYSTEM_COLUMNS))
#: Columns an import may set (the key identifies the row).
IMPORT_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f != "key")


def audit_record(m: EmergencyMeasure) -> dict[str, Any]:
    """A row as the audit log keeps it."""
    return {"version": m.version, **m.record()}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return (a if a not in ("",) else None) == (b if b not in ("",) else None)


class EmergencyStore:
    """Mixin for a repository with ``transaction()`` and ``_log()``; a backend implements
    ``_em_query(conn, sql, params)`` (rows as dicts), ``_em_run(conn, sql, params)``
    (rowcount) and ``_em_reading()`` (a context giving a connection to read on)."""

    # -- the backend's hooks ---------------------------------------------------------------
    def _em_query(self, conn: Any, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _em_run(self, conn: Any, sql: str, params: tuple = ()) -> int:
        raise NotImplementedError

    def _em_reading(self) -> Any:
        raise NotImplementedError

    # -- reading ---------------------------------------------------------------------------
    def emergency_measures(self, keys: Iterable[str] | None = None
                           ) -> dict[str, EmergencyMeasure]:
        """The stored rows by key (county, then name order): all, or those of ``keys``."""
        with self._em_reading() as conn:
            rows = self._em_query(conn, f'SELECT {_SELECT} FROM {TABLE} ORDER BY "county", '
                                        '"name", "key"')
        wanted = None if keys is None else set(keys)
        return {r["key"]: EmergencyMeasure.from_row(r) for r in rows
                if wanted is None or r["key"] in wanted}

    def emergency_measure(self, key: str) -> EmergencyMeasure:
        """One enterprise's row; NotFound when there is none."""
        with self._em_reading() as conn:
            found = self._em_current(conn, key)
        if found is None:
            raise NotFound(_l("应急减排清单中没有“%(key)s”", key=key))
        return found

    def _em_current(self, conn: Any, key: str) -> EmergencyMeasure | None:
        rows = self._em_query(conn, f'SELECT {_SELECT} FROM {TABLE} WHERE "key" = ?', (key,))
        return EmergencyMeasure.from_row(rows[0]) if rows else None

    # -- writing ---------------------------------------------------------------------------
    def update_emergency_measure(self, key: str, values: Mapping[str, Any], *, user: str,
                                 expected_version: int) -> EmergencyMeasure:
        """Save checked values (``EDIT_FIELDS``) of one row if its version is still
        ``expected_version`` (else Conflict naming who saved which version when). Unchanged
        values write nothing and keep the version."""
        unknown = [k for k in values if k not in EDIT_FIELDS]
        if unknown:
            raise InvalidInput(_l("未知的应急减排清单字段：%(names)s", names=", ".join(unknown)))
        with self.transaction() as conn:
            current = self._em_current(conn, key)
            if current is None:
                raise NotFound(_l("应急减排清单中没有“%(key)s”", key=key))
            check_version(current, expected_version)
            diff = [k for k in values if not _same(values[k], current.value(k))]
            if not diff:
                return current
            sets = ", ".join(f'"{k}" = ?' for k in diff)
            n = self._em_run(conn, f'UPDATE {TABLE} SET {sets}, "version" = "version" + 1, '
                                   '"updated_at" = ?, "updated_by" = ?, "origin" = ? '
                                   'WHERE "key" = ? AND "version" = ?',
                             (*(values[k] for k in diff), utc_now(), user, ORIGIN_EDIT, key,
                              int(expected_version)))
            if n != 1:
                raise Conflict(_l("保存时应急减排清单被他人修改；请刷新后重试"))
            after = self._em_current(conn, key)
            self._log(conn, user=user, action="update", entity=ENTITY, entity_id=key,
                      before={"version": current.version,
                              **{k: current.value(k) for k in diff}},
                      after={"version": after.version, **{k: after.value(k) for k in diff}})
        return after

    def import_emergency_measures(self, records: Iterable[Mapping[str, Any]], *, user: str,
                                  file: str = "") -> dict[str, Any]:
        """Insert or update many rows (already checked) in one transaction. A row whose
        values are all the same keeps its version and writes nothing; the others move on one
        version, each with an audit row, and one more row records the import."""
        records = list(records)
        created = updated = unchanged = 0
        now = utc_now()
        with self.transaction() as conn:
            for rec in records:
                key = str(rec["key"])
                values = {k: rec.get(k) for k in IMPORT_FIELDS}
                current = self._em_current(conn, key)
                if current is None:
                    cols = ", ".join(f'"{c}"' for c in (*FIELDS, *SYSTEM_COLUMNS))
                    self._em_run(conn, f"INSERT INTO {TABLE} ({cols}) VALUES "
                                       f"({', '.join('?' * (len(FIELDS) + 4))})",
                                 (key, *values.values(), 1, now, user, ORIGIN_IMPORT))
                    self._log(conn, user=user, action="import", entity=ENTITY, entity_id=key,
                              before=None, after=audit_record(self._em_current(conn, key)))
                    created += 1
                    continue
                diff = [k for k in IMPORT_FIELDS if not _same(values[k], current.value(k))]
                if not diff:
                    unchanged += 1
                    continue
                sets = ", ".join(f'"{k}" = ?' for k in diff)
                self._em_run(conn, f'UPDATE {TABLE} SET {sets}, "version" = "version" + 1, '
                                   '"updated_at" = ?, "updated_by" = ?, "origin" = ? '
                                   'WHERE "key" = ?',
                             (*(values[k] for k in diff), now, user, ORIGIN_IMPORT, key))
                self._log(conn, user=user, action="import", entity=ENTITY, entity_id=key,
                          before={"version": current.version,
                                  **{k: current.value(k) for k in diff}},
                          after={"version": current.version + 1,
                                 **{k: values[k] for k in diff}})
                updated += 1
            report = {"rows": len(records), "created": created, "updated": updated,
                      "unchanged": unchanged,
                      "unmatched": sum(1 for r in records if not r.get("site_id"))}
            self._log(conn, user=user, action="import", entity=ENTITY, entity_id=None,
                      before=None, after={"file": file, **report})
        log.info("imported %(rows)d emergency-list rows (%(created)d new, %(updated)d updated)",
                 report)
        return report


def check_version(current: EmergencyMeasure, expected: int) -> None:
    if current.version != int(expected):
        raise Conflict(
            _l("%(name)s 的应急减排措施已由 %(user)s 于 %(at)s 修改（版本 %(version)s，你编辑的是版本 "
               "%(expected)s）；请刷新后重新修改", name=current.name, user=current.updated_by,
               at=current.updated_at, version=current.version, expected=int(expected)),
            details={"key": current.key, "current_version": current.version,
                     "expected_version": int(expected), "updated_by": current.updated_by,
                     "updated_at": current.updated_at})


class GpkgEmergencyStore(EmergencyStore):
    """The GeoPackage's hooks: ``_conn()`` (this thread's sqlite3 connection)."""

    def _em_query(self, conn: Any, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        cur = conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, v, strict=True)) for v in cur.fetchall()]

    def _em_run(self, conn: Any, sql: str, params: tuple = ()) -> int:
        return conn.execute(sql, params).rowcount

    def _em_reading(self) -> Any:
        return _Borrowed(self._conn())


class _Borrowed:
    """A context that lends an open connection without closing it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


__all__ = ["ENTITY", "EmergencyStore", "GpkgEmergencyStore", "audit_record", "check_version"]
