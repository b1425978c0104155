"""Accounts, API tokens, login attempts and inspection records in the GeoPackage (see
apptables.py), and the paged audit log and layer counts the admin and layer pages read.

Password hashes and token hashes are stored but never written to the audit log or returned
by listings.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from geoapp.domain.errors import Conflict, InvalidInput, NotFound
from geoapp.domain.messages import Text as _l
from geoapp.storage.apptables import username_key
from geoapp.storage.base import AUDIT_COLUMNS, AUDIT_FILTERS, clean_audit_filters
from geoapp.storage.build import CHANGES, LAYER_PREFIX, utc_now
from geoapp.storage.geopackage import quote

USER_PUBLIC = ("id", "username", "role", "display_name", "active", "created_at", "updated_at",
               "last_login_at", "session_version")
USER_EDITABLE = ("password_hash", "role", "display_name", "active")
#: Changing one of these ends every session of the account (its session_version moves on).
ENDS_SESSIONS = ("password_hash", "role", "active")
#: Changing one of these revokes every API token of the account (a token carries the role
#: it was issued for; a disabled account's tokens do not come back when it is enabled).
REVOKES_TOKENS = ("role", "active")
#: An API token as listings show it: never its hash.
TOKEN_PUBLIC = ("id", "user_id", "name", "role", "created_at", "created_by", "last_used_at",
                "revoked_at", "revoked_by")


#: The columns of a photo listing (everything but its bytes).
PHOTO_META = ("id", "inspection_id", "site_id", "uploaded_at", "uploaded_by", "filename",
              "media_type", "size", "width", "height", "sha256", "taken_at", "exif_lon",
              "exif_lat", "exif_distance_m", "position_mismatch")
#: What a photo row holds besides its listing: the file as uploaded and its thumbnail.
PHOTO_PARTS = ("data", "thumb")


def photo_parts(part: str | None) -> tuple[str, ...]:
    """The byte columns asked for: none, ``data`` or ``thumb``."""
    if part is None:
        return ()
    if part not in PHOTO_PARTS:
        raise ValueError(f"not a photo part: {part!r}")
    return (part,)


def photo_row(photo: Mapping[str, Any], *, inspection_id: int, site_id: str | None,
              at: str, user: str) -> dict[str, Any]:
    """The stored row of one photo (``photo`` as services/photos.py reads it)."""
    def num(key: str) -> float | None:
        v = photo.get(key)
        return None if v is None else float(v)

    return {"inspection_id": int(inspection_id), "site_id": site_id, "uploaded_at": at,
            "uploaded_by": user, "filename": str(photo.get("filename") or ""),
            "media_type": str(photo["media_type"]), "size": int(photo["size"]),
            "width": int(photo["width"]), "height": int(photo["height"]),
            "sha256": str(photo["sha256"]), "taken_at": photo.get("taken_at"),
            "exif_lon": num("exif_lon"), "exif_lat": num("exif_lat"),
            "exif_distance_m": num("exif_distance_m"),
            "position_mismatch": int(bool(photo.get("position_mismatch"))),
            "data": bytes(photo["data"]), "thumb": bytes(photo["thumb"])}


def photo_audit(row: Mapping[str, Any], photo_id: int) -> dict[str, Any]:
    """A photo's audit record: its metadata, never its bytes."""
    return {"photo_id": photo_id, **{k: v for k, v in row.items() if k not in PHOTO_PARTS}}


def too_many(max_count: int, have: int, n: int) -> _l:
    return _l("照片过多：每次检查最多 %(max)s 张（已有 %(have)s 张，本次 %(n)s 张）",
              max=max_count, have=have, n=n)


def _accuracy(record: Mapping[str, Any]) -> float | None:
    v = record.get("gps_accuracy_m")
    return None if v is None else float(v)


