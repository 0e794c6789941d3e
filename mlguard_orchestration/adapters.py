"""What the orchestrator adapters share, so Airflow and Prefect run a guarded task through one code path:
the guard settings a task decorator takes (validated when the decorator is applied, so a typo fails at import,
not at 3 a.m.), the tables a task's return value stands for, and the training-guard factory a guarded
training task receives. No orchestrator is imported here: adapters translate, this builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlguard_orchestration.checks import AnyCheck
from mlguard_orchestration.guard import Guard
from mlguard_orchestration.spec import load_spec
from mlguard_orchestration.store import ProfileStore, ReferencePolicy
from mlguard_orchestration.suite import SuiteOptions


class GuardSettings(BaseModel):
    """A guard as a task decorator describes it: a spec file and/or checks, plus reference settings.

    `default_suite` derives checks from the reference of every table (True) or of the named ones; the store
    keeps the references (promoted only when the guard passes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(default=None, description="Guard name; default: the task's name.")
    spec: str | None = None
    checks: list[AnyCheck] = Field(default_factory=list)
    default_suite: bool | list[str] = False
    suite: SuiteOptions | None = None
    reference_policy: ReferencePolicy | None = None
    label_column: str | None = None
    reference: str | dict[str, str] | None = None
    store: str | None = None
    sample_values: bool = False

    def build(self, default_name: str, default_store: str) -> Guard:
        """The Guard: the spec's settings first, then the decorator's (which win where both say something).

        Its name: the decorator's `name`, else the spec's, else `default_name` (the task's)."""
        if self.spec:
            spec = load_spec(self.spec)
            guard = Guard.from_spec(spec, name=self.name or (spec.name if "name" in spec.model_fields_set
                                                             else default_name))
            guard.checks += self.checks
        else:
            guard = Guard(self.name or default_name, self.checks)
        guard.default_suite = guard.default_suite or self.default_suite
        if self.suite is not None:
            guard.suite = self.suite
        if self.reference_policy is not None:
            guard.reference_policy = self.reference_policy
        guard.label = self.label_column or guard.label
        guard.sample_values = guard.sample_values or self.sample_values
        if self.reference:
            guard.reference = self.reference
        if self.store or guard.store is None:
            guard.store = ProfileStore(self.store or default_store)
        return guard


def tables_of(value: Any, table: str) -> dict[str, Any]:
    """The tables a task's value stands for: a mapping is {table: source}; anything else is one table."""
    return dict(value) if isinstance(value, Mapping) else {table: value}


class TrainingGuardFactory:
    """Builds TrainingGuards named after the task and remembers them, so the adapter can publish the report of
    the last one (a task that trains twice reports its final run)."""

    def __init__(self, name: str, config: Mapping[str, Any] | None, context: dict[str, str]) -> None:
        self.name, self.config, self.context = name, dict(config or {}), context
        self.guards: list[Any] = []

    def __call__(self, model: Any, optimizer: Any, **kwargs: Any) -> Any:
        from mlguard_orchestration.training import GuardConfig, TrainingGuard

        kwargs.setdefault("config", GuardConfig(**self.config))
        guard = TrainingGuard(model, optimizer, name=kwargs.pop("name", self.name), context=self.context, **kwargs)
        self.guards.append(guard)
        return guard
