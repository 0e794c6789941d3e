"""The report page: one self-contained HTML file, verdict and top cause first, then each finding with its
evidence drawn, what is new since the previous run and what changed since the last good one.

No JavaScript, no stylesheet or font to fetch, pictures as inline SVG: the page opens from a file, an e-mail
attachment, an object store or the Airflow UI alike, and reads on a phone (one column, wide content scrolls
inside its box). Everything from the report is escaped. The page is never larger than MAX_PAGE_BYTES, whatever
the report: it is rendered with pictures for the first findings and one line for the next ones, and when that
is still too large (thousands of findings, megabyte messages, huge names) with fewer of each, down to the
verdict alone.
"""

from __future__ import annotations

from html import escape
from typing import Any

from mlguard_orchestration.history import FindingRef
from mlguard_orchestration.html.evidence import evidence_rows, pictures
from mlguard_orchestration.html.svg import fmt, num
from mlguard_orchestration.report import Finding, Report

MAX_PAGE_BYTES = 256_000
# (findings drawn with pictures, findings listed in one line): tried in order until the page fits
_LEVELS = ((20, 200), (10, 60), (5, 20), (2, 5), (1, 0))
_LABEL = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR"}

CSS = """
:root{--fail:#c92a2a;--warn:#e67700;--pass:#2b8a3e;--muted:#6c757d;--line:#dee2e6;--bg:#f8f9fa}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#212529;background:#fff}main{max-width:60rem;margin:0 auto;padding:12px}h1{font-size:1.3rem;margin:.2rem 0}
h2{font-size:1.1rem;margin:1.4rem 0 .4rem;border-bottom:1px solid var(--line)}h3{font-size:1rem;margin:.2rem 0}
.badge{display:inline-block;white-space:nowrap;padding:2px 10px;border-radius:4px;color:#fff;font-weight:700;letter-spacing:.05em}
.fail,.error{background:var(--fail)}.warn{background:var(--warn)}.pass{background:var(--pass)}
.meta{color:var(--muted);font-size:.9rem}.cause{border-left:4px solid var(--fail);background:var(--bg);
padding:8px 12px;margin:8px 0}.cause.warn{border-color:var(--warn)}.finding{border:1px solid var(--line);
border-radius:6px;padding:10px;margin:10px 0}.finding figure{margin:8px 0;overflow-x:auto}
code{font-size:.85em;background:var(--bg);padding:0 3px;border-radius:3px;overflow-wrap:anywhere}
p,li,td{overflow-wrap:anywhere}table{border-collapse:collapse;width:100%;font-size:.85rem}
td,th{border-top:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
.new{color:var(--fail);font-weight:600}.resolved{color:var(--pass)}ul{padding-left:1.2rem}
"""


Row = tuple[str, str, str]  # (task or guard, status, headline)


def to_html(report: Report, max_bytes: int = MAX_PAGE_BYTES, runs: list[Row] | None = None) -> str:
    """`report` as one HTML page of at most `max_bytes` bytes (UTF-8). `runs`, for a page about a whole
    pipeline run, lists every guard of the run above the report (the worst one's, typically)."""
    head = _runs(runs[:100]) if runs else ""
    for drawn, listed in _LEVELS:
        page = _page(report, drawn, listed, head=head)
        if len(page.encode()) <= max_bytes:
            return page
    return _page(report, 0, 0, minimal=True)


def _runs(rows: list[Row]) -> str:
    body = "".join(f'<tr><td><code>{_t(name, 100)}</code></td><td><span class="badge {_status(status)}">'
                   f"{_LABEL[_status(status)]}</span></td><td>{_t(line, 300)}</td></tr>" for name, status, line in rows)
    return (f"<h2>Guards in this run ({len(rows)})</h2><table><tr><th>task</th><th>verdict</th><th>headline</th>"
            f"</tr>{body}</table><h2>The worst report</h2>")


def _status(status: str) -> str:
    return status if status in _LABEL else "error"


def _t(value: Any, limit: int) -> str:
    """Text from the report, cut to `limit` characters and escaped."""
    s = str(value)
    return escape(s if len(s) <= limit else s[: limit - 1] + "…")


