"""`guard_data`: a ready Prefect task that runs a guard over tables named in the flow — the Prefect counterpart
of Airflow's DataGuardOperator, for a guard that is a step of its own:

    guard_join = guard_data.with_options(name="guard_join")
    guard_join({"labels": paths["labels"], "features": paths["features"]}, spec="guards/join.yaml")

It returns the compact report (JSON-ready) when the guard passes or warns and fails the task otherwise, exactly
as the decorators do (see `_report.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prefect import task

from mlguard_orchestration.adapters import GuardSettings, tables_of
from mlguard_orchestration.errors import MlguardError, SpecError
from mlguard_orchestration.prefect._report import logical_date, publish, retry_condition, run_context
from mlguard_orchestration.prefect.decorators import current_task_name, default_store
from mlguard_orchestration.report import Report


@task(name="mlguard", retry_condition_fn=retry_condition)
def guard_data(tables: Mapping[str, Any] | Any, spec: str | None = None, checks: Sequence[Any] = (),
               name: str | None = None, default_suite: bool | list[str] = False, label_column: str | None = None,
               reference: str | dict[str, str] | None = None, store: str | None = None,
               sample_values: bool = False, suite: dict[str, Any] | None = None,
               reference_policy: str | None = None) -> dict[str, Any]:
    """Run a guard — a spec file and/or checks, optionally against references — over `tables` ({name: source};
    a single source is the table "data"). The guard is named by `name`, else its spec, else the task."""
    task_name = current_task_name(guard_data.fn)
    try:
        settings = GuardSettings(name=name, spec=spec, checks=list(checks), default_suite=default_suite,
                                 label_column=label_column, reference=reference, store=store,
                                 sample_values=sample_values, suite=suite, reference_policy=reference_policy)
        guard = settings.build(task_name, default_store())
    except (MlguardError, ValueError) as exc:  # the guard cannot even start: still a report, never a bare traceback
        error = exc if isinstance(exc, MlguardError) else SpecError(f"invalid guard settings: {exc}")
        report = Report.of_error(name or task_name, error, run_context())
        return publish(report).compact()
    report = guard.run(tables_of(tables, "data"), logical_date=logical_date(), context=run_context())
    return publish(report, guard.store).compact()
