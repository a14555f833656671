"""Every MyTardisClient / AsyncMyTardisClient call against FakeMyTardis, sync and async, with failure paths."""

from __future__ import annotations

import builtins
import hashlib
import inspect
import io
import json
import os
import re
import threading
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from scibind import errors
from scibind.config import ClientConfig, RetryPolicy
from scibind.mytardis import AsyncMyTardisClient, MyTardisClient, StagedDatafile
from scibind.testing.mytardis import (
    DEFAULT_PERMISSIONS,
    PUBLIC_ACCESS_FULL,
    PUBLIC_ACCESS_METADATA,
    FakeMyTardis,
)
from scibind.transfers.progress import ProgressEvent

NS = "http://example.org/schemas/beam"
DS_NS = "http://example.org/schemas/sample"
DF_NS = "http://example.org/schemas/file"
FAST = ClientConfig(retry=RetryPolicy(max_attempts=2, backoff_base=0.001, backoff_max=0.002))
ENV = (
    "MYTARDIS_URL",
    "MYTARDIS_USERNAME",
    "MYTARDIS_API_KEY",
    "MYTARDIS_PASSWORD",
    "MYTARDISCLIENT_URL",
    "MYTARDISCLIENT_USERNAME",
    "MYTARDISCLIENT_API_KEY",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake() -> FakeMyTardis:
    f = FakeMyTardis()
    f.add_user("alice", "alice-pw", "alice-key", first_name="Alice")
    f.add_user("bob", "bob-pw", "bob-key")
    f.add_schema(NS, "experiment", parameters=[("energy", 1), "beamline"])
    f.add_schema(DS_NS, "dataset", parameters=["sample"])
    f.add_schema(DF_NS, "datafile", parameters=[("exposure", 1)])
    return f


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(kind: str, fake: FakeMyTardis, transport: Any = None, **kw: Any) -> Any:
    cls = MyTardisClient if kind == "sync" else AsyncMyTardisClient
    kw.setdefault("username", "alice")
    kw.setdefault("api_key", "alice-key")
    kw.setdefault("config", FAST)
    return cls(fake.base_url, transport=transport or fake.transport(), **kw)


@pytest.fixture
async def mt(kind: str, fake: FakeMyTardis) -> AsyncIterator[Any]:
    client = make(kind, fake)
    yield client
    await close(client)


async def close(client: Any) -> None:
    if isinstance(client, MyTardisClient):
        client.close()
    else:
        await client.aclose()


async def call(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def collect(paginator: Any) -> list[Any]:
    if isinstance(paginator._driver.client, httpx.Client):
        return list(paginator)
    return [x async for x in paginator]


def offsets(fake: FakeMyTardis, path: str) -> list[int]:
    return sorted(
        int(r.url.params.get("offset", 0))
        for r in fake.requests
        if r.url.path == path and r.method == "GET"
    )


# --- credentials --------------------------------------------------------------------------------------------
async def test_api_key_and_basic_auth_headers(kind: str, fake: FakeMyTardis) -> None:
    exp = fake.add_experiment("mine", "alice")
    for kw, prefix in (
        ({"api_key": "alice-key"}, "ApiKey alice:alice-key"),
        ({"api_key": None, "password": "alice-pw"}, "Basic "),
    ):
        client = make(kind, fake, **kw)
        got = await call(client.get_experiment(exp))
        await close(client)
        assert got.title == "mine"
        assert fake.requests[-1].headers["Authorization"].startswith(prefix)
        assert "alice-key" not in repr(client) and "alice-pw" not in repr(client)


async def test_credentials_from_environment(
    kind: str, fake: FakeMyTardis, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = fake.add_experiment("mine", "alice")
    monkeypatch.setenv("MYTARDISCLIENT_URL", fake.base_url)
    monkeypatch.setenv("MYTARDISCLIENT_USERNAME", "alice")
    monkeypatch.setenv("MYTARDISCLIENT_API_KEY", "alice-key")
    cls = MyTardisClient if kind == "sync" else AsyncMyTardisClient
    client = cls(transport=fake.transport())
    assert (await call(client.get_experiment(exp))).id == exp
    await close(client)
    monkeypatch.setenv("MYTARDIS_USERNAME", "bob")
    monkeypatch.setenv("MYTARDIS_PASSWORD", "bob-pw")
    monkeypatch.delenv("MYTARDISCLIENT_API_KEY")
    client = cls(transport=fake.transport())
    with pytest.raises(errors.AuthenticationError):  # bob may not read alice's experiment
        await call(client.get_experiment(exp))
    await close(client)
    assert fake.requests[-1].headers["Authorization"].startswith("Basic ")


def test_no_credentials_is_refused_unless_anonymous(fake: FakeMyTardis) -> None:
    with pytest.raises(errors.CredentialsError, match="anonymous=True"):
        MyTardisClient(fake.base_url, transport=fake.transport())
    with pytest.raises(errors.CredentialsError, match="username"):
        MyTardisClient(fake.base_url, api_key="k", transport=fake.transport())
    with pytest.raises(errors.ConfigurationError, match="MYTARDIS_URL"):
        MyTardisClient(username="alice", api_key="k")


async def test_anonymous_sees_public_data_only(kind: str, fake: FakeMyTardis) -> None:
    public = fake.add_experiment("open", "alice", public_access=PUBLIC_ACCESS_METADATA)
    private = fake.add_experiment("closed", "alice")
    client = make(kind, fake, username=None, api_key=None, anonymous=True)
    assert [e.id for e in await collect(client.experiments())] == [public]
    with pytest.raises(errors.AuthenticationError):
        await call(client.get_experiment(private))
    await close(client)
    assert all("Authorization" not in r.headers for r in fake.requests)


async def test_bad_credentials_give_authentication_error(kind: str, fake: FakeMyTardis) -> None:
    client = make(kind, fake, api_key="wrong")
    with pytest.raises(errors.AuthenticationError) as info:
        await collect(client.experiments())
    await close(client)
    assert info.value.status == 401 and "wrong" not in str(info.value)


async def test_plain_http_credentials_refused_except_loopback(kind: str) -> None:
    remote = FakeMyTardis({"api": "http://mytardis.example.org"})
    remote.add_user("alice", "alice-pw", "alice-key")
    client = make(kind, remote)
    with pytest.raises(errors.InsecureTransportError):
        await collect(client.experiments())
    await close(client)
    assert remote.requests == []  # nothing was sent
    local = FakeMyTardis({"api": "http://127.0.0.1:8000"})
    local.add_user("alice", "alice-pw", "alice-key")
    client = make(kind, local)
    assert await collect(client.experiments()) == []
    await close(client)


# --- listings and get -----------------------------------------------------------------------------------------
async def test_listing_pages_concurrently_with_filters(
    mt: Any, fake: FakeMyTardis, kind: str
) -> None:
    ids = [fake.add_experiment(f"exp {i:02d}", "alice") for i in range(25)]
    pages = mt.experiments(page_size=10, order_by="-title")
    got = await collect(pages)
    assert [e.id for e in got] == ids[::-1]
    assert pages.total == 25
    assert offsets(fake, "/api/v1/experiment/") == [0, 10, 20]
    assert [e.title for e in await collect(mt.experiments(title="exp 07"))] == ["exp 07"]
    few = await collect(mt.experiments(max_items=3))
    assert len(few) == 3
    assert fake.requests[-1].url.params["limit"] == "3"


async def test_listing_argument_errors(mt: Any, fake: FakeMyTardis) -> None:
    fake.add_experiment("x", "alice")
    with pytest.raises(errors.ConfigurationError, match="cannot filter by"):
        mt.experiments(colour="blue")
    with pytest.raises(errors.ConfigurationError, match="page_size"):
        mt.experiments(page_size=5000)
    with pytest.raises(errors.BadRequestError, match="ordering"):  # Tastypie's 400 {"error": ...}
        await collect(mt.experiments(order_by="colour"))


@pytest.fixture
def world(fake: FakeMyTardis) -> dict[str, int]:
    """One object of every kind, visible to alice."""
    fake.add_group("managers", members=["alice"])
    fac = fake.add_facility("Beamline facility", "managers")
    inst = fake.add_instrument("Detector", fac)
    exp = fake.add_experiment("World", "alice")
    ds = fake.add_dataset("World data", [exp], instrument_id=inst)
    df = fake.add_datafile(ds, "w.txt", b"world")
    return {"facility": fac, "instrument": inst, "experiment": exp, "dataset": ds, "datafile": df}


LISTINGS = [
    ("experiments", "get_experiment"),
    ("datasets", "get_dataset"),
    ("datafiles", "get_datafile"),
    ("experiment_parameter_sets", "get_experiment_parameter_set"),
    ("experiment_parameters", "get_experiment_parameter"),
    ("dataset_parameter_sets", "get_dataset_parameter_set"),
    ("dataset_parameters", "get_dataset_parameter"),
    ("datafile_parameter_sets", "get_datafile_parameter_set"),
    ("datafile_parameters", "get_datafile_parameter"),
    ("schemas", "get_schema"),
    ("parameter_names", "get_parameter_name"),
    ("replicas", "get_replica"),
    ("storage_boxes", "get_storage_box"),
    ("storage_box_options", "get_storage_box_option"),
    ("storage_box_attributes", "get_storage_box_attribute"),
    ("users", "get_user"),
    ("groups", "get_group"),
    ("facilities", "get_facility"),
    ("instruments", "get_instrument"),
    ("object_acls", "get_object_acl"),
]


async def test_every_model_lists_and_gets_typed(
    mt: Any, fake: FakeMyTardis, world: dict[str, int]
) -> None:
    await call(mt.add_experiment_parameter_set(world["experiment"], NS, {"energy": 1}))
    await call(mt.add_dataset_parameter_set(world["dataset"], DS_NS, {"sample": "Si"}))
    await call(mt.add_datafile_parameter_set(world["datafile"], DF_NS, {"exposure": 2}))
    for listing, getter in LISTINGS:
        items = await collect(getattr(mt, listing)())
        assert items, listing
        one = await call(getattr(mt, getter)(items[0].id))
        assert type(one) is type(items[0]) and one.id == items[0].id, getter
        assert type(one).__module__.startswith("scibind_generated.mytardis.models"), getter
        # by resource URI too
        if getattr(one, "resource_uri", None):
            again = await call(getattr(mt, getter)(one.resource_uri))
            assert again.id == one.id
    files = await collect(mt.dataset_files(world["dataset"], order_by="-filename"))
    assert [f.filename for f in files] == ["w.txt"]


async def test_get_missing_is_not_found(mt: Any) -> None:
    with pytest.raises(errors.NotFoundError):
        await call(mt.get_experiment(999))
    with pytest.raises(errors.ConfigurationError):
        await call(mt.get_dataset("not-a-uri"))


# --- experiments, datasets, parameter sets -----------------------------------------------------------------------
async def test_create_experiment_and_dataset_with_parameter_sets(
    mt: Any, fake: FakeMyTardis
) -> None:
    exp = await call(
        mt.create_experiment(
            "Beamtime",
            description="d",
            parameter_sets={NS: {"energy": 12.5, "beamline": "B1"}},
            public_access=PUBLIC_ACCESS_FULL,
        )
    )
    assert exp.title == "Beamtime" and exp.public_access == PUBLIC_ACCESS_FULL
    (pset,) = exp.parameter_sets
    assert pset.schema.namespace == NS
    values = {p.numerical_value or p.string_value for p in pset.parameters}
    assert values == {12.5, "B1"}
    sent = json.loads(fake.requests[-1].content)
    assert sent["parameter_sets"] == [
        {
            "schema": NS,
            "parameters": [
                {"name": "energy", "value": "12.5"},
                {"name": "beamline", "value": "B1"},
            ],
        }
    ]
    ds = await call(
        mt.create_dataset(
            "run 1", [exp.id], directory="run1", parameter_sets=[(DS_NS, {"sample": "Si"})]
        )
    )
    assert ds.experiments == [f"/api/v1/experiment/{exp.id}/"]
    assert ds.parameter_sets[0].parameters[0].string_value == "Si"
    changed = await call(mt.update_experiment(exp.id, title="Beamtime 2"))
    assert changed.title == "Beamtime 2"
    ds2 = await call(mt.update_dataset(ds.id, description="run one"))
    assert ds2.description == "run one"
    with pytest.raises(errors.ConfigurationError, match="unknown field"):
        await call(mt.update_experiment(exp.id, colour="blue"))


async def test_add_parameter_sets_and_parameters_return_ids_from_location(
    mt: Any, fake: FakeMyTardis
) -> None:
    exp = fake.add_experiment("E", "alice")
    ds = fake.add_dataset("D", [exp])
    df = fake.add_datafile(ds, "f.bin", b"x")
    sid = await call(mt.add_experiment_parameter_set(exp, NS, {"beamline": "B2"}))
    assert fake.parameter_sets["experiment"][sid]["experiment"] == exp
    pid = await call(mt.add_experiment_parameter(sid, "energy", 7))
    param = await call(mt.get_experiment_parameter(pid))
    assert param.numerical_value == 7
    dsid = await call(mt.add_dataset_parameter_set(ds, DS_NS, {"sample": "Ge"}))
    assert await call(mt.add_dataset_parameter(dsid, "sample", "Ga")) > 0
    dfid = await call(mt.add_datafile_parameter_set(df, DF_NS, {"exposure": 0.5}))
    assert await call(mt.add_datafile_parameter(dfid, "exposure", 1.5)) > 0
    sets = await collect(mt.datafile_parameter_sets(datafile__id=df))
    assert [p.numerical_value for p in sets[0].parameters] == [0.5, 1.5]


async def test_unknown_schema_and_no_write_access(mt: Any, fake: FakeMyTardis) -> None:
    exp = fake.add_experiment("E", "alice")
    with pytest.raises(errors.NotFoundError):
        await call(mt.add_experiment_parameter_set(exp, "http://nope", {"a": 1}))
    other = fake.add_experiment("bob's", "bob")
    with pytest.raises(errors.AuthenticationError):  # MyTardis answers 401 for "not allowed"
        await call(mt.create_dataset("x", [other]))


async def test_delete_experiment(mt: Any, fake: FakeMyTardis) -> None:
    exp = fake.add_experiment("E", "alice")
    await call(mt.delete_experiment(exp))
    assert exp not in fake.experiments
    with pytest.raises(errors.NotFoundError):
        await call(mt.delete_experiment(exp))


async def test_instruments_and_sharing(mt: Any, kind: str, fake: FakeMyTardis) -> None:
    fake.add_user("carol", None, "carol-key", permissions=DEFAULT_PERMISSIONS | {"add_instrument"})
    fake.add_group("managers", members=["carol"])
    fac = fake.add_facility("F", "managers")
    manager = make(kind, fake, username="carol", api_key="carol-key")
    inst = await call(manager.create_instrument("Microscope", fac))
    assert inst.name == "Microscope" and inst.facility.id == fac
    renamed = await call(manager.update_instrument(inst.id, name="Microscope 2"))
    assert renamed.name == "Microscope 2"
    await close(manager)
    with pytest.raises(errors.AuthenticationError):  # alice manages no facility
        await call(mt.create_instrument("Mine", fac))
    exp = fake.add_experiment("E", "alice")
    bob = next(u["id"] for u in fake.users.values() if u["username"] == "bob")
    rule = await call(mt.share_experiment(exp, user=bob, download=True))
    acl = await call(mt.get_object_acl(rule))
    assert acl.entity_id == str(bob) and acl.can_download and not acl.can_write
    with pytest.raises(errors.ConfigurationError):
        await call(mt.share_experiment(exp))


# --- datafiles -------------------------------------------------------------------------------------------------------
@pytest.fixture
def dataset(fake: FakeMyTardis) -> int:
    exp = fake.add_experiment("E", "alice")
    return fake.add_dataset("D", [exp])


async def test_upload_datafile_sends_md5_and_streams(
    kind: str, fake: FakeMyTardis, dataset: int, tmp_path: Path
) -> None:
    data = os.urandom(700_000) + b"\r\n--+++\r\n" + os.urandom(1000)  # holds the generated boundary
    source = tmp_path / "scan.h5"
    source.write_bytes(data)
    spy = ChunkSpy(fake)
    client = make(kind, fake, transport=spy)
    events: list[ProgressEvent] = []
    df = await call(
        client.upload_datafile(
            dataset,
            source,
            directory="raw",
            parameter_sets={DF_NS: {"exposure": 3}},
            progress=events.append,
        )
    )
    assert df.filename == "scan.h5" and df.directory == "raw" and df.size == len(data)
    assert df.md5sum == hashlib.md5(data).hexdigest()
    assert [r.verified for r in df.replicas] == [True]
    assert fake.file_bytes(df.id) == data
    upload = next(r for r in fake.requests if r.method == "POST")
    assert "boundary=+++" not in upload.headers["Content-Type"]
    assert int(upload.headers["Content-Length"]) == len(upload.content) == sum(spy.sizes)
    meta = json.loads(multipart_field(upload, "json_data"))
    assert meta["md5sum"] == hashlib.md5(data).hexdigest() and meta["size"] == len(data)
    assert meta["dataset"] == f"/api/v1/dataset/{dataset}/"
    # the file first, then json_data with the md5 computed while it was sent
    assert multipart_names(upload) == ["attached_file", "json_data"]
    # streamed: several chunks, none near the size of the file
    assert len(spy.sizes) >= 4 and max(spy.sizes) <= 256 * 1024
    assert events[0].phase == "uploading" and events[-1].phase == "done"
    assert "hashing" not in {e.phase for e in events}  # one pass: no separate hashing
    assert events[-1].done == len(data)
    # the same directory and filename again: 409
    with pytest.raises(errors.ConflictError):
        await call(client.upload_datafile(dataset, source, directory="raw"))
    await close(client)


async def test_upload_memory_stays_bounded(kind: str, fake: FakeMyTardis, tmp_path: Path) -> None:
    exp = fake.add_experiment("E", "alice")
    ds = fake.add_dataset("D", [exp])
    existing = fake.add_datafile(ds, "big.bin", b"placeholder")
    size = 48 * 1024 * 1024
    source = tmp_path / "big.bin"
    with open(source, "wb") as f:
        for _ in range(size // (1 << 20)):
            f.write(os.urandom(1 << 20))
    sink = DiscardingUpload(fake, existing)
    client = make(kind, fake, transport=sink)
    tracemalloc.start()
    try:
        await call(client.upload_datafile(ds, source))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await close(client)
    assert sink.received > size
    assert peak < 12 * 1024 * 1024, f"peak {peak} bytes while uploading {size} bytes"


async def test_staged_registration_then_verify_and_download(
    mt: Any, fake: FakeMyTardis, dataset: int, tmp_path: Path
) -> None:
    data = b"staged bytes" * 1000
    local = tmp_path / "s.bin"
    local.write_bytes(data)
    staged = await call(mt.register_staged_datafile(dataset, "s.bin", path=local))
    assert isinstance(staged, StagedDatafile)
    assert staged.staging_path.startswith("/srv/mytardis/staging/")
    assert fake.file_bytes(staged.id) is None  # nothing verified yet
    fake.write_staged_file(staged.staging_path, data)  # what scp/rsync would do
    await call(mt.verify_datafile(staged.id))
    out = await call(mt.download_datafile(staged.id, tmp_path / "out"))
    assert out.read_bytes() == data
    with pytest.raises(errors.ConfigurationError):
        await call(mt.register_staged_datafile(dataset, "t.bin"))


async def test_shared_storage_registration(mt: Any, fake: FakeMyTardis, dataset: int) -> None:
    data = b"on the share"
    fake.add_storage_box("share", "/mnt/share")
    fake.put_shared_file("share", "run1/x.dat", data)
    df = await call(
        mt.register_shared_datafile(
            dataset,
            "x.dat",
            {"share": "run1/x.dat"},
            size=len(data),
            md5sum=hashlib.md5(data).hexdigest(),
        )
    )
    assert [(r.location, r.uri, r.verified) for r in df.replicas] == [("share", "run1/x.dat", True)]
    bad = await call(
        mt.register_shared_datafile(
            dataset, "y.dat", [("share", "run1/x.dat")], size=len(data), md5sum="0" * 32
        )
    )
    assert [r.verified for r in bad.replicas] == [False]
    rid = await call(mt.create_replica(df.id, "run1/x.dat", "default"))
    assert (await call(mt.get_replica(rid))).datafile == f"/api/v1/dataset_file/{df.id}/"
    await call(mt.update_datafile(df.id, mimetype="text/plain"))
    assert (await call(mt.get_datafile(df.id))).mimetype == "text/plain"


async def test_download_verified_and_atomic(
    mt: Any, fake: FakeMyTardis, dataset: int, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    df = fake.add_datafile(dataset, "d.bin", data)
    out = await call(mt.download_datafile(df, tmp_path))
    assert out == tmp_path / "d.bin" and out.read_bytes() == data
    assert "Authorization" in fake.requests[-1].headers
    # corrupt the stored copy: the download fails and leaves nothing behind
    key = next(k for k, v in fake.stored.items() if v == data)
    fake.stored[key] = bytes(len(data))
    with pytest.raises(errors.ChecksumMismatchError):
        await call(mt.download_datafile(df, tmp_path / "bad.bin"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.bin"]


async def test_download_needs_download_access(
    kind: str, fake: FakeMyTardis, tmp_path: Path
) -> None:
    exp = fake.add_experiment("E", "alice")
    fake.grant(exp, user="bob", read=True, download=False)
    ds = fake.add_dataset("D", [exp])
    df = fake.add_datafile(ds, "d.bin", b"secret")
    client = make(kind, fake, username="bob", api_key="bob-key")
    with pytest.raises(errors.PermissionDeniedError):
        await call(client.download_datafile(df, tmp_path / "d.bin"))
    await close(client)
    assert not (tmp_path / "d.bin").exists()


# --- helpers ----------------------------------------------------------------------------------------------------
def multipart_parts(request: httpx.Request) -> list[tuple[str, bytes]]:
    boundary = re.search(r"boundary=([^;]+)", request.headers["Content-Type"]).group(1)  # type: ignore[union-attr]
    parts = []
    for part in (b"\r\n" + request.content).split(b"\r\n--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, body = part.partition(b"\r\n\r\n")
        parts.append((re.search(rb' name="([^"]*)"', head).group(1).decode(), body))  # type: ignore[union-attr]
    return parts


def multipart_names(request: httpx.Request) -> list[str]:
    return [name for name, _ in multipart_parts(request)]


def multipart_field(request: httpx.Request, name: str) -> bytes:
    return dict(multipart_parts(request))[name]


class ChunkSpy(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Reads request bodies chunk by chunk (recording chunk sizes) before handing them to the fake."""

    def __init__(self, fake: FakeMyTardis) -> None:
        self.fake = fake
        self.sizes: list[int] = []

    def _forward(self, request: httpx.Request, chunks: list[bytes]) -> httpx.Response:
        if request.method == "POST":
            self.sizes += [len(c) for c in chunks]
        rebuilt = httpx.Request(
            request.method, request.url, headers=request.headers, content=b"".join(chunks)
        )
        return self.fake.handle(rebuilt)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._forward(request, list(request.stream))  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._forward(request, [c async for c in request.stream])  # type: ignore[union-attr]


class DiscardingUpload(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Consumes an upload without keeping it (so only the client's memory is measured); 201 to ``existing``."""

    def __init__(self, fake: FakeMyTardis, existing: int) -> None:
        self.fake = fake
        self.existing = existing
        self.received = 0

    def _created(self) -> httpx.Response:
        return httpx.Response(
            201, headers={"Location": self.fake.uri("dataset_file", self.existing)}
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self.fake.handle(request)
        for chunk in request.stream:  # type: ignore[union-attr]
            self.received += len(chunk)
        return self._created()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self.fake.handle(request)
        async for chunk in request.stream:  # type: ignore[union-attr]
            self.received += len(chunk)
        return self._created()


async def test_over_a_real_loopback_socket(kind: str, fake: FakeMyTardis, tmp_path: Path) -> None:
    exp = fake.add_experiment("E", "alice")
    ds = fake.add_dataset("D", [exp])
    data = os.urandom(400_000)
    (tmp_path / "f.bin").write_bytes(data)
    with fake.serve() as base:
        cls = MyTardisClient if kind == "sync" else AsyncMyTardisClient
        client = cls(base, username="alice", api_key="alice-key", config=FAST)
        df = await call(client.upload_datafile(ds, tmp_path / "f.bin"))
        out = await call(client.download_datafile(df.id, tmp_path / "back.bin"))
        await close(client)
    assert out.read_bytes() == data and df.md5sum == hashlib.md5(data).hexdigest()


async def test_site_under_a_path_prefix(kind: str, tmp_path: Path) -> None:
    site = FakeMyTardis({"api": "https://mytardis.fake.test/site"})
    site.add_user("alice", "alice-pw", "alice-key")
    client = make(kind, site)
    exp = await call(client.create_experiment("E"))
    ds = await call(client.create_dataset("D", [exp.id]))
    assert ds.experiments == [f"/site/api/v1/experiment/{exp.id}/"]
    (tmp_path / "a.txt").write_bytes(b"abc")
    df = await call(client.upload_datafile(ds.resource_uri, tmp_path / "a.txt"))
    assert df.resource_uri == f"/site/api/v1/dataset_file/{df.id}/"
    assert [f.id for f in await collect(client.dataset_files(ds.resource_uri))] == [df.id]
    out = await call(client.download_datafile(df.resource_uri, tmp_path / "b.txt"))
    await close(client)
    assert out.read_bytes() == b"abc"
    assert all(r.url.path.startswith("/site/api/v1/") for r in site.requests)


# --- single-pass upload ---------------------------------------------------------------------------------------
class ReadCounter:
    """Counts opens of one file and the bytes read from it, through any ``open()`` in the process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.path = path.resolve()
        self.opens = 0
        self.bytes = 0
        self.threads: set[int] = set()
        """Threads that read from the file."""
        real_open = builtins.open

        def counting_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(file, mode, *args, **kwargs)
            if isinstance(file, str | os.PathLike) and Path(file).resolve() == self.path:
                self.opens += 1
                return _CountedFile(handle, self)
            return handle

        monkeypatch.setattr(builtins, "open", counting_open)


class _CountedFile:
    def __init__(self, handle: Any, counter: ReadCounter) -> None:
        self._handle = handle
        self._counter = counter

    def read(self, *args: Any) -> bytes:
        data: bytes = self._handle.read(*args)
        self._counter.bytes += len(data)
        self._counter.threads.add(threading.get_ident())
        return data

    def readinto(self, buffer: Any) -> int:
        n: int = self._handle.readinto(buffer) or 0
        self._counter.bytes += n
        self._counter.threads.add(threading.get_ident())
        return n

    def __enter__(self) -> _CountedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


class DuringUpload(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Hands requests to the fake; while an upload body is read, calls ``action(chunks_so_far)`` per chunk.

    ``action`` may change the file being sent, or raise to break the connection.
    """

    def __init__(self, fake: FakeMyTardis, action: Callable[[int], None]) -> None:
        self.fake = fake
        self.action = action
        self.posts = 0

    def _forward(self, request: httpx.Request, chunks: list[bytes]) -> httpx.Response:
        rebuilt = httpx.Request(
            request.method, request.url, headers=request.headers, content=b"".join(chunks)
        )
        return self.fake.handle(rebuilt)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self.fake.handle(request)
        self.posts += 1
        chunks: list[bytes] = []
        for chunk in request.stream:  # type: ignore[union-attr]
            chunks.append(chunk)
            self.action(len(chunks))
        return self._forward(request, chunks)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self.fake.handle(request)
        self.posts += 1
        chunks: list[bytes] = []
        async for chunk in request.stream:  # type: ignore[union-attr]
            chunks.append(chunk)
            self.action(len(chunks))
        return self._forward(request, chunks)


async def test_upload_reads_the_file_once(
    kind: str,
    fake: FakeMyTardis,
    dataset: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = os.urandom(1_000_003)
    source = tmp_path / "once.bin"
    source.write_bytes(data)
    reads = ReadCounter(monkeypatch, source)
    client = make(kind, fake)
    df = await call(client.upload_datafile(dataset, source))
    await close(client)
    assert (reads.opens, reads.bytes) == (1, len(data))
    assert df.md5sum == hashlib.md5(data).hexdigest() and fake.file_bytes(df.id) == data
    if kind == "async":  # the event loop never waits on the disk: reads run in worker threads
        assert reads.threads and threading.get_ident() not in reads.threads


async def test_upload_md5_is_that_of_the_bytes_sent_when_the_file_changes(
    kind: str, fake: FakeMyTardis, dataset: int, tmp_path: Path
) -> None:
    data = os.urandom(1_000_000)
    source = tmp_path / "live.bin"
    source.write_bytes(data)

    def change(chunks: int) -> None:
        if (
            chunks == 2
        ):  # the head and the first piece of the file are out: rewrite a later region, append
            with open(source, "r+b") as f:
                f.seek(700_000)
                f.write(b"X" * 10_000)
            with open(source, "ab") as f:
                f.write(b"appended later")

    client = make(kind, fake, transport=DuringUpload(fake, change))
    df = await call(client.upload_datafile(dataset, source))
    await close(client)
    sent = (
        data[:700_000] + b"X" * 10_000 + data[710_000:]
    )  # the size at the start: no appended bytes
    assert df.size == len(data) and df.md5sum == hashlib.md5(sent).hexdigest()
    assert [r.verified for r in df.replicas] == [
        True
    ]  # the server checked the md5 against its bytes
    assert fake.file_bytes(df.id) == sent


async def test_upload_of_a_file_that_shrinks_fails_clearly(
    kind: str, fake: FakeMyTardis, dataset: int, tmp_path: Path
) -> None:
    source = tmp_path / "shrink.bin"
    source.write_bytes(os.urandom(800_000))

    def shrink(chunks: int) -> None:
        if chunks == 2:
            with open(source, "r+b") as f:
                f.truncate(300_000)

    client = make(kind, fake, transport=DuringUpload(fake, shrink))
    with pytest.raises(errors.TransferError, match="shrank while it was being uploaded"):
        await call(client.upload_datafile(dataset, source))
    await close(client)
    assert not [d for d in fake.datafiles.values() if d["filename"] == "shrink.bin"]


async def test_upload_resends_the_whole_body_after_a_connect_error(
    kind: str, fake: FakeMyTardis, dataset: int, tmp_path: Path
) -> None:
    data = os.urandom(900_000)
    source = tmp_path / "again.bin"
    source.write_bytes(data)
    failed = []

    def refuse_once(chunks: int) -> None:
        if chunks == 3 and not failed:
            failed.append(chunks)
            raise httpx.ConnectError("connection refused")

    transport = DuringUpload(fake, refuse_once)
    events: list[ProgressEvent] = []
    client = make(kind, fake, transport=transport)
    df = await call(client.upload_datafile(dataset, source, progress=events.append))
    await close(client)
    assert transport.posts == 2 and failed
    assert fake.file_bytes(df.id) == data and df.md5sum == hashlib.md5(data).hexdigest()
    assert events[-1].phase == "done" and events[-1].done == len(data)
    assert max(e.done for e in events) <= len(data)  # the failed attempt's bytes were taken back


async def test_raw_generated_upload_of_bytes_holding_the_old_fixed_boundary(
    kind: str, fake: FakeMyTardis, dataset: int
) -> None:
    from scibind_generated.mytardis.api.datafiles import create_datafile
    from scibind_generated.mytardis.models import DataFileUpload
    from scibind_generated.mytardis.types import File

    data = b"head\r\n--+++\r\n" + os.urandom(2000) + b"\r\n--+++--\r\n"
    meta = {
        "dataset": f"/api/v1/dataset/{dataset}/",
        "filename": "raw.bin",
        "size": len(data),
        "md5sum": hashlib.md5(data).hexdigest(),
    }
    body = DataFileUpload(
        json_data=json.dumps(meta),
        attached_file=File(payload=io.BytesIO(data), file_name="raw.bin"),
    )
    client = make(kind, fake)
    if kind == "sync":
        resp = create_datafile.sync_detailed(client=client.raw, body=body)
    else:
        resp = await create_datafile.asyncio_detailed(client=client.raw, body=body)
    await close(client)
    assert resp.status_code == 201
    upload = next(r for r in fake.requests if r.method == "POST")
    assert "boundary=+++" not in upload.headers["Content-Type"]
    assert (
        fake.file_bytes(MyTardisClient.id_of(resp.headers["Location"])) == data
    )  # stored and verified


# --- references -------------------------------------------------------------------------------------------------
def test_id_of_and_uri(fake: FakeMyTardis) -> None:
    id_of = MyTardisClient.id_of
    assert id_of(12) == 12 and id_of("12") == 12
    assert id_of("/api/v1/dataset/12/") == 12 and id_of("/api/v1/dataset/12") == 12
    assert id_of("/site/api/v1/dataset_file/7/") == 7
    for bad in ("", "/", "/api/v1/dataset/", "dataset", "/api/v1/dataset/x/", "-3"):
        with pytest.raises(errors.ConfigurationError, match="not an id or resource URI"):
            id_of(bad)
    client = make("sync", fake)
    assert client.uri("dataset", 12) == "/api/v1/dataset/12/"
    assert client.uri("dataset", "12") == "/api/v1/dataset/12/"
    assert client.uri("dataset", "/api/v1/dataset/3/") == "/api/v1/dataset/3/"
    client.close()
