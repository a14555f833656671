"""The Midas fake answers like the JSON web API: envelopes, error codes, tokens, tree ops, uploads."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from scibind.testing.midas import (
    MIDAS_INVALID_PARAMETER,
    MIDAS_INVALID_POLICY,
    MIDAS_INVALID_TOKEN,
    MIDAS_UPLOAD_FAILED,
    FakeMidas,
)

ALICE = "alice@example.org"
BOB = "bob@example.org"


@pytest.fixture
def fake() -> FakeMidas:
    f = FakeMidas()
    f.add_user(ALICE, "alice-key", admin=True, password="pw")
    f.add_user(BOB, "bob-key")
    return f


@pytest.fixture
def client(fake: FakeMidas) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport(), base_url=fake.base_url) as c:
        yield c


def call(client: httpx.Client, method: str, **params: Any) -> dict[str, Any]:
    """POST a method the way pydas does (parameters in the query string)."""
    r = client.post("/api/json", params={"method": method, **params})
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def ok(client: httpx.Client, method: str, **params: Any) -> Any:
    body = call(client, method, **params)
    assert body["stat"] == "ok", body
    assert body["code"] == "0" and body["message"] == ""
    return body["data"]


def login(client: httpx.Client, email: str = ALICE, key: str = "alice-key") -> str:
    token: str = ok(client, "midas.login", email=email, apikey=key, appname="Default")["token"]
    return token


# --- login, tokens and errors -----------------------------------------------------------------------------
def test_login_token_and_expiry(fake: FakeMidas, client: httpx.Client) -> None:
    token = login(client)
    assert len(token) == 40 and token.isalnum()
    assert login(client) == token  # a valid token is handed out again
    assert ok(client, "midas.user.folders", token=token)[0]["name"] in ("Public", "Private")
    fake.advance_time(101 * 60)
    expired = call(client, "midas.user.folders", token=token)
    assert expired == {"stat": "fail", "message": "Invalid token", "code": MIDAS_INVALID_TOKEN}
    assert login(client) != token


def test_errors_come_with_http_200_and_codes(client: httpx.Client) -> None:
    bad_key = call(client, "midas.login", email=ALICE, apikey="nope", appname="Default")
    assert bad_key["stat"] == "fail" and bad_key["code"] == MIDAS_INVALID_PARAMETER
    missing = call(client, "midas.login", email=ALICE)
    assert missing["message"] == "Parameter appname is not defined"
    unknown = call(client, "midas.no.such")
    assert unknown["code"] == MIDAS_INVALID_TOKEN and "does not exist" in unknown["message"]
    r = client.get("/api/json")
    assert r.status_code == 200 and r.text.startswith("Inconsistent request")


def test_info_version_and_path_form_with_form_body(client: httpx.Client) -> None:
    assert ok(client, "midas.version") == {"version": "3.4.2"}
    assert "tracker" in ok(client, "midas.info")["modules"]
    # what the generated client sends: /api/json/<name>?method=<name> with a form body
    r = client.post(
        "/api/json/midas.login",
        params={"method": "midas.login"},
        data={"email": BOB, "apikey": "bob-key", "appname": "Default"},
    )
    assert r.json()["stat"] == "ok" and len(r.json()["data"]["token"]) == 40
    assert ok(client, "midas.user.apikey.default", email=ALICE, password="pw") == {
        "apikey": "alice-key"
    }


def test_mfa_login(fake: FakeMidas, client: httpx.Client) -> None:
    fake.add_user("carol@example.org", "carol-key", otp="123456")
    first = ok(
        client, "midas.login", email="carol@example.org", apikey="carol-key", appname="Default"
    )
    assert set(first) == {"mfa_token_id"}
    wrong = call(client, "midas.mfa.otp.login", mfaTokenId=first["mfa_token_id"], otp="000000")
    assert wrong["code"] == -1 and wrong["message"] == "Incorrect OTP"
    again = ok(
        client, "midas.login", email="carol@example.org", apikey="carol-key", appname="Default"
    )
    token = ok(client, "midas.mfa.otp.login", mfaTokenId=again["mfa_token_id"], otp="123456")[
        "token"
    ]
    assert ok(client, "midas.user.folders", token=token)


# --- communities, folders, items, permissions ---------------------------------------------------------------
def test_tree_operations_and_permissions(fake: FakeMidas, client: httpx.Client) -> None:
    token = login(client)
    bob = login(client, BOB, "bob-key")
    comm = ok(client, "midas.community.create", token=token, name="Lab", privacy="Public")
    assert (
        call(client, "midas.community.create", token=bob, name="X")["code"] == MIDAS_INVALID_POLICY
    )
    children = ok(client, "midas.community.children", id=comm["community_id"])["folders"]
    assert [f["name"] for f in children] == ["Public"]  # anonymous sees only the public folder
    public_id = fake.folder_id("Lab/Public")
    private_id = fake.folder_id("Lab/Private")
    sub = ok(client, "midas.folder.create", token=token, name="run1", parentid=public_id)
    assert sub["privacy_status"] == "0" and sub["parent_id"] == str(public_id)
    dup = call(client, "midas.folder.create", token=token, name="run1", parentid=public_id)
    assert dup["code"] == MIDAS_INVALID_PARAMETER
    assert (
        ok(
            client,
            "midas.folder.create",
            token=token,
            name="run1",
            parentid=public_id,
            reuseExisting="true",
        )["folder_id"]
        == sub["folder_id"]
    )
    item = ok(client, "midas.item.create", token=token, name="scan.nrrd", parentid=sub["folder_id"])
    assert item["item_id"].isdigit()
    listing = ok(client, "midas.folder.children", id=sub["folder_id"])
    assert [i["name"] for i in listing["items"]] == ["scan.nrrd"]
    secret = ok(client, "midas.item.create", token=token, name="secret", parentid=private_id)
    denied = call(client, "midas.item.get", id=secret["item_id"])
    assert denied["code"] == MIDAS_INVALID_POLICY
    assert (
        call(client, "midas.item.get", id=secret["item_id"], token=bob)["code"]
        == MIDAS_INVALID_POLICY
    )
    moved = ok(
        client,
        "midas.item.move",
        token=token,
        id=item["item_id"],
        srcfolderid=sub["folder_id"],
        dstfolderid=private_id,
    )
    assert [f["folder_id"] for f in moved["owningfolders"]] == [str(private_id)]
    shared = ok(
        client, "midas.item.share", token=token, id=item["item_id"], dstfolderid=sub["folder_id"]
    )
    assert len(shared["owningfolders"]) == 2
    found = ok(client, "midas.item.searchbyname", name="scan.nrrd")["items"]
    assert [i["item_id"] for i in found] == [item["item_id"]]
    assert ok(client, "midas.solr.search.advanced", query="name:scan")[0]["name"] == "scan.nrrd"
    assert ok(client, "midas.resource.search", search="lab", token=token)["ncommunities"] == 1
    ok(client, "midas.folder.move", token=token, id=sub["folder_id"], dstfolderid=private_id)
    assert (
        ok(client, "midas.folder.get", id=sub["folder_id"], token=token)["parent"]["name"]
        == "Private"
    )
    assert ok(client, "midas.item.delete", token=token, id=secret["item_id"]) is None
    assert call(client, "midas.item.delete", id=item["item_id"])["code"] == MIDAS_INVALID_TOKEN
    assert ok(client, "midas.folder.delete", token=token, id=sub["folder_id"]) is None
    assert (
        call(client, "midas.folder.get", id=sub["folder_id"], token=token)["code"]
        == MIDAS_INVALID_POLICY
    )


def test_metadata(fake: FakeMidas, client: httpx.Client) -> None:
    token = login(client)
    folder = fake.folder_id(f"{ALICE}/Private")
    iid = fake.add_item("img", folder, ALICE, b"pixels")
    assert (
        ok(
            client,
            "midas.item.setmetadata",
            token=token,
            itemId=iid,
            element="modality",
            value="MR",
        )
        is True
    )
    ok(
        client,
        "midas.item.setmultiplemetadata",
        token=token,
        itemid=iid,
        count=2,
        element_1="a",
        value_1="1",
        element_2="b",
        value_2="2",
        qualifier_2="q",
    )
    meta = ok(client, "midas.item.getmetadata", token=token, id=iid)
    assert {(m["element"], m["qualifier"], m["value"]) for m in meta} == {
        ("modality", "", "MR"),
        ("a", "", "1"),
        ("b", "q", "2"),
    }
    assert ok(client, "midas.item.deletemetadata", token=token, itemid=iid, element="a") is True
    assert ok(client, "midas.item.deletemetadata", token=token, itemid=iid, element="a") is False
    empty = fake.add_item("empty", folder, ALICE)
    assert (
        call(client, "midas.item.getmetadata", token=token, id=empty)["code"]
        == MIDAS_INVALID_POLICY
    )


# --- uploads and downloads ------------------------------------------------------------------------------
def test_upload_with_offset_resume_then_download(fake: FakeMidas, client: httpx.Client) -> None:
    token = login(client)
    item = ok(
        client,
        "midas.item.create",
        token=token,
        name="big.bin",
        parentid=fake.folder_id(f"{ALICE}/Public"),
    )
    data = bytes(range(256)) * 400
    md5 = hashlib.md5(data).hexdigest()
    upload = ok(
        client,
        "midas.upload.generatetoken",
        token=token,
        itemid=item["item_id"],
        filename="big.bin",
        checksum=md5,
    )["token"]
    assert upload.startswith(f"1/{item['item_id']}/midas")
    params = {
        "method": "midas.upload.perform",
        "uploadtoken": upload,
        "filename": "big.bin",
        "length": len(data),
        "revision": "head",
    }
    first = client.put("/api/json", params=params, content=data[:30000]).json()
    assert first["code"] == MIDAS_UPLOAD_FAILED
    assert first["message"] == f"Failed to upload file - 30000/{len(data)} bytes transferred"
    offset = ok(client, "midas.upload.getoffset", uploadtoken=upload)["offset"]
    assert offset == 30000
    done = client.put("/api/json", params=params, content=data[offset:]).json()
    assert done["stat"] == "ok" and done["data"]["sizebytes"] == str(len(data))
    assert fake.item_bytes(int(item["item_id"])) == {"big.bin": data}
    detail = ok(client, "midas.item.get", token=token, id=item["item_id"])
    assert detail["revisions"][0]["bitstreams"][0]["checksum"] == md5
    # download: 302 to /download/?items=..., then the bytes
    r = client.get(
        "/api/json", params={"method": "midas.item.download", "id": item["item_id"], "token": token}
    )
    assert r.status_code == 302 and "/download/?items=" in r.headers["Location"]
    got = client.get(r.headers["Location"])
    assert (
        got.content == data
        and got.headers["Content-Disposition"] == 'attachment; filename="big.bin"'
    )
    bitstream = detail["revisions"][0]["bitstreams"][0]["bitstream_id"]
    resumed = client.get(
        "/api/json",
        params={"method": "midas.bitstream.download", "id": bitstream, "offset": 100},
        follow_redirects=True,
    )
    assert resumed.content == data[100:]
    stale = call(client, "midas.upload.perform", uploadtoken=upload, filename="x", length=1)
    assert stale["code"] == -141


def test_checksum_dedupe_gives_empty_token(fake: FakeMidas, client: httpx.Client) -> None:
    token = login(client)
    folder = fake.folder_id(f"{ALICE}/Private")
    fake.add_item("original", folder, ALICE, b"same bytes", filename="a.txt")
    md5 = hashlib.md5(b"same bytes").hexdigest()
    up = ok(
        client,
        "midas.upload.generatetoken",
        token=token,
        folderid=folder,
        filename="copy.txt",
        checksum=md5,
    )
    assert up == {"token": ""}
    copy = ok(client, "midas.item.searchbyname", name="copy.txt", token=token)["items"][0]
    assert fake.item_bytes(int(copy["item_id"])) == {"copy.txt": b"same bytes"}
    counted = ok(client, "midas.bitstream.count", token=token, uuid=fake.folders[folder]["uuid"])
    assert counted == {"size": "20", "count": "2"}
    assert (
        call(client, "midas.upload.generatetoken", folderid=folder, filename="x")["code"]
        == MIDAS_INVALID_POLICY
    )
    both = call(
        client, "midas.upload.generatetoken", token=token, folderid=folder, itemid=1, filename="x"
    )
    assert both["message"] == "Parameter itemid or folderid must be defined but not both"


def test_folder_download_is_a_zip(fake: FakeMidas, client: httpx.Client) -> None:
    token = login(client)
    folder = fake.folder_id(f"{ALICE}/Private")
    fake.add_item("one", folder, ALICE, b"1")
    fake.add_item("two", folder, ALICE, b"22")
    r = client.get(
        "/api/json",
        params={"method": "midas.folder.download", "id": folder, "token": token},
        follow_redirects=True,
    )
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert sorted(names) == ["one/one", "two/two"]
    anon = client.get("/api/json", params={"method": "midas.folder.download", "id": folder})
    assert anon.json()["code"] == MIDAS_INVALID_POLICY


# --- driver modules -------------------------------------------------------------------------------------
def test_tracker_thumbnails_batchmake_dicom(fake: FakeMidas, client: httpx.Client) -> None:
    token = login(client)
    comm = ok(client, "midas.community.create", token=token, name="CI")
    scalar = ok(
        client,
        "midas.tracker.scalar.add",
        token=token,
        communityId=comm["community_id"],
        producerDisplayName="nightly",
        metricName="accuracy",
        value=0.93,
        producerRevision="abc",
        submitTime="now",
    )
    assert scalar["value"] == "0.93"
    results = json.dumps({"metrics": {"dice": 0.8, "hausdorff": 4, "note": "text"}})
    r = client.put(
        "/api/json",
        params={
            "method": "midas.tracker.results.upload.json",
            "token": token,
            "communityId": comm["community_id"],
            "producerDisplayName": "nightly",
            "producerRevision": "abc",
            "parentKeys": "metrics",
        },
        content=results.encode(),
    )
    assert len(r.json()["data"]) == 2
    assert len(fake.producers) == 1 and {t["metric_name"] for t in fake.trends.values()} == {
        "accuracy",
        "dice",
        "hausdorff",
    }
    bob = login(client, BOB, "bob-key")
    denied = call(
        client,
        "midas.tracker.scalar.add",
        token=bob,
        communityId=comm["community_id"],
        producerDisplayName="p",
        metricName="m",
        value=1,
    )
    assert denied["code"] == 403
    iid = fake.add_item("img", fake.folder_id("CI/Public"), ALICE, b"png")
    bitstream = next(iter(fake.bitstreams))
    big = ok(
        client,
        "midas.thumbnailcreator.create.big.thumbnail",
        token=token,
        bitstreamId=bitstream,
        itemId=iid,
    )
    assert big["item_id"] == str(iid)
    small = ok(client, "midas.thumbnailcreator.create.small.thumbnail", token=token, itemId=iid)
    assert small["item"]["thumbnail_id"] == str(fake.items[iid]["thumbnail_id"])
    dag = ok(
        client,
        "midas.batchmake.add.condor.dag",
        token=token,
        batchmaketaskid=7,
        dagfilename="a.dag",
        outfilename="a.out",
    )
    job = ok(
        client,
        "midas.batchmake.add.condor.job",
        token=token,
        batchmaketaskid=7,
        jobdefinitionfilename="j",
        outputfilename="o",
        errorfilename="e",
        logfilename="l",
        postfilename="p",
    )
    assert job["condor_dag_id"] == dag["condor_dag_id"]
    assert ok(client, "midas.dicomextractor.extract", token=token, item=iid)["revision"] == "1"


# --- the other two ways to use the fake --------------------------------------------------------------------
def test_respx_mock(fake: FakeMidas) -> None:
    with fake.mock():
        r = httpx.post(fake.url("/api/json"), params={"method": "midas.version"})
    assert r.json()["data"]["version"] == "3.4.2"


def test_served_over_real_http(fake: FakeMidas) -> None:
    with fake.serve() as base, httpx.Client(base_url=base) as c:
        token = login(c)
        folder = fake.folder_id(f"{ALICE}/Public")
        up = ok(c, "midas.upload.generatetoken", token=token, folderid=folder, filename="f.dat")[
            "token"
        ]
        payload = b"\x00\r\n\xff" * 1000
        r = c.put(
            "/api/json",
            params={
                "method": "midas.upload.perform",
                "uploadtoken": up,
                "filename": "f.dat",
                "length": len(payload),
            },
            content=payload,
        )
        assert r.json()["stat"] == "ok"
        item_id = r.json()["data"]["item_id"]
        dl = c.get(
            "/api/json",
            params={"method": "midas.item.download", "id": item_id, "token": token},
            follow_redirects=True,
        )
        assert dl.content == payload


# --- the generated client against the fake ---------------------------------------------------------------
class _StripMethodSegment(httpx.BaseTransport):
    """What the wrapper does: /api/json/<name>?method=<name> -> /api/json?method=<name>."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        head, _, last = request.url.path.rpartition("/")
        if head.endswith("/api/json") and last == request.url.params.get("method"):
            request.url = request.url.copy_with(path=head)
        self.paths.append(request.url.path)
        return self.inner.handle_request(request)


