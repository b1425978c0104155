"""Administration pages: user accounts, their API tokens and the audit log (admin role only).

Every change goes through ``services.accounts``, which writes it through the repository, so
each one leaves an audit row (who, when, before, after) without a password hash.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from geoapp.domain.errors import GeoappError, InvalidInput
from geoapp.domain.vocab import Role
from geoapp.services import accounts
from geoapp.services import audit as audit_log
from geoapp.web.auth import role_required
from geoapp.web.common import core

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _roles() -> list[dict[str, str]]:
    return [{"value": r.value, "zh": r.zh, "en": r.en} for r in Role]


def _back():
    return redirect(url_for("admin.users"))


def _users_page(form_error: dict[str, Any] | None = None):
    return render_template("admin_users.html", users=accounts.list_users(core()),
                           tokens=accounts.list_tokens(core()), roles=_roles(),
                           city=core().city, form_error=form_error)


def _refused(exc: GeoappError, form: str, user: str = "", kept: dict[str, str] | None = None):
    """The users page again with the refusal beside the form that sent it (never the
    passwords typed); a server fault stays an error page."""
    if exc.status >= 500:
        raise exc
    return _users_page({"form": form, "user": user, "message": exc.message,
                        "kept": kept or {}}), exc.status


@bp.get("/users")
@role_required("admin")
def users():
    return _users_page()


@bp.post("/users")
@role_required("admin")
def create_user():
    f = request.form
    try:
        row = accounts.create_user(core(), f.get("username", ""), f.get("password", ""),
                                   f.get("role", ""), display_name=f.get("display_name", ""),
                                   confirm=f.get("password2", ""), by=current_user.username)
    except GeoappError as exc:
        return _refused(exc, "create-user", kept={k: f.get(k, "")[:100] for k in
                                                  ("username", "display_name", "role")})
    flash(_("已创建账号 %(name)s", name=row["username"]))
    return _back()


@bp.post("/users/<username>/role")
@role_required("admin")
def change_role(username: str):
    try:
        row = accounts.change_role(core(), username, request.form.get("role", ""),
                                   by=current_user.username)
    except GeoappError as exc:
        return _refused(exc, f"role-{username}", username)
    flash(_("已修改 %(name)s 的角色", name=row["username"]))
    return _back()


@bp.post("/users/<username>/active")
@role_required("admin")
def set_active(username: str):
    value = request.form.get("active", "")
    try:
        if value not in ("0", "1"):
            raise InvalidInput("active: expected 0 (disable) or 1 (enable)")
        row = accounts.set_active(core(), username, value == "1", by=current_user.username)
    except GeoappError as exc:
        return _refused(exc, f"active-{username}", username)
    flash(_("已启用账号 %(name)s", name=row["username"]) if row["active"]
          else _("已停用账号 %(name)s", name=row["username"]))
    return _back()


@bp.post("/users/<username>/password")
@role_required("admin")
def reset_password(username: str):
    f = request.form
    try:
        accounts.reset_password(core(), username, f.get("password", ""), f.get("password2", ""),
                                by=current_user.username)
    except GeoappError as exc:
        return _refused(exc, f"password-{username}", username)
    flash(_("已重置 %(name)s 的密码", name=username))
    return _back()


@bp.post("/tokens/<int:token_id>/revoke")
@role_required("admin")
def revoke_token(token_id: int):
    """Revoke an API token: it is refused from the next request on (tokens are made with
    ``geoapp users token``)."""
    try:
        row = accounts.revoke_token(core(), token_id, by=current_user.username)
    except GeoappError as exc:
        return _refused(exc, f"token-{token_id}")
    flash(_("已撤销令牌 %(id)s（%(name)s）", id=row["id"], name=row["name"] or "-"))
    return redirect(url_for("admin.users", _anchor="tokens"))


@bp.get("/audit")
@role_required("admin")
def audit():
    """The audit log, newest first, filtered by user, action, entity and entity id."""
    page = audit_log.page_number(request.args.get("page"))
    shown = audit_log.audit_page(core(), request.args, page)
    args = {k: v for k, v in shown.filters.items() if v}
    return render_template("admin_audit.html", rows=shown.rows, total=shown.total,
                           page=shown.page, pages=shown.pages, filters=shown.filters,
                           choices=shown.choices, args=args, city=core().city)
