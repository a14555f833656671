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

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from .. import errors
from .._core import effects as fx
from .._core.facade import operation
from ..pagination import Page, Paginator
from ..transfers.checksums import DEFAULT_PART_SIZE, MultipartETag, Part, multipart_plan, verify
from ..transfers.download import Existing, Expected, download_op
from ..transfers.journal import Journal, cache_dir, upload_journal
from ..transfers.progress import EventStream, ProgressCallback, ProgressTracker
from ..transfers.streams import FileSliceStream
from ..transfers.upload import PartTarget, hash_parts_op, upload_parts_op
from ._assets import ASSET_PAGE_SIZE_WITH_METADATA
from ._base import DandisetRef
from ._dandisets import drf_models_page
from ._models import DRAFT, Asset, normalize_dandiset_id, normalize_path
from ._tasks import DownloadTask, UploadTask
from ._zarr import ZARR_DELETE_BATCH, ZARR_UPLOAD_BATCH, ZarrOps
from ._zarrsum import base64_md5, local_zarr_digests, zarr_checksum

if TYPE_CHECKING:
    from scibind_generated.dandi.models import Upload, Zarr

__all__ = ["Replace", "TransferOps"]

Replace = Literal["never", "always", "if-different"]
"""What to do when an asset already exists at the target path: refuse (ConflictError), replace it, or replace
it only when the content (or the given metadata) differs."""

ZARR_SUFFIXES = (".zarr", ".ngff")
_MIME = {".nwb": "application/x-nwb", ".zarr": "application/x-zarr", ".ngff": "application/x-zarr"}


def _mime(name: str) -> str:
    import mimetypes

    suffix = os.path.splitext(name)[1].lower()
    return _MIME.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat()


def _safe_join(root: Path, relative: str) -> Path:
    """``root / relative``, refusing paths that would leave ``root``."""
    rel = normalize_path(relative)
    if not rel:
        raise errors.ConfigurationError(f"empty path below {root}")
    return root.joinpath(*rel.split("/"))


