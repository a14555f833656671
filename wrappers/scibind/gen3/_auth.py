"""Gen3 credentials, the way the Gen3 SDK finds them, and the token flows that use them.

Where credentials come from (first that applies wins):

1. ``access_token=`` (or ``credentials="accesstoken:///<token>"``): a ready access token, sent as is (no refresh).
2. ``client_id=`` + ``client_secret=``: an OIDC client; tokens from ``POST <commons>/user/oauth2/token``
   (``client_credentials`` grant with ``scopes``, or the ``refresh_token`` grant when an OAuth refresh token
   is also given).
3. ``api_key=`` / ``refresh_token=``: an API key (the JWT in ``credentials.json``, or that file's mapping);
   the SDK calls this a refresh token.
4. ``credentials=``: a ``credentials.json`` path, or a bare name looked up as ``~/.gen3/<name>`` and
   ``~/.gen3/<name>.json``.
5. ``GEN3_API_KEY``: a path or a name as above (or ``accesstoken:///<token>``, or ``idp://wts/<idp>``); else
   ``~/.gen3/credentials.json``.
6. ``idp=`` (or ``credentials="idp://wts/<idp>"``), or nothing found while running in a Kubernetes pod: the
   workspace token service of a Gen3 workspace (``http://workspace-token-service.<NAMESPACE>.svc.cluster.local``),
   which recognises the workspace by its network address; no credential is sent to it.

API keys are exchanged for short-lived access tokens at the key's own Fence
(``POST <iss>/credentials/cdis/access_token``), cached in memory, refreshed five minutes before they expire and
once when a service answers 401 (or 403 with a token that is not brand new: sheepdog and indexd ask arborist,
which refuses an expired token with 403), one refresh at a time under threads and asyncio
(:class:`scibind.auth.RefreshingTokenAuth`). ``token_cache=True`` (or ``SCIBIND_TOKEN_CACHE=1``) also keeps the
access token on disk for the next process (:mod:`scibind._core.token_cache`). The commons endpoint defaults to
the key's ``iss`` claim.
Credential files readable by group or others draw an :class:`InsecureCredentialsWarning`. Tokens and keys are
held as :class:`~scibind._core.secrets.Secret` and never appear in logs, reprs or errors.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import stat
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from .._core.retry import IDEMPOTENT_EXT
from .._core.secrets import Secret, redact_text, redact_url
from ..auth import HeaderAuth, RefreshingTokenAuth, TokenStore, check_credential_url
from ..errors import ConfigurationError, CredentialsError

if TYPE_CHECKING:
    from .._core.token_cache import TokenCache

__all__ = [
    "DEFAULT_SCOPES",
    "REFRESH_ON",
    "REFRESH_SKEW",
    "ApiKeyMinter",
    "Gen3Credentials",
    "InsecureCredentialsWarning",
    "OAuthClientMinter",
    "WorkspaceTokenMinter",
    "endpoint_from_token",
    "gen3_credentials",
    "read_credentials_file",
    "wts_url",
]

DEFAULT_SCOPES: tuple[str, ...] = ("user", "data", "openid")
REFRESH_SKEW = 300.0
"""Seconds before expiry at which a token is replaced (as the SDK's ``Gen3Auth``)."""
REFRESH_ON = (401, 403)
"""Statuses after which a request is repeated once with a new token (403 only for a token not minted just now)."""
ACCESS_TOKEN_PREFIX = "accesstoken:///"
WTS_PREFIX = "idp://wts/"


class InsecureCredentialsWarning(UserWarning):
    """A credentials file can be read or written by other users (``chmod 600`` it)."""


# -- JWT claims (read, never verified: the server verifies) ------------------------------------------------
def _claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError):
        raise CredentialsError("the Gen3 credential is not a JWT") from None
    if not isinstance(claims, dict):
        raise CredentialsError("the Gen3 credential is not a JWT")
    return claims


def _fence_url(token: str) -> str:
    """The Fence base URL that issued ``token`` (its ``iss``, e.g. ``https://commons/user``)."""
    issuer = _claims(token).get("iss")
    if not isinstance(issuer, str) or "://" not in issuer:
        raise CredentialsError("the Gen3 credential has no usable 'iss' claim")
    return issuer.rstrip("/")


def endpoint_from_token(token: str) -> str:
    """The commons endpoint of a Fence-issued JWT: its ``iss`` without the trailing ``/user``.

    The SDK keeps only scheme, host and port; keeping the rest of the path also supports a commons served
    under a path prefix.
    """
    fence = _fence_url(token)
    return fence[: -len("/user")] if fence.endswith("/user") else fence


