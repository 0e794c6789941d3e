"""`@task.mlguard_training`: a TaskFlow training task that receives a `guard` factory; the guard's report goes
to XCom like the data guards', and a stopped run fails the task without retry (retrying a diverged run with
the same settings diverges again).

    @task.mlguard_training(config={"window": 100})
    def train(parts: dict, guard=None) -> str:
        model, opt = build(), torch.optim.AdamW(...)
        with guard(model, opt, compute_loss=lambda m, b: loss_fn(m(b[0]), b[1])) as g:
            for b in loader: ...; g.step(loss, batch=b, predictions=out, targets=b[1])
        return save(model)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory

from mlguard_orchestration.adapters import TrainingGuardFactory
from mlguard_orchestration.airflow._report import publish, run_context
from mlguard_orchestration.airflow.operators import default_store
from mlguard_orchestration.errors import GuardFailed


class _TrainingPythonOperator(DecoratedOperator, PythonOperator):
    template_fields: Sequence[str] = PythonOperator.template_fields
    custom_operator_name: ClassVar[str] = "@task.mlguard_training"

    def __init__(self, *, python_callable: Callable[..., Any], op_args: Any, op_kwargs: Any,
                 config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.config = dict(config or {})
        super().__init__(kwargs_to_upstream={"python_callable": python_callable, "op_args": op_args,
                                             "op_kwargs": op_kwargs},
                         python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, **kwargs)

    def execute(self, context: Any) -> Any:
        factory = TrainingGuardFactory(self.task_id, self.config, run_context(context))
        self.op_kwargs = {**self.op_kwargs, "guard": factory}
        try:
            result = super().execute(context)
        except GuardFailed as stopped:  # TrainingStopped: the guard's verdict, with its report
            publish(stopped.report, context, self.log, default_store())
            raise  # unreachable: publish raised for a failed report
        if factory.guards:
            publish(factory.guards[-1].report(), context, self.log, default_store())
        return result


def training_task(python_callable: Callable[..., Any] | None = None, multiple_outputs: bool | None = None,
                  **kwargs: Any) -> TaskDecorator:
    """The `@task.mlguard_training` decorator."""
    return task_decorator_factory(python_callable=python_callable, multiple_outputs=multiple_outputs,
                                  decorated_operator_class=_TrainingPythonOperator, **kwargs)
