"""Login, logout and role checks for every route.

Every endpoint needs a logged-in user except the login page, /healthz and static files.
``role_required("inspector")`` lets inspectors and admins in; ``viewer`` is any account.

A session names the account and its ``session_version`` at login (Flask-Login's user id is
``"<version>:<username>"``). Logout, a password change or reset, a role change and disabling
move the account's version on, so every older session, in any browser and any worker
process, is refused at its next request: the user loader compares the two, reading the
account through the repository's per-thread cache that any commit invalidates.

**API tokens.** A token is a credential of the machine interfaces only: ``/api/…`` (the JSON
API, its OpenAPI document) and ``/ogc…`` (the OGC service, its pages and its API description)
(:func:`token_path`). There a request with ``Authorization: Bearer <token>`` is logged in by
the token alone (Flask-Login's ``request_loader``, :func:`token_user`): the session cookie,
if any, is ignored, so no cookie can lend such a request an identity, and therefore it needs
no CSRF token. A wrong, revoked or no longer valid token is answered 401 with
``WWW-Authenticate: Bearer``, never a redirect to the login page; an anonymous request there
gets a 401 with the bare ``WWW-Authenticate: Bearer realm="geoapp"`` challenge. Roles are
checked exactly as for a session (``role_required``), so the API and the OGC service take
tokens without doing anything; :func:`bearer_request` tells a route whether the caller came
with one.

Everywhere else (the pages, their form posts, ``/admin/…``, ``/account/…``, ``/login``) the
header is ignored: the request is what its session cookie makes it, with the usual CSRF
check, and anonymous without one (redirected to the login page). A token saved in a GIS
client's project file therefore reads data but can never create an account, change a role
or a password, or post a form.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache, wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
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
        #: The API token the request came with (None for a session).
        self.token_id = row.get("token_id")

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


#: ``Authorization: Bearer <credentials>`` (RFC 6750; the scheme in any letter case).
_BEARER = re.compile(r"bearer(?:\s+(.*))?\Z", re.IGNORECASE | re.DOTALL)


#: Path prefixes of the machine interfaces, where API tokens are credentials (``/ogc``
#: itself too: the OGC landing page).
TOKEN_PREFIXES = ("/api/", "/ogc/")


def token_path(path: str) -> bool:
    """Whether ``path`` is one of the machine interfaces (``/api/…``, ``/ogc…``): where an
    API token is a credential and an anonymous caller gets a 401 instead of the login page."""
    return path.startswith(TOKEN_PREFIXES) or path == "/ogc"


def bearer_token() -> str | None:
    """The credentials of the request's ``Authorization: Bearer`` header ("" when the
    header names the scheme without a token); None for a request without one, and for
    every request outside the machine interfaces (:func:`token_path`), where the header
    is ignored."""
    if "_bearer" not in g:
        m = _BEARER.match(request.headers.get("Authorization", "").strip())
        g._bearer = None if m is None or not token_path(request.path) \
            else (m.group(1) or "").strip()
    return g._bearer


def bearer_request() -> bool:
    """Whether the request came with a bearer token (valid or not) to a machine interface."""
    return bearer_token() is not None


@login_manager.request_loader
def token_user(req) -> User | None:
    """The account of the request's bearer token if the token is valid (see the module's
    docstring); None for a request without one."""
    token = bearer_token()
    if not token:
        return None
    row = accounts.token_account(core(), token)
    return None if row is None else User(row)


def token_refused():
    """401 for a bearer request without a valid token (RFC 6750 ``invalid_token``)."""
    response = jsonify({"error": "invalid_token",
                        "message": _("API 令牌无效、已撤销或已失效")})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="geoapp", error="invalid_token"'
    return response


@login_manager.user_loader
def _load(user_id: str):
    """The session's account, if it is active and its sessions were not ended since. A
    bearer request is never logged in by its cookie (so it needs no CSRF token)."""
    if bearer_request():
        return None
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
    if bearer_request():
        return token_refused()
    if token_path(request.path):
        # RFC 6750 section 3: a request without credentials gets the challenge, no error code
        response = jsonify({"error": "unauthorized", "message": _("请先登录")})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="geoapp"'
        return response
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


def _csrf_unless_bearer():
    """Flask-WTF's CSRF check for every request but a bearer request (whose identity comes
    from the header alone, which another site cannot make a browser send)."""
    if not current_app.config.get("WTF_CSRF_ENABLED", True) or bearer_request():
        return None
    current_app.extensions["csrf"].protect(apply_exemptions=True)
    return None


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
    """Flask-Login, the CSRF check and the login requirement. Call after ``CSRFProtect(app)``:
    its own hook is switched off for :func:`_csrf_unless_bearer`, which runs where it ran."""
    login_manager.init_app(app)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.before_request(_csrf_unless_bearer)
    app.before_request(_require_login)
    app.register_blueprint(bp)
