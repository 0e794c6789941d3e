"""Fixed UTC offsets written as zone names: one parser for the checks' validation and every engine's SQL."""

from __future__ import annotations

import re
from datetime import timedelta

_FIXED = re.compile(r"^(?:utc|gmt)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def fixed_offset(zone: str) -> timedelta | None:
    """'+05:00', 'UTC-5', 'GMT+0530' → the offset; None for a named zone ('UTC' is +0)."""
    if zone.strip().upper() in ("UTC", "GMT", "Z", "ETC/UTC", "ZULU"):
        return timedelta(0)
    m = _FIXED.match(zone.strip())
    if m is None:
        return None
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes >= 60:
        raise ValueError(f"timezone offset {zone!r} is out of range")
    off = timedelta(hours=hours, minutes=minutes)
    return -off if m.group(1) == "-" else off
