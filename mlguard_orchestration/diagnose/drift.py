"""Why a distribution moved: unit changes (a power of ten, or a time factor), constant offsets, and category
spellings that changed. Everything here works on two profiles; no data is read again."""

from __future__ import annotations

import math

from mlguard_orchestration.checks.base import cause
from mlguard_orchestration.profile import ColumnProfile
from mlguard_orchestration.report import Cause

# Factors that are unit conversions rather than business changes.
_UNIT_FACTORS: dict[float, str] = {
    10.0: "×10", 100.0: "×100 (e.g. dollars → cents, fraction → percent)", 1000.0: "×1000 (e.g. kg → g, s → ms)",
    1e6: "×10⁶ (e.g. s → µs, MB → bytes)", 60.0: "×60 (e.g. minutes → seconds)", 3600.0: "×3600 (hours → seconds)",
}


def _iqr(c: ColumnProfile) -> float | None:
    q = c.quantiles
    return (q[15] - q[5]) if q and len(q) == 21 else None


def distribution_causes(batch: ColumnProfile, ref: ColumnProfile) -> list[Cause]:
    """Ranked causes for a numeric column that moved against its reference."""
    causes: list[Cause] = []
    m1, m0 = batch.median, ref.median
    s1, s0 = _iqr(batch), _iqr(ref)
    if m1 and m0 and m1 * m0 > 0:
        ratio = m1 / m0
        scale = s1 / s0 if s1 and s0 else None
        for factor, words in _UNIT_FACTORS.items():
            for f, direction in ((factor, words), (1 / factor, f"÷{factor:g} (the inverse of {words.split(' ')[0]})")):
                if abs(math.log(abs(ratio)) - math.log(f)) < 0.05:  # within ~5 %
                    consistent = scale is not None and abs(math.log(scale) - math.log(f)) < 0.15
                    causes.append(cause(
                        "cause.unit_change",
                        f"{batch.name!r} is {direction} its reference (median {m1:.4g} vs {m0:.4g})",
                        0.95 if consistent else 0.75,
                        {"median_ratio": round(ratio, 4), "spread_ratio": round(scale, 4) if scale else None,
                         "factor": f}))
    if not causes and batch.quantiles and ref.quantiles and s0:
        diffs = [b - r for b, r in zip(batch.quantiles[5:16], ref.quantiles[5:16])]
        mean_shift = sum(diffs) / len(diffs)
        spread = max(diffs) - min(diffs)
        if abs(mean_shift) > 0.25 * s0 and spread < 0.25 * abs(mean_shift):
            causes.append(cause("cause.location_shift",
                                f"{batch.name!r} moved by about {mean_shift:+.4g} across its whole range",
                                0.6, {"shift": round(mean_shift, 6), "reference_iqr": round(s0, 6)}))
    return causes


def normalise(value: str) -> str:
    return " ".join(value.split()).casefold()


def category_causes(name: str, unseen: dict[str, int], reference: dict[str, int]) -> list[Cause]:
    """Unseen categories that equal reference ones up to case/whitespace → a normalisation change."""
    ref_norm = {normalise(k): k for k in reference}
    mapped = {k: ref_norm[normalise(k)] for k in unseen if normalise(k) in ref_norm}
    if not mapped:
        return []
    share = sum(unseen[k] for k in mapped) / max(sum(unseen.values()), 1)
    examples = dict(list(mapped.items())[:5])
    return [cause("cause.category_normalisation",
                  f"{len(mapped)} new value(s) of {name!r} equal reference values up to case/whitespace, e.g. "
                  + ", ".join(f"{k!r} ~ {v!r}" for k, v in list(examples.items())[:3]),
                  0.5 + 0.45 * share, {"mapped": examples, "share_of_unseen_rows": round(share, 4)})]
