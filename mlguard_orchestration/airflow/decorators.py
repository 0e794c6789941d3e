"""`@task.mlguard`: a TaskFlow task whose return value (a DataFrame, a path, or {table: source}) is guarded
before any downstream task sees it.

    @task.mlguard(checks=[NullRate(column="plan")], default_suite=True, store="s3://lake/mlguard")
    def extract() -> pd.DataFrame: ...

Registered through the provider's task-decorators, so it needs this package installed; `guarded_task` is the
same decorator by import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory

from mlguard_orchestration.adapters import GuardSettings, tables_of
from mlguard_orchestration.airflow._report import dag_file, logical_date, publish, run_context
from mlguard_orchestration.airflow.lineage import GuardLineage
from mlguard_orchestration.airflow.operators import default_store


class _GuardedPythonOperator(GuardLineage, DecoratedOperator, PythonOperator):
    template_fields: Sequence[str] = (*PythonOperator.template_fields, "spec", "store", "reference")
    custom_operator_name: ClassVar[str] = "@task.mlguard"

    def __init__(self, *, python_callable: Callable[..., Any], op_args: Any, op_kwargs: Any,
                 spec: str | None = None, checks: Sequence[Any] = (), default_suite: bool | Sequence[str] = False,
                 label_column: str | None = None, reference: Any = None, store: str | None = None,
                 table: str = "data", suite: Any = None, reference_policy: str | None = None,
                 **kwargs: Any) -> None:
        # validated now: a typo in a check fails the DAG at parse time
        self._settings = GuardSettings(spec=spec, checks=list(checks), default_suite=default_suite,
                                       label_column=label_column, reference=reference, store=store, suite=suite,
                                       reference_policy=reference_policy)
        self.spec, self.store, self.reference, self.table = spec, store, reference, table
        super().__init__(kwargs_to_upstream={"python_callable": python_callable, "op_args": op_args,
                                             "op_kwargs": op_kwargs},
                         python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, **kwargs)

    def execute(self, context: Any) -> Any:
        result = super().execute(context)
        rendered = self._settings.model_copy(update={"spec": self.spec, "store": self.store,
                                                     "reference": self.reference})
        guard = rendered.build(self.task_id, default_store())
        guard.code_path = dag_file(context)
        report = self.judged = guard.run(tables_of(result, self.table), logical_date=logical_date(context),
                                         context=run_context(context))
        self.profiles = guard.last_profiles
        publish(report, context, self.log, guard.store)
        return result


def guarded_task(python_callable: Callable[..., Any] | None = None, multiple_outputs: bool | None = None,
                 **kwargs: Any) -> TaskDecorator:
    """The `@task.mlguard` decorator."""
    return task_decorator_factory(python_callable=python_callable, multiple_outputs=multiple_outputs,
                                  decorated_operator_class=_GuardedPythonOperator, **kwargs)
