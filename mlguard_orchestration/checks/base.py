"""What every check is: a small typed spec (pydantic, usable from Python or a YAML/JSON spec file) plus the
evaluation that turns measured values into findings.

Two shapes, so that a table is read once:
- ScanCheck: declares the metrics it needs over one table as typed requests (`engines.requests`, never SQL);
  the guard has the table's engine answer every check's requests and the profile's in ONE scan, then calls
  `evaluate` with the answers.
- QueryCheck: needs its own query (joins between tables, train/test overlap); it runs after the scans.
Either may run extra queries to *diagnose* a failure, but only when it fires: a passing check costs no more
than its aggregates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import ErrorDetails

from mlguard_orchestration.engines.requests import Measured, Predicate, ScanRequest
from mlguard_orchestration.errors import SpecError, did_you_mean, missing_table_error, suggestion
from mlguard_orchestration.profile import ColumnProfile, ProfilePlan, Role, TableProfile
from mlguard_orchestration.report import Cause, Finding, Severity
from mlguard_orchestration.sources import Engine, Table, kind_family

Answers = Mapping[ScanRequest, Measured]  # what a table's scan measured, by request


@dataclass(frozen=True)
class RunOptions:
    """Per-run settings shared by all checks."""

    logical_date: datetime | None = None  # the run's logical date; the guard sets it to now when not given
    sample_values: bool = False  # put a few raw values into evidence (off by default: data may be sensitive)
    redact: bool = False  # with sample_values: replace each value by a short hash


@dataclass(frozen=True)
class Scope:
    """What the reference checks judge when no columns are named: every column the reference profiled, minus
    `exclude` and the partition columns (declared in `partition_by`, or detected: one value in the reference,
    one other value in the batch). A partition column changes by design between runs; it is never drift."""

    exclude: frozenset[str] = frozenset()
    partition_by: frozenset[str] = frozenset()
    roles: tuple[tuple[str, Role], ...] = ()  # the user's role overrides, as (column, role) pairs

    @property
    def role_overrides(self) -> dict[str, Role]:
        return dict(self.roles)


@dataclass(frozen=True)
class TableContext:
    """One table as a check sees it before the scan: its schema, the reference and the run's settings.

    A table goes through three phases, each its own type, so that what a step reads is always there:
    TableContext (checks are validated) → PlannedTable (`plan`: checks declare their metrics) → ScannedTable
    (`profile`: checks evaluate). The guard builds each from the one before; nothing is filled in later."""

    engine: Engine
    table: Table
    reference: TableProfile | None
    options: RunOptions
    scope: Scope = Scope()

    def count(self, where: Predicate) -> int:
        """Rows where `where` holds: a follow-up probe for a check that already knows it fires."""
        return self.engine.count(self.table, where)

    def require_reference(self, check: str) -> TableProfile:
        if self.reference is None:
            raise SpecError(
                f"check {check} compares against a reference profile, but table {self.table.name!r} has none. "
                "Pass reference=… (a profile from `mlguard profile`) or a profile store with a promoted reference."
            )
        return self.reference

    def planned(self, plan: ProfilePlan) -> PlannedTable:
        return PlannedTable(self.engine, self.table, self.reference, self.options, self.scope, plan=plan)


@dataclass(frozen=True, kw_only=True)
class PlannedTable(TableContext):
    """A table whose scan is planned: what `ScanCheck.metrics` sees."""

    plan: ProfilePlan  # how this table is scanned: each column's role, derived columns, bins

    def scanned(self, profile: TableProfile) -> ScannedTable:
        return ScannedTable(self.engine, self.table, self.reference, self.options, self.scope, plan=self.plan,
                            profile=profile)


@dataclass(frozen=True, kw_only=True)
class ScannedTable(PlannedTable):
    """A scanned table: what `ScanCheck.evaluate` sees, with this batch's profile."""

    profile: TableProfile

    def partitions(self) -> list[str]:
        """Partition columns of this batch: declared ones; those constant in both the reference and the batch
        with different values (month=1 then month=2); and numbers that moved on to the next stretch of their
        sequence (a year-fraction date, a week index: the batch's range starts right after the reference's and
        is about as long — a unit change would stretch it, an offset leave a gap)."""
        declared = [c for c in self.table.columns if c in self.scope.partition_by]
        if self.reference is None:
            return declared
        detected = [n for n, col in self.profile.columns.items()
                    if (ref := self.reference.columns.get(n)) is not None and n not in declared
                    and (_new_constant(col, ref) or _next_stretch(col, ref))]
        return declared + detected

    def auto_columns(self, roles: tuple[str, ...]) -> list[tuple[ColumnProfile, ColumnProfile]]:
        """(batch, reference) profiles of the columns a reference check judges when it names none: the
        reference's columns in `roles`, not unique (keys are Unique's), not excluded, not partitions, present
        in the batch with a comparable type (a changed type is the schema check's finding)."""
        ref = self.reference
        if ref is None:
            return []
        skip = set(self.scope.exclude) | set(self.partitions())
        return [(self.profile.columns[n], c) for n, c in ref.columns.items()
                if c.role in roles and not c.unique and n not in skip and n in self.profile.columns
                and kind_family(self.profile.columns[n].kind) == kind_family(c.kind)]


def _new_constant(batch: ColumnProfile, ref: ColumnProfile) -> bool:
    return (batch.constant_value is not None and ref.constant_value is not None
            and batch.constant_value != ref.constant_value)


