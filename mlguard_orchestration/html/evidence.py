"""A finding's evidence as pictures: what a person would rather look at than read.

Each drawer knows one family of findings and the evidence keys its check writes (drift: `bins`, `quantiles`,
`shares`; joins: matched and orphan counts; leakage: overlapping rows; the gate: slices with their bounds);
training findings and anything unknown get the generic drawers (histories as lines, per-layer numbers as bars,
the measured value against its threshold). Evidence is data from many writers, some of them changing: every
drawer reads keys with `.get`, treats a missing or odd value as "nothing to draw", and a drawer that still
trips is skipped — a picture never costs the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from mlguard_orchestration.html.svg import BAD, OK, bars, histogram, intervals, line, num, paired_bars, parts
from mlguard_orchestration.report import Finding

Drawer = Callable[[Finding, Mapping[str, Any]], list[str]]
MAX_PICTURES = 3  # per finding
_HISTORY_KEYS = ("loss_history", "loss_curve", "losses", "grad_norm_history", "grad_norms",
                 "update_ratio_history", "recent", "history")


def _n(x: Any) -> float | None:
    return num(x)


def _drift_numeric(f: Finding, ev: Mapping[str, Any]) -> list[str]:
    out = []
    bins = ev.get("bins")
    if isinstance(bins, Mapping) and isinstance(bins.get("batch"), list) and isinstance(bins.get("reference"), list):
        edges = bins["edges"] if isinstance(bins.get("edges"), list) else []
        pic = histogram(edges, bins["batch"], bins["reference"], f"{_col(f)}: this batch against the reference")
        out += [pic] if pic else []
    q = ev.get("quantiles")
    if not out and isinstance(q, Mapping):
        rows = [(k, *(v[:2] if isinstance(v, list) and len(v) >= 2 else (None, None))) for k, v in q.items()]
        pic = paired_bars(rows, title=f"{_col(f)}: quantiles, this batch against the reference", percent=False)
        out += [pic] if pic else []
    return out


def _shares(f: Finding, ev: Mapping[str, Any]) -> list[str]:
    shares, ref = ev.get("shares"), ev.get("reference_shares")
    if not isinstance(shares, Mapping):
        return []
    if isinstance(ref, Mapping):  # the label's shares: two dicts
        rows = [(k, shares.get(k), ref.get(k)) for k in list(dict.fromkeys([*ref, *shares]))[:12]]
    else:  # a category mix: {value: [batch, reference]}
        rows = [(k, *(v[:2] if isinstance(v, list) and len(v) >= 2 else (None, None)))
                for k, v in list(shares.items())[:12]]
    pic = paired_bars([(_visible(k), a, b) for k, a, b in rows], title=f"{_col(f)}: share of each value")
    return [pic] if pic else []


def _null_rate(f: Finding, ev: Mapping[str, Any]) -> list[str]:
    nulls, rows, ref = _n(ev.get("nulls")), _n(ev.get("rows")), _n(ev.get("reference_null_rate"))
    now = nulls / rows if nulls is not None and rows else _n(f.value)
    pic = paired_bars([("NULL share", now, ref)], title=f"{_col(f)}: NULL share now and in the reference")
    return [pic] if pic else []


def _unseen(f: Finding, ev: Mapping[str, Any]) -> list[str]:
    unseen = ev.get("unseen")
    if not isinstance(unseen, Mapping):
        return []
    pic = bars([(_visible(k), v) for k, v in list(unseen.items())[:12]], f"{_col(f)}: rows per new value")
    return [pic] if pic else []


def _split(whole: str, part: str, part_name: str, rest_name: str, title: str) -> Drawer:
    def draw(f: Finding, ev: Mapping[str, Any]) -> list[str]:
        total, bad = _n(ev.get(whole)), _n(ev.get(part))
        if total is None or bad is None or total < bad:
            return []
        pic = parts([(part_name, bad, BAD), (rest_name, total - bad, OK)], title)
        return [pic] if pic else []
    return draw


def _match_rate(f: Finding, ev: Mapping[str, Any]) -> list[str]:
    keyed, matched = _n(ev.get("left_rows_with_key")), _n(ev.get("matched_left_rows"))
    if keyed is None or matched is None or keyed < matched:
        return []
    pic = parts([("rows that find a partner", matched, OK),
                     ("rows without a partner", keyed - matched, BAD)], "left rows by whether their key matches")
    return [pic] if pic else []


def _counts(*keys: tuple[str, str]) -> Drawer:
    def draw(f: Finding, ev: Mapping[str, Any]) -> list[str]:
        pic = bars([(label, ev.get(key)) for key, label in keys if _n(ev.get(key)) is not None], "row counts")
        return [pic] if pic else []
    return draw


def _slices(f: Finding, ev: Mapping[str, Any]) -> list[str]:
    worst = ev.get("worst")
    if not isinstance(worst, list):
        return []
    rows = [(s.get("value"), s.get("metric"), s.get("optimistic_bound"), s.get("size"))
            for s in worst if isinstance(s, Mapping)]
    pic = intervals(rows, ev.get("overall"), _n(f.threshold),
                        f"{ev.get('metric', 'metric')} per slice of {_col(f)}, with the optimistic bound")
    return [pic] if pic else []


def _target_leak(f: Finding, ev: Mapping[str, Any]) -> list[str]:
    """How well each feature alone predicts the label: the leaking ones against the strongest honest ones."""
    key = {"AUC": "auc", "R²": "r2", "accuracy": "accuracy"}.get(str(ev.get("metric")), "auc")
    leaky = ev["leaky"] if isinstance(ev.get("leaky"), Mapping) else {}
    others = ev["strongest_other_features"] if isinstance(ev.get("strongest_other_features"), Mapping) else {}
    rows = [(k, v.get(key)) for k, v in list(leaky.items())[:8] if isinstance(v, Mapping)]
    rows += list(others.items())[:5]
    pic = bars(rows, f"{ev.get('metric', 'score')} of each feature alone", highlight=_n(f.threshold))
    return [pic] if pic else []


def _generic(f: Finding, ev: Mapping[str, Any]) -> list[str]:
    """Histories as lines, named numbers (per layer, per parameter) as bars, else the value and its limit."""
    out: list[str] = []
    series = [(k, v) for k, v in ev.items()
              if isinstance(v, list) and len(v) >= 3 and sum(_n(x) is not None for x in v) >= 3
              and (k in _HISTORY_KEYS or k.endswith("_history"))]
    if series:
        pic = line([(str(k).replace("_", " "), v) for k, v in series], "around the fault",
                       mark=int(s) if (s := _n(ev.get("step"))) is not None else None, log=True)
        out += [pic] if pic else []
    for key, value in ev.items():
        if isinstance(value, Mapping) and len(value) >= 1 and all(_n(v) is not None for v in value.values()):
            pic = bars(sorted(((k, v) for k, v in value.items()), key=lambda kv: -abs(kv[1]))[:15],
                           f"{str(key).replace('_', ' ')} (largest first)")
            out += [pic] if pic else []
    if not out and (value := _n(f.value)) is not None and (limit := _n(f.threshold)) is not None:
        rate = 0 <= value <= 1 and 0 <= limit <= 1
        pic = bars([("measured", value), ("limit", limit)], "measured against the limit", percent=rate)
        out += [pic] if pic else []
    return out


DRAWERS: dict[str, Drawer] = {
    "drift.numeric": _drift_numeric,
    "drift.categorical": _shares,
    "drift.label": _shares,
    "drift.null_rate": _null_rate,
    "drift.unseen_categories": _unseen,
    "join.match_rate": _match_rate,
    "join.orphans": _split("right_keys", "orphan_right_keys", "keys without a partner", "keys with a partner",
                           "right keys by whether the left side has them"),
    "join.null_keys": _split("rows", "null_key_rows", "rows with a NULL key", "rows with a key",
                             "rows by whether their join key is NULL"),
    "join.fan_out": _counts(("left_rows", "left rows"), ("predicted_joined_rows", "joined (predicted)"),
                            ("actual_joined_rows", "joined (actual)")),
    "join.left_not_unique": _counts(("rows", "rows"), ("distinct_keys", "distinct keys")),
    "join.right_not_unique": _counts(("rows", "rows"), ("distinct_keys", "distinct keys")),
    "leakage.row_overlap": _split("test_rows", "overlapping_test_rows", "test rows also in train",
                                  "test rows only in test", "test rows by whether train has them"),
    "leakage.group_overlap": _split("test_groups", "shared_groups", "test groups also in train",
                                    "test groups only in test", "test groups by whether train has them"),
    "gate.slice": _slices,
    "leakage.target": _target_leak,
}


def pictures(f: Finding) -> list[str]:
    """The SVG pictures of `f`'s evidence (at most MAX_PICTURES), possibly none."""
    ev = f.evidence if isinstance(f.evidence, Mapping) else {}
    out: list[str] = []
    for drawer in (DRAWERS.get(f.code), _generic):
        if drawer is None or out:
            continue
        try:
            out += drawer(f, ev)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, ZeroDivisionError, OverflowError):
            continue  # evidence shaped unlike what the drawer knows: no picture, never a broken page
    return out[:MAX_PICTURES]


def evidence_rows(f: Finding, max_keys: int = 12, max_chars: int = 160) -> list[tuple[str, str]]:
    """The evidence as (key, value) text, bounded, for the table under the pictures (escaped)."""
    ev = f.evidence if isinstance(f.evidence, Mapping) else {}
    rows = []
    for k, v in list(ev.items())[:max_keys]:
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        rows.append((escape(str(k)[:60]), escape(text if len(text) <= max_chars else text[: max_chars - 1] + "…")))
    if len(ev) > max_keys:
        rows.append(("…", escape(f"{len(ev) - max_keys} more entries in the JSON report")))
    return rows


def _col(f: Finding) -> str:
    return ", ".join(f.columns[:3])[:80] or (f.table or "")[:80] or f.check[:80]


def _visible(key: Any) -> str:
    """A category key as a person reads it: the profile's catch-all bucket is '(other)'."""
    return "(other)" if key == "\x00other" else str(key)
