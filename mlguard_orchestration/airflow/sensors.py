"""DatasetReadySensor: wait until a dataset has arrived and is fit to use (exists, enough rows, schema
intact, fresh enough) — in poke mode, or deferrable so the wait holds no worker slot.

    DatasetReadySensor(task_id="wait_features", source="s3://lake/features/{{ ds }}/", min_rows=1000,
                       columns={"user_id": "integer"}, time_column="updated_at", max_age="6h",
                       deferrable=True, poke_interval=300, timeout=6 * 3600)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from mlguard_orchestration.airflow._report import XCOM_KEY, GuardSpecInvalid, logical_date
from mlguard_orchestration.airflow._sources import resolve
from mlguard_orchestration.airflow.triggers import DatasetReadyTrigger
from mlguard_orchestration.readiness import check_ready


class DatasetReadySensor(BaseSensorOperator):
    template_fields: Sequence[str] = ("source", "columns", "time_column", "max_age")
    ui_color = "#e8f0f4"

    def __init__(self, *, source: Any, min_rows: int = 1, columns: Mapping[str, str | None] | None = None,
                 time_column: str | None = None, max_age: str | timedelta | None = None,
                 deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source, self.min_rows, self.columns = source, min_rows, dict(columns) if columns else None
        self.time_column, self.max_age, self.deferrable = time_column, max_age, deferrable

    def _judge(self, context: Any) -> bool:
        result = check_ready(resolve(self.source, context), min_rows=self.min_rows, columns=self.columns,
                             time_column=self.time_column, max_age=self.max_age,
                             logical_date=logical_date(context))
        if result.final:
            raise GuardSpecInvalid(result.reason)
        if result.ready:
            context["ti"].xcom_push(key=XCOM_KEY, value=result.report.compact())
        else:
            self.log.info("dataset not ready yet: %s", result.reason)
        return result.ready

    def poke(self, context: Any) -> bool:
        return self._judge(context)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self._judge(context):  # already there: no need to defer at all
            return None
        when = logical_date(context)
        max_age = self.max_age.total_seconds() if isinstance(self.max_age, timedelta) else self.max_age
        self.defer(trigger=DatasetReadyTrigger(  # the rendered source spec: the trigger resolves it itself
            self.source, min_rows=self.min_rows, columns=self.columns, time_column=self.time_column,
            max_age=max_age,
            logical_date=when.isoformat() if when else None, poke_interval=float(self.poke_interval),
            timeout=float(self.timeout)), method_name="execute_complete", timeout=timedelta(seconds=self.timeout))
        return None

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        event = event or {}
        if event.get("report"):
            context["ti"].xcom_push(key=XCOM_KEY, value=event["report"])
        if event.get("status") == "ready":
            return
        if event.get("status") == "impossible":
            raise GuardSpecInvalid(event.get("reason", "the dataset can never be ready as specified"))
        raise AirflowSensorTimeout(f"dataset not ready after {self.timeout:.0f}s: {event.get('reason', '?')}")
