"""What is new since the guard's previous run: findings that appeared, that went away, and that persist.

At 3 a.m. "is this new?" decides between waking someone and reading on: a finding that failed every night this
week is a known problem; one that appeared tonight is the news. The store keeps a small record of each guard's
previous run (`RunRecord`: the identity of every finding, whatever the run's status) and a run's report
carries the comparison (`SinceLastRun`), bounded: counts are exact, the listed findings are the first few of
each kind, and messages are cut short.

A finding's identity is its code, check, table and columns — not its message or value, which change from run
to run while the problem stays the same. A run in which the guard could not run (status 'error') judged
nothing: it is neither compared nor recorded, so the next run compares with the last run that judged data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

MAX_RECORDED = 500  # findings a run record keeps (a guard with more is drowning anyway; counts stay exact)
MAX_LISTED = 10  # findings listed per kind (new, resolved, persisting) on a report


class _FindingLike(Protocol):
    """What a run record reads of a finding (read-only, so a Finding's Literal severity fits `str`)."""

    @property
    def code(self) -> str: ...
    @property
    def check(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def table(self) -> str | None: ...
    @property
    def columns(self) -> list[str]: ...


class FindingRef(BaseModel):
    """Enough of a finding to recognise it in another run, and to name it in a sentence."""

    code: str
    check: str
    table: str | None = None
    columns: list[str] = Field(default_factory=list)
    severity: str
    message: str = ""
    previous_severity: str | None = Field(None, description="For a persisting finding whose severity changed.")

    @classmethod
    def of(cls, f: _FindingLike) -> FindingRef:
        return cls(code=f.code[:100], check=f.check[:120], table=None if f.table is None else f.table[:120],
                   columns=[c[:60] for c in f.columns[:3]], severity=f.severity, message=f.message[:160])

    def key(self) -> tuple[str, str, str | None, tuple[str, ...]]:
        return (self.code, self.check, self.table, tuple(self.columns))


class RunRecord(BaseModel):
    """A guard run as the next run compares with it (the store's `_meta/last_run.json`)."""

    guard: str
    status: str
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    findings: list[FindingRef] = Field(default_factory=list)
    findings_total: int = 0

    @classmethod
    def of(cls, guard: str, status: str, findings: Iterable[_FindingLike], at: datetime | None = None) -> RunRecord:
        refs = [FindingRef.of(f) for f in findings]
        return cls(guard=guard, status=status, at=at or datetime.now(UTC), findings=refs[:MAX_RECORDED],
                   findings_total=len(refs))


class SinceLastRun(BaseModel):
    """This run's findings against the guard's previous run: new, resolved, persisting (first few listed)."""

    previous_status: str
    previous_at: datetime
    new: list[FindingRef] = Field(default_factory=list)
    resolved: list[FindingRef] = Field(default_factory=list)
    persisting: list[FindingRef] = Field(default_factory=list)
    new_count: int = 0
    resolved_count: int = 0
    persisting_count: int = 0
    partial: bool = Field(False, description="A run had more findings than a record keeps: counts are a floor.")

    def line(self) -> str:
        """One sentence for a log: counts first, then the new findings' codes (the news)."""
        when = f"{self.previous_at:%Y-%m-%d %H:%M} UTC"
        text = (f"since the previous run ({self.previous_status}, {when}): {self.new_count} new, "
                f"{self.resolved_count} resolved, {self.persisting_count} persisting")
        if self.new:
            text += " — new: " + ", ".join(_name(r) for r in self.new[:5])
            text += f" and {self.new_count - 5} more" if self.new_count > 5 else ""
        if self.resolved:
            text += " — resolved: " + ", ".join(_name(r) for r in self.resolved[:3])
        return text

    def bounded(self, items: int, chars: int) -> dict[str, Any]:
        """The JSON form with at most `items` listed per kind and messages cut to `chars` (compact reports)."""
        data = self.model_dump(mode="json")
        for kind in ("new", "resolved", "persisting"):
            data[kind] = [{**r, "message": r["message"][:chars]} for r in data[kind][:items]]
        return data


def compare(previous: RunRecord, current: RunRecord) -> SinceLastRun:
    """What `current` has that `previous` had not (new), the other way round (resolved), and both (persisting,
    with the previous severity when it changed)."""
    before = {r.key(): r for r in previous.findings}
    now = {r.key(): r for r in current.findings}
    new = [r for k, r in now.items() if k not in before]
    resolved = [r for k, r in before.items() if k not in now]
    persisting = [r if r.severity == before[k].severity else r.model_copy(
        update={"previous_severity": before[k].severity}) for k, r in now.items() if k in before]
    return SinceLastRun(previous_status=previous.status, previous_at=previous.at, new=new[:MAX_LISTED],
                        resolved=resolved[:MAX_LISTED], persisting=persisting[:MAX_LISTED], new_count=len(new),
                        resolved_count=len(resolved), persisting_count=len(persisting),
                        partial=previous.findings_total > len(previous.findings)
                        or current.findings_total > len(current.findings))


def _name(r: FindingRef) -> str:
    where = ", ".join(r.columns) or r.table or ""
    return f"{r.code}({where})" if where else r.code
