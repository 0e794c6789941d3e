"""Turning what a gate task hands over into aligned arrays: predictions, targets and slices given as values or
as paths read in row order; labels, scores and probability matrices told apart per task; the evaluation
data's identity (a hash of the targets in order), so a champion is only compared on the same rows."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.gate.metrics import Prepared
from mlguard_orchestration.gate.spec import GateSpec
from mlguard_orchestration.gate.tables import is_path, read_ordered


def from_tables(spec: GateSpec, predictions: Any, targets: Any, slices: Any) -> tuple[Any, Any, Any]:
    """Predictions, targets and slices given as paths/URIs, read in row order (one read per distinct path):
    predictions from `spec.prediction_column`, targets from `spec.target_column` (default `spec.label`),
    slices from `spec.slices` (default: every other column)."""
    target_column = spec.target_column or spec.label
    named: dict[str, list[str]] = {}  # path -> the columns read from it by name
    if is_path(predictions):
        named.setdefault(str(predictions), []).append(spec.prediction_column)
    if is_path(targets):
        if target_column is None:
            raise SpecError(f"targets={str(targets)!r} is a table: say which column holds the targets with "
                            "GateSpec(target_column=…) or label=….")
        named.setdefault(str(targets), []).append(target_column)
    wanted: dict[str, list[str] | None] = dict(named)  # None: every column
    if is_path(slices):
        key = str(slices)
        wanted[key] = None if spec.slices is None else [*named.get(key, []), *spec.slices]
    read = {path: read_ordered(path, cols, f"the gate's table {path!r}") for path, cols in wanted.items()}
    if is_path(predictions):
        predictions = read[str(predictions)].column(spec.prediction_column).to_numpy()
    if is_path(targets):
        targets = read[str(targets)].column(target_column).to_numpy()
    if is_path(slices):
        table = read[str(slices)]
        if spec.slices is None:
            table = table.drop_columns([c for c in (spec.prediction_column, target_column) if c in table.column_names])
        slices = table
    return predictions, targets, slices



def as_array(obj: Any, what: str) -> np.ndarray:
    if obj is None:
        raise SpecError(f"{what} are missing: pass one value per evaluation row.")
    if hasattr(obj, "to_numpy") and not isinstance(obj, np.ndarray):
        obj = obj.to_numpy()
    elif hasattr(obj, "detach"):  # a torch tensor, without importing torch
        obj = obj.detach().cpu().numpy()
    a = np.asarray(obj)
    if a.ndim == 0 or a.shape[0] == 0:
        raise SpecError(f"{what} are empty: the gate needs at least one evaluation row.")
    return a


def prepare(spec: GateSpec, pred: np.ndarray, y: np.ndarray) -> Prepared:
    n = y.shape[0]
    if y.ndim != 1:
        raise SpecError(f"targets must be one value per row; got shape {y.shape}.")
    if pred.shape[0] != n:
        raise SpecError(f"predictions have {pred.shape[0]:,} rows but targets {n:,}: they must come from the same "
                        "evaluation rows, in the same order.")
    if spec.task == "multiclass":
        return _prepare_multiclass(pred, y)
    if pred.ndim == 2 and spec.task == "binary" and pred.shape[1] in (1, 2):
        pred = pred[:, -1]
    if pred.ndim != 1:
        raise SpecError(f"{spec.task} predictions must be one number per row (binary: or an (n, 2) probability "
                        f"matrix); got shape {pred.shape}.")
    score = _numeric(pred, "predictions")
    yf = _numeric(y, "targets")
    if not np.isfinite(yf).all():
        bad = np.flatnonzero(~np.isfinite(yf))
        raise SpecError(f"{len(bad):,} targets are NaN/infinite (first at row {int(bad[0])}): drop unlabeled rows "
                        "before evaluating.")
    if spec.task == "regression":
        return Prepared("regression", yf, score, None, None, False)
    values = np.unique(yf)
    if not set(values.tolist()) <= {0.0, 1.0}:
        raise SpecError(f"binary targets must be 0/1 or booleans; got values {values[:10].tolist()}. Map them, "
                        "e.g. targets == 'churned'.")
    fin = score[np.isfinite(score)]
    probabilities = bool(fin.size) and float(fin.min()) >= 0.0 and float(fin.max()) <= 1.0
    label = (score >= spec.decision_threshold).astype(np.float64)
    return Prepared("binary", yf, score, label, None, probabilities)


def _prepare_multiclass(pred: np.ndarray, y: np.ndarray) -> Prepared:
    import pandas as pd

    if pred.ndim == 2:
        k = pred.shape[1]
        if y.dtype.kind not in "iub" or (y.size and (int(y.min()) < 0 or int(y.max()) >= k)):
            raise SpecError(f"with an (n, {k}) score matrix, targets must be class indices 0..{k - 1} (the matrix's "
                            f"column order); got dtype {y.dtype}. Map labels first, e.g. "
                            "pd.Categorical(y, categories=classes).codes.")
        proba = _numeric(pred, "predictions")
        fin = proba[np.isfinite(proba).all(axis=1)]
        probabilities = bool(fin.size) and float(fin.min()) >= 0 and float(fin.max()) <= 1 and bool(
            np.allclose(fin.sum(axis=1), 1.0, atol=1e-3))
        label = np.where(np.isfinite(proba).all(axis=1), np.argmax(np.nan_to_num(proba, nan=-np.inf), axis=1), -1)
        return Prepared("multiclass", y.astype(np.int64), None, label.astype(np.int64), proba, probabilities)
    if pred.ndim != 1:
        raise SpecError(f"multiclass predictions must be labels (one per row) or an (n, k) score matrix; got "
                        f"shape {pred.shape}.")
    codes, _ = pd.factorize(np.concatenate([y.astype(object), pred.astype(object)]), use_na_sentinel=False)
    n = y.shape[0]
    return Prepared("multiclass", codes[:n].astype(np.int64), None, codes[n:].astype(np.int64), None, False)


def _numeric(a: np.ndarray, what: str) -> np.ndarray:
    try:
        return a.astype(np.float64)
    except (TypeError, ValueError):
        raise SpecError(f"{what} must be numbers; got dtype {a.dtype} (e.g. {a.ravel()[:3].tolist()}).") from None


def target_digest(y: np.ndarray) -> str:
    """The evaluation data's identity: a hash of the targets, in row order."""
    h = hashlib.blake2b(digest_size=16)
    if y.dtype.kind in "biuf":
        h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    else:
        h.update("\x1f".join(map(str, y.tolist())).encode())
    return h.hexdigest()
