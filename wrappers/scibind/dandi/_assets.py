"""Assets of a dandiset version: listing, lookup, metadata, digests, content URLs, changes, readable files."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .. import errors
from .._core import effects as fx
from .._core.facade import operation
from ._base import DandisetRef
from ._dandisets import DandisetOps, drf_models_page, page_size_ok, paginator
from ._models import Asset, ZarrEntry, normalize_path
from ._readable import RangeSource

if TYPE_CHECKING:
    import httpx
    from scibind_generated.dandi.models import AssetPath, AssetValidation
    from scibind_generated.dandi_metadata import Asset as AssetMetadata

    from ..pagination import Page, Paginator

__all__ = ["ASSET_PAGE_SIZE", "ASSET_PAGE_SIZE_WITH_METADATA", "AssetOps"]

ASSET_PAGE_SIZE = 1000
"""Assets per page without metadata: the server's maximum. A record is ~300 bytes, so a page is ~300 kB and a
100,000-asset dandiset is 100 requests (fetched concurrently after the first), not 1,000."""
ASSET_PAGE_SIZE_WITH_METADATA = 250
"""With metadata each record is a few kB and costs the server more to render: smaller pages keep each response
fast while the concurrent window keeps throughput."""
PATHS_PAGE_SIZE = 1000

T = TypeVar("T")


class AssetOps(DandisetOps):
    """Asset operations."""

    # -- listing and lookup -----------------------------------------------------------------------------------
    def assets(
        self,
        dandiset: DandisetRef,
        version_id: str | None = None,
        *,
        path: str | None = None,
        glob: str | None = None,
        order: str | None = None,
        metadata: bool = False,
        zarr_only: bool = False,
        page_size: int | None = None,
        max_items: int | None = None,
    ) -> Paginator[Asset]:
        """The assets of a version, lazily, pages fetched concurrently (constant memory however many).

        ``path`` keeps those whose path starts with it, ``glob`` those matching it (``*`` wildcard; both
        case-insensitive); ``order`` is ``created``, ``modified`` or ``path`` (``-`` to reverse);
        ``metadata=True`` includes each asset's metadata (digests) in the same requests.
        """
        from scibind_generated.dandi.api.assets import list_assets as ep
        from scibind_generated.dandi.models.list_assets_order import LIST_ASSETS_ORDER_VALUES

        if order is not None and order not in LIST_ASSETS_ORDER_VALUES:
            raise errors.ConfigurationError(
                f"order must be one of {sorted(LIST_ASSETS_ORDER_VALUES)}"
            )
        size = page_size_ok(
            page_size or (ASSET_PAGE_SIZE_WITH_METADATA if metadata else ASSET_PAGE_SIZE)
        )
        params: dict[str, Any] = {"metadata": metadata, "zarr": zarr_only, "page_size": size}
        prefix = normalize_path(path) if path else ""
        if prefix:
            params["path"] = prefix
        if glob:
            params["glob"] = glob
        if order:
            params["order"] = order
        resolved: list[tuple[str, str]] = []

        def fetch(page: int) -> fx.Op[Page[Asset]]:
            if not resolved:
                resolved.append((yield from self._resolve(dandiset, version_id)))
            ident, version = resolved[0]
            # the request as the generated endpoint builds it, the answer parsed straight into Assets:
            # generated models cost ~40 us per asset, which dominates listing a large dandiset
            kwargs = ep._get_kwargs(ident, version, page=page, **params)
            resp = yield fx.Request(
                kwargs["method"].upper(), kwargs["url"], params=kwargs["params"]
            )
            return records_page(resp, page, size, lambda r: Asset.from_record(r, ident, version))

        return paginator(self._driver, fetch, max_items=max_items)

    @operation
    def get_asset(
        self,
        asset_id: str,
        *,
        dandiset: DandisetRef | None = None,
        version_id: str | None = None,
    ) -> fx.Op[Asset]:
        """An asset (with metadata) by id; within a dandiset version when ``dandiset`` is given."""
        from scibind_generated.dandi.api.assets import get_asset_info, get_version_asset_info

        if dandiset is None:
            resp = yield fx.Call(get_asset_info, {"asset_id": asset_id})
            return Asset.from_generated(resp.parsed)
        ident, version = yield from self._resolve(dandiset, version_id)
        resp = yield fx.Call(
            get_version_asset_info,
            {"dandiset_id": ident, "version_id": version, "asset_id": asset_id},
        )
        return Asset.from_generated(resp.parsed, ident, version)

    def _find_by_path(
        self, dandiset: DandisetRef, path: str, version_id: str | None
    ) -> fx.Op[Asset | None]:
        from scibind_generated.dandi.api.assets import list_assets as ep

        wanted = normalize_path(path)
        if not wanted:
            raise errors.ConfigurationError("an asset path is needed")
        ident, version = yield from self._resolve(dandiset, version_id)
        by_glob = "*" not in wanted
        page = 1
        while True:
            args: dict[str, Any] = {
                "dandiset_id": ident,
                "version_id": version,
                "metadata": True,
                "page": page,
                "page_size": 100,
                ("glob" if by_glob else "path"): wanted,
            }
            resp = yield fx.Call(ep, args)
            for model in resp.parsed.results:
                if model.path == wanted:
                    return Asset.from_generated(model, ident, version)
            if not resp.parsed.next_:
                return None
            page += 1

    @operation
    def get_asset_by_path(
        self, dandiset: DandisetRef, path: str, *, version_id: str | None = None
    ) -> fx.Op[Asset]:
        """The asset (with metadata) at exactly ``path``; NotFoundError if there is none."""
        found = yield from self._find_by_path(dandiset, path, version_id)
        if found is None:
            raise errors.NotFoundError(
                f"no asset at {normalize_path(path)!r} in dandiset {dandiset}", status=404
            )
        return found

    def asset_paths(
        self,
        dandiset: DandisetRef,
        path_prefix: str | None = None,
        *,
        version_id: str | None = None,
        page_size: int = PATHS_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Paginator[AssetPath]:
        """Files and folders directly under a folder (the root by default), with aggregate sizes."""
        from scibind_generated.dandi.api.assets import list_asset_paths as ep

        folder = normalize_path(path_prefix or "", folder=True)
        size = page_size_ok(page_size)
        resolved: list[tuple[str, str]] = []

        def fetch(page: int) -> fx.Op[Page[AssetPath]]:
            if not resolved:
                resolved.append((yield from self._resolve(dandiset, version_id)))
            ident, version = resolved[0]
            args: dict[str, Any] = {
                "dandiset_id": ident,
                "version_id": version,
                "page": page,
                "page_size": size,
            }
            if folder:
                args["path_prefix"] = folder
            resp = yield fx.Call(ep, args)
            return drf_models_page(resp.parsed, list(resp.parsed.results), page, size)

        return paginator(self._driver, fetch, max_items=max_items)

    # -- metadata and digests ------------------------------------------------------------------------------
    def _raw_metadata(self, asset: Asset) -> fx.Op[dict[str, Any]]:
        from scibind_generated.dandi.api.assets import (
            get_asset_metadata,
            get_version_asset_metadata,
        )

        if asset.dandiset_id is not None and asset.version_id is not None:
            resp = yield fx.Call(
                get_version_asset_metadata,
                {
                    "dandiset_id": asset.dandiset_id,
                    "version_id": asset.version_id,
                    "asset_id": asset.asset_id,
                },
            )
        else:
            resp = yield fx.Call(get_asset_metadata, {"asset_id": asset.asset_id})
        return dict(resp.parsed.additional_properties)

    @operation
    def get_asset_raw_metadata(
        self, asset: Asset, *, refresh: bool = False
    ) -> fx.Op[dict[str, Any]]:
        """The asset's metadata document (the copy the asset carries, unless ``refresh`` or it has none)."""
        if asset.metadata is not None and not refresh:
            return dict(asset.metadata)
        return (yield from self._raw_metadata(asset))

    @operation
    def get_asset_metadata(self, asset: Asset, *, refresh: bool = False) -> fx.Op[AssetMetadata]:
        """The asset's metadata typed as dandischema's ``Asset`` (a TypedDict; not validated)."""
        raw = yield from AssetOps.get_asset_raw_metadata.fn(self, asset, refresh=refresh)
        return cast("AssetMetadata", raw)

    @operation
    def get_digests(self, asset: Asset) -> fx.Op[dict[str, str]]:
        """The asset's digests by algorithm: ``dandi:dandi-etag`` and ``dandi:sha2-256`` (blobs, once computed)
        or ``dandi:dandi-zarr-checksum`` (Zarr)."""
        if asset.metadata is not None and asset.digests:
            return asset.digests
        metadata = yield from self._raw_metadata(asset)
        digest = metadata.get("digest")
        return {str(k): str(v) for k, v in digest.items()} if isinstance(digest, dict) else {}

    @operation
    def get_raw_digest(self, asset: Asset, algorithm: str | None = None) -> fx.Op[str]:
        """One digest (default: dandi-etag for blobs, dandi-zarr-checksum for Zarr); NotFoundError if absent."""
        digests = yield from AssetOps.get_digests.fn(self, asset)
        key = algorithm or ("dandi:dandi-zarr-checksum" if asset.is_zarr else "dandi:dandi-etag")
        if key not in digests:
            raise errors.NotFoundError(f"no {key} digest in the metadata of {asset}", status=None)
        return digests[key]

    @operation
    def get_asset_validation(self, asset: Asset) -> fx.Op[AssetValidation]:
        """The asset's metadata validation status and errors."""
        from scibind_generated.dandi.api.assets import get_asset_validation as ep

        resp = yield fx.Call(ep, _in_version(asset))
        return resp.parsed  # type: ignore[no-any-return]

    # -- content URLs ---------------------------------------------------------------------------------------
    def download_url(self, asset: Asset) -> str:
        """The API URL that redirects to the asset's content (no request is made)."""
        return self.base_url.rstrip("/") + asset.api_path + "download/"

    def _redirect(self, asset: Asset) -> fx.Op[str]:
        """The presigned storage URL the API redirects to (the redirect is not followed)."""
        from scibind_generated.dandi.api.assets import download_asset, download_version_asset

        if asset.is_zarr:
            raise errors.ConfigurationError(
                f"{asset.path} is a Zarr archive: download its entries (zarr_entries / download)"
            )
        if asset.dandiset_id is not None and asset.version_id is not None:
            resp = yield fx.Call(download_version_asset, _in_version(asset))
        else:
            resp = yield fx.Call(download_asset, {"asset_id": asset.asset_id})
        return _location(resp, str(asset))

    def _zarr_redirect(self, zarr_id: str, path: str) -> fx.Op[str]:
        from scibind_generated.dandi.api.zarr import list_zarr_files as ep

        resp = yield fx.Call(ep, {"zarr_id": zarr_id, "prefix": path, "download": True})
        return _location(resp, f"zarr {zarr_id}/{path}")

    @operation
    def get_download_url(self, asset: Asset | ZarrEntry) -> fx.Op[str]:
        """A presigned URL of the content in the object store (valid for a limited time; no credentials)."""
        if isinstance(asset, ZarrEntry):
            return (yield from self._zarr_redirect(asset.zarr_id, asset.path))
        return (yield from self._redirect(asset))

    @operation
    def get_content_url(
        self,
        asset: Asset,
        regex: str = r".*",
        *,
        follow_redirects: bool = False,
        strip_query: bool = False,
    ) -> fx.Op[str]:
        """The first ``contentUrl`` of the metadata matching ``regex``; ``follow_redirects`` resolves an API
        download URL to the storage URL it redirects to (without downloading or sending the key there)."""
        import re

        import httpx

        metadata = yield from AssetOps.get_asset_raw_metadata.fn(self, asset)
        urls = [str(u) for u in metadata.get("contentUrl") or []]
        url = next((u for u in urls if re.search(regex, u)), None)
        if url is None:
            raise errors.NotFoundError(f"no contentUrl matching {regex!r} for {asset}", status=None)
        if follow_redirects and url.startswith(self.base_url.rstrip("/") + "/"):
            resp = yield fx.Request("GET", url)
            url = resp.headers.get("Location") or url
        if strip_query:
            url = str(httpx.URL(url).copy_with(query=None))
        return url

    # -- changes ------------------------------------------------------------------------------------------
    @operation
    def set_asset_raw_metadata(self, asset: Asset, metadata: Mapping[str, Any]) -> fx.Op[Asset]:
        """Replace the asset's metadata (the archive gives the changed asset a new id); returns it."""
        from uuid import UUID

        from scibind_generated.dandi.api.assets import update_asset as ep
        from scibind_generated.dandi.models import AssetRequest, Metadata

        body_meta = {**metadata, "schemaKey": "Asset"}
        body = (
            AssetRequest(metadata=Metadata.from_dict(body_meta), zarr_id=UUID(asset.zarr))
            if asset.zarr is not None
            else AssetRequest(metadata=Metadata.from_dict(body_meta), blob_id=UUID(asset.blob))
        )
        resp = yield fx.Call(ep, {**_in_version(asset), "body": body})
        return Asset.from_generated(resp.parsed, asset.dandiset_id, asset.version_id)

    @operation
    def set_asset_metadata(self, asset: Asset, metadata: AssetMetadata) -> fx.Op[Asset]:
        """Typed twin of :meth:`set_asset_raw_metadata`."""
        return (yield from AssetOps.set_asset_raw_metadata.fn(self, asset, metadata))

    @operation
    def rename_asset(self, asset: Asset, dest: str) -> fx.Op[Asset]:
        """Move the asset to path ``dest`` in the draft (ConflictError if one is there); returns it."""
        new_path = normalize_path(dest)
        if not new_path:
            raise errors.ConfigurationError("the new path is empty")
        metadata = yield from AssetOps.get_asset_raw_metadata.fn(self, asset, refresh=True)
        metadata["path"] = new_path
        return (yield from AssetOps.set_asset_raw_metadata.fn(self, asset, metadata))

    @operation
    def delete_asset(self, asset: Asset) -> fx.Op[None]:
        """Remove the asset from the draft."""
        from scibind_generated.dandi.api.assets import delete_asset as ep

        yield fx.Call(ep, _in_version(asset))

    # -- file-like access -------------------------------------------------------------------------------------
    def _range_source(self, item: Asset | ZarrEntry) -> RangeSource:
        """Where :meth:`~scibind.dandi.DandiClient.as_readable` reads from (no request is made)."""
        if isinstance(item, ZarrEntry):
            zarr_id, path = item.zarr_id, item.path

            def resolve() -> fx.Op[str]:
                return (yield from self._zarr_redirect(zarr_id, path))

            return RangeSource(resolve, item.size, item.name)
        asset = item
        if asset.is_zarr:
            raise errors.ConfigurationError(
                f"{asset.path} is a Zarr archive: open its entries instead"
            )

        def resolve_blob() -> fx.Op[str]:
            return (yield from self._redirect(asset))

        return RangeSource(resolve_blob, asset.size, asset.name)


