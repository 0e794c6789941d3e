"""Host-side judgement of the numbers the guard read back from the device: robust statistics over short windows.

Everything here runs on the host, on values that are already one step old (see guard.py), so it never makes
the device wait. Scalar series use medians and MADs, which one hard batch does not move; per-layer rules use
small CPU tensors (one row per step, one column per parameter). Each judge returns `Verdict`s; the guard turns
them into report findings, so this module knows nothing about reports or torch devices."""

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
        self.head: list[float] = []
        self.best: float | None = None
        self.long: deque[float] = deque(maxlen=2 * cfg.window)
        self.spikes = _Events(cfg.window)
        self.plateau_reported = False

    @property
    def initial(self) -> float | None:
        return statistics.median(self.head) if self.head else None

    def observe(self, step: int, loss: float) -> list[Verdict]:
        cfg, out = self.cfg, []
        if len(self.head) < _HEAD:
            self.head.append(loss)
        l0 = self.initial
        assert l0 is not None
        if len(self.history) >= _min_history(cfg):
            med, sigma = robust(self.history)
            jump = loss - med
            ev = {"step": step, "loss": loss, "median": med, "robust_sigma": sigma, "initial_loss": l0}
            if jump > (cfg.spike_extreme - 1) * max(abs(med), abs(l0)):
                out.append(Verdict("training.loss_spike", "fail", f"loss {loss:.4g} at step {step} is more than "
                                   f"{cfg.spike_extreme:g}× its recent median {med:.4g}", loss,
                                   cfg.spike_extreme * max(abs(med), abs(l0)), ev))
            elif jump > cfg.spike_z * sigma and jump > (cfg.spike_ratio - 1) * abs(med) \
                    and jump > cfg.spike_floor * abs(l0):
                count = self.spikes.add(step)
                if count >= cfg.spike_repeats:
                    out.append(Verdict("training.loss_spike", "fail", f"{count} separate loss spikes within "
                                       f"{cfg.window} steps (last: {loss:.4g} at step {step}, median {med:.4g})",
                                       count, cfg.spike_repeats, {**ev, "spike_steps": list(self.spikes.steps)}))
        self.history.append(loss)
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
        if step >= cfg.plateau_steps and not self.plateau_reported and cfg.baseline_loss is not None \
                and self.best >= cfg.baseline_loss * (1 - cfg.baseline_margin):
            self.plateau_reported = True  # no better than a constant: the inputs teach the model nothing
            out.append(Verdict("training.loss_plateau", "fail", f"after {step} steps the loss (best rolling median "
                               f"{self.best:.4g}) is no better than predicting a constant ({cfg.baseline_loss:.4g}): "
                               "the model learns nothing from its inputs", self.best,
                               cfg.baseline_loss * (1 - cfg.baseline_margin),
                               {"step": step, "best_median": self.best, "baseline_loss": cfg.baseline_loss}))
        if step >= cfg.plateau_steps and not self.plateau_reported \
                and l0 - self.best < cfg.plateau_min_improvement * abs(l0):
            self.plateau_reported = True
            out.append(Verdict("training.loss_plateau", "warn", f"after {step} steps the loss's best rolling "
                               f"median {self.best:.4g} is not {cfg.plateau_min_improvement:.0%} below the "
                               f"initial {l0:.4g}", self.best, l0 - cfg.plateau_min_improvement * abs(l0),
                               {"step": step, "best_median": self.best, "initial_loss": l0}))
        return out


class GradJudge:
    """Exploding (total and per parameter), vanishing (per weight, sustained) and accumulating gradients."""

    def __init__(self, cfg: GuardConfig, names: list[str], is_weight: list[bool]) -> None:
        self.cfg, self.names = cfg, names
        self.history: deque[float] = deque(maxlen=cfg.window)
        self.head: list[float] = []
        self.layers = torch.full((cfg.window, len(names)), float("nan"), dtype=torch.float64)
        self.filled = 0
        self.is_weight = torch.tensor(is_weight, dtype=torch.bool)
        self.vanishing = torch.zeros(len(names), dtype=torch.int64)
        self.vanish_reported = False
        self.bursts = _Events(cfg.window)
        self.unreset = 0  # consecutive steps whose gradients were the very tensors of the step before

    def observe(self, step: int, total: float, per: torch.Tensor, same_grads: bool) -> list[Verdict]:
        """`per`: this step's gradient norm of every parameter, NaN where it had no gradient."""
        cfg, out = self.cfg, []
        if len(self.head) < _HEAD:
            self.head.append(total)
        g0 = statistics.median(self.head)
        if len(self.history) >= _min_history(cfg):
            med = statistics.median(self.history)
            lmed = torch.nanmedian(self.layers[: self.filled], dim=0).values
            ref = max(med, cfg.explode_floor * g0)  # a converged model's tiny gradients make any batch look big
            hot = (per > cfg.explode_factor * lmed) & (per > ref)  # one parameter, when it matters for the total
            ev = {"step": step, "grad_norm": total, "median": med, "initial_grad_norm": g0,
                  "layers": self._top(per / lmed, hot)}
            if total > cfg.explode_extreme * max(med, g0):
                out.append(Verdict("training.exploding_gradients", "fail", f"gradient norm {total:.4g} at step "
                                   f"{step} is more than {cfg.explode_extreme:g}× its recent median {med:.4g}",
                                   total, cfg.explode_extreme * max(med, g0), ev))
            elif total > cfg.explode_factor * ref or bool(hot.any()):
                count = self.bursts.add(step)
                if count >= cfg.explode_repeats:
                    out.append(Verdict("training.exploding_gradients", "fail", f"{count} separate gradient bursts (>"
                                       f"{cfg.explode_factor:g}× the rolling median) within {cfg.window} steps",
                                       count, cfg.explode_repeats, {**ev, "burst_steps": list(self.bursts.steps)}))
        self.history.append(total)
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


