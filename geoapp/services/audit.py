"""Audit events that are not writes: exports, downloads and uploads.

Writes (site edits, layer replacements, logins, failed logins) are already logged by the
repository in the same transaction as the change. Reading data out of the system leaves no
row by itself, yet a bureau must be able to answer "who downloaded the ledger last week", so
those events go into the same ``changes`` table, where the admin audit page shows them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geoapp.services import Geoapp

log = logging.getLogger(__name__)

#: Keys that never go into the audit log, whatever a caller passes.
_SECRET_KEYS = ("password", "password_hash", "secret", "secret_key", "token", "csrf_token")


def _clean(details: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if details is None:
        return None
    return {k: v for k, v in details.items() if str(k).lower() not in _SECRET_KEYS}


def record_event(app: Geoapp, user: str, action: str, entity: str,
                 entity_id: str | None = None, details: Mapping[str, Any] | None = None) -> None:
    """Append one audit row (who, when, action, entity, details) in its own transaction.

    Joins the caller's transaction when one is open, so an import and its audit row commit
    or roll back together.
    """
    app.repo.log_event(user=user or "(anonymous)", action=action, entity=entity,
                       entity_id=entity_id, details=_clean(details))
