"""The Gen3 data commons client: :class:`Gen3Client` and :class:`AsyncGen3Client` from one code base.

One commons, four services on one origin, one httpx client (one auth, retry and concurrency stack):
Fence under ``/user``, indexd under ``/index``, sheepdog and peregrine under ``/api``. The generated clients of
Fence and indexd describe paths relative to their own base (``/data/upload``); :func:`_under` re-roots their
endpoint modules at the commons so every call goes through the same client.
"""

from __future__ import annotations

import base64
import os
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

import httpx

from .._core import effects as fx
from .._core.drivers import Runtime
from .._core.facade import AsyncFacade, SyncFacade, operation
from .._core.secrets import Secret, redact_url
from ..auth import HeaderAuth, RefreshingTokenAuth, check_credential_url
from ..config import ClientConfig
from ..errors import (
    AuthenticationError,
    BadRequestError,
    ChecksumMismatchError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ResponseFormatError,
    ScibindError,
    ServerError,
)
from ._auth import DEFAULT_SCOPES, Gen3Credentials, _same_endpoint, gen3_credentials
from ._common import (
    _fence,
    _indexd,
    _json,
    _options,
    _parsed,
    _split_project,
)
from ._errors import gen3_error_message
from ._index_ops import _IndexOps
from ._sheepdog_ops import _SheepdogAdminOps

if TYPE_CHECKING:
    from scibind_generated.gen3_fence.models import UserInfo
    from scibind_generated.gen3_indexd.models import Record

    from .._core.token_cache import TokenCache
    from ..pagination import Page, Paginator
    from ..transfers.checksums import MultipartETag, Part
    from ..transfers.download import Existing
    from ..transfers.journal import Journal
    from ..transfers.progress import EventStream, ProgressCallback, ProgressTracker
    from ._models import EntityOutcome, Export, ExportFormat, Project, SubmissionResult
    from ._submission import Item, Records

# Transfer, paging and submission helpers are imported where they are used, to keep `import scibind.gen3` cheap.

__all__ = ["AsyncGen3Client", "Gen3Client"]

SubmitMode = Literal["upsert", "create"]
CHUNK_SIZE = 30
"""Records per submission request (the Gen3 SDK's ``submit_file`` default)."""
DEFAULT_PART_SIZE = 64 * 1024 * 1024
"""Multipart part size (as :data:`scibind.transfers.checksums.DEFAULT_PART_SIZE`)."""
MULTIPART_THRESHOLD = 100 * 1024 * 1024
"""Files at least this large are uploaded in parallel parts (Fence's multipart flow)."""
GRAPHQL_PATH = "/api/v0/submission/graphql"


def _md5_of(record: Record) -> str | None:
    from scibind_generated.gen3_indexd.types import Unset

    md5 = record.hashes.md5
    return None if isinstance(md5, Unset) or not md5 else md5


def _size_of(record: Record) -> int | None:
    return record.size if isinstance(record.size, int) else None


def _is_blank(record: Record) -> bool:
    """Whether a record is still blank as indexd sees it (no size and no hashes)."""
    return not _size_of(record) and not record.hashes.to_dict()


def _verified(
    record: Record, guid: str, name: str, md5: str, size: int, location: str | None
) -> Record:
    """``record`` if it describes the uploaded object (md5, size and, when known, its location)."""
    from ._errors import IndexRecordConflictError

    have, have_size = _md5_of(record), _size_of(record)
    if have is None or have.lower() != md5.lower():
        raise ChecksumMismatchError(f"{name}: index record md5", expected=md5, actual=have)
    if have_size is not None and have_size != size:
        raise ChecksumMismatchError(
            f"{name}: index record size", expected=str(size), actual=str(have_size)
        )
    urls = [str(u) for u in record.urls]
    if location and urls and location not in urls:
        raise IndexRecordConflictError(name, guid, "urls", location, ", ".join(urls))
    return record


def _storage_location(bucket: str | None, presigned: str | None, key: str) -> str | None:
    """The ``s3://bucket/key`` URL of an uploaded object: from ``bucket``, else read off an S3 presigned URL
    (path style ``/<bucket>/<key>`` or virtual-hosted ``<bucket>.s3...``); None when it cannot be told."""
    if bucket:
        return f"s3://{bucket}/{key}"
    if not presigned:
        return None
    url = httpx.URL(presigned)
    if not any(k.lower().startswith("x-amz-") for k in url.params):
        return None
    suffix = "/" + key
    if not url.path.endswith(suffix):
        return None
    prefix = url.path[: -len(suffix)].strip("/")
    if prefix and "/" not in prefix:
        return f"s3://{prefix}/{key}"
    if not prefix and ".s3" in url.host:
        return f"s3://{url.host.split('.s3')[0]}/{key}"
    return None


def _content_filename(headers: Mapping[str, str]) -> str | None:
    _, sep, rest = headers.get("Content-Disposition", "").partition("filename=")
    name = rest.split(";")[0].strip().strip('"') if sep else ""
    return name or None


