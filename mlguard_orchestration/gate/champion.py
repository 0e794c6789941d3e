"""The registered model (champion): its metrics and the identity of the data they were measured on.

A gate compares a candidate with the champion only on the same evaluation data, so the champion record keeps
the evaluation set's row count and a hash of its targets next to the metrics. `register_champion` is what the
register step calls after a passing gate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from mlguard_orchestration.errors import SpecError
from mlguard_orchestration.fingerprint import Fingerprint
from mlguard_orchestration.report import Report
from mlguard_orchestration.store import ProfileStore


class Champion(BaseModel):
    """A registered model's metrics; `eval_rows`/`eval_digest` are None when the metrics were given by hand
    (then the gate cannot verify they come from the same evaluation data, and says so)."""

    model: str
    metrics: dict[str, float]
    eval_rows: int | None = None
    eval_digest: str | None = None
    registered_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    fingerprint: Fingerprint | None = Field(None, description="The run that produced the champion.")


def register_champion(report: Report, store: ProfileStore | str | os.PathLike[str], *,
                      model: str | None = None) -> Champion:
    """Record the model a passing gate evaluated as the new champion of `model` (default: the gate's model).

    Raises SpecError when the report is not a passing gate report: registering a blocked model by accident is
    exactly what the gate exists to prevent."""
    if report.model is None:
        raise SpecError(f"report of {report.guard!r} is not a gate report (it has no model metrics); pass the "
                        "report returned by evaluate_gate(...).")
    if not report.passed:
        raise SpecError(f"gate {report.guard!r} did not pass ({report.status}): refusing to register the model. "
                        f"{report.headline()}")
    name = model or report.model.model
    if not name:
        raise SpecError(f"gate {report.guard!r} names no model: pass model='…' here or in the GateSpec.")
    champion = Champion(model=name, metrics=dict(report.model.metrics), eval_rows=report.model.eval_rows,
                        eval_digest=report.model.eval_digest, fingerprint=report.fingerprint)
    (store if isinstance(store, ProfileStore) else ProfileStore(store)).save_champion(champion)
    return champion


def resolve_champion(given: Mapping[str, float] | Champion | None, model: str | None,
                     store: ProfileStore | None) -> Champion | None:
    """The champion to compare with: the one given (a dict of metrics or a record), else the store's."""
    if isinstance(given, Champion):
        return given
    if given is not None:
        return Champion(model=model or "champion", metrics={k: float(v) for k, v in given.items()})
    if model is not None and store is not None:
        return store.load_champion(model)
    return None
