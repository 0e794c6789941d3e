"""The one model for every guard outcome: what failed, the evidence, the ranked likely causes, what to do next.

A Report is what adapters push to XCom or a Prefect artifact and what notifiers render, so it is
JSON-serialisable, and its compact form is bounded (48 KB by default) whatever the data: findings are ordered
worst-first and trimmed from the end with a note saying so. Evidence holds aggregates (counts, rates,
quantiles), never raw row values unless sample values were asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlguard_orchestration._json import clip_text, cut, json_size, shrink
from mlguard_orchestration.catalogue import CATALOGUE, require
from mlguard_orchestration.errors import GuardFailed, SourceError, SpecError
from mlguard_orchestration.fingerprint import Change, Fingerprint
from mlguard_orchestration.history import SinceLastRun

Status = Literal["pass", "warn", "fail", "error"]
Severity = Literal["warn", "fail"]

COMPACT_MAX_BYTES = 48_000
COMPACT_MIN_BYTES = 2_000  # the smallest bound compact() accepts: room for the skeleton of any report
STATUS_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


class Cause(BaseModel):
    """A likely root cause, inferred from evidence, with what to check next and how to fix it."""

    model_config = ConfigDict(frozen=True)

    code: str
    summary: str = Field(description="The specific diagnosis, e.g. \"join is missing key column 'snapshot_date'\".")
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: dict[str, Any] = Field(default_factory=dict)
    next_check: str
    fix: str

    _check_code = field_validator("code")(classmethod(lambda cls, v: require(v, "cause")))


def cause(code: str, summary: str, confidence: float, evidence: dict[str, Any] | None = None) -> Cause:
    """A Cause whose next check and fix come from the catalogue entry of `code` (how checks, diagnoses, the
    gate and the training guard all build theirs); `confidence` is clipped to [0, 1]."""
    entry = CATALOGUE[code]
    return Cause(code=code, summary=summary, confidence=round(min(max(confidence, 0.0), 1.0), 3),
                 evidence=evidence or {}, next_check=entry.next_check, fix=entry.fix)


def sample_value(value: Any, redact: bool) -> str:
    """A data value as evidence shows it (sample values are opt-in): its text, or with `redact` a short sha256
    digest of it — equal values keep equal digests, so a reader still sees repeats and matches."""
    text = str(value)
    return hashlib.sha256(text.encode()).hexdigest()[:10] if redact else text


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

    _check_code = field_validator("code")(classmethod(lambda cls, v: require(v, "finding")))

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

    _check_code = field_validator("code")(classmethod(lambda cls, v: require(v, "finding")))

    @classmethod
    def internal(cls, exc: BaseException) -> GuardErrorInfo:
        """An exception the guard did not expect: a bug of mlguard's, reported as such (never as bad data)."""
        text = str(exc).strip().splitlines()
        return cls(code="guard.internal_error", type=type(exc).__name__, retryable=False,
                   message=f"the guard failed unexpectedly ({type(exc).__name__}: {text[0][:300] if text else ''}); "
                           "this is a bug in mlguard-orchestration, not in your data — please report it")

    @classmethod
    def of(cls, exc: Exception) -> GuardErrorInfo:
        source = isinstance(exc, SourceError)
        return cls(code="guard.source_error" if source else "guard.spec_error", type=type(exc).__name__,
                   message=getattr(exc, "message", str(exc)), retryable=source)


class TableSummary(BaseModel):
    source: str
    rows: int | None = None
    columns: int | None = None


class ModelSummary(BaseModel):
    """What an evaluate → register gate measured: enough to register the model as the next champion.

    `eval_digest` identifies the evaluation data (row count and a hash of the targets, in order), so a
    later gate only compares metrics measured on the same rows."""

    model: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    eval_rows: int
    eval_digest: str


