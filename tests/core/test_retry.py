"""Retries: which requests, how long, Retry-After, budgets, body rewinds, mid-body resets."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
from scibind import errors
from scibind._core.http import build_async_client, build_sync_client
from scibind._core.retry import RetryState, parse_retry_after
from scibind.config import ClientConfig, RetryPolicy

from .toy import AsyncToy, Toy


class Script:
    """A transport answering from a list of (status, headers, body) or exceptions, recording requests."""

    def __init__(self, *steps: object) -> None:
        self.steps = list(steps)
        self.bodies: list[bytes] = []
        self.methods: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        self.methods.append(request.method)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        status, headers, body = step  # type: ignore[misc]
        return httpx.Response(status, headers=headers, content=body)


def client_with(
    script: Script, *, sleeps: list[float] | None = None, **policy: object
) -> httpx.Client:
    config = ClientConfig(retry=RetryPolicy(**policy))  # type: ignore[arg-type]
    client = build_sync_client(config, "https://svc.test", transport=httpx.MockTransport(script))
    record = sleeps if sleeps is not None else []
    client._transport.sleep = record.append  # type: ignore[attr-defined]
    return client


OK = (200, {"Content-Type": "application/json"}, b'{"id": "a", "size": 1}')
UNAVAILABLE = (503, {}, b"busy")


def test_get_retried_until_success() -> None:
    script = Script(UNAVAILABLE, UNAVAILABLE, OK)
    sleeps: list[float] = []
    with client_with(script, sleeps=sleeps) as c:
        assert c.get("/x").status_code == 200
    assert len(script.methods) == 3
    assert len(sleeps) == 2 and all(0 < s <= 8 for s in sleeps)


def test_attempts_are_bounded() -> None:
    script = Script(UNAVAILABLE)
    with client_with(script, max_attempts=3) as c:
        assert c.get("/x").status_code == 503
    assert len(script.methods) == 3


def test_post_is_not_retried_but_marked_post_is() -> None:
    script = Script(UNAVAILABLE, OK)
    with client_with(script) as c:
        assert c.post("/x", json={"a": 1}).status_code == 503
    assert script.methods == ["POST"]
    script = Script(UNAVAILABLE, OK)
    with client_with(script) as c:
        r = c.post("/x", json={"a": 1}, extensions={"scibind.idempotent": True})
        assert r.status_code == 200
    assert script.methods == ["POST", "POST"]
    assert script.bodies[0] == script.bodies[1] == b'{"a":1}'


def test_connect_error_is_retried_even_for_post() -> None:
    script = Script(httpx.ConnectError("refused"), OK)
    with client_with(script) as c:
        assert c.post("/x", content=b"abc").status_code == 200
    assert script.bodies == [b"abc", b"abc"]


def test_read_error_after_send_is_not_retried_for_post() -> None:
    script = Script(httpx.ReadError("reset"), OK)
    with client_with(script) as c, pytest.raises(httpx.ReadError):
        c.post("/x", content=b"abc")
    assert len(script.methods) == 1


def test_retry_after_seconds_and_date_are_honoured() -> None:
    date = email.utils.formatdate(time.time() + 3, usegmt=True)
    script = Script((429, {"Retry-After": "2"}, b""), (503, {"Retry-After": date}, b""), OK)
    sleeps: list[float] = []
    with client_with(script, sleeps=sleeps) as c:
        assert c.get("/x").status_code == 200
    assert sleeps[0] == 2.0
    assert 1.0 < sleeps[1] <= 3.0


def test_retry_after_beyond_cap_raises_rate_limited_with_hint() -> None:
    script = Script((429, {"Retry-After": "3600"}, b""), OK)
    with (
        Toy(transport=httpx.MockTransport(script)) as toy,
        pytest.raises(errors.RateLimitedError) as info,
    ):
        toy.get_thing("a")
    assert info.value.retry_after == 3600
    assert len(script.methods) == 1


def test_budget_stops_retries() -> None:
    script = Script(UNAVAILABLE)
    sleeps: list[float] = []
    with client_with(
        script, sleeps=sleeps, max_attempts=50, backoff_base=1, backoff_max=1, jitter=0, budget=2.5
    ) as c:
        # the fake sleep does not advance the clock, so fake the clock too
        clock = [0.0]
        transport = c._transport  # type: ignore[attr-defined]
        transport.clock = lambda: clock[0]
        transport.sleep = lambda s: (sleeps.append(s), clock.__setitem__(0, clock[0] + s))
        assert c.get("/x").status_code == 503
    assert sum(sleeps) <= 2.5
    assert len(script.methods) == 3


def test_unrewindable_body_is_not_retried() -> None:
    script = Script(UNAVAILABLE, OK)

    def gen():  # a generator body cannot be sent twice
        yield b"part1"
        yield b"part2"

    with client_with(script) as c:
        r = c.put("/x", content=gen())
    assert r.status_code == 503 and len(script.methods) == 1


def test_file_body_rewound_on_retry(tmp_path) -> None:
    from scibind.transfers.streams import FileSliceStream, with_stream

    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 100)
    script = Script(UNAVAILABLE, UNAVAILABLE, OK)
    with client_with(script) as c:
        stream = FileSliceStream(path, offset=100, length=5000)
        r = c.send(with_stream(c.build_request("PUT", "/x"), stream))
    assert r.status_code == 200
    expected = path.read_bytes()[100:5100]
    assert script.bodies == [expected] * 3


class _BrokenBody(httpx.SyncByteStream):
    def __iter__(self):
        yield b'{"id": "a", '
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )


def test_reset_mid_body_is_retried_for_get() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(200, stream=_BrokenBody())
        return httpx.Response(200, json={"id": "a", "size": 3})

    with Toy(transport=httpx.MockTransport(handler)) as toy:
        toy._http._transport.sleep = lambda s: None
        assert toy.get_thing("a") == {"id": "a", "size": 3}
    assert len(calls) == 2


def test_oversized_body_is_a_clear_error() -> None:
    config = ClientConfig(max_response_bytes=1000)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * 5000))
    with (
        Toy(transport=transport, config=config) as toy,
        pytest.raises(errors.ResponseTooLargeError),
    ):
        toy.get_thing("a")


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5
    assert parse_retry_after("-3") == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


def test_backoff_grows_with_jitter_and_cap() -> None:
    state = RetryState(
        RetryPolicy(backoff_base=1, backoff_max=4, jitter=0.5), 0.0, rand=lambda: 1.0
    )
    delays = []
    for attempt in range(1, 6):
        state.attempt = attempt
        delays.append(state.backoff())
    assert delays == [1, 2, 4, 4, 4]
    state = RetryState(
        RetryPolicy(backoff_base=1, backoff_max=4, jitter=0.5), 0.0, rand=lambda: 0.0
    )
    state.attempt = 3
    assert state.backoff() == 2


async def test_async_retry_and_concurrency_limit() -> None:
    import asyncio

    in_flight = 0
    peak = 0
    count = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak, count
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        count += 1
        if count % 3 == 0:
            return httpx.Response(503)
        return httpx.Response(200, json={"id": "x", "size": 1})

    config = ClientConfig(
        max_concurrency=5, retry=RetryPolicy(backoff_base=0.001, backoff_max=0.002)
    )
    async with AsyncToy(transport=httpx.MockTransport(handler), config=config) as toy:
        results = await asyncio.gather(*(toy.get_thing(str(i)) for i in range(60)))
    assert len(results) == 60
    assert peak <= 5


async def test_async_client_budget_and_post() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(503)

    client = build_async_client(
        ClientConfig(), "https://svc.test", transport=httpx.MockTransport(handler)
    )
    async with client:
        r = await client.post("/x", json={})
    assert r.status_code == 503 and calls == ["POST"]