class ProbeJudge:
    """The sampled probes: update/weight ratio, activations, predictions, frozen parameters."""

    def __init__(self, cfg: GuardConfig) -> None:
        self.cfg = cfg
        self.streaks: dict[str, int] = {}
        self.reported: set[str] = set()
        self.update_ratios: deque[float] = deque(maxlen=cfg.window)

    def _streak(self, key: str, hit: bool) -> bool:
        """True once `key` has hit on `probe_repeats` consecutive probes (and only the first time)."""
        self.streaks[key] = self.streaks.get(key, 0) + 1 if hit else 0
        if self.streaks[key] >= self.cfg.probe_repeats and key not in self.reported:
            self.reported.add(key)
            return True
        return False

    def update_ratio(self, step: int, ratio: float, per_layer: dict[str, float]) -> list[Verdict]:
        cfg = self.cfg
        self.update_ratios.append(ratio)
        ev = {"step": step, "update_ratio": ratio, "recent": list(self.update_ratios)[-5:],
              "layers": dict(sorted(per_layer.items(), key=lambda kv: -kv[1])[:5])}
        if self._streak("update_high", ratio > cfg.update_ratio_high):
            return [Verdict("training.update_ratio", "warn", f"update/weight ratio {ratio:.3g} above "
                            f"{cfg.update_ratio_high:g} on {cfg.probe_repeats} probes: the learning rate is too "
                            "large", ratio, cfg.update_ratio_high, ev)]
        if self._streak("update_low", ratio < cfg.update_ratio_low):
            return [Verdict("training.update_ratio", "warn", f"update/weight ratio {ratio:.3g} below "
                            f"{cfg.update_ratio_low:g} on {cfg.probe_repeats} probes: nothing is learnt",
                            ratio, cfg.update_ratio_low, ev)]
        return []

    def activations(self, step: int, fractions: dict[str, tuple[str, float]]) -> list[Verdict]:
        """`fractions`: module → ('dead' | 'saturated', share of dead units / saturated outputs)."""
        cfg, hits = self.cfg, {"dead": {}, "saturated": {}}
        for name, (kind, share) in fractions.items():
            limit = cfg.dead_fraction if kind == "dead" else cfg.saturated_fraction
            if self._streak(f"{kind}:{name}", share >= limit):
                hits[kind][name] = round(share, 4)
        out = []
        for kind, code, limit, what in (("dead", "training.dead_units", cfg.dead_fraction, "units never fire"),
                                        ("saturated", "training.saturated_activations", cfg.saturated_fraction,
                                         "outputs are saturated")):
            if hits[kind]:
                worst = max(hits[kind].values())
                # a layer whose every unit is dead passes nothing on: the network cannot recover (a fail)
                fatal = kind == "dead" and worst >= 1.0
                out.append(Verdict(code, "fail" if fatal else "warn", f"in {', '.join(list(hits[kind])[:5])}, up "
                                   f"to {worst:.0%} of {what} on {cfg.probe_repeats} sampled batches"
                                   + ("; no signal passes that layer, so training cannot recover" if fatal else ""),
                                   worst, limit, {"step": step, "layers": hits[kind]}))
        return out

    def predictions(self, step: int, spread: float, scale: float, target_spread: float, target_scale: float,
                    regression: bool) -> list[Verdict]:
        cfg, out = self.cfg, []
        ev = {"step": step, "prediction_std": spread, "prediction_mean_abs": scale, "target_std": target_spread,
              "target_mean_abs": target_scale, "regression": regression}
        reference = target_spread if regression else scale
        if self._streak("collapse", target_spread > 0 and spread <= cfg.collapse_ratio * reference):
            out.append(Verdict("training.prediction_collapse", "warn", f"predictions barely vary across the batch "
                               f"(std {spread:.3g}) while the targets do (std {target_spread:.3g})", spread,
                               cfg.collapse_ratio * reference, ev))
        size = target_scale + target_spread
        if self._streak("explosion", regression and size > 0 and scale > cfg.explosion_ratio * size):
            out.append(Verdict("training.prediction_explosion", "fail", f"mean |prediction| {scale:.3g} is more "
                               f"than {cfg.explosion_ratio:g}× the targets' size {size:.3g}", scale,
                               cfg.explosion_ratio * size, ev))
        return out


class OverfitJudge:
    """A train/validation gap that widens while train improves and validation is past its best."""

    def __init__(self, cfg: GuardConfig) -> None:
        self.cfg = cfg
        self.history: list[tuple[float, float]] = []  # (train, val), lower is better
        self.reported = False

    def observe(self, train: float, val: float) -> list[Verdict]:
        self.history.append((train, val))
        n = self.cfg.overfit_evals
        recent = self.history[-(n + 1):]
        if self.reported or len(recent) < n + 1:
            return []
        gaps = [v - t for t, v in recent]
        widening = all(b > a for a, b in itertools.pairwise(gaps))
        best_val = min(v for _, v in self.history)
        if not (widening and recent[-1][0] < recent[0][0] and val > best_val):
            return []
        self.reported = True
        return [Verdict("training.overfitting", "warn", f"the train/validation gap widened on {n} validations in "
                        f"a row (now {gaps[-1]:.4g}) while validation is past its best {best_val:.4g}",
                        gaps[-1], gaps[0], {"evaluations": len(self.history), "gaps": gaps,
                                            "best_validation": best_val})]
