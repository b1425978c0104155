"""Accounts: create users, verify logins with rate limiting, change passwords and roles."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from werkzeug.security import check_password_hash, generate_password_hash

from geoapp.domain.errors import GeoappError, InvalidInput, NotFound
from geoapp.domain.vocab import Role

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

MIN_PASSWORD = 8
#: Failed logins allowed per username, and per client address, within the window.
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


def check_password_strength(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters")


USERNAME = re.compile(r"^[\w.@-]{1,64}$")


def check_username(username: str) -> str:
    """Letters, digits, ``_ . @ -`` only: names appear in URLs, logs and the audit table."""
    name = (username or "").strip()
    if not USERNAME.match(name):
        raise InvalidInput("用户名只能包含字母、数字和 _ . @ - Username may hold letters, "
                           "digits and _ . @ - only (1-64 characters)")
    return name


def create_user(app: Geoapp, username: str, password: str, role: str, *,
                display_name: str = "", by: str, confirm: str | None = None) -> dict[str, Any]:
    """Add an account; ``confirm`` (the password typed twice, from forms) must match."""
    name = check_username(username)
    if confirm is not None and confirm != password:
        raise InvalidInput("两次输入的密码不一致 The two passwords differ")
    check_password_strength(password)
    return app.repo.create_user(name, generate_password_hash(password),
                                parse_role(role), display_name=display_name.strip(), user=by)


def set_password(app: Geoapp, username: str, password: str, *, by: str) -> dict[str, Any]:
    check_password_strength(password)
    return app.repo.update_user(username, {"password_hash": generate_password_hash(password)},
                                user=by)


def authenticate(app: Geoapp, username: str, password: str, remote_addr: str) -> dict[str, Any]:
    """The account if the password is right; refuses early when attempts pile up."""
    name = (username or "").strip()
    since = (datetime.now(UTC) - WINDOW).isoformat(timespec="seconds").replace("+00:00", "Z")
    if (app.repo.failed_logins_since(since, username=name) >= MAX_FAILS_PER_USER
            or app.repo.failed_logins_since(since, remote_addr=remote_addr)
            >= MAX_FAILS_PER_ADDR):
        log.warning("login refused for %r from %s: too many failed attempts", name, remote_addr)
        raise TooManyAttempts("登录失败次数过多，请15分钟后再试 Too many failed attempts; "
                              "try again in 15 minutes")
    account = app.repo.user_with_hash(name) if name else None
    ok = bool(account and account["active"] and check_password_hash(account["password_hash"],
                                                                     password or ""))
    app.repo.record_login(name, remote_addr, ok)
    if not ok:
        raise LoginFailed("用户名或密码错误 Wrong username or password")
    return app.repo.get_user(name)


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
        raise LastAdmin("不能停用或降级最后一个有效的管理员 The last active administrator "
                        "cannot be disabled or demoted")


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
        raise InvalidInput("两次输入的密码不一致 The two passwords differ")
    return set_password(app, username, password, by=by)
