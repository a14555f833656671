"""The MyTardis fake answers like the Tastypie API: paging, filters, auth modes, 201 + Location, uploads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from scibind.testing.mytardis import PUBLIC_ACCESS_FULL, PUBLIC_ACCESS_METADATA, FakeMyTardis

NS = "http://example.org/schemas/exp"
DS_NS = "http://example.org/schemas/ds"


@pytest.fixture
def fake() -> FakeMyTardis:
    f = FakeMyTardis()
    f.add_user("alice", "alice-pw", "alice-key", first_name="Alice")
    f.add_user("bob", "bob-pw", "bob-key")
    f.add_schema(NS, "experiment", parameters=[("energy", 1), "beamline"])
    f.add_schema(DS_NS, "dataset", parameters=["sample"])
    return f


@pytest.fixture
def anon(fake: FakeMyTardis) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport(), base_url=fake.base_url) as c:
        yield c


@pytest.fixture
def alice(fake: FakeMyTardis) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=fake.transport(),
        base_url=fake.base_url,
        headers={"Authorization": "ApiKey alice:alice-key"},
    ) as c:
        yield c


def _id(location: str) -> int:
    return int(location.rstrip("/").rsplit("/", 1)[1])


# --- authentication and anonymous access ----------------------------------------------------------------
def test_anonymous_sees_public_data_only_without_a_challenge(
    fake: FakeMyTardis, anon: httpx.Client
) -> None:
    public = fake.add_experiment("open", "alice", public_access=PUBLIC_ACCESS_METADATA)
    private = fake.add_experiment("closed", "alice")
    r = anon.get("/api/v1/experiment/")
    assert r.status_code == 200
    assert [o["id"] for o in r.json()["objects"]] == [public]
    assert "WWW-Authenticate" not in r.headers
    denied = anon.get(f"/api/v1/experiment/{private}/")
    assert denied.status_code == 401 and denied.content == b""
    assert anon.get(f"/api/v1/experiment/{public}/").json()["title"] == "open"


def test_basic_and_apikey_auth_and_bad_credentials(fake: FakeMyTardis) -> None:
    exp = fake.add_experiment("mine", "alice")
    with httpx.Client(transport=fake.transport(), base_url=fake.base_url) as c:
        assert c.get(f"/api/v1/experiment/{exp}/", auth=("alice", "alice-pw")).status_code == 200
        key = c.get(
            f"/api/v1/experiment/{exp}/", headers={"Authorization": "ApiKey alice:alice-key"}
        )
        assert key.json()["owner_ids"] == [1]
        for headers in ({"Authorization": "ApiKey alice:wrong"}, {"Authorization": "Bearer x"}):
            r = c.get("/api/v1/experiment/", headers=headers)
            assert r.status_code == 401 and r.content == b""
        assert c.get("/api/v1/experiment/", auth=("alice", "nope")).status_code == 401
        assert c.get(f"/api/v1/experiment/{exp}/", auth=("bob", "bob-pw")).status_code == 401


def test_user_resource_hides_username_from_others_and_is_read_only(
    fake: FakeMyTardis, alice: httpx.Client
) -> None:
    me = alice.get("/api/v1/user/1/").json()
    assert me["username"] == "alice" and me["resource_uri"] == "/api/v1/user/1/"
    bob = alice.get("/api/v1/user/2/").json()
    assert "username" not in bob
    r = alice.post("/api/v1/user/", json={"username": "x"})
    assert r.status_code == 405 and r.headers["Allow"] == "GET"


# --- lists: paging, filters, ordering ---------------------------------------------------------------------
def test_pagination_meta_and_next_links(fake: FakeMyTardis, alice: httpx.Client) -> None:
    for i in range(45):
        fake.add_experiment(f"exp {i:02d}", "alice")
    first = alice.get("/api/v1/experiment/", params={"title": "exp 07"}).json()
    assert first["meta"]["total_count"] == 1
    page = alice.get("/api/v1/experiment/").json()
    assert page["meta"] == {
        "limit": 20,
        "next": "/api/v1/experiment/?limit=20&offset=20",
        "offset": 0,
        "previous": None,
        "total_count": 45,
    }
    seen: list[int] = []
    url: str | None = "/api/v1/experiment/?limit=20"
    while url:
        body = alice.get(url).json()
        seen += [o["id"] for o in body["objects"]]
        url = body["meta"]["next"]
    assert seen == list(range(1, 46))
    last = alice.get("/api/v1/experiment/", params={"limit": 20, "offset": 40}).json()["meta"]
    assert last["next"] is None and last["previous"] == "/api/v1/experiment/?limit=20&offset=20"
    assert alice.get("/api/v1/experiment/", params={"limit": 0}).json()["meta"]["limit"] == 1000
    bad = alice.get("/api/v1/experiment/", params={"limit": "x"})
    assert bad.status_code == 400 and "Invalid limit" in bad.json()["error"]


def test_filters_and_ordering(fake: FakeMyTardis, alice: httpx.Client) -> None:
    e1 = fake.add_experiment("beta", "alice")
    e2 = fake.add_experiment("alpha", "alice")
    d1 = fake.add_dataset("raw", [e1])
    fake.add_dataset("processed", [e2])
    fake.add_datafile(d1, "a.txt", b"a")
    fake.add_datafile(d1, "b.txt", b"b", directory="sub/dir")
    titles = [
        o["title"]
        for o in alice.get("/api/v1/experiment/", params={"order_by": "-title"}).json()["objects"]
    ]
    assert titles == ["beta", "alpha"]
    ds = alice.get("/api/v1/dataset/", params={"experiments__id": e1}).json()["objects"]
    assert [d["description"] for d in ds] == ["raw"]
    assert ds[0]["experiments"] == [f"/api/v1/experiment/{e1}/"]
    files = alice.get(
        "/api/v1/dataset_file/", params={"dataset__id": d1, "filename": "b.txt"}
    ).json()
    assert [f["directory"] for f in files["objects"]] == ["sub/dir"]
    assert (
        alice.get("/api/v1/dataset_file/", params={"directory__startswith": "sub"}).json()["meta"][
            "total_count"
        ]
        == 1
    )
    names = alice.get("/api/v1/parametername/", params={"schema__namespace": NS}).json()["objects"]
    assert {n["name"] for n in names} == {"energy", "beamline"}
    assert (
        alice.get("/api/v1/schema/", params={"namespace": DS_NS}).json()["objects"][0]["type"] == 2
    )
    not_allowed = alice.get("/api/v1/experiment/", params={"description": "x"})
    assert not_allowed.status_code == 400
    assert not_allowed.json() == {"error": "The 'description' field does not allow filtering."}
    bad_order = alice.get("/api/v1/dataset/", params={"order_by": "nothing"})
    assert bad_order.json() == {"error": "No matching 'nothing' field for ordering on."}
    in_dataset = alice.get(f"/api/v1/dataset/{d1}/files/").json()
    assert in_dataset["meta"]["total_count"] == 2


# --- creating -------------------------------------------------------------------------------------------
def test_create_experiment_with_inline_parameter_sets(
    fake: FakeMyTardis, alice: httpx.Client
) -> None:
    r = alice.post(
        "/api/v1/experiment/",
        json={
            "title": "new",
            "description": "d",
            "parameter_sets": [
                {
                    "schema": NS,
                    "parameters": [
                        {"name": "energy", "value": "12.5"},
                        {"name": "beamline", "value": "MX1"},
                    ],
                }
            ],
        },
    )
    assert r.status_code == 201
    location = r.headers["Location"]
    assert location == f"/api/v1/experiment/{r.json()['id']}/"
    got = alice.get(location).json()
    params = {
        fake.parameter_names[_id(p["name"])]["name"]: p
        for p in got["parameter_sets"][0]["parameters"]
    }
    assert params["energy"]["numerical_value"] == 12.5
    assert params["beamline"]["string_value"] == "MX1"
    assert got["parameter_sets"][0]["schema"]["namespace"] == NS
    sets = alice.get("/api/v1/experimentparameterset/", params={"experiment__id": got["id"]}).json()
    assert sets["meta"]["total_count"] == 1
    missing = alice.post("/api/v1/experiment/", json={"description": "no title"})
    assert missing.status_code == 400
    assert (
        missing.json()["error"]
        == "The 'title' field has no data and doesn't allow a default or null value."
    )


def test_unknown_schema_gives_tastypie_error_bodies(
    fake: FakeMyTardis, alice: httpx.Client
) -> None:
    body = {"title": "x", "parameter_sets": [{"schema": "http://nope", "parameters": []}]}
    r = alice.post("/api/v1/experiment/", json=body)
    assert r.status_code == 404
    assert r.json() == {
        "error_message": "Sorry, this request could not be processed. Please try again later."
    }
    fake.debug = True
    detailed = alice.post("/api/v1/experiment/", json=body).json()
    assert detailed["error_message"] == "Schema matching query does not exist."
    assert "DoesNotExist" in detailed["traceback"]
    assert alice.get("/api/v1/experiment/999/").status_code == 404


def test_parameter_set_post_answers_201_without_body(
    fake: FakeMyTardis, alice: httpx.Client
) -> None:
    exp = fake.add_experiment("e", "alice")
    ds = fake.add_dataset("d", [exp])
    r = alice.post(
        "/api/v1/datasetparameterset/",
        json={
            "dataset": f"/api/v1/dataset/{ds}/",
            "schema": DS_NS,
            "parameters": [{"name": "sample", "value": "S1"}],
        },
    )
    assert r.status_code == 201 and r.content == b""
    assert r.headers["Location"].startswith("/api/v1/datasetparameterset/")
    assert (
        alice.get(f"/api/v1/dataset/{ds}/").json()["parameter_sets"][0]["parameters"][0][
            "string_value"
        ]
        == "S1"
    )


def test_dataset_needs_write_access_to_every_experiment(
    fake: FakeMyTardis, alice: httpx.Client
) -> None:
    mine = fake.add_experiment("mine", "alice")
    theirs = fake.add_experiment("theirs", "bob")
    ok = alice.post(
        "/api/v1/dataset/",
        json={"description": "d", "experiments": [f"/api/v1/experiment/{mine}/"]},
    )
    assert ok.status_code == 201 and ok.json()["experiments"] == [f"/api/v1/experiment/{mine}/"]
    denied = alice.post(
        "/api/v1/dataset/",
        json={
            "description": "d",
            "experiments": [f"/api/v1/experiment/{mine}/", f"/api/v1/experiment/{theirs}/"],
        },
    )
    assert denied.status_code == 401
    fake.grant(theirs, user="alice", write=True)
    again = alice.post(
        "/api/v1/dataset/",
        json={"description": "d", "experiments": [f"/api/v1/experiment/{theirs}/"]},
    )
    assert again.status_code == 201


def test_update_and_delete(fake: FakeMyTardis, alice: httpx.Client) -> None:
    exp = fake.add_experiment("old", "alice")
    ds = fake.add_dataset("d", [exp])
    r = alice.patch(f"/api/v1/experiment/{exp}/", json={"title": "new"})
    assert r.status_code == 202 and r.json()["title"] == "new"
    assert alice.delete(f"/api/v1/dataset/{ds}/").status_code == 401
    assert alice.delete(f"/api/v1/experiment/{exp}/").status_code == 204
    assert alice.get(f"/api/v1/experiment/{exp}/").status_code == 404


# --- datafiles --------------------------------------------------------------------------------------------
def _dataset(fake: FakeMyTardis) -> str:
    exp = fake.add_experiment("e", "alice")
    return f"/api/v1/dataset/{fake.add_dataset('raw data', [exp])}/"


def test_multipart_upload_stores_bytes_and_checks_md5(
    fake: FakeMyTardis, alice: httpx.Client
) -> None:
    ds = _dataset(fake)
    data = b"hello mytardis\n" * 100
    meta = {
        "dataset": ds,
        "filename": "h.txt",
        "size": len(data),
        "md5sum": hashlib.md5(data).hexdigest(),
        "mimetype": "text/plain",
    }
    r = alice.post(
        "/api/v1/dataset_file/",
        data={"json_data": json.dumps(meta)},
        files={"attached_file": ("h.txt", data)},
    )
    assert r.status_code == 201 and r.content == b""
    fid = _id(r.headers["Location"])
    record = alice.get(r.headers["Location"]).json()
    assert (
        record["replicas"][0]["verified"] is True and record["replicas"][0]["location"] == "default"
    )
    dl = alice.get(f"/api/v1/dataset_file/{fid}/download/")
    assert dl.status_code == 200 and dl.content == data
    assert dl.headers["Content-Disposition"] == 'attachment; filename="h.txt"'
    assert hashlib.md5(dl.content).hexdigest() == record["md5sum"]
    # a wrong checksum leaves the replica unverified, so there is nothing to download
    bad = dict(meta, filename="bad.txt", md5sum="0" * 32)
    r2 = alice.post(
        "/api/v1/dataset_file/",
        data={"json_data": json.dumps(bad)},
        files={"attached_file": ("bad.txt", data)},
    )
    assert alice.get(r2.headers["Location"]).json()["replicas"][0]["verified"] is False
    assert alice.get(r2.headers["Location"] + "download/").status_code == 404
    dup = alice.post(
        "/api/v1/dataset_file/",
        data={"json_data": json.dumps(meta)},
        files={"attached_file": ("h.txt", data)},
    )
    assert dup.status_code == 409


def test_multipart_parts_in_any_order_and_delimited_by_crlf(
    fake: FakeMyTardis, alice: httpx.Client
) -> None:
    ds = _dataset(fake)
    boundary = "b0und"
    data = b"x--b0und is not a delimiter here\r\n-- b0und neither\r\n"

    def body(first: tuple[str, bytes], second: tuple[str, bytes]) -> bytes:
        parts = b""
        for head, payload in (first, second):
            parts += b"--b0und\r\n" + head.encode() + b"\r\n\r\n" + payload + b"\r\n"
        return parts + b"--b0und--\r\n"

    def post(name: str, md5: str, *, file_first: bool) -> httpx.Response:
        meta = {"dataset": ds, "filename": name, "size": len(data), "md5sum": md5}
        file_part = (
            f'Content-Disposition: form-data; name="attached_file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream",
            data,
        )
        json_part = ('Content-Disposition: form-data; name="json_data"', json.dumps(meta).encode())
        content = body(file_part, json_part) if file_first else body(json_part, file_part)
        return alice.post(
            "/api/v1/dataset_file/",
            content=content,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    good = hashlib.md5(data).hexdigest()
    for name, file_first in (("first.bin", True), ("last.bin", False)):
        r = post(name, good, file_first=file_first)
        assert r.status_code == 201, r.text
        assert fake.file_bytes(_id(r.headers["Location"])) == data
    # the md5 in json_data is checked against the bytes received, wherever json_data is
    r = post("wrong.bin", "0" * 32, file_first=True)
    record = alice.get(r.headers["Location"]).json()
    assert record["replicas"][0]["verified"] is False
    assert fake.file_bytes(_id(r.headers["Location"])) is None
    # no json_data part at all: Tastypie's KeyError
    r = alice.post(
        "/api/v1/dataset_file/",
        content=body(
            ('Content-Disposition: form-data; name="attached_file"; filename="x"', data),
            ('Content-Disposition: form-data; name="other"', b"1"),
        ),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 500


def test_staging_registration_then_verify(fake: FakeMyTardis, alice: httpx.Client) -> None:
    ds = _dataset(fake)
    data = b"staged bytes"
    r = alice.post(
        "/api/v1/dataset_file/",
        json={
            "dataset": ds,
            "filename": "s.bin",
            "size": len(data),
            "md5sum": hashlib.md5(data).hexdigest(),
        },
    )
    assert r.status_code == 201
    staging_path = r.text
    assert staging_path.startswith("/srv/mytardis/staging/") and staging_path.endswith("/s.bin")
    loc = r.headers["Location"]
    assert alice.get(loc + "download/").status_code == 404
    fake.write_staged_file(staging_path, data)
    assert alice.get(loc + "verify/").status_code == 200
    assert alice.get(loc).json()["replicas"][0]["verified"] is True
    assert alice.get(loc + "download/").content == data


def test_shared_storage_registration_with_replicas(fake: FakeMyTardis, alice: httpx.Client) -> None:
    ds = _dataset(fake)
    fake.add_storage_box("instrument-share", "/mnt/share")
    data = b"on the share"
    fake.put_shared_file("instrument-share", "run1/x.dat", data)
    r = alice.post(
        "/api/v1/dataset_file/",
        json={
            "dataset": ds,
            "filename": "x.dat",
            "size": len(data),
            "md5sum": hashlib.md5(data).hexdigest(),
            "replicas": [{"url": "run1/x.dat", "location": "instrument-share", "protocol": "file"}],
        },
    )
    assert r.status_code == 201 and r.content == b""
    rep = alice.get(r.headers["Location"]).json()["replicas"][0]
    assert rep == {**rep, "uri": "run1/x.dat", "location": "instrument-share", "verified": True}
    listed = alice.get("/api/v1/replica/", params={"verified": "true"}).json()["objects"]
    assert [x["id"] for x in listed] == [rep["id"]]
    missing = alice.post(
        "/api/v1/dataset_file/",
        json={
            "dataset": ds,
            "filename": "y.dat",
            "size": 1,
            "md5sum": "0" * 32,
            "replicas": [{"url": "run1/y.dat", "location": "instrument-share", "protocol": "file"}],
        },
    )
    assert alice.get(missing.headers["Location"]).json()["replicas"][0]["verified"] is False


def test_download_needs_download_access(fake: FakeMyTardis, anon: httpx.Client) -> None:
    metadata_only = fake.add_experiment("m", "alice", public_access=PUBLIC_ACCESS_METADATA)
    full = fake.add_experiment("f", "alice", public_access=PUBLIC_ACCESS_FULL)
    f1 = fake.add_datafile(fake.add_dataset("d1", [metadata_only]), "a", b"a")
    f2 = fake.add_datafile(fake.add_dataset("d2", [full]), "b", b"b")
    assert anon.get(f"/api/v1/dataset_file/{f1}/").status_code == 200
    assert anon.get(f"/api/v1/dataset_file/{f1}/download/").status_code == 403
    assert anon.get(f"/api/v1/dataset_file/{f2}/download/").content == b"b"


def test_storage_boxes_are_for_authenticated_users(
    fake: FakeMyTardis, anon: httpx.Client, alice: httpx.Client
) -> None:
    assert anon.get("/api/v1/storagebox/").json()["objects"] == []
    boxes = alice.get("/api/v1/storagebox/").json()["objects"]
    staging = next(b for b in boxes if b["name"] == "staging")
    assert staging["options"][0]["value"] == "/srv/mytardis/staging"
    assert staging["attributes"][0] == {
        **staging["attributes"][0],
        "key": "type",
        "value": "receiving",
    }


# --- the three ways to use the fake --------------------------------------------------------------------
def test_respx_mock_routes_plain_httpx(fake: FakeMyTardis) -> None:
    fake.add_experiment("public", "alice", public_access=PUBLIC_ACCESS_METADATA)
    with fake.mock():
        r = httpx.get(fake.url("/api/v1/experiment/"))
    assert r.json()["meta"]["total_count"] == 1


def test_served_over_real_http(fake: FakeMyTardis) -> None:
    exp = fake.add_experiment("served", "alice")
    with fake.serve() as base, httpx.Client(base_url=base, auth=("alice", "alice-pw")) as client:
        ds = client.post(
            "/api/v1/dataset/",
            json={"description": "d", "experiments": [f"/api/v1/experiment/{exp}/"]},
        )
        assert ds.status_code == 201
        payload = bytes(range(256)) * 64
        meta = {
            "dataset": ds.headers["Location"],
            "filename": "bin.dat",
            "size": len(payload),
            "md5sum": hashlib.md5(payload).hexdigest(),
        }
        up = client.post(
            "/api/v1/dataset_file/",
            data={"json_data": json.dumps(meta)},
            files={"attached_file": ("bin.dat", payload)},
        )
        assert up.status_code == 201
        assert client.get(up.headers["Location"] + "download/").content == payload


# --- the generated client against the fake ---------------------------------------------------------------
@pytest.mark.slow
def test_generated_client_round_trip(fake: FakeMyTardis, tmp_path: Any, repo_root: Any) -> None:
    import importlib
    import io
    import subprocess
    import sys

    pytest.importorskip("openapi_python_client")
    out = tmp_path / "mytardis_client"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(repo_root / "specs/mytardis/openapi.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(out),
            "--overwrite",
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        client_mod = importlib.import_module("mytardis_client")
        create_exp = importlib.import_module("mytardis_client.api.experiments.create_experiment")
        list_files = importlib.import_module("mytardis_client.api.datafiles.list_datafiles")
        create_file = importlib.import_module("mytardis_client.api.datafiles.create_datafile")
        models = importlib.import_module("mytardis_client.models")
        types = importlib.import_module("mytardis_client.types")
        client = client_mod.Client(
            base_url=fake.base_url,
            headers={"Authorization": "ApiKey alice:alice-key"},
            httpx_args={"transport": fake.transport()},
        )
        exp = create_exp.sync_detailed(
            client=client,
            body=models.ExperimentWrite(
                title="generated",
                parameter_sets=[
                    models.ParameterSetInput(
                        schema=NS, parameters=[models.ParameterInput(name="energy", value="7")]
                    )
                ],
            ),
        )
        assert exp.status_code == 201 and exp.parsed.title == "generated"
        ds = fake.add_dataset("d", [exp.parsed.id])
        data = b"from the generated client"
        meta = {
            "dataset": f"/api/v1/dataset/{ds}/",
            "filename": "g.txt",
            "size": len(data),
            "md5sum": hashlib.md5(data).hexdigest(),
        }
        up = create_file.sync_detailed(
            client=client,
            body=models.DataFileUpload(
                json_data=json.dumps(meta),
                attached_file=types.File(payload=io.BytesIO(data), file_name="g.txt"),
            ),
        )
        assert up.status_code == 201 and up.headers["Location"].startswith("/api/v1/dataset_file/")
        page = list_files.sync(client=client, dataset_id=ds)
        assert page.meta.total_count == 1 and page.objects[0].replicas[0].verified is True
        assert fake.file_bytes(page.objects[0].id) == data
    finally:
        sys.path.remove(str(tmp_path))
        for name in [
            m for m in sys.modules if m == "mytardis_client" or m.startswith("mytardis_client.")
        ]:
            del sys.modules[name]
