"""Gen3 credentials: discovery like the SDK, iss-derived endpoint, refreshing access tokens, OIDC clients,
loose file permissions, and secrets that never show."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from scibind import errors
from scibind.auth import HeaderAuth, RefreshingTokenAuth
from scibind.gen3 import (
    AsyncGen3Client,
    Gen3Client,
    Gen3Credentials,
    InsecureCredentialsWarning,
    gen3_credentials,
)
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import call, close, collect, make_client, requests_to, secure_write

USER = "/user/user"


# -- where credentials come from ------------------------------------------------------------------------------
def test_default_credentials_file_in_home_gen3(fake: FakeGen3Commons, isolated_home: Path) -> None:
    secure_write(isolated_home / ".gen3" / "credentials.json", json.dumps(fake.new_api_key()))
    creds = gen3_credentials()
    assert creds.endpoint == "https://commons.fake.test"  # from the key's iss
    assert creds.source == str(isolated_home / ".gen3" / "credentials.json")
    assert isinstance(creds.auth, RefreshingTokenAuth)


@pytest.mark.parametrize("name", ["staging", "staging.json"])
def test_bare_name_is_looked_up_in_home_gen3(
    fake: FakeGen3Commons, isolated_home: Path, name: str
) -> None:
    secure_write(isolated_home / ".gen3" / "staging.json", json.dumps(fake.new_api_key()))
    assert gen3_credentials(credentials=name).source.endswith("/.gen3/staging.json")


def test_explicit_path_and_mapping(fake: FakeGen3Commons, tmp_path: Path) -> None:
    path = secure_write(tmp_path / "keys" / "mine.json", json.dumps(fake.new_api_key()))
    assert gen3_credentials(credentials=path).source == str(path)
    assert gen3_credentials(credentials=str(path)).endpoint == fake.base_url
    mapping = gen3_credentials(credentials=fake.new_api_key())
    assert mapping.endpoint == fake.base_url


@pytest.mark.parametrize("form", ["path", "name"])
def test_gen3_api_key_environment_variable(
    fake: FakeGen3Commons,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
) -> None:
    if form == "path":
        target = secure_write(tmp_path / "elsewhere.json", json.dumps(fake.new_api_key()))
        monkeypatch.setenv("GEN3_API_KEY", str(target))
    else:
        target = secure_write(isolated_home / ".gen3" / "prod.json", json.dumps(fake.new_api_key()))
        monkeypatch.setenv("GEN3_API_KEY", "prod")
    creds = gen3_credentials()
    assert creds.source == str(target)
    assert creds.endpoint == fake.base_url


async def test_access_token_url_form_in_gen3_api_key(
    fake: FakeGen3Commons, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    token = fake.mint_access_token()
    monkeypatch.setenv("GEN3_API_KEY", f"accesstoken:///{token}")
    client = make_client(kind, transport=fake.transport())
    try:
        assert isinstance(client.credentials.auth, HeaderAuth)
        assert client.endpoint == fake.base_url
        assert (await call(client.user_info())).username == fake.user.username
    finally:
        await close(client)
    explicit = gen3_credentials(credentials=f"accesstoken:///{token}")
    assert isinstance(explicit.auth, HeaderAuth)


def test_nothing_found_names_the_places_tried(isolated_home: Path) -> None:
    with pytest.raises(errors.CredentialsError) as info:
        gen3_credentials()
    assert str(isolated_home / ".gen3" / "credentials.json") in str(info.value)


def test_only_one_kind_of_credential(fake: FakeGen3Commons) -> None:
    key = fake.new_api_key()
    with pytest.raises(errors.ConfigurationError, match="only one"):
        gen3_credentials(api_key=key["api_key"], access_token=fake.mint_access_token())
    with pytest.raises(errors.ConfigurationError, match="go together"):
        gen3_credentials(client_id="x")
    fake.register_client("app", "app-secret")
    with pytest.raises(errors.ConfigurationError, match="needs client_id"):
        gen3_credentials(refresh_token=fake.new_refresh_token(client_id="app"))
    with pytest.raises(errors.CredentialsError, match="not a JWT"):
        gen3_credentials(api_key="not-a-jwt")


def test_endpoint_must_match_the_issuer(fake: FakeGen3Commons) -> None:
    key = fake.new_api_key()["api_key"]
    assert gen3_credentials("https://commons.fake.test/", api_key=key).endpoint == (
        "https://commons.fake.test"
    )
    with pytest.raises(errors.ConfigurationError, match=r"issued by https://commons\.fake\.test"):
        gen3_credentials("https://other.example.org", api_key=key)


def test_loose_permissions_warn(fake: FakeGen3Commons, tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(fake.new_api_key()))
    path.chmod(0o644)
    with pytest.warns(InsecureCredentialsWarning, match="chmod 600"):
        gen3_credentials(credentials=path)
    path.chmod(0o600)
    gen3_credentials(credentials=path)  # no warning (warnings are errors in this suite)


def test_broken_credentials_file(tmp_path: Path) -> None:
    bad = secure_write(tmp_path / "credentials.json", "{not json")
    with pytest.raises(errors.CredentialsError, match="cannot read"):
        gen3_credentials(credentials=bad)
    empty = secure_write(tmp_path / "other.json", json.dumps({"key_id": "x"}))
    with pytest.raises(errors.CredentialsError, match="no 'api_key'"):
        gen3_credentials(credentials=empty)


def test_minting_over_plain_http_off_loopback_is_refused() -> None:
    fake = FakeGen3Commons({"api": "http://commons.example.org"})
    with pytest.raises(errors.InsecureTransportError):
        gen3_credentials(api_key=fake.new_api_key()["api_key"])


async def test_serve_over_loopback_http(kind: str) -> None:
    fake = FakeGen3Commons()
    with fake.serve() as url:
        key = fake.new_api_key()  # issued by the loopback URL
        client = make_client(kind, api_key=key["api_key"])
        try:
            assert client.endpoint == url
            assert (await call(client.user_info())).username == fake.user.username
        finally:
            await close(client)


# -- tokens: minted, cached, refreshed ------------------------------------------------------------------------
async def test_api_key_is_exchanged_once_and_cached(g3: object, fake: FakeGen3Commons) -> None:
    for _ in range(3):
        assert (await call(g3.user_info())).username == fake.user.username  # type: ignore[attr-defined]
    assert fake.tokens_minted == 1
    assert requests_to(fake, "/user/credentials/cdis/access_token", "POST") == 1


async def test_expiring_tokens_are_refreshed_ahead_of_expiry(
    fake: FakeGen3Commons, kind: str
) -> None:
    fake.access_token_ttl = 400
    creds = gen3_credentials(api_key=fake.new_api_key()["api_key"], clock=fake.now)
    client = make_client(kind, credentials=creds, transport=fake.transport())
    try:
        await call(client.user_info())
        await call(client.user_info())
        assert fake.tokens_minted == 1
        fake.advance_time(
            210
        )  # 190 s left: inside the refresh window (5 minutes, at most half the lifetime)
        await call(client.user_info())
        assert fake.tokens_minted == 2
        fake.advance_time(2000)  # long past expiry
        await call(client.user_info())
        assert fake.tokens_minted == 3
        # refreshed ahead every time: no request was ever refused and repeated
        assert requests_to(fake, USER) == 4
    finally:
        await close(client)


async def test_short_lived_tokens_keep_requests_working(fake: FakeGen3Commons, kind: str) -> None:
    """Tokens shorter than the refresh window are used for half their life, then renewed: no 401s."""
    fake.access_token_ttl = 60
    creds = gen3_credentials(api_key=fake.new_api_key()["api_key"], clock=fake.now)
    client = make_client(kind, credentials=creds, transport=fake.transport())
    try:
        for _ in range(3):
            await call(client.user_info())
        assert fake.tokens_minted == 1  # not one mint per request
        for _ in range(3):
            fake.advance_time(31)  # past half the token's life each time
            await call(client.user_info())
        assert fake.tokens_minted == 4
        assert requests_to(fake, USER) == 6  # never refused and repeated
    finally:
        await close(client)


async def test_401_refreshes_once_and_repeats_the_request(
    g3: object, fake: FakeGen3Commons
) -> None:
    await call(g3.user_info())  # type: ignore[attr-defined]
    fake.expire_access_tokens()  # the server now refuses the cached token
    assert (await call(g3.user_info())).username == fake.user.username  # type: ignore[attr-defined]
    assert fake.tokens_minted == 2
    assert requests_to(fake, USER) == 3  # the refused one was repeated with the new token


def test_concurrent_threads_cause_one_refresh(fake: FakeGen3Commons) -> None:
    creds = gen3_credentials(api_key=fake.new_api_key()["api_key"], clock=fake.now)
    with Gen3Client(credentials=creds, transport=fake.transport()) as client:
        client.user_info()
        fake.advance_time(fake.access_token_ttl - 100)  # everyone needs a new token now
        with ThreadPoolExecutor(16) as pool:
            names = list(pool.map(lambda _: client.user_info().username, range(32)))
        assert set(names) == {fake.user.username}
        assert fake.tokens_minted == 2
        fake.expire_access_tokens()  # and when the server refuses: one refresh again
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda _: client.user_info(), range(32)))
        assert fake.tokens_minted == 3


async def test_concurrent_tasks_cause_one_refresh(fake: FakeGen3Commons) -> None:
    creds = gen3_credentials(api_key=fake.new_api_key()["api_key"], clock=fake.now)
    async with AsyncGen3Client(credentials=creds, transport=fake.transport()) as client:
        await client.user_info()
        fake.advance_time(fake.access_token_ttl - 100)
        infos = await asyncio.gather(*(client.user_info() for _ in range(32)))
        assert {i.username for i in infos} == {fake.user.username}
        assert fake.tokens_minted == 2
        fake.expire_access_tokens()
        await asyncio.gather(*(client.user_info() for _ in range(32)))
        assert fake.tokens_minted == 3


async def test_revoked_api_key_is_a_credentials_error_without_the_key(
    fake: FakeGen3Commons, kind: str
) -> None:
    key = fake.new_api_key()
    fake.tokens.revoked.add(key["key_id"])
    client = make_client(kind, api_key=key["api_key"], transport=fake.transport())
    try:
        with pytest.raises(errors.CredentialsError) as info:
            await call(client.user_info())
    finally:
        await close(client)
    text = str(info.value)
    assert "HTTP 401" in text and "revoked" in text
    assert key["api_key"] not in text and key["api_key"][-20:] not in text


# -- OIDC clients ---------------------------------------------------------------------------------------------
async def test_client_credentials(fake: FakeGen3Commons, kind: str) -> None:
    fake.register_client("robot", "s3cret-value", scopes=("openid", "user", "data"))
    client = make_client(
        kind,
        endpoint=fake.base_url,
        client_id="robot",
        client_secret="s3cret-value",
        scopes=["openid", "data"],
        transport=fake.transport(),
    )
    try:
        await collect(client.index_records(page_size=5))  # indexd reads: a client token suffices
        token_requests = [r for r in fake.requests if r.url.path == "/user/oauth2/token"]
        assert len(token_requests) == 1
        assert token_requests[0].headers["authorization"].startswith("Basic ")
        assert b"grant_type=client_credentials" in token_requests[0].content
        assert b"scope=openid+data" in token_requests[0].content
        assert fake.tokens_minted == 1
    finally:
        await close(client)


async def test_client_credentials_need_an_endpoint_and_a_valid_secret(
    fake: FakeGen3Commons, kind: str
) -> None:
    with pytest.raises(errors.ConfigurationError, match="endpoint"):
        gen3_credentials(client_id="robot", client_secret="x")
    fake.register_client("robot", "right-secret")
    client = make_client(
        kind,
        endpoint=fake.base_url,
        client_id="robot",
        client_secret="wrong-secret",
        transport=fake.transport(),
    )
    try:
        with pytest.raises(errors.CredentialsError, match="invalid_client") as info:
            await call(client.index_record("dg.FAKE/none"))
        assert "wrong-secret" not in str(info.value)
    finally:
        await close(client)


async def test_oauth_refresh_token_grant(fake: FakeGen3Commons, kind: str) -> None:
    fake.register_client("app", "app-secret")
    refresh = fake.new_refresh_token(client_id="app")
    client = make_client(
        kind,
        refresh_token=refresh,
        client_id="app",
        client_secret="app-secret",
        transport=fake.transport(),
    )
    try:
        assert client.endpoint == fake.base_url  # from the refresh token's iss
        assert (await call(client.user_info())).username == fake.user.username
        (request,) = [r for r in fake.requests if r.url.path == "/user/oauth2/token"]
        assert b"grant_type=refresh_token" in request.content
    finally:
        await close(client)


# -- secrets never show ----------------------------------------------------------------------------------------
async def test_tokens_never_in_logs_or_reprs(
    g3: object, fake: FakeGen3Commons, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await call(g3.user_info())  # type: ignore[attr-defined]
    fake.expire_access_tokens()
    await call(g3.user_info())  # type: ignore[attr-defined]
    tokens = {
        r.headers["authorization"].split()[1] for r in fake.requests if "authorization" in r.headers
    }
    api_keys = {
        json.loads(r.content)["api_key"]
        for r in fake.requests
        if r.url.path.endswith("access_token")
    }
    assert len(tokens) == 2 and len(api_keys) == 1
    creds: Gen3Credentials = g3.credentials  # type: ignore[attr-defined]
    shown = caplog.text + repr(g3) + repr(creds) + repr(creds.auth) + str(creds)
    for secret in tokens | api_keys:
        assert secret not in shown
    assert "minted a new access token" in caplog.text
