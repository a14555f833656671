"""One lazy paginator for every service's paging style.

A service describes how to fetch one page (an operation returning a :class:`Page`); the :class:`Paginator`
walks pages lazily. When the first page tells how many pages there are (numbered styles: dserver's
``X-Pagination`` header, DRF ``count``, Tastypie ``meta.total_count``, offset/limit with a total), the
remaining pages are fetched concurrently, a bounded window ahead of the consumer, and yielded in order, so
memory stays constant however long the listing. Cursor styles (``next`` links, keyset ``start``) are walked
one page after another.

The same :class:`Paginator` works with ``for`` on a sync client and ``async for`` on an async client.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from ._core.drivers import AsyncDriver, SyncDriver
from ._core.effects import Op

__all__ = [
    "Page",
    "Paginator",
    "drf_page",
    "offset_page",
    "tastypie_page",
    "x_pagination_page",
]

T = TypeVar("T")
U = TypeVar("U")

PAGES_AHEAD = 2
"""Windows of pages started ahead of the consumer: the running window and one more waiting (memory stays at
about ``2 x window`` pages however long the listing; a consumer that stops early leaves the rest unfetched)."""


@attrs.frozen
class Page(Generic[T]):
    """One page of results.

    ``total_pages`` (numbered styles) lets the paginator fetch the rest concurrently; ``next`` is the key of the
    following page for cursor styles (``None`` on the last page).
    """

    items: Sequence[T]
    total_pages: int | None = None
    total_items: int | None = None
    next: Any = None


def x_pagination_page(items: Sequence[T], headers: Mapping[str, str]) -> Page[T]:
    """dserver / flask-smorest: ``X-Pagination: {"total": .., "total_pages": .., "page": .., "next_page": ..}``."""
    raw = headers.get("X-Pagination")
    meta: dict[str, Any] = {}
    if raw:
        try:
            loaded = json.loads(raw)
            meta = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            meta = {}
    return Page(
        items,
        total_pages=_int(meta.get("total_pages")),
        total_items=_int(meta.get("total")),
        next=_int(meta.get("next_page")),
    )


def drf_page(
    body: Mapping[str, Any], page_size: int, parse: Callable[[Any], T], page: int
) -> Page[T]:
    """Django REST framework: ``{count, next, previous, results}``; ``count`` may be null after page 1."""
    items = [parse(r) for r in body.get("results") or []]
    count = _int(body.get("count"))
    total_pages = max(1, math.ceil(count / page_size)) if count is not None else None
    return Page(
        items,
        total_pages=total_pages,
        total_items=count,
        next=page + 1 if body.get("next") else None,
    )


def tastypie_page(body: Mapping[str, Any], parse: Callable[[Any], T]) -> Page[T]:
    """Tastypie: ``{meta: {limit, offset, total_count, next}, objects}``; page keys are 1-based page numbers."""
    meta = body.get("meta") or {}
    items = [parse(o) for o in body.get("objects") or []]
    limit, offset, total = (
        _int(meta.get("limit")),
        _int(meta.get("offset")) or 0,
        _int(meta.get("total_count")),
    )
    total_pages = max(1, math.ceil(total / limit)) if (limit and total is not None) else None
    nxt = (offset // limit) + 2 if (limit and meta.get("next")) else None
    return Page(items, total_pages=total_pages, total_items=total, next=nxt)


def offset_page(items: Sequence[T], *, total: int | None, limit: int, page: int) -> Page[T]:
    """Offset/limit styles (Midas, GraphQL ``first``/``offset``): page keys are 1-based page numbers."""
    if total is not None:
        return Page(items, total_pages=max(1, math.ceil(total / limit)), total_items=total)
    return Page(items, next=page + 1 if len(items) >= limit else None)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class Paginator(Generic[T]):
    """Lazily iterate every item of a paged listing (``for`` on sync clients, ``async for`` on async ones).

    Args:
        driver: the client's driver.
        fetch: ``fetch(key)`` is an operation returning the :class:`Page` for a page key.
        first: the first page key (1 for numbered styles; a cursor or ``None`` for cursor styles).
        numbered: page keys are consecutive integers, so pages after the first can be fetched concurrently.
        max_items / max_pages: stop early.
        window: pages in flight at once (defaults to the client's concurrency limit).
    """

    def __init__(
        self,
        driver: SyncDriver | AsyncDriver,
        fetch: Callable[[Any], Op[Page[T]]],
        *,
        first: Any = 1,
        numbered: bool = True,
        max_items: int | None = None,
        max_pages: int | None = None,
        window: int | None = None,
    ) -> None:
        self._driver = driver
        self._fetch = fetch
        self._first = first
        self._numbered = numbered
        self.max_items = max_items
        self.max_pages = max_pages
        self._window = window
        self.first_page: Page[T] | None = None

    @property
    def total(self) -> int | None:
        """Total number of items, once the first page has been fetched (if the API reports it)."""
        return self.first_page.total_items if self.first_page else None

    # -- the walk, decided without I/O ---------------------------------------------------------------------
    def _rest_keys(self, first: Page[T]) -> range | None:
        """Keys of the remaining pages when they can be fetched concurrently, else None (walk cursors)."""
        if not (self._numbered and first.total_pages and isinstance(self._first, int)):
            return None
        last = self._first + first.total_pages - 1
        if self.max_pages is not None:
            last = min(last, self._first + self.max_pages - 1)
        if self.max_items is not None and first.items:
            # pages are full until the last one: fetch no page beyond the one holding item max_items
            last = min(last, self._first + math.ceil(self.max_items / len(first.items)) - 1)
        return range(self._first + 1, last + 1)

    def _clip(self, page: Page[T], seen: int, pages: int) -> tuple[Sequence[T], bool]:
        """Items of ``page`` to yield, and whether to stop after them."""
        items = page.items
        if self.max_items is not None and seen + len(items) >= self.max_items:
            return items[: self.max_items - seen], True
        return items, self.max_pages is not None and pages >= self.max_pages

    # -- sync ---------------------------------------------------------------------------------------------
    def pages(self) -> Iterator[Page[T]]:
        """Iterate pages (sync clients)."""
        driver = self._sync_driver()
        first = self.first_page = driver.run(self._fetch(self._first))
        yield first
        rest = self._rest_keys(first)
        if rest is not None:
            yield from driver.imap((self._fetch(k) for k in rest), self._window, ahead=PAGES_AHEAD)
            return
        key = first.next
        while key is not None:
            page = driver.run(self._fetch(key))
            yield page
            key = page.next

    def __iter__(self) -> Iterator[T]:
        seen = 0
        for n, page in enumerate(self.pages(), 1):
            items, stop = self._clip(page, seen, n)
            yield from items
            seen += len(items)
            if stop or not page.items:
                return

    # -- async --------------------------------------------------------------------------------------------
    async def apages(self) -> AsyncGenerator[Page[T], None]:
        """Iterate pages (async clients)."""
        driver = self._async_driver()
        first = self.first_page = await driver.run(self._fetch(self._first))
        yield first
        rest = self._rest_keys(first)
        if rest is not None:
            async for page in driver.imap(
                (self._fetch(k) for k in rest), self._window, ahead=PAGES_AHEAD
            ):
                yield page
            return
        key = first.next
        while key is not None:
            page = await driver.run(self._fetch(key))
            yield page
            key = page.next

    async def __aiter__(self) -> AsyncIterator[T]:
        seen, n = 0, 0
        async with contextlib.aclosing(self.apages()) as pages:
            async for page in pages:
                n += 1
                items, stop = self._clip(page, seen, n)
                for item in items:
                    yield item
                seen += len(items)
                if stop or not page.items:
                    return

    async def alist(self) -> list[T]:
        """All items as a list (async)."""
        return [item async for item in self]

    def list(self) -> list[T]:
        """All items as a list (sync)."""
        return list(self)

    def _sync_driver(self) -> SyncDriver:
        if isinstance(self._driver, SyncDriver):
            return self._driver
        raise TypeError("this paginator belongs to an async client: use `async for`")

    def _async_driver(self) -> AsyncDriver:
        if isinstance(self._driver, AsyncDriver):
            return self._driver
        raise TypeError("this paginator belongs to a sync client: use `for`")
