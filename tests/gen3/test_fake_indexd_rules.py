"""The fake commons follows indexd's rules for blank records, write permissions and URL queries, sheepdog's
for manifests and token refusals, and the workspace token service's protocol (checked over raw HTTP)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import httpx
import pytest
import yaml
from scibind.testing.gen3 import FakeGen3Commons

MD5 = hashlib.md5(b"x").hexdigest()
FILL = {"size": 1, "hashes": {"md5": MD5}, "urls": ["s3://b/k"]}


@pytest.fixture
def fake() -> FakeGen3Commons:
    fake = FakeGen3Commons()
    fake.create_program("DEV")
    fake.create_project("DEV", "test")
    return fake


@pytest.fixture
def client(fake: FakeGen3Commons) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport(), base_url=fake.base_url) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(fake: FakeGen3Commons) -> dict[str, str]:
    user, password = fake.indexd_credentials
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_blank_update_checks_in_indexds_order(fake: FakeGen3Commons, client: httpx.Client) -> None:
    token = fake.mint_access_token()
    url = "/index/index/blank/"
    assert (
        client.put(url + "dg.FAKE/none?rev=x", json=FILL, headers=bearer(token)).status_code == 404
    )
    blank = fake.index.create_blank({"uploader": "u", "file_name": "k"})
    stale = client.put(f"{url}{blank['did']}?rev=stale000", json=FILL, headers=bearer(token))
    assert (stale.status_code, stale.json()) == (409, {"error": "revision mismatch"})
    done = client.put(f"{url}{blank['did']}?rev={blank['rev']}", json=FILL, headers=bearer(token))
    assert done.status_code == 200 and done.json()["rev"] != blank["rev"]
    for rev in (done.json()["rev"], "stale000"):  # a filled record: 400 whatever the revision
        again = client.put(f"{url}{blank['did']}?rev={rev}", json=FILL, headers=bearer(token))
        assert again.status_code == 400
        assert again.json() == {"error": "update api is not supported for non-empty record!"}


@pytest.mark.parametrize("denied", [401, 403])
def test_indexd_writes_are_authorized_per_user(
    fake: FakeGen3Commons, client: httpx.Client, denied: int
) -> None:
    fake.index.denied_status = denied
    reader = fake.add_user("r@example.org", authz={"/programs/DEV": [{"method": "read", "service": "*"}]})  # fmt: skip
    token = fake.mint_access_token(reader)
    blank = fake.index.create_blank({"uploader": "u", "file_name": "k"})
    url = f"/index/index/blank/{blank['did']}?rev={blank['rev']}"
    refused = client.put(url, json=FILL, headers=bearer(token))
    assert (refused.status_code, refused.json()) == (denied, {"error": "Permission denied."})
    assert client.put(url, json=FILL, headers=basic(fake)).status_code == 200  # indexd's own client
    new = {
        "form": "object",
        "size": 1,
        "hashes": {"md5": MD5},
        "urls": [],
        "authz": ["/programs/DEV"],
    }
    assert client.post("/index/index/", json=new, headers=bearer(token)).status_code == denied
    writer = fake.add_user("w@example.org", authz={"/programs/DEV": [{"method": "*", "service": "indexd"}]})  # fmt: skip
    created = client.post("/index/index/", json=new, headers=bearer(fake.mint_access_token(writer)))
    assert created.status_code == 200


def test_url_queries(fake: FakeGen3Commons, client: httpx.Client) -> None:
    a = fake.add_file(b"a", "a.bin", bucket="one")
    b = fake.add_file(b"b", "b.bin", bucket="two")
    found = client.get("/index/_query/urls/q", params={"include": "s3://one/"}).json()
    assert found == [{"did": a, "urls": [f"s3://one/{a}/a.bin"]}]
    rest = client.get("/index/_query/urls/q", params={"exclude": "s3://one/", "fields": "did"})
    assert rest.json() == [{"did": b}]
    bad = client.get("/index/_query/urls/q", params={"nope": "1"})
    assert bad.status_code == 400 and "Unexpected query parameter" in bad.json()["error"]


def test_manifest_needs_ids_of_data_files(fake: FakeGen3Commons, client: httpx.Client) -> None:
    token = fake.mint_access_token()
    base = "/api/v0/submission/DEV/test/manifest"
    missing = client.get(base, headers=bearer(token))
    assert missing.status_code == 400 and "No ids specified" in missing.json()["message"]
    project = fake.graph.project("DEV", "test")
    assert project is not None
    wrong = client.get(base, params={"ids": project.id}, headers=bearer(token))
    assert wrong.status_code == 400 and "is not a data file" in wrong.json()["message"]
    assert client.get(base, params={"ids": "unknown"}, headers=bearer(token)).status_code == 404
    reads = {
        "type": "submitted_unaligned_reads", "submitter_id": "r1", "file_name": "r.fq",
        "file_size": 1, "md5sum": MD5, "data_category": "Sequencing Reads", "data_format": "FASTQ",
        "data_type": "Unaligned Reads", "samples": [{"submitter_id": "m1"}],
    }  # fmt: skip
    docs = [
        {"type": "subject", "submitter_id": "s1", "projects": {"code": "test"}},
        {"type": "sample", "submitter_id": "m1", "subjects": {"submitter_id": "s1"}},
        reads,
    ]
    status, body = fake.graph.submit("DEV", "test", docs, role="update")
    assert status == 200, body
    (node,) = fake.graph.nodes_of("submitted_unaligned_reads")
    found = client.get(base, params={"ids": node.id}, headers=bearer(token))
    assert found.headers["content-disposition"] == "attachment; filename=submission_manifest.yaml"
    (entry,) = yaml.safe_load(found.content)["files"]
    assert entry["id"] == node.id and entry["local_file_path"] == "r.fq"


def test_sheepdog_refuses_an_expired_token_with_403(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    token = fake.mint_access_token()
    fake.expire_access_tokens()
    submission = "/api/v0/submission/DEV/test"
    record = {"type": "subject", "submitter_id": "s", "projects": {"code": "test"}}
    refused = client.put(submission, json=record, headers=bearer(token))
    assert (refused.status_code, refused.json()) == (403, {"message": "user is unauthorized"})
    assert client.put(submission, json=record).status_code == 401  # no token at all


def test_workspace_token_service(fake: FakeGen3Commons) -> None:
    with httpx.Client(transport=fake.transport()) as raw:
        wts = fake.origins["wts"]
        got = raw.get(f"{wts}/token/")
        assert got.status_code == 200
        token = got.json()["token"]
        me = raw.get(fake.url("/user/user"), headers=bearer(token))
        assert me.json()["username"] == fake.user.username
        unknown = raw.get(f"{wts}/token/", params={"idp": "elsewhere"})
        assert unknown.status_code == 400 and "not configured" in unknown.json()["error"]
        assert raw.get(f"{wts}/token/", params={"expires": "soon"}).status_code == 400
