"""What the training guard knows when something goes wrong — the contract between the guard (which gathers
it), the locators (which add where it happened) and the cause ranking (which turns it into causes).

Plain pydantic, no torch: evidence travels into the Report (and so into XCom and notifications)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TensorStats(BaseModel):
    """Small summary of a tensor: never its values."""

    shape: list[int] = Field(default_factory=list)
    dtype: str = ""
    finite: bool = True
    nan: int = 0
    inf: int = 0
    min: float | None = None
    max: float | None = None
    abs_max: float | None = None
    mean: float | None = None


class ModuleFault(BaseModel):
    """The first module that produced a non-finite value from finite inputs."""

    name: str = Field(description="Qualified module name, e.g. 'encoder.layers.3.attn'; '<loss>' for the loss.")
    type: str = Field(description="Module class name, e.g. 'Linear'.")
    phase: str = Field(description="'forward' or 'backward'.")
    inputs: list[TensorStats] = Field(default_factory=list)
    outputs: list[TensorStats] = Field(default_factory=list)


class SampleFault(BaseModel):
    """Which samples of the batch reproduce the failure."""

    indices: list[int] = Field(default_factory=list, description="Indices within the batch (at most 50).")
    dataset_indices: list[int] | None = Field(None, description="The same samples' indices in the dataset, when the "
                                              "loader was tracked (`guard.track(loader)`).")
    method: str = Field(description="'per-sample' (independent samples) or 'bisection' (coupled, e.g. BatchNorm).")
    input_non_finite: bool = Field(False, description="The named samples' inputs themselves hold NaN/Inf.")
    artifact: str | None = Field(None, description="torch.save file with the indices and tensors, to reproduce.")


class DeadLayer(BaseModel):
    """An activation layer none of whose units fire, and what feeds it."""

    layer: str = Field(description="The activation module, e.g. '1' (a ReLU).")
    share: float = Field(description="Share of its units that never fire on the probed batches.")
    producer: str | None = Field(None, description="The module whose output it receives, e.g. '0' (a Linear).")
    parameter: str | None = Field(None, description="The producer's parameter that keeps the units below 0.")
    facts: dict[str, float] = Field(default_factory=dict, description="e.g. the dead units' bias mean.")


class TrainingEvidence(BaseModel):
    """Everything the cause ranking may use. Histories are short (the last window), oldest first."""

    step: int
    rank: int | None = None
    loss_history: list[float] = Field(default_factory=list)
    grad_norm_history: list[float] = Field(default_factory=list)
    update_ratio_history: list[float] = Field(default_factory=list)
    learning_rate: float | None = None
    param_dtype: str = "float32"
    autocast_dtype: str | None = None
    grad_scaler: bool = False
    loss_finite: bool = True
    grads_finite: bool = True
    weights_finite: bool = True
    module_fault: ModuleFault | None = None
    sample_fault: SampleFault | None = None
    frozen_parameters: list[str] = Field(default_factory=list)
    not_in_optimizer: list[str] = Field(default_factory=list)
    constant_level: float | None = Field(None, description="The loss of the best constant prediction, estimated "
                                         "from the targets seen.")
    constant_level_from: str = ""
    dead_layers: list[DeadLayer] = Field(default_factory=list)
    zero_updates: str | None = Field(None, description="Why updates are exactly zero: 'learning_rate' or "
                                     "'gradients'; None when they are not.")
    learning_rates: list[float] = Field(default_factory=list, description="Recent learning rates (max over groups).")
    grad_weight_ratio: float | None = Field(None, description="Gradient norm / weight norm at the last probe.")
    update_ratio: float | None = Field(None, description="Update norm / weight norm at the last probe.")
    prediction_std: float | None = None
    target_std: float | None = None