def _same_endpoint(a: str, b: str) -> bool:
    ua, ub = httpx.URL(a.rstrip("/") + "/"), httpx.URL(b.rstrip("/") + "/")
    default = {"http": 80, "https": 443}
    return (ua.scheme, ua.host.lower(), ua.port or default.get(ua.scheme), ua.path) == (
        ub.scheme,
        ub.host.lower(),
        ub.port or default.get(ub.scheme),
        ub.path,
    )


# -- what a failed mint says (Fence errors are HTML pages, OAuth errors JSON) ----------------------------------
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.S | re.I)
_TAGS = re.compile(r"<[^>]+>")


def fence_message(response: httpx.Response) -> str:
    """A short human message from a Fence error response (HTML page, OAuth JSON or plain text)."""
    text = response.text if response.content else ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "error_description", "message") if body.get(k)]
        if parts:
            return ": ".join(parts)[:300]
    match = _PARAGRAPH.search(text)
    if match:
        return html.unescape(_TAGS.sub("", match.group(1))).strip()[:300]
    return (_TAGS.sub(" ", text).strip() or response.reason_phrase or "error")[:300]


def _mint_failure(
    what: str, response: httpx.Response, secrets: Sequence[Secret]
) -> CredentialsError:
    message = redact_text(fence_message(response), [s.reveal() for s in secrets])
    return CredentialsError(
        f"{what} was refused by {redact_url(response.request.url)} "
        f"(HTTP {response.status_code}: {message})"
    )


def _token_from(response: httpx.Response, what: str, secrets: Sequence[Secret]) -> Secret:
    if response.status_code != 200:
        raise _mint_failure(what, response, secrets)
    try:
        body = response.json()
    except ValueError:
        body = None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise CredentialsError(
            f"{what}: {redact_url(response.request.url)} answered without an access_token"
        )
    return Secret(token)


# -- minters -----------------------------------------------------------------------------------------------------
class ApiKeyMinter:
    """Exchanges a Gen3 API key for access tokens at the Fence that issued it."""

    def __init__(self, api_key: Secret, *, allow_insecure_http: bool = False) -> None:
        self.api_key = api_key
        self.fence_url = _fence_url(api_key.reveal())
        check_credential_url(self.fence_url, allow_insecure_http=allow_insecure_http)

    def build_request(self) -> httpx.Request:
        from scibind_generated.gen3_fence.api.credentials import get_access_token
        from scibind_generated.gen3_fence.models import ApiKeyCredentials

        kwargs = get_access_token._get_kwargs(body=ApiKeyCredentials(api_key=self.api_key.reveal()))
        return httpx.Request(
            kwargs["method"].upper(),
            self.fence_url + kwargs["url"],
            params=kwargs.get("params") or None,
            json=kwargs["json"],
            extensions={IDEMPOTENT_EXT: True},  # a repeated exchange only mints another token
        )

    def parse_response(self, response: httpx.Response) -> tuple[Secret, float | None]:
        return _token_from(response, "the Gen3 API key", [self.api_key]), None

    def __repr__(self) -> str:
        return f"ApiKeyMinter({self.fence_url!r})"


