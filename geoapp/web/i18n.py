"""UI language: Simplified Chinese by default, English by a switch (Flask-Babel).

Message ids are the Chinese text; ``geoapp/translations/en`` holds the English catalog.
The choice comes from ``?lang=zh|en`` (remembered in the session), else the LANGUAGE setting.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, request, session
from flask_babel import Babel

LANGUAGES = ("zh", "en")
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


def select_locale() -> str:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked
        return asked
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return current_app.config.get("LANGUAGE", "zh")


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = "zh"
    Babel(app, locale_selector=select_locale)

    @app.context_processor
    def _lang():
        from flask_babel import get_locale

        return {"current_lang": str(get_locale() or "zh")}
