"""Where a guard's memory lives between runs: one JSON document per guard and table, plus the guard's last
good run fingerprint and each registered model's champion record.

    <root>/<guard>/<table>.json                  the reference profile (replaced by `promote`)
    <root>/<guard>/_history/<table>/<when>.json  the last passing runs' profiles (rolling references)
    <root>/<guard>/_meta/candidates/<table>.json the last failed run's profile, for `accept`
    <root>/<guard>/_meta/accepted.jsonl          who accepted which reviewed change, when and why
    <root>/<guard>/_meta/last_good.json          the fingerprint of the guard's last passing run
    <root>/<guard>/_meta/last_run.json           the findings of the guard's previous run (what's new)
    <root>/<guard>/_reports/<run>.json|.html     full reports too big for XCom, and report pages
    <root>/_champions/<model>/champion.json      the registered model's metrics and evaluation-data identity

Local directory by default, any fsspec URL (s3://, gs://, memory://, …) otherwise. A reference is replaced
only by `promote`, which the guard calls after a passing run (warn included), following the guard's
`ReferencePolicy`: the last good run (default), a merge of the last N passing runs (`rolling`), or `pinned`
(set once, then changed only by `accept`). A failed run's profile is kept as a candidate, so a person who
reviewed the change can make it the reference (`accept`, logged); writes are atomic (a temporary file renamed
into place locally, a single-object put on object stores), so concurrent runs never leave a torn file —
the last passing run wins. Table documents end in `.json` and the other records live in folders, so no name
can collide with another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlguard_orchestration.errors import SourceError, SpecError
from mlguard_orchestration.fingerprint import Fingerprint
from mlguard_orchestration.history import RunRecord
from mlguard_orchestration.profile import TableProfile
from mlguard_orchestration.report import Champion

M = TypeVar("M", bound=BaseModel)

DEFAULT_STORE = ".mlguard/profiles"
STORE_ENV = "MLGUARD_STORE"
_SAFE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
REPORT_KINDS = ("json", "html")
log = logging.getLogger("mlguard_orchestration")


class ReferencePolicy(BaseModel):
    """How a passing run's profile becomes the reference.

    `last_good` — the last passing run (default); `rolling` — a merge of the last `runs` passing runs (steadier
    against a single odd batch; profiles are mergeable); `pinned` — the first reference stays until a person
    accepts a new one. Written as a string too: 'last_good', 'pinned', 'rolling' or 'rolling:14'."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["last_good", "rolling", "pinned"] = "last_good"
    runs: int = Field(7, ge=2, le=100, description="Passing runs a rolling reference merges.")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            mode, _, runs = v.partition(":")
            return {"mode": mode.strip(), **({"runs": runs.strip()} if runs else {})}
        return v


