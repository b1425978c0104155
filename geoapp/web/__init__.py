"""Flask adapter: the app factory. Routes are thin; the core runs without HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect

from geoapp.config import load_settings
from geoapp.services import layers as layer_service
from geoapp.services import open_geoapp
from geoapp.web import (
    admin,
    api,
    auth,
    check,
    documents,
    emergency,
    errors,
    i18n,
    interviews,
    layers,
    ledger,
    limits,
    ogc,
    overdue,
    parcels,
    programme,
    relocation,
    security,
    sites,
    tiles,
    units,
    views,
    weekly,
    workshops,
)
from geoapp.web.i18n import current_language
from geoapp.web.sessions import VerifiedCookieSessionInterface


def _asset_dir(name: str) -> str:
    """templates/ and static/ live at the top of the checkout, or inside the installed wheel."""
    pkg = Path(__file__).resolve().parent.parent
    for cand in (pkg / name, pkg.parent / name):
        if cand.is_dir():
            return str(cand)
    return str(pkg.parent / name)


#: Header navigation: (endpoint, Chinese label, English label, least role).
NAV_ITEMS = (
    ("main.overview", "一张图", "Overview", "viewer"),
    ("relocation.index", "搬迁地图", "Relocation", "viewer"),
    ("check.index", "现场核查", "Site check", "viewer"),
    ("parcels.index", "地块选址", "Parcel siting", "viewer"),
    ("weekly.index", "周报", "Weekly bulletin", "viewer"),
    ("interviews.index", "约谈名单", "Interviews", "viewer"),
    ("overdue.index", "逾期督办", "Overdue", "viewer"),
    ("emergency.index", "应急减排", "Emergency list", "viewer"),
    ("programme.index", "百企退城", "Programme", "viewer"),
    ("workshops.index", "散乱污", "Workshops", "viewer"),
    ("units.index", "三线一单", "Control units", "viewer"),
    ("ledger.index", "台账", "Ledger", "planner"),
    ("layers.index", "图层管理", "Layers", "planner"),
    ("admin.users", "用户管理", "Users", "admin"),
    ("admin.audit", "操作日志", "Audit log", "admin"),
)


def _navigation() -> dict:
    """Links for the header: only pages that exist and that the user may open.

    ``label`` is in the UI language (the English column in English mode), so the header
    never mixes languages.
    """
    english = current_language() == "en"
    items = []
    if current_user.is_authenticated:
        for endpoint, zh, en, role in NAV_ITEMS:
            if endpoint in current_app.view_functions and current_user.has_role(role):
                items.append({"endpoint": endpoint, "zh": zh, "en": en,
                              "label": en if english else zh})
    return {"nav_items": items}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the web app. ``config`` overrides settings (see geoapp.config.SETTINGS)."""
    app = Flask("geoapp", template_folder=_asset_dir("templates"),
                static_folder=_asset_dir("static"), instance_relative_config=True)
    instance = Path((config or {}).get("INSTANCE_PATH") or app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    settings = load_settings(instance, overrides=config)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_UPLOAD_MB"] * 1024 * 1024
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
                      WTF_CSRF_TIME_LIMIT=None)
    logging.getLogger("geoapp").setLevel(settings["LOG_LEVEL"])
    layer_service.prepare_uploads()  # GDAL's remote and code-running features off
    app.session_interface = VerifiedCookieSessionInterface()
    app.extensions["geoapp"] = open_geoapp(settings)
    CSRFProtect(app)
    i18n.init_app(app)
    errors.register(app)
    auth.init_app(app)
    for module in (views, api, relocation, check, parcels, sites, weekly, programme, workshops,
                   ledger, layers, admin, units, ogc, tiles, overdue, interviews,
                   emergency, documents):
        app.register_blueprint(module.bp)
    app.context_processor(_navigation)
    security.init_app(app)
    limits.init_app(app)
    return app
