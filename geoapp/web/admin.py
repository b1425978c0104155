"""Administration pages: user accounts and the audit log (admin role only).

Every change goes through ``services.accounts``, which writes it through the repository, so
each one leaves an audit row (who, when, before, after) without a password hash.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pandas as pd
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from geoapp.domain.errors import InvalidInput
from geoapp.domain.vocab import Role
from geoapp.services import accounts
from geoapp.web.auth import role_required

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

PER_PAGE = 50
AUDIT_FILTERS = ("user", "action", "entity", "entity_id")
#: Keys never shown in the audit page even if a row carried them.
_SECRET_KEYS = ("password", "password_hash")


def _core():
    return current_app.extensions["geoapp"]


def _roles() -> list[dict[str, str]]:
    return [{"value": r.value, "zh": r.zh, "en": r.en} for r in Role]


def _back():
    return redirect(url_for("admin.users"))


@bp.get("/users")
@role_required("admin")
def users():
    return render_template("admin_users.html", users=accounts.list_users(_core()),
                           roles=_roles(), city=_core().city)


@bp.post("/users")
@role_required("admin")
def create_user():
    f = request.form
    row = accounts.create_user(_core(), f.get("username", ""), f.get("password", ""),
                               f.get("role", ""), display_name=f.get("display_name", ""),
                               confirm=f.get("password2", ""), by=current_user.username)
    flash(_("已创建账号 %(name)s", name=row["username"]))
    return _back()


@bp.post("/users/<username>/role")
@role_required("admin")
def change_role(username: str):
    row = accounts.change_role(_core(), username, request.form.get("role", ""),
                               by=current_user.username)
    flash(_("已修改 %(name)s 的角色", name=row["username"]))
    return _back()


@bp.post("/users/<username>/active")
@role_required("admin")
def set_active(username: str):
    value = request.form.get("active", "")
    if value not in ("0", "1"):
        raise InvalidInput("active: expected 0 (disable) or 1 (enable)")
    row = accounts.set_active(_core(), username, value == "1", by=current_user.username)
    flash(_("已启用账号 %(name)s", name=row["username"]) if row["active"]
          else _("已停用账号 %(name)s", name=row["username"]))
    return _back()


@bp.post("/users/<username>/password")
@role_required("admin")
def reset_password(username: str):
    f = request.form
    accounts.reset_password(_core(), username, f.get("password", ""), f.get("password2", ""),
                            by=current_user.username)
    flash(_("已重置 %(name)s 的密码", name=username))
    return _back()


def _page_number(raw: str | None) -> int:
    if raw in (None, ""):
        return 1
    try:
        page = int(raw)
    except ValueError:
        raise InvalidInput(f"page: expected a whole number, got {raw!r}") from None
    if page < 1:
        raise InvalidInput(f"page: must be 1 or more, got {page}")
    return page


def _redact(text: Any) -> str:
    """Audit JSON for display, with any password-like key masked (defence in depth)."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return str(text)

    def walk(v):
        if isinstance(v, dict):
            return {k: ("***" if k in _SECRET_KEYS else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return json.dumps(walk(value), ensure_ascii=False)


def audit_rows(frame: pd.DataFrame, filters: dict[str, str], page: int,
               per_page: int = PER_PAGE) -> tuple[list[dict[str, Any]], int]:
    """One page of the audit log, newest first, after exact-match filters; and the total."""
    df = frame
    for key, value in filters.items():
        if value:
            df = df[df[key].astype(str) == value]
    df = df.sort_values("id", ascending=False)
    total = len(df)
    chunk = df.iloc[(page - 1) * per_page: page * per_page]
    rows = []
    for rec in chunk.to_dict("records"):
        rec["before"] = _redact(rec.get("before"))
        rec["after"] = _redact(rec.get("after"))
        rows.append(rec)
    return rows, total


@bp.get("/audit")
@role_required("admin")
def audit():
    page = _page_number(request.args.get("page"))
    filters = {k: request.args.get(k, "").strip() for k in AUDIT_FILTERS}
    frame = _core().repo.table("changes")
    rows, total = audit_rows(frame, filters, page)
    pages = max(1, math.ceil(total / PER_PAGE))
    if page > pages:
        raise InvalidInput(f"page: only {pages} page(s) match these filters")
    choices = {k: sorted(str(v) for v in frame[k].dropna().unique()) for k in ("action", "entity")}
    args = {k: v for k, v in filters.items() if v}
    return render_template("admin_audit.html", rows=rows, total=total, page=page, pages=pages,
                           filters=filters, choices=choices, args=args, city=_core().city)
