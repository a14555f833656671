"""Auth flows: scoping to the service origin, plain-http refusal, refresh on expiry and 401, the chain."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time

import httpx
import pytest
from scibind import errors
from scibind._core.http import build_async_client, build_sync_client
from scibind._core.secrets import Secret
from scibind.auth import (
    BasicAuth,
    HeaderAuth,
    RefreshingTokenAuth,
    env_source,
    explicit_source,
    json_file_source,
    jwt_expiry,
    prompt_source,
    resolve_credential,
)
from scibind.config import ClientConfig


def fake_jwt(exp: float, sub: str = "u") -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'none'})}.{enc({'sub': sub, 'exp': exp})}.sig"


class Minter:
    """Mints JWTs at https://tokens.test/token; counts mints."""

    def __init__(self, ttl: float = 900) -> None:
        self.ttl = ttl
        self.count = 0
        self.lock = threading.Lock()

    def build_request(self) -> httpx.Request:
        return httpx.Request(
            "POST", "https://tokens.test/token", json={"username": "u", "password": "p"}
        )

    def parse_response(self, response: httpx.Response) -> tuple[Secret, float | None]:
        if response.status_code != 200:
            raise errors.CredentialsError("mint failed")
        return Secret(response.json()["token"]), None


class Service:
    """API at https://api.test accepting only currently valid tokens; token endpoint on tokens.test."""

    def __init__(self, ttl: float = 900) -> None:
        self.ttl = ttl
        self.minted = 0
        self.revoked: set[str] = set()
        self.seen_auth: dict[str, list[str | None]] = {}
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        with self.lock:
            self.seen_auth.setdefault(host, []).append(request.headers.get("Authorization"))
        if host == "tokens.test":
            with self.lock:
                self.minted += 1
                n = self.minted
            return httpx.Response(
                200, json={"token": fake_jwt(time.time() + self.ttl, sub=f"t{n}")}
            )
        if host == "storage.test":
            return httpx.Response(200, content=b"blob")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if not token or token in self.revoked or (jwt_expiry(token) or 0) < time.time():
            return httpx.Response(401, json={"msg": "Token has expired"})
        if request.url.path == "/redirect":
            return httpx.Response(
                302, headers={"Location": "https://storage.test/obj?X-Amz-Signature=abc"}
            )
        return httpx.Response(200, json={"ok": True})


def client(service: Service, auth: httpx.Auth, base: str = "https://api.test") -> httpx.Client:
    return build_sync_client(
        ClientConfig(), base, auth=auth, transport=httpx.MockTransport(service)
    )


def test_header_auth_only_to_service_origin() -> None:
    svc = Service()
    with client(svc, HeaderAuth(fake_jwt(time.time() + 60))) as c:
        assert c.get("/x").status_code == 200
        c.get("https://storage.test/obj")
        c.get("https://api.test:8443/x")  # another port is another origin
    assert svc.seen_auth["api.test"][0].startswith("Bearer ")
    assert svc.seen_auth["storage.test"] == [None]
    assert svc.seen_auth["api.test"][1] is None


def test_redirect_to_storage_drops_token() -> None:
    svc = Service()
    with client(svc, HeaderAuth(fake_jwt(time.time() + 60))) as c:
        r = c.get("/redirect", follow_redirects=True)
    assert r.content == b"blob"
    assert svc.seen_auth["storage.test"] == [None]


def test_plain_http_credentials_refused_off_loopback_allowed_on_loopback() -> None:
    svc = Service()
    with (
        client(svc, HeaderAuth("secret-token-1"), base="http://api.test") as c,
        pytest.raises(errors.InsecureTransportError),
    ):
        c.get("/x")
    seen = []
    transport = httpx.MockTransport(
        lambda r: (seen.append(r.headers.get("Authorization")), httpx.Response(200))[1]
    )
    with build_sync_client(
        ClientConfig(), "http://127.0.0.1:5000", auth=HeaderAuth("tok"), transport=transport
    ) as c:
        c.get("/x")
    assert seen == ["Bearer tok"]


def test_insecure_override_warns() -> None:
    with pytest.warns(UserWarning, match="allow_insecure_http"):
        build_sync_client(
            ClientConfig(allow_insecure_http=True),
            "http://api.test",
            auth=HeaderAuth("x"),
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        ).close()


