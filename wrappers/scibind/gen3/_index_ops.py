"""indexd through the Gen3 facade: records by GUID and by query, and their creation, change, versions and
deletion (what the SDK's ``Gen3Index`` offers). Written once; see :class:`scibind.gen3.Gen3Client`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._core import effects as fx
from .._core.facade import operation
from ..errors import ConfigurationError, ResponseFormatError
from ._common import _indexd, _list_filter, _options, _parsed

if TYPE_CHECKING:
    from scibind_generated.gen3_indexd.models import IndexStats, Record

    from ..pagination import Page, Paginator
    from ._models import IndexUrlMatch

__all__ = ["_IndexOps"]

BULK_SIZE = 1000
"""GUIDs per ``POST /bulk/documents``."""


def _record_body(
    *,
    hashes: Mapping[str, str] | None = None,
    size: int | None = None,
    urls: Sequence[str] | None = None,
    file_name: str | None = None,
    version: str | None = None,
    authz: Sequence[str] | None = None,
    acl: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    urls_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    description: str | None = None,
    content_created_date: str | None = None,
    content_updated_date: str | None = None,
) -> dict[str, Any]:
    return _options(
        hashes=dict(hashes) if hashes is not None else None,
        size=size,
        urls=list(urls) if urls is not None else None,
        file_name=file_name,
        version=version,
        authz=list(authz) if authz is not None else None,
        acl=list(acl) if acl is not None else None,
        metadata=dict(metadata) if metadata is not None else None,
        urls_metadata={k: dict(v) for k, v in urls_metadata.items()}
        if urls_metadata is not None
        else None,
        description=description,
        content_created_date=content_created_date,
        content_updated_date=content_updated_date,
    )


def _check_new(hashes: Mapping[str, str], size: int) -> None:
    if not hashes:
        raise ConfigurationError("an index record needs at least one hash")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ConfigurationError(f"size must be a non-negative int, not {size!r}")


class _IndexOps:
    """indexd operations of the Gen3 facade."""

    _driver: Any

    # -- reads -------------------------------------------------------------------------------------------------
    @operation
    def index_record(self, guid: str) -> fx.Op[Record]:
        """The index record of a GUID (hashes, size, URLs, access control)."""
        return (yield from self._record(guid))

    def _record(self, guid: str) -> fx.Op[Record]:
        from scibind_generated.gen3_indexd.api.index import get_record
        from scibind_generated.gen3_indexd.models import Record

        resp = yield fx.Call(_indexd(get_record), {"guid": guid})
        return _parsed(resp, Record, "index record")  # type: ignore[no-any-return]

    def index_records(
        self,
        *,
        hashes: Mapping[str, str] | None = None,
        size: int | None = None,
        urls: Sequence[str] | None = None,
        authz: Sequence[str] | None = None,
        acl: Sequence[str] | None = None,
        uploader: str | None = None,
        file_name: str | None = None,
        version: str | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int = 100,
        max_items: int | None = None,
    ) -> Paginator[Record]:
        """Every index record (filters combine with AND), in GUID order, walked with indexd's ``start`` cursor."""
        from scibind_generated.gen3_indexd.api.index import list_records

        from ..pagination import Page, Paginator

        if not 1 <= page_size <= 1024:
            raise ConfigurationError("page_size must be between 1 and 1024")
        filters = _options(
            hash_=[f"{k}:{v}" for k, v in hashes.items()] if hashes else None,
            size=size,
            url_query=list(urls) if urls else None,
            authz=_list_filter(authz),
            acl=_list_filter(acl),
            uploader=uploader,
            file_name=file_name,
            version=version,
            metadata=[f"{k}:{v}" for k, v in metadata.items()] if metadata else None,
        )

        def fetch(start: str | None) -> fx.Op[Page[Record]]:
            from scibind_generated.gen3_indexd.models import RecordList

            resp = yield fx.Call(
                _indexd(list_records), {**filters, "limit": page_size, **_options(start=start)}
            )
            records = list(_parsed(resp, RecordList, "index listing").records)
            last = records[-1].did if len(records) >= page_size else None
            return Page(records, next=last)

        return Paginator(self._driver, fetch, first=None, numbered=False, max_items=max_items)

    @operation
    def find_index_record(
        self,
        *,
        hashes: Mapping[str, str] | None = None,
        size: int | None = None,
        urls: Sequence[str] | None = None,
        file_name: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> fx.Op[Record | None]:
        """The first record (in GUID order) matching all the given fields, or None (the SDK's
        ``get_with_params``): e.g. ``find_index_record(hashes={"md5": ...}, size=...)``."""
        from scibind_generated.gen3_indexd.api.index import list_records
        from scibind_generated.gen3_indexd.models import RecordList

        filters = _options(
            hash_=[f"{k}:{v}" for k, v in hashes.items()] if hashes else None,
            size=size,
            url_query=list(urls) if urls else None,
            file_name=file_name,
            metadata=[f"{k}:{v}" for k, v in metadata.items()] if metadata else None,
        )
        if not filters:
            raise ConfigurationError("give at least one field to match")
        resp = yield fx.Call(_indexd(list_records), {**filters, "limit": 1})
        records = list(_parsed(resp, RecordList, "index listing").records)
        return records[0] if records else None

    @operation
    def index_records_by_guid(self, guids: Sequence[str]) -> fx.Op[list[Record]]:
        """Many records in few requests (``POST /bulk/documents``), in the order asked; unknown GUIDs are
        left out (the SDK's ``get_records``)."""
        from scibind_generated.gen3_indexd.api.bulk import get_records_bulk

        wanted = list(dict.fromkeys(guids))
        if isinstance(guids, str) or not all(isinstance(g, str) and g for g in wanted):
            raise ConfigurationError("guids must be a sequence of non-empty strings")
        found: dict[str, Record] = {}
        for start in range(0, len(wanted), BULK_SIZE):
            chunk = wanted[start : start + BULK_SIZE]
            # a lookup only reads: safe to repeat
            resp = yield fx.Call(_indexd(get_records_bulk), {"body": chunk}, idempotent=True)
            if not isinstance(resp.parsed, list):
                raise ResponseFormatError("the bulk lookup answer is not a list")
            found.update({r.did: r for r in resp.parsed})
        return [found[g] for g in wanted if g in found]

    def query_index_urls(
        self,
        include: str | None = None,
        *,
        exclude: str | None = None,
        versioned: bool | None = None,
        page_size: int = 1000,
        max_items: int | None = None,
    ) -> Paginator[IndexUrlMatch]:
        """GUIDs and URLs of the records whose URLs contain ``include`` (and not ``exclude``), in GUID order
        (``/_query/urls/q``; the SDK's ``query_urls``). ``versioned``: only records with (or without) a
        version."""
        from scibind_generated.gen3_indexd.api.query import query_urls

        from ..pagination import Page, Paginator
        from ._models import IndexUrlMatch

        if include is None and exclude is None:
            raise ConfigurationError("give include= or exclude=")
        if page_size < 1:
            raise ConfigurationError("page_size must be at least 1")

        def fetch(page: int) -> fx.Op[Page[IndexUrlMatch]]:
            args = _options(include=include, exclude=exclude, versioned=versioned)
            resp = yield fx.Call(
                _indexd(query_urls),
                {**args, "offset": (page - 1) * page_size, "limit": page_size},
            )
            if not isinstance(resp.parsed, list):
                raise ResponseFormatError("the URL query answer is not a list")
            rows = [IndexUrlMatch(str(m.did), tuple(str(u) for u in m.urls)) for m in resp.parsed]
            return Page(rows, next=page + 1 if len(rows) >= page_size else None)

        return Paginator(self._driver, fetch, max_items=max_items)

    @operation
    def index_versions(self, guid: str) -> fx.Op[list[Record]]:
        """Every version of a record (``guid`` or its base id), oldest first."""
        from scibind_generated.gen3_indexd.api.index import list_record_versions
        from scibind_generated.gen3_indexd.models import RecordVersions

        resp = yield fx.Call(_indexd(list_record_versions), {"guid": guid})
        versions = _parsed(resp, RecordVersions, "record versions").additional_properties
        try:
            return [versions[k] for k in sorted(versions, key=int)]
        except ValueError:
            raise ResponseFormatError("record versions are not keyed by position") from None

    @operation
    def latest_index_version(self, guid: str, *, has_version: bool = False) -> fx.Op[Record]:
        """The newest version of a record (``has_version``: the newest that has a ``version``)."""
        from scibind_generated.gen3_indexd.api.index import get_latest_record_version
        from scibind_generated.gen3_indexd.models import Record

        resp = yield fx.Call(
            _indexd(get_latest_record_version),
            {"guid": guid, **({"has_version": True} if has_version else {})},
        )
        return _parsed(resp, Record, "latest version")  # type: ignore[no-any-return]

    @operation
    def index_stats(self) -> fx.Op[IndexStats]:
        """How many records indexd holds and their total size."""
        from scibind_generated.gen3_indexd.api.system import get_stats
        from scibind_generated.gen3_indexd.models import IndexStats

        resp = yield fx.Call(_indexd(get_stats))
        return _parsed(resp, IndexStats, "index statistics")  # type: ignore[no-any-return]

    @operation
    def index_healthy(self) -> fx.Op[bool]:
        """Whether indexd says it is healthy (``/_status``)."""
        from scibind_generated.gen3_indexd.api.system import get_status

        resp = yield fx.Call(_indexd(get_status), ok=tuple(range(500, 600)), validate=False)
        return bool(resp.status_code == 200 and resp.content.strip() == b"Healthy")

    # -- writes ------------------------------------------------------------------------------------------------
    @operation
    def create_index_record(
        self,
        *,
        hashes: Mapping[str, str],
        size: int,
        urls: Sequence[str] = (),
        did: str | None = None,
        file_name: str | None = None,
        authz: Sequence[str] | None = None,
        acl: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        urls_metadata: Mapping[str, Mapping[str, Any]] | None = None,
        version: str | None = None,
        description: str | None = None,
        content_created_date: str | None = None,
        content_updated_date: str | None = None,
        baseid: str | None = None,
        uploader: str | None = None,
    ) -> fx.Op[Record]:
        """Index an object that is already stored (``POST /index/``); returns the new record.

        Needs indexd ``create`` on ``authz``. With ``did`` the GUID is yours, and a request repeated after a
        lost answer fails with :class:`~scibind.errors.ConflictError` instead of creating a duplicate;
        without it indexd mints one and the request is never repeated.
        """
        from scibind_generated.gen3_indexd.api.index import create_record
        from scibind_generated.gen3_indexd.models import RecordCreate, RecordRef

        _check_new(hashes, size)
        body = {
            "form": "object",
            **_record_body(
                hashes=hashes, size=size, urls=urls, file_name=file_name, version=version,
                authz=authz, acl=acl, metadata=metadata, urls_metadata=urls_metadata,
                description=description, content_created_date=content_created_date,
                content_updated_date=content_updated_date,
            ),
            **_options(did=did, baseid=baseid, uploader=uploader),
        }  # fmt: skip
        resp = yield fx.Call(_indexd(create_record), {"body": RecordCreate.from_dict(body)})
        ref = _parsed(resp, RecordRef, "new index record")
        return (yield from self._record(str(ref.did)))

    @operation
    def create_index_version(
        self,
        guid: str,
        *,
        hashes: Mapping[str, str],
        size: int,
        urls: Sequence[str] = (),
        did: str | None = None,
        file_name: str | None = None,
        authz: Sequence[str] | None = None,
        acl: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        urls_metadata: Mapping[str, Mapping[str, Any]] | None = None,
        version: str | None = None,
        description: str | None = None,
        content_created_date: str | None = None,
        content_updated_date: str | None = None,
    ) -> fx.Op[Record]:
        """A new version of a record: a new GUID with the same base id (hashes and size of a record never
        change; the old version stays). Returns the new record (the SDK's ``create_new_version``)."""
        from scibind_generated.gen3_indexd.api.index import create_record_version
        from scibind_generated.gen3_indexd.models import RecordCreate, RecordRef

        _check_new(hashes, size)
        body = {
            "form": "object",
            **_record_body(
                hashes=hashes, size=size, urls=urls, file_name=file_name, version=version,
                authz=authz, acl=acl, metadata=metadata, urls_metadata=urls_metadata,
                description=description, content_created_date=content_created_date,
                content_updated_date=content_updated_date,
            ),
            **_options(did=did),
        }  # fmt: skip
        resp = yield fx.Call(
            _indexd(create_record_version), {"guid": guid, "body": RecordCreate.from_dict(body)}
        )
        ref = _parsed(resp, RecordRef, "new record version")
        return (yield from self._record(str(ref.did)))

    @operation
    def update_index_record(
        self,
        guid: str,
        *,
        rev: str | None = None,
        file_name: str | None = None,
        urls: Sequence[str] | None = None,
        version: str | None = None,
        authz: Sequence[str] | None = None,
        acl: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        urls_metadata: Mapping[str, Mapping[str, Any]] | None = None,
        description: str | None = None,
        content_created_date: str | None = None,
        content_updated_date: str | None = None,
    ) -> fx.Op[Record]:
        """Change the given fields of a record (hashes and size cannot change: see
        :meth:`create_index_version`); returns the updated record.

        ``rev`` is the revision your change is based on; without it the current one is read first (what the
        SDK does). A record changed by someone else in between raises :class:`~scibind.errors.ConflictError`:
        read it again and decide; the change is not repeated blindly.
        """
        from scibind_generated.gen3_indexd.api.index import update_record
        from scibind_generated.gen3_indexd.models import RecordUpdate

        changes = _record_body(
            urls=urls, file_name=file_name, version=version, authz=authz, acl=acl,
            metadata=metadata, urls_metadata=urls_metadata, description=description,
            content_created_date=content_created_date, content_updated_date=content_updated_date,
        )  # fmt: skip
        if not changes:
            raise ConfigurationError("nothing to change")
        if rev is None:
            rev = str((yield from self._record(guid)).rev)
        yield fx.Call(
            _indexd(update_record),
            {"guid": guid, "rev": rev, "body": RecordUpdate.from_dict(changes)},
        )
        return (yield from self._record(guid))

    @operation
    def delete_index_record(self, guid: str, *, rev: str | None = None) -> fx.Op[None]:
        """Delete an index record (not the stored object: see :meth:`delete_file`). ``rev`` as in
        :meth:`update_index_record`; needs indexd ``delete`` on the record's authz."""
        from scibind_generated.gen3_indexd.api.index import delete_record

        if rev is None:
            rev = str((yield from self._record(guid)).rev)
        yield fx.Call(_indexd(delete_record), {"guid": guid, "rev": rev}, validate=False)
