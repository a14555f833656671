"""Small file helpers: an atomic streaming writer and safe local names for downloads."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

__all__ = ["AtomicWriter", "download_target"]


class AtomicWriter:
    """Write chunks to a temporary file beside ``dest``; :meth:`commit` renames it into place.

    Until then ``dest`` is untouched, so a failed or interrupted export never leaves a partial file.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
        self.tmp = Path(tmp)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.size += len(chunk)

    def commit(self) -> Path:
        """Flush to disk and move into place; returns the destination."""
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self.tmp, self.dest)
        return self.dest

    def abort(self) -> None:
        """Drop the temporary file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.tmp.unlink(missing_ok=True)


def _safe_name(file_name: str | None, guid: str) -> str:
    name = Path(file_name.replace("\\", "/")).name if file_name else ""
    if name in ("", ".", ".."):
        name = guid.replace("/", "_").replace("\\", "_")
    return name


def download_target(dest: str | os.PathLike[str] | None, file_name: str | None, guid: str) -> Path:
    """Where a download goes: ``dest`` itself, or ``dest``/the record's file name when ``dest`` is a directory
    (the current directory when None). The record's name is reduced to its last component."""
    if dest is None:
        return Path.cwd() / _safe_name(file_name, guid)
    target = Path(dest)
    if target.is_dir() or str(dest).endswith(("/", os.sep)):
        return target / _safe_name(file_name, guid)
    return target
