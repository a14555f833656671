"""The upload calls one by one, as pydas offers them: generate_upload_token, get_upload_offset and
perform_upload (streamed, resumable from the server's offset, continued under the client's RetryPolicy),
sync and async, against FakeMidas."""

from __future__ import annotations

import hashlib
import inspect
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.config import ClientConfig, RetryPolicy
from scibind.midas import AsyncMidasClient, MidasClient, MidasTransferError
from scibind.testing.midas import FakeMidas
from scibind.transfers.progress import ProgressEvent

ALICE = "alice@example.org"
FAST = ClientConfig(
    retry=RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.002, budget=5.0)
)
Hook = Callable[[httpx.Request, bytes], httpx.Response | None]


class Faults(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The fake behind a hook that may answer instead of it (``hook(request, body) -> Response | None``)."""

    def __init__(self, fake: FakeMidas, hook: Hook) -> None:
        self.fake = fake
        self.hook = hook

    def _answer(self, request: httpx.Request, body: bytes) -> httpx.Response:
        rebuilt = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        return self.hook(rebuilt, body) or self.fake.handle(rebuilt)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, b"".join(request.stream))  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, b"".join([c async for c in request.stream]))  # type: ignore[union-attr]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("MIDAS_URL", "MIDAS_EMAIL", "MIDAS_API_KEY", "MIDAS_APPNAME", "MIDAS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def fake() -> FakeMidas:
    f = FakeMidas()
    f.add_user(ALICE, "alice-key", firstname="Alice")
    return f


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(kind: str, fake: FakeMidas, hook: Hook | None = None) -> Any:
    cls = MidasClient if kind == "sync" else AsyncMidasClient
    transport = Faults(fake, hook) if hook is not None else fake.transport()
    return cls(fake.base_url, email=ALICE, api_key="alice-key", config=FAST, transport=transport)


@pytest.fixture
async def md(kind: str, fake: FakeMidas) -> AsyncIterator[Any]:
    client = make(kind, fake)
    yield client
    await close(client)


async def close(client: Any) -> None:
    if isinstance(client, MidasClient):
        client.close()
    else:
        await client.aclose()


async def call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    source = tmp_path / "scan.bin"
    source.write_bytes(os.urandom(300_000))
    return source


def puts(fake: FakeMidas) -> list[httpx.Request]:
    return [r for r in fake.requests if r.method == "PUT"]


def calls(fake: FakeMidas, method: str) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.params.get("method") == method]


# --- generate_upload_token -----------------------------------------------------------------------------------
async def test_generate_upload_token_for_a_new_item_and_for_known_bytes(
    md: Any, fake: FakeMidas, payload: Path
) -> None:
    folder = fake.folder_id(f"{ALICE}/Private")
    items_before = len(fake.items)
    token = await call(md.generate_upload_token("scan.bin", folder_id=folder, item_name="Scan"))
    assert token and isinstance(token, str)
    assert len(fake.items) == items_before + 1  # the item it goes to was created
    (new_item,) = [i for i in fake.items.values() if i["name"] == "Scan"]
    assert await call(md.get_upload_offset(token)) == 0
    # bytes the server already has (by MD5): no token, the bitstream is added at once
    data = payload.read_bytes()
    fake.add_item("original", folder, ALICE, data)
    target = fake.add_item("copy", folder, ALICE)
    empty = await call(
        md.generate_upload_token(
            "again.bin", item_id=target, checksum=hashlib.md5(data).hexdigest()
        )
    )
    assert empty == ""
    assert fake.item_bytes(target) == {"again.bin": data}
    assert new_item["item_id"] != target


async def test_generate_upload_token_errors(md: Any, fake: FakeMidas) -> None:
    with pytest.raises(errors.APIError, match="itemid or folderid"):
        await call(md.generate_upload_token("x.bin"))  # neither a folder nor an item
    with pytest.raises(errors.APIError):
        await call(md.generate_upload_token("x.bin", folder_id=999_999))


# --- get_upload_offset ---------------------------------------------------------------------------------------
def arrive(fake: FakeMidas, token: str, data: bytes, keep: int) -> None:
    """The first ``keep`` bytes of an upload reach the server, then the connection breaks (an earlier call)."""
    request = httpx.Request(
        "PUT",
        fake.base_url + "/api/json",
        params={
            "method": "midas.upload.perform",
            "uploadtoken": token,
            "filename": "scan.bin",
            "length": str(len(data)),
            "revision": "head",
        },
        content=data[:keep],
    )
    assert fake.handle(request).json()["code"] == -105  # "Failed to upload file - keep/len bytes"


async def test_get_upload_offset_reports_what_arrived(
    md: Any, fake: FakeMidas, payload: Path
) -> None:
    data = payload.read_bytes()
    item = fake.add_item("target", fake.folder_id(f"{ALICE}/Private"), ALICE)
    token = await call(md.generate_upload_token("scan.bin", item_id=item))
    assert await call(md.get_upload_offset(token)) == 0
    arrive(fake, token, data, 70_000)
    assert await call(md.get_upload_offset(token)) == 70_000
    assert len(calls(fake, "midas.upload.getoffset")) == 2


# --- perform_upload ------------------------------------------------------------------------------------------
async def test_perform_upload_streams_the_file_and_returns_the_item(
    md: Any, fake: FakeMidas, payload: Path
) -> None:
    data = payload.read_bytes()
    item = fake.add_item("target", fake.folder_id(f"{ALICE}/Private"), ALICE)
    token = await call(md.generate_upload_token("scan.bin", item_id=item))
    events: list[ProgressEvent] = []
    result = await call(
        md.perform_upload(token, "scan.bin", filepath=payload, progress=events.append)
    )
    assert int(result.item_id) == item and result.name == "target"
    assert fake.item_bytes(item) == {"scan.bin": data}
    (put,) = puts(fake)
    assert put.url.params["length"] == str(len(data)) and put.url.params["revision"] == "head"
    assert put.url.params["uploadtoken"] == token and "token" not in put.url.params
    assert len(put.content) == len(data)
    assert events[0].phase == "uploading" and events[-1].phase == "done"
    assert events[-1].done == len(data)
    with pytest.raises(MidasTransferError) as info:  # the upload is complete: the token is spent
        await call(md.perform_upload(token, "scan.bin", filepath=payload))
    assert info.value.code == -141


async def test_perform_upload_sends_only_what_the_server_lacks(
    md: Any, fake: FakeMidas, payload: Path
) -> None:
    data = payload.read_bytes()
    item = fake.add_item("target", fake.folder_id(f"{ALICE}/Private"), ALICE)
    token = await call(md.generate_upload_token("scan.bin", item_id=item))
    arrive(fake, token, data, 123_456)
    events: list[ProgressEvent] = []
    await call(md.perform_upload(token, "scan.bin", filepath=payload, progress=events.append))
    assert fake.item_bytes(item) == {"scan.bin": data}
    (put,) = puts(fake)[-1:]
    assert len(put.content) == len(data) - 123_456  # resumed from the server's offset
    assert events[-1].done == len(data)


async def test_perform_upload_new_revision_and_file_name(
    md: Any, fake: FakeMidas, payload: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fake.folder_id(f"{ALICE}/Private")
    item = fake.add_item("target", folder, ALICE, b"first")
    token = await call(md.generate_upload_token("renamed.bin", item_id=item))
    result = await call(
        md.perform_upload(
            token, "renamed.bin", filepath=payload, revision=None, changes="second take"
        )
    )
    assert int(result.item_id) == item
    revisions = sorted(r["revision"] for r in fake.revisions.values() if r["item_id"] == item)
    assert revisions == [1, 2]
    assert fake.item_bytes(item) == {"renamed.bin": payload.read_bytes()}
    assert "revision" not in puts(fake)[-1].url.params
    # the file name is the path when no filepath is given
    monkeypatch.chdir(payload.parent)
    token = await call(md.generate_upload_token("scan.bin", item_id=item))
    await call(md.perform_upload(token, "scan.bin"))
    assert fake.item_bytes(item)["scan.bin"] == payload.read_bytes()


async def test_perform_upload_continues_after_breaks_that_make_progress(
    kind: str, fake: FakeMidas, payload: Path
) -> None:
    """Four breaks, more than max_attempts (3), but each after bytes arrived: the upload finishes."""
    data = payload.read_bytes()
    sizes: list[int] = []

    def cut(request: httpx.Request, body: bytes) -> httpx.Response | None:
        if request.method != "PUT":
            return None
        sizes.append(len(body))
        if len(sizes) > 4:
            return None
        fake.handle(
            httpx.Request(
                request.method, request.url, headers=request.headers, content=body[:50_000]
            )
        )
        raise httpx.ReadError("connection reset by peer")

    client = make(kind, fake, cut)
    try:
        item = fake.add_item("target", fake.folder_id(f"{ALICE}/Private"), ALICE)
        token = await call(client.generate_upload_token("scan.bin", item_id=item))
        await call(client.perform_upload(token, "scan.bin", filepath=payload))
    finally:
        await close(client)
    assert fake.item_bytes(item) == {"scan.bin": data}
    assert sizes == [len(data) - n * 50_000 for n in range(5)]  # each attempt sent only the rest


async def test_perform_upload_stops_after_max_attempts_without_progress(
    kind: str, fake: FakeMidas, payload: Path
) -> None:
    attempts: list[int] = []

    def refuse(request: httpx.Request, body: bytes) -> httpx.Response | None:
        if request.method == "PUT":
            attempts.append(len(body))
            raise httpx.ReadError("connection reset by peer")  # nothing arrives
        return None

    client = make(kind, fake, refuse)
    try:
        item = fake.add_item("target", fake.folder_id(f"{ALICE}/Private"), ALICE)
        token = await call(client.generate_upload_token("scan.bin", item_id=item))
        with pytest.raises(errors.ConnectionError):
            await call(client.perform_upload(token, "scan.bin", filepath=payload))
    finally:
        await close(client)
    assert (
        attempts == [payload.stat().st_size] * 3
    )  # the policy's max_attempts, each from the start
    offsets = calls(fake, "midas.upload.getoffset")
    assert len(offsets) == 1 + 3  # once to start, once after each of the policy's 3 attempts


async def test_perform_upload_honours_retry_after(
    kind: str, fake: FakeMidas, payload: Path
) -> None:
    """A 503 with Retry-After on the PUT (never repeated by the transport: the server appends) is waited
    for as hinted, then the upload continues from the server's offset."""
    answered: list[int] = []

    def busy_once(request: httpx.Request, body: bytes) -> httpx.Response | None:
        if request.method == "PUT" and not answered:
            answered.append(503)
            return httpx.Response(503, headers={"Retry-After": "0.2"}, text="busy")
        return None

    client = make(kind, fake, busy_once)
    try:
        item = fake.add_item("target", fake.folder_id(f"{ALICE}/Private"), ALICE)
        token = await call(client.generate_upload_token("scan.bin", item_id=item))
        started = time.monotonic()
        await call(client.perform_upload(token, "scan.bin", filepath=payload))
        elapsed = time.monotonic() - started
    finally:
        await close(client)
    assert fake.item_bytes(item) == {"scan.bin": payload.read_bytes()}
    assert 0.2 <= elapsed < 2.0
