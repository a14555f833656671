"""More Gen3 credentials: the workspace token service, the public access token, the SDK's ``refresh_token=``
forms, the 403 refresh policy, and the opt-in on-disk token cache."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest
from scibind import errors
from scibind._core.secrets import Secret
from scibind.auth import HeaderAuth, RefreshingTokenAuth
from scibind.gen3 import gen3_credentials
from scibind.gen3._auth import ApiKeyMinter, WorkspaceTokenMinter
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import PROJECT_ID, call, close, make_client, requests_to

WTS_HOST = "workspace-token-service.default.svc.cluster.local"


def wts_requests(fake: FakeGen3Commons) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.host.startswith("workspace-token-service.")]


def both(*fakes: FakeGen3Commons) -> httpx.MockTransport:
    """One transport for several fake commons (each answers for its own hosts)."""

    def handle(request: httpx.Request) -> httpx.Response:
        for fake in fakes:
            if fake._match_origin(request) is not None:
                return fake.handle(request)
        return httpx.Response(404)

    return httpx.MockTransport(handle)


# -- workspace token service ----------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["idp", "credentials", "env"])
async def test_workspace_token_service_without_any_credential(
    fake: FakeGen3Commons, kind: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    options: dict[str, object] = {"transport": fake.transport()}
    if how == "idp":
        options["idp"] = "local"
    elif how == "credentials":
        options["credentials"] = "idp://wts/local"
    else:
        monkeypatch.setenv("GEN3_API_KEY", "idp://wts/local")
    client = make_client(kind, **options)
    try:
        assert client.endpoint == fake.base_url  # the issuer of the workspace's tokens
        assert isinstance(client.credentials.auth, RefreshingTokenAuth)
        assert isinstance(client.credentials.auth.minter, WorkspaceTokenMinter)
        assert await call(client.programs()) == ["DEV"]
    finally:
        await close(client)
    (asked,) = wts_requests(fake)  # the first token is reused for the requests
    assert asked.url.scheme == "http" and asked.url.host == WTS_HOST
    assert asked.url.path == "/token/" and "idp" not in asked.url.params  # local: the default idp
    assert "authorization" not in asked.headers and "cookie" not in asked.headers


async def test_workspace_tokens_are_refreshed_through_the_service(
    fake: FakeGen3Commons, kind: str
) -> None:
    creds = gen3_credentials(idp="local", clock=fake.now, transport=fake.transport())
    client = make_client(kind, credentials=creds, transport=fake.transport())
    try:
        await call(client.user_info())
        fake.advance_time(fake.access_token_ttl)  # expired
        await call(client.user_info())
    finally:
        await close(client)
    assert len(wts_requests(fake)) == 2 and requests_to(fake, "/user/user") == 2


async def test_another_idp_and_the_namespace(
    fake: FakeGen3Commons, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACE", "jupyter-pods")
    wts = "http://workspace-token-service.jupyter-pods.svc.cluster.local"
    fake.origins["wts"] = wts
    other = FakeGen3Commons({"api": "https://other.fake.test", "storage": "https://s2.fake.test",
                             "wts": "http://unused.invalid"})  # fmt: skip
    other.create_program("OTHER")
    fake.wts_idps["other-commons"] = other
    client = make_client(kind, idp="other-commons", transport=both(fake, other))
    try:
        assert client.endpoint == other.base_url
        assert await call(client.programs()) == ["OTHER"]
    finally:
        await close(client)
    (asked,) = wts_requests(fake)
    assert str(asked.url) == f"{wts}/token/?idp=other-commons"


async def test_workspace_token_service_errors(fake: FakeGen3Commons, kind: str) -> None:
    with pytest.raises(errors.CredentialsError, match="not configured"):
        make_client(kind, idp="nowhere", transport=fake.transport())
    other = FakeGen3Commons({"api": "https://other.fake.test", "storage": "https://s2.fake.test"})
    fake.wts_idps["other-commons"] = other
    # an explicit endpoint: no request at construction, and a token of another commons is refused
    client = make_client(
        kind, endpoint=fake.base_url, idp="other-commons", transport=both(fake, other)
    )
    try:
        with pytest.raises(errors.CredentialsError, match=r"not of https://commons\.fake\.test"):
            await call(client.programs())
    finally:
        await close(client)
    assert not [r for r in other.requests if r.url.host == "other.fake.test"]


async def test_inside_a_pod_without_a_key_the_workspace_service_is_asked(
    fake: FakeGen3Commons, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(errors.CredentialsError, match="no Gen3 credentials"):
        gen3_credentials()
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    client = make_client(kind, transport=fake.transport())
    try:
        assert "workspace token service" in client.credentials.source
        assert await call(client.programs()) == ["DEV"]
    finally:
        await close(client)


# -- the access token itself ---------------------------------------------------------------------------------
async def test_access_token_is_public_secret_and_refreshed(
    fake: FakeGen3Commons, kind: str
) -> None:
    creds = gen3_credentials(api_key=fake.new_api_key()["api_key"], clock=fake.now)
    client = make_client(kind, credentials=creds, transport=fake.transport())
    try:
        token = await call(client.access_token())
        assert isinstance(token, Secret) and token.reveal() not in repr(token)
        assert fake.tokens_minted == 1
        await call(client.user_info())  # requests use the same token
        assert fake.tokens_minted == 1
        (used,) = [r for r in fake.requests if r.url.path == "/user/user"]
        assert used.headers["authorization"] == f"Bearer {token.reveal()}"
        fake.advance_time(fake.access_token_ttl - 100)  # inside the refresh window
        fresh = await call(client.access_token())
        assert fresh != token and fake.tokens_minted == 2
    finally:
        await close(client)


async def test_access_token_of_static_credentials(fake: FakeGen3Commons, kind: str) -> None:
    given = fake.mint_access_token()
    client = make_client(kind, access_token=given, transport=fake.transport())
    try:
        assert isinstance(client.credentials.auth, HeaderAuth)
        assert (await call(client.access_token())).reveal() == given
    finally:
        await close(client)


# -- the SDK's refresh_token= ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["string", "mapping"])
async def test_sdk_style_api_key_as_refresh_token(
    fake: FakeGen3Commons, kind: str, form: str
) -> None:
    key = fake.new_api_key()
    value: object = key["api_key"] if form == "string" else key  # credentials.json's mapping
    client = make_client(kind, refresh_token=value, transport=fake.transport())
    try:
        assert isinstance(client.credentials.auth, RefreshingTokenAuth)
        assert isinstance(client.credentials.auth.minter, ApiKeyMinter)
        assert client.endpoint == fake.base_url
        assert (await call(client.user_info())).username == fake.user.username
    finally:
        await close(client)
    (exchange,) = [r for r in fake.requests if r.url.path == "/user/credentials/cdis/access_token"]
    assert json.loads(exchange.content) == {"api_key": key["api_key"]}


# -- 403 from sheepdog for an expired token -------------------------------------------------------------------
async def test_sheepdog_403_for_an_expired_token_refreshes_once(
    fake: FakeGen3Commons, kind: str
) -> None:
    creds = gen3_credentials(api_key=fake.new_api_key()["api_key"], clock=fake.now)
    client = make_client(kind, credentials=creds, transport=fake.transport())
    record = {"type": "subject", "submitter_id": "s1", "projects": {"code": "test"}}
    try:
        assert (await call(client.submit(PROJECT_ID, [record]))).ok
        fake.advance_time(120)  # the token is two minutes old
        fake.expire_access_tokens()  # ... and the server considers it expired: sheepdog says 403
        assert (await call(client.submit(PROJECT_ID, [record]))).ok
        assert fake.tokens_minted == 2
        fake.expire_access_tokens()  # refused again at once: a brand-new token is not refreshed again
        result = await call(client.submit(PROJECT_ID, [record]))
        assert isinstance(result.error, errors.PermissionDeniedError)
        assert fake.tokens_minted == 2
    finally:
        await close(client)


# -- the on-disk token cache ----------------------------------------------------------------------------------
def cache_files(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "cache" / "tokens"  # SCIBIND_CACHE_DIR is tmp_path/cache (conftest)
    return sorted(directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("enable", ["argument", "environment"])
async def test_token_cache_lets_the_next_process_skip_the_exchange(
    fake: FakeGen3Commons,
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    enable: str,
) -> None:
    key = fake.new_api_key()
    options: dict[str, object] = {"token_cache": True} if enable == "argument" else {}
    if enable == "environment":
        monkeypatch.setenv("SCIBIND_TOKEN_CACHE", "1")
    for _ in range(2):  # two "processes": separate credentials, separate clients
        client = make_client(kind, api_key=key["api_key"], transport=fake.transport(), **options)
        try:
            await call(client.user_info())
        finally:
            await close(client)
    assert fake.tokens_minted == 1
    (path,) = cache_files(tmp_path)
    text = path.read_text()
    assert key["api_key"] not in text and key["key_id"] not in path.name
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_token_cache_is_off_by_default(fake: FakeGen3Commons, tmp_path: Path) -> None:
    key = fake.new_api_key()
    for _ in range(2):
        client = make_client("sync", api_key=key["api_key"], transport=fake.transport())
        await call(client.user_info())
        await close(client)
    assert fake.tokens_minted == 2 and cache_files(tmp_path) == []


async def test_a_cached_token_close_to_expiry_is_not_reused(
    fake: FakeGen3Commons, tmp_path: Path
) -> None:
    key = fake.new_api_key()
    creds = gen3_credentials(api_key=key["api_key"], token_cache=True, clock=fake.now)
    client = make_client("sync", credentials=creds, transport=fake.transport())
    await call(client.user_info())
    await close(client)
    fake.advance_time(fake.access_token_ttl - 200)  # 200 s left: within the 5-minute margin
    creds = gen3_credentials(api_key=key["api_key"], token_cache=True, clock=fake.now)
    client = make_client("sync", credentials=creds, transport=fake.transport())
    await call(client.user_info())
    await close(client)
    assert fake.tokens_minted == 2
