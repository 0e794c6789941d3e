"""Preflight: a sound model passes quietly; each broken variant fails its own item with its own explanation."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mlguard_orchestration.report import Report
from mlguard_orchestration.training import preflight

# -- data -----------------------------------------------------------------------------------------------------


def _blobs(n: int = 256, classes: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centres = torch.randn(classes, 4, generator=g) * 3
    x = centres[y] + torch.randn(n, 4, generator=g)
    return (x - x.mean(0)) / x.std(0), y


def _regression(n: int = 256, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.randn(n, generator=g)
    return x, y[:, None]


def _loader(x: Tensor, y: Tensor, **kw: object) -> DataLoader:
    kw.setdefault("shuffle", True)
    if kw["shuffle"] and "generator" not in kw:
        kw["generator"] = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(x, y), batch_size=32, **kw)  # type: ignore[arg-type]


def _mlp(out: int = 2) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, out))


CE = nn.CrossEntropyLoss()
MSE = nn.MSELoss()


def _items(report: Report) -> dict[str, str]:
    """check item → message, one per failing item."""
    items = [f.check.removeprefix("preflight.") for f in report.findings]
    assert len(items) == len(set(items)), f"more than one finding per item: {items}"
    assert all(f.code == "preflight.failed" for f in report.findings)
    return {f.check.removeprefix("preflight."): f.message for f in report.findings}


def _only(report: Report, item: str, severity: str = "fail") -> str:
    items = _items(report)
    assert set(items) == {item}, {k: v[:200] for k, v in items.items()}
    assert report.status == severity, report.status
    json.dumps(report.compact())  # evidence stays serialisable
    return items[item]


# -- sound models ---------------------------------------------------------------------------------------------


def test_sound_classifier_passes_with_timing_and_loss_notes() -> None:
    x, y = _blobs()
    report = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2)
    assert report.status == "pass", [f.message for f in report.findings]
    assert report.findings == [] and report.checks_run == 10
    notes = " | ".join(report.notes)
    assert "data loading:" in notes and "% of step time" in notes
    assert "log K = 0.6931" in notes and "overfit 16 samples" in notes


def test_sound_regression_passes() -> None:
    x, y = _regression()
    report = preflight(lambda: _mlp(1), MSE, _loader(x, y))
    assert report.status == "pass", [f.message for f in report.findings]
    assert report.checks_run == 10


def test_preflight_leaves_rng_states_and_loader_generator_as_found() -> None:
    x, y = _blobs()
    loader = _loader(x, y)
    torch.manual_seed(123)
    random.seed(5)
    state, py_state, gen_state = torch.get_rng_state(), random.getstate(), loader.generator.get_state()
    preflight(lambda: _mlp(2), CE, loader, num_classes=2)
    assert torch.equal(torch.get_rng_state(), state) and random.getstate() == py_state
    assert torch.equal(loader.generator.get_state(), gen_state)


# -- each broken variant --------------------------------------------------------------------------------------


def test_model_that_cannot_be_built_is_a_finding_not_a_traceback() -> None:
    def build() -> nn.Module:
        raise ValueError("hidden size must be positive, got -3")

    x, y = _blobs()
    report = preflight(build, CE, _loader(x, y), num_classes=2)
    msg = _only(report, "model_build")
    assert "ValueError: hidden size must be positive, got -3" in msg
    evidence = report.findings[0].evidence
    assert evidence["exception"] == "ValueError" and "test_preflight.py" in evidence["raised_at"]
    skipped = ("skipped output_shape, initial_loss, gradient_flow, overfit_batch, lr_schedule, checkpoint, "
               "determinism, data_loading: model_build did not pass")
    assert skipped in report.notes and not any(n.startswith("skipped") and n != skipped for n in report.notes)


def test_regression_output_n1_against_target_n_is_the_silent_broadcast() -> None:
    x, y = _regression()
    report = preflight(lambda: _mlp(1), MSE, _loader(x, y[:, 0]))
    msg = _only(report, "output_shape")
    assert "[32, 1]" in msg and "[32]" in msg and "broadcast them to [32, 32]" in msg
    assert "squeeze the output" in msg


def test_three_outputs_for_two_classes() -> None:
    x, y = _blobs()
    msg = _only(preflight(lambda: _mlp(3), CE, _loader(x, y), num_classes=2), "output_shape")
    assert "3 outputs per sample but there are 2 classes" in msg and "out_features to 2" in msg
    assert "extra logit" in msg


def test_init_scaled_100x_gives_implausible_initial_loss() -> None:
    def build() -> nn.Module:
        model = _mlp(2)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(100)
        return model

    x, y = _blobs()
    report = preflight(build, CE, _loader(x, y), num_classes=2)
    msg = _only(report, "initial_loss")
    assert "log K = 0.6931" in msg and "too large" in msg
    assert report.top_cause is not None and report.top_cause.code == "cause.bad_initialisation"


class _WithUnusedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _mlp(2)
        self.aux_head = nn.Linear(32, 5)  # defined, never used in forward

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class _ZeroedGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _mlp(2)
        self.gate = nn.Parameter(torch.ones(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + 0.0 * self.gate  # used, but its gradient is always zero


def test_parameter_whose_gradient_is_always_zero_is_a_warning() -> None:
    x, y = _blobs()
    msg = _only(preflight(_ZeroedGate, CE, _loader(x, y), num_classes=2), "gradient_flow", severity="warn")
    assert "1 parameter got an all-zero gradient (gate)" in msg


def test_l1_bias_gradient_cancelling_on_one_batch_is_not_flagged() -> None:
    x, y = _regression()  # the first batch has balanced residual signs: the output bias' L1 gradient is 0 there
    assert preflight(lambda: _mlp(1), nn.L1Loss(), _loader(x, y, shuffle=False)).findings == []


def test_regression_targets_far_from_the_initial_outputs() -> None:
    x, y = _regression()
    report = preflight(lambda: _mlp(1), MSE, _loader(x, y + 50))
    items = _items(report)
    assert re.search(r"\d+× the loss of predicting the target mean", items["initial_loss"])
    assert "Standardise the targets" in items["initial_loss"]
    assert report.findings[0].causes[0].code == "cause.bad_initialisation"


def test_parameter_unused_in_forward_gets_no_gradient() -> None:
    x, y = _blobs()
    report = preflight(_WithUnusedHead, CE, _loader(x, y), num_classes=2)
    msg = _only(report, "gradient_flow")
    assert "2 of 8 trainable parameters got no gradient (aux_head.weight, aux_head.bias)" in msg
    assert "not used in forward" in msg


class _ConstantOutput(nn.Module):
    """Ignores its input: a bias-only 'model' that can only learn the class frequencies."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([0.3, -0.3]))

    def forward(self, x: Tensor) -> Tensor:
        return self.bias.expand(x.shape[0], 2)