def _public(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = {k: row[k] for k in USER_PUBLIC}
    out["active"] = bool(out["active"])
    return out


class AccountStore:
    """Mixin for GpkgRepository: needs ``_conn()``, ``_memo()``, ``transaction()``,
    ``_log()`` and ``layer_names()``."""

    # -- the audit log and layer counts, one query each ------------------------------------
    def audit_page(self, filters: Mapping[str, str], *, offset: int,
                   limit: int) -> tuple[list[dict[str, Any]], int]:
        wanted = clean_audit_filters(filters)
        where = " AND ".join(f"{quote(k)} = ?" for k in wanted)
        where = f"WHERE {where}" if where else ""
        params = list(wanted.values())
        conn = self._conn()
        total = conn.execute(f"SELECT count(*) FROM {CHANGES} {where}", params).fetchone()[0]
        cur = conn.execute(f"SELECT {', '.join(quote(c) for c in AUDIT_COLUMNS)} FROM {CHANGES} "
                           f"{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                           [*params, int(limit), int(offset)])
        return [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in cur.fetchall()], int(total)

    def audit_values(self, column: str) -> list[str]:
        if column not in AUDIT_FILTERS:
            raise ValueError(f"not an audit filter column: {column!r}")
        cur = self._conn().execute(f"SELECT DISTINCT {quote(column)} FROM {CHANGES} "
                                   f"WHERE {quote(column)} IS NOT NULL")
        return sorted(str(r[0]) for r in cur.fetchall())

    def latest_changes(self, entity: str) -> dict[str, dict[str, Any]]:
        cur = self._conn().execute(
            f"SELECT entity_id, id, at, user, action FROM {CHANGES} WHERE id IN "
            f"(SELECT max(id) FROM {CHANGES} WHERE entity = ? AND entity_id IS NOT NULL "
            "GROUP BY entity_id)", (entity,))
        return {str(r[0]): {"id": r[1], "at": r[2], "user": r[3], "action": r[4]}
                for r in cur.fetchall()}

    def feature_counts(self) -> dict[str, int]:
        conn = self._conn()
        return {name: int(conn.execute(
                    f"SELECT count(*) FROM {quote(LAYER_PREFIX + name)}").fetchone()[0])
                for name in self.layer_names()}

    def _user_row(self, username: str) -> dict[str, Any] | None:
        """The account named ``username`` exactly, or else the one whose normalised name
        (``username_key``) matches; None when unknown or when several rows made before
        normalisation share the key and none is named exactly so."""
        cur = self._conn().execute("SELECT * FROM users WHERE username = ? OR username_key = ?",
                                   (username, username_key(username)))
        rows = [{d[0]: v for d, v in zip(cur.description, r, strict=True)}
                for r in cur.fetchall()]
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
            taken = conn.execute("SELECT username FROM users WHERE username = ? OR "
                                 "username_key = ?", (name, key)).fetchone()
            if taken:
                raise Conflict(_l("用户名已被占用：“%(name)s”与已有账号“%(existing)s”相同",
                                  name=name, existing=taken[0]))
            conn.execute("INSERT INTO users (username, username_key, password_hash, role, "
                         "display_name, active, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                         (name, key, password_hash, role, display_name, now, now))
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
        """Change editable fields (audited); a new password, role or active flag also ends
        every session of the account (``session_version`` + 1)."""
        bad = [k for k in changes if k not in USER_EDITABLE]
        if bad:
            raise InvalidInput(f"cannot change {', '.join(bad)} of a user")
        with self.transaction() as conn:
            before = _public(self._user_row(username))
            if before is None:
                raise NotFound(f"no user {username!r}")
            username = before["username"]
            sets = ", ".join(f"{k} = ?" for k in changes)
            if any(k in ENDS_SESSIONS for k in changes):
                sets += ", session_version = session_version + 1"
            conn.execute(f"UPDATE users SET {sets}, updated_at = ? WHERE username = ?",
                         [*changes.values(), utc_now(), username])
            after = _public(self._user_row(username))
            shown = {k: ("(changed)" if k == "password_hash" else v) for k, v in changes.items()}
            self._log(conn, user=user, action="update", entity="user", entity_id=username,
                      before=before, after={**after, "changed": shown})
            moved = [k for k in REVOKES_TOKENS if k in changes and changes[k] != before[k]]
            if moved:
                self._revoke_tokens(conn, "user_id = ?", (before["id"],), user=user,
                                    reason=f"{moved[0]} changed")
        return after

    # -- API tokens --------------------------------------------------------------------------
    def _token_rows(self, where: str, params: tuple) -> list[dict[str, Any]]:
        cols = ", ".join(f"t.{c}" for c in TOKEN_PUBLIC)
        cur = self._conn().execute(
            f"SELECT {cols}, u.username, u.role, u.active FROM api_tokens t "
            f"LEFT JOIN users u ON u.id = t.user_id {where}", params)
        out = []
        for r in cur.fetchall():
            row = dict(zip(TOKEN_PUBLIC, r[:len(TOKEN_PUBLIC)], strict=True))
            owner, owner_role, active = r[len(TOKEN_PUBLIC):]
            row.update(username=owner, owner_role=owner_role,
                       owner_active=None if active is None else bool(active))
            out.append(row)
        return out

    def _revoke_tokens(self, conn: sqlite3.Connection, where: str, params: tuple, *,
                       user: str, reason: str) -> list[int]:
        """Revoke the unrevoked tokens matching ``where`` inside the caller's transaction,
        one audit row each; returns their ids."""
        ids = [int(r[0]) for r in conn.execute(
            f"SELECT id FROM api_tokens WHERE revoked_at IS NULL AND {where}", params)]
        now = utc_now()
        for token_id in ids:
            before = self._token_rows("WHERE t.id = ?", (token_id,))[0]
            conn.execute("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?",
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
            cur = conn.execute("INSERT INTO api_tokens (user_id, name, token_hash, role, "
                               "created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                               (owner["id"], name, token_hash, owner["role"], utc_now(), user))
            created = self._token_rows("WHERE t.id = ?", (cur.lastrowid,))[0]
            self._log(conn, user=user, action="create", entity="api_token",
                      entity_id=str(created["id"]), before=None, after=created)
        return created

    def tokens(self, username: str | None = None) -> list[dict[str, Any]]:
        if username is None:
            return self._token_rows("ORDER BY t.id", ())
        owner = self._user_row(username)
        if owner is None:
            raise NotFound(f"no user {username!r}")
        return self._token_rows("WHERE t.user_id = ? ORDER BY t.id", (owner["id"],))

    def revoke_token(self, token_id: int, *, user: str) -> dict[str, Any]:
        with self.transaction() as conn:
            if not self._token_rows("WHERE t.id = ?", (int(token_id),)):
                raise NotFound(_l("没有编号为 %(id)s 的令牌", id=token_id))
            self._revoke_tokens(conn, "id = ?", (int(token_id),), user=user, reason="revoked")
            return self._token_rows("WHERE t.id = ?", (int(token_id),))[0]

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        """The token with this hash and its owner's name, role and active flag (None for
        an unknown hash; the caller judges revocation and the owner): one indexed query,
        cached until the database changes, since every token request asks."""
        memo = self._memo()
        key = ("token", token_hash)
        if memo is not None and key in memo:
            row = memo[key]
        else:
            rows = self._token_rows("WHERE t.token_hash = ?", (token_hash,))
            row = rows[0] if rows else None
            if memo is not None:
                memo[key] = row
        return dict(row) if row is not None else None

    def token_used(self, token_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                         (utc_now(), int(token_id)))

    def end_sessions(self, username: str, *, user: str, reason: str = "logout") -> int:
        """End every session of the account at once (``session_version`` + 1, audited);
        returns the new version."""
        with self.transaction() as conn:
            row = self._user_row(username)
            if row is None:
                raise NotFound(f"no user {username!r}")
            conn.execute("UPDATE users SET session_version = session_version + 1 "
                         "WHERE id = ?", (row["id"],))
            version = int(row["session_version"]) + 1
            self._log(conn, user=user, action=reason, entity="session",
                      entity_id=row["username"], before=None,
                      after={"session_version": version})
        return version

    def record_login(self, username: str, remote_addr: str, success: bool, *,
                     account: str | None = None) -> None:
        """Keep a login attempt under ``username`` (the normalised name typed) and audit it;
        on success ``account`` (the stored name, default ``username``) gets its last login."""
        now = utc_now()
        with self.transaction() as conn:
            conn.execute("INSERT INTO login_attempts (at, username, remote_addr, success) "
                         "VALUES (?, ?, ?, ?)", (now, username, remote_addr, int(success)))
            if success:
                conn.execute("UPDATE users SET last_login_at = ? WHERE username = ?",
                             (now, account or username))
            self._log(conn, user=(account if success else None) or username or "(anonymous)",
                      action="login" if success else "login_failed", entity="session",
                      entity_id=account or username, before=None,
                      after={"remote_addr": remote_addr})

    def claim_login_attempt(self, username: str, remote_addr: str, since_iso: str, *,
                            max_pair: int, max_addr: int) -> int | None:
        """Count and record in one write transaction: None when the (username, address)
        pair has ``max_pair`` failures since its last success or the address ``max_addr``
        since ``since_iso``; else the id of a new attempt row, kept as a failure until
        :meth:`finish_login_attempt` says otherwise. Parallel guesses therefore see each
        other's attempts before any password is verified."""
        with self.transaction() as conn:
            pair = self.failed_logins_since(since_iso, username=username,
                                            remote_addr=remote_addr, reset_by_success=True)
            addr = self.failed_logins_since(since_iso, remote_addr=remote_addr)
            if pair >= max_pair or addr >= max_addr:
                return None
            cur = conn.execute("INSERT INTO login_attempts (at, username, remote_addr, success) "
                               "VALUES (?, ?, ?, 0)", (utc_now(), username, remote_addr))
            return int(cur.lastrowid)

    def finish_login_attempt(self, attempt_id: int, username: str, remote_addr: str,
                             success: bool, *, account: str | None = None) -> None:
        """Settle a claimed attempt (success or not) and audit it like :meth:`record_login`."""
        now = utc_now()
        with self.transaction() as conn:
            if success:
                conn.execute("UPDATE login_attempts SET success = 1 WHERE id = ?", (attempt_id,))
                conn.execute("UPDATE users SET last_login_at = ? WHERE username = ?",
                             (now, account or username))
            self._log(conn, user=(account if success else None) or username or "(anonymous)",
                      action="login" if success else "login_failed", entity="session",
                      entity_id=account or username, before=None,
                      after={"remote_addr": remote_addr})

    def failed_logins_since(self, since_iso: str, *, username: str | None = None,
                            remote_addr: str | None = None,
                            reset_by_success: bool = False) -> int:
        """Failed attempts after ``since_iso`` for a username and/or an address; with
        ``reset_by_success`` only those after the last successful attempt of the same
        username and/or address."""
        where, params = ["success = 0", "at >= ?"], [since_iso]
        same, same_params = [], []
        if username is not None:
            same.append("username = ?")
            same_params.append(username)
        if remote_addr is not None:
            same.append("remote_addr = ?")
            same_params.append(remote_addr)
        where += same
        params += same_params
        if reset_by_success:
            where.append("id > coalesce((SELECT max(id) FROM login_attempts WHERE success = 1"
                         + "".join(f" AND {s}" for s in same) + "), 0)")
            params += same_params
        row = self._conn().execute(f"SELECT count(*) FROM login_attempts WHERE "
                                   f"{' AND '.join(where)}", params).fetchone()
        return int(row[0])

    def add_inspection(self, record: Mapping[str, Any], *, user: str,
                       photos: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """Keep one inspection: who, when, where, the device's GPS accuracy, the check's
        verdict and hits, notes, and its ``photos`` (read by services/photos.py), all in
        one transaction."""
        now = utc_now()
        values = (now, user, record.get("site_id"), float(record["lon"]), float(record["lat"]),
                  json.dumps(record.get("input", {}), ensure_ascii=False, default=str),
                  record["verdict"], json.dumps(record.get("hits", []), ensure_ascii=False,
                                                default=str),
                  str(record.get("notes") or ""),
                  json.dumps(record.get("conditional_hits", []), ensure_ascii=False,
                             default=str), _accuracy(record))
        with self.transaction() as conn:
            cur = conn.execute("INSERT INTO inspections (at, inspector, site_id, lon, lat, "
                               "input_json, verdict, hits_json, notes, conditional_hits_json, "
                               "gps_accuracy_m) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            new_id = cur.lastrowid
            self._log(conn, user=user, action="create", entity="inspection",
                      entity_id=str(new_id), before=None,
                      after={"site_id": record.get("site_id"), "verdict": record["verdict"],
                             "gps_accuracy_m": _accuracy(record)})
            self._insert_photos(conn, new_id, record.get("site_id"), photos, user=user,
                                at=now)
        return self.inspection(new_id)

    def _insert_photos(self, conn: sqlite3.Connection, inspection_id: int,
                       site_id: str | None, photos: Iterable[Mapping[str, Any]], *,
                       user: str, at: str) -> list[int]:
        """Insert photos inside the caller's transaction, one audit row each (never the
        bytes)."""
        ids = []
        for p in photos:
            row = photo_row(p, inspection_id=inspection_id, site_id=site_id, at=at, user=user)
            cur = conn.execute(f"INSERT INTO inspection_photos ({', '.join(row)}) "
                               f"VALUES ({', '.join('?' * len(row))})", list(row.values()))
            ids.append(int(cur.lastrowid))
            self._log(conn, user=user, action="add_photo", entity="inspection",
                      entity_id=str(inspection_id), before=None,
                      after=photo_audit(row, ids[-1]))
        return ids

    def add_inspection_photos(self, inspection_id: int, photos: Iterable[Mapping[str, Any]],
                              *, user: str, max_count: int | None = None
                              ) -> list[dict[str, Any]]:
        photos = list(photos)
        with self.transaction() as conn:
            rec = conn.execute("SELECT site_id FROM inspections WHERE id = ?",
                               (int(inspection_id),)).fetchone()
            if rec is None:
                raise NotFound(f"no inspection {inspection_id}")
            have = conn.execute("SELECT count(*) FROM inspection_photos WHERE "
                                "inspection_id = ?", (int(inspection_id),)).fetchone()[0]
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
            where.append("inspection_id = ?")
            params.append(int(inspection_id))
        if site_id is not None:
            where.append("site_id = ?")
            params.append(str(site_id))
        tail = f"WHERE {' AND '.join(where)} " if where else ""
        cur = self._conn().execute(f"SELECT {', '.join(PHOTO_META)} FROM inspection_photos "
                                   f"{tail}ORDER BY inspection_id, id", params)
        return [dict(zip(PHOTO_META, r, strict=True)) for r in cur.fetchall()]

    def inspection_photo(self, photo_id: int, *, part: str | None = None) -> dict[str, Any]:
        cols = [*PHOTO_META, *photo_parts(part)]
        row = self._conn().execute(f"SELECT {', '.join(cols)} FROM inspection_photos "
                                   "WHERE id = ?", (int(photo_id),)).fetchone()
        if row is None:
            raise NotFound(f"no photo {photo_id}")
        out = dict(zip(cols, row, strict=True))
        for k in photo_parts(part):
            out[k] = bytes(out[k])
        return out

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
            row["conditional_hits"] = json.loads(row.pop("conditional_hits_json", None) or "[]")
            out.append(row)
        return out