def _final_etag(content: bytes) -> str:
    """The ETag of an S3 CompleteMultipartUpload answer (which may be an ``<Error>`` despite a 200)."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as exc:
        raise errors.TransferError(
            f"object store sent an unreadable completion answer: {exc}"
        ) from None
    tag = root.tag.rsplit("}", 1)[-1]
    fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in root}
    if tag == "Error":
        raise errors.TransferError(
            f"object store refused to complete the upload: {fields.get('Code')}: {fields.get('Message')}"
        )
    etag = fields.get("ETag", "").strip('"')
    if not etag:
        raise errors.TransferError("object store did not confirm the uploaded object's ETag")
    return etag


def _scan(root: Path, include_hidden: bool) -> list[tuple[Path, str, bool]]:
    """``(local path, relative posix path, is a Zarr directory)`` of every file below ``root``."""
    found: list[tuple[Path, str, bool]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            if not include_hidden and name.startswith("."):
                continue
            if name.lower().endswith(ZARR_SUFFIXES):
                full = here / name
                found.append((full, full.relative_to(root).as_posix(), True))
            else:
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not include_hidden and name.startswith("."):
                continue
            full = here / name
            found.append((full, full.relative_to(root).as_posix(), False))
    return found


class TransferOps(ZarrOps):
    """Upload, download, plans for distributed transfers."""

    # -- helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _replace_mode(replace: str) -> Replace:
        if replace not in ("never", "always", "if-different"):
            raise errors.ConfigurationError("replace must be 'never', 'always' or 'if-different'")
        return replace  # type: ignore[return-value]

    def _expected(self, asset: Asset) -> Expected:
        """What a downloaded blob must be; the dandi-etag only when its part rule is the standard one."""
        digests = asset.transfer_digests()
        if self.part_size != DEFAULT_PART_SIZE:
            digests.pop("dandi-etag", None)  # the shared verifier assumes 64 MiB parts
        return Expected(asset.size, digests)

    def _blob_redirect(
        self, asset_id: str, dandiset_id: str | None, version_id: str | None
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

    def _assets_page(
        self, ident: str, version: str, prefix: str, page: int, size: int
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

    def _all_assets(self, ident: str, version: str, prefix: str) -> fx.Op[list[Asset]]:
        """Every asset under ``prefix`` with metadata; pages after the first fetched concurrently."""
        size = ASSET_PAGE_SIZE_WITH_METADATA
        first = yield from self._assets_page(ident, version, prefix, 1, size)
        assets = list(first.items)
        if first.total_pages and first.total_pages > 1:
            pages = yield fx.Parallel(
                [
                    self._assets_page(ident, version, prefix, n, size)
                    for n in range(2, first.total_pages + 1)
                ]
            )
            for page in pages:
                assets.extend(page.items)
        elif first.next is not None:  # no count: walk
            page_no = first.next
            while page_no is not None:
                page = yield from self._assets_page(ident, version, prefix, page_no, size)
                assets.extend(page.items)
                page_no = page.next
        return assets

    # -- downloads --------------------------------------------------------------------------------------------
    def _download_blob(
        self,
        asset: Asset,
        dest: Path,
        *,
        progress: ProgressCallback | None,
        parallel: int,
        existing: Existing,
    ) -> fx.Op[Path]:
        if asset.metadata is None:
            metadata = yield from self._raw_metadata(asset)
            asset = Asset(**{**_fields(asset), "metadata": metadata})
        frozen = asset

        def resolve() -> fx.Op[str]:
            return (
                yield from self._blob_redirect(
                    frozen.asset_id, frozen.dandiset_id, frozen.version_id
                )
            )

        return (
            yield from download_op(
                resolve,
                dest,
                self._expected(asset),
                name=asset.path,
                progress=progress,
                parallel=parallel,
                part_size=self.part_size,
                min_parallel_size=2 * self.part_size,
                existing=existing,
            )
        )

    def _download_zarr(
        self,
        zarr_id: str,
        dest: Path,
        *,
        progress: ProgressCallback | None,
        parallel_files: int,
        existing: Existing,
        label: str,
    ) -> fx.Op[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        after: str | None = None
        while True:
            page = yield from self._entries_page(zarr_id, None, after, 1000)
            ops = []
            for entry in page.items:

                def resolve(path: str = entry.path) -> fx.Op[str]:
                    return (yield from self._zarr_redirect(zarr_id, path))

                ops.append(
                    download_op(
                        resolve,
                        _safe_join(dest, entry.path),
                        Expected(entry.size, {"md5": entry.md5}),
                        name=f"{label}/{entry.path}",
                        progress=progress,
                        parallel=1,
                        existing=existing,
                    )
                )
            if ops:
                yield fx.Parallel(ops, limit=parallel_files)
            if page.next is None:
                return dest
            after = page.next

    @operation
    def download(
        self,
        asset: Asset,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        parallel: int = 4,
        existing: Existing = "verify",
    ) -> fx.Op[Path]:
        """Download an asset to ``dest`` (a file path, or an existing directory to put it in); returns the path.

        Large files come in parallel ranges; the file is checked (size, dandi-etag and/or sha256) before it is
        renamed into place; an interrupted download resumes from the partial file. A Zarr asset becomes a
        directory of its entries (each checked against its md5). ``existing``: ``verify`` (skip a file that
        is already there and matches), ``overwrite``, ``skip`` or ``error``.
        """
        target = Path(dest)
        if target.is_dir() and not asset.is_zarr:
            target = target / asset.name
        if asset.is_zarr:
            assert asset.zarr is not None
            return (
                yield from self._download_zarr(
                    asset.zarr,
                    target,
                    progress=progress,
                    parallel_files=parallel,
                    existing=existing,
                    label=asset.path,
                )
            )
        return (
            yield from self._download_blob(
                asset, target, progress=progress, parallel=parallel, existing=existing
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
        size = ASSET_PAGE_SIZE_WITH_METADATA
        page = yield from self._assets_page(ident, version, folder, 1, size)
        done: list[Path] = []
        while True:
            work = self._download_assets(
                page.items, root, folder, progress, parallel_files, parallel, existing
            )
            if page.next is not None:
                got, following = yield fx.Parallel(
                    [work, self._assets_page(ident, version, folder, page.next, size)], limit=2
                )
            else:
                got, following = (yield from work), None
            done.extend(got)
            if following is None:
                return done
            page = following

    def _download_assets(
        self,
        assets: Iterable[Asset],
        root: Path,
        folder: str,
        progress: ProgressCallback | None,
        parallel_files: int,
        parallel: int,
        existing: Existing,
    ) -> fx.Op[list[Path]]:
        ops = []
        for asset in assets:
            if not asset.path.startswith(folder):
                continue
            target = _safe_join(root, asset.path[len(folder) :])
            if asset.zarr is not None:
                ops.append(
                    self._download_zarr(
                        asset.zarr,
                        target,
                        progress=progress,
                        parallel_files=parallel,
                        existing=existing,
                        label=asset.path,
                    )
                )
            else:
                ops.append(
                    self._download_blob(
                        asset, target, progress=progress, parallel=parallel, existing=existing
                    )
                )
        if not ops:
            return []
        results = yield fx.Parallel(ops, limit=parallel_files)
        return list(results)

    # -- uploads ----------------------------------------------------------------------------------------------
    def _asset_body(
        self,
        asset_path: str,
        metadata: Mapping[str, Any] | None,
        defaults: Mapping[str, Any],
    ) -> dict[str, Any]:
        body = {**defaults, **(metadata or {})}
        body["path"] = asset_path
        body["schemaKey"] = "Asset"
        return body

    def _put_asset(
        self,
        ident: str,
        existing: Asset | None,
        body: Mapping[str, Any],
        *,
        blob_id: str | None = None,
        zarr_id: str | None = None,
    ) -> fx.Op[Asset]:
        """Create the asset, or replace ``existing``, with the given metadata and blob or zarr."""
        from uuid import UUID

        from scibind_generated.dandi.api.assets import create_asset, update_asset
        from scibind_generated.dandi.models import AssetRequest, Metadata

        meta = Metadata.from_dict(dict(body))
        request = (
            AssetRequest(metadata=meta, blob_id=UUID(blob_id))
            if blob_id is not None
            else AssetRequest(metadata=meta, zarr_id=UUID(zarr_id))
        )
        if existing is not None:
            resp = yield fx.Call(
                update_asset,
                {
                    "dandiset_id": ident,
                    "version_id": DRAFT,
                    "asset_id": existing.asset_id,
                    "body": request,
                },
            )
        else:
            resp = yield fx.Call(
                create_asset, {"dandiset_id": ident, "version_id": DRAFT, "body": request}
            )
        return Asset.from_generated(resp.parsed, ident, DRAFT)

    def _initialize(
        self, ident: str, size: int, etag: MultipartETag, plan: list[Part]
    ) -> fx.Op[tuple[str, list[PartTarget]] | str]:
        """Start an upload: ``(upload_id, part targets)``, or the blob_id of an identical stored blob."""
        from scibind_generated.dandi.api.uploads import initialize_upload as ep
        from scibind_generated.dandi.models import UploadDigest, UploadInitializationRequest

        body = UploadInitializationRequest(
            dandiset=ident,
            content_size=size,
            digest=UploadDigest(algorithm="dandi:dandi-etag", value=etag.value),
        )
        resp = yield fx.Call(ep, {"body": body}, ok=(409,), idempotent=True)
        if int(resp.status_code) == 409:
            location = str(resp.headers.get("Location") or "").rstrip("/")
            if not location:
                raise errors.ConflictError(
                    "the archive reported an existing blob but not its id", status=409
                )
            return location.rsplit("/", 1)[-1]
        parts = sorted(resp.parsed.parts, key=lambda p: p.part_number)
        if [(p.part_number, p.size) for p in parts] != [(p.number, p.size) for p in plan]:
            raise errors.TransferError(
                f"the archive split the upload into {len(parts)} parts, we expected {len(plan)} "
                f"(is part_size={self.part_size} right for this server?)"
            )
        targets = [
            PartTarget(p.part_number, part.offset, p.size, p.upload_url)
            for p, part in zip(parts, plan, strict=True)
        ]
        return resp.parsed.upload_id, targets

    def _complete(
        self, upload_id: str, targets: list[PartTarget], part_etags: Mapping[int, str], etag: str
    ) -> fx.Op[None]:
        from scibind_generated.dandi.api.uploads import complete_upload as ep
        from scibind_generated.dandi.models import PartCompletion, UploadCompletionRequest

        body = UploadCompletionRequest(
            parts=[
                PartCompletion(part_number=t.number, size=t.size, etag=part_etags[t.number])
                for t in targets
            ]
        )
        resp = yield fx.Call(ep, {"upload_id": upload_id, "body": body}, idempotent=True)
        try:
            done = yield fx.Request(
                "POST",
                resp.parsed.complete_url,
                content=resp.parsed.body.encode(),
                auth=False,
                idempotent=True,  # S3 completion can be repeated
            )
        except errors.NotFoundError:
            return  # a repeated completion of a completed upload: validation checks the object
        verify("final object", etag, _final_etag(done.content))

    def _blob_by_etag(self, etag: str) -> fx.Op[str | None]:
        from scibind_generated.dandi.api.blobs import get_blob_by_digest as ep
        from scibind_generated.dandi.models import Digest

        try:
            resp = yield fx.Call(
                ep, {"body": Digest(algorithm="dandi:dandi-etag", value=etag)}, idempotent=True
            )
        except errors.NotFoundError:
            return None
        return str(resp.parsed.blob_id)

    def _validate(self, upload_id: str, etag: str) -> fx.Op[str]:
        from scibind_generated.dandi.api.uploads import validate_upload as ep

        try:
            resp = yield fx.Call(ep, {"upload_id": upload_id}, idempotent=True)
        except (errors.ConflictError, errors.NotFoundError):
            blob_id = yield from self._blob_by_etag(etag)  # validated meanwhile, or identical blob
            if blob_id is None:
                raise
            return blob_id
        return str(resp.parsed.blob_id)

    def _upload_blob(
        self,
        ident: str,
        local: Path,
        asset_path: str,
        size: int,
        mtime_ns: int,
        plan: list[Part],
        etag: MultipartETag,
        parallel: int,
        tracker: ProgressTracker,
    ) -> fx.Op[str]:
        """Store the file's bytes as a blob (resuming a journaled upload); returns the blob_id."""
        journal = upload_journal(
            "dandi",
            self.base_url,
            ident,
            asset_path,
            str(local.resolve()),
            size,
            mtime_ns,
            etag.value,
        )
        while True:
            resumed = bool(journal.data.get("upload_id"))
            try:
                if not resumed:
                    started = yield from self._initialize(ident, size, etag, plan)
                    if isinstance(started, str):
                        journal.delete()
                        tracker.emit("skipped", "the archive already stores this content")
                        return started
                    upload_id, targets = started
                    journal.delete()
                    journal.update(
                        service="dandi",
                        api=self.base_url,
                        dandiset=ident,
                        asset_path=asset_path,
                        local_path=str(local),
                        etag=etag.value,
                        upload_id=upload_id,
                        targets=[[t.number, t.offset, t.size, t.url] for t in targets],
                        parts={},
                    )
                upload_id = str(journal.data["upload_id"])
                targets = [PartTarget(*row) for row in journal.data["targets"]]
                part_etags = yield from upload_parts_op(
                    local, targets, etag=etag, journal=journal, tracker=tracker, parallel=parallel
                )
                yield from self._complete(upload_id, targets, part_etags, etag.value)
                blob_id = yield from self._validate(upload_id, etag.value)
            except (errors.PermissionDeniedError, errors.NotFoundError):
                if not resumed:
                    raise
                journal.delete()  # expired presigned URLs or an abandoned upload: start again
                continue
            journal.delete()
            return blob_id

    def _upload_file(
        self,
        dandiset: DandisetRef,
        local: Path,
        asset_path: str,
        *,
        metadata: Mapping[str, Any] | None,
        replace: Replace,
        parallel: int,
        progress: ProgressCallback | None,
        existing: Asset | Literal[False] | None = False,
    ) -> fx.Op[Asset]:
        """Upload one file; ``existing`` is the asset at the path if known (False: look it up)."""
        ident = normalize_dandiset_id(dandiset)
        path = normalize_path(asset_path)
        if not path:
            raise errors.ConfigurationError("an asset path is needed")
        stat = local.stat()
        if stat.st_size == 0:
            raise errors.ConfigurationError(
                f"{local} is empty: the archive does not store empty files"
            )
        plan = multipart_plan(stat.st_size, self.part_size)
        hashing = ProgressTracker(path, stat.st_size, progress, "hashing")
        found: Asset | None
        if existing is False:
            etag, found = yield fx.Parallel(
                [hash_parts_op(local, plan, hashing), self._find_by_path(ident, path, DRAFT)],
                limit=2,
            )
        else:
            etag, found = (yield from hash_parts_op(local, plan, hashing)), existing
        tracker = ProgressTracker(path, stat.st_size, progress, "uploading")
        body = self._asset_body(
            path,
            metadata,
            {
                "encodingFormat": _mime(local.name),
                "contentSize": stat.st_size,
                "digest": {"dandi:dandi-etag": etag.value},
                "blobDateModified": _iso(stat.st_mtime),
            },
        )
        if found is not None:
            if replace == "never":
                raise errors.ConflictError(f"an asset already exists at {path!r}", status=409)
            same = found.blob is not None and found.digests.get("dandi:dandi-etag") == etag.value
            if same and replace == "if-different":
                if not metadata:
                    tracker.emit("skipped", "identical asset already there")
                    return found
                asset = yield from self._put_asset(ident, found, body, blob_id=found.blob)
                tracker.emit("done")
                return asset
        blob_id = yield from self._upload_blob(
            ident, local, path, stat.st_size, stat.st_mtime_ns, plan, etag, parallel, tracker
        )
        asset = yield from self._put_asset(ident, found, body, blob_id=blob_id)
        tracker.emit("done")
        return asset

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
                yield from self._upload_zarr(
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
            yield from self._upload_file(
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
        files = yield fx.Blocking(_scan, (root, include_hidden))
        remote = yield from self._all_assets(ident, DRAFT, folder)
        index = {a.path: a for a in remote}
        ops = []
        for local, rel, is_zarr in files:
            target = folder + rel
            if is_zarr:
                ops.append(
                    self._upload_zarr(
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
                ops.append(
                    self._upload_file(
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
        if not ops:
            return []
        results = yield fx.Parallel(ops, limit=parallel_files)
        return list(results)

    # -- unfinished uploads ---------------------------------------------------------------------------------
    def pending_uploads(self, dandiset: DandisetRef) -> Paginator[Upload]:
        """The dandiset's unfinished uploads (owners only)."""
        from scibind_generated.dandi.api.dandisets import list_dandiset_uploads as ep

        ident = normalize_dandiset_id(dandiset)

        def fetch(page: int) -> fx.Op[Page[Upload]]:
            resp = yield fx.Call(ep, {"dandiset_id": ident, "page": page, "page_size": 100})
            return drf_models_page(resp.parsed, list(resp.parsed.results), page, 100)

        return Paginator(self._driver, fetch)

    @operation
    def cancel_uploads(self, dandiset: DandisetRef) -> fx.Op[int]:
        """Abandon every unfinished upload of the dandiset on the server and forget their local journals.

        Returns how many local journals were removed.
        """
        from scibind_generated.dandi.api.dandisets import clear_dandiset_uploads as ep

        ident = normalize_dandiset_id(dandiset)
        yield fx.Call(ep, {"dandiset_id": ident})
        removed = yield fx.Blocking(_forget_journals, (self.base_url, ident))
        return int(removed)

    # -- zarr upload --------------------------------------------------------------------------------------
    def _zarr_for(self, ident: str, name: str, existing: Asset | None) -> fx.Op[Zarr]:
        """The Zarr archive to upload into: the existing asset's, or a new one (or an orphan of that name)."""
        from scibind_generated.dandi.api.zarr import list_zarrs

        if existing is not None and existing.zarr is not None:
            return (yield from ZarrOps.get_zarr.fn(self, existing.zarr))
        try:
            return (yield from ZarrOps.create_zarr.fn(self, ident, name))
        except errors.BadRequestError as exc:
            if "already exists" not in str(exc):
                raise
        resp = yield fx.Call(list_zarrs, {"dandiset": ident, "name": name, "page_size": 10})
        for record in resp.parsed.results:
            if record.name == name:
                return cast("Zarr", record)
        raise errors.ConflictError(f"zarr {name!r} exists but could not be found", status=409)

    def _put_zarr_file(
        self, url: str, local: Path, md5: str, tracker: ProgressTracker
    ) -> fx.Op[bool]:
        """PUT one file with its Content-MD5; False when the presigned URL had expired (ask again)."""
        sent = 0

        def restart() -> None:
            nonlocal sent
            tracker.add(-sent)
            sent = 0

        def chunk(data: bytes) -> None:
            nonlocal sent
            sent += len(data)
            tracker.add(len(data))

        body = FileSliceStream(local, on_chunk=chunk, on_start=restart)
        try:
            resp = yield fx.Request(
                "PUT",
                url,
                content=body,
                headers={"Content-MD5": base64_md5(md5)},
                auth=False,
                idempotent=True,
            )
        except errors.PermissionDeniedError:
            restart()
            return False
        returned = resp.headers.get("ETag", "").strip().strip('"')
        if returned and returned.lower() != md5:
            raise errors.ChecksumMismatchError(
                f"stored copy of {local.name}", expected=md5, actual=returned
            )
        return True

    def _upload_zarr_batch(
        self,
        zarr_id: str,
        batch: list[tuple[str, Path, str]],
        parallel: int,
        tracker: ProgressTracker,
    ) -> fx.Op[None]:
        from scibind_generated.dandi.api.zarr import upload_zarr_files as ep
        from scibind_generated.dandi.models import ZarrFileUploadRequest

        todo = batch
        for _ in range(3):
            body = [ZarrFileUploadRequest(path=p, base64md5=base64_md5(m)) for p, _f, m in todo]
            resp = yield fx.Call(ep, {"zarr_id": zarr_id, "body": body}, idempotent=True)
            urls = list(resp.parsed)
            if len(urls) != len(todo):
                raise errors.ResponseFormatError(
                    f"asked for {len(todo)} upload URLs, got {len(urls)}"
                )
            ok = yield fx.Parallel(
                [
                    self._put_zarr_file(url, local, md5, tracker)
                    for url, (_p, local, md5) in zip(urls, todo, strict=True)
                ],
                limit=parallel,
            )
            todo = [item for item, good in zip(todo, ok, strict=True) if not good]
            if not todo:
                return
        raise errors.TransferError(f"{len(todo)} zarr files kept getting expired upload URLs")

    def _upload_zarr(
        self,
        dandiset: DandisetRef,
        local: Path,
        asset_path: str,
        *,
        metadata: Mapping[str, Any] | None,
        replace: Replace,
        parallel: int,
        progress: ProgressCallback | None,
        existing: Asset | Literal[False] | None = False,
        batch_size: int = ZARR_UPLOAD_BATCH,
        timeout: float = 600.0,
        poll_interval: float = 2.0,
    ) -> fx.Op[Asset]:
        """Make the Zarr asset at ``asset_path`` equal to a local Zarr directory (only differences are sent)."""
        ident = normalize_dandiset_id(dandiset)
        path = normalize_path(asset_path)
        if not path:
            raise errors.ConfigurationError("an asset path is needed")
        hashing = ProgressTracker(path, None, progress, "hashing")
        hashing.emit("hashing")
        found: Asset | None
        if existing is False:
            local_files, found = yield fx.Parallel(
                [_blocking_op(local_zarr_digests, local), self._find_by_path(ident, path, DRAFT)],
                limit=2,
            )
        else:
            local_files, found = (yield fx.Blocking(local_zarr_digests, (local,))), existing
        if found is not None and replace == "never":
            raise errors.ConflictError(f"an asset already exists at {path!r}", status=409)
        checksum = zarr_checksum({p: (m, s) for p, (_f, m, s) in local_files.items()})
        zarr = yield from self._zarr_for(ident, path, found)
        zarr_id = str(zarr.zarr_id)
        remote = yield from self._all_entries(zarr_id)
        upload = [
            (p, f, m)
            for p, (f, m, _s) in local_files.items()
            if p not in remote or remote[p].md5 != m
        ]
        delete = [p for p in remote if p not in local_files]
        tracker = ProgressTracker(
            path, sum(local_files[p][2] for p, _f, _m in upload), progress, "uploading"
        )
        changed = bool(upload or delete)
        if delete:
            yield from self._delete_entries(zarr_id, delete, ZARR_DELETE_BATCH)
        for start in range(0, len(upload), batch_size):
            yield from self._upload_zarr_batch(
                zarr_id, upload[start : start + batch_size], parallel, tracker
            )
        if changed or zarr.status != "Complete":
            if zarr.status in ("Pending",) or changed:
                yield from ZarrOps.finalize_zarr.fn(self, zarr_id)
            tracker.emit("verifying")
            zarr = yield from ZarrOps.wait_zarr_complete.fn(
                self, zarr_id, timeout=timeout, poll_interval=poll_interval
            )
        verify(f"zarr {path}", checksum, str(zarr.checksum or ""))
        body = self._asset_body(path, metadata, {"encodingFormat": "application/x-zarr"})
        if found is not None and found.zarr == zarr_id and not metadata and not changed:
            tracker.emit("skipped", "identical zarr already there")
            return found
        if found is not None and found.zarr == zarr_id and not metadata:
            tracker.emit("done")
            return found
        asset = yield from self._put_asset(ident, found, body, zarr_id=zarr_id)
        tracker.emit("done")
        return asset

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
            yield from self._upload_zarr(
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
        ident, version = yield from self._resolve(dandiset, version_id)
        folder = normalize_path(path, folder=True)
        root = Path(dest)
        tasks: list[DownloadTask] = []
        for asset in (yield from self._all_assets(ident, version, folder)):
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
                            str(_safe_join(_safe_join(root, rel), entry.path)),
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
                        str(_safe_join(root, rel)),
                        asset.size,
                        dict(self._expected(asset).digests),
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
        ident = normalize_dandiset_id(dandiset)
        root = Path(local_dir)
        if not root.is_dir():
            raise errors.ConfigurationError(f"{root} is not a directory")
        mode = self._replace_mode(replace)
        folder = normalize_path(prefix, folder=True)
        files = yield fx.Blocking(_scan, (root, include_hidden))
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


def _blocking_op(fn: Any, *args: Any) -> fx.Op[Any]:
    return (yield fx.Blocking(fn, args))


def _fields(asset: Asset) -> dict[str, Any]:
    import attrs

    return attrs.asdict(asset, recurse=False)


def _forget_journals(api_url: str, dandiset_id: str) -> int:
    """Delete the local upload journals of one dandiset of one instance."""
    folder = cache_dir() / "uploads"
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and data.get("service") == "dandi"
            and data.get("api") == api_url
            and data.get("dandiset") == dandiset_id
        ):
            Journal(path).delete()
            removed += 1
    return removed
