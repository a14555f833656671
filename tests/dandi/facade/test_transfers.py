"""Uploads and downloads against the fake archive: multipart, reuse, replace, resume, cancel, verification."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from scibind import errors
from scibind.dandi import Asset
from scibind.testing.dandi import FakeDandiArchive
from scibind.transfers.download import partial_paths
from scibind.transfers.journal import cache_dir

from .conftest import (
    PART,
    STORAGE_HOST,
    Client,
    Faults,
    api,
    assert_no_credentials_to_storage,
    call,
    close,
    collect,
    events,
    make_client,
    storage,
)

Data = Callable[[str, int], Path]
SIZE = 300_000  # five 64 KiB parts


def part_number(request: httpx.Request) -> int | None:
    value = parse_qs(request.url.query.decode()).get("partNumber")
    return int(value[0]) if value else None


def part_puts(fake: FakeDandiArchive) -> list[int]:
    return sorted(n for r in storage(fake, "PUT") if (n := part_number(r)) is not None)


def journals() -> list[Path]:
    folder = cache_dir() / "uploads"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def s3_error(status: int, code: str, message: str) -> httpx.Response:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    return httpx.Response(status, content=body, headers={"Content-Type": "application/xml"})


# -- uploads ----------------------------------------------------------------------------------------------
async def test_upload_multipart(
    dc: Client, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    local = data("rec.nwb", SIZE)
    asset = await call(dc.upload(dandiset, local, "sub-01/rec.nwb"))
    assert isinstance(asset, Asset) and asset.path == "sub-01/rec.nwb" and asset.size == SIZE
    assert part_puts(fake) == [1, 2, 3, 4, 5]
    content = local.read_bytes()
    assert fake.blob_content(asset.asset_id) == content
    meta = await call(dc.get_asset_raw_metadata(asset))
    assert meta["digest"]["dandi:dandi-etag"] == fake.dandi_etag(content)
    assert meta["encodingFormat"] == "application/x-nwb" and meta["contentSize"] == SIZE
    assert meta["schemaKey"] == "Asset"
    assert_no_credentials_to_storage(fake)
    assert not journals()
    assert len(api(fake, "/uploads/initialize/", "POST")) == 1
    assert len(api(fake, "/complete/", "POST")) == 1 and len(api(fake, "/validate/", "POST")) == 1


async def test_existing_blob_is_reused_without_sending_bytes(
    dc: Client, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    local = data("a.bin", SIZE)
    first = await call(dc.upload(dandiset, local, "a.bin"))
    puts = len(storage(fake, "PUT"))
    second = await call(dc.upload(dandiset, local, "copy/a.bin"))
    assert second.blob == first.blob and second.path == "copy/a.bin"
    assert len(storage(fake, "PUT")) == puts  # the 409 said the blob exists
    assert [r.method for r in api(fake, "/uploads/initialize/")] == ["POST", "POST"]


async def test_replace_modes(dc: Client, fake: FakeDandiArchive, dandiset: str, data: Data) -> None:
    local = data("x.bin", 1000)
    first = await call(dc.upload(dandiset, local, "x.bin"))
    initializations = len(api(fake, "/uploads/initialize/"))
    same = await call(dc.upload(dandiset, local, "x.bin"))  # identical: left alone
    assert same.asset_id == first.asset_id
    assert len(api(fake, "/uploads/initialize/")) == initializations
    with pytest.raises(errors.ConflictError, match="already exists"):
        await call(dc.upload(dandiset, local, "x.bin", replace="never"))
    annotated = await call(dc.upload(dandiset, local, "x.bin", metadata={"description": "v2"}))
    assert annotated.asset_id != first.asset_id and annotated.blob == first.blob
    local.write_bytes(os.urandom(1000))
    changed = await call(dc.upload(dandiset, local, "x.bin"))
    assert changed.blob != first.blob
    assert [a.path for a in await collect(dc.assets(dandiset, "draft"))] == ["x.bin"]
    forced = await call(dc.upload(dandiset, local, "x.bin", replace="always"))
    assert forced.blob == changed.blob
    with pytest.raises(errors.ConfigurationError):
        await call(dc.upload(dandiset, local, "x.bin", replace="sometimes"))  # type: ignore[arg-type]


async def test_interrupted_upload_resumes_without_resending_parts(
    kind: str, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    local = data("big.bin", SIZE)
    faults = Faults(fake)
    broken = [3]

    def fail_part_3(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PUT" and part_number(request) in broken:
            broken.clear()
            return s3_error(400, "RequestTimeout", "Your socket connection was not read from")
        return None

    faults.before.append(fail_part_3)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.BadRequestError, match="RequestTimeout"):
            await call(client.upload(dandiset, local, "big.bin", parallel=1))
        assert part_puts(fake) == [1, 2]
        assert len(journals()) == 1
    finally:
        await close(client)
    again = make_client(kind, fake)  # a new client (as in a new process): the journal is on disk
    try:
        asset = await call(again.upload(dandiset, local, "big.bin", parallel=2))
    finally:
        await close(again)
    assert part_puts(fake) == [1, 2, 3, 4, 5]  # parts 1 and 2 were not sent again
    assert len(api(fake, "/uploads/initialize/")) == 1
    assert fake.blob_content(asset.asset_id) == local.read_bytes()
    assert not journals()


async def test_expired_journal_urls_start_a_fresh_upload(
    kind: str, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    local = data("big.bin", SIZE)
    faults = Faults(fake)
    state = {"fail": 4, "expire": False}

    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.method != "PUT" or request.url.host != STORAGE_HOST:
            return None
        if part_number(request) == state["fail"]:
            state["fail"] = 0
            return s3_error(400, "RequestTimeout", "timeout")
        if state["expire"]:
            state["expire"] = False
            return s3_error(403, "AccessDenied", "Request has expired")
        return None

    faults.before.append(rule)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.BadRequestError):
            await call(client.upload(dandiset, local, "big.bin", parallel=1))
        state["expire"] = True
        asset = await call(client.upload(dandiset, local, "big.bin", parallel=1))
    finally:
        await close(client)
    assert len(api(fake, "/uploads/initialize/")) == 2
    assert part_puts(fake) == [1, 1, 2, 2, 3, 3, 4, 5]
    assert fake.blob_content(asset.asset_id) == local.read_bytes()


async def test_cancelled_upload(
    kind: str, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    local = data("big.bin", SIZE)
    faults = Faults(fake)
    faults.before.append(
        lambda r: s3_error(400, "RequestTimeout", "t") if part_number(r) == 2 else None
    )
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.BadRequestError):
            await call(client.upload(dandiset, local, "big.bin", parallel=1))
        assert len(await collect(client.pending_uploads(dandiset))) == 1
        assert len(journals()) == 1
        assert await call(client.cancel_uploads(dandiset)) == 1
        assert await collect(client.pending_uploads(dandiset)) == []
        assert not journals()
    finally:
        await close(client)
    fresh = make_client(kind, fake)
    try:
        await call(fresh.upload(dandiset, local, "big.bin"))
    finally:
        await close(fresh)
    assert len(api(fake, "/uploads/initialize/")) == 2
    assert part_puts(fake).count(1) == 2  # started over


async def test_wrong_part_etag_is_detected(
    kind: str, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    faults = Faults(fake)

    def bad_etag(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if part_number(request) == 2:
            return httpx.Response(200, headers={"ETag": '"' + "0" * 32 + '"'})
        return None

    faults.after.append(bad_etag)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(errors.ChecksumMismatchError, match="part 2"):
            await call(client.upload(dandiset, data("f.bin", SIZE), "f.bin"))
        assert not api(fake, "/complete/")
    finally:
        await close(client)


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        (
            b'<CompleteMultipartUploadResult><ETag>"00000000000000000000000000000000-5"</ETag>'
            b"</CompleteMultipartUploadResult>",
            errors.ChecksumMismatchError,
            "final object",
        ),
        (
            b"<Error><Code>InternalError</Code><Message>We encountered an internal error</Message></Error>",
            errors.TransferError,
            "InternalError",
        ),
    ],
)
async def test_final_etag_is_checked(
    kind: str,
    fake: FakeDandiArchive,
    dandiset: str,
    data: Data,
    body: bytes,
    error: type[Exception],
    match: str,
) -> None:
    faults = Faults(fake)

    def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "POST" and request.url.host == STORAGE_HOST:
            return httpx.Response(200, content=body, headers={"Content-Type": "application/xml"})
        return None

    faults.after.append(rewrite)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        with pytest.raises(error, match=match):
            await call(client.upload(dandiset, data("f.bin", SIZE), "f.bin"))
        assert not api(fake, "/validate/")
    finally:
        await close(client)


async def test_part_size_must_match_the_server(
    kind: str, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    client = make_client(kind, fake, part_size=2 * PART)
    try:
        with pytest.raises(errors.TransferError, match="part_size"):
            await call(client.upload(dandiset, data("f.bin", SIZE), "f.bin"))
    finally:
        await close(client)


async def test_upload_refusals(dc: Client, dandiset: str, data: Data, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(errors.ConfigurationError, match="empty"):
        await call(dc.upload(dandiset, empty))
    with pytest.raises(errors.ConfigurationError):
        await call(dc.upload(dandiset, data("a", 10), "../outside"))
    with pytest.raises(errors.NotFoundError):
        await call(dc.upload("000999", data("b", 10)))


async def test_upload_events(dc: Client, dandiset: str, data: Data) -> None:
    local = data("ev.bin", SIZE)
    stream = dc.upload_events(dandiset, local, "ev.bin")
    seen = await events(stream)
    phases = [e.phase for e in seen]
    assert phases[0] == "hashing" and phases[-1] == "done" and "uploading" in phases
    uploaded = [e for e in seen if e.phase in ("uploading", "done")]
    assert uploaded[-1].done == SIZE and sum(e.advance for e in uploaded) == SIZE
    assert stream.result.path == "ev.bin"


async def test_upload_directory(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    root = tmp_path / "study"
    files = {
        "sub-01/a.nwb": os.urandom(5000),
        "sub-01/b.nwb": os.urandom(SIZE),
        "sub-02/c.json": b'{"x": 1}',
        "README.md": b"# study",
        ".hidden": b"secret",
        "sub-02/.DS_Store": b"junk",
    }
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    zarr = root / "sub-02" / "img.zarr"
    (zarr / "0").mkdir(parents=True)
    (zarr / ".zattrs").write_bytes(b"{}")
    (zarr / "0" / "0").write_bytes(b"chunk")
    assets = await call(dc.upload_directory(dandiset, root, prefix="raw", parallel_files=3))
    expected = sorted(
        [
            "raw/README.md",
            "raw/sub-01/a.nwb",
            "raw/sub-01/b.nwb",
            "raw/sub-02/c.json",
            "raw/sub-02/img.zarr",
        ]
    )
    assert sorted(a.path for a in assets) == expected
    listed = {a.path: a for a in await collect(dc.assets(dandiset, "draft"))}
    assert sorted(listed) == expected
    assert listed["raw/sub-02/img.zarr"].is_zarr
    assert fake.blob_content(listed["raw/sub-01/b.nwb"].asset_id) == files["sub-01/b.nwb"]
    puts = len(storage(fake, "PUT"))
    again = await call(dc.upload_directory(dandiset, root, prefix="raw"))
    assert sorted(a.asset_id for a in again) == sorted(a.asset_id for a in listed.values())
    assert len(storage(fake, "PUT")) == puts  # nothing sent twice
    assert len(api(fake, "/assets/", "GET")) >= 2  # the remote folder is listed once per run


# -- downloads ----------------------------------------------------------------------------------------------
async def test_download_small_file(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    content = os.urandom(3000)
    fake.add_asset(dandiset, "sub-01/small.bin", content)
    (asset,) = await collect(dc.assets(dandiset, "draft"))
    assert asset.metadata is None
    dest = await call(dc.download(asset, tmp_path / "out" / "small.bin"))
    assert dest.read_bytes() == content
    into_dir = await call(dc.download(asset, tmp_path / "out"))
    assert into_dir == tmp_path / "out" / "small.bin"
    gets = len(storage(fake, "GET"))
    assert gets == 1  # the second call found the file verified in place
    assert_no_credentials_to_storage(fake)
    with pytest.raises(FileExistsError):
        await call(dc.download(asset, dest, existing="error"))
    await call(dc.download(asset, dest, existing="overwrite"))
    assert len(storage(fake, "GET")) == 2


async def test_ranged_download_of_a_large_file(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    content = os.urandom(SIZE)
    fake.add_asset(dandiset, "big.bin", content)
    asset = await call(dc.get_asset_by_path(dandiset, "big.bin"))
    seen = await events(dc.download_events(asset, tmp_path / "big.bin", parallel=3))
    assert (tmp_path / "big.bin").read_bytes() == content
    ranges = sorted(r.headers["Range"] for r in storage(fake, "GET"))
    assert len(ranges) == 5 and all(r.startswith("bytes=") for r in ranges)
    assert seen[-1].phase == "done" and seen[-1].done == SIZE
    assert not any(p.exists() for p in partial_paths(tmp_path / "big.bin"))


async def test_download_resumes_from_the_partial_file(
    kind: str, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    content = os.urandom(SIZE)
    fake.add_asset(dandiset, "big.bin", content)
    faults = Faults(fake)
    gets: list[str] = []

    def third_range_fails(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.host == STORAGE_HOST:
            gets.append(request.headers.get("Range", ""))
            if len(gets) == 3:
                return s3_error(400, "RequestTimeout", "socket not read")
        return None

    faults.before.append(third_range_fails)
    client = make_client(kind, fake, transport=faults.transport())
    dest = tmp_path / "big.bin"
    try:
        asset = await call(client.get_asset_by_path(dandiset, "big.bin"))
        with pytest.raises(errors.BadRequestError):
            await call(client.download(asset, dest, parallel=1))
        assert not dest.exists() and partial_paths(dest)[0].exists()
        first_run = list(gets)
        await call(client.download(asset, dest, parallel=1))
    finally:
        await close(client)
    assert dest.read_bytes() == content
    second_run = gets[len(first_run) :]
    assert len(first_run) == 3 and len(second_run) == 3  # ranges 3, 4, 5 only
    assert second_run[0] == first_run[2]


async def test_corrupt_download_is_refused(
    kind: str, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    content = os.urandom(5000)
    fake.add_asset(dandiset, "f.bin", content)
    faults = Faults(fake)

    def flip(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "GET" and request.url.host == STORAGE_HOST:
            body = bytearray(response.read())
            body[-1] ^= 1
            return httpx.Response(
                response.status_code, headers=response.headers, content=bytes(body)
            )
        return None

    faults.after.append(flip)
    client = make_client(kind, fake, transport=faults.transport())
    dest = tmp_path / "f.bin"
    try:
        asset = await call(client.get_asset_by_path(dandiset, "f.bin"))
        with pytest.raises(errors.ChecksumMismatchError, match="sha256"):
            await call(client.download(asset, dest))
    finally:
        await close(client)
    assert not dest.exists() and not any(p.exists() for p in partial_paths(dest))


async def test_download_directory(
    dc: Client, fake: FakeDandiArchive, dandiset: str, tmp_path: Path
) -> None:
    files = {
        f"sub-{i:02d}/f{j}.bin": os.urandom(700 * (i + j + 1)) for i in range(3) for j in range(3)
    }
    files["sub-00/big.bin"] = os.urandom(SIZE)
    for path, content in files.items():
        fake.add_asset(dandiset, path, content)
    zarr_files = {".zattrs": b"{}", "0/0": b"abc", "0/1": b"defg"}
    fake.add_zarr(dandiset, "img.zarr", zarr_files, path="sub-00/img.zarr")
    out = tmp_path / "all"
    got = await call(dc.download_directory(dandiset, out, version_id="draft", parallel_files=3))
    assert len(got) == len(files) + 1
    for path, content in files.items():
        assert (out / path).read_bytes() == content
    for rel, content in zarr_files.items():
        assert (out / "sub-00/img.zarr" / rel).read_bytes() == content
    gets = len(storage(fake, "GET"))
    await call(dc.download_directory(dandiset, out, version_id="draft"))
    assert len(storage(fake, "GET")) == gets  # everything present and verified
    part = tmp_path / "one"
    got = await call(dc.download_directory(dandiset, part, path="sub-01/"))
    assert sorted(p.relative_to(part).as_posix() for p in got) == ["f0.bin", "f1.bin", "f2.bin"]
    assert_no_credentials_to_storage(fake)


async def test_dandi_etag_with_the_real_part_size(kind: str, tmp_path: Path) -> None:
    """64 MiB parts, as on every DANDI deployment: two-part upload, ranged download verified by dandi-etag."""
    fake = FakeDandiArchive()
    ident = fake.create_dandiset("Real parts")
    content = os.urandom(64 * 2**20 + 4096)
    local = tmp_path / "large.bin"
    local.write_bytes(content)
    client = make_client(kind, fake)
    try:
        asset = await call(client.upload(ident, local, "large.bin"))
        assert part_puts(fake) == [1, 2]
        asset = await call(client.get_asset_by_path(ident, "large.bin"))
        etag = asset.digests["dandi:dandi-etag"]
        assert etag.endswith("-2") and etag == fake.dandi_etag(content)
        dest = await call(client.download(asset, tmp_path / "copy.bin"))
    finally:
        await close(client)
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(content).digest()
    assert sorted(r.headers["Range"] for r in storage(fake, "GET")) == [
        f"bytes=0-{64 * 2**20 - 1}",
        f"bytes={64 * 2**20}-{len(content) - 1}",
    ]


# -- walks over many pages, and the rarer answers of the upload protocol --------------------------------------
async def test_directory_walks_over_many_pages(
    dc: Client,
    fake: FakeDandiArchive,
    dandiset: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scibind.dandi import DandiOps

    monkeypatch.setattr(DandiOps, "listing_page_size", 2)
    monkeypatch.setattr(DandiOps, "zarr_page_size", 2)
    files = {f"d/f{i}.bin": os.urandom(100 + i) for i in range(7)}
    for path, content in files.items():
        fake.add_asset(dandiset, path, content)
    zarr_files = {f"c/{i}": bytes([i]) * 3 for i in range(5)}
    fake.add_zarr(dandiset, "z.zarr", zarr_files, path="d/z.zarr")
    out = tmp_path / "out"
    got = await call(dc.download_directory(dandiset, out, path="d", parallel_files=2))
    assert len(got) == 8
    for path, content in files.items():
        assert (out / path[2:]).read_bytes() == content
    for rel, content in zarr_files.items():
        assert (out / "z.zarr" / rel).read_bytes() == content
    pages = [r for r in api(fake, "/assets/", "GET") if "metadata=true" in str(r.url)]
    assert len(pages) == 4  # 8 assets, 2 per page, the next page fetched while one downloads
    assert len(api(fake, "/files/", "GET")) >= 3
    tasks = await call(dc.plan_download(dandiset, tmp_path / "plan", path="d"))
    assert len(tasks) == 7 + 5
    local = tmp_path / "up"
    local.mkdir()
    for i in range(3):
        (local / f"f{i}.bin").write_bytes(files[f"d/f{i}.bin"])
    before = len(api(fake, "/uploads/initialize/"))
    uploaded = await call(dc.upload_directory(dandiset, local, prefix="d"))
    assert len(uploaded) == 3 and len(api(fake, "/uploads/initialize/")) == before  # all known


async def test_validation_conflict_falls_back_to_the_stored_blob(
    kind: str, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    local = data("race.bin", SIZE)
    faults = Faults(fake)

    def racer(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/validate/"):  # someone stores the same content just before
            faults.before.remove(racer)
            fake.add_asset(dandiset, "theirs.bin", local.read_bytes())
        return None

    faults.before.append(racer)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        asset = await call(client.upload(dandiset, local, "mine.bin"))
        theirs = await call(client.get_asset_by_path(dandiset, "theirs.bin"))
    finally:
        await close(client)
    assert asset.blob == theirs.blob
    assert len(api(fake, "/blobs/digest/", "POST")) == 1


async def test_repeated_completion_goes_on_to_validation(
    kind: str, fake: FakeDandiArchive, dandiset: str, data: Data
) -> None:
    local = data("again.bin", SIZE)
    faults = Faults(fake)

    def lost_answer(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "POST" and request.url.host == STORAGE_HOST:
            return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
        return None  # the object store completed; the client saw NoSuchUpload (a retried POST)

    faults.after.append(lost_answer)
    client = make_client(kind, fake, transport=faults.transport())
    try:
        asset = await call(client.upload(dandiset, local, "again.bin"))
    finally:
        await close(client)
    assert fake.blob_content(asset.asset_id) == local.read_bytes()


@pytest.mark.parametrize(
    ("size", "digests", "part_size", "chosen"),
    [
        (
            200 * 2**20,
            {"dandi:dandi-etag": "e-4", "dandi:sha2-256": "s"},
            64 * 2**20,
            {"dandi-etag": "e-4"},
        ),
        (1000, {"dandi:dandi-etag": "e-1", "dandi:sha2-256": "s"}, 64 * 2**20, {"sha256": "s"}),
        (1000, {"dandi:dandi-etag": "e-1"}, 64 * 2**20, {"dandi-etag": "e-1"}),
        (SIZE, {"dandi:dandi-etag": "e-5", "dandi:sha2-256": "s"}, PART, {"sha256": "s"}),
        (SIZE, {"dandi:dandi-etag": "e-5"}, PART, {}),
    ],
)
def test_one_digest_checked_without_a_second_pass(
    size: int, digests: dict[str, str], part_size: int, chosen: dict[str, str]
) -> None:
    import datetime as dt

    from scibind.dandi import DandiClient
    from scibind.dandi._download import expected

    now = dt.datetime.now(dt.UTC)
    asset = Asset("a", "p", size, "b", None, now, now, "000001", "draft", {"digest": digests})
    with DandiClient("https://dandi.example.org/api", part_size=part_size) as client:
        got = expected(client, asset)
    assert (got.size, dict(got.digests)) == (size, chosen)
