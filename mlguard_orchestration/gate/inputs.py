"""What a gate task hands the gate, and the one call every adapter makes with it.

    @task.mlguard_gate(spec=SPEC)                       # Airflow; Prefect: @task @guard_gate(spec=SPEC)
    def gate(scored: dict) -> dict:
        return {"predictions": scored["eval"], "targets": scored["eval"], "slices": scored["eval"],
                "train_metrics": {"auc": scored["train_auc"]}, "train": scored["train"],
                "eval_data": scored["test"]}

Each input is a value (arrays, a DataFrame, an Arrow table) or a path/URI the gate reads in row order: the
predictions from `GateSpec.prediction_column`, the targets from `target_column` (default `label`), the slices
from `slices`. Paths travel through XCom and result stores, so the same task works under both orchestrators.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.gate.gate import evaluate_gate
from mlguard_orchestration.gate.spec import GateSpec
from mlguard_orchestration.report import Report
from mlguard_orchestration.store import ProfileStore


class GateInputs(BaseModel):
    """The evaluation a gate judges: see `evaluate_gate` for what each field may hold."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    predictions: Any = Field(description="Per evaluation row, or a path whose prediction_column holds them.")
    targets: Any = Field(description="Per evaluation row, or a path whose target_column holds them.")
    slices: Any = None
    metrics: dict[str, Any] = Field(default_factory=dict, description="Your own metrics: values or callables.")
    champion: dict[str, float] | None = Field(None, description="Default: the champion in the store.")
    train_metrics: dict[str, float] | None = None
    train: Any = None
    eval_data: Any = Field(None, description="The evaluation table; in the predictions' row order it also "
                                             "tells which column a weak model misses.")

    @classmethod
    def of(cls, value: Any) -> GateInputs:
        """A task's return value as GateInputs: GateInputs itself or a mapping with its fields."""
        if isinstance(value, GateInputs):
            return value
        if not isinstance(value, Mapping):
            raise SpecError(f"a gate task must return its gate inputs — a dict with keys {sorted(cls.model_fields)} "
                            f"(predictions and targets required) or GateInputs; got {type(value).__name__}.")
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'inputs'}: {e['msg']}" for e in exc.errors()[:5])
            raise SpecError(f"invalid gate inputs ({problems}); expected keys {sorted(cls.model_fields)}, got "
                            f"{sorted(map(str, value))}.") from None


def run_gate(spec: GateSpec, value: Any, *, store: ProfileStore | str | os.PathLike[str] | None,
             packages: Sequence[str] = (), code_path: str | os.PathLike[str] | None = None,
             context: Mapping[str, str] | None = None) -> Report:
    """What the orchestrator adapters call: the task's value as GateInputs, then `evaluate_gate`. Never raises:
    a value that is not gate inputs comes back as an error report, like any guard's own trouble."""
    try:
        inputs = GateInputs.of(value)
    except SpecError as exc:
        return Report.of_error(spec.name, exc, context)
    return evaluate_gate(spec, inputs.predictions, inputs.targets, slices=inputs.slices, metrics=inputs.metrics,
                         champion=inputs.champion, train_metrics=inputs.train_metrics, train=inputs.train,
                         eval_data=inputs.eval_data, store=store, packages=packages, code_path=code_path,
                         context=context)
