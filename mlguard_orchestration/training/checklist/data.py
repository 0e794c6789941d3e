"""Preflight items about the data: the first batch, a scan of the next batches, and the loader's share of step time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mlguard_orchestration.report import Cause, cause
from mlguard_orchestration.training.checklist._common import (
    Batch,
    BatchError,
    Record,
    Setup,
    Skip,
    Task,
    describe,
    dtype,
    loss_kind,
    split,
)
from mlguard_orchestration.training.indices import IndexedLoader, dataset_indices

LOADING_WARN_SHARE, LOADING_WARN_MIN_S = 0.5, 0.010  # warn above 50% of step time and 10 ms per batch
_SHOWN = 10  # problems named in a message


@dataclass(frozen=True)
class Layout:
    """The first batch's dtypes, against which the scanned batches are compared."""

    x_dtype: torch.dtype
    y_dtype: torch.dtype


def data_batch(s: Setup, r: Record) -> dict[str, Any]:
    """The first batch: (inputs, targets) tensors, one batch size, the task's dtypes, labels in range, finite.
    Returns the finite rows (the model items run on them), the task and the batch's dtypes."""
    s.restore_generators()
    it = iter(s.loader)
    try:
        raw = next(it)
    except StopIteration:
        r.add("data_batch", "The data loader yielded no batch at all. Expected at least one (inputs, targets) "
              "batch; check the dataset's length, the sampler and drop_last.")
        return {}
    finally:
        del it  # a DataLoader's workers stop with their iterator
    try:
        x, y = split(raw)
    except BatchError as exc:
        r.add("data_batch", f"The first batch is not usable: {exc}. Expected (inputs, targets) tensors, as a "
              "tuple/list or a dict with keys like 'x'/'y'; adapt the dataset's __getitem__ or collate_fn.",
              evidence={"batch_type": type(raw).__name__})
        return {}
    task = s.infer_task(y)
    out: dict[str, Any] = {"task": task, "layout": Layout(x.dtype, y.dtype)}
    problems = _structure_problems(s, x, y, task)  # any of these makes the batch unusable for the model items
    non_finite: list[str] = []  # these only drop rows
    causes: list[Cause] = []
    evidence: dict[str, Any] = {"inputs": describe(x), "targets": describe(y), "task": task}
    bad_rows = torch.zeros(x.shape[0] if x.ndim else 0, dtype=torch.bool, device=x.device)
    for label, t in (("inputs", x), ("targets", y)):
        if not (t.is_floating_point() or t.is_complex()) or t.ndim == 0:
            continue
        nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        if nan or inf:
            rows = (~torch.isfinite(t)).reshape(t.shape[0], -1).any(dim=1)
            if rows.shape == bad_rows.shape:
                bad_rows |= rows.to(bad_rows.device)
            idx = rows.nonzero().flatten()[:20].tolist()
            non_finite.append(f"{label} hold {nan} NaN and {inf} Inf values (in {int(rows.sum())} of "
                              f"{t.shape[0]} rows, e.g. rows {idx})")
            evidence[f"{label}_non_finite_rows"] = idx
    if bad_rows.any():
        causes.append(cause("cause.corrupt_input_sample", f"{int(bad_rows.sum())} rows of the first batch hold "
                            "NaN/Inf", 0.8, {"rows": bad_rows.nonzero().flatten()[:20].tolist()}))
    if problems or non_finite:
        after = ("the model checks below ran on its finite rows only" if not problems
                 else "the model checks that need a batch were skipped")
        r.add("data_batch", "The first batch from the data loader has problems: " + "; ".join(problems + non_finite)
              + ". Expected finite (inputs, targets) tensors of one batch size and the task's dtypes; fix the "
              "dataset/transform that produces them before training (" + after + ").", evidence=evidence,
              causes=causes)
    keep = ~bad_rows
    if not problems and int(keep.sum()) > 0:
        out["batch"] = Batch(x[keep], y[keep])
    return out


def _structure_problems(s: Setup, x: Tensor, y: Tensor, task: Task) -> list[str]:
    problems: list[str] = []
    if x.ndim == 0 or y.ndim == 0:
        problems.append(f"inputs {list(x.shape)} / targets {list(y.shape)} have no batch dimension")
    elif x.shape[0] != y.shape[0]:
        problems.append(f"{x.shape[0]} input rows but {y.shape[0]} target rows (expected the same batch size)")
    elif x.shape[0] == 0:
        problems.append("the batch is empty")
    if x.is_complex() or x.dtype == torch.bool:
        problems.append(f"inputs are {dtype(x)}; expected floating point (or integer ids for embeddings)")
    if task == "classification" and not y.is_floating_point():
        problems += _label_problems(y, s.num_classes)
    elif task == "classification" and y.ndim == 1 and loss_kind(s.loss_fn) != "bce":
        problems.append(f"class labels are {dtype(y)}; expected integer class indices (torch.long): call .long() "
                        "on the targets")
    elif task == "regression" and not y.is_floating_point():
        problems.append(f"regression targets are {dtype(y)}; expected floating point: call .float() on them")
    return problems


