"""Transfers under the client's RetryPolicy: a persistent fault on an upload or a download (503 with
Retry-After, a reset in the middle of every body) stops with the typed error after as many requests as the
policy allows (counted at the fault server) and within its time budget; transient faults, even more of them
than ``max_attempts`` when each comes after some progress, still give byte-identical results."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from scibind import errors
from scibind.testing.faults import Reset, Respond, Rule
from scibind.transfers.download import partial_paths

from .harness import FAST_RETRY, PART, Harness, close, fast_config, services_with
from .test_retries import no_partials, payload

POLICY = attrs.evolve(FAST_RETRY, max_attempts=3, budget=2.0)
"""Three attempts without progress; two seconds without progress."""
PARALLEL = 2
"""Ranges / parts in flight at once in the harnesses' transfers."""
SIZES = {"ranged": 5 * PART + 7, "single": 2000}


def in_flight(service: Harness, size: int) -> int:
    """How many streams of one download run at once."""
    return PARALLEL if service.ranged_downloads and size >= 2 * PART else 1


async def failing_download(
    service: Harness, mode: str, size: int, tmp_path: Path, policy: Any = POLICY
) -> tuple[BaseException, float]:
    handle = service.seed_download(payload(size, 7))
    dest = tmp_path / "out" / "copy.bin"
    client = service.client(mode, fast_config(retry=policy))
    started = time.monotonic()
    try:
        with pytest.raises(errors.ScibindError) as info:
            await service.download(client, handle, dest)
    finally:
        await close(client)
    elapsed = time.monotonic() - started
    assert not dest.exists()
    return info.value, elapsed


def downloads(service: Harness) -> int:
    op = service.download_op
    return len(service.download_server.requests_to(op.path, op.method))


# ============================================================================================ downloads
@pytest.mark.parametrize("service", services_with("download"), indirect=True)
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
async def test_download_persistent_503_stops_within_the_policy(
    service: Harness, mode: str, size: int, tmp_path: Path, check: Any
) -> None:
    op = service.download_op
    service.download_server.plan(
        Rule(Respond.unavailable(retry_after=0.05), method=op.method, path=op.path)
    )
    exc, elapsed = await failing_download(service, mode, size, tmp_path)
    check(exc)
    assert isinstance(exc, errors.ServerError) and exc.status == 503
    assert exc.retry_after == pytest.approx(0.05)
    # the transport's attempts; the transfer does not repeat a status error that made no progress
    assert (
        POLICY.max_attempts <= downloads(service) <= POLICY.max_attempts * in_flight(service, size)
    )
    assert elapsed < POLICY.budget


@pytest.mark.parametrize("service", services_with("download"), indirect=True)
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
async def test_download_reset_mid_body_every_time_stops_within_the_policy(
    service: Harness, mode: str, size: int, tmp_path: Path, check: Any
) -> None:
    op = service.download_op
    service.download_server.plan(Rule(Reset(after_bytes=0), method=op.method, path=op.path))
    exc, elapsed = await failing_download(service, mode, size, tmp_path)
    check(exc)
    assert isinstance(exc, errors.ConnectionError)
    # attempts without progress are counted for the whole transfer; a range in flight may end one more
    flight = in_flight(service, size)
    assert POLICY.max_attempts <= downloads(service) <= POLICY.max_attempts + flight - 1
    assert elapsed < POLICY.budget
    partial = partial_paths(tmp_path / "out" / "copy.bin")[0]  # nothing arrived; kept to resume
    assert not partial.exists() or partial.stat().st_size in (0, size)


@pytest.mark.parametrize("service", services_with("download"), indirect=True)
async def test_stalled_download_stops_within_the_budget(
    service: Harness, mode: str, tmp_path: Path, check: Any
) -> None:
    """Many attempts allowed, but no progress for longer than the budget: the budget ends it."""
    op = service.download_op
    service.download_server.plan(Rule(Reset(after_bytes=0), method=op.method, path=op.path))
    policy = attrs.evolve(
        POLICY, max_attempts=1000, backoff_base=0.1, backoff_max=0.1, jitter=0, budget=1.0
    )
    exc, elapsed = await failing_download(service, mode, SIZES["single"], tmp_path, policy)
    check(exc)
    assert isinstance(exc, errors.ConnectionError)
    assert elapsed < policy.budget + 0.5
    assert 3 <= downloads(service) <= 11  # waits of 0.1 s within the budget, far from max_attempts


