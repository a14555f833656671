"""Paginator: numbered pages fetched concurrently in order, cursors walked, limits, sync and async."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from scibind._core import effects as fx
from scibind.pagination import (
    Page,
    Paginator,
    drf_page,
    offset_page,
    tastypie_page,
    x_pagination_page,
)

from .toy import AsyncToy, Toy


class Listing:
    """GET /things?page=&page_size= with an X-Pagination header, like flask-smorest."""

    def __init__(self, total: int, delay: float = 0.0) -> None:
        self.total = total
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.pages: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        size = int(request.url.params["page_size"])
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.pages.append(page)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        items = [
            {"id": f"t{i:05d}"} for i in range((page - 1) * size, min(page * size, self.total))
        ]
        pages = max(1, -(-self.total // size))
        meta = {"total": self.total, "total_pages": pages, "page": page}
        if page < pages:
            meta["next_page"] = page + 1
        return httpx.Response(200, json=items, headers={"X-Pagination": json.dumps(meta)})


def test_numbered_pages_concurrent_in_order() -> None:
    listing = Listing(total=95, delay=0.01)
    with Toy(transport=httpx.MockTransport(listing)) as toy:
        p = toy.things(page_size=10, window=4)
        items = list(p)
        assert p.total == 95
    assert items == [f"t{i:05d}" for i in range(95)]
    assert sorted(listing.pages) == list(range(1, 11))
    assert 1 < listing.peak <= 4


def test_max_items_stops_early() -> None:
    listing = Listing(total=1000)
    with Toy(transport=httpx.MockTransport(listing)) as toy:
        items = list(toy.things(page_size=10, max_items=25, window=2))
    assert len(items) == 25
    assert sorted(listing.pages) == [1, 2, 3]  # only the pages holding the first 25 items


def test_empty_listing() -> None:
    with Toy(transport=httpx.MockTransport(Listing(total=0))) as toy:
        assert list(toy.things()) == []


async def test_async_iteration_matches_sync() -> None:
    listing = Listing(total=57)
    async with AsyncToy(transport=httpx.MockTransport(listing)) as toy:
        items = [x async for x in toy.things(page_size=5)]
    assert items == [f"t{i:05d}" for i in range(57)]


def test_wrong_iteration_kind_is_a_clear_error() -> None:
    with (
        Toy(transport=httpx.MockTransport(Listing(total=3))) as toy,
        pytest.raises(TypeError, match="sync client"),
    ):
        toy.things().__aiter__().__anext__().send(None)


def test_cursor_style_walks_next() -> None:
    with Toy(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as toy:

        def fetch(cursor: str | None) -> fx.Op[Page[int]]:
            start = int(cursor or 0)
            yield fx.Sleep(0)
            return Page(
                list(range(start, min(start + 3, 10))),
                next=str(start + 3) if start + 3 < 10 else None,
            )

        assert list(Paginator(toy._driver, fetch, first=None, numbered=False)) == list(range(10))


def test_page_styles() -> None:
    p = drf_page({"count": 250, "next": "u", "results": [1, 2]}, 100, lambda x: x * 2, page=1)
    assert (p.items, p.total_pages, p.total_items, p.next) == ([2, 4], 3, 250, 2)
    p = drf_page({"count": None, "next": None, "results": [1]}, 100, int, page=3)
    assert (p.total_pages, p.next) == (None, None)
    p = tastypie_page(
        {"meta": {"limit": 20, "offset": 40, "total_count": 45, "next": None}, "objects": [{}]},
        dict,
    )
    assert (p.total_pages, p.total_items, p.next) == (3, 45, None)
    p = tastypie_page(
        {
            "meta": {"limit": 20, "offset": 0, "total_count": 45, "next": "/x?offset=20"},
            "objects": [],
        },
        dict,
    )
    assert p.next == 2
    assert offset_page([1] * 10, total=None, limit=10, page=1).next == 2
    assert offset_page([1] * 3, total=None, limit=10, page=1).next is None
    assert x_pagination_page([], {"X-Pagination": "not json"}).total_pages is None
