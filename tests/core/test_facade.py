"""Operations run the same on sync and async facades; errors are typed and thrown into operations."""

from __future__ import annotations

import httpx
import pytest
from scibind import errors

from .toy import AsyncToy, Toy


def things(request: httpx.Request) -> httpx.Response:
    tid = request.url.path.rsplit("/", 1)[-1]
    if tid == "missing":
        return httpx.Response(404, json={"detail": "Not found."})
    if tid == "denied":
        return httpx.Response(403, json={"msg": "no search permission"})
    if tid == "bad":
        return httpx.Response(200, json={"id": "bad"})  # lacks "size"
    if tid == "html":
        return httpx.Response(200, text="<html>proxy error</html>")
    if tid == "boom":
        return httpx.Response(500, text="Internal Server Error")
    if request.method == "POST":
        return httpx.Response(201, json=dict(created=True))
    return httpx.Response(200, json={"id": tid, "size": "7"})


def test_sync_and_async_give_same_result() -> None:
    import asyncio

    with Toy(transport=httpx.MockTransport(things)) as toy:
        sync = toy.get_thing("a")

    async def go():
        async with AsyncToy(transport=httpx.MockTransport(things)) as atoy:
            return await atoy.get_thing("a")

    assert sync == asyncio.run(go()) == {"id": "a", "size": 7}


@pytest.mark.parametrize(
    ("tid", "cls", "text"),
    [
        ("missing", errors.NotFoundError, "Not found."),
        ("denied", errors.PermissionDeniedError, "no search permission"),
        ("bad", errors.ResponseFormatError, "KeyError"),
        ("html", errors.ResponseFormatError, "JSONDecodeError"),
        ("boom", errors.ServerError, "Internal Server Error"),
    ],
)
def test_errors_are_typed(tid: str, cls: type[Exception], text: str) -> None:
    cfg = __import__("scibind.config", fromlist=["x"]).ClientConfig(
        retry=__import__("scibind.config", fromlist=["x"]).RetryPolicy(max_attempts=1)
    )
    with Toy(transport=httpx.MockTransport(things), config=cfg) as toy, pytest.raises(cls) as info:
        toy.get_thing(tid)
    assert text in str(info.value)
    assert "GET https://toy.test/api/things/" in str(info.value)


def test_errors_thrown_into_operation_can_be_handled() -> None:
    with Toy(transport=httpx.MockTransport(things)) as toy:
        assert toy.get_or_none("missing") is None
        assert toy.get_or_none("a") == {"id": "a", "size": 7}


async def test_async_errors_thrown_into_operation() -> None:
    async with AsyncToy(transport=httpx.MockTransport(things)) as toy:
        assert await toy.get_or_none("missing") is None
        with pytest.raises(errors.NotFoundError):
            await toy.get_thing("missing")


def test_parallel_preserves_order_and_raises_first_error() -> None:
    with Toy(transport=httpx.MockTransport(things)) as toy:
        got = toy.get_many([str(i) for i in range(30)])
        assert [g["id"] for g in got] == [str(i) for i in range(30)]
        with pytest.raises(errors.NotFoundError):
            toy.get_many(["1", "missing", "2"])


async def test_async_parallel() -> None:
    async with AsyncToy(transport=httpx.MockTransport(things)) as toy:
        got = await toy.get_many([str(i) for i in range(30)])
    assert [g["id"] for g in got] == [str(i) for i in range(30)]


def test_connection_refused_is_typed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    cfg = __import__("scibind.config", fromlist=["x"]).ClientConfig(
        retry=__import__("scibind.config", fromlist=["x"]).RetryPolicy(
            max_attempts=2, backoff_base=0.001
        )
    )
    with (
        Toy(transport=httpx.MockTransport(refuse), config=cfg) as toy,
        pytest.raises(errors.ConnectionError),
    ):
        toy.get_thing("a")


def test_repr_and_docstring() -> None:
    with Toy(
        "https://user:pw@toy.test/api?token=abc", transport=httpx.MockTransport(things)
    ) as toy:
        assert "pw" not in repr(toy) and "abc" not in repr(toy)
        assert toy.get_thing.__doc__ == "One thing."


def test_a_stalled_operation_does_not_hold_up_the_others() -> None:
    """Parallel/imap keep ``window`` operations running even while the first in order is still waiting."""
    import threading

    release = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        tid = request.url.path.rsplit("/", 1)[-1]
        with lock:
            started.append(tid)
        if tid == "0":
            assert release.wait(10), "the stalled call was never released"
        elif len(started) >= 6:
            release.set()  # everything after the stalled head got going
        return httpx.Response(200, json={"id": tid, "size": "1"})

    with Toy(transport=httpx.MockTransport(handler)) as toy:
        got = toy.get_many([str(i) for i in range(6)])  # limit=4: "0" stalls until 5 others started
    assert [g["id"] for g in got] == [str(i) for i in range(6)]


async def test_async_stalled_operation_does_not_hold_up_the_others() -> None:
    import asyncio

    release = asyncio.Event()
    started: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        tid = request.url.path.rsplit("/", 1)[-1]
        started.append(tid)
        if tid == "0":
            await asyncio.wait_for(release.wait(), 10)
        elif len(started) >= 6:
            release.set()
        return httpx.Response(200, json={"id": tid, "size": "1"})

    async with AsyncToy(transport=httpx.MockTransport(handler)) as toy:
        got = await toy.get_many([str(i) for i in range(6)])
    assert [g["id"] for g in got] == [str(i) for i in range(6)]


def test_operations_called_through_the_class_and_inspectable() -> None:
    import inspect

    with Toy(transport=httpx.MockTransport(things)) as toy:
        assert Toy.get_thing(toy, "a") == toy.get_thing("a")
    assert list(inspect.signature(Toy.get_thing).parameters) == ["self", "id"]
    assert Toy.get_thing.__doc__ == "One thing."