def records_page(
    resp: httpx.Response, page: int, page_size: int, parse: Callable[[Any], T]
) -> Page[T]:
    """A :class:`Page` of a DRF envelope read from a raw response, each record parsed with ``parse``
    (``count`` may be null after page 1); a body that does not fit gives ResponseFormatError."""
    from .._core.responses import format_error
    from ..pagination import Page

    try:
        body = resp.json()
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise TypeError("expected a page object with a results list")
        count, nxt = body.get("count"), body.get("next")
        if (count is not None and (not isinstance(count, int) or isinstance(count, bool))) or (
            nxt is not None and not isinstance(nxt, str)
        ):
            raise TypeError("count must be an integer or null, next a string or null")
        items = [parse(record) for record in body["results"]]
    except (TypeError, ValueError) as exc:
        raise format_error(resp.request, "response does not match the API schema", exc) from None
    return Page(
        items,
        total_pages=max(1, -(-count // page_size)) if count is not None else None,
        total_items=count,
        next=page + 1 if nxt else None,
    )


def _in_version(asset: Asset) -> dict[str, Any]:
    if asset.dandiset_id is None or asset.version_id is None:
        raise errors.ConfigurationError(
            f"asset {asset.asset_id} was looked up without its dandiset: "
            "use get_asset(asset_id, dandiset=...) or the dandiset's listing"
        )
    return {
        "dandiset_id": asset.dandiset_id,
        "version_id": asset.version_id,
        "asset_id": asset.asset_id,
    }


def _location(resp: Any, what: str) -> str:
    location = resp.headers.get("Location")
    if int(resp.status_code) != 302 or not location:
        raise errors.ResponseFormatError(
            f"expected a redirect to the content of {what}, got HTTP {int(resp.status_code)}",
            status=int(resp.status_code),
        )
    return str(location)
