"""Why a distribution moved: a unit conversion (a power of ten, a time factor, miles↔km, lb↔kg, ft↔m, in↔cm,
°F↔°C, percent↔fraction), a constant offset, and category spellings that changed. Everything here works on
two profiles; no data is read again.

A unit conversion maps every value x to a·x + b (b = 0 but for temperatures), so the batch's quantiles are
that map of the reference's. The map is fitted to the matched quantiles p5…p95 by least squares, which is
robust to ties, zeros and negative values where a ratio of medians is not; it is named only when it fits
the whole range (small residuals) and its factor is within 3 % of a known conversion.
"""

from __future__ import annotations

import math

import numpy as np

from mlguard_orchestration.distances import js_distance
from mlguard_orchestration.profile import ColumnProfile
from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.sources import kind_family

# factor: (what the batch's values are if multiplied by `factor`, what they are if divided by it)
_SCALES: dict[float, tuple[str, str]] = {
    10.0: ("×10 of the reference", "÷10 of the reference"),
    100.0: ("×100: dollars → cents, or a fraction → a percent", "÷100: cents → dollars, or a percent → a fraction"),
    1000.0: ("×1000: kg → g, s → ms, km → m", "÷1000: g → kg, ms → s, m → km"),
    1e6: ("×10⁶: s → µs, MB → bytes", "÷10⁶: µs → s, bytes → MB"),
    60.0: ("×60: minutes → seconds (or hours → minutes)", "÷60: seconds → minutes (or minutes → hours)"),
    3600.0: ("×3600: hours → seconds", "÷3600: seconds → hours"),
    24.0: ("×24: days → hours", "÷24: hours → days"),
    1440.0: ("×1440: days → minutes", "÷1440: minutes → days"),
    86400.0: ("×86400: days → seconds", "÷86400: seconds → days"),
    1.609344: ("×1.609: miles → kilometres", "÷1.609: kilometres → miles"),
    2.20462: ("×2.205: kilograms → pounds", "÷2.205: pounds → kilograms"),
    3.28084: ("×3.281: metres → feet", "÷3.281: feet → metres"),
    2.54: ("×2.54: inches → centimetres", "÷2.54: centimetres → inches"),
    25.4: ("×25.4: inches → millimetres", "÷25.4: millimetres → inches"),
    12.0: ("×12: feet → inches (or years → months)", "÷12: inches → feet (or months → years)"),
    1.8: ("×1.8: a Celsius difference → Fahrenheit", "÷1.8: a Fahrenheit difference → Celsius"),
}
_AFFINE: list[tuple[float, float, str]] = [
    (1.8, 32.0, "°C → °F (×1.8 + 32)"),
    (1 / 1.8, -32.0 / 1.8, "°F → °C ((x − 32) ÷ 1.8)"),
    (1.0, -273.15, "K → °C (− 273.15)"),
    (1.0, 273.15, "°C → K (+ 273.15)"),
]
FACTOR_TOLERANCE = 0.025
_FIT = slice(2, 19)  # p10 … p90: the tails of a small batch are too noisy to fit


def _iqr(c: ColumnProfile) -> float | None:
    q = c.quantiles
    return (q[15] - q[5]) if q and len(q) == 21 else None


def linear_map(batch: ColumnProfile, ref: ColumnProfile) -> tuple[float, float, float] | None:
    """(a, b, misfit) of batch ≈ a·ref + b over the matched quantiles p10…p90; misfit is the median absolute
    residual relative to the batch's spread. None when either side has too little spread to fit."""
    if not batch.quantiles or not ref.quantiles or len(batch.quantiles) != 21 or len(ref.quantiles) != 21:
        return None
    x, y = np.asarray(ref.quantiles[_FIT]), np.asarray(batch.quantiles[_FIT])
    if np.ptp(x) <= 0 or np.ptp(y) <= 0 or len(np.unique(x)) < 5:
        return None  # mostly one value (zero-inflated, a few levels): no shape to fit
    a, b = np.polyfit(x, y, 1)
    misfit = float(np.median(np.abs(y - (a * x + b))) / np.ptp(y))
    return float(a), float(b), misfit