def _label_problems(y: Tensor, num_classes: int | None) -> list[str]:
    labels = y[y != -100]  # CrossEntropyLoss's default ignore_index
    out = []
    if labels.numel() and int(labels.min()) < 0:
        out.append(f"a class label is {int(labels.min())}; labels must be 0..K-1")
    if labels.numel() and num_classes is not None and int(labels.max()) >= num_classes:
        out.append(f"a class label is {int(labels.max())} but num_classes={num_classes}; labels must be 0..K-1 "
                   "(are they 1-based?)")
    return out


def data_scan(s: Setup, r: Record, *, layout: Layout, task: Task) -> dict[str, Any]:
    """The next `scan_batches` batches: NaN/Inf values, dtypes that differ from the first batch's, class labels out
    of range. A corrupt sample is rarely in the first batch; the report names its dataset index when the loader
    is a DataLoader."""
    s.restore_generators()
    source = s.make_loader() if s.make_loader is not None else s.loader
    if s.make_loader is None and isinstance(source, Iterator):
        raise Skip("the loader is a one-shot iterator; pass make_loader= to re-read the data")
    loader = IndexedLoader(source)
    problems: list[str] = []
    corrupt: list[dict[str, Any]] = []
    scanned = rows = 0
    for n, raw in enumerate(loader):
        if n > s.scan_batches:
            break
        if n == 0:
            continue  # preflight.data_batch judged the first batch
        scanned += 1
        try:
            x, y = split(raw)
        except BatchError as exc:
            problems.append(f"batch {n}: {exc}")
            continue
        rows += int(x.shape[0]) if x.ndim else 0
        for label, t, first in (("inputs", x, layout.x_dtype), ("targets", y, layout.y_dtype)):
            if t.dtype != first:
                problems.append(f"batch {n}: {label} are {dtype(t)} where the first batch's were "
                                f"{str(first).removeprefix('torch.')}")
            if (t.is_floating_point() or t.is_complex()) and t.ndim and not bool(torch.isfinite(t).all()):
                bad = (~torch.isfinite(t)).reshape(t.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
                at = dataset_indices(bad, loader.last)
                corrupt.append({"batch": n, "rows": bad[:20], "dataset_indices": (at or [])[:20], "in": label})
                problems.append(f"batch {n}: {label} hold NaN/Inf in {len(bad)} row(s) "
                                + (f"(dataset indices {at[:5]})" if at else f"(rows {bad[:5]} of the batch)"))
        if task == "classification" and not y.is_floating_point():
            problems += [f"batch {n}: {p}" for p in _label_problems(y, s.num_classes)]
    r.note(f"data scan: {scanned} batches after the first ({rows} rows)"
           + ("" if loader.tracks else "; dataset indices unknown (not a DataLoader)"))
    if not problems:
        return {}
    causes = [cause("cause.corrupt_input_sample", f"NaN/Inf in {sum(len(c['rows']) for c in corrupt)} row(s) of "
                    f"{len(corrupt)} batch(es) after the first" + (
                        f", dataset indices {[i for c in corrupt for i in c['dataset_indices']][:10]}"
                        if any(c["dataset_indices"] for c in corrupt) else ""), 0.85,
                    {"batches": corrupt[:10]})] if corrupt else []
    r.add("data_scan", f"Scanning {scanned} batches after the first found {len(problems)} problem(s): "
          + "; ".join(problems[:_SHOWN]) + (f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else "")
          + ". Expected every batch finite and of the first batch's dtypes; fix or filter those samples in the "
          "dataset before training.", value=len(problems), threshold=0,
          evidence={"batches_scanned": scanned, "problems": problems[:50], "non_finite": corrupt[:20]},
          causes=causes)
    return {}


def data_loading(s: Setup, r: Record, *, timing: dict[str, float]) -> dict[str, Any]:
    """The share of step time spent waiting for the loader, from the determinism runs' timing (always a note)."""
    if not timing.get("steps"):
        raise Skip("no timed training steps (preflight.determinism did not run)")
    per, compute, n = timing["load_s"], timing["compute_s"], int(timing["steps"])
    share = per / (per + compute) if per + compute > 0 else 0.0
    r.note(f"data loading: {share:.0%} of step time ({per * 1000:.2f} ms loading vs {compute * 1000:.2f} ms compute "
           f"per step, median of {n} step{'s' if n != 1 else ''}; first batch {timing['first_load_s'] * 1000:.1f} ms)")
    if share > LOADING_WARN_SHARE and per > LOADING_WARN_MIN_S:
        r.add("data_loading", f"Waiting for the data loader took {share:.0%} of each training step "
              f"({per * 1000:.1f} ms per batch vs {compute * 1000:.1f} ms of forward/backward/step). "
              f"Expected below {LOADING_WARN_SHARE:.0%}: the accelerator would sit idle. Use more num_workers, "
              "pin_memory, persistent_workers, or move decoding/augmentation off the training path. (Measured on "
              "the preflight's model and device; the real job's compute may differ.)", severity="warn",
              value=round(share, 3), threshold=LOADING_WARN_SHARE,
              evidence={"load_s_per_batch": per, "compute_s_per_step": compute, "steps": n,
                        "first_batch_s": timing["first_load_s"]})
    return {}
