"""Accounts, API tokens, login attempts and inspection records in PostGIS (a mixin of
``PostgisRepository``), with the GeoPackage's semantics (storage/accounts.py).

Nothing is cached in the process: every request reads its account (and so its
``session_version``) from the database, so a session ended, a role changed or an account
disabled on one server is seen by every other at its next request.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from psycopg.rows import dict_row

from geoapp.domain.errors import Conflict, InvalidInput, NotFound
from geoapp.domain.messages import Text as _l
from geoapp.storage.accounts import (
    ENDS_SESSIONS,
    PHOTO_META,
    REVOKES_TOKENS,
    TOKEN_PUBLIC,
    USER_EDITABLE,
    USER_PUBLIC,
    photo_audit,
    photo_parts,
    photo_row,
    too_many,
)
from geoapp.storage.apptables import username_key
from geoapp.storage.build import utc_now

_LOGIN_INSERT = ("INSERT INTO login_attempts (at, username, remote_addr, success) "
                 "VALUES (%s, %s, %s, %s) RETURNING id")


def public_user(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An account without its hash, ``active`` as a bool."""
    if row is None:
        return None
    out = {k: row[k] for k in USER_PUBLIC}
    out["active"] = bool(out["active"])
    return out


def _db_value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


class PgAccountStore:
    """Mixin: needs ``_connection()``, ``transaction()`` and ``_log()``."""

    def _user_row(self, username: str) -> dict[str, Any] | None:
        """The account named ``username`` exactly, else the one whose ``username_key``
        matches; None when unknown."""
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute("SELECT * FROM users WHERE username = %s OR username_key = %s",
                               (username, username_key(username))).fetchall()
        if len(rows) > 1:
            rows = [r for r in rows if r["username"] == username]
        return rows[0] if len(rows) == 1 else None

    def create_user(self, username: str, password_hash: str, role: str, *,
                    display_name: str = "", user: str) -> dict[str, Any]:
        name = unicodedata.normalize("NFKC", (username or "").strip())
        if not name:
            raise InvalidInput("username must not be empty")
        key = username_key(name)
        now = utc_now()
        with self.transaction() as conn:
            taken = conn.execute("SELECT username FROM users WHERE username = %s OR "
                                 "username_key = %s", (name, key)).fetchone()
            if taken:
                raise Conflict(_l("用户名已被占用：“%(name)s”与已有账号“%(existing)s”相同",
                                  name=name, existing=taken[0]))
            conn.execute("INSERT INTO users (username, username_key, password_hash, role, "
                         "display_name, active, created_at, updated_at) "
                         "VALUES (%s, %s, %s, %s, %s, 1, %s, %s)",
                         (name, key, password_hash, role, display_name, now, now))
            created = public_user(self._user_row(name))
            self._log(conn, user=user, action="create", entity="user", entity_id=name,
                      before=None, after=created)
        return created

    def user_with_hash(self, username: str) -> dict[str, Any] | None:
        return self._user_row(username)

    def get_user(self, username: str) -> dict[str, Any] | None:
        return public_user(self._user_row(username))

    def list_users(self) -> list[dict[str, Any]]:
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(f"SELECT {', '.join(USER_PUBLIC)} FROM users "
                               "ORDER BY username").fetchall()
        return [public_user(r) for r in rows]

    def update_user(self, username: str, changes: Mapping[str, Any], *,
                    user: str) -> dict[str, Any]:
        bad = [k for k in changes if k not in USER_EDITABLE]
        if bad:
            raise InvalidInput(f"cannot change {', '.join(bad)} of a user")
        with self.transaction() as conn:
            before = public_user(self._user_row(username))
            if before is None:
                raise NotFound(f"no user {username!r}")
            username = before["username"]
            sets = ", ".join(f"{k} = %s" for k in changes)
            if any(k in ENDS_SESSIONS for k in changes):
                sets += ", session_version = session_version + 1"
            conn.execute(f"UPDATE users SET {sets}, updated_at = %s WHERE username = %s",
                         [*map(_db_value, changes.values()), utc_now(), username])
            after = public_user(self._user_row(username))
            shown = {k: ("(changed)" if k == "password_hash" else v) for k, v in changes.items()}
            self._log(conn, user=user, action="update", entity="user", entity_id=username,
                      before=before, after={**after, "changed": shown})
            moved = [k for k in REVOKES_TOKENS if k in changes and changes[k] != before[k]]
            if moved:
                self._revoke_tokens(conn, "user_id = %s", (before["id"],), user=user,
                                    reason=f"{moved[0]} changed")
        return after

    # -- API tokens ------------------------------------------------------------------------
    def _token_rows(self, where: str, params: tuple) -> list[dict[str, Any]]:
        cols = ", ".join(f"t.{c}" for c in TOKEN_PUBLIC)
        with self._connection() as conn:
            rows = conn.execute(f"SELECT {cols}, u.username, u.role, u.active FROM api_tokens t "
                                f"LEFT JOIN users u ON u.id = t.user_id {where}",
                                params).fetchall()
        out = []
        for r in rows:
            row = dict(zip(TOKEN_PUBLIC, r[:len(TOKEN_PUBLIC)], strict=True))
            owner, owner_role, active = r[len(TOKEN_PUBLIC):]
            row.update(username=owner, owner_role=owner_role,
                       owner_active=None if active is None else bool(active))
            out.append(row)
        return out

    def _revoke_tokens(self, conn: Any, where: str, params: tuple, *, user: str,
                       reason: str) -> list[int]:
        """Revoke the unrevoked tokens matching ``where`` in the caller's transaction, one
        audit row each; returns their ids."""
        ids = [int(r[0]) for r in conn.execute(
            f"SELECT id FROM api_tokens WHERE revoked_at IS NULL AND {where} ORDER BY id",
            params)]
        now = utc_now()
        for token_id in ids:
            before = self._token_rows("WHERE t.id = %s", (token_id,))[0]
            conn.execute("UPDATE api_tokens SET revoked_at = %s, revoked_by = %s WHERE id = %s",
                         (now, user, token_id))
            self._log(conn, user=user, action="revoke", entity="api_token",
                      entity_id=str(token_id), before=before,
                      after={**before, "revoked_at": now, "revoked_by": user,
                             "reason": reason})
        return ids

    def create_token(self, username: str, token_hash: str, *, name: str = "",
                     user: str) -> dict[str, Any]:
        with self.transaction() as conn:
            owner = self._user_row(username)
            if owner is None:
                raise NotFound(f"no user {username!r}")
            new_id = conn.execute("INSERT INTO api_tokens (user_id, name, token_hash, role, "
                                  "created_at, created_by) VALUES (%s, %s, %s, %s, %s, %s) "
                                  "RETURNING id", (owner["id"], name, token_hash,
                                                   owner["role"], utc_now(), user)
                                  ).fetchone()[0]
            created = self._token_rows("WHERE t.id = %s", (new_id,))[0]
            self._log(conn, user=user, action="create", entity="api_token",
                      entity_id=str(created["id"]), before=None, after=created)
        return created

    def tokens(self, username: str | None = None) -> list[dict[str, Any]]:
        if username is None:
            return self._token_rows("ORDER BY t.id", ())
        owner = self._user_row(username)
        if owner is None:
            raise NotFound(f"no user {username!r}")
        return self._token_rows("WHERE t.user_id = %s ORDER BY t.id", (owner["id"],))

    def revoke_token(self, token_id: int, *, user: str) -> dict[str, Any]:
        with self.transaction() as conn:
            if not self._token_rows("WHERE t.id = %s", (int(token_id),)):
                raise NotFound(_l("没有编号为 %(id)s 的令牌", id=token_id))
            self._revoke_tokens(conn, "id = %s", (int(token_id),), user=user,
                                reason="revoked")
            return self._token_rows("WHERE t.id = %s", (int(token_id),))[0]

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        """Read on every use (never cached: a token revoked on one server is refused by
        every other at once)."""
        rows = self._token_rows("WHERE t.token_hash = %s", (token_hash,))
        return rows[0] if rows else None

    def token_used(self, token_id: int) -> None:
        with self._connection() as conn:  # one statement; no audit row, no write lock
            conn.execute("UPDATE api_tokens SET last_used_at = %s WHERE id = %s",
                         (utc_now(), int(token_id)))

    def end_sessions(self, username: str, *, user: str, reason: str = "logout") -> int:
        with self.transaction() as conn:
            row = self._user_row(username)
            if row is None:
                raise NotFound(f"no user {username!r}")
            version = conn.execute("UPDATE users SET session_version = session_version + 1 "
                                   "WHERE id = %s RETURNING session_version",
                                   (row["id"],)).fetchone()[0]
            self._log(conn, user=user, action=reason, entity="session",
                      entity_id=row["username"], before=None,
                      after={"session_version": version})
        return int(version)

    def _audit_login(self, conn: Any, username: str, remote_addr: str, success: bool,
                     account: str | None) -> None:
        if success:
            conn.execute("UPDATE users SET last_login_at = %s WHERE username = %s",
                         (utc_now(), account or username))
        self._log(conn, user=(account if success else None) or username or "(anonymous)",
                  action="login" if success else "login_failed", entity="session",
                  entity_id=account or username, before=None,
                  after={"remote_addr": remote_addr})

    def record_login(self, username: str, remote_addr: str, success: bool, *,
                     account: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(_LOGIN_INSERT, (utc_now(), username, remote_addr, int(success)))
            self._audit_login(conn, username, remote_addr, success, account)

    def claim_login_attempt(self, username: str, remote_addr: str, since_iso: str, *,
                            max_pair: int, max_addr: int) -> int | None:
        """Count and record under the write lock, so parallel guesses on every server see
        each other's attempts before any password is verified."""
        with self.transaction() as conn:
            pair = self.failed_logins_since(since_iso, username=username,
                                            remote_addr=remote_addr, reset_by_success=True)
            addr = self.failed_logins_since(since_iso, remote_addr=remote_addr)
            if pair >= max_pair or addr >= max_addr:
                return None
            return int(conn.execute(_LOGIN_INSERT, (utc_now(), username, remote_addr, 0)
                                    ).fetchone()[0])

    def finish_login_attempt(self, attempt_id: int, username: str, remote_addr: str,
                             success: bool, *, account: str | None = None) -> None:
        with self.transaction() as conn:
            if success:
                conn.execute("UPDATE login_attempts SET success = 1 WHERE id = %s",
                             (attempt_id,))
            self._audit_login(conn, username, remote_addr, success, account)

    def failed_logins_since(self, since_iso: str, *, username: str | None = None,
                            remote_addr: str | None = None,
                            reset_by_success: bool = False) -> int:
        same = {k: v for k, v in (("username", username), ("remote_addr", remote_addr))
                if v is not None}
        where = ["success = 0", "at >= %s", *(f"{k} = %s" for k in same)]
        params = [since_iso, *same.values()]
        if reset_by_success:
            where.append("id > coalesce((SELECT max(id) FROM login_attempts WHERE success = 1"
                         + "".join(f" AND {k} = %s" for k in same) + "), 0)")
            params += same.values()
        with self._connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM login_attempts WHERE "
                               f"{' AND '.join(where)}", params).fetchone()
        return int(row[0])

    def add_inspection(self, record: Mapping[str, Any], *, user: str,
                       photos: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        def js(value: Any) -> str:
            return json.dumps(value, ensure_ascii=False, default=str)

        now = utc_now()
        accuracy = record.get("gps_accuracy_m")
        accuracy = None if accuracy is None else float(accuracy)
        values = (now, user, record.get("site_id"), float(record["lon"]),
                  float(record["lat"]), js(record.get("input", {})), record["verdict"],
                  js(record.get("hits", [])), str(record.get("notes") or ""),
                  js(record.get("conditional_hits", [])), accuracy)
        with self.transaction() as conn:
            new_id = conn.execute(
                "INSERT INTO inspections (at, inspector, site_id, lon, lat, input_json, "
                "verdict, hits_json, notes, conditional_hits_json, gps_accuracy_m) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                values).fetchone()[0]
            self._log(conn, user=user, action="create", entity="inspection",
                      entity_id=str(new_id), before=None,
                      after={"site_id": record.get("site_id"), "verdict": record["verdict"],
                             "gps_accuracy_m": accuracy})
            self._insert_photos(conn, new_id, record.get("site_id"), photos, user=user,
                                at=now)
        return self.inspection(new_id)

    def _insert_photos(self, conn: Any, inspection_id: int, site_id: str | None,
                       photos: Iterable[Mapping[str, Any]], *, user: str,
                       at: str) -> list[int]:
        ids = []
        for p in photos:
            row = photo_row(p, inspection_id=inspection_id, site_id=site_id, at=at, user=user)
            ids.append(int(conn.execute(
                f"INSERT INTO inspection_photos ({', '.join(row)}) VALUES "
                f"({', '.join(['%s'] * len(row))}) RETURNING id",
                list(row.values())).fetchone()[0]))
            self._log(conn, user=user, action="add_photo", entity="inspection",
                      entity_id=str(inspection_id), before=None,
                      after=photo_audit(row, ids[-1]))
        return ids

    def add_inspection_photos(self, inspection_id: int, photos: Iterable[Mapping[str, Any]],
                              *, user: str, max_count: int | None = None
                              ) -> list[dict[str, Any]]:
        photos = list(photos)
        with self.transaction() as conn:
            # The inspection's row lock keeps two uploads to it from passing the limit.
            rec = conn.execute("SELECT site_id FROM inspections WHERE id = %s FOR UPDATE",
                               (int(inspection_id),)).fetchone()
            if rec is None:
                raise NotFound(f"no inspection {inspection_id}")
            have = conn.execute("SELECT count(*) FROM inspection_photos WHERE "
                                "inspection_id = %s", (int(inspection_id),)).fetchone()[0]
            if max_count is not None and have + len(photos) > max_count:
                raise InvalidInput(too_many(max_count, have, len(photos)))
            ids = self._insert_photos(conn, int(inspection_id), rec[0], photos, user=user,
                                      at=utc_now())
        return [p for p in self.inspection_photos(inspection_id=int(inspection_id))
                if p["id"] in ids]

    def inspection_photos(self, *, inspection_id: int | None = None,
                          site_id: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        if inspection_id is not None:
            where.append("inspection_id = %s")
            params.append(int(inspection_id))
        if site_id is not None:
            where.append("site_id = %s")
            params.append(str(site_id))
        tail = f"WHERE {' AND '.join(where)} " if where else ""
        with self._connection() as conn:
            rows = conn.execute(f"SELECT {', '.join(PHOTO_META)} FROM inspection_photos "
                                f"{tail}ORDER BY inspection_id, id", params).fetchall()
        return [dict(zip(PHOTO_META, r, strict=True)) for r in rows]

    def inspection_photo(self, photo_id: int, *, part: str | None = None) -> dict[str, Any]:
        cols = [*PHOTO_META, *photo_parts(part)]
        with self._connection() as conn:
            row = conn.execute(f"SELECT {', '.join(cols)} FROM inspection_photos "
                               "WHERE id = %s", (int(photo_id),)).fetchone()
        if row is None:
            raise NotFound(f"no photo {photo_id}")
        out = dict(zip(cols, row, strict=True))
        for k in photo_parts(part):
            out[k] = bytes(out[k])
        return out

    def inspection(self, inspection_id: int) -> dict[str, Any]:
        rows = self._inspections("WHERE id = %s", (inspection_id,))
        if not rows:
            raise NotFound(f"no inspection {inspection_id}")
        return rows[0]

    def inspections(self, site_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if site_id is None:
            return self._inspections("ORDER BY id DESC LIMIT %s", (limit,))
        return self._inspections("WHERE site_id = %s ORDER BY id DESC LIMIT %s",
                                 (site_id, limit))

    def _inspections(self, tail: str, params: tuple) -> list[dict[str, Any]]:
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(f"SELECT * FROM inspections {tail}", params).fetchall()
        for row in rows:
            row["input"] = json.loads(row.pop("input_json"))
            row["hits"] = json.loads(row.pop("hits_json"))
            row["conditional_hits"] = json.loads(row.pop("conditional_hits_json") or "[]")
        return rows
