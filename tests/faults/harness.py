"""One harness per service facade: how to start it behind fault servers, build a client, and run the calls
the fault scenarios exercise (listing, create, upload, download, a single read), sync or async.

A harness describes what its service can do (``capabilities``); scenarios run for every service that has the
capability they need and are reported as n/a (with the reason in ``docs/faults.md``) for the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
from scibind.config import ClientConfig, RetryPolicy, Timeout
from scibind.testing.faults import FaultServer, serve_with_faults

MODES = ("sync", "async")
PART = 64 * 1024
"""Part / range size in transfer scenarios (fakes are told to accept parts this small)."""

FAST_RETRY = RetryPolicy(
    max_attempts=5, backoff_base=0.01, backoff_max=0.05, retry_after_max=2.0, budget=8.0
)
"""Small backoffs and budget so scenarios are quick; five attempts absorb the four faults a plan injects."""


SIGNED_QUERY = re.compile(
    r"[?&](?:x-amz-signature|x-goog-signature|signature|sig|x-amz-security-token)=([^&#\s\"'<>\\]+)",
    re.IGNORECASE,
)
"""A signature (or session token) in the query of a presigned URL: its value is a secret."""


def signatures_in(text: str) -> list[str]:
    """The signature values of every presigned URL in ``text``."""
    return SIGNED_QUERY.findall(text)


def fast_config(**changes: Any) -> ClientConfig:
    """Test configuration: short timeouts, fast retries (override any field)."""
    base = ClientConfig(
        timeout=Timeout(connect=2.0, read=2.0, write=2.0, pool=5.0), retry=FAST_RETRY
    )
    return attrs.evolve(base, **changes)


async def call(value: Any) -> Any:
    """The result of a facade call: awaited for async clients, as is for sync ones."""
    return await value if inspect.isawaitable(value) else value


async def collect(paginator: Any) -> list[Any]:
    """Every item of a listing, with ``for`` or ``async for`` as the client needs."""
    if paginator._driver.is_async:
        return [item async for item in paginator]
    return list(paginator)


async def close(client: Any) -> None:
    if hasattr(client, "aclose"):
        await client.aclose()
    else:
        client.close()


@attrs.define
class Op:
    """A request pattern of a service call (regex on path+query, and the method)."""

    method: str
    path: str


class Harness:
    """Base class; subclasses fill in the service specifics."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()
    api: FaultServer
    storage: FaultServer | None = None
    secrets: list[str]
    tmp: Path

    # request patterns
    listing_op: ClassVar[Op]
    read_op: ClassVar[Op]
    create_op: ClassVar[Op]
    upload_op: ClassVar[Op]
    upload_init_path: ClassVar[str] = "^$"
    """Requests that start a new resumable upload (none may follow a resume)."""
    download_op: ClassVar[Op]
    page_count: int = 0
    missing_field: ClassVar[str] = ""
    """A required field of ``read_op``'s answer (dropped by the missing-field scenario)."""
    create_is_idempotent: ClassVar[bool] = False
    """The create call is a PUT (repeating it is safe, so the retry layer repeats it)."""
    ranged_downloads: ClassVar[bool] = True
    """Whether downloads honour Range (resume a cut body, parallel ranges)."""
    resume_kind: ClassVar[str] = "range"
    """How a cut download stream continues: ``range`` (Range: bytes=N-), ``offset`` (an offset parameter),
    ``restart`` (the server sends whole files only)."""
    typed_field: ClassVar[str] = ""
    """A field of ``read_op``'s answer whose wrong JSON type must be detected."""

    @property
    def upload_server(self) -> FaultServer:
        """Where upload bytes go (storage when the service uses presigned URLs)."""
        return self.storage or self.api

    @property
    def download_server(self) -> FaultServer:
        return self.storage or self.api

    def __init__(self, tmp: Path, request: Any) -> None:
        self.tmp = tmp
        self.request = request
        self.secrets = []
        self.handed_out: set[str] = set()
        """Signatures of the presigned URLs the fake handed out (JSON bodies, ``Location`` headers)."""
        self._handout_lock = threading.Lock()

    def watched(self, fake: Any) -> Any:
        """``fake``, its answers scanned for presigned URLs, whose signatures join :meth:`all_secrets` (use
        before :func:`serve_with_faults`, which serves ``fake.handle``)."""
        handle = fake.handle

        def recording(request: Any) -> Any:
            response = handle(request)
            found = signatures_in(response.headers.get("location", ""))
            try:
                found += signatures_in(response.content[: 4 << 20].decode("latin-1"))
            except Exception:  # a streamed body: not one the fakes put URLs in
                pass
            if found:
                with self._handout_lock:
                    self.handed_out.update(found)
            return response

        fake.handle = recording
        return fake

    @contextlib.contextmanager
    def running(self) -> Iterator[Harness]:
        raise NotImplementedError
        yield self

    def client(self, mode: str, config: ClientConfig | None = None) -> Any:
        raise NotImplementedError

    def client_at(self, url: str, mode: str, config: ClientConfig, transport: Any) -> Any:
        """A client with this service's credentials for another base URL (never contacted)."""
        raise NotImplementedError

    def sent_credentials(self, request: Any) -> bool:
        """Whether a recorded request carried this service's credentials."""
        return bool(request.authorization)

    def all_secrets(self) -> list[str]:
        """The credentials given to clients, every credential the servers saw in Authorization headers
        (minted access tokens included), and the signatures of presigned URLs: those the fake handed out
        and those the servers were asked for."""
        found = list(self.secrets)
        with self._handout_lock:
            found += sorted(self.handed_out)
        for server in (self.api, self.storage):
            for r in server.requests if server is not None else []:
                if r.authorization:
                    found.append(r.authorization.split(" ", 1)[-1])
                found += signatures_in(r.target)
        return found

    # listing ---------------------------------------------------------------------------------
    def seed_listing(self) -> list[Any]:
        """Create items; return the keys the listing must yield, in order."""
        raise NotImplementedError

    def listing(self, client: Any) -> Any:
        raise NotImplementedError

    async def list_all(self, client: Any) -> list[Any]:
        """Every item of the listing."""
        return await collect(self.listing(client))

    def key(self, item: Any) -> Any:
        raise NotImplementedError

    # a single read ---------------------------------------------------------------------------
    def seed_read(self) -> Any:
        return None

    def read_call(self, client: Any, handle: Any) -> Any:
        """The facade call (its value for sync clients, an awaitable for async ones)."""
        raise NotImplementedError

    async def read(self, client: Any, handle: Any) -> Any:
        return await call(self.read_call(client, handle))

    # create (not idempotent) -----------------------------------------------------------------
    async def create(self, client: Any, label: str) -> Any:
        raise NotImplementedError

    def created(self, label: str) -> int:
        """How many records with this label the server holds."""
        raise NotImplementedError

    # transfers -------------------------------------------------------------------------------
    async def upload(self, client: Any, path: Path, *, multipart: bool = True) -> Any:
        raise NotImplementedError

    def uploaded(self, handle: Any) -> bytes:
        raise NotImplementedError

    def upload_requests(self, size: int) -> int:
        """Requests carrying the bytes of an upload of ``size`` bytes (parts of PART bytes)."""
        return -(-size // PART) if size > PART else 1

    def seed_download(self, data: bytes) -> Any:
        raise NotImplementedError

    async def download(self, client: Any, handle: Any, dest: Path) -> Path:
        raise NotImplementedError

    def client_source(self, mode: str) -> str:
        """Python source of an expression building a client like :meth:`client` (``CONFIG`` in scope, and
        ``SECRET``: the credential, which reaches the child through its environment, never its argv)."""
        raise NotImplementedError

    @property
    def child_secret(self) -> str:
        """The credential a child process gets as ``SECRET`` (from ``SCIBIND_FAULTS_SECRET``)."""
        raise NotImplementedError

    def download_source(self, handle: Any, dest: Path, mode: str) -> str:
        """Python source of the download call on ``client`` (as :meth:`download` makes it)."""
        raise NotImplementedError

    def upload_source(self, path: Path) -> str:
        raise NotImplementedError


CHILD_SECRET_ENV = "SCIBIND_FAULTS_SECRET"
CHILD_LOG_ENV = "SCIBIND_FAULTS_LOG"
SCRIPT_CONFIG = (
    "import logging, os\n"
    f"logging.basicConfig(filename=os.environ[{CHILD_LOG_ENV!r}], level=logging.DEBUG, "
    "format='%(name)s %(levelname)s %(message)s')\n"
    f"SECRET = os.environ[{CHILD_SECRET_ENV!r}]\n"
    "from scibind.config import ClientConfig, RetryPolicy, Timeout\n"
    "CONFIG = ClientConfig(timeout=Timeout(connect=5, read=120, write=120, pool=120), "
    "retry=RetryPolicy(backoff_base=0.01, backoff_max=0.05))\n"
)


def script(mode: str, client: str, call_expr: str) -> str:
    """Python source that builds ``client`` (an expression using CONFIG) and runs ``call_expr`` on it, with
    the sync or the async client class (``CLS`` is bound to the right one in ``client``)."""
    if mode == "sync":
        return f"{SCRIPT_CONFIG}client = {client}\nwith client:\n    {call_expr}\n"
    return (
        f"{SCRIPT_CONFIG}import asyncio\n\n"
        f"async def main():\n    client = {client}\n    async with client:\n        await {call_expr}\n\n"
        "asyncio.run(main())\n"
    )


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ===================================================================================== dserver (real)
class DServerHarness(Harness):
    """The real dserver (subprocess), reverse-proxied by the fault server."""

    name = "dserver"
    capabilities = frozenset({"listing", "read", "create", "load", "auth"})
    listing_op = Op("POST", r"^/uris\?")
    read_op = Op("GET", r"^/uris/")
    create_op = Op("PUT", r"^/uris/")
    create_is_idempotent = True
    missing_field = "uuid"
    typed_field = "frozen_at"

    @contextlib.contextmanager
    def running(self) -> Iterator[Harness]:
        self.server = self.request.getfixturevalue("dserver_server")
        self.token = self.server.token()
        self.secrets = [self.token]
        with FaultServer(self.server.url) as api:
            self.api = api
            yield self

    def client(self, mode: str, config: ClientConfig | None = None) -> Any:
        from scibind.dserver import AsyncDServer, DServer

        cls = DServer if mode == "sync" else AsyncDServer
        return cls(self.api.url, token=self.token, config=config or fast_config())

    def client_at(self, url: str, mode: str, config: ClientConfig, transport: Any) -> Any:
        from scibind.dserver import AsyncDServer, DServer

        cls = DServer if mode == "sync" else AsyncDServer
        return cls(url, token=self.token, config=config, transport=transport)

    def seed_listing(self) -> list[Any]:
        self.tag = f"faults-{uuid.uuid4().hex[:10]}"
        bodies = self.server.seed_datasets(23, tags=[self.tag])
        self.page_count = 5
        return sorted(b["uri"] for b in bodies)

    def listing(self, client: Any) -> Any:
        return client.datasets(tags=[self.tag], page_size=5)

    def key(self, item: Any) -> Any:
        return item.uri

    def seed_read(self) -> Any:
        return self.server.seed_datasets(1)[0]["uri"]

    def read_call(self, client: Any, handle: Any) -> Any:
        return client.get_dataset(handle)

    async def create(self, client: Any, label: str) -> Any:
        body = self.server.dataset_body(name=label)
        self._bodies = getattr(self, "_bodies", {})
        self._bodies[label] = body
        return await call(client.register_dataset(body))

    def created(self, label: str) -> int:
        body = self._bodies[label]
        with self.server.client() as http:
            found = http.get(f"/uuids/{body['uuid']}").json()
        return len([d for d in found if d["name"] == label])


# ===================================================================================== gen3 (fake)
class Gen3Harness(Harness):
    """FakeGen3Commons; API (fence, indexd, sheepdog, peregrine) and storage each behind a fault server."""

    name = "gen3"
    capabilities = frozenset(
        {
            "listing",
            "read",
            "create",
            "upload",
            "download",
            "resume_upload",
            "resume_download",
            "resume_ranged_download",
            "auth",
            "load",
            "storage",
        }
    )
    listing_op = Op("GET", r"^/index/index/?\?")
    read_op = Op("GET", r"^/index/index/[^?]")
    create_op = Op("POST", r"^/user/data/upload")
    upload_op = Op("PUT", r"^/fake-data-upload-bucket/")
    upload_init_path = r"^/user/data/multipart/init"
    download_op = Op("GET", r"^/fake-data-upload-bucket/")
    missing_field = "did"
    typed_field = "size"

    @contextlib.contextmanager
    def running(self) -> Iterator[Harness]:
        from scibind.testing.gen3 import FakeGen3Commons

        self.fake = FakeGen3Commons()
        self.fake.storage.min_part_size = PART  # small parts keep multipart scenarios quick
        with serve_with_faults(self.watched(self.fake)) as servers:
            self.api, self.storage = servers["api"], servers["storage"]
            self.credentials = self.fake.new_api_key()
            self.secrets = [self.credentials["api_key"]]
            yield self

    def client(self, mode: str, config: ClientConfig | None = None) -> Any:
        from scibind.gen3 import AsyncGen3Client, Gen3Client

        cls = Gen3Client if mode == "sync" else AsyncGen3Client
        client = cls(api_key=self.credentials["api_key"], config=config or fast_config())
        return client

    def client_at(self, url: str, mode: str, config: ClientConfig, transport: Any) -> Any:
        from scibind.gen3 import AsyncGen3Client, Gen3Client

        with self.fake.rebind({"api": url}):  # a token issued by that commons
            token = self.fake.mint_access_token()
        self.secrets.append(token)
        cls = Gen3Client if mode == "sync" else AsyncGen3Client
        return cls(url, access_token=token, config=config, transport=transport)

    def client_source(self, mode: str) -> str:
        cls = "Gen3Client" if mode == "sync" else "AsyncGen3Client"
        return f"__import__('scibind.gen3', fromlist=['x']).{cls}(api_key=SECRET, config=CONFIG)"

    @property
    def child_secret(self) -> str:
        return str(self.credentials["api_key"])

    def download_source(self, handle: Any, dest: Path, mode: str) -> str:
        return (
            f"client.download({handle!r}, {str(dest)!r}, part_size={PART}, "
            f"min_parallel_size={2 * PART}, parallel=2)"
        )

    def upload_source(self, path: Path) -> str:
        return f"client.upload({str(path)!r}, multipart=True, part_size={PART}, parallel=2)"

    def seed_listing(self) -> list[Any]:
        guids = [
            self.fake.add_file(f"file {i}".encode(), f"f{i}.txt", uploader="lister")
            for i in range(23)
        ]
        self.page_count = 5
        return sorted(guids)

    def listing(self, client: Any) -> Any:
        return client.index_records(uploader="lister", page_size=5)

    def key(self, item: Any) -> Any:
        return item.did

    def seed_read(self) -> Any:
        return self.fake.add_file(b"read me", "read.txt")

    def read_call(self, client: Any, handle: Any) -> Any:
        return client.index_record(handle)

    async def create(self, client: Any, label: str) -> Any:
        path = self.tmp / f"{label}.txt"
        path.write_bytes(label.encode())
        return await call(client.upload(path, file_name=label))

    def created(self, label: str) -> int:
        return sum(1 for r in self.fake.index.records.values() if r.get("file_name") == label)

    async def upload(self, client: Any, path: Path, *, multipart: bool = True) -> Any:
        return await call(client.upload(path, multipart=multipart, part_size=PART, parallel=2))

    def uploaded(self, handle: Any) -> bytes:
        obj = self.fake.object_for(handle.did)
        assert obj is not None
        return bytes(obj.data)

    def seed_download(self, data: bytes) -> Any:
        return self.fake.add_file(data, "download.bin", authz=["/programs/DEV"])

    async def download(self, client: Any, handle: Any, dest: Path) -> Path:
        return await call(  # type: ignore[no-any-return]
            client.download(handle, dest, part_size=PART, min_parallel_size=2 * PART, parallel=2)
        )


# ===================================================================================== MyTardis (fake)
class MyTardisHarness(Harness):
    """FakeMyTardis behind a fault server (one origin: API and file downloads)."""

    name = "mytardis"
    capabilities = frozenset(
        {"listing", "read", "create", "download", "resume_download", "auth", "load"}
    )
    listing_op = Op("GET", r"^/api/v1/experiment/\?")
    read_op = Op("GET", r"^/api/v1/experiment/\d+/")
    create_op = Op("POST", r"^/api/v1/experiment/$")
    upload_op = Op("POST", r"^/api/v1/dataset_file/$")
    download_op = Op("GET", r"^/api/v1/dataset_file/\d+/download/")
    missing_field = "title"
    typed_field = "title"
    ranged_downloads = False  # MyTardis serves whole files
    resume_kind = "restart"

    @contextlib.contextmanager
    def running(self) -> Iterator[Harness]:
        from scibind.testing.mytardis import FakeMyTardis

        self.fake = FakeMyTardis()
        self.api_key = "mt-" + uuid.uuid4().hex
        self.password = "pw-" + uuid.uuid4().hex
        self.fake.add_user("alice", password=self.password, api_key=self.api_key)
        self.secrets = [self.api_key, self.password]
        with serve_with_faults(self.watched(self.fake)) as servers:
            self.api = servers["api"]
            yield self

    def client(self, mode: str, config: ClientConfig | None = None) -> Any:
        from scibind.mytardis import AsyncMyTardisClient, MyTardisClient

        cls = MyTardisClient if mode == "sync" else AsyncMyTardisClient
        return cls(
            self.api.url, username="alice", api_key=self.api_key, config=config or fast_config()
        )

    def client_at(self, url: str, mode: str, config: ClientConfig, transport: Any) -> Any:
        from scibind.mytardis import AsyncMyTardisClient, MyTardisClient

        cls = MyTardisClient if mode == "sync" else AsyncMyTardisClient
        return cls(url, username="alice", api_key=self.api_key, config=config, transport=transport)

    def client_source(self, mode: str) -> str:
        cls = "MyTardisClient" if mode == "sync" else "AsyncMyTardisClient"
        return (
            f"__import__('scibind.mytardis', fromlist=['x']).{cls}({self.api.url!r}, "
            f"username='alice', api_key=SECRET, config=CONFIG)"
        )

    @property
    def child_secret(self) -> str:
        return self.api_key

    def download_source(self, handle: Any, dest: Path, mode: str) -> str:
        return f"client.download_datafile({handle!r}, {str(dest)!r})"

    def seed_listing(self) -> list[Any]:
        ids = [self.fake.add_experiment(f"exp {i}", owner="alice") for i in range(23)]
        self.page_count = 5
        return sorted(ids)

    def listing(self, client: Any) -> Any:
        return client.experiments(page_size=5)

    def key(self, item: Any) -> Any:
        return item.id

    def seed_read(self) -> Any:
        return self.fake.add_experiment("read me", owner="alice")

    def read_call(self, client: Any, handle: Any) -> Any:
        return client.get_experiment(handle)

    async def create(self, client: Any, label: str) -> Any:
        return await call(client.create_experiment(label))

    def created(self, label: str) -> int:
        return sum(1 for e in self.fake.experiments.values() if e.get("title") == label)

    def _dataset(self) -> int:
        if not hasattr(self, "_ds"):
            exp = self.fake.add_experiment("uploads", owner="alice")
            self._ds = self.fake.add_dataset("uploads", [exp])
        return self._ds

    async def upload(self, client: Any, path: Path, *, multipart: bool = True) -> Any:
        return await call(client.upload_datafile(self._dataset(), path))

    def uploaded(self, handle: Any) -> bytes:
        data = self.fake.file_bytes(handle.id)
        assert data is not None
        return data

    def seed_download(self, data: bytes) -> Any:
        return self.fake.add_datafile(self._dataset(), "download.bin", data)

    async def download(self, client: Any, handle: Any, dest: Path) -> Path:
        return await call(client.download_datafile(handle, dest))  # type: ignore[no-any-return]


# ===================================================================================== DANDI (fake)
def _small_parts_archive() -> Any:
    from scibind.testing.dandi import FakeDandiArchive

    class SmallParts(FakeDandiArchive):
        """The fake archive with 64 KiB multipart parts (the real one: 64 MiB)."""

        part_size = PART
        min_part_size = PART

    return SmallParts()


class DandiHarness(Harness):
    """FakeDandiArchive (64 KiB parts); API and object store each behind a fault server."""

    name = "dandi"
    capabilities = frozenset(
        {
            "listing",
            "read",
            "create",
            "upload",
            "download",
            "resume_upload",
            "resume_download",
            "resume_ranged_download",
            "auth",
            "load",
            "storage",
        }
    )
    listing_op = Op("GET", r"^/api/dandisets/\d+/versions/draft/assets/\?")
    read_op = Op("GET", r"^/api/dandisets/\d+/$")
    create_op = Op("POST", r"^/api/dandisets/(\?|$)")
    upload_op = Op("PUT", r"^/")
    upload_init_path = r"^/api/uploads/initialize/"
    download_op = Op("GET", r"^/")
    missing_field = "identifier"
    typed_field = "contact_person"

    @contextlib.contextmanager
    def running(self) -> Iterator[Harness]:
        self.fake = _small_parts_archive()
        with serve_with_faults(self.watched(self.fake)) as servers:
            self.api, self.storage = servers["api"], servers["storage"]
            self.secrets = [self.fake.api_key]
            self.dandiset = self.fake.create_dandiset("faults")
            yield self

    def client(self, mode: str, config: ClientConfig | None = None) -> Any:
        from scibind.dandi import AsyncDandiClient, DandiClient

        cls = DandiClient if mode == "sync" else AsyncDandiClient
        return cls(
            self.fake.base_url,
            api_key=self.fake.api_key,
            part_size=PART,
            config=config or fast_config(),
        )

    def client_at(self, url: str, mode: str, config: ClientConfig, transport: Any) -> Any:
        from scibind.dandi import AsyncDandiClient, DandiClient

        cls = DandiClient if mode == "sync" else AsyncDandiClient
        return cls(url + "/api", api_key=self.fake.api_key, config=config, transport=transport)

    def client_source(self, mode: str) -> str:
        cls = "DandiClient" if mode == "sync" else "AsyncDandiClient"
        return (
            f"__import__('scibind.dandi', fromlist=['x']).{cls}({self.fake.base_url!r}, "
            f"api_key=SECRET, part_size={PART}, config=CONFIG)"
        )

    @property
    def child_secret(self) -> str:
        return str(self.fake.api_key)

    def download_source(self, handle: Any, dest: Path, mode: str) -> str:
        lookup = f"client.get_asset_by_path({self.dandiset!r}, {handle!r}, version_id='draft')"
        asset = lookup if mode == "sync" else f"(await {lookup})"
        return f"client.download({asset}, {str(dest)!r}, parallel=2)"

    def upload_source(self, path: Path) -> str:
        return f"client.upload({self.dandiset!r}, {str(path)!r}, 'faults/big.bin', parallel=2)"

    def seed_listing(self) -> list[Any]:
        ds = self.fake.create_dandiset("listing")
        self.listing_dandiset = ds
        paths = [f"data/f{i:02d}.bin" for i in range(23)]
        for i, path in enumerate(paths):
            self.fake.add_asset(ds, path, f"content {i}".encode())
        self.page_count = 5
        return paths

    def listing(self, client: Any) -> Any:
        return client.assets(self.listing_dandiset, "draft", order="path", page_size=5)

    def key(self, item: Any) -> Any:
        return item.path

    def seed_read(self) -> Any:
        return self.dandiset

    def read_call(self, client: Any, handle: Any) -> Any:
        return client.get_dandiset(handle, "draft")

    async def create(self, client: Any, label: str) -> Any:
        return await call(client.create_dandiset(label))

    def created(self, label: str) -> int:
        return sum(1 for d in self.fake.dandisets.values() if d.draft.name == label)

    async def upload(self, client: Any, path: Path, *, multipart: bool = True) -> Any:
        return await call(client.upload(self.dandiset, path, f"faults/{path.name}", parallel=2))

    def uploaded(self, handle: Any) -> bytes:
        return bytes(self.fake.blob_content(handle.asset_id))

    def seed_download(self, data: bytes) -> Any:
        path = f"dl/{uuid.uuid4().hex[:8]}.bin"
        self.fake.add_asset(self.dandiset, path, data)
        return path

    async def download(self, client: Any, handle: Any, dest: Path) -> Path:
        asset = await call(client.get_asset_by_path(self.dandiset, handle, version_id="draft"))
        return await call(client.download(asset, dest, parallel=2))  # type: ignore[no-any-return]


# ===================================================================================== Midas (fake)
class MidasHarness(Harness):
    """FakeMidas behind a fault server (one origin: the JSON API and downloads)."""

    name = "midas"
    capabilities = frozenset(
        {
            "listing",
            "read",
            "create",
            "upload",
            "offset_upload",
            "download",
            "resume_download",
            "auth",
            "load",
        }
    )
    listing_op = Op("POST", r"^/api/json\?method=midas\.folder\.children")
    read_op = Op("POST", r"^/api/json\?method=midas\.item\.get")
    create_op = Op("POST", r"^/api/json\?method=midas\.folder\.create")
    upload_op = Op("PUT", r"^/api/json\?method=midas\.upload\.perform")
    download_op = Op("GET", r"^/download")
    missing_field = "item_id"
    typed_field = "name"
    resume_kind = "offset"
    ranged_downloads = False

    @contextlib.contextmanager
    def running(self) -> Iterator[Harness]:
        from scibind.testing.midas import FakeMidas

        self.fake = FakeMidas()
        self.email = "alice@example.org"
        self.api_key = "mk-" + uuid.uuid4().hex
        self.fake.add_user(self.email, self.api_key)
        self.root = self.fake.add_folder(
            "faults", self.fake.folder_id(f"{self.email}/Private"), self.email
        )
        self.secrets = [self.api_key]
        with serve_with_faults(self.watched(self.fake)) as servers:
            self.api = servers["api"]
            yield self

    def all_secrets(self) -> list[str]:
        return [*super().all_secrets(), *self.fake.tokens]  # Midas tokens travel as parameters

    def sent_credentials(self, request: Any) -> bool:
        return any(t.encode() in request.body or t in request.target for t in self.fake.tokens)

    def client(self, mode: str, config: ClientConfig | None = None) -> Any:
        from scibind.midas import AsyncMidasClient, MidasClient

        cls = MidasClient if mode == "sync" else AsyncMidasClient
        return cls(
            self.api.url, email=self.email, api_key=self.api_key, config=config or fast_config()
        )

    def client_at(self, url: str, mode: str, config: ClientConfig, transport: Any) -> Any:
        from scibind.midas import AsyncMidasClient, MidasClient

        cls = MidasClient if mode == "sync" else AsyncMidasClient
        return cls(url, email=self.email, api_key=self.api_key, config=config, transport=transport)

    def client_source(self, mode: str) -> str:
        cls = "MidasClient" if mode == "sync" else "AsyncMidasClient"
        return (
            f"__import__('scibind.midas', fromlist=['x']).{cls}({self.api.url!r}, "
            f"email={self.email!r}, api_key=SECRET, config=CONFIG)"
        )

    @property
    def child_secret(self) -> str:
        return self.api_key

    def download_source(self, handle: Any, dest: Path, mode: str) -> str:
        return f"client.download_item({handle!r}, {str(dest)!r})"

    def seed_listing(self) -> list[Any]:
        folder = self.fake.add_folder("listing", self.root, self.email)
        self.listing_folder = folder
        ids = [self.fake.add_item(f"item {i:02d}", folder, self.email) for i in range(23)]
        self.page_count = 1  # Midas lists a folder's children in one answer
        return sorted(ids)

    def listing(self, client: Any) -> Any:
        return client.folder_children(self.listing_folder)

    async def list_all(self, client: Any) -> list[Any]:
        children = await call(self.listing(client))
        return list(children.items)

    def key(self, item: Any) -> Any:
        return int(item.item_id)

    def seed_read(self) -> Any:
        return self.fake.add_item("read me", self.root, self.email, b"read me")

    def read_call(self, client: Any, handle: Any) -> Any:
        return client.get_item(handle)

    async def create(self, client: Any, label: str) -> Any:
        return await call(client.create_folder(label, self.root))

    def created(self, label: str) -> int:
        return sum(1 for f in self.fake.folders.values() if f.get("name") == label)

    async def upload(self, client: Any, path: Path, *, multipart: bool = True) -> Any:
        return await call(client.upload_file(path, folder_id=self.root))

    offset_path = r"^/api/json\?method=midas\.upload\.getoffset"
    start_upload_path = r"^/api/json\?method=midas\.upload\.generatetoken"

    def upload_source(self, path: Path) -> str:
        return f"client.upload_file({str(path)!r}, folder_id={self.root})"

    def items(self) -> int:
        return len(self.fake.items)

    def upload_requests(self, size: int) -> int:
        return 1  # one PUT, continued from the server's offset after a break

    def uploaded(self, handle: Any) -> bytes:
        files = self.fake.item_bytes(int(handle.item.item_id))
        (data,) = files.values()
        return data

    def seed_download(self, data: bytes) -> Any:
        return self.fake.add_item(f"dl-{uuid.uuid4().hex[:6]}", self.root, self.email, data)

    async def download(self, client: Any, handle: Any, dest: Path) -> Path:
        return await call(client.download_item(handle, dest))  # type: ignore[no-any-return]


HARNESSES: dict[str, type[Harness]] = {
    h.name: h for h in (DServerHarness, DandiHarness, Gen3Harness, MyTardisHarness, MidasHarness)
}


def services_with(capability: str) -> list[str]:
    """Names of the services whose harness has ``capability``."""
    return [name for name, h in HARNESSES.items() if capability in h.capabilities]
