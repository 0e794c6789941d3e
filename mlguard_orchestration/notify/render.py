"""A report in words, readable at 3 a.m.: the verdict, the top cause and what to do, then the evidence.

Plain text for logs and exception messages, Markdown for artifacts and chat. Both are bounded: at most
`max_findings` findings and three causes each, and the three likeliest changes since the last good run, which
come right after the verdict because "what changed?" is the first question asked of a failure."""

from __future__ import annotations

from mlguard_orchestration.report import Finding, Report

_ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR"}


def _cause_lines(f: Finding, bullet: str) -> list[str]:
    lines = []
    for i, c in enumerate(f.causes[:3], 1):
        lines.append(f"{bullet}likely cause {i} ({c.confidence:.0%}): {c.summary} [{c.code}]")
        lines.append(f"{bullet}  next: {c.next_check}")
        lines.append(f"{bullet}  fix:  {c.fix}")
    return lines


_MAX_CHANGES = 3


def _metrics(report: Report) -> str | None:
    if report.model is None or not report.model.metrics:
        return None
    values = ", ".join(f"{k} {v:.4g}" for k, v in list(report.model.metrics.items())[:8])
    return f"model {report.model.model or '?'} on {report.model.eval_rows} evaluation rows: {values}"


def to_text(report: Report, max_findings: int = 10) -> str:
    out = [(f"{_ICON[report.status]} guard {report.guard!r}: {report.checks_run} checks, "
            f"{len(report.findings)} finding(s), {report.duration_s:.2f}s")]
    if report.changes:
        out.append("  changed since the last good run:")
        out += [f"    - {c.summary} [{c.code}]" for c in report.changes[:_MAX_CHANGES]]
    if (metrics := _metrics(report)) is not None:
        out.append(f"  {metrics}")
    for name, t in report.tables.items():
        out.append(f"  table {name}: {t.rows if t.rows is not None else '?'} rows from {t.source}")
    if report.error:
        out.append(f"  the guard could not run ({report.error.type}): {report.error.message}")
    for f in report.findings[:max_findings]:
        out.append(f"  [{f.severity.upper()}] {f.code}: {f.message}")
        out += _cause_lines(f, "      ")
    if len(report.findings) > max_findings:
        out.append(f"  … {len(report.findings) - max_findings} more finding(s) in the full report")
    out += [f"  note: {n}" for n in report.notes]
    return "\n".join(out)


def to_markdown(report: Report, max_findings: int = 10) -> str:
    out = [f"### {_ICON[report.status]} — guard `{report.guard}`", ""]
    if report.error:
        out += [f"The guard could not run (**{report.error.type}**): {report.error.message}", ""]
    cause = report.top_cause
    if cause is not None:
        out += [f"**Likely cause:** {cause.summary}  ", f"**Next check:** {cause.next_check}  ",
                f"**Fix:** {cause.fix}", ""]
    if report.changes:
        out += ["**Changed since the last good run:**", ""]
        out += [f"- {c.summary} (`{c.code}`)" for c in report.changes[:_MAX_CHANGES]] + [""]
    if (metrics := _metrics(report)) is not None:
        out += [f"_{metrics}_", ""]
    if report.findings:
        out += ["| severity | code | finding |", "|---|---|---|"]
        for f in report.findings[:max_findings]:
            message = f.message.replace("|", "\\|")
            out.append(f"| {f.severity} | `{f.code}` | {message} |")
        out.append("")
    out += [f"_{report.checks_run} checks in {report.duration_s:.2f}s_"]
    return "\n".join(out)