class _AccessToken:
    """``client.access_token()``: the current access token as a :class:`Secret` (``.reveal()`` for the text),
    minted or refreshed first when needed, with the same locking as requests; awaited on the async client."""

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _AccessToken: ...
    @overload
    def __get__(self, obj: SyncFacade, owner: type | None = None) -> Callable[[], Secret]: ...
    @overload
    def __get__(
        self, obj: AsyncFacade, owner: type | None = None
    ) -> Callable[[], Coroutine[Any, Any, Secret]]: ...
    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        auth = obj.credentials.auth
        if isinstance(obj, AsyncFacade):
            http = obj.http

            async def access_token() -> Secret:
                """The current access token (refreshed first if it is about to expire)."""
                if isinstance(auth, RefreshingTokenAuth):
                    return await auth.async_token(lambda r: http.send(r, auth=None))
                return _static_token(auth)

            return access_token
        sync_http = obj.http

        def sync_access_token() -> Secret:
            """The current access token (refreshed first if it is about to expire)."""
            if isinstance(auth, RefreshingTokenAuth):
                return auth.sync_token(lambda r: sync_http.send(r, auth=None))
            return _static_token(auth)

        return sync_access_token


def _static_token(auth: Any) -> Secret:
    if isinstance(auth, HeaderAuth):
        return auth.credential
    raise ConfigurationError(f"these credentials hold no access token ({type(auth).__name__})")


