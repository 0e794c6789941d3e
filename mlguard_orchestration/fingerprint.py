"""What a run ran on, and what changed since the last good run.

The first question when a pipeline that worked yesterday fails today is "what changed — code, data,
dependencies or infrastructure?". Every report carries a `Fingerprint` of its run (Python and key package
versions, hardware, the code's git commit, the guarded inputs' row counts, schemas and profile digests); the
store keeps the fingerprint of the last passing run per guard, and a failing run's report lists the
differences as `Change`s, ranked by how likely each is to explain the findings (a torch upgrade before a new
NaN loss, a schema change before a join fan-out).

Collecting is cheap: versions come from package metadata (torch or airflow are never imported to learn them),
the static parts are cached per process, and git is asked only about the one file given.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlguard_orchestration.catalogue import require

KEY_PACKAGES: tuple[str, ...] = ("pandas", "pyarrow", "numpy", "duckdb", "torch", "apache-airflow", "prefect",
                                 "mlguard-orchestration")
_NUMERIC_PACKAGES = frozenset({"torch", "numpy", "jax", "jaxlib", "tensorflow", "scikit-learn", "xgboost",
                               "lightgbm", "catboost", "transformers", "accelerate", "lightning", "scipy"})
_DATA_PACKAGES = frozenset({"pandas", "pyarrow", "duckdb", "polars", "fsspec", "sqlalchemy"})
_ORCHESTRATORS = frozenset({"apache-airflow", "prefect"})
MAX_SCHEMA_COLUMNS = 500  # columns kept per input in a fingerprint (a digest covers the rest)
ROW_CHANGE_MIN = 0.05  # relative row-count changes below this are ordinary batch-to-batch noise


class Hardware(BaseModel):
    """The machine: CPU model, cores, memory, and the GPU/CUDA when known without importing torch."""

    cpu: str
    cores: int
    memory_gb: float | None = None
    gpu: str | None = None
    cuda: str | None = None


class CodeVersion(BaseModel):
    """The git version of the file that defines the pipeline (the DAG/flow file)."""

    path: str
    commit: str | None = None
    dirty: bool | None = Field(None, description="The file differs from the commit (None outside git).")
    file_sha: str | None = Field(None, description="Content hash of the file: catches edits outside git.")


class InputProfile(BaseModel):
    """A guarded input as far as 'what changed' needs: row count, schema and a content digest."""

    rows: int | None = None
    columns: dict[str, str] = Field(default_factory=dict, description="The schema: {column: type}.")
    column_count: int = Field(0, description="All columns, also those beyond the first MAX_SCHEMA_COLUMNS.")
    digest: str | None = Field(None, description="Hash of the input's profile: same digest, same statistics.")


class Fingerprint(BaseModel):
    """Everything a run depended on that can change between runs without anyone touching the guard."""

    python: str
    packages: dict[str, str | None] = Field(description="{distribution: version}; None when not installed.")
    hardware: Hardware
    code: CodeVersion | None = None
    inputs: dict[str, InputProfile] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


ChangeKind = Literal["python", "package", "hardware", "code", "schema", "row_count"]


class Change(BaseModel):
    """One difference between the last good run and this one, with how likely it explains the findings."""

    model_config = ConfigDict(frozen=True)

    code: str
    kind: ChangeKind
    subject: str = Field(description="What changed: a package, an input table, 'gpu', the code file.")
    before: Any = None
    after: Any = None
    summary: str
    relevance: float = Field(ge=0.0, le=1.0)

    @field_validator("code")
    @classmethod
    def _known(cls, v: str) -> str:
        return require(v, "change")


# -- collecting -------------------------------------------------------------------------------------------


def collect(*, packages: Sequence[str] = (), code_path: str | os.PathLike[str] | None = None,
            inputs: Mapping[str, InputProfile] | None = None) -> Fingerprint:
    """This run's fingerprint: key packages plus `packages`, the hardware, `code_path`'s git version."""
    names = tuple(dict.fromkeys([*KEY_PACKAGES, *packages]))
    return Fingerprint(python=platform.python_version(), packages=dict(_versions(names)),
                       hardware=_hardware().model_copy(), code=code_version(code_path) if code_path else None,
                       inputs=dict(inputs or {}))


@functools.lru_cache(maxsize=32)
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    out: list[tuple[str, str | None]] = []
    for name in names:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, None))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _hardware() -> Hardware:
    gpu = cuda = None
    torch = sys.modules.get("torch")  # only if the user's code already imported it: never import it here
    if torch is not None and getattr(torch, "cuda", None) is not None and torch.cuda.is_available():
        gpu, cuda = torch.cuda.get_device_name(0), torch.version.cuda
    elif shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=5, check=True).stdout.splitlines()
            if out:
                name, _, driver = out[0].partition(",")
                gpu = f"{name.strip()} (driver {driver.strip()})" if driver else name.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return Hardware(cpu=_cpu_model(), cores=os.cpu_count() or 0, memory_gb=_memory_gb(), gpu=gpu, cuda=cuda)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def code_version(path: str | os.PathLike[str]) -> CodeVersion:
    """The file's content hash and, inside a git checkout, the commit and whether the file is modified."""
    p = Path(path).resolve()
    sha = hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else None
    commit = dirty = None
    try:
        cwd = p.parent if p.exists() else Path.cwd()
        run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=5, cwd=cwd, check=False)
        head = run(["git", "rev-parse", "HEAD"])
        if head.returncode == 0:
            commit = head.stdout.strip()
            status = run(["git", "status", "--porcelain", "--", str(p)])
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass  # no git on this machine: the file hash still tells whether the code changed
    return CodeVersion(path=str(p), commit=commit, dirty=dirty, file_sha=sha)


