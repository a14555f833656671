"""Shared fixtures and helpers for the Gen3 facade tests: one test body runs against the sync and the async client."""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind.config import ClientConfig, RetryPolicy
from scibind.gen3 import AsyncGen3Client, Gen3Client
from scibind.testing.gen3 import FakeGen3Commons

PROGRAM, PROJECT = "DEV", "test"
PROJECT_ID = f"{PROGRAM}-{PROJECT}"
FAST = ClientConfig(retry=RetryPolicy(backoff_base=0.001, backoff_max=0.002))

Client = Gen3Client | AsyncGen3Client


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


def make_client(kind: str, **kwargs: Any) -> Client:
    cls = Gen3Client if kind == "sync" else AsyncGen3Client
    kwargs.setdefault("config", FAST)
    return cls(**kwargs)


async def close(client: Client) -> None:
    if isinstance(client, AsyncGen3Client):
        await client.aclose()
    else:
        client.close()


def secure_write(path: Path, text: str) -> Path:
    """Write a credentials file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def faulty(
    fake: FakeGen3Commons, rule: Callable[[httpx.Request], httpx.Response | None]
) -> httpx.MockTransport:
    """A transport answering from ``fake`` unless ``rule(request)`` returns a response."""

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        return rule(request) or fake.handle(request)

    return httpx.MockTransport(handle)


def requests_to(fake: FakeGen3Commons, path: str, method: str | None = None) -> int:
    return sum(
        1 for r in fake.requests if r.url.path == path and (method is None or r.method == method)
    )


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh HOME (``~/.gen3``), no GEN3_API_KEY, and a private cache for upload journals."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GEN3_API_KEY", raising=False)
    # not a Gen3 workspace unless a test says so
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("NAMESPACE", raising=False)
    monkeypatch.delenv("SCIBIND_TOKEN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("SCIBIND_CACHE_DIR", str(tmp_path / "cache"))
    yield home


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake() -> FakeGen3Commons:
    fake = FakeGen3Commons()
    fake.create_program(PROGRAM)
    fake.create_project(PROGRAM, PROJECT)
    return fake


@pytest.fixture
async def g3(fake: FakeGen3Commons, kind: str) -> AsyncIterator[Client]:
    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=fake.transport())
    try:
        yield client
    finally:
        await close(client)


def seed(fake: FakeGen3Commons, subjects: int = 3, samples_per_subject: int = 2) -> None:
    """Subjects and samples in DEV-test, written straight into the fake's graph."""
    docs: list[dict[str, Any]] = []
    for s in range(subjects):
        docs.append({"type": "subject", "submitter_id": f"subject-{s}",
                     "projects": {"code": PROJECT}, "sex": "Female" if s % 2 else "Male"})  # fmt: skip
        for n in range(samples_per_subject):
            docs.append({"type": "sample", "submitter_id": f"sample-{s}-{n}",
                         "subjects": {"submitter_id": f"subject-{s}"},
                         "sample_type": "Blood" if n % 2 == 0 else "Tissue"})  # fmt: skip
    status, body = fake.graph.submit(PROGRAM, PROJECT, docs, role="update")
    assert status == 200, body


def random_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path
