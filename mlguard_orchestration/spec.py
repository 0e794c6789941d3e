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
from mlguard_orchestration.checks.base import explain_error
from mlguard_orchestration.errors import SpecError, did_you_mean, suggestion
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


MAX_SPEC_BYTES = 1_000_000  # a guard spec is a page of YAML, not a data file
MAX_SPEC_DEPTH = 32  # mappings and lists nested deeper than any spec needs


def load_spec(spec: str | os.PathLike[str] | Mapping[str, Any]) -> GuardSpec:
    """Parse a spec file path or a dict; errors name the entry and field at fault. Whatever the file holds
    — a directory, bytes that are not UTF-8, a megabyte of YAML, nesting thousands deep — the answer is a
    SpecError saying what is wrong, never a traceback."""
    where = "spec"
    if isinstance(spec, Mapping):
        raw: Any = dict(spec)
    else:
        path = Path(spec)
        where = str(path)
        raw = _parse(path, _read(path))
        if isinstance(raw, list):
            raw = {"checks": raw}
    _check_depth(raw, where)
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a mapping with a 'checks' list, got {type(raw).__name__}.")
    for i, entry in enumerate(raw.get("checks") or []):
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in KINDS:
            hint = did_you_mean(str(kind), KINDS) if kind else None
            raise SpecError(f"{where}: checks[{i}] has kind {kind!r}; known kinds: {', '.join(KINDS)}."
                            + suggestion(hint))
    try:
        return GuardSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{where} is not a valid guard spec:\n{_explain(exc)}") from None


def _read(path: Path) -> str:
    where = str(path)
    try:
        if not path.exists():
            raise SpecError(f"spec file {where!r} does not exist.")
        if not path.is_file():
            raise SpecError(f"spec file {where!r} is not a regular file (a directory, pipe or device); give the "
                            "path of a .yaml or .json file.")
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"spec file {where!r} is {path.stat().st_size:,} bytes; a guard spec is at most "
                            f"{MAX_SPEC_BYTES:,}. Is it the right file?")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file {where!r} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as "
                        "UTF-8.") from None
    except OSError as exc:
        raise SpecError(f"spec file {where!r} cannot be read: {exc.strerror or exc}.") from None


def _parse(path: Path, text: str) -> Any:
    fmt = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        return json.loads(text) if fmt == "JSON" else load_yaml(text)
    except RecursionError:
        raise SpecError(f"spec file {str(path)!r} nests deeper than any spec can ({MAX_SPEC_DEPTH} levels "
                        "allowed).") from None
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()
        raise SpecError(f"spec file {str(path)!r} is not valid {fmt}: {' '.join(first[:4])[:500]}") from None


def _check_depth(raw: Any, where: str) -> None:
    """Refuse nesting deeper than MAX_SPEC_DEPTH, walking iteratively (no recursion to exhaust)."""
    stack = [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_SPEC_DEPTH:
            raise SpecError(f"{where} nests deeper than any spec can ({MAX_SPEC_DEPTH} levels allowed).")
        if isinstance(value, dict):
            stack += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            stack += [(v, depth + 1) for v in value]


def _explain(exc: ValidationError) -> str:
    """One line per error: where (checks[2].max), what pydantic says, the value given, and for an unknown
    field the closest one the entry has."""
    lines = []
    for err in exc.errors()[:10]:
        loc, prev = "", None
        model: type[BaseModel] = GuardSpec  # the model whose fields an unknown field is compared with
        for p in err["loc"]:
            if isinstance(p, int):
                loc += f"[{p}]"  # checks[2].max, as the kind errors above name entries
            elif isinstance(prev, int) and p in KINDS:  # the union's tag after an entry's index: its class
                model = next(c for c in ALL_CHECKS if c.model_fields["kind"].default == p)
            else:
                loc += f".{p}" if loc else str(p)
            prev = p
        lines.append(f"  - {loc}: {explain_error(err, model)}")
    return "\n".join(lines)
