"""Where a guard's memory lives between runs: one JSON document per guard and table, plus the guard's last
good run fingerprint and each registered model's champion record.

    <root>/<guard>/<table>.json                  the reference profile (replaced by `promote`)
    <root>/<guard>/_meta/last_good.json          the fingerprint of the guard's last passing run
    <root>/_champions/<model>/champion.json      the registered model's metrics and evaluation-data identity

Local directory by default, any fsspec URL (s3://, gs://, memory://, …) otherwise. A reference is replaced
only by `promote`, which the guard calls after a passing run; writes are atomic (a temporary file renamed
into place locally, a single-object put on object stores), so concurrent runs never leave a torn file —
the last passing run wins. Table documents end in `.json` and the other records live in folders, so no name
can collide with another.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem

from mlguard_orchestration.errors import SourceError, SpecError
from mlguard_orchestration.profile import TableProfile

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlguard_orchestration.fingerprint import Fingerprint
    from mlguard_orchestration.gate.champion import Champion

    M = TypeVar("M", bound=BaseModel)

DEFAULT_STORE = ".mlguard/profiles"
_SAFE = re.compile(r"^[A-Za-z0-9_.\-]+$")


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

    def promote(self, guard: str, table: str, profile: TableProfile) -> None:
        """Make `profile` the reference for (guard, table), atomically."""
        self._write(self._path(guard, table), profile.model_dump_json(indent=1).encode())

    def load_last_good(self, guard: str) -> Fingerprint | None:
        """The fingerprint of the guard's last passing run, or None before its first."""
        from mlguard_orchestration.fingerprint import Fingerprint

        return self._read(self._last_good_path(guard), Fingerprint, ("last good run", "fingerprint"),
                          "Delete it: the next passing run writes a new one.")

    def save_last_good(self, guard: str, fingerprint: Fingerprint) -> None:
        self._write(self._last_good_path(guard), fingerprint.model_dump_json(indent=1).encode())

    def load_champion(self, model: str) -> Champion | None:
        """The registered champion of `model`, or None when none was registered yet."""
        from mlguard_orchestration.gate.champion import Champion

        return self._read(self._champion_path(model), Champion, ("champion", "champion record"),
                          "Register the current model again with register_champion(...).")

    def save_champion(self, champion: Champion) -> None:
        self._write(self._champion_path(champion.model), champion.model_dump_json(indent=1).encode())

    # -- documents --

    def _last_good_path(self, guard: str) -> str:
        _check_key(guard, "guard name")
        return f"{self._base.rstrip('/')}/{guard}/_meta/last_good.json"

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
        except FileNotFoundError:
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


def _check_key(part: str, what: str) -> None:
    if not _SAFE.match(part) or part in (".", ".."):
        raise SpecError(f"{what} {part!r} cannot be used as a store key: use letters, digits, '_', '-', '.'.")