class _Gen3Ops(_IndexOps, _SheepdogAdminOps):
    """All Gen3 calls, written once; see :class:`Gen3Client` and :class:`AsyncGen3Client`.

    indexd's calls are in :class:`~scibind.gen3._index_ops._IndexOps`, programs, projects and deletion in
    :class:`~scibind.gen3._sheepdog_ops._SheepdogAdminOps`.
    """

    service: ClassVar[str] = "gen3"
    generated_package: ClassVar[str | None] = "scibind_generated.gen3_sheepdog"
    runtime: ClassVar[Runtime] = Runtime(message=gen3_error_message)
    _driver: Any
    base_url: str

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        credentials: str | os.PathLike[str] | Mapping[str, Any] | Gen3Credentials | None = None,
        api_key: str | Secret | Mapping[str, Any] | None = None,
        refresh_token: str | Secret | Mapping[str, Any] | None = None,
        access_token: str | Secret | None = None,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        idp: str | None = None,
        token_cache: bool | TokenCache | None = None,
        config: ClientConfig | None = None,
        transport: Any = None,
    ) -> None:
        """Connect to a commons. ``endpoint`` defaults to the issuer of the credentials.

        Credentials (see :mod:`scibind.gen3._auth`): ``access_token``; ``client_id``/``client_secret`` (+
        ``scopes``, or an OAuth ``refresh_token``); an API key (``api_key``, or the SDK's ``refresh_token``);
        ``credentials``: a ``credentials.json`` path or name in ``~/.gen3``, ``accesstoken:///<token>``,
        ``idp://wts/<idp>``, or a :class:`Gen3Credentials` to share a token cache; ``idp``: the workspace
        token service of a Gen3 workspace; else ``GEN3_API_KEY``, else ``~/.gen3/credentials.json``.
        ``token_cache=True`` keeps access tokens on disk for other processes (default: ``SCIBIND_TOKEN_CACHE``).
        """
        config = config or ClientConfig()
        if isinstance(credentials, Gen3Credentials):
            creds = credentials
            if endpoint and not _same_endpoint(endpoint, creds.endpoint):
                raise ConfigurationError(
                    f"these credentials are for {creds.endpoint}, not {redact_url(endpoint)}"
                )
        else:
            creds = gen3_credentials(
                endpoint,
                credentials=credentials,
                api_key=api_key,
                refresh_token=refresh_token,
                access_token=access_token,
                client_id=client_id,
                client_secret=client_secret,
                scopes=scopes,
                idp=idp,
                token_cache=token_cache,
                allow_insecure_http=config.allow_insecure_http,
                transport=transport,
            )
        check_credential_url(creds.endpoint, allow_insecure_http=config.allow_insecure_http)
        self.credentials = creds
        self._connect(creds.endpoint, auth=creds.auth, config=config, transport=transport)  # type: ignore[attr-defined]

    @property
    def endpoint(self) -> str:
        """The commons URL."""
        return self.base_url

    access_token = _AccessToken()

    # -- user ------------------------------------------------------------------------------------------------
    @operation
    def user_info(self) -> fx.Op[UserInfo]:
        """The current user's profile and permissions (Fence ``/user/user``)."""
        from scibind_generated.gen3_fence.api.user import get_user_info
        from scibind_generated.gen3_fence.models import UserInfo

        resp = yield fx.Call(_fence(get_user_info))
        return _parsed(resp, UserInfo, "user info")  # type: ignore[no-any-return]

    # -- query (peregrine) -----------------------------------------------------------------------------------
    @operation
    def query(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
    ) -> fx.Op[dict[str, Any]]:
        """Run a GraphQL query on peregrine; returns its ``data``. Errors raise :class:`GraphQLError`."""
        return (yield from self._graphql(query, variables, operation_name))

    def _graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> fx.Op[dict[str, Any]]:
        from scibind_generated.gen3_peregrine.api.graphql import query_graphql
        from scibind_generated.gen3_peregrine.models import GraphQLRequest

        from ._errors import GraphQLError

        body = GraphQLRequest.from_dict(
            _options(
                query=query,
                variables=dict(variables) if variables else None,
                operationName=operation_name,
            )
        )
        # a query only reads: safe to repeat; peregrine answers query errors with 400 and a GraphQL body
        # (the answer is read from `content` below: GraphQL error objects do not fit the spec's list of strings)
        resp = yield fx.Call(
            query_graphql, {"body": body}, idempotent=True, ok=(400,), validate=False
        )
        doc = _json(resp.content, "the GraphQL answer")
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if errors or resp.status_code >= 400 or not isinstance(doc, dict):
            raise GraphQLError(
                errors if isinstance(errors, list) else [str(errors or "no data")],
                data=doc.get("data") if isinstance(doc, dict) else None,
                status=int(resp.status_code),
                method="POST",
                url=redact_url(self.base_url + GRAPHQL_PATH),
            )
        data = doc.get("data")
        if not isinstance(data, dict):
            raise ResponseFormatError("the GraphQL answer has no data object")
        return data

    @operation
    def programs(self) -> fx.Op[list[str]]:
        """Names of the programs you can see."""
        data = yield from self._graphql("{ program(first: 0) { name } }")
        return sorted(str(p["name"]) for p in data.get("program") or [] if p.get("name"))

    @operation
    def projects(self, program: str | None = None) -> fx.Op[list[Project]]:
        """The projects you can see (of one ``program``, if given), by ``project_id``."""
        from ._models import Project

        data = yield from self._graphql("{ project(first: 0) { project_id code name } }")
        out = []
        for p in data.get("project") or []:
            project_id, code = str(p.get("project_id") or ""), str(p.get("code") or "")
            owner = project_id[: -len(code) - 1] if code and project_id.endswith("-" + code) else ""
            if program is None or owner == program:
                out.append(Project(project_id, owner, code, p.get("name")))
        return sorted(out, key=lambda p: p.project_id)

    @operation
    def count(
        self,
        node: str,
        *,
        project_id: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> fx.Op[int]:
        """How many records of ``node`` match (peregrine's ``_<node>_count``)."""
        from ._graphql import count_query

        data = yield from self._graphql(count_query(node, project_id=project_id, filters=filters))
        value = data.get("count")
        if not isinstance(value, int):
            raise ResponseFormatError(f"_{node}_count is not a number")
        return value

    def records(
        self,
        node: str,
        *,
        project_id: str | None = None,
        fields: Sequence[str] = ("id", "submitter_id"),
        filters: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        page_size: int = 100,
        max_items: int | None = None,
    ) -> Paginator[dict[str, Any]]:
        """Every record of ``node`` (optionally of one project and matching ``filters``), page by page.

        The first page also asks for ``_<node>_count``, so the other pages (``first``/``offset``) are fetched
        concurrently. ``order_by`` names a field (``-field`` for descending); give one when the data may change
        while you read, so pages do not shift.
        """
        from ..pagination import Paginator, offset_page
        from ._graphql import node_query

        if page_size < 1:
            raise ConfigurationError("page_size must be at least 1")
        fields = list(fields)
        # build once so bad names fail here, before any request
        node_query(
            node,
            fields,
            first=page_size,
            offset=0,
            project_id=project_id,
            filters=filters,
            order_by=order_by,
        )

        def fetch(page: int) -> fx.Op[Page[dict[str, Any]]]:
            text = node_query(
                node,
                fields,
                first=page_size,
                offset=(page - 1) * page_size,
                project_id=project_id,
                filters=filters,
                order_by=order_by,
                with_count=page == 1,
            )
            data = yield from self._graphql(text)
            rows = data.get("rows") or []
            total = data.get("count") if page == 1 else None
            return offset_page(
                rows, total=total if isinstance(total, int) else None, limit=page_size, page=page
            )

        return Paginator(self._driver, fetch, max_items=max_items)

    @operation
    def graphql_schema(self) -> fx.Op[dict[str, Any]]:
        """Peregrine's GraphQL schema (the standard introspection result, ``{"__schema": ...}``)."""
        from scibind_generated.gen3_peregrine.api.graphql import get_graphql_schema

        resp = yield fx.Call(get_graphql_schema)
        doc = _json(resp.content, "the GraphQL schema")
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, dict):
            raise ResponseFormatError("the GraphQL schema answer has no data")
        return data

    # -- dictionary (sheepdog) -------------------------------------------------------------------------------
    @operation
    def dictionary(self) -> fx.Op[dict[str, Any]]:
        """The whole data dictionary (node type or shared document -> JSON Schema)."""
        from scibind_generated.gen3_sheepdog.api.dictionary import get_dictionary

        resp = yield fx.Call(get_dictionary)
        doc = _json(resp.content, "the dictionary")
        if not isinstance(doc, dict):
            raise ResponseFormatError("the dictionary is not an object")
        return doc

    @operation
    def dictionary_node(self, node: str) -> fx.Op[dict[str, Any]]:
        """The JSON Schema of one node type."""
        from scibind_generated.gen3_sheepdog.api.dictionary import get_dictionary_entry

        resp = yield fx.Call(get_dictionary_entry, {"entry": node})
        doc = _json(resp.content, "the dictionary entry")
        if not isinstance(doc, dict):
            raise ResponseFormatError("the dictionary entry is not an object")
        return doc

    # -- export (sheepdog) -----------------------------------------------------------------------------------
    def _export_request(
        self,
        project_id: str,
        *,
        node: str | None,
        ids: str | Sequence[str] | None,
        format: ExportFormat,
        with_children: bool,
        category: str | None,
        without_id: bool,
    ) -> dict[str, Any]:
        from scibind_generated.gen3_sheepdog.api.export import export_entities, export_node

        if format not in ("json", "tsv", "csv"):
            raise ConfigurationError(f"format must be json, tsv or csv, not {format!r}")
        program, project = _split_project(project_id)
        if ids is not None:
            joined = ids if isinstance(ids, str) else ",".join(ids)
            if not joined:
                raise ConfigurationError("no ids to export")
            return export_entities._get_kwargs(
                program,
                project,
                ids=joined,
                format_=format,
                **_options(
                    with_children=with_children or None,
                    category=category,
                    without_id=without_id or None,
                ),
            )
        assert node is not None
        return export_node._get_kwargs(
            program,
            project,
            node_label=node,
            format_=format,
            **_options(without_id=without_id or None),
        )

    def _export(self, request: dict[str, Any], format: ExportFormat) -> fx.Op[Export]:
        from ._models import Export

        resp = yield fx.Request("GET", request["url"], params=request.get("params"))
        return Export(resp.content, format, _content_filename(resp.headers))

    def _export_to(self, request: dict[str, Any], dest: str | os.PathLike[str]) -> fx.Op[Path]:
        from ._files import AtomicWriter

        writer = AtomicWriter(Path(dest))
        try:
            yield fx.Stream("GET", request["url"], writer.write, params=request.get("params"))
            return (yield fx.Blocking(writer.commit))  # type: ignore[no-any-return]
        except BaseException:
            writer.abort()
            raise

    @operation
    def export_node(
        self,
        project_id: str,
        node: str,
        *,
        format: ExportFormat = "json",
        without_id: bool = False,
    ) -> fx.Op[Export]:
        """Every record of ``node`` in a project, in memory (``.records()``, ``.json()``, ``.text``)."""
        request = self._export_request(
            project_id,
            node=node,
            ids=None,
            format=format,
            with_children=False,
            category=None,
            without_id=without_id,
        )
        return (yield from self._export(request, format))

    @operation
    def export_node_to(
        self,
        project_id: str,
        node: str,
        dest: str | os.PathLike[str],
        *,
        format: ExportFormat = "tsv",
        without_id: bool = False,
    ) -> fx.Op[Path]:
        """Every record of ``node`` streamed to the file ``dest`` (written atomically)."""
        request = self._export_request(
            project_id,
            node=node,
            ids=None,
            format=format,
            with_children=False,
            category=None,
            without_id=without_id,
        )
        return (yield from self._export_to(request, dest))

    @operation
    def export_records(
        self,
        project_id: str,
        ids: str | Sequence[str],
        *,
        format: ExportFormat = "json",
        with_children: bool = False,
        category: str | None = None,
        without_id: bool = False,
    ) -> fx.Op[Export]:
        """Records by id (one or several), in memory. TSV exports of several node types come as a tar.gz."""
        request = self._export_request(
            project_id,
            node=None,
            ids=ids,
            format=format,
            with_children=with_children,
            category=category,
            without_id=without_id,
        )
        return (yield from self._export(request, format))

    @operation
    def export_records_to(
        self,
        project_id: str,
        ids: str | Sequence[str],
        dest: str | os.PathLike[str],
        *,
        format: ExportFormat = "json",
        with_children: bool = False,
        category: str | None = None,
        without_id: bool = False,
    ) -> fx.Op[Path]:
        """Records by id streamed to the file ``dest`` (written atomically)."""
        request = self._export_request(
            project_id,
            node=None,
            ids=ids,
            format=format,
            with_children=with_children,
            category=category,
            without_id=without_id,
        )
        return (yield from self._export_to(request, dest))

    # -- submission (sheepdog) -------------------------------------------------------------------------------
    @operation
    def submit(
        self,
        project_id: str,
        records: Iterable[Mapping[str, Any]],
        *,
        chunk_size: int = CHUNK_SIZE,
        mode: SubmitMode = "upsert",
        dry_run: bool = False,
    ) -> fx.Op[SubmissionResult]:
        """Submit records (dicts with a ``type``) in batches of ``chunk_size``; see :class:`SubmissionResult`.

        ``mode="upsert"`` (PUT, the SDK's choice) creates or updates; ``"create"`` (POST) only creates.
        ``dry_run`` validates without writing.
        """
        from ._submission import records_from_objects

        plan = records_from_objects(records)
        return (yield from self._submit(project_id, plan, chunk_size, mode, dry_run))

    @operation
    def submit_file(
        self,
        project_id: str,
        path: str | os.PathLike[str],
        *,
        chunk_size: int = CHUNK_SIZE,
        row_offset: int = 0,
        mode: SubmitMode = "upsert",
        dry_run: bool = False,
    ) -> fx.Op[SubmissionResult]:
        """Submit the records of a JSON, TSV (.tsv/.txt), CSV or Excel (.xlsx, first worksheet; needs
        ``scibind[xlsx]``) file, skipping ``row_offset`` data rows."""
        from ._submission import read_records

        plan = yield fx.Blocking(lambda: read_records(path, row_offset=row_offset))
        return (yield from self._submit(project_id, plan, chunk_size, mode, dry_run))

    def _submit(
        self, project_id: str, records: Records, chunk_size: int, mode: str, dry_run: bool
    ) -> fx.Op[SubmissionResult]:
        from ._models import EntityOutcome, SubmissionResult
        from ._submission import judge

        if chunk_size < 1:
            raise ConfigurationError("chunk_size must be at least 1")
        if mode not in ("upsert", "create"):
            raise ConfigurationError(f"mode must be 'upsert' or 'create', not {mode!r}")
        program, project = _split_project(project_id)
        items = list(records.items)
        queue = deque(items[i : i + chunk_size] for i in range(0, len(items), chunk_size))
        succeeded: list[EntityOutcome] = []
        failed: list[EntityOutcome] = []
        requests = 0
        error: ScibindError | None = None
        while queue:
            batch = queue.popleft()
            requests += 1
            try:
                status, body = yield from self._send_batch(
                    program, project, records, batch, mode, dry_run
                )
            except ScibindError as exc:  # the request as a whole failed: report the rest, stop
                error = exc
                for item in [*batch, *(i for b in queue for i in b)]:
                    failed.append(
                        EntityOutcome(
                            item.index, item.submitter_id, item.type, messages=(str(exc),)
                        )
                    )
                queue.clear()
                break
            if status == 413:
                if len(batch) > 1:
                    half = len(batch) // 2
                    queue.extendleft([batch[half:], batch[:half]])
                else:
                    failed.append(
                        EntityOutcome(
                            batch[0].index,
                            batch[0].submitter_id,
                            batch[0].type,
                            messages=("record too large",),
                        )
                    )
                continue
            verdict = judge(batch, status, body)
            succeeded.extend(verdict.succeeded)
            failed.extend(verdict.failed)
            queue.extendleft(reversed(verdict.again))
        return SubmissionResult(
            tuple(sorted(succeeded, key=lambda o: o.index)),
            tuple(sorted(failed, key=lambda o: o.index)),
            requests,
            dry_run,
            error,
        )

    def _send_batch(
        self,
        program: str,
        project: str,
        records: Records,
        batch: Sequence[Item],
        mode: str,
        dry_run: bool,
    ) -> fx.Op[tuple[int, dict[str, Any]]]:
        from scibind_generated.gen3_sheepdog.api.entity import (
            create_entities,
            create_entities_dry_run,
            upsert_entities,
            upsert_entities_dry_run,
        )

        from .._core.responses import error_for_status
        from ._submission import is_submission_body

        endpoint = {
            ("create", False): create_entities,
            ("create", True): create_entities_dry_run,
            ("upsert", False): upsert_entities,
            ("upsert", True): upsert_entities_dry_run,
        }[(mode, dry_run)]
        request = endpoint._get_kwargs(program, project, body=[])
        kind, payload = records.body(batch)
        # Retry stance: PUT upserts, so a repeat writes the same values again (safe to retry); POST creates,
        # and a blind repeat of a batch that was written would fail as duplicates: never retried after sending.
        # Dry runs write nothing: safe either way.
        idempotent = mode == "upsert" or dry_run
        resp = yield fx.Request(
            request["method"].upper(),
            request["url"],
            json=payload if kind == "json" else None,
            content=payload.encode() if kind == "tsv" else None,
            headers={"Content-Type": "text/tab-separated-values"} if kind == "tsv" else None,
            idempotent=idempotent,
            ok=(400, 413),
        )
        if resp.status_code == 413:
            return 413, {}
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not is_submission_body(body):
            if resp.status_code >= 400:
                raise error_for_status(resp, gen3_error_message)
            raise ResponseFormatError(
                "sheepdog's answer is not a transaction report",
                status=resp.status_code,
                method=resp.request.method,
                url=redact_url(resp.request.url),
            )
        return resp.status_code, body

    # -- files (fence + storage) -----------------------------------------------------------------------------
    @operation
    def presigned_url(
        self, guid: str, *, protocol: str | None = None, expires_in: int | None = None
    ) -> fx.Op[str]:
        """A presigned URL to download a file (send no credentials with it)."""
        return (yield from self._presigned(guid, protocol, expires_in))

    def _presigned(self, guid: str, protocol: str | None, expires_in: int | None) -> fx.Op[str]:
        from scibind_generated.gen3_fence.api.data import get_download_url
        from scibind_generated.gen3_fence.models import SignedUrl

        resp = yield fx.Call(
            _fence(get_download_url),
            {"guid": guid, **_options(protocol=protocol, expires_in=expires_in)},
        )
        return str(_parsed(resp, SignedUrl, "signed URL").url)

    @operation
    def download(
        self,
        guid: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        protocol: str | None = None,
        progress: ProgressCallback | None = None,
        existing: Existing = "verify",
        parallel: int = 4,
        part_size: int = DEFAULT_PART_SIZE,
        min_parallel_size: int = 2 * DEFAULT_PART_SIZE,
    ) -> fx.Op[Path]:
        """Download a file by GUID; returns its path.

        ``dest`` is a file path or a directory (default: the current directory, named as the record's
        ``file_name``). The bytes come from a presigned URL (never sent a token), are checked against
        indexd's size and md5, and land atomically; an interrupted download resumes; large files are
        fetched in parallel ranges.
        """
        from ..transfers.download import Expected, download_op
        from ._files import download_target

        record = yield from self._record(guid)
        md5 = _md5_of(record)
        expected = Expected(size=_size_of(record), digests={"md5": md5} if md5 else {})
        file_name = record.file_name if isinstance(record.file_name, str) else None
        target = download_target(dest, file_name, guid)
        return (
            yield from download_op(
                lambda: self._presigned(guid, protocol, None),
                target,
                expected,
                name=file_name or guid,
                progress=progress,
                existing=existing,
                parallel=parallel,
                part_size=part_size,
                min_parallel_size=min_parallel_size,
            )
        )

    def download_events(
        self, guid: str, dest: str | os.PathLike[str] | None = None, **options: Any
    ) -> EventStream[Path]:
        """:meth:`download` as a stream of progress events (``for``/``async for``); then ``.result``."""
        from ..transfers.progress import EventStream

        facade: Any = self
        return EventStream(
            lambda cb: facade.download(guid, dest, progress=cb, **options),
            is_async=isinstance(self, AsyncFacade),
        )

    @operation
    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        file_name: str | None = None,
        authz: Sequence[str] | None = None,
        bucket: str | None = None,
        expires_in: int | None = None,
        multipart: bool | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        parallel: int = 4,
        progress: ProgressCallback | None = None,
        index_wait: float = 60.0,
        guid: str | None = None,
        protocol: str | None = None,
    ) -> fx.Op[Record]:
        """Upload a new file; returns its index record with md5, size (and URL) filled in.

        Small files go in one PUT (``/user/data/upload``), large ones (``multipart``, default: at least
        ``multipart_threshold`` bytes) in parallel parts (``/user/data/multipart/*``) whose ETags are checked,
        resumable after an interruption. The index record is then checked against the local md5 and size; a
        record still blank (no indexing job ran yet) is filled with them (``PUT /index/blank/<guid>?rev=``).
        A user who may not fill index records waits up to ``index_wait`` seconds for Gen3's indexing job,
        then gets :class:`~scibind.gen3.IndexPendingError` (the bytes are stored: do not upload again).

        ``guid`` uploads the bytes of an existing blank record (e.g. a new blank version) instead of creating
        one. ``protocol`` picks the storage of a single-PUT upload where Fence offers several (``s3``,
        ``az``); multipart uploads are S3 only.
        """
        from scibind_generated.gen3_fence.models.storage_protocol import STORAGE_PROTOCOL_VALUES

        from ..transfers.progress import ProgressTracker

        p = Path(path)
        if not p.is_file():
            raise ConfigurationError(f"not a file: {p}")
        if protocol is not None and protocol not in STORAGE_PROTOCOL_VALUES:
            raise ConfigurationError(f"unknown storage protocol {protocol!r}")
        size = p.stat().st_size
        name = file_name or p.name
        tracker = ProgressTracker(name, size, progress, "hashing")
        use_multipart = multipart if multipart is not None else size >= multipart_threshold
        if use_multipart and protocol not in (None, "s3"):
            if multipart:
                raise ConfigurationError(f"multipart uploads are S3 only, not {protocol!r}")
            use_multipart = False  # Fence's single PUT takes up to 5 GB
        if use_multipart and size > 0:
            return (
                yield from self._upload_multipart(
                    p,
                    name,
                    size,
                    tracker,
                    authz,
                    bucket,
                    expires_in,
                    part_size,
                    parallel,
                    index_wait,
                    guid=guid,
                )
            )
        return (
            yield from self._upload_single(
                p,
                name,
                size,
                tracker,
                authz,
                bucket,
                expires_in,
                index_wait,
                guid=guid,
                protocol=protocol,
            )
        )

    def upload_events(self, path: str | os.PathLike[str], **options: Any) -> EventStream[Record]:
        """:meth:`upload` as a stream of progress events (``for``/``async for``); then ``.result``."""
        from ..transfers.progress import EventStream

        facade: Any = self
        return EventStream(
            lambda cb: facade.upload(path, progress=cb, **options),
            is_async=isinstance(self, AsyncFacade),
        )

    def _upload_single(
        self,
        path: Path,
        name: str,
        size: int,
        tracker: ProgressTracker,
        authz: Sequence[str] | None,
        bucket: str | None,
        expires_in: int | None,
        index_wait: float,
        *,
        guid: str | None = None,
        protocol: str | None = None,
    ) -> fx.Op[Record]:
        from scibind_generated.gen3_fence.api.data import create_upload
        from scibind_generated.gen3_fence.models import UploadRequest, UploadResponse

        from ..transfers.checksums import file_digest
        from ..transfers.streams import FileSliceStream

        tracker.emit("hashing")
        md5: str = yield fx.Blocking(file_digest, (path, "md5"))
        body = UploadRequest.from_dict(
            _options(
                file_name=name,
                authz=list(authz) if authz else None,
                bucket=bucket,
                expires_in=expires_in,
                guid=guid,
                protocol=protocol,
            )
        )
        # creates a blank index record: not repeated blindly
        resp = yield fx.Call(_fence(create_upload), {"body": body})
        created = _parsed(resp, UploadResponse, "upload URL")
        tracker.emit("uploading")
        sent = 0

        def restart() -> None:
            nonlocal sent
            tracker.add(-sent)
            sent = 0

        def chunk(data: bytes) -> None:
            nonlocal sent
            sent += len(data)
            tracker.add(len(data))

        content = FileSliceStream(path, on_chunk=chunk, on_start=restart)
        put = yield fx.Request(
            "PUT",
            str(created.url),
            content=content,
            headers={"Content-MD5": base64.b64encode(bytes.fromhex(md5)).decode()},
            auth=False,
            idempotent=True,  # the same bytes to the same key
        )
        returned = put.headers.get("ETag", "").strip().strip('"')
        if returned and returned.lower() != md5:
            raise ChecksumMismatchError(f"{name}: storage ETag", expected=md5, actual=returned)
        tracker.emit("verifying")
        did = str(created.guid)
        location = _storage_location(bucket, str(created.url), f"{did}/{name}")
        record = yield from self._finalize(did, md5, size, location, name, index_wait)
        tracker.emit("done")
        return record

    def _part_url(
        self, key: str, upload_id: str, number: int, bucket: str | None, expires_in: int | None
    ) -> fx.Op[str]:
        from scibind_generated.gen3_fence.api.data import get_multipart_part_url
        from scibind_generated.gen3_fence.models import MultipartPartRequest, MultipartPartResponse

        body = MultipartPartRequest.from_dict(
            _options(
                key=key, uploadId=upload_id, partNumber=number, bucket=bucket, expires_in=expires_in
            )
        )
        # signing a URL changes nothing: safe to repeat
        resp = yield fx.Call(_fence(get_multipart_part_url), {"body": body}, idempotent=True)
        return str(_parsed(resp, MultipartPartResponse, "part URL").presigned_url)

    def _upload_multipart(
        self,
        path: Path,
        name: str,
        size: int,
        tracker: ProgressTracker,
        authz: Sequence[str] | None,
        bucket: str | None,
        expires_in: int | None,
        part_size: int,
        parallel: int,
        index_wait: float,
        *,
        guid: str | None = None,
    ) -> fx.Op[Record]:
        from ..transfers.checksums import file_digest, multipart_plan
        from ..transfers.journal import upload_journal
        from ..transfers.upload import hash_parts_op

        plan = multipart_plan(size, part_size)
        tracker.emit("hashing")
        etag = yield from hash_parts_op(path, plan)
        md5: str = yield fx.Blocking(file_digest, (path, "md5"))
        stat = path.stat()
        journal = upload_journal(
            "gen3",
            self.base_url,
            path.resolve(),
            size,
            stat.st_mtime_ns,
            etag.value,
            name,
            bucket or "",
            ",".join(authz or ()),
            guid or "",
        )
        resumed = bool(journal.data.get("upload_id"))
        try:
            return (
                yield from self._multipart_send(
                    path,
                    name,
                    plan,
                    etag,
                    md5,
                    size,
                    journal,
                    tracker,
                    authz,
                    bucket,
                    expires_in,
                    parallel,
                    index_wait,
                    guid=guid,
                )
            )
        except (NotFoundError, ServerError) as exc:
            gone = isinstance(exc, NotFoundError) or "NoSuchUpload" in str(exc)
            if not (resumed and gone):
                raise
        # the journaled upload no longer exists on the storage (aborted or expired): start over, once
        journal.delete()
        tracker.add(-tracker.done)
        return (
            yield from self._multipart_send(
                path,
                name,
                plan,
                etag,
                md5,
                size,
                journal,
                tracker,
                authz,
                bucket,
                expires_in,
                parallel,
                index_wait,
                guid=guid,
            )
        )

    def _multipart_send(
        self,
        path: Path,
        name: str,
        plan: Sequence[Part],
        etag: MultipartETag,
        md5: str,
        size: int,
        journal: Journal,
        tracker: ProgressTracker,
        authz: Sequence[str] | None,
        bucket: str | None,
        expires_in: int | None,
        parallel: int,
        index_wait: float,
        *,
        guid: str | None = None,
    ) -> fx.Op[Record]:
        from scibind_generated.gen3_fence.api.data import (
            complete_multipart_upload,
            init_multipart_upload,
        )
        from scibind_generated.gen3_fence.models import (
            MultipartCompleteRequest,
            MultipartInitRequest,
            MultipartInitResponse,
        )

        from ..transfers.upload import PartTarget, upload_parts_op

        state = journal.data
        if state.get("guid") and state.get("upload_id") and state.get("key"):
            guid, upload_id, key = str(state["guid"]), str(state["upload_id"]), str(state["key"])
        else:
            body = MultipartInitRequest.from_dict(
                _options(
                    file_name=name,
                    authz=list(authz) if authz else None,
                    bucket=bucket,
                    expires_in=expires_in,
                    guid=guid,
                )
            )
            resp = yield fx.Call(_fence(init_multipart_upload), {"body": body})
            init = _parsed(resp, MultipartInitResponse, "multipart upload")
            guid, upload_id, key = str(init.guid), str(init.upload_id), f"{init.guid}/{name}"
            journal.update(guid=guid, upload_id=upload_id, key=key, parts={})
        done = {int(n) for n in (journal.data.get("parts") or {})}
        tracker.emit("uploading")
        tracker.add(sum(p.size for p in plan if p.number in done))
        # sign URLs a few windows at a time, so none waits long enough to expire before it is used
        window = max(1, parallel) * 4
        todo = [p for p in plan if p.number not in done]
        for start in range(0, len(todo), window):
            group = todo[start : start + window]
            urls = yield fx.Parallel(
                [self._part_url(key, upload_id, p.number, bucket, expires_in) for p in group],
                limit=parallel,
            )
            if not journal.data.get("location"):
                journal.update(location=_storage_location(bucket, urls[0], key))
            targets = [
                PartTarget(p.number, p.offset, p.size, url)
                for p, url in zip(group, urls, strict=True)
            ]
            yield from upload_parts_op(
                path, targets, etag=etag, journal=journal, tracker=tracker, parallel=parallel
            )
        etags = {int(n): str(v) for n, v in (journal.data.get("parts") or {}).items()}
        complete = MultipartCompleteRequest.from_dict(
            _options(
                key=key,
                uploadId=upload_id,
                bucket=bucket,
                parts=[{"PartNumber": p.number, "ETag": etags[p.number]} for p in plan],
            )
        )
        tracker.emit("verifying")
        yield fx.Call(_fence(complete_multipart_upload), {"body": complete})
        location = journal.data.get("location") or _storage_location(bucket, None, key)
        journal.delete()
        record = yield from self._finalize(guid, md5, size, location, name, index_wait)
        tracker.emit("done")
        return record

    def _finalize(
        self,
        guid: str,
        md5: str,
        size: int,
        location: str | None,
        name: str,
        index_wait: float,
    ) -> fx.Op[Record]:
        """Check the index record against what was sent; fill it when it is still blank.

        Gen3's indexing job normally fills a new record once the object lands. When it has not (yet), the
        record is filled here with md5, size and the object's location, so the file is usable at once.
        indexd refuses to fill a record that is no longer blank (400, before it looks at ``rev``): that is
        the job having been first, or a repeat of this PUT whose answer was lost; the record is then read
        and accepted if it describes the upload. A stale ``rev`` on a record still blank (409) is read
        again and retried. Without the right to fill it (401/403: indexd ``update`` or ``file_upload``),
        the client waits up to ``index_wait`` seconds for the job (:class:`IndexPendingError` after that).
        """
        from scibind_generated.gen3_indexd.api.index import update_blank_record
        from scibind_generated.gen3_indexd.models import BlankRecordUpdate

        body = BlankRecordUpdate.from_dict(
            {"size": size, "hashes": {"md5": md5}, **({"urls": [location]} if location else {})}
        )
        record = yield from self._record(guid)
        for _attempt in range(3):
            if not _is_blank(record):
                break
            try:
                yield fx.Call(
                    _indexd(update_blank_record), {"guid": guid, "rev": record.rev, "body": body}
                )
            except ConflictError:  # the record changed but may still be blank: read, try again
                record = yield from self._record(guid)
                continue
            except BadRequestError:  # "not supported for non-empty record": filled meanwhile?
                record = yield from self._record(guid)
                if _is_blank(record):
                    raise
                break
            except (PermissionDeniedError, AuthenticationError) as exc:
                record = yield from self._await_indexing(guid, name, index_wait, exc)
                break
            record = yield from self._record(guid)
            break
        if _is_blank(record):
            raise ConflictError(
                f"{name}: the index record {guid} kept changing while it was being filled",
                status=409,
                method="PUT",
                url=redact_url(f"{self.base_url}/index/index/blank/{guid}"),
            )
        return _verified(record, guid, name, md5, size, location)

    def _await_indexing(
        self, guid: str, name: str, wait: float, refusal: ScibindError
    ) -> fx.Op[Record]:
        """Read the record until the indexing job has filled it, for up to ``wait`` seconds."""
        from ._errors import IndexPendingError

        deadline = time.monotonic() + max(0.0, wait)
        delay = 0.5
        while True:
            record = yield from self._record(guid)
            if not _is_blank(record):
                return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise IndexPendingError(name, guid, refusal)
            yield fx.Sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)

    @operation
    def upload_url(
        self,
        guid: str,
        *,
        file_name: str | None = None,
        protocol: str | None = None,
        bucket: str | None = None,
        expires_in: int | None = None,
    ) -> fx.Op[str]:
        """A presigned URL to PUT the bytes of an existing record (the SDK's ``upload_file_to_guid``); send no
        credentials with it. The object key is ``<guid>/<file_name>`` (default: the GUID). Prefer
        :meth:`upload` with ``guid=``, which also verifies and indexes the result."""
        from scibind_generated.gen3_fence.api.data import get_upload_url
        from scibind_generated.gen3_fence.models import SignedUrl
        from scibind_generated.gen3_fence.models.storage_protocol import STORAGE_PROTOCOL_VALUES

        if protocol is not None and protocol not in STORAGE_PROTOCOL_VALUES:
            raise ConfigurationError(f"unknown storage protocol {protocol!r}")
        options = _options(
            file_name=file_name,
            protocol=protocol,
            bucket=bucket,
            expires_in=expires_in,
        )
        # signing a URL changes nothing: safe to repeat
        resp = yield fx.Call(_fence(get_upload_url), {"guid": guid, **options})
        return str(_parsed(resp, SignedUrl, "upload URL").url)

    @operation
    def delete_file(self, guid: str) -> fx.Op[None]:
        """Delete an uploaded file and its index record (uploader only, before it is linked to metadata)."""
        from scibind_generated.gen3_fence.api.data import delete_data_file

        yield fx.Call(_fence(delete_data_file), {"guid": guid})


class Gen3Client(_Gen3Ops, SyncFacade):
    """A blocking client for a Gen3 data commons (Fence, indexd, sheepdog, peregrine)."""


class AsyncGen3Client(_Gen3Ops, AsyncFacade):
    """The asyncio twin of :class:`Gen3Client`: every call is awaited, listings use ``async for``."""
