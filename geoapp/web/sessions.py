"""Flask's signed-cookie sessions, each distinct cookie verified once per process.

Every request of a logged-in user carries the same session cookie until the session changes,
and Flask checks its signature anew each time (a fresh serializer, a key derivation and two
HMACs, base64, zlib, JSON: about a third of a small API request's CPU). This interface keeps
Flask's cookie format, signing and expiry rules but remembers what a verified cookie decoded
to, so an unchanged cookie costs a dictionary lookup and an age check. Only cookies whose
signature verified are remembered, the memory is bounded, and a new secret key starts afresh.

A verified cookie is not yet a valid login: the user loader (``web/auth.py``) also compares
the session's ``session_version`` with the account's, so a session ended by logout, a
password change or reset, a role change or disabling is refused even while its cookie is
remembered here.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

#: Verified cookies remembered per process before the memory starts again.
MAX_REMEMBERED = 4096


class VerifiedCookieSessionInterface(SecureCookieSessionInterface):
    """``SecureCookieSessionInterface`` with the serializer built once and verified cookies
    remembered (see the module docstring)."""

    def __init__(self) -> None:
        self._keys: tuple | None = None
        self._serializer: URLSafeTimedSerializer | None = None
        self._verified: dict[str, tuple[Any, float]] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if keys != self._keys or self._serializer is None:
            self._serializer = super().get_signing_serializer(app)
            self._verified = {}
            self._keys = keys
        return self._serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        verified = self._verified
        found = verified.get(value)
        if found is None:
            try:
                data, signed = serializer.loads(value, return_timestamp=True)
            except BadSignature:
                return self.session_class()
            if len(verified) >= MAX_REMEMBERED:
                verified.clear()
            found = verified[value] = (data, signed.timestamp())
        data, signed_at = found
        age = time.time() - signed_at
        max_age = app.permanent_session_lifetime.total_seconds()
        if age < 0 or age > max_age:  # itsdangerous' own expiry rule
            verified.pop(value, None)
            return self.session_class()
        return self.session_class(copy.deepcopy(data))
