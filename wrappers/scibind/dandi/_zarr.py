"""Zarr archives: listing, entries (cursor-paginated), deletion in batches, finalisation and ingestion."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from .. import errors
from .._core import effects as fx
from .._core.facade import operation
from ._assets import AssetOps
from ._base import DandisetRef
from ._dandisets import drf_models_page, page_size_ok, paginator
from ._models import Asset, ZarrEntry, normalize_dandiset_id

if TYPE_CHECKING:
    from scibind_generated.dandi.models import Zarr

    from ..pagination import Page, Paginator

__all__ = ["ZARR_DELETE_BATCH", "ZARR_UPLOAD_BATCH", "ZarrOps", "ZarrRef"]

ZARR_UPLOAD_BATCH = 255
"""Files per presigning request (dandi-cli's batch size; the archive limits the request size)."""
ZARR_DELETE_BATCH = 100
ZARR_LIST_LIMIT = 1000

ZarrRef = str | Asset


def zarr_id_of(zarr: Any) -> str:
    """The zarr_id of a Zarr record, a Zarr-backed asset, an entry, or an id string."""
    if isinstance(zarr, Asset):
        if zarr.zarr is None:
            raise errors.ConfigurationError(f"{zarr.path} is not a Zarr asset")
        return zarr.zarr
    if isinstance(zarr, ZarrEntry):
        return zarr.zarr_id
    if isinstance(zarr, str):
        return zarr
    zarr_id = getattr(zarr, "zarr_id", None)
    if zarr_id is None:
        raise errors.ConfigurationError(f"not a Zarr: {zarr!r}")
    return str(zarr_id)


class ZarrOps(AssetOps):
    """Zarr operations."""

    zarr_page_size: ClassVar[int] = ZARR_LIST_LIMIT
    """Entries per page when a whole Zarr listing is walked internally (uploads, downloads, plans)."""

    @operation
    def get_zarr(self, zarr: ZarrRef | Zarr) -> fx.Op[Zarr]:
        """A Zarr archive's record: status, checksum, file count, size."""
        from scibind_generated.dandi.api.zarr import get_zarr as ep

        resp = yield fx.Call(ep, {"zarr_id": zarr_id_of(zarr)})
        return resp.parsed  # type: ignore[no-any-return]

    def zarrs(
        self,
        *,
        dandiset: DandisetRef | None = None,
        name: str | None = None,
        page_size: int = 100,
        max_items: int | None = None,
    ) -> Paginator[Zarr]:
        """Zarr archives visible to you, optionally of one dandiset and/or with one name."""
        from scibind_generated.dandi.api.zarr import list_zarrs as ep

        size = page_size_ok(page_size)
        args: dict[str, Any] = {"page_size": size}
        if dandiset is not None:
            args["dandiset"] = normalize_dandiset_id(dandiset)
        if name:
            args["name"] = name

        def fetch(page: int) -> fx.Op[Page[Zarr]]:
            resp = yield fx.Call(ep, {**args, "page": page})
            return drf_models_page(resp.parsed, list(resp.parsed.results), page, size)

        return paginator(self._driver, fetch, max_items=max_items)

    @operation
    def create_zarr(self, dandiset: DandisetRef, name: str) -> fx.Op[Zarr]:
        """Create an empty Zarr archive in a dandiset (status Pending)."""
        from scibind_generated.dandi.api.zarr import create_zarr as ep
        from scibind_generated.dandi.models import ZarrCreateRequest

        body = ZarrCreateRequest(name=name, dandiset=normalize_dandiset_id(dandiset))
        resp = yield fx.Call(ep, {"body": body})
        return resp.parsed  # type: ignore[no-any-return]

    def _entries_page(
        self, zarr_id: str, prefix: str | None, after: str | None, limit: int
    ) -> fx.Op[Page[ZarrEntry]]:
        from scibind_generated.dandi.api.zarr import list_zarr_files as ep

        args: dict[str, Any] = {"zarr_id": zarr_id, "limit": limit}
        if prefix:
            args["prefix"] = prefix
        if after:
            args["after"] = after
        resp = yield fx.Call(ep, args)
        from ..pagination import Page

        items = [ZarrEntry.from_generated(zarr_id, f) for f in resp.parsed.results]
        more = bool(resp.parsed.next_) and bool(items)
        return Page(items, next=items[-1].path if more else None)

    def zarr_entries(
        self,
        zarr: ZarrRef | Zarr,
        *,
        prefix: str | None = None,
        page_size: int = ZARR_LIST_LIMIT,
        max_items: int | None = None,
    ) -> Paginator[ZarrEntry]:
        """Every file of a Zarr archive in key order (pages follow an ``after`` cursor)."""
        zarr_id = zarr_id_of(zarr)
        limit = page_size_ok(page_size)

        def fetch(after: str | None) -> fx.Op[Page[ZarrEntry]]:
            return (yield from self._entries_page(zarr_id, prefix, after, limit))

        return paginator(self._driver, fetch, first=None, numbered=False, max_items=max_items)

    def _all_entries(self, zarr_id: str, prefix: str | None = None) -> fx.Op[dict[str, ZarrEntry]]:
        entries: dict[str, ZarrEntry] = {}
        after: str | None = None
        while True:
            page = yield from self._entries_page(zarr_id, prefix, after, self.zarr_page_size)
            entries.update((e.path, e) for e in page.items)
            if page.next is None:
                return entries
            after = page.next

    @operation
    def get_zarr_entry(self, zarr: ZarrRef | Zarr, path: str) -> fx.Op[ZarrEntry]:
        """The file at exactly ``path`` in a Zarr archive; NotFoundError if there is none."""
        zarr_id = zarr_id_of(zarr)
        wanted = path.strip("/")
        page = yield from self._entries_page(zarr_id, wanted, None, ZARR_LIST_LIMIT)
        for entry in page.items:
            if entry.path == wanted:
                return entry
        raise errors.NotFoundError(f"no entry {wanted!r} in zarr {zarr_id}", status=404)

    def _delete_entries(self, zarr_id: str, paths: list[str], batch_size: int) -> fx.Op[None]:
        from scibind_generated.dandi.api.zarr import delete_zarr_files as ep
        from scibind_generated.dandi.models import ZarrFileDeleteRequest

        for start in range(0, len(paths), batch_size):
            body = [ZarrFileDeleteRequest(path=p) for p in paths[start : start + batch_size]]
            yield fx.Call(ep, {"zarr_id": zarr_id, "body": body})

    @operation
    def delete_zarr_entries(
        self,
        zarr: ZarrRef | Zarr,
        paths: Iterable[str | ZarrEntry],
        *,
        batch_size: int = ZARR_DELETE_BATCH,
        finalize: bool = True,
        timeout: float = 600.0,
        poll_interval: float = 2.0,
    ) -> fx.Op[Zarr | None]:
        """Delete files in batches; with ``finalize`` (default) have the checksum recomputed and wait for it."""
        zarr_id = zarr_id_of(zarr)
        names = [p.path if isinstance(p, ZarrEntry) else str(p).strip("/") for p in paths]
        if not names:
            return None
        yield from self._delete_entries(zarr_id, names, max(1, batch_size))
        if not finalize:
            return None
        yield from ZarrOps.finalize_zarr.fn(self, zarr_id)
        return (
            yield from ZarrOps.wait_zarr_complete.fn(
                self, zarr_id, timeout=timeout, poll_interval=poll_interval
            )
        )

    @operation
    def finalize_zarr(self, zarr: ZarrRef | Zarr) -> fx.Op[None]:
        """Ask the archive to compute the Zarr's checksum (after uploads or deletions)."""
        from scibind_generated.dandi.api.zarr import finalize_zarr as ep

        yield fx.Call(ep, {"zarr_id": zarr_id_of(zarr)})

    @operation
    def wait_zarr_complete(
        self, zarr: ZarrRef | Zarr, *, timeout: float = 600.0, poll_interval: float = 2.0
    ) -> fx.Op[Zarr]:
        """Wait until the Zarr is ingested (status Complete); returns its record with the checksum."""
        zarr_id = zarr_id_of(zarr)

        def probe() -> fx.Op[tuple[bool, Zarr]]:
            record = yield from ZarrOps.get_zarr.fn(self, zarr_id)
            return record.status == "Complete", record

        return (
            yield from self._wait(
                probe,
                timeout=timeout,
                poll_interval=poll_interval,
                what=f"ingestion of zarr {zarr_id}",
            )
        )