class Champion(BaseModel):
    """A registered model's metrics; `eval_rows`/`eval_digest` are None when the metrics were given by hand
    (then the gate cannot verify they come from the same evaluation data, and says so)."""

    model: str
    metrics: dict[str, float]
    eval_rows: int | None = None
    eval_digest: str | None = None
    registered_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    fingerprint: Fingerprint | None = Field(None, description="The run that produced the champion.")


class Report(BaseModel):
    """The outcome of one guard run.

    `fingerprint` is what the run ran on; `changes`, on a failed run with a store, what differs from the
    guard's last passing run, most likely explanation first; `since_last_run`, with a store, which findings are
    new, resolved and persisting against the guard's previous run."""

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
    model: ModelSummary | None = None
    fingerprint: Fingerprint | None = None
    changes: list[Change] = Field(default_factory=list)
    since_last_run: SinceLastRun | None = None

    @field_validator("findings")
    @classmethod
    def _ranked(cls, findings: list[Finding]) -> list[Finding]:
        """Most likely fault first: fails before warns, then findings whose top cause is surest (a unit change
        named at 95 % ranks above drift nobody can explain); ties keep the order the checks reported."""
        return sorted(findings, key=finding_rank)

    @classmethod
    def of_error(cls, guard: str, exc: Exception, context: Mapping[str, str] | None = None) -> Report:
        """The report of a guard that could not run: status 'error', the guard's own trouble, never data's."""
        return cls(guard=guard, status="error", error=GuardErrorInfo.of(exc), context=dict(context or {}))

    @staticmethod
    def status_of(findings: list[Finding]) -> Status:
        if not findings:
            return "pass"
        return max((f.severity for f in findings), key=lambda s: STATUS_RANK[s])

    @property
    def passed(self) -> bool:
        """True for pass and warn: warnings stay visible but do not stop the pipeline."""
        return self.status in ("pass", "warn")

    @property
    def top_finding(self) -> Finding | None:
        return self.findings[0] if self.findings else None

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
        line += f" (+{others} more finding{'s' if others > 1 else ''})" if others else ""
        if self.changes:
            line += f"; changed since the last good run: {self.changes[0].summary}"
        return line

    def raise_for_status(self) -> Report:
        """Raise GuardFailed on fail, the guard's own SourceError/SpecError on error; else return self."""
        if self.status == "fail":
            raise GuardFailed(self)
        if self.error is not None:
            raise (SourceError if self.error.retryable else SpecError)(self.error.message)
        return self

    def compact(self, max_bytes: int = COMPACT_MAX_BYTES) -> dict[str, Any]:
        """A JSON-ready dict whose `json.dumps` takes at most `max_bytes` bytes (see `_json`: a character may
        cost up to 12 of them), whatever the report holds; what was trimmed is noted.

        The worst findings are kept whole as long as possible: each other part gets a byte budget first
        (notes, context, tables, changes, fingerprint, model, error), then bulky evidence goes beyond the first
        findings, then findings are dropped from the end; a last, measured cut of everything guarantees the
        bound."""
        if max_bytes < COMPACT_MIN_BYTES:
            raise ValueError(f"max_bytes={max_bytes} is too small for a compact report: use at least "
                             f"{COMPACT_MIN_BYTES}")
        data = self.model_dump(mode="json")
        ranked = data["findings"]  # already most likely first (see `_ranked`)
        if json_size(data) <= max_bytes:
            return data
        omitted = {"omitted": "evidence trimmed to keep the report small"}
        data["guard"] = clip_text(data["guard"], 400)
        data["notes"] = shrink(data["notes"][:20], max_bytes // 16) or []
        data["context"] = shrink(data["context"], max_bytes // 16) or {}
        data["tables"] = shrink(data["tables"], max_bytes // 16) or {}
        data["changes"] = shrink([cut(c, 1_200, 20) for c in data["changes"][:20]], max_bytes // 6) or []
        if self.since_last_run is not None:
            data["since_last_run"] = self.since_last_run.bounded(5, 120)
        if data.get("fingerprint"):  # schemas of wide inputs are the bulk: keep counts and digests
            fp = data["fingerprint"]
            fp["packages"] = dict(list(fp["packages"].items())[:30])
            fp["inputs"] = {k: {**v, "columns": dict(list(v["columns"].items())[:20])}
                            for k, v in list(fp["inputs"].items())[:20]}
            data["fingerprint"] = shrink(fp, max_bytes // 6)
        if data.get("model"):
            data["model"] = shrink(data["model"], max_bytes // 16)
        if data.get("error"):
            data["error"]["message"] = clip_text(data["error"]["message"], min(8_000, max_bytes // 12))
        for i, finding in enumerate(ranked):
            finding["message"] = clip_text(finding["message"], 4_000)
            finding["check"] = clip_text(finding["check"], 400)
            finding["table"] = None if finding["table"] is None else clip_text(finding["table"], 400)
            finding["columns"] = [clip_text(c, 400) for c in finding["columns"][:20]]
            finding["causes"] = [{**c, "summary": clip_text(c["summary"], 1_000), "next_check":
                                  clip_text(c["next_check"], 1_000), "fix": clip_text(c["fix"], 1_000)}
                                 for c in finding["causes"][:5]]
            if i >= 3 or json_size(finding) > max_bytes // 8:
                finding["evidence"] = dict(omitted)
                finding["causes"] = [{**c, "evidence": {}} for c in finding["causes"]]
            if json_size(finding) > max_bytes // 4:  # one finding never takes more than a quarter
                ranked[i] = shrink(finding, max_bytes // 4)
        reserve = 300  # room for the note below
        budget = max_bytes - reserve - json_size({**data, "findings": []})
        keep, used = 0, 0
        for finding in ranked:  # the longest prefix that fits (sizes measured once: no quadratic re-dumping)
            used += json_size(finding) + 2  # + the ", " between list items
            if used > budget and keep >= 1:
                break
            keep += 1
        dropped = len(ranked) - keep
        data["findings"] = ranked[:keep]
        note = f"report trimmed to stay under {max_bytes} bytes" + (
            f": {dropped} lower-ranked findings omitted" if dropped else ": bulky evidence omitted")
        data["notes"] = [*data["notes"], note]
        if json_size(data) > max_bytes:  # still too big: a last cut of everything, measured until it fits
            data = _last_resort(data, max_bytes, note)
        return data

    def to_json(self, compact: bool = True) -> str:
        return json.dumps(self.compact() if compact else self.model_dump(mode="json"), indent=2)


def finding_rank(f: Finding) -> tuple[int, float]:
    """Sort key: worst severity first, then the surest top cause."""
    return (-STATUS_RANK[f.severity], -(f.causes[0].confidence if f.causes else 0.0))


def _last_resort(data: dict[str, Any], max_bytes: int, note: str) -> dict[str, Any]:
    """`data` cut harder and harder (re-measured each time) until it fits; at worst its skeleton: guard,
    status, error, the top finding's code and the note."""
    fixed = {"schema_version": data["schema_version"], "guard": clip_text(data["guard"], 200),
             "status": data["status"], "notes": [note]}
    rest = {k: v for k, v in data.items() if k not in fixed}
    room = max_bytes - json_size(fixed) - 16
    cut = shrink(rest, room)
    if cut is not None and json_size({**fixed, **cut}) <= max_bytes:
        return {**fixed, **cut}
    skeleton: dict[str, Any] = {**fixed, "findings": [], "error": None}
    if data.get("error"):
        skeleton["error"] = {k: clip_text(str(v), 300) if isinstance(v, str) else v for k, v in data["error"].items()}
    if data.get("findings"):
        top = data["findings"][0]
        skeleton["findings"] = [{"code": top["code"], "severity": top["severity"],
                                 "message": clip_text(top["message"], 300)}]
    return skeleton