def _page(report: Report, drawn: int, listed: int, minimal: bool = False, head: str = "") -> str:
    status = report.status
    title = f"{_LABEL[status]} · {_t(report.guard, 80)}"
    body = [head, (f'<header><span class="badge {status}">{_LABEL[status]}</span> '
            f"<h1>guard <code>{_t(report.guard, 120)}</code></h1>"),
            f'<p class="meta">{report.checks_run} checks, {len(report.findings)} finding(s), '
            f"{report.duration_s:.2f} s, started {report.started_at:%Y-%m-%d %H:%M:%S} UTC"
            + (f" — {_where(report)}" if report.context else "") + "</p></header>"]
    if minimal:
        body.append(f"<p>{_t(report.headline(), 2000)}</p><p class=\"meta\">The full report is too large for "
                    "this page: read the JSON report.</p>")
        return _document(title, body)
    body += _verdict(report)
    body += _since_last_run(report)
    body += _changes(report)
    body += _model(report)
    if report.findings:
        body.append(f"<h2>Findings ({len(report.findings)}, most likely fault first)</h2>")
        body += [_finding(f, i) for i, f in enumerate(report.findings[:drawn], 1)]
        rest = report.findings[drawn:drawn + listed]
        if rest:
            body.append("<ul>" + "".join(f"<li>{_sev(f)} <code>{_t(f.code, 80)}</code> {_t(f.message, 300)}</li>"
                                         for f in rest) + "</ul>")
        hidden = len(report.findings) - drawn - len(rest)
        if hidden > 0:
            body.append(f'<p class="meta">{hidden} more finding(s) not shown on this page: read the JSON '
                        "report.</p>")
    body += _inputs(report)
    return _document(title, body)


def _document(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{title}</title><style>{CSS}</style></head><body><main>{''.join(body)}"
            "<p class=\"meta\">mlguard-orchestration report page</p></main></body></html>")


def _where(report: Report) -> str:
    keys = ("dag_id", "task_id", "run_id", "flow_name", "flow_run_name", "task_run_name", "try_number")
    shown = [(k, report.context[k]) for k in keys if k in report.context] or list(report.context.items())[:4]
    return ", ".join(f"{_t(k, 30)} <code>{_t(v, 120)}</code>" for k, v in shown[:6])


def _sev(f: Finding) -> str:
    return f'<span class="badge {f.severity}">{f.severity.upper()}</span>'


def _verdict(report: Report) -> list[str]:
    out = []
    if report.error is not None:
        out.append(f'<div class="cause"><h3>The guard could not run ({_t(report.error.type, 80)})</h3>'
                   f"<p>{_t(report.error.message, 2000)}</p><p class=\"meta\">"
                   + ("retryable: the source may come back" if report.error.retryable else
                      "not retryable: the spec or the code must change") + "</p></div>")
    cause, top = report.top_cause, report.top_finding
    if cause is not None:
        out.append(f'<div class="cause {report.status}"><h3>Likely cause ({cause.confidence:.0%}): '
                   f"{_t(cause.summary, 500)}</h3><p><b>Next check:</b> {_t(cause.next_check, 500)}<br>"
                   f"<b>Fix:</b> {_t(cause.fix, 500)}</p><p class=\"meta\"><code>{_t(cause.code, 80)}</code>"
                   + (f" explains <code>{_t(top.code, 80)}</code>" if top is not None else "") + "</p></div>")
    elif top is not None:
        out.append(f'<div class="cause {report.status}"><h3>{_t(top.message, 500)}</h3>'
                   "<p class=\"meta\">no likely cause could be named from the evidence</p></div>")
    elif report.error is None:
        out.append(f"<p>All {report.checks_run} checks passed.</p>")
    return out


def _since_last_run(report: Report) -> list[str]:
    """Counts, the new findings by name (their cards follow below), the resolved ones with their messages
    (they appear nowhere else), the persisting ones by name."""
    s = report.since_last_run
    if s is None:
        return []
    out = [f"<h2>Since the previous run</h2><p>The previous run ({_t(s.previous_status, 10)}, "
           f"{s.previous_at:%Y-%m-%d %H:%M} UTC) had {s.persisting_count + s.resolved_count} finding(s): "
           f"<span class=\"new\">{s.new_count} new</span>, <span class=\"resolved\">{s.resolved_count} "
           f"resolved</span>, {s.persisting_count} persisting"
           + (" (counts are a floor: a run had more findings than a record keeps)" if s.partial else "") + ".</p>"]
    if s.new:
        out.append("<p><b class=\"new\">New:</b> " + _names(s.new, s.new_count) + "</p>")
    if s.resolved:
        items = "".join(f"<li><code>{_t(r.code, 80)}</code> {_t(r.message, 160)}</li>" for r in s.resolved)
        more = f"<li>… {s.resolved_count - len(s.resolved)} more</li>" if s.resolved_count > len(s.resolved) else ""
        out.append(f'<p><b class="resolved">Resolved:</b></p><ul>{items}{more}</ul>')
    if s.persisting:
        out.append("<p><b>Persisting:</b> " + _names(s.persisting, s.persisting_count) + "</p>")
    return out


