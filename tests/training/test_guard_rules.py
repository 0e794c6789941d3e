"""The decisive rules, each where it must fire and where it must stay quiet (the healthy corpus in test_corpus.py is
the wider quiet side; these are the near misses one rule could mistake for its fault)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mlguard_orchestration.training import GuardConfig, TrainingGuard, TrainingStopped
from mlguard_orchestration.training.causes import rank_causes
from mlguard_orchestration.training.evidence import ModuleFault, TensorStats, TrainingEvidence
from tests.training._models import (
    blobs,
    compute_loss_for,
    cross_entropy,
    loader,
    mlp,
    mse,
    regression_data,
    train,
)


def guarded(model: nn.Module, opt: torch.optim.Optimizer, batches, loss_fn=mse, scheduler=None, **cfg):
    guard = TrainingGuard(model, opt, config=GuardConfig(**cfg), compute_loss=compute_loss_for(loss_fn))
    try:
        with guard:
            for x, y in batches:
                opt.zero_grad()
                out = model(x)
                loss = loss_fn(out, y)
                loss.backward()
                guard.step(loss, batch=(x, y), predictions=out, targets=y)
                if scheduler is not None:
                    scheduler.step()
    except TrainingStopped as stop:
        return guard, stop.report
    return guard, guard.report()


# -- parameters outside the optimizer -------------------------------------------------------------------------


def test_parameters_outside_the_optimizer_fail_at_the_first_gradient_and_can_be_declared() -> None:
    model = mlp(8, 1)
    _, report = guarded(model, torch.optim.Adam(model[4].parameters(), 1e-2), loader(regression_data(), 60))
    top = report.findings[0]
    assert top.code == "training.parameters_not_in_optimizer" and top.severity == "fail"
    assert top.evidence["step"] == 1 and top.evidence["parameters"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert "deliberately_frozen" in top.message
    model = mlp(8, 1)
    _, quiet = guarded(model, torch.optim.Adam(model[4].parameters(), 1e-2), loader(regression_data(), 60),
                       deliberately_frozen=["0.*", "2.*"])
    assert quiet.status == "pass", quiet.findings


# -- updates that reached zero --------------------------------------------------------------------------------


def test_a_warm_up_that_starts_at_zero_is_not_zero_updates() -> None:
    model = mlp(8, 1)
    opt = torch.optim.SGD(model.parameters(), 1e-2, momentum=0.9)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 9))  # lr 0 at the first step
    guard, report = guarded(model, opt, loader(regression_data(), 45), scheduler=warmup)
    assert report.status == "pass", report.findings
    assert list(guard._stall.lrs)[:2] == [0.0, 0.01 / 9]


def test_a_learning_rate_of_zero_fails_after_zero_update_steps() -> None:
    model = mlp(8, 1)
    _, report = guarded(model, torch.optim.SGD(model.parameters(), 0.0), loader(regression_data(), 60))
    top = report.findings[0]
    assert top.code == "training.zero_updates" and top.evidence["step"] == 10
    assert top.causes[0].code == "cause.zero_learning_rate"


# -- an update larger than the weights ------------------------------------------------------------------------


def test_a_zero_initialised_layer_is_not_an_extreme_update() -> None:
    model = nn.Sequential(nn.Linear(8, 1))
    nn.init.zeros_(model[0].weight)  # logistic/linear regression from zero: every first update is "infinite"
    _, report = guarded(model, torch.optim.SGD(model.parameters(), 0.1), loader(regression_data(), 120))
    assert report.status == "pass", report.findings


def test_an_extreme_update_is_undone() -> None:
    model = mlp(8, 1)
    start = [p.detach().clone() for p in model.parameters()]
    guard, report = guarded(model, torch.optim.SGD(model.parameters(), 30.0), loader(regression_data(), 20))
    top = report.findings[0]
    assert top.code == "training.update_ratio" and top.evidence["step"] == 1 and top.evidence["update_ratio"] > 1
    assert all(torch.equal(a, b) for a, b in zip(start, model.parameters(), strict=True))
    assert guard.restored is not None and guard.restored.step == 0
    assert top.causes[0].code == "cause.learning_rate_too_high"


# -- the constant-prediction level ----------------------------------------------------------------------------


def test_random_labels_fail_at_constant_steps_with_the_guard_s_own_level() -> None:
    x, _ = blobs()
    y = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(1))
    model = mlp(4, 2)
    _, report = guarded(model, torch.optim.Adam(model.parameters(), 1e-2), loader((x, y), 300), cross_entropy)
    top = report.findings[0]
    assert top.code == "training.loss_plateau" and top.severity == "fail" and top.evidence["step"] == 150
    assert top.evidence["constant_level_from"] == "label entropy"
    assert abs(top.evidence["constant_level"] - math.log(2)) < 0.01
    assert top.causes[0].code == "cause.label_misalignment"


def test_a_model_held_at_the_prior_fails_at_plateau_steps_not_before() -> None:
    """Predictions that barely vary (a model still at the class prior) get plateau_steps, not constant_steps: a slow
    start may still leave the prior. Random labels never let it: a fail at step 300."""
    x, _ = blobs()
    y = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(1))
    model = mlp(4, 2)
    nn.init.zeros_(model[4].weight)  # starts at the class prior: nothing left to learn from random labels
    nn.init.zeros_(model[4].bias)
    _, report = guarded(model, torch.optim.SGD(model.parameters(), 1e-3), loader((x, y), 320), cross_entropy)
    top = report.findings[0]
    assert top.code == "training.loss_plateau" and top.severity == "fail" and top.evidence["step"] == 300
    assert top.causes[0].code == "cause.label_misalignment"


def test_targets_without_predictions_give_no_level_and_no_verdict() -> None:
    x, _ = blobs()
    y = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(1))
    model = mlp(4, 2)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    guard = TrainingGuard(model, opt)
    with guard:
        train(guard, model, opt, loader((x, y), 100), cross_entropy)  # passes predictions and targets
    assert guard._loss.level is not None and abs(guard._loss.level - math.log(2)) < 0.01
    other = mlp(4, 2)
    bare = TrainingGuard(other, torch.optim.Adam(other.parameters(), 1e-2))
    with bare:
        for xb, yb in loader((x, y), 200):
            bare.optimizer.zero_grad()
            loss = cross_entropy(bare.model(xb), yb)
            loss.backward()
            bare.step(loss)  # no targets: the guard cannot know the constant level, so it does not judge it
    assert bare._loss.level is None and bare.report().status != "fail"


# -- dead layers ----------------------------------------------------------------------------------------------


def test_a_dead_output_unit_is_not_blamed_on_the_labels() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1), nn.ReLU())
    nn.init.constant_(model[2].bias, -30.0)
    x, y = regression_data()
    _, report = guarded(model, torch.optim.Adam(model.parameters(), 1e-3), loader((x, y.abs()), 100))
    top = report.findings[0]
    assert top.code == "training.dead_units" and top.evidence["step"] == 3
    assert top.evidence["layers"] == {"3": 1.0} and top.evidence["producers"] == {"3": "2"}
    assert top.evidence["parameters"] == ["2.bias"]
    assert top.causes[0].code == "cause.dead_activations"
    assert "cause.label_misalignment" not in [c.code for f in report.findings for c in f.causes]


# -- causes need their preconditions --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Linear", "RNN", "LSTM", "Conv2d"])
def test_an_affine_or_recurrent_layer_is_never_an_unstable_operation(kind: str) -> None:
    stats = TensorStats(shape=[8, 4], dtype="float32", min=0.0, max=3e3, abs_max=3e3)
    fault = ModuleFault(name="rnn", type=kind, phase="forward", inputs=[stats],
                        outputs=[TensorStats(shape=[8, 4], dtype="float32", finite=False, inf=4)])
    ev = TrainingEvidence(step=40, module_fault=fault, loss_finite=False)
    assert "cause.unstable_loss" not in [c.code for c in rank_causes("training.non_finite_activations", ev)]
    log = fault.model_copy(update={"type": "LogLayer"})
    assert rank_causes("training.non_finite_activations", ev.model_copy(update={"module_fault": log}))[0].code == \
        "cause.unstable_loss"


# -- validation -----------------------------------------------------------------------------------------------


def test_a_one_percent_validation_wiggle_is_not_overfitting() -> None:
    model = mlp(8, 1)
    guard = TrainingGuard(model, torch.optim.SGD(model.parameters(), 1e-2))
    for epoch, val in enumerate([0.90, 0.70, 0.600, 0.6020, 0.6035, 0.6048]):  # 0.8% above its best
        guard.validation(0.8 / (epoch + 1), val)
    assert guard.report().findings == []