class Acceptance(BaseModel):
    """One reviewed change made the reference by a person (the store's acceptance log)."""

    guard: str
    tables: list[str]
    reason: str
    by: str
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ProfileStore:
    """Reference profiles keyed by guard name and table name."""

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_STORE) -> None:
        self.root = os.fspath(root)
        self.fs, self._base = fsspec.core.url_to_fs(self.root)

    def __repr__(self) -> str:
        return f"ProfileStore({self.root!r})"

    def _path(self, guard: str, table: str) -> str:
        _check_key(guard, "guard name")
        _check_key(table, "table name")
        return f"{self._base.rstrip('/')}/{guard}/{table}.json"

    def load(self, guard: str, table: str = "data") -> TableProfile | None:
        """The promoted reference, or None when this guard has none yet."""
        return self._read(self._path(guard, table), TableProfile, ("reference", "profile"),
                          "Delete it to start a new reference.")

    def promote(self, guard: str, table: str, profile: TableProfile,
                policy: ReferencePolicy | None = None) -> str | None:
        """Make `profile` (a passing run's) the reference for (guard, table) as `policy` says, atomically.
        Returns a note when the reference was deliberately left as it was (pinned)."""
        policy = policy or ReferencePolicy()
        path = self._path(guard, table)
        if policy.mode == "pinned" and self.fs.exists(path):
            return f"reference of table {table!r} is pinned: this run's profile did not replace it"
        if policy.mode == "rolling":
            profile = self._roll(guard, table, profile, policy.runs)
        self._write(path, profile.model_dump_json(indent=1).encode())
        return None

    def _history_dir(self, guard: str, table: str) -> str:
        _check_key(guard, "guard name")
        _check_key(table, "table name")
        return f"{self._base.rstrip('/')}/{guard}/_history/{table}"

    def _roll(self, guard: str, table: str, profile: TableProfile, runs: int) -> TableProfile:
        """Keep `profile` among the last `runs` passing profiles and return their merge (oldest first)."""
        folder = self._history_dir(guard, table)
        stamp = profile.created_at.strftime("%Y%m%dT%H%M%S%fZ")
        self._write(f"{folder}/{stamp}.json", profile.model_dump_json().encode())
        kept = sorted(p for p in self._list(folder) if p.endswith(".json"))
        for old in kept[:-runs]:
            self.fs.rm(old)
        merged: TableProfile | None = None
        for path in kept[-runs:]:
            one = self._read(path, TableProfile, ("reference history", "profile"), "Delete it.")
            if one is not None:
                merged = one if merged is None else merged.merge(one)
        return merged or profile

    def _list(self, folder: str) -> list[str]:
        try:
            return [str(p) for p in self.fs.ls(folder, detail=False)]
        except FileNotFoundError:
            return []

    def save_candidate(self, guard: str, table: str, profile: TableProfile) -> None:
        """Keep a failed run's profile, so a person can accept it as the reference after review."""
        self._write(self._candidate_path(guard, table), profile.model_dump_json(indent=1).encode())

    def _candidate_path(self, guard: str, table: str) -> str:
        _check_key(guard, "guard name")
        _check_key(table, "table name")
        return f"{self._base.rstrip('/')}/{guard}/_meta/candidates/{table}.json"

    def accept(self, guard: str, *, reason: str, by: str | None = None, tables: list[str] | None = None,
               profiles: dict[str, TableProfile] | None = None) -> Acceptance:
        """Make a reviewed change the reference: the last failed run's profiles (or `profiles`), whatever the
        policy (a rolling reference restarts from it). Logged in the store and to the logger."""
        if not reason.strip():
            raise SpecError("accepting a change needs a reason (who reviewed what), e.g. 'price moved to EUR'.")
        chosen = dict(profiles or {})
        if not chosen:
            folder = f"{self._base.rstrip('/')}/{guard}/_meta/candidates"
            _check_key(guard, "guard name")
            for path in sorted(self._list(folder)):
                name = path.rsplit("/", 1)[-1].removesuffix(".json")
                if tables is None or name in tables:
                    prof = self._read(path, TableProfile, ("candidate", "profile"), "Delete it.")
                    if prof is not None:
                        chosen[name] = prof
        if not chosen:
            raise SpecError(f"guard {guard!r} has no failed run to accept in {self.root!r}"
                            + (f" for tables {tables}" if tables else "")
                            + ": accept data explicitly (mlguard accept GUARD --data PATH) or run the guard first.")
        for table, prof in chosen.items():
            for old in self._list(self._history_dir(guard, table)):
                self.fs.rm(old)
            self._write(self._path(guard, table), prof.model_dump_json(indent=1).encode())
            if not profiles:
                self.fs.rm(self._candidate_path(guard, table))
        entry = Acceptance(guard=guard, tables=sorted(chosen), reason=reason,
                           by=by or os.environ.get("USER") or os.environ.get("USERNAME") or "unknown")
        log_path = f"{self._base.rstrip('/')}/{guard}/_meta/accepted.jsonl"
        previous = b""
        if self.fs.exists(log_path):
            with self.fs.open(log_path, "rb") as fh:
                previous = fh.read()
        self._write(log_path, previous + entry.model_dump_json().encode() + b"\n")
        log.warning("mlguard: %s accepted a reviewed change as the reference of guard %r (tables %s): %s",
                    entry.by, guard, ", ".join(entry.tables), reason)
        return entry

    def acceptances(self, guard: str) -> list[Acceptance]:
        """The acceptance log of `guard`, oldest first."""
        _check_key(guard, "guard name")
        path = f"{self._base.rstrip('/')}/{guard}/_meta/accepted.jsonl"
        if not self.fs.exists(path):
            return []
        with self.fs.open(path, "rb") as fh:
            return [Acceptance.model_validate(json.loads(line)) for line in fh.read().splitlines() if line.strip()]

    def load_last_good(self, guard: str) -> Fingerprint | None:
        """The fingerprint of the guard's last passing run, or None before its first."""
        return self._read(self._last_good_path(guard), Fingerprint, ("last good run", "fingerprint"),
                          "Delete it: the next passing run writes a new one.")

    def save_last_good(self, guard: str, fingerprint: Fingerprint) -> None:
        self._write(self._last_good_path(guard), fingerprint.model_dump_json(indent=1).encode())

    def load_last_run(self, guard: str) -> RunRecord | None:
        """The findings of the guard's previous run (any status but error), or None before its first."""
        return self._read(self._meta(guard, "last_run.json"), RunRecord, ("previous run", "run record"),
                          "Delete it: the next run writes a new one.")

    def save_last_run(self, guard: str, record: RunRecord) -> None:
        self._write(self._meta(guard, "last_run.json"), record.model_dump_json().encode())

    def save_report(self, guard: str, run: str, data: bytes, kind: str = "json") -> str:
        """Keep a run's full report (`json`) or its page (`html`) under the guard; returns where it went, as a
        path or URL the same store can read back (`read_report`). `run` is any text naming the run (an
        orchestrator's dag/run/task ids): it is made a safe file name, with a hash so names never collide."""
        if kind not in REPORT_KINDS:
            raise SpecError(f"report kind must be one of {REPORT_KINDS}, got {kind!r}.")
        _check_key(guard, "guard name")
        name = _UNSAFE.sub("_", run).strip("._")[:120] or "run"
        digest = hashlib.sha256(run.encode()).hexdigest()[:12]
        path = f"{self._base.rstrip('/')}/{guard}/_reports/{name}-{digest}.{kind}"
        self._write(path, data)
        return path if isinstance(self.fs, LocalFileSystem) else self.fs.unstrip_protocol(path)

    def read_report(self, where: str, max_bytes: int = 64 * 2**20) -> bytes:
        """A report kept by `save_report`, by the path it returned. Only this store's `_reports/` folders are
        read (a pointer comes from XCom or an artifact: it must not open any other file)."""
        _, path = fsspec.core.url_to_fs(where)
        base = self._base.rstrip("/") + "/"
        parts = path[len(base):].split("/") if path.startswith(base) else []
        if (len(parts) != 3 or parts[1] != "_reports" or ".." in parts or not _SAFE.match(parts[0])
                or not _SAFE.match(parts[2]) or parts[2].rsplit(".", 1)[-1] not in REPORT_KINDS):
            raise SpecError(f"{where!r} is not a report of store {self.root!r}.")
        try:
            with self.fs.open(path, "rb") as fh:
                data: bytes = fh.read(max_bytes + 1)
        except OSError as exc:
            raise SourceError(f"cannot read report {where!r} from {self.root!r}: {exc}") from exc
        if len(data) > max_bytes:
            raise SourceError(f"report {where!r} is larger than {max_bytes} bytes.")
        return data

    def load_champion(self, model: str) -> Champion | None:
        """The registered champion of `model`, or None when none was registered yet."""
        return self._read(self._champion_path(model), Champion, ("champion", "champion record"),
                          "Register the current model again with register_champion(...).")

    def save_champion(self, champion: Champion) -> None:
        self._write(self._champion_path(champion.model), champion.model_dump_json(indent=1).encode())

    # -- documents --

    def _last_good_path(self, guard: str) -> str:
        return self._meta(guard, "last_good.json")

    def _meta(self, guard: str, name: str) -> str:
        _check_key(guard, "guard name")
        return f"{self._base.rstrip('/')}/{guard}/_meta/{name}"

    def _champion_path(self, model: str) -> str:
        _check_key(model, "model name")
        if model.startswith("_"):
            raise SpecError(f"model name {model!r} cannot start with '_' (reserved for the store's own records).")
        return f"{self._base.rstrip('/')}/_champions/{model}/champion.json"

    def _read(self, path: str, model: type[M], what: tuple[str, str], remedy: str) -> M | None:
        """The document at `path` as `model`; `what` names it (e.g. ('reference', 'profile')) in errors."""
        try:
            with self.fs.open(path, "rb") as fh:
                raw = fh.read()
        except (FileNotFoundError, NotADirectoryError):  # nothing stored there (yet)
            return None
        except OSError as exc:
            raise SourceError(f"cannot read {what[0]} {path!r} from {self.root!r}: {exc}") from exc
        try:
            return model.model_validate_json(raw)
        except ValueError as exc:
            raise SourceError(f"{what[0]} {path!r} in {self.root!r} is not a valid {what[1]}: "
                              f"{str(exc).splitlines()[0]}. {remedy}") from exc

    def _write(self, path: str, data: bytes) -> None:
        if isinstance(self.fs, LocalFileSystem):
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        else:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(path, data)


def default_store(home: str | os.PathLike[str]) -> str:
    """Where an orchestrator's guards keep references when neither the task nor its spec says: $MLGUARD_STORE,
    else `<home>/mlguard/profiles` (the adapter passes its orchestrator's home). With several workers, point
    MLGUARD_STORE at shared object storage."""
    return os.environ.get(STORE_ENV) or os.path.join(home, "mlguard", "profiles")


def _check_key(part: str, what: str) -> None:
    if not _SAFE.match(part) or part in (".", ".."):
        raise SpecError(f"{what} {part!r} cannot be used as a store key: use letters, digits, '_', '-', '.'.")
