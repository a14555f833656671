"""The DANDI Archive fake follows the real API: upload arithmetic, downloads, pagination, errors, lifecycle."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from scibind.testing.dandi import FakeDandiArchive, zarr_checksum

MiB = 2**20


class SmallPartArchive(FakeDandiArchive):
    """The archive with 5 MiB parts (the S3 minimum), so multipart uploads stay small in tests."""

    part_size = 5 * MiB


@pytest.fixture
def fake() -> FakeDandiArchive:
    return FakeDandiArchive(validation_polls=0, publish_polls=0, ingest_polls=0)


@pytest.fixture
def client(fake: FakeDandiArchive) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=fake.transport(),
        base_url=fake.base_url,
        headers={"Authorization": f"token {fake.api_key}"},
    ) as c:
        yield c


@pytest.fixture
def anon(fake: FakeDandiArchive) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport(), base_url=fake.base_url) as c:
        yield c


def dandischema_etag(content: bytes, part_size: int | None = None) -> str:
    """The dandi-etag as dandischema computes it (optionally with a smaller default part size)."""
    from dandischema.digests.dandietag import DandiETag, PartGenerator

    class Parts(PartGenerator):
        DEFAULT_PART_SIZE = part_size or PartGenerator.DEFAULT_PART_SIZE

    etagger = DandiETag(len(content), part_gen=Parts)
    for part in etagger.get_parts():
        etagger.update(content[part.offset : part.offset + part.size])
    return etagger.as_str()


def upload(
    client: httpx.Client, storage: httpx.Client, dandiset_id: str, content: bytes, etag: str
) -> dict[str, Any]:
    """The dandi-cli upload sequence over plain HTTP; returns the minted blob."""
    init = client.post(
        "/uploads/initialize/",
        json={
            "contentSize": len(content),
            "digest": {"algorithm": "dandi:dandi-etag", "value": etag},
            "dandiset": dandiset_id,
        },
    )
    assert init.status_code == 200, init.text
    parts_out, offset = [], 0
    for part in init.json()["parts"]:
        chunk = content[offset : offset + part["size"]]
        offset += part["size"]
        put = storage.put(part["upload_url"], content=chunk)
        assert put.status_code == 200, put.text
        assert put.headers["ETag"] == f'"{hashlib.md5(chunk).hexdigest()}"'
        parts_out.append(
            {
                "part_number": part["part_number"],
                "size": part["size"],
                "etag": put.headers["ETag"].strip('"'),
            }
        )
    assert offset == len(content)
    upload_id = init.json()["upload_id"]
    done = client.post(f"/uploads/{upload_id}/complete/", json={"parts": parts_out})
    assert done.status_code == 200
    completed = storage.post(done.json()["complete_url"], content=done.json()["body"])
    assert completed.status_code == 200, completed.text
    final = ElementTree.fromstring(completed.text).findtext(
        "{http://s3.amazonaws.com/doc/2006-03-01/}ETag"
    )
    assert final == f'"{etag}"'
    validated = client.post(f"/uploads/{upload_id}/validate/")
    assert validated.status_code == 200, validated.text
    return validated.json()


# ------------------------------------------------------------------------------------------ uploads
def test_multipart_upload_matches_dandischema_etag() -> None:
    fake = SmallPartArchive(validation_polls=0)
    dandiset_id = fake.create_dandiset("uploads")
    content = os.urandom(12 * MiB + 12345)  # 5 MiB + 5 MiB + the rest
    etag = dandischema_etag(content, part_size=5 * MiB)
    assert etag == fake.dandi_etag(content)
    assert etag.endswith("-3")
    with fake.mock():
        headers = {"Authorization": f"token {fake.api_key}"}
        with (
            httpx.Client(base_url=fake.base_url, headers=headers) as client,
            httpx.Client() as storage,
        ):
            init_parts = fake.parts_for(len(content))
            assert init_parts == [5 * MiB, 5 * MiB, 2 * MiB + 12345]
            blob = upload(client, storage, dandiset_id, content, etag)
            assert blob["etag"] == etag
            assert blob["size"] == len(content)
            assert blob["sha256"] is None  # computed asynchronously by the archive
            assert re.fullmatch(r"[0-9a-f-]{36}", blob["blob_id"])

            asset = client.post(
                f"/dandisets/{dandiset_id}/versions/draft/assets/",
                json={"metadata": {"path": "sub-01/data.bin"}, "blob_id": blob["blob_id"]},
            )
            assert asset.status_code == 200, asset.text
            assert asset.json()["blob"] == blob["blob_id"]
            assert asset.json()["size"] == len(content)
            metadata = client.get(f"/assets/{asset.json()['asset_id']}/").json()
            assert metadata["digest"]["dandi:dandi-etag"] == etag
            assert metadata["digest"]["dandi:sha2-256"] == hashlib.sha256(content).hexdigest()

            download = client.get(
                f"/assets/{asset.json()['asset_id']}/download/", follow_redirects=True
            )
            assert download.content == content

            found = client.post(
                "/blobs/digest/", json={"algorithm": "dandi:dandi-etag", "value": etag}
            )
            assert found.json()["blob_id"] == blob["blob_id"]

            again = client.post(
                "/uploads/initialize/",
                json={
                    "contentSize": len(content),
                    "digest": {"algorithm": "dandi:dandi-etag", "value": etag},
                    "dandiset": dandiset_id,
                },
            )
            assert again.status_code == 409
            assert again.headers["Location"] == blob["blob_id"]
            assert again.json() == "Blob already exists."


def test_default_part_size_is_the_archives(fake: FakeDandiArchive) -> None:
    assert fake.parts_for(64 * MiB) == [64 * MiB]
    assert fake.parts_for(64 * MiB + 1) == [64 * MiB, 1]
    from dandischema.digests.dandietag import PartGenerator

    # from 10,000 parts of 64 MiB on, parts grow so that there are at most 10,000
    for size in (1, 5 * MiB, 10_000 * 64 * MiB, 10_001 * 64 * MiB + 7, 3 * 2**40):
        parts = fake.parts_for(size)
        assert parts == [p.size for p in PartGenerator.for_file_size(size)]
        assert len(parts) <= 10_000 and sum(parts) == size
    content = os.urandom(3 * MiB)
    assert fake.dandi_etag(content) == dandischema_etag(content)


def test_upload_checks_part_sizes_etags_and_digest(
    fake: FakeDandiArchive, client: httpx.Client
) -> None:
    dandiset_id = fake.create_dandiset()
    content = b"x" * 1000
    wrong = hashlib.md5(b"other").hexdigest() + "-1"
    init = client.post(
        "/uploads/initialize/",
        json={
            "contentSize": len(content),
            "digest": {"algorithm": "dandi:dandi-etag", "value": wrong},
            "dandiset": dandiset_id,
        },
    ).json()
    (part,) = init["parts"]
    with httpx.Client(transport=fake.transport()) as storage:
        short = storage.put(part["upload_url"], content=content[:-1])
        assert short.status_code == 403
        assert b"<Code>SignatureDoesNotMatch</Code>" in short.content
        tampered = storage.put(
            part["upload_url"].replace("partNumber=1", "partNumber=2"), content=content
        )
        assert tampered.status_code == 403
        leaked = storage.put(
            part["upload_url"], content=content, headers={"Authorization": f"token {fake.api_key}"}
        )
        assert leaked.status_code == 400
        assert b"<Code>InvalidArgument</Code>" in leaked.content
        put = storage.put(part["upload_url"], content=content)
        assert put.status_code == 200

        bad = client.post(
            f"/uploads/{init['upload_id']}/complete/",
            json={"parts": [{"part_number": 1, "size": 1000, "etag": "0" * 32}]},
        ).json()
        rejected = storage.post(bad["complete_url"], content=bad["body"])
        assert rejected.status_code == 400
        assert b"<Code>InvalidPart</Code>" in rejected.content

        etag = put.headers["ETag"].strip('"')
        good = client.post(
            f"/uploads/{init['upload_id']}/complete/",
            json={"parts": [{"part_number": 1, "size": 1000, "etag": etag}]},
        ).json()
        assert storage.post(good["complete_url"], content=good["body"]).status_code == 200

    validated = client.post(f"/uploads/{init['upload_id']}/validate/")
    assert validated.status_code == 400
    actual = fake.dandi_etag(content)
    assert validated.json() == [f"ETag {wrong} does not match actual ETag {actual}."]


def test_upload_request_errors(
    fake: FakeDandiArchive, client: httpx.Client, anon: httpx.Client
) -> None:
    dandiset_id = fake.create_dandiset()
    assert anon.post("/uploads/initialize/", json={}).status_code == 401
    missing = client.post("/uploads/initialize/", json={})
    assert missing.status_code == 400
    assert missing.json() == {
        "contentSize": ["This field is required."],
        "digest": ["This field is required."],
        "dandiset": ["This field is required."],
    }
    md5 = client.post(
        "/uploads/initialize/",
        json={
            "contentSize": 1,
            "digest": {"algorithm": "md5", "value": "x"},
            "dandiset": dandiset_id,
        },
    )
    assert (md5.status_code, md5.json()) == (400, "Unsupported Digest Type")
    other = fake.add_user("other")
    foreign = client.post(
        "/uploads/initialize/",
        headers={"Authorization": f"token {other.api_key}"},
        json={
            "contentSize": 1,
            "digest": {"algorithm": "dandi:dandi-etag", "value": "0" * 32 + "-1"},
            "dandiset": dandiset_id,
        },
    )
    assert foreign.status_code == 403
    assert client.post(f"/uploads/{'0' * 36}/validate/").status_code == 404


# ------------------------------------------------------------------------------------------ downloads
def test_ranged_and_full_downloads(fake: FakeDandiArchive, client: httpx.Client) -> None:
    dandiset_id = fake.create_dandiset()
    content = bytes(range(256)) * 40
    asset_id = fake.add_asset(dandiset_id, "a/b.dat", content)
    redirect = client.get(f"/dandisets/{dandiset_id}/versions/draft/assets/{asset_id}/download/")
    assert redirect.status_code == 302
    url = redirect.headers["Location"]
    assert url.startswith(fake.origins["storage"])
    for param in (
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Expires",
        "response-content-disposition",
    ):
        assert param in httpx.URL(url).params
    with httpx.Client(transport=fake.transport()) as storage:
        full = storage.get(url)
        assert full.status_code == 200
        assert full.content == content
        assert full.headers["Content-Length"] == str(len(content))
        assert full.headers["Content-Disposition"] == 'attachment; filename="b.dat"'
        etag = full.headers["ETag"]
        assert etag == f'"{fake.dandi_etag(content)}"'

        part = storage.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == content[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
        tail = storage.get(url, headers={"Range": "bytes=10000-"})
        assert (tail.status_code, tail.content) == (206, content[10000:])
        suffix = storage.get(url, headers={"Range": "bytes=-5"})
        assert suffix.content == content[-5:]
        beyond = storage.get(url, headers={"Range": f"bytes={len(content)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["Content-Range"] == f"bytes */{len(content)}"
        # like S3, a URL presigned for GET does not authorise HEAD
        assert storage.head(url).status_code == 403
        assert storage.get(url, headers={"If-Match": '"nope"'}).status_code == 412
        unsigned = storage.get(url.split("?")[0])
        assert unsigned.status_code == 403

    inline = client.get(f"/assets/{asset_id}/download/", params={"content_disposition": "inline"})
    assert "response-content-type" in httpx.URL(inline.headers["Location"]).params


def test_zarr_asset_download_is_refused(fake: FakeDandiArchive, client: httpx.Client) -> None:
    dandiset_id = fake.create_dandiset()
    fake.add_zarr(dandiset_id, "z.zarr", {".zgroup": b"{}"}, path="z.zarr")
    (asset,) = client.get(f"/dandisets/{dandiset_id}/versions/draft/assets/").json()["results"]
    refused = client.get(f"/assets/{asset['asset_id']}/download/")
    assert refused.status_code == 400
    assert "zarr" in refused.json()


# ------------------------------------------------------------------------------------------ pagination
def test_dandiset_list_envelope(fake: FakeDandiArchive, anon: httpx.Client) -> None:
    ids = [fake.create_dandiset(f"set {i}") for i in range(5)]
    first = anon.get("/dandisets/", params={"page_size": 2})
    body = first.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 5
    assert body["previous"] is None
    assert [d["identifier"] for d in body["results"]] == ids[:2]
    second = anon.get(body["next"]).json()
    assert second["count"] == 5
    assert httpx.URL(second["previous"]).params.get("page") is None  # DRF drops page=1
    assert httpx.URL(second["next"]).params["page"] == "3"
    last = anon.get("/dandisets/", params={"page_size": 2, "page": 3}).json()
    assert last["next"] is None and [d["identifier"] for d in last["results"]] == ids[4:]
    invalid = anon.get("/dandisets/", params={"page": 9})
    assert (invalid.status_code, invalid.json()) == (404, {"detail": "Invalid page."})
    ordered = anon.get("/dandisets/", params={"ordering": "-id"}).json()
    assert [d["identifier"] for d in ordered["results"]] == ids[::-1]
    assert anon.get("/dandisets/", params={"page_size": 5000}).json()["count"] == 5
    item = body["results"][0]
    assert item["draft_version"]["version"] == "draft"
    assert item["most_recent_published_version"] is None


def test_asset_list_is_lazily_counted(fake: FakeDandiArchive, anon: httpx.Client) -> None:
    dandiset_id = fake.create_dandiset()
    for i in range(5):
        fake.add_asset(dandiset_id, f"sub-{i}/file{i}.nwb", f"content {i}".encode())
    base = f"/dandisets/{dandiset_id}/versions/draft/assets/"
    page1 = anon.get(base, params={"page_size": 2}).json()
    assert page1["count"] == 5
    assert "metadata" not in page1["results"][0]
    page2 = anon.get(page1["next"]).json()
    assert page2["count"] is None
    assert len(page2["results"]) == 2
    assert anon.get(base, params={"page": 7}).json() == {
        "count": None,
        "next": None,
        "previous": anon.get(base, params={"page": 7}).json()["previous"],
        "results": [],
    }
    with_meta = anon.get(base, params={"metadata": "true", "path": "SUB-1"}).json()
    assert [a["path"] for a in with_meta["results"]] == ["sub-1/file1.nwb"]
    assert with_meta["results"][0]["metadata"]["path"] == "sub-1/file1.nwb"
    globbed = anon.get(base, params={"glob": "*file3*"}).json()
    assert [a["path"] for a in globbed["results"]] == ["sub-3/file3.nwb"]
    by_path = anon.get(base, params={"order": "-path"}).json()
    assert by_path["results"][0]["path"] == "sub-4/file4.nwb"
    paths = anon.get(f"{base}paths/", params={"path_prefix": "sub-2/"}).json()
    assert paths["count"] == 1
    assert paths["results"][0]["path"] == "sub-2/file2.nwb"
    assert paths["results"][0]["asset"]["asset_id"]
    root = anon.get(f"{base}paths/").json()
    assert root["results"][0] == {
        "path": "sub-0",
        "version": root["results"][0]["version"],
        "aggregate_files": 1,
        "aggregate_size": len(b"content 0"),
        "asset": None,
    }


# ------------------------------------------------------------------------------------------ errors
def test_error_bodies(fake: FakeDandiArchive, client: httpx.Client, anon: httpx.Client) -> None:
    dandiset_id = fake.create_dandiset()
    bad = anon.get("/dandisets/", headers={"Authorization": "token nope"})
    assert (bad.status_code, bad.json()) == (401, {"detail": "Invalid token."})
    assert bad.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    write = anon.post("/dandisets/", json={"name": "x", "metadata": {}})
    assert write.json() == {"detail": "Authentication credentials were not provided."}
    assert anon.get("/users/me/").status_code == 401
    missing = client.get("/dandisets/999999/")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})
    fields = client.post("/dandisets/", json={"metadata": {}})
    assert (fields.status_code, fields.json()) == (400, {"name": ["This field is required."]})
    stranger = fake.add_user("stranger")
    denied = client.delete(
        f"/dandisets/{dandiset_id}/", headers={"Authorization": f"token {stranger.api_key}"}
    )
    assert denied.status_code == 403
    assert denied.json() == {"detail": "You do not have permission to perform this action."}
    unknown = client.get("/no-such-thing/")
    assert unknown.status_code == 404 and "text/html" in unknown.headers["Content-Type"]
    slashless = client.get("/dandisets", params={"page_size": 1})
    assert slashless.status_code == 301
    assert slashless.headers["Location"].endswith("/dandisets/?page_size=1")
    not_allowed = client.patch(f"/dandisets/{dandiset_id}/")
    assert not_allowed.json() == {"detail": 'Method "PATCH" not allowed.'}

    blob_asset = fake.add_asset(dandiset_id, "a.txt", b"a")
    blob_id = client.get(f"/assets/{blob_asset}/info/").json()["blob"]
    assets = f"/dandisets/{dandiset_id}/versions/draft/assets/"
    duplicate = client.post(assets, json={"metadata": {"path": "a.txt"}, "blob_id": blob_id})
    assert (duplicate.status_code, duplicate.json()) == (
        409,
        "An asset with that path already exists",
    )
    both = client.post(assets, json={"metadata": {"path": "b.txt"}})
    assert both.json() == {"blob_id": ["Exactly one of blob_id or zarr_id must be specified."]}
    nopath = client.post(assets, json={"metadata": {}, "blob_id": blob_id})
    assert nopath.json() == {"metadata": ["No path specified in metadata."]}


# ------------------------------------------------------------------------------------------ lifecycle
def test_validation_publish_and_versions() -> None:
    fake = FakeDandiArchive(validation_polls=2, publish_polls=1)
    dandiset_id = fake.create_dandiset("Lifecycle")
    fake.add_asset(dandiset_id, "f.nwb", b"data")
    headers = {"Authorization": f"token {fake.api_key}"}
    with httpx.Client(
        transport=fake.transport(), base_url=fake.base_url, headers=headers
    ) as client:
        info = f"/dandisets/{dandiset_id}/versions/draft/info/"
        statuses = [client.get(info).json()["status"] for _ in range(3)]
        assert statuses == ["Pending", "Validating", "Valid"]
        assert client.get(info).json()["version_validation_errors"] == []

        published_put = client.post(f"/dandisets/{dandiset_id}/versions/draft/publish/")
        assert published_put.status_code == 202 and published_put.content == b""
        assert client.get(info).json()["status"] == "Publishing"
        assert client.get(info).json()["status"] == "Published"
        versions = client.get(
            f"/dandisets/{dandiset_id}/versions/", params={"order": "-created"}
        ).json()
        assert versions["count"] == 2
        published = versions["results"][0]["version"]
        assert re.fullmatch(r"0\.\d{6}\.\d{4}", published)
        detail = client.get(f"/dandisets/{dandiset_id}/").json()
        assert detail["most_recent_published_version"]["version"] == published
        assert detail["most_recent_published_version"]["asset_count"] == 1

        frozen = client.put(
            f"/dandisets/{dandiset_id}/versions/{published}/", json={"name": "x", "metadata": {}}
        )
        assert (frozen.status_code, frozen.json()) == (405, "Only draft versions can be modified.")
        again = client.post(f"/dandisets/{dandiset_id}/versions/{published}/publish/")
        assert again.status_code == 405
        changed = client.put(
            f"/dandisets/{dandiset_id}/versions/draft/", json={"name": "Renamed", "metadata": {}}
        )
        assert changed.json()["status"] == "Pending"
        early = client.post(f"/dandisets/{dandiset_id}/versions/draft/publish/")
        assert early.status_code == 409
        assert client.delete(f"/dandisets/{dandiset_id}/").status_code == 403


def test_invalid_draft_cannot_be_published(fake: FakeDandiArchive, client: httpx.Client) -> None:
    dandiset_id = fake.create_dandiset()
    fake.add_asset(dandiset_id, "f.nwb", b"data")
    fake.set_validation_errors(
        dandiset_id,
        version_errors=[{"field": "license", "message": "Field required"}],
        asset_errors={"f.nwb": [{"field": "contentSize", "message": "bad"}]},
    )
    fake.publish_ready(dandiset_id)
    info = client.get(f"/dandisets/{dandiset_id}/versions/draft/info/").json()
    assert info["status"] == "Invalid"
    assert info["version_validation_errors"] == [{"field": "license", "message": "Field required"}]
    assert info["asset_validation_errors"] == [
        {"field": "contentSize", "message": "bad", "path": "f.nwb"}
    ]
    refused = client.post(f"/dandisets/{dandiset_id}/versions/draft/publish/")
    assert (refused.status_code, refused.json()) == (
        400,
        "Dandiset metadata or asset metadata is not valid",
    )


# ------------------------------------------------------------------------------------------ zarr
def test_zarr_upload_listing_and_checksum(fake: FakeDandiArchive, client: httpx.Client) -> None:
    from zarr_checksum.tree import ZarrChecksumTree

    dandiset_id = fake.create_dandiset()
    created = client.post("/zarr/", json={"name": "sample.zarr", "dandiset": dandiset_id})
    assert created.status_code == 200
    zarr = created.json()
    assert (zarr["status"], zarr["checksum"], zarr["file_count"]) == ("Pending", None, 0)
    files = {f"0/{i}": os.urandom(100 + i) for i in range(5)} | {
        ".zattrs": b"{}",
        "0/.zarray": b"{}",
    }
    request = [
        {"path": p, "base64md5": base64.b64encode(hashlib.md5(d).digest()).decode()}
        for p, d in files.items()
    ]
    urls = client.post(f"/zarr/{zarr['zarr_id']}/files/", json=request)
    assert urls.status_code == 200 and len(urls.json()) == len(files)
    with httpx.Client(transport=fake.transport()) as storage:
        for item, url in zip(request, urls.json(), strict=True):
            data = files[item["path"]]
            missing_md5 = storage.put(url, content=data)
            assert missing_md5.status_code == 403
            put = storage.put(url, content=data, headers={"Content-MD5": item["base64md5"]})
            assert put.status_code == 200

    listing = client.get(f"/zarr/{zarr['zarr_id']}/files/", params={"limit": 3}).json()
    assert [r["Key"] for r in listing["results"]] == sorted(files)[:3]
    assert listing["results"][0]["ETag"] == hashlib.md5(files[sorted(files)[0]]).hexdigest()
    rest = client.get(listing["next"]).json()
    assert [r["Key"] for r in rest["results"]] == sorted(files)[3:6]
    prefixed = client.get(f"/zarr/{zarr['zarr_id']}/files/", params={"prefix": "0/"}).json()
    assert len(prefixed["results"]) == 6 and prefixed["next"] is None

    assert client.post(f"/zarr/{zarr['zarr_id']}/finalize/").status_code == 204
    assert client.post(f"/zarr/{zarr['zarr_id']}/finalize/").status_code == 400
    done = client.get(f"/zarr/{zarr['zarr_id']}/").json()
    tree = ZarrChecksumTree()
    for path, data in files.items():
        tree.add_leaf(Path(path), len(data), hashlib.md5(data).hexdigest())
    expected = str(tree.process())
    assert done["status"] == "Complete"
    assert done["checksum"] == expected
    assert (done["file_count"], done["size"]) == (len(files), sum(map(len, files.values())))
    assert (
        zarr_checksum({p: (hashlib.md5(d).hexdigest(), len(d)) for p, d in files.items()})
        == expected
    )

    deleted = client.request("DELETE", f"/zarr/{zarr['zarr_id']}/files/", json=[{"path": "0/0"}])
    assert deleted.status_code == 204
    assert client.get(f"/zarr/{zarr['zarr_id']}/").json()["status"] == "Pending"
    download = client.get(
        f"/zarr/{zarr['zarr_id']}/files/",
        params={"prefix": "0/1", "download": "true"},
        follow_redirects=True,
    )
    assert download.content == files["0/1"]
    head = client.head(f"/zarr/{zarr['zarr_id']}/files/", params={"prefix": "0/1"})
    assert head.status_code == 302
    with httpx.Client(transport=fake.transport()) as storage:
        headed = storage.head(head.headers["Location"])
    assert headed.status_code == 200
    assert headed.headers["Content-Length"] == str(len(files["0/1"]))
    assert headed.content == b""
    paged = client.get("/zarr/", params={"dandiset": dandiset_id}).json()
    assert paged["count"] == 1 and paged["results"][0]["zarr_id"] == zarr["zarr_id"]


# ------------------------------------------------------------------------------------------ three ways
def test_respx_mock_routes_both_origins(fake: FakeDandiArchive) -> None:
    dandiset_id = fake.create_dandiset()
    asset_id = fake.add_asset(dandiset_id, "x.bin", b"payload")
    with fake.mock():
        response = httpx.get(fake.url(f"assets/{asset_id}/download/"), follow_redirects=True)
    assert response.content == b"payload"


def test_real_loopback_server(fake: FakeDandiArchive) -> None:
    dandiset_id = fake.create_dandiset()
    content = os.urandom(50_000)
    asset_id = fake.add_asset(dandiset_id, "dir/x.bin", content)
    with fake.serve() as api_url, httpx.Client(base_url=api_url) as client:
        assert api_url.startswith("http://127.0.0.1:")
        listing = client.get(f"/dandisets/{dandiset_id}/versions/draft/assets/").json()
        assert listing["results"][0]["asset_id"] == asset_id
        redirect = client.get(f"/assets/{asset_id}/download/")
        assert redirect.status_code == 302
        assert redirect.headers["Location"].startswith(fake.origins["storage"])
        ranged = client.get(redirect.headers["Location"], headers={"Range": "bytes=10-19"})
        assert (ranged.status_code, ranged.content) == (206, content[10:20])
        assert client.head(f"/dandisets/{dandiset_id}/").status_code == 200
    assert fake.base_url == FakeDandiArchive.default_origins["api"]


def test_dandi_cli_client_against_served_fake(
    fake: FakeDandiArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dandi-cli's own (requests-based) client lists and downloads from the fake."""
    pytest.importorskip("dandi")
    monkeypatch.setenv("DANDI_NO_ET", "1")  # no version check over the network
    monkeypatch.setenv("DANDI_CACHE", "ignore")
    from dandi.dandiapi import DandiAPIClient

    first = fake.create_dandiset("First")
    second = fake.create_dandiset("Second")
    content = os.urandom(300_000)
    fake.add_asset(first, "sub-01/sub-01_ecephys.nwb", content)
    fake.add_asset(first, "sub-02/sub-02_ecephys.nwb", b"small")
    with fake.serve() as api_url, DandiAPIClient(api_url=api_url, token=fake.api_key) as client:
        client.page_size = 1  # exercise dandi-cli's parallel page fetching
        assert [d.identifier for d in client.get_dandisets()] == [first, second]
        dandiset = client.get_dandiset(first, "draft")
        assets = sorted(dandiset.get_assets(), key=lambda a: a.path)
        assert [a.path for a in assets] == [
            "sub-01/sub-01_ecephys.nwb",
            "sub-02/sub-02_ecephys.nwb",
        ]
        assert assets[0].size == len(content)
        assert assets[0].get_raw_digest() == fake.dandi_etag(content)
        target = tmp_path / "download.nwb"
        assets[0].download(target)
        assert target.read_bytes() == content
        assert dandiset.get_asset_by_path("sub-02/sub-02_ecephys.nwb").size == 5


