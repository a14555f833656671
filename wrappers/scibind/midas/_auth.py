"""Midas credentials: log in with email + API key, send the token as the ``token`` parameter, log in again on -101.

Midas tokens are parameters, not headers: the flow puts the token in the form body of ``POST`` calls (so it
stays out of URLs and logs) and in the query string of ``GET``/``PUT`` calls (downloads, uploads of tracker
results). ``midas.login`` does not say when a token expires (100 minutes by default, and a new login returns
the still-valid token), so the flow logs in again when the server answers -101 "Invalid token", once, and
repeats the call. Like every scibind auth it is wrapped in :class:`~scibind.auth.ScopedAuth`, so the token only
ever goes to the Midas origin, and never over plain http off loopback.

Credentials, first found wins: arguments, ``MIDAS_EMAIL`` + ``MIDAS_API_KEY`` (``MIDAS_APPNAME``), the keyring
(service ``scibind-midas``, the email), then a ready token (``token=`` / ``MIDAS_TOKEN``, no re-login).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

import httpx

from .._core.retry import STREAM_EXT
from .._core.secrets import Secret
from ..auth import env_source, explicit_source, keyring_source
from ..errors import ConfigurationError, CredentialsError
from ._wire import INVALID_TOKEN, envelope, fail_code

if TYPE_CHECKING:
    import asyncio

__all__ = ["KEYRING_SERVICE", "NO_TOKEN_METHODS", "MidasTokenAuth", "midas_auth", "midas_url"]

KEYRING_SERVICE = "scibind-midas"

#: Methods that never take the API token (public, or they log in, or use an upload token or a password).
NO_TOKEN_METHODS = frozenset(
    {
        "midas.version",
        "midas.info",
        "midas.modules.list",
        "midas.login",
        "midas.mfa.otp.login",
        "midas.user.apikey.default",
        "midas.upload.perform",
        "midas.upload.getoffset",
    }
)


def _method(request: httpx.Request) -> str | None:
    name: str | None = request.url.params.get("method")
    return name


def with_token(request: httpx.Request, token: Secret) -> httpx.Request:
    """A copy of ``request`` carrying ``token``: in the form body of a form POST, else in the query (pure)."""
    value = token.reveal()
    if request.method == "POST" and request.headers.get("Content-Type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        pairs = [
            (k, v)
            for k, v in parse_qsl(request.content.decode(), keep_blank_values=True)
            if k != "token"
        ]
        body = urlencode([*pairs, ("token", value)]).encode()
        headers = request.headers.copy()
        headers["Content-Length"] = str(len(body))
        return httpx.Request(
            request.method,
            request.url,
            headers=headers,
            content=body,
            extensions=request.extensions,
        )
    return httpx.Request(
        request.method,
        request.url.copy_set_param("token", value),
        headers=request.headers,
        stream=request.stream,
        extensions=request.extensions,
    )


class MidasTokenAuth(httpx.Auth):
    """Midas' token flow (see the module docstring). Thread- and task-safe: one login at a time."""

    def __init__(
        self,
        api_url: str,
        email: str | None = None,
        api_key: str | Secret | None = None,
        *,
        appname: str = "Default",
        token: str | Secret | None = None,
        otp: Callable[[], str] | None = None,
    ) -> None:
        self.api_url = api_url
        self.email = email
        self.api_key = Secret(api_key) if api_key is not None else None
        self.appname = appname
        self.token: Secret | None = Secret(token) if token else None
        self.otp = otp
        self.login_count = 0
        self._thread_lock = threading.Lock()
        self._async_locks: dict[int, asyncio.Lock] = {}

    @property
    def can_login(self) -> bool:
        return bool(self.email and self.api_key)

    # -- pure pieces ----------------------------------------------------------------------------------------
    def login_request(self) -> httpx.Request:
        if not self.can_login:
            raise CredentialsError(
                "the Midas token was rejected and there is no API key to log in again"
            )
        assert self.api_key is not None and self.email is not None
        return httpx.Request(
            "POST",
            self.api_url,
            params={"method": "midas.login"},
            data={"email": self.email, "apikey": self.api_key.reveal(), "appname": self.appname},
        )

    def mfa_request(self, mfa_token_id: str) -> httpx.Request:
        if self.otp is None:
            raise CredentialsError(
                f"Midas wants a one-time password for {self.email}: pass otp=<callable>"
            )
        return httpx.Request(
            "POST",
            self.api_url,
            params={"method": "midas.mfa.otp.login"},
            data={"mfaTokenId": mfa_token_id, "otp": self.otp()},
        )

    def parse_login(self, response: httpx.Response) -> tuple[Secret | None, str | None]:
        """``(token, None)``, or ``(None, mfa_token_id)`` when a one-time password is needed."""
        body = envelope(response.content)
        if body is None or response.status_code != 200:
            raise CredentialsError(
                f"Midas login failed: HTTP {response.status_code}, not a Midas answer"
            )
        if fail_code(body) is not None:
            raise CredentialsError(
                f"Midas refused the login of {self.email}: {body.get('message')} "
                f"(code {body.get('code')})"
            )
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        if data.get("token"):
            return Secret(str(data["token"])), None
        if data.get("mfa_token_id"):
            return None, str(data["mfa_token_id"])
        raise CredentialsError("Midas login answered without a token")

    def _accept(self, token: Secret) -> None:
        self.token = token
        self.login_count += 1

    @staticmethod
    def wants_token(request: httpx.Request) -> bool:
        return _method(request) not in NO_TOKEN_METHODS

    @staticmethod
    def invalid_token(request: httpx.Request, response: httpx.Response) -> bool:
        """Whether a (buffered) answer is -101; streamed downloads are never inspected."""
        if request.extensions.get(STREAM_EXT):
            return False
        body = envelope(response.content)
        return body is not None and fail_code(body) == INVALID_TOKEN

    # -- sync ------------------------------------------------------------------------------------------------
    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.wants_token(request):
            yield request
            return
        used = self.token
        for attempt in (1, 2):
            if self.token is None or attempt == 2:
                with self._thread_lock:
                    if self.token is None or self.token == used:  # nobody logged in meanwhile
                        response = yield self.login_request()
                        response.read()
                        token, mfa = self.parse_login(response)
                        if token is None:
                            response = yield self.mfa_request(str(mfa))
                            response.read()
                            token = self._otp_token(response)
                        self._accept(token)
            used = self.token
            assert used is not None
            response = yield with_token(request, used)
            if attempt == 2 or not self.can_login or request.extensions.get(STREAM_EXT):
                return
            response.read()
            if not self.invalid_token(request, response):
                return

    # -- async -----------------------------------------------------------------------------------------------
    def _async_lock(self) -> asyncio.Lock:
        import asyncio

        loop_id = id(asyncio.get_running_loop())
        lock = self._async_locks.get(loop_id)
        if lock is None:
            lock = self._async_locks[loop_id] = asyncio.Lock()
        return lock

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self.wants_token(request):
            yield request
            return
        used = self.token
        for attempt in (1, 2):
            if self.token is None or attempt == 2:
                async with self._async_lock():
                    if self.token is None or self.token == used:
                        response = yield self.login_request()
                        await response.aread()
                        token, mfa = self.parse_login(response)
                        if token is None:
                            response = yield self.mfa_request(str(mfa))
                            await response.aread()
                            token = self._otp_token(response)
                        self._accept(token)
            used = self.token
            assert used is not None
            response = yield with_token(request, used)
            if attempt == 2 or not self.can_login or request.extensions.get(STREAM_EXT):
                return
            await response.aread()
            if not self.invalid_token(request, response):
                return

    def _otp_token(self, response: httpx.Response) -> Secret:
        token, _ = self.parse_login(response)
        if token is None:
            raise CredentialsError("Midas one-time-password login answered without a token")
        return token

    def __repr__(self) -> str:
        return f"MidasTokenAuth(email={self.email!r}, token={self.token!r})"


