"""Model metrics in plain numpy, overall and per slice in one vectorised pass.

Every metric is computed per group (`codes` in 0..k-1 gives each row its slice; the overall value is the
one-group case), together with an *optimistic* confidence bound: the best value the group could plausibly
have given its size. A slice is only blamed when even that bound is bad, so tiny slices cannot fire alone.

- accuracy: share of correct labels; Wilson interval.
- auc: rank-based (Mann–Whitney U) with average ranks for ties; Hanley–McNeil standard error.
- log_loss: mean negative log-likelihood with probabilities clipped to [1e-15, 1 - 1e-15]; normal interval.
- rmse / mae: root mean squared / mean absolute error; normal interval on the mean squared / absolute error.

No ML framework is needed: one sort per slice column for AUC, `np.bincount` sums for everything else.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

MetricName = Literal["accuracy", "auc", "log_loss", "rmse", "mae"]
BUILTIN: tuple[MetricName, ...] = ("accuracy", "auc", "log_loss", "rmse", "mae")
HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "auc": True, "log_loss": False, "rmse": False,
                                     "mae": False}
BOUNDED_SCORES = frozenset({"accuracy", "auc"})  # in [0, 1], compared in absolute points
LOG_LOSS_EPS = 1e-15


@dataclass(frozen=True)
class Grouped:
    """A metric per group: its value, the group's size and the optimistic end of its confidence interval
    (the highest plausible accuracy/AUC, the lowest plausible error). NaN where undefined (e.g. AUC of a
    group with one class)."""

    value: np.ndarray
    size: np.ndarray
    optimistic: np.ndarray


@dataclass(frozen=True)
class Prepared:
    """Validated evaluation arrays, one convention per task.

    binary: `y` 0/1 floats, `score` a float per row (probability, score or 0/1 label), `label` 0/1.
    multiclass: `y` class indices, `proba` (n, k) scores when given (else None), `label` predicted class.
    regression: `y` and `score` floats."""

    task: Literal["binary", "multiclass", "regression"]
    y: np.ndarray
    score: np.ndarray | None
    label: np.ndarray | None
    proba: np.ndarray | None
    probabilities: bool  # the scores are probabilities, so log loss is defined

    @property
    def rows(self) -> int:
        return int(self.y.shape[0])

    @cached_property
    def score_order(self) -> np.ndarray:
        """Rows by ascending score: sorted once, reused by every slice column's AUC."""
        assert self.score is not None
        return np.argsort(self.score)  # ties need no stable order: they share their average rank

    def subset(self, mask: np.ndarray) -> Prepared:
        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask]

        return Prepared(self.task, self.y[mask], cut(self.score), cut(self.label), cut(self.proba),
                        self.probabilities)


def available(p: Prepared) -> list[MetricName]:
    """The built-in metrics defined for these predictions."""
    if p.task == "regression":
        return ["rmse", "mae"]
    out: list[MetricName] = ["accuracy"]
    if p.task == "binary" or p.proba is not None:
        out.append("auc")
    if p.probabilities:
        out.append("log_loss")
    return out


