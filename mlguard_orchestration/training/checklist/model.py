"""Preflight items about the model on one real batch: it builds, its output fits the target and the loss, the
initial loss is plausible, and one backward reaches every trainable parameter."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import Tensor, nn

from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.training.checklist._common import (
    Batch,
    Mode,
    Record,
    Setup,
    Task,
    describe,
    device_of,
    dtype,
    exc_text,
    loss_kind,
    names,
    plural,
    shape,
    where,
)

INIT_WARN_RATIO, INIT_FAIL_RATIO = 1.5, 3.0  # classification: initial loss / log K
INIT_WARN_EXCESS, INIT_FAIL_EXCESS = 0.3, 1.0  # ... and at least this much above log K (nats)
REGRESSION_WARN_RATIO, REGRESSION_FAIL_RATIO = 10.0, 100.0  # initial loss / loss of predicting the mean


def model_build(s: Setup, r: Record) -> dict[str, Any]:
    """build_model() returns an nn.Module instead of raising."""
    t0 = time.perf_counter()
    try:
        model = s.fresh_model()
    except Exception as exc:  # noqa: BLE001 - a model that cannot be built is the finding
        ev = where(exc)
        at = f" at {ev['raised_at']}" if "raised_at" in ev else ""
        r.add("model_build", f"build_model() raised {exc_text(exc)}{at}. Expected it to return an nn.Module; fix the "
              "model definition or its configuration there.", evidence=ev)
        return {}
    n = sum(p.numel() for p in model.parameters())
    r.note(f"model: {type(model).__name__}, {n} parameters, built in {(time.perf_counter() - t0) * 1000:.0f} ms")
    return {"model": model}


def output_shape(s: Setup, r: Record, *, model: nn.Module, batch: Batch) -> dict[str, Any]:
    """The output matches the target (the [N,1]-vs-[N] broadcast in MSE, a class-count mismatch) and loss_fn
    returns a finite scalar. Returns the batch on the model's device, the output, the loss and the target mode."""
    device = device_of(model)
    b = Batch(batch.x.to(device), batch.y.to(device))
    task = s.infer_task(b.y)
    model.train()
    try:
        out = model(b.x)
    except Exception as exc:  # noqa: BLE001 - a forward that raises is the finding
        r.add("output_shape", f"The model's forward pass on a real batch raised {exc_text(exc)}. Inputs were "
              f"{shape(b.x)} {dtype(b.x)}. Expected an output tensor; check the input size/dtype the first layer "
              "expects.", evidence={"inputs": describe(b.x), **where(exc)})
        return {}
    if not isinstance(out, Tensor):
        r.add("output_shape", f"The model returned {type(out).__name__}, not a tensor. Expected one output tensor to "
              "pass to loss_fn; wrap the model so forward returns the prediction tensor.")
        return {}
    ev = {"output": describe(out), "target": describe(b.y), "task": task}
    mode, problem = _shape_problem(s, out, b.y, task)
    if problem is not None:
        r.add("output_shape", problem, evidence=ev, value=shape(out), threshold=shape(b.y))
        return {}
    try:
        loss = s.loss_fn(out, b.y)
    except Exception as exc:  # noqa: BLE001 - a loss that raises is the finding
        r.add("output_shape", f"loss_fn(output {shape(out)} {dtype(out)}, target {shape(b.y)} {dtype(b.y)}) raised "
              f"{exc_text(exc)}. Expected a scalar loss; make the output and target shapes/dtypes match what the "
              "loss expects.", evidence={**ev, **where(exc)})
        return {}
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        got = shape(loss) if isinstance(loss, Tensor) else type(loss).__name__
        r.add("output_shape", f"loss_fn returned {got}, not a scalar. Expected one number to call .backward() on; "
              "use reduction='mean' or reduce the loss yourself.", evidence=ev)
        return {}
    return {"on_device": b, "output": out, "loss": loss.reshape(()), "mode": mode,
            "differentiable": loss.requires_grad}


def _shape_problem(s: Setup, out: Tensor, y: Tensor, task: Task) -> tuple[Mode, str | None]:
    o, t = tuple(out.shape), tuple(y.shape)
    if task == "classification" and not y.is_floating_point():
        return "index", _class_shape_problem(s, o, t, y)
    mode: Mode = "elementwise" if task == "classification" else "regression"
    if o == t:
        return mode, None
    if o == t + (1,) or t == o + (1,):
        try:
            broadcast = list(torch.broadcast_shapes(o, t))
        except RuntimeError:
            broadcast = None
        loss_name = type(s.loss_fn).__name__ if isinstance(s.loss_fn, nn.Module) else "The loss"
        silent = (f" {loss_name} would broadcast them to {broadcast} and compare every prediction with every target, "
                  "silently giving a wrong loss." if broadcast is not None and broadcast not in (list(o), list(t))
                  and loss_kind(s.loss_fn) != "bce" else "")
        fix = "squeeze the output (out.squeeze(-1))" if len(o) > len(t) else "unsqueeze the target (y[:, None])"
        return mode, (f"The model's output is {list(o)} but the target is {list(t)}: the shapes differ by a trailing "
                      f"dimension of 1.{silent} Expected identical shapes; {fix}.")
    return mode, (f"The model's output is {list(o)} but the target is {list(t)}: expected the same shape for an "
                  "element-wise loss. Make the last layer's out_features match the target's width.")


