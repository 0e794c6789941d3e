"""Sizes of JSON in bytes, and cutting JSON values down to a byte budget.

Payload limits (XCom, webhooks, chat services) are in bytes of the serialised JSON, and one character can cost
1 to 12 of them: `json.dumps` escapes every non-ASCII character as `\\uXXXX` (6 bytes; 12 for a character
outside the BMP, written as a surrogate pair), and quotes, backslashes and control characters too. So every
bound here is measured on `json.dumps(value)` with its defaults (ASCII escapes, ", " and ": " separators),
the largest of the usual compact encodings: a UTF-8 `ensure_ascii=False` dump of the same value is never larger.
"""

from __future__ import annotations

import json
from typing import Any


def json_size(value: Any) -> int:
    """Bytes of `json.dumps(value)`."""
    return len(json.dumps(value).encode())


_TWO_BYTE_ESCAPES = frozenset('"\\\b\f\n\r\t')


def _char_cost(ch: str) -> int:
    """Bytes `ch` takes inside a JSON string written with ASCII escapes."""
    if ch in _TWO_BYTE_ESCAPES:
        return 2
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0xFFFF:
        return 6  # \u00XX, \uXXXX
    return 12 if code > 0xFFFF else 1  # a surrogate pair, or plain ASCII


def clip_text(text: str, max_bytes: int, marker: str = "…") -> str:
    """`text` cut so that it takes at most `max_bytes` as a JSON string (quotes included), ending in `marker`
    when cut."""
    if json_size(text) <= max_bytes:
        return text
    budget = max_bytes - 2 - sum(_char_cost(c) for c in marker)
    used, end = 0, 0
    for ch in text:
        used += _char_cost(ch)
        if used > budget:
            break
        end += 1
    return text[:end] + marker if budget >= 0 else ""


def shrink(value: Any, max_bytes: int) -> Any:
    """`value` with its lists and mappings shortened and its strings cut, harder and harder, until its JSON
    takes at most `max_bytes`; the empty value of its type (or None) when even that does not fit."""
    if json_size(value) <= max_bytes:
        return value
    chars, items = 1_000, 50
    while chars >= 8 or items >= 1:
        smaller = cut(value, chars, items)
        if json_size(smaller) <= max_bytes:
            return smaller
        chars, items = chars // 2, items // 2
    empty: Any = "" if isinstance(value, str) else [] if isinstance(value, list) else {} \
        if isinstance(value, dict) else None
    return empty if json_size(empty) <= max_bytes else None


def cut(value: Any, max_bytes: int, max_items: int) -> Any:
    """Every string (and mapping key) of `value` cut to `max_bytes`, every list and mapping to `max_items`."""
    if isinstance(value, str):
        return clip_text(value, max_bytes)
    if isinstance(value, list):
        return [cut(v, max_bytes, max_items) for v in value[:max_items]]
    if isinstance(value, dict):
        return {clip_text(str(k), max_bytes): cut(v, max_bytes, max_items) for k, v in list(value.items())[:max_items]}
    return value
