"""Training guards for PyTorch: stop at the bad step, name the layer and the sample, keep the weights good.

torch is imported only when a guard is used, so `import mlguard_orchestration` never needs it."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "TrainingGuard": "guard", "GuardConfig": "config", "TrainingStopped": "guard",
    "locate_non_finite": "locate", "rank_causes": "causes", "preflight": "checklist",
    "TrainingEvidence": "evidence", "GuardCallback": "lightning", "GuardTrainerCallback": "huggingface",
    "Checkpoints": "checkpoints", "NonFiniteCheckpoint": "checkpoints", "IndexedLoader": "indices",
}
__all__ = ["Checkpoints", "GuardCallback", "GuardConfig", "GuardTrainerCallback", "IndexedLoader", "NonFiniteCheckpoint",
           "TrainingEvidence", "TrainingGuard", "TrainingStopped", "locate_non_finite", "preflight", "rank_causes"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
