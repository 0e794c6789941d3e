"""GuardTrainerCallback on the Hugging Face Trainer, CPU, offline: healthy runs pass; a NaN batch stops train()."""

from __future__ import annotations

import math
import os

import accelerate  # noqa: F401  (pinned in the dev extra: a missing install must fail, not skip)
import pytest
import torch
import transformers  # noqa: F401  (pinned in the dev extra: a missing install must fail, not skip)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from torch import nn
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from mlguard_orchestration.training import TrainingStopped
from mlguard_orchestration.training.huggingface import GuardTrainerCallback
from tests.training._models import mlp, regression_data


class Regressor(nn.Module):
    """A plain torch module the Trainer accepts: keyword inputs, a dict with `loss` out."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(8, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(x)
        return {"loss": nn.functional.mse_loss(out, labels), "logits": out}



def train(model: nn.Module, rows: list[dict], callback: GuardTrainerCallback, tmp_path, steps: int,
          **args) -> Trainer:
    args = {"learning_rate": 1e-2, **args}
    targs = TrainingArguments(output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=32,
                              report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True,
                              disable_tqdm=True, dataloader_num_workers=0, seed=0, **args)
    trainer = Trainer(model=model, args=targs, train_dataset=rows, callbacks=[callback])
    trainer.train()
    return trainer


def regression_rows(nan_at: int | None = None) -> list[dict]:
    x, y = regression_data(512)
    if nan_at is not None:
        x[nan_at, 3] = math.nan
    return [{"x": x[i], "labels": y[i]} for i in range(len(x))]


@pytest.mark.parametrize("accumulate", [1, 2])
def test_healthy_regression_passes(tmp_path, accumulate: int) -> None:
    callback = GuardTrainerCallback()
    trainer = train(Regressor(), regression_rows(), callback, tmp_path, 40, gradient_accumulation_steps=accumulate)
    assert callback.report is not None and callback.report.status == "pass", callback.report.findings
    assert callback.guard is not None and callback.guard.step_count == trainer.state.global_step == 40
    assert not hasattr(trainer.optimizer.optimizer.step, "_mlguard")  # unwrapped again after train()


def test_tiny_bert_passes(tmp_path) -> None:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    ids = torch.randint(1, 50, (256, 12))
    rows = [{"input_ids": ids[i], "attention_mask": torch.ones(12, dtype=torch.long),
             "labels": int(ids[i, 0] > 25)} for i in range(len(ids))]
    callback = GuardTrainerCallback()
    train(BertForSequenceClassification(config), rows, callback, tmp_path, 16, learning_rate=1e-3)
    assert callback.report is not None and callback.report.status != "fail", callback.report.findings
    assert callback.guard is not None and callback.guard.step_count == 16


def test_nan_batch_stops_training_with_finite_weights(tmp_path) -> None:
    model = Regressor()
    callback = GuardTrainerCallback()
    rows = regression_rows(nan_at=0)  # the Trainer shuffles: the NaN row lands in some batch of epoch 1
    with pytest.raises(TrainingStopped) as info:
        train(model, rows, callback, tmp_path, 40)
    report = info.value.report
    codes = {f.code for f in report.findings}
    assert report.status == "fail" and "training.non_finite_loss" in codes, codes
    assert callback.report is report and callback.guard is not None
    assert callback.guard.step_count <= 16 and callback.guard.last_good_step == callback.guard.step_count - 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    finding = next(f for f in report.findings if f.code == "training.non_finite_loss")
    assert finding.evidence.get("samples"), finding.evidence  # the locator replayed the batch: found the row
