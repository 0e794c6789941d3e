"""Preflight catches before training what the guard would only see during it: a corrupt sample beyond the first
batch (named by its dataset index), a dtype that changes between batches, a learning-rate schedule that reaches 0
or explodes; and it stays quiet on a slow but sound optimizer. Verdicts depend on steps, not on the clock."""

from __future__ import annotations

import subprocess
import sys

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mlguard_orchestration.training import preflight
from mlguard_orchestration.training.checklist import ITEMS
from tests.training.test_preflight import CE, MSE, _blobs, _items, _loader, _mlp, _only, _regression


def test_preflight_imports_as_the_function_whatever_was_imported_before() -> None:
    code = ("import mlguard_orchestration.training.checklist, mlguard_orchestration.training.guard\n"
            "from mlguard_orchestration.training import preflight\n"
            "import mlguard_orchestration.training as t\n"
            "assert callable(preflight) and preflight is t.preflight, type(preflight)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_items_are_declared_once_with_what_they_need_and_return() -> None:
    names = [i.name for i in ITEMS]
    assert len(names) == len(set(names))
    produced: set[str] = set()
    for item in ITEMS:  # every value an item needs is returned by an item before it
        assert set(item.needs) | set(item.uses) <= produced, item.name
        produced |= set(item.returns)
    assert {i.concern for i in ITEMS} == {"data", "model", "fit", "checkpoint", "determinism"}


# -- data_scan ------------------------------------------------------------------------------------------------


def test_a_corrupt_sample_beyond_the_first_batch_is_named_by_its_dataset_index() -> None:
    x, y = _blobs()
    x[201, 2] = float("inf")  # far from the first batch; the loader shuffles
    report = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2)
    msg = _only(report, "data_scan")
    assert "dataset indices [201]" in msg
    assert report.top_cause is not None and report.top_cause.code == "cause.corrupt_input_sample"
    assert "201" in report.top_cause.summary


def test_a_dtype_that_changes_between_batches_is_named() -> None:
    class Mixed(Dataset):
        def __init__(self) -> None:
            self.x, self.y = _regression()

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
            x = self.x[i].double() if i >= 128 else self.x[i]  # a second source, read as float64
            return x, self.y[i]

    report = preflight(lambda: _mlp(1), MSE, DataLoader(Mixed(), batch_size=32))
    assert "batch 4: inputs are float64 where the first batch's were float32" in _items(report)["data_scan"]


def test_a_clean_loader_is_scanned_quietly_and_the_scan_is_bounded_in_batches() -> None:
    x, y = _blobs(n=2048)
    x[2000, 0] = float("nan")  # in batch 62, beyond scan_batches=10
    report = preflight(lambda: _mlp(2), CE, _loader(x, y, shuffle=False), num_classes=2, scan_batches=10)
    assert report.status == "pass", [f.message for f in report.findings]
    assert any(n.startswith("data scan: 10 batches after the first") for n in report.notes)


# -- lr_schedule ----------------------------------------------------------------------------------------------


def _sgd(params) -> torch.optim.Optimizer:  # type: ignore[no-untyped-def]
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def test_a_schedule_reaching_zero_long_before_the_end_fails() -> None:
    x, y = _blobs()
    report = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2, make_optimizer=_sgd,
                       make_scheduler=lambda opt: torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=20),
                       planned_steps=400)
    msg = _only(report, "lr_schedule")
    assert "reaches 0 at step 20 of 400" in msg and "the last 380 steps (95%)" in msg
    assert report.top_cause is not None and report.top_cause.code == "cause.zero_learning_rate"


def test_a_schedule_that_grows_or_raises_mid_run_fails() -> None:
    x, y = _blobs()
    growing = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2, make_optimizer=_sgd, planned_steps=200,
                        make_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 + s))
    assert "reaches 1.1 at step 10 of 200" in _only(growing, "lr_schedule")
    assert growing.top_cause is not None and growing.top_cause.code == "cause.learning_rate_too_high"
    short = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2, make_optimizer=_sgd, planned_steps=200,
                      make_scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=100))
    assert "raised ValueError" in _only(short, "lr_schedule") and "step 101 of 200" in _items(short)["lr_schedule"]


def test_warmup_then_cosine_to_the_end_and_one_cycle_pass() -> None:
    x, y = _blobs()

    def warmup_cosine(opt: torch.optim.Optimizer):  # type: ignore[no-untyped-def]
        warm = torch.optim.lr_scheduler.LinearLR(opt, 0.01, 1.0, total_iters=20)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=380)
        return torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[20])

    for make in (warmup_cosine, lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=400)):
        report = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2, make_optimizer=_sgd,
                           make_scheduler=make, planned_steps=400)
        assert report.status == "pass", [f.message for f in report.findings]
        assert any(n.startswith("lr schedule over 400 steps") for n in report.notes)


# -- overfit_batch is optimizer-aware -------------------------------------------------------------------------


def test_plain_sgd_at_a_small_learning_rate_is_slow_not_broken() -> None:
    x, y = _blobs()
    report = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2,
                       make_optimizer=lambda p: torch.optim.SGD(p, lr=1e-3))
    assert report.status == "pass", [f.message for f in report.findings]
    assert any("still falling" in n and "the model and data can be fit" in n for n in report.notes)


def test_an_optimizer_that_makes_the_loss_worse_warns() -> None:
    x, y = _blobs()
    report = preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2,
                       make_optimizer=lambda p: torch.optim.SGD(p, lr=50.0))
    msg = _only(report, "overfit_batch", severity="warn")
    assert "Adam (lr 0.01) memorised them" in msg
    assert report.top_cause is not None and report.top_cause.code == "cause.learning_rate_too_high"


# -- deterministic verdicts -----------------------------------------------------------------------------------


class _NanAfter(nn.Module):
    """Sound for two forward passes, then NaN: the short runs' losses are non-finite in both runs."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _mlp(2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        out = self.net(x)
        return out * float("nan") if self.training and self.calls > 2 else out


def test_non_finite_short_runs_are_not_blamed_on_an_rng() -> None:
    x, y = _blobs()
    report = preflight(_NanAfter, CE, _loader(x, y), num_classes=2, overfit_steps=20)
    assert "determinism" not in _items(report)
    assert any(n.startswith("determinism: not judged") for n in report.notes), report.notes


def test_the_same_call_gives_the_same_verdicts() -> None:
    x, y = _blobs()
    x[201, 2] = float("inf")
    runs = [preflight(lambda: _mlp(2), CE, _loader(x, y), num_classes=2,
                      make_optimizer=lambda p: torch.optim.SGD(p, lr=1e-3)) for _ in range(2)]
    assert [(f.check, f.severity, f.message) for f in runs[0].findings] == \
        [(f.check, f.severity, f.message) for f in runs[1].findings]


def test_tensor_dataset_loader_without_shuffle_scans_every_batch() -> None:
    x, y = _regression(n=96)
    report = preflight(lambda: _mlp(1), MSE, DataLoader(TensorDataset(x, y), batch_size=32))
    assert any(n.startswith("data scan: 2 batches after the first (64 rows)") for n in report.notes)
