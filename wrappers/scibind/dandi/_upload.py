"""The upload protocol of the DANDI Archive (files and Zarr archives), used by :mod:`._transfers`.

Imported on first upload, so importing the client stays cheap. Functions take the client's operations object
(``ops``) first; each is an operation (a generator of effects).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from .. import errors
from .._core import effects as fx
from ._models import DRAFT, Asset, normalize_dandiset_id, normalize_path
from ._zarr import ZARR_DELETE_BATCH, ZARR_UPLOAD_BATCH, ZarrOps

if TYPE_CHECKING:
    from scibind_generated.dandi.models import Zarr

    from ..transfers.checksums import MultipartETag, Part
    from ..transfers.progress import ProgressCallback, ProgressTracker
    from ..transfers.upload import PartTarget
    from ._base import DandisetRef
    from ._transfers import Replace, TransferOps

__all__ = ["forget_journals", "scan", "upload_file", "upload_zarr"]

ZARR_SUFFIXES = (".zarr", ".ngff")
_MIME = {".nwb": "application/x-nwb", ".zarr": "application/x-zarr", ".ngff": "application/x-zarr"}


def asset_body(
    asset_path: str,
    metadata: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    """Asset metadata: what is known from the file, the caller's metadata over it, path and schemaKey set."""
    body = {**defaults, **(metadata or {})}
    body["path"] = asset_path
    body["schemaKey"] = "Asset"
    return body


def put_asset(
    ops: TransferOps,
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


def initialize(
    ops: TransferOps, ident: str, size: int, etag: MultipartETag, plan: list[Part]
) -> fx.Op[tuple[str, list[PartTarget]] | str]:
    """Start an upload: ``(upload_id, part targets)``, or the blob_id of an identical stored blob."""
    from scibind_generated.dandi.api.uploads import initialize_upload as ep
    from scibind_generated.dandi.models import UploadDigest, UploadInitializationRequest

    from ..transfers.upload import PartTarget

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
            f"(is part_size={ops.part_size} right for this server?)"
        )
    targets = [
        PartTarget(p.part_number, part.offset, p.size, p.upload_url)
        for p, part in zip(parts, plan, strict=True)
    ]
    return resp.parsed.upload_id, targets


def complete(
    ops: TransferOps,
    upload_id: str,
    targets: list[PartTarget],
    part_etags: Mapping[int, str],
    etag: str,
) -> fx.Op[None]:
    """Have the object store assemble the parts; its final ETag must equal the dandi-etag."""
    from scibind_generated.dandi.api.uploads import complete_upload as ep
    from scibind_generated.dandi.models import PartCompletion, UploadCompletionRequest

    from ..transfers.checksums import verify

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


def blob_by_etag(ops: TransferOps, etag: str) -> fx.Op[str | None]:
    """The blob_id of a stored blob with this dandi-etag, or None."""
    from scibind_generated.dandi.api.blobs import get_blob_by_digest as ep
    from scibind_generated.dandi.models import Digest

    try:
        resp = yield fx.Call(
            ep, {"body": Digest(algorithm="dandi:dandi-etag", value=etag)}, idempotent=True
        )
    except errors.NotFoundError:
        return None
    return str(resp.parsed.blob_id)


def validate(ops: TransferOps, upload_id: str, etag: str) -> fx.Op[str]:
    """Mint the blob from the completed upload; returns its blob_id."""
    from scibind_generated.dandi.api.uploads import validate_upload as ep

    try:
        resp = yield fx.Call(ep, {"upload_id": upload_id}, idempotent=True)
    except (errors.ConflictError, errors.NotFoundError):
        blob_id = yield from blob_by_etag(ops, etag)  # validated meanwhile, or identical blob
        if blob_id is None:
            raise
        return blob_id
    return str(resp.parsed.blob_id)