def _value_map(batch: ColumnProfile, ref: ColumnProfile) -> tuple[float, float, float] | None:
    """(a, 0, misfit) when a number with a few values kept their count and each sorted value became a times
    the reference's (route distances 213, 733, … now 342.8, 1179.6, …); None otherwise."""
    def values(col: ColumnProfile) -> list[float] | None:
        if not col.categories_complete or col.categories is None:
            return None
        try:
            return sorted(float(k) for k in col.categories)
        except ValueError:
            return None

    b, r = values(batch), values(ref)
    if not b or not r or len(b) != len(r) or len(r) < 2 or any(v <= 0 for v in r + b):
        return None
    ratios = np.asarray(b) / np.asarray(r)
    a = float(np.median(ratios))
    misfit = float(np.max(np.abs(ratios / a - 1)))
    return (a, 0.0, misfit) if misfit < 0.01 else None


def distribution_causes(batch: ColumnProfile, ref: ColumnProfile) -> list[Cause]:
    """Ranked causes for a numeric column that moved against its reference."""
    fit = linear_map(batch, ref) or _value_map(batch, ref)
    if fit is None:
        return []
    a, b, misfit = fit
    spread = _iqr(ref) or abs(ref.median or 0.0) or 1.0
    evidence = {"fitted_factor": round(a, 4), "fitted_offset": round(b, 4), "misfit": round(misfit, 4),
                "median": _r(batch.median), "reference_median": _r(ref.median)}
    if misfit > 0.05 or a <= 0:
        return []
    for fa, fb, words in _AFFINE:
        if _affine_matches(fa, fb, a, b, batch, ref):
            return [cause("cause.unit_change", f"{batch.name!r} looks converted {words}: median {_g(batch.median)} vs "
                          f"{_g(ref.median)}", 0.9, {"factor": round(fa, 6), "offset": round(fb, 4), **evidence})]
    if abs(b) < 0.25 * spread * a:  # a pure change of scale
        for factor, (up, down) in _SCALES.items():
            for f, words in ((factor, up), (1 / factor, down)):
                if _scale_matches(f, a, batch, ref):
                    conf = 0.95 if misfit < 0.01 else 0.8
                    return [cause("cause.unit_change", f"{batch.name!r} is {words} (median {_g(batch.median)} vs "
                                  f"{_g(ref.median)}; fitted factor {a:.4g})", conf,
                                  {"factor": f, "offset": 0.0, **evidence})]
    if abs(a - 1) < 0.1 and abs(b) > 0.25 * spread:
        return [cause("cause.location_shift", f"{batch.name!r} moved by about {b:+.4g} across its whole range",
                      0.6, {"shift": round(b, 6), "reference_iqr": round(spread, 6)})]
    return []


def _scale_matches(f: float, slope: float, batch: ColumnProfile, ref: ColumnProfile) -> bool:
    """Two estimates must agree with the factor `f`: the quantile fit's slope (within 5 %, 3 % when it is the
    only one) and the ratio of the means (within 2 % or three of its standard errors). Discrete steps bend
    the first, a heavy tail the second; a real change of 1.5× passes neither for miles → km."""
    off = abs(math.log(slope / f))
    if off > 2 * FACTOR_TOLERANCE:
        return False
    one_signed = ref.min is not None and ref.max is not None and (ref.min >= 0 or ref.max <= 0)
    if not (batch.mean and ref.mean and batch.std is not None and ref.std is not None
            and batch.mean * ref.mean > 0 and (one_signed or abs(ref.mean) > 0.5 * ref.std)):
        return off < FACTOR_TOLERANCE
    n_b, n_r = max(batch.non_null, 1), max(ref.non_null, 1)
    se = math.sqrt((batch.std / batch.mean) ** 2 / n_b + (ref.std / ref.mean) ** 2 / n_r)
    return abs(math.log(batch.mean / ref.mean / f)) < max(0.02, min(3 * se, 0.1))


