"""The generated Gen3 clients (from our specs) parse what FakeGen3Commons answers: spec and fake agree."""

from __future__ import annotations

import importlib
from typing import Any

import httpx
import pytest
from scibind.testing.gen3 import FakeGen3Commons


@pytest.fixture
def fake() -> FakeGen3Commons:
    fake = FakeGen3Commons()
    fake.create_program("DEV")
    fake.create_project("DEV", "test")
    return fake


def client(fake: FakeGen3Commons, package: str, base: str, token: str) -> Any:
    module = importlib.import_module(f"scibind_generated.{package}.client")
    generated = module.AuthenticatedClient(
        base_url=base, token=token, raise_on_unexpected_status=True
    )
    headers = {"Authorization": f"Bearer {token}"}
    generated.set_httpx_client(
        httpx.Client(base_url=base, transport=fake.transport(), headers=headers)
    )
    return generated


def test_fence_operations(fake: FakeGen3Commons) -> None:
    from scibind_generated.gen3_fence.api.credentials import get_access_token, list_api_keys
    from scibind_generated.gen3_fence.api.data import create_upload, get_download_url
    from scibind_generated.gen3_fence.api.keys import (
        get_jwks,
        get_openid_configuration,
        get_public_keys,
    )
    from scibind_generated.gen3_fence.api.user import get_user_info
    from scibind_generated.gen3_fence.models import ApiKeyCredentials, UploadRequest

    fence = client(fake, "gen3_fence", fake.fence_url, fake.mint_access_token())
    credentials = fake.new_api_key()
    token = get_access_token.sync(
        client=fence, body=ApiKeyCredentials(api_key=credentials["api_key"])
    )
    assert token is not None and token.access_token.count(".") == 2
    user = get_user_info.sync(client=fence)
    assert user is not None and user.username == fake.user.username
    assert credentials["key_id"] in [k.jti for k in list_api_keys.sync(client=fence).jtis]
    upload = create_upload.sync(client=fence, body=UploadRequest(file_name="a.txt"))
    assert upload is not None and upload.guid.startswith("dg.FAKE/")
    with httpx.Client(transport=fake.transport()) as storage:
        assert storage.put(upload.url, content=b"abc").status_code == 200
    signed = get_download_url.sync(client=fence, guid=upload.guid)
    assert signed is not None and "X-Amz-Signature=" in signed.url
    assert get_jwks.sync(client=fence).keys[0].kty == "RSA"
    assert get_openid_configuration.sync(client=fence).issuer == fake.fence_url
    assert len(get_public_keys.sync(client=fence).keys[0]) == 2


def test_indexd_operations(fake: FakeGen3Commons) -> None:
    from scibind_generated.gen3_indexd.api.index import (
        create_record,
        get_record,
        list_record_versions,
        list_records,
        update_record,
    )
    from scibind_generated.gen3_indexd.models import Hashes, RecordCreate, RecordUpdate

    indexd = client(fake, "gen3_indexd", fake.url("index"), fake.mint_access_token())
    body = RecordCreate(form="object", size=3, hashes=Hashes(md5="0" * 32), urls=["s3://b/k"])
    ref = create_record.sync(client=indexd, body=body)
    assert ref is not None
    updated = update_record.sync(
        client=indexd, guid=ref.did, rev=ref.rev, body=RecordUpdate(file_name="k")
    )
    assert updated is not None and updated.rev != ref.rev
    record = get_record.sync(client=indexd, guid=ref.did)
    assert record is not None and record.file_name == "k" and record.hashes.md5 == "0" * 32
    page = list_records.sync(client=indexd, limit=10)
    assert page is not None and [r.did for r in page.records] == [ref.did]
    versions = list_record_versions.sync(client=indexd, guid=ref.did)
    assert versions is not None and versions.additional_properties["0"].did == ref.did


def test_sheepdog_and_peregrine_operations(fake: FakeGen3Commons) -> None:
    from scibind_generated.gen3_peregrine.api.graphql import query_graphql
    from scibind_generated.gen3_peregrine.models import GraphQLRequest
    from scibind_generated.gen3_sheepdog.api.dictionary import get_dictionary
    from scibind_generated.gen3_sheepdog.api.entity import upsert_entities
    from scibind_generated.gen3_sheepdog.api.program import list_programs
    from scibind_generated.gen3_sheepdog.models import Entity

    token = fake.mint_access_token()
    sheepdog = client(fake, "gen3_sheepdog", fake.base_url, token)
    entity = Entity.from_dict(
        {"type": "subject", "submitter_id": "s1", "projects": {"code": "test"}}
    )
    ok = upsert_entities.sync_detailed(
        client=sheepdog, program="DEV", project="test", body=[entity]
    )
    assert ok.status_code == 200 and ok.parsed.success and ok.parsed.entities[0].action == "create"
    bad = Entity.from_dict({"type": "subject", "submitter_id": "s2"})
    failed = upsert_entities.sync_detailed(client=sheepdog, program="DEV", project="test", body=bad)
    assert (
        failed.status_code == 400
        and failed.parsed.entities[0].errors[0].type_ == "MISSING_PROPERTY"
    )
    assert list_programs.sync(client=sheepdog).links == ["/v0/submission/DEV"]
    assert "_definitions" in get_dictionary.sync(client=sheepdog).additional_properties

    peregrine = client(fake, "gen3_peregrine", fake.base_url, token)
    answer = query_graphql.sync_detailed(
        client=peregrine, body=GraphQLRequest(query="{ subject { submitter_id } }")
    )
    assert answer.status_code == 200
    assert answer.parsed.data.additional_properties == {"subject": [{"submitter_id": "s1"}]}
    error = query_graphql.sync_detailed(client=peregrine, body=GraphQLRequest(query="{ nope }"))
    assert error.status_code == 400 and error.parsed.data is None
    assert error.parsed.errors == ['Cannot query field "nope" on type "Root".']
