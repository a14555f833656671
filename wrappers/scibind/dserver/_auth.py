"""dserver credentials the way dtool users keep them.

Order: explicit token -> ``DSERVER_TOKEN`` -> dtool's config file (``~/.config/dtool/dtool.json``) -> a token
minted at ``DSERVER_TOKEN_GENERATOR_URL`` (``POST {"username", "password"}`` -> ``{"token"}``) from a username and
password (argument, ``DSERVER_USERNAME``/``DSERVER_PASSWORD``, the config file, keyring, or a prompt when stdin is
a terminal). A minted token is cached and refreshed when it expires or the server answers 401; a static token
that the server rejects is replaced by a minted one when credentials are available.
"""

from __future__ import annotations

import os
from pathlib import Path

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

__all__ = ["TokenGeneratorMinter", "dserver_auth", "dserver_url", "dtool_config_path"]

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


def dserver_auth(
    *,
    token: str | Secret | None = None,
    username: str | None = None,
    password: str | Secret | None = None,
    token_generator_url: str | None = None,
    interactive: bool | None = None,
    allow_insecure_http: bool = False,
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
        prompt = [] if interactive is False else [prompt_source("dserver username: ", secret=False)]
        user = user or resolve_credential("dserver username", prompt).reveal()
        secret_sources: list[CredentialSource] = [
            explicit_source(password),
            env_source("DSERVER_PASSWORD"),
            json_file_source(dtool_config_path, "DSERVER_PASSWORD"),
            keyring_source(KEYRING_SERVICE, user),
        ]
        if interactive is not False:
            secret_sources.append(prompt_source(f"dserver password for {user}: "))
        try:
            pw = resolve_credential("dserver password", secret_sources)
        except CredentialsError:
            if static is None:
                raise
        else:
            minter = TokenGeneratorMinter(
                generator, user, pw, allow_insecure_http=allow_insecure_http
            )
            return RefreshingTokenAuth(minter, token=static, skew=30.0)
    if static is not None:
        return HeaderAuth(static)
    raise CredentialsError(
        "no dserver credentials: pass token=, set DSERVER_TOKEN (environment or dtool config), or set "
        "DSERVER_TOKEN_GENERATOR_URL with DSERVER_USERNAME/DSERVER_PASSWORD"
    )


def _first_secret(sources: list[CredentialSource]) -> Secret | None:
    for source in sources:
        value = source.fetch()
        if value:
            return Secret(value)
    return None
