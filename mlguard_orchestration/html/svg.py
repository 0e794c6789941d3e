"""Small inline SVG charts for the report page: no JavaScript, no fonts or files to fetch, a few KB each.

Every chart takes plain numbers and labels (never a Report), escapes every label, skips values that are not
finite, and has a fixed number of marks whatever it is given (callers cap the series; `_cap` here is the last
guard). Charts scale to the page's width through `viewBox`, so they read on a phone as on a desktop; the
text inside stays at least ~11 px at a 360 px wide screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

W = 420  # viewBox width: about a phone's, so 12-13 px text stays that size there; wider screens cap it
BATCH, REFERENCE, BAD, OK, MUTED, INK = "#d9480f", "#868e96", "#c92a2a", "#2b8a3e", "#adb5bd", "#212529"
MAX_MARKS = 60  # no chart draws more bars, points or rows than this
LABEL_CHARS = 22


def num(x: object) -> float | None:
    """`x` as a finite float, or None (strings, NaN, inf, bools and missing values are no numbers to draw)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:,.4g}" if abs(x) >= 1000 else f"{x:.4g}"


def _label(text: object, limit: int = LABEL_CHARS) -> str:
    s = str(text)
    return escape(s if len(s) <= limit else s[: limit - 1] + "…")


def _svg(height: int, body: list[str], title: str) -> str:
    return (f'<svg viewBox="0 0 {W} {height}" width="100%" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui,sans-serif" font-size="13" style="max-width:640px">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _text(x: float, y: float, s: str, anchor: str = "start", fill: str = INK, size: int = 13) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" font-size="{size}">{s}</text>'


def _legend(items: Sequence[tuple[str, str]], y: float) -> list[str]:
    out, x = [], 8.0
    for colour, name in items:
        out += [f'<rect x="{x:.0f}" y="{y - 10:.0f}" width="12" height="12" fill="{colour}"/>',
                _text(x + 16, y, _label(name, 40))]
        x += 24 + 8 * min(len(name), 40)
    return out


def histogram(edges: Sequence[float], batch: Sequence[float], reference: Sequence[float],
              title: str = "distribution") -> str | None:
    """Two distributions on the same bins, as shares (each side sums to 1): the batch's bars over the
    reference's outline. Bins are drawn equally wide and labelled with their upper edges."""
    b = [num(v) or 0.0 for v in batch[:MAX_MARKS]]
    r = [num(v) or 0.0 for v in reference[:MAX_MARKS]]
    if len(b) != len(r) or len(b) < 2 or sum(b) <= 0 or sum(r) <= 0:
        return None
    sb, sr = sum(b), sum(r)
    b, r = [v / sb for v in b], [v / sr for v in r]
    top = max(max(b), max(r)) or 1.0
    h, left, bottom = 190, 8, 150
    bw = (W - 2 * left) / len(b)
    body = _legend([(BATCH, "this batch"), (REFERENCE, "reference")], 16)
    for i, (vb, vr) in enumerate(zip(b, r)):
        x = left + i * bw
        hb, hr = 120 * vb / top, 120 * vr / top
        body.append(f'<rect x="{x + 1:.1f}" y="{bottom - hb:.1f}" width="{bw - 2:.1f}" height="{hb:.1f}" '
                    f'fill="{BATCH}" fill-opacity="0.75"/>')
        body.append(f'<rect x="{x + 1:.1f}" y="{bottom - hr:.1f}" width="{bw - 2:.1f}" height="{hr:.1f}" '
                    f'fill="none" stroke="{REFERENCE}" stroke-width="2"/>')
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{W - left}" y2="{bottom}" stroke="{INK}"/>')
    edge = [num(e) for e in edges[: len(b) - 1]]
    for i in sorted({0, (len(edge) - 1) // 2, len(edge) - 1}):
        if 0 <= i < len(edge):
            body.append(_text(left + (i + 1) * bw, bottom + 18, f"≤{escape(fmt(edge[i]))}", "middle"))
    body.append(_text(W - left, h - 6, f"shares per bin; {len(b)} bins", "end", MUTED, 12))
    return _svg(h, body, title)


def paired_bars(rows: Sequence[tuple[object, float | None, float | None]], names: tuple[str, str] = (
        "this batch", "reference"), title: str = "comparison", percent: bool = True) -> str | None:
    """Horizontal bars, two per row (e.g. a category's share now and in the reference)."""
    rows = [(k, num(a), num(b)) for k, a, b in rows[: MAX_MARKS // 2]]
    rows = [(k, a, b) for k, a, b in rows if a is not None or b is not None]
    if not rows:
        return None
    top = max(max(abs(a or 0), abs(b or 0)) for _, a, b in rows) or 1.0
    left, bar = 150, 200
    h = 30 + 34 * len(rows)
    body = _legend([(BATCH, names[0]), (REFERENCE, names[1])], 16)
    for i, (k, a, b) in enumerate(rows):
        y = 30 + 34 * i
        body.append(_text(left - 8, y + 19, _label(k, 20), "end", size=12))
        for j, (v, colour) in enumerate(((a, BATCH), (b, REFERENCE))):
            if v is None:
                continue
            w = bar * abs(v) / top
            body.append(f'<rect x="{left}" y="{y + 4 + 13 * j}" width="{w:.1f}" height="12" fill="{colour}"/>')
            shown = f"{v:.1%}" if percent else fmt(v)
            body.append(_text(left + w + 4, y + 14 + 13 * j, escape(shown), size=12))
    return _svg(h, body, title)


def parts(segments: Sequence[tuple[str, float | None, str]], title: str = "parts") -> str | None:
    """One stacked bar: how a whole splits (matched vs unmatched rows, overlapping vs clean test rows)."""
    segs = [(name, n, colour) for name, v, colour in segments[:6] if (n := num(v)) is not None and n > 0]
    total = sum(v for _, v, _ in segs)
    if not segs or total <= 0:
        return None
    body, x, left = [], 8.0, 8.0
    for name, v, colour in segs:
        w = (W - 2 * left) * v / total
        body.append(f'<rect x="{x:.1f}" y="8" width="{max(w, 1):.1f}" height="28" fill="{colour}"/>')
        x += w
    ys = 58
    for name, v, colour in segs:
        body.append(f'<rect x="8" y="{ys - 10}" width="12" height="12" fill="{colour}"/>')
        body.append(_text(26, ys, f"{_label(name, 60)}: {escape(fmt(v))} ({v / total:.1%})"))
        ys += 20
    return _svg(ys, body, title)


def line(series: Sequence[tuple[str, Sequence[float]]], title: str = "history", mark: int | None = None,
         log: bool = False) -> str | None:
    """Line charts of short histories (a loss curve, gradient norms), one panel per series, the last point
    (where the guard stopped) marked. `log` draws on a log scale when every value is positive."""
    panels = []
    for name, values in list(series)[:4]:
        ys = [num(v) for v in list(values)[-MAX_MARKS * 4:]]
        pts = [(i, y) for i, y in enumerate(ys) if y is not None]
        if len(pts) >= 2:
            panels.append((name, pts, len(ys)))
    if not panels:
        return None
    ph, body = 110, []
    for p, (name, pts, n) in enumerate(panels):
        use_log = log and all(y > 0 for _, y in pts)
        vals = [math.log10(y) if use_log else y for _, y in pts]
        lo, hi = min(vals), max(vals)
        span = (hi - lo) or 1.0
        top = 12 + p * ph
        xy = [(48 + (W - 56) * i / max(n - 1, 1), top + 22 + 70 * (1 - (v - lo) / span))
              for (i, _), v in zip(pts, vals)]
        body.append(_text(8, top + 10, f"{_label(name, 60)}{' (log scale)' if use_log else ''}", size=12))
        body.append(f'<polyline fill="none" stroke="{BATCH}" stroke-width="2" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
        last = xy[-1]
        body.append(f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="4" fill="{BAD}"/>')
        body.append(_text(44, top + 28, escape(fmt(max(y for _, y in pts))), "end", MUTED, 11))
        body.append(_text(44, top + 94, escape(fmt(min(y for _, y in pts))), "end", MUTED, 11))
    if mark is not None:
        body.append(_text(W - 8, 12 + len(panels) * ph - 4, f"last point: step {mark}", "end", MUTED, 12))
    return _svg(12 + len(panels) * ph + 6, body, title)


def bars(rows: Sequence[tuple[object, float | None]], title: str = "values", highlight: float | None = None,
         percent: bool = False) -> str | None:
    """Horizontal bars, one value per row (per-layer gradient norms, rows now vs the reference's)."""
    shown = [(k, v) for k, v in ((k, num(v)) for k, v in rows[:MAX_MARKS // 2]) if v is not None]
    if not shown:
        return None
    top = max(abs(v) for _, v in shown) or 1.0
    left, bar, h = 150, 200, 10 + 24 * len(shown)
    body = []
    for i, (k, v) in enumerate(shown):
        y = 8 + 24 * i
        w = bar * abs(v) / top
        colour = BAD if highlight is not None and v >= highlight else BATCH
        body.append(_text(left - 8, y + 13, _label(k, 20), "end", size=12))
        body.append(f'<rect x="{left}" y="{y + 2}" width="{max(w, 1):.1f}" height="15" fill="{colour}"/>')
        body.append(_text(left + w + 4, y + 14, escape(f"{v:.1%}" if percent else fmt(v)), size=12))
    return _svg(h, body, title)


def intervals(rows: Sequence[tuple[object, float | None, float | None, object]], overall: float | None,
              limit: float | None, title: str = "slices") -> str | None:
    """Slice metrics with their confidence bound (a dot and a whisker to the optimistic end), against the
    overall value and the limit the gate applied."""
    shown = [(k, v, b, n) for k, v, b, n in ((k, num(v), num(b), n) for k, v, b, n in rows[: MAX_MARKS // 2])
             if v is not None]
    if not shown:
        return None
    vals = [x for _, v, b, _ in shown for x in (v, b) if x is not None]
    vals += [x for x in (num(overall), num(limit)) if x is not None]
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.08 or 0.05
    lo, hi = lo - pad, hi + pad
    left, right = 170, W - 20
    h = 56 + 28 * len(shown)

    def x(v: float) -> float:
        return left + (right - left) * (v - lo) / (hi - lo)

    body = []
    for value, name, colour in ((num(overall), "overall", OK), (num(limit), "limit", BAD)):
        if value is not None:
            body.append(f'<line x1="{x(value):.1f}" y1="22" x2="{x(value):.1f}" y2="{h - 8}" stroke="{colour}" '
                        'stroke-dasharray="4 3"/>')
            anchor = "end" if x(value) > W - 70 else "start" if x(value) < left + 40 else "middle"
            body.append(_text(x(value), 16 if name == "limit" else 30, f"{name} {escape(fmt(value))}", anchor,
                              colour, 12))
    for i, (k, v, b, n) in enumerate(shown):
        y = 50 + 28 * i
        body.append(_text(left - 8, y + 4, f"{_label(k, 14)} (n={escape(str(n)[:12])})", "end", size=12))
        if b is not None:
            body.append(f'<line x1="{x(v):.1f}" y1="{y}" x2="{x(b):.1f}" y2="{y}" stroke="{BATCH}" '
                        'stroke-width="3"/>')
        body.append(f'<circle cx="{x(v):.1f}" cy="{y}" r="5" fill="{BAD}"/>')
    return _svg(h, body, title)
