"""The audit log: events that are not writes (exports, downloads, uploads), and the pages of
the log the admin reads.

Writes (site edits, layer replacements, logins, failed logins) are already logged by the
repository in the same transaction as the change. Reading data out of the system leaves no
row by itself, yet a bureau must be able to answer "who downloaded the ledger last week", so
those events go into the same ``changes`` table, where the admin audit page shows them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geoapp.domain.errors import InvalidInput
from geoapp.domain.messages import Text as _l
from geoapp.services.core import Geoapp
from geoapp.storage.base import AUDIT_FILTERS

log = logging.getLogger(__name__)

#: Keys that never go into the audit log, whatever a caller passes.
_SECRET_KEYS = ("password", "password_hash", "secret", "secret_key", "token", "csrf_token")
#: Keys never shown on the audit page even if a row carried them (defence in depth).
_SHOWN_MASKED = ("password", "password_hash")
#: Audit rows per page.
PER_PAGE = 50
#: The columns the audit page offers as choice lists.
CHOICE_COLUMNS = ("action", "entity")


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


@dataclass
class AuditPage:
    """One page of the audit log, newest first, as the admin page shows it."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    filters: dict[str, str]
    #: Every value of the ``CHOICE_COLUMNS`` in the whole log, for the filter form.
    choices: dict[str, list[str]] = field(default_factory=dict)


MAX_PAGE = 1_000_000


def page_number(raw: str | None) -> int:
    """A page number from a query string: 1 when absent; InvalidInput unless a whole number
    from 1 to MAX_PAGE (a larger one cannot be an offset the store can take)."""
    if raw in (None, ""):
        return 1
    try:
        page = int(raw)
    except ValueError:
        raise InvalidInput(_l("页码须为整数：%(value)s", value=str(raw)[:40])) from None
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput(_l("页码须在 1 到 %(max)s 之间", max=MAX_PAGE))
    return page


def redact(text: Any) -> str:
    """Audit JSON for display, with any password-like key masked."""
    if text is None:
        return ""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return str(text)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("***" if k in _SHOWN_MASKED else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return json.dumps(walk(value), ensure_ascii=False)


def audit_page(app: Geoapp, filters: Mapping[str, str | None], page: int = 1,
               per_page: int = PER_PAGE) -> AuditPage:
    """Page ``page`` of the audit rows matching every given filter exactly (``user``,
    ``action``, ``entity``, ``entity_id``; blanks ignored), newest first; InvalidInput for a
    page past the last. The store filters, counts and pages (LIMIT/OFFSET)."""
    wanted = {k: str(filters.get(k) or "").strip() for k in AUDIT_FILTERS}
    rows, total = app.repo.audit_page({k: v for k, v in wanted.items() if v},
                                      offset=(page - 1) * per_page, limit=per_page)
    pages = max(1, math.ceil(total / per_page))
    if page > pages:
        raise InvalidInput(_l("符合条件的记录只有 %(pages)s 页", pages=pages))
    shown = [{**r, "entity_id": r.get("entity_id") or "", "before": redact(r.get("before")),
              "after": redact(r.get("after"))} for r in rows]
    return AuditPage(rows=shown, total=total, page=page, pages=pages, filters=wanted,
                     choices={c: app.repo.audit_values(c) for c in CHOICE_COLUMNS})