class OAuthClientMinter:
    """Mints tokens at Fence's OAuth2 endpoint for a confidential client (client credentials or refresh grant)."""

    def __init__(
        self,
        fence_url: str,
        client_id: str,
        client_secret: Secret,
        *,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        refresh_token: Secret | None = None,
        allow_insecure_http: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_credential_url(fence_url, allow_insecure_http=allow_insecure_http)
        self.fence_url = fence_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = tuple(scopes)
        self.refresh_token = refresh_token
        self.clock = clock

    def build_request(self) -> httpx.Request:
        from scibind_generated.gen3_fence.api.oauth2 import create_oauth2_token
        from scibind_generated.gen3_fence.models import TokenRequest

        if self.refresh_token is not None:
            body = TokenRequest(
                grant_type="refresh_token",
                refresh_token=self.refresh_token.reveal(),
                scope=" ".join(self.scopes),
            )
        else:
            body = TokenRequest(grant_type="client_credentials", scope=" ".join(self.scopes))
        kwargs = create_oauth2_token._get_kwargs(body=body)
        basic = f"{self.client_id}:{self.client_secret.reveal()}".encode()
        return httpx.Request(
            kwargs["method"].upper(),
            self.fence_url + kwargs["url"],
            data=kwargs["data"],
            headers={"Authorization": "Basic " + base64.b64encode(basic).decode()},
            extensions={IDEMPOTENT_EXT: True},
        )

    def parse_response(self, response: httpx.Response) -> tuple[Secret, float | None]:
        secrets = [self.client_secret, *([self.refresh_token] if self.refresh_token else [])]
        token = _token_from(response, f"the OAuth client {self.client_id!r}", secrets)
        expires_in = response.json().get("expires_in")
        expires_at = (
            self.clock() + float(expires_in) if isinstance(expires_in, int | float) else None
        )
        return token, expires_at

    def __repr__(self) -> str:
        return f"OAuthClientMinter({self.fence_url!r}, client_id={self.client_id!r})"


def wts_url(namespace: str | None = None) -> str:
    """The workspace token service of a Gen3 workspace: ``http://workspace-token-service.<namespace>...``,
    the namespace from ``NAMESPACE`` (as the SDK), else ``default``."""
    space = namespace or os.environ.get("NAMESPACE") or "default"
    return f"http://workspace-token-service.{space}.svc.cluster.local"


class WorkspaceTokenMinter:
    """Gets access tokens from the workspace token service (WTS) of a Gen3 workspace.

    ``GET <wts>/token/`` (with ``?idp=<idp>`` for a commons other than the workspace's own, ``local``) answers
    ``{"token": ...}``. The WTS tells workspaces apart by their network address, so nothing secret is sent:
    plain http to the cluster-internal service name carries no credential (the SDK does the same); the
    token it returns is only ever sent to the commons that issued it (``endpoint``, checked on every mint).
    """

    def __init__(self, idp: str = "local", *, url: str | None = None, endpoint: str | None = None):
        self.idp = idp or "local"
        self.url = (url or wts_url()).rstrip("/")
        self.endpoint = endpoint

    def build_request(self) -> httpx.Request:
        params = {"idp": self.idp} if self.idp != "local" else None
        return httpx.Request(
            "GET", self.url + "/token/", params=params, extensions={IDEMPOTENT_EXT: True}
        )

    def parse_response(self, response: httpx.Response) -> tuple[Secret, float | None]:
        what = f"the workspace token service (idp {self.idp!r})"
        if response.status_code != 200:
            raise _mint_failure(what, response, [])
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise CredentialsError(f"{what} answered without a token")
        issued = endpoint_from_token(token)
        if self.endpoint is not None and not _same_endpoint(self.endpoint, issued):
            raise CredentialsError(
                f"{what} returned a token of {issued}, not of {self.endpoint}: it is not used"
            )
        return Secret(token), None

    def __repr__(self) -> str:
        return f"WorkspaceTokenMinter({self.url!r}, idp={self.idp!r})"


# -- credentials files -------------------------------------------------------------------------------------------
def _gen3_dir() -> Path:
    return Path(os.path.expanduser("~")) / ".gen3"


def _locate(name: str) -> tuple[Path | None, list[str]]:
    """The SDK's lookup: an existing path as is; a bare name in ``~/.gen3/`` (``.json`` added if needed)."""
    path = Path(name).expanduser()
    tried = [str(path)]
    if path.is_file():
        return path, tried
    if "/" in name or "\\" in name:
        return None, tried
    candidate = _gen3_dir() / name
    tried.append(str(candidate))
    if candidate.is_file():
        return candidate, tried
    if not name.endswith(".json"):
        candidate = candidate.with_name(name + ".json")
        tried.append(str(candidate))
        if candidate.is_file():
            return candidate, tried
    return None, tried


def _check_permissions(path: Path) -> None:
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"{path} is accessible by other users (mode {stat.filemode(mode)}); "
            f"run `chmod 600 {path}`",
            InsecureCredentialsWarning,
            stacklevel=5,
        )


def read_credentials_file(path: str | os.PathLike[str]) -> Secret:
    """The API key in a downloaded ``credentials.json`` (warns when the file's permissions are loose)."""
    p = Path(path)
    _check_permissions(p)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CredentialsError(
            f"cannot read Gen3 credentials from {p}: {type(exc).__name__}"
        ) from None
    key = data.get("api_key") if isinstance(data, dict) else None
    if not isinstance(key, str) or not key:
        raise CredentialsError(f"{p} has no 'api_key' (expected a Gen3 credentials.json)")
    return Secret(key)


def _api_key_of(value: str | Secret | Mapping[str, Any]) -> Secret:
    if isinstance(value, Mapping):
        key = value.get("api_key")
        if not isinstance(key, str) or not key:
            raise CredentialsError("the Gen3 credentials mapping has no 'api_key'")
        return Secret(key)
    return value if isinstance(value, Secret) else Secret(value)