def upload_blob(
    ops: TransferOps,
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
    from ..transfers.journal import upload_journal
    from ..transfers.upload import PartTarget, upload_parts_op

    journal = upload_journal(
        "dandi",
        ops.base_url,
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
                started = yield from initialize(ops, ident, size, etag, plan)
                if isinstance(started, str):
                    journal.delete()
                    tracker.emit("skipped", "the archive already stores this content")
                    return started
                upload_id, targets = started
                journal.delete()
                journal.update(
                    service="dandi",
                    api=ops.base_url,
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
            yield from complete(ops, upload_id, targets, part_etags, etag.value)
            blob_id = yield from validate(ops, upload_id, etag.value)
        except (errors.PermissionDeniedError, errors.NotFoundError):
            if not resumed:
                raise
            journal.delete()  # expired presigned URLs or an abandoned upload: start again
            continue
        journal.delete()
        return blob_id


def upload_file(
    ops: TransferOps,
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
    from ..transfers.checksums import multipart_plan
    from ..transfers.progress import ProgressTracker
    from ..transfers.upload import hash_parts_op

    ident = normalize_dandiset_id(dandiset)
    path = normalize_path(asset_path)
    if not path:
        raise errors.ConfigurationError("an asset path is needed")
    stat = local.stat()
    if stat.st_size == 0:
        raise errors.ConfigurationError(f"{local} is empty: the archive does not store empty files")
    plan = multipart_plan(stat.st_size, ops.part_size)
    hashing = ProgressTracker(path, stat.st_size, progress, "hashing")
    found: Asset | None
    if existing is False:
        etag, found = yield fx.Parallel(
            [hash_parts_op(local, plan, hashing), ops._find_by_path(ident, path, DRAFT)],
            limit=2,
        )
    else:
        etag, found = (yield from hash_parts_op(local, plan, hashing)), existing
    tracker = ProgressTracker(path, stat.st_size, progress, "uploading")
    body = asset_body(
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
            asset = yield from put_asset(ops, ident, found, body, blob_id=found.blob)
            tracker.emit("done")
            return asset
    blob_id = yield from upload_blob(
        ops, ident, local, path, stat.st_size, stat.st_mtime_ns, plan, etag, parallel, tracker
    )
    asset = yield from put_asset(ops, ident, found, body, blob_id=blob_id)
    tracker.emit("done")
    return asset


def zarr_for(ops: TransferOps, ident: str, name: str, existing: Asset | None) -> fx.Op[Zarr]:
    """The Zarr archive to upload into: the existing asset's, or a new one (or an orphan of that name)."""
    from scibind_generated.dandi.api.zarr import list_zarrs

    if existing is not None and existing.zarr is not None:
        return (yield from ZarrOps.get_zarr.fn(ops, existing.zarr))
    try:
        return (yield from ZarrOps.create_zarr.fn(ops, ident, name))
    except errors.BadRequestError as exc:
        if "already exists" not in str(exc):
            raise
    resp = yield fx.Call(list_zarrs, {"dandiset": ident, "name": name, "page_size": 10})
    for record in resp.parsed.results:
        if record.name == name:
            return cast("Zarr", record)
    raise errors.ConflictError(f"zarr {name!r} exists but could not be found", status=409)


def put_zarr_file(
    ops: TransferOps, url: str, local: Path, md5: str, tracker: ProgressTracker
) -> fx.Op[bool]:
    """PUT one file with its Content-MD5; False when the presigned URL had expired (ask again)."""
    from ..transfers.streams import FileSliceStream
    from ._zarrsum import base64_md5

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


def upload_zarr_batch(
    ops: TransferOps,
    zarr_id: str,
    batch: list[tuple[str, Path, str]],
    parallel: int,
    tracker: ProgressTracker,
) -> fx.Op[None]:
    """Presign and PUT one batch of Zarr files, asking again for URLs that expired."""
    from scibind_generated.dandi.api.zarr import upload_zarr_files as ep
    from scibind_generated.dandi.models import ZarrFileUploadRequest

    from ._zarrsum import base64_md5

    todo = batch
    for _ in range(3):
        body = [ZarrFileUploadRequest(path=p, base64md5=base64_md5(m)) for p, _f, m in todo]
        resp = yield fx.Call(ep, {"zarr_id": zarr_id, "body": body}, idempotent=True)
        urls = list(resp.parsed)
        if len(urls) != len(todo):
            raise errors.ResponseFormatError(f"asked for {len(todo)} upload URLs, got {len(urls)}")
        ok = yield fx.Parallel(
            [
                put_zarr_file(ops, url, local, md5, tracker)
                for url, (_p, local, md5) in zip(urls, todo, strict=True)
            ],
            limit=parallel,
        )
        todo = [item for item, good in zip(todo, ok, strict=True) if not good]
        if not todo:
            return
    raise errors.TransferError(f"{len(todo)} zarr files kept getting expired upload URLs")


def upload_zarr(
    ops: TransferOps,
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
    from ..transfers.checksums import verify
    from ..transfers.progress import ProgressTracker
    from ._zarrsum import local_zarr_digests, zarr_checksum

    ident = normalize_dandiset_id(dandiset)
    path = normalize_path(asset_path)
    if not path:
        raise errors.ConfigurationError("an asset path is needed")
    hashing = ProgressTracker(path, None, progress, "hashing")
    hashing.emit("hashing")
    found: Asset | None
    if existing is False:
        local_files, found = yield fx.Parallel(
            [_blocking_op(local_zarr_digests, local), ops._find_by_path(ident, path, DRAFT)],
            limit=2,
        )
    else:
        local_files, found = (yield fx.Blocking(local_zarr_digests, (local,))), existing
    if found is not None and replace == "never":
        raise errors.ConflictError(f"an asset already exists at {path!r}", status=409)
    checksum = zarr_checksum({p: (m, s) for p, (_f, m, s) in local_files.items()})
    zarr = yield from zarr_for(ops, ident, path, found)
    zarr_id = str(zarr.zarr_id)
    remote = yield from ops._all_entries(zarr_id)
    upload = [
        (p, f, m) for p, (f, m, _s) in local_files.items() if p not in remote or remote[p].md5 != m
    ]
    delete = [p for p in remote if p not in local_files]
    tracker = ProgressTracker(
        path, sum(local_files[p][2] for p, _f, _m in upload), progress, "uploading"
    )
    changed = bool(upload or delete)
    if delete:
        yield from ops._delete_entries(zarr_id, delete, ZARR_DELETE_BATCH)
    for start in range(0, len(upload), batch_size):
        yield from upload_zarr_batch(
            ops, zarr_id, upload[start : start + batch_size], parallel, tracker
        )
    if changed or zarr.status != "Complete":
        if zarr.status in ("Pending",) or changed:
            yield from ZarrOps.finalize_zarr.fn(ops, zarr_id)
        tracker.emit("verifying")
        zarr = yield from ZarrOps.wait_zarr_complete.fn(
            ops, zarr_id, timeout=timeout, poll_interval=poll_interval
        )
    verify(f"zarr {path}", checksum, str(zarr.checksum or ""))
    body = asset_body(path, metadata, {"encodingFormat": "application/x-zarr"})
    if found is not None and found.zarr == zarr_id and not metadata and not changed:
        tracker.emit("skipped", "identical zarr already there")
        return found
    if found is not None and found.zarr == zarr_id and not metadata:
        tracker.emit("done")
        return found
    asset = yield from put_asset(ops, ident, found, body, zarr_id=zarr_id)
    tracker.emit("done")
    return asset


def _mime(name: str) -> str:
    import mimetypes

    suffix = os.path.splitext(name)[1].lower()
    return _MIME.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat()


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


def scan(root: Path, include_hidden: bool) -> list[tuple[Path, str, bool]]:
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


def _blocking_op(fn: Any, *args: Any) -> fx.Op[Any]:
    return (yield fx.Blocking(fn, args))


def forget_journals(api_url: str, dandiset_id: str) -> int:
    """Delete the local upload journals of one dandiset of one instance."""
    from ..transfers.journal import Journal, cache_dir

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
