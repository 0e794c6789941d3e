"""What every check is: a small typed spec (pydantic, usable from Python or a YAML/JSON spec file) plus the
evaluation that turns measured values into findings.

Two shapes, so that a table is read once:
- ScanCheck: declares the aggregate expressions it needs over one table; the guard folds every check's
  aggregates and the profile's into ONE query per table, then calls `evaluate` with the values.
- QueryCheck: needs its own query (joins between tables, train/test overlap); it runs after the scans.
Either may run extra queries to *diagnose* a failure, but only when it fires: a passing check costs no more
than its aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.profile import ProfilePlan, TableProfile
from mlguard_orchestration.report import Cause, Finding, Severity
from mlguard_orchestration.sources import Engine, Subquery, Table


@dataclass(frozen=True)
class RunOptions:
    """Per-run settings shared by all checks."""

    logical_date: datetime | None = None  # the run's logical date; the guard sets it to now when not given
    sample_values: bool = False  # put a few raw values into evidence (off by default: data may be sensitive)
    redact: bool = False  # with sample_values: replace each value by a short hash


@dataclass
class TableContext:
    """One table as a check sees it: its schema, this batch's profile (after the scan) and the reference."""

    engine: Engine
    table: Table
    reference: TableProfile | None
    options: RunOptions
    profile: TableProfile | None = None
    plan: ProfilePlan | None = None  # how this table is scanned (set before checks declare their metrics)

    def require_reference(self, check: str) -> TableProfile:
        if self.reference is None:
            raise SpecError(
                f"check {check} compares against a reference profile, but table {self.table.name!r} has none. "
                "Pass reference=… (a profile from `mlguard profile`) or a profile store with a promoted reference."
            )
        return self.reference


@dataclass
class RunContext:
    """Every table of a guard run, for checks that span tables."""

    engine: Engine
    tables: dict[str, TableContext]
    options: RunOptions

    def table(self, name: str, check: str) -> TableContext:
        try:
            return self.tables[name]
        except KeyError:
            from mlguard_orchestration.errors import did_you_mean

            hint = did_you_mean(name, self.tables)
            raise SpecError(
                f"check {check} reads table {name!r}, but the guard was given tables {sorted(self.tables)}."
                + (f" Did you mean {hint!r}?" if hint else "")
            ) from None


class Check(BaseModel):
    """Base of every check spec."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    severity: Severity = "fail"

    def label(self) -> str:
        """A short human name, e.g. 'null_rate(monthly_spend_usd)'."""
        cols = self.columns()
        return f"{self.kind}({', '.join(cols)})" if cols else self.kind

    def columns(self) -> list[str]:
        """Columns of the checked table that must exist for the check to run."""
        return []

    def finding(self, code: str, message: str, *, table: str | None = None, columns: list[str] | None = None,
                value: Any = None, threshold: Any = None, evidence: dict[str, Any] | None = None,
                causes: list[Cause] | None = None, severity: Severity | None = None) -> Finding:
        return Finding(code=code, check=self.label(), severity=severity or self.severity, message=message,
                       table=table, columns=columns if columns is not None else self.columns(),
                       value=value, threshold=threshold, evidence=evidence or {}, causes=causes or [])


class ScanCheck(Check):
    """A check on one table evaluated from aggregates computed in the table's single scan."""

    table: str = "data"
    needs_reference: ClassVar[bool] = False

    def metrics(self, ctx: TableContext) -> dict[str, str | Subquery]:
        """Aggregate SQL expressions this check needs, keyed uniquely (prefix with the label)."""
        return {}

    def exact_distinct(self) -> list[str]:
        """Columns whose exact distinct count this check reads from the batch profile."""
        return []

    def evaluate(self, ctx: TableContext, values: dict[str, Any]) -> list[Finding]:
        raise NotImplementedError


class QueryCheck(Check):
    """A check that runs its own queries, possibly over several tables."""

    def tables(self) -> list[str]:
        raise NotImplementedError

    def run(self, ctx: RunContext) -> list[Finding]:
        raise NotImplementedError


def cause(code: str, summary: str, confidence: float, evidence: dict[str, Any] | None = None) -> Cause:
    """A Cause whose next check and fix come from the catalogue entry of `code`."""
    from mlguard_orchestration.catalogue import CATALOGUE

    entry = CATALOGUE[code]
    return Cause(code=code, summary=summary, confidence=round(min(max(confidence, 0.0), 1.0), 3),
                 evidence=evidence or {}, next_check=entry.next_check, fix=entry.fix)


def rate(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole else 0.0