def _next_stretch(batch: ColumnProfile, ref: ColumnProfile) -> bool:
    if kind_family(batch.kind) != "numeric" or kind_family(ref.kind) != "numeric" or batch.role == "temporal":
        return False
    if None in (batch.min, batch.max, ref.min, ref.max):
        return False
    assert batch.min is not None and batch.max is not None and ref.min is not None and ref.max is not None
    span, span_b = ref.max - ref.min, batch.max - batch.min
    return span > 0 and batch.min > ref.max and batch.min - ref.max <= span and 0.5 <= span_b / span <= 2


@dataclass
class RunContext:
    """Every table of a guard run, for checks that span tables: the scanned ones as ScannedTable."""

    engine: Engine
    tables: Mapping[str, TableContext]
    options: RunOptions
    counted: dict[str, int] = field(default_factory=dict)  # rows of unscanned tables, as cross-table checks saw

    def table(self, name: str, check: str) -> TableContext:
        try:
            ctx = self.tables[name]
        except KeyError:
            raise missing_table_error(name, self.tables, f"check {check} reads") from None
        if ctx.table.remote is not None:
            raise SpecError(f"check {check} reads table {name!r}, which stays in {ctx.table.source}; in this "
                            "version checks across tables (joins, overlap, label leakage) need their tables "
                            "embedded (a DataFrame, Arrow or files). Single-table checks and the default suite "
                            "run where the data lives.")
        return ctx

    def rows(self, name: str) -> int | None:
        """Rows of table `name` when known: from its scan, or as a cross-table check counted them."""
        t = self.tables[name]
        return t.profile.rows if isinstance(t, ScannedTable) else self.counted.get(name)

    def note_rows(self, name: str, rows: int) -> None:
        """A cross-table check measured `rows` for table `name`: kept for the report when the scan did not."""
        if self.rows(name) is None:
            self.counted[name] = rows


def names(v: Any) -> Any:
    """A field that lists columns also takes one name as a string: `columns="user_id"` is `["user_id"]`."""
    return [v] if isinstance(v, str) else v


def explain_error(err: ErrorDetails, model: type[BaseModel]) -> str:
    """A pydantic error in words: the message, the value given, and for an unknown field the closest field
    `model` has."""
    field = err["loc"][-1] if err.get("loc") else None
    if err.get("type") == "extra_forbidden" and isinstance(field, str):
        known = [f.alias or n for n, f in model.model_fields.items()]
        hint = did_you_mean(field, known)
        return f"unknown field {field!r}.{suggestion(hint)} Known fields: {', '.join(known)}."
    given = err.get("input")
    shown = repr(given)[:80] if given is not None and not isinstance(given, dict) else None
    return err["msg"] + (f" (got {shown})" if shown else "")


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

    def metrics(self, ctx: PlannedTable) -> list[ScanRequest]:
        """The metric requests this check needs from the table's scan (a request is its own key: two checks
        asking the same thing share one answer)."""
        return []

    def exact_distinct(self) -> list[str]:
        """Columns whose exact distinct count this check reads from the batch profile."""
        return []

    def evaluate(self, ctx: ScannedTable, values: Answers) -> list[Finding]:
        raise NotImplementedError


class QueryCheck(Check):
    """A check that runs its own queries, possibly over several tables."""

    def tables(self) -> list[str]:
        raise NotImplementedError

    def run(self, ctx: RunContext) -> list[Finding]:
        raise NotImplementedError


class ReferenceCheck(ScanCheck):
    """Base of the checks that compare a batch with its reference profile: over the named `columns`, or
    (none named) over the context's automatic scope, which leaves out excluded and partition columns."""

    columns_: list[str] | None = Field(None, alias="columns")
    unexplained: Severity = Field("fail", description="Severity of a finding that no confident cause explains. "
                                                      "The default suite uses 'warn': real data moves for "
                                                      "reasons no profile shows, while a named fault (a unit "
                                                      "change, a dropped category) is decisive and fails.")
    needs_reference: ClassVar[bool] = True
    model_config = ConfigDict(**ScanCheck.model_config, populate_by_name=True)

    _names = field_validator("columns_", mode="before")(classmethod(lambda cls, v: names(v)))

    def columns(self) -> list[str]:
        return list(self.columns_ or [])

    def label(self) -> str:
        return f"{self.kind}({', '.join(self.columns_)})" if self.columns_ else self.kind

    def _pairs(self, ctx: ScannedTable, roles: tuple[str, ...]) -> list[tuple[ColumnProfile, ColumnProfile]]:
        """(batch, reference) profiles of the columns this check covers."""
        ref = ctx.require_reference(self.label())
        if not self.columns_:
            return ctx.auto_columns(roles)
        return [(ctx.profile.columns[n], ref.columns[n]) for n in self.columns_
                if n in ctx.profile.columns and n in ref.columns and ref.columns[n].role in roles]

    def _severity(self, value: float, warn: float, fail: float) -> Severity | None:
        level: Severity | None = "fail" if value >= fail else "warn" if value >= warn else None
        return "warn" if level and self.severity == "warn" else level

    def _judged(self, level: Severity | None, causes: list[Cause]) -> Severity | None:
        """The finding's severity given its causes: with `unexplained='warn'`, a confident cause makes any
        finding a fail and its absence makes it a warning; with 'fail', the thresholds alone decide."""
        if level is None or self.severity == "warn" or self.unexplained == "fail":
            return level
        return "fail" if max((c.confidence for c in causes), default=0.0) >= CONFIDENT else "warn"


CONFIDENT = 0.7  # a cause this sure explains a finding


def ordered(low: tuple[str, float | None], high: tuple[str, float | None]) -> None:
    """ValueError unless low ≤ high (each given as (field name, value)); None means unbounded."""
    (lo_name, lo), (hi_name, hi) = low, high
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{lo_name} ({lo}) is above {hi_name} ({hi}): {lo_name} must not exceed {hi_name}")
