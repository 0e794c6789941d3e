"""The one model for every guard outcome: what failed, the evidence, the ranked likely causes, what to do next.

A Report is what adapters push to XCom or a Prefect artifact and what notifiers render, so it is
JSON-serialisable, and its compact form is bounded (48 KB by default) whatever the data: findings are ordered
worst-first and trimmed from the end with a note saying so. Evidence holds aggregates (counts, rates,
quantiles), never raw row values unless sample values were asked for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlguard_orchestration.catalogue import CATALOGUE

Status = Literal["pass", "warn", "fail", "error"]
Severity = Literal["warn", "fail"]

COMPACT_MAX_BYTES = 48_000
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


def _known(code: str, kind: str) -> str:
    entry = CATALOGUE.get(code)
    if entry is None or entry.kind != kind:
        raise ValueError(f"{kind} code {code!r} is not in the catalogue (mlguard_orchestration/catalogue.py)")
    return code


class Cause(BaseModel):
    """A likely root cause, inferred from evidence, with what to check next and how to fix it."""

    model_config = ConfigDict(frozen=True)

    code: str
    summary: str = Field(description="The specific diagnosis, e.g. \"join is missing key column 'snapshot_date'\".")
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: dict[str, Any] = Field(default_factory=dict)
    next_check: str
    fix: str

    _check_code = field_validator("code")(classmethod(lambda cls, v: _known(v, "cause")))


class Finding(BaseModel):
    """One check that did not pass, with its measurement and the causes ranked most likely first."""

    model_config = ConfigDict(frozen=True)

    code: str
    check: str = Field(description="Which check produced it, e.g. 'null_rate(monthly_spend_usd)'.")
    severity: Severity
    message: str
    table: str | None = None
    columns: list[str] = Field(default_factory=list)
    value: float | int | str | None = None
    threshold: float | int | str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    causes: list[Cause] = Field(default_factory=list)

    _check_code = field_validator("code")(classmethod(lambda cls, v: _known(v, "finding")))

    @field_validator("causes")
    @classmethod
    def _ranked(cls, causes: list[Cause]) -> list[Cause]:
        return sorted(causes, key=lambda c: -c.confidence)


class GuardErrorInfo(BaseModel):
    """The guard's own failure (unreadable source, impossible spec): never confused with failed data.

    `retryable` is the one switch adapters use: a source may come back, a spec will not fix itself."""

    code: str
    type: str
    message: str
    retryable: bool

    _check_code = field_validator("code")(classmethod(lambda cls, v: _known(v, "finding")))

    @classmethod
    def of(cls, exc: Exception) -> GuardErrorInfo:
        from mlguard_orchestration.errors import SourceError

        source = isinstance(exc, SourceError)
        return cls(code="guard.source_error" if source else "guard.spec_error", type=type(exc).__name__,
                   message=getattr(exc, "message", str(exc)), retryable=source)


class TableSummary(BaseModel):
    source: str
    rows: int | None = None
    columns: int | None = None


class Report(BaseModel):
    """The outcome of one guard run."""

    schema_version: int = 1
    guard: str
    status: Status
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    tables: dict[str, TableSummary] = Field(default_factory=dict)
    checks_run: int = 0
    findings: list[Finding] = Field(default_factory=list)
    error: GuardErrorInfo | None = None
    notes: list[str] = Field(default_factory=list)
    context: dict[str, str] = Field(default_factory=dict, description="Where it ran: dag/flow, task, run, try.")

    @staticmethod
    def status_of(findings: list[Finding]) -> Status:
        worst = max((f.severity for f in findings), key=lambda s: _RANK[s], default="pass")
        return worst  # type: ignore[return-value]

    @property
    def passed(self) -> bool:
        """True for pass and warn: warnings stay visible but do not stop the pipeline."""
        return self.status in ("pass", "warn")

    @property
    def top_finding(self) -> Finding | None:
        ranked = sorted(self.findings, key=lambda f: (-_RANK[f.severity], -(f.causes[0].confidence if f.causes else 0)))
        return ranked[0] if ranked else None

    @property
    def top_cause(self) -> Cause | None:
        """The most likely cause across the worst findings."""
        worst = [f for f in self.findings if f.severity == self.status] or self.findings
        causes = [c for f in worst for c in f.causes]
        return max(causes, key=lambda c: c.confidence, default=None)

    def headline(self) -> str:
        """One line for a log or an exception message, leading with the top cause."""
        if self.error is not None:
            return f"guard {self.guard!r} could not run: {self.error.message}"
        if not self.findings:
            return f"guard {self.guard!r} passed {self.checks_run} checks"
        top = self.top_finding
        assert top is not None
        line = f"guard {self.guard!r} {self.status}: [{top.code}] {top.message}"
        cause = self.top_cause
        if cause is not None:
            line += f" — likely cause: {cause.summary}"
        others = len(self.findings) - 1
        return line + (f" (+{others} more finding{'s' if others > 1 else ''})" if others else "")

    def raise_for_status(self) -> Report:
        """Raise GuardFailed on fail, the guard's own SourceError/SpecError on error; else return self."""
        from mlguard_orchestration.errors import GuardFailed, SourceError, SpecError

        if self.status == "fail":
            raise GuardFailed(self)
        if self.error is not None:
            raise (SourceError if self.error.retryable else SpecError)(self.error.message)
        return self

    def compact(self, max_bytes: int = COMPACT_MAX_BYTES) -> dict[str, Any]:
        """A JSON-ready dict no larger than `max_bytes` when serialised; trimmed findings are noted."""
        data = self.model_dump(mode="json")
        ranked = sorted(data["findings"], key=lambda f: -_RANK[f["severity"]])
        data["findings"] = ranked

        def size() -> int:
            return len(json.dumps(data, separators=(",", ":")).encode())

        if size() <= max_bytes:
            return data
        # First shrink bulky evidence beyond the first findings, then drop findings from the end.
        for finding in ranked[3:]:
            finding["evidence"] = {"omitted": "evidence trimmed to keep the report small"}
            for cause in finding["causes"]:
                cause["evidence"] = {}
        dropped = 0
        while size() > max_bytes and len(data["findings"]) > 1:
            data["findings"].pop()
            dropped += 1
        if dropped:
            data["notes"] = [*data["notes"], f"{dropped} lower-ranked findings omitted to stay under {max_bytes} bytes"]
        if size() > max_bytes:  # one enormous finding: keep its code and message only
            for f in data["findings"]:
                f["evidence"] = {"omitted": "evidence trimmed to keep the report small"}
                f["causes"] = [{**c, "evidence": {}} for c in f["causes"][:3]]
                f["message"] = f["message"][:2000]
            data["notes"] = [n[:500] for n in data["notes"][:20]]
        return data

    def to_json(self, compact: bool = True) -> str:
        return json.dumps(self.compact() if compact else self.model_dump(mode="json"), indent=2)
