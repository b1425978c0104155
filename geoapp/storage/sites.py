"""Site reads and writes for the GeoPackage repository (a mixin of ``GpkgRepository``).

Sites of every type live in one ``sites`` table (the union of the columns). Writes validate
with the same column rules as the source-file reader, so a site typed into a form and a site
read from the CSV obey one definition. ``version`` gives optimistic concurrency: an editor
says which version they saw, and if somebody saved in between they get ``Conflict``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import pandas as pd

from geoapp.domain.city import City
from geoapp.domain.errors import Conflict, InvalidInput, NotFound, Problem, ValidationFailed
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import Classification, SiteType, Stage, WorkshopStatus
from geoapp.storage import build as b
from geoapp.storage import geopackage as gp
from geoapp.storage.base import SITE_FILTERS
from geoapp.storage.sources import (
    SITE_COLUMNS,
    convert_frame,
    normalise_site_dtypes,
    site_column_kinds,
    to_jsonable,
)

log = logging.getLogger(__name__)

SYSTEM_COLUMNS = ("version", "updated_at", "updated_by")
IMMUTABLE = ("id", "site_type")
IGNORED_INPUT = {"fid", "geom", "geometry", *SYSTEM_COLUMNS}
_FILTER_ENUMS = {"classification": Classification, "stage": Stage, "status": WorkshopStatus}


class SiteStore:
    """Mixin: needs ``_conn()``, ``transaction()``, ``_log(...)`` and ``city()``."""

    # -- reads -----------------------------------------------------------------------------
    def sites(self, site_type: str | Iterable[str] | None = None, *,
              columns: Iterable[str] | None = None, **filters: Any) -> gpd.GeoDataFrame:
        """Sites as EPSG:4326 points; filters are equality, or membership for a list.

        ``columns`` narrows the attributes read (id and site_type always come): reading
        five columns of 100,000 sites is several times faster than reading all fifty.
        """
        where, params = _site_where(site_type, filters)
        if columns is not None:
            columns = ["id", "site_type", *[c for c in columns if c not in ("id", "site_type")]]
        try:
            return gp.read_frame(self._conn(), b.SITES, f"{where} ORDER BY fid", params,
                                 columns=columns)
        except KeyError as exc:
            raise InvalidInput(_l("场所：%(why)s", why=exc.args[0])) from None

    def site(self, site_id: str) -> dict[str, Any]:
        return self._site_row(self._conn(), site_id)

    def _site_row(self, conn: sqlite3.Connection, site_id: str) -> dict[str, Any]:
        df = gp.read_frame(conn, b.SITES, "WHERE id = ?", (str(site_id),))
        if df.empty:
            raise NotFound(_l("没有编号为“%(id)s”的场所", id=site_id))
        return site_record(df.iloc[0])

    # -- writes ----------------------------------------------------------------------------
    def create_site(self, record: Mapping[str, Any], *, user: str) -> dict[str, Any]:
        clean = self._validate([record])
        site_id = clean["id"].iat[0]
        with self.transaction() as conn:
            if conn.execute(f"SELECT 1 FROM {b.SITES} WHERE id = ?", (site_id,)).fetchone():
                raise Conflict(_l("编号为“%(id)s”的场所已存在", id=site_id))
            _insert(conn, clean, user)
            after = self._site_row(conn, site_id)
            self._log(conn, user=user, action="create", entity="site", entity_id=site_id,
                      before=None, after=after)
        return after

    def update_site(self, site_id: str, changes: Mapping[str, Any], *, user: str,
                    expected_version: int) -> dict[str, Any]:
        bad = [k for k in changes if k in IMMUTABLE]
        if bad:
            raise InvalidInput(_l("场所 %(id)s：%(fields)s 不能修改；请另建一个场所", id=site_id,
                                  fields=", ".join(bad)))
        with self.transaction() as conn:
            current = self._site_row(conn, site_id)
            check_version(current, expected_version)
            merged = {k: v for k, v in current.items() if k not in IGNORED_INPUT}
            merged.update({k: v for k, v in changes.items() if k not in IGNORED_INPUT})
            clean = self._validate([merged])
            new = site_record(clean.iloc[0])
            diff = [k for k in new if k in current and new[k] != current[k]]
            if not diff:
                return current
            _update(conn, clean, user, expected_version)
            after = self._site_row(conn, site_id)
            self._log(conn, user=user, action="update", entity="site", entity_id=site_id,
                      before={"version": current["version"], **{k: current[k] for k in diff}},
                      after={"version": after["version"], **{k: after[k] for k in diff}})
        return after

    def delete_site(self, site_id: str, *, user: str, expected_version: int) -> None:
        with self.transaction() as conn:
            current = self._site_row(conn, site_id)
            check_version(current, expected_version)
            conn.execute(f"DELETE FROM {b.SITES} WHERE id = ?", (str(site_id),))
            conn.execute(f"DELETE FROM {b.SITE_HITS} WHERE site_id = ?", (str(site_id),))
            self._log(conn, user=user, action="delete", entity="site", entity_id=site_id,
                      before=current, after=None)

    def import_sites(self, records: Iterable[Mapping[str, Any]], *,
                     user: str) -> dict[str, Any]:
        """All-or-nothing: every record valid, then one transaction for all of them."""
        records = list(records)
        if not records:
            return {"rows": 0, "created": 0, "updated": 0}
        clean = self._validate(records)
        ids = clean["id"].tolist()
        with self.transaction() as conn:
            old = _existing(conn, ids)
            is_new = ~clean["id"].isin(old.index)
            moved = sorted(old.index[old["site_type"] != clean.set_index("id").loc[
                old.index, "site_type"]])
            if moved:
                raise ValidationFailed(_l("导入：场所类型不能改变（%(ids)s）", ids=", ".join(moved)))
            _insert(conn, clean[is_new], user)
            _update(conn, clean[~is_new], user, None)
            before = {r["id"]: r for r in site_records(old)}
            for after in site_records(clean):
                self._log(conn, user=user, action="import", entity="site",
                          entity_id=after["id"], before=before.get(after["id"]), after=after)
        report = {"rows": len(clean), "created": int(is_new.sum()),
                  "updated": int((~is_new).sum())}
        log.info("imported %(rows)d sites (%(created)d new, %(updated)d updated)", report)
        return report

    # -- validation ------------------------------------------------------------------------
    def _validate(self, records: list[Mapping[str, Any]]) -> gpd.GeoDataFrame:
        return validate_site_records(records, self.city(),
                                     gp.table_columns(self._conn(), b.SITES))


def validate_site_records(records: list[Mapping[str, Any]], city: City,
                          stored_columns: Iterable[str]) -> gpd.GeoDataFrame:
    """Type and check records like the CSV reader does; ValidationFailed lists them all.

    ``stored_columns`` are the columns of the stored sites table: those beyond the known
    site columns (added by an older release or an operator) are accepted as they are.
    Shared by every backend."""
    kinds = site_column_kinds()
    extra = [c for c in stored_columns if c not in kinds and c not in IGNORED_INPUT]
    problems: list[Problem] = []
    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        try:
            st = SiteType.parse(rec.get("site_type", "")).value
        except ValueError:
            problems.append(_issue(i, "site_type", rec.get("site_type"),
                                   _l("未知的场所类型；应为：%(allowed)s", allowed=", ".join(
                                       f"{t.value}（{t.zh}）" for t in SiteType))))
            continue
        groups.setdefault(st, []).append(i)
        unknown = [k for k in rec if k not in kinds and k not in extra
                   and k not in IGNORED_INPUT]
        problems += [_issue(i, k, rec[k], _l("未知的字段")) for k in unknown]
    frames = []
    for st, idx in groups.items():
        spec = {c: k + ("!" if SITE_COLUMNS[st].get(c, "").endswith("!") else "")
                for c, k in kinds.items() if c != "site_type"}
        cols = [*spec, *extra]
        raw = pd.DataFrame({c: [records[i].get(c) for i in idx] for c in cols},
                           index=pd.Index(idx))
        clean, errs = convert_frame(raw, spec, "record", city, row_base=1)
        problems += errs
        clean.insert(0, "site_type", st)
        frames.append(clean)
    ids = pd.Series([str(r.get("id", "")).strip() for r in records])
    problems += [_issue(i, "id", v, _l("本次导入中编号出现了两次"))
                 for i, v in ids[ids.ne("") & ids.duplicated()].items()]
    if problems:
        problems.sort(key=lambda p: p.row)
        p = problems[0]
        raise ValidationFailed(
            _l("%(count)s 处无效值；第一处：第 %(row)s 条记录 %(column)s：%(message)s",
               count=len(problems), row=p.row, column=p.column, message=p.message),
            details=problems)
    df = normalise_site_dtypes(pd.concat(frames).sort_index())
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]),
                            crs=4326)


def _issue(i: int, column: str, value: Any, message: str) -> Problem:
    return Problem(file="record", row=i + 1, column=column, value=to_jsonable(value),
                   message=message)


def check_version(current: Mapping[str, Any], expected: int) -> None:
    if int(current["version"]) != int(expected):
        raise Conflict(
            _l("场所 %(id)s 已由 %(user)s 于 %(at)s 修改（版本 %(version)s，你编辑的是版本 "
               "%(expected)s）；请刷新后重新修改", id=current["id"], user=current["updated_by"],
               at=current["updated_at"], version=current["version"], expected=int(expected)),
            details={"id": current["id"], "current_version": current["version"],
                     "expected_version": int(expected), "updated_by": current["updated_by"],
                     "updated_at": current["updated_at"]})


def site_record(row: pd.Series) -> dict[str, Any]:
    return {k: to_jsonable(v) for k, v in row.items() if k not in ("geometry", "geom")}


def site_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    plain = pd.DataFrame(df).drop(columns=["geometry"], errors="ignore")
    return [{k: to_jsonable(v) for k, v in rec.items()} for rec in plain.to_dict("records")]


def _existing(conn: sqlite3.Connection, ids: list[str], chunk: int = 500) -> pd.DataFrame:
    """The stored rows for these ids (indexed by id), in chunks under SQLite's variable limit."""
    parts = [gp.read_frame(conn, b.SITES, f"WHERE id IN ({', '.join('?' * len(part))})", part)
             for part in (ids[i:i + chunk] for i in range(0, len(ids), chunk))]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({"id": [], "site_type": []}).set_index("id", drop=False)
    return pd.concat(parts).set_index("id", drop=False)


