"""DANDI instances (names -> API URLs) and where an instance's API key comes from (as dandi-cli looks)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import attrs
import httpx

from ..errors import ConfigurationError, CredentialsError

if TYPE_CHECKING:
    from .._core.secrets import Secret
    from ..auth import CredentialSource

__all__ = [
    "KNOWN_INSTANCES",
    "DandiInstance",
    "api_key_env_var",
    "credential_sources",
    "resolve_api_key",
    "resolve_instance",
]


@attrs.frozen
class DandiInstance:
    """A DANDI Archive deployment: its short ``name`` (keys, env vars), API URL and web URL."""

    name: str
    api_url: str
    web_url: str | None = None


KNOWN_INSTANCES: dict[str, DandiInstance] = {
    i.name: i
    for i in (
        DandiInstance("dandi", "https://api.dandiarchive.org/api", "https://dandiarchive.org"),
        DandiInstance(
            "dandi-sandbox",
            "https://api.sandbox.dandiarchive.org/api",
            "https://sandbox.dandiarchive.org",
        ),
        DandiInstance("linc", "https://api.lincbrain.org/api", "https://lincbrain.org"),
        DandiInstance(
            "linc-staging",
            "https://staging-api.lincbrain.org/api",
            "https://staging.lincbrain.org",
        ),
        DandiInstance(
            "ember-dandi",
            "https://api-dandi.emberarchive.org/api",
            "https://dandi.emberarchive.org",
        ),
    )
}


def resolve_instance(instance: str | None = None) -> DandiInstance:
    """The instance for a known name, a known API or web URL, or any API URL.

    ``None`` means ``$DANDI_INSTANCE`` (default ``dandi``). An unknown URL is taken as the API URL and named
    after its host (and port), like dandi-cli does.
    """
    value = (instance or os.environ.get("DANDI_INSTANCE") or "dandi").strip()
    if "://" not in value:
        known = KNOWN_INSTANCES.get(value)
        if known is None:
            raise ConfigurationError(
                f"unknown DANDI instance {value!r}: use one of {sorted(KNOWN_INSTANCES)} or an API URL"
            )
        return known
    url = value.rstrip("/")
    for known in KNOWN_INSTANCES.values():
        if url in (known.api_url, known.web_url):
            return known
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"invalid DANDI API URL {value!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"invalid DANDI API URL {value!r}")
    name = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
    return DandiInstance(name, url)


def api_key_env_var(instance: DandiInstance) -> str:
    """dandi-cli's per-instance variable: ``DANDI_API_KEY``, ``DANDI_SANDBOX_API_KEY``, ..."""
    return f"{instance.name.upper().replace('-', '_')}_API_KEY"


def credential_sources(
    instance: DandiInstance, api_key: str | Secret | None = None
) -> list[CredentialSource]:
    """Argument, then ``<INSTANCE>_API_KEY``, then keyring ``dandi-api-<instance>``/``key`` (as dandi-cli).

    ``DANDI_API_KEY`` is the production instance's variable; it is also tried for an instance given by a URL
    scibind does not know (a private or test server, whose variable name has the host in it), never for the
    other known instances (sandbox, LINC, EMBER), so a production key is not sent to them.
    """
    from ..auth import env_source, explicit_source, keyring_source

    names = [api_key_env_var(instance)]
    if instance.name not in KNOWN_INSTANCES:
        names.append("DANDI_API_KEY")
    return [
        explicit_source(api_key),
        env_source(*names),
        keyring_source(f"dandi-api-{instance.name}", "key"),
    ]


def resolve_api_key(instance: DandiInstance, api_key: str | Secret | None = None) -> Secret | None:
    """The API key for ``instance``, or ``None`` (anonymous access: public data can still be read)."""
    from ..auth import resolve_credential

    try:
        return resolve_credential(
            f"DANDI API key for {instance.name}", credential_sources(instance, api_key)
        )
    except CredentialsError:
        return None
