"""Accounts, login attempts and inspection records in the GeoPackage (see apptables.py).

Password hashes are stored but never written to the audit log or returned by listings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from geoapp.domain.errors import Conflict, InvalidInput, NotFound
from geoapp.storage.build import utc_now

USER_PUBLIC = ("id", "username", "role", "display_name", "active", "created_at", "updated_at",
               "last_login_at")
USER_EDITABLE = ("password_hash", "role", "display_name", "active")


def _public(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = {k: row[k] for k in USER_PUBLIC}
    out["active"] = bool(out["active"])
    return out


class AccountStore:
    """Mixin for GpkgRepository: needs ``_conn()``, ``_memo()``, ``transaction()`` and
    ``_log()``."""

    def _user_row(self, username: str) -> dict[str, Any] | None:
        cur = self._conn().execute("SELECT * FROM users WHERE username = ?", (username,))
        row = cur.fetchone()
        return None if row is None else {d[0]: v for d, v in zip(cur.description, row, strict=True)}

    def create_user(self, username: str, password_hash: str, role: str, *,
                    display_name: str = "", user: str) -> dict[str, Any]:
        name = (username or "").strip()
        if not name:
            raise InvalidInput("username must not be empty")
        now = utc_now()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (name,)).fetchone():
                raise Conflict(f"user {name!r} already exists")
            conn.execute("INSERT INTO users (username, password_hash, role, display_name, active,"
                         " created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
                         (name, password_hash, role, display_name, now, now))
            created = _public(self._user_row(name))
            self._log(conn, user=user, action="create", entity="user", entity_id=name,
                      before=None, after=created)
        return created

    def user_with_hash(self, username: str) -> dict[str, Any] | None:
        """The account including its password hash (for verifying a login only)."""
        return self._user_row(username)

    def get_user(self, username: str) -> dict[str, Any] | None:
        """The account's public fields (every request loads its user: cached until the
        database changes)."""
        memo = self._memo()
        key = ("user", username)
        if memo is None:
            return _public(self._user_row(username))
        if key not in memo:
            memo[key] = _public(self._user_row(username))
        row = memo[key]
        return dict(row) if row is not None else None

    def list_users(self) -> list[dict[str, Any]]:
        cur = self._conn().execute(f"SELECT {', '.join(USER_PUBLIC)} FROM users ORDER BY username")
        return [_public(dict(zip(USER_PUBLIC, r, strict=True))) for r in cur.fetchall()]

    def update_user(self, username: str, changes: Mapping[str, Any], *, user: str) -> dict[str, Any]:
        bad = [k for k in changes if k not in USER_EDITABLE]
        if bad:
            raise InvalidInput(f"cannot change {', '.join(bad)} of a user")
        with self.transaction() as conn:
            before = _public(self._user_row(username))
            if before is None:
                raise NotFound(f"no user {username!r}")
            sets = ", ".join(f"{k} = ?" for k in changes)
            conn.execute(f"UPDATE users SET {sets}, updated_at = ? WHERE username = ?",
                         [*changes.values(), utc_now(), username])
            after = _public(self._user_row(username))
            shown = {k: ("(changed)" if k == "password_hash" else v) for k, v in changes.items()}
            self._log(conn, user=user, action="update", entity="user", entity_id=username,
                      before=before, after={**after, "changed": shown})
        return after

    def record_login(self, username: str, remote_addr: str, success: bool) -> None:
        now = utc_now()
        with self.transaction() as conn:
            conn.execute("INSERT INTO login_attempts (at, username, remote_addr, success) "
                         "VALUES (?, ?, ?, ?)", (now, username, remote_addr, int(success)))
            if success:
                conn.execute("UPDATE users SET last_login_at = ? WHERE username = ?",
                             (now, username))
            self._log(conn, user=username or "(anonymous)",
                      action="login" if success else "login_failed", entity="session",
                      entity_id=username, before=None, after={"remote_addr": remote_addr})

    def failed_logins_since(self, since_iso: str, *, username: str | None = None,
                            remote_addr: str | None = None) -> int:
        """Failed attempts after ``since_iso`` for a username and/or an address."""
        where, params = ["success = 0", "at >= ?"], [since_iso]
        if username is not None:
            where.append("username = ?")
            params.append(username)
        if remote_addr is not None:
            where.append("remote_addr = ?")
            params.append(remote_addr)
        row = self._conn().execute(f"SELECT count(*) FROM login_attempts WHERE "
                                   f"{' AND '.join(where)}", params).fetchone()
        return int(row[0])

    def add_inspection(self, record: Mapping[str, Any], *, user: str) -> dict[str, Any]:
        """Keep one inspection: who, when, where, the check's verdict and hits, notes."""
        now = utc_now()
        values = (now, user, record.get("site_id"), float(record["lon"]), float(record["lat"]),
                  json.dumps(record.get("input", {}), ensure_ascii=False, default=str),
                  record["verdict"], json.dumps(record.get("hits", []), ensure_ascii=False,
                                                default=str),
                  str(record.get("notes") or ""))
        with self.transaction() as conn:
            cur = conn.execute("INSERT INTO inspections (at, inspector, site_id, lon, lat, "
                               "input_json, verdict, hits_json, notes) VALUES "
                               "(?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            new_id = cur.lastrowid
            self._log(conn, user=user, action="create", entity="inspection",
                      entity_id=str(new_id), before=None,
                      after={"site_id": record.get("site_id"), "verdict": record["verdict"]})
        return self.inspection(new_id)

    def inspection(self, inspection_id: int) -> dict[str, Any]:
        rows = self._inspections("WHERE id = ?", (inspection_id,))
        if not rows:
            raise NotFound(f"no inspection {inspection_id}")
        return rows[0]

    def inspections(self, site_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if site_id is None:
            return self._inspections("ORDER BY id DESC LIMIT ?", (limit,))
        return self._inspections("WHERE site_id = ? ORDER BY id DESC LIMIT ?", (site_id, limit))

    def _inspections(self, tail: str, params: tuple) -> list[dict[str, Any]]:
        cur = self._conn().execute(f"SELECT * FROM inspections {tail}", params)
        out = []
        for r in cur.fetchall():
            row = {d[0]: v for d, v in zip(cur.description, r, strict=True)}
            row["input"] = json.loads(row.pop("input_json"))
            row["hits"] = json.loads(row.pop("hits_json"))
            out.append(row)
        return out
