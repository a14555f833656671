"""httpx's and httpcore's own log lines never show secrets.

Found by tests/faults: at DEBUG, httpcore's trace of a Midas download redirect printed the ``Location`` header
with the API token (``authToken=...``); the redaction filter was on the ``httpcore`` logger, which does not
see records of its children (``httpcore.http11``), and it only looked at URL arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from scibind._core.http import build_async_client, build_sync_client
from scibind._core.secrets import redact_free_text
from scibind.config import ClientConfig, RetryPolicy
from scibind.testing.faults import FaultServer

TOKEN = "Zq8tokenValue0123456789"


def redirecting(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        302,
        headers={
            "Location": f"http://127.0.0.1:9/download/?bitstream=1&authToken={TOKEN}",
            "Set-Cookie": f"session={TOKEN}; Path=/",
        },
    )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[list[str]]:
    handler = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


CONFIG = ClientConfig(retry=RetryPolicy.none())


def test_sync_traces_are_redacted(lines: list[str]) -> None:
    with FaultServer(redirecting) as server, build_sync_client(CONFIG, server.url) as http:
        assert http.get(f"/x?token={TOKEN}").status_code == 302
    text = "\n".join(lines)
    assert "receive_response_headers" in text and "authToken=****" in text
    assert TOKEN not in text


async def test_async_traces_are_redacted(lines: list[str]) -> None:
    with FaultServer(redirecting) as server:
        async with build_async_client(CONFIG, server.url) as http:
            assert (await http.get(f"/x?token={TOKEN}")).status_code == 302
    text = "\n".join(lines)
    assert "receive_response_headers" in text
    assert TOKEN not in text


def test_redact_free_text() -> None:
    assert redact_free_text("GET http://s/x?a=1&X-Amz-Signature=abc&monkey=2") == (
        "GET http://s/x?a=1&X-Amz-Signature=****&monkey=2"
    )
    assert redact_free_text("[(b'Authorization', b'Bearer x'), (b'Accept', b'*/*')]") == (
        "[(b'Authorization', b'****'), (b'Accept', b'*/*')]"
    )
