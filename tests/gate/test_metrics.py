"""The gate's metrics agree with hand-computed values and with naive per-slice implementations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import mlguard_orchestration.gate.metrics as m


def _binary(score, y) -> m.Prepared:
    s, t = np.asarray(score, dtype=float), np.asarray(y, dtype=float)
    return m.Prepared("binary", t, s, (s >= 0.5).astype(float), None, bool(((s >= 0) & (s <= 1)).all()))


def _naive_auc(score: np.ndarray, y: np.ndarray) -> float:
    pos, neg = score[y == 1], score[y == 0]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_by_hand_with_and_without_ties() -> None:
    assert m.overall("auc", _binary([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])) == pytest.approx(0.75)
    # pairs (pos, neg): (0.5, 0.5) is a tie worth 1/2, the other three are wins: 3.5 / 4
    assert m.overall("auc", _binary([0.5, 0.5, 0.2, 0.8], [1, 0, 0, 1])) == pytest.approx(0.875)
    assert m.overall("auc", _binary([0.3, 0.3, 0.3, 0.3], [1, 0, 1, 0])) == pytest.approx(0.5)


def test_auc_is_undefined_for_one_class() -> None:
    assert math.isnan(m.overall("auc", _binary([0.2, 0.7], [1, 1])))


def test_log_loss_clips_certain_mistakes() -> None:
    # p=1.0 for a positive costs ~0; p=0.0 for a positive is clipped to 1e-15: -log(1e-15) = 34.5388
    got = m.overall("log_loss", _binary([1.0, 0.0], [1, 1]))
    assert got == pytest.approx(-math.log(1e-15) / 2, rel=1e-9)
    assert math.isfinite(got)
    assert m.overall("log_loss", _binary([0.8, 0.3], [1, 0])) == pytest.approx(
        -(math.log(0.8) + math.log(0.7)) / 2)


def test_accuracy_rmse_mae_by_hand() -> None:
    assert m.overall("accuracy", _binary([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0])) == pytest.approx(0.5)
    reg = m.Prepared("regression", np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0]), None, None, False)
    assert m.overall("rmse", reg) == pytest.approx(math.sqrt((1 + 0 + 9) / 3))
    assert m.overall("mae", reg) == pytest.approx(4 / 3)


def test_grouped_metrics_equal_per_group_computation() -> None:
    rng = np.random.default_rng(0)
    n = 600
    codes = rng.integers(0, 5, n)
    y = (rng.random(n) < 0.3).astype(float)
    score = np.round(rng.random(n) * 0.5 + 0.4 * y, 2)  # rounded: many ties, inside and across groups
    p = _binary(score, y)
    for name in ("auc", "accuracy", "log_loss"):
        g = m.compute(name, p, codes, 5)
        for k in range(5):
            sel = codes == k
            expected = _naive_auc(score[sel], y[sel]) if name == "auc" else m.overall(name, p.subset(sel))
            assert g.value[k] == pytest.approx(expected, rel=1e-9), (name, k)
            assert g.size[k] == sel.sum()


def test_optimistic_bounds_are_on_the_right_side_and_shrink_with_size() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(4000) < 0.5).astype(float)
    score = np.clip(0.5 * y + rng.normal(0.25, 0.3, 4000), 0, 1)
    p = _binary(score, y)
    codes = np.r_[np.zeros(100, int), np.ones(3900, int)]
    for name in ("auc", "accuracy"):
        g = m.compute(name, p, codes, 2)
        assert (g.optimistic >= g.value).all()
        assert g.optimistic[0] - g.value[0] > g.optimistic[1] - g.value[1]  # the small group is less certain
    g = m.compute("log_loss", p, codes, 2)
    assert (g.optimistic <= g.value).all()


def test_multiclass_auc_is_the_macro_one_vs_rest_mean() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    proba = rng.dirichlet([1, 1, 1], 300) + 0.6 * np.eye(3)[y]
    proba /= proba.sum(axis=1, keepdims=True)
    p = m.Prepared("multiclass", y, None, proba.argmax(axis=1), proba, True)
    expected = np.mean([_naive_auc(proba[:, c], (y == c).astype(float)) for c in range(3)])
    assert m.overall("auc", p) == pytest.approx(expected)
    assert m.overall("accuracy", p) == pytest.approx(float((proba.argmax(axis=1) == y).mean()))


def test_correlation_of_constant_predictions_is_undefined() -> None:
    assert math.isnan(m.correlation(np.ones(10), np.arange(10.0)))
    assert m.correlation(np.arange(10.0), np.arange(10.0) * 2 + 1) == pytest.approx(1.0)
