"""Parallel upload of file parts to presigned URLs, verified part by part, resumable through a journal.

The service facades decide how an upload starts and ends (DANDI: initialize/complete/validate; Gen3: fence
multipart init/complete); this module moves the bytes:

* each part is a :class:`~scibind.transfers.streams.FileSliceStream` read from disk in chunks (never the whole
  file in memory), sent without credentials, retried by the transport with the body rewound;
* the ETag S3 returns for each part is checked against the part's md5 computed beforehand;
* each finished part is recorded in a :class:`~scibind.transfers.journal.Journal`, so an interrupted upload,
  resumed in this process or a new one, sends only the parts that are missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from .. import errors
from .._core import effects as fx
from .checksums import MultipartETag, Part, hash_parts
from .journal import Journal
from .progress import ProgressTracker
from .streams import FileSliceStream

__all__ = ["PartTarget", "hash_parts_op", "upload_parts_op"]


@attrs.frozen
class PartTarget:
    """Where one part goes: the presigned PUT ``url`` for bytes ``offset .. offset+size``."""

    number: int
    offset: int
    size: int
    url: str


def hash_parts_op(
    path: str | os.PathLike[str], plan: Sequence[Part], tracker: ProgressTracker | None = None
) -> fx.Op[MultipartETag]:
    """md5 every part (parallel threads, off the event loop) and return the multipart ETag."""

    def counted(part: Part) -> None:
        if tracker is not None:
            tracker.add(part.size)

    if tracker is not None:
        tracker.emit("hashing")
    digests = yield fx.Blocking(_hash_all, (Path(path), list(plan), counted))
    return MultipartETag.of(digests)


def _hash_all(path: Path, plan: list[Part], on_part: object) -> list[bytes]:
    return hash_parts(path, plan, on_part=on_part)  # type: ignore[arg-type]


def upload_parts_op(
    path: str | os.PathLike[str],
    targets: Sequence[PartTarget],
    *,
    etag: MultipartETag | None = None,
    journal: Journal | None = None,
    tracker: ProgressTracker | None = None,
    parallel: int = 4,
    headers: Mapping[str, str] | None = None,
) -> fx.Op[dict[int, str]]:
    """PUT every part not yet in ``journal``; return ``{part_number: etag}`` for all parts.

    ``etag`` (from :func:`hash_parts_op`) supplies the expected md5 of each part; a mismatch raises
    :class:`~scibind.errors.ChecksumMismatchError`.
    """
    done: dict[int, str] = {}
    if journal is not None:
        done = {int(k): v for k, v in (journal.data.get("parts") or {}).items()}
    if tracker is not None:
        tracker.emit("uploading")
        tracker.add(sum(t.size for t in targets if t.number in done))
    todo = [t for t in targets if t.number not in done]
    results = yield fx.Parallel(
        [_put_part(Path(path), t, etag, journal, tracker, headers) for t in todo], limit=parallel
    )
    done.update(results)
    return {t.number: done[t.number] for t in targets}


def _put_part(
    path: Path,
    target: PartTarget,
    etag: MultipartETag | None,
    journal: Journal | None,
    tracker: ProgressTracker | None,
    headers: Mapping[str, str] | None,
) -> fx.Op[tuple[int, str]]:
    sent = 0

    def restart() -> None:
        nonlocal sent
        if tracker is not None and sent:
            tracker.add(-sent)
        sent = 0

    def chunk(data: bytes) -> None:
        nonlocal sent
        sent += len(data)
        if tracker is not None:
            tracker.add(len(data))

    body = FileSliceStream(
        path, offset=target.offset, length=target.size, on_chunk=chunk, on_start=restart
    )
    response = yield fx.Request(
        "PUT", target.url, content=body, headers=headers, auth=False, idempotent=True
    )
    returned = response.headers.get("ETag", "").strip().strip('"')
    if not returned:
        raise errors.TransferError(f"storage returned no ETag for part {target.number}")
    if etag is not None and target.number in etag.digests:
        expected = etag.part_etag(target.number)
        if returned.lower() != expected:
            raise errors.ChecksumMismatchError(
                f"part {target.number} ETag mismatch", expected=expected, actual=returned
            )
    if journal is not None:
        journal.record("parts", str(target.number), returned)
    return target.number, returned
