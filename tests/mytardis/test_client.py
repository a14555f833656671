"""Every MyTardisClient / AsyncMyTardisClient call against FakeMyTardis, sync and async, with failure paths."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import tracemalloc
from collections.abc import AsyncIterator
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
    meta = json.loads(multipart_field(upload, "json_data"))
    assert meta["md5sum"] == hashlib.md5(data).hexdigest() and meta["size"] == len(data)
    assert meta["dataset"] == f"/api/v1/dataset/{dataset}/"
    # streamed: many chunks, none near the size of the file
    assert len(spy.sizes) > 5 and max(spy.sizes) <= 64 * 1024 + 1024
    assert events[0].phase == "hashing" and events[-1].phase == "done"
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
def multipart_field(request: httpx.Request, name: str) -> bytes:
    boundary = re.search(r"boundary=([^;]+)", request.headers["Content-Type"]).group(1)  # type: ignore[union-attr]
    for part in request.content.split(b"--" + boundary.encode()):
        head, _, body = part.partition(b"\r\n\r\n")
        if f'name="{name}"'.encode() in head:
            return body.removesuffix(b"\r\n")
    raise KeyError(name)


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
