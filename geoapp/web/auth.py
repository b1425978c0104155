"""Login, logout and role checks for every route.

Every endpoint needs a logged-in user except the login page, /healthz and static files.
``role_required("inspector")`` lets inspectors and admins in; ``viewer`` is any account.

A session names the account and its ``session_version`` at login (Flask-Login's user id is
``"<version>:<username>"``). Logout, a password change or reset, a role change and disabling
move the account's version on, so every older session, in any browser and any worker
process, is refused at its next request: the user loader compares the two, reading the
account through the repository's per-thread cache that any commit invalidates.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache, wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from geoapp.config import trusted_proxies
from geoapp.domain.errors import GeoappError
from geoapp.domain.vocab import Role
from geoapp.services import accounts
from geoapp.web.common import core
from geoapp.web.i18n import role_label

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
PUBLIC_ENDPOINTS = {"auth.login", "main.healthz", "static"}


class User(UserMixin):
    def __init__(self, row: dict) -> None:
        self.username = row["username"]
        self.role = row["role"]
        self.display_name = row.get("display_name") or row["username"]
        self.active_flag = bool(row.get("active", True))
        self.session_version = int(row.get("session_version") or 0)

    def get_id(self) -> str:
        """What the session keeps: the account's session version and its name."""
        return f"{self.session_version}:{self.username}"

    @property
    def is_active(self) -> bool:
        return self.active_flag

    @property
    def role_zh(self) -> str:
        return Role(self.role).zh

    def has_role(self, *roles: str) -> bool:
        return self.role == Role.ADMIN or Role.VIEWER in roles or self.role in roles


@login_manager.user_loader
def _load(user_id: str):
    """The session's account, if it is active and its sessions were not ended since."""
    version, sep, username = user_id.partition(":")
    if not sep or not version.isdigit():
        return None  # a session from before versions: log in again
    row = accounts.session_account(core(), username, int(version))
    return None if row is None else User(row)


@lru_cache(maxsize=8)
def _trusted(text: str):
    return trusted_proxies(text)


def _is_trusted(addr: str, nets) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def client_address() -> str:
    """The client's address: the direct peer, unless the peer is one of TRUSTED_PROXIES;
    then the right-most ``X-Forwarded-For`` entry that is not a trusted proxy (what the
    nearest trusted proxy saw; entries further left are the client's own claims)."""
    peer = request.remote_addr or ""
    nets = _trusted(current_app.config.get("TRUSTED_PROXIES") or "")
    if not nets or not _is_trusted(peer, nets):
        return peer
    chain = [a.strip() for h in request.headers.getlist("X-Forwarded-For")
             for a in h.split(",") if a.strip()]
    for addr in reversed(chain):
        if not _is_trusted(addr, nets):
            return addr[:64]
    return chain[0][:64] if chain else peer


@login_manager.unauthorized_handler
def _unauthorized():
    if request.path.startswith(("/api/", "/ogc/")) or request.path == "/ogc":
        return jsonify({"error": "unauthorized", "message": _("请先登录")}), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def role_required(*roles: str):
    """Decorator: the current user must hold one of ``roles`` (admin always passes)."""

    def deco(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(*roles):
                abort(403, description=_("需要角色：%(roles)s",
                                         roles=", ".join(role_label(r) for r in roles)))
            return fn(*args, **kwargs)

        wrapper.required_roles = roles
        return wrapper

    return deco


def _require_login():
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") \
            and not target.startswith("//"):
        return target
    return url_for("main.overview")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    status = 200
    if request.method == "POST":
        try:
            row = accounts.authenticate(core(), request.form.get("username", ""),
                                        request.form.get("password", ""),
                                        client_address())
        except GeoappError as exc:
            error, status = exc.message, exc.status
        else:
            login_user(User(row), remember=False)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, city=core().city), status


@bp.post("/logout")
def logout():
    """Log out everywhere: every session of the account ends, not only this browser's."""
    if current_user.is_authenticated:
        accounts.end_sessions(core(), current_user.username, by=current_user.username)
    logout_user()
    flash(_("已退出"))
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    """Change one's own password: every other session of the account ends, this browser
    stays logged in under the new session version."""
    error, status = None, 200
    if request.method == "POST":
        f = request.form
        try:
            row = accounts.change_own_password(core(), current_user.username,
                                               f.get("current", ""), f.get("password", ""),
                                               f.get("password2", ""))
        except GeoappError as exc:
            error, status = exc.message, exc.status
        else:
            login_user(User(row), remember=False)
            flash(_("已修改密码，其他设备上的登录已失效"))
            return redirect(url_for("main.overview"))
    return render_template("password.html", error=error, city=core().city), status


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.before_request(_require_login)
    app.register_blueprint(bp)
