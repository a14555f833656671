"""What the DANDI client claims about large listings and many files, measured at the archive.

A big dandiset's asset listing fetches its pages concurrently (never more at once than the client's
``max_concurrency``), lazily (stopping early fetches few pages) and in constant memory; ``download_directory``
downloads files concurrently; progress events drive a real ``tqdm`` bar. The fake is served over loopback HTTP
(so the async client runs requests concurrently too) and counts the requests it is working on; each watched
request takes a few milliseconds of server time, as a remote archive's would.
"""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind.config import ClientConfig, RetryPolicy
from scibind.dandi import AsyncDandiClient, DandiClient
from scibind.pagination import PAGES_AHEAD

from .conftest import PART, SmallParts, call, close, collect

ASSETS = 20_000
PAGE = 100
CONFIG = ClientConfig(retry=RetryPolicy(backoff_base=0.001, backoff_max=0.002), max_concurrency=4)


class Watched(SmallParts):
    """The fake archive, counting the watched requests in progress (each takes ``work`` seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.watch: Callable[[httpx.Request], bool] = lambda request: False
        self.work = 0.0
        self.in_flight = 0
        self.most_in_flight = 0
        self.watched: list[httpx.Request] = []
        self._counting = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.watch(request):
            return super().handle(request)
        with self._counting:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.watched.append(request)
        try:
            time.sleep(self.work)  # the archive's own time on this request
            return super().handle(request)
        finally:
            with self._counting:
                self.in_flight -= 1


def listing_pages(request: httpx.Request) -> bool:
    return request.method == "GET" and request.url.path.endswith("/assets/")


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[Watched, str, str]]:
    """A served fake with a 20,000-asset dandiset: ``(fake, api_url, dandiset_id)``."""
    fake = Watched()
    ident = fake.create_dandiset("Big")
    fake.add_assets(ident, (f"sub-{i // 100:03d}/f{i:05d}.nwb" for i in range(ASSETS)))
    with fake.serve() as url:
        yield fake, url, ident


@pytest.fixture
def watched(big: tuple[Watched, str, str]) -> Iterator[tuple[Watched, str, str]]:
    fake = big[0]
    fake.watched.clear()
    fake.most_in_flight = fake.in_flight = 0
    fake.requests.clear()
    yield big
    fake.watch = lambda request: False
    fake.work = 0.0


def client_for(kind: str, fake: Watched, url: str) -> Any:
    cls = DandiClient if kind == "sync" else AsyncDandiClient
    return cls(url, api_key=fake.api_key, config=CONFIG, part_size=PART)


async def test_listing_fetches_pages_concurrently_within_max_concurrency(
    kind: str, watched: tuple[Watched, str, str]
) -> None:
    fake, url, ident = watched
    fake.watch, fake.work = listing_pages, 0.03
    client = client_for(kind, fake, url)
    try:
        paginator = client.assets(ident, "draft")
        count = 0
        if kind == "sync":
            for _asset in paginator:
                count += 1
        else:
            async for _asset in paginator:
                count += 1
    finally:
        await close(client)
    assert count == ASSETS
    assert len(fake.watched) == ASSETS // 1000  # the server's largest pages
    assert 2 <= fake.most_in_flight <= CONFIG.max_concurrency


async def test_paginate_fetches_page_number_listings_concurrently(
    kind: str, watched: tuple[Watched, str, str]
) -> None:
    fake, url, ident = watched
    fake.watch, fake.work = listing_pages, 0.03
    client = client_for(kind, fake, url)
    try:
        records = await collect(
            client.paginate(f"/dandisets/{ident}/versions/draft/assets/", page_size=1000)
        )
    finally:
        await close(client)
    assert len(records) == ASSETS and records[-1]["path"] == f"sub-199/f{ASSETS - 1:05d}.nwb"
    assert len(fake.watched) == ASSETS // 1000
    assert 2 <= fake.most_in_flight <= CONFIG.max_concurrency


@pytest.mark.parametrize("stop_after", [10, 1000 + 10, 3 * PAGE + 10])
async def test_listing_is_lazy(
    kind: str, watched: tuple[Watched, str, str], stop_after: int
) -> None:
    fake, url, ident = watched
    fake.watch = listing_pages
    page_size = 1000 if stop_after < 2 * PAGE else PAGE
    client = client_for(kind, fake, url)
    try:
        paginator = client.assets(ident, "draft", page_size=page_size)
        seen = 0
        if kind == "sync":
            for _asset in paginator:
                seen += 1
                if seen == stop_after:
                    break
        else:
            async for _asset in paginator:
                seen += 1
                if seen == stop_after:
                    break
    finally:
        await close(client)
    assert seen == stop_after
    consumed = -(-stop_after // page_size)
    # the pages consumed, plus a bounded look-ahead: PAGES_AHEAD windows started ahead of the consumer
    # (plus the first page); never the whole listing
    ahead = PAGES_AHEAD * CONFIG.max_concurrency + 1
    assert consumed <= len(fake.watched) <= consumed + ahead
    assert len(fake.watched) < ASSETS // page_size


SERVER = """
import json, sys
from scibind.testing.dandi import FakeDandiArchive
fake = FakeDandiArchive()
big, small = fake.create_dandiset("Big"), fake.create_dandiset("Small")
fake.add_assets(big, (f"sub-{i // 100:03d}/f{i:05d}.nwb" for i in range(int(sys.argv[1]))))
fake.add_assets(small, (f"f{i:05d}.nwb" for i in range(int(sys.argv[1]) // 2)))
with fake.serve() as url:
    print(json.dumps([url, fake.api_key, big, small]), flush=True)
    sys.stdin.read()  # until the test closes the pipe
"""


@pytest.fixture(scope="module")
def remote() -> Iterator[tuple[str, str, str, str]]:
    """The fake in another process (its allocations are not this process's): url, key, big, small."""
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(ASSETS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()  # printed once it is serving
        url, key, big, small = json.loads(line)
        yield url, key, big, small
    finally:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.wait(timeout=30)
        child.stdout.close()


def _peak(run: Callable[[], Any]) -> tuple[Any, int]:
    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_listing_memory_stays_constant(remote: tuple[str, str, str, str]) -> None:
    url, key, big, small = remote
    with DandiClient(url, api_key=key, config=CONFIG) as client:
        list(client.assets(big, "draft", max_items=2000))  # warm up: imports, connections

        def stream(dandiset: str) -> int:
            return sum(1 for _ in client.assets(dandiset, "draft", page_size=PAGE))

        n_small, small_peak = _peak(lambda: stream(small))
        n_big, big_peak = _peak(lambda: stream(big))
        kept, keeping = _peak(lambda: client.assets(big, "draft", page_size=PAGE).list())
    assert (n_small, n_big, len(kept)) == (ASSETS // 2, ASSETS, ASSETS)
    # both listings are longer than the look-ahead: twice the assets, about the same peak; keeping them
    # all is what grows
    assert big_peak < 1.5 * small_peak, (small_peak, big_peak, keeping)
    assert keeping > 2 * big_peak, (small_peak, big_peak, keeping)


async def test_download_directory_downloads_files_concurrently(kind: str, tmp_path: Path) -> None:
    fake = Watched()
    ident = fake.create_dandiset("Files")
    files = {f"d/f{i}.bin": os.urandom(3000 + i) for i in range(8)}
    for path, content in files.items():
        fake.add_asset(ident, path, content)
    fake.watch = lambda r: r.method == "GET" and "/blobs/" in r.url.path
    fake.work = 0.03
    with fake.serve() as url:
        client = client_for(kind, fake, url)
        try:
            paths = await call(client.download_directory(ident, tmp_path, parallel_files=3))
        finally:
            await close(client)
    assert {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in paths} == files
    assert len(fake.watched) == len(files)
    assert 2 <= fake.most_in_flight <= 3


async def test_progress_events_drive_a_tqdm_bar(kind: str, tmp_path: Path) -> None:
    tqdm = pytest.importorskip("tqdm").tqdm
    fake = SmallParts()
    ident = fake.create_dandiset("Progress")
    content = os.urandom(3 * 1024 * 1024 + 123)  # ranged, in parallel parts; events every MiB
    fake.add_asset(ident, "big.bin", content)
    out = io.StringIO()
    cls = DandiClient if kind == "sync" else AsyncDandiClient
    client = cls(
        fake.base_url,
        api_key=fake.api_key,
        config=CONFIG,
        part_size=PART,
        transport=fake.transport(),
    )
    phases: list[str] = []
    try:
        asset = await call(client.get_asset_by_path(ident, "big.bin"))
        with tqdm(total=asset.size, unit="B", unit_scale=True, file=out, mininterval=0) as bar:

            def progress(event: Any) -> None:
                phases.append(event.phase)
                bar.update(event.advance)  # bytes since the previous event of this file

            path = await call(client.download(asset, tmp_path, progress=progress, parallel=3))
            assert bar.n == len(content)
    finally:
        await close(client)
    assert path.read_bytes() == content
    assert phases.count("downloading") >= 3 and phases[-1] == "done"
    assert "100%" in out.getvalue() and out.getvalue().count("\r") >= 3  # the bar was redrawn
