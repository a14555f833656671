"""Every MidasClient / AsyncMidasClient call against FakeMidas, sync and async, with failure paths."""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import os
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from scibind import errors
from scibind.config import ClientConfig, RetryPolicy
from scibind.midas import AsyncMidasClient, MidasClient, MidasTransferError
from scibind.testing.midas import FakeMidas
from scibind.transfers.progress import ProgressEvent

ALICE = "alice@example.org"
BOB = "bob@example.org"
FAST = ClientConfig(retry=RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.002))
ENV = ("MIDAS_URL", "MIDAS_EMAIL", "MIDAS_API_KEY", "MIDAS_APPNAME", "MIDAS_TOKEN")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def fake() -> FakeMidas:
    f = FakeMidas()
    f.add_user(ALICE, "alice-key", admin=True, password="alice-pw", firstname="Alice")
    f.add_user(BOB, "bob-key", firstname="Bob")
    return f


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(kind: str, fake: FakeMidas, transport: Any = None, **kw: Any) -> Any:
    cls = MidasClient if kind == "sync" else AsyncMidasClient
    if not kw.get("anonymous") and "token" not in kw:
        kw.setdefault("email", ALICE)
        kw.setdefault("api_key", "alice-key")
    kw.setdefault("config", FAST)
    return cls(fake.base_url, transport=transport or fake.transport(), **kw)


@pytest.fixture
async def md(kind: str, fake: FakeMidas) -> AsyncIterator[Any]:
    client = make(kind, fake)
    yield client
    await close(client)


async def close(client: Any) -> None:
    if isinstance(client, MidasClient):
        client.close()
    else:
        await client.aclose()


async def call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def api_calls(fake: FakeMidas, method: str | None = None) -> list[httpx.Request]:
    return [
        r
        for r in fake.requests
        if r.url.path.startswith("/api/json")
        and (method is None or r.url.params.get("method") == method)
    ]


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


