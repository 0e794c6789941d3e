"""The guard's stop path, apart from the per-step code: what a non-finite step is called, which weights are left
behind, and the repro artifact.

- `non_finite_verdict`: from the device's non-finite flag and what the locator found (the producing module, the
  samples and their dataset indices) to one fail verdict. A module that turned finite inputs into NaN/Inf makes it
  `training.non_finite_activations`; otherwise the loss or the gradients are named.
- `leave_working_weights`: an extreme update a probe caught is undone, then the newest candidate whose forward pass
  on the recent batches is finite is restored (snapshots.py); the failing batch is part of that check unless its own
  samples are the fault. Returns what was restored and the note the report carries.
- `write_stop_artifact`: the repro artifact (artifacts.py) with dataset indices when the loader was tracked.

These run once per training, on the host; reading device values here (a sync) is fine."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlguard_orchestration.training.artifacts import write_repro
from mlguard_orchestration.training.evidence import ModuleFault, SampleFault
from mlguard_orchestration.training.indices import dataset_indices
from mlguard_orchestration.training.judges import Verdict
from mlguard_orchestration.training.measure import Record
from mlguard_orchestration.training.snapshots import Restored, Snapshot, Snapshots, restore_working

_NON_FINITE = {1: "training.non_finite_gradients", 2: "training.non_finite_gradients", 3: "training.non_finite_loss"}
_FEW = 10  # a failing batch whose fault is this few samples is left out of the restored weights' check
_UNDOABLE = ("training.update_ratio", "training.exploding_gradients")


def num(x: float) -> float | str:
    """A float for the report: NaN/Inf as text, since JSON has no spelling for them."""
    return x if math.isfinite(x) else str(x)


def non_finite_verdict(record: Record, kind: int, rank: int, loss: float, total: float, *,
                       fault: ModuleFault | None, sample: SampleFault | None, distributed: bool,
                       last_good_step: int | None, scaler_skips: int) -> Verdict:
    """`kind`: 1-2 the gradients, 3 the loss (the device's flag). Fills `sample.dataset_indices`."""
    what = "loss" if kind == 3 else "gradients"
    where = f" on rank {rank}" if distributed else ""
    ev: dict[str, Any] = {"step": record.step, "loss": num(loss), "grad_norm": num(total),
                          "update_skipped": True, "last_good_step": last_good_step}
    if scaler_skips:
        ev["scaler_skips_in_a_row"] = scaler_skips
    if fault is not None:
        ev["module"] = f"{fault.name} ({fault.type}, {fault.phase})"
    if sample is not None:
        sample.dataset_indices = dataset_indices(sample.indices, record.indices)
        ev["samples"] = sample.indices[:20]
        if sample.dataset_indices is not None:
            ev["dataset_indices"] = sample.dataset_indices[:20]
    code = _NON_FINITE[kind]
    if (fault is not None and fault.phase == "forward" and not fault.name.startswith("<")
            and not (sample is not None and sample.input_non_finite)):
        code, what = "training.non_finite_activations", f"activations of {fault.name!r}"  # from finite inputs
    named = f"; dataset indices {sample.dataset_indices[:10]}" if sample is not None and sample.dataset_indices \
        else ""
    return Verdict(code, "fail", f"the {what} became non-finite at step {record.step}{where}"
                   + (f", first in module {fault.name!r}" if fault is not None else "") + named, num(loss), None, ev)


def leave_working_weights(v: Verdict, record: Record | None, step: int, skipped: bool, sample: SampleFault | None,
                          *, params: list[torch.Tensor], model: nn.Module, snaps: Snapshots,
                          recent: Iterable[Any], compute_loss: Callable[[nn.Module, Any], Any] | None,
                          forward: bool) -> tuple[Restored | None, str]:
    """Undo an extreme update, then restore the newest candidate that works; sets `weights_from_step` in the
    verdict's evidence. Returns (what was restored or None, the note for the report)."""
    undone = record is not None and record.before is not None and v.evidence.get("update_ratio") is not None \
        and v.code in _UNDOABLE
    if undone and record is not None and record.before is not None:
        with torch.no_grad():
            torch._foreach_copy_(params, record.before)
    current_step = step - 1 if skipped or undone else step
    failing = record.batch if record is not None else None
    batches = [b for b in recent if b is not None and b is not failing]
    if failing is not None and not (sample is not None and (sample.input_non_finite or len(sample.indices) <= _FEW)):
        batches.append(failing)  # the failing batch, unless its own samples are the fault
    current = Snapshot(current_step, [t.detach() for t in snaps.tensors])
    restored = restore_working(snaps, model, current, compute_loss, batches, forward=forward)
    if restored is None:
        return None, ("no weight snapshot passed the forward check on the recent batches; the weights are the "
                      "initial ones")
    v.evidence["weights_from_step"] = restored.step
    how = (f"their forward pass is finite on the last {restored.batches} batch(es)"
           if restored.verified == "forward" else "finite weights (not replayed)")
    return restored, (f"weights restored to those after step {restored.step} ({how})"
                      + (f"; the update of step {step} was undone" if undone else ""))


def write_stop_artifact(directory: Path | None, guard: str, v: Verdict, record: Record, step: int,
                        sample: SampleFault | None, fault: ModuleFault | None,
                        restored: Restored | None) -> str | None:
    positions = sample.indices if sample is not None else None
    indices = dataset_indices(positions, record.indices) if positions else record.indices
    return write_repro(directory, guard, step=step, code=v.code, message=v.message, batch=record.batch,
                       positions=positions, dataset_indices=indices,
                       weights_step=restored.step if restored else None,
                       module=fault.name if fault is not None else None)


__all__ = ["leave_working_weights", "non_finite_verdict", "num", "write_stop_artifact"]
