"""pydas parity: links, item search by folder name, the tracker's submission id and results-upload options.

Every call runs against FakeMidas with the sync and the async client, failure paths included; the last test
checks the pydas parity table of docs/midas.md against the clients.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from scibind import errors
from scibind.config import ClientConfig, RetryPolicy
from scibind.midas import AsyncMidasClient, MidasClient
from scibind.testing.midas import FakeMidas

ALICE = "alice@example.org"
BOB = "bob@example.org"
FAST = ClientConfig(retry=RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.002))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "midas.md"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("MIDAS_URL", "MIDAS_EMAIL", "MIDAS_API_KEY", "MIDAS_APPNAME", "MIDAS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def fake() -> FakeMidas:
    f = FakeMidas()
    f.add_user(ALICE, "alice-key", firstname="Alice")
    f.add_user(BOB, "bob-key", firstname="Bob")
    f.add_community("Lab", ALICE, public=True)
    return f


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(kind: str, fake: FakeMidas, transport: Any = None, **kw: Any) -> Any:
    cls = MidasClient if kind == "sync" else AsyncMidasClient
    if not kw.get("anonymous"):
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


def sent(fake: FakeMidas, method: str) -> list[dict[str, str]]:
    """The parameters (query and form) of each request for one API method."""
    out = []
    for r in fake.requests:
        if r.url.params.get("method") == method:
            params = dict(r.url.params)
            if r.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                params.update(parse_qsl(r.content.decode(), keep_blank_values=True))
            out.append(params)
    return out


# --- midas.link.create ---------------------------------------------------------------------------------------------
async def test_create_link(md: Any, kind: str, fake: FakeMidas) -> None:
    public = fake.folder_id("Lab/Public")
    url = "https://data.example.org/scan.nrrd"
    item = await call(md.create_link(public, url))
    assert item.name == url
    detail = await call(md.get_item(item.item_id))
    [revision] = detail.revisions
    [bitstream] = revision.bitstreams
    assert bitstream.name == url and bitstream.sizebytes == "0"
    checksum = hashlib.md5(b"x").hexdigest()
    named = await call(
        md.create_link(public, url, item_name="scan (remote)", length=1234, checksum=checksum)
    )
    assert named.name == "scan (remote)"
    [bitstream] = (await call(md.get_item(named.item_id))).revisions[0].bitstreams
    assert (bitstream.sizebytes, bitstream.checksum) == ("1234", checksum)
    params = sent(fake, "midas.link.create")[-1]
    assert params["folderid"] == str(public) and params["url"] == url and params["token"]
    assert (params["itemname"], params["length"], params["checksum"]) == (
        "scan (remote)",
        "1234",
        checksum,
    )
    # the token travels in the form body of a POST, never in the URL
    link_requests = [r for r in fake.requests if r.url.params.get("method") == "midas.link.create"]
    assert all(r.method == "POST" and "token" not in r.url.params for r in link_requests)
    # the link item is found like any other, and downloading it leads to the URL
    assert [i.item_id for i in await call(md.search_items(url))] == [item.item_id]
    with httpx.Client(transport=fake.transport(), base_url=fake.base_url) as plain:
        first = plain.get("/api/json", params={"method": "midas.item.download", "id": item.item_id})
        second = plain.get(first.headers["Location"])
    assert second.status_code == 302 and second.headers["Location"] == url


async def test_create_link_errors(kind: str, fake: FakeMidas) -> None:
    private = fake.folder_id("Lab/Private")
    alice = make(kind, fake)
    bob = make(kind, fake, email=BOB, api_key="bob-key")
    anonymous = make(kind, fake, anonymous=True)
    try:
        with pytest.raises(errors.PermissionDeniedError, match="Invalid policy or folderid"):
            await call(bob.create_link(private, "https://x.example.org/a"))  # -151: no write access
        with pytest.raises(errors.PermissionDeniedError, match="Anonymous"):
            await call(anonymous.create_link(private, "https://x.example.org/a"))
        with pytest.raises(errors.BadRequestError, match="does not exist"):  # -150
            await call(alice.create_link(99999, "https://x.example.org/a"))
        with pytest.raises(errors.BadRequestError, match="Invalid URL"):
            await call(alice.create_link(private, "not a url"))
        with pytest.raises(errors.ConfigurationError, match="negative"):
            await call(alice.create_link(private, "https://x.example.org/a", length=-1))
        before = len(sent(fake, "midas.link.create"))
        with pytest.raises(errors.ServerError):  # a write: a 503 is not repeated
            await call(
                make(kind, fake, transport=_Unavailable(fake, "midas.link.create")).create_link(
                    private, "https://x.example.org/b"
                )
            )
        assert len(sent(fake, "midas.link.create")) == before
    finally:
        for client in (alice, bob, anonymous):
            await close(client)
    assert not [i for i in fake.items.values() if i["name"].startswith("https://x.example.org")]


# --- midas.item.searchbynameandfoldername ------------------------------------------------------------------------------
async def test_search_items_by_folder_name(kind: str, fake: FakeMidas) -> None:
    public, private = fake.folder_id("Lab/Public"), fake.folder_id("Lab/Private")
    in_public = fake.add_folder("results", public, ALICE)
    in_private = fake.add_folder("results", private, ALICE)
    elsewhere = fake.add_folder("other", public, ALICE)
    a = fake.add_item("scan", in_public, ALICE, b"a")
    b = fake.add_item("scan", in_private, ALICE, b"b")
    fake.add_item("scan", elsewhere, ALICE, b"c")
    fake.add_item("notes", in_public, ALICE, b"d")
    alice = make(kind, fake)
    bob = make(kind, fake, email=BOB, api_key="bob-key")
    try:
        found = await call(alice.search_items("scan", folder_name="results"))
        assert sorted((int(i.item_id), int(i.folder_id)) for i in found) == sorted(
            [(a, in_public), (b, in_private)]
        )
        params = sent(fake, "midas.item.searchbynameandfoldername")[-1]
        assert (params["name"], params["folderName"]) == ("scan", "results")
        # only what the caller may read
        assert [
            int(i.item_id) for i in await call(bob.search_items("scan", folder_name="results"))
        ] == [a]
        assert await call(alice.search_items("scan", folder_name="nothing")) == []
        with pytest.raises(errors.ConfigurationError, match="not both"):
            await call(alice.search_items("scan", in_public, folder_name="results"))
        # a read: a 503 is retried
        flaky = make(
            kind, fake, transport=_Unavailable(fake, "midas.item.searchbynameandfoldername")
        )
        assert len(await call(flaky.search_items("scan", folder_name="results"))) == 2
        await close(flaky)
    finally:
        await close(alice)
        await close(bob)


# --- tracker: add_scalar(submission_id=...) --------------------------------------------------------------------------
async def test_add_scalar_with_a_submission_id_and_options(
    md: Any, kind: str, fake: FakeMidas
) -> None:
    comm = await call(md.get_community(name="Lab"))
    sub = await call(md.create_submission(comm.community_id, "nightly", "abc", uuid="run-1"))
    scalar = await call(
        md.add_scalar(
            comm.community_id,
            "nightly",
            "dice",
            0.91,
            submission_id=sub.submission_id,
            branch="main",
            build_results_url="https://ci.example.org/1",
            silent=True,
        )
    )
    assert scalar.submission_id == sub.submission_id
    assert (scalar.branch, scalar.build_results_url) == ("main", "https://ci.example.org/1")
    params = sent(fake, "midas.tracker.scalar.add")[-1]
    assert params["submissionId"] == sub.submission_id and "submissionUuid" not in params
    assert params["silent"] == "true" and int(scalar.scalar_id) not in fake.notified_scalars
    loud = await call(md.add_scalar(comm.community_id, "nightly", "dice", 0.5))
    assert loud.submission_id == "-1" and int(loud.scalar_id) in fake.notified_scalars
    with pytest.raises(errors.PermissionDeniedError, match="config item"):  # module code 403
        await call(md.add_scalar(comm.community_id, "nightly", "dice", 1.0, config_item_id=99999))


# --- tracker: upload_json_results options ----------------------------------------------------------------------------
async def test_upload_json_results_with_every_option(
    md: Any, kind: str, fake: FakeMidas, tmp_path: Path
) -> None:
    comm = await call(md.get_community(name="Lab"))
    private = fake.folder_id("Lab/Private")
    config, test_data, truth = (
        fake.add_item(name, private, ALICE, b"x") for name in ("config", "test", "truth")
    )
    document = tmp_path / "results.json"
    document.write_text(json.dumps({"metrics": {"dice": 0.8, "hd": 4, "note": "n/a"}, "loss": 1}))
    links = [{"label": "log", "text": "build log", "href": "https://ci.example.org/1/log"}]
    scalars = await call(
        md.upload_json_results(
            document,
            comm.community_id,
            "nightly",
            "abc",
            submit_time="2026-01-02 03:04:05",
            parent_keys=["metrics"],
            config_item_id=config,
            test_dataset_id=test_data,
            truth_dataset_id=truth,
            branch="main",
            build_results_url="https://ci.example.org/1",
            params={"gpu": "a100", "seed": 7},
            extra_urls=links,
            unofficial=True,
            silent=True,
        )
    )
    assert sorted(float(s.value) for s in scalars) == [
        0.8,
        4.0,
    ]  # only under parentKeys, numbers only
    for s in scalars:
        assert (s.branch, s.build_results_url, s.official) == (
            "main",
            "https://ci.example.org/1",
            "0",
        )
        assert json.loads(s.params) == {"gpu": "a100", "seed": 7}
        assert json.loads(s.extra_urls) == links
        assert int(s.scalar_id) not in fake.notified_scalars
    [request] = [
        r
        for r in fake.requests
        if r.url.params.get("method") == "midas.tracker.results.upload.json"
    ]
    query = dict(request.url.params)
    assert request.method == "PUT" and json.loads(request.content)["loss"] == 1
    assert {k: query[k] for k in ("configItemId", "testDatasetId", "truthDatasetId")} == {
        "configItemId": str(config),
        "testDatasetId": str(test_data),
        "truthDatasetId": str(truth),
    }
    assert (query["parentKeys"], query["branch"], query["silent"], query["unofficial"]) == (
        "metrics",
        "main",
        "true",
        "true",
    )
    assert json.loads(query["params"]) == {"gpu": "a100", "seed": 7}
    assert json.loads(query["extraUrls"]) == links
    trends = {fake.trends[int(s.trend_id)]["key"][2:5] for s in scalars}
    assert trends == {(str(config), str(test_data), str(truth))}  # the trends of those items
    # without options nothing extra is sent, and the producer's scalars are official and notified
    plain = await call(md.upload_json_results({"loss": 0.5}, comm.community_id, "nightly", "abc"))
    [request] = [
        r
        for r in fake.requests
        if r.url.params.get("method") == "midas.tracker.results.upload.json"
    ][1:]
    assert not {"params", "extraUrls", "silent", "configItemId"} & set(request.url.params)
    assert plain[0].official == "1" and int(plain[0].scalar_id) in fake.notified_scalars
    with pytest.raises(errors.PermissionDeniedError, match="truth dataset"):
        await call(
            md.upload_json_results(
                {"x": 1}, comm.community_id, "nightly", "abc", truth_dataset_id=99999
            )
        )


# --- the parity table ---------------------------------------------------------------------------------------------------
def _parity_rows() -> list[tuple[str, str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Parity with pydas", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            driver, pydas_call, scibind_call = cells
            rows.append((driver, pydas_call, scibind_call))
    return rows


def test_every_pydas_driver_method_has_a_scibind_call() -> None:
    rows = _parity_rows()
    pydas_methods = {re.match(r"`(\w+)\(", p).group(1) for _, p, _ in rows}  # type: ignore[union-attr]
    # pydas/drivers.py (0.3.x): every public method of BaseDriver and the module drivers
    assert pydas_methods >= {
        "login_with_api_key", "request", "get_server_version", "get_server_info", "list_modules",
        "list_user_folders", "get_default_api_key", "list_users", "get_user_by_name", "get_user_by_id",
        "get_user_by_email", "create_community", "get_community_by_name", "get_community_by_id",
        "get_community_children", "list_communities", "create_folder", "folder_get", "folder_children",
        "delete_folder", "move_folder", "create_item", "item_get", "download_item", "delete_item",
        "get_item_metadata", "set_item_metadata", "share_item", "move_item", "search_item_by_name",
        "search_item_by_name_and_folder", "search_item_by_name_and_folder_name", "create_link",
        "generate_upload_token", "perform_upload", "search", "add_condor_dag", "add_condor_job",
        "extract_dicommetadata", "mfa_otp_login", "create_big_thumbnail", "create_small_thumbnail",
        "solr_advanced_search", "associate_item_with_scalar_data", "create_submission",
        "add_scalar_data", "upload_json_results",
    }  # fmt: skip
    for _driver, pydas_call, scibind_call in rows:
        name = re.match(r"`(\w+)", scibind_call).group(1)  # type: ignore[union-attr]
        for cls in (MidasClient, AsyncMidasClient):
            assert hasattr(cls, name), f"{pydas_call}: {cls.__name__} has no {name}"
        # every keyword the table names is a parameter of the call
        member = getattr(MidasClient, name)
        if callable(member):
            params = inspect.signature(member).parameters
            for keyword in re.findall(r"(\w+)=", scibind_call):
                assert keyword in params, f"{scibind_call}: {name} takes no {keyword}"


class _Unavailable(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The fake, except that the first request for ``method`` answers 503."""

    def __init__(self, fake: FakeMidas, method: str) -> None:
        self.fake = fake
        self.method = method
        self.failed = False

    def _answer(self, request: httpx.Request, body: bytes) -> httpx.Response:
        if request.url.params.get("method") == self.method and not self.failed:
            self.failed = True
            return httpx.Response(503, text="busy")
        rebuilt = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        return self.fake.handle(rebuilt)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, b"".join(request.stream))  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, b"".join([c async for c in request.stream]))  # type: ignore[union-attr]