def _affine_matches(fa: float, fb: float, slope: float, offset: float, batch: ColumnProfile,
                    ref: ColumnProfile) -> bool:
    """x → fa·x + fb (a temperature scale): the fit within 5 % and 3 units, and the batch's mean where the
    conversion puts the reference's, within three standard errors."""
    if abs(slope / fa - 1) > 2 * FACTOR_TOLERANCE or abs(offset - fb) > max(0.1 * abs(fb), 3.0):
        return False
    if batch.mean is None or ref.mean is None or batch.std is None or ref.std is None:
        return False
    se = math.sqrt(batch.std**2 / max(batch.non_null, 1) + (fa * ref.std) ** 2 / max(ref.non_null, 1))
    return abs(batch.mean - (fa * ref.mean + fb)) < max(3 * se, 0.01 * abs(batch.mean))


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def renamed_twin(missing: ColumnProfile, new: list[ColumnProfile]) -> ColumnProfile | None:
    """Among columns new in the batch, the one whose values look like the missing reference column's (same
    kind; quantiles within a tenth of its spread, or the same category mix): a rename under another name."""
    best: tuple[float, ColumnProfile] | None = None
    for col in new:
        if kind_family(col.kind) != kind_family(missing.kind):
            continue
        if missing.categories is not None and col.categories is not None:
            score = js_distance({k: float(v) for k, v in missing.categories.items()},
                                {k: float(v) for k, v in col.categories.items()})
        elif missing.quantiles and col.quantiles and len(missing.quantiles) == len(col.quantiles):
            spread = (missing.quantiles[-2] - missing.quantiles[1]) or abs(missing.median or 0) or 1.0
            score = float(np.median(np.abs(np.subtract(col.quantiles, missing.quantiles)))) / spread
        else:
            continue
        if score < 0.1 and (best is None or score < best[0]):
            best = (score, col)
    return best[1] if best else None


def normalise(value: str) -> str:
    return " ".join(value.split()).casefold()


def category_causes(batch: ColumnProfile, ref: ColumnProfile, unseen: dict[str, int],
                    rows_ratio: float | None = None) -> list[Cause]:
    """Unseen categories that equal reference ones up to case/whitespace → a normalisation change; reference
    categories that vanished (each at least 1 % of the reference, the batch big enough to have shown them)
    → a filter or an upstream source dropped them. The drop is decisive only when it is clean (the other
    values kept their proportions) and the batch lost as many rows as the missing values held
    (`rows_ratio`, batch rows / reference rows per run): a failed source takes its rows with it, while a
    season without July storms is just another season."""
    reference = ref.categories or {}
    causes: list[Cause] = []
    ref_norm = {normalise(k): k for k in reference}
    mapped = {k: ref_norm[normalise(k)] for k in unseen if normalise(k) in ref_norm}
    if mapped:
        share = sum(unseen[k] for k in mapped) / max(sum(unseen.values()), 1)
        examples = dict(list(mapped.items())[:5])
        causes.append(cause(
            "cause.category_normalisation",
            f"{len(mapped)} new value(s) of {batch.name!r} equal reference values up to case/whitespace, e.g. "
            + ", ".join(f"{k!r} ~ {v!r}" for k, v in list(examples.items())[:3]),
            0.5 + 0.45 * share, {"mapped": examples, "share_of_unseen_rows": round(share, 4)}))
    seen = {normalise(k) for k in (batch.categories or {})}
    total = max(ref.non_null, 1)
    gone = {k: v / total for k, v in reference.items()
            if normalise(k) not in seen and v / total >= 0.01 and batch.non_null * v / total >= 10}
    new_share = sum(unseen.values()) / max(batch.non_null, 1)
    # values replaced by others (storm names, campaign ids) are turnover, not a drop
    if gone and batch.categories is not None and new_share < 0.25 * sum(gone.values()):
        share = sum(gone.values())
        # a clean drop leaves the other values in their reference proportions; a mix that moved everywhere
        # (clustered data: a season without July storms) is not explained by the missing values alone
        kept = {k: float(v) for k, v in reference.items() if k not in gone}
        residual = js_distance(kept, {k: float(v) for k, v in batch.categories.items()})
        clean = residual <= math.sqrt(len(kept) / max(batch.non_null, 1)) + 0.05
        rows_went = rows_ratio is not None and abs(rows_ratio - (1 - share)) <= max(
            0.05, 3 * math.sqrt(share / max(batch.non_null, 1)))
        shown = dict(sorted(gone.items(), key=lambda kv: -kv[1])[:5])
        causes.append(cause(
            "cause.category_dropped",
            f"{batch.name!r} lost {len(gone)} value(s) that made up {share:.1%} of the reference: "
            + ", ".join(f"{k!r} ({v:.1%})" for k, v in shown.items())
            + ("; the other values kept their proportions and the batch lost as many rows" if clean and rows_went
               else ""),
            0.8 + min(share, 0.15) if clean and rows_went and share >= 0.05 else 0.5,
            {"missing": {k: round(v, 4) for k, v in shown.items()}, "missing_share": round(share, 4),
             "rest_js_distance": round(residual, 4),
             "rows_ratio": None if rows_ratio is None else round(rows_ratio, 4)}))
    return causes