def test_model_that_cannot_overfit_one_batch() -> None:
    x, y = _blobs()
    report = preflight(_ConstantOutput, CE, _loader(x, y), num_classes=2, overfit_steps=50)
    msg = _only(report, "overfit_batch")
    assert "could not memorise 16 samples" in msg and "accuracy 50%" in msg
    assert "the output is the same for every sample" in msg


def test_identical_inputs_with_different_labels_name_label_misalignment() -> None:
    x, y = _blobs()
    x[:16] = x[0]  # 16 copies of one input, labels alternate 0/1: nothing can fit them
    report = preflight(lambda: _mlp(2), CE, _loader(x, y, shuffle=False), num_classes=2, overfit_steps=30)
    assert "overfit_batch" in _items(report)
    assert report.top_cause is not None and report.top_cause.code == "cause.label_misalignment"


def test_make_optimizer_is_used_and_a_zero_learning_rate_is_named() -> None:
    x, y = _blobs()
    report = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2, overfit_steps=20,
                       make_optimizer=lambda params: torch.optim.SGD(params, lr=0.0))
    msg = _only(report, "overfit_batch")
    assert "20 steps of SGD (lr 0.0)" in msg and "no parameter changed" in msg


class _UnregisteredScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _mlp(2)
        self.scale = torch.rand(2) + 0.5  # a plain attribute: used in forward, not in the state_dict

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) * self.scale


