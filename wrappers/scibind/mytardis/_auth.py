"""MyTardis credentials: an API key (``Authorization: ApiKey user:key``) or a password (HTTP Basic).

Order: arguments (``api_key`` before ``password``), then the environment: ``MYTARDIS_USERNAME``,
``MYTARDIS_API_KEY``, ``MYTARDIS_PASSWORD`` (and mytardisclient's ``MYTARDISCLIENT_USERNAME`` /
``MYTARDISCLIENT_API_KEY``), then the system keyring (service ``scibind-mytardis``, the username) for a
password. Without any credential the client refuses to start unless ``anonymous=True`` (public data only).
"""

from __future__ import annotations

import httpx

from .._core.secrets import Secret
from ..auth import (
    BasicAuth,
    CredentialSource,
    HeaderAuth,
    env_source,
    explicit_source,
    keyring_source,
)
from ..errors import ConfigurationError, CredentialsError

__all__ = ["KEYRING_SERVICE", "mytardis_auth", "mytardis_url"]

KEYRING_SERVICE = "scibind-mytardis"


def _first(sources: list[CredentialSource]) -> str | None:
    for source in sources:
        value = source.fetch()
        if value:
            return value
    return None


def mytardis_url(explicit: str | None = None) -> str:
    """The site root: argument, ``MYTARDIS_URL`` or ``MYTARDISCLIENT_URL``."""
    url = _first([explicit_source(explicit), env_source("MYTARDIS_URL", "MYTARDISCLIENT_URL")])
    if not url:
        raise ConfigurationError(
            "no MyTardis URL: pass one, or set MYTARDIS_URL (or MYTARDISCLIENT_URL)"
        )
    return url.rstrip("/")


def mytardis_auth(
    *,
    username: str | None = None,
    api_key: str | Secret | None = None,
    password: str | Secret | None = None,
    anonymous: bool = False,
) -> httpx.Auth | None:
    """The auth flow for the first credential found (see the module docstring); ``None`` when anonymous."""
    user = _first(
        [
            explicit_source(username),
            env_source("MYTARDIS_USERNAME", "MYTARDISCLIENT_USERNAME"),
        ]
    )
    key = _first([explicit_source(api_key)])
    secret = _first([explicit_source(password)])
    if key is None and secret is None:
        key = _first([env_source("MYTARDIS_API_KEY", "MYTARDISCLIENT_API_KEY")])
    if key is None and secret is None:
        sources = [env_source("MYTARDIS_PASSWORD")]
        if user:
            sources.append(keyring_source(KEYRING_SERVICE, user))
        secret = _first(sources)
    if (key or secret) and not user:
        raise CredentialsError(
            "a MyTardis API key or password needs a username (username= or MYTARDIS_USERNAME)"
        )
    if user and key:
        return HeaderAuth(Secret(f"{user}:{key}"), scheme="ApiKey")
    if user and secret:
        return BasicAuth(user, Secret(secret))
    if anonymous:
        return None
    raise CredentialsError(
        "no MyTardis credentials (tried: arguments, MYTARDIS_API_KEY/MYTARDISCLIENT_API_KEY, "
        "MYTARDIS_PASSWORD, keyring); pass anonymous=True to read public data without signing in"
    )
