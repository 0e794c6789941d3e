"""Running a guard: read each table once, evaluate every check, diagnose what failed, return one Report.

    guard = Guard("churn_features", checks=[NullRate(column="plan", max=0.01)], default_suite=True,
                  store="s3://bucket/mlguard")
    report = guard.run(df, logical_date=ds)       # never raises for bad data or an unreadable source
    report.raise_for_status()                      # GuardFailed on fail; the source/spec error on error

A run never raises for bad data *or* for the guard's own trouble: both come back as a Report (status
'fail' vs 'error'), so adapters decide in one place what is retryable. Every report carries the run's
fingerprint; with a store, a failing report also lists what changed since the guard's last passing run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.checks.base import QueryCheck, RunContext, RunOptions, ScanCheck, TableContext
from mlguard_orchestration.checks.schema import missing_column_finding
from mlguard_orchestration.errors import MlguardError, SpecError, did_you_mean
from mlguard_orchestration.fingerprint import InputProfile, collect, input_profile, record_run
from mlguard_orchestration.profile import TableProfile, plan_profile, profile_from_values, profile_metrics
from mlguard_orchestration.report import Finding, GuardErrorInfo, Report, TableSummary
from mlguard_orchestration.sources import Engine
from mlguard_orchestration.spec import GuardSpec, load_spec
from mlguard_orchestration.store import ProfileStore
from mlguard_orchestration.suite import default_checks

ReferenceArg = TableProfile | str | os.PathLike[str]


class Guard:
    """A named set of checks over one or more tables, with optional reference profiles.

    `default_suite` derives checks from each table's reference: True for every table, or a list of table
    names. `packages` (your own distributions) and `code_path` (the DAG/flow file, for its git version) go
    into the run fingerprint next to the key packages and the hardware."""

    def __init__(
        self,
        name: str,
        checks: Sequence[AnyCheck] = (),
        *,
        default_suite: bool | Sequence[str] = False,
        label: str | None = None,
        reference: ReferenceArg | Mapping[str, ReferenceArg] | None = None,
        store: ProfileStore | str | os.PathLike[str] | None = None,
        sample_values: bool = False,
        redact: bool = False,
        threads: int | None = None,
        packages: Sequence[str] = (),
        code_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.checks = list(checks)
        self.default_suite = default_suite
        self.label = label
        self.reference = reference
        self.store = store if isinstance(store, ProfileStore) or store is None else ProfileStore(store)
        self.sample_values = sample_values
        self.redact = redact
        self.threads = threads
        self.packages = tuple(packages)
        self.code_path = code_path

    @classmethod
    def from_spec(cls, spec: GuardSpec | str | os.PathLike[str] | Mapping[str, Any], **overrides: Any) -> Guard:
        """Build a guard from a spec file (YAML/JSON), a dict, or a GuardSpec; keyword overrides win."""
        s = spec if isinstance(spec, GuardSpec) else load_spec(spec)
        kwargs: dict[str, Any] = {"checks": s.checks, "default_suite": s.default_suite, "label": s.label,
                                  "reference": s.reference, "store": s.store, "sample_values": s.sample_values}
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(overrides.pop("name", None) or s.name, **{k: v for k, v in kwargs.items() if k != "name"})

    def run(self, data: Any, *, logical_date: datetime | None = None, promote: bool = True,
            context: Mapping[str, str] | None = None) -> Report:
        """Check `data` (one source, or {table_name: source}) and return the report.

        On pass or warn, each table's profile becomes the new reference in the store (when `promote`)."""
        started = time.perf_counter()
        options = RunOptions(logical_date=logical_date or datetime.now(UTC),
                             sample_values=self.sample_values, redact=self.redact)
        findings: list[Finding] = []
        summaries: dict[str, TableSummary] = {}
        notes: list[str] = []
        error: GuardErrorInfo | None = None
        profiles: dict[str, TableProfile] = {}
        inputs: dict[str, InputProfile] = {}
        checks_run = 0
        try:
            with Engine(threads=self.threads) as engine:
                sources = dict(data) if isinstance(data, dict) else {"data": data}
                contexts = {name: TableContext(engine, engine.add(name, obj), self._reference(name), options)
                            for name, obj in sources.items()}
                checks = list(self.checks)
                if self.default_suite:
                    suite_tables = set(contexts if self.default_suite is True else self.default_suite)
                    for name, ctx in contexts.items():
                        if name not in suite_tables:
                            continue
                        if ctx.reference is None:
                            notes.append(f"table {name!r} has no reference yet: the default suite starts on the "
                                         "next run, once this batch is promoted")
                        else:
                            checks += _not_already(default_checks(name, ctx.reference, self.label), checks)
                self._validate_tables(checks, contexts)
                for name, ctx in contexts.items():
                    scan = [c for c in checks if isinstance(c, ScanCheck) and c.table == name]
                    if not scan and self.store is None:
                        continue
                    findings += self._scan(ctx, scan)
                    checks_run += len(scan)
                    assert ctx.profile is not None
                    profiles[name] = ctx.profile
                run_ctx = RunContext(engine, contexts, options)
                for check in checks:
                    if isinstance(check, QueryCheck):
                        findings += check.run(run_ctx)
                        checks_run += 1
                summaries = {n: TableSummary(source=c.table.source, rows=c.table.rows, columns=len(c.table.columns))
                             for n, c in contexts.items()}
                inputs = {n: _input(c) for n, c in contexts.items()}
        except MlguardError as exc:
            error = GuardErrorInfo.of(exc)
        report = Report(
            guard=self.name, status="error" if error else Report.status_of(findings), findings=findings,
            tables=summaries, checks_run=checks_run, error=error, notes=notes, context=dict(context or {}),
            duration_s=round(time.perf_counter() - started, 4),
        )
        if promote and report.passed and self.store is not None:
            for name, prof in profiles.items():
                self.store.promote(self.name, name, prof)
        fingerprint = collect(packages=self.packages, code_path=self.code_path, inputs=inputs)
        return record_run(report, self.store, fingerprint, user_packages=self.packages, promote=promote)

    def _reference(self, table: str) -> TableProfile | None:
        ref = self.reference
        if isinstance(ref, Mapping):
            ref = ref.get(table)
        if ref is None:
            return self.store.load(self.name, table) if self.store is not None else None
        return ref if isinstance(ref, TableProfile) else TableProfile.load(Path(ref))

    @staticmethod
    def _validate_tables(checks: list[AnyCheck], contexts: dict[str, TableContext]) -> None:
        for check in checks:
            names = [check.table] if isinstance(check, ScanCheck) else check.tables()
            for name in names:
                if name not in contexts:
                    hint = did_you_mean(name, contexts)
                    raise SpecError(f"check {check.label()} reads table {name!r}, but the guard was given "
                                    f"tables {sorted(contexts)}." + (f" Did you mean {hint!r}?" if hint else ""))

    @staticmethod
    def _scan(ctx: TableContext, checks: list[ScanCheck]) -> list[Finding]:
        """ONE aggregate query for the profile and every check on this table; then evaluate."""
        table = ctx.table
        findings: list[Finding] = []
        runnable: list[ScanCheck] = []
        reported: set[str] = set()
        for check in checks:
            missing = [c for c in check.columns() if c not in table.columns]
            if check.needs_reference:
                ctx.require_reference(check.label())
            for col in missing:
                if ctx.reference is not None and col not in ctx.reference.columns:
                    raise SpecError(f"check {check.label()} names column {col!r}, which is neither in table "
                                    f"{table.name!r} nor in its reference profile. Available: "
                                    f"{', '.join(list(table.columns)[:40])}."
                                    + (f" Did you mean {h!r}?" if (h := did_you_mean(col, table.columns)) else ""))
                if col not in reported:
                    reported.add(col)
                    findings.append(missing_column_finding(ctx, col, check.severity, check.label()))
            if not missing:
                runnable.append(check)
        exact = {c for check in runnable for c in check.exact_distinct()}
        plan = ctx.plan = plan_profile(ctx.engine, table, ctx.reference, exact=exact)
        metrics = profile_metrics(table, plan)
        for check in runnable:
            for key, expr in check.metrics(ctx).items():
                if metrics.setdefault(key, expr) != expr:
                    raise AssertionError(f"metric key {key!r} reused with a different expression")
        values = ctx.engine.aggregate(table, metrics, plan.derived)
        ctx.profile = profile_from_values(table, plan, values)
        table.rows = ctx.profile.rows
        for check in runnable:
            for f in check.evaluate(ctx, values):
                if f.code == "schema.missing_column" and f.columns[0] in reported:
                    continue  # already reported for the check that needed it
                findings.append(f)
        return findings


def _input(ctx: TableContext) -> InputProfile:
    """A table's fingerprint entry: its schema, and row count and profile digest when it was scanned."""
    schema = {name: col.sql_type for name, col in ctx.table.columns.items()}
    digest = ctx.profile.model_dump(mode="json", exclude={"created_at", "source"}) if ctx.profile else None
    return input_profile(ctx.table.rows, schema, digest)


def _not_already(defaults: list[AnyCheck], chosen: list[AnyCheck]) -> list[AnyCheck]:
    """Default-suite checks the user did not already write for the same table and columns (theirs win)."""

    def key(c: AnyCheck) -> tuple[str, str, tuple[str, ...]]:
        return (c.kind, getattr(c, "table", ""), tuple(c.columns()))

    taken = {key(c) for c in chosen}
    return [c for c in defaults if key(c) not in taken]
