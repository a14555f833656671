"""Downloads of assets, Zarr archives and folders, used by :mod:`._transfers` (imported on first use)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors
from .._core import effects as fx
from ._base import DANDI_PART_SIZE
from ._dandisets import drf_models_page
from ._models import Asset, ZarrEntry, normalize_path

if TYPE_CHECKING:
    from ..pagination import Page
    from ..transfers.download import Existing, Expected
    from ..transfers.progress import ProgressCallback
    from ._transfers import TransferOps

__all__ = [
    "all_assets",
    "download_assets",
    "download_blob",
    "download_entry",
    "download_zarr",
    "safe_join",
]


def blob_redirect(
    ops: TransferOps, asset_id: str, dandiset_id: str | None, version_id: str | None
) -> fx.Op[str]:
    from scibind_generated.dandi.api.assets import download_asset, download_version_asset

    from ._assets import _location

    if dandiset_id is not None and version_id is not None:
        resp = yield fx.Call(
            download_version_asset,
            {"dandiset_id": dandiset_id, "version_id": version_id, "asset_id": asset_id},
        )
    else:
        resp = yield fx.Call(download_asset, {"asset_id": asset_id})
    return _location(resp, f"asset {asset_id}")


def assets_page(
    ops: TransferOps, ident: str, version: str, prefix: str, page: int, size: int
) -> fx.Op[Page[Asset]]:
    from scibind_generated.dandi.api.assets import list_assets as ep

    args: dict[str, Any] = {
        "dandiset_id": ident,
        "version_id": version,
        "metadata": True,
        "page": page,
        "page_size": size,
    }
    if prefix:
        args["path"] = prefix
    resp = yield fx.Call(ep, args)
    items = [Asset.from_generated(a, ident, version) for a in resp.parsed.results]
    return drf_models_page(resp.parsed, items, page, size)


def all_assets(ops: TransferOps, ident: str, version: str, prefix: str) -> fx.Op[list[Asset]]:
    """Every asset under ``prefix`` with metadata; pages after the first fetched concurrently."""
    size = ops.listing_page_size
    first = yield from assets_page(ops, ident, version, prefix, 1, size)
    assets = list(first.items)
    if first.total_pages and first.total_pages > 1:
        pages = yield fx.Parallel(
            [
                assets_page(ops, ident, version, prefix, n, size)
                for n in range(2, first.total_pages + 1)
            ]
        )
        for page in pages:
            assets.extend(page.items)
    elif first.next is not None:  # no count: walk
        page_no = first.next
        while page_no is not None:
            page = yield from assets_page(ops, ident, version, prefix, page_no, size)
            assets.extend(page.items)
            page_no = page.next
    return assets


def download_blob(
    ops: TransferOps,
    asset: Asset,
    dest: Path,
    *,
    progress: ProgressCallback | None,
    parallel: int,
    existing: Existing,
) -> fx.Op[Path]:
    from ..transfers.download import download_op

    if asset.metadata is None:
        metadata = yield from ops._raw_metadata(asset)
        asset = Asset(**{**_fields(asset), "metadata": metadata})
    frozen = asset

    def resolve() -> fx.Op[str]:
        return (
            yield from blob_redirect(ops, frozen.asset_id, frozen.dandiset_id, frozen.version_id)
        )

    return (
        yield from download_op(
            resolve,
            dest,
            expected(ops, asset),
            name=asset.path,
            progress=progress,
            parallel=parallel,
            part_size=ops.part_size,
            min_parallel_size=2 * ops.part_size,
            existing=existing,
        )
    )


def download_entry(
    ops: TransferOps,
    entry: ZarrEntry,
    dest: Path,
    *,
    progress: ProgressCallback | None,
    existing: Existing,
    label: str | None = None,
) -> fx.Op[Path]:
    """One Zarr file to ``dest``, checked against its md5 before it is renamed into place."""
    from ..transfers.download import Expected, download_op

    def resolve() -> fx.Op[str]:
        return (yield from ops._zarr_redirect(entry.zarr_id, entry.path))

    return (
        yield from download_op(
            resolve,
            dest,
            Expected(entry.size, {"md5": entry.md5}),
            name=label or entry.path,
            progress=progress,
            parallel=1,
            existing=existing,
        )
    )


def download_zarr(
    ops: TransferOps,
    zarr_id: str,
    dest: Path,
    *,
    progress: ProgressCallback | None,
    parallel_files: int,
    existing: Existing,
    label: str,
    prefix: str | None = None,
    verify_checksum: bool = True,
) -> fx.Op[Path]:
    """Every file of a Zarr (below ``prefix``) into directory ``dest``, page by page, each md5-checked.

    For a whole Zarr (no ``prefix``) whose ingestion is complete, the Zarr checksum of the listed entries must
    then equal the archive's: a listing that missed or changed files gives ChecksumMismatchError.
    """
    checksum = None
    if verify_checksum and not prefix:
        from ._zarr import ZarrOps

        record = yield from ZarrOps.get_zarr.fn(ops, zarr_id)
        if record.status == "Complete" and record.checksum:
            checksum = str(record.checksum)
    dest.mkdir(parents=True, exist_ok=True)
    listed: dict[str, tuple[str, int]] = {}
    after: str | None = None
    while True:
        page = yield from ops._entries_page(zarr_id, prefix, after, ops.zarr_page_size)
        jobs = []
        for entry in page.items:
            listed[entry.path] = (entry.md5, entry.size)
            jobs.append(
                download_entry(
                    ops,
                    entry,
                    safe_join(dest, entry.path),
                    progress=progress,
                    existing=existing,
                    label=f"{label}/{entry.path}",
                )
            )
        if jobs:
            yield fx.Parallel(jobs, limit=parallel_files)
        if page.next is None:
            break
        after = page.next
    if checksum is not None:
        from ._zarrsum import zarr_checksum

        actual = zarr_checksum(listed)
        if actual != checksum:
            raise errors.ChecksumMismatchError(
                f"the files of zarr {zarr_id} ({label}) do not make up its checksum",
                expected=checksum,
                actual=actual,
            )
    return dest


def download_assets(
    ops: TransferOps,
    assets: Iterable[Asset],
    root: Path,
    folder: str,
    progress: ProgressCallback | None,
    parallel_files: int,
    parallel: int,
    existing: Existing,
) -> fx.Op[list[Path]]:
    jobs = []
    for asset in assets:
        if not asset.path.startswith(folder):
            continue
        target = safe_join(root, asset.path[len(folder) :])
        if asset.zarr is not None:
            jobs.append(
                download_zarr(
                    ops,
                    asset.zarr,
                    target,
                    progress=progress,
                    parallel_files=parallel,
                    existing=existing,
                    label=asset.path,
                )
            )
        else:
            jobs.append(
                download_blob(
                    ops, asset, target, progress=progress, parallel=parallel, existing=existing
                )
            )
    if not jobs:
        return []
    results = yield fx.Parallel(jobs, limit=parallel_files)
    return list(results)


def expected(ops: TransferOps, asset: Asset) -> Expected:
    """What a downloaded blob must be, chosen so that checking it costs no second pass over the file.

    Files fetched in ranges are checked with the dandi-etag (each range hashed as it arrives, on the etag's
    part boundaries); files fetched in one stream with sha256 (hashed as it arrives), else the dandi-etag.
    Like dandi-cli, one digest is checked. The dandi-etag is used only with the standard 64 MiB part rule,
    which is the one the shared verifier knows.
    """
    from ..transfers.download import Expected

    digests = asset.transfer_digests()
    etag = digests.get("dandi-etag") if ops.part_size == DANDI_PART_SIZE else None
    sha256 = digests.get("sha256")
    ranged = asset.size >= 2 * ops.part_size or (etag is not None and not etag.endswith("-1"))
    if etag and (ranged or not sha256):
        return Expected(asset.size, {"dandi-etag": etag})
    if sha256:
        return Expected(asset.size, {"sha256": sha256})
    return Expected(
        asset.size, {k: v for k, v in digests.items() if k in ("md5", "sha1", "sha512")}
    )


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative``, refusing paths that would leave ``root``."""
    rel = normalize_path(relative)
    if not rel:
        raise errors.ConfigurationError(f"empty path below {root}")
    return root.joinpath(*rel.split("/"))


def _fields(asset: Asset) -> dict[str, Any]:
    import attrs

    return attrs.asdict(asset, recurse=False)