def test_asset_replace_delete_and_api_keys(fake: FakeDandiArchive, client: httpx.Client) -> None:
    dandiset_id = fake.create_dandiset()
    asset_id = fake.add_asset(dandiset_id, "old.bin", b"v1")
    blob_id = client.get(f"/assets/{asset_id}/info/").json()["blob"]
    base = f"/dandisets/{dandiset_id}/versions/draft/assets/"
    same = client.put(
        f"{base}{asset_id}/",
        json={
            "metadata": {"encodingFormat": "application/octet-stream", "path": "old.bin"},
            "blob_id": blob_id,
        },
    )
    assert same.json()["asset_id"] == asset_id  # unchanged request: the old asset
    moved = client.put(
        f"{base}{asset_id}/", json={"metadata": {"path": "new.bin"}, "blob_id": blob_id}
    )
    assert moved.status_code == 200
    new_id = moved.json()["asset_id"]
    assert new_id != asset_id and moved.json()["path"] == "new.bin"
    assert client.get(f"{base}{asset_id}/").status_code == 404
    validation = client.get(f"{base}{new_id}/validation/").json()
    assert validation == {"status": "Pending", "validation_errors": []}
    assert client.delete(f"{base}{new_id}/").status_code == 204
    assert client.get(base).json()["count"] == 0

    old_key = fake.api_key
    new_key = client.post("/auth/token/").json()
    assert new_key != old_key and client.get("/auth/token/").status_code == 401
    with httpx.Client(
        transport=fake.transport(),
        base_url=fake.base_url,
        headers={"Authorization": f"token {new_key}"},
    ) as renewed:
        assert renewed.get("/auth/token/").json() == new_key
        assert renewed.get("/users/me/").json()["username"] == "testuser"
        assert renewed.get("/users/").status_code == 403
