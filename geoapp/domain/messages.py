"""Messages for people, from one catalogue: a Chinese msgid, named values, any UI language.

Validation below the web layer has no request and so no language. It therefore never writes a
finished sentence, let alone one glued together from two languages; it writes a
:class:`Text`: the catalogue's msgid (the Chinese sentence, with ``%(name)s`` placeholders)
and the values to put in. As a plain string a ``Text`` is the Chinese sentence, which is what
the command line, the logs and the JSON encoder see. ``str()``, f-strings, ``%``, ``format()``
and Jinja give the sentence in the active language: the web layer installs Flask-Babel's
``gettext`` with :func:`use_translator`, and the English catalogue
(``geoapp/translations/en``) holds the English sentence under the same msgid.

Modules import the class as ``_l`` (``from geoapp.domain.messages import Text as _l``), the
keyword ``scripts/i18n.sh`` extracts, so ``_l("文件为空：%(file)s", file=label)`` is both the
message and its catalogue entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Translator = Callable[[str], str]


def _same(msgid: str) -> str:
    return msgid


_translator: Translator = _same


def use_translator(translate: Translator | None) -> Translator:
    """Translate every :class:`Text` with ``translate(msgid)`` from now on (None: Chinese);
    returns the translator used until now."""
    global _translator
    before, _translator = _translator, translate or _same
    return before


def _fill(template: str, params: Mapping[str, Any]) -> str:
    return template % params if params else template


class Text(str):
    """A catalogue message: ``msgid`` (Chinese, ``%(name)s`` placeholders) and its values.

    The string value is the Chinese sentence; ``str(text)`` is the sentence in the language
    of the installed translator. Values may be ``Text`` themselves (a field label): they are
    translated along with the sentence.
    """

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, /, **params: Any) -> Text:
        obj = super().__new__(cls, _fill(msgid, params))
        obj.msgid = msgid
        obj.params = params
        return obj

    def __str__(self) -> str:
        try:
            template = _translator(self.msgid)
        except Exception:  # noqa: BLE001 - a broken catalogue must not hide the message
            template = self.msgid
        try:
            return _fill(template, self.params)
        except (KeyError, ValueError, TypeError):  # a translation with wrong placeholders
            return _fill(self.msgid, self.params)

    def translated(self, translate: Translator) -> str:
        """The sentence through ``translate`` (values that are Text too), whatever the
        installed translator: for a file written in a chosen language."""
        try:
            template = translate(self.msgid)
        except Exception:  # noqa: BLE001 - a broken catalogue must not hide the message
            template = self.msgid
        params = {k: translated(v, translate) if isinstance(v, Text) else v
                  for k, v in self.params.items()}
        try:
            return _fill(template, params)
        except (KeyError, ValueError, TypeError):
            return _fill(self.msgid, params)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"Text({str.__str__(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.msgid, self.params))


def _rebuild(msgid: str, params: dict[str, Any]) -> Text:
    return Text(msgid, **params)


def translated(message: Any, translate: Translator) -> str:
    """Any message (a :class:`Text` or plain text) through ``translate``."""
    if isinstance(message, Text):
        return message.translated(translate)
    return "" if message is None else str(message)
