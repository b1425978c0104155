"""Domain errors: each carries a user-facing message and the HTTP status it maps to.

The web layer renders them as JSON under /api and as an HTML page elsewhere; the CLI prints
the message and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from geoapp.domain.messages import Text as _l


@dataclass(frozen=True, kw_only=True)
class Problem(Mapping[str, Any]):
    """One thing wrong in a file, a record or a form: where (file, row, column, feature,
    layer, form field), the offending value, and why (a catalogue message).

    Every reader and form reports its problems as a list of these in
    ``ValidationFailed.details``. Fields that do not apply stay None and are left out of
    :meth:`to_dict`, the JSON form. It also reads like the dict it replaces
    (``p["row"]``, ``p.get("feature")``), for templates and callers that index it.
    """

    file: str | None = None
    row: int | str | None = None
    column: str | None = None
    value: Any = None
    feature: int | None = None
    id: str | None = None
    layer: str | None = None
    field: str | None = None
    label: str | None = None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready values, messages and labels in the active language."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, str):
                v = str(v)
            elif hasattr(v, "item") and not isinstance(v, (list, tuple, dict)):
                v = v.item()  # a numpy scalar
            out[f.name] = v
        return out

    def __str__(self) -> str:
        """One readable line: where, then why (in the active language)."""
        where = [str(v) for v in (self.file, self.layer) if v]
        if self.row not in (None, ""):
            where.append(str(_l("第 %(row)s 行", row=self.row)))
        if self.feature is not None:
            where.append(str(_l("要素 %(feature)s", feature=self.feature)))
        where += [str(v) for v in (self.id, self.label or self.column) if v]
        return f"{' '.join(where)}：{self.message}" if where else str(self.message)

    def __getitem__(self, key: str) -> Any:
        if key not in self._names() or getattr(self, key) is None:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return (n for n in self._names() if getattr(self, n) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def jsonable_details(details: object) -> object:
    """Details for JSON: problems as dicts, catalogue messages as text in the active
    language (also inside lists and dicts), everything else as is."""
    if isinstance(details, Problem):
        return details.to_dict()
    if isinstance(details, str):
        return str(details)
    if isinstance(details, (list, tuple)):
        return [jsonable_details(d) for d in details]
    if isinstance(details, dict):
        return {k: jsonable_details(v) for k, v in details.items()}
    return details


class GeoappError(Exception):
    """Base class for errors a user can act on."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        """The error for JSON: code, message in the active language, details as plain data."""
        out: dict = {"error": self.code, "message": str(self.message)}
        if self.details is not None:
            out["details"] = jsonable_details(self.details)
        return out


class InvalidInput(GeoappError):
    """A parameter or form value is malformed or out of range."""

    code = "invalid_input"


class CoordinateError(InvalidInput):
    """A coordinate is out of range, outside China, swapped, NaN or in the wrong system."""

    code = "invalid_coordinates"


class ValidationFailed(InvalidInput):
    """A file or record failed validation; ``details`` holds the report, a list of
    :class:`Problem` (every problem found, not only the first)."""

    code = "validation_failed"


class NotFound(GeoappError):
    status = 404
    code = "not_found"


class Conflict(GeoappError):
    """A write would overwrite a change the user has not seen."""

    status = 409
    code = "conflict"


class ConfigError(GeoappError):
    """The configuration, city file or rules file is invalid."""

    status = 500
    code = "config_error"


class StorageUnavailable(GeoappError):
    """The database cannot be written or read right now: disk full, read-only, I/O error, busy.

    Nothing was saved (the transaction was rolled back); the request may succeed later, once
    an operator has freed space or fixed permissions, hence 503 rather than a 4xx or 500.
    """

    status = 503
    code = "storage_unavailable"