def test_unregistered_tensor_attribute_breaks_the_checkpoint_round_trip() -> None:
    x, y = _blobs()
    report = preflight(_UnregisteredScale, CE, _loader(x, y), num_classes=2)
    msg = _only(report, "checkpoint")
    assert "outputs differ" in msg and "scale" in msg and "register_buffer" in msg
    assert report.findings[0].evidence["unsaved_tensors"] == ["scale"]


def test_shuffle_without_generator_is_named_and_a_seeded_generator_is_quiet() -> None:
    x, y = _blobs()
    unseeded = preflight(lambda: _mlp(2), CE, _loader(x, y, generator=None), num_classes=2)
    msg = _only(unseeded, "determinism", severity="warn")
    assert "unseeded shuffle" in msg and "generator=torch.Generator().manual_seed(seed)" in msg
    assert unseeded.top_cause is not None and unseeded.top_cause.code == "cause.nondeterminism"
    seeded = preflight(lambda: _mlp(2), CE, _loader(x, y, generator=torch.Generator().manual_seed(7)),
                       num_classes=2)
    assert seeded.findings == []


class _JitterDataset(Dataset):
    """Adds noise from Python's `random`, which torch.manual_seed does not seed."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.x[i] + random.gauss(0, 0.1), self.y[i]


def test_unseeded_python_random_in_the_dataset_is_nondeterminism() -> None:
    x, y = _blobs()
    loader = DataLoader(_JitterDataset(x, y), batch_size=32)
    msg = _only(preflight(lambda: _mlp(2), CE, loader, num_classes=2), "determinism")
    assert "different losses" in msg and "Python's `random`" in msg


def test_nan_in_inputs_is_named_and_the_model_checks_run_on_the_finite_rows() -> None:
    x, y = _blobs()
    x[3, 1] = float("nan")
    x[7, 0] = float("inf")
    report = preflight(lambda: _mlp(2), CE, _loader(x, y, shuffle=False), num_classes=2)
    msg = _only(report, "data_batch")
    assert "inputs hold 1 NaN and 1 Inf values (in 2 of 32 rows, e.g. rows [3, 7])" in msg
    assert report.top_cause is not None and report.top_cause.code == "cause.corrupt_input_sample"
    assert report.checks_run == 10


def test_float_class_labels_stop_the_model_checks() -> None:
    x, y = _blobs()
    report = preflight(lambda: _mlp(2), CE, _loader(x, y.float()), num_classes=2)
    msg = _only(report, "data_batch")
    assert "class labels are float32" in msg and ".long()" in msg
    assert any(n.startswith("skipped output_shape, initial_loss") and "data_batch did not pass" in n for n in report.notes)


def _slow_collate(batch: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
    time.sleep(0.03)  # decoding/augmentation on the training path
    return torch.utils.data.default_collate(batch)


def test_slow_data_loading_is_a_warning_with_the_share() -> None:
    x, y = _blobs()
    loader = _loader(x, y, collate_fn=_slow_collate)
    msg = _only(preflight(lambda: _mlp(2), CE, loader, num_classes=2), "data_loading", severity="warn")
    assert "Waiting for the data loader took" in msg and "num_workers" in msg


# -- limits ---------------------------------------------------------------------------------------------------


def test_a_one_shot_iterator_runs_what_it_can_and_says_what_it_skipped() -> None:
    x, y = _blobs()

    def batches() -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(0, 256, 32):
            yield x[i:i + 32], y[i:i + 32]

    report = preflight(lambda: _mlp(2), CE, batches(), num_classes=2)
    assert report.status == "pass" and report.checks_run == 7
    assert any(n.startswith("skipped data_scan, determinism, data_loading") and "make_loader" in n
               for n in report.notes)
    with_factory = preflight(lambda: _mlp(2), CE, batches(), num_classes=2, make_loader=batches)
    assert with_factory.status == "pass" and with_factory.checks_run == 10
