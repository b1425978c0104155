"""The control units' 准入清单 in the GeoPackage (a mixin of ``GpkgRepository``).

One row per unit code in ``unit_requirements`` (made by migration 8): the four parts, a
``version`` for optimistic concurrency (an edit names the version the planner saw; if it
moved, ``Conflict``), who changed it when, and its ``origin``: ``source`` for a row seeded
from the data file when the database was built, ``edit`` or ``import`` for a row made in the
app. A rebuild carries the app-made rows over (``apptables.KEPT_ROWS``) and seeds the rest
from the file again. Every edit and import leaves audit rows (entity ``unit_requirements``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from geoapp.domain.errors import Conflict, InvalidInput, NotFound
from geoapp.domain.messages import Text as _l
from geoapp.domain.units import (
    PART_KEYS,
    LayerUnit,
    UnitRequirements,
    clean_part_text,
    normalise_unit_code,
)
from geoapp.storage.build import utc_now
from geoapp.storage.geopackage import quote
from geoapp.storage.gpkg_schema import LAYER_PREFIX, UNIT_REQUIREMENTS
from geoapp.storage.sources import text_value
from geoapp.storage.units_in import ORIGIN_EDIT, ORIGIN_IMPORT, ORIGIN_SOURCE, UNIT_FIELDS

log = logging.getLogger(__name__)

#: The audit log's entity of a unit's list.
ENTITY = "unit_requirements"
_SELECT = ", ".join(quote(c) for c in (*UNIT_FIELDS, "version", "updated_at", "updated_by",
                                       "origin"))
_CHUNK = 500


# ---------------------------------------------------------------------------- the store
def _row(cur: sqlite3.Cursor, values: Sequence[Any]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cur.description, values, strict=True)}


def unit_audit_record(req: UnitRequirements) -> dict[str, Any]:
    """A list as the audit log keeps it."""
    return {"version": req.version, **{k: v for k, v in req.to_dict().items()
                                      if k not in ("requirements", "version", "updated_at",
                                                   "updated_by")},
            **{k: req.part(k) for k in PART_KEYS}}


class UnitStore:
    """Mixin for GpkgRepository: needs ``_conn()``, ``transaction()``, ``_log()`` and
    ``layer_names()``."""

    def unit_requirements(self, codes: Iterable[str] | None = None
                          ) -> dict[str, UnitRequirements]:
        """The stored lists by code: all, or those of ``codes`` (unknown codes absent)."""
        conn = self._conn()
        if codes is None:
            cur = conn.execute(f"SELECT {_SELECT} FROM {UNIT_REQUIREMENTS} ORDER BY code")
            return {r["code"]: UnitRequirements.from_row(r)
                    for r in (_row(cur, v) for v in cur.fetchall())}
        wanted = sorted({normalise_unit_code(c) for c in codes} - {""})
        out: dict[str, UnitRequirements] = {}
        for i in range(0, len(wanted), _CHUNK):
            part = wanted[i:i + _CHUNK]
            cur = conn.execute(f"SELECT {_SELECT} FROM {UNIT_REQUIREMENTS} WHERE code IN "
                               f"({', '.join('?' * len(part))})", part)
            for values in cur.fetchall():
                r = _row(cur, values)
                out[r["code"]] = UnitRequirements.from_row(r)
        return out

    def unit_requirement(self, code: str) -> UnitRequirements:
        """One unit's stored list; NotFound when there is none."""
        found = self.unit_requirements([code]).get(normalise_unit_code(code))
        if found is None:
            raise NotFound(_l("没有编码为 %(code)s 的管控单元准入清单", code=code))
        return found

    def unit_list_summary(self) -> dict[str, dict[str, Any]]:
        """Every stored list's code, name, category, county, version, time and user, and
        how much text it holds (no part texts: the list page reads this)."""
        cur = self._conn().execute(
            f"SELECT code, name, category, county, version, updated_at, updated_by, origin, "
            f"length(spatial_layout) + length(emission_control) + length(risk_prevention) + "
            f"length(resource_efficiency) AS chars FROM {UNIT_REQUIREMENTS} ORDER BY code")
        return {r["code"]: r for r in (_row(cur, v) for v in cur.fetchall())}

    def layer_unit_rows(self, layer: str) -> list[dict[str, Any]]:
        """The attributes (code, name, category, county) of a units layer's features in
        their order, read without geometry."""
        if layer not in self.layer_names():
            raise NotFound(f"no layer named {layer!r}")
        table = quote(f"{LAYER_PREFIX}{layer}")
        conn = self._conn()
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        cols = [c if c in have else f"NULL AS {c}" for c in ("id", "code", "name", "category",
                                                              "county")]
        cur = conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY fid")
        out = []
        for values in cur.fetchall():
            r = _row(cur, values)
            code = normalise_unit_code(text_value(r["code"]) or text_value(r["id"]))
            out.append({"code": code, "name": text_value(r["name"]),
                        "category": text_value(r["category"]),
                        "county": text_value(r["county"])})
        return out

    def update_unit_requirements(self, code: str, parts: Mapping[str, Any], *, user: str,
                                 expected_version: int,
                                 unit: LayerUnit | None = None) -> UnitRequirements:
        """Save new texts of some parts of one unit's list if its version is still
        ``expected_version`` (else Conflict). A unit without a stored list (version 0) gets
        one from ``unit``, the layer's feature. Unchanged texts write nothing."""
        unknown = [k for k in parts if k not in PART_KEYS]
        if unknown:
            raise InvalidInput(_l("未知的准入清单部分：%(names)s", names=", ".join(unknown)))
        code = normalise_unit_code(code)
        new = {k: clean_part_text(v) for k, v in parts.items()}
        with self.transaction() as conn:
            current = self._current(conn, code)
            if current is None:
                if unit is None:
                    raise NotFound(_l("没有编码为 %(code)s 的管控单元准入清单", code=code))
                if int(expected_version) != 0:
                    raise new_unit_conflict(code, expected_version)
                now = utc_now()
                conn.execute(
                    f"INSERT INTO {UNIT_REQUIREMENTS} (code, name, category, county, "
                    f"{', '.join(PART_KEYS)}, version, updated_at, updated_by, origin) VALUES "
                    f"(?, ?, ?, ?, {', '.join('?' * len(PART_KEYS))}, 1, ?, ?, ?)",
                    (code, unit.name, unit.category, unit.county,
                     *(new.get(k, "") for k in PART_KEYS), now, user, ORIGIN_EDIT))
                after = self._current(conn, code)
                self._log(conn, user=user, action="create", entity=ENTITY, entity_id=code,
                          before=None, after=unit_audit_record(after))
                return after
            check_unit_version(current, expected_version)
            diff = [k for k in PART_KEYS if k in new and new[k] != current.part(k)]
            if not diff:
                return current
            sets = ", ".join(f"{quote(k)} = ?" for k in diff)
            cur = conn.execute(
                f"UPDATE {UNIT_REQUIREMENTS} SET {sets}, version = version + 1, updated_at = ?, "
                f"updated_by = ?, origin = ? WHERE code = ? AND version = ?",
                (*(new[k] for k in diff), utc_now(), user, ORIGIN_EDIT, code,
                 int(expected_version)))
            if cur.rowcount != 1:
                raise Conflict(_l("保存时准入清单被他人修改；请刷新后重试"))
            after = self._current(conn, code)
            self._log(conn, user=user, action="update", entity=ENTITY, entity_id=code,
                      before={"version": current.version, **{k: current.part(k) for k in diff}},
                      after={"version": after.version, **{k: after.part(k) for k in diff}})
        return after

    def import_unit_requirements(self, records: Iterable[Mapping[str, Any]], *, user: str,
                                 file: str = "") -> dict[str, Any]:
        """Insert or update many units' lists in one transaction (records already checked
        against the layer). A unit whose name, category and texts are all the same keeps its
        version and writes nothing; the others move on one version, each with an audit row,
        and one more row records the import."""
        records = list(records)
        created = updated = unchanged = 0
        now = utc_now()
        with self.transaction() as conn:
            for rec in records:
                code = normalise_unit_code(rec["code"])
                values = {k: str(rec.get(k) or "") for k in UNIT_FIELDS if k != "code"}
                for k in PART_KEYS:
                    values[k] = clean_part_text(values[k])
                current = self._current(conn, code)
                if current is None:
                    conn.execute(
                        f"INSERT INTO {UNIT_REQUIREMENTS} (code, {', '.join(values)}, version, "
                        f"updated_at, updated_by, origin) VALUES (?, "
                        f"{', '.join('?' * len(values))}, 1, ?, ?, ?)",
                        (code, *values.values(), now, user, ORIGIN_IMPORT))
                    self._log(conn, user=user, action="import", entity=ENTITY, entity_id=code,
                              before=None, after=unit_audit_record(self._current(conn, code)))
                    created += 1
                    continue
                old = {k: current.part(k) if k in PART_KEYS else getattr(current, k)
                       for k in values}
                diff = [k for k in values if values[k] != old[k]]
                if not diff:
                    unchanged += 1
                    continue
                sets = ", ".join(f"{quote(k)} = ?" for k in diff)
                conn.execute(f"UPDATE {UNIT_REQUIREMENTS} SET {sets}, version = version + 1, "
                             f"updated_at = ?, updated_by = ?, origin = ? WHERE code = ?",
                             (*(values[k] for k in diff), now, user, ORIGIN_IMPORT, code))
                self._log(conn, user=user, action="import", entity=ENTITY, entity_id=code,
                          before={"version": current.version, **{k: old[k] for k in diff}},
                          after={"version": current.version + 1,
                                 **{k: values[k] for k in diff}})
                updated += 1
            report = {"rows": len(records), "created": created, "updated": updated,
                      "unchanged": unchanged}
            self._log(conn, user=user, action="import", entity=ENTITY, entity_id=None,
                      before=None, after={"file": file, **report})
        log.info("imported %(rows)d unit lists (%(created)d new, %(updated)d updated)", report)
        return report

    def _current(self, conn: sqlite3.Connection, code: str) -> UnitRequirements | None:
        cur = conn.execute(f"SELECT {_SELECT} FROM {UNIT_REQUIREMENTS} WHERE code = ?", (code,))
        values = cur.fetchone()
        return None if values is None else UnitRequirements.from_row(_row(cur, values))


def check_unit_version(current: UnitRequirements, expected: int) -> None:
    if current.version != int(expected):
        raise Conflict(
            _l("管控单元 %(code)s 的准入清单已由 %(user)s 于 %(at)s 修改（版本 %(version)s，你编辑的是"
               "版本 %(expected)s）；请刷新后重新修改", code=current.code, user=current.updated_by,
               at=current.updated_at, version=current.version, expected=int(expected)),
            details={"code": current.code, "current_version": current.version,
                     "expected_version": int(expected), "updated_by": current.updated_by,
                     "updated_at": current.updated_at})


def new_unit_conflict(code: str, expected: int) -> Conflict:
    return Conflict(_l("管控单元 %(code)s 还没有准入清单（你编辑的是版本 %(expected)s）；请刷新后重新修改",
                       code=code, expected=int(expected)),
                    details={"code": code, "current_version": 0,
                             "expected_version": int(expected)})


__all__ = ["ENTITY", "ORIGIN_EDIT", "ORIGIN_IMPORT", "ORIGIN_SOURCE", "UnitStore",
           "check_unit_version", "new_unit_conflict", "unit_audit_record"]
