"""Guard spec files (YAML or JSON): the same checks as the Python API, as data.

    name: churn_features
    default_suite: true          # derive checks from the reference profile
    label: churned               # lets the default suite watch the label's distribution
    store: .mlguard/profiles     # where references live (any fsspec URL)
    suite: {partition_by: [month], exclude: [row_id]}   # what the default suite should know
    reference_policy: rolling:7  # last_good (default) | rolling[:N] | pinned
    checks:
      - {kind: null_rate, column: monthly_spend_usd, max: 0.01}
      - {kind: join_keys, left: labels, right: features, on: [user_id, snapshot_date]}

YAML is read with YAML 1.2's booleans: only `true`/`false` are booleans, so `on:`, `off`, `yes`, `no` and `y`
stay the strings they look like (YAML 1.1 would turn the join's `on:` key into `True`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlguard_orchestration.checks import ALL_CHECKS, AnyCheck
from mlguard_orchestration.errors import SpecError, did_you_mean
from mlguard_orchestration.store import ReferencePolicy
from mlguard_orchestration.suite import SuiteOptions

KINDS = [c.model_fields["kind"].default for c in ALL_CHECKS]


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's boolean rule (only true/false), not YAML 1.1's on/off/yes/no."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse YAML text with YAML 1.2 booleans (see the module docstring)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass: no arbitrary objects


class GuardSpec(BaseModel):
    """A guard as data."""

    model_config = ConfigDict(extra="forbid")

    name: str = "guard"
    checks: list[AnyCheck] = Field(default_factory=list)
    default_suite: bool | list[str] = False
    suite: SuiteOptions = Field(default_factory=SuiteOptions)
    label: str | None = None
    reference: str | dict[str, str] | None = None
    reference_policy: ReferencePolicy = Field(default_factory=ReferencePolicy)
    store: str | None = None
    sample_values: bool = False


def load_spec(spec: str | os.PathLike[str] | Mapping[str, Any]) -> GuardSpec:
    """Parse a spec file path or a dict; errors name the entry and field at fault."""
    where = "spec"
    if isinstance(spec, Mapping):
        raw: Any = dict(spec)
    else:
        path = Path(spec)
        where = str(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SpecError(f"spec file {where!r} does not exist.") from None
        try:
            raw = json.loads(text) if path.suffix.lower() == ".json" else load_yaml(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise SpecError(f"spec file {where!r} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
        if isinstance(raw, list):
            raw = {"checks": raw}
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a mapping with a 'checks' list, got {type(raw).__name__}.")
    for i, entry in enumerate(raw.get("checks") or []):
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in KINDS:
            hint = did_you_mean(str(kind), KINDS) if kind else None
            raise SpecError(f"{where}: checks[{i}] has kind {kind!r}; known kinds: {', '.join(KINDS)}."
                            + (f" Did you mean {hint!r}?" if hint else ""))
    try:
        return GuardSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{where} is not a valid guard spec:\n{_explain(exc)}") from None


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:10]:
        loc, prev = "", None
        for p in err["loc"]:
            if isinstance(p, int):
                loc += f"[{p}]"  # checks[2].max, as the kind errors above name entries
            elif not (isinstance(prev, int) and p in KINDS):  # skip the union's tag after an entry's index
                loc += f".{p}" if loc else str(p)
            prev = p
        lines.append(f"  - {loc}: {err['msg']}")
    return "\n".join(lines)
