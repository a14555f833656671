"""Listing, upload and download finish with identical results under injected 429/503/resets; retries stay
within the policy (requests counted at the server) and the time budget."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from scibind import errors
from scibind.testing.faults import FaultServer, Reset, Respond, Rule, http_date_in

from .harness import FAST_RETRY, PART, Harness, Op, close, fast_config, services_with


def four_faults(server: FaultServer, op: Op, cut: Reset = Reset(after_bytes=10)) -> list[Rule]:
    """429 (Retry-After seconds), 503 (Retry-After HTTP-date), RST before the answer, and ``cut`` (RST in the
    middle of the response body, or of the request body for uploads): once each."""
    where = {"method": op.method, "path": op.path}
    return server.plan(
        Rule(Respond.throttle(retry_after=0.05), nth=1, **where),
        Rule(Respond.unavailable(retry_after=http_date_in(1)), nth=1, **where),
        Rule(Reset(), nth=1, **where),
        Rule(cut, nth=1, **where),
    )


@pytest.mark.parametrize("service", services_with("listing"), indirect=True)
async def test_listing_is_identical_under_throttling_and_resets(
    service: Harness, mode: str
) -> None:
    expected = service.seed_listing()
    op = service.listing_op
    rules = four_faults(service.api, op)
    service.api.reset_records()
    client = service.client(mode)
    started = time.monotonic()
    try:
        items = await service.list_all(client)
    finally:
        await close(client)
    elapsed = time.monotonic() - started
    assert [service.key(i) for i in items] == expected
    assert [r.fired for r in rules] == [1, 1, 1, 1]
    pages = service.api.requests_to(op.path, op.method)
    assert len(pages) == service.page_count + 4  # each fault cost exactly one repeat
    assert elapsed < FAST_RETRY.budget


@pytest.mark.parametrize("service", services_with("listing"), indirect=True)
async def test_listing_gives_up_after_max_attempts(service: Harness, mode: str, check: Any) -> None:
    service.seed_listing()
    op = service.listing_op
    service.api.plan(Rule(Respond.unavailable(), method=op.method, path=op.path))
    service.api.reset_records()
    client = service.client(mode, fast_config(retry=attrs.evolve(FAST_RETRY, max_attempts=3)))
    try:
        with pytest.raises(errors.ServerError) as info:
            await service.list_all(client)
    finally:
        await close(client)
    check(info.value)
    assert info.value.status == 503
    assert len(service.api.requests_to(op.path, op.method)) == 3


@pytest.mark.parametrize("service", services_with("listing"), indirect=True)
async def test_retries_stop_within_the_time_budget(service: Harness, mode: str, check: Any) -> None:
    service.seed_listing()
    op = service.listing_op
    service.api.plan(Rule(Respond.throttle(retry_after=0.4), method=op.method, path=op.path))
    service.api.reset_records()
    policy = attrs.evolve(FAST_RETRY, max_attempts=20, budget=1.0)
    client = service.client(mode, fast_config(retry=policy))
    started = time.monotonic()
    try:
        with pytest.raises(errors.RateLimitedError) as info:
            await service.list_all(client)
    finally:
        await close(client)
    elapsed = time.monotonic() - started
    check(info.value)
    assert info.value.retry_after == pytest.approx(0.4)
    assert (
        len(service.api.requests_to(op.path, op.method)) == 3
    )  # at 0, 0.4, 0.8 s; 1.2 s is past the budget
    assert elapsed < policy.budget + 0.5


UPLOAD_SECONDS = 3.0
"""Upper bound for an upload under the four faults (the 503 asks for up to 1 s)."""
DOWNLOAD_SECONDS = 2.0
"""Upper bound for a download under the four faults."""


def payload(size: int, seed: int = 0) -> bytes:
    return (bytes(range(251)) * (size // 251 + 1))[seed : seed + size]


def no_partials(directory: Path) -> list[str]:
    return sorted(
        p.name for p in directory.iterdir() if "partial" in p.name or p.name.startswith(".journal")
    )


@pytest.mark.parametrize("service", services_with("upload"), indirect=True)
@pytest.mark.parametrize("size", [3 * PART + 100, 1000], ids=["multipart", "single"])
async def test_upload_is_identical_under_faults(
    service: Harness, mode: str, size: int, tmp_path: Path
) -> None:
    data = payload(size, 3)
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    rules = four_faults(
        service.upload_server, service.upload_op, Reset(request_bytes=min(size, PART) // 2)
    )
    client = service.client(mode)
    started = time.monotonic()
    try:
        handle = await service.upload(client, source, multipart=size > PART)
    finally:
        await close(client)
    elapsed = time.monotonic() - started
    assert service.uploaded(handle) == data
    assert [r.fired for r in rules] == [1, 1, 1, 1]
    sent = service.upload_server.requests_to(service.upload_op.path, service.upload_op.method)
    assert len(sent) == service.upload_requests(size) + 4
    # the policy's waits: the 503's HTTP-date hint (under 1 s, whole seconds), backoffs of at most 0.05 s
    assert elapsed < UPLOAD_SECONDS


@pytest.mark.parametrize("service", services_with("download"), indirect=True)
@pytest.mark.parametrize("size", [5 * PART + 7, 2000], ids=["ranged", "single"])
async def test_download_is_identical_under_faults(
    service: Harness, mode: str, size: int, tmp_path: Path
) -> None:
    data = payload(size, 5)
    handle = service.seed_download(data)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "copy.bin"
    op = service.download_op
    where = {"method": op.method, "path": op.path}
    cut = min(size // 3, PART // 3)  # within the first stream, whichever range it is
    rules = service.download_server.plan(
        Rule(Respond.throttle(retry_after=0.05), nth=1, **where),
        Rule(Respond.unavailable(retry_after=0.05), nth=1, **where),
        Rule(Reset(), nth=1, **where),
        Rule(Reset(after_bytes=cut), nth=1, **where),
    )
    client = service.client(mode)
    started = time.monotonic()
    try:
        path = await service.download(client, handle, dest)
    finally:
        await close(client)
    elapsed = time.monotonic() - started
    assert elapsed < DOWNLOAD_SECONDS  # hints of 0.05 s and backoffs of at most 0.05 s
    assert path == dest
    assert dest.read_bytes() == data
    assert [r.fired for r in rules] == [1, 1, 1, 1]
    assert no_partials(out) == []
    gets = service.download_server.requests_to(op.path, op.method)
    ranged = [r for r in gets if "range" in r.headers]
    streams = -(-size // PART) if size >= 2 * PART and service.ranged_downloads else 1
    restart = 1 if service.resume_kind == "restart" else 0  # no Range: the cut stream starts over
    assert len(gets) == streams + 4 + restart
    if (
        streams == 1 and service.resume_kind == "range"
    ):  # the cut body resumed from where it stopped
        assert any(r.headers["range"] == f"bytes={cut}-" for r in ranged)
    if service.resume_kind == "offset":
        assert any(f"offset={cut}&" in r.target for r in gets)
    assert not os.listdir(tmp_path / "cache") if (tmp_path / "cache").exists() else True
