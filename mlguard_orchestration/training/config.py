"""The training guard's thresholds, in one validated model.

Defaults are chosen so that healthy training never trips them — checked on a corpus of healthy runs
(tests/training/corpus.py: MLP, CNN, transformer, LSTM/GRU, SGD/Adam/AdamW, warm-up and decay schedules, clipping,
bf16, a hard batch, noisy labels) — because a guard that cries wolf gets switched off. A rule fails on evidence
that no healthy run shows: repetition within the window, an extreme value, or a state training cannot leave (a
layer that passes nothing, updates that are exactly zero, parameters that get gradients but no optimizer, a loss
that never beats a constant prediction). Rules for slow trends (plateau, partly dead units, saturation,
overfitting) only warn.

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
    artifact_dir: Path | None = Field(None, description="Where a stop writes its repro artifact (dataset indices, "
                                      "the offending samples, the step the weights are from). None: "
                                      "<tempdir>/mlguard-training. The report says where.")
    watch_first: int = Field(10, ge=0, description="The first steps are all probed (update/weight ratio, "
                             "activations, targets): rules relative to a rolling window have no history yet, so "
                             "absolute rules judge these steps.")
    deliberately_frozen: list[str] = Field(default_factory=list, description="fnmatch patterns of trainable "
                                           "parameters left out of the optimizer on purpose (['*'] for all): "
                                           "they are not reported. Better: set requires_grad=False on them.")

    # -- snapshots -------------------------------------------------------------------------------------------
    snapshot_every: int = Field(50, ge=1, description="Steps between rolling snapshots of the weights and buffers; "
                                "one is also taken on early-warning signals (a spike, a burst, a high update ratio).")
    snapshots: int = Field(2, ge=1, description="Rolling snapshots kept, besides the initial weights and the one "
                           "pinned before the latest early warning. On a stop the newest whose forward pass on the "
                           "recent batches is finite is restored.")
    snapshot_device: str | None = Field(None, description="Where snapshots live: None for the parameters' own "
                                        "device, 'cpu' to offload them (pinned, copied asynchronously from CUDA).")

    # -- loss ------------------------------------------------------------------------------------------------
    spike_z: float = Field(10.0, gt=0, description="A spike is this many robust sigmas (1.4826·MAD) above the "
                           "window median ...")
    spike_ratio: float = Field(2.0, gt=1, description="... and above this multiple of the median and of the "
                               "largest loss in the window that was not itself a spike ...")
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
    constant_steps: int = Field(150, ge=1, description="After this many steps, a loss whose rolling median never "
                                "came below the constant-prediction level — the guard's own estimate from the targets "
                                "passed to step(): label entropy for classes, per-output variance for regression — "
                                "and no longer falls, while the predictions vary across samples, learns nothing from "
                                "its inputs: a fail (after plateau_steps when the predictions barely vary).")
    constant_margin: float = Field(0.025, ge=0, description="Within this share below (and 3× it above) the constant-"
                                   "prediction level counts as 'at' it.")
    plateau_steps: int = Field(300, ge=1, description="After this many steps, a rolling median that has not ...")
    plateau_min_improvement: float = Field(0.05, ge=0, description="... improved by this share of the initial loss "
                                           "is a plateau (warn).")

    # -- gradients -------------------------------------------------------------------------------------------
    explode_factor: float = Field(10.0, gt=1, description="A gradient norm (total, or one parameter's) this many "
                                  "times its rolling median is a burst ...")
    explode_floor: float = Field(0.1, ge=0, description="... when also above this share of the initial total norm "
                                 "times explode_factor (a converged model's tiny gradients make any batch look big) ...")
    explode_repeats: int = Field(3, ge=2, description="... and above spike_ratio × the largest norm in the window "
                                 "that was not itself a burst; this many separate bursts within a window fail.")
    explode_extreme: float = Field(1e4, gt=1, description="One total norm above this multiple of max(median, "
                                   "initial norm) fails on its own.")
    vanish_ratio: float = Field(1e-6, gt=0, description="A weight whose gradient norm stays below this share of the "
                                "largest parameter gradient norm ...")
    vanish_steps: int = Field(100, ge=1, description="... for this many consecutive steps has vanishing gradients (warn).")
    zero_update_steps: int = Field(10, ge=2, description="Steps in a row whose update is exactly zero — every "
                                   "group's learning rate is 0, or the gradients are all 0 while the loss is not — "
                                   "fail: nothing is learnt any more.")
    zero_grad_growth: float = Field(5.0, gt=1, description="Gradients that are the same tensors step after step "
                                    "(never reset) and whose norm grew this much over a window, rising on most "
                                    "steps: zero_grad() is missing.")

    # -- sampled probes --------------------------------------------------------------------------------------
    probe_repeats: int = Field(3, ge=1, description="Consecutive probes that must agree before a probe rule reports.")
    update_ratio_high: float = Field(0.2, gt=0, description="Update norm / weight norm above this is too large (warn).")
    update_ratio_low: float = Field(1e-7, ge=0, description="Update norm / weight norm below this is too small (warn).")
    update_ratio_extreme: float = Field(1.0, gt=0, description="One update larger than this share of the weights "
                                        "(non-zero weight matrices only) fails at once, from the first step: the "
                                        "update is undone and training stops.")
    dead_fraction: float = Field(0.9, gt=0, le=1, description="Share of a ReLU-family layer's units that never fire "
                                 "in the sampled batch, to warn; a layer (the output included) none of whose units "
                                 "fire on probe_repeats probes — the first steps are probes — fails.")
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
    overfit_min_worsening: float = Field(0.02, ge=0, description="... by at least this share of the best validation "
                                         "value and of the gap's start (a 1% wiggle is noise).")
