"""GuardCallback on a tiny LightningModule, CPU: a healthy fit passes; a NaN batch stops fit with good weights."""

from __future__ import annotations

import math
from typing import Any

import lightning  # noqa: F401  (pinned in the dev extra: a missing install must fail, not skip)
import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.plugins import MixedPrecision
from torch.utils.data import DataLoader, TensorDataset

from mlguard_orchestration.training import GuardConfig, TrainingStopped
from mlguard_orchestration.training.lightning import GuardCallback
from tests.training._models import mlp, regression_data


class Regressor(pl.LightningModule):
    def __init__(self, scheduler: bool = False) -> None:
        super().__init__()
        self.net, self.scheduler = mlp(8, 1), scheduler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), 1e-2)
        if not self.scheduler:
            return opt
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 10)}


def compute_loss(module, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(module(x), y)


def fit(module: pl.LightningModule, x: torch.Tensor, y: torch.Tensor, callback: GuardCallback,
        epochs: int = 3, **trainer_args: Any) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         **trainer_args,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=32))
    return trainer



@pytest.mark.parametrize("scheduler", [False, True], ids=["plain", "lr-scheduler"])
def test_healthy_fit_passes(scheduler: bool) -> None:
    x, y = regression_data(512)
    callback = GuardCallback()
    trainer = fit(Regressor(scheduler), x, y, callback)
    assert callback.report is not None and callback.report.status == "pass", callback.report.findings
    assert callback.guard is not None and callback.guard.step_count == trainer.global_step == 48
    assert not hasattr(trainer.optimizers[0].step, "_mlguard")  # unwrapped again after fit


def test_nan_batch_stops_fit_with_finite_weights() -> None:
    x, y = regression_data(512)
    x[100, 3] = math.nan  # in the 4th batch (batch size 32)
    module = Regressor()
    callback = GuardCallback(config=GuardConfig(), compute_loss=compute_loss)
    with pytest.raises(TrainingStopped) as info:
        fit(module, x, y, callback)
    report = info.value.report
    assert report.status == "fail" and {f.code for f in report.findings} >= {"training.non_finite_loss"}
    assert callback.report is report
    assert callback.guard is not None and callback.guard.step_count == 4 and callback.guard.last_good_step == 3
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_bf16_mixed_fit_passes_and_16_mixed_is_refused_with_the_alternative() -> None:
    x, y = regression_data(512)
    callback = GuardCallback()
    fit(Regressor(), x, y, callback, precision="bf16-mixed")
    assert callback.report is not None and callback.report.status == "pass", callback.report.findings
    scaled = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))  # as on CUDA
    with pytest.raises(ValueError, match="bf16-mixed"):
        fit(Regressor(), x, y, GuardCallback(), plugins=[scaled])
