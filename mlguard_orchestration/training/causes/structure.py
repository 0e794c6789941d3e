"""Causes that explain a model learning nothing: parameters no optimizer holds, a layer that passes no signal,
labels that carry no information about the inputs — offered in that order of precedence, because each of the
first two also makes the loss sit at the constant-prediction level, and then says nothing about the labels."""

from __future__ import annotations

from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.training.causes._common import finite, flat, fmt_names
from mlguard_orchestration.training.evidence import TrainingEvidence


def params_not_in_optimizer(ev: TrainingEvidence, code: str) -> Cause | None:
    missing = ev.not_in_optimizer
    if not missing:
        return None
    data: dict[str, object] = {"not_in_optimizer": missing[:20], "count": len(missing)}
    summary = f"{len(missing)} trainable parameter{'s' if len(missing) != 1 else ''} in no optimizer group: " \
              f"{fmt_names(missing)}"
    if code == "training.parameters_not_in_optimizer":
        confidence = 0.9
    elif code == "training.frozen_parameters" and ev.frozen_parameters:
        overlap = [p for p in ev.frozen_parameters if p in set(missing)]
        if not overlap:
            return None
        confidence = 0.5 + 0.45 * len(overlap) / len(ev.frozen_parameters)
        summary += f"; {len(overlap)} of the {len(ev.frozen_parameters)} frozen parameters are among them"
        data["frozen_overlap"] = len(overlap)
    elif code == "training.frozen_parameters":
        confidence = 0.7
    else:  # a plateau: missing parameters are one reason nothing is learnt
        confidence = 0.5
    return cause("cause.params_not_in_optimizer", summary, confidence, data)


def dead_activations(ev: TrainingEvidence, code: str) -> Cause | None:
    """A layer none of whose units fire: nothing passes forward, no gradient passes back through it."""
    if not ev.dead_layers:
        return None
    d = ev.dead_layers[0]
    summary = f"no unit of activation {d.layer!r} fires on any sample"
    if d.producer:
        summary += f": the output of {d.producer!r} that feeds it is ≤ 0 everywhere"
    if d.parameter:
        facts = d.facts
        detail = (f" (bias of the dead units: mean {facts['bias_mean']:.3g}, max {facts['bias_max']:.3g})"
                  if "bias_mean" in facts and d.parameter.endswith(".bias") else "")
        summary += f", held there by {d.parameter!r}{detail}"
    summary += "; no gradient flows back through it, so the layers before it stop learning"
    others = [x.layer for x in ev.dead_layers[1:]]
    if others:
        summary += f" (also dead: {fmt_names(others)})"
    return cause("cause.dead_activations", summary, 0.9 if code != "training.vanishing_gradients" else 0.6,
                 {"layer": d.layer, "producer": d.producer, "parameter": d.parameter, **d.facts})


def label_misalignment(ev: TrainingEvidence, code: str) -> Cause | None:
    """The loss stays at the constant-prediction level although the model can learn (gradients flow, updates are
    not zero, no layer is dead): the inputs carry no information about these labels."""
    if ev.dead_layers or ev.zero_updates or ev.not_in_optimizer:
        return None
    losses = finite(ev.loss_history)
    level = ev.constant_level
    if level and losses:
        recent = sorted(losses[-20:])[len(losses[-20:]) // 2]
        if recent >= 0.97 * level:
            source = f", the {ev.constant_level_from} of the targets" if ev.constant_level_from else ""
            return cause("cause.label_misalignment", f"the loss {recent:.4g} stays at the level of a constant "
                         f"prediction ({level:.4g}{source}) while gradients flow and weights move: the inputs carry "
                         "no information about these labels, as when labels are shuffled or joined to the wrong "
                         "rows", 0.85, {"recent_loss": recent, "constant_level": level})
    pred, target = ev.prediction_std, ev.target_std
    if pred is None or target is None or target <= 0:
        return None
    ratio = pred / target
    if ratio > 0.2:
        return None
    is_flat = flat(losses)
    baseline = target * target
    near = bool(losses) and abs(losses[-1] - baseline) <= 0.25 * baseline
    if code == "training.loss_plateau" and not (near or (is_flat and is_flat[0])):
        return None
    confidence = 0.45 + (0.15 if ratio <= 0.05 else 0.0) + (0.2 if near else 0.0) + \
        (0.1 if is_flat and is_flat[0] else 0.0)
    summary = f"predictions vary {ratio:.1%} as much as the targets (std {pred:.3g} vs {target:.3g})"
    if near:
        summary += f" and the loss {losses[-1]:.3g} equals the predict-the-mean baseline {baseline:.3g}"
    elif is_flat and is_flat[0]:
        summary += f" and the loss is flat at {is_flat[2]:.3g}"
    return cause("cause.label_misalignment", summary + ": the model learnt only the mean, as if labels did not "
                 "match inputs", min(confidence, 0.9),
                 {"prediction_std": pred, "target_std": target, "baseline_loss": baseline,
                  "last_loss": losses[-1] if losses else None})
