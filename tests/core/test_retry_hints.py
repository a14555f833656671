"""Retry-After hints reach the typed errors: a 503 stays a ServerError (with its hint) even when the hint is
longer than the policy allows; a 429 is a RateLimitedError."""

from __future__ import annotations

import httpx
import pytest
from scibind import errors
from scibind.config import ClientConfig, RetryPolicy

from .test_retry import Script
from .toy import AsyncToy, Toy


def test_503_with_a_retry_after_beyond_the_cap_is_a_server_error() -> None:
    script = Script((503, {"Retry-After": "3600"}, b"down for maintenance"))
    with (
        Toy(transport=httpx.MockTransport(script)) as toy,
        pytest.raises(errors.ServerError) as info,
    ):
        toy.get_thing("a")
    assert not isinstance(info.value, errors.RateLimitedError)
    assert info.value.status == 503
    assert info.value.retry_after == 3600
    assert "3600s" in str(info.value)
    assert len(script.methods) == 1  # not waited for, not repeated


def test_429_with_a_retry_after_beyond_the_cap_stays_rate_limited() -> None:
    script = Script((429, {"Retry-After": "600"}, b""))
    with (
        Toy(transport=httpx.MockTransport(script)) as toy,
        pytest.raises(errors.RateLimitedError) as info,
    ):
        toy.get_thing("a")
    assert info.value.status == 429 and info.value.retry_after == 600


async def test_server_error_after_the_retries_carries_the_last_hint() -> None:
    config = ClientConfig(retry=RetryPolicy(max_attempts=2, retry_after_max=1))
    script = Script((503, {"Retry-After": "0.01"}, b"busy"))
    async with AsyncToy(transport=httpx.MockTransport(script), config=config) as toy:
        with pytest.raises(errors.ServerError) as info:
            await toy.get_thing("a")
    assert info.value.status == 503 and info.value.retry_after == pytest.approx(0.01)
    assert len(script.methods) == 2


def test_server_error_without_a_hint() -> None:
    config = ClientConfig(retry=RetryPolicy.none())
    with (
        Toy(transport=httpx.MockTransport(Script((502, {}, b"bad gateway"))), config=config) as toy,
        pytest.raises(errors.ServerError) as info,
    ):
        toy.get_thing("a")
    assert info.value.status == 502 and info.value.retry_after is None
