"""Small JSON journals that let transfers resume after an interruption, even in a new process.

Files are written atomically (temp file + ``os.replace``) and updated under a lock, so parallel parts can
record themselves as they finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["Journal", "cache_dir", "upload_journal"]


def cache_dir() -> Path:
    """``$SCIBIND_CACHE_DIR``, else ``$XDG_CACHE_HOME/scibind``, else ``~/.cache/scibind``."""
    explicit = os.environ.get("SCIBIND_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scibind"


class Journal:
    """A JSON document on disk, loaded once, saved atomically after each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {}
        try:
            loaded = json.loads(path.read_text())
            self.data = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self.data = {}

    @property
    def exists(self) -> bool:
        return bool(self.data)

    def update(self, **values: Any) -> None:
        """Set top-level keys and save."""
        with self._lock:
            self.data.update(values)
            self._save()

    def record(self, key: str, item: str, value: Any) -> None:
        """Set ``data[key][item] = value`` and save (e.g. a finished part's ETag)."""
        with self._lock:
            self.data.setdefault(key, {})[item] = value
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".journal-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.data, f, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self) -> None:
        """Forget this journal (the transfer finished or was abandoned)."""
        with self._lock:
            self.data = {}
            self.path.unlink(missing_ok=True)


def upload_journal(*identity: object) -> Journal:
    """The journal for one upload, keyed by what identifies it (service, server, file path/size/mtime, digest)."""
    key = hashlib.sha256(json.dumps([str(i) for i in identity]).encode()).hexdigest()[:32]
    return Journal(cache_dir() / "uploads" / f"{key}.json")
