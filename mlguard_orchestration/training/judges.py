"""The judges: host-side rules over the numbers the guard read back from the device.

Everything here runs on the host, on values that are already one step old (see guard.py), so it never makes
the device wait. Scalar series use medians and MADs, which one hard batch does not move; per-layer rules use
small CPU tensors (one row per step, one column per parameter). Absolute rules (an update larger than the weights,
updates exactly zero, a loss at the constant-prediction level, a layer that passes nothing) need no history, so
they judge from the first step. Each judge returns `Verdict`s; the guard turns them into report findings, so this
module knows nothing about reports or torch devices. These judges see every step; the judges of sampled evidence
(probes, validations) are in sampled_judges.py."""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from mlguard_orchestration.training.config import GuardConfig

_HEAD = 5  # steps whose median is the "initial" loss / gradient norm


@dataclass(frozen=True)
class Verdict:
    """One rule that tripped: a finding without causes yet."""

    code: str
    severity: Literal["warn", "fail"]
    message: str
    value: float | int | str | None = None
    threshold: float | int | str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def robust(values: Sequence[float]) -> tuple[float, float]:
    """Median and robust sigma (1.4826 × MAD): a single outlier moves neither."""
    med = statistics.median(values)
    return med, 1.4826 * statistics.median(abs(v - med) for v in values)


