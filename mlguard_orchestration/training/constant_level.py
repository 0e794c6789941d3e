"""The loss of the best constant prediction, estimated from the targets the guard sees — so no user has to supply it.

A model whose training loss never gets below this level has learnt nothing from its inputs (labels shuffled
against them, inputs that carry nothing). Which constant is best depends on the task, read from the shapes and
dtypes of `predictions` and `targets` passed to `TrainingGuard.step` (on the host: no device sync):

- class indices (integer targets, predictions with one more dimension holding K classes, first or last):
  the entropy of the label frequencies seen — cross-entropy of predicting those frequencies. Labels -100
  (CrossEntropyLoss's ignore_index) and out-of-range labels are left out.
- float targets with the predictions' shape, every value 0 or 1: the mean over outputs of the binary entropy of
  each output's rate — binary cross-entropy of predicting the rates.
- other float targets with the predictions' shape: the mean over outputs of each output's variance — mean squared
  error of predicting the means.

Statistics accumulate on the device (counts, sums, sums of squares, a 0/1 flag) on the sampled probe steps and the
level comes back as one float64 in the probe's packed tensor. The guard only compares it with losses of the same
scale (see `LossJudge._constant`), so a loss of another form (a sum, L1, label smoothing) is never judged by it."""

from __future__ import annotations

import torch

MIN_TARGETS = 256  # target values seen before the level is trusted


class ConstantLevel:
    """Running target statistics; `level()` is the constant-prediction loss as a device scalar (NaN: unknown)."""

    def __init__(self) -> None:
        self.kind: str | None = None  # 'classes' | 'values' once the first batch fixed it
        self._counts: torch.Tensor | None = None  # classes: per-class counts
        self._sum: torch.Tensor | None = None  # values: per-output sum, sum of squares; count; all 0/1
        self._sumsq: torch.Tensor | None = None
        self._n: torch.Tensor | None = None
        self._binary: torch.Tensor | None = None

    def add(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """Accumulate one batch's targets (device ops only)."""
        kind, k = _kind(predictions, targets)
        if kind is None or (self.kind is not None and kind != self.kind):
            return
        t = targets.detach()
        if kind == "classes":
            if self._counts is None or self._counts.numel() != k:
                self._counts = torch.zeros(k, dtype=torch.float64, device=t.device)
            labels = t.reshape(-1)
            valid = (labels >= 0) & (labels < k)
            self._counts.index_add_(0, labels.clamp(0, k - 1), valid.to(torch.float64))
        else:
            v = t.reshape(len(t), -1).double()
            if self._sum is None or self._sum.numel() != v.shape[1]:
                self._sum = torch.zeros(v.shape[1], dtype=torch.float64, device=v.device)
                self._sumsq = torch.zeros_like(self._sum)
                self._n = torch.zeros((), dtype=torch.float64, device=v.device)
                self._binary = torch.ones((), dtype=torch.bool, device=v.device)
            assert self._sumsq is not None and self._n is not None and self._binary is not None
            self._sum += v.sum(0)
            self._sumsq += (v * v).sum(0)
            self._n += v.shape[0]
            self._binary &= ((v == 0) | (v == 1)).all()
        self.kind = kind

    def level(self, device: torch.device) -> torch.Tensor:
        """[constant-prediction loss, form] as float64 on `device`: form 0 label entropy, 1 binary entropy,
        2 variance; the loss is NaN until MIN_TARGETS target values were seen."""
        nan = torch.full((), float("nan"), dtype=torch.float64, device=device)
        if self.kind == "classes" and self._counts is not None:
            total = self._counts.sum()
            p = self._counts / total.clamp_min(1)
            entropy = -(p * torch.log(p.clamp_min(1e-300))).sum()
            return torch.stack([torch.where(total >= MIN_TARGETS, entropy, nan.to(entropy.device)).to(device),
                                torch.zeros((), dtype=torch.float64, device=device)])
        if self.kind == "values" and self._sum is not None:
            assert self._sumsq is not None and self._n is not None and self._binary is not None
            n = self._n.clamp_min(1)
            mean = self._sum / n
            variance = (self._sumsq / n - mean * mean).clamp_min(0).mean()
            rate = mean.clamp(1e-12, 1 - 1e-12)
            entropy = -(rate * torch.log(rate) + (1 - rate) * torch.log1p(-rate)).mean()
            value = torch.where(self._binary, entropy, variance)
            enough = self._n * self._sum.numel() >= MIN_TARGETS
            return torch.stack([torch.where(enough, value, nan.to(value.device)).to(device),
                                torch.where(self._binary, 1.0, 2.0).to(torch.float64).to(device)])
        return torch.stack([nan, nan])


FORMS = {0: "label entropy", 1: "binary label entropy", 2: "per-output variance"}


def _kind(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[str | None, int]:
    """('classes', K) for class indices (classes on the predictions' first or last non-batch dimension),
    ('values', 0) for element-wise float targets, else (None, 0)."""
    if targets.dim() == 0 or predictions.dim() == 0 or len(targets) != len(predictions):
        return None, 0
    if not targets.is_floating_point() and not targets.is_complex() and targets.dtype != torch.bool:
        if predictions.dim() == targets.dim() + 1:
            if predictions.shape[:-1] == targets.shape:
                return "classes", int(predictions.shape[-1])
            if predictions.shape[2:] == targets.shape[1:]:
                return "classes", int(predictions.shape[1])
        return None, 0
    if targets.is_floating_point() and targets.numel() == predictions.numel():
        return "values", 0
    return None, 0


__all__ = ["FORMS", "MIN_TARGETS", "ConstantLevel"]
