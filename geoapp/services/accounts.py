"""Accounts: create users, verify logins with rate limiting, change passwords and roles.

Usernames are unique after NFKC normalisation and case-folding (``storage.apptables.
username_key``). A login costs one password-hash verification whether or not the account
exists, and failed logins lock the (account, client address) pair and the address, never
the account for everyone (see docs/security.md "Rate limits on login").

API tokens let GIS clients (QGIS, ArcGIS, GDAL) in with ``Authorization: Bearer …``: made
on the command line, shown once, stored as their SHA-256 only, revocable, and valid only
while their owner is active and holds the role the token was issued for (see
docs/security.md "API tokens").
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
import string
import unicodedata
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from geoapp.domain.errors import GeoappError, InvalidInput, NotFound, StorageUnavailable
from geoapp.domain.messages import Text as _l
from geoapp.domain.vocab import Role
from geoapp.storage.apptables import username_key

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
#: Failed logins allowed for one account from one client address, and from one address
#: across all accounts, within the window.
MAX_FAILS_PER_USER = 5
MAX_FAILS_PER_ADDR = 20
WINDOW = timedelta(minutes=15)


class TooManyAttempts(GeoappError):
    status = 429
    code = "too_many_attempts"


class LoginFailed(GeoappError):
    status = 401
    code = "login_failed"


def parse_role(value: str) -> str:
    try:
        return Role.parse(value).value
    except ValueError as exc:
        raise InvalidInput(f"role: {exc}") from None


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords (case-folded), read once."""
    text = resources.files("geoapp.services").joinpath("common_passwords.txt") \
        .read_text(encoding="utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


_EDGES = string.digits + string.punctuation + string.whitespace


def _repeats_a_short_piece(text: str) -> bool:
    """``passwordpassword``: the whole text is one piece of at most half of it repeated."""
    n = len(text)
    return any(n % k == 0 and text[:k] * (n // k) == text for k in range(1, n // 2 + 1))


#: Least zxcvbn score (0-4) a password needs: 3 means about 10^8 guesses or more.
MIN_GUESS_SCORE = 3
#: Words every deployment's passwords are guessed from besides the username.
_BUREAU_WORDS = ("geoapp", "12369", "admin", "bureau", "huanbao", "环保", "生态环境局")


def _visible(text: str) -> str:
    """The text without invisible format and control characters (a zero-width space in
    ``password\u200b1234`` must not hide a common password)."""
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc"))


def check_password_strength(password: str, username: str = "",
                            context: tuple[str, ...] = ()) -> None:
    """Refuse passwords that are short, common, built from the username or from one
    repeated piece, or easy to guess (zxcvbn, with the username, ``context`` words such as
    the city's names and the bureau's own words as known inputs). Messages say which rule
    failed, Chinese first."""
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(_l("密码太短：至少 %(min)s 个字符", min=MIN_PASSWORD))
    folded = _visible(unicodedata.normalize("NFKC", password).casefold())
    if not password.strip() or len(set(folded)) < 4 or _repeats_a_short_piece(folded):
        raise InvalidInput(_l("密码过于简单：不能只有空格、同一个字符重复或一小段重复"))
    core = folded.strip(_EDGES)
    if folded in common_passwords() or (core and core in common_passwords()):
        raise InvalidInput(_l("密码太常见：它在常用密码列表中"))
    if _made_from_username(folded, username_key(username)):
        raise InvalidInput(_l("密码不能是用户名或由用户名组成"))
    words = [w for w in (username, *context, *_BUREAU_WORDS) if w]
    if zxcvbn(folded[:100], user_inputs=words)["score"] < MIN_GUESS_SCORE:
        raise InvalidInput(_l("密码容易被猜到：避免单词、名字、日期、键盘连续键和重复；"
                              "几个不相关的词加上数字或符号效果很好"))


def _made_from_username(folded: str, name: str) -> bool:
    """The password is the username (or it reversed), or contains it (3+ characters) with
    fewer than 8 other characters, or with only a common password besides."""
    if not name:
        return False
    for piece in (name, name[::-1]):
        if folded == piece:
            return True
        if len(piece) >= 3 and piece in folded:
            rest = folded.replace(piece, "").strip(_EDGES)
            if len(rest) < 8 or rest in common_passwords():
                return True
    return False

def _city_words(app: Geoapp) -> tuple[str, ...]:
    city = app.city
    return tuple(w for w in (city.name, city.name_en, getattr(city, "province", "")) if w)


USERNAME = re.compile(r"^[\w.@-]{1,64}$")


def check_username(username: str) -> str:
    """Letters, digits, ``_ . @ -`` only: names appear in URLs, logs and the audit table.
    Returned NFKC-normalised (fullwidth letters become plain ones)."""
    name = unicodedata.normalize("NFKC", (username or "").strip())
    if not USERNAME.match(name):
        raise InvalidInput(_l("用户名只能包含字母、数字和 _ . @ -（1-64 个字符）"))
    return name


def create_user(app: Geoapp, username: str, password: str, role: str, *,
                display_name: str = "", by: str, confirm: str | None = None) -> dict[str, Any]:
    """Add an account; ``confirm`` (the password typed twice, from forms) must match."""
    name = check_username(username)
    if confirm is not None and confirm != password:
        raise InvalidInput(_l("两次输入的密码不一致"))
    check_password_strength(password, name, _city_words(app))
    return app.repo.create_user(name, generate_password_hash(password),
                                parse_role(role), display_name=display_name.strip(), user=by)


def set_password(app: Geoapp, username: str, password: str, *, by: str) -> dict[str, Any]:
    """A new password (checked against the rules); every session of the account ends."""
    row = _require(app, username)
    check_password_strength(password, row["username"], _city_words(app))
    return app.repo.update_user(row["username"],
                                {"password_hash": generate_password_hash(password)}, user=by)


def change_own_password(app: Geoapp, username: str, current: str, password: str,
                        confirm: str) -> dict[str, Any]:
    """A user replaces their own password, proving the current one first. Every session of
    the account ends (the caller logs the current browser in again)."""
    account = app.repo.user_with_hash(username)
    if account is None or not check_password_hash(account["password_hash"], current or ""):
        raise InvalidInput(_l("当前密码错误"))
    if password != confirm:
        raise InvalidInput(_l("两次输入的密码不一致"))
    if password == current:
        raise InvalidInput(_l("新密码不能与当前密码相同"))
    return set_password(app, account["username"], password, by=account["username"])


def end_sessions(app: Geoapp, username: str, *, by: str, reason: str = "logout") -> int:
    """End every session of the account (logout ends them on every device)."""
    return app.repo.end_sessions(username, user=by, reason=reason)


def session_account(app: Geoapp, username: str, version: int) -> dict[str, Any] | None:
    """The account a session names, if it is active and its sessions were not ended since
    the session began (its ``session_version`` is still ``version``); else None. Every
    request asks: the repository answers from a per-thread cache any commit invalidates."""
    row = app.repo.get_user(username)
    if row is None or not row["active"] or int(row["session_version"]) != int(version):
        return None
    return row


@functools.cache
def _dummy_hash() -> str:
    """A hash made like real ones (same werkzeug method and cost), verified for unknown
    usernames so that a wrong guess costs the same time whether the account exists."""
    return generate_password_hash("geoapp-no-such-account")


def _since_iso() -> str:
    return (datetime.now(UTC) - WINDOW).isoformat(timespec="seconds").replace("+00:00", "Z")


def login_locked(app: Geoapp, key: str, remote_addr: str) -> bool:
    """Whether logins for normalised username ``key`` from ``remote_addr`` are refused now:
    5 failures of that pair since its last success, or 20 failures from the address (any
    accounts), within the window. Other addresses can still log in to the account."""
    since = _since_iso()
    return (app.repo.failed_logins_since(since, username=key, remote_addr=remote_addr,
                                         reset_by_success=True) >= MAX_FAILS_PER_USER
            or app.repo.failed_logins_since(since, remote_addr=remote_addr)
            >= MAX_FAILS_PER_ADDR)


def authenticate(app: Geoapp, username: str, password: str, remote_addr: str) -> dict[str, Any]:
    """The account if the password is right; refuses early when attempts pile up.

    ``username`` is normalised (``Inspector`` and fullwidth ``ｉｎｓｐｅｃｔｏｒ`` are
    ``inspector``), attempts are counted under the normalised name, and one hash is
    verified in every case (a dummy for unknown or empty names), so neither the answer nor
    its timing tells whether an account exists or is disabled.
    """
    key = username_key(username)
    attempt = app.repo.claim_login_attempt(key, remote_addr, _since_iso(),
                                           max_pair=MAX_FAILS_PER_USER,
                                           max_addr=MAX_FAILS_PER_ADDR)
    if attempt is None:
        log.warning("login refused for %r from %s: too many failed attempts", key, remote_addr)
        raise TooManyAttempts(_l("登录失败次数过多，请15分钟后再试"))
    account = app.repo.user_with_hash(key) if key else None
    stored = account["password_hash"] if account else _dummy_hash()
    ok = check_password_hash(stored, password or "")
    ok = bool(ok and account and account["active"])
    app.repo.finish_login_attempt(attempt, key, remote_addr, ok,
                                  account=account["username"] if ok else None)
    if not ok:
        raise LoginFailed(_l("用户名或密码错误"))
    return app.repo.get_user(account["username"])


class LastAdmin(GeoappError):
    """A change would leave nobody able to administer accounts."""

    status = 409
    code = "last_admin"


def list_users(app: Geoapp) -> list[dict[str, Any]]:
    """Every account without its hash, by username."""
    return app.repo.list_users()


def _require(app: Geoapp, username: str) -> dict[str, Any]:
    row = app.repo.get_user(username)
    if row is None:
        raise NotFound(f"no user {username!r}")
    return row


def _guard_last_admin(app: Geoapp, username: str, *, role: str, active: bool) -> None:
    """Refuse a change that would leave no active admin (an admin demoting or disabling
    themself included): nobody could then manage accounts without the command line."""
    if role == Role.ADMIN.value and active:
        return
    others = [u for u in app.repo.list_users()
              if u["username"] != username and u["role"] == Role.ADMIN.value and u["active"]]
    target = _require(app, username)
    if target["role"] == Role.ADMIN.value and target["active"] and not others:
        raise LastAdmin(_l("不能停用或降级最后一个有效的管理员"))


def change_role(app: Geoapp, username: str, role: str, *, by: str) -> dict[str, Any]:
    """Give an account another role (audited with before and after)."""
    new_role = parse_role(role)
    target = _require(app, username)
    if target["role"] == new_role:
        return target
    _guard_last_admin(app, username, role=new_role, active=target["active"])
    log.info("%s changes role of %s: %s -> %s", by, username, target["role"], new_role)
    return app.repo.update_user(username, {"role": new_role}, user=by)


def set_active(app: Geoapp, username: str, active: bool, *, by: str) -> dict[str, Any]:
    """Disable or enable an account; a disabled account cannot log in (audited)."""
    target = _require(app, username)
    if target["active"] == bool(active):
        return target
    _guard_last_admin(app, username, role=target["role"], active=bool(active))
    log.info("%s %s account %s", by, "enables" if active else "disables", username)
    return app.repo.update_user(username, {"active": int(bool(active))}, user=by)


def set_display_name(app: Geoapp, username: str, display_name: str, *,
                     by: str) -> dict[str, Any]:
    _require(app, username)
    return app.repo.update_user(username, {"display_name": display_name.strip()}, user=by)


def reset_password(app: Geoapp, username: str, password: str, confirm: str, *,
                   by: str) -> dict[str, Any]:
    """An admin sets a new password, typed twice; the audit log notes the change, not the hash."""
    _require(app, username)
    if password != confirm:
        raise InvalidInput(_l("两次输入的密码不一致"))
    return set_password(app, username, password, by=by)


# ---------------------------------------------------------------------------- API tokens
#: Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "geoapp_"
#: Random bytes of a token (256 bits, 43 URL-safe characters after the prefix).
TOKEN_BYTES = 32
#: A token's last use is written at most this often: a write on every request would make
#: readers queue for the write lock and empty every process's read cache.
TOKEN_USE_STEP = timedelta(minutes=1)
MAX_TOKEN_NAME = 100
#: What a token row's ``state`` says (``token_state``).
TOKEN_STATES = ("active", "revoked", "owner_disabled", "role_changed", "owner_deleted")


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, hex. A token is 256 random bits, so no
    dictionary or brute force can find it from the hash, and a slow salted hash (as for
    passwords) would only cost every request a key derivation; an unsalted hash can be
    looked up by an index."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_state(row: dict[str, Any]) -> str:
    """Whether a token row (as the repository lists it) is usable, or why not."""
    if row.get("revoked_at"):
        return "revoked"
    if row.get("username") is None:
        return "owner_deleted"
    if not row.get("owner_active"):
        return "owner_disabled"
    if row.get("owner_role") != row.get("role"):
        return "role_changed"
    return "active"


def _token_name(name: str | None) -> str:
    text = _visible(unicodedata.normalize("NFKC", name or "")).strip()
    if len(text) > MAX_TOKEN_NAME:
        raise InvalidInput(_l("令牌名称过长：最多 %(max)s 个字符", max=MAX_TOKEN_NAME))
    return text


def issue_token(app: Geoapp, username: str, name: str = "", *,
                by: str) -> tuple[str, dict[str, Any]]:
    """A new API token for an active account: the token itself (to be shown once, never
    stored) and its stored row. It carries the account's current role (audited)."""
    owner = _require(app, username)
    if not owner["active"]:
        raise InvalidInput(_l("账号 %(name)s 已停用，不能为其创建令牌", name=owner["username"]))
    label = _token_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row = app.repo.create_token(owner["username"], token_hash(token), name=label, user=by)
    log.info("%s issues API token %s for %s (%s)", by, row["id"], owner["username"],
             owner["role"])
    return token, {**row, "state": token_state(row)}


def list_tokens(app: Geoapp, username: str | None = None) -> list[dict[str, Any]]:
    """Every token, or one account's, oldest first, each with its ``state``; never a hash."""
    return [{**row, "state": token_state(row)} for row in app.repo.tokens(username)]


def revoke_token(app: Geoapp, token_id: int, *, by: str) -> dict[str, Any]:
    """Revoke a token at once (audited); revoking a revoked one changes nothing."""
    row = app.repo.revoke_token(int(token_id), user=by)
    return {**row, "state": token_state(row)}


def _is_token(text: str) -> bool:
    return (text.startswith(TOKEN_PREFIX)
            and len(text) <= len(TOKEN_PREFIX) + 2 * TOKEN_BYTES
            and text.isascii() and text.isprintable())


def token_account(app: Geoapp, token: str) -> dict[str, Any] | None:
    """The account a bearer token stands for (its public fields and ``token_id``), or None
    when the token is unknown, revoked, or its owner gone, disabled or given another role
    since it was issued. Every token request asks: two cached lookups; the last use is
    written at most once a minute (a failed write does not refuse the request)."""
    if not _is_token(token or ""):
        return None
    row = app.repo.token_by_hash(token_hash(token))
    if row is None or token_state(row) != "active":
        return None
    user = app.repo.get_user(row["username"])
    if (user is None or user["id"] != row["user_id"] or not user["active"]
            or user["role"] != row["role"]):
        return None
    now = datetime.now(UTC)
    last = row.get("last_used_at")
    if last is None or datetime.fromisoformat(last) <= now - TOKEN_USE_STEP:
        try:
            app.repo.token_used(row["id"])
        except StorageUnavailable as exc:
            log.warning("last use of API token %s not recorded: %s", row["id"], exc)
    return {**user, "token_id": row["id"]}
