"""Fail-fast preflight: a checklist of cheap checks on a tiny slice of the real job, before the expensive training.

`preflight(build_model, loss_fn, loader)` runs the items of `ITEMS` in order. Each item is declared once — its
name, its function, the values it needs from earlier items, the values it returns — and grouped by concern:

- data        data_batch     the first batch: (inputs, targets) tensors, one batch size, the task's dtypes (integer
                             class labels, floating regression targets), labels in range, no NaN/Inf (the model
                             items then run on its finite rows);
              data_scan      the next `scan_batches` batches: NaN/Inf, dtypes unlike the first batch's, labels out of
                             range — naming dataset indices when the loader is a DataLoader;
- model       model_build    build_model() returns an nn.Module instead of raising;
              output_shape   the output matches the target (the [N,1]-vs-[N] broadcast in MSE, a class-count
                             mismatch) and loss_fn returns a scalar;
              initial_loss   plausible at initialisation: ≈ log K for K classes, the order of predicting the mean;
              gradient_flow  one backward reaches every trainable parameter, finite and non-zero;
- fit         overfit_batch  the model memorises 16 samples (optimizer-aware: see fit.py);
              lr_schedule    `make_scheduler` stepped over `planned_steps`: no learning rate reaching 0 long before
                             the end, none far above its base, no scheduler raising mid-run;
- checkpoint  checkpoint     state_dict → torch.save → load into a fresh build gives bit-identical outputs;
- determinism determinism    two short runs from one seed give identical losses; the data order does not follow
                             the global torch RNG (unseeded DataLoader shuffle/workers);
- data        data_loading   the share of step time spent waiting for the loader (always in `report.notes`).

Each failing item is one `preflight.failed` finding whose `check` is `preflight.<item>`, saying what was measured,
what was expected and what to do. An item whose needed value is missing (its producer failed or was skipped) is
skipped, with the root reason in the notes. Every budget is in steps or batches, never in seconds, so verdicts do
not depend on the machine's load. Preflight leaves the caller's RNG states (torch, random, numpy) and the loader's
generators as it found them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn
from torch.optim import Optimizer

from mlguard_orchestration.report import Report
from mlguard_orchestration.training.checklist import checkpoint as _checkpoint
from mlguard_orchestration.training.checklist import data as _data
from mlguard_orchestration.training.checklist import determinism as _determinism
from mlguard_orchestration.training.checklist import fit as _fit
from mlguard_orchestration.training.checklist import model as _model
from mlguard_orchestration.training.checklist._common import (
    Record,
    Setup,
    Skip,
    Task,
    exc_text,
    loader_generators,
    preserved_rng,
    where,
)

Concern = Literal["data", "model", "fit", "checkpoint", "determinism"]


@dataclass(frozen=True)
class Item:
    """One preflight check. `run(setup, record, **values)` gets `needs` (all present, else the item is skipped)
    and `uses` (None when absent) by name, and returns a dict of values named in `returns`."""

    name: str
    concern: Concern
    run: Callable[..., dict[str, Any]]
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()


ITEMS: tuple[Item, ...] = (
    Item("data_batch", "data", _data.data_batch, returns=("batch", "task", "layout")),
    Item("data_scan", "data", _data.data_scan, needs=("layout", "task")),
    Item("model_build", "model", _model.model_build, returns=("model",)),
    Item("output_shape", "model", _model.output_shape, needs=("model", "batch"),
         returns=("on_device", "output", "loss", "mode", "differentiable")),
    Item("initial_loss", "model", _model.initial_loss, needs=("on_device", "output", "loss", "mode"),
         returns=("initial_loss",)),
    Item("gradient_flow", "model", _model.gradient_flow, needs=("model", "on_device", "loss")),
    Item("overfit_batch", "fit", _fit.overfit_batch, needs=("on_device", "mode", "differentiable"),
         uses=("initial_loss",), returns=("trained",)),
    Item("lr_schedule", "fit", _fit.lr_schedule, needs=("model",)),
    Item("checkpoint", "checkpoint", _checkpoint.checkpoint, needs=("on_device",), uses=("trained",)),
    Item("determinism", "determinism", _determinism.determinism, needs=("model", "differentiable"),
         returns=("timing",)),
    Item("data_loading", "data", _data.data_loading, needs=("timing",)),
)


def preflight(build_model: Callable[[], nn.Module], loss_fn: Callable[[Tensor, Tensor], Tensor],
              loader: Iterable[Any], *, make_optimizer: Callable[[Iterable[nn.Parameter]], Optimizer] | None = None,
              make_scheduler: Callable[[Optimizer], Any] | None = None, planned_steps: int | None = None,
              num_classes: int | None = None, task: Task | None = None, seed: int = 0, overfit_steps: int = 100,
              scan_batches: int = 50, name: str = "preflight",
              make_loader: Callable[[], Iterable[Any]] | None = None) -> Report:
    """Run the preflight items and return a Report (pass, warn or fail); never raises for a broken model or loader.

    `loader` yields (inputs, targets) pairs (tuples/lists, or dicts with keys such as 'x'/'y', 'input'/'target').
    `make_loader` builds a fresh loader; give it when `loader` is a one-shot iterator, so the items that re-read the
    data can. `make_optimizer(params)` is the job's optimizer, `make_scheduler(optimizer)` its learning-rate
    schedule, previewed over `planned_steps` calls of scheduler.step() (default: one pass over the loader). `task`
    is inferred when not given: classification when `num_classes` is given, the loss is a cross-entropy/NLL/BCE,
    or the targets are integers; regression otherwise."""
    started = time.perf_counter()
    setup = Setup(build_model, loss_fn, loader, make_optimizer=make_optimizer, make_scheduler=make_scheduler,
                  make_loader=make_loader, num_classes=num_classes, task=task, seed=seed, overfit_steps=overfit_steps,
                  scan_batches=scan_batches, planned_steps=planned_steps, generators=loader_generators(loader))
    setup.generator_states = [g.get_state() for g in setup.generators]
    record = Record()
    try:
        with preserved_rng():
            ran = run_items(ITEMS, setup, record)
    finally:
        setup.restore_generators()
    return Report(guard=name, status=Report.status_of(record.findings),
                  duration_s=round(time.perf_counter() - started, 3), checks_run=len(ran), findings=record.findings,
                  notes=record.notes)


def run_items(items: tuple[Item, ...], setup: Setup, record: Record) -> list[str]:
    """Run `items` in order, passing each the values it declared; returns the names of the items that ran."""
    values: dict[str, Any] = {}
    producer = {value: item.name for item in items for value in item.returns}
    skipped: dict[str, str] = {}  # item -> the root reason
    ran: list[str] = []
    for item in items:
        missing = [v for v in item.needs if v not in values]
        if missing:
            source = producer.get(missing[0], missing[0])
            skipped[item.name] = skipped.get(source, f"{source} did not pass")
            continue
        kwargs = {v: values[v] for v in item.needs} | {v: values.get(v) for v in item.uses}
        try:
            produced = item.run(setup, record, **kwargs)
        except Skip as why:
            skipped[item.name] = str(why)
            continue
        except Exception as exc:  # noqa: BLE001 - user code raising is a finding, not a traceback
            ran.append(item.name)
            record.add(item.name, f"The {item.name.replace('_', ' ')} check raised {exc_text(exc)}. Expected it to "
                       "run through; fix the code at the place the evidence names.", evidence=where(exc))
            continue
        ran.append(item.name)
        unexpected = set(produced) - set(item.returns)
        if unexpected:
            raise AssertionError(f"preflight item {item.name} returned undeclared values {sorted(unexpected)}")
        values.update({k: v for k, v in produced.items() if v is not None})
    by_reason: dict[str, list[str]] = {}
    for item_name, reason in skipped.items():
        by_reason.setdefault(reason, []).append(item_name)
    for reason, names in by_reason.items():
        record.note(f"skipped {', '.join(names)}: {reason}")
    if not ran:
        record.note("no preflight item could run")
    return ran


__all__ = ["ITEMS", "Item", "preflight", "run_items"]