def input_profile(rows: int | None, schema: Mapping[str, str], digest_of: Any = None) -> InputProfile:
    """An input's entry: `digest_of` is anything JSON-serialisable that summarises its content (a profile)."""
    items = list(schema.items())
    digest = None
    if digest_of is not None:
        import json

        digest = hashlib.sha256(json.dumps(digest_of, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return InputProfile(rows=rows, columns=dict(items[:MAX_SCHEMA_COLUMNS]), column_count=len(items),
                        digest=digest)


# -- comparing ----------------------------------------------------------------------------------------------

# How plausibly each kind of change explains a family of findings (the finding code's prefix).
_AFFINITY: dict[str, dict[str, float]] = {
    "training": {"numeric_package": 0.9, "hardware": 0.85, "code": 0.7, "python": 0.5, "data_package": 0.35,
                 "schema": 0.45, "row_count": 0.35, "orchestrator": 0.15, "package": 0.3},
    "preflight": {"numeric_package": 0.85, "hardware": 0.8, "code": 0.75, "python": 0.5, "data_package": 0.35,
                  "schema": 0.45, "row_count": 0.3, "orchestrator": 0.15, "package": 0.3},
    "join": {"schema": 0.9, "row_count": 0.85, "code": 0.7, "data_package": 0.6, "python": 0.2,
             "numeric_package": 0.15, "hardware": 0.05, "orchestrator": 0.2, "package": 0.2},
    "schema": {"schema": 0.95, "data_package": 0.7, "code": 0.65, "row_count": 0.45, "python": 0.3,
               "numeric_package": 0.2, "hardware": 0.05, "orchestrator": 0.2, "package": 0.25},
    "volume": {"row_count": 0.95, "schema": 0.6, "code": 0.6, "data_package": 0.5, "orchestrator": 0.45,
               "python": 0.2, "numeric_package": 0.1, "hardware": 0.05, "package": 0.2},
    "freshness": {"orchestrator": 0.6, "code": 0.6, "row_count": 0.55, "schema": 0.4, "data_package": 0.4,
                  "python": 0.2, "numeric_package": 0.05, "hardware": 0.1, "package": 0.2},
    "drift": {"schema": 0.65, "row_count": 0.6, "data_package": 0.6, "code": 0.6, "python": 0.2,
              "numeric_package": 0.2, "hardware": 0.05, "orchestrator": 0.2, "package": 0.25},
    "leakage": {"code": 0.8, "schema": 0.75, "row_count": 0.55, "data_package": 0.4, "python": 0.15,
                "numeric_package": 0.2, "hardware": 0.05, "orchestrator": 0.1, "package": 0.2},
    "gate": {"code": 0.8, "numeric_package": 0.7, "schema": 0.7, "row_count": 0.6, "data_package": 0.5,
             "hardware": 0.4, "python": 0.4, "orchestrator": 0.1, "package": 0.3},
}
_DEFAULT_AFFINITY = {"code": 0.6, "schema": 0.5, "row_count": 0.5, "numeric_package": 0.4, "data_package": 0.4,
                     "python": 0.3, "hardware": 0.3, "orchestrator": 0.2, "package": 0.25}
_CODE_FLOOR = 0.5  # a code change can explain anything


def diff(last_good: Fingerprint, now: Fingerprint, finding_codes: Iterable[str] = (),
         *, user_packages: Iterable[str] = ()) -> list[Change]:
    """What differs between `last_good` and `now`, most relevant to `finding_codes` first.

    `user_packages` are the user's own packages: they rank like code changes."""
    families = {c.split(".", 1)[0] for c in finding_codes}
    own = set(user_packages)

    def affinity(aspect: str) -> float:
        tables = [_AFFINITY.get(f, _DEFAULT_AFFINITY) for f in families] or [_DEFAULT_AFFINITY]
        return max(t.get(aspect, 0.2) for t in tables)

    changes: list[Change] = []
    if last_good.python != now.python:
        mag = _version_magnitude(last_good.python, now.python)
        changes.append(_change("change.python", "python", "python", last_good.python, now.python,
                               f"Python {_direction(last_good.python, now.python)} from {last_good.python} to "
                               f"{now.python}", affinity("python") * mag))
    for name in sorted(set(last_good.packages) | set(now.packages)):
        a, b = last_good.packages.get(name), now.packages.get(name)
        if a == b or name not in now.packages:
            continue  # not tracked this run (e.g. a user package no longer named) is not a change
        aspect = ("code" if name in own else "numeric_package" if name in _NUMERIC_PACKAGES
                  else "data_package" if name in _DATA_PACKAGES else "orchestrator" if name in _ORCHESTRATORS
                  else "package")
        if a is None:
            what, mag = f"{name} {b} was installed (absent in the last good run)", 0.9
        elif b is None:
            what, mag = f"{name} {a} was uninstalled", 0.9
        else:
            what, mag = f"{name} {_direction(a, b)} from {a} to {b}", _version_magnitude(a, b)
        changes.append(_change("change.package_version", "package", name, a, b, what, affinity(aspect) * mag))
    changes += _hardware_changes(last_good.hardware, now.hardware, affinity("hardware"))
    code = _code_change(last_good.code, now.code, max(affinity("code"), _CODE_FLOOR))
    if code is not None:
        changes.append(code)
    changes += _input_changes(last_good.inputs, now.inputs, affinity("schema"), affinity("row_count"))
    return sorted(changes, key=lambda c: -c.relevance)


def _change(code: str, kind: ChangeKind, subject: str, before: Any, after: Any, summary: str,
            relevance: float) -> Change:
    return Change(code=code, kind=kind, subject=subject, before=before, after=after, summary=summary,
                  relevance=round(min(max(relevance, 0.0), 1.0), 3))


def _parse_version(v: str) -> tuple[int, ...]:
    parts = []
    for piece in re.split(r"[.+\-]", v)[:4]:
        m = re.match(r"\d+", piece)
        if m is None:
            break
        parts.append(int(m.group()))
    return tuple(parts)


def _direction(a: str, b: str) -> str:
    pa, pb = _parse_version(a), _parse_version(b)
    return "upgraded" if pb > pa else "downgraded" if pb < pa else "changed"


def _version_magnitude(a: str, b: str) -> float:
    """1.0 for a major version change, less for minor and patch ones."""
    pa, pb = _parse_version(a) + (0, 0, 0), _parse_version(b) + (0, 0, 0)
    if pa[0] != pb[0]:
        return 1.0
    if pa[1] != pb[1]:
        return 0.85
    return 0.65


def _hardware_changes(a: Hardware, b: Hardware, weight: float) -> list[Change]:
    out = []
    for field, label, mag in (("gpu", "GPU", 1.0), ("cuda", "CUDA", 1.0), ("cpu", "CPU model", 0.7),
                              ("cores", "CPU cores", 0.4), ("memory_gb", "memory (GB)", 0.4)):
        before, after = getattr(a, field), getattr(b, field)
        if before != after:
            out.append(_change("change.hardware", "hardware", field, before, after,
                               f"{label} changed from {before} to {after}", weight * mag))
    return out


def _code_change(a: CodeVersion | None, b: CodeVersion | None, weight: float) -> Change | None:
    if a is None or b is None:
        return None
    name = Path(b.path).name
    if a.commit and b.commit and a.commit != b.commit:
        summary = f"the code moved from commit {a.commit[:10]} to {b.commit[:10]} ({name})"
    elif a.file_sha != b.file_sha:
        summary = f"{name} was edited since the last good run" + (" (uncommitted)" if b.dirty else "")
    elif b.dirty and not a.dirty:
        summary = f"{name} has uncommitted changes"
    else:
        return None
    before = {"commit": a.commit, "dirty": a.dirty, "file_sha": a.file_sha}
    after = {"commit": b.commit, "dirty": b.dirty, "file_sha": b.file_sha}
    return _change("change.code", "code", name, before, after, summary, weight)


def _input_changes(a: Mapping[str, InputProfile], b: Mapping[str, InputProfile], schema_weight: float,
                   rows_weight: float) -> list[Change]:
    out: list[Change] = []
    for table in sorted(set(a) | set(b)):
        old, new = a.get(table), b.get(table)
        if old is None or new is None:
            what = "appeared" if old is None else "disappeared"
            out.append(_change("change.schema", "schema", table, None if old is None else old.column_count,
                               None if new is None else new.column_count, f"input {table!r} {what}", schema_weight))
            continue
        added = [c for c in new.columns if c not in old.columns]
        removed = [c for c in old.columns if c not in new.columns]
        retyped = {c: f"{old.columns[c]} -> {t}" for c, t in new.columns.items()
                   if c in old.columns and old.columns[c] != t}
        if added or removed or retyped:
            parts = ([f"removed {_names(removed)}"] if removed else []) + (
                [f"added {_names(added)}"] if added else []) + (
                [f"retyped {', '.join(f'{c!r} ({t})' for c, t in list(retyped.items())[:5])}"] if retyped else [])
            out.append(_change("change.schema", "schema", table,
                               {"removed": removed[:20], "retyped": list(retyped)[:20]},
                               {"added": added[:20], "retyped": dict(list(retyped.items())[:20])},
                               f"input {table!r} schema changed: {'; '.join(parts)}", schema_weight))
        if old.rows is not None and new.rows is not None and old.rows != new.rows:
            ratio = (new.rows + 1) / (old.rows + 1)
            if abs(ratio - 1) >= ROW_CHANGE_MIN:
                mag = min(1.0, 0.4 + abs(math.log(ratio)) / math.log(4))  # a 4x change (or to 0) counts fully
                out.append(_change("change.row_count", "row_count", table, old.rows, new.rows,
                                   f"input {table!r} has {new.rows:,} rows, {old.rows:,} in the last good run "
                                   f"({ratio - 1:+.0%})", rows_weight * mag))
    return out


def _names(cols: list[str]) -> str:
    return ", ".join(map(repr, cols[:5])) + (f" and {len(cols) - 5} more" if len(cols) > 5 else "")
