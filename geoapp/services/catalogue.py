"""Catalogue messages in a chosen language outside a web request (files written in the
language the user asked for, e.g. the flagged CSV with ``--lang en``).

Pages get their language from Flask-Babel; a file has its own ``lang`` option, so this reads
the same compiled catalogue (``geoapp/translations``) directly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations

from geoapp.domain.messages import translated

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
#: The catalogue's source language: its msgids.
SOURCE_LANGUAGE = "zh"


@lru_cache(maxsize=8)
def _catalogue(lang: str) -> NullTranslations:
    return Translations.load(str(TRANSLATIONS), [lang])


def in_language(message: Any, lang: str) -> str:
    """``message`` (a catalogue Text or plain text) as a string in ``lang`` (zh, en)."""
    if lang == SOURCE_LANGUAGE:
        return translated(message, lambda msgid: msgid)
    return translated(message, _catalogue(lang).gettext)