@pytest.mark.slow
def test_generated_client_sends_requests_the_api_understands(
    fake: FakeMidas, tmp_path: Any, repo_root: Any
) -> None:
    import importlib
    import subprocess
    import sys

    pytest.importorskip("openapi_python_client")
    out = tmp_path / "midas_client"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(repo_root / "specs/midas/openapi.yaml"),
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
        client_mod = importlib.import_module("midas_client")
        login_ep = importlib.import_module("midas_client.api.system.login")
        children_ep = importlib.import_module("midas_client.api.folders.get_folder_children")
        perform_ep = importlib.import_module("midas_client.api.uploads.perform_upload")
        token_ep = importlib.import_module("midas_client.api.uploads.generate_upload_token")
        models = importlib.import_module("midas_client.models")
        types = importlib.import_module("midas_client.types")
        transport = _StripMethodSegment(fake.transport())
        client = client_mod.Client(base_url=fake.base_url, httpx_args={"transport": transport})
        resp = login_ep.sync(
            client=client,
            body=models.LoginParams(email=ALICE, apikey="alice-key", appname="Default"),
        )
        token = resp.data.token
        assert transport.paths == ["/api/json"]
        folder = fake.folder_id(f"{ALICE}/Public")
        up = token_ep.sync(
            client=client,
            body=models.GenerateUploadTokenParams(token=token, filename="g.bin", folderid=folder),
        ).data.token
        done = perform_ep.sync(
            client=client,
            body=types.File(payload=io.BytesIO(b"generated")),
            uploadtoken=up,
            filename="g.bin",
            length=9,
        )
        assert done.stat.value == "ok" and done.data.name == "g.bin"
        kids = children_ep.sync(
            client=client, body=models.GetFolderChildrenParams(id=folder, token=token)
        )
        assert [i.name for i in kids.data.items] == ["g.bin"]
        fail = children_ep.sync(
            client=client, body=models.GetFolderChildrenParams(id=folder, token="bad")
        )
        assert fail.stat.value == "fail" and fail.code == MIDAS_INVALID_TOKEN
    finally:
        sys.path.remove(str(tmp_path))
        for name in [
            m for m in sys.modules if m == "midas_client" or m.startswith("midas_client.")
        ]:
            del sys.modules[name]