# -- the resolved credentials -------------------------------------------------------------------------------------
@attrs.frozen
class Gen3Credentials:
    """Resolved credentials: the commons ``endpoint``, the :class:`httpx.Auth` flow, and where they came from.

    Pass one to a client as ``credentials=`` to share a token cache between clients.
    """

    endpoint: str
    auth: httpx.Auth
    source: str


def _refreshing(
    minter: Any,
    source: str,
    endpoint: str,
    skew: float,
    clock: Callable[[], float],
    store: TokenStore | None = None,
    token: Secret | None = None,
) -> Gen3Credentials:
    auth = RefreshingTokenAuth(
        minter, skew=skew, clock=clock, scheme="Bearer", store=store, refresh_on=REFRESH_ON,
        token=token,
    )  # fmt: skip
    return Gen3Credentials(endpoint, auth, source)


def _key_identity(key: Secret) -> str:
    """What names an API key in the token cache: its id (``jti``), never the key itself."""
    jti = _claims(key.reveal()).get("jti")
    if isinstance(jti, str) and jti:
        return jti
    return hashlib.sha256(key.reveal().encode()).hexdigest()


def _check_endpoint(endpoint: str | None, issued_by: str, what: str) -> str:
    if endpoint is None:
        return issued_by
    if not _same_endpoint(endpoint, issued_by):
        raise ConfigurationError(
            f"{what} was issued by {issued_by}, not by {endpoint}; its tokens are only sent to the "
            "commons that issued them (omit the endpoint to use the issuer)"
        )
    return endpoint


def _normalise(endpoint: str) -> str:
    url = httpx.URL(endpoint)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"not an http(s) URL: {redact_url(endpoint)!r}")
    return endpoint.rstrip("/")