def compute(name: MetricName, p: Prepared, codes: np.ndarray | None = None, k: int = 1,
            z: float = 1.645) -> Grouped:
    """`name` per group (`codes` None: one group, the overall value), with optimistic bounds at `z`."""
    if codes is None:
        codes = np.zeros(p.rows, dtype=np.int64)
    if name not in available(p):
        raise ValueError(f"metric {name!r} is not defined for these {p.task} predictions; "
                         f"available: {available(p)}")
    if name == "auc":
        if p.task == "multiclass":
            return _auc_multiclass(p, codes, k, z)
        return _auc(p.score, p.y, codes, k, z, p.score_order)
    if name == "accuracy":
        assert p.label is not None  # every classification task has predicted labels
        correct = (p.label == p.y).astype(np.float64)
        n = np.bincount(codes, minlength=k).astype(np.float64)
        hits = np.bincount(codes, weights=correct, minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = hits / n
        return Grouped(acc, n, _wilson_upper(acc, n, z))
    if name == "log_loss":
        return _mean_error(_row_log_loss(p), codes, k, z, root=False)
    err = p.score - p.y  # regression
    if name == "rmse":
        return _mean_error(err * err, codes, k, z, root=True)
    return _mean_error(np.abs(err), codes, k, z, root=False)


def overall(name: MetricName, p: Prepared) -> float:
    return float(compute(name, p).value[0])


# -- implementations --------------------------------------------------------------------------------------


def _row_log_loss(p: Prepared) -> np.ndarray:
    if p.task == "multiclass":
        assert p.proba is not None
        prob = p.proba[np.arange(p.rows), p.y.astype(np.int64)]
        loss: np.ndarray = -np.log(np.clip(prob, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS))
        return loss
    assert p.score is not None
    prob = np.clip(p.score, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    loss = -(p.y * np.log(prob) + (1.0 - p.y) * np.log1p(-prob))
    return loss


def _mean_error(loss: np.ndarray, codes: np.ndarray, k: int, z: float, *, root: bool) -> Grouped:
    n = np.bincount(codes, minlength=k).astype(np.float64)
    s1 = np.bincount(codes, weights=loss, minlength=k)
    s2 = np.bincount(codes, weights=loss * loss, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
        low = np.maximum(mean - z * np.sqrt(var / np.maximum(n - 1, 1)), 0.0)
    if root:
        return Grouped(np.sqrt(mean), n, np.sqrt(low))
    return Grouped(mean, n, low)


def _wilson_upper(p: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        z2 = z * z
        centre = p + z2 / (2 * n)
        spread = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        upper: np.ndarray = np.minimum((centre + spread) / (1 + z2 / n), 1.0)
        return upper


def _auc(score: np.ndarray | None, y: np.ndarray, codes: np.ndarray, k: int, z: float,
         score_order: np.ndarray | None = None) -> Grouped:
    """AUC per group from average ranks within the group: the rows sorted by score (once per prediction
    set), then stably by group (a radix sort on small integer codes), so each group's rows are in score order."""
    assert score is not None
    n_rows = score.shape[0]
    size = np.bincount(codes, minlength=k).astype(np.float64)
    n1 = np.bincount(codes, weights=y, minlength=k)
    n0 = size - n1
    if n_rows == 0:
        nan = np.full(k, np.nan)
        return Grouped(nan, size, nan)
    order = np.argsort(score) if score_order is None else score_order
    if k > 1:
        small = codes.astype(np.int16 if k < 2**15 else np.int64)[order]
        order = order[np.argsort(small, kind="stable")]
    s, g, yy = score[order], codes[order], y[order]
    new_run = np.empty(n_rows, dtype=bool)
    new_run[0] = True
    new_run[1:] = (s[1:] != s[:-1]) | (g[1:] != g[:-1])
    run = np.cumsum(new_run) - 1
    starts = np.concatenate(([0], np.cumsum(size)[:-1])).astype(np.int64)
    rank = np.arange(1, n_rows + 1, dtype=np.float64) - starts[g]
    avg = (np.bincount(run, weights=rank) / np.bincount(run))[run]  # ties share their average rank
    rank_pos = np.bincount(g, weights=avg * yy, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_pos - n1 * (n1 + 1) / 2) / (n1 * n0)
        auc = np.where((n1 > 0) & (n0 > 0), auc, np.nan)
        q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
        var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc)) / (n1 * n0)
        upper = np.minimum(auc + z * np.sqrt(np.maximum(var, 0.0)), 1.0)
    return Grouped(auc, size, upper)


def _auc_multiclass(p: Prepared, codes: np.ndarray, k: int, z: float) -> Grouped:
    """Macro one-vs-rest AUC: the mean over classes present in the group (both sides non-empty)."""
    assert p.proba is not None
    parts = [_auc(p.proba[:, c], (p.y == c).astype(np.float64), codes, k, z) for c in range(p.proba.shape[1])]
    values = np.vstack([g.value for g in parts])
    bounds = np.vstack([g.optimistic for g in parts])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a group with no class on both sides: NaN
        return Grouped(np.nanmean(values, axis=0), parts[0].size, np.nanmean(bounds, axis=0))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant."""
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


# -- comparing two values of a metric ------------------------------------------------------------------------


def relative(metric: str) -> bool:
    return metric in HIGHER_IS_BETTER and metric not in BOUNDED_SCORES


def shortfall(metric: str, higher: bool, reference: float, value: float) -> float:
    """How much worse `value` is than `reference` (negative: better): relative for error metrics."""
    worse = (reference - value) if higher else (value - reference)
    if relative(metric):
        return worse / abs(reference) if reference else (math.inf if worse > 0 else 0.0)
    return worse


def gain(metric: str, higher: bool, champion: float, value: float) -> float | None:
    """The share of the champion's remaining error removed (bounded scores and errors only)."""
    if metric in BOUNDED_SCORES and higher and champion < 1:
        return (value - champion) / (1 - champion)
    if relative(metric) and champion > 0:
        return (champion - value) / champion
    return None


def default_slice_metric(p: Prepared) -> MetricName:
    if p.task == "regression":
        return "rmse"
    if p.task == "binary" and not is_labels(p.score):
        return "auc"
    return "accuracy"


def is_labels(score: np.ndarray | None) -> bool:
    return score is not None and bool(np.isin(score, (0.0, 1.0)).all())
