"""TrainingGuard: every rule fires on a model built to show it and stays quiet on healthy training.

Healthy runs (regression and classification, with one hard batch) must end with status pass: a false alarm is
a bug. Faults are planted through `train(..., mutate=...)` from the shared tiny models in `_models.py`.

Size: a little over 400 lines, one short test per rule and its quiet side; the decisive rules of issue 12 are in
test_guard_rules.py, the corpus in test_corpus.py."""

from __future__ import annotations

import copy
import math
import pickle
import subprocess
import sys

import pytest
import torch
from torch import nn

from mlguard_orchestration.training import GuardConfig, TrainingGuard, TrainingStopped
from tests.training._models import (
    GradAmplifier,
    blobs,
    compute_loss_for,
    cross_entropy,
    loader,
    mlp,
    mse,
    regression_data,
    train,
)

LATE = [pytest.param(False, id="at-once"), pytest.param(True, id="one-step-late")]



def guarded(model: nn.Module, opt: torch.optim.Optimizer, batches, loss_fn=mse, *, late: bool | None = None,
            mutate=None, zero_grad: bool = True, set_to_none: bool = True, **cfg):
    """Train under a guard; returns (guard, report, TrainingStopped or None)."""
    config = GuardConfig(evaluate_late=late, **cfg)
    guard = TrainingGuard(model, opt, config=config, compute_loss=compute_loss_for(loss_fn))
    try:
        with guard:
            train(guard, model, opt, batches, loss_fn, mutate=mutate, zero_grad=zero_grad, set_to_none=set_to_none)
    except TrainingStopped as stop:
        return guard, stop.report, stop
    return guard, guard.report(), None


def codes(report) -> set[str]:
    return {f.code for f in report.findings}


def at(step: int, change):
    return lambda s, b: change(b) if s == step else b


# -- healthy training: nothing, ever -------------------------------------------------------------------------

@pytest.mark.parametrize("late", LATE)
@pytest.mark.parametrize("make_opt", [lambda p: torch.optim.Adam(p, 1e-2), lambda p: torch.optim.AdamW(p, 3e-3, fused=True),
                                      lambda p: torch.optim.SGD(p, 1e-2)], ids=["adam", "adamw-fused", "sgd"])
def test_healthy_regression_passes(late: bool, make_opt) -> None:
    model = mlp(8, 1)
    guard, report, stop = guarded(model, make_opt(model.parameters()), loader(regression_data(), 400), late=late)
    assert stop is None and report.status == "pass", report.findings
    assert guard.step_count == 400 and guard.last_good_step == 400


@pytest.mark.parametrize("make_opt", [lambda p: torch.optim.Adam(p, 1e-2), lambda p: torch.optim.AdamW(p, 3e-3, fused=True)],
                         ids=["adam", "adamw-fused"])
def test_regression_tolerates_one_hard_batch(make_opt) -> None:
    """Inputs ×10 for one step: a loss ×1000, gradients ×2000 and tens of unsettled steps after — tolerated."""
    model = mlp(8, 1)
    _, report, stop = guarded(model, make_opt(model.parameters()), loader(regression_data(), 400), late=True,
                              mutate=at(200, lambda b: (b[0] * 10, b[1])))
    assert stop is None and report.status == "pass", report.findings


