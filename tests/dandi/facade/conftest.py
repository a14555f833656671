"""Fixtures for the DANDI facade tests: one test body runs against the sync and the async client.

The fake's object store uses 64 KiB parts (the real archive: 64 MiB) so multipart uploads and ranged downloads
happen with small files; the client is told the same part size.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind.config import ClientConfig, RetryPolicy
from scibind.dandi import AsyncDandiClient, DandiClient
from scibind.testing.dandi import FakeDandiArchive

KiB = 1024
PART = 64 * KiB
FAST = ClientConfig(retry=RetryPolicy(backoff_base=0.001, backoff_max=0.002))
STORAGE_HOST = "dandi-storage.fake.test"

Client = DandiClient | AsyncDandiClient


class SmallParts(FakeDandiArchive):
    """The fake archive with 64 KiB multipart parts."""

    part_size = PART


async def call(result: Any) -> Any:
    """The value of a facade call: awaited for the async client, as is for the sync one."""
    return await result if inspect.isawaitable(result) else result


async def collect(paginator: Any) -> list[Any]:
    """Every item of a listing (``alist`` on async clients, ``list`` on sync ones)."""
    if paginator._driver.is_async:
        return await paginator.alist()  # type: ignore[no-any-return]
    return paginator.list()  # type: ignore[no-any-return]


async def events(stream: Any) -> list[Any]:
    """Every event of an EventStream, sync or async."""
    if stream._is_async:
        return [e async for e in stream]
    return list(stream)


def make_client(kind: str, fake: FakeDandiArchive, **kwargs: Any) -> Client:
    cls = DandiClient if kind == "sync" else AsyncDandiClient
    kwargs.setdefault("config", FAST)
    kwargs.setdefault("api_key", fake.api_key)
    kwargs.setdefault("part_size", type(fake).part_size)
    kwargs.setdefault("transport", fake.transport())
    return cls(fake.base_url, **kwargs)


async def close(client: Client) -> None:
    if isinstance(client, AsyncDandiClient):
        await client.aclose()
    else:
        client.close()


class Faults:
    """A transport answering from the fake, except where a rule answers (or rewrites the answer) first.

    A rule is ``rule(request) -> httpx.Response | None``; ``after`` rules get ``(request, response)`` and may
    return a replacement. Rules stay until removed.
    """

    def __init__(self, fake: FakeDandiArchive) -> None:
        self.fake = fake
        self.before: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.after: list[Callable[[httpx.Request, httpx.Response], httpx.Response | None]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        for rule in list(self.before):
            answer = rule(request)
            if answer is not None:
                return answer
        response = self.fake.handle(request)
        for rewrite in list(self.after):
            replaced = rewrite(request, response)
            if replaced is not None:
                response = replaced
        return response

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def storage(fake: FakeDandiArchive, method: str | None = None) -> list[httpx.Request]:
    """Requests the fake's object store received."""
    return [
        r
        for r in fake.requests
        if r.url.host == STORAGE_HOST and (method is None or r.method == method)
    ]


def api(fake: FakeDandiArchive, path_end: str, method: str | None = None) -> list[httpx.Request]:
    """Requests to API paths ending with ``path_end``."""
    return [
        r
        for r in fake.requests
        if r.url.host != STORAGE_HOST
        and r.url.path.endswith(path_end)
        and (method is None or r.method == method)
    ]


def assert_no_credentials_to_storage(fake: FakeDandiArchive) -> None:
    sent = storage(fake)
    assert sent, "no storage requests were made"
    for request in sent:
        assert "authorization" not in request.headers
        assert fake.api_key not in str(request.url)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Journals in a temporary cache; no DANDI settings from the caller's environment."""
    monkeypatch.setenv("SCIBIND_CACHE_DIR", str(tmp_path / "cache"))
    for name in list(os.environ):
        if name == "DANDI_INSTANCE" or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> FakeDandiArchive:
    return SmallParts()


@pytest.fixture
def dandiset(fake: FakeDandiArchive) -> str:
    return fake.create_dandiset("Test Dandiset", metadata={"description": "for tests"})


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def dc(kind: str, fake: FakeDandiArchive) -> AsyncIterator[Client]:
    """The sync or async client, owner of the test dandisets, on the fake."""
    client = make_client(kind, fake)
    yield client
    await close(client)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Callable[[str, int], Path]]:
    """``data(name, size)`` writes a file of random bytes under tmp_path/src and returns it."""

    def make(name: str, size: int) -> Path:
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        return path

    yield make
