"""Accounts: create users, verify logins with rate limiting, change passwords and roles."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from werkzeug.security import check_password_hash, generate_password_hash

from geoapp.domain.errors import GeoappError, InvalidInput
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


def create_user(app: Geoapp, username: str, password: str, role: str, *,
                display_name: str = "", by: str) -> dict[str, Any]:
    check_password_strength(password)
    return app.repo.create_user(username.strip(), generate_password_hash(password),
                                parse_role(role), display_name=display_name, user=by)


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
