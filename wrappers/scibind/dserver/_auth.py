"""dserver credentials the way dtool users keep them.

Order: explicit token -> ``DSERVER_TOKEN`` -> dtool's config file (``~/.config/dtool/dtool.json``) -> a token
minted at ``DSERVER_TOKEN_GENERATOR_URL`` (``POST {"username", "password"}`` -> ``{"token"}``) from a username and
password (argument, ``DSERVER_USERNAME``/``DSERVER_PASSWORD``, the config file, keyring, or a prompt when stdin is
a terminal). A minted token is cached and refreshed when it expires or the server refuses it (401, or 422 from
dserver's JWT layer for a malformed or badly signed token); a static token that the server refuses is replaced by
a minted one when credentials are available. A refused static token without credentials to mint is an
:class:`~scibind.errors.AuthenticationError`.

``token_cache=True`` (or ``SCIBIND_TOKEN_CACHE=1``) also keeps minted tokens on disk
(:mod:`scibind._core.token_cache`, keyed by a hash of the generator URL and the username), so the next process
reuses a token while it is valid instead of minting one, as dtool-lookup-api does with its config file. A cached
token the server refuses is dropped and a new one minted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from .._core.secrets import Secret
from ..auth import (
    CredentialSource,
    HeaderAuth,
    RefreshingTokenAuth,
    check_credential_url,
    env_source,
    explicit_source,
    json_file_source,
    keyring_source,
    prompt_source,
    resolve_credential,
)
from ..errors import ConfigurationError, CredentialsError
from ._errors import is_token_rejection

if TYPE_CHECKING:
    from .._core.token_cache import TokenCache

__all__ = [
    "DServerTokenAuth",
    "TokenGeneratorMinter",
    "dserver_auth",
    "dserver_url",
    "dtool_config_path",
]

KEYRING_SERVICE = "scibind-dserver"


def dtool_config_path() -> Path:
    """dtool's JSON config file (``DTOOL_CONFIG_PATH`` or ``~/.config/dtool/dtool.json``)."""
    return Path(
        os.environ.get("DTOOL_CONFIG_PATH") or Path.home() / ".config" / "dtool" / "dtool.json"
    )


def _setting(name: str, explicit: str | None = None) -> str | None:
    """A plain setting: argument, then environment, then the dtool config file (as dtoolcore reads them)."""
    sources = [
        explicit_source(explicit),
        env_source(name),
        json_file_source(dtool_config_path, name),
    ]
    for source in sources:
        value = source.fetch()
        if value:
            return value
    return None


def dserver_url(explicit: str | None = None) -> str:
    """The server URL: argument, ``DSERVER_URL``, or the dtool config file."""
    url = _setting("DSERVER_URL", explicit)
    if not url:
        raise ConfigurationError(
            "no dserver URL: pass one, or set DSERVER_URL (environment or dtool config)"
        )
    return url.rstrip("/")


class TokenGeneratorMinter:
    """Mints dserver tokens at a token generator (jic-dtool/token-generator-ldap contract)."""

    def __init__(
        self, url: str, username: str, password: Secret, *, allow_insecure_http: bool = False
    ) -> None:
        check_credential_url(url, allow_insecure_http=allow_insecure_http)
        self.url = url
        self.username = username
        self.password = password

    def build_request(self) -> httpx.Request:
        return httpx.Request(
            "POST", self.url, json={"username": self.username, "password": self.password.reveal()}
        )

    def parse_response(self, response: httpx.Response) -> tuple[Secret, float | None]:
        try:
            body = response.json() if response.status_code == 200 else {}
        except ValueError:
            body = {}
        token = body.get("token") if isinstance(body, dict) else None
        if not token:
            status = body.get("status") if isinstance(body, dict) else None
            raise CredentialsError(
                f"the token generator refused the credentials of {self.username!r} "
                f"(HTTP {response.status_code}{', status ' + str(status) if status else ''})"
            )
        return Secret(str(token)), None

    def __repr__(self) -> str:
        return f"TokenGeneratorMinter({self.url!r}, username={self.username!r})"


class DServerTokenAuth(RefreshingTokenAuth):
    """:class:`~scibind.auth.RefreshingTokenAuth` that also mints again when dserver's JWT layer refuses the
    token with 422 (malformed, badly signed, wrong algorithm), not only on 401. Still at most once per request:
    if the new token is refused too, the refusal is what the caller gets. A refused token that came from the
    on-disk cache (``store``) is replaced there by the new one."""

    refusal_statuses = frozenset({401, 422})

    def refused(self, response: httpx.Response) -> bool:
        return is_token_rejection(response)


def dserver_auth(
    *,
    token: str | Secret | None = None,
    username: str | None = None,
    password: str | Secret | None = None,
    token_generator_url: str | None = None,
    interactive: bool | None = None,
    allow_insecure_http: bool = False,
    token_cache: bool | TokenCache | None = None,
) -> httpx.Auth:
    """The auth flow for the first credential found (see the module docstring)."""
    static = _first_secret(
        [
            explicit_source(token),
            env_source("DSERVER_TOKEN"),
            json_file_source(dtool_config_path, "DSERVER_TOKEN"),
        ]
    )
    generator = _setting("DSERVER_TOKEN_GENERATOR_URL", token_generator_url)
    user = _setting("DSERVER_USERNAME", username)
    if generator and (user or static is None):
        if not user:
            user_sources = [
                explicit_source(username),
                env_source("DSERVER_USERNAME"),
                json_file_source(dtool_config_path, "DSERVER_USERNAME"),
                _prompt(interactive, "dserver username: ", secret=False),
            ]
            user = resolve_credential("dserver username", user_sources).reveal()
        secret_sources: list[CredentialSource] = [
            explicit_source(password),
            env_source("DSERVER_PASSWORD"),
            json_file_source(dtool_config_path, "DSERVER_PASSWORD"),
            keyring_source(KEYRING_SERVICE, user),
            _prompt(interactive, f"dserver password for {user}: ", secret=True),
        ]
        try:
            pw = resolve_credential("dserver password", secret_sources)
        except CredentialsError:
            if static is None:
                raise
        else:
            minter = TokenGeneratorMinter(
                generator, user, pw, allow_insecure_http=allow_insecure_http
            )
            from .._core.token_cache import resolve_token_cache

            cache = resolve_token_cache(token_cache)
            store = cache.entry("dserver-token-generator", generator, user) if cache else None
            return DServerTokenAuth(minter, token=static, skew=30.0, store=store)
    if static is not None:
        return HeaderAuth(static)
    raise CredentialsError(
        "no dserver credentials: pass token=, set DSERVER_TOKEN (environment or dtool config), or set "
        "DSERVER_TOKEN_GENERATOR_URL with DSERVER_USERNAME/DSERVER_PASSWORD"
    )


def _prompt(interactive: bool | None, text: str, *, secret: bool) -> CredentialSource:
    """A terminal prompt, or (``interactive=False``) a source that never asks and says why in messages."""
    if interactive is False:
        return CredentialSource(
            "interactive prompt", lambda: None, lambda: "off: interactive=False"
        )
    return prompt_source(text, secret=secret)


def _first_secret(sources: list[CredentialSource]) -> Secret | None:
    for source in sources:
        value = source.fetch()
        if value:
            return Secret(value)
    return None
