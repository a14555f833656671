"""Demo: start the embedded real dserver, register datasets, and use scibind's sync and async clients on it
(listing, search, content, a dependency graph)."""

from __future__ import annotations

import asyncio
import time

from scibind.dserver import AsyncDServer, DServer
from scibind.testing.dserver_server import run_dserver


async def count_async(url: str, token: str) -> int:
    async with AsyncDServer(url, token=token) as ds:
        return len([d async for d in ds.datasets()])


def main() -> None:
    print(
        "starting the embedded dserver (dservercore + Mongo plugins on mongomock, SQLite, RS256) ..."
    )
    with run_dserver() as server:
        server.seed_datasets(200, seed=42)
        token = server.token()
        with DServer(server.url, token=token) as ds:
            print(f"server versions: {ds.versions()}")
            me = ds.me()
            print(
                f"signed in as {me.username} (admin={me.is_admin}), may search {me.search_permissions_on_base_uris}"
            )
            t0 = time.perf_counter()
            everything = list(ds.datasets())
            print(
                f"listed {len(everything)} datasets in {(time.perf_counter() - t0) * 1000:.0f} ms (pages fetched concurrently)"
            )
            hits = list(ds.search("polymer", max_items=5))
            print(f"free-text 'polymer': {len(hits)} shown")
            for d in hits:
                print(f"  {d.uri}  {d.name}  by {d.creator_username}")
            if hits:
                first = hits[0].uri
                manifest = ds.get_manifest(first)
                print(
                    f"manifest of {hits[0].name}: {len(manifest.items.to_dict())} items, hash {manifest.hash_function}"
                )
                print(f"readme (parsed): {ds.get_readme_parsed(first)}")
                print(f"tags: {ds.get_tags(first)}")
            print(f"summary: {ds.summary().number_of_datasets} datasets")
            # the dependency-graph plugin links datasets registered the way dserver's indexer does
            raw = server.index_dataset(name="raw-scan")
            server.index_dataset(name="segmented", readme={"derived_from": [{"uuid": raw["uuid"]}]})
            for node in ds.graph(raw["uuid"]):
                print(f"graph: {node.name} derived from {node.derived_from}")
        print(f"async listing: {asyncio.run(count_async(server.url, token))} datasets")


if __name__ == "__main__":
    main()
