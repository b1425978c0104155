"""Domain errors: each carries a user-facing message and the HTTP status it maps to.

The web layer renders them as JSON under /api and as an HTML page elsewhere; the CLI prints
the message and exits with status 2.
"""

from __future__ import annotations


class GeoappError(Exception):
    """Base class for errors a user can act on."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        out: dict = {"error": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        return out


class InvalidInput(GeoappError):
    """A parameter or form value is malformed or out of range."""

    code = "invalid_input"


class CoordinateError(InvalidInput):
    """A coordinate is out of range, outside China, swapped, NaN or in the wrong system."""

    code = "invalid_coordinates"


class ValidationFailed(InvalidInput):
    """A file or record failed validation; ``details`` holds the row-by-row report."""

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
