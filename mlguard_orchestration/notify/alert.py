"""What one notification says, built once by an adapter and rendered the same way by every notifier.

The wording helpers live here so Slack, the webhook and email cannot drift apart: a title that says what
failed where, a headline that leads with the most likely cause, the top causes with what to check next, the
"where" lines, and a link to the run. Everything is bounded, whatever the report holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mlguard_orchestration.notify._secrets import Secrets
from mlguard_orchestration.notify.links import WHERE_ORDER, place, run_url
from mlguard_orchestration.report import Cause, Report

MAX_ERROR_CHARS = 2_000
MAX_HEADLINE_CHARS = 300
MAX_NEWS_CHARS = 600
MAX_TITLE_CHARS = 150
MAX_WHERE = 10
MAX_WHERE_CHARS = 200
MAX_URL_CHARS = 2_000  # a longer link is left out (a cut URL leads nowhere)

Event = Literal["mlguard.guard_failed", "mlguard.task_failed"]


def clip(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars`, with an ellipsis when it was cut."""
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


class Alert(BaseModel):
    """A failed task: the guard's report (None when it failed for another reason), where it ran, the task's
    own exception and a link to the run."""

    model_config = ConfigDict(frozen=True)

    report: Report | None = None
    where: dict[str, str] = Field(default_factory=dict, description="orchestrator, dag_id|flow_name, "
                                  "task_id|task_name, run_id|flow_run_id, try_number, …")
    error: str | None = Field(default=None, description="The task's own exception, 'Type: message' (bounded).")
    url: str | None = Field(default=None, description="A link to the run or task in the UI, when known.")

    @classmethod
    def of(cls, report: Report | None, *, where: Mapping[str, str] | None = None,
           error: BaseException | str | None = None, url: str | None = None) -> Alert:
        """The alert for a failure; `where` defaults to the report's context."""
        if where is None:
            where = report.context if report is not None else {}
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        return cls(report=report, where={str(k): str(v) for k, v in where.items()},
                   error=None if error is None else clip(error, MAX_ERROR_CHARS), url=url)

    @property
    def guard_failed(self) -> bool:
        """True when a guard stopped the task (its report failed or could not run)."""
        return self.report is not None and not self.report.passed

    @property
    def event(self) -> Event:
        return "mlguard.guard_failed" if self.guard_failed else "mlguard.task_failed"

    @property
    def place(self) -> str:
        """'dag.task' or 'flow.task': where it failed, in one short phrase."""
        return place(self.where)

    @property
    def title(self) -> str:
        if self.guard_failed:
            assert self.report is not None
            verb = "could not run" if self.report.status == "error" else "failed"
            what = f"Guard {self.report.guard!r} {verb}"
        else:
            what = "Task failed"
        return clip(f"{what} in {self.place}" if self.place else what, MAX_TITLE_CHARS)

    @property
    def headline(self) -> str:
        """One line that leads with the most likely cause, then what was measured."""
        if not self.guard_failed:
            return clip(self.error or "the task failed (no exception was recorded)", MAX_HEADLINE_CHARS)
        assert self.report is not None
        cause, top = self.report.top_cause, self.report.top_finding
        if cause is None or top is None:
            return clip(self.report.headline(), MAX_HEADLINE_CHARS)
        return clip(f"{cause.summary} — [{top.code}] {top.message}", MAX_HEADLINE_CHARS)

    @property
    def news(self) -> str | None:
        """What is new since the guard's previous run, in one bounded sentence ("2 new, 1 resolved, 3 persisting —
        new: …"): at 3 a.m. it tells the news from a known problem. None without the store's run history."""
        if self.report is None or self.report.since_last_run is None:
            return None
        return clip(self.report.since_last_run.line(), MAX_NEWS_CHARS)

    def causes(self, limit: int = 3) -> list[Cause]:
        """The most likely causes across the worst findings, best first, without repeats."""
        if self.report is None:
            return []
        worst = [f for f in self.report.findings if f.severity == "fail"] or self.report.findings
        seen: set[tuple[str, str]] = set()
        out: list[Cause] = []
        for cause in sorted((c for f in worst for c in f.causes), key=lambda c: -c.confidence):
            if (cause.code, cause.summary) not in seen:
                seen.add((cause.code, cause.summary))
                out.append(cause)
        return out[:limit]

    def where_lines(self) -> list[tuple[str, str]]:
        """(key, value) pairs in reading order, at most MAX_WHERE, each value bounded."""
        keys = [k for k in WHERE_ORDER if k in self.where] + [k for k in self.where if k not in WHERE_ORDER]
        return [(clip(k, 50), clip(self.where[k], MAX_WHERE_CHARS)) for k in keys[:MAX_WHERE]]

    def link(self, base_url: str | None) -> str | None:
        """The alert's own url, else one built from `where` and the UI's `base_url`; None when longer than
        MAX_URL_CHARS."""
        link = self.url or run_url(base_url, self.where)
        return link if link is not None and len(link) <= MAX_URL_CHARS else None

    def scrubbed(self, secrets: Secrets) -> Alert:
        """This alert without any form of `secrets` (and without credential fields) in its text: the task's
        exception, where it ran, the link, and the report's strings."""
        report = self.report
        if report is not None:
            text = report.model_dump_json()
            clean = secrets.scrub(text, fields=False)  # the values only: a report's own words stay intact
            if clean != text:
                try:
                    report = Report.model_validate_json(clean)
                except ValueError:  # a replacement broke the JSON: send the verdict without the details
                    report = Report(guard=secrets.scrub(report.guard), status=report.status,
                                    notes=["report withheld: it quoted a configured secret"])
        return self.model_copy(update={
            "report": report,
            "where": {secrets.scrub(k): secrets.scrub(v) for k, v in self.where.items()},
            "error": None if self.error is None else secrets.scrub(self.error),
            "url": None if self.url is None else secrets.scrub(self.url),
        })
