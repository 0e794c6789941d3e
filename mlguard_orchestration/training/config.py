"""The training guard's thresholds, in one validated model.

Defaults are chosen so that healthy training never trips them — one legitimately hard batch included — because
a guard that cries wolf gets switched off. Every rule that fails needs either repetition within the window or
an extreme value; rules for slow trends (plateau, dead units, saturation, overfitting) only warn.

Plain pydantic, no torch, so a config can be built and validated where torch is not installed."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class GuardConfig(BaseModel):
    """What `TrainingGuard` watches and when it calls something a finding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(50, ge=8, description="Steps in the rolling window for the robust (median/MAD) statistics.")
    sample_every: int = Field(25, ge=1, description="Steps between sampled probes: activations (forward hooks), "
                              "update/weight ratio, weights and optimizer state finite, predictions, fingerprints.")
    evaluate_late: bool | None = Field(None, description="Judge step t at step t+1 so the host never waits for the "
                                       "device. None: late on accelerators and under torch.distributed, at once on "
                                       "CPU (where reading a value costs nothing).")
    scaler_max_skips: int = Field(20, ge=2, description="With a GradScaler: steps in a row it may skip for "
                                  "overflowing gradients before that is a fault. Each skip halves the scale, so 20 "
                                  "means the gradients stay non-finite at a millionth of the starting scale.")
    locate: bool = Field(True, description="On a NaN/Inf, replay the batch to name the module and the samples.")
    artifact_dir: Path | None = Field(None, description="Where the locator saves the offending samples.")

    # -- loss ------------------------------------------------------------------------------------------------
    spike_z: float = Field(10.0, gt=0, description="A spike is this many robust sigmas (1.4826·MAD) above the "
                           "window median ...")
    spike_ratio: float = Field(2.0, gt=1, description="... and above this multiple of the median ...")
    spike_floor: float = Field(0.25, ge=0, description="... and above the median by this share of the initial "
                               "loss (so noise near a converged, tiny loss is not a spike).")
    spike_repeats: int = Field(3, ge=2, description="Separate spikes within one window that fail (spikes closer than "
                               "window/5 steps are one): one hard batch and its aftermath are tolerated.")
    spike_extreme: float = Field(1e3, gt=1, description="One loss above this multiple of max(median, initial loss) "
                                 "fails on its own.")
    divergence_factor: float = Field(4.0, gt=1, description="Rolling median above this multiple of its best, back "
                                     "up by a tenth of what training had gained, and rising through every fifth "
                                     "of the last two windows (a model recovering from a hard batch is not) is "
                                     "divergence.")
    baseline_loss: float | None = Field(None, description="The loss of the best constant prediction (e.g. the label "
                                        "entropy for a classifier, the target variance for MSE). A run still at "
                                        "this level after plateau_steps learns nothing from its inputs: a fail.")
    baseline_margin: float = Field(0.03, ge=0, description="How close to baseline_loss counts as 'at' it.")
    plateau_steps: int = Field(300, ge=1, description="After this many steps, a rolling median that has not ...")
    plateau_min_improvement: float = Field(0.05, ge=0, description="... improved by this share of the initial loss "
                                           "is a plateau (warn).")

    # -- gradients -------------------------------------------------------------------------------------------
    explode_factor: float = Field(10.0, gt=1, description="A gradient norm (total, or one parameter's) this many "
                                  "times its rolling median is a burst ...")
    explode_floor: float = Field(0.1, ge=0, description="... when also above this share of the initial total norm "
                                 "times explode_factor (a converged model's tiny gradients make any batch look big) ...")
    explode_repeats: int = Field(3, ge=2, description="... and this many separate bursts within a window fail.")
    explode_extreme: float = Field(1e4, gt=1, description="One total norm above this multiple of max(median, "
                                   "initial norm) fails on its own.")
    vanish_ratio: float = Field(1e-6, gt=0, description="A weight whose gradient norm stays below this share of the "
                                "largest parameter gradient norm ...")
    vanish_steps: int = Field(100, ge=1, description="... for this many consecutive steps has vanishing gradients (warn).")
    zero_grad_growth: float = Field(5.0, gt=1, description="Gradients that are the same tensors step after step "
                                    "(never reset) and whose norm grew this much over a window, rising on most "
                                    "steps: zero_grad() is missing.")

    # -- sampled probes --------------------------------------------------------------------------------------
    probe_repeats: int = Field(3, ge=1, description="Consecutive probes that must agree before a probe rule reports.")
    update_ratio_high: float = Field(0.2, gt=0, description="Update norm / weight norm above this is too large (warn).")
    update_ratio_low: float = Field(1e-7, ge=0, description="Update norm / weight norm below this is too small (warn).")
    dead_fraction: float = Field(0.9, gt=0, le=1, description="Share of a ReLU-family layer's units that never fire "
                                 "in the sampled batch, to warn.")
    saturated_fraction: float = Field(0.9, gt=0, le=1, description="Share of a sigmoid/tanh layer's outputs within "
                                      "1% of its bounds, to warn (the model's own output layer is exempt).")
    collapse_ratio: float = Field(1e-3, gt=0, description="Spread of predictions across the batch below this share "
                                  "of the targets' spread (regression) or of the logits' size (classes): collapse.")
    explosion_ratio: float = Field(1e3, gt=1, description="Mean |prediction| above this multiple of the targets' "
                                   "size: explosion (fail).")
    frozen_after: int = Field(100, ge=1, description="Steps after which trainable parameters that have not changed "
                              "at all are reported (warn).")

    # -- validation ------------------------------------------------------------------------------------------
    overfit_evals: int = Field(3, ge=2, description="Consecutive validations with a widening train/val gap, train "
                               "improving and validation worse than its best, to warn.")
