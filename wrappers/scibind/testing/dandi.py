"""A stateful fake of the DANDI Archive REST API and its S3 object store.

:class:`FakeDandiArchive` answers like the real archive: paths with trailing slashes (and Django's 301 to them),
``Authorization: token KEY``, DRF error bodies (``{"detail": ...}``, field-error objects, lists of strings and
bare JSON strings), paginated envelopes (with ``count`` only on the first page of asset lists), 302 redirects to
presigned URLs, and real S3 multipart arithmetic on the ``storage`` origin: part sizes chosen the dandi-etag
way, a per-part ``ETag`` that is the part's MD5, a multipart ETag ``md5(concatenated part md5s)-N`` checked
against the declared dandi-etag when the upload is validated, ranged GETs (206 + ``Content-Range``).

Use it three ways (see :class:`scibind.testing._base.FakeService`)::

    fake = FakeDandiArchive()
    dandiset_id = fake.create_dandiset("My data")
    fake.add_asset(dandiset_id, "sub-01/file.nwb", b"...")
    with fake.mock():                 # respx, for httpx-based code
        ...
    with fake.serve() as api_url:     # real loopback HTTP, e.g. for dandi-cli
        ...

State changes that the real archive does asynchronously (metadata validation, publication, zarr ingestion)
complete after a configurable number of polls (``validation_polls``, ``publish_polls``, ``ingest_polls``:
how many reads still see the in-progress state), or at once through helpers such as :meth:`publish_ready`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import operator
import re
import secrets
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode
from xml.etree import ElementTree

import httpx

from scibind.testing._base import FakeService, json_response, route

__all__ = ["FakeDandiArchive", "FakeUser", "dandi_part_sizes", "multipart_etag", "zarr_checksum"]

MiB = 2**20
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
DANDISET = r"(?P<dandiset_id>\d{6})"
VERSION = r"(?P<version_id>0\.\d{6}\.\d{4}|draft)"
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
ASSET = rf"(?P<asset_id>{UUID4})"
ZARR = rf"(?P<zarr_id>{UUID4})"
IN_VERSION = rf"/dandisets/{DANDISET}/versions/{VERSION}"

NOT_AUTHENTICATED = "Authentication credentials were not provided."
PERMISSION_DENIED = "You do not have permission to perform this action."
NOT_FOUND = "Not found."
ZARR_INGEST_ERROR = "Zarr archive is currently ingesting or has already ingested"
DJANGO_404 = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    "  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n"
)


# ------------------------------------------------------------------------------------------------ digests
def dandi_part_sizes(size: int, part_size: int = 64 * MiB, max_parts: int = 10_000) -> list[int]:
    """Part sizes the archive assigns to a blob of ``size`` bytes (dandi-etag part sizing)."""
    if size <= 0:
        return []
    if -(-size // part_size) >= max_parts:
        part_size = -(-size // max_parts)
    count, last = divmod(size, part_size)
    if last:
        count += 1
    else:
        last = part_size
    return [part_size] * (count - 1) + [last]


def multipart_etag(part_md5s: Iterable[bytes]) -> str:
    """S3 multipart ETag (the dandi-etag): md5 of the concatenated binary part md5s, ``-N``."""
    digests = list(part_md5s)
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def zarr_checksum(files: dict[str, tuple[str, int]]) -> str:
    """dandi's Zarr checksum ``<md5>-<file count>--<total size>`` of ``{path: (md5 hex, size)}``.

    Each directory's digest is the md5 of the compact JSON manifest of its entries
    (``{"directories": [...], "files": [...]}``, entries ``{digest, name, size}`` sorted by name),
    computed bottom-up.
    """

    def directory(prefix: str) -> tuple[str, int, int]:
        file_entries: list[dict[str, Any]] = []
        dir_names: set[str] = set()
        for path, (digest, size) in files.items():
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest:
                dir_names.add(rest.split("/", 1)[0])
            else:
                file_entries.append({"digest": digest, "name": rest, "size": size})
        dir_entries: list[dict[str, Any]] = []
        count = len(file_entries)
        total = sum(e["size"] for e in file_entries)
        for name in dir_names:
            digest, n, sub_size = directory(f"{prefix}{name}/")
            dir_entries.append(
                {"digest": f"{digest}-{n}--{sub_size}", "name": name, "size": sub_size}
            )
            count += n
            total += sub_size
        manifest = {
            "directories": sorted(dir_entries, key=lambda e: e["name"]),
            "files": sorted(file_entries, key=lambda e: e["name"]),
        }
        text = json.dumps(manifest, separators=(",", ":"))
        return hashlib.md5(text.encode()).hexdigest(), count, total

    md5, count, total = directory("")
    return f"{md5}-{count}--{total}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------------ state
@dataclass
class FakeUser:
    """A registered user; ``api_key`` goes in ``Authorization: token <api_key>``."""

    username: str
    name: str
    email: str
    admin: bool = False
    status: str = "APPROVED"
    api_key: str = field(default_factory=lambda: secrets.token_hex(20))

    def detail(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "name": self.name,
            "admin": self.admin,
            "status": self.status,
        }


class _Object:
    """Bytes in the object store. A completed multipart upload keeps its parts and joins them on first read:
    joining copies the whole object, work S3 does not put on the completion request."""

    def __init__(self, data: bytes | list[bytes], etag: str) -> None:
        self._chunks = [data] if isinstance(data, bytes) else list(data)
        self.size = sum(len(c) for c in self._chunks)
        self.etag = etag
        self.modified = _now()

    @property
    def data(self) -> bytes:
        chunks = self._chunks
        if len(chunks) != 1:
            chunks = self._chunks = [b"".join(chunks)]
        return chunks[0]


@dataclass
class _Multipart:
    key: str
    part_sizes: list[int]
    parts: dict[int, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class _Blob:
    blob_id: str
    key: str
    etag: str
    size: int
    sha256: str | None = None
    pending: _Object | None = None
    """Bytes whose sha256 the archive has yet to compute (it does so in the background after validation)."""

    def settle(self) -> str | None:
        """The sha256, computed now if it was pending: reads after an upload see it, as they would once the
        archive's background task ran; the upload's own answers do not wait for it."""
        if self.sha256 is None and self.pending is not None:
            self.sha256 = hashlib.sha256(self.pending.data).hexdigest()
            self.pending = None
        return self.sha256

    def record(self) -> dict[str, Any]:
        return {
            "blob_id": self.blob_id,
            "etag": self.etag,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass
class _Upload:
    upload_id: str
    multipart_id: str
    key: str
    etag: str
    size: int
    dandiset_id: int
    created: dt.datetime = field(default_factory=_now)


@dataclass
class _Zarr:
    zarr_id: str
    name: str
    dandiset_id: int
    status: str = "Pending"
    checksum: str | None = None
    file_count: int = 0
    size: int = 0
    polls_left: int = 0
    created: dt.datetime = field(default_factory=_now)


@dataclass
class _Asset:
    asset_id: str
    path: str
    metadata: dict[str, Any]
    blob: _Blob | None = None
    zarr: _Zarr | None = None
    status: str = "Pending"
    validation_errors: list[dict[str, Any]] = field(default_factory=list)
    created: dt.datetime = field(default_factory=_now)
    modified: dt.datetime = field(default_factory=_now)
    _rendered: dict[str, tuple[dt.datetime, str]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def iso(self, name: str) -> str:
        """``created``/``modified`` as the API renders them (remembered: listings render thousands)."""
        value: dt.datetime = getattr(self, name)
        known = self._rendered.get(name)
        if known is None or known[0] is not value:
            known = self._rendered[name] = (value, _iso(value))
        return known[1]

    @property
    def size(self) -> int:
        if self.blob is not None:
            return self.blob.size
        return self.zarr.size if self.zarr is not None else 0


@dataclass
class _Version:
    pk: int
    version: str
    name: str
    metadata: dict[str, Any]
    assets: dict[str, _Asset] = field(default_factory=dict)
    status: str = "Pending"
    polls_left: int = 0
    validation_errors: list[dict[str, Any]] = field(default_factory=list)
    release_notes: str | None = None
    created: dt.datetime = field(default_factory=_now)
    modified: dt.datetime = field(default_factory=_now)
    _by_created: tuple[tuple[int, str | None, int], list[_Asset]] | None = field(
        default=None, repr=False, compare=False
    )

    def assets_by_created(self) -> list[_Asset]:
        """The assets oldest first (a new list). The order is remembered until assets are added, removed
        or replaced, so listing a large version page by page does not sort it for every page."""
        key = (len(self.assets), next(reversed(self.assets), None), id(self.assets))
        if self._by_created is None or self._by_created[0] != key:
            ordered = sorted(self.assets.values(), key=operator.attrgetter("created"))
            self._by_created = (key, ordered)
        return list(self._by_created[1])


@dataclass
class _Dandiset:
    pk: int
    owners: list[str]
    embargo_status: str = "OPEN"
    versions: dict[str, _Version] = field(default_factory=dict)
    stars: set[str] = field(default_factory=set)
    created: dt.datetime = field(default_factory=_now)
    modified: dt.datetime = field(default_factory=_now)

    @property
    def identifier(self) -> str:
        return f"{self.pk:06d}"

    @property
    def draft(self) -> _Version:
        return self.versions["draft"]

    @property
    def published(self) -> list[_Version]:
        return [v for k, v in self.versions.items() if k != "draft"]

    @property
    def latest(self) -> _Version:
        return max(self.versions.values(), key=lambda v: v.created)


class _Reply(Exception):
    """Raised by handlers and helpers to answer at once (like Django/DRF exceptions)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _detail(status: int, message: str, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(json_response({"detail": message}, status, headers))


def _message(status: int, message: str) -> _Reply:
    """The archive's own errors: a bare JSON string."""
    return _Reply(json_response(message, status))


def _field_errors(errors: dict[str, Any]) -> _Reply:
    return _Reply(json_response(errors, 400))


def _xml(root: ElementTree.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root)


def _s3_error(status: int, code: str, message: str, **extra: str) -> httpx.Response:
    root = ElementTree.Element("Error")
    for tag, text in {"Code": code, "Message": message, **extra, "RequestId": "FAKE"}.items():
        ElementTree.SubElement(root, tag).text = text
    return httpx.Response(status, content=_xml(root), headers={"Content-Type": "application/xml"})


def _bool(value: str | None, default: bool, name: str) -> bool:
    if value is None:
        return default
    low = value.lower()
    if low in ("true", "1", "yes", "on", "t", "y"):
        return True
    if low in ("false", "0", "no", "off", "f", "n", ""):
        return False
    raise _field_errors({name: ["Must be a valid boolean."]})


def _with_query(url: str, **changes: Any) -> str:
    """``url`` with query parameters replaced (None removes one), sorted like DRF does."""
    parsed = httpx.URL(url)
    params = dict(parse_qsl(parsed.query.decode(), keep_blank_values=True))
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(sorted(params.items()))
    return str(parsed.copy_with(query=query.encode() or None))


class FakeDandiArchive(FakeService):
    """Stateful fake of the DANDI Archive API (``api`` origin) and its object store (``storage`` origin).

    Class attributes tune the object-store arithmetic: ``part_size`` (the archive's 64 MiB; shrink it in
    tests, the archive ignores what a client would like), ``max_parts`` and ``min_part_size`` (S3's
    EntityTooSmall limit for all parts but the last).
    """

    default_origins: ClassVar[dict[str, str]] = {
        "api": "https://api.dandi.fake.test/api",
        "storage": "https://dandi-storage.fake.test",
    }
    part_size: ClassVar[int] = 64 * MiB
    min_part_size: ClassVar[int] = 5 * MiB
    max_parts: ClassVar[int] = 10_000
    page_size: ClassVar[int] = 100
    max_page_size: ClassVar[int] = 1000
    presign_expiry: ClassVar[int] = 3600
    schema_version: ClassVar[str] = "0.8.0"
    allowed_schema_versions: ClassVar[tuple[str, ...] | None] = None
    """What ``/info/`` lists as accepted schema versions (None: ``schema_version`` only)."""
    server_version: ClassVar[str] = "0.4.0+fake"
    web_url: ClassVar[str] = "https://dandiarchive.fake.test"

    def __init__(
        self,
        origins: dict[str, str] | None = None,
        *,
        validation_polls: int = 1,
        publish_polls: int = 1,
        ingest_polls: int = 1,
    ) -> None:
        super().__init__(origins)
        self.validation_polls = validation_polls
        self.publish_polls = publish_polls
        self.ingest_polls = ingest_polls
        self.users: dict[str, FakeUser] = {}
        self.dandisets: dict[int, _Dandiset] = {}
        self.objects: dict[str, _Object] = {}
        self._multiparts: dict[str, _Multipart] = {}
        self._uploads: dict[str, _Upload] = {}
        self._blobs: dict[str, _Blob] = {}
        self._assets: dict[str, _Asset] = {}
        self._zarrs: dict[str, _Zarr] = {}
        self._next_dandiset = 1
        self._next_version_pk = 1
        self._signing_key = secrets.token_bytes(32)
        self._route_patterns = [(o, p) for o, _, p, _ in self._routes]
        self.user = self.add_user("testuser", name="Test User", email="testuser@example.edu")

    # ============================================================================ public helpers
    @property
    def api_key(self) -> str:
        """API key of the default user (``testuser``, approved, owner of helper-made dandisets)."""
        return self.user.api_key

    def add_user(
        self,
        username: str,
        *,
        name: str | None = None,
        email: str | None = None,
        admin: bool = False,
        status: str = "APPROVED",
        api_key: str | None = None,
    ) -> FakeUser:
        """Register a user; ``status`` is APPROVED, PENDING, INCOMPLETE or REJECTED."""
        with self.lock:
            user = FakeUser(
                username, name or username, email or f"{username}@example.org", admin, status
            )
            if api_key is not None:
                user.api_key = api_key
            self.users[username] = user
            return user

    def create_dandiset(
        self,
        name: str = "Test Dandiset",
        *,
        owner: FakeUser | str | None = None,
        metadata: dict[str, Any] | None = None,
        embargoed: bool = False,
    ) -> str:
        """Create a dandiset with a draft version directly; returns its six-digit identifier."""
        username = owner.username if isinstance(owner, FakeUser) else (owner or self.user.username)
        with self.lock:
            ds = self._new_dandiset(self.users[username], name, dict(metadata or {}), embargoed)
            return ds.identifier

    def add_asset(
        self,
        dandiset_id: str,
        path: str,
        content: bytes,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Store ``content`` as a blob and add it to the dandiset's draft at ``path``; returns the asset_id."""
        blob = self._blob_for(content)
        with self.lock:
            ds = self._dandiset(dandiset_id)
            meta = {"encodingFormat": "application/octet-stream", **(metadata or {}), "path": path}
            self._check_new_path(ds.draft, path)
            asset = self._new_asset(path, meta, blob=blob)
            self._attach(ds, asset)
            return asset.asset_id

    def add_assets(
        self, dandiset_id: str, paths: Iterable[str], content: bytes = b"scibind test asset\n"
    ) -> list[str]:
        """Add many assets sharing one blob of ``content`` to the draft at once (large listings in tests
        and benchmarks); paths are checked against each other and the draft. Returns the asset_ids."""
        blob = self._blob_for(content)
        with self.lock:
            ds = self._dandiset(dandiset_id)
            taken = {a.path for a in ds.draft.assets.values()}
            folders = {p.rsplit("/", i)[0] for p in taken for i in range(1, p.count("/") + 1)}
            added: list[str] = []
            for path in paths:
                self._validate_path(path)
                if path in taken:
                    raise _message(409, "An asset with that path already exists")
                parents = [path.rsplit("/", i)[0] for i in range(1, path.count("/") + 1)]
                if path in folders or any(p in taken for p in parents):
                    raise _message(
                        409, f'Path of new asset "{path}" conflicts with existing assets'
                    )
                taken.add(path)
                folders.update(parents)
                meta = {"encodingFormat": "application/octet-stream", "path": path}
                asset = self._new_asset(path, meta, blob=blob)
                ds.draft.assets[asset.asset_id] = asset
                added.append(asset.asset_id)
            self._mark_pending(ds.draft)
            ds.modified = _now()
            return added

    def add_zarr(
        self, dandiset_id: str, name: str, files: dict[str, bytes], *, path: str | None = None
    ) -> str:
        """Create a finalised zarr with ``files``; with ``path`` also add it as an asset. Returns zarr_id."""
        with self.lock:
            ds = self._dandiset(dandiset_id)
            zarr = _Zarr(str(uuid.uuid4()), name, ds.pk)
            self._zarrs[zarr.zarr_id] = zarr
            for rel, data in files.items():
                self.objects[self._zarr_key(zarr, rel)] = _Object(
                    data, hashlib.md5(data).hexdigest()
                )
            self._ingest(zarr)
            if path is not None:
                meta = {"encodingFormat": "application/x-zarr", "path": path}
                self._check_new_path(ds.draft, path)
                self._attach(ds, self._new_asset(path, meta, zarr=zarr))
            return zarr.zarr_id

    def publish_ready(self, dandiset_id: str) -> None:
        """Finish validating the draft now (Valid, or Invalid when validation errors were set)."""
        with self.lock:
            self._resolve_validation(self._dandiset(dandiset_id).draft)

    def publish(self, dandiset_id: str, release_notes: str | None = None) -> str:
        """Validate and publish the draft at once; returns the new version id."""
        with self.lock:
            ds = self._dandiset(dandiset_id)
            self._resolve_validation(ds.draft)
            ds.draft.release_notes = release_notes
            return self._do_publish(ds).version

    def set_validation_errors(
        self,
        dandiset_id: str,
        version_errors: list[dict[str, Any]] | None = None,
        asset_errors: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        """Make the draft's next validation fail with these errors (``{field, message}`` dicts)."""
        with self.lock:
            draft = self._dandiset(dandiset_id).draft
            draft.validation_errors = list(version_errors or [])
            for path, errors in (asset_errors or {}).items():
                for asset in draft.assets.values():
                    if asset.path == path:
                        asset.validation_errors = list(errors)
            self._mark_pending(draft)

    def object_bytes(self, key: str) -> bytes:
        """Content of an object in the fake object store."""
        return self.objects[key].data

    def blob_content(self, asset_id: str) -> bytes:
        """Content of a blob-backed asset."""
        blob = self._assets[asset_id].blob
        if blob is None:
            raise KeyError(f"asset {asset_id} is not backed by a blob")
        return self.objects[blob.key].data

    @classmethod
    def parts_for(cls, size: int) -> list[int]:
        """Part sizes this fake assigns to an upload of ``size`` bytes."""
        return dandi_part_sizes(size, cls.part_size, cls.max_parts)

    @classmethod
    def dandi_etag(cls, content: bytes) -> str:
        """The dandi-etag of ``content`` with this fake's part sizing."""
        view = memoryview(content)
        offset = 0
        md5s = []
        for size in cls.parts_for(len(content)):
            md5s.append(hashlib.md5(view[offset : offset + size]).digest())
            offset += size
        return multipart_etag(md5s)

    # ============================================================================ dispatch
    def handle(self, request: httpx.Request) -> httpx.Response:
        """Dispatch like Django + DRF: authentication, HEAD on GET views, exceptions to responses."""
        try:
            self._authenticate_header(request)
            response = super().handle(request)
            if request.method == "HEAD" and response.status_code == 405:
                as_get = httpx.Request("GET", request.url, headers=request.headers)
                full = super().handle(as_get)
                return httpx.Response(full.status_code, headers=full.headers)
            return response
        except _Reply as reply:
            return reply.response

    def not_found(self, request: httpx.Request) -> httpx.Response:
        """Django's HTML 404, or its APPEND_SLASH 301 when the path with a slash exists."""
        matched = self._match_origin(request)
        if matched is not None:
            origin, rel = matched
            if origin == "api" and not rel.endswith("/") and self._path_exists(origin, rel + "/"):
                target = request.url.copy_with(path=request.url.path + "/")
                return httpx.Response(301, headers={"Location": str(target)})
            if origin == "storage":
                return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return httpx.Response(404, text=DJANGO_404, headers={"Content-Type": "text/html"})

    def method_not_allowed(self, request: httpx.Request) -> httpx.Response:
        """DRF's 405 body on the api origin, S3's on storage."""
        matched = self._match_origin(request)
        if matched is not None and matched[0] == "storage":
            return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed.")
        return json_response({"detail": f'Method "{request.method}" not allowed.'}, 405)

    def _path_exists(self, origin: str, rel: str) -> bool:
        return any(o == origin and p.match(rel) for o, p in self._route_patterns)

    def _is_api(self, request: httpx.Request) -> bool:
        matched = self._match_origin(request)
        return matched is not None and matched[0] == "api" and self._path_exists("api", matched[1])

    # ============================================================================ auth
    def _authenticate_header(self, request: httpx.Request) -> None:
        if self._is_api(request):
            self._user(request)

    def _user(self, request: httpx.Request) -> FakeUser | None:
        """DRF TokenAuthentication: None when anonymous, 401 for a bad ``token`` header."""
        header = request.headers.get("Authorization", "")
        parts = header.split()
        if not parts or parts[0].lower() != "token":
            return None
        if len(parts) == 1:
            raise self._unauthorized("Invalid token header. No credentials provided.")
        if len(parts) > 2:
            raise self._unauthorized(
                "Invalid token header. Token string should not contain spaces."
            )
        for user in self.users.values():
            if hmac.compare_digest(user.api_key, parts[1]):
                return user
        raise self._unauthorized("Invalid token.")

    @staticmethod
    def _unauthorized(message: str = NOT_AUTHENTICATED) -> _Reply:
        return _detail(401, message, {"WWW-Authenticate": 'Bearer realm="api"'})

    def _require_user(self, request: httpx.Request) -> FakeUser:
        user = self._user(request)
        if user is None:
            raise self._unauthorized()
        return user

    def _require_approved(self, request: httpx.Request) -> FakeUser:
        user = self._require_user(request)
        if user.status != "APPROVED" and not user.admin:
            raise _detail(403, PERMISSION_DENIED)
        return user

    @staticmethod
    def _is_owner(user: FakeUser | None, ds: _Dandiset) -> bool:
        return user is not None and (user.admin or user.username in ds.owners)

    def _require_owner(self, request: httpx.Request, ds: _Dandiset) -> FakeUser:
        user = self._require_approved(request)
        if not self._is_owner(user, ds):
            raise _detail(403, PERMISSION_DENIED)
        return user

    def _readable(self, request: httpx.Request, dandiset_id: str) -> _Dandiset:
        """The dandiset, if the caller may read it (401/403 for embargoed ones, 404 if absent)."""
        ds = self.dandisets.get(int(dandiset_id))
        if ds is None:
            raise _detail(404, NOT_FOUND)
        if ds.embargo_status != "OPEN":
            user = self._user(request)
            if user is None:
                raise self._unauthorized()
            if not self._is_owner(user, ds):
                raise _detail(403, PERMISSION_DENIED)
        return ds

    def _dandiset(self, dandiset_id: str | int) -> _Dandiset:
        return self.dandisets[int(dandiset_id)]

    # ============================================================================ serialisation
    def _json_body(self, request: httpx.Request) -> Any:
        if not request.content:
            return {}
        try:
            return json.loads(request.content)
        except ValueError as exc:
            raise _detail(400, f"JSON parse error - {exc}") from exc

    def _paginate(
        self, request: httpx.Request, items: list[Any], *, lazy: bool = False
    ) -> tuple[list[Any], dict[str, Any]]:
        """DRF page-number pagination; ``lazy`` gives ``count`` on page 1 only (the asset list)."""
        params = request.url.params
        try:
            size = int(params.get("page_size", self.page_size))
            size = min(size, self.max_page_size) if size > 0 else self.page_size
        except ValueError:
            size = self.page_size
        raw = params.get("page", "1")
        try:
            page = int(raw)
        except ValueError:
            page = 0
        last = max(1, -(-len(items) // size))
        if page < 1 or (not lazy and page > last):
            raise _detail(404, "Invalid page.")
        chunk = items[(page - 1) * size : page * size]
        url = str(request.url)
        has_next = len(items) > page * size
        envelope = {
            "count": len(items) if (not lazy or page == 1) else None,
            "next": _with_query(url, page=page + 1) if has_next else None,
            "previous": (
                None if page == 1 else _with_query(url, page=None if page == 2 else page - 1)
            ),
        }
        return chunk, envelope

    def _paginated(
        self, request: httpx.Request, items: list[Any], render: Any, *, lazy: bool = False
    ) -> httpx.Response:
        chunk, envelope = self._paginate(request, items, lazy=lazy)
        envelope["results"] = [render(item) for item in chunk]
        return json_response(envelope)

    @staticmethod
    def _contact_person(version: _Version) -> str:
        for person in version.metadata.get("contributor") or []:
            if isinstance(person, dict) and "dcite:ContactPerson" in (person.get("roleName") or []):
                return str(person.get("name", ""))
        return ""

    @staticmethod
    def _version_size(version: _Version) -> int:
        return sum(asset.size for asset in version.assets.values())

    def _version_summary(self, version: _Version) -> dict[str, Any]:
        return {
            "version": version.version,
            "name": version.name,
            "asset_count": len(version.assets),
            "size": self._version_size(version),
            "status": version.status,
            "created": _iso(version.created),
            "modified": _iso(version.modified),
        }

    def _version_record(self, ds: _Dandiset, version: _Version) -> dict[str, Any]:
        record = self._version_summary(version)
        record["active_uploads"] = (
            sum(1 for u in self._uploads.values() if u.dandiset_id == ds.pk)
            if version.version == "draft"
            else 0
        )
        record["release_notes"] = version.release_notes
        return record

    def _dandiset_base(self, ds: _Dandiset, user: FakeUser | None) -> dict[str, Any]:
        published = ds.published
        source = published[-1] if published else ds.draft
        return {
            "identifier": ds.identifier,
            "created": _iso(ds.created),
            "modified": _iso(ds.modified),
            "contact_person": self._contact_person(source),
            "embargo_status": ds.embargo_status,
            "star_count": len(ds.stars),
            "is_starred": user is not None and user.username in ds.stars,
        }

    def _dandiset_detail(self, ds: _Dandiset, user: FakeUser | None) -> dict[str, Any]:
        published = ds.published
        return {
            **self._dandiset_base(ds, user),
            "most_recent_published_version": (
                self._version_record(ds, published[-1]) if published else None
            ),
            "draft_version": self._version_record(ds, ds.draft),
        }

    def _dandiset_list_item(self, ds: _Dandiset, user: FakeUser | None) -> dict[str, Any]:
        published = ds.published
        return {
            **self._dandiset_base(ds, user),
            "most_recent_published_version": (
                self._version_summary(published[-1]) if published else None
            ),
            "draft_version": self._version_summary(ds.draft),
        }

    def _version_detail(
        self, ds: _Dandiset, version: _Version, user: FakeUser | None
    ) -> dict[str, Any]:
        asset_errors = [
            {**error, "path": asset.path}
            for asset in version.assets.values()
            if asset.status == "Invalid"
            for error in asset.validation_errors
        ]
        return {
            **self._version_record(ds, version),
            "dandiset": self._dandiset_base(ds, user),
            "asset_validation_errors": asset_errors,
            "version_validation_errors": version.validation_errors
            if version.status == "Invalid"
            else [],
            "metadata": self._version_metadata(ds, version),
            "contact_person": self._contact_person(version),
        }

    def _version_metadata(self, ds: _Dandiset, version: _Version) -> dict[str, Any]:
        meta = dict(version.metadata)
        ident = f"DANDI:{ds.identifier}"
        size = self._version_size(version)
        meta.update(
            {
                "name": version.name,
                "identifier": ident,
                "id": f"{ident}/{version.version}",
                "version": version.version,
                "url": f"{self.web_url}/dandiset/{ds.identifier}/{version.version}",
                "repository": self.web_url,
                "dateCreated": _iso(ds.created),
                "schemaKey": "Dandiset",
                "assetsSummary": {
                    "schemaKey": "AssetsSummary",
                    "numberOfBytes": size,
                    "numberOfFiles": len(version.assets),
                },
                "manifestLocation": [
                    self.url(
                        f"dandisets/{ds.identifier}/{version.version}/assets.jsonld", "storage"
                    )
                ],
                "citation": f"{version.name} ({_now().year}). (Version {version.version}) "
                f"[Data set]. DANDI Archive. {self.web_url}/dandiset/{ds.identifier}/{version.version}",
            }
        )
        meta.setdefault("schemaVersion", self.schema_version)
        meta.setdefault(
            "access",
            [
                {
                    "schemaKey": "AccessRequirements",
                    "status": "dandi:OpenAccess"
                    if ds.embargo_status == "OPEN"
                    else "dandi:EmbargoedAccess",
                }
            ],
        )
        return meta

    def _asset_metadata(self, asset: _Asset, *, settle: bool = True) -> dict[str, Any]:
        meta = dict(asset.metadata)
        meta.update(
            {
                "id": f"dandiasset:{asset.asset_id}",
                "identifier": asset.asset_id,
                "path": asset.path,
                "contentSize": asset.size,
                "schemaKey": "Asset",
            }
        )
        meta.setdefault("schemaVersion", self.schema_version)
        download = self.url(f"assets/{asset.asset_id}/download/")
        if asset.blob is not None:
            digest = {"dandi:dandi-etag": asset.blob.etag}
            sha256 = asset.blob.settle() if settle else asset.blob.sha256
            if sha256 is not None:
                digest["dandi:sha2-256"] = sha256
            meta["digest"] = digest
            meta["contentUrl"] = [download, self.url(asset.blob.key, "storage")]
        elif asset.zarr is not None:
            meta["digest"] = (
                {"dandi:dandi-zarr-checksum": asset.zarr.checksum} if asset.zarr.checksum else {}
            )
            meta["contentUrl"] = [download, self.url(f"zarr/{asset.zarr.zarr_id}/", "storage")]
        return meta

    def _asset_record(
        self, asset: _Asset, *, metadata: bool = True, settle: bool = True
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "asset_id": asset.asset_id,
            "blob": asset.blob.blob_id if asset.blob is not None else None,
            "zarr": asset.zarr.zarr_id if asset.zarr is not None else None,
            "path": asset.path,
            "size": asset.size,
            "created": asset.iso("created"),
            "modified": asset.iso("modified"),
        }
        if metadata:
            record["metadata"] = self._asset_metadata(asset, settle=settle)
        return record

    def _zarr_record(self, zarr: _Zarr) -> dict[str, Any]:
        return {
            "name": zarr.name,
            "dandiset": f"{zarr.dandiset_id:06d}",
            "zarr_id": zarr.zarr_id,
            "status": zarr.status,
            "checksum": zarr.checksum,
            "file_count": zarr.file_count,
            "size": zarr.size,
        }

    # ============================================================================ state transitions
    def _new_dandiset(
        self, owner: FakeUser, name: str, metadata: dict[str, Any], embargoed: bool
    ) -> _Dandiset:
        pk = self._next_dandiset
        while pk in self.dandisets:
            pk += 1
        self._next_dandiset = pk + 1
        ds = _Dandiset(pk, [owner.username], "EMBARGOED" if embargoed else "OPEN")
        metadata.setdefault(
            "contributor",
            [
                {
                    "schemaKey": "Person",
                    "name": owner.name,
                    "email": owner.email,
                    "roleName": ["dcite:ContactPerson"],
                    "includeInCitation": True,
                }
            ],
        )
        metadata.setdefault("description", "")
        metadata.setdefault("license", [])
        ds.versions["draft"] = self._new_version("draft", name, metadata)
        self.dandisets[pk] = ds
        return ds

    def _new_version(self, version: str, name: str, metadata: dict[str, Any]) -> _Version:
        pk = self._next_version_pk
        self._next_version_pk += 1
        metadata = {k: v for k, v in metadata.items()}
        metadata["name"] = name
        return _Version(pk, version, name, metadata, polls_left=self.validation_polls)

    def _mark_pending(self, draft: _Version) -> None:
        draft.status = "Pending"
        draft.polls_left = self.validation_polls
        draft.modified = _now()
        for asset in draft.assets.values():
            if asset.status != "Invalid" or not asset.validation_errors:
                asset.status = "Pending"

    def _resolve_validation(self, version: _Version) -> None:
        if version.status not in ("Pending", "Validating"):
            return
        for asset in version.assets.values():
            asset.status = "Invalid" if asset.validation_errors else "Valid"
        bad_assets = any(a.status == "Invalid" for a in version.assets.values())
        version.status = "Invalid" if (version.validation_errors or bad_assets) else "Valid"
        version.polls_left = 0

    def _poll(self, ds: _Dandiset) -> None:
        """One read of a dandiset's state: advances validation / publication like the workers would."""
        draft = ds.draft
        if draft.status in ("Pending", "Validating"):
            if draft.polls_left > 0:
                draft.polls_left -= 1
                if draft.polls_left == 0 and self.validation_polls > 1:
                    draft.status = "Validating"
            else:
                self._resolve_validation(draft)
        elif draft.status == "Publishing":
            if draft.polls_left > 0:
                draft.polls_left -= 1
            else:
                self._do_publish(ds)

    def _do_publish(self, ds: _Dandiset) -> _Version:
        draft = ds.draft
        when = _now()
        while True:
            version_id = when.strftime("0.%y%m%d.%H%M")
            if version_id not in ds.versions:
                break
            when += dt.timedelta(minutes=1)
        metadata = dict(draft.metadata)
        metadata.update(
            {
                "datePublished": _iso(_now()),
                "doi": f"10.80507/dandi.{ds.identifier}/{version_id}",
                "releaseNotes": draft.release_notes,
                "publishedBy": {
                    "id": f"urn:uuid:{uuid.uuid4()}",
                    "name": "DANDI publish",
                    "schemaKey": "PublishActivity",
                },
            }
        )
        version = self._new_version(version_id, draft.name, metadata)
        version.assets = dict(draft.assets)
        version.status = "Valid"
        version.release_notes = draft.release_notes
        ds.versions[version_id] = version
        draft.status = "Published"
        draft.polls_left = 0
        draft.release_notes = None
        ds.modified = _now()
        return version

    def _check_new_path(self, draft: _Version, path: str, ignore: str | None = None) -> None:
        self._validate_path(path)
        others = [a.path for a in draft.assets.values() if a.asset_id != ignore]
        if path in others:
            raise _message(409, "An asset with that path already exists")
        clashes = [p for p in others if p.startswith(path + "/") or path.startswith(p + "/")]
        if clashes:
            raise _message(
                409, f'Path of new asset "{path}" conflicts with existing assets: {clashes}'
            )

    @staticmethod
    def _validate_path(path: str) -> None:
        if not path:
            raise _field_errors({"metadata": ["No path specified in metadata."]})
        if path.startswith("/"):
            raise _message(400, "Absolute paths are not allowed.")
        if "\x00" in path:
            raise _message(400, "Paths cannot contain null characters.")
        parts = path.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise _message(400, f"Invalid characters ({path}) in path.")
        if len(path) > 512:
            raise _message(400, "Path must be at most 512 characters long.")

    def _new_asset(
        self,
        path: str,
        metadata: dict[str, Any],
        *,
        blob: _Blob | None = None,
        zarr: _Zarr | None = None,
    ) -> _Asset:
        asset = _Asset(str(uuid.uuid4()), path, dict(metadata), blob=blob, zarr=zarr)
        asset.metadata["path"] = path
        asset.metadata.setdefault("schemaVersion", self.schema_version)
        self._assets[asset.asset_id] = asset
        return asset

    def _attach(self, ds: _Dandiset, asset: _Asset, replacing: _Asset | None = None) -> None:
        draft = ds.draft
        if replacing is not None:
            draft.assets.pop(replacing.asset_id, None)
        draft.assets[asset.asset_id] = asset
        self._mark_pending(draft)
        ds.modified = _now()

    def _blob_for(self, content: bytes) -> _Blob:
        etag = self.dandi_etag(content)
        sha = hashlib.sha256(content).hexdigest()
        with self.lock:
            for blob in self._blobs.values():
                if blob.etag == etag and blob.size == len(content):
                    return blob
            blob_id = str(uuid.uuid4())
            key = self._blob_key(blob_id)
            self.objects[key] = _Object(content, etag)
            blob = _Blob(blob_id, key, etag, len(content), sha)
            self._blobs[blob_id] = blob
            return blob

    @staticmethod
    def _blob_key(blob_id: str) -> str:
        return f"blobs/{blob_id[:3]}/{blob_id[3:6]}/{blob_id}"

    @staticmethod
    def _zarr_key(zarr: _Zarr, path: str) -> str:
        return f"zarr/{zarr.zarr_id}/{path}"

    def _zarr_files(self, zarr: _Zarr) -> dict[str, _Object]:
        prefix = f"zarr/{zarr.zarr_id}/"
        return {k[len(prefix) :]: o for k, o in self.objects.items() if k.startswith(prefix)}

    def _ingest(self, zarr: _Zarr) -> None:
        files = self._zarr_files(zarr)
        zarr.checksum = zarr_checksum({p: (o.etag, o.size) for p, o in files.items()})
        zarr.file_count = len(files)
        zarr.size = sum(o.size for o in files.values())
        zarr.status = "Complete"
        zarr.polls_left = 0

    def _poll_zarr(self, zarr: _Zarr) -> None:
        if zarr.status in ("Uploaded", "Ingesting"):
            if zarr.polls_left > 0:
                zarr.polls_left -= 1
                zarr.status = "Ingesting"
            else:
                self._ingest(zarr)

    # ============================================================================ presigned URLs
    def _signature(self, method: str, path: str, params: dict[str, str]) -> str:
        material = "\n".join([method, path, urlencode(sorted(params.items()))])
        return hmac.new(self._signing_key, material.encode(), hashlib.sha256).hexdigest()

    def _presign(self, method: str, key: str, extra: dict[str, str] | None = None) -> str:
        base = httpx.URL(self.url(quote(key), "storage"))
        params = {
            **(extra or {}),
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"FAKEACCESSKEY/{_now():%Y%m%d}/us-east-2/s3/aws4_request",
            "X-Amz-Date": f"{_now():%Y%m%dT%H%M%SZ}",
            "X-Amz-Expires": str(self.presign_expiry),
            "X-Amz-SignedHeaders": "host",
        }
        params["X-Amz-Signature"] = self._signature(method, base.path, params)
        return str(base.copy_with(query=urlencode(params).encode()))

    def _verify_presigned(
        self, request: httpx.Request, method: str | None = None
    ) -> dict[str, str]:
        params = dict(request.url.params)
        if "X-Amz-Signature" not in params:
            raise _Reply(_s3_error(403, "AccessDenied", "Access Denied"))
        if "authorization" in request.headers:
            raise _Reply(
                _s3_error(
                    400,
                    "InvalidArgument",
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                    "Signature query string parameter or the Authorization header should be specified",
                    ArgumentName="Authorization",
                )
            )
        signature = params.pop("X-Amz-Signature")
        expected = self._signature(method or request.method, request.url.path, params)
        if not hmac.compare_digest(signature, expected):
            raise _Reply(
                _s3_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                )
            )
        issued = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        if _now() > issued + dt.timedelta(seconds=int(params["X-Amz-Expires"])):
            raise _Reply(_s3_error(403, "AccessDenied", "Request has expired"))
        return params

    # ============================================================================ api: server
    @route("GET", r"/info/")
    def _info(self, request: httpx.Request) -> httpx.Response:
        return json_response(
            {
                "instance_config": {
                    "instance_name": "DANDI",
                    "instance_identifier": "RRID:SCR_017571",
                    "instance_url": self.web_url,
                    "doi_prefix": "10.80507",
                    "licenses": ["spdx:CC0-1.0", "spdx:CC-BY-4.0"],
                },
                "schema_version": self.schema_version,
                "schema_url": "https://raw.githubusercontent.com/dandi/schema/master/releases/"
                f"{self.schema_version}/dandiset.json",
                "allowed_schema_versions": list(
                    self.allowed_schema_versions or (self.schema_version,)
                ),
                "version": self.server_version,
                "services": {
                    "api": {"url": self.base_url},
                    "webui": {"url": self.web_url},
                    "jupyterhub": {"url": "https://hub.dandiarchive.fake.test"},
                },
                "cli-minimal-version": "0.60.0",
                "cli-requires-python": ">=3.10",
                "cli-bad-versions": [],
            }
        )

    @route("GET", r"/stats/")
    def _stats(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            return json_response(
                {
                    "dandiset_count": len(self.dandisets),
                    "published_dandiset_count": sum(
                        1 for d in self.dandisets.values() if d.published
                    ),
                    "user_count": len(self.users),
                    "size": sum(a.size for a in self._assets.values()),
                }
            )

    @route("GET", r"/schemas/available/")
    def _schemas_available(self, request: httpx.Request) -> httpx.Response:
        return json_response(["Dandiset", "Asset", "PublishedDandiset", "PublishedAsset"])

    @route("GET", r"/schemas/")
    def _schema(self, request: httpx.Request) -> httpx.Response:
        model = request.url.params.get("model")
        names = ("Dandiset", "Asset", "PublishedDandiset", "PublishedAsset")
        if model is None:
            raise _field_errors({"model": ["This field is required."]})
        if model not in names:
            raise _field_errors({"model": [f'"{model}" is not a valid choice.']})
        # the JSON Schemas codegen exported from the pinned dandischema, shipped as package data
        from scibind.dandi._schemas import metadata_schema

        return json_response(metadata_schema(model))

    # ============================================================================ api: auth and users
    @route("GET", r"/auth/token/")
    def _token_get(self, request: httpx.Request) -> httpx.Response:
        return json_response(self._require_approved(request).api_key)

    @route("POST", r"/auth/token/")
    def _token_new(self, request: httpx.Request) -> httpx.Response:
        user = self._require_approved(request)
        with self.lock:
            user.api_key = secrets.token_hex(20)
        return json_response(user.api_key)

    @route("GET", r"/users/me/")
    def _users_me(self, request: httpx.Request) -> httpx.Response:
        return json_response(self._require_user(request).detail())

    @route("GET", r"/users/")
    def _users_list(self, request: httpx.Request) -> httpx.Response:
        user = self._require_user(request)
        if not user.admin:
            raise _detail(403, PERMISSION_DENIED)
        approved_only = _bool(request.url.params.get("approved_only"), False, "approved_only")
        users = [u for u in self.users.values() if not approved_only or u.status == "APPROVED"]
        return json_response([u.detail() for u in users])

    @route("GET", r"/users/search/")
    def _users_search(self, request: httpx.Request) -> httpx.Response:
        self._require_approved(request)
        text = request.url.params.get("username", "")
        if not re.fullmatch(r"[\w.@+-]+", text):
            return json_response([])
        low = text.lower()
        found = [
            u.detail()
            for u in self.users.values()
            if u.status == "APPROVED" and (low in u.username.lower() or low in u.name.lower())
        ]
        return json_response(found[:10])

    @route("GET", r"/users/questionnaire-form/")
    def _questionnaire_get(self, request: httpx.Request) -> httpx.Response:
        self._require_user(request)
        try:
            questions = json.loads(request.url.params["QUESTIONS"])
        except (KeyError, ValueError) as exc:
            raise _detail(404, NOT_FOUND) from exc
        rows = "".join(f"<label>{q.get('question', '')}<input></label>" for q in questions)
        return httpx.Response(
            200,
            text=f"<html><body><form method='post'>{rows}</form></body></html>",
            headers={"Content-Type": "text/html; charset=utf-8"},
        )

    @route("POST", r"/users/questionnaire-form/")
    def _questionnaire_post(self, request: httpx.Request) -> httpx.Response:
        user = self._require_user(request)
        form = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        with self.lock:
            if form.get("First Name") or form.get("Last Name"):
                user.name = f"{form.get('First Name', '')} {form.get('Last Name', '')}".strip()
            if user.status == "INCOMPLETE":
                user.status = "APPROVED" if user.email.endswith(".edu") else "PENDING"
        target = self.url("/oauth/authorize/").replace("/api/oauth", "/oauth")
        query = request.url.query.decode()
        return httpx.Response(302, headers={"Location": f"{target}?{query}" if query else target})

    # ============================================================================ api: dandisets
    @route("GET", r"/dandisets/")
    def _dandisets_list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        user = self._user(request)
        draft = _bool(params.get("draft"), True, "draft")
        empty = _bool(params.get("empty"), True, "empty")
        embargoed = _bool(params.get("embargoed"), False, "embargoed")
        starred = _bool(params.get("starred"), False, "starred")
        if embargoed and user is None:
            raise _message(401, "Must be authenticated to view embargoed dandisets.")
        if starred and user is None:
            raise _message(401, "Must be authenticated to filter by starred dandisets.")
        with self.lock:
            items = sorted(self.dandisets.values(), key=lambda d: d.created)
            if params.get("user") == "me":
                items = [d for d in items if user is not None and user.username in d.owners]
            else:
                items = [d for d in items if d.embargo_status == "OPEN" or self._is_owner(user, d)]
            if not draft:
                items = [d for d in items if d.published]
            if not empty:
                items = [d for d in items if d.latest.assets]
            if not embargoed:
                items = [d for d in items if d.embargo_status == "OPEN"]
            if starred and user is not None:
                items = [d for d in items if user.username in d.stars]
            items = self._search(items, params.get("search"))
            items = self._order_dandisets(items, params.get("ordering"))
            for ds in items:
                self._poll(ds)
            return self._paginated(request, items, lambda d: self._dandiset_list_item(d, user))

    def _search(self, items: list[_Dandiset], search: str | None) -> list[_Dandiset]:
        if not search:
            return items
        operators = {
            "created_before",
            "created_after",
            "modified_before",
            "modified_after",
            "published_before",
            "published_after",
            "species",
            "approach",
            "technique",
            "file_type",
            "owner",
        }
        words: list[str] = []
        for token in re.findall(r'(?:[^\s"]+:"[^"]*"|"[^"]*"|\S+)', search):
            if ":" in token and not token.startswith('"'):
                key, value = token.split(":", 1)
                value = value.strip('"')
                if key not in operators:
                    raise _field_errors({"search": [f"Unknown search operator '{key}'."]})
                items = [d for d in items if self._search_match(d, key, value)]
            else:
                words.append(token.strip('"').lower())
        for word in words:
            items = [d for d in items if word in json.dumps(d.latest.metadata).lower()]
        return items

    def _search_match(self, ds: _Dandiset, key: str, value: str) -> bool:
        if key.endswith(("_before", "_after")):
            try:
                day = dt.date.fromisoformat(value)
            except ValueError as exc:
                raise _field_errors({"search": [f"Invalid date '{value}' for {key}."]}) from exc
            field_name = key.rsplit("_", 1)[0]
            if field_name == "published":
                dates = [v.created.date() for v in ds.published]
            else:
                dates = [(ds.created if field_name == "created" else ds.modified).date()]
            return any(d < day if key.endswith("_before") else d > day for d in dates)
        if key == "owner":
            low = value.lower()
            return any(
                low in (u.username.lower(), u.name.lower(), u.email.lower())
                for u in (self.users[o] for o in ds.owners if o in self.users)
            )
        summary = json.dumps(ds.latest.metadata.get("assetsSummary", {})).lower()
        if key == "file_type":
            return any(
                value.lower() in str(a.metadata.get("encodingFormat", "")).lower()
                for a in ds.latest.assets.values()
            )
        return value.lower() in summary

    def _order_dandisets(self, items: list[_Dandiset], ordering: str | None) -> list[_Dandiset]:
        fields = [f.strip() for f in (ordering or "").split(",")]
        fields = [f for f in fields if f.lstrip("-") in ("id", "name", "modified", "size", "stars")]
        if not fields:
            return items
        key = fields[0]
        reverse = key.startswith("-")
        sort_keys: dict[str, Any] = {
            "id": lambda d: d.pk,
            "name": lambda d: d.latest.name,
            "modified": lambda d: d.latest.modified,
            "size": lambda d: self._version_size(d.latest),
            "stars": lambda d: len(d.stars),
        }
        return sorted(items, key=sort_keys[key.lstrip("-")], reverse=reverse)

    @route("POST", r"/dandisets/")
    def _dandisets_create(self, request: httpx.Request) -> httpx.Response:
        user = self._require_approved(request)
        body = self._json_body(request)
        errors: dict[str, list[str]] = {}
        if not isinstance(body, dict):
            raise _field_errors(
                {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
            )
        name = body.get("name")
        if not name:
            errors["name"] = [
                "This field is required." if name is None else "This field may not be blank."
            ]
        elif len(name) > 300:
            errors["name"] = ["Ensure this field has no more than 300 characters."]
        if "metadata" not in body:
            errors["metadata"] = ["This field is required."]
        elif not isinstance(body["metadata"], dict):
            errors["metadata"] = ["Value must be valid JSON."]
        if errors:
            raise _field_errors(errors)
        embargo = _bool(request.url.params.get("embargo"), False, "embargo")
        metadata = dict(body["metadata"])
        with self.lock:
            if "identifier" in metadata:
                ident = str(metadata.pop("identifier")).removeprefix("DANDI:")
                if not ident.isdigit():
                    raise _message(400, f"Invalid Identifier {ident}")
                if not user.admin:
                    raise _message(403, "Creating a dandiset for a given identifier is admin only.")
                if int(ident) in self.dandisets:
                    raise _message(400, f"Dandiset {int(ident):06d} Already Exists")
                self._next_dandiset = int(ident)
            ds = self._new_dandiset(user, str(name), metadata, embargo)
            return json_response(self._dandiset_detail(ds, user))

    @route("GET", rf"/dandisets/{DANDISET}/")
    def _dandiset_get(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            self._poll(ds)
            return json_response(self._dandiset_detail(ds, self._user(request)))

    @route("DELETE", rf"/dandisets/{DANDISET}/")
    def _dandiset_delete(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            self._require_owner(request, ds)
            if ds.published:
                raise _message(403, "Cannot delete dandisets with published versions.")
            del self.dandisets[ds.pk]
            return httpx.Response(204)

    @route("POST", rf"/dandisets/{DANDISET}/star/")
    def _dandiset_star(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            ds.stars.add(self._require_user(request).username)
            return json_response({"count": len(ds.stars)})

    @route("DELETE", rf"/dandisets/{DANDISET}/star/")
    def _dandiset_unstar(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            ds.stars.discard(self._require_user(request).username)
            return json_response({"count": len(ds.stars)})

    @route("POST", rf"/dandisets/{DANDISET}/unembargo/")
    def _dandiset_unembargo(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            self._require_owner(request, ds)
            if ds.embargo_status != "EMBARGOED":
                raise _message(400, "Dandiset not embargoed")
            ds.embargo_status = "OPEN"
            return httpx.Response(200)

    @route("GET", rf"/dandisets/{DANDISET}/uploads/")
    def _dandiset_uploads(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            self._require_owner(request, ds)
            uploads = [u for u in self._uploads.values() if u.dandiset_id == ds.pk]
            return self._paginated(
                request,
                uploads,
                lambda u: {
                    "upload_id": u.upload_id,
                    "etag": u.etag,
                    "size": u.size,
                    "created": _iso(u.created),
                    "modified": _iso(u.created),
                },
            )

    @route("DELETE", rf"/dandisets/{DANDISET}/uploads/")
    def _dandiset_uploads_clear(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            self._require_owner(request, ds)
            for upload in [u for u in self._uploads.values() if u.dandiset_id == ds.pk]:
                del self._uploads[upload.upload_id]
                self._multiparts.pop(upload.multipart_id, None)
            return httpx.Response(204)

    def _owners(self, request: httpx.Request, ds: _Dandiset) -> list[dict[str, Any]]:
        authenticated = self._user(request) is not None
        return [
            {
                "username": u.username,
                "name": u.name,
                "email": u.email if authenticated else None,
            }
            for u in (self.users[name] for name in ds.owners if name in self.users)
        ]

    @route("GET", rf"/dandisets/{DANDISET}/users/")
    def _owners_get(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            return json_response(self._owners(request, self._readable(request, dandiset_id)))

    @route("PUT", rf"/dandisets/{DANDISET}/users/")
    def _owners_put(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            user = self._require_user(request)
            if not self._is_owner(user, ds):
                raise _message(403, "Action not allowed")
            body = self._json_body(request)
            if not isinstance(body, list):
                raise _field_errors(
                    {"non_field_errors": ['Expected a list of items but got type "dict".']}
                )
            if not body:
                raise _Reply(json_response(["Cannot remove all draft owners"], 400))
            names = [str(item.get("username", "")) for item in body if isinstance(item, dict)]
            for name in names:
                if name not in self.users:
                    raise _Reply(json_response([f"User {name} not found"], 400))
            ds.owners = list(dict.fromkeys(names))
            return json_response(self._owners(request, ds))

    # ============================================================================ api: versions
    def _version(
        self, request: httpx.Request, dandiset_id: str, version_id: str, *, poll: bool = False
    ) -> tuple[_Dandiset, _Version]:
        ds = self._readable(request, dandiset_id)
        if poll:
            self._poll(ds)
        version = ds.versions.get(version_id)
        if version is None:
            raise _detail(404, NOT_FOUND)
        return ds, version

    @route("GET", rf"/dandisets/{DANDISET}/versions/")
    def _versions_list(self, request: httpx.Request, dandiset_id: str) -> httpx.Response:
        with self.lock:
            ds = self._readable(request, dandiset_id)
            self._poll(ds)
            order = request.url.params.get("order", "created")
            versions = sorted(ds.versions.values(), key=lambda v: v.created)
            if order == "-created":
                versions.reverse()
            return self._paginated(request, versions, lambda v: self._version_record(ds, v))

    @route("GET", rf"{IN_VERSION}/")
    def _version_get(
        self, request: httpx.Request, dandiset_id: str, version_id: str
    ) -> httpx.Response:
        with self.lock:
            ds, version = self._version(request, dandiset_id, version_id, poll=True)
            return json_response(self._version_metadata(ds, version))

    @route("GET", rf"{IN_VERSION}/info/")
    def _version_info(
        self, request: httpx.Request, dandiset_id: str, version_id: str
    ) -> httpx.Response:
        with self.lock:
            ds, version = self._version(request, dandiset_id, version_id, poll=True)
            return json_response(self._version_detail(ds, version, self._user(request)))

    @route("PUT", rf"{IN_VERSION}/")
    def _version_put(
        self, request: httpx.Request, dandiset_id: str, version_id: str
    ) -> httpx.Response:
        with self.lock:
            ds, version = self._version(request, dandiset_id, version_id)
            user = self._require_owner(request, ds)
            if version.version != "draft":
                raise _message(405, "Only draft versions can be modified.")
            body = self._json_body(request)
            errors = {}
            if not isinstance(body, dict) or not body.get("name"):
                errors["name"] = ["This field is required."]
            if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
                errors["metadata"] = ["This field is required."]
            if errors:
                raise _field_errors(errors)
            metadata = {**body["metadata"], "name": body["name"]}
            if (body["name"], metadata) != (version.name, version.metadata):
                version.name = body["name"]
                version.metadata = metadata
                self._mark_pending(version)
                ds.modified = _now()
            return json_response(self._version_detail(ds, version, user))

    @route("DELETE", rf"{IN_VERSION}/")
    def _version_delete(
        self, request: httpx.Request, dandiset_id: str, version_id: str
    ) -> httpx.Response:
        with self.lock:
            ds, version = self._version(request, dandiset_id, version_id)
            user = self._require_user(request)
            if version.version == "draft":
                raise _message(403, "Cannot delete draft versions")
            if not user.admin:
                raise _message(403, "Cannot delete published versions")
            del ds.versions[version.version]
            return httpx.Response(204)

    @route("POST", rf"{IN_VERSION}/publish/")
    def _version_publish(
        self, request: httpx.Request, dandiset_id: str, version_id: str
    ) -> httpx.Response:
        with self.lock:
            ds, version = self._version(request, dandiset_id, version_id)
            self._require_owner(request, ds)
            if version.version != "draft":
                raise _message(405, "Only draft versions can be published")
            if ds.embargo_status != "OPEN":
                raise _message(400, "Dandiset is embargoed")
            status = version.status
            if status == "Pending":
                raise _message(
                    409, "Metadata validation is pending for this dandiset, please try again later."
                )
            if status == "Validating":
                raise _message(409, "Dandiset is currently being validated")
            if status == "Publishing":
                raise _message(423, "Dandiset is currently being published")
            if status == "Published":
                raise _message(
                    400, "There have been no changes to the draft version since the last publish."
                )
            if status == "Invalid" or any(a.status != "Valid" for a in version.assets.values()):
                raise _message(400, "Dandiset metadata or asset metadata is not valid")
            body = self._json_body(request)
            if isinstance(body, dict) and body.get("release_notes"):
                version.release_notes = str(body["release_notes"])
            version.status = "Publishing"
            version.polls_left = self.publish_polls
            return httpx.Response(202)

    # ============================================================================ api: assets
    def _asset_in(self, version: _Version, asset_id: str) -> _Asset:
        asset = version.assets.get(asset_id)
        if asset is None:
            raise _detail(404, NOT_FOUND)
        return asset

    def _asset_global(self, request: httpx.Request, asset_id: str) -> _Asset:
        asset = self._assets.get(asset_id)
        if asset is None or not any(
            asset_id in v.assets for d in self.dandisets.values() for v in d.versions.values()
        ):
            raise _detail(404, NOT_FOUND)
        for ds in self.dandisets.values():
            if (
                any(asset_id in v.assets for v in ds.versions.values())
                and ds.embargo_status != "OPEN"
            ):
                user = self._user(request)
                if user is None:
                    raise self._unauthorized()
                if not self._is_owner(user, ds):
                    raise _detail(403, PERMISSION_DENIED)
        return asset

    @route("GET", rf"{IN_VERSION}/assets/")
    def _assets_list(
        self, request: httpx.Request, dandiset_id: str, version_id: str
    ) -> httpx.Response:
        params = request.url.params
        metadata = _bool(params.get("metadata"), False, "metadata")
        zarr_only = _bool(params.get("zarr"), False, "zarr")
        with self.lock:
            _ds, version = self._version(request, dandiset_id, version_id)
            assets = version.assets_by_created()
            if (prefix := params.get("path")) is not None:
                assets = [a for a in assets if a.path.lower().startswith(prefix.lower())]
            if (glob := params.get("glob")) is not None:
                pattern = re.compile(
                    "^" + re.escape(glob).replace(r"\*", ".*") + "$", re.IGNORECASE
                )
                assets = [a for a in assets if pattern.match(a.path)]
            if zarr_only:
                assets = [a for a in assets if a.zarr is not None]
            order = params.get("order")
            if order and order.lstrip("-") in ("created", "modified", "path"):
                assets.sort(
                    key=lambda a: getattr(a, order.lstrip("-")), reverse=order.startswith("-")
                )
            return self._paginated(
                request, assets, lambda a: self._asset_record(a, metadata=metadata), lazy=True
            )

    @route("GET", rf"{IN_VERSION}/assets/paths/")
    def _asset_paths(
        self, request: httpx.Request, dandiset_id: str, version_id: str
    ) -> httpx.Response:
        prefix = request.url.params.get("path_prefix", "")
        if "path_prefix" in request.url.params and prefix == "":
            raise _field_errors({"path_prefix": ["This field may not be blank."]})
        with self.lock:
            _ds, version = self._version(request, dandiset_id, version_id)
            folder = prefix.rstrip("/")
            base = f"{folder}/" if folder else ""
            children: dict[str, list[_Asset]] = {}
            for asset in version.assets.values():
                if asset.path.startswith(base):
                    head = asset.path[len(base) :].split("/", 1)[0]
                    children.setdefault(base + head, []).append(asset)
            if folder and not children:
                raise _detail(404, "Specified path not found.")

            def render(path: str) -> dict[str, Any]:
                members = children[path]
                file = next((a for a in members if a.path == path), None)
                return {
                    "path": path,
                    "version": version.pk,
                    "aggregate_files": len(members),
                    "aggregate_size": sum(a.size for a in members),
                    "asset": (
                        {
                            "asset_id": file.asset_id,
                            "url": self._asset_metadata(file)["contentUrl"][-1],
                        }
                        if file is not None
                        else None
                    ),
                }

            return self._paginated(request, sorted(children), render)

    @route("GET", rf"{IN_VERSION}/assets/{ASSET}/")
    def _asset_get_in(
        self, request: httpx.Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> httpx.Response:
        with self.lock:
            _ds, version = self._version(request, dandiset_id, version_id)
            return json_response(self._asset_metadata(self._asset_in(version, asset_id)))

    @route("GET", rf"{IN_VERSION}/assets/{ASSET}/info/")
    def _asset_info_in(
        self, request: httpx.Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> httpx.Response:
        with self.lock:
            _ds, version = self._version(request, dandiset_id, version_id)
            return json_response(self._asset_record(self._asset_in(version, asset_id)))

    @route("GET", rf"{IN_VERSION}/assets/{ASSET}/validation/")
    def _asset_validation(
        self, request: httpx.Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> httpx.Response:
        with self.lock:
            _ds, version = self._version(request, dandiset_id, version_id)
            asset = self._asset_in(version, asset_id)
            errors = asset.validation_errors if asset.status == "Invalid" else []
            return json_response({"status": asset.status, "validation_errors": errors})

    @route("GET", rf"{IN_VERSION}/assets/{ASSET}/download/")
    def _asset_download_in(
        self, request: httpx.Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> httpx.Response:
        with self.lock:
            _ds, version = self._version(request, dandiset_id, version_id)
            return self._download(request, self._asset_in(version, asset_id))

    @route("GET", rf"/assets/{ASSET}/")
    def _asset_get(self, request: httpx.Request, asset_id: str) -> httpx.Response:
        with self.lock:
            return json_response(self._asset_metadata(self._asset_global(request, asset_id)))

    @route("GET", rf"/assets/{ASSET}/info/")
    def _asset_info(self, request: httpx.Request, asset_id: str) -> httpx.Response:
        with self.lock:
            return json_response(self._asset_record(self._asset_global(request, asset_id)))

    @route("GET", rf"/assets/{ASSET}/download/")
    def _asset_download(self, request: httpx.Request, asset_id: str) -> httpx.Response:
        with self.lock:
            return self._download(request, self._asset_global(request, asset_id))

    def _download(self, request: httpx.Request, asset: _Asset) -> httpx.Response:
        disposition = request.url.params.get("content_disposition", "attachment")
        if disposition not in ("attachment", "inline"):
            raise _field_errors(
                {"content_disposition": [f'"{disposition}" is not a valid choice.']}
            )
        if asset.blob is None:
            raise _message(
                400,
                "Unable to provide download link for zarr assets. "
                "Please browse the zarr files directly to do so.",
            )
        name = asset.path.rsplit("/", 1)[-1]
        extra = {"response-content-disposition": f'{disposition}; filename="{name}"'}
        content_type = str(asset.metadata.get("encodingFormat") or "application/octet-stream")
        if disposition == "inline":
            extra["response-content-type"] = content_type
        url = self._presign("GET", asset.blob.key, extra)
        if disposition == "inline" and content_type.startswith("video/"):
            page = f'<video autoplay muted controls>\n  <source src="{url}">\n</video>\n'
            return httpx.Response(200, text=page, headers={"Content-Type": "text/html"})
        return httpx.Response(
            302, headers={"Location": url, "Content-Type": "text/html; charset=utf-8"}
        )

    def _asset_request(
        self, request: httpx.Request, ds: _Dandiset
    ) -> tuple[dict[str, Any], _Blob | None, _Zarr | None]:
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _field_errors({"non_field_errors": ["Invalid data. Expected a dictionary."]})
        if "metadata" not in body:
            raise _field_errors({"metadata": ["This field is required."]})
        metadata = body["metadata"]
        uuid_re = re.compile(r"^[0-9a-fA-F-]{32,36}$")
        for key in ("blob_id", "zarr_id"):
            if key in body and not (isinstance(body[key], str) and uuid_re.match(body[key])):
                raise _field_errors({key: ["Must be a valid UUID."]})
        if ("blob_id" in body) == ("zarr_id" in body):
            raise _field_errors(
                {"blob_id": ["Exactly one of blob_id or zarr_id must be specified."]}
            )
        if not isinstance(metadata, dict) or not metadata.get("path"):
            raise _field_errors({"metadata": ["No path specified in metadata."]})
        self._validate_path(str(metadata["path"]))
        metadata = dict(metadata)
        metadata.setdefault("schemaVersion", self.schema_version)
        blob = zarr = None
        if "blob_id" in body:
            blob = self._blobs.get(str(body["blob_id"]).lower())
            if blob is None:
                raise _detail(404, NOT_FOUND)
        else:
            zarr = self._zarrs.get(str(body["zarr_id"]).lower())
            if zarr is None:
                raise _detail(404, NOT_FOUND)
            if zarr.dandiset_id != ds.pk:
                raise _message(400, "The zarr archive belongs to a different dandiset")
        return metadata, blob, zarr

    @route("POST", rf"{IN_VERSION}/assets/")
    def _asset_create(
        self, request: httpx.Request, dandiset_id: str, version_id: str
    ) -> httpx.Response:
        with self.lock:
            ds, version = self._version(request, dandiset_id, version_id)
            self._require_owner(request, ds)
            metadata, blob, zarr = self._asset_request(request, ds)
            if version.version != "draft":
                raise _message(405, "Only draft versions can be modified.")
            path = str(metadata["path"])
            self._check_new_path(version, path)
            asset = self._new_asset(path, metadata, blob=blob, zarr=zarr)
            self._attach(ds, asset)
            return json_response(self._asset_record(asset, settle=False))

    @route("PUT", rf"{IN_VERSION}/assets/{ASSET}/")
    def _asset_update(
        self, request: httpx.Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> httpx.Response:
        with self.lock:
            ds, version = self._version(request, dandiset_id, version_id)
            self._require_owner(request, ds)
            if version.version != "draft":
                raise _message(405, "Only draft versions can be modified.")
            old = self._asset_in(version, asset_id)
            metadata, blob, zarr = self._asset_request(request, ds)
            if (metadata, blob, zarr) == (old.metadata, old.blob, old.zarr):
                return json_response(self._asset_record(old))
            path = str(metadata["path"])
            self._check_new_path(version, path, ignore=old.asset_id)
            asset = self._new_asset(path, metadata, blob=blob, zarr=zarr)
            self._attach(ds, asset, replacing=old)
            return json_response(self._asset_record(asset, settle=False))

    @route("DELETE", rf"{IN_VERSION}/assets/{ASSET}/")
    def _asset_delete(
        self, request: httpx.Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> httpx.Response:
        with self.lock:
            ds, version = self._version(request, dandiset_id, version_id)
            self._require_owner(request, ds)
            asset = self._asset_in(version, asset_id)
            if version.version != "draft":
                raise _message(405, "Only draft versions can be modified.")
            del version.assets[asset.asset_id]
            self._mark_pending(version)
            ds.modified = _now()
            return httpx.Response(204)

    # ============================================================================ api: blobs and uploads
    @route("POST", r"/blobs/digest/")
    def _blob_by_digest(self, request: httpx.Request) -> httpx.Response:
        body = self._json_body(request)
        errors = {
            key: ["This field is required."]
            for key in ("algorithm", "value")
            if not isinstance(body, dict) or not body.get(key)
        }
        if errors:
            raise _field_errors(errors)
        algorithm, value = body["algorithm"], body["value"]
        if algorithm not in ("dandi:dandi-etag", "dandi:sha2-256"):
            raise _message(
                400, "Unsupported Digest Algorithm. Supported: dandi:dandi-etag, dandi:sha2-256"
            )
        with self.lock:
            for blob in self._blobs.values():
                if (blob.etag if algorithm == "dandi:dandi-etag" else blob.settle()) == value:
                    blob.settle()
                    return json_response(blob.record())
        raise _detail(404, NOT_FOUND)

    @route("POST", r"/uploads/initialize/")
    def _upload_initialize(self, request: httpx.Request) -> httpx.Response:
        user = self._require_approved(request)
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise _field_errors({"non_field_errors": ["Invalid data. Expected a dictionary."]})
        errors: dict[str, Any] = {}
        size = body.get("contentSize")
        if size is None:
            errors["contentSize"] = ["This field is required."]
        elif not isinstance(size, int) or isinstance(size, bool):
            errors["contentSize"] = ["A valid integer is required."]
        elif size < 1:
            errors["contentSize"] = ["Ensure this value is greater than or equal to 1."]
        digest = body.get("digest")
        if digest is None:
            errors["digest"] = ["This field is required."]
        elif not isinstance(digest, dict) or not digest.get("algorithm") or not digest.get("value"):
            errors["digest"] = {
                k: ["This field is required."]
                for k in ("algorithm", "value")
                if not isinstance(digest, dict) or not digest.get(k)
            }
        dandiset = body.get("dandiset")
        if dandiset is None:
            errors["dandiset"] = ["This field is required."]
        elif not re.fullmatch(r"\d{6}", str(dandiset)):
            errors["dandiset"] = ["This value does not match the required pattern."]
        if errors or not isinstance(digest, dict) or not isinstance(size, int):
            raise _field_errors(errors)
        if digest["algorithm"] != "dandi:dandi-etag":
            raise _message(400, "Unsupported Digest Type")
        with self.lock:
            ds = self.dandisets.get(int(str(dandiset)))
            if ds is None or (ds.embargo_status != "OPEN" and not self._is_owner(user, ds)):
                raise _detail(404, NOT_FOUND)
            if not self._is_owner(user, ds):
                raise _detail(403, PERMISSION_DENIED)
            etag = str(digest["value"])
            for blob in self._blobs.values():
                if blob.etag == etag:
                    return json_response("Blob already exists.", 409, {"Location": blob.blob_id})
            upload_id = str(uuid.uuid4())
            key = self._blob_key(upload_id)
            multipart_id = secrets.token_urlsafe(48)
            sizes = self.parts_for(size)
            self._multiparts[multipart_id] = _Multipart(key, sizes)
            self._uploads[upload_id] = _Upload(upload_id, multipart_id, key, etag, size, ds.pk)
            parts = [
                {
                    "part_number": number,
                    "size": part_size,
                    "upload_url": self._presign(
                        "PUT",
                        key,
                        {
                            "partNumber": str(number),
                            "uploadId": multipart_id,
                            "x-fake-content-length": str(part_size),
                        },
                    ),
                }
                for number, part_size in enumerate(sizes, start=1)
            ]
            return json_response({"upload_id": upload_id, "parts": parts})

    def _upload(self, upload_id: str) -> _Upload:
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise _detail(404, NOT_FOUND)
        return upload

    @route("POST", r"/uploads/(?P<upload_id>[0-9a-f-]{36})/complete/")
    def _upload_complete(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        self._require_approved(request)
        body = self._json_body(request)
        parts = body.get("parts") if isinstance(body, dict) else None
        if parts is None:
            raise _field_errors({"parts": ["This field is required."]})
        if not isinstance(parts, list) or not parts:
            raise _field_errors({"parts": ["This list may not be empty."]})
        problems = [
            {k: ["This field is required."] for k in ("part_number", "size", "etag") if k not in p}
            if isinstance(p, dict)
            else {"non_field_errors": ["Invalid data."]}
            for p in parts
        ]
        if any(problems):
            raise _field_errors({"parts": problems})
        with self.lock:
            upload = self._upload(upload_id)
            root = ElementTree.Element("CompleteMultipartUpload", xmlns=S3_NS)
            for part in sorted(parts, key=lambda p: int(p["part_number"])):
                node = ElementTree.SubElement(root, "Part")
                ElementTree.SubElement(node, "PartNumber").text = str(part["part_number"])
                ElementTree.SubElement(node, "ETag").text = f'"{part["etag"]}"'
            url = self._presign("POST", upload.key, {"uploadId": upload.multipart_id})
            return json_response({"complete_url": url, "body": ElementTree.tostring(root).decode()})

    @route("POST", r"/uploads/(?P<upload_id>[0-9a-f-]{36})/validate/")
    def _upload_validate(self, request: httpx.Request, upload_id: str) -> httpx.Response:
        self._require_approved(request)
        with self.lock:
            upload = self._upload(upload_id)
            stored = self.objects.get(upload.key)
            if stored is None:
                raise _Reply(json_response(["Object does not exist."], 400))
            if stored.size != upload.size:
                raise _Reply(
                    json_response(
                        [f"Size {upload.size} does not match actual size {stored.size}."], 400
                    )
                )
            if stored.etag != upload.etag:
                raise _Reply(
                    json_response(
                        [f"ETag {upload.etag} does not match actual ETag {stored.etag}."], 400
                    )
                )
            if any(b.etag == upload.etag and b.size == upload.size for b in self._blobs.values()):
                raise _message(409, "An identical blob has already been uploaded")
            # the archive computes the sha256 asynchronously: the answer still says null, and the digest is
            # computed when it is first read (see _Blob.settle), not on this request's time
            blob = _Blob(str(uuid.uuid4()), upload.key, upload.etag, upload.size, pending=stored)
            self._blobs[blob.blob_id] = blob
            del self._uploads[upload.upload_id]
            return json_response(blob.record())

    # ============================================================================ api: zarr
    def _zarr(self, request: httpx.Request, zarr_id: str) -> _Zarr:
        zarr = self._zarrs.get(zarr_id)
        if zarr is None or zarr.dandiset_id not in self.dandisets:
            raise _detail(404, NOT_FOUND)
        ds = self.dandisets[zarr.dandiset_id]
        if ds.embargo_status != "OPEN" and not self._is_owner(self._user(request), ds):
            raise _detail(404, NOT_FOUND)
        return zarr

    def _zarr_owner(self, request: httpx.Request, zarr: _Zarr) -> None:
        user = self._require_approved(request)
        if not self._is_owner(user, self.dandisets[zarr.dandiset_id]):
            raise _detail(403, PERMISSION_DENIED)

    @route("GET", r"/zarr/")
    def _zarr_list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        user = self._user(request)
        if "dandiset" in params and not re.fullmatch(r"\d{1,6}", params["dandiset"]):
            raise _field_errors({"dandiset": ["This value does not match the required pattern."]})
        with self.lock:
            zarrs = [
                z
                for z in sorted(self._zarrs.values(), key=lambda z: z.created)
                if z.dandiset_id in self.dandisets
                and (
                    self.dandisets[z.dandiset_id].embargo_status == "OPEN"
                    or self._is_owner(user, self.dandisets[z.dandiset_id])
                )
            ]
            if "dandiset" in params:
                zarrs = [z for z in zarrs if z.dandiset_id == int(params["dandiset"])]
            if "name" in params:
                zarrs = [z for z in zarrs if z.name == params["name"]]
            for zarr in zarrs:
                self._poll_zarr(zarr)
            return self._paginated(request, zarrs, self._zarr_record)

    @route("POST", r"/zarr/")
    def _zarr_create(self, request: httpx.Request) -> httpx.Response:
        user = self._require_approved(request)
        body = self._json_body(request)
        errors = {
            k: ["This field is required."]
            for k in ("name", "dandiset")
            if not isinstance(body, dict) or not body.get(k)
        }
        if not errors and not re.fullmatch(r"\d{6}", str(body["dandiset"])):
            errors["dandiset"] = ["This value does not match the required pattern."]
        if errors:
            raise _field_errors(errors)
        with self.lock:
            ds = self.dandisets.get(int(body["dandiset"]))
            if ds is None or (ds.embargo_status != "OPEN" and not self._is_owner(user, ds)):
                raise _detail(404, NOT_FOUND)
            if not self._is_owner(user, ds):
                raise _detail(403, PERMISSION_DENIED)
            if any(z.dandiset_id == ds.pk and z.name == body["name"] for z in self._zarrs.values()):
                raise _Reply(json_response(["Zarr already exists"], 400))
            zarr = _Zarr(str(uuid.uuid4()), str(body["name"]), ds.pk)
            self._zarrs[zarr.zarr_id] = zarr
            return json_response(self._zarr_record(zarr))

    @route("GET", rf"/zarr/{ZARR}/")
    def _zarr_get(self, request: httpx.Request, zarr_id: str) -> httpx.Response:
        with self.lock:
            zarr = self._zarr(request, zarr_id)
            self._poll_zarr(zarr)
            return json_response(self._zarr_record(zarr))

    @route("GET", rf"/zarr/{ZARR}/files/")
    def _zarr_files_list(self, request: httpx.Request, zarr_id: str) -> httpx.Response:
        params = request.url.params
        try:
            limit = int(params.get("limit", "1000"))
        except ValueError as exc:
            raise _field_errors({"limit": ["A valid integer is required."]}) from exc
        if not 0 <= limit <= 1000:
            raise _field_errors({"limit": ["Ensure this value is less than or equal to 1000."]})
        download = _bool(params.get("download"), False, "download")
        blank = {
            k: ["This field may not be blank."] for k in ("prefix", "after") if params.get(k) == ""
        }
        if blank:
            raise _field_errors(blank)
        prefix = params.get("prefix", "").lstrip("/")
        after = params.get("after", "").lstrip("/")
        with self.lock:
            zarr = self._zarr(request, zarr_id)
            if download:
                return httpx.Response(
                    302, headers={"Location": self._presign("GET", self._zarr_key(zarr, prefix))}
                )
            files = self._zarr_files(zarr)
            full_prefix = prefix.rstrip("/")
            keys = sorted(
                k
                for k in files
                if k.startswith(full_prefix) and (not after or k > after.rstrip("/"))
            )
            page, more = keys[:limit], len(keys) > limit
            results = [
                {
                    "Key": key,
                    "LastModified": _iso(files[key].modified),
                    "ETag": files[key].etag,
                    "Size": files[key].size,
                }
                for key in page
            ]
            next_url = _with_query(str(request.url), after=page[-1]) if more and page else None
            return json_response({"next": next_url, "results": results})

    @route("HEAD", rf"/zarr/{ZARR}/files/")
    def _zarr_files_head(self, request: httpx.Request, zarr_id: str) -> httpx.Response:
        prefix = request.url.params.get("prefix", "").lstrip("/").rstrip("/")
        with self.lock:
            zarr = self._zarr(request, zarr_id)
            url = self._presign("HEAD", self._zarr_key(zarr, prefix))
            return httpx.Response(302, headers={"Location": url})

    @route("POST", rf"/zarr/{ZARR}/files/")
    def _zarr_files_upload(self, request: httpx.Request, zarr_id: str) -> httpx.Response:
        with self.lock:
            zarr = self._zarr(request, zarr_id)
            if zarr.status in ("Uploaded", "Ingesting"):
                raise _message(400, ZARR_INGEST_ERROR)
            self._zarr_owner(request, zarr)
            body = self._json_body(request)
            if not isinstance(body, list):
                raise _field_errors(
                    {"non_field_errors": ['Expected a list of items but got type "dict".']}
                )
            problems = [
                {k: ["This field is required."] for k in ("path", "base64md5") if not item.get(k)}
                if isinstance(item, dict)
                else {"non_field_errors": ["Invalid data."]}
                for item in body
            ]
            if any(problems):
                raise _Reply(json_response(problems, 400))
            urls = [
                self._presign(
                    "PUT",
                    self._zarr_key(zarr, item["path"]),
                    {"x-fake-content-md5": item["base64md5"]},
                )
                for item in body
            ]
            zarr.status = "Pending"
            zarr.checksum = None
            return json_response(urls)

    @route("DELETE", rf"/zarr/{ZARR}/files/")
    def _zarr_files_delete(self, request: httpx.Request, zarr_id: str) -> httpx.Response:
        with self.lock:
            zarr = self._zarr(request, zarr_id)
            if zarr.status in ("Uploaded", "Ingesting"):
                raise _message(400, ZARR_INGEST_ERROR)
            self._zarr_owner(request, zarr)
            body = self._json_body(request)
            if not isinstance(body, list):
                raise _field_errors(
                    {"non_field_errors": ['Expected a list of items but got type "dict".']}
                )
            for item in body:
                if not isinstance(item, dict) or not item.get("path"):
                    raise _Reply(json_response([{"path": ["This field is required."]}], 400))
            for item in body:
                self.objects.pop(self._zarr_key(zarr, str(item["path"])), None)
            zarr.status = "Pending"
            zarr.checksum = None
            return httpx.Response(204)

    @route("POST", rf"/zarr/{ZARR}/finalize/")
    def _zarr_finalize(self, request: httpx.Request, zarr_id: str) -> httpx.Response:
        with self.lock:
            zarr = self._zarr(request, zarr_id)
            self._zarr_owner(request, zarr)
            if zarr.status != "Pending":
                raise _message(400, ZARR_INGEST_ERROR)
            zarr.status = "Uploaded"
            zarr.polls_left = self.ingest_polls
            return httpx.Response(204)

    # ============================================================================ storage origin
    @route("PUT", r"/(?P<key>.+)", origin="storage")
    def _s3_put(self, request: httpx.Request, key: str) -> httpx.Response:
        params = self._verify_presigned(request)
        data = request.content
        md5 = hashlib.md5(data)
        if "uploadId" in params:
            expected = int(params["x-fake-content-length"])
            if len(data) != expected:
                return _s3_error(
                    403,
                    "SignatureDoesNotMatch",
                    f"The request signature we calculated does not match the signature you provided "
                    f"(signed Content-Length {expected}, got {len(data)}).",
                )
            with self.lock:
                multipart = self._multiparts.get(params["uploadId"])
                if multipart is None or multipart.key != key:
                    return _s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
                multipart.parts[int(params["partNumber"])] = (md5.hexdigest(), data)
            return httpx.Response(200, headers={"ETag": f'"{md5.hexdigest()}"'})
        if "x-fake-content-md5" in params:
            sent = request.headers.get("Content-MD5")
            if sent != params["x-fake-content-md5"]:
                return _s3_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided "
                    "(Content-MD5 is signed).",
                )
            if base64.b64encode(md5.digest()).decode() != sent:
                return _s3_error(
                    400,
                    "BadDigest",
                    "The Content-MD5 you specified did not match what we received.",
                )
        with self.lock:
            self.objects[key] = _Object(data, md5.hexdigest())
        return httpx.Response(200, headers={"ETag": f'"{md5.hexdigest()}"'})

    @route("POST", r"/(?P<key>.+)", origin="storage")
    def _s3_complete(self, request: httpx.Request, key: str) -> httpx.Response:
        params = self._verify_presigned(request)
        if "uploadId" not in params:
            return _s3_error(400, "InvalidRequest", "Missing uploadId.")
        try:
            root = ElementTree.fromstring(request.content)
        except ElementTree.ParseError:
            return _s3_error(400, "MalformedXML", "The XML you provided was not well-formed.")
        listed = [
            (
                int(node.findtext(f"{{{S3_NS}}}PartNumber") or node.findtext("PartNumber") or 0),
                (node.findtext(f"{{{S3_NS}}}ETag") or node.findtext("ETag") or "").strip('"'),
            )
            for node in list(root)
        ]
        with self.lock:
            multipart = self._multiparts.get(params["uploadId"])
            if multipart is None or multipart.key != key:
                return _s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
            if not listed:
                return _s3_error(400, "MalformedXML", "The XML you provided was not well-formed.")
            numbers = [n for n, _ in listed]
            if numbers != sorted(set(numbers)):
                return _s3_error(
                    400, "InvalidPartOrder", "The list of parts was not in ascending order."
                )
            chunks: list[bytes] = []
            md5s: list[bytes] = []
            smallest = min(self.min_part_size, self.part_size)
            for index, (number, etag) in enumerate(listed):
                stored = multipart.parts.get(number)
                if stored is None or stored[0] != etag:
                    return _s3_error(
                        400,
                        "InvalidPart",
                        "One or more of the specified parts could not be found. The part may not "
                        "have been uploaded, or the specified entity tag may not match the part's "
                        "entity tag.",
                    )
                if index < len(listed) - 1 and len(stored[1]) < smallest:
                    return _s3_error(
                        400,
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed size.",
                    )
                chunks.append(stored[1])
                md5s.append(bytes.fromhex(stored[0]))
            del self._multiparts[params["uploadId"]]
        etag = multipart_etag(md5s)
        with self.lock:
            self.objects[key] = _Object(chunks, etag)
        result = ElementTree.Element("CompleteMultipartUploadResult", xmlns=S3_NS)
        for tag, text in (
            ("Location", self.url(key, "storage")),
            ("Bucket", "dandiarchive"),
            ("Key", key),
            ("ETag", f'"{etag}"'),
        ):
            ElementTree.SubElement(result, tag).text = text
        return httpx.Response(
            200, content=_xml(result), headers={"Content-Type": "application/xml"}
        )

    @route("GET", r"/(?P<key>.+)", origin="storage")
    @route("HEAD", r"/(?P<key>.+)", origin="storage")
    def _s3_get(self, request: httpx.Request, key: str) -> httpx.Response:
        params = self._verify_presigned(request)
        with self.lock:
            stored = self.objects.get(key)
        if stored is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        size = stored.size
        headers = {
            "ETag": f'"{stored.etag}"',
            "Last-Modified": stored.modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "Accept-Ranges": "bytes",
            "Content-Type": params.get("response-content-type", "binary/octet-stream"),
        }
        if "response-content-disposition" in params:
            headers["Content-Disposition"] = params["response-content-disposition"]
        if_match = request.headers.get("If-Match")
        if if_match is not None and if_match.strip('"') not in (stored.etag, "*"):
            return _s3_error(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            )
        if_none = request.headers.get("If-None-Match")
        if if_none is not None and if_none.strip('"') in (stored.etag, "*"):
            return httpx.Response(304, headers=headers)
        start, end = 0, size - 1
        status = 200
        ranged = self._parse_range(request.headers.get("Range"), size)
        if ranged == "invalid":
            return httpx.Response(
                416,
                content=_xml(self._range_error(size)),
                headers={"Content-Type": "application/xml", "Content-Range": f"bytes */{size}"},
            )
        if isinstance(ranged, tuple):
            start, end = ranged
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        if request.method == "HEAD":
            return httpx.Response(status, headers=headers)
        body = stored.data if (start, length) == (0, size) else stored.data[start : end + 1]
        return httpx.Response(status, content=body, headers=headers)

    @staticmethod
    def _range_error(size: int) -> ElementTree.Element:
        root = ElementTree.Element("Error")
        for tag, text in (
            ("Code", "InvalidRange"),
            ("Message", "The requested range is not satisfiable"),
            ("RangeRequested", ""),
            ("ActualObjectSize", str(size)),
        ):
            ElementTree.SubElement(root, tag).text = text
        return root

    @staticmethod
    def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
        """S3 semantics: one range only (several, or a malformed header, mean the whole object)."""
        if not header:
            return None
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
        if m is None:
            return None
        first, last = m.groups()
        if first == "" and last == "":
            return None
        if first == "":
            count = int(last)
            if count == 0:
                return "invalid"
            return max(0, size - count), size - 1
        start = int(first)
        if start >= size:
            return "invalid"
        end = min(int(last), size - 1) if last else size - 1
        if end < start:
            return None
        return start, end

    # ============================================================================ iteration helpers
    def iter_assets(self, dandiset_id: str, version_id: str = "draft") -> Iterator[dict[str, Any]]:
        """The assets of a version as the API renders them (with metadata)."""
        with self.lock:
            version = self._dandiset(dandiset_id).versions[version_id]
            records = [self._asset_record(a) for a in version.assets.values()]
        yield from records

    def version_status(self, dandiset_id: str, version_id: str = "draft") -> str:
        """A version's status without counting as a poll."""
        with self.lock:
            return self._dandiset(dandiset_id).versions[version_id].status

    def zarr_status(self, zarr_id: str) -> str:
        """A zarr's status without counting as a poll."""
        with self.lock:
            return self._zarrs[zarr_id].status
