"""The control units' 准入清单 in PostGIS (a mixin of ``PostgisRepository``), with the
GeoPackage's semantics (storage/units.py: versions, origins, audit rows)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from psycopg.rows import dict_row

from geoapp.domain.errors import Conflict, InvalidInput, NotFound
from geoapp.domain.messages import Text as _l
from geoapp.domain.units import (
    PART_KEYS,
    LayerUnit,
    UnitRequirements,
    clean_part_text,
    normalise_unit_code,
)
from geoapp.storage.build import LAYER_PREFIX, utc_now
from geoapp.storage.sources import text_value
from geoapp.storage.units import (
    ENTITY,
    check_unit_version,
    new_unit_conflict,
    unit_audit_record,
)
from geoapp.storage.units_in import ORIGIN_EDIT, ORIGIN_IMPORT, UNIT_FIELDS

log = logging.getLogger(__name__)

_SELECT = ", ".join(f'"{c}"' for c in (*UNIT_FIELDS, "version", "updated_at", "updated_by",
                                       "origin"))


class PgUnitStore:
    """Mixin: needs ``_connection()``, ``transaction()``, ``_log()`` and ``layer_names()``."""

    def _unit_rows(self, tail: str, params: tuple) -> list[dict[str, Any]]:
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(f"SELECT {_SELECT} FROM unit_requirements {tail}",
                               params).fetchall()

    def unit_requirements(self, codes: Iterable[str] | None = None
                          ) -> dict[str, UnitRequirements]:
        if codes is None:
            rows = self._unit_rows("ORDER BY code", ())
        else:
            wanted = sorted({normalise_unit_code(c) for c in codes} - {""})
            rows = self._unit_rows("WHERE code = ANY(%s) ORDER BY code", (wanted,))
        return {r["code"]: UnitRequirements.from_row(r) for r in rows}

    def unit_requirement(self, code: str) -> UnitRequirements:
        found = self.unit_requirements([code]).get(normalise_unit_code(code))
        if found is None:
            raise NotFound(_l("没有编码为 %(code)s 的管控单元准入清单", code=code))
        return found

    def unit_list_summary(self) -> dict[str, dict[str, Any]]:
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT code, name, category, county, version, updated_at, updated_by, "
                "origin, length(spatial_layout) + length(emission_control) + "
                "length(risk_prevention) + length(resource_efficiency) AS chars "
                "FROM unit_requirements ORDER BY code").fetchall()
        return {r["code"]: r for r in rows}

    def layer_unit_rows(self, layer: str) -> list[dict[str, Any]]:
        if layer not in self.layer_names():
            raise NotFound(f"no layer named {layer!r}")
        table = f'"{LAYER_PREFIX}{layer}"'
        with self._connection() as conn:
            have = {d.name for d in conn.execute(f"SELECT * FROM {table} WHERE false"
                                                 ).description}
            cols = [f'"{c}"' if c in have else f"NULL AS {c}"
                    for c in ("id", "code", "name", "category", "county")]
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY fid"
                                ).fetchall()
        return [{"code": normalise_unit_code(text_value(code) or text_value(fid)),
                 "name": text_value(name), "category": text_value(category),
                 "county": text_value(county)}
                for fid, code, name, category, county in rows]

    def _current(self, code: str) -> UnitRequirements | None:
        rows = self._unit_rows("WHERE code = %s", (code,))
        return UnitRequirements.from_row(rows[0]) if rows else None

    def update_unit_requirements(self, code: str, parts: Mapping[str, Any], *, user: str,
                                 expected_version: int,
                                 unit: LayerUnit | None = None) -> UnitRequirements:
        unknown = [k for k in parts if k not in PART_KEYS]
        if unknown:
            raise InvalidInput(_l("未知的准入清单部分：%(names)s", names=", ".join(unknown)))
        code = normalise_unit_code(code)
        new = {k: clean_part_text(v) for k, v in parts.items()}
        with self.transaction() as conn:
            current = self._current(code)
            if current is None:
                if unit is None:
                    raise NotFound(_l("没有编码为 %(code)s 的管控单元准入清单", code=code))
                if int(expected_version) != 0:
                    raise new_unit_conflict(code, expected_version)
                conn.execute(
                    f"INSERT INTO unit_requirements (code, name, category, county, "
                    f"{', '.join(PART_KEYS)}, version, updated_at, updated_by, origin) VALUES "
                    f"(%s, %s, %s, %s, {', '.join(['%s'] * len(PART_KEYS))}, 1, %s, %s, %s)",
                    (code, unit.name, unit.category, unit.county,
                     *(new.get(k, "") for k in PART_KEYS), utc_now(), user, ORIGIN_EDIT))
                after = self._current(code)
                self._log(conn, user=user, action="create", entity=ENTITY, entity_id=code,
                          before=None, after=unit_audit_record(after))
                return after
            check_unit_version(current, expected_version)
            diff = [k for k in PART_KEYS if k in new and new[k] != current.part(k)]
            if not diff:
                return current
            sets = ", ".join(f'"{k}" = %s' for k in diff)
            cur = conn.execute(
                f"UPDATE unit_requirements SET {sets}, version = version + 1, updated_at = %s, "
                "updated_by = %s, origin = %s WHERE code = %s AND version = %s",
                (*(new[k] for k in diff), utc_now(), user, ORIGIN_EDIT, code,
                 int(expected_version)))
            if cur.rowcount != 1:
                raise Conflict(_l("保存时准入清单被他人修改；请刷新后重试"))
            after = self._current(code)
            self._log(conn, user=user, action="update", entity=ENTITY, entity_id=code,
                      before={"version": current.version, **{k: current.part(k) for k in diff}},
                      after={"version": after.version, **{k: after.part(k) for k in diff}})
        return after

    def import_unit_requirements(self, records: Iterable[Mapping[str, Any]], *, user: str,
                                 file: str = "") -> dict[str, Any]:
        records = list(records)
        created = updated = unchanged = 0
        now = utc_now()
        with self.transaction() as conn:
            for rec in records:
                code = normalise_unit_code(rec["code"])
                values = {k: str(rec.get(k) or "") for k in UNIT_FIELDS if k != "code"}
                for k in PART_KEYS:
                    values[k] = clean_part_text(values[k])
                current = self._current(code)
                if current is None:
                    conn.execute(
                        f"INSERT INTO unit_requirements (code, {', '.join(values)}, version, "
                        f"updated_at, updated_by, origin) VALUES (%s, "
                        f"{', '.join(['%s'] * len(values))}, 1, %s, %s, %s)",
                        (code, *values.values(), now, user, ORIGIN_IMPORT))
                    self._log(conn, user=user, action="import", entity=ENTITY, entity_id=code,
                              before=None, after=unit_audit_record(self._current(code)))
                    created += 1
                    continue
                old = {k: current.part(k) if k in PART_KEYS else getattr(current, k)
                       for k in values}
                diff = [k for k in values if values[k] != old[k]]
                if not diff:
                    unchanged += 1
                    continue
                sets = ", ".join(f'"{k}" = %s' for k in diff)
                conn.execute(f"UPDATE unit_requirements SET {sets}, version = version + 1, "
                             "updated_at = %s, updated_by = %s, origin = %s WHERE code = %s",
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
