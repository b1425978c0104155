"""Text that every output format can carry.

XML 1.0 (Word, Excel) cannot hold most C0 control characters, and UTF-8 (GeoPackage, JSON
files, pages) cannot hold a lone surrogate; one such character pasted from another program
(Word's vertical tab is its manual line break) would make a whole export fail. Text is
cleaned of them at the door (imports, forms) and again on the way out.
"""

from __future__ import annotations

import re
from typing import Any

#: Characters no document format carries: C0 controls but tab, line feed and carriage
#: return; DEL and the C1 controls; lone surrogates; the two non-characters U+FFFE/U+FFFF.
NOT_IN_DOCUMENTS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
#: Vertical tab (Word's manual line break), form feed and the Unicode separators are line
#: breaks in the text a user meant.
_BREAKS = re.compile("[\x0b\x0c\x85\u2028\u2029]")


def document_text(value: Any) -> Any:
    """``value`` with the characters of ``NOT_IN_DOCUMENTS`` removed (line-break controls
    become ``\\n``); anything not a string is returned as it is."""
    if not isinstance(value, str):
        return value
    if NOT_IN_DOCUMENTS.search(value) is None and _BREAKS.search(value) is None:
        return value
    return NOT_IN_DOCUMENTS.sub("", _BREAKS.sub("\n", value))


__all__ = ["NOT_IN_DOCUMENTS", "document_text"]
