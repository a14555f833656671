"""An on-disk cache of short-lived access tokens, so separate processes need not mint one each.

A service whose access tokens are minted from a long-lived key (a Gen3 API key, a dserver token generator, a
workspace token service) can keep the last token here and reuse it in the next process while it is still
valid. :class:`TokenCache` is the directory; :meth:`TokenCache.entry` names one token by an identity the
caller chooses (for Gen3: the Fence URL and the API key's id), of which only a SHA-256 digest appears on disk:
never the key itself.

What the cache promises:

* the directory (``$SCIBIND_CACHE_DIR/tokens``, else ``$XDG_CACHE_HOME/scibind/tokens``, else
  ``~/.cache/scibind/tokens``) is created with mode 0700; a directory that is not owned by the current user
  or that other users can enter is not used;
* each token is a file of mode 0600, written to a temporary file in the same directory and renamed into
  place (readers never see half a file, concurrent writers never mix);
* a file that is not a regular file, is not owned by the current user, can be read by others, or does not
  parse is ignored (and a corrupt one removed); nothing here ever raises into an authentication flow;
* a token is handed back only with its expiry; whether it is still good enough is the caller's decision
  (:class:`scibind.auth.RefreshingTokenAuth` takes it only when it is not within its refresh margin).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

import attrs

from .secrets import Secret

__all__ = ["ENV", "TokenCache", "TokenCacheEntry", "default_directory", "resolve_token_cache"]

log = logging.getLogger("scibind.auth")

FORMAT = 1
ENV = "SCIBIND_TOKEN_CACHE"
"""Turns the cache on for every client that was not told otherwise (``1``/``true``/``yes``/``on``)."""


def default_directory() -> Path:
    """``$SCIBIND_CACHE_DIR/tokens``, else ``$XDG_CACHE_HOME/scibind/tokens``, else ``~/.cache/scibind/tokens``."""
    explicit = os.environ.get("SCIBIND_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser() / "tokens"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scibind" / "tokens"


def _private(st: os.stat_result) -> bool:
    """Owned by us and closed to group and others."""
    owner_ok = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
    return owner_ok and not (st.st_mode & (stat.S_IRWXG | stat.S_IRWXO))


class TokenCache:
    """A directory of cached access tokens (see the module docstring for its safety rules)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()

    def entry(self, *identity: str) -> TokenCacheEntry:
        """The cache entry for a credential identified by ``identity`` (hashed; choose parts that are not secret)."""
        digest = hashlib.sha256("\x00".join(("scibind-token", *identity)).encode()).hexdigest()
        return TokenCacheEntry(self, digest)

    def _usable_directory(self, *, create: bool) -> bool:
        try:
            if create:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.stat(self.directory, follow_symlinks=False)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode) or not _private(st):
            log.debug("token cache %s is not private to this user: not used", self.directory)
            return False
        return True

    def __repr__(self) -> str:
        return f"TokenCache({str(self.directory)!r})"


@attrs.frozen
class TokenCacheEntry:
    """One cached token: :meth:`load` and :meth:`save` (the ``TokenStore`` of ``RefreshingTokenAuth``)."""

    cache: TokenCache
    digest: str

    @property
    def path(self) -> Path:
        return self.cache.directory / f"token_{self.digest}.json"

    def load(self) -> tuple[Secret, float] | None:
        """``(token, expires_at)`` if a private, well-formed entry exists; else None."""
        if not self.cache._usable_directory(create=False):
            return None
        path = self.path
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _private(st):
                log.debug("ignoring token cache file %s: not a private regular file", path.name)
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                raw = handle.read(64 * 1024)
        except OSError:
            return None
        finally:
            os.close(fd)
        try:
            doc = json.loads(raw)
            token, expires_at = doc["token"], doc["expires_at"]
            if doc.get("format") != FORMAT or not isinstance(token, str) or not token:
                raise ValueError("unexpected entry")
            if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
                raise ValueError("no expiry")
        except (ValueError, KeyError, TypeError):
            log.debug("removing corrupt token cache file %s", path.name)
            self.discard()
            return None
        return Secret(token), float(expires_at)

    def save(self, token: Secret, expires_at: float) -> None:
        """Write the entry atomically with mode 0600 (silently does nothing when the directory is unusable)."""
        if not self.cache._usable_directory(create=True):
            return
        body = json.dumps({"format": FORMAT, "token": token.reveal(), "expires_at": expires_at})
        try:
            fd, tmp = tempfile.mkstemp(prefix=".token_", suffix=".tmp", dir=self.cache.directory)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                if hasattr(os, "fchmod"):
                    os.fchmod(handle.fileno(), 0o600)  # mkstemp's default, made explicit
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the entry (if any)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass

    def __repr__(self) -> str:
        return f"TokenCacheEntry({self.digest[:12]}...)"


def resolve_token_cache(choice: bool | TokenCache | None) -> TokenCache | None:
    """The cache a client uses: an explicit one, ``True`` for the default directory, ``None`` to follow
    ``SCIBIND_TOKEN_CACHE``; off otherwise."""
    if choice is None:
        choice = os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")
    if isinstance(choice, TokenCache):
        return choice
    return TokenCache() if choice else None
