"""Clients built by scibind read sockets up to 1 MiB at a time (httpcore's 64 KiB costs CPU on large bodies)."""

from __future__ import annotations

import hashlib
import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest
from scibind._core.http import build_async_client, build_sync_client
from scibind._core.netio import READ_SIZE, enlarge_reads
from scibind.config import ClientConfig

BODY = os.urandom(8 * 1024 * 1024)


class _Big(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Big)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _Recorder(httpcore.NetworkStream):
    """A stand-in socket stream that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.calls: list[str] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.asked.append(max_bytes)
        return b"x"

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.calls.append(f"write {buffer!r}")

    def close(self) -> None:
        self.calls.append("close")

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self.calls.append(f"tls {server_hostname}")
        return _Recorder()

    def get_extra_info(self, info: str) -> Any:
        return f"info {info}"


class _RecordingBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.streams: list[_Recorder] = []

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        self.streams.append(_Recorder())
        return self.streams[-1]


def test_stream_wrapper_asks_for_more_and_keeps_wrapping_after_tls() -> None:
    transport = httpx.HTTPTransport()
    backend = _RecordingBackend()
    transport._pool._network_backend = backend
    assert enlarge_reads(transport) and not enlarge_reads(transport)  # once
    wrapped = transport._pool._network_backend.connect_tcp("h", 1)
    assert wrapped.read(65536) == b"x" and backend.streams[0].asked == [READ_SIZE]
    assert wrapped.read(4 * READ_SIZE) == b"x" and backend.streams[0].asked[-1] == 4 * READ_SIZE
    wrapped.write(b"hi")
    assert wrapped.get_extra_info("socket") == "info socket"
    tls = wrapped.start_tls(ssl.create_default_context(), "example.org")
    tls.read(1)
    assert backend.streams[0].calls == ["write b'hi'", "tls example.org"]
    tls.close()


def test_unknown_transports_are_left_alone() -> None:
    assert not enlarge_reads(httpx.MockTransport(lambda r: httpx.Response(200)))
    assert not enlarge_reads(object())


def test_sync_client_reads_large_chunks(url: str) -> None:
    with build_sync_client(ClientConfig(), url) as client, client.stream("GET", url) as resp:
        chunks = [len(c) for c in resp.iter_raw()]
        assert sum(chunks) == len(BODY)
    assert max(chunks) > 64 * 1024
    with build_sync_client(ClientConfig(), url) as client:
        assert hashlib.md5(client.get(url).content).digest() == hashlib.md5(BODY).digest()


async def test_async_client_reads_large_chunks(url: str) -> None:
    async with build_async_client(ClientConfig(), url) as client:
        async with client.stream("GET", url) as resp:
            chunks = [len(c) async for c in resp.aiter_raw()]
        assert sum(chunks) == len(BODY)
        assert max(chunks) > 64 * 1024
        assert (await client.get(url)).content == BODY


def test_a_given_transport_is_used_as_is() -> None:
    mock = httpx.MockTransport(lambda r: httpx.Response(200, content=b"ok"))
    with build_sync_client(ClientConfig(), "https://api.test", transport=mock) as client:
        assert client.get("/x").content == b"ok"


def test_importing_a_client_does_not_import_httpcore() -> None:
    """httpx imports httpcore when a transport is made; the read wrappers wait for that too."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from scibind.dandi import DandiClient\n"
        "from scibind.dserver import DServer\n"
        "assert 'httpcore' not in sys.modules and 'scibind._core.netio' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
