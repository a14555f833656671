"""Authentication as :class:`httpx.Auth` flows, and the credential chain.

* :class:`HeaderAuth` -- a static credential header: ``Bearer <token>``, ``token <key>`` (DANDI),
  ``ApiKey user:key`` (MyTardis).
* :class:`BasicAuth` -- HTTP Basic, sent pre-emptively (servers that answer anonymous requests with public
  data never challenge).
* :class:`RefreshingTokenAuth` -- a short-lived token minted by a :class:`TokenMinter` (a token generator URL,
  an API key exchange, OAuth client credentials), cached, refreshed ahead of expiry and once on 401; one refresh
  at a time under threads and under asyncio.
* :class:`ScopedAuth` -- wraps any of these so credentials go only to the service's own origin, and never over
  plain http to a host that is not loopback.
* :func:`resolve_credential` -- explicit value -> environment -> config file -> keyring -> interactive prompt
  (only on a terminal), else :class:`~scibind.errors.CredentialsError`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Sequence,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import httpx

if TYPE_CHECKING:
    import asyncio

from ._core.secrets import Secret, is_loopback_host, redact_url
from .errors import CredentialsError, InsecureTransportError

__all__ = [
    "BasicAuth",
    "CredentialSource",
    "HeaderAuth",
    "RefreshingTokenAuth",
    "ScopedAuth",
    "TokenMinter",
    "TokenStore",
    "env_source",
    "explicit_source",
    "json_file_source",
    "jwt_expiry",
    "keyring_source",
    "keyring_store",
    "prompt_source",
    "resolve_credential",
]

log = logging.getLogger("scibind.auth")


# -- static credentials --------------------------------------------------------------------------------------
class HeaderAuth(httpx.Auth):
    """Send ``<header>: <scheme> <credential>`` on every request (e.g. ``Authorization: token KEY``)."""

    def __init__(
        self, credential: str | Secret, *, scheme: str = "Bearer", header: str = "Authorization"
    ) -> None:
        self.credential = credential if isinstance(credential, Secret) else Secret(credential)
        self.scheme = scheme
        self.header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        value = self.credential.reveal()
        request.headers[self.header] = f"{self.scheme} {value}" if self.scheme else value
        yield request

    def __repr__(self) -> str:
        return f"HeaderAuth(scheme={self.scheme!r}, credential={self.credential!r})"


class BasicAuth(httpx.Auth):
    """HTTP Basic, sent pre-emptively with every request."""

    def __init__(self, username: str, password: str | Secret) -> None:
        self.username = username
        self.password = password if isinstance(password, Secret) else Secret(password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raw = f"{self.username}:{self.password.reveal()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password={self.password!r})"


# -- refreshing tokens -----------------------------------------------------------------------------------------
def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (epoch seconds), read without verifying; ``None`` if absent or not a JWT."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


class TokenMinter(Protocol):
    """Knows how to ask for a new access token. Pure: builds a request, parses a response."""

    def build_request(self) -> httpx.Request:
        """The request that mints a token (sent as is: it is not itself authenticated by the flow)."""
        ...

    def parse_response(self, response: httpx.Response) -> tuple[Secret, float | None]:
        """``(token, expires_at)`` from the minting response; raise CredentialsError if it failed."""
        ...


class TokenStore(Protocol):
    """Where a :class:`RefreshingTokenAuth` may keep its token for other processes (an on-disk cache entry,
    :class:`scibind._core.token_cache.TokenCacheEntry`). Must never raise for a missing or bad entry."""

    def load(self) -> tuple[Secret, float] | None:
        """``(token, expires_at)`` kept earlier, or None."""
        ...

    def save(self, token: Secret, expires_at: float) -> None:
        """Keep a newly minted token."""
        ...


class RefreshingTokenAuth(httpx.Auth):
    """Bearer-style auth with a token that is minted on demand, refreshed ``skew`` seconds before it
    expires, and refreshed once when the server answers 401.

    * ``refresh_on``: the statuses that trigger that one refresh-and-retry (default 401). A status other
      than 401 (Gen3 passes 403: sheepdog and indexd ask arborist, which refuses an expired token with 403)
      retries only when the token in use is not one this object minted less than ``fresh_for`` seconds ago,
      so a plain "permission denied" costs no more than one extra mint per token.
    * ``store``: a :class:`TokenStore` (e.g. the on-disk token cache) consulted before minting and given
      every new token; a kept token is used only when it is more than ``skew`` seconds from expiring.
    * One refresh at a time across threads and asyncio tasks, and across a sync and an async client sharing
      this object: per event loop an :class:`asyncio.Lock` (tasks wait without blocking the loop), and for
      everyone the thread lock (taken by the async path in a worker thread).
    """

    requires_response_body = True

    def __init__(
        self,
        minter: TokenMinter,
        *,
        scheme: str = "Bearer",
        header: str = "Authorization",
        skew: float = 60.0,
        token: str | Secret | None = None,
        clock: Callable[[], float] = time.time,
        store: TokenStore | None = None,
        refresh_on: Iterable[int] = (401,),
        fresh_for: float = 60.0,
    ) -> None:
        self.minter = minter
        self.scheme = scheme
        self.header = header
        self.skew = skew
        self.clock = clock
        self.token_store = store
        self.refresh_on = frozenset(refresh_on) | {401}
        self.fresh_for = fresh_for
        self.token: Secret | None = None
        self.expires_at: float | None = None
        self.stored_at: float = clock()
        self.minted_at: float | None = None
        self.mint_count = 0
        if token:
            initial = token if isinstance(token, Secret) else Secret(token)
            self._store(initial, jwt_expiry(initial.reveal()))
        self._thread_lock = threading.Lock()
        self._locks_guard = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._pinned_locks: dict[Any, asyncio.Lock] = {}

    # pure helpers shared by both flows
    def _store(self, token: Secret, expires_at: float | None) -> None:
        self.token = token
        self.expires_at = expires_at if expires_at is not None else jwt_expiry(token.reveal())
        self.stored_at = self.clock()

    def needs_refresh(self) -> bool:
        """True when there is no token or it is within the refresh margin of expiring.

        The margin is ``skew``, but never more than half the token's lifetime, so a token that lives shorter
        than ``skew`` is still used for half its life instead of being minted again for every request.
        """
        if self.token is None:
            return True
        if self.expires_at is None:
            return False
        margin = min(self.skew, max(0.0, (self.expires_at - self.stored_at) / 2))
        return self.clock() >= self.expires_at - margin

    def _from_store(self) -> bool:
        """Take the token kept in ``store`` if it is more than ``skew`` from expiring; True if taken."""
        if self.token_store is None:
            return False
        try:
            kept = self.token_store.load()
        except Exception as exc:  # a cache never breaks authentication
            log.debug("token cache unreadable: %s", type(exc).__name__)
            return False
        if kept is None or kept[1] - self.clock() <= self.skew:
            return False
        self._store(*kept)
        self.minted_at = None
        log.debug("using a cached access token (expires in %s s)", _ttl(kept[1], self.clock()))
        return True

    def _accept(self, response: httpx.Response) -> None:
        token, expires_at = self.minter.parse_response(response)
        self._store(token, expires_at)
        self.minted_at = self.clock()
        self.mint_count += 1
        log.debug("minted a new access token (expires in %s s)", _ttl(expires_at, self.clock()))
        if self.token_store is not None and self.expires_at is not None:
            try:
                self.token_store.save(token, self.expires_at)
            except Exception as exc:
                log.debug("could not cache the access token: %s", type(exc).__name__)

    def _authorize(self, request: httpx.Request) -> Secret:
        assert self.token is not None
        request.headers[self.header] = f"{self.scheme} {self.token.reveal()}"
        return self.token

    refusal_statuses: frozenset[int] = frozenset({401})
    """Statuses with which the server may refuse the token itself (their bodies are read for :meth:`refused`)."""

    def refused(self, response: httpx.Response) -> bool:
        """Whether the server refused the token itself (401 here; a service whose token layer answers
        otherwise overrides this and ``refusal_statuses``). Such an answer always earns one refresh-and-retry."""
        return response.status_code == 401

    def _retry_after(self, response: httpx.Response) -> bool:
        if self.refused(response):
            return True
        if response.status_code not in self.refresh_on:
            return False
        return self.minted_at is None or self.clock() - self.minted_at >= self.fresh_for

    def _async_lock(self) -> asyncio.Lock:
        import asyncio

        loop = asyncio.get_running_loop()
        with self._locks_guard:
            try:
                lock = self._async_locks.get(loop)
                if lock is None:
                    lock = self._async_locks[loop] = asyncio.Lock()
            except TypeError:  # a loop that cannot be weakly referenced: keep its lock with it
                lock = self._pinned_locks.setdefault(loop, asyncio.Lock())
        return lock

    @contextlib.asynccontextmanager
    async def _refreshing(self) -> AsyncIterator[None]:
        async with self._async_lock():
            await _acquire_off_loop(self._thread_lock)
            try:
                yield
            finally:
                self._thread_lock.release()

    # token without a request (e.g. a facade's ``access_token()``)
    def sync_token(self, send: Callable[[httpx.Request], httpx.Response]) -> Secret:
        """The current token, minted first (``send`` sends the mint request) when it needs a refresh."""
        if self.needs_refresh():
            with self._thread_lock:
                if self.needs_refresh() and not self._from_store():
                    self._accept(_read(send(self.minter.build_request())))
        assert self.token is not None
        return self.token

    async def async_token(
        self, send: Callable[[httpx.Request], Awaitable[httpx.Response]]
    ) -> Secret:
        """:meth:`sync_token` for asyncio."""
        if self.needs_refresh():
            async with self._refreshing():
                if self.needs_refresh() and not self._from_store():
                    response = await send(self.minter.build_request())
                    await response.aread()
                    self._accept(response)
        assert self.token is not None
        return self.token

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self.needs_refresh():
            with self._thread_lock:
                if self.needs_refresh() and not self._from_store():
                    self._accept(_read((yield self.minter.build_request())))
        used = self._authorize(request)
        response = yield request
        if response.status_code in self.refusal_statuses:
            response.read()  # a short error body that `refused` may look at
        if self._retry_after(response):
            with self._thread_lock:
                if self.token == used:  # nobody refreshed meanwhile
                    self._accept(_read((yield self.minter.build_request())))
            self._authorize(request)
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.needs_refresh():
            async with self._refreshing():
                if self.needs_refresh() and not self._from_store():
                    response = yield self.minter.build_request()
                    await response.aread()
                    self._accept(response)
        used = self._authorize(request)
        response = yield request
        if response.status_code in self.refusal_statuses:
            await response.aread()
        if self._retry_after(response):
            async with self._refreshing():
                if self.token == used:
                    mint = yield self.minter.build_request()
                    await mint.aread()
                    self._accept(mint)
            self._authorize(request)
            yield request

    def __repr__(self) -> str:
        return f"RefreshingTokenAuth(minter={type(self.minter).__name__}, token={self.token!r})"


async def _acquire_off_loop(lock: threading.Lock) -> None:
    """Take a thread lock without blocking the event loop (in a worker thread when it is held); if the
    waiting task is cancelled, the worker still gets the lock eventually and then gives it back."""
    if lock.acquire(blocking=False):
        return
    from ._core.offloop import run_off_loop

    await run_off_loop(lock.acquire, lambda got: lock.release() if got else None)


def _read(response: httpx.Response) -> httpx.Response:
    response.read()
    return response


def _ttl(expires_at: float | None, now: float) -> str:
    return "?" if expires_at is None else f"{expires_at - now:.0f}"


# -- scoping ---------------------------------------------------------------------------------------------------
class ScopedAuth(httpx.Auth):
    """Apply ``inner`` only to requests for the given origins; refuse plain-http credentials off loopback.

    Requests to any other origin (storage redirects, presigned URLs) go out with no credentials at all.
    """

    def __init__(
        self,
        inner: httpx.Auth,
        origins: Iterable[str | httpx.URL],
        *,
        allow_insecure_http: bool = False,
    ) -> None:
        self.inner = inner
        self.origins = frozenset(_origin(httpx.URL(str(o))) for o in origins)
        self.allow_insecure_http = allow_insecure_http
        self.requires_request_body = inner.requires_request_body
        self.requires_response_body = inner.requires_response_body
        if allow_insecure_http:
            warnings.warn(
                "allow_insecure_http=True: credentials may be sent over plain http to non-loopback hosts",
                stacklevel=3,
            )

    def in_scope(self, request: httpx.Request) -> bool:
        return _origin(request.url) in self.origins

    def _check(self, request: httpx.Request) -> None:
        url = request.url
        if url.scheme == "http" and not is_loopback_host(url.host) and not self.allow_insecure_http:
            raise InsecureTransportError(
                f"refusing to send credentials over plain http to {url.host}; use https",
            )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.in_scope(request):
            request.headers.pop("Authorization", None)
            yield request
            return
        self._check(request)
        yield from self.inner.sync_auth_flow(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self.in_scope(request):
            request.headers.pop("Authorization", None)
            yield request
            return
        self._check(request)
        flow = self.inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                response = yield outgoing
                try:
                    outgoing = await flow.asend(response)
                except StopAsyncIteration:
                    break
        finally:
            await flow.aclose()

    def __repr__(self) -> str:
        return f"ScopedAuth({self.inner!r}, origins={sorted(self.origins)!r})"


def _origin(url: httpx.URL) -> str:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return f"{url.scheme}://{url.host}:{port}"


def check_credential_url(url: str, *, allow_insecure_http: bool = False) -> None:
    """Raise :class:`InsecureTransportError` if credentials would travel over plain http off loopback."""
    parsed = httpx.URL(url)
    if parsed.scheme == "http" and not is_loopback_host(parsed.host) and not allow_insecure_http:
        raise InsecureTransportError(
            f"refusing to send credentials over plain http to {redact_url(url)}; use https"
        )


# -- the credential chain ------------------------------------------------------------------------------------------
@attrs.frozen
class CredentialSource:
    """One place a credential may come from: a name for messages, and a function returning it or None.

    ``skipped`` (optional) tells, for error messages, why the source was not consulted (e.g. no terminal).
    """

    describe: str
    fetch: Callable[[], str | None]
    skipped: Callable[[], str | None] | None = None


def explicit_source(value: str | Secret | None) -> CredentialSource:
    """The value the caller passed (if any)."""
    return CredentialSource(
        "argument", lambda: value.reveal() if isinstance(value, Secret) else value
    )


def env_source(*names: str) -> CredentialSource:
    """The first non-empty environment variable among ``names``."""

    def fetch() -> str | None:
        for name in names:
            value = os.environ.get(name)
            if value:
                return value
        return None

    return CredentialSource("environment " + "/".join(names), fetch)


def json_file_source(path: str | Path | Callable[[], Path], *keys: str) -> CredentialSource:
    """A key in a JSON config file (e.g. dtool's ``~/.config/dtool/dtool.json``); nested keys in order."""

    def fetch() -> str | None:
        p = Path(path()) if callable(path) else Path(path).expanduser()
        try:
            data: Any = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        for key in keys:
            if not isinstance(data, dict):
                return None
            data = data.get(key)
        return data if isinstance(data, str) and data else None

    label = "config file" if callable(path) else f"config file {path}"
    return CredentialSource(f"{label} [{'.'.join(keys)}]", fetch)


def keyring_source(
    service: str, username: str, *, interactive: bool | None = None
) -> CredentialSource:
    """The keyring, searched the way dandi-cli searches it, when the optional ``keyring`` package is installed.

    The default backend (desktop keyrings, or whatever ``PYTHON_KEYRING_BACKEND`` / ``keyringrc.cfg`` chose;
    a chain is tried backend by backend); then, unless a backend was chosen explicitly, the file keyrings of
    ``keyrings.alt`` that dandi-cli falls back to on machines without a desktop keyring
    (``EncryptedKeyring`` ``crypted_pass.cfg``, ``PlaintextKeyring`` ``keyring_pass.cfg``). An encrypted
    keyring asks for its password, so it is only read when ``interactive`` (default: stdin is a terminal);
    otherwise it is skipped, never prompted for. Lookup errors are never fatal.
    """

    def fetch() -> str | None:
        for backend in _keyring_backends(_interactive(interactive)):
            try:
                value = backend.get_password(service, username)
            except Exception as exc:  # locked keyrings, wrong passwords, broken backends
                log.debug("keyring lookup for %s in %s failed: %s", service, _kind(backend), exc)
                continue
            if value:
                return str(value)
        return None

    return CredentialSource(f"keyring {service}/{username}", fetch)


def keyring_store(
    service: str, username: str, value: str | Secret, *, interactive: bool | None = None
) -> str:
    """Store a credential where :func:`keyring_source` looks first (as dandi-cli's ``keyring_save``).

    Returns the backend's name. An encrypted file keyring is only used on a terminal (it asks for its
    password). :class:`~scibind.errors.CredentialsError` when ``keyring`` is missing or no backend takes it.
    """
    secret = value.reveal() if isinstance(value, Secret) else value
    for backend in _keyring_backends(_interactive(interactive)):
        try:
            backend.set_password(service, username, secret)
        except Exception as exc:
            log.debug("keyring store for %s in %s failed: %s", service, _kind(backend), exc)
            continue
        return _kind(backend)
    raise CredentialsError(
        f"no usable keyring to store {service}/{username}: install a keyring backend "
        "(pip install 'scibind[keyring]'), or configure one with PYTHON_KEYRING_BACKEND"
    )


def _interactive(interactive: bool | None) -> bool:
    if interactive is not None:
        return interactive
    return bool(sys.stdin and sys.stdin.isatty())


def _kind(backend: Any) -> str:
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def _keyring_backends(interactive: bool) -> list[Any]:
    """Backends to try, in order (see :func:`keyring_source`); empty without the ``keyring`` package."""
    try:
        import keyring
        from keyring import core
        from keyring.backends import chainer, fail
    except ImportError:
        return []
    try:
        default = keyring.get_keyring()
        explicit = core.load_env() is not None or core.load_config() is not None
    except Exception as exc:  # a broken keyringrc.cfg or backend: never fatal
        log.debug("keyring setup failed: %s", exc)
        return []
    candidates: list[Any] = (
        list(default.backends) if isinstance(default, chainer.ChainerBackend) else [default]
    )
    if not explicit:
        candidates += _alt_file_keyrings()
    found: list[Any] = []
    seen: set[tuple[str, str]] = set()
    for backend in candidates:
        if isinstance(backend, fail.Keyring):
            continue
        if _asks_password(backend) and not interactive:
            log.debug(
                "keyring %s skipped: it asks for a password and stdin is not a terminal",
                _kind(backend),
            )
            continue
        identity = (_kind(backend), str(getattr(backend, "file_path", id(backend))))
        if identity not in seen:
            seen.add(identity)
            found.append(backend)
    return found


def _alt_file_keyrings() -> list[Any]:
    """keyrings.alt's encrypted and plaintext file keyrings whose file exists (dandi-cli's fallback)."""
    try:
        from keyrings.alt.file import EncryptedKeyring, PlaintextKeyring
    except ImportError:
        return []
    found: list[Any] = []
    for cls in (EncryptedKeyring, PlaintextKeyring):
        try:
            backend = cls()
            if os.path.exists(backend.file_path):
                found.append(backend)
        except Exception as exc:  # e.g. EncryptedKeyring without a crypto library
            log.debug("keyring %s unavailable: %s", cls.__name__, exc)
    return found


def _asks_password(backend: Any) -> bool:
    """Whether reading the backend prompts for a password (keyrings.alt's EncryptedKeyring)."""
    try:
        from keyrings.alt.file import EncryptedKeyring
    except ImportError:
        return False
    return isinstance(backend, EncryptedKeyring)


def prompt_source(prompt: str, *, secret: bool = True) -> CredentialSource:
    """Ask on the terminal; skipped (returns None) when stdin is not a terminal."""

    def no_terminal() -> str | None:
        return None if sys.stdin and sys.stdin.isatty() else "not used: stdin is not a terminal"

    def fetch() -> str | None:
        if no_terminal():
            return None
        if secret:
            import getpass

            return getpass.getpass(prompt) or None
        return input(prompt) or None

    return CredentialSource("interactive prompt", fetch, no_terminal)


def resolve_credential(what: str, sources: Sequence[CredentialSource]) -> Secret:
    """The first credential any source yields, as a :class:`Secret`; else a CredentialsError naming all tried."""
    for source in sources:
        value = source.fetch()
        if value:
            log.debug("%s taken from %s", what, source.describe)
            return Secret(value)
    tried = ", ".join(_described(s) for s in sources) or "nothing"
    raise CredentialsError(f"no {what} found (tried: {tried})")


def _described(source: CredentialSource) -> str:
    """A source's name for an error message, with why it was skipped (if it says)."""
    reason = source.skipped() if source.skipped is not None else None
    return f"{source.describe} ({reason})" if reason else source.describe
