"""Dandisets and their versions: listing, lookup, creation, metadata, validation and publication."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from .. import errors
from .._core import effects as fx
from .._core.facade import operation
from ._account import AccountOps
from ._base import DandisetRef
from ._errors import DandisetValidationError
from ._models import DRAFT, Dandiset, check_version_id, normalize_dandiset_id

if TYPE_CHECKING:
    from scibind_generated.dandi.models import Owner, Version, VersionDetail
    from scibind_generated.dandi_metadata import Dandiset as DandisetMetadata
    from scibind_generated.dandi_metadata import PublishedDandiset as PublishedDandisetMetadata

    from ..pagination import Page, Paginator

__all__ = ["DANDISET_PAGE_SIZE", "DandisetOps", "drf_models_page", "page_size_ok", "paginator"]

DANDISET_PAGE_SIZE = 200
"""Dandisets per page: items are small, so fewer round trips; pages after the first come concurrently."""
VERSION_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size_ok(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise errors.ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return page_size


def paginator(driver: Any, fetch: Any, **options: Any) -> Paginator[Any]:
    """A :class:`~scibind.pagination.Paginator` (imported on first use)."""
    from ..pagination import Paginator

    return Paginator(driver, fetch, **options)


def drf_models_page(body: Any, items: list[Any], page: int, page_size: int) -> Page[Any]:
    """A :class:`Page` from a parsed DRF envelope (``count`` may be null after page 1)."""
    from ..pagination import Page

    count = body.count if isinstance(body.count, int) else None
    return Page(
        items,
        total_pages=max(1, math.ceil(count / page_size)) if count is not None else None,
        total_items=count,
        next=page + 1 if body.next_ else None,
    )


def _flag(value: bool | None) -> Any:
    from scibind_generated.dandi.types import UNSET

    return UNSET if value is None else value


class DandisetOps(AccountOps):
    """Dandiset and version operations."""

    # -- dandisets ------------------------------------------------------------------------------------------
    def dandisets(
        self,
        *,
        draft: bool | None = None,
        empty: bool | None = None,
        embargoed: bool | None = None,
        mine: bool = False,
        starred: bool = False,
        search: str | None = None,
        order: str | None = None,
        page_size: int = DANDISET_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[Dandiset]:
        """Every dandiset visible to you (loaded, at their most recent published version, else the draft).

        ``draft=False`` leaves out never-published dandisets, ``empty=False`` those without assets,
        ``embargoed=True`` adds embargoed ones you may see; ``mine`` and ``starred`` restrict the list;
        ``search`` is the archive's search syntax; ``order`` is one of ``id``, ``name``, ``modified``,
        ``size``, ``stars`` (``-`` in front to reverse).
        """
        from scibind_generated.dandi.api.dandisets import list_dandisets as ep
        from scibind_generated.dandi.models.list_dandisets_ordering import (
            LIST_DANDISETS_ORDERING_VALUES,
        )

        if order is not None and order not in LIST_DANDISETS_ORDERING_VALUES:
            raise errors.ConfigurationError(
                f"order must be one of {sorted(LIST_DANDISETS_ORDERING_VALUES)}"
            )
        if search is not None and not search.strip():
            search = None
        size = page_size_ok(page_size)
        params: dict[str, Any] = {
            "draft": _flag(draft),
            "empty": _flag(empty),
            "embargoed": _flag(embargoed),
            "starred": _flag(starred or None),
            "user": "me" if mine else _flag(None),
            "search": search if search is not None else _flag(None),
            "ordering": order if order is not None else _flag(None),
            "page_size": size,
        }

        def fetch(page: int) -> fx.Op[Page[Dandiset]]:
            resp = yield fx.Call(ep, {**params, "page": page})
            body = resp.parsed
            return drf_models_page(body, [Dandiset.from_data(d) for d in body.results], page, size)

        return paginator(self._driver, fetch, max_items=max_items)

    @operation
    def get_dandiset(
        self, dandiset_id: DandisetRef, version_id: str | None = None, *, lazy: bool = False
    ) -> fx.Op[Dandiset]:
        """A dandiset at ``version_id`` (default: most recent published version, else the draft).

        ``lazy=True`` makes no request: the result knows only its identifier and version; calls that need more
        fetch it then (:meth:`refresh` loads it). Otherwise a missing version raises NotFoundError.
        """
        ident = normalize_dandiset_id(dandiset_id)
        if version_id is None and isinstance(dandiset_id, Dandiset):
            version_id = dandiset_id.version_id
        version = check_version_id(version_id) if version_id is not None else None
        if lazy:
            return Dandiset(ident, version)
        detail = yield from self._detail(ident)
        found = Dandiset.from_data(detail, version)
        if version is not None and version != DRAFT and found.version is None:
            yield from self._version_info(ident, version)  # 404 when it does not exist
        return found

    @operation
    def refresh(self, dandiset: DandisetRef) -> fx.Op[Dandiset]:
        """The dandiset's current record, at the same version (a lazy dandiset gets its version resolved)."""
        ident = normalize_dandiset_id(dandiset)
        version = dandiset.version_id if isinstance(dandiset, Dandiset) else None
        return Dandiset.from_data((yield from self._detail(ident)), version)

    @operation
    def create_dandiset(
        self,
        name: str,
        metadata: Mapping[str, Any] | DandisetMetadata | None = None,
        *,
        embargo: bool = False,
    ) -> fx.Op[Dandiset]:
        """Create a dandiset (owned by you) and return it at its draft version."""
        from scibind_generated.dandi.api.dandisets import create_dandiset as ep
        from scibind_generated.dandi.models import Metadata, VersionMetadataRequest

        body = VersionMetadataRequest(name=name, metadata=Metadata.from_dict(dict(metadata or {})))
        resp = yield fx.Call(ep, {"body": body, "embargo": embargo})
        return Dandiset.from_data(resp.parsed, DRAFT)

    @operation
    def delete_dandiset(self, dandiset: DandisetRef) -> fx.Op[None]:
        """Delete a dandiset that has no published version (owners only)."""
        from scibind_generated.dandi.api.dandisets import delete_dandiset as ep

        yield fx.Call(ep, {"dandiset_id": normalize_dandiset_id(dandiset)})

    @operation
    def star(self, dandiset: DandisetRef) -> fx.Op[int]:
        """Star a dandiset; returns its star count."""
        from scibind_generated.dandi.api.dandisets import star_dandiset as ep

        resp = yield fx.Call(ep, {"dandiset_id": normalize_dandiset_id(dandiset)})
        return int(resp.parsed.count)

    @operation
    def unstar(self, dandiset: DandisetRef) -> fx.Op[int]:
        """Remove your star; returns the star count."""
        from scibind_generated.dandi.api.dandisets import unstar_dandiset as ep

        resp = yield fx.Call(ep, {"dandiset_id": normalize_dandiset_id(dandiset)})
        return int(resp.parsed.count)

    @operation
    def get_owners(self, dandiset: DandisetRef) -> fx.Op[list[Owner]]:
        """The dandiset's owners."""
        from scibind_generated.dandi.api.dandisets import get_dandiset_owners as ep

        resp = yield fx.Call(ep, {"dandiset_id": normalize_dandiset_id(dandiset)})
        return list(resp.parsed)

    @operation
    def set_owners(self, dandiset: DandisetRef, usernames: Iterable[str]) -> fx.Op[list[Owner]]:
        """Replace the dandiset's owners (owners only); returns the new owners."""
        from scibind_generated.dandi.api.dandisets import set_dandiset_owners as ep
        from scibind_generated.dandi.models import User

        body = [User(username=u) for u in usernames]
        resp = yield fx.Call(ep, {"dandiset_id": normalize_dandiset_id(dandiset), "body": body})
        return list(resp.parsed)

    @operation
    def unembargo(self, dandiset: DandisetRef) -> fx.Op[None]:
        """Start lifting the dandiset's embargo (owners)."""
        from scibind_generated.dandi.api.dandisets import unembargo_dandiset as ep

        yield fx.Call(ep, {"dandiset_id": normalize_dandiset_id(dandiset)})

    # -- versions ---------------------------------------------------------------------------------------------
    def versions(
        self,
        dandiset: DandisetRef,
        *,
        order: str | None = None,
        page_size: int = VERSION_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[Version]:
        """The dandiset's versions; ``order`` is ``created`` or ``-created``."""
        from scibind_generated.dandi.api.versions import list_versions as ep

        if order not in (None, "created", "-created"):
            raise errors.ConfigurationError("order must be 'created' or '-created'")
        ident, size = normalize_dandiset_id(dandiset), page_size_ok(page_size)

        def fetch(page: int) -> fx.Op[Page[Version]]:
            args: dict[str, Any] = {"dandiset_id": ident, "page": page, "page_size": size}
            if order is not None:
                args["order"] = order
            resp = yield fx.Call(ep, args)
            return drf_models_page(resp.parsed, list(resp.parsed.results), page, size)

        return paginator(self._driver, fetch, max_items=max_items)

    def _version_info(self, dandiset_id: str, version_id: str) -> fx.Op[VersionDetail]:
        from scibind_generated.dandi.api.versions import get_version_info as ep

        resp = yield fx.Call(ep, {"dandiset_id": dandiset_id, "version_id": version_id})
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def get_version(
        self, dandiset: DandisetRef, version_id: str | None = None
    ) -> fx.Op[VersionDetail]:
        """A version's record: status, validation errors, metadata, asset count and size."""
        ident, version = yield from self._resolve(dandiset, version_id)
        return (yield from self._version_info(ident, version))

    @operation
    def most_recent_published_version(self, dandiset: DandisetRef) -> fx.Op[Version | None]:
        """The newest published version, or None if the dandiset was never published."""
        detail = yield from self._detail(normalize_dandiset_id(dandiset))
        return detail.most_recent_published_version

    @operation
    def get_raw_metadata(
        self, dandiset: DandisetRef, version_id: str | None = None
    ) -> fx.Op[dict[str, Any]]:
        """The version's metadata document, as a dict."""
        from scibind_generated.dandi.api.versions import get_version_metadata as ep

        ident, version = yield from self._resolve(dandiset, version_id)
        resp = yield fx.Call(ep, {"dandiset_id": ident, "version_id": version})
        return dict(resp.parsed.additional_properties)

    @operation
    def get_metadata(
        self, dandiset: DandisetRef, version_id: str | None = None
    ) -> fx.Op[DandisetMetadata]:
        """The version's metadata typed as dandischema's ``Dandiset`` (a TypedDict; not validated)."""
        raw = yield from DandisetOps.get_raw_metadata.fn(self, dandiset, version_id)
        return cast("DandisetMetadata", raw)

    @operation
    def get_published_metadata(
        self, dandiset: DandisetRef, version_id: str | None = None
    ) -> fx.Op[PublishedDandisetMetadata]:
        """A published version's metadata typed as dandischema's ``PublishedDandiset`` (default: the most
        recent published version).

        Not a validation, but more than a cast: a document lacking a key ``PublishedDandiset`` requires
        raises ResponseFormatError. NotFoundError for a dandiset never published; ConfigurationError for the
        draft (use :meth:`get_metadata`).
        """
        from ._schemas import check_required_keys

        ident = normalize_dandiset_id(dandiset)
        if version_id is not None and check_version_id(version_id) == DRAFT:
            raise errors.ConfigurationError("the draft is not published: use get_metadata()")
        ident, version = yield from self._resolve(dandiset, version_id)
        if version == DRAFT:
            raise errors.NotFoundError(f"dandiset {ident} has no published version", status=None)
        raw = yield from DandisetOps.get_raw_metadata.fn(self, ident, version)
        check_required_keys(raw, "PublishedDandiset", what=f"the metadata of {ident}/{version}")
        return cast("PublishedDandisetMetadata", raw)

    @operation
    def set_raw_metadata(
        self,
        dandiset: DandisetRef,
        metadata: Mapping[str, Any],
        *,
        name: str | None = None,
    ) -> fx.Op[VersionDetail]:
        """Replace the draft's metadata (and name: ``name``, else ``metadata["name"]``); owners only."""
        from scibind_generated.dandi.api.versions import update_version_metadata as ep
        from scibind_generated.dandi.models import Metadata, VersionMetadataRequest

        title = name if name is not None else str(metadata.get("name") or "")
        if not title:
            raise errors.ConfigurationError("a dandiset needs a name (metadata['name'] or name=)")
        body = VersionMetadataRequest(name=title, metadata=Metadata.from_dict(dict(metadata)))
        resp = yield fx.Call(
            ep, {"dandiset_id": self._draft(dandiset), "version_id": DRAFT, "body": body}
        )
        return resp.parsed  # type: ignore[no-any-return]

    @operation
    def set_metadata(
        self, dandiset: DandisetRef, metadata: DandisetMetadata, *, name: str | None = None
    ) -> fx.Op[VersionDetail]:
        """Typed twin of :meth:`set_raw_metadata`."""
        return (yield from DandisetOps.set_raw_metadata.fn(self, dandiset, metadata, name=name))

    @operation
    def delete_version(self, dandiset: DandisetRef, version_id: str) -> fx.Op[None]:
        """Delete a published version (admins only)."""
        from scibind_generated.dandi.api.versions import delete_version as ep

        yield fx.Call(
            ep,
            {
                "dandiset_id": normalize_dandiset_id(dandiset),
                "version_id": check_version_id(version_id),
            },
        )

    # -- validation and publication -------------------------------------------------------------------------
    @operation
    def wait_until_valid(
        self, dandiset: DandisetRef, *, timeout: float = 120.0, poll_interval: float = 0.5
    ) -> fx.Op[VersionDetail]:
        """Wait until the draft is Valid (DandisetValidationError if Invalid; TimeoutError after ``timeout``)."""
        ident = self._draft(dandiset)

        def probe() -> fx.Op[tuple[bool, VersionDetail]]:
            info = yield from self._version_info(ident, DRAFT)
            if info.status == "Invalid" or (
                info.status == "Valid" and info.asset_validation_errors
            ):
                raise _invalid(ident, info)
            return info.status in ("Valid", "Published"), info

        return (
            yield from self._wait(
                probe,
                timeout=timeout,
                poll_interval=poll_interval,
                what=f"validation of {ident}",
            )
        )

    @operation
    def start_publish(self, dandiset: DandisetRef) -> fx.Op[None]:
        """Ask the archive to publish the draft (202; it must be Valid). See :meth:`publish`."""
        from scibind_generated.dandi.api.versions import publish_version as ep

        yield fx.Call(ep, {"dandiset_id": self._draft(dandiset), "version_id": DRAFT})

    @operation
    def wait_until_published(
        self, dandiset: DandisetRef, *, timeout: float = 120.0, poll_interval: float = 0.5
    ) -> fx.Op[Dandiset]:
        """Wait for a publication to finish; returns the dandiset at its new published version."""
        ident = self._draft(dandiset)

        def probe() -> fx.Op[tuple[bool, None]]:
            info = yield from self._version_info(ident, DRAFT)
            return info.status == "Published", None

        yield from self._wait(
            probe, timeout=timeout, poll_interval=poll_interval, what=f"publication of {ident}"
        )
        detail = yield from self._detail(ident)
        if detail.most_recent_published_version is None:
            raise errors.ResponseFormatError(f"dandiset {ident} is published but has no version")
        return Dandiset.from_data(detail)

    @operation
    def publish(
        self, dandiset: DandisetRef, *, timeout: float = 120.0, poll_interval: float = 0.5
    ) -> fx.Op[Dandiset]:
        """Wait until the draft is valid, publish it, wait until published; returns the new version.

        ``timeout`` bounds each wait. Raises DandisetValidationError when the draft is invalid.
        """
        yield from DandisetOps.wait_until_valid.fn(
            self, dandiset, timeout=timeout, poll_interval=poll_interval
        )
        yield from DandisetOps.start_publish.fn(self, dandiset)
        return (
            yield from DandisetOps.wait_until_published.fn(
                self, dandiset, timeout=timeout, poll_interval=poll_interval
            )
        )


def _invalid(ident: str, info: VersionDetail) -> DandisetValidationError:
    version_errors = [e.to_dict() for e in info.version_validation_errors]
    asset_errors = [e.to_dict() for e in info.asset_validation_errors]
    shown = [f"{e['field']}: {e['message']}" for e in version_errors[:3]] + [
        f"{e.get('path') or '?'}: {e['field']}: {e['message']}" for e in asset_errors[:3]
    ]
    return DandisetValidationError(
        f"dandiset {ident} draft is invalid: " + ("; ".join(shown) or info.status),
        version_errors=version_errors,
        asset_errors=asset_errors,
    )