def _insert(conn: sqlite3.Connection, clean: gpd.GeoDataFrame, user: str) -> None:
    rows = clean.assign(version=1, updated_at=b.utc_now(), updated_by=user)
    gp.insert_frame(conn, b.SITES, rows)


def _update(conn: sqlite3.Connection, clean: gpd.GeoDataFrame, user: str,
            expected_version: int | None) -> None:
    """UPDATE by id; with ``expected_version`` the row must still carry it (else Conflict)."""
    if clean.empty:
        return
    cols = [c for c in clean.columns if c not in ("geometry", *IMMUTABLE)]
    sets = ", ".join(f"{gp.quote(c)} = ?" for c in cols)
    check = [] if expected_version is None else [int(expected_version)]
    sql = (f"UPDATE {b.SITES} SET {sets}, geom = ?, version = version + 1, updated_at = ?, "
           f"updated_by = ? WHERE id = ?" + (" AND version = ?" if check else ""))
    values = [gp.plain_values(clean[c]) for c in cols]
    geoms = gp.encode_geometries(clean.geometry.values)
    now = b.utc_now()
    rows = [(*vals, g, now, user, sid, *check)
            for *vals, g, sid in zip(*values, geoms, clean["id"], strict=True)]
    cur = conn.executemany(sql, rows)
    if cur.rowcount != len(rows):
        raise Conflict(_l("保存时场所被他人修改；请刷新后重试"))


def site_filters(site_type: Any, filters: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """The ``sites()`` filters as (column, accepted values) pairs, labels read as the
    machine names (InvalidInput names an unknown filter or value). Shared by every backend."""
    unknown = [k for k in filters if k not in SITE_FILTERS]
    if unknown:
        raise InvalidInput(_l("未知的场所筛选条件 %(names)s；可用：%(allowed)s",
                              names=", ".join(unknown), allowed=", ".join(SITE_FILTERS)))
    out: list[tuple[str, list[str]]] = []
    for col, value in (("site_type", site_type), *filters.items()):
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        out.append((col, [_filter_value(col, v) for v in values]))
    return out


def _site_where(site_type: Any, filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for col, values in site_filters(site_type, filters):
        clauses.append(f"{gp.quote(col)} IN ({', '.join('?' * len(values))})"
                       if values else "0")
        params += values
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _filter_value(col: str, value: Any) -> str:
    enum = SiteType if col == "site_type" else _FILTER_ENUMS.get(col)
    if enum is None:
        return str(value)
    try:
        return enum.parse(value).value  # accept the machine name or the Chinese label
    except ValueError:
        raise InvalidInput(_l("筛选条件 %(name)s：未知的值“%(value)s”", name=col,
                              value=value)) from None