@pytest.mark.parametrize("service", services_with("download"), indirect=True)
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
async def test_download_with_more_transient_faults_than_attempts_is_identical(
    service: Harness, mode: str, size: int, tmp_path: Path
) -> None:
    """Resets without progress (max_attempts - 1 in a row), then cuts after some bytes, then again resets
    without progress: more failures than max_attempts in all, never max_attempts in a row without bytes."""
    data = payload(size, 9)
    handle = service.seed_download(data)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "copy.bin"
    op = service.download_op
    where = {"method": op.method, "path": op.path}
    stalls = POLICY.max_attempts - 1
    rules = service.download_server.plan(
        Rule(Reset(after_bytes=0), first=stalls, **where),
        Rule(Reset(after_bytes=min(size, PART) // 4), first=2, **where),
        Rule(Reset(after_bytes=0), first=stalls, **where),
    )
    client = service.client(mode, fast_config(retry=POLICY))
    started = time.monotonic()
    try:
        assert await service.download(client, handle, dest) == dest
    finally:
        await close(client)
    elapsed = time.monotonic() - started
    assert dest.read_bytes() == data
    assert no_partials(out) == []
    assert sum(r.fired for r in rules) == 2 * stalls + 2 > POLICY.max_attempts
    assert elapsed < POLICY.budget


# ============================================================================================ uploads
async def failing_upload(
    service: Harness, mode: str, tmp_path: Path
) -> tuple[BaseException, float]:
    source = tmp_path / "up.bin"
    source.write_bytes(payload(3 * PART + 100, 1))
    client = service.client(mode, fast_config(retry=POLICY))
    started = time.monotonic()
    try:
        with pytest.raises(errors.ScibindError) as info:
            await service.upload(client, source)
    finally:
        await close(client)
    return info.value, time.monotonic() - started


def uploads(service: Harness) -> int:
    op = service.upload_op
    return len(service.upload_server.requests_to(op.path, op.method))


def upload_bound(service: Harness) -> int:
    """Most upload requests a persistent fault may cost: the policy's attempts for each part in flight
    (presigned part PUTs are repeated by the transport), or for the one offset-continued PUT."""
    return POLICY.max_attempts * (1 if "offset_upload" in service.capabilities else PARALLEL)


@pytest.mark.parametrize("service", services_with("upload"), indirect=True)
async def test_upload_persistent_503_stops_within_the_policy(
    service: Harness, mode: str, tmp_path: Path, check: Any
) -> None:
    op = service.upload_op
    service.upload_server.plan(
        Rule(Respond.unavailable(retry_after=0.05), method=op.method, path=op.path)
    )
    exc, elapsed = await failing_upload(service, mode, tmp_path)
    check(exc)
    assert isinstance(exc, errors.ServerError) and exc.status == 503
    assert exc.retry_after == pytest.approx(0.05)
    assert POLICY.max_attempts <= uploads(service) <= upload_bound(service)
    assert elapsed < POLICY.budget


@pytest.mark.parametrize("service", services_with("upload"), indirect=True)
async def test_upload_reset_mid_body_every_time_stops_within_the_policy(
    service: Harness, mode: str, tmp_path: Path, check: Any
) -> None:
    op = service.upload_op
    service.upload_server.plan(Rule(Reset(request_bytes=PART // 2), method=op.method, path=op.path))
    exc, elapsed = await failing_upload(service, mode, tmp_path)
    check(exc)
    assert isinstance(exc, errors.ConnectionError)
    assert POLICY.max_attempts <= uploads(service) <= upload_bound(service)
    assert elapsed < POLICY.budget


@pytest.mark.parametrize("service", services_with("offset_upload"), indirect=True)
async def test_upload_cut_more_often_than_attempts_with_progress_finishes(
    service: Harness, mode: str, tmp_path: Path
) -> None:
    """Every cut leaves some bytes with the server: more cuts than max_attempts, and the upload finishes,
    each request sending only what the server lacks."""
    size = 3 * PART + 77
    data = payload(size, 29)
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    op = service.upload_op
    cuts = POLICY.max_attempts + 2
    keep = PART // 2
    (rule,) = service.upload_server.plan(
        Rule(
            Reset(request_bytes=keep, forward_partial=True),
            method=op.method,
            path=op.path,
            first=cuts,
        )
    )
    client = service.client(mode, fast_config(retry=POLICY))
    try:
        handle = await service.upload(client, source)
    finally:
        await close(client)
    assert service.uploaded(handle) == data
    assert rule.fired == cuts
    sent = [r.body_size for r in service.upload_server.requests_to(op.path, op.method)]
    assert sent == [keep] * cuts + [size - cuts * keep]
