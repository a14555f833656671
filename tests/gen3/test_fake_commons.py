"""FakeGen3Commons behaves like a Gen3 data commons (Fence, indexd, sheepdog, peregrine, S3 storage)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from scibind.testing.gen3 import FakeGen3Commons

PROGRAM, PROJECT = "DEV", "test"
SUBMISSION = f"/api/v0/submission/{PROGRAM}/{PROJECT}"


@pytest.fixture
def fake() -> FakeGen3Commons:
    fake = FakeGen3Commons()
    fake.create_program(PROGRAM)
    fake.create_project(PROGRAM, PROJECT)
    return fake


@pytest.fixture
def client(fake: FakeGen3Commons) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport(), base_url=fake.base_url) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def exchange(client: httpx.Client, credentials: dict[str, str]) -> str:
    response = client.post("/user/credentials/cdis/access_token", json=credentials)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def seed_graph(client: httpx.Client, token: str) -> None:
    docs = [
        {"type": "subject", "submitter_id": "subject-1", "projects": {"code": PROJECT}, "sex": "Female"},
        {"type": "subject", "submitter_id": "subject-2", "projects": {"code": PROJECT}, "sex": "Male"},
        {"type": "sample", "submitter_id": "sample-1", "subjects": {"submitter_id": "subject-1"}, "sample_type": "Blood"},
        {"type": "sample", "submitter_id": "sample-2", "subjects": {"submitter_id": "subject-1"}, "sample_type": "Tissue"},
        {"type": "sample", "submitter_id": "sample-3", "subjects": {"submitter_id": "subject-2"}, "sample_type": "Blood"},
    ]  # fmt: skip
    response = client.put(SUBMISSION, json=docs, headers=bearer(token))
    assert response.status_code == 200, response.text


# -- Fence: API keys and access tokens ------------------------------------------------------------------


def test_api_key_exchange_mints_rs256_access_tokens_verifiable_with_jwks(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    fake.access_token_ttl = 300
    credentials = fake.new_api_key(scopes=["openid", "user", "data"])
    api_claims = jwt.decode(credentials["api_key"], options={"verify_signature": False})
    assert api_claims["pur"] == "api_key"
    assert api_claims["iss"] == "https://commons.fake.test/user" == fake.fence_url
    assert api_claims["jti"] == credentials["key_id"]
    assert {"iss", "aud", "exp", "azp", "sub", "iat", "scope"} <= api_claims.keys()

    token = exchange(client, credentials)
    jwks = client.get("/user/.well-known/jwks").json()
    key = jwt.PyJWK(jwks["keys"][0])
    assert jwt.get_unverified_header(token)["kid"] == jwks["keys"][0]["kid"]
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=fake.fence_url)
    assert claims["pur"] == "access"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["context"]["user"]["name"] == fake.user.username
    assert set(claims["scope"]) == {"openid", "user", "data"}
    assert fake.tokens_minted == 1
    exchange(client, credentials)
    assert fake.tokens_minted == 2

    pem_pairs = client.get("/user/jwt/keys").json()["keys"]
    assert pem_pairs[0][0] == jwks["keys"][0]["kid"]
    assert pem_pairs[0][1].startswith("-----BEGIN PUBLIC KEY-----")
    oidc = client.get("/user/.well-known/openid-configuration").json()
    assert oidc["jwks_uri"] == f"{fake.fence_url}/.well-known/jwks"
    assert oidc["token_endpoint"] == f"{fake.fence_url}/oauth2/token"


def test_exchange_rejects_bad_keys_and_bodies(fake: FakeGen3Commons, client: httpx.Client) -> None:
    assert client.post("/user/credentials/cdis/access_token", json={}).status_code == 400
    forged = fake.new_api_key()["api_key"][:-4] + "AAAA"
    response = client.post("/user/credentials/api/access_token", json={"api_key": forged})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    expired = fake.new_api_key(ttl=10)
    fake.advance_time(11)
    assert client.post("/user/credentials/cdis/access_token", json=expired).status_code == 401


def test_expired_access_token_is_refused_with_401_by_every_service(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    fake.access_token_ttl = 60
    token = exchange(client, fake.new_api_key())
    headers = bearer(token)
    assert client.get("/user/user", headers=headers).status_code == 200
    fake.advance_time(61)
    user = client.get("/user/user", headers=headers)
    assert user.status_code == 401 and "expired" in user.text
    sheepdog = client.get("/api/v0/submission/", headers=headers)
    assert sheepdog.status_code == 401 and "expired" in sheepdog.json()["message"]
    peregrine = client.post(
        "/api/v0/submission/graphql", json={"query": "{ subject { id } }"}, headers=headers
    )
    assert peregrine.status_code == 401
    indexd = client.post("/index/index/", json={}, headers=headers)
    assert indexd.status_code == 401 and "expired" in indexd.json()["error"]
    download = client.post("/user/data/upload", json={"file_name": "x"}, headers=headers)
    assert download.status_code == 401
    # a fresh token works again
    assert (
        client.get("/user/user", headers=bearer(exchange(client, fake.new_api_key()))).status_code
        == 200
    )


def test_expire_access_tokens_invalidates_issued_tokens_only(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    credentials = fake.new_api_key()
    old = exchange(client, credentials)
    fake.expire_access_tokens()
    assert client.get("/user/user", headers=bearer(old)).status_code == 401
    assert (
        client.get("/user/user", headers=bearer(exchange(client, credentials))).status_code == 200
    )


def test_api_key_management(fake: FakeGen3Commons, client: httpx.Client) -> None:
    login = bearer(fake.mint_access_token())
    created = client.post("/user/credentials/api/", json={"scope": ["user", "data"]}, headers=login)
    assert created.status_code == 200
    key = created.json()
    assert set(key) == {"api_key", "key_id"}
    listed = client.get("/user/credentials/api/", headers=login).json()["jtis"]
    assert key["key_id"] in [k["jti"] for k in listed]
    # a token obtained from an API key has no `credentials` scope and cannot create keys
    from_key = bearer(exchange(client, key))
    assert client.post("/user/credentials/api/", json={}, headers=from_key).status_code == 403
    assert client.delete(f"/user/credentials/api/{key['key_id']}", headers=login).status_code == 204
    assert client.post("/user/credentials/cdis/access_token", json=key).status_code == 401
    assert client.delete(f"/user/credentials/api/{key['key_id']}", headers=login).status_code == 404


def test_write_credentials_produces_a_credentials_json(
    fake: FakeGen3Commons, tmp_path: Path
) -> None:
    path = tmp_path / "credentials.json"
    written = fake.write_credentials(path)
    assert json.loads(path.read_text()) == written
    assert set(written) == {"api_key", "key_id"}


def test_client_credentials_and_refresh_token_grants(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    fake.register_client("robot", "s3cret", scopes=["openid", "user", "data"])
    form = client.post(
        "/user/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "openid data"},
        auth=("robot", "s3cret"),
    )
    assert form.status_code == 200, form.text
    body = form.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == fake.access_token_ttl
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["azp"] == "robot"
    # the Gen3 SDK sends grant and scope in the query string
    query = client.post(
        "/user/oauth2/token?grant_type=client_credentials&scope=openid user",
        auth=("robot", "s3cret"),
    )
    assert query.status_code == 200
    bad = client.post(
        "/user/oauth2/token", data={"grant_type": "client_credentials"}, auth=("robot", "x")
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    unknown = client.post(
        "/user/oauth2/token", data={"grant_type": "password"}, auth=("robot", "s3cret")
    )
    assert unknown.status_code == 400 and unknown.json()["error"] == "unsupported_grant_type"

    refresh = fake.new_refresh_token(client_id="robot")
    refreshed = client.post(
        "/user/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "robot",
            "client_secret": "s3cret",
        },
    )
    assert refreshed.status_code == 200
    assert {"access_token", "id_token", "expires_in"} <= refreshed.json().keys()
    user = client.get("/user/user", headers=bearer(refreshed.json()["access_token"]))
    assert user.json()["username"] == fake.user.username


def test_user_info(fake: FakeGen3Commons, client: httpx.Client) -> None:
    restricted = fake.add_user(
        "reader", authz={"/programs/DEV": [{"method": "read", "service": "*"}]}
    )
    info = client.get("/user/user", headers=bearer(fake.mint_access_token(restricted))).json()
    assert info["username"] == "reader" and info["sub"] == str(restricted.id)
    assert info["authz"] == {"/programs/DEV": [{"method": "read", "service": "*"}]}
    assert client.get("/user/user").status_code == 401


# -- indexd -------------------------------------------------------------------------------------------------


def make_record(client: httpx.Client, n: int, **extra: object) -> dict[str, str]:
    body = {
        "form": "object",
        "size": n,
        "hashes": {"md5": hashlib.md5(str(n).encode()).hexdigest()},
        "urls": [f"s3://bucket/{n}"],
        "file_name": f"file-{n}.txt",
        "authz": ["/programs/DEV"],
        **extra,
    }
    response = client.post(
        "/index/index/", json=body, auth=("indexd_client", "fake-indexd-password")
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_indexd_keyset_pagination_visits_every_record_once_in_did_order(
    client: httpx.Client,
) -> None:
    created = {make_record(client, n)["did"] for n in range(25)}
    seen: list[str] = []
    start = None
    pages = 0
    while True:
        params = {"limit": 10, **({"start": start} if start else {})}
        page = client.get("/index/index/", params=params).json()
        pages += 1
        records = page["records"]
        seen += [r["did"] for r in records]
        if len(records) < 10:
            break
        start = records[-1]["did"]
    assert pages == 3
    assert seen == sorted(created)
    assert client.get("/index/index/", params={"limit": 5000}).status_code == 400
    assert client.get("/index/index/", params={"limit": "ten"}).json() == {
        "error": "limit must be an integer"
    }


def test_indexd_filters(client: httpx.Client) -> None:
    make_record(client, 1, version="v1")
    target = make_record(
        client, 2, acl=["phs1"], authz=["/programs/DEV", "/programs/DEV/projects/test"]
    )
    md5 = hashlib.md5(b"2").hexdigest()

    def dids(**params: object) -> list[str]:
        return [r["did"] for r in client.get("/index/index/", params=params).json()["records"]]

    assert dids(hash=f"md5:{md5}") == [target["did"]]
    assert dids(size=2) == [target["did"]]
    assert dids(url="s3://bucket/2") == [target["did"]]
    assert dids(acl="phs1") == [target["did"]]
    assert dids(authz="/programs/DEV,/programs/DEV/projects/test") == [target["did"]]
    assert dids(file_name="file-2.txt") == [target["did"]]
    assert len(dids(version="v1")) == 1
    assert dids(size=3) == []


def test_indexd_revisions_updates_versions_and_deletion(client: httpx.Client) -> None:
    auth = ("indexd_client", "fake-indexd-password")
    ref = make_record(client, 7)
    did, rev = ref["did"], ref["rev"]
    assert "/" in did  # GUIDs carry the commons prefix
    updated = client.put(
        f"/index/index/{did}", params={"rev": rev}, json={"file_name": "renamed"}, auth=auth
    )
    assert updated.status_code == 200 and updated.json()["rev"] != rev
    stale = client.put(f"/index/index/{did}", params={"rev": rev}, json={"version": "2"}, auth=auth)
    assert stale.status_code == 409 and stale.json() == {"error": "revision mismatch"}
    immutable = client.put(
        f"/index/index/{did}", params={"rev": updated.json()["rev"]}, json={"size": 1}, auth=auth
    )
    assert immutable.status_code == 400
    unauthenticated = client.put(
        f"/index/index/{did}", params={"rev": updated.json()["rev"]}, json={}
    )
    assert unauthenticated.status_code == 401
    assert client.get(f"/index/index/{did}").json()["file_name"] == "renamed"
    assert client.get(f"/index/{did}").json()["did"] == did  # global resolution

    new = client.post(
        f"/index/index/{did}",
        json={"form": "object", "size": 8, "hashes": {"md5": "1" * 32}, "urls": []},
        auth=auth,
    ).json()
    versions = client.get(f"/index/index/{did}/versions").json()
    assert [v["did"] for v in versions.values()] == [did, new["did"]]
    assert client.get(f"/index/index/{did}/latest").json()["did"] == new["did"]
    bulk = client.post("/index/bulk/documents", json=[did, new["did"], "missing"]).json()
    assert {r["did"] for r in bulk} == {did, new["did"]}

    current = client.get(f"/index/index/{did}").json()["rev"]
    assert (
        client.delete(f"/index/index/{did}", params={"rev": "00000000"}, auth=auth).status_code
        == 409
    )
    assert (
        client.delete(f"/index/index/{did}", params={"rev": current}, auth=auth).status_code == 200
    )
    missing = client.get(f"/index/index/{did}")
    assert missing.status_code == 404 and missing.json() == {"error": "no record found"}


# -- sheepdog ---------------------------------------------------------------------------------------------------


def test_submission_success_reports_each_entity(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    token = fake.mint_access_token()
    docs = [
        {"type": "subject", "submitter_id": "s1", "projects": {"code": PROJECT}},
        {
            "type": "sample",
            "submitter_id": "sa1",
            "subjects": {"submitter_id": "s1"},
            "sample_type": "Blood",
        },
    ]
    response = client.post(SUBMISSION, json=docs, headers=bearer(token))
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["code"] == 201
    assert body["created_entity_count"] == 2 and body["updated_entity_count"] == 0
    assert body["entity_error_count"] == 0 and body["transactional_errors"] == []
    assert isinstance(body["transaction_id"], int)
    first = body["entities"][0]
    assert first["valid"] is True and first["action"] == "create" and first["type"] == "subject"
    assert first["unique_keys"] == [{"project_id": "DEV-test", "submitter_id": "s1"}]
    assert first["errors"] == [] and first["warnings"] == []
    # POST again: entities exist already
    again = client.post(SUBMISSION, json=docs[:1], headers=bearer(token)).json()
    assert again["entities"][0]["errors"][0]["type"] == "NOT_UNIQUE"
    # PUT updates
    update = client.put(SUBMISSION, json=[{**docs[0], "sex": "Male"}], headers=bearer(token))
    assert update.status_code == 200 and update.json()["updated_entity_count"] == 1


def test_submission_partial_failure_writes_nothing(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    token = fake.mint_access_token()
    docs = [
        {"type": "subject", "submitter_id": "ok", "projects": {"code": PROJECT}},
        {
            "type": "sample",
            "submitter_id": "bad",
            "sample_type": "Blod",
            "subjects": {"submitter_id": "ok"},
        },
        {"type": "sample", "submitter_id": "orphan", "subjects": {"submitter_id": "nobody"}},
        {"type": "nonsense", "submitter_id": "x"},
    ]
    response = client.put(SUBMISSION, json=docs, headers=bearer(token))
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["code"] == 400
    assert body["entity_error_count"] == 3
    assert body["created_entity_count"] == 0
    assert body["message"] == "Transaction aborted due to 3 invalid entities."
    valid, bad_enum, orphan, unknown = body["entities"]
    assert valid["valid"] is True and valid["errors"] == []
    assert (
        bad_enum["errors"][0]["keys"] == ["sample_type"]
        and bad_enum["errors"][0]["type"] == "INVALID_VALUE"
    )
    assert orphan["errors"][0]["type"] == "INVALID_LINK" and orphan["errors"][0]["keys"] == [
        "subjects"
    ]
    assert "No link destination found for subjects" in orphan["errors"][0]["message"]
    assert unknown["errors"][0]["type"] == "INVALID_TYPE"
    missing = client.put(
        SUBMISSION, json=[{"type": "sample", "submitter_id": "lonely"}], headers=bearer(token)
    )
    assert missing.json()["entities"][0]["errors"][0] == {
        "message": "'subjects' is a required property",
        "keys": ["subjects"],
        "type": "MISSING_PROPERTY",
    }
    assert fake.graph.nodes_of("subject") == []


def test_tsv_submission_and_dry_run(fake: FakeGen3Commons, client: httpx.Client) -> None:
    token = fake.mint_access_token()
    subjects = "type\tsubmitter_id\tprojects.code\tage_at_enrollment\nsubject\ts1\ttest\t42\nsubject\ts2\ttest\t\n"
    dry = client.put(f"{SUBMISSION}/_dry_run", content=subjects,
                     headers={**bearer(token), "Content-Type": "text/tab-separated-values"})  # fmt: skip
    assert dry.status_code == 200 and dry.json()["success"] is True
    assert fake.graph.nodes_of("subject") == []
    real = client.put(SUBMISSION, content=subjects,
                      headers={**bearer(token), "Content-Type": "text/tab-separated-values"})  # fmt: skip
    assert real.status_code == 200
    ages = {
        n.props["submitter_id"]: n.props.get("age_at_enrollment")
        for n in fake.graph.nodes_of("subject")
    }
    assert ages == {"s1": 42, "s2": None}


def test_data_file_submission_registers_index_record(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    token = fake.mint_access_token()
    seed_graph(client, token)
    reads = {
        "type": "submitted_unaligned_reads", "submitter_id": "reads-1", "samples": [{"submitter_id": "sample-1"}],
        "file_name": "r.fastq", "file_size": 5, "md5sum": hashlib.md5(b"hello").hexdigest(),
        "data_category": "Sequencing Reads", "data_format": "FASTQ", "data_type": "Unaligned Reads",
        "urls": "s3://fake-data-upload-bucket/r.fastq",
    }  # fmt: skip
    response = client.put(SUBMISSION, json=reads, headers=bearer(token))
    assert response.status_code == 200, response.text
    node = fake.graph.nodes_of("submitted_unaligned_reads")[0]
    record = client.get(f"/index/index/{node.props['object_id']}").json()
    assert record["hashes"]["md5"] == reads["md5sum"] and record["size"] == 5
    assert record["authz"] == ["/programs/DEV/projects/test"]
    assert node.props["file_state"] == "registered"
    wrong = {**reads, "submitter_id": "reads-2", "object_id": record["did"], "file_size": 6}
    mismatch = client.put(SUBMISSION, json=wrong, headers=bearer(token)).json()
    assert mismatch["entities"][0]["errors"][0]["keys"][0] == "object_id"


def test_export_json_and_tsv(fake: FakeGen3Commons, client: httpx.Client) -> None:
    token = fake.mint_access_token()
    seed_graph(client, token)
    samples = {n.props["submitter_id"]: n.id for n in fake.graph.nodes_of("sample")}
    by_ids = client.get(
        f"{SUBMISSION}/export",
        params={"ids": samples["sample-1"], "format": "json"},
        headers=bearer(token),
    )
    assert by_ids.status_code == 200 and by_ids.headers["content-type"] == "application/json"
    assert "filename=sample.json" in by_ids.headers["content-disposition"]
    [entity] = by_ids.json()
    assert (
        entity["submitter_id"] == "sample-1"
        and entity["subjects"][0]["submitter_id"] == "subject-1"
    )
    node_json = client.get(
        f"{SUBMISSION}/export/",
        params={"node_label": "sample", "format": "json"},
        headers=bearer(token),
    )
    assert sorted(e["submitter_id"] for e in node_json.json()["data"]) == [
        "sample-1",
        "sample-2",
        "sample-3",
    ]
    tsv = client.get(
        f"{SUBMISSION}/export/",
        params={"node_label": "sample", "format": "tsv"},
        headers=bearer(token),
    )
    header, *rows = tsv.text.strip().split("\n")
    columns = header.split("\t")
    assert columns[:4] == ["type", "id", "project_id", "submitter_id"]
    assert "subjects.submitter_id" in columns and len(rows) == 3
    both = client.get(f"{SUBMISSION}/export",
                      params={"ids": f"{samples['sample-1']},{fake.graph.nodes_of('subject')[0].id}", "format": "tsv"},
                      headers=bearer(token))  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(both.content), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["sample.tsv", "subject.tsv"]
    assert (
        client.get(
            f"{SUBMISSION}/export", params={"ids": "nope"}, headers=bearer(token)
        ).status_code
        == 404
    )


def test_delete_entities_requires_dependents_first(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    token = fake.mint_access_token()
    seed_graph(client, token)
    subject = next(
        n for n in fake.graph.nodes_of("subject") if n.props["submitter_id"] == "subject-2"
    )
    sample = next(n for n in fake.graph.nodes_of("sample") if n.props["submitter_id"] == "sample-3")
    blocked = client.delete(f"{SUBMISSION}/entities/{subject.id}", headers=bearer(token))
    assert blocked.status_code == 400 and blocked.json()["dependent_ids"] == sample.id
    done = client.delete(f"{SUBMISSION}/entities/{sample.id},{subject.id}", headers=bearer(token))
    assert done.status_code == 200 and done.json()["deleted_entity_count"] == 2
    gone = client.delete(f"{SUBMISSION}/entities/{sample.id}", headers=bearer(token)).json()
    assert gone["entities"][0]["errors"][0]["type"] == "NOT_FOUND"


def test_programs_projects_and_dictionary(fake: FakeGen3Commons, client: httpx.Client) -> None:
    token = bearer(fake.mint_access_token())
    assert client.get("/api/v0/submission/", headers=token).json() == {
        "links": ["/v0/submission/DEV"]
    }
    assert client.get("/api/v0/submission/DEV", headers=token).json() == {
        "links": ["/v0/submission/DEV/test"]
    }
    assert client.get("/api/v0/submission/NOPE", headers=token).status_code == 404
    everything = client.get("/api/v0/submission/_dictionary/_all").json()
    assert {
        "_definitions",
        "_terms",
        "_settings",
        "program",
        "project",
        "subject",
        "sample",
    } <= everything.keys()
    assert everything["sample"]["properties"]["subjects"] == {"$ref": "_definitions.yaml#/to_one"}
    assert client.get("/api/v0/submission/_dictionary/sample").json()["id"] == "sample"
    assert client.get("/api/v0/submission/_dictionary/nope").status_code == 404
    restricted = fake.add_user("outsider", authz={})
    denied = client.put(SUBMISSION, json=[], headers=bearer(fake.mint_access_token(restricted)))
    assert denied.status_code == 403 and "message" in denied.json()


# -- peregrine ----------------------------------------------------------------------------------------------------


def graphql(
    client: httpx.Client, token: str, query: str, variables: object = None
) -> httpx.Response:
    return client.post(
        "/api/v0/submission/graphql",
        json={"query": query, "variables": variables},
        headers=bearer(token),
    )


def test_graphql_queries(fake: FakeGen3Commons, client: httpx.Client) -> None:
    token = fake.mint_access_token()
    seed_graph(client, token)
    response = graphql(client, token, """
        query Samples($project: [String], $n: Int) {
          sample(first: $n, offset: 1, project_id: $project, order_by_asc: "submitter_id") {
            submitter_id
            kind: sample_type
            subjects { submitter_id }
          }
          blood: _sample_count(sample_type: "Blood")
          project(project_id: "DEV-test") { code project_id programs { name } }
          subject(submitter_id: "subject-1") { _samples_count samples(first: 0) { ...S } }
        }
        fragment S on sample { submitter_id }
    """, {"project": "DEV-test", "n": 2})  # fmt: skip
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["sample"] == [
        {"submitter_id": "sample-2", "kind": "Tissue", "subjects": [{"submitter_id": "subject-1"}]},
        {"submitter_id": "sample-3", "kind": "Blood", "subjects": [{"submitter_id": "subject-2"}]},
    ]
    assert data["blood"] == 2
    assert data["project"] == [
        {"code": "test", "project_id": "DEV-test", "programs": [{"name": "DEV"}]}
    ]
    assert data["subject"][0]["_samples_count"] == 2
    assert [s["submitter_id"] for s in data["subject"][0]["samples"]] == ["sample-1", "sample-2"]


def test_graphql_errors_come_back_as_a_list_of_messages(
    fake: FakeGen3Commons, client: httpx.Client
) -> None:
    token = fake.mint_access_token()
    unknown = graphql(client, token, "{ sample { nope } }")
    assert unknown.status_code == 400
    assert unknown.json() == {
        "data": None,
        "errors": ['Cannot query field "nope" on type "sample".'],
    }
    syntax = graphql(client, token, "{ sample { id }")
    assert syntax.json()["data"] is None and syntax.json()["errors"][0].startswith(
        "Syntax Error GraphQL (1:16)"
    )
    argument = graphql(client, token, '{ sample(first: "ten") { id } }').json()["errors"][0]
    assert argument.startswith('Argument "first" has invalid value "ten".')
    variable = graphql(
        client, token, "query ($p: String!) { sample(submitter_id: $p) { id } }"
    ).json()
    assert variable["errors"] == ['Variable "$p" of required type "String!" was not provided.']
    fake.graphql_error_status = 200
    assert graphql(client, token, "{ nope { id } }").status_code == 200


def test_graphql_only_shows_readable_projects(fake: FakeGen3Commons, client: httpx.Client) -> None:
    seed_graph(client, fake.mint_access_token())
    other = fake.add_user("other", authz={"/programs/ELSEWHERE": [{"method": "*", "service": "*"}]})
    data = graphql(
        client, fake.mint_access_token(other), "{ _sample_count program { name } }"
    ).json()["data"]
    assert data == {"_sample_count": 0, "program": [{"name": "DEV"}]}


# -- storage and presigned URLs ---------------------------------------------------------------------------------


def test_presigned_download_with_range_and_token_never_accepted_by_storage(
    fake: FakeGen3Commons,
) -> None:
    data = bytes(range(256)) * 10
    guid = fake.add_file(data, "blob.bin", authz=["/programs/DEV/projects/test"])
    token = fake.mint_access_token()
    with fake.mock(), httpx.Client() as client:
        signed = client.get(
            fake.url(f"/user/data/download/{guid}"),
            params={"protocol": "s3"},
            headers=bearer(token),
        )
        assert signed.status_code == 200
        url = signed.json()["url"]
        assert url.startswith("https://storage.fake.test/") and "X-Amz-Signature=" in url
        full = client.get(url)
        assert full.status_code == 200 and full.content == data
        assert full.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
        part = client.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        assert client.get(url, headers={"Range": "bytes=-10"}).content == data[-10:]
        assert client.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
        leaked = client.get(url, headers=bearer(token))
        assert leaked.status_code == 400 and b"<Code>InvalidArgument</Code>" in leaked.content
        tampered = client.get(url.replace("X-Amz-Expires=3600", "X-Amz-Expires=99999"))
        assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
        fake.advance_time(3601)
        expired = client.get(url)
        assert expired.status_code == 403 and b"Request has expired" in expired.content


def test_download_permissions(fake: FakeGen3Commons, client: httpx.Client) -> None:
    guid = fake.add_file(b"secret", authz=["/programs/DEV/projects/test"])
    public = fake.add_file(b"open", acl=["*"])
    outsider = fake.add_user(
        "outsider", authz={"/programs/OTHER": [{"method": "*", "service": "*"}]}
    )
    assert client.get(f"/user/data/download/{guid}").status_code == 401
    assert (
        client.get(
            f"/user/data/download/{guid}", headers=bearer(fake.mint_access_token(outsider))
        ).status_code
        == 403
    )
    assert client.get(f"/user/data/download/{public}").status_code == 200
    assert client.get("/user/data/download/dg.FAKE/missing").status_code == 404
    redirect = client.get(f"/user/data/download/{public}", params={"redirect": "true"})
    assert redirect.status_code == 302 and redirect.headers["location"].startswith(
        "https://storage.fake.test/"
    )


def test_single_upload_fills_the_index_record(fake: FakeGen3Commons) -> None:
    token = fake.mint_access_token()
    fake.index_on_upload = False
    with fake.mock(), httpx.Client(base_url=fake.base_url) as client:
        created = client.post(
            "/user/data/upload", json={"file_name": "notes.txt"}, headers=bearer(token)
        )
        assert created.status_code == 201
        guid, url = created.json()["guid"], created.json()["url"]
        blank = client.get(f"/index/index/{guid}").json()
        assert (
            blank["size"] is None
            and blank["hashes"] == {}
            and blank["uploader"] == fake.user.username
        )
        put = httpx.put(url, content=b"some notes")
        assert (
            put.status_code == 200
            and put.headers["etag"] == f'"{hashlib.md5(b"some notes").hexdigest()}"'
        )
        assert client.get(f"/index/index/{guid}").json()["size"] is None
        assert fake.run_indexing() == 1
        record = client.get(f"/index/index/{guid}").json()
        assert (
            record["size"] == 10
            and record["hashes"]["md5"] == hashlib.md5(b"some notes").hexdigest()
        )
        assert record["urls"] == [f"s3://{fake.upload_bucket}/{guid}/notes.txt"]
        bad_md5 = httpx.put(url, content=b"x", headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
        assert bad_md5.status_code == 400 and b"BadDigest" in bad_md5.content
        other = fake.add_user("other")
        assert (
            client.delete(
                f"/user/data/{guid}", headers=bearer(fake.mint_access_token(other))
            ).status_code
            == 403
        )
        assert client.delete(f"/user/data/{guid}", headers=bearer(token)).status_code == 204
        assert client.get(f"/index/index/{guid}").status_code == 404


def test_multipart_upload_etag_arithmetic_and_validation(fake: FakeGen3Commons) -> None:
    fake.storage.min_part_size = 1024
    token = fake.mint_access_token()
    data = bytes(i % 251 for i in range(2500))
    chunks = [data[:1024], data[1024:2048], data[2048:]]
    with fake.mock(), httpx.Client(base_url=fake.base_url, headers=bearer(token)) as client:
        init = client.post("/user/data/multipart/init", json={"file_name": "big.bin"})
        assert init.status_code == 201
        guid, upload_id = init.json()["guid"], init.json()["uploadId"]
        key = f"{guid}/big.bin"
        parts = []
        for number, chunk in enumerate(chunks, start=1):
            url = client.post("/user/data/multipart/upload",
                              json={"key": key, "uploadId": upload_id, "partNumber": number}).json()["presigned_url"]  # fmt: skip
            response = httpx.put(url, content=chunk)
            assert response.headers["etag"] == f'"{hashlib.md5(chunk).hexdigest()}"'
            parts.append({"PartNumber": number, "ETag": response.headers["etag"]})

        def complete(listed: list[dict[str, object]]) -> httpx.Response:
            return client.post(
                "/user/data/multipart/complete",
                json={"key": key, "uploadId": upload_id, "parts": listed},
            )

        wrong_etag = complete([{**parts[0], "ETag": '"' + "0" * 32 + '"'}, *parts[1:]])
        assert wrong_etag.status_code == 500 and "InvalidPart" in wrong_etag.json()["message"]
        assert "InvalidPartOrder" in complete([parts[1], parts[0], parts[2]]).json()["message"]
        assert (
            "EntityTooSmall"
            in complete([parts[2], {**parts[2], "PartNumber": 4}]).json()["message"]
        )
        done = complete(parts)
        assert done.status_code == 200 and done.json() == {"message": "OK"}
        stored = fake.storage.objects[(fake.upload_bucket, key)]
        expected = hashlib.md5(b"".join(hashlib.md5(c).digest() for c in chunks)).hexdigest()
        assert stored.etag == f'"{expected}-3"' and stored.data == data
        record = client.get(f"/index/index/{guid}").json()
        assert record["hashes"]["md5"] == hashlib.md5(data).hexdigest() and record["size"] == len(
            data
        )
        assert "NoSuchUpload" in complete(parts).json()["message"]


def test_loopback_server_serves_commons_and_storage_on_separate_ports(
    fake: FakeGen3Commons,
) -> None:
    token = fake.mint_access_token()
    with fake.serve() as base, httpx.Client(base_url=base, headers=bearer(token)) as client:
        assert base.startswith("http://127.0.0.1:")
        assert fake.fence_url == f"{base}/user"
        created = client.post("/user/data/upload", json={"file_name": "remote.txt"}).json()
        storage_origin = httpx.URL(created["url"])
        assert storage_origin.host == "127.0.0.1" and storage_origin.port != httpx.URL(base).port
        assert httpx.put(created["url"], content=b"over the wire").status_code == 200
        url = client.get(f"/user/data/download/{created['guid']}").json()["url"]
        assert httpx.get(url, headers={"Range": "bytes=5-7"}).content == b"the"
        credentials = fake.new_api_key()
        claims = jwt.decode(credentials["api_key"], options={"verify_signature": False})
        assert claims["iss"] == f"{base}/user"
    assert fake.base_url == "https://commons.fake.test"


def test_pytest_plugin_fixture_routes_httpx_to_a_fresh_fake(fake_gen3: FakeGen3Commons) -> None:
    credentials = fake_gen3.new_api_key()
    response = httpx.post(fake_gen3.url("/user/credentials/cdis/access_token"), json=credentials)
    assert response.status_code == 200 and fake_gen3.tokens_minted == 1
