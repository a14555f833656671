"""Assets: listing (prefix, glob, order, metadata, pages), lookup, metadata, digests, URLs, changes, readers."""

from __future__ import annotations

import hashlib
import io
import os

import httpx
import pytest
from scibind import errors
from scibind.dandi import Asset, AsyncRemoteFile
from scibind.testing.dandi import FakeDandiArchive

from .conftest import (
    STORAGE_HOST,
    Client,
    Faults,
    api,
    assert_no_credentials_to_storage,
    call,
    close,
    collect,
    make_client,
    storage,
)

PATHS = ["sub-01/a.nwb", "sub-01/b.nwb", "sub-02/c.nwb", "sub-02/deep/d.json", "README.md"]


@pytest.fixture
def tree(fake: FakeDandiArchive, dandiset: str) -> dict[str, str]:
    """The dandiset's assets: path -> asset_id."""
    return {p: fake.add_asset(dandiset, p, p.encode() * 10) for p in PATHS}


async def test_listing(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tree: dict[str, str]
) -> None:
    listing = dc.assets(dandiset, "draft", page_size=2)
    got = await collect(listing)
    assert [a.path for a in got] == PATHS
    assert listing.total == 5
    pages = api(fake, "/assets/", "GET")
    assert len(pages) == 3
    assert all(a.dandiset_id == dandiset and a.version_id == "draft" for a in got)
    assert all(a.metadata is None for a in got)
    assert [a.path for a in await collect(dc.assets(dandiset, path="sub-01"))] == PATHS[:2]
    assert [a.path for a in await collect(dc.assets(dandiset, path="sub-02/"))] == PATHS[2:4]
    assert [a.path for a in await collect(dc.assets(dandiset, glob="*.NWB"))] == PATHS[:3]
    ordered = await collect(dc.assets(dandiset, order="-path"))
    assert [a.path for a in ordered] == sorted(PATHS, reverse=True)
    with_meta = await collect(dc.assets(dandiset, metadata=True, max_items=2))
    assert len(with_meta) == 2 and with_meta[0].digests["dandi:dandi-etag"].endswith("-1")
    with pytest.raises(errors.ConfigurationError):
        dc.assets(dandiset, order="size")
    with pytest.raises(errors.ConfigurationError):
        dc.assets(dandiset, path="../elsewhere")


async def test_listing_resolves_the_version_once(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tree: dict[str, str]
) -> None:
    version = fake.publish(dandiset)
    fake.add_asset(dandiset, "later.txt", b"only in the draft")
    got = await collect(dc.assets(dandiset, page_size=2))  # most recent published version
    assert {a.version_id for a in got} == {version}
    assert "later.txt" not in [a.path for a in got]
    assert len(api(fake, f"/dandisets/{dandiset}/", "GET")) == 1


async def test_get_asset_by_id_and_path(dc: Client, dandiset: str, tree: dict[str, str]) -> None:
    by_id = await call(dc.get_asset(tree["sub-01/a.nwb"]))
    assert by_id.path == "sub-01/a.nwb" and by_id.dandiset_id is None
    assert by_id.metadata is not None and by_id.metadata["path"] == "sub-01/a.nwb"
    in_version = await call(dc.get_asset(tree["sub-01/a.nwb"], dandiset=dandiset))
    assert in_version.dandiset_id == dandiset and in_version.version_id == "draft"
    assert in_version.asset_id == by_id.asset_id
    by_path = await call(
        dc.get_asset_by_path(dandiset, "./sub-02/deep//d.json", version_id="draft")
    )
    assert by_path.asset_id == tree["sub-02/deep/d.json"]
    with pytest.raises(errors.NotFoundError, match="no asset at 'sub-02'"):
        await call(dc.get_asset_by_path(dandiset, "sub-02"))
    with pytest.raises(errors.NotFoundError):
        await call(dc.get_asset("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"))


