"""Where reference profiles live between runs: one JSON document per guard and table.

Local directory by default, any fsspec URL (s3://, gs://, memory://, …) otherwise. A reference is replaced
only by `promote`, which the guard calls after a passing run; writes are atomic (a temporary file renamed
into place locally, a single-object put on object stores), so concurrent runs never leave a torn file —
the last passing run wins.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from mlguard_orchestration.errors import SourceError, SpecError
from mlguard_orchestration.profile import TableProfile

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
        for part, what in ((guard, "guard name"), (table, "table name")):
            if not _SAFE.match(part) or part in (".", ".."):
                raise SpecError(f"{what} {part!r} cannot be used as a store key: use letters, digits, '_', '-', '.'.")
        return f"{self._base.rstrip('/')}/{guard}/{table}.json"

    def load(self, guard: str, table: str = "data") -> TableProfile | None:
        """The promoted reference, or None when this guard has none yet."""
        path = self._path(guard, table)
        try:
            with self.fs.open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read reference {path!r} from {self.root!r}: {exc}") from exc
        try:
            return TableProfile.model_validate_json(raw)
        except ValueError as exc:
            raise SourceError(f"reference {path!r} in {self.root!r} is not a valid profile: "
                              f"{str(exc).splitlines()[0]}. Delete it to start a new reference.") from exc

    def promote(self, guard: str, table: str, profile: TableProfile) -> None:
        """Make `profile` the reference for (guard, table), atomically."""
        path = self._path(guard, table)
        data = profile.model_dump_json(indent=1).encode()
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
