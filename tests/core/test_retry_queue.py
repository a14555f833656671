"""The retry time budget covers a call's attempts and waits, not the time it queues for a concurrency slot.

Found by tests/faults (load): 1,000 concurrent calls through one client with ``max_concurrency=8`` failed
with "time budget exceeded" for calls that had only been waiting for a slot.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from scibind.config import ClientConfig, RetryPolicy

from .toy import AsyncToy, Toy

CONFIG = ClientConfig(max_concurrency=1, retry=RetryPolicy(budget=0.2, backoff_base=0.001))


async def slow(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(0.03)
    return httpx.Response(200, json={"id": "x", "size": 1})


def slow_sync(request: httpx.Request) -> httpx.Response:
    time.sleep(0.03)
    return httpx.Response(200, json={"id": "x", "size": 1})


async def test_async_calls_queued_longer_than_the_budget_succeed() -> None:
    async with AsyncToy(transport=httpx.MockTransport(slow), config=CONFIG) as toy:
        results = await asyncio.gather(
            *(toy.get_thing(str(i)) for i in range(15))
        )  # ~0.45 s in all
    assert len(results) == 15


def test_sync_calls_queued_longer_than_the_budget_succeed() -> None:
    with (
        Toy(transport=httpx.MockTransport(slow_sync), config=CONFIG) as toy,
        ThreadPoolExecutor(15) as pool,
    ):
        results = list(pool.map(toy.get_thing, [str(i) for i in range(15)]))
    assert len(results) == 15
