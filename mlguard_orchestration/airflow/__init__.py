"""Airflow 3 adapter: guard operators, a dataset-ready sensor (poke or deferrable), `@task.mlguard`, on-failure
notifiers, the evaluate → register gate (`ModelGateOperator`, `@task.mlguard_gate`) and a provider entry
point. Thin by design: the core decides, this package translates (see `_report.py`).

Names are imported lazily: Airflow loads `mlguard_orchestration.airflow.provider` while its own configuration
is still initialising, so this package must not import Airflow until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "XCOM_KEY": "_report", "GuardCheckFailed": "_report", "GuardSourceUnavailable": "_report",
    "GuardSpecInvalid": "_report", "report_from_context": "_report", "read_report": "_report",
    "guarded_task": "decorators", "training_task": "training", "ModelGateOperator": "gate", "gate_task": "gate",
    "DataGuardOperator": "operators", "DriftGuardOperator": "operators", "JoinGuardOperator": "operators",
    "LeakageGuardOperator": "operators", "RowCountGuardOperator": "operators", "SchemaGuardOperator": "operators",
    "DatasetReadySensor": "sensors", "DatasetReadyTrigger": "triggers",
    "MlguardSlackNotifier": "notifiers", "MlguardWebhookNotifier": "notifiers", "MlguardEmailNotifier": "notifiers",
}
__all__ = [  # noqa: RUF022 (same order as _WHERE)
    "XCOM_KEY", "GuardCheckFailed", "GuardSourceUnavailable", "GuardSpecInvalid", "report_from_context", "read_report",
    "guarded_task", "training_task", "ModelGateOperator", "gate_task", "DataGuardOperator", "DriftGuardOperator", "JoinGuardOperator", "LeakageGuardOperator",
    "RowCountGuardOperator", "SchemaGuardOperator", "DatasetReadySensor", "DatasetReadyTrigger",
    "MlguardSlackNotifier", "MlguardWebhookNotifier", "MlguardEmailNotifier",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return __all__
