"""After an upload: filling the blank index record races with Gen3's indexing job and with retries of the fill
itself. indexd refuses to fill a record that is no longer blank (400, before it checks ``rev``), may refuse
the caller the right to fill it (401 in current indexd, 403 in older ones), and answers a stale ``rev`` on a
blank record with 409. The facade accepts a record filled by someone else when it describes the upload."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.gen3 import IndexPendingError, IndexRecordConflictError
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import call, close, faulty, make_client, random_file

KIB = 1024
BLANK_PUT = "/index/index/blank/"


def is_fill(request: httpx.Request) -> bool:
    return request.method == "PUT" and request.url.path.startswith(BLANK_PUT)


def fills(fake: FakeGen3Commons) -> list[httpx.Request]:
    return [r for r in fake.requests if is_fill(r)]


def watching_fills(
    fake: FakeGen3Commons, before: Any = None
) -> tuple[httpx.MockTransport, list[int]]:
    """A transport to ``fake`` that runs ``before(request)`` first and records the answers to fills."""
    answers: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        if before is not None:
            before(request)
        response = fake.handle(request)
        if is_fill(request):
            answers.append(response.status_code)
        return response

    return httpx.MockTransport(handle), answers


@pytest.fixture(autouse=True)
def no_indexing_job(fake: FakeGen3Commons) -> None:
    fake.index_on_upload = False  # the job runs only when a test says so
    fake.storage.min_part_size = 64 * KIB


@pytest.mark.parametrize("multipart", [False, True])
async def test_job_fills_the_record_between_our_read_and_our_fill(
    fake: FakeGen3Commons, kind: str, tmp_path: Path, multipart: bool
) -> None:
    def job_first(request: httpx.Request) -> None:
        if is_fill(request):
            assert fake.run_indexing() == 1  # the job wins the race

    transport, answers = watching_fills(fake, job_first)
    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=transport)
    path = random_file(tmp_path / "raced.bin", 150 * KIB)
    try:
        record = await call(client.upload(path, multipart=multipart, part_size=64 * KIB))
    finally:
        await close(client)
    assert record.hashes.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert record.size == 150 * KIB
    assert record.urls == [f"s3://{fake.upload_bucket}/{record.did}/raced.bin"]
    assert answers == [400]  # "update api is not supported for non-empty record!"


async def test_a_fill_repeated_after_its_answer_was_lost(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    lost: list[httpx.Response] = []
    transport, answers = watching_fills(fake)

    def handle(request: httpx.Request) -> httpx.Response:
        if is_fill(request) and not lost:
            lost.append(fake.handle(request))  # indexd filled the record ...
            raise httpx.ReadError("connection reset", request=request)  # ... the answer never came
        return transport.handle_request(request)

    client = make_client(
        kind, api_key=fake.new_api_key()["api_key"], transport=httpx.MockTransport(handle)
    )
    path = random_file(tmp_path / "lost.bin", 10 * KIB)
    try:
        record = await call(client.upload(path))
    finally:
        await close(client)
    assert lost[0].status_code == 200
    assert record.hashes.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert len(fills(fake)) == 2 and answers == [400]  # the repeated PUT met a filled record


async def test_a_stale_rev_on_a_still_blank_record_is_read_again(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    def change_rev(request: httpx.Request) -> None:
        if is_fill(request) and not fills(fake):
            guid = request.url.path[len(BLANK_PUT) :]
            fake.index.records[guid]["rev"] = "changed0"  # e.g. someone changed its authz meanwhile

    transport, answers = watching_fills(fake, change_rev)
    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=transport)
    path = random_file(tmp_path / "stale.bin", 10 * KIB)
    try:
        record = await call(client.upload(path))
    finally:
        await close(client)
    assert answers == [409, 200]
    assert record.hashes.md5 == hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("what", ["md5", "urls"])
async def test_a_record_filled_with_other_values_is_refused(
    fake: FakeGen3Commons, kind: str, tmp_path: Path, what: str
) -> None:
    def rule(request: httpx.Request) -> httpx.Response | None:
        if is_fill(request):
            guid = request.url.path[len(BLANK_PUT) :]
            if what == "md5":
                fake.index.fill(guid, hashes={"md5": "0" * 32}, size=10 * KIB)
            else:
                sent = json.loads(request.content)
                fake.index.fill(guid, hashes=sent["hashes"], size=sent["size"],
                                urls=["s3://elsewhere/other.bin"])  # fmt: skip
        return None

    client = make_client(kind, api_key=fake.new_api_key()["api_key"], transport=faulty(fake, rule))
    path = random_file(tmp_path / "other.bin", 10 * KIB)
    expected: type[Exception] = (
        errors.ChecksumMismatchError if what == "md5" else IndexRecordConflictError
    )
    try:
        with pytest.raises(expected) as info:
            await call(client.upload(path))
    finally:
        await close(client)
    if what == "urls":
        assert info.value.field == "urls" and "s3://elsewhere/other.bin" in str(info.value)


def _uploader_without_index_rights(fake: FakeGen3Commons) -> str:
    """A user who may upload into DEV through Fence but may not update index records."""
    user = fake.add_user(
        "uploader@example.org",
        authz={"/programs/DEV": [{"method": "*", "service": "fence"}]},
    )
    return fake.new_api_key(user)["api_key"]


@pytest.mark.parametrize("denied", [401, 403])
async def test_without_the_right_to_fill_the_client_waits_for_the_job(
    fake: FakeGen3Commons, kind: str, tmp_path: Path, denied: int
) -> None:
    fake.index.denied_status = denied
    refused: list[int] = []

    def rule(request: httpx.Request) -> httpx.Response | None:
        if is_fill(request):
            refused.append(fake.handle(request).status_code)
            return None
        if refused and request.method == "GET" and request.url.path.startswith("/index/index/"):
            fake.run_indexing()  # the job runs while the client waits
        return None

    api_key = _uploader_without_index_rights(fake)
    client = make_client(kind, api_key=api_key, transport=faulty(fake, rule))
    path = random_file(tmp_path / "patient.bin", 10 * KIB)
    try:
        record = await call(client.upload(path, authz=["/programs/DEV"], index_wait=5))
    finally:
        await close(client)
    assert set(refused) == {denied}
    assert record.hashes.md5 == hashlib.md5(path.read_bytes()).hexdigest()


async def test_without_the_right_to_fill_and_no_job_the_error_says_what_happened(
    fake: FakeGen3Commons, kind: str, tmp_path: Path
) -> None:
    fake.index.denied_status = 403
    client = make_client(
        kind, api_key=_uploader_without_index_rights(fake), transport=fake.transport()
    )
    path = random_file(tmp_path / "stored.bin", 10 * KIB)
    try:
        with pytest.raises(IndexPendingError) as info:
            await call(client.upload(path, authz=["/programs/DEV"], index_wait=0))
    finally:
        await close(client)
    error: Any = info.value
    assert isinstance(error.reason, errors.PermissionDeniedError)
    assert "do not upload again" in str(error) and error.guid in str(error)
    assert fake.index.records[error.guid]["hashes"] == {}  # still blank ...
    assert fake.run_indexing() == 1  # ... but the bytes are stored and the job can index them
