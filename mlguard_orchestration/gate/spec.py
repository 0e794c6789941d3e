"""What a gate checks and how strictly: `GateSpec`, validated once for every adapter (a typo fails the DAG or
flow at import, not the 3 a.m. run)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.gate.metrics import HIGHER_IS_BETTER, MetricName

UserMetric = float | Callable[[np.ndarray, np.ndarray], float]  # your own metric: a value, or f(pred, y)


class Bounds(BaseModel):
    """A metric's acceptable range: at least `min` (scores) and/or at most `max` (errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class GateSpec(BaseModel):
    """What the gate checks and how strictly. Defaults are tuned to stay quiet on a healthy model.

    Differences between two values of a metric are in absolute points for accuracy, AUC and your own metrics,
    and relative (a share of the reference value) for log loss, RMSE and MAE, which have no natural scale."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The gate's name: its key in the store (for the last good run).")
    task: Literal["binary", "multiclass", "regression"]
    model: str | None = Field(None, description="The registered model's name: its champion is read from the "
                                                "store and register_champion(...) writes it.")
    metrics: list[MetricName] | None = Field(None, description="Built-in metrics to compute (default: all "
                                                                 "defined for the predictions).")
    thresholds: dict[str, Bounds] = Field(default_factory=dict)
    higher_is_better: dict[str, bool] = Field(default_factory=dict,
                                              description="Direction of your own metrics (built-ins are known).")
    decision_threshold: float = Field(0.5, description="Binary: a score at or above it predicts the positive "
                                                       "class (for accuracy and the one-class check).")
    tolerance: float | dict[str, float] = Field(0.01, ge=0.0, description="How much worse than the champion "
                                                                          "is still acceptable (per metric).")
    slices: list[str] | None = Field(None, description="Slice columns (default: every column given).")
    slice_metric: MetricName | None = Field(None, description="Default: AUC for binary scores, else "
                                                                "accuracy; RMSE for regression.")
    slice_threshold: float | None = Field(None, description="Every slice's own floor (ceiling for errors).")
    slice_max_gap: float | None = Field(None, gt=0.0, description="How far below overall a slice may fall "
                                                                  "(default 0.1 points; 25 % for errors).")
    slice_min_size: int = Field(100, ge=1, description="Smaller slices are never blamed.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="One-sided level of every confidence bound.")
    max_slices: int = Field(5, ge=1, description="Worst slices listed per slice column.")
    collapse_ratio: float = Field(0.02, gt=0.0, description="Collapsed: prediction spread below this share of "
                                                            "the targets' spread.")
    explode_ratio: float = Field(10.0, gt=1.0, description="Exploded (regression): prediction range above "
                                                           "this multiple of the target range.")
    min_correlation: float = Field(0.05, ge=0.0, lt=1.0, description="Predictions whose correlation with the "
                                                                     "targets stays below this are unrelated.")
    overfit_max_gap: float | None = Field(None, gt=0.0, description="How much better train may score than "
                                                                    "validation (default 0.1 points; 50 % for errors).")
    max_plausible: dict[str, float] = Field(default_factory=dict, description="Best believable value per "
                                            "metric on this task (e.g. {'auc': 0.97}); better is too good.")
    max_jump: float = Field(0.6, gt=0.0, le=1.0, description="Too good: the share of the champion's remaining "
                                                             "error removed at once.")
    label: str | None = Field(None, description="The label column of train/eval_data, for the leakage checks "
                                                "and the feature diagnosis.")
    prediction_column: str = Field("prediction", description="Where predictions=<path> holds the predictions.")
    target_column: str | None = Field(None, description="Where targets=<path> holds the targets (default: "
                                                        "`label`).")
    group: list[str] = Field(default_factory=list, description="Entity columns (e.g. user_id) for group overlap.")
    leakage_exclude: list[str] = Field(default_factory=list, description="Columns left out of the row overlap "
                                                                         "(row ids, split markers).")

    def direction(self, metric: str) -> bool | None:
        """True when higher is better; None when unknown (your metric without a direction or threshold)."""
        if metric in HIGHER_IS_BETTER:
            return HIGHER_IS_BETTER[metric]
        if metric in self.higher_is_better:
            return self.higher_is_better[metric]
        b = self.thresholds.get(metric)
        if b is not None and (b.min is None) != (b.max is None):
            return b.min is not None
        return None

    def tolerance_for(self, metric: str) -> float:
        return self.tolerance.get(metric, 0.01) if isinstance(self.tolerance, dict) else self.tolerance


def gate_spec(spec: GateSpec | Mapping[str, Any]) -> GateSpec:
    """The spec, validated (SpecError naming the field): what every adapter calls when a task is declared."""
    if isinstance(spec, GateSpec):
        return spec
    try:
        return GateSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise SpecError(f"invalid gate spec: {problems}") from None
