"""Preflight item: two short runs from the same seed give identical losses, and the data order does not follow the
global torch RNG (unseeded DataLoader shuffle/workers). The first run is timed for preflight.data_loading.

Budgets are in steps, never in seconds, so a verdict does not depend on how busy the machine is. Runs whose loss
goes non-finite are not compared: a NaN says nothing about seeding (preflight.initial_loss and overfit_batch
speak to it)."""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mlguard_orchestration.report import cause
from mlguard_orchestration.training.checklist._common import (
    Batch,
    BatchError,
    Record,
    Setup,
    Skip,
    fmt,
    loader_generators,
    same,
    split,
)

STEPS = 5


@dataclass
class _Run:
    losses: list[float]
    timing: dict[str, float]


def determinism(s: Setup, r: Record, *, model: nn.Module, differentiable: bool) -> dict[str, Any]:
    if not differentiable:
        raise Skip("the loss is not differentiable (see preflight.gradient_flow)")
    device = next(model.parameters(), torch.zeros(())).device
    first = _short_run(s, STEPS, device, timed=True)
    second = _short_run(s, STEPS, device)
    out = {"timing": first.timing}
    if len(first.losses) < 2:
        r.note(f"determinism: the loader gave only {len(first.losses)} batch(es); compared those")
    if not all(math.isfinite(v) for v in first.losses + second.losses):
        r.note("determinism: not judged, the short runs' loss became NaN/Inf (see preflight.initial_loss and "
               "preflight.overfit_batch)")
        return out
    if not _same_losses(first.losses, second.losses):
        step = next((i for i, (u, v) in enumerate(zip(first.losses, second.losses, strict=False)) if u != v),
                    min(len(first.losses), len(second.losses)))
        sources = _nondeterminism_sources(s, device)
        r.add("determinism", f"Two {STEPS}-step runs with the same torch seed gave different losses, first at step "
              f"{step} ({fmt(first.losses[step:step + 1])} vs {fmt(second.losses[step:step + 1])}). Expected identical "
              "losses. Likely source: " + "; ".join(sources) + ".",
              evidence={"run_1": first.losses, "run_2": second.losses, "sources": sources},
              causes=[cause("cause.nondeterminism", sources[0], 0.8)])
    else:
        _data_order_probe(s, r)
    return out


def _data_order_probe(s: Setup, r: Record) -> None:
    """Same seed twice, then another seed: a data order that follows only the global torch RNG is unseeded."""
    a, b, c = _first_batch(s, s.seed), _first_batch(s, s.seed), _first_batch(s, s.seed + 1)
    if a is None or b is None or c is None or not _same_batch(a, b) or _same_batch(a, c):
        return
    sources = _static_sources(s.make_loader() if s.make_loader is not None else s.loader)
    if not sources:
        sources.append("the dataset, its transforms or the sampler draw from the global torch RNG (e.g. random "
                       "augmentation in the main process with num_workers=0)")
    r.add("determinism", "The first batch changes when only the global torch seed changes "
          f"(manual_seed({s.seed}) vs manual_seed({s.seed + 1})): the batches' order or content is drawn from the "
          "global RNG — " + "; ".join(sources) + ". Two identical runs still matched here, but the batches change "
          "whenever anything else consumes random numbers first (a changed model, a resumed run). Expected the order "
          "to follow a seed you own: pass generator=torch.Generator().manual_seed(seed) to the DataLoader (and a "
          "worker_init_fn when workers use random/numpy).", severity="warn", evidence={"sources": sources},
          causes=[cause("cause.nondeterminism", sources[0], 0.7)])


def _nondeterminism_sources(s: Setup, device: torch.device) -> list[str]:
    sources: list[str] = []
    seeded = _short_run(s, STEPS, device, seed_all=True), _short_run(s, STEPS, device, seed_all=True)
    if _same_losses(seeded[0].losses, seeded[1].losses):
        sources.append("Python's `random` or NumPy's RNG is used (in the dataset, a transform or the model) without "
                       "being seeded — torch.manual_seed does not seed them; seed them too, or use torch's RNG")
    if device.type == "cuda":
        if torch.backends.cudnn.benchmark:
            sources.append("torch.backends.cudnn.benchmark=True picks convolution kernels by timing; set it False")
        if not torch.backends.cudnn.deterministic:
            sources.append("torch.backends.cudnn.deterministic=False allows nondeterministic cuDNN kernels")
        if not torch.are_deterministic_algorithms_enabled():
            sources.append("nondeterministic CUDA kernels (atomic adds in scatter/index_add/embedding backward); call "
                           "torch.use_deterministic_algorithms(True)")
    loader = s.make_loader() if s.make_loader is not None else s.loader
    sources += [src for src in _static_sources(loader) if "workers" in src]
    unknown = ("unknown: the loader or model keeps state between runs (a cache, a counter, a generator that is not "
               "restarted); pass make_loader= for a fresh loader per run")
    return sources or [unknown]


def _short_run(s: Setup, steps: int, device: torch.device, *, timed: bool = False, seed_all: bool = False) -> _Run:
    torch.manual_seed(s.seed)
    if seed_all:
        random.seed(s.seed)
        np.random.seed(s.seed)
    s.restore_generators()
    model = s.fresh_model()
    opt = s.optimizer(model)
    model.train()
    losses: list[float] = []
    load: list[float] = []
    compute: list[float] = []
    it = s.iter_loader()
    for _ in range(steps):
        t0 = time.perf_counter()
        try:
            raw = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        x, y = split(raw)
        x, y = x.to(device), y.to(device)
        opt.zero_grad(set_to_none=True)
        loss = s.loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        load.append(t1 - t0)
        compute.append(time.perf_counter() - t1)
    del it
    timing: dict[str, float] = {}
    if timed and losses:
        warm = slice(1, None) if len(losses) > 1 else slice(None)  # the first batch also starts workers
        # medians per step: one step descheduled by a busy machine does not decide the share
        timing = {"load_s": statistics.median(load[warm]), "compute_s": statistics.median(compute[warm]),
                  "steps": len(load[warm]), "first_load_s": load[0]}
    return _Run(losses, timing)


def _first_batch(s: Setup, seed: int) -> Batch | None:
    torch.manual_seed(seed)
    s.restore_generators()
    try:
        it = s.iter_loader()
        x, y = split(next(it))
    except (StopIteration, BatchError):
        return None
    del it
    return Batch(x, y)


def _static_sources(loader: Any) -> list[str]:
    """What, in a DataLoader's settings, draws from the global torch RNG."""
    if not isinstance(loader, torch.utils.data.DataLoader):
        return []
    sources = []
    owned = bool(loader_generators(loader))
    samplers = [loader.sampler, getattr(loader.batch_sampler, "sampler", None)]
    if any(isinstance(smp, torch.utils.data.RandomSampler) for smp in samplers) and not owned:
        sources.append("unseeded shuffle: DataLoader(shuffle=True) without generator=")
    if loader.num_workers > 0 and loader.generator is None:
        sources.append(f"unseeded workers: num_workers={loader.num_workers} without generator=, so the workers' seeds "
                       "come from the global RNG" + ("" if loader.worker_init_fn else " and no worker_init_fn"))
    return sources


def _same_batch(a: Batch, b: Batch) -> bool:
    return a.x.shape == b.x.shape and a.y.shape == b.y.shape and same(a.x, b.x) and same(a.y, b.y)


def _same_losses(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(u == v or (math.isnan(u) and math.isnan(v)) for u, v in zip(a, b, strict=True))
