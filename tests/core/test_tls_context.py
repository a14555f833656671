"""TLS contexts: built once per process per setting (loading the CA bundle is most of a client's cost)."""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

import certifi
import pytest
from scibind._core.http import build_async_client, build_sync_client, tls_verify
from scibind.config import ClientConfig
from scibind.errors import InsecureTLSWarning


def _context_of(client: object) -> ssl.SSLContext:
    transport = client._transport  # type: ignore[attr-defined]
    pool = transport.inner._pool
    return pool._ssl_context  # type: ignore[no-any-return]


def test_clients_share_one_verifying_context() -> None:
    config = ClientConfig()
    one = build_sync_client(config, "https://a.example")
    two = build_async_client(config, "https://b.example")
    try:
        assert _context_of(one) is _context_of(two)
        context = _context_of(one)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0
    finally:
        one.close()


def test_a_ca_bundle_path_gets_its_own_context(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning from httpx for verify=<str>
        custom = tls_verify(ClientConfig(verify=str(bundle)))
    assert custom is not tls_verify(ClientConfig())
    assert custom is tls_verify(ClientConfig(verify=str(bundle)))
    assert custom.verify_mode == ssl.CERT_REQUIRED


def test_environment_bundle_changes_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    default = tls_verify(ClientConfig())
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    assert tls_verify(ClientConfig()) is not default


def test_turning_verification_off_still_warns() -> None:
    with pytest.warns(InsecureTLSWarning):
        client = build_sync_client(ClientConfig(verify=False), "https://a.example")
    client.close()
    assert tls_verify(ClientConfig(verify=False)) is False