@pytest.mark.parametrize("make_opt", [lambda p: torch.optim.SGD(p, 0.1, momentum=0.9), lambda p: torch.optim.Adam(p, 1e-2)],
                         ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("separation", [3.0, 1.0])
def test_classifier_tolerates_flipped_labels_once(make_opt, separation: float) -> None:
    model = mlp(4, 2)
    guard, report, stop = guarded(model, make_opt(model.parameters()), loader(blobs(separation=separation), 300),
                                  cross_entropy, mutate=at(200, lambda b: (b[0], 1 - b[1])))
    assert stop is None and report.status == "pass", report.findings
    for epoch in range(6):  # validation improving then flat: no overfitting
        guard.validation(0.5 / (epoch + 1), 0.6 / (epoch + 1) + 0.01)
    assert guard.report().status == "pass"


def test_binary_classifier_with_sigmoid_output_is_not_saturated() -> None:
    """A confident sigmoid output layer sits at 0/1 by design: the model's own output is exempt."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1), nn.Sigmoid())
    x, y = blobs(separation=4.0)
    data = (x, y.float()[:, None])
    _, report, stop = guarded(model, torch.optim.Adam(model.parameters(), 3e-2), loader(data, 300),
                              nn.functional.binary_cross_entropy)
    assert stop is None and report.status == "pass", report.findings


def test_zero_grad_without_set_to_none_is_not_missing_zero_grad() -> None:
    model = mlp(8, 1)
    _, report, stop = guarded(model, torch.optim.Adam(model.parameters(), 1e-2), loader(regression_data(), 300),
                              set_to_none=False)
    assert stop is None and report.status == "pass", report.findings


# -- non-finite: stop at the bad step, weights still the pre-fault ones ------------------------------------------

OPTIMIZERS = [
    pytest.param(lambda p: torch.optim.SGD(p, 1e-2), id="sgd"),
    pytest.param(lambda p: torch.optim.SGD(p, 1e-2, momentum=0.9), id="sgd-momentum"),
    pytest.param(lambda p: torch.optim.SGD(p, 1e-2, momentum=0.9, fused=True), id="sgd-fused"),
    pytest.param(lambda p: torch.optim.AdamW(p, 1e-2, fused=True), id="adamw-fused"),
    pytest.param(lambda p: torch.optim.AdamW(p, 1e-2), id="adamw"),
]


@pytest.mark.parametrize("late", LATE)
@pytest.mark.parametrize("make_opt", OPTIMIZERS)
def test_nan_input_stops_with_pre_fault_weights(late: bool, make_opt) -> None:
    model = mlp(8, 1)
    opt = make_opt(model.parameters())
    snapshot: dict[str, dict] = {}

    def poison(step, batch):
        if step == 30:
            snapshot["model"] = copy.deepcopy(model.state_dict())
            snapshot["opt"] = copy.deepcopy(opt.state_dict())
            x = batch[0].clone()
            x[3, 2] = float("nan")
            return x, batch[1]
        return batch

    guard, report, stop = guarded(model, opt, loader(regression_data(), 60), late=late, mutate=poison)
    assert stop is not None and report.status == "fail"
    top = report.findings[0]
    assert top.code == "training.non_finite_loss" and top.evidence["step"] == 30
    assert guard.last_good_step == 29 and guard.step_count == 30  # late: raised by the 31st call, before its update
    for name, value in model.state_dict().items():
        assert torch.isfinite(value).all() and torch.equal(value, snapshot["model"][name]), name
    if getattr(opt, "defaults", {}).get("fused"):  # the fused kernel skipped the optimizer state too
        for pid, state in opt.state_dict()["state"].items():
            for key, value in state.items():
                assert torch.equal(value, snapshot["opt"]["state"][pid][key]), key
    assert top.evidence["samples"] == [3]  # the locator replayed the batch with the pre-fault weights
    assert top.causes and pickle.loads(pickle.dumps(stop)).report == report


def test_nan_gradient_with_finite_loss() -> None:
    torch.manual_seed(0)
    amp = GradAmplifier()
    model = nn.Sequential(nn.Linear(8, 16), amp, nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), 1e-2)

    def blow(step, batch):
        amp.factor = float("inf") if step == 20 else 1.0
        return batch

    _, report, stop = guarded(model, opt, loader(regression_data(), 40), mutate=blow, locate=False)
    assert stop is not None and report.findings[0].code == "training.non_finite_gradients"
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_stopped_guard_refuses_further_steps() -> None:
    model = mlp(8, 1)
    opt = torch.optim.SGD(model.parameters(), 1e-2)
    guard = TrainingGuard(model, opt)
    loss = mse(model(torch.full((4, 8), float("nan"))), torch.zeros(4, 1))
    loss.backward()
    with pytest.raises(TrainingStopped):
        guard.step(loss)
    with pytest.raises(TrainingStopped):
        guard.step(loss)


def test_non_finite_weights_are_found_by_the_probe() -> None:
    """A parameter outside the forward pass goes NaN (a corrupt load): the loss stays finite, the probe sees it."""
    torch.manual_seed(0)
    model = nn.ModuleDict({"body": mlp(8, 1), "spare": nn.Linear(2, 2)})
    forward = model["body"]

    def corrupt(step, batch):
        if step == 30:
            with torch.no_grad():
                model["spare"].weight[0, 0] = float("nan")
        return batch

    guard = TrainingGuard(model, torch.optim.SGD(model.parameters(), 1e-2))
    with pytest.raises(TrainingStopped) as stop, guard:
        train(guard, forward, guard.optimizer, loader(regression_data(), 80), mse, mutate=corrupt)
    top = stop.value.report.findings[0]
    assert top.code == "training.non_finite_weights" and top.evidence["parameters"] == ["spare.weight"]
    assert top.evidence["step"] == 50  # the next sampled step


# -- loss rules ----------------------------------------------------------------------------------------------

def test_repeated_loss_spikes_fail() -> None:
    model = mlp(8, 1)
    def corrupt(step, b):  # targets ×10 every 12th batch: each one a spike the model recovers from
        return (b[0], b[1] * 10) if step > 150 and step % 12 == 0 else b

    _, report, stop = guarded(model, torch.optim.Adam(model.parameters(), 1e-3), loader(regression_data(), 300),
                              mutate=corrupt)
    assert stop is not None and report.findings[0].code == "training.loss_spike", report.findings
    assert report.findings[0].value == 3


def test_one_extreme_loss_spike_fails() -> None:
    model = mlp(8, 1)
    _, report, stop = guarded(model, torch.optim.Adam(model.parameters(), 1e-3), loader(regression_data(), 300),
                              mutate=at(150, lambda b: (b[0], b[1] * 1e4)))
    assert stop is not None and report.findings[0].code == "training.loss_spike"
    assert report.findings[0].evidence["step"] == 150


def test_divergence_fails() -> None:
    """Label noise growing 4% a step from step 150: the loss climbs steadily, no single step stands out."""
    x, y = regression_data()
    model = mlp(8, 1)
    def noisy(step, b):
        return b[0], b[1] + 0.1 * 1.04 ** max(0, step - 150) * torch.randn_like(b[1])

    _, report, stop = guarded(model, torch.optim.Adam(model.parameters(), 1e-2), loader((x, y), 500), mutate=noisy)
    assert stop is not None and report.findings[0].code == "training.divergence", report.findings


def test_plateau_warns_when_the_loss_does_not_improve() -> None:
    """A loss that stops improving far below the constant-prediction level (here: a linear model started at the
    true weights, so only the noise is left) is a slow trend, not a fault: the plateau rule warns after
    plateau_steps and nothing fails. (A loss flat AT the constant level fails: test_guard_rules.py.)"""
    x, y = regression_data(n=512)
    w = torch.linalg.lstsq(x, y).solution
    model = nn.Linear(8, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(w.T)
    _, report, stop = guarded(model, torch.optim.SGD(model.parameters(), 1e-3), [(x, y)] * 320)
    assert stop is None and "training.loss_plateau" in codes(report) and report.status == "warn", report.findings
    assert all(f.severity == "warn" for f in report.findings)


def test_overfitting_warns_from_validation() -> None:
    model = mlp(8, 1)
    guard = TrainingGuard(model, torch.optim.SGD(model.parameters(), 1e-2))
    for epoch, val in enumerate([0.9, 0.7, 0.6, 0.62, 0.66, 0.71]):
        guard.validation(0.8 / (epoch + 1), val)
    assert codes(guard.report()) == {"training.overfitting"} and guard.report().status == "warn"
    acc = TrainingGuard(model, torch.optim.SGD(model.parameters(), 1e-2))
    for epoch, val in enumerate([0.7, 0.8, 0.85, 0.84, 0.82, 0.79]):
        acc.validation(0.7 + 0.05 * epoch, val, higher_is_better=True)
    assert "training.overfitting" in codes(acc.report())


# -- gradient rules ------------------------------------------------------------------------------------------

def amplified(every: int | None, factor: float, steps: int = 200):
    torch.manual_seed(0)
    amp = GradAmplifier()
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), amp, nn.ReLU(), nn.Linear(32, 1))

    def pulse(step, batch):
        amp.factor = factor if step > 100 and (step == 101 if every is None else step % every == 0) else 1.0
        return batch

    return guarded(model, torch.optim.Adam(model.parameters(), 1e-3), loader(regression_data(), steps),
                   mutate=pulse)


def test_repeated_gradient_bursts_fail() -> None:
    _, report, stop = amplified(every=12, factor=50.0)
    assert stop is not None and report.findings[0].code == "training.exploding_gradients", report.findings
    assert "0.weight" in report.findings[0].evidence["layers"]  # the layers below the amplifier


def test_one_gradient_burst_is_tolerated_one_extreme_is_not() -> None:
    assert amplified(every=None, factor=50.0)[2] is None
    _, report, stop = amplified(every=None, factor=1e7)
    assert stop is not None and report.findings[0].code == "training.exploding_gradients"


def test_vanishing_gradients_warn_in_a_deep_sigmoid_net() -> None:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(10):
        lin = nn.Linear(16, 16)
        nn.init.normal_(lin.weight, std=0.02)
        layers += [lin, nn.Sigmoid()]
    model = nn.Sequential(nn.Linear(8, 16), *layers, nn.Linear(16, 1))
    _, report, stop = guarded(model, torch.optim.Adam(model.parameters(), 1e-3), loader(regression_data(), 120))
    vanishing = next(f for f in report.findings if f.code == "training.vanishing_gradients")
    assert stop is None and "0.weight" in vanishing.evidence["layers"]


def test_missing_zero_grad_fails() -> None:
    model = mlp(8, 1)
    _, report, stop = guarded(model, torch.optim.SGD(model.parameters(), 1e-4), loader(regression_data(), 300),
                              zero_grad=False)
    assert stop is not None and report.findings[0].code == "training.missing_zero_grad", report.findings


# -- sampled probes and construction checks ------------------------------------------------------------------

def test_update_ratio_warns_when_nothing_is_learnt() -> None:
    model = mlp(8, 1)
    _, report, stop = guarded(model, torch.optim.Adam(model.parameters(), 1e-10), loader(regression_data(), 100),
                              sample_every=10)
    assert stop is None and "training.update_ratio" in codes(report)


def test_a_mostly_dead_layer_warns() -> None:
    model = mlp(8, 1)
    with torch.no_grad():
        model[0].bias[:30] = -50.0  # 30 of the first ReLU's 32 units never fire
    _, report, stop = guarded(model, torch.optim.SGD(model.parameters(), 1e-3), loader(regression_data(), 80))
    dead = next(f for f in report.findings if f.code == "training.dead_units")
    assert stop is None and dead.severity == "warn" and "1" in dead.evidence["layers"]


def test_a_fully_dead_layer_stops_training() -> None:
    model = mlp(8, 1)
    nn.init.constant_(model[0].bias, -50.0)  # the first ReLU never fires: nothing passes that layer
    _, report, stop = guarded(model, torch.optim.SGD(model.parameters(), 1e-3), loader(regression_data(), 80))
    assert stop is not None and report.findings[0].code == "training.dead_units"
    assert report.findings[0].severity == "fail"


def test_saturated_tanh_warns() -> None:
    model = mlp(8, 1, act=nn.Tanh)
    with torch.no_grad():
        model[0].weight.mul_(100)
    _, report, stop = guarded(model, torch.optim.SGD(model.parameters(), 1e-4), loader(regression_data(), 80))
    sat = next(f for f in report.findings if f.code == "training.saturated_activations")
    assert stop is None and "1" in sat.evidence["layers"]


def test_frozen_and_missing_parameters_warn() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = mlp(8, 1)
            self.unused = nn.Linear(3, 3)  # in the optimizer, never in the forward pass
            self.extra = nn.Linear(2, 2)  # used, trainable, but in no optimizer group

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x) + self.extra(torch.ones(2)).sum() * 0

    model = Net()
    params = [p for n, p in model.named_parameters() if not n.startswith("extra")]
    _, report, stop = guarded(model, torch.optim.Adam(params, 1e-2), loader(regression_data(), 110))
    assert stop is None and report.status == "warn"
    found = {f.code: f for f in report.findings}
    assert found["training.parameters_not_in_optimizer"].evidence["parameters"] == ["extra.weight", "extra.bias"]
    assert found["training.frozen_parameters"].evidence["parameters"] == ["unused.weight", "unused.bias"]


def test_prediction_collapse_warns() -> None:
    model = mlp(8, 1)
    nn.init.zeros_(model[4].weight)  # the head ignores its inputs and barely moves: output ≈ bias
    _, report, stop = guarded(model, torch.optim.SGD(model.parameters(), 1e-9), loader(regression_data(), 80))
    assert stop is None and "training.prediction_collapse" in codes(report)


def test_prediction_explosion_fails() -> None:
    model = mlp(8, 1)
    with torch.no_grad():
        model[4].weight.mul_(1e6)
    _, report, stop = guarded(model, torch.optim.SGD(model.parameters(), 1e-12), loader(regression_data(), 80))
    assert stop is not None and report.findings[0].code == "training.prediction_explosion", report.findings


# -- packaging -----------------------------------------------------------------------------------------------

def test_package_import_does_not_import_torch() -> None:
    code = ("import sys, mlguard_orchestration, mlguard_orchestration.training; "
            "from mlguard_orchestration.training import GuardConfig; GuardConfig(); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


class _Log(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)


def test_a_layer_that_turns_finite_inputs_into_nan_is_named() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), _Log(), torch.nn.Linear(3, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.rand(16, 3), torch.rand(16)
    guard = TrainingGuard(model, opt, compute_loss=lambda m, b: ((m(b[0]).squeeze(-1) - b[1]) ** 2).mean())
    with pytest.raises(TrainingStopped) as stopped, guard as g:
            for _ in range(5):
                opt.zero_grad()
                loss = ((model(x).squeeze(-1) - y) ** 2).mean()  # ReLU zeros hit log(0) = -inf
                loss.backward()
                g.step(loss, batch=(x, y))
    top = stopped.value.report.findings[0]
    assert top.code == "training.non_finite_activations"
    assert "'2'" in top.message  # the log layer, not the Linear that merely passed the -inf on


def _classify(shuffle: bool, steps: int = 400) -> TrainingGuard:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2048, 4, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).float()
    if shuffle:
        y = y[torch.randperm(len(y), generator=gen)]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    guard = TrainingGuard(model, opt)  # no baseline given: the guard estimates it from the targets it sees
    with guard:
        for step in range(steps):
            idx = torch.arange(step * 64, step * 64 + 64) % len(y)
            opt.zero_grad()
            logits = model(x[idx]).squeeze(-1)
            loss = loss_fn(logits, y[idx])
            loss.backward()
            guard.step(loss, predictions=logits, targets=y[idx])
    return guard


def test_no_better_than_a_constant_fails_as_label_misalignment() -> None:
    with pytest.raises(TrainingStopped) as stopped:
        _classify(shuffle=True)
    top = stopped.value.report.findings[0]
    assert top.code == "training.loss_plateau" and top.severity == "fail"
    assert top.evidence["step"] == 150 and top.evidence["constant_level_from"] == "binary label entropy"
    assert abs(top.evidence["constant_level"] - math.log(2)) < 0.01
    assert top.causes[0].code == "cause.label_misalignment"


def test_a_model_that_learns_stays_quiet() -> None:
    assert _classify(shuffle=False).report().status == "pass"
