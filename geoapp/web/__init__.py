"""Flask adapter: the app factory. Routes are thin; the core runs without HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from geoapp.config import load_settings


def _asset_dir(name: str) -> str:
    """templates/ and static/ live at the top of the checkout, or inside the installed wheel."""
    pkg = Path(__file__).resolve().parent.parent
    for cand in (pkg / name, pkg.parent / name):
        if cand.is_dir():
            return str(cand)
    return str(pkg.parent / name)


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

    from geoapp.services import open_geoapp

    app.extensions["geoapp"] = open_geoapp(settings)

    from flask_wtf.csrf import CSRFProtect

    from geoapp.web import api, auth, errors, views

    CSRFProtect(app)
    errors.register(app)
    auth.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    return app