async def test_asset_paths(dc: Client, dandiset: str, tree: dict[str, str]) -> None:
    root = await collect(dc.asset_paths(dandiset, version_id="draft"))
    assert [p.path for p in root] == ["README.md", "sub-01", "sub-02"]
    assert root[0].asset is not None and root[1].asset is None
    assert root[2].aggregate_files == 2
    below = await collect(dc.asset_paths(dandiset, "sub-02", version_id="draft"))
    assert [p.path for p in below] == ["sub-02/c.nwb", "sub-02/deep"]
    with pytest.raises(errors.NotFoundError):
        await collect(dc.asset_paths(dandiset, "nowhere/", version_id="draft"))


async def test_metadata_and_digests(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tree: dict[str, str]
) -> None:
    (asset,) = await collect(dc.assets(dandiset, "draft", path="README.md"))
    before = len(fake.requests)
    raw = await call(dc.get_asset_raw_metadata(asset))
    typed = await call(dc.get_asset_metadata(asset))
    assert raw == typed and raw["path"] == "README.md"
    content = b"README.md" * 10
    digests = await call(dc.get_digests(asset))
    assert digests["dandi:sha2-256"] == hashlib.sha256(content).hexdigest()
    assert await call(dc.get_raw_digest(asset)) == fake.dandi_etag(content)
    assert len(fake.requests) == before + 4  # the listing had no metadata: fetched by each call
    known = await call(dc.get_asset_by_path(dandiset, "README.md"))
    before = len(fake.requests)
    assert (await call(dc.get_asset_raw_metadata(known)))["path"] == "README.md"
    assert await call(dc.get_digests(known)) == digests
    assert len(fake.requests) == before  # carried by the asset
    with pytest.raises(errors.NotFoundError, match="dandi:md5"):
        await call(dc.get_raw_digest(known, "dandi:md5"))
    validation = await call(dc.get_asset_validation(known))
    assert validation.status in ("Pending", "Valid")


async def test_content_urls_never_carry_the_key_to_storage(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tree: dict[str, str]
) -> None:
    asset = await call(dc.get_asset_by_path(dandiset, "README.md"))
    assert dc.download_url(asset).endswith(
        f"/dandisets/{dandiset}/versions/draft/assets/{asset.asset_id}/download/"
    )
    url = await call(dc.get_download_url(asset))
    assert httpx.URL(url).host == STORAGE_HOST and "X-Amz-Signature" in url
    assert not storage(fake)  # resolved from the redirect, not followed
    first = await call(dc.get_content_url(asset))
    assert first.endswith(f"/assets/{asset.asset_id}/download/")
    s3 = await call(dc.get_content_url(asset, "fake.test/blobs", strip_query=True))
    assert httpx.URL(s3).host == STORAGE_HOST and "?" not in s3
    followed = await call(dc.get_content_url(asset, follow_redirects=True))
    assert httpx.URL(followed).host == STORAGE_HOST
    with pytest.raises(errors.NotFoundError):
        await call(dc.get_content_url(asset, "ftp://"))
    global_asset = await call(dc.get_asset(asset.asset_id))
    assert httpx.URL(await call(dc.get_download_url(global_asset))).host == STORAGE_HOST
    reader = dc.as_readable(asset)
    if isinstance(reader, AsyncRemoteFile):
        assert await reader.read() == b"README.md" * 10
    else:
        assert reader.read() == b"README.md" * 10
    assert_no_credentials_to_storage(fake)


