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
from mlguard_orchestration.checks.base import (
    QueryCheck,
    RunContext,
    RunOptions,
    ScanCheck,
    ScannedTable,
    TableContext,
)
from mlguard_orchestration.checks.schema import missing_column_finding
from mlguard_orchestration.errors import (
    MlguardError,
    SpecError,
    did_you_mean,
    missing_table_error,
    suggestion,
)
from mlguard_orchestration.fingerprint import InputProfile, collect, input_profile
from mlguard_orchestration.profile import (
    TableProfile,
    build_profile,
    plan_profile,
    profile_from_values,
    profile_requests,
    rebalance_bins,
)
from mlguard_orchestration.report import Finding, GuardErrorInfo, Report, TableSummary
from mlguard_orchestration.runs import record_run
from mlguard_orchestration.sources import Engine
from mlguard_orchestration.spec import GuardSpec, load_spec
from mlguard_orchestration.store import Acceptance, ProfileStore, ReferencePolicy
from mlguard_orchestration.suite import SuiteOptions, default_checks, options_of

ReferenceArg = TableProfile | str | os.PathLike[str]


class Guard:
    """A named set of checks over one or more tables, with optional reference profiles.

    `default_suite` derives checks from each table's reference: True for every table, or a list of table
    names; `suite` says what the profile cannot see (`SuiteOptions`: excluded columns, partition keys,
    per-column roles). `reference_policy` decides what a passing run leaves as the next reference (the last
    good run, a rolling merge of several, or pinned). `packages` (your own distributions) and `code_path`
    (the DAG/flow file, for its git version) go into the run fingerprint next to the key packages and the
    hardware."""

    def __init__(
        self,
        name: str,
        checks: Sequence[AnyCheck] = (),
        *,
        default_suite: bool | Sequence[str] = False,
        suite: SuiteOptions | Mapping[str, Any] | None = None,
        label: str | None = None,
        reference: ReferenceArg | Mapping[str, ReferenceArg] | None = None,
        reference_policy: ReferencePolicy | str | Mapping[str, Any] | None = None,
        store: ProfileStore | str | os.PathLike[str] | None = None,
        sample_values: bool = False,
        redact: bool = False,
        threads: int | None = None,
        packages: Sequence[str] = (),
        code_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise SpecError(f"threads must be a whole number of at least 1 (or None for all cores), got {threads!r}.")
        self.name = name
        self.checks = list(checks)
        self.default_suite = default_suite
        self.suite = options_of(suite)
        self.label = label
        self.reference = reference
        self.reference_policy = (reference_policy if isinstance(reference_policy, ReferencePolicy)
                                 else ReferencePolicy.model_validate(reference_policy or {}))
        self.store = store if isinstance(store, ProfileStore) or store is None else ProfileStore(store)
        self.sample_values = sample_values
        self.redact = redact
        self.threads = threads
        self.packages = tuple(packages)
        self.code_path = code_path
        self.last_profiles: dict[str, TableProfile] = {}  # what the last run measured (lineage facets read it)

    @classmethod
    def from_spec(cls, spec: GuardSpec | str | os.PathLike[str] | Mapping[str, Any], **given: Any) -> Guard:
        """Build a guard from a spec file (YAML/JSON), a dict, or a GuardSpec, then what the caller gives (any
        `Guard` argument). The one merge rule of every front end — Python, the Airflow operators, the Prefect
        decorators, the CLI: a setting given (not None) replaces the spec's, except `checks`, which run after
        the spec's."""
        s = spec if isinstance(spec, GuardSpec) else load_spec(spec)
        settings: dict[str, Any] = {"name": s.name, "checks": s.checks, "default_suite": s.default_suite,
                                    "suite": s.suite, "label": s.label, "reference": s.reference,
                                    "reference_policy": s.reference_policy, "store": s.store,
                                    "sample_values": s.sample_values}
        for key, value in given.items():
            if value is not None:
                settings[key] = [*s.checks, *value] if key == "checks" else value
        return cls(**settings)

    def run(self, data: Any, *, logical_date: datetime | None = None, promote: bool = True,
            context: Mapping[str, str] | None = None) -> Report:
        """Check `data` (one source, or {table_name: source}) and return the report.

        On pass or warn, each table's profile becomes the new reference in the store (when `promote`), as the
        reference policy says; on fail it is kept as a candidate that `accept` can promote after review."""
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
        scope = self.suite.scope()
        try:
            with Engine(threads=self.threads) as engine:
                sources = dict(data) if isinstance(data, dict) else {"data": data}
                _check_table_names(sources)
                contexts = {name: TableContext(engine, engine.add(name, obj), self._reference(name), options,
                                               scope=scope)
                            for name, obj in sources.items()}
                checks = list(self.checks)
                suite_checks: list[AnyCheck] = []
                suite_tables = set()
                if self.default_suite:
                    suite_tables = set(contexts if self.default_suite is True else self.default_suite)
                    self._validate_suite_tables(suite_tables, contexts)
                    for name, ctx in contexts.items():
                        if name not in suite_tables:
                            continue
                        if ctx.reference is None:
                            notes.append(f"table {name!r} has no reference yet: the default suite starts on the "
                                         "next run, once this batch is promoted")
                        else:
                            suite_checks += _not_already(default_checks(name, ctx.reference, self.label,
                                                                        self.suite), checks)
                checks += suite_checks
                self._validate_tables(checks, contexts)
                tables: dict[str, TableContext] = dict(contexts)  # each scanned one becomes its ScannedTable
                for name, ctx in contexts.items():
                    scan = [c for c in checks if isinstance(c, ScanCheck) and c.table == name]
                    if not scan and self.store is None:
                        continue
                    found, scanned = self._scan(ctx, scan, count_duplicates=name in suite_tables)
                    findings += found
                    checks_run += len(scan)
                    tables[name] = scanned
                    profiles[name] = scanned.profile
                    notes += _partition_notes(scanned)
                run_ctx = RunContext(engine, tables, options)
                for check in checks:
                    if isinstance(check, QueryCheck):
                        findings += check.run(run_ctx)
                        checks_run += 1
                findings = _demote(findings, suite_checks, self.suite.warn_only())
                summaries = {n: TableSummary(source=c.table.source, rows=run_ctx.rows(n),
                                             columns=len(c.table.columns)) for n, c in tables.items()}
                inputs = {n: _input(c, run_ctx.rows(n)) for n, c in tables.items()}
        except MlguardError as exc:
            error = GuardErrorInfo.of(exc)
        except Exception as exc:  # noqa: BLE001 - a bug of the guard's own: still a report, never a crash
            error = GuardErrorInfo.internal(exc)
        if error is None and checks_run == 0:
            notes.append("no check ran: give checks, or a reference with default_suite=True")
        report = Report(
            guard=self.name, status="error" if error else Report.status_of(findings), findings=findings,
            tables=summaries, checks_run=checks_run, error=error, notes=notes, context=dict(context or {}),
            duration_s=round(time.perf_counter() - started, 4),
        )
        if promote and self.store is not None and report.status != "error":
            report = report.model_copy(update={"notes": report.notes + self._keep(report, profiles)})
        self.last_profiles = profiles
        fingerprint = collect(packages=self.packages, code_path=self.code_path, inputs=inputs)
        return record_run(report, self.store, fingerprint, user_packages=self.packages, promote=promote)

    def accept(self, reason: str, *, by: str | None = None, tables: Sequence[str] | None = None,
               data: Any = None) -> Acceptance:
        """A person reviewed a change and accepts it: the last failed run's profiles (or `data`, profiled now)
        become the reference, whatever the reference policy. Logged in the store and to the logger."""
        if self.store is None:
            raise SpecError(f"guard {self.name!r} has no store: there is no reference to accept a change into.")
        profiles = None
        if data is not None:
            sources = dict(data) if isinstance(data, dict) else {"data": data}
            profiles = {n: build_profile(src, threads=self.threads) for n, src in sources.items()}
        return self.store.accept(self.name, reason=reason, by=by, tables=list(tables) if tables else None,
                                 profiles=profiles)

    def _keep(self, report: Report, profiles: dict[str, TableProfile]) -> list[str]:
        """Promote the profiles of a passing run (warn included), or keep those of a failed one as candidates
        for `accept`. A store that cannot be written never loses the verdict: it becomes a note."""
        assert self.store is not None
        notes = []
        for name, prof in profiles.items():
            try:
                if report.passed:
                    note = self.store.promote(self.name, name, prof, self.reference_policy)
                    notes += [note] if note else []
                else:
                    self.store.save_candidate(self.name, name, prof)
            except (MlguardError, OSError) as exc:
                what = "promoted as the reference" if report.passed else "kept for `mlguard accept`"
                notes.append(f"table {name!r}'s profile could not be {what}: {exc}")
        return notes

    def _reference(self, table: str) -> TableProfile | None:
        ref = self.reference
        if isinstance(ref, Mapping):
            ref = ref.get(table)
        if ref is None:
            return self.store.load(self.name, table) if self.store is not None else None
        return ref if isinstance(ref, TableProfile) else TableProfile.load(Path(ref))

    @staticmethod
    def _validate_suite_tables(names: set[str], contexts: dict[str, TableContext]) -> None:
        for name in sorted(names - set(contexts)):
            raise missing_table_error(name, contexts, "default_suite names")

    @staticmethod
    def _validate_tables(checks: list[AnyCheck], contexts: dict[str, TableContext]) -> None:
        for check in checks:
            names = [check.table] if isinstance(check, ScanCheck) else check.tables()
            for name in names:
                if name not in contexts:
                    raise missing_table_error(name, contexts, f"check {check.label()} reads")

    @staticmethod
    def _scan(ctx: TableContext, checks: Sequence[ScanCheck], *,
              count_duplicates: bool = False) -> tuple[list[Finding], ScannedTable]:
        """ONE aggregate query for the profile and every check on this table; then evaluate. Returns the
        findings and the scanned table (its profile)."""
        table = ctx.table
        findings: list[Finding] = []
        runnable: list[ScanCheck] = []
        reported: dict[str, ScanCheck] = {}  # missing column -> the first check that needs it
        for check in checks:
            missing = [c for c in check.columns() if c not in table.columns]
            if check.needs_reference:
                ctx.require_reference(check.label())
            for col in missing:
                if ctx.reference is not None and col not in ctx.reference.columns:
                    raise SpecError(f"check {check.label()} names column {col!r}, which is neither in table "
                                    f"{table.name!r} nor in its reference profile. Available: "
                                    f"{', '.join(list(table.columns)[:40])}."
                                    + suggestion(did_you_mean(col, table.columns)))
                reported.setdefault(col, check)
            if not missing:
                runnable.append(check)
        exact = {c for check in runnable for c in check.exact_distinct()}
        plan = plan_profile(ctx.engine, table, ctx.reference, exact=exact, roles=ctx.scope.role_overrides,
                            count_duplicates=count_duplicates)
        planned = ctx.planned(plan)
        requests = profile_requests(table, plan) + [r for check in runnable for r in check.metrics(planned)]
        values = ctx.engine.measure(table, requests)
        profile = profile_from_values(table, plan, values, ctx.options.logical_date)
        if ctx.reference is None:
            profile = rebalance_bins(ctx.engine, table, plan, profile)
        scanned = planned.scanned(profile)
        # after the scan, so a rename can be recognised by the values of the column that replaced it
        findings += [missing_column_finding(scanned, col, check.severity, check.label())
                     for col, check in reported.items()]
        for check in runnable:
            for f in check.evaluate(scanned, values):
                if f.code == "schema.missing_column" and f.columns[0] in reported:
                    continue  # already reported for the check that needed it
                findings.append(f)
        return findings, scanned


def _check_table_names(sources: Mapping[Any, Any]) -> None:
    bad = [n for n in sources if not isinstance(n, str) or not n.strip()]
    if bad:
        raise SpecError(f"table names must be non-empty strings, got {bad[:5]!r}; name each table, e.g. "
                        "{'features': df}.")


def _input(ctx: TableContext, rows: int | None) -> InputProfile:
    """A table's fingerprint entry: its schema, and row count and profile digest when they are known."""
    schema = {name: col.sql_type for name, col in ctx.table.columns.items()}
    digest = (ctx.profile.model_dump(mode="json", exclude={"created_at", "source"})
              if isinstance(ctx, ScannedTable) else None)
    return input_profile(rows, schema, digest)


def _partition_notes(ctx: ScannedTable) -> list[str]:
    """One note per partition column whose value moved since the reference (the schedule at work)."""
    if ctx.reference is None:
        return []
    out = []
    for name in ctx.partitions():
        before = ctx.reference.columns[name].constant_value if name in ctx.reference.columns else None
        now = ctx.profile.columns[name].constant_value if name in ctx.profile.columns else None
        if before is not None and now is not None and before != now:
            out.append(f"partition column {name!r} of table {ctx.table.name!r}: {before} → {now} "
                       "(compared as a partition key, not as drift)")
    return out


def _demote(findings: list[Finding], suite: list[AnyCheck], columns: set[str]) -> list[Finding]:
    """Suite findings only about columns the user marked `severity: warn` become warnings."""
    if not columns or not suite:
        return findings
    labels = {c.label() for c in suite}
    return [f.model_copy(update={"severity": "warn"})
            if f.check in labels and f.columns and set(f.columns) <= columns else f for f in findings]


def _not_already(defaults: list[AnyCheck], chosen: list[AnyCheck]) -> list[AnyCheck]:
    """Default-suite checks the user did not already write for the same table and columns (theirs win)."""

    def key(c: AnyCheck) -> tuple[str, str, tuple[str, ...]]:
        return (c.kind, getattr(c, "table", ""), tuple(c.columns()))

    taken = {key(c) for c in chosen}
    return [c for c in defaults if key(c) not in taken]
