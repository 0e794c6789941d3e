"""The evaluate → register gate in a DAG: `ModelGateOperator` and `@task.mlguard_gate`.

    gate = ModelGateOperator(task_id="gate", spec=SPEC, inputs={"xcom": "evaluate"}, store="s3://lake/mlguard")

    @task.mlguard_gate(spec=SPEC, store="s3://lake/mlguard")
    def gate(scored: dict) -> dict:          # returns the gate inputs (mlguard_orchestration.gate.GateInputs)
        return {"predictions": scored["eval"], "targets": scored["eval"], "slices": scored["eval"]}

Both return the compact report (and push it under "mlguard_report" like every guard), so the register step
calls `register_champion(Report.model_validate(report), store)`. A blocked model fails the task without retry;
an unreadable input is retried as configured. With `register=True` the gate task registers a passing model as
the champion itself. The DAG file goes into the fingerprint, so a report names the DAG's git commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import BaseOperator
from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory

from mlguard_orchestration.airflow._report import dag_file, publish, run_context
from mlguard_orchestration.airflow._sources import resolve
from mlguard_orchestration.airflow.lineage import GuardLineage
from mlguard_orchestration.airflow.operators import default_store
from mlguard_orchestration.errors import MlguardError
from mlguard_orchestration.gate import GateSpec, register_champion, run_gate
from mlguard_orchestration.gate.spec import gate_spec
from mlguard_orchestration.report import Report


def judge(operator: GuardLineage, spec: GateSpec, value: Any, context: Any, log: logging.Logger | Any, *,
          store: str | None, register: bool, packages: Sequence[str]) -> dict[str, Any]:
    """Run the gate on a task's value, publish the report, register a passing model when asked."""
    where = store or default_store()
    report = operator.judged = run_gate(spec, value, store=where, packages=packages, code_path=dag_file(context),
                                        context=run_context(context))
    publish(report, context, log, where)
    if register:
        register_champion(report, where)
    return report.compact()


class ModelGateOperator(GuardLineage, BaseOperator):
    """The gate over `inputs`: the gate inputs as a mapping of (templated) values and paths, where any value
    may be `{"xcom": task_id, "key": …}`; or `{"xcom": task_id}` alone for an upstream task that returned them.

    :param spec: a GateSpec or its dict (validated at parse time).
    :param store: where the champion and the last good run live (default `default_store()`). Templated.
    :param register: register a passing model as the champion here (default: the register step does it).
    :param packages: your own distributions, for the run fingerprint.
    """

    template_fields: Sequence[str] = ("inputs", "store")
    ui_color = "#fdf1e0"

    def __init__(self, *, spec: GateSpec | Mapping[str, Any], inputs: Mapping[str, Any], store: str | None = None,
                 register: bool = False, packages: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = gate_spec(spec)
        self.inputs = dict(inputs)
        self.store = store
        self.register = register
        self.packages = tuple(packages)

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            value = self._resolve(context)
        except MlguardError as exc:  # the upstream value is missing: still a report, never a bare traceback
            self.judged = Report.of_error(self.spec.name, exc, run_context(context))
            return publish(self.judged, context, self.log).compact()
        return judge(self, self.spec, value, context, self.log, store=self.store, register=self.register,
                     packages=self.packages)

    def _resolve(self, context: Any) -> Any:
        if "xcom" in self.inputs:
            return resolve(self.inputs, context)
        return {k: resolve(v, context) if isinstance(v, Mapping) and "xcom" in v else v
                for k, v in self.inputs.items()}


class _GatePythonOperator(GuardLineage, DecoratedOperator, PythonOperator):
    template_fields: Sequence[str] = (*PythonOperator.template_fields, "store")
    custom_operator_name: ClassVar[str] = "@task.mlguard_gate"

    def __init__(self, *, python_callable: Callable[..., Any], op_args: Any, op_kwargs: Any,
                 spec: GateSpec | Mapping[str, Any], store: str | None = None, register: bool = False,
                 packages: Sequence[str] = (), **kwargs: Any) -> None:
        self.spec = gate_spec(spec)
        self.store, self.register, self.packages = store, register, tuple(packages)
        super().__init__(kwargs_to_upstream={"python_callable": python_callable, "op_args": op_args,
                                             "op_kwargs": op_kwargs},
                         python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, **kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        value = super().execute(context)
        return judge(self, self.spec, value, context, self.log, store=self.store, register=self.register,
                     packages=self.packages)


def gate_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """The `@task.mlguard_gate` decorator: the function returns the gate inputs; the task returns the report."""
    return task_decorator_factory(python_callable=python_callable, multiple_outputs=False,
                                  decorated_operator_class=_GatePythonOperator, **kwargs)