async def test_rename_set_metadata_delete(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tree: dict[str, str]
) -> None:
    asset = await call(dc.get_asset_by_path(dandiset, "sub-01/a.nwb"))
    moved = await call(dc.rename_asset(asset, "sub-03/a.nwb"))
    assert moved.path == "sub-03/a.nwb" and moved.blob == asset.blob
    assert moved.asset_id != asset.asset_id  # the archive versions asset records
    paths = [a.path for a in await collect(dc.assets(dandiset, "draft"))]
    assert "sub-01/a.nwb" not in paths and "sub-03/a.nwb" in paths
    with pytest.raises(errors.ConflictError, match="already exists"):
        await call(dc.rename_asset(moved, "README.md"))
    meta = await call(dc.get_asset_raw_metadata(moved, refresh=True))
    meta["description"] = "annotated"
    annotated = await call(dc.set_asset_metadata(moved, meta))
    assert (await call(dc.get_asset_raw_metadata(annotated)))["description"] == "annotated"
    await call(dc.delete_asset(annotated))
    with pytest.raises(errors.NotFoundError):
        await call(dc.get_asset(annotated.asset_id, dandiset=dandiset, version_id="draft"))
    orphan = await call(dc.get_asset(tree["README.md"]))
    with pytest.raises(errors.ConfigurationError, match="without its dandiset"):
        await call(dc.delete_asset(orphan))


async def test_published_assets_are_read_only(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tree: dict[str, str]
) -> None:
    version = fake.publish(dandiset)
    (asset,) = await collect(dc.assets(dandiset, version, path="README.md"))
    with pytest.raises(errors.MethodNotAllowedError, match="Only draft versions"):
        await call(dc.delete_asset(asset))


async def read(reader: io.BufferedReader | AsyncRemoteFile, size: int = -1) -> bytes:
    if isinstance(reader, AsyncRemoteFile):
        return await reader.read(size)
    return reader.read(size)


async def test_readable_seeks_with_ranged_gets(
    kind: str, fake: FakeDandiArchive, dandiset: str
) -> None:
    content = os.urandom(300_000)
    fake.add_asset(dandiset, "big.bin", content)
    client = make_client(kind, fake)
    try:
        asset = await call(client.get_asset_by_path(dandiset, "big.bin"))
        reader = client.as_readable(asset, buffer_size=32 * 1024)
        assert not storage(fake)  # nothing until the first read
        assert reader.seekable() and reader.readable()
        assert await read(reader, 10) == content[:10]
        reader.seek(100_000)
        assert await read(reader, 5000) == content[100_000:105_000]
        assert reader.tell() == 105_000
        reader.seek(-20, io.SEEK_END)
        assert await read(reader) == content[-20:]
        assert await read(reader, 10) == b""
        reader.seek(0)
        assert await read(reader) == content
        ranges = [r.headers["Range"] for r in storage(fake, "GET")]
        assert ranges[0].startswith("bytes=0-") and all(r.startswith("bytes=") for r in ranges)
        redirects = api(fake, "/download/", "GET")
        assert len(redirects) == 1  # the presigned URL is reused
        if isinstance(reader, AsyncRemoteFile):
            async with reader:
                pass
            with pytest.raises(ValueError):
                await reader.read()
        else:
            reader.close()
            with pytest.raises(ValueError):
                reader.read()
        with pytest.raises(errors.ConfigurationError):
            client.as_readable(
                Asset(
                    "x",
                    "z.zarr",
                    0,
                    None,
                    "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
                    asset.created,
                    asset.modified,
                )
            )
    finally:
        await close(client)


async def test_readable_renews_an_expired_url(
    kind: str, fake: FakeDandiArchive, dandiset: str
) -> None:
    content = os.urandom(10_000)
    fake.add_asset(dandiset, "f.bin", content)
    faults = Faults(fake)
    expired = [True]

    def expire_once(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == STORAGE_HOST and expired and expired.pop():
            return httpx.Response(
                403,
                content=b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                headers={"Content-Type": "application/xml"},
            )
        return None

    faults.before.append(expire_once)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        asset = await call(client.get_asset_by_path(dandiset, "f.bin"))
        reader = client.as_readable(asset)
        assert await read(reader, 100) == content[:100]
        assert len(api(fake, "/download/", "GET")) == 2
    finally:
        await close(client)
