"""Rotating checkpoints that never hold NaN and never rotate the last healthy one away.

`Checkpoints(directory, keep=3, guard=guard).save(model, optimizer, step=step)` writes `<prefix>-<step>.pt`
atomically (a temporary file, then a rename) and records it in `<prefix>-index.json`. It refuses — raises
`NonFiniteCheckpoint` and writes nothing — when a parameter, a floating buffer or an optimizer-state tensor holds
NaN/Inf: a NaN checkpoint silently replaces the last usable one, and resuming from it fails again hours later.

A checkpoint is *healthy* when saved while the guard (if one is given) had no finding at all, warn or fail.
Rotation keeps the `keep` newest checkpoints and, in addition, the newest healthy one whenever it would otherwise
go: a run that starts to warn keeps writing checkpoints, and the last one from before the trouble survives them.
`latest(healthy=True)` finds it; `load()` restores a model (and optimizer) from one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlguard_orchestration.training.guard import TrainingGuard


class NonFiniteCheckpoint(ValueError):
    """The state to save holds NaN/Inf; nothing was written."""


@dataclass(frozen=True)
class Saved:
    step: int
    file: str
    healthy: bool
    saved_at: str


class Checkpoints:
    """Checkpoints of one run in `directory` (see the module docstring)."""

    def __init__(self, directory: str | Path, *, keep: int = 3, guard: TrainingGuard | None = None,
                 prefix: str = "checkpoint") -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.directory, self.keep, self.guard, self.prefix = Path(directory), keep, guard, prefix
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def _index(self) -> Path:
        return self.directory / f"{self.prefix}-index.json"

    def saved(self) -> list[Saved]:
        """The checkpoints on record, oldest first."""
        if not self._index.exists():
            return []
        return [Saved(**row) for row in json.loads(self._index.read_text())]

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *, step: int,
             extra: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint of `model` (and `optimizer`) after `step`; NonFiniteCheckpoint if anything is NaN/Inf."""
        bad = [name for name, t in _tensors(model, optimizer) if not bool(torch.isfinite(t).all())]
        if bad:
            raise NonFiniteCheckpoint(f"refusing to save step {step}: NaN/Inf in {', '.join(bad[:5])}"
                                      + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                                      + "; the previous checkpoints are kept")
        healthy = self.guard is None or not self.guard.report().findings
        path = self.directory / f"{self.prefix}-{step:08d}.pt"
        state = {"step": step, "model": model.state_dict(), "healthy": healthy, **(extra or {})}
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
        tmp = path.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        rows = [s for s in self.saved() if s.step != step]
        rows.append(Saved(step, path.name, healthy, datetime.now(UTC).isoformat(timespec="seconds")))
        self._write(self._rotate(rows))
        return path

    def _rotate(self, rows: list[Saved]) -> list[Saved]:
        rows = sorted(rows, key=lambda s: s.step)
        keep = rows[-self.keep:]
        healthy = [s for s in rows if s.healthy]
        if healthy and healthy[-1] not in keep:
            keep = [healthy[-1], *keep]  # never rotate the last healthy checkpoint away
        for s in rows:
            if s not in keep:
                (self.directory / s.file).unlink(missing_ok=True)
        return keep

    def _write(self, rows: list[Saved]) -> None:
        tmp = self._index.with_suffix(".json.tmp")
        tmp.write_text(json.dumps([asdict(s) for s in rows], indent=1))
        os.replace(tmp, self._index)

    def latest(self, *, healthy: bool = False) -> Path | None:
        """The newest checkpoint (the newest healthy one with healthy=True), or None."""
        rows = [s for s in self.saved() if s.healthy or not healthy]
        return self.directory / rows[-1].file if rows else None

    def load(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, path: Path | None = None,
             *, healthy: bool = False) -> int:
        """Load `path` (default: the latest, or the latest healthy) into `model` (and `optimizer`); its step."""
        path = path or self.latest(healthy=healthy)
        if path is None:
            raise FileNotFoundError(f"no {'healthy ' if healthy else ''}checkpoint in {self.directory}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        if optimizer is not None and "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        return int(state["step"])


def _tensors(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> Iterator[tuple[str, torch.Tensor]]:
    for name, p in model.named_parameters():
        yield name, p.detach()
    for name, b in model.named_buffers():
        if b.is_floating_point():
            yield name, b
    if optimizer is not None:
        for i, state in enumerate(optimizer.state.values()):
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    yield f"optimizer state {i}.{key}", value


__all__ = ["Checkpoints", "NonFiniteCheckpoint", "Saved"]
