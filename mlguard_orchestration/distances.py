"""Distances between two distributions given as counts: what drift checks and diagnoses compare; and `rate`,
the share every check reports. Pure arithmetic, so every layer may use it."""

from __future__ import annotations

import math


def rate(part: float, whole: float) -> float:
    """`part` as a share of `whole`; 0 when `whole` is empty (an empty table has no bad rows)."""
    return float(part) / float(whole) if whole else 0.0


def psi(expected: list[float], actual: list[float], smoothing: float = 0.0) -> float:
    """Population stability index of two count (or share) vectors. `smoothing` adds that many counts to every
    bin on both sides (0.5: Jeffreys' prior), so an empty bin costs what its evidence is worth; shares are
    floored at 1e-4 either way."""
    e = [x + smoothing for x in expected]
    a = [x + smoothing for x in actual]
    se, sa = sum(e) or 1.0, sum(a) or 1.0
    pe = [max(x / se, 1e-4) for x in e]
    pa = [max(x / sa, 1e-4) for x in a]
    return sum((y - x) * math.log(y / x) for x, y in zip(pe, pa))


def js_distance(p: dict[str, float], q: dict[str, float]) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1])."""
    keys = set(p) | set(q)
    sp, sq = sum(p.values()) or 1.0, sum(q.values()) or 1.0
    total = 0.0
    for k in keys:
        pk, qk = p.get(k, 0.0) / sp, q.get(k, 0.0) / sq
        mk = (pk + qk) / 2
        total += (pk * math.log2(pk / mk) if pk else 0.0) + (qk * math.log2(qk / mk) if qk else 0.0)
    return math.sqrt(max(total / 2, 0.0))