def test_tls_off_warns() -> None:
    with pytest.warns(errors.InsecureTLSWarning):
        build_sync_client(ClientConfig(verify=False), "https://api.test").close()


def test_refresh_ahead_of_expiry_and_on_401() -> None:
    svc = Service(ttl=3600)
    now = [time.time()]
    auth = RefreshingTokenAuth(Minter(), skew=60, clock=lambda: now[0])
    with client(svc, auth) as c:
        c.get("/x")
        c.get("/x")
        assert svc.minted == 1
        now[0] += 3600 - 30  # inside the skew window: refresh before sending
        c.get("/x")
        assert svc.minted == 2
        svc.revoked.add(auth.token.reveal())  # server-side revocation: 401, refresh once, resend
        assert c.get("/x").status_code == 200
        assert svc.minted == 3
    assert svc.seen_auth["tokens.test"] == [
        None,
        None,
        None,
    ]  # the mint request carries no bearer token


def test_refresh_gives_up_after_one_retry() -> None:
    class AlwaysUnauthorized(Service):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if request.url.host == "tokens.test":
                return super().__call__(request)
            return httpx.Response(401, json={"msg": "nope"})

    svc = AlwaysUnauthorized()
    with client(svc, RefreshingTokenAuth(Minter())) as c:
        assert c.get("/x").status_code == 401
    assert svc.minted == 2


def test_one_refresh_for_many_threads() -> None:
    svc = Service()
    auth = RefreshingTokenAuth(Minter())
    with client(svc, auth) as c:
        threads = [threading.Thread(target=c.get, args=("/x",)) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert svc.minted == 1


async def test_one_refresh_for_many_tasks() -> None:
    svc = Service()
    auth = RefreshingTokenAuth(Minter())
    async with build_async_client(
        ClientConfig(), "https://api.test", auth=auth, transport=httpx.MockTransport(svc)
    ) as c:
        responses = await asyncio.gather(*(c.get("/x") for _ in range(50)))
        assert all(r.status_code == 200 for r in responses)
        svc.revoked.add(auth.token.reveal())
        responses = await asyncio.gather(*(c.get("/x") for _ in range(20)))
        assert all(r.status_code == 200 for r in responses)
    assert svc.minted == 2


def test_secrets_never_in_repr_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    token = fake_jwt(time.time() + 60)
    auth = HeaderAuth(token)
    basic = BasicAuth("me", "hunter2-password")
    assert token not in repr(auth) and "hunter2" not in repr(basic)
    svc = Service()
    caplog.set_level(logging.DEBUG)
    with client(svc, auth) as c:
        c.get("/redirect?token=abcdef123456", follow_redirects=True)
    assert token not in caplog.text
    assert "abcdef123456" not in caplog.text
    assert "X-Amz-Signature=abc" not in caplog.text and "****" in caplog.text


def test_credential_chain_order(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "conf.json"
    cfg.write_text(json.dumps({"TOKEN": "from-file"}))
    monkeypatch.setenv("SVC_TOKEN", "from-env")
    sources = [explicit_source(None), env_source("SVC_TOKEN"), json_file_source(cfg, "TOKEN")]
    assert resolve_credential("token", sources).reveal() == "from-env"
    assert resolve_credential("token", [explicit_source("arg"), *sources]).reveal() == "arg"
    monkeypatch.delenv("SVC_TOKEN")
    assert resolve_credential("token", sources).reveal() == "from-file"


def test_no_prompt_without_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("typed\n"))
    with pytest.raises(errors.CredentialsError, match="interactive prompt"):
        resolve_credential("API key", [env_source("NOPE_NOT_SET"), prompt_source("key: ")])


def test_short_lived_tokens_are_not_minted_per_request() -> None:
    """A token living 120 s with a 300 s margin is reused for half its life, not minted for every request."""
    svc = Service(ttl=120)
    now = [time.time()]
    auth = RefreshingTokenAuth(Minter(), skew=300, clock=lambda: now[0])
    with client(svc, auth) as c:
        for _ in range(5):
            c.get("/x")
        assert svc.minted == 1
        now[0] += 61  # past half of its life: refresh ahead of expiry
        c.get("/x")
        assert svc.minted == 2
