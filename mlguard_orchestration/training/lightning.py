"""`GuardCallback`: the training guard for Lightning (`trainer.fit(model)`, automatic optimization).

A Callback cannot skip Lightning's optimizer step, and the guard must own the step (it applies or skips it on
the device). So the callback wraps the raw torch optimizer's `step`: Lightning calls `step(closure)` where the
closure runs training_step, backward and gradient clipping and returns the loss; the wrapper runs the closure,
then hands the loss to `TrainingGuard.step`, which calls the ORIGINAL `step` (put back for that call, so no
recursion). A `TrainingStopped` propagates out of `trainer.fit`; the diagnosis is also kept on `.report`.

Limits: one optimizer, automatic optimization; 'bf16-mixed' works, '16-mixed' is refused (its GradScaler owns the
step — use `TrainingGuard(..., scaler=)` in a plain loop for fp16)."""

from __future__ import annotations

import functools
from typing import Any

import lightning.pytorch as pl
import torch

from mlguard_orchestration.report import Report
from mlguard_orchestration.training.config import GuardConfig
from mlguard_orchestration.training.guard import TrainingGuard, TrainingStopped


class GuardCallback(pl.Callback):
    """Guards every optimizer step of `trainer.fit`; `compute_loss(module, batch)` lets it locate a NaN."""

    def __init__(self, config: GuardConfig | None = None, compute_loss: Any = None, name: str = "training") -> None:
        self.config, self.compute_loss, self.name = config, compute_loss, name
        self.guard: TrainingGuard | None = None  # kept after fit, for inspection
        self.report: Report | None = None
        self._batch: Any = None
        self._restore: Any = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not pl_module.automatic_optimization or len(trainer.optimizers) != 1:
            raise ValueError("GuardCallback needs automatic optimization with exactly one optimizer")
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            raise ValueError("GuardCallback cannot guard precision='16-mixed': Lightning's GradScaler owns the "
                             "optimizer step there. Use precision='bf16-mixed' (autocast is detected, no scaler "
                             "needed), or TrainingGuard(model, optimizer, scaler=scaler) in a plain loop")
        opt = trainer.optimizers[0]
        self.guard = guard = TrainingGuard(pl_module, opt, config=self.config, compute_loss=self.compute_loss,
                                           name=self.name)
        original = opt.step  # bound method, or an LR scheduler's wrapper of it

        @functools.wraps(original)  # keeps an LR scheduler's marker: no "step() overridden" warning
        def guarded_step(closure: Any = None, **kwargs: Any) -> Any:
            if closure is None or kwargs:
                raise RuntimeError("GuardCallback: the optimizer step came without Lightning's closure")
            with torch.enable_grad():
                loss = closure()
            if loss is None:  # training_step returned None: Lightning skips this batch's backward
                return None
            opt.step = original  # the guard calls opt.step(): the real one, for this call only
            try:
                guard.step(loss, batch=self._batch)
            except TrainingStopped as stop:
                self.report = stop.report
                raise
            finally:
                opt.step = guarded_step
            return loss

        # a marker the tests read to see the step unwrapped again (functions take attributes; Callables don't)
        guarded_step._mlguard = True  # type: ignore[attr-defined]
        opt.step = guarded_step
        self._restore = lambda: setattr(opt, "step", original)
        self.report = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._batch = batch  # a reference, for the locator to replay a bad step

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close(None)  # judges a step still pending (accelerators judge one late), removes the hooks

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._close(exception)

    def _close(self, exc: BaseException | None) -> None:
        guard, restore, self._restore, self._batch = self.guard, self._restore, None, None
        if guard is None or restore is None:
            return
        restore()
        try:
            guard.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
        except TrainingStopped as stop:
            self.report = stop.report
            raise
        if self.report is None:
            self.report = guard.report()
