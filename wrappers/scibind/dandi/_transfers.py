"""Uploads and downloads: verified, parallel, resumable; single files, directories, Zarr archives, plans.

Upload of a file (the archive's protocol, as dandi-cli does it, plus resume):

1. dandi-etag of the file, its parts hashed in parallel (and the existing asset at that path looked up meanwhile);
2. ``POST /uploads/initialize/`` -- 409 with ``Location`` means the blob is already stored: no bytes are sent;
3. parts PUT in parallel to presigned URLs (no credentials), each part's ETag checked, each finished part
   written to a journal, so an interrupted upload resumes (in this process or another) without resending parts;
4. ``POST /uploads/{id}/complete/`` gives the S3 completion request, which is sent to the object store and whose
   final ETag must equal the dandi-etag; ``POST /uploads/{id}/validate/`` mints the blob;
5. the asset is created, or the asset at that path is replaced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from .. import errors
from .._core import effects as fx
from .._core.facade import operation
from ._assets import ASSET_PAGE_SIZE_WITH_METADATA
from ._base import DandisetRef
from ._dandisets import drf_models_page, paginator
from ._models import DRAFT, Asset, ZarrEntry, normalize_dandiset_id, normalize_path
from ._zarr import ZARR_UPLOAD_BATCH, ZarrOps, ZarrRef

if TYPE_CHECKING:
    from scibind_generated.dandi.models import Upload, Zarr

    from ..pagination import Page, Paginator
    from ..transfers.download import Existing
    from ..transfers.progress import EventStream, ProgressCallback
    from . import _download, _upload
    from ._tasks import DownloadTask, UploadTask
else:
    from ._lazy import lazy_module

    _download = lazy_module("scibind.dandi._download")
    _upload = lazy_module("scibind.dandi._upload")

__all__ = ["Replace", "TransferOps"]

Replace = Literal["never", "always", "if-different"]
"""What to do when an asset already exists at the target path: refuse (ConflictError), replace it, or replace
it only when the content (or the given metadata) differs."""


class TransferOps(ZarrOps):
    """Upload, download, plans for distributed transfers."""

    listing_page_size: ClassVar[int] = ASSET_PAGE_SIZE_WITH_METADATA
    """Assets (with metadata) per page when directories are walked internally."""

    # -- helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _replace_mode(replace: str) -> Replace:
        if replace not in ("never", "always", "if-different"):
            raise errors.ConfigurationError("replace must be 'never', 'always' or 'if-different'")
        return replace  # type: ignore[return-value]

    # -- downloads --------------------------------------------------------------------------------------------
    @operation
    def download(
        self,
        asset: Asset | ZarrEntry,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        parallel: int = 4,
        existing: Existing = "verify",
    ) -> fx.Op[Path]:
        """Download an asset (or one Zarr entry) to ``dest`` (a file path, or an existing directory to put it
        in); returns the path.

        Large files come in parallel ranges; the file is checked (size, and the dandi-etag or sha256 hashed as
        the bytes arrive) before it is renamed into place; an interrupted download resumes from the partial
        file. A Zarr asset becomes a directory of its entries (see :meth:`download_zarr`); a
        :class:`~scibind.dandi.ZarrEntry` is checked against its md5. ``existing``: ``verify`` (skip a file
        that is already there and matches), ``overwrite``, ``skip`` or ``error``.
        """
        target = Path(dest)
        if isinstance(asset, ZarrEntry):
            if target.is_dir():
                target = target / asset.name
            return (
                yield from _download.download_entry(
                    self, asset, target, progress=progress, existing=existing
                )
            )
        if target.is_dir() and not asset.is_zarr:
            target = target / asset.name
        if asset.is_zarr:
            assert asset.zarr is not None
            return (
                yield from _download.download_zarr(
                    self,
                    asset.zarr,
                    target,
                    progress=progress,
                    parallel_files=parallel,
                    existing=existing,
                    label=asset.path,
                )
            )
        return (
            yield from _download.download_blob(
                self, asset, target, progress=progress, parallel=parallel, existing=existing
            )
        )

    @operation
    def download_zarr(
        self,
        zarr: ZarrRef | Zarr,
        dest: str | os.PathLike[str],
        *,
        prefix: str | None = None,
        parallel: int = 8,
        existing: Existing = "verify",
        verify_checksum: bool = True,
        progress: ProgressCallback | None = None,
    ) -> fx.Op[Path]:
        """Download a Zarr archive (an asset, a Zarr record or a zarr_id) into directory ``dest``.

        Files keep their paths inside the archive (only those below ``prefix``, when given), ``parallel`` at a
        time; each is checked against its md5 before it is renamed into place, and files already there and
        matching are not fetched again (``existing="verify"``). For a whole, fully ingested Zarr the checksum of
        the listed files must then equal the archive's (ChecksumMismatchError otherwise), so a listing that
        missed a file cannot pass unnoticed. Local files the archive does not have are left alone.
        """
        from ._zarr import zarr_id_of

        zarr_id = zarr_id_of(zarr)
        label = zarr.path if isinstance(zarr, Asset) else zarr_id
        return (
            yield from _download.download_zarr(
                self,
                zarr_id,
                Path(dest),
                progress=progress,
                parallel_files=max(1, parallel),
                existing=existing,
                label=label,
                prefix=prefix.strip("/") if prefix else None,
                verify_checksum=verify_checksum,
            )
        )

    def download_events(
        self,
        asset: Asset,
        dest: str | os.PathLike[str],
        *,
        parallel: int = 4,
        existing: Existing = "verify",
    ) -> EventStream[Path]:
        """:meth:`download` as a stream of progress events (``for`` / ``async for``); ``.result`` is the path."""
        from ..transfers.progress import EventStream

        return EventStream(
            lambda cb: cast(Any, self).download(
                asset, dest, progress=cb, parallel=parallel, existing=existing
            ),
            is_async=self._driver.is_async,
        )

    @operation
    def download_directory(
        self,
        dandiset: DandisetRef,
        dest: str | os.PathLike[str],
        *,
        path: str = "",
        version_id: str | None = None,
        parallel_files: int = 4,
        parallel: int = 4,
        existing: Existing = "verify",
        progress: ProgressCallback | None = None,
    ) -> fx.Op[list[Path]]:
        """Download every asset under folder ``path`` (the whole version by default) into ``dest``.

        Files below ``path`` keep their relative layout. ``parallel_files`` files at once, each with up to
        ``parallel`` ranges; the next page of the listing is fetched while a page downloads (constant memory).
        """
        ident, version = yield from self._resolve(dandiset, version_id)
        folder = normalize_path(path, folder=True)
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        size = self.listing_page_size
        page = yield from _download.assets_page(self, ident, version, folder, 1, size)
        done: list[Path] = []
        while True:
            work = _download.download_assets(
                self, page.items, root, folder, progress, parallel_files, parallel, existing
            )
            if page.next is not None:
                got, following = yield fx.Parallel(
                    [work, _download.assets_page(self, ident, version, folder, page.next, size)],
                    limit=2,
                )
            else:
                got, following = (yield from work), None
            done.extend(got)
            if following is None:
                return done
            page = following

    # -- uploads ----------------------------------------------------------------------------------------------

    @operation
    def upload(
        self,
        dandiset: DandisetRef,
        local_path: str | os.PathLike[str],
        asset_path: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        replace: Replace = "if-different",
        parallel: int = 4,
        progress: ProgressCallback | None = None,
    ) -> fx.Op[Asset]:
        """Upload a file (or a local Zarr directory) to ``asset_path`` (default: its name) in the draft.

        ``metadata`` is merged over what is known from the file (encodingFormat, contentSize, digest,
        blobDateModified). ``replace`` decides what happens when an asset is already at that path
        (``if-different``: identical content is left alone). Parts go ``parallel`` at a time; an interrupted
        upload resumes where it stopped when called again. Returns the asset.
        """
        local = Path(local_path)
        target = asset_path if asset_path is not None else local.name
        mode = self._replace_mode(replace)
        if local.is_dir():
            return (
                yield from _upload.upload_zarr(
                    self,
                    dandiset,
                    local,
                    target,
                    metadata=metadata,
                    replace=mode,
                    parallel=parallel,
                    progress=progress,
                )
            )
        return (
            yield from _upload.upload_file(
                self,
                dandiset,
                local,
                target,
                metadata=metadata,
                replace=mode,
                parallel=parallel,
                progress=progress,
            )
        )

    def upload_events(
        self,
        dandiset: DandisetRef,
        local_path: str | os.PathLike[str],
        asset_path: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        replace: Replace = "if-different",
        parallel: int = 4,
    ) -> EventStream[Asset]:
        """:meth:`upload` as a stream of progress events (``for`` / ``async for``); ``.result`` is the asset."""
        from ..transfers.progress import EventStream

        return EventStream(
            lambda cb: cast(Any, self).upload(
                dandiset,
                local_path,
                asset_path,
                metadata=metadata,
                replace=replace,
                parallel=parallel,
                progress=cb,
            ),
            is_async=self._driver.is_async,
        )

    @operation
    def upload_directory(
        self,
        dandiset: DandisetRef,
        local_dir: str | os.PathLike[str],
        *,
        prefix: str = "",
        replace: Replace = "if-different",
        parallel_files: int = 4,
        parallel: int = 4,
        include_hidden: bool = False,
        progress: ProgressCallback | None = None,
    ) -> fx.Op[list[Asset]]:
        """Upload every file below ``local_dir`` to the same layout under folder ``prefix`` of the draft.

        ``*.zarr``/``*.ngff`` directories become Zarr assets; hidden files are skipped unless
        ``include_hidden``. The remote folder is listed once to find existing assets. ``parallel_files``
        files at once, ``parallel`` parts each.
        """
        ident = normalize_dandiset_id(dandiset)
        root = Path(local_dir)
        if not root.is_dir():
            raise errors.ConfigurationError(f"{root} is not a directory")
        mode = self._replace_mode(replace)
        folder = normalize_path(prefix, folder=True)
        files = yield fx.Blocking(_upload.scan, (root, include_hidden))
        remote = yield from _download.all_assets(self, ident, DRAFT, folder)
        index = {a.path: a for a in remote}
        jobs = []
        for local, rel, is_zarr in files:
            target = folder + rel
            if is_zarr:
                jobs.append(
                    _upload.upload_zarr(
                        self,
                        ident,
                        local,
                        target,
                        metadata=None,
                        replace=mode,
                        parallel=parallel,
                        progress=progress,
                        existing=index.get(target),
                    )
                )
            else:
                jobs.append(
                    _upload.upload_file(
                        self,
                        ident,
                        local,
                        target,
                        metadata=None,
                        replace=mode,
                        parallel=parallel,
                        progress=progress,
                        existing=index.get(target),
                    )
                )
        if not jobs:
            return []
        results = yield fx.Parallel(jobs, limit=parallel_files)
        return list(results)

    # -- unfinished uploads ---------------------------------------------------------------------------------
    def pending_uploads(self, dandiset: DandisetRef) -> Paginator[Upload]:
        """The dandiset's unfinished uploads (owners only)."""
        from scibind_generated.dandi.api.dandisets import list_dandiset_uploads as ep

        ident = normalize_dandiset_id(dandiset)

        def fetch(page: int) -> fx.Op[Page[Upload]]:
            resp = yield fx.Call(ep, {"dandiset_id": ident, "page": page, "page_size": 100})
            return drf_models_page(resp.parsed, list(resp.parsed.results), page, 100)

        return paginator(self._driver, fetch)

    @operation
    def cancel_uploads(self, dandiset: DandisetRef) -> fx.Op[int]:
        """Abandon every unfinished upload of the dandiset on the server and forget their local journals.

        Returns how many local journals were removed.
        """
        from scibind_generated.dandi.api.dandisets import clear_dandiset_uploads as ep

        ident = normalize_dandiset_id(dandiset)
        yield fx.Call(ep, {"dandiset_id": ident})
        removed = yield fx.Blocking(_upload.forget_journals, (self.base_url, ident))
        return int(removed)

    # -- zarr upload --------------------------------------------------------------------------------------

    @operation
    def upload_zarr(
        self,
        dandiset: DandisetRef,
        local_dir: str | os.PathLike[str],
        asset_path: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        replace: Replace = "if-different",
        parallel: int = 8,
        batch_size: int = ZARR_UPLOAD_BATCH,
        progress: ProgressCallback | None = None,
        timeout: float = 600.0,
        poll_interval: float = 2.0,
    ) -> fx.Op[Asset]:
        """Upload a local Zarr directory as an asset, sending only files that differ and deleting extras.

        Files go in batches of ``batch_size`` presigned PUTs (``parallel`` at once, each with its
        ``Content-MD5``); then the archive computes the checksum, which must equal the local one.
        """
        local = Path(local_dir)
        if not local.is_dir():
            raise errors.ConfigurationError(f"{local} is not a directory")
        return (
            yield from _upload.upload_zarr(
                self,
                dandiset,
                local,
                asset_path if asset_path is not None else local.name,
                metadata=metadata,
                replace=self._replace_mode(replace),
                parallel=parallel,
                progress=progress,
                batch_size=max(1, batch_size),
                timeout=timeout,
                poll_interval=poll_interval,
            )
        )

    # -- plans for distributed transfers ------------------------------------------------------------------
    @operation
    def plan_download(
        self,
        dandiset: DandisetRef,
        dest: str | os.PathLike[str],
        *,
        path: str = "",
        version_id: str | None = None,
    ) -> fx.Op[list[DownloadTask]]:
        """One picklable :class:`DownloadTask` per file under folder ``path`` (Zarr assets: per entry)."""
        from ._tasks import DownloadTask

        ident, version = yield from self._resolve(dandiset, version_id)
        folder = normalize_path(path, folder=True)
        root = Path(dest)
        tasks: list[DownloadTask] = []
        for asset in (yield from _download.all_assets(self, ident, version, folder)):
            rel = asset.path[len(folder) :]
            if asset.zarr is not None:
                entries = yield from self._all_entries(asset.zarr)
                for entry in entries.values():
                    tasks.append(
                        DownloadTask(
                            self.base_url,
                            ident,
                            version,
                            f"{asset.path}/{entry.path}",
                            str(_download.safe_join(_download.safe_join(root, rel), entry.path)),
                            entry.size,
                            {"md5": entry.md5},
                            asset_id=asset.asset_id,
                            zarr_id=asset.zarr,
                            entry=entry.path,
                            part_size=self.part_size,
                        )
                    )
            else:
                tasks.append(
                    DownloadTask(
                        self.base_url,
                        ident,
                        version,
                        asset.path,
                        str(_download.safe_join(root, rel)),
                        asset.size,
                        dict(_download.expected(self, asset).digests),
                        asset_id=asset.asset_id,
                        part_size=self.part_size,
                    )
                )
        return tasks

    @operation
    def plan_upload(
        self,
        dandiset: DandisetRef,
        local_dir: str | os.PathLike[str],
        *,
        prefix: str = "",
        replace: Replace = "if-different",
        include_hidden: bool = False,
    ) -> fx.Op[list[UploadTask]]:
        """One picklable :class:`UploadTask` per file below ``local_dir`` (a Zarr directory is one task)."""
        from ._tasks import UploadTask

        ident = normalize_dandiset_id(dandiset)
        root = Path(local_dir)
        if not root.is_dir():
            raise errors.ConfigurationError(f"{root} is not a directory")
        mode = self._replace_mode(replace)
        folder = normalize_path(prefix, folder=True)
        files = yield fx.Blocking(_upload.scan, (root, include_hidden))
        return [
            UploadTask(
                self.base_url,
                ident,
                str(local.resolve()),
                folder + rel,
                0 if is_zarr else local.stat().st_size,
                zarr=is_zarr,
                replace=mode,
                part_size=self.part_size,
            )
            for local, rel, is_zarr in files
        ]