def midas_url(explicit: str | None = None) -> str:
    """The server root: argument or ``MIDAS_URL``."""
    url = explicit_source(explicit).fetch() or env_source("MIDAS_URL").fetch()
    if not url:
        raise ConfigurationError("no Midas URL: pass one, or set MIDAS_URL")
    return url.rstrip("/")


def midas_auth(
    base_url: str,
    *,
    email: str | None = None,
    api_key: str | Secret | None = None,
    appname: str | None = None,
    token: str | Secret | None = None,
    otp: Callable[[], str] | None = None,
    anonymous: bool = False,
) -> MidasTokenAuth | None:
    """The token flow for the first credentials found (see the module docstring); ``None`` when anonymous."""
    user = explicit_source(email).fetch() or env_source("MIDAS_EMAIL").fetch()
    key = explicit_source(api_key).fetch() or env_source("MIDAS_API_KEY").fetch()
    if user and not key:
        key = keyring_source(KEYRING_SERVICE, user).fetch()
    app = appname or env_source("MIDAS_APPNAME").fetch() or "Default"
    ready = explicit_source(token).fetch() or env_source("MIDAS_TOKEN").fetch()
    api_url = f"{base_url}/api/json"
    if key and not user:
        raise CredentialsError("a Midas API key needs the account's email (email= or MIDAS_EMAIL)")
    if user and key:
        return MidasTokenAuth(api_url, user, key, appname=app, token=ready, otp=otp)
    if ready:
        return MidasTokenAuth(api_url, token=ready)
    if anonymous:
        return None
    raise CredentialsError(
        "no Midas credentials (tried: arguments, MIDAS_EMAIL + MIDAS_API_KEY, keyring, MIDAS_TOKEN); "
        "pass anonymous=True to read public data without signing in"
    )
