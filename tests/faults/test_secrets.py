"""Secrets: never in logs (every scenario's logs are checked by the ``service`` fixture), error messages or
reprs; never sent to another host; never over plain http off loopback; TLS verification never off silently.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.testing.faults import Echo, LoopbackOrigin, Redirect, Rule

from .conftest import assert_clean
from .harness import Harness, call, close, fast_config, services_with, signatures_in

AUTH = services_with("auth")


def refuse_all() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that records what would have gone out (nothing should)."""
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(599)

    return httpx.MockTransport(handle), sent


@pytest.mark.parametrize("service", AUTH, indirect=True)
async def test_credentials_are_refused_over_plain_http_to_a_remote_host(
    service: Harness, mode: str, check: Any
) -> None:
    transport, sent = refuse_all()
    with pytest.raises(errors.InsecureTransportError) as info:
        client = service.client_at(
            "http://data.scibind-faults.invalid", mode, fast_config(), transport
        )
        try:
            await service.read(client, service.seed_read())
        finally:
            await close(client)
    check(info.value)
    assert "http" in str(info.value) and "data.scibind-faults.invalid" in str(info.value)
    assert sent == []  # refused before anything was sent


@pytest.mark.parametrize("service", AUTH, indirect=True)
async def test_tls_verification_cannot_be_switched_off_silently(
    service: Harness, mode: str
) -> None:
    transport, sent = refuse_all()
    with pytest.warns(errors.InsecureTLSWarning, match="verification is off"):
        client = service.client_at(
            "https://data.scibind-faults.invalid", mode, fast_config(verify=False), transport
        )
    await close(client)
    assert sent == []


@pytest.mark.parametrize("service", AUTH, indirect=True)
async def test_error_bodies_that_echo_credentials_are_redacted(
    service: Harness, mode: str, check: Any
) -> None:
    handle = service.seed_read()
    op = service.read_op
    client = service.client(mode)
    try:
        await service.read(client, handle)  # credentials (minted tokens included) are now known
        service.api.plan(Rule(Echo(401), method=op.method, path=op.path))
        with pytest.raises(errors.AuthenticationError) as info:
            await service.read(client, handle)
    finally:
        await close(client)
    check(info.value)
    assert "rejected" in str(info.value)  # the server's message is kept, minus the secrets
    assert service.sent_credentials(
        service.api.requests_to(op.path, op.method)[-1]
    )  # and they were echoed


@pytest.mark.parametrize("service", AUTH, indirect=True)
async def test_authorization_never_reaches_another_host(service: Harness, mode: str) -> None:
    handle = service.seed_read()
    client = service.client(mode)
    with LoopbackOrigin() as other:
        try:
            await service.read(client, handle)  # the service's own origin gets credentials
            assert service.sent_credentials(service.api.requests[-1])
            # the client's own HTTP session: a redirect to another host, followed, and a direct request there
            service.api.plan(
                Rule(Redirect(other, status=307, keep_query=False), path="^/elsewhere")
            )
            await call(client.http.get(service.api.url + "/elsewhere", follow_redirects=True))
            await call(client.http.get(other.url + "/presigned?X-Amz-Signature=abc"))
        finally:
            await close(client)
        assert len(other.requests) == 2
        assert other.authorizations == []
        assert not any(service.sent_credentials(r) for r in other.requests)


@pytest.mark.parametrize("service", AUTH, indirect=True)
async def test_reprs_show_no_secrets(service: Harness, mode: str) -> None:
    client = service.client(mode)
    try:
        await service.read(client, service.seed_read())
        texts = [repr(client), str(client), repr(client.http.auth), repr(vars(client.http.auth))]
        texts += [repr(getattr(client, "credentials", None)), repr(client.config)]
        texts += [repr(client.http.headers)]
    finally:
        await close(client)
    for text in texts:
        assert_clean(text, service.all_secrets(), "a repr")


@pytest.mark.parametrize("service", services_with("storage"), indirect=True)
async def test_storage_never_sees_credentials(service: Harness, mode: str, tmp_path: Any) -> None:
    """Presigned storage URLs (another host) get neither the API credentials nor any token."""
    assert service.storage is not None
    source = tmp_path / "up.bin"
    source.write_bytes(b"x" * 3000)
    handle = service.seed_download(b"y" * 3000)
    client = service.client(mode)
    try:
        await service.upload(client, source)
        await service.download(client, handle, tmp_path / "down.bin")
    finally:
        await close(client)
    assert {r.method for r in service.storage.requests} >= {"PUT", "GET"}
    assert not any(r.authorization for r in service.storage.requests)
    assert any(service.sent_credentials(r) for r in service.api.requests)  # credentials in use
    # the signatures of the presigned URLs handed out are secrets too: every log line and error is
    # checked for them (the watch on the fake saw each one the storage was asked for) ...
    used = {s for r in service.storage.requests for s in signatures_in(r.target)}
    assert used and used <= service.handed_out <= set(service.all_secrets())
    # ... but they are what the storage must get; nothing else secret may reach it
    seen = " ".join(
        f"{r.target} {dict(r.headers)} {r.body[:200]!r}" for r in service.storage.requests
    )
    credentials = [s for s in service.all_secrets() if s not in service.handed_out]
    assert_clean(seen, credentials, "requests to storage")
