"""dserver tokens against the real server: refusals (401, and 422 from its JWT layer for malformed or badly
signed tokens) and the on-disk cache of minted tokens.

Every exchange goes through a recording transport (the real network underneath), so the tests see exactly which
requests were sent: a refused static token is reported once, a refused minted token is minted again once, a
cached token saves the mint.
"""

from __future__ import annotations

import inspect
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind._core.secrets import Secret
from scibind._core.token_cache import TokenCache
from scibind.config import ClientConfig, RetryPolicy
from scibind.dserver import AsyncDServer, DServer
from scibind.testing.dserver_server import require_for_tests

require_for_tests(["jwt", "cryptography"])

import jwt  # noqa: E402

pytestmark = pytest.mark.integration

NO_RETRY = ClientConfig(retry=RetryPolicy(max_attempts=1))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in (
        "DSERVER_URL",
        "DSERVER_TOKEN",
        "DSERVER_TOKEN_GENERATOR_URL",
        "DSERVER_USERNAME",
        "DSERVER_PASSWORD",
        "DTOOL_CONFIG_PATH",
        "SCIBIND_TOKEN_CACHE",
        "SCIBIND_CACHE_DIR",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def foreign_key() -> str:
    """A private key the server does not know."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def foreign_token(key: str, username: str) -> str:
    """A well-formed, unexpired token for a real user, signed with the wrong key (dserver: 422)."""
    now = int(time.time())
    claims = {"sub": username, "type": "access", "iat": now, "nbf": now, "exp": now + 900}
    return str(jwt.encode(claims, key, algorithm="RS256"))


class Recorder:
    """What went over the wire: ``(path, status)`` per exchange. ``replace_minted(n)`` may swap the token of
    the n-th successful mint (1-based) for another one."""

    def __init__(self, replace_minted: Callable[[int], str | None] | None = None) -> None:
        self.exchanges: list[tuple[str, int]] = []
        self.mints = 0
        self.replace_minted = replace_minted

    def after(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        self.exchanges.append((request.url.path, response.status_code))
        if request.url.path == "/token" and response.status_code == 200:
            self.mints += 1
            token = self.replace_minted(self.mints) if self.replace_minted else None
            if token is not None:
                body = {"status": "success", "token": token}
                return httpx.Response(200, json=body, request=request)
        # a new response on the bytes already read (the network stream is spent)
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=response.content, request=request
        )

    def paths(self) -> list[str]:
        return [path for path, _ in self.exchanges]

    def transport(self, kind: str) -> Any:
        return _SyncRecording(self) if kind == "sync" else _AsyncRecording(self)


class _SyncRecording(httpx.BaseTransport):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder, self.inner = recorder, httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        return self.recorder.after(request, response)

    def close(self) -> None:
        self.inner.close()


class _AsyncRecording(httpx.AsyncBaseTransport):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder, self.inner = recorder, httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        return self.recorder.after(request, response)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def make(kind: str, recorder: Recorder, url: str, **credentials: Any) -> Any:
    cls = DServer if kind == "sync" else AsyncDServer
    return cls(url, config=NO_RETRY, transport=recorder.transport(kind), **credentials)


async def close(client: Any) -> None:
    await call(client.aclose() if isinstance(client, AsyncDServer) else client.close())


def generator_credentials(server: Any) -> dict[str, str]:
    return {
        "username": server.admin_username,
        "password": server.admin_password,
        "token_generator_url": server.token_generator_url,
    }


async def test_garbage_static_token_is_an_authentication_error(
    kind: str, dserver_server: Any
) -> None:
    recorder = Recorder()
    client = make(kind, recorder, dserver_server.url, token="garbage")
    with pytest.raises(errors.AuthenticationError) as info:
        await call(client.me())
    assert info.value.status == 422  # what dserver answered, typed as what it means
    assert "Not enough segments" in str(info.value)
    assert recorder.exchanges == [("/me", 422)]  # reported once, nothing retried
    await close(client)


async def test_badly_signed_static_token_without_credentials_to_mint(
    kind: str, dserver_server: Any, foreign_key: str
) -> None:
    recorder = Recorder()
    token = foreign_token(foreign_key, dserver_server.admin_username)
    client = make(kind, recorder, dserver_server.url, token=token)
    with pytest.raises(errors.AuthenticationError, match="Signature verification failed") as info:
        await call(client.get_readme(f"{dserver_server.base_uri}/x"))
    assert token not in str(info.value) and token not in repr(info.value)
    assert recorder.paths() == ["/readmes/smb://test-share/x"]  # (decoded)
    await close(client)


async def test_refused_static_token_is_replaced_by_a_minted_one(
    kind: str, dserver_server: Any, foreign_key: str
) -> None:
    recorder = Recorder()
    client = make(
        kind,
        recorder,
        dserver_server.url,
        token=foreign_token(foreign_key, dserver_server.admin_username),
        **generator_credentials(dserver_server),
    )
    assert (await call(client.me())).username == dserver_server.admin_username
    assert recorder.exchanges == [("/me", 422), ("/token", 200), ("/me", 200)]
    assert client.http.auth.inner.mint_count == 1
    await call(client.me())
    assert recorder.mints == 1  # the new token is kept
    await close(client)


async def test_refused_minted_token_is_minted_again_once(
    kind: str, dserver_server: Any, foreign_key: str
) -> None:
    bad = foreign_token(foreign_key, dserver_server.admin_username)
    recorder = Recorder(replace_minted=lambda n: bad if n == 1 else None)
    client = make(kind, recorder, dserver_server.url, **generator_credentials(dserver_server))
    assert (await call(client.me())).username == dserver_server.admin_username
    assert recorder.exchanges == [("/token", 200), ("/me", 422), ("/token", 200), ("/me", 200)]
    await close(client)


async def test_expired_minted_token_refused_with_401_is_minted_again(
    kind: str, dserver_server: Any
) -> None:
    # expired by the server's clock, but without an exp claim the client cannot know it in advance
    stale = dserver_server.token(expires_in=None, exp=int(time.time()) - 60)
    recorder = Recorder(replace_minted=lambda n: stale if n == 1 else None)
    client = make(kind, recorder, dserver_server.url, **generator_credentials(dserver_server))
    assert (await call(client.me())).username == dserver_server.admin_username
    assert recorder.exchanges == [("/token", 200), ("/me", 401), ("/token", 200), ("/me", 200)]
    await close(client)


async def test_a_generator_whose_tokens_are_always_refused_is_not_looped_on(
    kind: str, dserver_server: Any, foreign_key: str
) -> None:
    bad = foreign_token(foreign_key, dserver_server.admin_username)
    recorder = Recorder(replace_minted=lambda n: bad)
    client = make(kind, recorder, dserver_server.url, **generator_credentials(dserver_server))
    with pytest.raises(errors.AuthenticationError, match="Signature verification failed"):
        await call(client.me())
    assert recorder.exchanges == [("/token", 200), ("/me", 422), ("/token", 200), ("/me", 422)]
    await close(client)


async def test_request_validation_is_still_a_validation_error(
    kind: str, dserver_server: Any
) -> None:
    """flask-smorest's own 422 (``{"code", "status", "errors"}``) is not mistaken for a token refusal."""
    recorder = Recorder()
    client = make(kind, recorder, dserver_server.url, token=dserver_server.token())
    body = dserver_server.dataset_body()
    body["tags"] = "not-a-list"
    with pytest.raises(errors.ValidationError) as info:
        await call(client.register_dataset(body))
    assert not isinstance(info.value, errors.AuthenticationError)
    assert info.value.status == 422
    assert [status for _, status in recorder.exchanges] == [422]
    await close(client)


# -- the on-disk cache of minted tokens -------------------------------------------------------------------------
def _entry(cache: TokenCache, server: Any, username: str | None = None) -> Any:
    return cache.entry(
        "dserver-token-generator", server.token_generator_url, username or server.admin_username
    )


async def test_a_minted_token_is_reused_by_the_next_client(
    kind: str, dserver_server: Any, tmp_path: Any
) -> None:
    cache = TokenCache(tmp_path / "tokens")
    first = Recorder()
    client = make(
        kind, first, dserver_server.url, token_cache=cache, **generator_credentials(dserver_server)
    )
    await call(client.me())
    await close(client)
    assert first.paths() == ["/token", "/me"]
    entry = _entry(cache, dserver_server)
    assert stat.S_IMODE(os.stat(entry.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache.directory).st_mode) == 0o700
    assert dserver_server.admin_password not in entry.path.read_text()
    assert dserver_server.admin_username not in entry.path.name  # hashed
    second = Recorder()
    again = make(
        kind, second, dserver_server.url, token_cache=cache, **generator_credentials(dserver_server)
    )
    assert (await call(again.me())).username == dserver_server.admin_username
    assert second.paths() == ["/me"]  # no mint
    assert again.http.auth.inner.mint_count == 0
    await close(again)
    other = Recorder()  # another user has an entry of its own
    client = make(
        kind,
        other,
        dserver_server.url,
        token_cache=cache,
        username=dserver_server.user_username,
        password=dserver_server.user_password,
        token_generator_url=dserver_server.token_generator_url,
    )
    assert (await call(client.me())).username == dserver_server.user_username
    assert other.paths() == ["/token", "/me"]
    await close(client)


async def test_a_refused_cached_token_is_dropped_and_minted_again(
    kind: str, dserver_server: Any, tmp_path: Any, foreign_key: str
) -> None:
    cache = TokenCache(tmp_path / "tokens")
    entry = _entry(cache, dserver_server)
    bad = foreign_token(foreign_key, dserver_server.admin_username)
    entry.save(Secret(bad), time.time() + 900)
    recorder = Recorder()
    client = make(
        kind,
        recorder,
        dserver_server.url,
        token_cache=cache,
        **generator_credentials(dserver_server),
    )
    assert (await call(client.me())).username == dserver_server.admin_username
    assert recorder.exchanges == [("/me", 422), ("/token", 200), ("/me", 200)]
    kept = entry.load()
    assert kept is not None and kept[0].reveal() != bad  # replaced by the new token
    await close(client)


async def test_a_cached_token_close_to_expiry_is_not_used(
    kind: str, dserver_server: Any, tmp_path: Any
) -> None:
    cache = TokenCache(tmp_path / "tokens")
    _entry(cache, dserver_server).save(
        Secret(dserver_server.token(expires_in=10)), time.time() + 10
    )
    recorder = Recorder()
    client = make(
        kind,
        recorder,
        dserver_server.url,
        token_cache=cache,
        **generator_credentials(dserver_server),
    )
    await call(client.me())
    assert recorder.paths() == ["/token", "/me"]
    await close(client)


def test_no_cache_unless_asked(
    dserver_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIBIND_CACHE_DIR", str(tmp_path / "cache"))
    with DServer(dserver_server.url, **generator_credentials(dserver_server)) as client:
        client.me()
    assert not (tmp_path / "cache").exists()
    monkeypatch.setenv("SCIBIND_TOKEN_CACHE", "yes")
    with DServer(dserver_server.url, **generator_credentials(dserver_server)) as client:
        client.me()
    assert len(list((tmp_path / "cache" / "tokens").glob("token_*.json"))) == 1


def test_a_new_process_reuses_the_cached_token(dserver_server: Any, tmp_path: Any) -> None:
    """Two processes in turn, configured only through the environment (SCIBIND_TOKEN_CACHE=1)."""
    script = (
        "import json\n"
        "from scibind.dserver import DServer\n"
        "with DServer() as ds:\n"
        "    me = ds.me()\n"
        "    print(json.dumps({'user': me.username, 'mints': ds.http.auth.inner.mint_count}))\n"
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DSERVER_", "SCIBIND_", "DTOOL"))
    }
    env.update(
        HOME=str(tmp_path),
        DSERVER_URL=dserver_server.url,
        DSERVER_TOKEN_GENERATOR_URL=dserver_server.token_generator_url,
        DSERVER_USERNAME=dserver_server.admin_username,
        DSERVER_PASSWORD=dserver_server.admin_password,
        SCIBIND_TOKEN_CACHE="1",
        SCIBIND_CACHE_DIR=str(tmp_path / "cache"),
    )
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", script],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs == [
        {"user": dserver_server.admin_username, "mints": 1},
        {"user": dserver_server.admin_username, "mints": 0},
    ]
