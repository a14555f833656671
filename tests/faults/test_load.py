"""Load: 1,000 requests through one client (async: all 1,000 started at once with ``gather``; sync: a pool of
64 threads, so at most 64 wait at once) respect its concurrency limit (peak in flight measured at the server),
share connections, and finish without errors or leaked connections and file handles."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from scibind.testing.faults import wait_for

from .harness import Harness, close, fast_config, services_with

REQUESTS = 1000
LIMIT = 8


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def pool_connections(client: Any) -> list[Any]:
    """Connections held by the client's httpx pool (under the retry transport and any service wrapper)."""
    transport = client.http._transport
    for _ in range(5):
        if hasattr(transport, "_pool"):
            return list(transport._pool.connections)
        transport = transport.inner
    raise AssertionError("no connection pool found under the client's transport")


@pytest.mark.parametrize("service", services_with("load"), indirect=True)
async def test_thousand_concurrent_requests_share_a_bounded_pool(
    service: Harness, mode: str
) -> None:
    handle = service.seed_read()
    service.api.latency = 0.01  # requests overlap, so the limit is what bounds them
    fds_before = open_fds()
    client = service.client(mode, fast_config(max_concurrency=LIMIT))
    service.api.reset_records()
    try:
        if mode == "async":
            results = await asyncio.gather(*(service.read(client, handle) for _ in range(REQUESTS)))
        else:
            with ThreadPoolExecutor(max_workers=64) as pool:
                results = list(
                    pool.map(lambda _: service.read_call(client, handle), range(REQUESTS))
                )
        assert len(results) == REQUESTS
        assert all(r == results[0] for r in results)
        reads = service.api.requests_to(service.read_op.path, service.read_op.method)
        assert len(reads) == REQUESTS  # no retries were needed, none were lost
        assert LIMIT - 2 <= service.api.peak_in_flight <= LIMIT  # used, never exceeded
        assert service.api.connections <= LIMIT + 1  # connections are reused (one more for a token)
    finally:
        await close(client)
    assert pool_connections(client) == []
    assert wait_for(lambda: service.api.open_connections == 0)
    assert wait_for(lambda: open_fds() <= fds_before), (
        f"{open_fds()} file handles open, {fds_before} before"
    )
