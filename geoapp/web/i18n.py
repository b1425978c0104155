"""UI language: Simplified Chinese by default, English by a switch (Flask-Babel).

Message ids are the Chinese text; ``geoapp/translations/en`` holds the English catalog
(``scripts/i18n.sh`` extracts, updates and compiles it). The choice comes from
``?lang=zh|en`` (remembered in the session), else the LANGUAGE setting.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, current_app, request, session
from flask_babel import Babel, get_locale, gettext

from geoapp.domain.messages import use_translator
from geoapp.domain.vocab import Role

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en")
#: How each language names itself in the header switch (never translated).
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


def select_locale() -> str:
    """``?lang=`` wins and is remembered; then the session; then the configured default."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked
        return asked
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return current_app.config.get("LANGUAGE", "zh")


def current_language() -> str:
    """The active UI language code ("zh" or "en"), outside a request the default."""
    try:
        loc = get_locale()
    except RuntimeError:
        return "zh"
    code = loc.language if loc is not None else "zh"
    return code if code in LANGUAGES else "zh"


#: Query values longer than this are not carried into the language link (no page echoes a
#: huge parameter back; no real filter or coordinate is this long).
MAX_KEPT_VALUE = 200


def lang_url(code: str) -> str:
    """The current page with the same query string, switched to language ``code``.

    Keeping the query string matters: a planner's filtered relocation view or an inspector's
    check must survive the switch.
    """
    pairs = [(k, v) for k, values in request.args.lists() if k != "lang" for v in values
             if len(v) <= MAX_KEPT_VALUE]
    pairs.append(("lang", code))
    return f"{request.path}?{urlencode(pairs)}"


def role_label(role: str) -> str:
    """A role's name in the UI language (the vocabulary carries both words)."""
    try:
        parsed = Role.parse(role)
    except ValueError:
        return str(role)
    return parsed.en if current_language() == "en" else parsed.zh


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = "zh"
    Babel(app, locale_selector=select_locale)
    use_translator(gettext)  # catalogue messages of the layers below speak the page's language
    app.jinja_env.globals.update(lang_url=lang_url, role_label=role_label,
                                 LANGUAGE_NAMES=LANGUAGE_NAMES,
                                 LANGUAGES=LANGUAGES)

    @app.context_processor
    def _lang():
        lang = current_language()
        return {"current_lang": lang, "html_lang": "zh-CN" if lang == "zh" else "en"}
