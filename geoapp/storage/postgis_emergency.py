"""The 重污染天气应急减排清单 in PostGIS (a mixin of ``PostgisRepository``): the same SQL and
semantics as the GeoPackage (storage/emergency.py: versions, origins, audit rows), run on
psycopg with its ``%s`` placeholders."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from geoapp.storage.emergency import EmergencyStore


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class PgEmergencyStore(EmergencyStore):
    """The PostGIS hooks: ``_connection()`` (the thread's transaction or a pooled one)."""

    def _em_query(self, conn: Any, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(_pg(sql), params).fetchall()

    def _em_run(self, conn: Any, sql: str, params: tuple = ()) -> int:
        return conn.execute(_pg(sql), params).rowcount

    def _em_reading(self) -> Any:
        return self._connection()
