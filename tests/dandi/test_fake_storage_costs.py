"""The DANDI fake keeps work off the upload's own requests, like the archive and S3 do.

Completing a multipart upload does not copy the object (its parts are joined when it is first read), and
validation does not hash it (the archive computes the sha256 in the background: reads afterwards see it, the
upload's answers say null). Listing a large version does not sort it for every page, nor render its dates
again. Observable answers stay those of the real archive.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.dandi.test_fake_archive import MiB, SmallPartArchive, dandischema_etag, upload


@pytest.fixture
def fake() -> SmallPartArchive:
    return SmallPartArchive(validation_polls=0)


@pytest.fixture
def clients(fake: SmallPartArchive) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    headers = {"Authorization": f"token {fake.api_key}"}
    with (
        httpx.Client(transport=fake.transport(), base_url=fake.base_url, headers=headers) as api,
        httpx.Client(transport=fake.transport()) as storage,
    ):
        yield api, storage


def test_completed_object_is_joined_when_first_read(
    fake: SmallPartArchive, clients: tuple[httpx.Client, httpx.Client]
) -> None:
    api, storage = clients
    dandiset_id = fake.create_dandiset("joins")
    content = os.urandom(11 * MiB + 7)
    blob = upload(api, storage, dandiset_id, content, dandischema_etag(content, 5 * MiB))
    stored = fake.objects[fake._blobs[blob["blob_id"]].key]
    assert stored.size == len(content)
    assert len(stored._chunks) == 3  # completion kept the parts: no copy of the object
    asset = api.post(
        f"/dandisets/{dandiset_id}/versions/draft/assets/",
        json={"metadata": {"path": "a.bin"}, "blob_id": blob["blob_id"]},
    ).json()
    url = api.get(f"/assets/{asset['asset_id']}/download/").headers["Location"]
    ranged = storage.get(url, headers={"Range": f"bytes={5 * MiB - 3}-{5 * MiB + 2}"})
    assert ranged.status_code == 206 and ranged.content == content[5 * MiB - 3 : 5 * MiB + 3]
    assert storage.get(url).content == content
    assert len(stored._chunks) == 1 and stored.data == content


def test_sha256_is_computed_after_the_upload_not_during_it(
    fake: SmallPartArchive, clients: tuple[httpx.Client, httpx.Client]
) -> None:
    api, storage = clients
    dandiset_id = fake.create_dandiset("digests")
    content = os.urandom(6 * MiB)
    blob = upload(api, storage, dandiset_id, content, dandischema_etag(content, 5 * MiB))
    assert blob["sha256"] is None
    minted = fake._blobs[blob["blob_id"]]
    assert minted.sha256 is None and minted.pending is not None  # not hashed on validation's time
    created = api.post(
        f"/dandisets/{dandiset_id}/versions/draft/assets/",
        json={"metadata": {"path": "b.bin"}, "blob_id": blob["blob_id"]},
    )
    assert created.status_code == 200, created.text
    assert "dandi:sha2-256" not in created.json()["metadata"]["digest"]
    assert minted.sha256 is None
    metadata = api.get(f"/assets/{created.json()['asset_id']}/").json()
    assert metadata["digest"]["dandi:sha2-256"] == hashlib.sha256(content).hexdigest()
    assert minted.pending is None


def test_blob_lookup_by_sha256_finds_a_fresh_upload(
    fake: SmallPartArchive, clients: tuple[httpx.Client, httpx.Client]
) -> None:
    api, storage = clients
    dandiset_id = fake.create_dandiset("lookup")
    content = os.urandom(5 * MiB + 1)
    blob = upload(api, storage, dandiset_id, content, dandischema_etag(content, 5 * MiB))
    sha256 = hashlib.sha256(content).hexdigest()
    found = api.post("/blobs/digest/", json={"algorithm": "dandi:sha2-256", "value": sha256})
    assert found.status_code == 200, found.text
    assert found.json() == {**blob, "sha256": sha256}
    by_etag = api.post(
        "/blobs/digest/", json={"algorithm": "dandi:dandi-etag", "value": blob["etag"]}
    )
    assert by_etag.json()["sha256"] == sha256


def test_asset_list_order_follows_changes(
    fake: SmallPartArchive, clients: tuple[httpx.Client, httpx.Client]
) -> None:
    """The remembered created-order of a version is refreshed when assets come, go or are replaced."""
    api, _ = clients
    dandiset_id = fake.create_dandiset("order")
    ids = [fake.add_asset(dandiset_id, f"f{i}.bin", b"%d" % i) for i in range(5)]
    url = f"/dandisets/{dandiset_id}/versions/draft/assets/"

    def paths() -> list[str]:
        pages = [api.get(url, params={"page_size": 2, "page": n}).json() for n in (1, 2, 3)]
        return [r["path"] for p in pages for r in p["results"]]

    assert paths() == [f"f{i}.bin" for i in range(5)]
    assert api.delete(f"{url}{ids[1]}/").status_code == 204
    fake.add_asset(dandiset_id, "g.bin", b"g")
    assert paths() == ["f0.bin", "f2.bin", "f3.bin", "f4.bin", "g.bin"]
    replaced = api.put(
        f"{url}{ids[0]}/",
        json={"metadata": {"path": "h.bin"}, "blob_id": fake._assets[ids[0]].blob.blob_id},
    )
    assert replaced.status_code == 200, replaced.text
    assert paths() == ["f2.bin", "f3.bin", "f4.bin", "g.bin", "h.bin"]
    newest = api.get(url, params={"order": "-created"}).json()["results"]
    assert [r["path"] for r in newest] == ["h.bin", "g.bin", "f4.bin", "f3.bin", "f2.bin"]
    assert paths() == [
        "f2.bin",
        "f3.bin",
        "f4.bin",
        "g.bin",
        "h.bin",
    ]  # a sorted copy, not the cache


def test_rendered_dates_follow_the_asset(fake: SmallPartArchive) -> None:
    import datetime as dt

    dandiset_id = fake.create_dandiset("dates")
    asset = fake._assets[fake.add_asset(dandiset_id, "d.bin", b"d")]
    first = fake._asset_record(asset, metadata=False)["created"]
    assert first == asset.created.isoformat().replace("+00:00", "Z")
    asset.created = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert fake._asset_record(asset, metadata=False)["created"] == "2020-01-02T03:04:05Z"
