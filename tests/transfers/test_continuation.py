"""Transfers continue after a failure as the client's RetryPolicy allows: attempts without progress, the time
budget without progress, backoff with jitter, Retry-After; status errors the transport already retried end
the transfer. The decisions (pure) and the download loops that follow them (sync and async)."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import pytest
from scibind import errors
from scibind._core import effects as fx
from scibind.config import ClientConfig, RetryPolicy
from scibind.transfers.continuation import Continuation, continuation
from scibind.transfers.download import Expected, download_op, partial_paths

from ..core.toy import AsyncToy, Toy
from .storage import Storage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def decide(policy: RetryPolicy, **kw: Any) -> tuple[Continuation, Clock]:
    clock = Clock()
    return Continuation(policy, clock=clock, rand=lambda: 0.5, **kw), clock


RESET = errors.ConnectionError("ReadError: connection reset")


# ------------------------------------------------------------------------------------------------ decisions
def test_failures_without_progress_are_bounded_by_max_attempts() -> None:
    resume, _ = decide(RetryPolicy(max_attempts=3, backoff_base=1, jitter=0))
    assert resume.after_failure(RESET, 0) == 1.0  # attempt 1 failed: wait, then attempt 2
    assert resume.after_failure(RESET, 0) == 2.0  # exponential
    with pytest.raises(errors.ConnectionError):
        resume.after_failure(RESET, 0)  # three attempts made no progress


def test_progress_resets_the_count() -> None:
    resume, _ = decide(RetryPolicy(max_attempts=2, backoff_base=0.1, jitter=0))
    for position in (10, 20, 30, 40, 50):  # every attempt made bytes: keeps going
        assert resume.after_failure(RESET, position) == pytest.approx(0.1)
    assert resume.after_failure(RESET, 50) == pytest.approx(0.1)  # one without progress
    with pytest.raises(errors.ConnectionError):
        resume.after_failure(RESET, 50)  # two in a row


def test_starting_over_is_not_progress() -> None:
    """A server without Range makes the transfer start over: the same first bytes again are no progress."""
    resume, _ = decide(RetryPolicy(max_attempts=3, backoff_base=0.1), best=0)
    resume.after_failure(RESET, 1000)  # progress
    resume.after_failure(RESET, 1000)  # 1
    resume.after_failure(RESET, 400)  # 2 (started over, got less)
    with pytest.raises(errors.ConnectionError):
        resume.after_failure(RESET, 1000)  # 3: back where it was, still nothing new


def test_status_errors_the_transport_retried_end_the_transfer_unless_bytes_were_made() -> None:
    busy = errors.ServerError("busy", status=503, retry_after=0.25)
    resume, _ = decide(RetryPolicy(max_attempts=5))
    with pytest.raises(errors.ServerError):
        resume.after_failure(busy, 0, retried=True)
    resume, _ = decide(RetryPolicy(max_attempts=5))
    assert (
        resume.after_failure(busy, 500, retried=True) == 0.25
    )  # bytes came first: continue, as hinted
    with pytest.raises(errors.ServerError):
        resume.after_failure(busy, 500, retried=True)  # none since


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    resume, _ = decide(RetryPolicy(retry_after_max=5))
    throttled = errors.RateLimitedError("slow down", status=429, retry_after=3.0)
    assert resume.after_failure(throttled, 0) == 3.0
    too_long = errors.ServerError("maintenance", status=503, retry_after=3600)
    with pytest.raises(errors.ServerError):
        resume.after_failure(too_long, 0)


def test_backoff_has_jitter_and_a_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=1, backoff_max=4, jitter=0.5, budget=1e9)
    resume = Continuation(policy, rand=lambda: 0.0)
    assert [resume.after_failure(RESET, 0) for _ in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    resume = Continuation(policy, rand=lambda: 1.0)
    assert [resume.after_failure(RESET, 0) for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]


def test_the_budget_bounds_time_without_progress_only() -> None:
    resume, clock = decide(RetryPolicy(max_attempts=100, backoff_base=1, jitter=0, budget=10))
    for step in range(1, 30):  # a long transfer that keeps making progress is never cut off
        clock.now += 5
        resume.after_failure(RESET, step * 100)
    assert clock.now - 100 > 10 * resume.policy.budget
    clock.now += 4
    resume.after_failure(RESET, 2900)  # stalled for 4 s, waits 1 s
    clock.now += 4
    with pytest.raises(errors.ConnectionError):
        resume.after_failure(RESET, 2900)  # 8 s + a 2 s wait would reach the 10 s budget


def test_an_explicit_limit_caps_continuations() -> None:
    resume, _ = decide(RetryPolicy(max_attempts=10), limit=2)
    resume.after_failure(RESET, 10)
    assert not resume.capped()
    resume.after_failure(RESET, 20)
    assert resume.capped()
    with pytest.raises(errors.ConnectionError):
        resume.after_failure(RESET, 30)


# ------------------------------------------------------------------------------------------------ the effect
def _policy_op() -> fx.Op[RetryPolicy]:
    made = yield from continuation(7)
    assert made.best == 7
    return made.policy


async def test_continuation_gets_the_clients_policy_sync_and_async() -> None:
    policy = RetryPolicy(max_attempts=4, budget=3.5)
    config = ClientConfig(retry=policy)
    with Toy(config=config) as toy:
        assert toy._driver.run(_policy_op()) is policy
    async with AsyncToy(config=config) as atoy:
        assert await atoy._driver.run(_policy_op()) is policy


# ------------------------------------------------------------------------------------------------ downloads
def policy(**changes: Any) -> ClientConfig:
    base = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.002, budget=5.0)
    return ClientConfig(retry=RetryPolicy(**{**_fields(base), **changes}))


def _fields(policy: RetryPolicy) -> dict[str, Any]:
    import attrs

    return attrs.asdict(policy, recurse=False)


async def run(mode: str, store: Storage, config: ClientConfig, op: Any) -> Any:
    if mode == "sync":
        with Toy(transport=store.transport(), config=config) as toy:
            return toy._driver.run(op)
    async with AsyncToy(transport=store.transport(), config=config) as atoy:
        return await atoy._driver.run(op)


def resolver(url: str) -> Any:
    def resolve() -> fx.Op[str]:
        yield fx.Sleep(0)
        return url

    return resolve


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("ranged", [False, True], ids=["single", "ranged"])
async def test_persistent_cut_without_progress_stops_after_max_attempts(
    mode: str, ranged: bool, tmp_path: Any
) -> None:
    store = Storage()
    data = os.urandom(30_000)
    store.objects["k"] = data
    store.cut_every = 0  # headers, then a reset, every time
    dest = tmp_path / "k.bin"
    sizes = {"part_size": 10_000, "min_parallel_size": 1, "parallel": 1} if ranged else {}
    op = download_op(resolver(store.signed("k")), dest, Expected(len(data)), **sizes)
    with pytest.raises(errors.ConnectionError):
        await run(mode, store, policy(max_attempts=3), op)
    assert store.gets == 3  # the policy's attempts, not attempts x attempts
    assert not dest.exists() and partial_paths(dest)[0].exists()  # kept for a later resume


async def test_cuts_that_make_progress_continue_past_max_attempts(mode: str, tmp_path: Any) -> None:
    store = Storage()
    data = os.urandom(30_000)
    store.objects["k"] = data
    store.cut_next = [
        0,
        0,
        3000,
        0,
        0,
        3000,
        0,
        0,
        3000,
    ]  # 9 failures, never 3 in a row without bytes
    dest = tmp_path / "k.bin"
    expected = Expected(len(data), {"md5": hashlib.md5(data).hexdigest()})
    await run(
        mode,
        store,
        policy(max_attempts=3),
        download_op(resolver(store.signed("k")), dest, expected),
    )
    assert dest.read_bytes() == data
    assert store.gets == 10 and store.served == len(data)  # nothing fetched twice


async def test_persistent_503_is_not_retried_twice(mode: str, tmp_path: Any) -> None:
    """The transport spent its attempts on the 503s (honouring Retry-After); the transfer adds none."""
    store = Storage()
    store.objects["k"] = os.urandom(5000)
    store.fail_gets_after = 0
    store.slow_down_retry_after = "0.01"
    with pytest.raises(errors.ServerError) as info:
        await run(
            mode,
            store,
            policy(max_attempts=3),
            download_op(resolver(store.signed("k")), tmp_path / "k.bin", Expected(5000)),
        )
    assert store.gets == 3
    assert info.value.status == 503 and info.value.retry_after == pytest.approx(0.01)


async def test_a_stalled_download_stops_within_the_budget(mode: str, tmp_path: Any) -> None:
    store = Storage()
    store.objects["k"] = os.urandom(5000)
    store.cut_every = 0
    config = policy(max_attempts=1000, backoff_base=0.05, backoff_max=0.05, jitter=0, budget=0.5)
    started = time.monotonic()
    with pytest.raises(errors.ConnectionError):
        await run(
            mode,
            store,
            config,
            download_op(resolver(store.signed("k")), tmp_path / "k.bin", Expected(5000)),
        )
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.4
    assert 3 <= store.gets <= 10  # waits of 0.05 s within 0.5 s, far below max_attempts
