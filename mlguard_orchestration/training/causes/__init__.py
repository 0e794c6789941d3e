"""From a training finding and its evidence to ranked likely causes.

Each rule reads the TrainingEvidence and either returns a Cause — with a summary that names the numbers, modules
and samples it relied on, and a confidence that grows with the strength of that evidence — or nothing. A rule
only runs for findings it can explain (RULES), and a rule whose precondition is absent offers nothing: an unstable
formula needs an operation that has one, labels are only blamed when the model can learn. An unknown code, or
evidence no rule fits, gives [].

Heuristics (histories are oldest first; NaN/Inf entries are ignored):
- learning_rate_too_high: the largest gradient norm of the last 3 steps over the median before them (×10 or more
  is strong, ×3 weak); a loss spike (the last 3 steps' peak 6 robust deviations and 1.5× above the earlier
  median); an update/weight ratio of 1e-2 or more (≈1e-3 is usual), decisive at 1 (an update as large as the
  weights) unless the gradient itself is over 10× the weights (then the gradient, not the step size, exploded).
- zero_learning_rate: the learning rate the guard read was 0 in every group; gradients_zeroed: every gradient
  exactly 0 while the loss is not, with no dead layer to explain it.
- unstable_loss: the producer is '<loss>', or a module that turned finite inputs into NaN/Inf, forward or
  backward, and is not a known-stable torch.nn layer (Linear, Conv, RNN/LSTM/GRU, norms, activations: those
  overflow, they hold no log or division); stronger when its name says log/exp/sqrt/div/pow… or its inputs reach
  0 (log, sqrt, division) or exceed ~88 (exp overflows in float32, ~11 in float16); weaker when the inputs are
  near the dtype's maximum (an overflow, not an unstable formula).
- corrupt_input_sample: the named samples' inputs hold NaN/Inf (0.95), or only a few (≤ 10) samples reproduce;
  dataset indices are named when the loader was tracked.
- low_precision_overflow: float16/bfloat16 params or autocast, and a value within 4× of the dtype's maximum
  (65504 for float16) in the faulting module, or Inf (not NaN) out of it in that dtype from finite inputs
  (strong without a GradScaler); float16 without GradScaler alone is weak.
- bad_initialisation: the failure is at step ≤ 2 and the inputs are not to blame; strong when the gradient is
  already over 10× the weights' norm.
- missing_zero_grad: gradient norms fit a straight line in the step (R² ≥ 0.9 — 0.6 for the guard's own
  missing_zero_grad finding —, no better as an exponential, rising ≥ 10% of their mean over the window); for
  other findings only together with a flat loss (first and last thirds within 25%).
- params_not_in_optimizer: `not_in_optimizer` is non-empty; for frozen parameters, by their overlap with it.
- dead_activations: a layer none of whose units fire, named with the module that feeds it and its parameter
  (the bias that keeps every pre-activation below 0); it explains a plateau, a collapse or zero updates first.
- label_misalignment: only when no layer is dead, updates are not zero and every parameter is optimized; the
  loss at the constant-prediction level the guard estimated from the targets (label entropy, variance), or
  prediction std ≤ 0.2 × target std, more so when the loss is flat at the predict-the-mean baseline.
"""

from __future__ import annotations

from collections.abc import Callable

from mlguard_orchestration.report import Cause
from mlguard_orchestration.training.causes._common import NON_FINITE
from mlguard_orchestration.training.causes.dynamics import (
    gradients_zeroed,
    learning_rate_too_high,
    missing_zero_grad,
    zero_learning_rate,
)
from mlguard_orchestration.training.causes.faults import (
    bad_initialisation,
    corrupt_input_sample,
    low_precision_overflow,
    unstable_operation,
)
from mlguard_orchestration.training.causes.structure import (
    dead_activations,
    label_misalignment,
    params_not_in_optimizer,
)
from mlguard_orchestration.training.evidence import TrainingEvidence

Rule = Callable[[TrainingEvidence, str], Cause | None]
_FAULT_RULES: list[Rule] = [corrupt_input_sample, unstable_operation, low_precision_overflow,
                            learning_rate_too_high, bad_initialisation, missing_zero_grad]
_NOTHING_LEARNT: list[Rule] = [dead_activations, params_not_in_optimizer, zero_learning_rate, gradients_zeroed,
                               label_misalignment]
RULES: dict[str, list[Rule]] = {
    **{code: _FAULT_RULES for code in NON_FINITE},
    "training.exploding_gradients": [learning_rate_too_high, missing_zero_grad, bad_initialisation,
                                     corrupt_input_sample],
    "training.loss_spike": [learning_rate_too_high, corrupt_input_sample],
    "training.divergence": [learning_rate_too_high, missing_zero_grad],
    "training.update_ratio": [learning_rate_too_high, bad_initialisation, zero_learning_rate],
    "training.zero_updates": [zero_learning_rate, gradients_zeroed, dead_activations],
    "training.loss_plateau": _NOTHING_LEARNT,
    "training.prediction_collapse": [*_NOTHING_LEARNT, learning_rate_too_high],
    "training.prediction_explosion": [learning_rate_too_high, bad_initialisation],
    "training.frozen_parameters": [params_not_in_optimizer, dead_activations, zero_learning_rate],
    "training.parameters_not_in_optimizer": [params_not_in_optimizer],
    "training.missing_zero_grad": [missing_zero_grad],
    "training.vanishing_gradients": [dead_activations, bad_initialisation],
    "training.saturated_activations": [bad_initialisation],
    "training.dead_units": [dead_activations, learning_rate_too_high, bad_initialisation],
}


def rank_causes(code: str, evidence: TrainingEvidence) -> list[Cause]:
    """Likely causes of finding `code` given `evidence`, most likely first; [] when no rule fits."""
    causes = [c for rule in RULES.get(code, []) if (c := rule(evidence, code)) is not None]
    best: dict[str, Cause] = {}
    for c in causes:
        if c.code not in best or c.confidence > best[c.code].confidence:
            best[c.code] = c
    return sorted(best.values(), key=lambda c: -c.confidence)


__all__ = ["RULES", "rank_causes"]
