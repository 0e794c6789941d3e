"""`GuardTrainerCallback`: the training guard for the Hugging Face `Trainer`.

The Trainer calls `optimizer.step()` itself and a callback cannot skip it, while the guard must own the step.
So the callback wraps the step of the torch optimizer inside Accelerate's wrapper: the wrapper hands the loss
to `TrainingGuard.step`, which calls the ORIGINAL `step` (put back for that call: no recursion) or skips it.
The Trainer gives callbacks no loss, so a forward hook keeps the model output's `loss` (and the forward's
keyword arguments, the batch the locator replays) since the last step; micro-batches are averaged.
A `TrainingStopped` propagates out of `trainer.train()`; the diagnosis is also kept on `.report`.

Limits: the model must return `loss` (no custom `compute_loss`), no fp16 GradScaler (it owns the step)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from transformers import TrainerCallback

from mlguard_orchestration.report import Report
from mlguard_orchestration.training.config import GuardConfig
from mlguard_orchestration.training.guard import TrainingGuard, TrainingStopped


def model_loss(model: torch.nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """The locator's default `compute_loss`: the forward again, with the batch's keyword arguments."""
    loss: torch.Tensor = model(**batch)["loss"]
    return loss


class GuardTrainerCallback(TrainerCallback):
    """Guards every optimizer step of `Trainer.train()`."""

    def __init__(self, config: GuardConfig | None = None, compute_loss: Any = model_loss, name: str = "training"):
        self.config, self.compute_loss, self.name = config, compute_loss, name
        self.guard: TrainingGuard | None = None  # kept after training, for inspection
        self.report: Report | None = None
        self._losses: list[torch.Tensor] = []
        self._batch: dict[str, Any] | None = None  # the last forward's keyword arguments
        self._close: Callable[[BaseException | None], None] | None = None  # set while training is guarded

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       **kwargs: Any) -> None:
        if getattr(optimizer, "scaler", None) is not None:
            raise ValueError("GuardTrainerCallback cannot guard fp16=True: Accelerate's GradScaler owns the optimizer "
                             "step there. Use bf16=True (autocast is detected, no scaler needed), or "
                             "TrainingGuard(model, optimizer, scaler=scaler) in a plain loop")
        opt = getattr(optimizer, "optimizer", optimizer)  # the torch optimizer inside AcceleratedOptimizer
        self.guard = guard = TrainingGuard(model, opt, config=self.config, compute_loss=self.compute_loss,
                                           name=self.name)
        self.report = None
        hook = model.register_forward_hook(self._capture, with_kwargs=True)
        original = opt.step

        @functools.wraps(original)  # keeps an LR scheduler's marker: no "step() overridden" warning
        def guarded_step(closure: Any = None, **kw: Any) -> None:
            if not self._losses:
                raise RuntimeError("GuardTrainerCallback: the model returned no `loss` since the last step")
            loss, batch = torch.stack(self._losses).mean(), self._batch if len(self._losses) == 1 else None
            opt.step = original  # the guard calls opt.step(): the real one, for this call only
            try:
                guard.step(loss, batch=batch)
            except TrainingStopped as stop:
                self.report = stop.report
                close(stop)
                raise
            finally:
                self._losses, self._batch = [], None  # also what a locator replay captured
                if self._close is not None:
                    opt.step = guarded_step

        def close(exc: BaseException | None) -> None:
            self._close, opt.step = None, original
            hook.remove()
            guard.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)

        # a marker the tests read to see the step unwrapped again (functions take attributes; Callables don't)
        guarded_step._mlguard = True  # type: ignore[attr-defined]
        opt.step, self._close = guarded_step, close

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Judges a step still pending (accelerators judge one late); removes the wrapper and the hook."""
        try:
            if self._close is not None:
                self._close(None)
        except TrainingStopped as stop:
            self.report = stop.report
            raise
        self.report = self.report or (self.guard.report() if self.guard else None)

    def _capture(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
        if module.training and torch.is_grad_enabled() and isinstance(loss, torch.Tensor):
            self._losses.append(loss.detach())
            self._batch = kwargs
