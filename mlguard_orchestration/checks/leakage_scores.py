"""How well one feature's bins predict the label, from the per-bin counts and sums `TargetLeakage`'s one
GROUP BY GROUPING SETS query returns. Pure arithmetic (no SQL, no engine), so it is tested and read on its own.

Every score is leave-one-out: a row is predicted from its bin *without itself*, so a bin of one row (an id, a
timestamp) cannot fake a perfect score.
- binary label: AUC of the bin's positive rate (`binary_scores`);
- numeric label: share of variance explained by the bins, on the values and on their ranks (`regression_scores`);
- several classes: accuracy of the bin's majority class, and its gain over always guessing the commonest
  class (`multiclass_scores`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

_POSITIVE = {"1", "true", "t", "yes", "y", "pos", "positive"}
_NEGATIVE = {"0", "false", "f", "no", "n", "neg", "negative"}


def positive_negative(vals: list[Any]) -> tuple[Any, Any]:
    """(negative, positive) of a two-valued label, most frequent first in `vals`: True/1/'yes'-like is
    positive; for other text, the rarer value; for numbers, the larger."""
    a, b = vals
    if isinstance(a, str) and isinstance(b, str):
        la, lb = a.strip().lower(), b.strip().lower()
        if la in _POSITIVE or lb in _NEGATIVE:
            return b, a
        return a, b  # b, the less frequent, is the positive class (e.g. 'churned')
    return (a, b) if a < b else (b, a)


def auc(groups: Sequence[tuple[float, float, float]]) -> float | None:
    """AUC from (score, positives, negatives) groups; ties count half."""
    merged: dict[float, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s, p, n in groups:
        merged[round(s, 12)][0] += p
        merged[round(s, 12)][1] += n
    total_p = sum(v[0] for v in merged.values())
    total_n = sum(v[1] for v in merged.values())
    if not total_p or not total_n:
        return None
    acc, neg_below = 0.0, 0.0
    for s in sorted(merged):
        p, n = merged[s]
        acc += p * (neg_below + 0.5 * n)
        neg_below += n
    return acc / (total_p * total_n)


def binary_scores(rows: list[tuple[Any, ...]], values: Sequence[Any] | None, positive: Any,
                  negative: Any) -> dict[str, Any]:
    """Rows of (bin, n, positives, …); `values` the value of each value-bin (None for quantile bins), whose
    agreement with the label (`equal_to_label`) is reported too."""
    stats = [(b, int(r[1]), int(r[2] or 0)) for b, *r in rows]  # (bin, n, positives)
    n_all = sum(n for _, n, _ in stats)
    p_all = sum(p for _, _, p in stats)
    if n_all == 0 or p_all in (0, n_all):
        return {}
    prior = p_all / n_all
    in_sample = auc([(p / n, p, n - p) for _, n, p in stats])
    loo = []
    for _, n, p in stats:  # each row scored by its bin's rate without itself (plus one pseudo-row at the prior)
        loo.append(((p - 1 + prior) / n, p, 0))
        loo.append(((p + prior) / n, 0, n - p))
    score = auc(loo)
    if score is not None:  # pairs inside one bin are exchangeable: a tie, not the loss leave-one-out makes them
        score += 0.5 * sum(p * (n - p) for _, n, p in stats) / (p_all * (n_all - p_all))
    out: dict[str, Any] = {"auc": round(score, 6) if score is not None else None,
                           "auc_in_sample": round(in_sample, 6) if in_sample is not None else None,
                           "bins": len(stats)}
    if values is not None:
        eq = 0
        for b, n, p in stats:
            if b is None or b < 1:
                continue
            v = values[b - 1]
            if _same(v, positive):
                eq += p
            elif _same(v, negative):
                eq += n - p
        out["equal_to_label"] = round(eq / n_all, 6)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) != isinstance(b, str):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


def regression_scores(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Rows of (bin, n, Σy, Σy², Σu, Σu²) with y the centred label and u its quantile bin (its rank)."""
    stats = [(int(r[1]), float(r[2] or 0), float(r[3] or 0), float(r[4] or 0), float(r[5] or 0))
             for _, *r in rows]
    n_all = sum(s[0] for s in stats)
    if n_all < 3:
        return {}
    out: dict[str, Any] = {"bins": len(stats)}
    for name, si, qi in (("r2", 1, 2), ("r2_rank", 3, 4)):
        total = sum(s[si] for s in stats)
        sst = sum(s[qi] for s in stats) - total * total / n_all
        if sst <= 1e-12 * max(1.0, sum(s[qi] for s in stats)):
            return {}
        mean = total / n_all
        sse = 0.0
        for s in stats:
            n, sy, syy = s[0], s[si], s[qi]
            if n == 1:  # leave-one-out: no other row in the bin, predict the overall mean
                sse += (sy - mean) ** 2
            else:
                ssw = max(syy - sy * sy / n, 0.0)
                sse += (n / (n - 1)) ** 2 * ssw
        out[name] = round(max(0.0, 1 - sse / sst), 6)
    out["r2"] = max(out["r2"], out["r2_rank"])
    return out


def multiclass_scores(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Rows of (bin, class, n, …)."""
    per_bin: dict[Any, dict[Any, int]] = defaultdict(dict)
    totals: dict[Any, int] = defaultdict(int)
    for b, cls, n, *_ in rows:
        per_bin[b][cls] = int(n)
        totals[cls] += int(n)
    n_all = sum(totals.values())
    if n_all == 0 or len(totals) < 2:
        return {}
    base = max(totals.values()) / n_all
    majority = max(totals, key=lambda c: totals[c])
    correct = 0.0
    for counts in per_bin.values():
        for c, k in counts.items():  # leave-one-out majority vote: the bin without the row being scored
            others = max((v for o, v in counts.items() if o != c), default=0)
            if k - 1 > others:
                correct += k
            elif k - 1 == others:
                if others == 0:  # a bin of one row: nothing left to vote, predict the overall majority
                    correct += float(c == majority)
                else:
                    correct += 0.5 * k
    acc = correct / n_all
    return {"accuracy": round(acc, 6), "base_rate": round(base, 6),
            "gain": round((acc - base) / (1 - base), 6) if base < 1 else 0.0, "bins": len(per_bin)}
