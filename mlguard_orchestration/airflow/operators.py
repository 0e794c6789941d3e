"""Guard operators. Each is a thin shell: resolve the tables, run the core Guard, publish the report.

    DataGuardOperator(task_id="guard_features", spec="guards/features.yaml",
                      tables={"data": "s3://lake/features/{{ ds }}/"}, store="s3://lake/mlguard")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from mlguard_orchestration.adapters import GuardSettings
from mlguard_orchestration.airflow._report import dag_file, logical_date, publish, run_context
from mlguard_orchestration.airflow._sources import resolve_tables
from mlguard_orchestration.airflow.lineage import GuardLineage
from mlguard_orchestration.checks import (
    AnyCheck,
    Drift,
    GroupOverlap,
    JoinKeys,
    LabelDrift,
    NullRateDrift,
    PointInTime,
    RowCount,
    RowCountChange,
    Schema,
    TrainTestOverlap,
)
from mlguard_orchestration.errors import MlguardError
from mlguard_orchestration.guard import Guard
from mlguard_orchestration.report import Report
from mlguard_orchestration.spec import GuardSpec
from mlguard_orchestration.store import default_store as _default_store


def default_store() -> str:
    """`store.default_store` under Airflow's home: $MLGUARD_STORE, else $AIRFLOW_HOME/mlguard/profiles."""
    return _default_store(os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"))


class DataGuardOperator(GuardLineage, BaseOperator):
    """Run a guard — checks and/or a spec file, optionally against reference profiles — over `tables`.

    :param tables: {table name: source}; a single source means the table "data". Templated.
    :param spec: a guard spec file (YAML/JSON), templated; its checks run before `checks`.
    :param checks: check objects or dicts (`{"kind": "null_rate", …}`).
    :param default_suite: derive checks from the reference of every table (True) or of the named ones.
    :param label_column: the label column, so the default suite also watches its distribution.
    :param suite: what the default suite should know (`SuiteOptions` or its dict: `exclude`, `partition_by`,
        per-column `columns` rules).
    :param reference_policy: `last_good` (default), `rolling[:N]` or `pinned`.
    :param store: where references live (local path or fsspec URL; default `default_store()`); each table's
        profile is promoted only when the guard passes.
    """

    template_fields: Sequence[str] = ("tables", "spec", "reference", "store", "guard_name")
    ui_color = "#e8f4ea"

    def __init__(self, *, tables: Mapping[str, Any] | Any, spec: str | None = None,
                 checks: Sequence[AnyCheck | Mapping[str, Any]] = (), guard_name: str | None = None,
                 default_suite: bool | Sequence[str] = False, label_column: str | None = None,
                 reference: str | Mapping[str, str] | None = None, store: str | None = None,
                 sample_values: bool = False, suite: Mapping[str, Any] | None = None,
                 reference_policy: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tables = tables if isinstance(tables, Mapping) else {"data": tables}
        self.spec = spec
        self.checks = GuardSpec(checks=list(checks)).checks  # validated at parse time: a typo fails the DAG
        self.guard_name = guard_name
        self.default_suite = default_suite
        self.label_column = label_column
        self.reference = reference
        self.store = store
        self.sample_values = sample_values
        self.suite = suite
        self.reference_policy = reference_policy
        GuardSettings(suite=suite, reference_policy=reference_policy)  # validated at parse time

    def build_guard(self) -> Guard:
        """The Guard, built the way every adapter builds one (`GuardSettings`); named after the task unless
        `guard_name` or the spec says otherwise."""
        settings = GuardSettings(
            name=self.guard_name or None, spec=self.spec, checks=self.checks, label_column=self.label_column,
            default_suite=self.default_suite if isinstance(self.default_suite, bool) else list(self.default_suite),
            reference=dict(self.reference) if isinstance(self.reference, Mapping) else self.reference,
            store=self.store, sample_values=self.sample_values, suite=self.suite,
            reference_policy=self.reference_policy)
        return settings.build(self.task_id, default_store())

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            guard = self.build_guard()
            guard.code_path = dag_file(context)
            data = resolve_tables(self.tables, context)
        except MlguardError as exc:  # the guard cannot even start: still a report, never a bare traceback
            self.judged = Report.of_error(self.guard_name or self.task_id, exc, run_context(context))
            return publish(self.judged, context, self.log).compact()
        self.judged = guard.run(data, logical_date=logical_date(context), context=run_context(context))
        self.profiles = guard.last_profiles
        return publish(self.judged, context, self.log, guard.store).compact()


class SchemaGuardOperator(DataGuardOperator):
    """Required columns and their logical types: `columns={"user_id": "integer", "plan": "string"}`."""

    def __init__(self, *, table: Any, columns: Mapping[str, str | None], allow_extra: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(tables={"data": table}, checks=[Schema(columns_=dict(columns), allow_extra=allow_extra)],
                         **kwargs)


class RowCountGuardOperator(DataGuardOperator):
    """Row count bounds, and the change against the reference when a store/reference is given."""

    def __init__(self, *, table: Any, min_rows: int | None = 1, max_rows: int | None = None,
                 max_change_ratio: float | None = None, **kwargs: Any) -> None:
        checks: list[AnyCheck] = [RowCount(min=min_rows, max=max_rows)]
        if max_change_ratio is not None:
            checks.append(RowCountChange(min_ratio=1 / max_change_ratio, max_ratio=max_change_ratio))
        super().__init__(tables={"data": table}, checks=checks, **kwargs)


class JoinGuardOperator(DataGuardOperator):
    """Join-key health between `left` and `right` without running the join (fan-out, match rate, …)."""

    def __init__(self, *, left: Any, right: Any, on: Sequence[str] | str | None = None,
                 left_on: Sequence[str] | str | None = None, right_on: Sequence[str] | str | None = None,
                 relationship: str | None = "many_to_one", min_match_rate: float = 0.9, max_fan_out: float = 1.0,
                 **kwargs: Any) -> None:
        check = JoinKeys(left="left", right="right", on=on, left_on=left_on, right_on=right_on,
                         relationship=relationship, min_match_rate=min_match_rate, max_fan_out=max_fan_out)
        super().__init__(tables={"left": left, "right": right}, checks=[check], **kwargs)


class DriftGuardOperator(DataGuardOperator):
    """Distribution drift against the stored reference (PSI / Jensen–Shannon), null-rate drift, and the
    label's distribution when `label` is given. Needs `store` or `reference`."""

    def __init__(self, *, table: Any, columns: Sequence[str] | None = None, label: str | None = None,
                 **kwargs: Any) -> None:
        checks: list[AnyCheck] = [Drift(columns_=list(columns) if columns else None),
                                  NullRateDrift(columns_=list(columns) if columns else None)]
        if label:
            checks.append(LabelDrift(column=label))
        super().__init__(tables={"data": table}, checks=checks, **kwargs)


class LeakageGuardOperator(DataGuardOperator):
    """Train/test leakage: shared rows, shared groups (`group`), and point-in-time order in train when
    `feature_time` and `label_time` are given."""

    def __init__(self, *, train: Any, test: Any, group: Sequence[str] | str | None = None,
                 exclude: Sequence[str] = (), feature_time: str | None = None, label_time: str | None = None,
                 **kwargs: Any) -> None:
        checks: list[AnyCheck] = [TrainTestOverlap(train="train", test="test", exclude=list(exclude))]
        if group:
            checks.append(GroupOverlap(train="train", test="test", group=group))
        if feature_time and label_time:
            checks.append(PointInTime(table="train", feature_time=feature_time, label_time=label_time))
        super().__init__(tables={"train": train, "test": test}, checks=checks, **kwargs)
