"""The judges of sampled evidence: the probes (every `sample_every` steps, and the first `watch_first` steps) and
the validations the user reports.

Probe rules compare the update with the weights, count dead and saturated units, and compare predictions with
targets. The first steps' probes judge only the absolute rules (an update larger than the weights, a layer none of
whose units fire); the streak rules (probe_repeats probes in a row) were calibrated on the regular probes."""

from __future__ import annotations

import itertools
from collections import deque

from mlguard_orchestration.training.causes._common import GRAD_WEIGHT_HIGH
from mlguard_orchestration.training.config import GuardConfig
from mlguard_orchestration.training.judges import Verdict


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

    def update_ratio(self, step: int, ratio: float, per_layer: dict[str, float],
                     grad_weight: float | None = None, early: bool = False) -> list[Verdict]:
        """`ratio`: update norm / weight norm over the non-zero weight matrices; `grad_weight`: gradient norm /
        weight norm over the same, which says whether the gradient or the step size made the update extreme.
        `early` probes (the first steps) judge only the extreme update: the first steps of Adam or of a warm-up
        are unlike the rest of training, and the streak rules were calibrated on the regular probes."""
        cfg = self.cfg
        self.update_ratios.append(ratio)
        ev = {"step": step, "update_ratio": ratio, "recent": list(self.update_ratios)[-5:],
              "layers": dict(sorted(per_layer.items(), key=lambda kv: -kv[1])[:5]), "grad_weight_ratio": grad_weight}
        if ratio > cfg.update_ratio_extreme and "extreme" not in self.reported:
            self.reported.add("extreme")
            exploding = grad_weight is not None and grad_weight > GRAD_WEIGHT_HIGH
            code = "training.exploding_gradients" if exploding else "training.update_ratio"
            why = (f"the gradient norm is {grad_weight:.3g}× the weights' norm" if exploding else
                   "the step size is too large for these gradients")
            return [Verdict(code, "fail", f"the update at step {step} is {ratio:.3g}× the size of the weights "
                            f"(above {cfg.update_ratio_extreme:g}): {why}; the update was undone", ratio,
                            cfg.update_ratio_extreme, ev)]
        if early:
            return []
        if self._streak("update_high", ratio > cfg.update_ratio_high):
            return [Verdict("training.update_ratio", "warn", f"update/weight ratio {ratio:.3g} above "
                            f"{cfg.update_ratio_high:g} on {cfg.probe_repeats} probes: the learning rate is too "
                            "large", ratio, cfg.update_ratio_high, ev)]
        if self._streak("update_low", ratio < cfg.update_ratio_low):
            return [Verdict("training.update_ratio", "warn", f"update/weight ratio {ratio:.3g} below "
                            f"{cfg.update_ratio_low:g} on {cfg.probe_repeats} probes: nothing is learnt",
                            ratio, cfg.update_ratio_low, ev)]
        return []

    def activations(self, step: int, fractions: dict[str, tuple[str, float]],
                    producers: dict[str, str] | None = None, early: bool = False) -> list[Verdict]:
        """`fractions`: module → ('dead' | 'saturated', share of dead units / saturated outputs); `producers`:
        module → the module whose output it received (e.g. the Linear before a ReLU). A layer none of whose units
        fire on `probe_repeats` probes in a row — early ones included, so a layer dead from initialisation stops
        at step 3 — passes nothing on and fails; mostly dead or saturated layers warn (regular probes only)."""
        cfg = self.cfg
        hits: dict[str, dict[str, float]] = {"dead": {}, "saturated": {}}
        producers = producers or {}
        fatal: dict[str, float] = {}
        for name, (kind, share) in fractions.items():
            if kind == "dead" and self._streak(f"dead-all:{name}", share >= 1.0):
                fatal[name] = round(share, 4)
            limit = cfg.dead_fraction if kind == "dead" else cfg.saturated_fraction
            if not early and self._streak(f"{kind}:{name}", share >= limit):
                hits[kind][name] = round(share, 4)
        if fatal:
            return [Verdict("training.dead_units", "fail", f"in {_named(fatal, producers)}, no unit fires on "
                            f"{cfg.probe_repeats} sampled batches in a row: no signal passes that layer, so training "
                            "cannot recover", 1.0, 1.0,
                            {"step": step, "layers": fatal, "producers": {n: producers[n] for n in fatal
                                                                          if n in producers}})]
        out = []
        for kind, code, limit, what in (("dead", "training.dead_units", cfg.dead_fraction, "units never fire"),
                                        ("saturated", "training.saturated_activations", cfg.saturated_fraction,
                                         "outputs are saturated")):
            if hits[kind]:
                worst = max(hits[kind].values())
                out.append(Verdict(code, "warn", f"in {_named(hits[kind], producers)}, up to {worst:.0%} of {what} "
                                   f"on {cfg.probe_repeats} sampled batches", worst, limit,
                                   {"step": step, "layers": hits[kind],
                                    "producers": {n: producers[n] for n in hits[kind] if n in producers}}))
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


def _named(layers: dict[str, float], producers: dict[str, str]) -> str:
    return ", ".join(f"{n!r} (fed by {producers[n]!r})" if n in producers else repr(n) for n in list(layers)[:5])


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
        tol = self.cfg.overfit_min_worsening
        worse = val - best_val > tol * abs(best_val) and gaps[-1] - gaps[0] > tol * max(abs(gaps[0]), abs(best_val))
        if not (widening and recent[-1][0] < recent[0][0] and worse):
            return []
        self.reported = True
        return [Verdict("training.overfitting", "warn", f"the train/validation gap widened on {n} validations in "
                        f"a row (now {gaps[-1]:.4g}) while validation is past its best {best_val:.4g}",
                        gaps[-1], gaps[0], {"evaluations": len(self.history), "gaps": gaps,
                                            "best_validation": best_val})]


__all__ = ["OverfitJudge", "ProbeJudge"]
