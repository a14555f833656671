"""Benchmark: list 1,000 datasets registered in a real dserver, scibind vs dtool-lookup-api, in one run.

Starts the embedded real dserver (scibind.testing.dserver_server), registers the datasets, then times listing all
of them (page size 100, the server's maximum) with:

* scibind ``DServer`` (sync; pages 2..N fetched concurrently) and ``AsyncDServer``;
* dtool-lookup-api 0.10.3's synchronous API (what its README shows: one call per page) and its async
  ``TokenBasedLookupClient`` (one session, pages one after another).

Each variant runs ``--repeat`` times; the median is reported, with the ratio scibind / peer.

    python bench/dserver_list.py [--datasets 1000] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _latency_proxy import latency_proxy

PAGE_SIZE = 100


def timed(fn: Callable[[], int], repeat: int, expected: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - start)
        if n != expected:
            raise SystemExit(f"listed {n} datasets, expected {expected}")
    return statistics.median(times)


def measure(url: str, token: str, n: int, repeat: int) -> dict[str, float]:
    """Median seconds per variant, listing ``n`` datasets from ``url``."""
    from scibind.dserver import AsyncDServer, DServer

    def scibind_sync() -> int:
        with DServer(url, token=token) as ds:
            return sum(1 for _ in ds.datasets(page_size=PAGE_SIZE))

    def scibind_async() -> int:
        async def go() -> int:
            async with AsyncDServer(url, token=token) as ds:
                return len([d async for d in ds.datasets(page_size=PAGE_SIZE)])

        return asyncio.run(go())

    def peer_sync() -> int:
        import dtool_lookup_api

        total, page, pages = 0, 1, 1
        while page <= pages:
            pagination: dict[str, Any] = {}
            total += len(
                dtool_lookup_api.get_datasets(
                    page_number=page, page_size=PAGE_SIZE, pagination=pagination
                )
            )
            pages = pagination.get("total_pages", 1)
            page += 1
        return total

    def peer_async() -> int:
        from dtool_lookup_api.core.LookupClient import TokenBasedLookupClient

        async def go() -> int:
            async with TokenBasedLookupClient(url, token) as client:
                total, page, pages = 0, 1, 1
                while page <= pages:
                    pagination: dict[str, Any] = {}
                    got = await client.get_datasets(
                        page_number=page, page_size=PAGE_SIZE, pagination=pagination
                    )
                    total += len(got)
                    pages = pagination.get("total_pages", 1)
                    page += 1
                return total

        return asyncio.run(go())

    results = {}
    for name, fn in zip(NAMES, (scibind_sync, scibind_async, peer_sync, peer_async), strict=True):
        fn()  # warm up (imports, connections)
        results[name] = timed(fn, repeat, n)
        print(f"{name:50s} {results[name] * 1000:8.1f} ms", file=sys.stderr)
    return results


NAMES = (
    "scibind DServer (sync)",
    "scibind AsyncDServer",
    "dtool_lookup_api sync API",
    "dtool_lookup_api TokenBasedLookupClient (async)",
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--latency-ms",
        type=float,
        nargs="*",
        default=[0.0, 20.0],
        help="round-trip latencies to emulate with a TCP proxy in front of the server (default: 0 and 20)",
    )
    args = parser.parse_args()

    from scibind.testing.dserver_server import run_dserver

    home = tempfile.mkdtemp(prefix="bench-home-")
    os.environ["HOME"] = home  # dtool-lookup-api reads (and writes) ~/.config/dtool/dtool.json
    with run_dserver() as server:
        t0 = time.perf_counter()
        server.seed_datasets(args.datasets, seed=1)
        print(
            f"registered {args.datasets} datasets in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        token = server.token(expires_in=3600)
        config = Path(home, ".config", "dtool", "dtool.json")
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps({"DSERVER_URL": server.url, "DSERVER_TOKEN": token}))
        n = args.datasets
        table = []
        for rtt in args.latency_ms:
            port = int(server.url.rsplit(":", 1)[1])
            with (
                latency_proxy("127.0.0.1", port, rtt / 2)
                if rtt
                else contextlib.nullcontext(port) as port
            ):
                url = f"http://127.0.0.1:{port}"
                config.write_text(json.dumps({"DSERVER_URL": url, "DSERVER_TOKEN": token}))
                results = measure(url, token, n, args.repeat)
            table.append((rtt, results))
    print(
        f"\nList {n} datasets from a real dserver (median of {args.repeat}, page size {PAGE_SIZE}):\n"
    )
    print("| network RTT | mode | scibind | dtool-lookup-api | ratio (scibind / peer) |")
    print("|---|---|---|---|---|")
    for rtt, results in table:
        for mode, ours, theirs in (("sync", NAMES[0], NAMES[2]), ("async", NAMES[1], NAMES[3])):
            print(
                f"| {rtt:.0f} ms | {mode} | {results[ours] * 1000:.0f} ms | {results[theirs] * 1000:.0f} ms "
                f"| {results[ours] / results[theirs]:.2f} |"
            )
    if args.json:
        args.json.write_text(
            json.dumps({"datasets": n, "repeat": args.repeat, "results": table}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