def _class_shape_problem(s: Setup, o: tuple[int, ...], t: tuple[int, ...], y: Tensor) -> str | None:
    if len(o) != len(t) + 1 or o[:1] != t[:1] or o[2:] != t[1:]:
        hint = " The model outputs one value per sample: class indices need one logit per class." if o == t else ""
        return (f"The model's output is {list(o)} but the targets are class indices {list(t)}: expected an output "
                f"[N, K{', …' if len(t) > 1 else ''}] of K logits per sample.{hint} Make the last layer output K "
                "values (and do not squeeze the class dimension away).")
    k = o[1]
    if s.num_classes is not None and k != s.num_classes:
        effect = ("an extra logit is never a correct label and skews the probabilities" if k > s.num_classes
                  else "some classes can never be predicted")
        return (f"The model has {k} outputs per sample but there are {s.num_classes} classes: expected "
                f"{s.num_classes} logits ({effect}). Set the last layer's out_features to {s.num_classes}.")
    if k == 1:
        return ("The model has 1 output per sample but the targets are class indices: cross-entropy over a single "
                "class is always 0. Expected K ≥ 2 logits, or use BCEWithLogitsLoss with float targets of the "
                "output's shape for a binary task.")
    labels = y[y != -100]
    if labels.numel() and int(labels.max()) >= k:
        return (f"A class label is {int(labels.max())} but the model has only {k} outputs: expected labels "
                f"0..{k - 1}. Make the last layer output one logit per class, or fix the label encoding.")
    return None


def initial_loss(s: Setup, r: Record, *, on_device: Batch, output: Tensor, loss: Tensor,
                 mode: Mode) -> dict[str, Any]:
    """Plausible at initialisation: ≈ log K for K classes, the same order as predicting the target mean."""
    value = float(loss.detach())
    if not math.isfinite(value):
        r.add("initial_loss", f"The loss at initialisation is {value} on finite inputs. Expected a finite number; "
              "the initial weights or the loss itself overflow — check the initialisation and use a numerically "
              "stable loss (e.g. CrossEntropyLoss on logits, not log of softmax).", value=str(value),
              causes=[cause("cause.bad_initialisation", "the loss is already non-finite at step 0", 0.6),
                      cause("cause.unstable_loss", "a log/exp in the loss overflowed", 0.4)])
        return {"initial_loss": value}
    out, y = output.detach(), on_device.y
    if mode == "regression":
        _regression_initial(s, r, value, out, y)
    else:
        _classification_initial(s, r, value, out, mode)
    return {"initial_loss": value}


def _regression_initial(s: Setup, r: Record, loss: float, out: Tensor, y: Tensor) -> None:
    baseline = float(s.loss_fn(torch.full_like(out, float(y.float().mean())).to(out.dtype), y))
    r.note(f"initial loss {loss:.4g}; predicting the target mean gives {baseline:.4g}")
    if not (baseline > 0 and math.isfinite(baseline)):
        return
    ratio = loss / baseline
    if ratio <= REGRESSION_WARN_RATIO:
        return
    fail = ratio > REGRESSION_FAIL_RATIO
    r.add("initial_loss", f"The loss at initialisation is {loss:.4g}, {ratio:.0f}× the loss of predicting the target "
          f"mean ({baseline:.4g}). Expected the same order of magnitude (below {REGRESSION_WARN_RATIO:g}×): the "
          "outputs start far from the targets' scale. Standardise the targets, or initialise the last layer's bias "
          "to the target mean and keep its weights small.", severity="fail" if fail else "warn",
          value=round(ratio, 3), threshold=REGRESSION_FAIL_RATIO if fail else REGRESSION_WARN_RATIO,
          evidence={"initial_loss": loss, "mean_predictor_loss": baseline, "output": describe(out),
                    "target": describe(y)},
          causes=[cause("cause.bad_initialisation", f"initial loss is {ratio:.0f}× the mean predictor's",
                        0.7 if fail else 0.5)])