def _names(refs: list[FindingRef], count: int) -> str:
    def one(r: FindingRef) -> str:
        where = ", ".join(r.columns) or r.table or ""
        was = f" (was {_t(r.previous_severity, 5)})" if r.previous_severity else ""
        return f"<code>{_t(r.code, 80)}</code>" + (f" {_t(where, 80)}" if where else "") + was

    return "; ".join(one(r) for r in refs) + (f"; … {count - len(refs)} more" if count > len(refs) else "")


def _changes(report: Report) -> list[str]:
    if not report.changes:
        return []
    rows = "".join(f"<tr><td>{c.relevance:.0%}</td><td>{_t(c.summary, 300)}</td><td><code>{_t(c.code, 60)}"
                   "</code></td></tr>" for c in report.changes[:10])
    more = (f'<p class="meta">{len(report.changes) - 10} more change(s) in the JSON report</p>'
            if len(report.changes) > 10 else "")
    return [("<h2>Changed since the last good run</h2><table><tr><th>relevance</th><th>change</th><th>code</th>"
            f"</tr>{rows}</table>{more}")]


def _model(report: Report) -> list[str]:
    m = report.model
    if m is None or not m.metrics:
        return []
    rows = "".join(f"<tr><td>{_t(k, 60)}</td><td>{escape(fmt(num(v)))}</td></tr>"
                   for k, v in list(m.metrics.items())[:20])
    return [(f"<h2>Model {_t(m.model or '', 80)}</h2><p class=\"meta\">measured on {m.eval_rows:,} evaluation "
            f"rows</p><table><tr><th>metric</th><th>value</th></tr>{rows}</table>")]


def _finding(f: Finding, i: int) -> str:
    where = ", ".join(f.columns[:5])
    head = (f'<section class="finding"><h3>{i}. {_sev(f)} <code>{_t(f.code, 80)}</code>'
            + (f" {_t(where, 200)}" if where else "") + "</h3>"
            f"<p>{_t(f.message, 1500)}</p><p class=\"meta\">check <code>{_t(f.check, 160)}</code>"
            + (f", table <code>{_t(f.table, 120)}</code>" if f.table else "")
            + (f", measured {_t(_value(f.value), 40)}" if f.value is not None else "")
            + (f", limit {_t(_value(f.threshold), 40)}" if f.threshold is not None else "") + "</p>")
    causes = "".join(f'<div class="cause {f.severity}"><b>Likely cause {j} ({c.confidence:.0%}):</b> '
                     f"{_t(c.summary, 400)}<br><b>Next check:</b> {_t(c.next_check, 400)}<br><b>Fix:</b> "
                     f"{_t(c.fix, 400)} <code>{_t(c.code, 60)}</code></div>" for j, c in enumerate(f.causes[:3], 1))
    pics = "".join(f"<figure>{p}</figure>" for p in pictures(f))
    rows = evidence_rows(f)
    table = ("<details><summary>evidence</summary><table>"
             + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table></details>") if rows else ""
    return head + causes + pics + table + "</section>"


def _value(v: Any) -> str:
    n = num(v)
    return fmt(n) if n is not None else str(v)


def _inputs(report: Report) -> list[str]:
    out = []
    if report.tables:
        rows = "".join(f"<tr><td>{_t(name, 80)}</td><td>{'?' if t.rows is None else f'{t.rows:,}'}</td>"
                       f"<td>{_t(t.source, 200)}</td></tr>" for name, t in list(report.tables.items())[:20])
        out.append(f"<h2>Inputs</h2><table><tr><th>table</th><th>rows</th><th>source</th></tr>{rows}</table>")
    if report.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_t(n, 300)}</li>" for n in report.notes[:10]) + "</ul>")
    return out
