"""Uploads into an existing record (``guid=``, the SDK's ``upload_file_to_guid`` URL), the storage
``protocol``, and deleting an uploaded file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.testing.gen3 import FakeGen3Commons

from .conftest import call, random_file

KIB = 1024


def blank_record(fake: FakeGen3Commons, name: str = "late.bin") -> str:
    return str(fake.index.create_blank({"uploader": fake.user.username, "file_name": name})["did"])


async def test_upload_url_for_an_existing_guid(g3: Any, fake: FakeGen3Commons) -> None:
    fake.index_on_upload = False  # the indexing job runs when this test says so
    guid = blank_record(fake)
    url = await call(g3.upload_url(guid, file_name="late.bin", expires_in=600))
    assert httpx.URL(url).host == "storage.fake.test"
    (asked,) = [r for r in fake.requests if r.url.path.startswith("/user/data/upload/")]
    assert asked.method == "GET" and asked.url.params["file_name"] == "late.bin"
    with httpx.Client(transport=fake.transport()) as raw:  # what a tool without scibind would do
        assert raw.put(url, content=b"late bytes").status_code == 200
    assert fake.run_indexing() == 1
    record = await call(g3.index_record(guid))
    assert record.hashes.md5 == hashlib.md5(b"late bytes").hexdigest()
    with pytest.raises(errors.NotFoundError):
        await call(g3.upload_url("dg.FAKE/unknown"))
    with pytest.raises(errors.ConfigurationError, match="protocol"):
        await call(g3.upload_url(guid, protocol="ftp"))


@pytest.mark.parametrize("multipart", [False, True])
async def test_upload_into_an_existing_blank_record(
    g3: Any, fake: FakeGen3Commons, tmp_path: Path, multipart: bool
) -> None:
    fake.storage.min_part_size = 64 * KIB
    guid = blank_record(fake, "reads.bin")
    path = random_file(tmp_path / "reads.bin", 150 * KIB)
    record = await call(g3.upload(path, guid=guid, multipart=multipart, part_size=64 * KIB))
    assert record.did == guid and record.hashes.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert len(fake.index.records) == 1  # no new record was created
    start = "/user/data/multipart/init" if multipart else "/user/data/upload"
    (created,) = [r for r in fake.requests if r.url.path == start]
    assert json.loads(created.content)["guid"] == guid


async def test_storage_protocol(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    path = random_file(tmp_path / "p.bin", 10 * KIB)
    record = await call(g3.upload(path, protocol="s3"))
    assert record.size == 10 * KIB
    (created,) = [r for r in fake.requests if r.url.path == "/user/data/upload"]
    assert json.loads(created.content)["protocol"] == "s3"
    with pytest.raises(errors.BadRequestError, match="az"):  # Fence (here: the fake) has no Azure
        await call(g3.upload(path, protocol="az"))
    before = len(fake.requests)
    with pytest.raises(errors.ConfigurationError, match="S3 only"):
        await call(g3.upload(path, protocol="az", multipart=True))
    with pytest.raises(errors.ConfigurationError, match="unknown storage protocol"):
        await call(g3.upload(path, protocol="ftp"))
    assert len(fake.requests) == before


async def test_delete_an_uploaded_file(g3: Any, fake: FakeGen3Commons, tmp_path: Path) -> None:
    record = await call(g3.upload(random_file(tmp_path / "gone.bin", 2 * KIB)))
    assert fake.object_for(record.did) is not None
    await call(g3.delete_file(record.did))
    assert record.did not in fake.index.records and not fake.storage.objects
    with pytest.raises(errors.NotFoundError):
        await call(g3.delete_file(record.did))
