"""What `airflow providers list` shows. Imported at provider discovery, so it imports nothing but the version."""

from __future__ import annotations

from typing import Any

from mlguard_orchestration._version import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "mlguard-orchestration",
        "name": "mlguard",
        "description": "Data and training guards that stop a broken ML pipeline at the task where it broke, "
                       "with a diagnosis.",
        "versions": [__version__],
        "integrations": [{"integration-name": "mlguard", "tags": ["software"]}],
        "operators": [{"integration-name": "mlguard",
                       "python-modules": ["mlguard_orchestration.airflow.operators",
                                          "mlguard_orchestration.airflow.gate"]}],
        "sensors": [{"integration-name": "mlguard", "python-modules": ["mlguard_orchestration.airflow.sensors"]}],
        "triggers": [{"integration-name": "mlguard",
                      "python-modules": ["mlguard_orchestration.airflow.triggers"]}],
        "notifications": [f"mlguard_orchestration.airflow.notifiers.{name}" for name in (
            "MlguardSlackNotifier", "MlguardWebhookNotifier", "MlguardEmailNotifier")],
        "task-decorators": [
            {"name": "mlguard", "class-name": "mlguard_orchestration.airflow.decorators.guarded_task"},
            {"name": "mlguard_training", "class-name": "mlguard_orchestration.airflow.training.training_task"},
            {"name": "mlguard_gate", "class-name": "mlguard_orchestration.airflow.gate.gate_task"},
        ],
    }
