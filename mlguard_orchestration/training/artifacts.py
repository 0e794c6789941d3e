"""The repro artifact a stop writes: enough to reproduce the failing step without re-running the job.

One `torch.save` file per stop, in `GuardConfig.artifact_dir` or, by default, `<tempdir>/mlguard-training/`:
the step, the finding's code and message, the batch positions and dataset indices of the offending samples (all of
the batch when none were singled out), their tensors (on CPU; the whole batch only when it is small), the module
that produced the NaN/Inf and the step the restored weights are from. Writing it never fails the guard."""

from __future__ import annotations

import logging
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from mlguard_orchestration.training.batches import batch_size, take, tensors, to_cpu

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 16 * 2**20  # a whole batch is saved only below this size


def default_dir() -> Path:
    return Path(tempfile.gettempdir()) / "mlguard-training"


def write_repro(directory: Path | None, guard: str, *, step: int, code: str, message: str, batch: Any,
                positions: list[int] | None, dataset_indices: list[int] | None, weights_step: int | None,
                module: str | None = None) -> str | None:
    """Write the artifact and return its path (None when there is nothing to write or writing failed)."""
    if batch is None and not dataset_indices:
        return None
    target = Path(directory) if directory is not None else default_dir()
    n = batch_size(batch) if batch is not None else None
    payload: dict[str, Any] = {"step": step, "code": code, "message": message, "weights_step": weights_step,
                               "module": module, "batch_positions": positions, "dataset_indices": dataset_indices,
                               "batch_size": n}
    if batch is not None and n is not None:
        if positions:
            payload["samples"] = to_cpu(take(batch, positions, n))
        elif sum(t.numel() * t.element_size() for t in tensors(batch)) <= MAX_BATCH_BYTES:
            payload["samples"] = to_cpu(batch)
    try:
        target.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S-%fZ")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", guard)[:60] or "training"
        path = target / f"{safe}-step{step}-{stamp}.pt"
        torch.save(payload, path)
        return str(path)
    except Exception as exc:  # noqa: BLE001 - a diagnosis must not fail the guard
        log.warning("could not write the repro artifact to %s: %s", target, exc)
        return None


__all__ = ["MAX_BATCH_BYTES", "default_dir", "write_repro"]