def gen3_credentials(
    endpoint: str | None = None,
    *,
    credentials: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    api_key: str | Secret | Mapping[str, Any] | None = None,
    refresh_token: str | Secret | Mapping[str, Any] | None = None,
    access_token: str | Secret | None = None,
    client_id: str | None = None,
    client_secret: str | Secret | None = None,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    idp: str | None = None,
    token_cache: bool | TokenCache | None = None,
    allow_insecure_http: bool = False,
    skew: float = REFRESH_SKEW,
    clock: Callable[[], float] = time.time,
    transport: Any = None,
) -> Gen3Credentials:
    """Find Gen3 credentials (see the module docstring for the order) and build their auth flow.

    ``idp`` asks the workspace token service of a Gen3 workspace (``local``: the workspace's own commons).
    Without an ``endpoint`` its first token is fetched here, to learn the commons from the token's issuer
    (through ``transport`` when given). ``token_cache``: keep access tokens minted from an API key or by the
    workspace token service on disk for other processes (``True``, or a
    :class:`~scibind._core.token_cache.TokenCache`); default from ``SCIBIND_TOKEN_CACHE``, else off.
    ``clock`` is the time source for expiry decisions (tests pass the fake commons' clock).
    """
    endpoint = _normalise(endpoint) if endpoint else None
    given = [
        n
        for n, v in (
            ("credentials", credentials),
            ("api_key", api_key),
            ("refresh_token", refresh_token),
            ("access_token", access_token),
            ("idp", idp),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise ConfigurationError(f"give only one of {', '.join(given)}")
    if (client_id is None) != (client_secret is None):
        raise ConfigurationError("client_id and client_secret go together")
    from .._core.token_cache import resolve_token_cache

    cache = resolve_token_cache(token_cache)

    if isinstance(credentials, str) and credentials.startswith(ACCESS_TOKEN_PREFIX):
        access_token, credentials = credentials[len(ACCESS_TOKEN_PREFIX) :], None
    if isinstance(credentials, str) and credentials.startswith(WTS_PREFIX):
        idp, credentials = credentials[len(WTS_PREFIX) :] or "local", None
    if access_token is not None:
        return _static(endpoint, Secret(access_token), "access token argument")
    if idp is not None:
        return _from_workspace(endpoint, idp, cache, skew, clock, transport)

    if client_id is not None and client_secret is not None:
        secret = client_secret if isinstance(client_secret, Secret) else Secret(client_secret)
        oauth_refresh: Secret | None = None
        if refresh_token is not None:
            oauth_refresh = _api_key_of(refresh_token)
            endpoint = _check_endpoint(
                endpoint, endpoint_from_token(oauth_refresh.reveal()), "the refresh token"
            )
        if endpoint is None:
            raise ConfigurationError("an endpoint is needed for OIDC client credentials")
        minter = OAuthClientMinter(
            endpoint + "/user",
            client_id,
            secret,
            scopes=scopes,
            refresh_token=oauth_refresh,
            allow_insecure_http=allow_insecure_http,
            clock=clock,
        )
        return _refreshing(minter, f"OIDC client {client_id!r}", endpoint, skew, clock)

    found: tuple[Secret, str] | None = None
    key_value = api_key if api_key is not None else refresh_token
    if key_value is not None:
        key = _api_key_of(key_value)
        if _claims(key.reveal()).get("pur") == "refresh":
            raise ConfigurationError(
                "an OAuth refresh token needs client_id= and client_secret= (an API key does not)"
            )
        found = key, "API key argument"
    elif isinstance(credentials, Mapping):
        found = _api_key_of(credentials), "credentials mapping"
    if found is not None:
        return _from_api_key(endpoint, *found, allow_insecure_http, skew, clock, cache)

    name = os.fspath(credentials) if isinstance(credentials, str | os.PathLike) else None
    source = "credentials argument"
    if name is None:
        name = os.environ.get("GEN3_API_KEY") or None
        source = "GEN3_API_KEY"
        if name and name.startswith(ACCESS_TOKEN_PREFIX):
            return _static(endpoint, Secret(name[len(ACCESS_TOKEN_PREFIX) :]), source)
        if name and name.startswith(WTS_PREFIX):
            idp = name[len(WTS_PREFIX) :] or "local"
            return _from_workspace(endpoint, idp, cache, skew, clock, transport)
    if name is None:
        name, source = "credentials", "default"
    path, tried = _locate(name)
    if path is None:
        if source == "default" and os.environ.get("KUBERNETES_SERVICE_HOST"):
            # no key anywhere, inside a pod: a Gen3 workspace, as the SDK assumes
            return _from_workspace(endpoint, "local", cache, skew, clock, transport)
        raise CredentialsError(
            f"no Gen3 credentials found ({source}: tried {', '.join(tried)}); download an API key from "
            "the commons' profile page, or pass api_key=, access_token=, client_id=/client_secret= "
            "or (in a Gen3 workspace) idp="
        )
    key = read_credentials_file(path)
    return _from_api_key(endpoint, key, f"{path}", allow_insecure_http, skew, clock, cache)


def _from_workspace(
    endpoint: str | None,
    idp: str,
    cache: TokenCache | None,
    skew: float,
    clock: Callable[[], float],
    transport: Any,
) -> Gen3Credentials:
    minter = WorkspaceTokenMinter(idp, endpoint=endpoint)
    first: Secret | None = None
    if endpoint is None:  # the commons is the issuer of the workspace's tokens: ask for one now
        first, _ = minter.parse_response(_fetch_once(minter.build_request(), transport))
        endpoint = endpoint_from_token(first.reveal())
        minter.endpoint = endpoint
    store = cache.entry("gen3-wts", minter.url, idp) if cache is not None else None
    source = f"workspace token service ({minter.url}, idp {idp!r})"
    return _refreshing(minter, source, endpoint, skew, clock, store, first)


def _fetch_once(request: httpx.Request, transport: Any) -> httpx.Response:
    """Send one credential-free request with scibind's defaults (timeouts, retries)."""
    from .._core.http import build_sync_client
    from ..config import ClientConfig

    usable = transport if isinstance(transport, httpx.BaseTransport) else None
    base = f"{request.url.scheme}://{request.url.netloc.decode()}"
    with build_sync_client(ClientConfig(), base, service="gen3", transport=usable) as client:
        try:
            response = client.send(request)
            response.read()
        except httpx.HTTPError as exc:
            raise CredentialsError(
                f"cannot reach {redact_url(base)} ({type(exc).__name__}): is this a Gen3 workspace?"
            ) from None
        return response


def _static(endpoint: str | None, token: Secret, source: str) -> Gen3Credentials:
    issued = endpoint_from_token(token.reveal())
    return Gen3Credentials(
        _check_endpoint(endpoint, issued, "the access token"), HeaderAuth(token), source
    )


def _from_api_key(
    endpoint: str | None,
    key: Secret,
    source: str,
    allow_insecure_http: bool,
    skew: float,
    clock: Callable[[], float],
    cache: TokenCache | None = None,
) -> Gen3Credentials:
    minter = ApiKeyMinter(key, allow_insecure_http=allow_insecure_http)
    issued = endpoint_from_token(key.reveal())
    resolved = _check_endpoint(endpoint, issued, "the API key")
    store = cache.entry("gen3-api-key", minter.fence_url, _key_identity(key)) if cache else None
    return _refreshing(minter, source, resolved, skew, clock, store)
