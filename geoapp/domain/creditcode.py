"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

Every enterprise in the ledger (台账) carries one, and typing errors in it are common when the
ledger is kept by hand; the final check character catches almost all of them, so imports and
forms validate it instead of storing a code that can never be matched against the registry.

Layout of the 18 characters::

    9 1 410802 12345678X Y
    | | |      |         +-- check character (GB 32100-2015), over the first 17
    | | |      +------------ organisation code (GB 11714-1997): 8 characters + its own check
    | | +------------------- 6-digit administrative-division code of the registering authority
    | +--------------------- type of entity within that authority (1 = enterprise, ...)
    +----------------------- registration-authority code (9 = market regulation / 工商)

Only the final check character is enforced. The embedded organisation code has its own GB
11714 check digit, but codes issued since 2015 do not always satisfy it in the wild, so it is
reported by :func:`organisation_code_ok` and never a reason to reject a code.
"""

from __future__ import annotations

from geoapp.domain.errors import InvalidInput
from geoapp.domain.messages import Text as _l

__all__ = [
    "ALPHABET",
    "compute_check_char",
    "is_valid_credit_code",
    "make_credit_code",
    "organisation_code_ok",
    "validate_credit_code",
]

#: The 31 characters a credit code may use (0-9 and capitals without I, O, S, V, Z), in the
#: order that gives each its value 0..30 in the check computation.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
#: Weights of positions 1..17: 3**(i-1) mod 31.
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _normalise(code: str) -> str:
    if not isinstance(code, str):
        raise InvalidInput(_l("统一社会信用代码须为文字，而不是 %(type)s",
                              type=type(code).__name__))
    return code.strip().upper()


def _check_body(body: str, expected_len: int) -> None:
    """Raise InvalidInput unless ``body`` has the right length and only allowed characters."""
    if len(body) != expected_len:
        raise InvalidInput(_l("统一社会信用代码“%(code)s”有 %(count)s 位，应为 %(expected)s 位",
                              code=body, count=len(body), expected=expected_len))
    for pos, ch in enumerate(body, start=1):
        if ch not in _VALUE:
            raise InvalidInput(_l(
                "统一社会信用代码“%(code)s”第 %(position)s 位的“%(char)s”不允许出现"
                "（只能用 0-9 和除 I、O、S、V、Z 以外的大写字母）",
                code=body, position=pos, char=ch))


def compute_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a code."""
    body = _normalise(first17)
    _check_body(body, 17)
    total = sum(_VALUE[c] * w for c, w in zip(body, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def make_credit_code(first17: str) -> str:
    """Complete a code by appending its check character (used to build demo and test data)."""
    body = _normalise(first17)
    return body + compute_check_char(body)


def validate_credit_code(code: str) -> None:
    """Raise :class:`InvalidInput` naming the problem unless ``code`` is a well-formed code.

    Leading/trailing blanks and lower case are tolerated (people paste codes from PDFs);
    anything else that is wrong is reported with its position.
    """
    text = _normalise(code)
    if not text:
        raise InvalidInput(_l("统一社会信用代码为空"))
    _check_body(text, 18)
    expected = compute_check_char(text[:17])
    if text[17] != expected:
        raise InvalidInput(_l(
            "统一社会信用代码“%(code)s”的校验码是“%(found)s”，按 GB 32100-2015 应为“%(expected)s”，"
            "代码可能输错了", code=text, found=text[17], expected=expected))


def is_valid_credit_code(code: str) -> bool:
    """True when :func:`validate_credit_code` accepts ``code``."""
    try:
        validate_credit_code(code)
    except InvalidInput:
        return False
    return True


def organisation_code_ok(code: str) -> bool:
    """Whether characters 9-17 form an organisation code with a correct GB 11714 check digit.

    Informational only: see the module docstring for why this is never enforced.
    """
    text = _normalise(code)
    if len(text) < 17:
        return False
    org = text[8:17]
    if not all(c.isdigit() or "A" <= c <= "Z" for c in org):
        return False
    total = sum(int(c, 36) * w for c, w in zip(org[:8], _ORG_WEIGHTS, strict=True))
    rest = 11 - total % 11
    expected = {10: "X", 11: "0"}.get(rest, str(rest))
    return org[8] == expected
