"""specs/dandi/openapi.yaml and the fake agree: the generated client parses every answer, field for field.

Each 2xx answer of the fake is parsed by the client generated from our spec; parsed models must carry no
undeclared fields (``additional_properties``), so a field the spec forgets, or a wrong status, fails here.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
from scibind.testing.dandi import FakeDandiArchive
from scibind_generated.dandi.client import AuthenticatedClient, Client

OPEN_MODELS = {"Metadata", "FieldErrors", "QuestionnaireForm", "ApiInfoInstanceConfig"}


def op(name: str) -> Any:
    tag, _, module = name.partition(".")
    return importlib.import_module(f"scibind_generated.dandi.api.{tag}.{module}")


def model(name: str) -> Any:
    module = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return getattr(importlib.import_module(f"scibind_generated.dandi.models.{module}"), name)


def closed(value: Any, where: str = "$") -> list[str]:
    """Undeclared fields anywhere in a parsed value (open-ended metadata models excepted)."""
    problems: list[str] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            problems += closed(item, f"{where}[{i}]")
    elif hasattr(value, "additional_properties") and type(value).__name__ not in OPEN_MODELS:
        extra = sorted(value.additional_properties)
        if extra:
            problems.append(f"{where} ({type(value).__name__}): undeclared {extra}")
        for attribute in attrs.fields(type(value)):
            if attribute.name != "additional_properties":
                problems += closed(getattr(value, attribute.name), f"{where}.{attribute.name}")
    return problems


@pytest.fixture
def fake() -> FakeDandiArchive:
    return FakeDandiArchive(validation_polls=0, publish_polls=0, ingest_polls=0)


@pytest.fixture
def client(fake: FakeDandiArchive) -> Iterator[AuthenticatedClient]:
    with AuthenticatedClient(
        base_url=fake.base_url,
        token=fake.api_key,
        prefix="token",
        httpx_args={"transport": fake.transport()},
    ) as c:
        yield c


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    assert closed(response.parsed) == []
    return response.parsed


def test_dandisets_versions_and_assets(fake: FakeDandiArchive, client: AuthenticatedClient) -> None:
    Version = model("VersionMetadataRequest")
    created = ok(
        op("dandisets.create_dandiset").sync_detailed(
            client=client,
            body=Version.from_dict({"name": "Conf", "metadata": {"description": "d"}}),
        )
    )
    dandiset_id = created.identifier
    fake.add_asset(dandiset_id, "sub-01/a.nwb", b"abc")
    zarr_id = fake.add_zarr(dandiset_id, "z.zarr", {".zgroup": b"{}"}, path="z.zarr")
    listing = ok(op("dandisets.list_dandisets").sync_detailed(client=client))
    assert listing.count == 1 and listing.results[0].draft_version.asset_count == 2
    ok(op("dandisets.get_dandiset").sync_detailed(dandiset_id, client=client))
    ok(op("dandisets.get_dandiset_owners").sync_detailed(dandiset_id, client=client))
    ok(op("dandisets.star_dandiset").sync_detailed(dandiset_id, client=client))
    ok(op("dandisets.list_dandiset_uploads").sync_detailed(dandiset_id, client=client))

    info = ok(op("versions.get_version_info").sync_detailed(dandiset_id, "draft", client=client))
    assert info.status == "Valid"
    ok(op("versions.list_versions").sync_detailed(dandiset_id, client=client))
    ok(op("versions.get_version_metadata").sync_detailed(dandiset_id, "draft", client=client))

    assets = ok(
        op("assets.list_assets").sync_detailed(dandiset_id, "draft", client=client, metadata=True)
    )
    by_path = {a.path: a for a in assets.results}
    blob_asset = by_path["sub-01/a.nwb"]
    assert by_path["z.zarr"].zarr == uuid.UUID(zarr_id)
    ok(op("assets.list_asset_paths").sync_detailed(dandiset_id, "draft", client=client))
    ok(op("assets.get_asset_info").sync_detailed(blob_asset.asset_id, client=client))
    ok(op("assets.get_asset_metadata").sync_detailed(blob_asset.asset_id, client=client))
    ok(
        op("assets.get_asset_validation").sync_detailed(
            dandiset_id, "draft", blob_asset.asset_id, client=client
        )
    )
    redirect = op("assets.download_asset").sync_detailed(blob_asset.asset_id, client=client)
    assert redirect.status_code == 302
    assert redirect.headers["Location"].startswith(fake.origins["storage"])

    accepted = op("versions.publish_version").sync_detailed(dandiset_id, "draft", client=client)
    assert (accepted.status_code, accepted.content) == (202, b"")
    published = ok(op("dandisets.get_dandiset").sync_detailed(dandiset_id, client=client))
    assert published.most_recent_published_version.version != "draft"


def test_upload_flow(fake: FakeDandiArchive, client: AuthenticatedClient) -> None:
    dandiset_id = fake.create_dandiset()
    content = b"conformance" * 100
    etag = fake.dandi_etag(content)
    init = ok(
        op("uploads.initialize_upload").sync_detailed(
            client=client,
            body=model("UploadInitializationRequest").from_dict(
                {
                    "dandiset": dandiset_id,
                    "contentSize": len(content),
                    "digest": {"algorithm": "dandi:dandi-etag", "value": etag},
                }
            ),
        )
    )
    (part,) = init.parts
    with httpx.Client(transport=fake.transport()) as storage:
        put = storage.put(part.upload_url, content=content)
    done = ok(
        op("uploads.complete_upload").sync_detailed(
            init.upload_id,
            client=client,
            body=model("UploadCompletionRequest").from_dict(
                {
                    "parts": [
                        {
                            "part_number": 1,
                            "size": len(content),
                            "etag": put.headers["ETag"].strip('"'),
                        }
                    ]
                }
            ),
        )
    )
    with httpx.Client(transport=fake.transport()) as storage:
        assert storage.post(done.complete_url, content=done.body).status_code == 200
    blob = ok(op("uploads.validate_upload").sync_detailed(init.upload_id, client=client))
    assert blob.etag == etag and blob.sha256 is None
    asset = ok(
        op("assets.create_asset").sync_detailed(
            dandiset_id,
            "draft",
            client=client,
            body=model("AssetRequest").from_dict(
                {"metadata": {"path": "up.bin"}, "blob_id": str(blob.blob_id)}
            ),
        )
    )
    assert asset.size == len(content)
    found = ok(
        op("blobs.get_blob_by_digest").sync_detailed(
            client=client,
            body=model("Digest").from_dict({"algorithm": "dandi:dandi-etag", "value": etag}),
        )
    )
    assert found.blob_id == blob.blob_id
    conflict = op("uploads.initialize_upload").sync_detailed(
        client=client,
        body=model("UploadInitializationRequest").from_dict(
            {
                "dandiset": dandiset_id,
                "contentSize": len(content),
                "digest": {"algorithm": "dandi:dandi-etag", "value": etag},
            }
        ),
    )
    assert conflict.status_code == 409 and conflict.headers["Location"] == str(blob.blob_id)


def test_zarr_and_server_endpoints(fake: FakeDandiArchive, client: AuthenticatedClient) -> None:
    dandiset_id = fake.create_dandiset()
    zarr = ok(
        op("zarr.create_zarr").sync_detailed(
            client=client,
            body=model("ZarrCreateRequest").from_dict({"name": "a.zarr", "dandiset": dandiset_id}),
        )
    )
    data = b"chunk"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    urls = ok(
        op("zarr.upload_zarr_files").sync_detailed(
            zarr.zarr_id,
            client=client,
            body=[model("ZarrFileUploadRequest").from_dict({"path": "0/0", "base64md5": md5})],
        )
    )
    with httpx.Client(transport=fake.transport()) as storage:
        assert storage.put(urls[0], content=data, headers={"Content-MD5": md5}).status_code == 200
    files = ok(op("zarr.list_zarr_files").sync_detailed(zarr.zarr_id, client=client))
    assert [f.key for f in files.results] == ["0/0"]
    assert op("zarr.finalize_zarr").sync_detailed(zarr.zarr_id, client=client).status_code == 204
    done = ok(op("zarr.get_zarr").sync_detailed(zarr.zarr_id, client=client))
    assert done.status == "Complete" and done.file_count == 1
    ok(op("zarr.list_zarrs").sync_detailed(client=client))
    deleted = op("zarr.delete_zarr_files").sync_detailed(
        zarr.zarr_id,
        client=client,
        body=[model("ZarrFileDeleteRequest").from_dict({"path": "0/0"})],
    )
    assert deleted.status_code == 204

    ok(op("info.get_server_info").sync_detailed(client=client))
    ok(op("stats.get_stats").sync_detailed(client=client))
    ok(op("schemas.list_available_schemas").sync_detailed(client=client))
    ok(op("users.get_current_user").sync_detailed(client=client))
    ok(op("users.search_users").sync_detailed(client=client, username="test"))
    assert ok(op("auth.get_api_key").sync_detailed(client=client)) == fake.api_key


def test_errors_parse_into_error_shapes(fake: FakeDandiArchive) -> None:
    with Client(base_url=fake.base_url, httpx_args={"transport": fake.transport()}) as anon:
        denied = op("users.get_current_user").sync_detailed(client=anon)
    assert denied.status_code == 401
    assert denied.parsed.detail == "Authentication credentials were not provided."
    with AuthenticatedClient(
        base_url=fake.base_url,
        token="wrong",
        prefix="token",
        httpx_args={"transport": fake.transport()},
    ) as bad:
        invalid = op("dandisets.list_dandisets").sync_detailed(client=bad)
    assert invalid.status_code == 401 and invalid.parsed.detail == "Invalid token."
