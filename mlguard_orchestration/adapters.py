"""What the orchestrator adapters share, so Airflow and Prefect run a guarded task through one code path:
the guard settings a task decorator takes (validated when the decorator is applied, so a typo fails at import,
not at 3 a.m.), the tables a task's return value stands for, the training-guard factory a guarded
training task receives, and how a report is published: the log text (once, compact), the full report and the
page kept in the store when XCom or an artifact holds only the compact one, and the small summary an asset
event or a lineage run carries. No orchestrator is imported here: adapters translate, this builds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.errors import MlguardError
from mlguard_orchestration.guard import Guard
from mlguard_orchestration.html import to_html
from mlguard_orchestration.notify.render import to_text
from mlguard_orchestration.report import COMPACT_MAX_BYTES, Report
from mlguard_orchestration.spec import GuardSpec, load_spec
from mlguard_orchestration.store import ProfileStore, ReferencePolicy
from mlguard_orchestration.suite import SuiteOptions

LOG_FINDINGS = 5  # findings the task log shows in full; the rest are in XCom / the artifact and the page


class GuardSettings(BaseModel):
    """A guard as a task decorator describes it: a spec file and/or checks, plus reference settings.

    `default_suite` derives checks from the reference of every table (True) or of the named ones; the store
    keeps the references (promoted only when the guard passes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(default=None, description="Guard name; default: the task's name.")
    spec: str | None = None
    checks: list[AnyCheck] = Field(default_factory=list)
    default_suite: bool | list[str] = False
    suite: SuiteOptions | None = None
    reference_policy: ReferencePolicy | None = None
    label_column: str | None = None
    reference: str | dict[str, str] | None = None
    store: str | None = None
    sample_values: bool = False

    def build(self, default_name: str, default_store: str) -> Guard:
        """The Guard: the spec's settings, then the decorator's, by `Guard.from_spec`'s rule (the decorator's
        win where both say something; a switch left False says nothing).

        Its name: the decorator's `name`, else the spec's, else `default_name` (the task's); its store: the
        decorator's, else the spec's, else `default_store`."""
        spec = load_spec(self.spec) if self.spec else GuardSpec()
        return Guard.from_spec(
            spec, name=self.name or (spec.name if "name" in spec.model_fields_set else default_name),
            checks=self.checks, default_suite=self.default_suite or None, suite=self.suite,
            reference_policy=self.reference_policy, label=self.label_column, sample_values=self.sample_values or None,
            reference=self.reference or None, store=ProfileStore(self.store or spec.store or default_store))


def tables_of(value: Any, table: str) -> dict[str, Any]:
    """The tables a task's value stands for: a mapping is {table: source}; anything else is one table."""
    return dict(value) if isinstance(value, Mapping) else {table: value}


class TrainingGuardFactory:
    """Builds TrainingGuards named after the task and remembers them, so the adapter can publish the report of
    the last one (a task that trains twice reports its final run)."""

    def __init__(self, name: str, config: Mapping[str, Any] | None, context: dict[str, str]) -> None:
        self.name, self.config, self.context = name, dict(config or {}), context
        self.guards: list[Any] = []

    def __call__(self, model: Any, optimizer: Any, **kwargs: Any) -> Any:
        from mlguard_orchestration.training import GuardConfig, TrainingGuard

        kwargs.setdefault("config", GuardConfig(**self.config))
        guard = TrainingGuard(model, optimizer, name=kwargs.pop("name", self.name), context=self.context, **kwargs)
        self.guards.append(guard)
        return guard


# -- publishing a report ------------------------------------------------------------------------------------


def log_text(report: Report, kept: str | None = None) -> str:
    """The report as the task log carries it, once: the verdict, the first findings with their causes, what is
    new since the previous run, and where the full report went when XCom holds only the compact one."""
    text = to_text(report, max_findings=LOG_FINDINGS)
    if report.since_last_run is not None:
        text += f"\n  {report.since_last_run.line()}"
    if kept is not None:
        text += f"\n  full report: {kept}"
    return text


def store_of(store: ProfileStore | str | os.PathLike[str] | None) -> ProfileStore | None:
    return store if isinstance(store, ProfileStore) or store is None else ProfileStore(store)


def keep_full_report(report: Report, store: ProfileStore | None, run: str) -> tuple[str | None, str | None]:
    """Keep the full JSON report in the store when it is larger than the compact one XCom or an artifact
    holds; returns (where it went or None, a note when it could not be kept). Never raises: the verdict
    must not depend on the store."""
    if store is None:
        return None, None
    full = json.dumps(report.model_dump(mode="json")).encode()
    if len(full) <= COMPACT_MAX_BYTES:
        return None, None
    try:
        return store.save_report(report.guard, run, full, "json"), None
    except (MlguardError, OSError) as exc:
        return None, f"the full report ({len(full):,} bytes) could not be kept in {store.root!r}: {exc}"


def keep_page(report: Report, store: ProfileStore | None, run: str) -> tuple[str | None, str | None]:
    """Write the report page into the store; returns (where it went or None, a note when it failed)."""
    if store is None:
        return None, None
    try:
        return store.save_report(report.guard, run, to_html(report).encode(), "html"), None
    except (MlguardError, OSError) as exc:
        return None, f"the report page could not be written to {store.root!r}: {exc}"


def page_url(where: str) -> str:
    """A link a browser can follow to a page kept in the store: file:// for a local path, else the URL."""
    return where if "://" in where else Path(where).resolve().as_uri()


def summary(report: Report, kept: str | None = None) -> dict[str, Any]:
    """A few hundred bytes that say how the guard judged: for an asset event's `extra` or a lineage facet."""
    top, cause = report.top_finding, report.top_cause
    out: dict[str, Any] = {
        "guard": report.guard[:120], "status": report.status, "checks_run": report.checks_run,
        "findings": len(report.findings), "failed": sum(f.severity == "fail" for f in report.findings),
        "warnings": sum(f.severity == "warn" for f in report.findings),
        "codes": sorted({f.code for f in report.findings})[:10],
        "top_finding": top.code if top else None, "top_cause": cause.code if cause else None,
        "started_at": report.started_at.isoformat(),
    }
    if report.since_last_run is not None:
        s = report.since_last_run
        out["since_last_run"] = {"new": s.new_count, "resolved": s.resolved_count, "persisting": s.persisting_count}
    if kept is not None:
        out["report"] = kept[:500]
    return out
