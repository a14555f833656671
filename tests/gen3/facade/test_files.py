"""Files through the facade: indexd listings and records, verified downloads from presigned URLs (no token to
storage), single and multipart uploads with ETag and md5 checks, resume, progress events."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import call, close, collect, events, faulty, make_client, random_file

STORAGE_HOST = "storage.fake.test"
KIB = 1024


def add_file(fake: FakeGen3Commons, data: bytes, name: str, **kwargs: Any) -> str:
    """A stored, indexed file readable by the test user (authz on the test program)."""
    kwargs.setdefault("authz", ["/programs/DEV"])
    return fake.add_file(data, name, **kwargs)


def storage_requests(fake: FakeGen3Commons, method: str | None = None) -> list[httpx.Request]:
    return [
        r
        for r in fake.requests
        if r.url.host == STORAGE_HOST and (method is None or r.method == method)
    ]


def assert_no_token_reached_storage(fake: FakeGen3Commons) -> None:
    sent = storage_requests(fake)
    assert sent, "nothing was sent to the storage"
    assert all("authorization" not in r.headers for r in sent)


# -- indexd ----------------------------------------------------------------------------------------------------
async def test_index_records_walk_the_start_cursor(g3: Any, fake: FakeGen3Commons) -> None:
    guids = sorted(fake.add_file(os.urandom(10), f"f{i}.bin", uploader="me" if i % 2 else None)
                   for i in range(7))  # fmt: skip
    records = await collect(g3.index_records(page_size=3))
    assert [r.did for r in records] == guids
    listing = [r for r in fake.requests if r.url.path == "/index/index/"]
    assert len(listing) == 3
    assert [r.url.params.get("start") for r in listing] == [None, guids[2], guids[5]]
    mine = await collect(g3.index_records(uploader="me", page_size=2))
    assert sorted(r.file_name for r in mine) == ["f1.bin", "f3.bin", "f5.bin"]
    data = os.urandom(5)
    wanted = fake.add_file(data, "x.bin")
    by_hash = await collect(g3.index_records(hashes={"md5": hashlib.md5(data).hexdigest()}))
    assert [r.did for r in by_hash] == [wanted]
    assert len(await collect(g3.index_records(page_size=2, max_items=3))) == 3
    restricted = add_file(fake, b"r", "r.bin")
    assert [r.did for r in await collect(g3.index_records(authz=["/programs/DEV"]))] == [restricted]
    assert restricted not in {r.did for r in await collect(g3.index_records(authz=[]))}


async def test_index_record_by_guid(g3: Any, fake: FakeGen3Commons) -> None:
    data = b"hello gen3"
    guid = fake.add_file(data, "hello.txt", authz=["/programs/DEV"])
    record = await call(g3.index_record(guid))
    assert record.did == guid and record.size == len(data)
    assert record.hashes.md5 == hashlib.md5(data).hexdigest()
    assert record.authz == ["/programs/DEV"]
    with pytest.raises(errors.NotFoundError):
        await call(g3.index_record("dg.FAKE/does-not-exist"))


# -- downloads -------------------------------------------------------------------------------------------------
async def test_download_verified_and_token_never_sent_to_storage(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path
) -> None:
    data = os.urandom(200 * KIB)
    guid = add_file(fake, data, "reads.bam")
    url = await call(g3.presigned_url(guid))
    assert httpx.URL(url).host == STORAGE_HOST and "X-Amz-Signature" in url
    out_dir = tmp_path / "downloads"
    out_dir.mkdir()
    path = await call(g3.download(guid, out_dir))
    assert path == out_dir / "reads.bam" and path.read_bytes() == data
    assert_no_token_reached_storage(fake)
    assert [p.name for p in out_dir.iterdir()] == ["reads.bam"]  # no partial files left


async def test_download_to_a_file_path_and_skip_when_present(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path
) -> None:
    data = os.urandom(1000)
    guid = add_file(fake, data, "a.bin")
    dest = tmp_path / "x" / "renamed.bin"
    assert await call(g3.download(guid, dest)) == dest
    before = len(storage_requests(fake))
    assert await call(g3.download(guid, dest)) == dest  # verified by md5, not fetched again
    assert len(storage_requests(fake)) == before


async def test_checksum_mismatch_is_an_error_and_leaves_nothing(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path
) -> None:
    data = os.urandom(4000)
    guid = add_file(fake, data, "c.bin")
    stored = fake.object_for(guid)
    assert stored is not None
    stored.data = bytes(b ^ 0xFF for b in data)  # same size, other bytes
    out = tmp_path / "out"
    with pytest.raises(errors.ChecksumMismatchError) as info:
        await call(g3.download(guid, out / "c.bin"))
    assert info.value.expected == hashlib.md5(data).hexdigest()
    assert not any(out.iterdir()) if out.exists() else True


async def test_parallel_ranged_download(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    data = os.urandom(300 * KIB)
    guid = add_file(fake, data, "big.bin")
    path = await call(
        g3.download(guid, tmp_path, part_size=64 * KIB, min_parallel_size=64 * KIB, parallel=3)
    )
    assert path.read_bytes() == data
    ranges = [r.headers.get("range") for r in storage_requests(fake, "GET")]
    assert len(ranges) == 5 and all(r and r.startswith("bytes=") for r in ranges)
    assert_no_token_reached_storage(fake)


async def test_record_file_names_cannot_escape_the_directory(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path
) -> None:
    guid = add_file(fake, b"x", "plain.txt")
    fake.index.records[guid]["file_name"] = "../../escape.txt"  # a hostile name in the index
    target = tmp_path / "inside"
    target.mkdir()
    assert await call(g3.download(guid, target)) == target / "escape.txt"


async def test_download_permission_denied(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    fake.user.authz = {"/programs/OTHER": [{"method": "*", "service": "*"}]}
    guid = fake.add_file(b"secret", "s.bin", authz=["/programs/DEV"])
    with pytest.raises(errors.PermissionDeniedError, match="access permission"):
        await call(g3.download(guid, tmp_path))


async def test_download_progress_events(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * KIB)
    guid = add_file(fake, data, "p.bin")
    stream = g3.download_events(guid, tmp_path)
    seen = await events(stream)
    assert stream.result.read_bytes() == data
    phases = [e.phase for e in seen]
    assert phases[0] == "downloading" and phases[-1] == "done" and "verifying" in phases
    assert seen[-1].done == len(data) == sum(e.advance for e in seen)


# -- uploads ---------------------------------------------------------------------------------------------------
async def test_single_upload_fills_the_index_record(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path
) -> None:
    path = random_file(tmp_path / "up" / "sample.fastq", 150 * KIB)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    record = await call(g3.upload(path, authz=["/programs/DEV"]))
    assert record.hashes.md5 == md5 and record.size == path.stat().st_size
    assert record.file_name == "sample.fastq" and record.authz == ["/programs/DEV"]
    (put,) = storage_requests(fake, "PUT")
    assert put.headers["content-md5"] == base64.b64encode(bytes.fromhex(md5)).decode()
    assert_no_token_reached_storage(fake)
    copy = await call(g3.download(record.did, tmp_path / "copy.fastq"))
    assert copy.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("multipart", [False, True])
async def test_upload_fills_a_blank_record_when_no_indexing_ran(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path, multipart: bool
) -> None:
    fake.index_on_upload = False  # the indexing job has not run yet
    _small_parts(fake)
    path = random_file(tmp_path / "late.bin", 150 * KIB)
    record = await call(g3.upload(path, multipart=multipart, part_size=64 * KIB))
    assert record.hashes.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert record.size == 150 * KIB
    # the location is read off the presigned URL, so the file is downloadable at once
    assert record.urls == [f"s3://{fake.upload_bucket}/{record.did}/late.bin"]
    (fill,) = [r for r in fake.requests if r.url.path.startswith("/index/index/blank/")]
    assert fill.method == "PUT" and fill.url.params.get("rev")
    copy = await call(g3.download(record.did, tmp_path / "copy.bin"))
    assert copy.read_bytes() == path.read_bytes()
    assert fake.run_indexing() == 1  # the job agrees with what the client recorded
    assert (await call(g3.index_record(record.did))).hashes.md5 == record.hashes.md5


def test_storage_location_from_presigned_urls() -> None:
    from scibind.gen3._client import _storage_location

    key = "dg.X/1234/a b.bin"
    signed = "?X-Amz-Signature=abc&X-Amz-Expires=10"
    assert _storage_location("mine", None, key) == f"s3://mine/{key}"
    assert _storage_location(
        None, "https://s3.amazonaws.com/bkt/dg.X/1234/a%20b.bin" + signed, key
    ) == (f"s3://bkt/{key}")
    assert _storage_location(
        None, "https://bkt.s3.us-east-1.amazonaws.com/dg.X/1234/a%20b.bin" + signed, key
    ) == (f"s3://bkt/{key}")
    assert _storage_location(None, "https://blob.example/c/dg.X/1234/a%20b.bin?sig=1", key) is None
    assert _storage_location(None, "https://s3.example/other/key" + signed, key) is None


async def test_upload_etag_mismatch_is_detected(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == STORAGE_HOST and request.method == "PUT":
            fake.handle(request)
            return httpx.Response(200, headers={"ETag": '"' + "0" * 32 + '"'})
        return None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        with pytest.raises(errors.ChecksumMismatchError, match="ETag"):
            await call(client.upload(random_file(tmp_path / "e.bin", 1000)))
    finally:
        await close(client)


def _small_parts(fake: FakeGen3Commons) -> None:
    fake.storage.min_part_size = 64 * KIB


async def test_multipart_upload_in_parallel_parts(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path
) -> None:
    _small_parts(fake)
    path = random_file(tmp_path / "big.bin", 5 * 64 * KIB + 123)
    data = path.read_bytes()
    record = await call(g3.upload(path, multipart=True, part_size=64 * KIB, parallel=3))
    assert record.hashes.md5 == hashlib.md5(data).hexdigest() and record.size == len(data)
    parts = storage_requests(fake, "PUT")
    assert sorted(int(r.url.params["partNumber"]) for r in parts) == [1, 2, 3, 4, 5, 6]
    assert_no_token_reached_storage(fake)
    paths = [r.url.path for r in fake.requests if r.url.path.startswith("/user/data/multipart/")]
    assert paths.count("/user/data/multipart/init") == 1
    assert paths.count("/user/data/multipart/upload") == 6
    assert paths.count("/user/data/multipart/complete") == 1
    stored = fake.object_for(record.did)
    assert stored is not None and stored.data == data and stored.etag.endswith('-6"')


async def test_multipart_upload_resumes_after_a_failure(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    _small_parts(fake)
    path = random_file(tmp_path / "resume.bin", 4 * 64 * KIB)

    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == STORAGE_HOST and request.url.params.get("partNumber") == "3":
            return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
        return None

    key = fake.new_api_key()["api_key"]
    broken = make_client(kind, api_key=key, transport=faulty(fake, rule))
    try:
        with pytest.raises(errors.PermissionDeniedError):
            await call(broken.upload(path, multipart=True, part_size=64 * KIB, parallel=1))
    finally:
        await close(broken)
    sent_before = {r.url.params["partNumber"] for r in storage_requests(fake, "PUT")}
    fake.requests.clear()
    client = make_client(kind, api_key=key, transport=fake.transport())
    try:
        record = await call(client.upload(path, multipart=True, part_size=64 * KIB, parallel=1))
    finally:
        await close(client)
    resent = sorted(r.url.params["partNumber"] for r in storage_requests(fake, "PUT"))
    assert "1" in sent_before and resent == sorted({"1", "2", "3", "4"} - (sent_before - {"3"}))
    assert not any(r.url.path == "/user/data/multipart/init" for r in fake.requests)
    assert record.hashes.md5 == hashlib.md5(path.read_bytes()).hexdigest()


async def test_multipart_part_etag_mismatch(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    _small_parts(fake)

    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == STORAGE_HOST and request.url.params.get("partNumber") == "2":
            fake.handle(request)
            return httpx.Response(200, headers={"ETag": '"' + "f" * 32 + '"'})
        return None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        with pytest.raises(errors.ChecksumMismatchError, match="part 2"):
            await call(client.upload(random_file(tmp_path / "m.bin", 3 * 64 * KIB), multipart=True,
                                     part_size=64 * KIB))  # fmt: skip
    finally:
        await close(client)


async def test_upload_progress_events(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    path = random_file(tmp_path / "ev.bin", 3 * 1024 * KIB)
    stream = g3.upload_events(path)
    seen = await events(stream)
    assert stream.result.size == path.stat().st_size
    phases = [e.phase for e in seen]
    assert phases[0] == "hashing" and phases[-1] == "done"
    assert {"uploading", "verifying"} <= set(phases)
    assert seen[-1].done == path.stat().st_size


async def test_delete_file(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    record = await call(g3.upload(random_file(tmp_path / "gone.bin", 100)))
    await call(g3.delete_file(record.did))
    with pytest.raises(errors.NotFoundError):
        await call(g3.index_record(record.did))
    assert fake.object_for(record.did) is None


async def test_upload_refuses_a_missing_file(g3: Any, tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="not a file"):
        await call(g3.upload(tmp_path / "nope.bin"))


async def test_expired_download_url_is_signed_again(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    guid = add_file(fake, data, "renew.bin")
    refused: list[str] = []

    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == STORAGE_HOST and not refused:
            refused.append(str(request.url))
            body = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            return httpx.Response(403, text=body, headers={"Content-Type": "application/xml"})
        return None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    try:
        path = await call(client.download(guid, tmp_path / "renew.bin"))
    finally:
        await close(client)
    assert path.read_bytes() == data and refused
    signed = [r for r in fake.requests if r.url.path.startswith("/user/data/download/")]
    assert len(signed) == 2


async def test_multipart_upload_starts_over_when_the_journaled_upload_is_gone(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    _small_parts(fake)
    path = random_file(tmp_path / "stale.bin", 3 * 64 * KIB)

    def rule(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == STORAGE_HOST and request.url.params.get("partNumber") == "2":
            return httpx.Response(503, text="<Error><Code>SlowDown</Code></Error>")
        return None

    key = fake.new_api_key()["api_key"]
    broken = make_client(kind, api_key=key, transport=faulty(fake, rule))
    try:
        with pytest.raises(errors.ServerError):
            await call(broken.upload(path, multipart=True, part_size=64 * KIB, parallel=1))
    finally:
        await close(broken)
    fake.storage.uploads.clear()  # the storage aborted the unfinished upload meanwhile
    client = make_client(kind, api_key=key, transport=fake.transport())
    try:
        record = await call(client.upload(path, multipart=True, part_size=64 * KIB, parallel=1))
    finally:
        await close(client)
    inits = [r for r in fake.requests if r.url.path == "/user/data/multipart/init"]
    assert len(inits) == 2
    assert fake.object_for(record.did) is not None
    assert record.hashes.md5 == hashlib.md5(path.read_bytes()).hexdigest()
