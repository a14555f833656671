"""The transport core seen through respx, the way users mock services: the client builds its own
transport chain (concurrency limit -> retries -> httpx's transport) and respx answers at the bottom.

Covers retries (status, Retry-After, non-idempotent POSTs), auth headers, typed errors with redacted URLs,
and pagination (default window = the client's concurrency limit; a failing page mid-listing), sync and async.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import respx
from scibind import errors
from scibind.auth import HeaderAuth
from scibind.config import ClientConfig, RetryPolicy

from .toy import AsyncToy, Toy

BASE = "https://toy.test/api"
FAST = RetryPolicy(max_attempts=4, backoff_base=0.001, backoff_max=0.01, budget=10.0)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def make(kind: str, **config: object) -> Toy | AsyncToy:
    cfg = ClientConfig(retry=FAST, **config)  # type: ignore[arg-type]
    cls = Toy if kind == "sync" else AsyncToy
    return cls(BASE, config=cfg, auth=HeaderAuth("tok-SECRET-123"))


async def call(client: Toy | AsyncToy, name: str, *args: object, **kw: object) -> object:
    result = getattr(client, name)(*args, **kw)
    if isinstance(client, AsyncToy):
        result = await result
    return result


async def close(client: Toy | AsyncToy) -> None:
    if isinstance(client, AsyncToy):
        await client.aclose()
    else:
        client.close()


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
async def test_get_retried_after_503_with_retry_after(api: respx.MockRouter, kind: str) -> None:
    route = api.get("/things/a").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "0"}),
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, json={"id": "a", "size": 3}),
        ]
    )
    client = make(kind)
    try:
        assert await call(client, "get_thing", "a") == {"id": "a", "size": 3}
    finally:
        await close(client)
    assert route.call_count == 3
    assert route.calls.last.request.headers["Authorization"] == "Bearer tok-SECRET-123"


@KINDS
async def test_post_is_not_repeated_unless_marked_safe(api: respx.MockRouter, kind: str) -> None:
    route = api.post("/things").mock(return_value=httpx.Response(503, json={"detail": "busy"}))
    client = make(kind)
    try:
        with pytest.raises(errors.ServerError) as info:
            await call(client, "make_thing", {"n": 1})
        assert route.call_count == 1
        assert info.value.method == "POST" and info.value.status == 503
        route.side_effect = [httpx.Response(503), httpx.Response(200, json={"ok": True})]
        assert await call(client, "make_thing", {"n": 1}, idempotent=True) == {"ok": True}
        assert route.call_count == 3
    finally:
        await close(client)


@KINDS
async def test_errors_are_typed_and_redacted(api: respx.MockRouter, kind: str) -> None:
    api.get("/things/x").mock(return_value=httpx.Response(404, json={"detail": "no such thing"}))
    api.get("/things/y").mock(return_value=httpx.Response(403, json={"detail": "not yours"}))
    client = make(kind)
    try:
        with pytest.raises(errors.NotFoundError) as missing:
            await call(client, "get_thing", "x")
        with pytest.raises(errors.PermissionDeniedError):
            await call(client, "get_thing", "y")
    finally:
        await close(client)
    err = missing.value
    assert (err.method, err.status) == ("GET", 404)
    assert "no such thing" in str(err)
    assert "tok-SECRET-123" not in str(err) + repr(err)


class Pages:
    """A numbered listing with an X-Pagination header; records concurrency and can fail one page."""

    def __init__(self, total: int, size: int, *, fail_page: int | None = None) -> None:
        self.total, self.size, self.fail_page = total, size, fail_page
        self.lock = threading.Lock()
        self.in_flight = self.peak = 0
        self.served: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        page = self._enter(request)
        try:
            time.sleep(0.02)  # hold the request open so concurrent pages overlap
            return self._answer(page)
        finally:
            with self.lock:
                self.in_flight -= 1

    async def asynchronous(self, request: httpx.Request) -> httpx.Response:
        """The same, for async clients (respx awaits it on the event loop)."""
        page = self._enter(request)
        try:
            await asyncio.sleep(0.02)
            return self._answer(page)
        finally:
            with self.lock:
                self.in_flight -= 1

    def handler(self, kind: str) -> object:
        return self if kind == "sync" else self.asynchronous

    def _enter(self, request: httpx.Request) -> int:
        page = int(request.url.params["page"])
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.served.append(page)
        return page

    def _answer(self, page: int) -> httpx.Response:
        if page == self.fail_page:
            return httpx.Response(404, json={"detail": f"page {page} vanished"})
        pages = -(-self.total // self.size)
        lo, hi = (page - 1) * self.size, min(page * self.size, self.total)
        meta = {"total": self.total, "total_pages": pages, "page": page}
        return httpx.Response(
            200,
            json=[{"id": f"t{i:04d}"} for i in range(lo, hi)],
            headers={"X-Pagination": json.dumps(meta)},
        )


async def collect(client: Toy | AsyncToy, **kw: object) -> list[str]:
    paginator = client.things(**kw)  # type: ignore[arg-type]
    if isinstance(client, AsyncToy):
        return [x async for x in paginator]
    return list(paginator)


@KINDS
async def test_default_window_is_the_client_concurrency_limit(
    api: respx.MockRouter, kind: str
) -> None:
    pages = Pages(total=200, size=10)
    api.get("/things").mock(side_effect=pages.handler(kind))
    client = make(kind, max_concurrency=3)
    try:
        items = await collect(client, page_size=10)
    finally:
        await close(client)
    assert items == [f"t{i:04d}" for i in range(200)]
    assert sorted(pages.served) == list(range(1, 21))
    assert pages.peak == 3  # later pages overlapped, but never more than the client's limit


@KINDS
async def test_failing_page_mid_listing_stops_with_the_typed_error(
    api: respx.MockRouter, kind: str
) -> None:
    pages = Pages(total=200, size=10, fail_page=5)
    api.get("/things").mock(side_effect=pages.handler(kind))
    client = make(kind, max_concurrency=3)
    got: list[str] = []
    try:
        paginator = client.things(page_size=10)
        with pytest.raises(errors.NotFoundError, match="page 5 vanished"):
            if isinstance(client, AsyncToy):
                async for item in paginator:
                    got.append(item)
            else:
                for item in paginator:
                    got.append(item)
    finally:
        await close(client)
    # everything before the failing page arrived, in order, and nothing after it was yielded
    assert got == [f"t{i:04d}" for i in range(40)]
    # the walk stopped: pages queued behind the failure were not all fetched
    assert len(pages.served) < 20
