"""JSON from strangers, parsed within bounds.

A provider's body, a batch results line and a model's reply are all text someone else wrote.
`json.loads` recurses once per level of nesting, so a reply that opens a thousand brackets
(a small model caught in a loop writes that well within its token budget) raises
`RecursionError` instead of a `ValueError`, and a huge one takes memory in proportion. Here
both are refused before the parser runs, with a `JSONRefused` (a `ValueError`) that says why
in one line. So is a number longer than Python converts to an int (4,300 digits), which
`json.loads` refuses with a bare `ValueError` that its callers would not expect.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from .text import storable

__all__ = ["MAX_DEPTH", "JSONRefused", "loads", "too_deep"]

#: far deeper than any review, envelope or results line this project reads (they nest under 10)
MAX_DEPTH = 64

_BRACKETS = re.compile(r"[\[\]{}]")
#: an escaped surrogate, or one decoded from bytes: the parsed text may hold a lone one
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
#: a JSON string, escapes included; whatever it holds is not structure. One left open runs to
#: the end: were its closing quote required, the search would fail there, then start again
#: at each escaped quote inside it, and `"\"\"\"…` would take time in the square of its length
_STRING = re.compile(r'"(?:[^"\\]+|\\.)*"?', re.DOTALL)


class JSONRefused(ValueError):
    """Text not parsed as JSON because it is nested too deep or is too large."""


def too_deep(text: str | bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the text's brackets nest deeper than `limit` (brackets in strings do not count).

    Most texts hold fewer brackets than the limit (a review holds a dozen), and then their
    count alone answers: only a text with many brackets is scanned.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth = max(0, depth - 1)
    return False


def loads(
    text: str | bytes, *, max_depth: int = MAX_DEPTH, max_chars: int | None = None, strict: bool = True
) -> Any:
    """`json.loads`, refusing text nested deeper than `max_depth` or longer than `max_chars`.

    Raises `JSONRefused` for those, and for a number longer than Python converts; and
    `ValueError` (`json.JSONDecodeError`, or `UnicodeDecodeError` for bytes that are not
    UTF-8) for text that is not JSON. With `strict` False, control characters are allowed
    inside strings (as `json.loads` allows).
    """
    if max_chars is not None and len(text) > max_chars:
        raise JSONRefused(f"it is {len(text):,} characters long, more than the {max_chars:,} read")
    if isinstance(text, bytes):  # decoded as json.loads decodes bytes
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    if too_deep(text, max_depth):
        raise JSONRefused(f"it nests more than {max_depth} levels deep")
    try:
        data = json.loads(text, strict=strict)
    except RecursionError:  # a depth the scan could not see (never expected): still refused
        raise JSONRefused(f"it nests too deep to parse (over {max_depth} levels)") from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
            raise
        # Python converts no integer longer than `sys.get_int_max_str_digits()` (a guard
        # against quadratic time), and says so with a plain ValueError.
        limit = sys.get_int_max_str_digits()
        raise JSONRefused(f"it holds a number of more than {limit:,} digits") from None
    # Half a surrogate pair (`\ud800`, or its bytes) reads as a lone surrogate, which no
    # UTF-8 text holds: each string is made storable, only where the text may hold one.
    return _storable(data) if _SURROGATE_HINT.search(text) else data


def _storable(value: Any) -> Any:
    """The value with every string in it (keys too) storable; its depth is within bounds."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {storable(k): _storable(v) for k, v in value.items()}
    return value