class Faults(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The fake behind a hook that may answer instead of it (``hook(request, body) -> Response | None``)."""

    def __init__(
        self, fake: FakeMidas, hook: Callable[[httpx.Request, bytes], httpx.Response | None]
    ) -> None:
        self.fake = fake
        self.hook = hook

    def _answer(self, request: httpx.Request, body: bytes) -> httpx.Response:
        rebuilt = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        return self.hook(rebuilt, body) or self.fake.handle(rebuilt)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, b"".join(request.stream))  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, b"".join([c async for c in request.stream]))  # type: ignore[union-attr]


class CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that breaks (ReadError) after ``keep`` bytes."""

    def __init__(self, data: bytes, keep: int) -> None:
        self.data = data
        self.keep = keep

    def __iter__(self) -> Iterator[bytes]:
        yield self.data[: self.keep]
        raise httpx.ReadError("connection reset by peer")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data[: self.keep]
        raise httpx.ReadError("connection reset by peer")


# --- the wire: path rewrite, token placement, idempotency ---------------------------------------------------
async def test_requests_use_the_documented_endpoint_and_form_token(
    md: Any, fake: FakeMidas
) -> None:
    assert await call(md.version()) == "3.4.2"
    folders = await call(md.list_user_folders())
    assert {f.name for f in folders} == {"Public", "Private"}
    assert {r.url.path for r in fake.requests} == {"/api/json"}
    assert [r.url.params["method"] for r in fake.requests] == [
        "midas.version",
        "midas.login",
        "midas.user.folders",
    ]
    (token,) = fake.tokens
    call_ = api_calls(fake, "midas.user.folders")[0]
    assert form(call_)["token"] == token and "token" not in call_.url.params
    assert "apikey" not in str(api_calls(fake, "midas.login")[0].url)  # the key is in the body
    assert md.auth.login_count == 1
    await call(md.list_communities())
    assert md.auth.login_count == 1  # the token is reused


async def test_read_calls_are_retried_and_writes_are_not(kind: str, fake: FakeMidas) -> None:
    busy: dict[str, int] = {}

    def hook(request: httpx.Request, body: bytes) -> httpx.Response | None:
        name = request.url.params.get("method", "")
        if name in ("midas.folder.children", "midas.folder.create") and not busy.get(name):
            busy[name] = 1
            return httpx.Response(503, text="busy")
        return None

    client = make(kind, fake, transport=Faults(fake, hook))
    root = fake.folder_id(f"{ALICE}/Public")
    assert (await call(client.folder_children(root))).items == []
    with pytest.raises(errors.ServerError):
        await call(client.create_folder("x", root))
    await close(client)
    assert len(api_calls(fake, "midas.folder.children")) == 1  # the 503 came from the hook
    assert len(api_calls(fake, "midas.folder.create")) == 0


# --- credentials and tokens ------------------------------------------------------------------------------------
async def test_credentials_from_environment(
    kind: str, fake: FakeMidas, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIDAS_URL", fake.base_url)
    monkeypatch.setenv("MIDAS_EMAIL", BOB)
    monkeypatch.setenv("MIDAS_API_KEY", "bob-key")
    cls = MidasClient if kind == "sync" else AsyncMidasClient
    client = cls(transport=fake.transport())
    folders = await call(client.list_user_folders())
    await close(client)
    assert fake.users[2]["folder_id"] == int(folders[0].parent_id)


def test_missing_credentials_and_url() -> None:
    with pytest.raises(errors.CredentialsError, match="anonymous=True"):
        MidasClient("https://midas.fake.test")
    with pytest.raises(errors.CredentialsError, match="email"):
        MidasClient("https://midas.fake.test", api_key="k")
    with pytest.raises(errors.ConfigurationError, match="MIDAS_URL"):
        MidasClient(email=ALICE, api_key="k")


async def test_bad_api_key_is_a_credentials_error(kind: str, fake: FakeMidas) -> None:
    client = make(kind, fake, api_key="wrong-key")
    with pytest.raises(errors.CredentialsError, match="Unable to authenticate") as info:
        await call(client.list_user_folders())
    await close(client)
    assert "wrong-key" not in str(info.value) and "wrong-key" not in repr(client.auth)


async def test_expired_token_logs_in_again_once(kind: str, fake: FakeMidas) -> None:
    client = make(kind, fake)
    await call(client.list_user_folders())
    (first,) = fake.tokens
    fake.advance_time(101 * 60)  # the token's lifetime is 100 minutes
    folders = await call(client.list_user_folders())
    await close(client)
    assert len(folders) == 2
    assert client.auth.login_count == 2
    calls = api_calls(fake, "midas.user.folders")
    assert [form(r)["token"] for r in calls] == [first, first, form(calls[-1])["token"]]
    assert form(calls[-1])["token"] != first  # the call after -101 carried the new token


async def test_static_token_expires_without_key(kind: str, fake: FakeMidas) -> None:
    with httpx.Client(transport=fake.transport(), base_url=fake.base_url) as raw:
        token = raw.post(
            "/api/json",
            params={"method": "midas.login"},
            data={"email": ALICE, "apikey": "alice-key", "appname": "Default"},
        ).json()["data"]["token"]
    client = make(kind, fake, token=token)
    assert len(await call(client.list_user_folders())) == 2
    fake.advance_time(101 * 60)
    with pytest.raises(errors.AuthenticationError) as info:
        await call(client.list_user_folders())
    await close(client)
    assert info.value.code == -101 and token not in str(info.value)


async def test_multi_factor_login(kind: str, fake: FakeMidas) -> None:
    fake.add_user("carol@example.org", "carol-key", otp="123456")
    client = make(kind, fake, email="carol@example.org", api_key="carol-key", otp=lambda: "123456")
    assert len(await call(client.list_user_folders())) == 2
    await close(client)
    assert [r.url.params["method"] for r in fake.requests[:2]] == [
        "midas.login",
        "midas.mfa.otp.login",
    ]
    no_otp = make(kind, fake, email="carol@example.org", api_key="carol-key")
    with pytest.raises(errors.CredentialsError, match="one-time password"):
        await call(no_otp.list_user_folders())
    await close(no_otp)
    # pydas's two calls, by hand
    manual = make(kind, fake, anonymous=True)
    started = await call(manual.login_with_api_key("carol@example.org", "carol-key"))
    assert started.token is None and started.mfa_token_id
    token = await call(manual.mfa_otp_login(started.mfa_token_id, "123456"))
    assert token.reveal() in fake.tokens and repr(token) == "Secret('****')"
    await close(manual)


async def test_anonymous_reads_public_data_without_a_token(kind: str, fake: FakeMidas) -> None:
    pub = fake.folder_id(f"{ALICE}/Public")
    fake.add_item("open", pub, ALICE, b"o")
    fake.add_item("closed", fake.folder_id(f"{ALICE}/Private"), ALICE, b"c")
    client = make(kind, fake, anonymous=True)
    assert [i.name for i in await call(client.search_items("open"))] == ["open"]
    assert await call(client.search_items("closed")) == []
    with pytest.raises(errors.PermissionDeniedError):
        await call(client.create_folder("x", pub))
    await close(client)
    for r in api_calls(fake):
        assert "token" not in r.url.params and "token" not in form(r)


async def test_plain_http_is_refused_off_loopback(kind: str) -> None:
    remote = FakeMidas({"api": "http://midas.example.org"})
    remote.add_user(ALICE, "alice-key")
    client = make(kind, remote)
    with pytest.raises(errors.InsecureTransportError):
        await call(client.list_user_folders())
    await close(client)
    assert remote.requests == []
    local = FakeMidas({"api": "http://localhost:9000"})
    local.add_user(ALICE, "alice-key")
    client = make(kind, local)
    assert len(await call(client.list_user_folders())) == 2
    await close(client)


# --- error codes ------------------------------------------------------------------------------------------------
async def test_midas_error_codes_are_typed(md: Any, kind: str, fake: FakeMidas) -> None:
    private = fake.folder_id(f"{BOB}/Private")
    hidden = fake.add_item("hidden", private, BOB, b"x")
    with pytest.raises(errors.PermissionDeniedError) as denied:  # -151
        await call(md.get_item(99))
    assert denied.value.code == -151 and denied.value.status == 200
    assert "midas.item.get" in str(denied.value)
    bob = make(kind, fake, email=BOB, api_key="bob-key")
    with pytest.raises(errors.PermissionDeniedError):
        await call(bob.get_item(fake.add_item("a", fake.folder_id(f"{ALICE}/Private"), ALICE)))
    assert (await call(bob.get_item(hidden))).name == "hidden"
    comm = await call(md.create_community("Lab"))
    with pytest.raises(errors.PermissionDeniedError):  # tracker: module code 403
        await call(bob.add_scalar(comm.community_id, "p", "m", 1.0))
    with pytest.raises(errors.NotFoundError):  # tracker: module code 404
        await call(bob.associate_item_with_scalars(999, "label"))
    await close(bob)
    root = fake.folder_id(f"{ALICE}/Public")
    await call(md.create_folder("run", root))
    with pytest.raises(errors.BadRequestError) as dup:  # -150
        await call(md.create_folder("run", root))
    assert dup.value.code == -150
    with pytest.raises(errors.BadRequestError):  # -1 (module parameter error)
        await call(md.add_scalar(comm.community_id, "   ", "m", 1.0))
    with pytest.raises(errors.ServerError):  # -100
        await call(md.folder_children(12345))


def test_transfer_codes_map_to_transfer_errors() -> None:
    from scibind.midas._wire import detect

    for code in (-105, -140, -141):
        response = httpx.Response(
            200,
            json={"stat": "fail", "code": code, "message": "upload trouble"},
            request=httpx.Request("PUT", "https://m.test/api/json?method=midas.upload.perform"),
        )
        with pytest.raises(MidasTransferError) as info:
            detect(response)
        assert info.value.code == code and "midas.upload.perform" in str(info.value)
    fine = httpx.Response(
        200, json={"stat": "ok", "code": "0", "data": 1}, request=httpx.Request("POST", "https://m")
    )
    detect(fine)


# --- server, users ---------------------------------------------------------------------------------------------
async def test_server_info_users_and_search(md: Any, fake: FakeMidas) -> None:
    info = await call(md.info())
    assert info.version == "3.4.2" and "tracker" in info.modules
    assert "solr" in await call(md.list_modules())
    users = await call(md.list_users(limit=5))
    assert {u.email for u in users} == {ALICE, BOB}
    assert (await call(md.get_user(email=BOB))).firstname == "Bob"
    assert (await call(md.get_user(1))).email == ALICE
    assert (await call(md.get_user(firstname="Bob", lastname="Last"))).user_id == "2"
    with pytest.raises(errors.NotFoundError):
        await call(md.get_user(email="nobody@example.org"))
    key = await call(md.get_default_api_key(ALICE, "alice-pw"))
    assert key.reveal() == "alice-key"
    await call(md.create_community("Imaging lab"))
    found = await call(md.search("imaging"))
    assert found.ncommunities == 1 and found.results[0]["resultType"] == "community"


# --- communities, folders, items, metadata ------------------------------------------------------------------------
async def test_communities(md: Any, kind: str, fake: FakeMidas) -> None:
    comm = await call(md.create_community("Lab", description="d", privacy="Public"))
    assert (await call(md.get_community(comm.community_id))).name == "Lab"
    assert (await call(md.get_community(name="Lab"))).community_id == comm.community_id
    assert [c.name for c in await call(md.list_communities())] == ["Lab"]
    children = await call(md.get_community_children(comm.community_id))
    assert {f.name for f in children} == {"Public", "Private"}
    bob = make(kind, fake, email=BOB, api_key="bob-key")
    with pytest.raises(errors.PermissionDeniedError):  # administrators only
        await call(bob.create_community("Mine"))
    await close(bob)
    with pytest.raises(errors.ConfigurationError):
        await call(md.get_community())
    await call(md.delete_community(comm.community_id))
    assert await call(md.list_communities()) == []


async def test_folders(md: Any, fake: FakeMidas) -> None:
    public = fake.folder_id(f"{ALICE}/Public")
    private = fake.folder_id(f"{ALICE}/Private")
    run = await call(md.create_folder("run1", public, description="first"))
    again = await call(md.create_folder("run1", public, reuse_existing=True))
    assert again.folder_id == run.folder_id
    top = await call(md.create_folder("top", -1))
    assert int(top.parent_id) == fake.users[1]["folder_id"]
    got = await call(md.get_folder(run.folder_id))
    assert got.description == "first" and got.parent.name == "Public"
    await call(md.move_folder(run.folder_id, private))
    assert (await call(md.get_folder(run.folder_id))).parent.name == "Private"
    kids = await call(md.folder_children(private))
    assert [f.name for f in kids.folders] == ["run1"] and kids.items == []
    await call(md.delete_folder(run.folder_id))
    with pytest.raises(errors.PermissionDeniedError):
        await call(md.get_folder(run.folder_id))


async def test_items(md: Any, fake: FakeMidas) -> None:
    public = fake.folder_id(f"{ALICE}/Public")
    private = fake.folder_id(f"{ALICE}/Private")
    item = await call(md.create_item("scan.nrrd", public, description="a scan"))
    detail = await call(md.get_item(item.item_id))
    assert detail.name == "scan.nrrd" and detail.description == "a scan" and detail.revisions == []
    moved = await call(md.move_item(item.item_id, public, private))
    assert [f.folder_id for f in moved.owningfolders] == [str(private)]
    shared = await call(md.share_item(item.item_id, public))
    assert len(shared.owningfolders) == 2
    assert [i.item_id for i in await call(md.search_items("scan.nrrd"))] == [item.item_id]
    assert [i.item_id for i in await call(md.search_items("scan.nrrd", private))] == [item.item_id]
    assert await call(md.search_items("nope")) == []
    assert [i.name for i in await call(md.solr_search("name:scan"))] == ["scan.nrrd"]
    await call(md.delete_item(item.item_id))
    assert await call(md.search_items("scan.nrrd")) == []


async def test_item_metadata(md: Any, fake: FakeMidas) -> None:
    iid = fake.add_item("img", fake.folder_id(f"{ALICE}/Private"), ALICE, b"pixels")
    assert await call(md.set_item_metadata(iid, "modality", "MR")) is True
    assert await call(md.set_item_metadata_many(iid, [("a", "1"), ("b", "2", "q")])) is True
    assert await call(md.set_item_metadata_many(iid, {"c": "3"})) is True
    meta = await call(md.get_item_metadata(iid))
    assert {(m.element, m.qualifier, m.value) for m in meta} == {
        ("modality", "", "MR"),
        ("a", "", "1"),
        ("b", "q", "2"),
        ("c", "", "3"),
    }
    assert await call(md.delete_item_metadata(iid, "a")) is True
    assert await call(md.delete_item_metadata(iid, "a")) is False
    with pytest.raises(errors.BadRequestError):
        await call(md.get_item_metadata(iid, revision=7))


# --- uploads ------------------------------------------------------------------------------------------------------
@pytest.fixture
def payload(tmp_path: Path) -> Path:
    source = tmp_path / "scan.bin"
    source.write_bytes(os.urandom(300_000))
    return source


async def test_upload_new_item_streamed_and_verified(
    md: Any, fake: FakeMidas, payload: Path
) -> None:
    data = payload.read_bytes()
    events: list[ProgressEvent] = []
    folder = fake.folder_id(f"{ALICE}/Public")
    up = await call(md.upload_file(payload, folder_id=folder, progress=events.append))
    assert not up.deduplicated and up.bytes_sent == len(data) and up.size == len(data)
    assert up.checksum == hashlib.md5(data).hexdigest()
    assert up.item.name == "scan.bin"
    assert up.item.revisions[0].bitstreams[0].checksum == up.checksum
    assert fake.item_bytes(int(up.item.item_id)) == {"scan.bin": data}
    (token_call,) = api_calls(fake, "midas.upload.generatetoken")
    assert form(token_call)["checksum"] == up.checksum
    (put,) = [r for r in fake.requests if r.method == "PUT"]
    assert put.url.params["length"] == str(len(data)) and put.url.params["revision"] == "head"
    assert "token" not in put.url.params  # the upload token is enough
    assert events[0].phase == "hashing" and events[-1].phase == "done"
    # into an existing item, as a new revision; then reuse by name
    other = payload.with_name("other.bin")
    other.write_bytes(b"other bytes")
    up2 = await call(md.upload_file(other, item_id=up.item.item_id, new_revision=True))
    assert [r.revision for r in up2.item.revisions] == ["1", "2"]
    up3 = await call(
        md.upload_file(other, folder_id=folder, item_name="scan.bin", reuse_existing=True)
    )
    assert up3.item.item_id == up.item.item_id
    with pytest.raises(errors.ConfigurationError):
        await call(md.upload_file(other))


async def test_upload_dedupe_sends_no_bytes(md: Any, fake: FakeMidas, payload: Path) -> None:
    data = payload.read_bytes()
    fake.add_item("original", fake.folder_id(f"{ALICE}/Private"), ALICE, data)
    events: list[ProgressEvent] = []
    up = await call(
        md.upload_file(payload, folder_id=fake.folder_id(f"{ALICE}/Public"), progress=events.append)
    )
    assert up.deduplicated and up.bytes_sent == 0
    assert not [r for r in fake.requests if r.method == "PUT"]
    assert fake.item_bytes(int(up.item.item_id)) == {"scan.bin": data}
    assert "skipped" in [e.phase for e in events]


@pytest.mark.parametrize("how", ["connection", "short"])
async def test_interrupted_upload_resumes_from_offset(
    kind: str, fake: FakeMidas, payload: Path, how: str
) -> None:
    data = payload.read_bytes()
    keep = 120_000
    puts: list[int] = []

    def hook(request: httpx.Request, body: bytes) -> httpx.Response | None:
        if request.method != "PUT":
            return None
        puts.append(len(body))
        if len(puts) > 1:
            return None
        # the server got only part of the body ...
        partial = httpx.Request(
            request.method, request.url, headers=request.headers, content=body[:keep]
        )
        answer = fake.handle(partial)  # -105 "Failed to upload file - N/L bytes transferred"
        if how == "short":
            return answer
        raise httpx.RemoteProtocolError(
            "server closed the connection"
        )  # ... and the answer was lost

    client = make(kind, fake, transport=Faults(fake, hook))
    up = await call(client.upload_file(payload, folder_id=fake.folder_id(f"{ALICE}/Public")))
    await close(client)
    assert fake.item_bytes(int(up.item.item_id)) == {"scan.bin": data}
    assert puts == [len(data), len(data) - keep]  # the second PUT sent only the rest
    assert len(api_calls(fake, "midas.upload.getoffset")) == 1
    assert up.bytes_sent == 2 * len(data) - keep


async def test_upload_gives_up_after_retries(kind: str, fake: FakeMidas, payload: Path) -> None:
    def hook(request: httpx.Request, body: bytes) -> httpx.Response | None:
        if request.method == "PUT":
            raise httpx.RemoteProtocolError("server closed the connection")
        return None

    client = make(kind, fake, transport=Faults(fake, hook))
    with pytest.raises(errors.ConnectionError):
        await call(
            client.upload_file(payload, folder_id=fake.folder_id(f"{ALICE}/Public"), retries=2)
        )
    await close(client)
    assert len(api_calls(fake, "midas.upload.getoffset")) == 2


# --- downloads ----------------------------------------------------------------------------------------------------
async def test_download_item_verified_atomic_and_redacted(
    md: Any, fake: FakeMidas, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = os.urandom(200_000)
    iid = fake.add_item("vol", fake.folder_id(f"{ALICE}/Private"), ALICE, data, filename="vol.nrrd")
    out = await call(md.download_item(iid, tmp_path))
    assert out == tmp_path / "vol.nrrd" and out.read_bytes() == data
    redirect = api_calls(fake, "midas.bitstream.download")[0]
    (token,) = fake.tokens
    assert redirect.url.params["token"] == token
    assert any("authToken" in str(r.url) for r in fake.requests if r.url.path == "/download/")
    assert token not in caplog.text and "authToken=****" in caplog.text
    # corrupt the stored bytes (same size): the download fails and leaves nothing behind
    checksum = hashlib.md5(data).hexdigest()
    fake.blobs[checksum] = bytes(len(data))
    with pytest.raises(errors.ChecksumMismatchError):
        await call(md.download_item(iid, tmp_path / "bad.nrrd"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vol.nrrd"]


async def test_interrupted_download_resumes_with_offset(
    kind: str, fake: FakeMidas, tmp_path: Path
) -> None:
    data = os.urandom(250_000)
    iid = fake.add_item("vol", fake.folder_id(f"{ALICE}/Private"), ALICE, data, filename="v.bin")
    cut = [True]

    def hook(request: httpx.Request, body: bytes) -> httpx.Response | None:
        if request.url.path == "/download/" and cut[0]:
            cut[0] = False
            full = fake.handle(request)
            return httpx.Response(200, headers=full.headers, stream=CutStream(full.content, 90_000))
        return None

    client = make(kind, fake, transport=Faults(fake, hook))
    out = await call(client.download_item(iid, tmp_path / "v.bin"))
    await close(client)
    assert out.read_bytes() == data
    offsets = [r.url.params.get("offset") for r in api_calls(fake, "midas.bitstream.download")]
    assert offsets == [None, "90000"]


async def test_download_bitstream_multi_file_item_and_folder(
    md: Any, fake: FakeMidas, tmp_path: Path
) -> None:
    folder = fake.folder_id(f"{ALICE}/Private")
    one = fake.add_item("one", folder, ALICE, b"1" * 10)
    iid = fake.add_item("two", folder, ALICE, b"2" * 20)
    rev = fake._last_revision(iid)
    assert rev is not None
    fake._add_bitstream(rev, "extra.txt", b"extra")
    zipped = await call(md.download_item(iid, tmp_path))
    assert zipped.name == "two.zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(zipped.read_bytes())).namelist()) == [
        "extra.txt",
        "two",
    ]
    bitstream = next(b for b, v in fake.bitstreams.items() if v["name"] == "one")
    info = await call(md.get_bitstream(bitstream))
    assert info.name == "one" and info.size == "10"
    got = await call(md.download_bitstream(bitstream, tmp_path / "one.bin"))
    assert got.read_bytes() == b"1" * 10
    whole = await call(md.download_folder(folder, tmp_path))
    assert whole.name.endswith(".zip")
    assert sorted(zipfile.ZipFile(whole).namelist()) == ["one/one", "two/extra.txt", "two/two"]
    counted = await call(md.count_bitstreams(fake.folders[folder]["uuid"]))
    assert counted.count == "3"
    await call(md.delete_bitstream(bitstream))
    assert fake.item_bytes(one) == {}


# --- module drivers ------------------------------------------------------------------------------------------------
async def test_module_drivers(md: Any, fake: FakeMidas, tmp_path: Path) -> None:
    comm = await call(md.create_community("CI"))
    scalar = await call(
        md.add_scalar(
            comm.community_id,
            "nightly",
            "accuracy",
            0.93,
            producer_revision="abc",
            params={"gpu": "a100"},
            extra_urls=[{"label": "l", "text": "t", "href": "https://x"}],
            unofficial=True,
        )
    )
    assert scalar.value == "0.93" and scalar.official == "0"
    sent = form(api_calls(fake, "midas.tracker.scalar.add")[0])
    assert json.loads(sent["params"]) == {"gpu": "a100"} and sent["unofficial"] == "true"
    sub = await call(md.create_submission(comm.community_id, "nightly", "abc", uuid="u-1"))
    assert sub.uuid == "u-1"
    iid = fake.add_item("img", fake.folder_id("CI/Public"), ALICE, b"png")
    await call(md.associate_item_with_scalars(iid, "output", scalar_ids=[scalar.scalar_id]))
    assert fake.scalars[int(scalar.scalar_id)]["items"] == [{"item_id": iid, "label": "output"}]
    scalars = await call(
        md.upload_json_results(
            {"metrics": {"dice": 0.8, "hd": 4, "note": "x"}},
            comm.community_id,
            "nightly",
            "abc",
            parent_keys=["metrics"],
        )
    )
    assert sorted(float(s.value) for s in scalars) == [0.8, 4.0]
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"loss": 0.1}))
    assert (
        len(await call(md.upload_json_results(results, comm.community_id, "nightly", "abc"))) == 1
    )
    bitstream = next(iter(fake.bitstreams))
    big = await call(md.create_big_thumbnail(bitstream, iid))
    assert big.item_id == str(iid)
    small = await call(md.create_small_thumbnail(iid))
    assert small.item.thumbnail_id == str(fake.items[iid]["thumbnail_id"])
    dag = await call(md.add_condor_dag(7, "a.dag", "a.out"))
    job = await call(md.add_condor_job(7, "j", "o", "e", "l", "p"))
    assert job.condor_dag_id == dag.condor_dag_id
    assert (await call(md.extract_dicom_metadata(iid))).revision == "1"


# --- concurrency and a real socket ------------------------------------------------------------------------------------
async def test_concurrent_calls_log_in_once_and_again_once(kind: str, fake: FakeMidas) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    client = make(kind, fake)

    async def burst() -> list[Any]:
        if kind == "sync":
            with ThreadPoolExecutor(8) as pool:
                return list(pool.map(lambda _: client.list_user_folders(), range(8)))
        return list(await asyncio.gather(*(client.list_user_folders() for _ in range(8))))

    assert all(len(r) == 2 for r in await burst())
    assert client.auth.login_count == 1
    fake.advance_time(101 * 60)
    assert all(len(r) == 2 for r in await burst())
    assert client.auth.login_count == 2
    await close(client)


async def test_over_a_real_loopback_socket(kind: str, fake: FakeMidas, payload: Path) -> None:
    data = payload.read_bytes()
    with fake.serve() as base:
        cls = MidasClient if kind == "sync" else AsyncMidasClient
        client = cls(
            base, email=ALICE, api_key="alice-key", config=FAST
        )  # http is fine on loopback
        up = await call(client.upload_file(payload, folder_id=fake.folder_id(f"{ALICE}/Public")))
        out = await call(client.download_item(up.item.item_id, payload.with_name("back.bin")))
        await close(client)
    assert out.read_bytes() == data
    assert {r.url.path for r in fake.requests} == {"/api/json", "/download/"}
