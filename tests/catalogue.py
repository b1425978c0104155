"""Catalogue messages as a chosen language shows them, outside a request, so a test can read
a message's meaning in English (and know the English catalogue has it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from geoapp.services.catalogue import in_language

HAN = re.compile(r"[\u3400-\u9fff]")


def english(message: object) -> str:
    """``message`` (a catalogue Text, or anything printable) as the English page shows it."""
    return in_language(message, "en")


def has_chinese(text: str) -> bool:
    return bool(HAN.search(text))


@contextmanager
def raises_english(exc_type: type[BaseException], pattern: str) -> Iterator[Any]:
    """``pytest.raises(exc_type)`` whose message, read in English, matches ``pattern``."""
    with pytest.raises(exc_type) as info:
        yield info
    message = getattr(info.value, "message", info.value)
    text = english(message)
    assert re.search(pattern, text), f"{pattern!r} not found in {text!r}"