def _classification_initial(s: Setup, r: Record, loss: float, out: Tensor, mode: Mode) -> None:
    k = out.shape[1] if (mode == "index" or loss_kind(s.loss_fn) != "bce") and out.ndim > 1 else 2
    expected = math.log(k)
    r.note(f"initial loss {loss:.4g}; log K = {expected:.4g} for K={k}")
    logits = describe(out)
    ev = {"initial_loss": loss, "expected": expected, "classes": k, "logits": logits}
    ratio = loss / expected if expected else math.inf
    if ratio > INIT_WARN_RATIO and loss - expected > INIT_WARN_EXCESS:
        fail = ratio > INIT_FAIL_RATIO and loss - expected > INIT_FAIL_EXCESS
        r.add("initial_loss", f"The loss at initialisation is {loss:.4g}, {ratio:.1f}× log K = {expected:.4g} "
              f"(K={k}), the loss of a uniform guess. Expected within {INIT_WARN_RATIO:g}× of log K: the initial "
              f"logits are too large (largest |logit| {logits['abs_max']:.3g}), so the model starts "
              "confidently wrong. Use the layers' default (or Xavier/Kaiming) initialisation, scale the last layer "
              "down, and standardise the inputs.", severity="fail" if fail else "warn", value=round(loss, 4),
              threshold=round(expected * (INIT_FAIL_RATIO if fail else INIT_WARN_RATIO), 4), evidence=ev,
              causes=[cause("cause.bad_initialisation", f"initial loss {loss:.3g} vs log K {expected:.3g}",
                            0.8 if fail else 0.5, {"abs_max_logit": logits["abs_max"]})])
    elif loss < expected / INIT_WARN_RATIO and expected - loss > INIT_WARN_EXCESS:
        r.add("initial_loss", f"The loss at initialisation is {loss:.4g}, well below log K = {expected:.4g} (K={k}). "
              "An untrained model should not beat a uniform guess: expected about log K. Check that the weights are "
              "not pre-trained by accident and that no input feature contains the label.", severity="warn",
              value=round(loss, 4), evidence=ev)


def gradient_flow(s: Setup, r: Record, *, model: nn.Module, on_device: Batch, loss: Tensor) -> dict[str, Any]:
    """One backward reaches every trainable parameter, with a finite, non-zero gradient."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        r.add("gradient_flow", "The model has no trainable parameter (none has requires_grad=True). Expected at "
              "least one; do not freeze the whole model.")
        return {}
    if not loss.requires_grad:
        r.add("gradient_flow", f"The loss does not depend on any of the {len(trainable)} trainable parameters (it has "
              "no grad_fn). Expected a differentiable loss: the output is detached somewhere in forward (.detach(), "
              ".item(), .numpy(), torch.no_grad(), or a new tensor built from values). Keep the computation in torch "
              "from the parameters to the output.", evidence={"trainable": len(trainable)})
        return {}
    model.zero_grad(set_to_none=True)
    loss.backward()
    none = [n for n, p in trainable if p.grad is None]
    bad = [n for n, p in trainable if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    if not math.isfinite(float(loss.detach())):
        bad = []  # a non-finite loss makes every gradient non-finite: preflight.initial_loss reports it
    zero = [n for n, p in trainable if p.grad is not None and n not in bad and not bool(p.grad.any())]
    if zero:
        zero = _zero_on_halves(s, model, on_device, zero)
    ev = {"trainable": len(trainable), "no_grad": none[:50], "non_finite": bad[:50], "zero": zero[:50]}
    parts: list[str] = []
    causes: list[Cause] = []
    if none:
        parts.append(f"{len(none)} of {plural(len(trainable), 'trainable parameter')} got no gradient ({names(none)}): "
                     "they are not used in forward, or used only through a detached path. Use them, delete them, or "
                     "set requires_grad=False if they are frozen on purpose")
    if bad:
        parts.append(f"{plural(len(bad), 'parameter')} got NaN/Inf gradients ({names(bad)}) from a finite loss: clamp "
                     "the unstable operation or fix the initialisation")
        causes += [cause("cause.unstable_loss", "non-finite gradients at step 0", 0.5),
                   cause("cause.bad_initialisation", "non-finite gradients at step 0", 0.4)]
    if zero:
        parts.append(f"{plural(len(zero), 'parameter')} got an all-zero gradient ({names(zero)}): dead units, a "
                     "multiplication by zero, or a path cut off by a constant; check they can learn")
    if parts:
        r.add("gradient_flow", "One backward pass on a real batch: " + "; ".join(parts) + ". Expected a finite, "
              "non-zero gradient on every trainable parameter.", severity="fail" if none or bad else "warn",
              value=len(none) + len(bad) + len(zero), threshold=0, evidence=ev, causes=causes)
    return {}


def _zero_on_halves(s: Setup, model: nn.Module, batch: Batch, zero: list[str]) -> list[str]:
    """Of `zero`, those whose gradient is also zero on two odd-sized halves of the batch: a gradient that cancels
    out exactly over one batch (an L1 loss' bias on balanced signs, a symmetric batch) is not a dead parameter."""
    x, y = batch.x, batch.y
    n = x.shape[0]
    if n < 4:
        return zero
    m = n // 2 | 1
    params = dict(model.named_parameters())
    for half in (slice(0, m), slice(n - m, n)):
        model.zero_grad(set_to_none=True)
        try:
            s.loss_fn(model(x[half]), y[half]).backward()
        except Exception:  # noqa: BLE001 - best effort: keep what the full batch showed
            return zero
        zero = [name for name in zero if (g := params[name].grad) is None or not bool(g.any())]
    return zero