def _min_history(cfg: GuardConfig) -> int:
    return max(8, cfg.window // 5)


class _Events:
    """Separate events (spikes, bursts) within one window. Hits closer than `gap` steps to the previous one are
    the same event: one hard batch and the few unsettled steps after it count once."""

    def __init__(self, window: int) -> None:
        self.window, self.gap, self.steps = window, max(2, window // 5), deque[int]()
        self.last: int | None = None

    def add(self, step: int) -> int:
        if self.last is None or step - self.last >= self.gap:
            self.steps.append(step)
        self.last = step
        while self.steps and self.steps[0] <= step - self.window:
            self.steps.popleft()
        return len(self.steps)


class LossJudge:
    """Spikes (repeated, or one extreme), divergence and plateau of the training loss."""

    def __init__(self, cfg: GuardConfig) -> None:
        self.cfg = cfg
        self.history: deque[float] = deque(maxlen=cfg.window)
        self.hits: deque[bool] = deque(maxlen=cfg.window)  # which of `history` were spikes
        self.head: list[float] = []
        self.best: float | None = None
        self.long: deque[float] = deque(maxlen=2 * cfg.window)
        self.spikes = _Events(cfg.window)
        self.plateau_reported = False
        self.level: float | None = None  # the constant-prediction loss, estimated by the guard from the targets
        self.level_source = ""
        self.varies = False  # the last probe's predictions varied across samples (the model uses its inputs)
        self.constant_reported = False

    @property
    def initial(self) -> float | None:
        return statistics.median(self.head) if self.head else None

    def observe(self, step: int, loss: float) -> list[Verdict]:
        cfg, out, hit = self.cfg, [], False
        if len(self.head) < _HEAD:
            self.head.append(loss)
        l0 = self.initial
        assert l0 is not None
        if len(self.history) >= _min_history(cfg):
            med, sigma = robust(self.history)
            jump = loss - med
            # the recent upper tail, earlier spikes left out: a converged classifier's batches range from 0 to a
            # sizeable loss whenever a hard sample comes by; a spike must stand out from that range too
            tail = max((v for v, hit in zip(self.history, self.hits, strict=True) if not hit), default=med)
            ev = {"step": step, "loss": loss, "median": med, "robust_sigma": sigma, "initial_loss": l0,
                  "recent_max": tail}
            if jump > (cfg.spike_extreme - 1) * max(abs(med), abs(l0)):
                out.append(Verdict("training.loss_spike", "fail", f"loss {loss:.4g} at step {step} is more than "
                                   f"{cfg.spike_extreme:g}× its recent median {med:.4g}", loss,
                                   cfg.spike_extreme * max(abs(med), abs(l0)), ev))
            elif jump > cfg.spike_z * sigma and jump > (cfg.spike_ratio - 1) * abs(med) \
                    and jump > cfg.spike_floor * abs(l0) and loss > cfg.spike_ratio * tail:
                hit = True
                count = self.spikes.add(step)
                if count >= cfg.spike_repeats:
                    out.append(Verdict("training.loss_spike", "fail", f"{count} separate loss spikes within "
                                       f"{cfg.window} steps (last: {loss:.4g} at step {step}, median {med:.4g})",
                                       count, cfg.spike_repeats, {**ev, "spike_steps": list(self.spikes.steps)}))
        self.history.append(loss)
        self.hits.append(hit)
        self.long.append(loss)
        if len(self.history) == cfg.window:
            out += self._trend(step, statistics.median(self.history), l0)
        return out

    def _trend(self, step: int, med: float, l0: float) -> list[Verdict]:
        cfg, out = self.cfg, []
        self.best = med if self.best is None else min(self.best, med)
        rise = med - self.best
        # still rising: each fifth of the last two windows above the one before. A window's median lags and
        # rises after any transient; one hard batch (and the tens of steps an optimizer's momentum carries it)
        # is a step up, a short climb and a recovery, which this is not.
        q, recent = len(self.long) // 5, list(self.long)
        fifths = [statistics.median(recent[i * q:(i + 1) * q]) for i in range(5)]
        rising = len(recent) == 2 * cfg.window and all(b - a > 0.1 * abs(a) for a, b in
                                                          itertools.pairwise(fifths))
        if rising and rise > (cfg.divergence_factor - 1) * abs(self.best) and rise > 0.1 * abs(l0 - self.best):
            out.append(Verdict("training.divergence", "fail", f"the loss keeps rising: its rolling median "
                               f"{med:.4g} is {med / self.best if self.best else float('inf'):.3g}× its best "
                               f"{self.best:.4g}", med, cfg.divergence_factor * self.best,
                               {"step": step, "rolling_median": med, "best_median": self.best, "initial_loss": l0,
                                "medians_by_fifth": fifths}))
        out += self._constant(step, med)
        if step >= cfg.plateau_steps and not self.plateau_reported \
                and l0 - self.best < cfg.plateau_min_improvement * abs(l0):
            self.plateau_reported = True
            out.append(Verdict("training.loss_plateau", "warn", f"after {step} steps the loss's best rolling "
                               f"median {self.best:.4g} is not {cfg.plateau_min_improvement:.0%} below the "
                               f"initial {l0:.4g}", self.best, l0 - cfg.plateau_min_improvement * abs(l0),
                               {"step": step, "best_median": self.best, "initial_loss": l0}))
        return out

    def _constant(self, step: int, med: float) -> list[Verdict]:
        """Never below the constant-prediction level, at it now and no longer falling: the inputs teach the model
        nothing. Decisive after constant_steps while the predictions vary across samples (the model uses its inputs
        to no avail); predictions that barely vary are a model still at the prior — a slow start, or a dead layer
        the probes name — so those get until plateau_steps."""
        cfg, level = self.cfg, self.level
        if level is None or not level > 0 or self.constant_reported or self.best is None \
                or step < (cfg.constant_steps if self.varies else cfg.plateau_steps):
            return []
        low, high = level * (1 - cfg.constant_margin), level * (1 + 3 * cfg.constant_margin)
        if self.best < low or med > high:  # it learnt something, or it is not at the level (another loss scale)
            return []
        if len(self.long) < 2 * cfg.window or _descending(list(self.long)):
            return []  # still coming down, however slowly (a slow start): not yet decisive
        self.constant_reported = self.plateau_reported = True
        return [Verdict("training.loss_plateau", "fail", f"after {step} steps the loss (rolling median {med:.4g}, "
                        f"best {self.best:.4g}) is no better than predicting a constant ({level:.4g}, the "
                        f"{self.level_source} of the targets seen): the model learns nothing from its inputs",
                        self.best, low, {"step": step, "rolling_median": med, "best_median": self.best,
                                         "constant_level": level, "constant_level_from": self.level_source})]


def _descending(values: list[float], t: float = 2.0) -> bool:
    """A least-squares slope over the steps that is negative by more than `t` standard errors."""
    n = len(values)
    mx, my = (n - 1) / 2, statistics.fmean(values)
    sxx = sum((i - mx) ** 2 for i in range(n))
    slope = sum((i - mx) * (v - my) for i, v in enumerate(values)) / sxx
    residual = sum((v - my - slope * (i - mx)) ** 2 for i, v in enumerate(values)) / max(n - 2, 1)
    return slope < 0 and slope < -t * (residual / sxx) ** 0.5


class StallJudge:
    """Updates exactly zero, step after step: a learning rate of 0 in every group, or all-zero gradients while
    the loss is not zero (clipped to 0, multiplied by 0, or blocked by a layer that passes nothing)."""

    def __init__(self, cfg: GuardConfig) -> None:
        self.cfg = cfg
        self.run = 0
        self.because: str | None = None  # 'learning_rate' | 'gradients' while updates are zero
        self.lrs: deque[float] = deque(maxlen=cfg.window)
        self.reported = False

    def observe(self, step: int, lr: float | None, total: float, loss: float) -> list[Verdict]:
        if lr is not None:
            self.lrs.append(lr)
        lr_zero = lr == 0.0
        grads_zero = total == 0.0 and loss != 0.0
        self.run = self.run + 1 if lr_zero or grads_zero else 0
        self.because = "learning_rate" if lr_zero else "gradients" if grads_zero else None
        if self.run < self.cfg.zero_update_steps or self.reported:
            return []
        self.reported = True
        what = "the learning rate is 0 in every parameter group" if lr_zero else \
            f"every gradient is exactly 0 while the loss is {loss:.4g}"
        return [Verdict("training.zero_updates", "fail", f"{self.run} steps in a row change nothing: {what}",
                        self.run, self.cfg.zero_update_steps,
                        {"step": step, "zero_steps": self.run, "learning_rate": lr, "grad_norm": total,
                         "loss": loss, "because": "learning_rate" if lr_zero else "gradients",
                         "recent_learning_rates": list(self.lrs)[-5:]})]


class AbsentJudge:
    """Trainable parameters in no optimizer group: a fail once they get a gradient (their absence matters: they
    would train and never will), a warn after a window if they never do (unused, harmless, likely a leftover)."""

    def __init__(self, cfg: GuardConfig, names: list[str]) -> None:
        self.cfg, self.names = cfg, names
        self.open = bool(names)

    def observe(self, step: int, norm: float) -> list[Verdict]:
        """`norm`: this step's gradient norm over those parameters (0 when none got one)."""
        if not self.open:
            return []
        names = self.names
        ev = {"step": step, "parameters": names[:20], "gradient_norm": norm}
        if norm > 0:
            self.open = False
            return [Verdict("training.parameters_not_in_optimizer", "fail", f"{len(names)} trainable parameter(s) get "
                            f"gradients (norm {norm:.3g}) but are in no optimizer group, so they never change: "
                            f"{', '.join(names[:5])} (if on purpose: requires_grad=False, or "
                            "GuardConfig(deliberately_frozen=[...]))", len(names), 0, ev)]
        if step >= self.cfg.window:
            self.open = False
            return [Verdict("training.parameters_not_in_optimizer", "warn", f"{len(names)} trainable parameter(s) "
                            f"are in no optimizer group (they got no gradient in {step} steps): "
                            f"{', '.join(names[:5])}", len(names), 0, ev)]
        return []


class GradJudge:
    """Exploding (total and per parameter), vanishing (per weight, sustained) and accumulating gradients."""

    def __init__(self, cfg: GuardConfig, names: list[str], is_weight: list[bool]) -> None:
        self.cfg, self.names = cfg, names
        self.history: deque[float] = deque(maxlen=cfg.window)
        self.hits: deque[bool] = deque(maxlen=cfg.window)  # which of `history` were bursts
        self.head: list[float] = []
        self.layer_rows: list[torch.Tensor] = []  # per-parameter norms of the first steps
        self.layer_head = torch.zeros(len(names), dtype=torch.float64)
        self.layers = torch.full((cfg.window, len(names)), float("nan"), dtype=torch.float64)
        self.filled = 0
        self.is_weight = torch.tensor(is_weight, dtype=torch.bool)
        self.vanishing = torch.zeros(len(names), dtype=torch.int64)
        self.vanish_reported = False
        self.bursts = _Events(cfg.window)
        self.unreset = 0  # consecutive steps whose gradients were the very tensors of the step before

    def observe(self, step: int, total: float, per: torch.Tensor, same_grads: bool) -> list[Verdict]:
        """`per`: this step's gradient norm of every parameter, NaN where it had no gradient."""
        cfg, out, hit = self.cfg, [], False
        if len(self.head) < _HEAD:
            self.head.append(total)
            self.layer_rows.append(per)
            self.layer_head = torch.nanmedian(torch.stack(self.layer_rows), dim=0).values.nan_to_num(nan=0.0)
        g0 = statistics.median(self.head)
        if len(self.history) >= _min_history(cfg):
            med = statistics.median(self.history)
            lmed = torch.nanmedian(self.layers[: self.filled], dim=0).values
            ref = max(med, cfg.explode_floor * g0)  # a converged model's tiny gradients make any batch look big
            # the layers that burst (above explode_factor × their own median and their own initial norm's floor),
            # named in the evidence. Bursts are counted on the total only: a converged model's single layer jumps
            # ten-fold on any batch holding a hard sample
            lref = torch.maximum(lmed, cfg.explode_floor * self.layer_head)
            hot = (per > cfg.explode_factor * lref) & (per > ref)
            # the recent upper tail, earlier bursts left out: a converged classifier's gradient jumps on every batch
            # holding a hard sample; a burst must stand out from those too
            tail = max((v for v, hit in zip(self.history, self.hits, strict=True) if not hit), default=med)
            ev = {"step": step, "grad_norm": total, "median": med, "initial_grad_norm": g0,
                  "layers": self._top(per / lmed, hot)}
            if total > cfg.explode_extreme * max(med, g0):
                out.append(Verdict("training.exploding_gradients", "fail", f"gradient norm {total:.4g} at step "
                                   f"{step} is more than {cfg.explode_extreme:g}× its recent median {med:.4g}",
                                   total, cfg.explode_extreme * max(med, g0), ev))
            elif total > cfg.explode_factor * ref and total > cfg.spike_ratio * tail:
                hit = True
                count = self.bursts.add(step)
                if count >= cfg.explode_repeats:
                    out.append(Verdict("training.exploding_gradients", "fail", f"{count} separate gradient bursts (>"
                                       f"{cfg.explode_factor:g}× the rolling median) within {cfg.window} steps",
                                       count, cfg.explode_repeats, {**ev, "burst_steps": list(self.bursts.steps)}))
        self.history.append(total)
        self.hits.append(hit)
        self.layers = torch.roll(self.layers, 1, 0)
        self.layers[0] = per
        self.filled = min(self.filled + 1, cfg.window)
        out += self._vanishing(step, per)
        out += self._accumulating(step, same_grads)
        return out

    def _top(self, ratio: torch.Tensor, mask: torch.Tensor, k: int = 3) -> dict[str, float]:
        idx = [int(i) for i in torch.nonzero(mask).flatten()]
        idx.sort(key=lambda i: -float(ratio[i]))
        return {self.names[i]: round(float(ratio[i]), 3) for i in idx[:k]}

    def _vanishing(self, step: int, per: torch.Tensor) -> list[Verdict]:
        if per.numel() == 0:
            return []
        small = (per < self.cfg.vanish_ratio * torch.nan_to_num(per, nan=0.0).max()) & self.is_weight
        self.vanishing = (self.vanishing + 1) * small
        flagged = torch.nonzero(self.vanishing >= self.cfg.vanish_steps).flatten().tolist()
        if not flagged or self.vanish_reported:
            return []
        self.vanish_reported = True
        names = [self.names[i] for i in flagged]
        return [Verdict("training.vanishing_gradients", "warn", f"{len(names)} weight(s) got gradients below "
                        f"{self.cfg.vanish_ratio:g}× the largest for {self.cfg.vanish_steps} steps: "
                        f"{', '.join(names[:5])}", len(names), self.cfg.vanish_steps,
                        {"step": step, "layers": names[:20]})]

    def _accumulating(self, step: int, same_grads: bool) -> list[Verdict]:
        self.unreset = self.unreset + 1 if same_grads else 0
        if self.unreset < self.cfg.window:
            return []
        norms = list(self.history)
        first, last = statistics.median(norms[:_HEAD]), statistics.median(norms[-_HEAD:])
        rising = sum(b > a for a, b in itertools.pairwise(norms)) / (len(norms) - 1)
        if last < self.cfg.zero_grad_growth * first or rising < 0.6:
            return []
        return [Verdict("training.missing_zero_grad", "fail", f"gradients were never reset and their norm grew "
                        f"{last / first:.3g}× over {len(norms)} steps (rising on {rising:.0%} of them)",
                        last / first, self.cfg.zero_grad_growth,
                        {"step": step, "first_grad_norm": first, "last_grad_norm": last, "rising_share": rising})]


__all__ = ["AbsentJudge", "GradJudge", "LossJudge", "StallJudge", "Verdict", "robust"]
