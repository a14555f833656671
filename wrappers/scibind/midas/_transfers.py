"""Midas transfers: MD5-deduplicated, streamed, resumable uploads; verified, atomic, resumable downloads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from .. import errors
from .._core import effects as fx
from .._core.facade import operation
from ._base import Id, _data, _ep, _int, _MidasBase, _target
from ._wire import UPLOAD_FAILED, MidasTransferError

if TYPE_CHECKING:
    from scibind_generated.midas.models import Item, ItemDetail

    from ..transfers.download import Existing
    from ..transfers.progress import ProgressCallback, ProgressTracker

# scibind.transfers is imported inside the operations that move bytes (keeps `import` cheap).

__all__ = ["UploadResult"]


@attrs.frozen
class UploadResult:
    """What :meth:`upload_file` did: the item afterwards, and whether bytes had to be sent."""

    item: ItemDetail
    checksum: str
    size: int
    deduplicated: bool
    """True when the server already had these bytes (matched by MD5) and none were sent."""
    bytes_sent: int


class _TransferOps(_MidasBase):
    """Uploads and downloads (pydas: generate_upload_token, perform_upload, download_item...)."""

    @operation
    def download_folder(
        self,
        folder_id: Id,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> fx.Op[Path]:
        """Download a folder as a zip to ``dest`` (a file, or a directory for ``<name>.zip``); atomic."""
        from ..transfers.download import Expected, download_op

        folder = yield from self._call(
            "folders.get_folder", "GetFolderParams", {"id": int(folder_id)}, idempotent=True
        )

        def resolve() -> fx.Op[str]:
            return (yield from self._redirect("folders.download_folder", id=int(folder_id)))

        return (
            yield from download_op(
                resolve,
                _target(dest, f"{folder.name}.zip"),
                Expected(),
                progress=progress,
                existing="overwrite",
            )
        )

    @operation
    def download_item(
        self,
        item_id: Id,
        dest: str | os.PathLike[str],
        *,
        revision: int | None = None,
        progress: ProgressCallback | None = None,
        existing: Existing = "verify",
    ) -> fx.Op[Path]:
        """Download an item to ``dest`` (a file, or a directory to put it in).

        An item of one file is streamed to disk, checked against its MD5 and resumed from the partial file
        (with ``offset``) when interrupted; an item of several files comes as a zip (``<item name>.zip``).
        """
        from ..transfers.download import Expected, download_op

        detail = yield from self._call(
            "items.get_item", "GetItemParams", {"id": int(item_id)}, idempotent=True
        )
        revisions = _data(detail.revisions) or []
        chosen = (
            [r for r in revisions if str(r.revision) == str(revision)]
            if revision is not None
            else revisions[-1:]
        )
        if not chosen:
            raise errors.NotFoundError(f"item {item_id} has no revision {revision or ''}".strip())
        bitstreams = _data(chosen[0].bitstreams) or []
        if len(bitstreams) == 1:
            bs = bitstreams[0]
            return (
                yield from self._download_bitstream(
                    bs.bitstream_id,
                    bs.name,
                    _int(bs.sizebytes),
                    _data(bs.checksum),
                    _target(dest, bs.name),
                    progress,
                    existing,
                )
            )

        def resolve() -> fx.Op[str]:
            return (
                yield from self._redirect("items.download_item", id=int(item_id), revision=revision)
            )

        return (
            yield from download_op(
                resolve,
                _target(dest, f"{detail.name}.zip"),
                Expected(),
                progress=progress,
                existing="overwrite" if existing == "verify" else existing,
            )
        )

    @operation
    def download_bitstream(
        self,
        bitstream_id: Id,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        existing: Existing = "verify",
    ) -> fx.Op[Path]:
        """Download one bitstream to ``dest``: MD5-verified, atomic, resumed with ``offset`` after a break."""
        info = yield from self._call(
            "bitstreams.get_bitstream",
            "GetBitstreamParams",
            {"id": int(bitstream_id)},
            idempotent=True,
        )
        return (
            yield from self._download_bitstream(
                info.id,
                info.name,
                _int(info.size),
                _data(info.checksum),
                _target(dest, info.name),
                progress,
                existing,
            )
        )

    def _download_bitstream(
        self,
        bitstream_id: Id,
        name: str,
        size: int | None,
        checksum: str | None,
        target: Path,
        progress: ProgressCallback | None,
        existing: Existing,
        retries: int | None = None,
    ) -> fx.Op[Path]:
        """Stream to a partial file, asking for ``offset=<bytes we have>`` after a break (as the client's
        ``RetryPolicy`` allows, see :mod:`scibind.transfers.continuation`); verify; rename."""
        from ..transfers.checksums import file_digest, new_hasher, verify
        from ..transfers.continuation import continuation
        from ..transfers.download import CONTINUABLE, partial_paths
        from ..transfers.journal import Journal
        from ..transfers.progress import ProgressTracker

        tracker = ProgressTracker(name, size, progress, "downloading")
        if target.exists():
            if existing == "error":
                raise FileExistsError(target)
            if existing == "skip":
                tracker.emit("skipped", "already present")
                return target
            if existing == "verify" and checksum and size == target.stat().st_size:
                actual = yield fx.Blocking(file_digest, (target, "md5"))
                if actual == checksum:
                    tracker.emit("skipped", "already present")
                    return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial, journal_path = partial_paths(target)
        journal = Journal(journal_path)
        identity = {"bitstream": str(bitstream_id), "size": size, "md5": checksum}
        if journal.data.get("expected") != identity or not partial.exists():
            journal.delete()
            partial.write_bytes(b"")
            journal.update(expected=identity)
        md5 = yield fx.Blocking(_md5_prefix, (partial,))
        have = partial.stat().st_size
        tracker.add(have)
        tracker.emit("downloading")
        resume = yield from continuation(have, limit=retries, label=name)
        while size is None or have < size:
            start = have
            url = yield from self._redirect(
                "bitstreams.download_bitstream", id=int(bitstream_id), offset=start or None
            )
            check = _OffsetCheck(start, size)
            failure: Exception | None = None
            with open(partial, "ab") as f:

                def sink(chunk: bytes, f: Any = f, h: Any = md5) -> None:
                    nonlocal have
                    f.write(chunk)
                    h.update(chunk)
                    have += len(chunk)
                    tracker.add(len(chunk))

                try:
                    yield fx.Stream("GET", url, sink, auth=False, on_response=check)
                except _OffsetIgnored:
                    f.truncate(0)
                    md5 = new_hasher("md5")
                    tracker.add(-start)
                    have = 0
                    continue
                except CONTINUABLE as exc:
                    failure = exc
            if failure is not None:
                yield from resume.wait(failure, have, retried=not check.answered)
                continue
            if size is None:
                break
            if have == start:
                failure = errors.TransferError(f"download of {name} made no progress")
                yield from resume.wait(failure, have)
        tracker.emit("verifying")
        try:
            got = partial.stat().st_size
            if size is not None and got != size:
                raise errors.ChecksumMismatchError(
                    f"{name}: size mismatch", expected=str(size), actual=str(got)
                )
            if checksum:
                verify(f"{name} md5", checksum, md5.hexdigest())
        except errors.ChecksumMismatchError:
            partial.unlink(missing_ok=True)
            journal.delete()
            raise
        yield fx.Blocking(_commit, (partial, target))
        journal.delete()
        tracker.emit("done")
        return target

    # =====================================================================================================
    # core driver: uploads
    # =====================================================================================================
    @operation
    def generate_upload_token(
        self,
        filename: str,
        *,
        item_id: Id | None = None,
        folder_id: Id | None = None,
        checksum: str | None = None,
        item_name: str | None = None,
        item_description: str | None = None,
    ) -> fx.Op[str]:
        """Start an upload; an empty token means the server had the bytes (by ``checksum``) and added them."""
        return (
            yield from self._generate_token(
                filename, item_id, folder_id, checksum, item_name, item_description
            )
        )

    def _generate_token(
        self,
        filename: str,
        item_id: Id | None,
        folder_id: Id | None = None,
        checksum: str | None = None,
        item_name: str | None = None,
        item_description: str | None = None,
    ) -> fx.Op[str]:
        data = yield from self._call(
            "uploads.generate_upload_token",
            "GenerateUploadTokenParams",
            {
                "filename": filename,
                "itemid": int(item_id) if item_id is not None else None,
                "folderid": int(folder_id) if folder_id is not None else None,
                "checksum": checksum,
                "itemname": item_name,
                "itemdescription": item_description,
            },
        )
        return str(data.token)

    @operation
    def get_upload_offset(self, upload_token: str) -> fx.Op[int]:
        """How many bytes of an upload the server has."""
        return (yield from self._offset(upload_token))

    def _offset(self, upload_token: str) -> fx.Op[int]:
        data = yield from self._call(
            "uploads.get_upload_offset",
            "GetUploadOffsetParams",
            {"uploadtoken": upload_token},
            idempotent=True,
        )
        return int(data.offset)

    @operation
    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        folder_id: Id | None = None,
        item_id: Id | None = None,
        filename: str | None = None,
        item_name: str | None = None,
        description: str | None = None,
        reuse_existing: bool = False,
        new_revision: bool = False,
        changes: str | None = None,
        progress: ProgressCallback | None = None,
        retries: int | None = None,
    ) -> fx.Op[UploadResult]:
        """Upload a local file into an item (``item_id``) or as a new item of a folder (``folder_id``).

        The file's MD5 goes with the upload token, so a server that already has these bytes adds them
        without any upload. Otherwise the bytes are streamed from disk; when the connection breaks or the
        server reports a short upload (-105), the client asks how much arrived (``getoffset``) and sends only
        the rest. ``reuse_existing`` uploads into an item of the same name in the folder if there is one;
        ``new_revision`` makes a new revision instead of adding to the last one. An upload that was
        interrupted (even by a killed process) continues with its token from the server's offset when called
        again with the same file and target (the token is kept in an upload journal).

        How often and after how long a broken upload continues is the client's ``RetryPolicy`` (see
        :mod:`scibind.transfers.continuation`); ``retries`` optionally caps the number of continuations.
        """
        from ..transfers.checksums import file_digest
        from ..transfers.journal import upload_journal
        from ..transfers.progress import ProgressTracker

        source = Path(path)
        name = filename or source.name
        if (folder_id is None) == (item_id is None):
            raise errors.ConfigurationError(
                "upload_file needs exactly one of folder_id= or item_id="
            )
        size = source.stat().st_size
        tracker = ProgressTracker(name, size, progress, "hashing")
        tracker.emit("hashing")
        md5 = yield fx.Blocking(file_digest, (source, "md5"))
        # an upload interrupted earlier (even in a process that was killed) continues with its token
        journal = upload_journal(
            "midas", self.base_url, source.resolve(), size, source.stat().st_mtime_ns, md5,
            folder_id, item_id, name, item_name, new_revision,
        )  # fmt: skip
        saved = journal.data
        resumed = bool(saved.get("token") and saved.get("item_id"))
        if resumed:
            token, item_id = str(saved["token"]), int(saved["item_id"])
        else:
            if item_id is None:
                assert folder_id is not None
                found = (
                    (yield from self._search_items(item_name or name, folder_id))
                    if reuse_existing
                    else []
                )
                item = (
                    found[0]
                    if found
                    else (yield from self._create_item(item_name or name, folder_id, description))
                )
                item_id = item.item_id
            token = yield from self._generate_token(name, item_id, checksum=md5)
            if token:
                journal.update(token=token, item_id=int(item_id))
        sent = 0
        revision = None if new_revision else "head"
        if token and resumed:
            try:
                sent, _ = yield from self._perform(
                    token, source, name, size, revision, changes, tracker, retries, resume=True
                )
            except MidasTransferError as exc:
                if exc.code == UPLOAD_FAILED:
                    raise
                journal.delete()  # the server no longer knows that upload: start it again
                token = yield from self._generate_token(name, item_id, checksum=md5)
                if token:
                    journal.update(token=token, item_id=int(item_id))
                resumed = False
        if token and not resumed:
            sent, _ = yield from self._perform(
                token, source, name, size, revision, changes, tracker, retries
            )
        elif not token:
            tracker.emit("skipped", "the server already has these bytes")
        journal.delete()
        detail = yield from self._call(
            "items.get_item", "GetItemParams", {"id": int(item_id)}, idempotent=True
        )
        tracker.emit("done")
        return UploadResult(detail, md5, size, deduplicated=not token, bytes_sent=sent)

    @operation
    def perform_upload(
        self,
        upload_token: str,
        filename: str,
        *,
        filepath: str | os.PathLike[str] | None = None,
        revision: str | int | None = "head",
        changes: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> fx.Op[Item]:
        """Send the bytes of an upload started with :meth:`generate_upload_token` (pydas: ``perform_upload``).

        Streams ``filepath`` (default: ``filename``) from disk, beginning at the server's offset
        (:meth:`get_upload_offset`), so a call repeated after an interruption sends only the rest; a break
        during the call continues from the server's offset as the client's ``RetryPolicy`` allows.
        ``revision``: ``"head"`` adds the file to the item's last revision, a number to that revision, ``None``
        makes a new revision (with ``changes`` as its message). Returns the item.
        """
        from ..transfers.progress import ProgressTracker

        source = Path(filepath if filepath is not None else filename)
        size = source.stat().st_size
        tracker = ProgressTracker(filename, size, progress, "uploading")
        _, item = yield from self._perform(
            upload_token,
            source,
            filename,
            size,
            str(revision) if revision is not None else None,
            changes,
            tracker,
            None,
            resume=True,
        )
        tracker.emit("done")
        return item

    def _perform(
        self,
        token: str,
        source: Path,
        name: str,
        size: int,
        revision: str | None,
        changes: str | None,
        tracker: ProgressTracker,
        retries: int | None,
        resume: bool = False,
    ) -> fx.Op[tuple[int, Item]]:
        """PUT the bytes from ``offset`` on; after a break continue from the server's offset, as the client's
        ``RetryPolicy`` allows. Returns the bytes sent and the item.

        ``resume``: the upload was started earlier (a journaled token): begin at the server's offset.
        The server appends what arrives, so the transport never repeats this PUT: every failure is counted
        here (a failure without progress, i.e. the offset did not move, against ``max_attempts``).
        """
        from scibind_generated.midas.types import UNSET, File

        from ..transfers.continuation import continuation
        from ..transfers.streams import FileSliceStream

        ep = _ep("uploads.perform_upload")
        kwargs = ep._get_kwargs(
            body=File(payload=b""),  # type: ignore[arg-type]
            uploadtoken=token,
            filename=name,
            length=size,
            revision=revision if revision is not None else UNSET,
            changes=changes if changes is not None else UNSET,
        )
        tracker.emit("uploading")
        offset, sent = 0, 0
        if resume:
            offset = yield from self._offset(token)
            tracker.add(offset)
        again = yield from continuation(offset, limit=retries, label=name)
        while True:
            counted = [0]

            def chunk(data: bytes, counted: list[int] = counted) -> None:
                counted[0] += len(data)
                tracker.add(len(data))

            def restart(counted: list[int] = counted) -> None:
                tracker.add(-counted[0])
                counted[0] = 0

            body = FileSliceStream(
                source, offset=offset, length=size - offset, on_chunk=chunk, on_start=restart
            )
            try:
                resp = yield fx.Request(
                    "PUT",
                    kwargs["url"],
                    params=kwargs["params"],
                    content=body,
                    headers=kwargs["headers"],
                    idempotent=False,  # the server appends: a blind repeat would duplicate bytes
                )
            except (
                MidasTransferError,
                errors.ConnectionError,
                errors.TimeoutError,
                errors.ServerError,
                errors.RateLimitedError,  # throttled: nothing was appended, continue from the offset
            ) as exc:
                sent += counted[0]
                if isinstance(exc, MidasTransferError) and exc.code != UPLOAD_FAILED:
                    raise
                if again.capped():
                    raise
                have = yield from self._offset(token)
                tracker.add(have - offset - counted[0])  # count only what the server kept
                offset = have
                yield from again.wait(exc, have)
                continue
            sent += counted[0]
            return sent, _uploaded_item(resp)


def _uploaded_item(response: httpx.Response) -> Item:
    """The item in ``midas.upload.perform``'s answer, or a :class:`~scibind.errors.ResponseFormatError`."""
    from scibind_generated.midas.models import PerformUploadResponse
    from scibind_generated.midas.types import Unset

    from .._core.responses import format_error, json_body
    from .._core.validate import check_parsed

    body = json_body(response)
    try:
        answer = PerformUploadResponse.from_dict(body)
        check_parsed(answer)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise format_error(
            response.request, "response does not match the API schema", exc
        ) from None
    if isinstance(answer.data, Unset):
        raise format_error(response.request, "the answer holds no item")
    return answer.data


def _md5_prefix(path: Path) -> Any:
    """An md5 object fed with the bytes already in ``path`` (to resume hashing a partial download)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h


def _commit(partial: Path, target: Path) -> None:
    with open(partial, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(partial, target)


class _OffsetIgnored(errors.TransferError):
    def __init__(self) -> None:
        super().__init__("the server ignored the download offset")


class _OffsetCheck:
    """Refuses a resumed download whose length shows the server sent the whole file again."""

    def __init__(self, start: int, size: int | None) -> None:
        self.start = start
        self.size = size
        self.answered = False  # the response arrived: a failure after this one is mid-body

    def __call__(self, response: httpx.Response) -> None:
        self.answered = True
        if response.status_code != 200:
            raise errors.TransferError(f"unexpected status {response.status_code} for a download")
        length = response.headers.get("Content-Length")
        if (
            self.start
            and self.size is not None
            and length is not None
            and length.isdigit()
            and int(length) != self.size - self.start
        ):
            raise _OffsetIgnored()
