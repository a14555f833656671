"""Zarr archives: checksum, upload of a local Zarr (only differences), entries, deletion, download, reading."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path

import httpx
import pytest
from scibind import errors
from scibind.dandi import AsyncRemoteFile, zarr_checksum
from scibind.dandi._zarrsum import EMPTY_ZARR_CHECKSUM, local_zarr_digests
from scibind.testing.dandi import FakeDandiArchive
from scibind.testing.dandi import zarr_checksum as fake_zarr_checksum

from .conftest import STORAGE_HOST, Client, Faults, api, call, close, collect, make_client, storage


def write_zarr(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return root


def sample(n: int = 6) -> dict[str, bytes]:
    files = {".zgroup": b'{"zarr_format": 2}', "0/.zarray": b"{}", "0/.zattrs": b"{}"}
    files.update({f"0/{i}.{j}": os.urandom(100 + i * 10 + j) for i in range(n) for j in range(2)})
    files["labels/x/0"] = b"label"
    return files


def zarr_puts(fake: FakeDandiArchive) -> list[httpx.Request]:
    return [r for r in storage(fake, "PUT") if "/zarr/" in r.url.path]


# -- the checksum --------------------------------------------------------------------------------------------
def test_checksum_matches_the_reference_implementations(tmp_path: Path) -> None:
    from zarr_checksum import compute_zarr_checksum
    from zarr_checksum.generators import yield_files_local

    root = write_zarr(tmp_path / "a.zarr", sample())
    local = local_zarr_digests(root)
    ours = zarr_checksum({p: (m, s) for p, (_f, m, s) in local.items()})
    assert ours == str(compute_zarr_checksum(yield_files_local(root)))
    assert ours == fake_zarr_checksum({p: (m, s) for p, (_f, m, s) in local.items()})
    assert ours.endswith(f"-{len(local)}--{sum(s for _f, _m, s in local.values())}")
    rows = [(p, m, s) for p, (_f, m, s) in local.items()]
    assert zarr_checksum(rows) == ours
    assert fake_zarr_checksum({}) == EMPTY_ZARR_CHECKSUM
    assert EMPTY_ZARR_CHECKSUM.endswith("-0--0")
    with pytest.raises(ValueError):
        zarr_checksum({"a": ("0" * 32, 1), "a/b": ("1" * 32, 1)})


# -- upload ---------------------------------------------------------------------------------------------------
async def test_upload_zarr_then_sync_changes(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    files = sample()
    root = write_zarr(tmp_path / "img.zarr", files)
    asset = await call(dc.upload(dandiset, root, "sub-01/img.zarr", parallel=3))
    assert asset.is_zarr and asset.path == "sub-01/img.zarr"
    puts = zarr_puts(fake)
    assert len(puts) == len(files)
    for request in puts:
        assert (
            request.headers["Content-MD5"]
            == base64.b64encode(hashlib.md5(request.content).digest()).decode()
        )
        assert "authorization" not in request.headers
    record = await call(dc.get_zarr(asset))
    assert record.status == "Complete" and record.file_count == len(files)
    local = local_zarr_digests(root)
    assert record.checksum == zarr_checksum({p: (m, s) for p, (_f, m, s) in local.items()})
    meta = await call(dc.get_asset_raw_metadata(asset))
    assert meta["encodingFormat"] == "application/x-zarr"

    finalizes = len(api(fake, "/finalize/"))
    same = await call(dc.upload_zarr(dandiset, root, "sub-01/img.zarr"))
    assert same.asset_id == asset.asset_id
    assert len(zarr_puts(fake)) == len(files) and len(api(fake, "/finalize/")) == finalizes

    (root / "0/0.0").write_bytes(b"changed")
    (root / "0/9.9").write_bytes(b"new")
    (root / "labels/x/0").unlink()
    synced = await call(dc.upload_zarr(dandiset, root, "sub-01/img.zarr"))
    assert synced.zarr == asset.zarr
    sent = sorted(
        r.url.path.rsplit("/zarr/", 1)[1].split("/", 1)[1] for r in zarr_puts(fake)[len(files) :]
    )
    assert sent == ["0/0.0", "0/9.9"]
    entries = {e.path for e in await collect(dc.zarr_entries(asset))}
    assert "labels/x/0" not in entries and {"0/0.0", "0/9.9"} <= entries
    record = await call(dc.get_zarr(asset))
    local = local_zarr_digests(root)
    assert record.checksum == zarr_checksum({p: (m, s) for p, (_f, m, s) in local.items()})

    with pytest.raises(errors.ConflictError):
        await call(dc.upload_zarr(dandiset, root, "sub-01/img.zarr", replace="never"))


async def test_upload_zarr_in_batches_with_expired_urls(
    kind: str, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    files = sample(4)
    root = write_zarr(tmp_path / "b.zarr", files)
    faults = Faults(fake)
    expired = [True]

    def expire_once(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and request.url.host == STORAGE_HOST and expired:
            expired.clear()
            return httpx.Response(403, content=b"<Error><Code>AccessDenied</Code></Error>")
        return None

    faults.before.append(expire_once)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        asset = await call(client.upload_zarr(dandiset, root, batch_size=5, poll_interval=0))
    finally:
        await close(client)
    presigns = api(fake, f"/zarr/{asset.zarr}/files/", "POST")
    batches = -(-len(files) // 5)
    assert len(presigns) == batches + 1  # one batch asked again for the expired URL
    assert all(len(json.loads(r.content)) <= 5 for r in presigns)
    assert fake.zarr_status(str(asset.zarr)) == "Complete"


async def test_checksum_mismatch_is_reported(
    kind: str, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    root = write_zarr(tmp_path / "c.zarr", {"a": b"1", "b/c": b"22"})
    faults = Faults(fake)

    def wrong_checksum(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if (
            request.method == "GET"
            and request.url.path.endswith("/")
            and "/zarr/" in request.url.path
        ):
            body = json.loads(response.read())
            if isinstance(body, dict) and body.get("checksum"):
                body["checksum"] = "0" * 32 + "-2--3"
                return httpx.Response(200, json=body)
        return None

    faults.after.append(wrong_checksum)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.ChecksumMismatchError, match="zarr"):
            await call(client.upload_zarr(dandiset, root, poll_interval=0))
        assert not api(fake, "/assets/", "POST")  # no asset points at an unverified zarr
    finally:
        await close(client)


async def test_orphan_zarr_of_the_same_name_is_reused(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    orphan = await call(dc.create_zarr(dandiset, "d.zarr"))
    assert orphan.status == "Pending"
    root = write_zarr(tmp_path / "d.zarr", {"x": b"1"})
    asset = await call(dc.upload_zarr(dandiset, root))
    assert asset.zarr == str(orphan.zarr_id)
    assert [str(z.zarr_id) for z in await collect(dc.zarrs(dandiset=dandiset))] == [asset.zarr]
    assert [z.name for z in await collect(dc.zarrs(name="d.zarr"))] == ["d.zarr"]


# -- entries ---------------------------------------------------------------------------------------------------
async def test_entries_cursor_lookup_delete(
    dc: Client, fake: FakeDandiArchive, dandiset: str
) -> None:
    files = {f"arr/{i}": bytes([i]) * (i + 1) for i in range(7)}
    zarr_id = fake.add_zarr(dandiset, "e.zarr", files, path="e.zarr")
    listing = dc.zarr_entries(zarr_id, page_size=3)
    entries = await collect(listing)
    assert [e.path for e in entries] == sorted(files)
    calls = api(fake, f"/zarr/{zarr_id}/files/", "GET")
    assert len(calls) == 3 and "after=arr%2F2" in str(calls[1].url)
    entry = await call(dc.get_zarr_entry(zarr_id, "arr/3"))
    assert (entry.size, entry.md5) == (4, hashlib.md5(files["arr/3"]).hexdigest())
    assert (entry.name, entry.parts, entry.suffix) == ("3", ("arr", "3"), "")
    assert entry.match("arr/*") and not entry.match("other/*")
    with pytest.raises(errors.NotFoundError):
        await call(dc.get_zarr_entry(zarr_id, "arr/99"))
    with_prefix = await collect(dc.zarr_entries(zarr_id, prefix="arr/1"))
    assert [e.path for e in with_prefix] == ["arr/1"]
    record = await call(
        dc.delete_zarr_entries(
            zarr_id, [entries[0], "arr/1", "arr/2"], batch_size=2, poll_interval=0
        )
    )
    assert len(api(fake, f"/zarr/{zarr_id}/files/", "DELETE")) == 2
    assert record is not None and record.status == "Complete" and record.file_count == 4
    assert await call(dc.delete_zarr_entries(zarr_id, [])) is None


async def test_download_and_read_zarr(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    files = {".zattrs": b'{"a": 1}', "0/0": os.urandom(5000), "0/1": os.urandom(10)}
    fake.add_zarr(dandiset, "f.zarr", files, path="sub/f.zarr")
    asset = await call(dc.get_asset_by_path(dandiset, "sub/f.zarr"))
    out = await call(dc.download(asset, tmp_path / "f.zarr"))
    assert {
        p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()
    } == files
    entry = await call(dc.get_zarr_entry(asset, "0/0"))
    reader = dc.as_readable(entry)
    reader.seek(4000)
    if isinstance(reader, AsyncRemoteFile):
        assert await reader.read(500) == files["0/0"][4000:4500]
    else:
        assert isinstance(reader, io.BufferedReader)
        assert reader.read(500) == files["0/0"][4000:4500]
    url = await call(dc.get_download_url(entry))
    assert httpx.URL(url).host == STORAGE_HOST
    with pytest.raises(errors.ConfigurationError, match="Zarr"):
        await call(dc.get_download_url(asset))


# -- downloading a Zarr: one entry, the whole archive (checksum-verified), a prefix ------------------------------
def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_download_one_zarr_entry(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    files = {"0/0": os.urandom(3000), ".zattrs": b"{}"}
    zarr_id = fake.add_zarr(dandiset, "e.zarr", files)
    entry = await call(dc.get_zarr_entry(zarr_id, "0/0"))
    (tmp_path / "out").mkdir()
    path = await call(dc.download(entry, tmp_path / "out"))
    assert path == tmp_path / "out" / "0" and path.read_bytes() == files["0/0"]
    gets = len(storage(fake, "GET"))
    assert await call(dc.download(entry, path)) == path  # already there and matching: not fetched
    assert len(storage(fake, "GET")) == gets
    path.write_bytes(b"x" * 3000)  # same size, other bytes: fetched again and checked
    await call(dc.download(entry, path))
    assert path.read_bytes() == files["0/0"]


async def test_download_zarr_whole_and_by_prefix(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    files = sample(4)
    fake.add_zarr(dandiset, "w.zarr", files, path="sub/w.zarr")
    asset = await call(dc.get_asset_by_path(dandiset, "sub/w.zarr"))
    out = await call(dc.download_zarr(asset, tmp_path / "w.zarr", parallel=3))
    assert tree(out) == files
    assert len(api(fake, f"/zarr/{asset.zarr}/", "GET")) == 1  # the checksum to verify against
    part = await call(dc.download_zarr(asset.zarr, tmp_path / "part", prefix="0/"))
    assert tree(part) == {k: v for k, v in files.items() if k.startswith("0/")}


async def test_download_zarr_catches_a_listing_that_misses_a_file(
    kind: str, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    files = {"a": b"1", "b/c": b"22", "b/d": b"333"}
    zarr_id = fake.add_zarr(dandiset, "m.zarr", files, path="m.zarr")
    faults = Faults(fake)

    def drop_one(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.url.path.endswith("/files/") and response.status_code == 200:
            body = response.json()
            if isinstance(body, dict):
                body["results"] = [r for r in body["results"] if r["Key"] != "b/c"]
                return httpx.Response(200, json=body, request=request)
        return None

    faults.after.append(drop_one)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.ChecksumMismatchError, match="do not make up its checksum"):
            await call(client.download_zarr(zarr_id, tmp_path / "m1"))
        asset = await call(client.get_asset_by_path(dandiset, "m.zarr"))
        with pytest.raises(errors.ChecksumMismatchError):
            await call(client.download(asset, tmp_path / "m2"))  # the asset path verifies too
        out = await call(client.download_zarr(zarr_id, tmp_path / "m3", verify_checksum=False))
        assert set(tree(out)) == {"a", "b/d"}
    finally:
        await close(client)


async def test_download_directory_verifies_zarr_assets(
    kind: str, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    files = {"x": b"1", "y/z": b"22"}
    fake.add_zarr(dandiset, "d.zarr", files, path="raw/d.zarr")
    fake.add_asset(dandiset, "raw/f.bin", b"abc")
    faults = Faults(fake)

    def wrong_checksum(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.rstrip("/").split("/")[-2] == "zarr":
            body = {**response.json(), "checksum": "0" * 32 + "-2--3"}
            return httpx.Response(200, json=body, request=request)
        return None

    client = make_client(kind, fake, transport=faults.transport())
    try:
        paths = await call(client.download_directory(dandiset, tmp_path / "ok", path="raw"))
        assert tree(tmp_path / "ok") == {"f.bin": b"abc", "d.zarr/x": b"1", "d.zarr/y/z": b"22"}
        assert len(paths) == 2
        faults.after.append(wrong_checksum)
        with pytest.raises(errors.ChecksumMismatchError):
            await call(client.download_directory(dandiset, tmp_path / "bad", path="raw"))
    finally:
        await close(client)
