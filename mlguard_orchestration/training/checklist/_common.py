"""What every preflight item shares: the caller's setup (read-only), the record items write findings and notes
to, the (inputs, targets) batch, and small helpers for batches, losses and messages."""

from __future__ import annotations

import math
import random
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from mlguard_orchestration.report import Cause, Finding, Severity

Task = Literal["classification", "regression"]
Mode = Literal["index", "elementwise", "regression"]

OVERFIT_LR = 1e-2  # Adam: the reference optimizer (and the default when no make_optimizer is given)
_INPUT_KEYS = ("x", "input", "inputs", "features")
_TARGET_KEYS = ("y", "target", "targets", "label", "labels")
_MAX_NAMES = 10


class BatchError(ValueError):
    """A batch that is not (inputs, targets) tensors."""


class Skip(Exception):
    """An item that cannot run (its reason goes to the notes)."""


@dataclass
class Batch:
    x: Tensor
    y: Tensor


@dataclass
class Setup:
    """What the caller gave preflight. Items read it; only the loader generators' states are restored."""

    build_model: Callable[[], nn.Module]
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    loader: Iterable[Any]
    make_optimizer: Callable[[Iterable[nn.Parameter]], Optimizer] | None = None
    make_scheduler: Callable[[Optimizer], Any] | None = None
    make_loader: Callable[[], Iterable[Any]] | None = None
    num_classes: int | None = None
    task: Task | None = None
    seed: int = 0
    overfit_steps: int = 100
    scan_batches: int = 50
    planned_steps: int | None = None
    generators: list[torch.Generator] = field(default_factory=list)
    generator_states: list[Tensor] = field(default_factory=list)

    def restore_generators(self) -> None:
        for g, s in zip(self.generators, self.generator_states, strict=True):
            g.set_state(s)

    def fresh_model(self, seed: int | None = None) -> nn.Module:
        torch.manual_seed(self.seed if seed is None else seed)
        model = self.build_model()
        if not isinstance(model, nn.Module):
            raise TypeError(f"build_model() returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def optimizer(self, model: nn.Module) -> Optimizer:
        if self.make_optimizer is not None:
            return self.make_optimizer(model.parameters())
        return reference_optimizer(model)

    def iter_loader(self) -> Iterator[Any]:
        """A fresh pass over the data (from make_loader, or the loader again); Skip for a one-shot iterator."""
        if self.make_loader is not None:
            return iter(self.make_loader())
        if isinstance(self.loader, Iterator):
            raise Skip("the loader is a one-shot iterator; pass make_loader= to re-read the data")
        return iter(self.loader)

    def infer_task(self, y: Tensor) -> Task:
        if self.task is not None:
            return self.task
        if self.num_classes is not None or loss_kind(self.loss_fn) in ("ce", "bce"):
            return "classification"
        return "regression" if y.is_floating_point() else "classification"


def reference_optimizer(model: nn.Module) -> Optimizer:
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=OVERFIT_LR)


@dataclass
class Record:
    """Findings and notes, in the order items produce them. One finding per item."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, item: str, message: str, *, severity: Severity = "fail", value: Any = None,
            threshold: Any = None, evidence: dict[str, Any] | None = None, causes: list[Cause] | None = None) -> None:
        self.findings.append(Finding(code="preflight.failed", check=f"preflight.{item}", severity=severity,
                                     message=message, value=value, threshold=threshold,
                                     evidence={"item": item, **(evidence or {})}, causes=causes or []))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def failed(self, item: str) -> bool:
        return any(f.check == f"preflight.{item}" and f.severity == "fail" for f in self.findings)


# -- RNG and loader state ---------------------------------------------------------------------------------------


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Put torch's, Python's and NumPy's global RNG states back as they were."""
    py, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch.Generators a DataLoader (or its samplers) owns, each once."""
    found: dict[int, torch.Generator] = {}
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None),
                getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        g = getattr(obj, "generator", None)
        if isinstance(g, torch.Generator):
            found.setdefault(id(g), g)
    return list(found.values())


# -- batches and losses -----------------------------------------------------------------------------------------


def split(batch: Any) -> tuple[Tensor, Tensor]:
    """(inputs, targets) of a tuple/list or dict batch; BatchError otherwise."""
    if isinstance(batch, dict):
        x = next((batch[k] for k in _INPUT_KEYS if k in batch), None)
        y = next((batch[k] for k in _TARGET_KEYS if k in batch), None)
        if x is None or y is None:
            kind, keys = ("input", _INPUT_KEYS) if x is None else ("target", _TARGET_KEYS)
            raise BatchError(f"a dict batch with keys {sorted(map(str, batch))[:10]} has no {kind} key "
                             f"({', '.join(keys)})")
    elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        raise BatchError(f"a {type(batch).__name__} batch is not an (inputs, targets) pair")
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise BatchError(f"inputs are {type(x).__name__} and targets {type(y).__name__}, not tensors")
    return x, y


def loss_kind(loss_fn: Any) -> Literal["ce", "bce", "other"]:
    if isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)):
        return "ce"
    if isinstance(loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss)):
        return "bce"
    fn = getattr(loss_fn, "__name__", "")
    if fn in ("cross_entropy", "nll_loss"):
        return "ce"
    if fn.startswith("binary_cross_entropy"):
        return "bce"
    return "other"


def device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def same(a: Tensor, b: Tensor) -> bool:
    """Bit-for-bit equal values (NaN equals NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return torch.equal(a, b)


def max_diff(a: Tensor, b: Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    return float((a.double() - b.double()).abs().nan_to_num(nan=math.inf).max()) if a.numel() else 0.0


# -- words ------------------------------------------------------------------------------------------------------


def describe(t: Tensor) -> dict[str, Any]:
    d: dict[str, Any] = {"shape": list(t.shape), "dtype": dtype(t)}
    if t.numel() and not t.is_complex() and t.dtype != torch.bool:
        f = t.detach().double()
        finite = f[torch.isfinite(f)]
        d.update(nan=int(torch.isnan(f).sum()), inf=int(torch.isinf(f).sum()))
        if finite.numel():
            d.update(min=float(finite.min()), max=float(finite.max()), abs_max=float(finite.abs().max()),
                     mean=float(finite.mean()))
    return d


def dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def shape(t: Tensor) -> str:
    return str(list(t.shape))


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def names(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMES])
    return shown + (f" and {len(items) - _MAX_NAMES} more" if len(items) > _MAX_NAMES else "")


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.8g}" for v in values) or "none"


def exc_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def where(exc: BaseException) -> dict[str, Any]:
    """The exception and the innermost frame outside torch that raised it."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/torch/" not in f.filename]
    ev: dict[str, Any] = {"exception": type(exc).__name__, "error": str(exc)[:1000]}
    if frames:
        f = frames[-1]
        ev["raised_at"] = f"{f.filename}:{f.lineno} in {f.name}"
    return ev
