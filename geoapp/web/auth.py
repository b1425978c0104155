"""Login, logout and role checks for every route.

Every endpoint needs a logged-in user except the login page, /healthz and static files.
``role_required("inspector")`` lets inspectors and admins in; ``viewer`` is any account.
"""

from __future__ import annotations

from functools import wraps
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
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from geoapp.domain.errors import GeoappError
from geoapp.domain.vocab import Role
from geoapp.services import accounts

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
PUBLIC_ENDPOINTS = {"auth.login", "main.healthz", "static"}


class User(UserMixin):
    def __init__(self, row: dict) -> None:
        self.username = row["username"]
        self.role = row["role"]
        self.display_name = row.get("display_name") or row["username"]
        self.active_flag = bool(row.get("active", True))

    def get_id(self) -> str:
        return self.username

    @property
    def is_active(self) -> bool:
        return self.active_flag

    @property
    def role_zh(self) -> str:
        return Role(self.role).zh

    def has_role(self, *roles: str) -> bool:
        return self.role == Role.ADMIN or Role.VIEWER in roles or self.role in roles


def _core():
    return current_app.extensions["geoapp"]


@login_manager.user_loader
def _load(username: str):
    row = _core().repo.get_user(username)
    return User(row) if row and row["active"] else None


@login_manager.unauthorized_handler
def _unauthorized():
    if request.path.startswith("/api/"):
        return jsonify({"error": "unauthorized", "message": "请先登录 Log in first"}), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def role_required(*roles: str):
    """Decorator: the current user must hold one of ``roles`` (admin always passes)."""

    def deco(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(*roles):
                abort(403, description=f"需要角色 Requires role: {', '.join(roles)}")
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
            row = accounts.authenticate(_core(), request.form.get("username", ""),
                                        request.form.get("password", ""),
                                        request.remote_addr or "")
        except GeoappError as exc:
            error, status = exc.message, exc.status
        else:
            login_user(User(row), remember=False)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, city=_core().city), status


@bp.post("/logout")
def logout():
    logout_user()
    flash("已退出 Logged out")
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.before_request(_require_login)
    app.register_blueprint(bp)
