"""The report page's Markdown twin, for viewers that render Markdown but not HTML (a Prefect artifact): the same
order — verdict, top cause, what is new, what changed, then the findings — with each finding as a paragraph,
never a table cell, so a long message or cause is wrapped, not cut. Bounded like the page: at most
`max_findings` findings and each text cut at a stated length, with a link to the full page when there is one.
`findings_table` gives the same findings as rows, for a viewer's table (Prefect's table artifact).
"""

from __future__ import annotations

from typing import Any

from mlguard_orchestration.report import Finding, Report

_LABEL = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR"}


def _md(text: object, limit: int) -> str:
    """Text from the report, cut to `limit` characters, with Markdown's and HTML's active characters
    neutralised (a finding must not turn into a link, an image or markup)."""
    s = str(text)
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    for ch in "\\`*_[]<>|#!":
        s = s.replace(ch, "\\" + ch)
    return s.replace("\n", " ")


def to_markdown(report: Report, page: str | None = None, max_findings: int = 20) -> str:
    """`report` in Markdown; `page` is where its HTML page is (a URL or path), linked at the top."""
    name = report.guard[:120].replace("`", "'").replace("\n", " ")  # a code span: shown as is, never markup
    out = [f"### {_LABEL[report.status]} — guard `{name}`", ""]
    if page is not None:
        out += [f"Report page with pictures: <{page.replace('>', '%3E').replace(' ', '%20')}>", ""]
    if report.error is not None:
        out += [f"The guard could not run (**{_md(report.error.type, 80)}**): {_md(report.error.message, 2000)}", ""]
    cause = report.top_cause
    if cause is not None:
        out += [f"**Likely cause ({cause.confidence:.0%}):** {_md(cause.summary, 500)}  ",
                f"**Next check:** {_md(cause.next_check, 500)}  ", f"**Fix:** {_md(cause.fix, 500)}", ""]
    if report.since_last_run is not None:
        out += [f"_{_md(report.since_last_run.line(), 600)}_", ""]
    if report.changes:
        out += ["**Changed since the last good run:**", ""]
        out += [f"- {_md(c.summary, 300)} (`{_md(c.code, 60)}`)" for c in report.changes[:3]] + [""]
    if report.model is not None and report.model.metrics:
        values = ", ".join(f"{_md(k, 40)} {v:.4g}" for k, v in list(report.model.metrics.items())[:8])
        out += [f"_model {_md(report.model.model or '?', 80)} on {report.model.eval_rows:,} rows: {values}_", ""]
    for i, f in enumerate(report.findings[:max_findings], 1):
        out += _finding(i, f)
    if len(report.findings) > max_findings:
        out += [f"… {len(report.findings) - max_findings} more finding(s) on the report page.", ""]
    out.append(f"_{report.checks_run} checks in {report.duration_s:.2f}s_")
    return "\n".join(out)


def _finding(i: int, f: Finding) -> list[str]:
    where = ", ".join(f.columns[:5])
    lines = [f"{i}. **{f.severity.upper()}** `{_md(f.code, 80)}`" + (f" ({_md(where, 200)})" if where else "")
             + f" — {_md(f.message, 1500)}"]
    if f.causes:
        c = f.causes[0]
        lines.append(f"   - likely cause ({c.confidence:.0%}): {_md(c.summary, 500)}; next: {_md(c.next_check, 300)}")
    return [*lines, ""]


def findings_table(report: Report) -> list[dict[str, Any]]:
    """One row per finding, worst first, with its most likely cause: the table artifact."""
    rows = []
    for f in report.findings:
        cause = f.causes[0] if f.causes else None
        rows.append({"severity": f.severity, "code": f.code, "table": f.table or "", "columns": ", ".join(f.columns),
                     "message": f.message, "likely_cause": cause.summary if cause else "",
                     "cause_code": cause.code if cause else "",
                     "confidence": round(cause.confidence, 2) if cause else None})
    return rows
