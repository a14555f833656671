"""Downloads that are verified, atomic, resumable and (for large files) fetched in parallel ranges.

:func:`download_op` is an operation (see :mod:`scibind._core.effects`), shared by every service facade:

* bytes go to ``.<name>.scibind-partial`` beside the destination, with a JSON journal of finished ranges;
  only after the size and checksums match is the file renamed into place (``os.replace``), so the destination
  never holds a partial or corrupt file;
* large files are split into ranges fetched concurrently; when the expected digest is an S3 multipart ETag
  (DANDI's ``dandi-etag``) the ranges follow its part boundaries and each worker hashes its own range, so
  verification costs no extra pass;
* a broken connection resumes the range where it stopped (``Range: bytes=N-``), as the client's
  :class:`~scibind.config.RetryPolicy` allows (:mod:`scibind.transfers.continuation`: failures without
  progress bounded by ``max_attempts``, time without progress by ``budget``, waits with backoff or
  ``Retry-After``); an interrupted download resumes from the partial file after re-checking the ranges it
  already has;
* presigned URLs are fetched without credentials; an expired one (403) is resolved again once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import httpx

from .. import errors
from .._core import effects as fx
from .checksums import (
    DEFAULT_PART_SIZE,
    MultipartETag,
    Part,
    _hash_range,
    file_digest,
    multipart_plan,
    new_hasher,
    verify,
)
from .continuation import Continuation, continuation
from .journal import Journal
from .progress import ProgressCallback, ProgressTracker

__all__ = ["Expected", "download_op", "partial_paths"]

ETAG_KEYS = ("dandi-etag", "dandi:dandi-etag", "s3-etag")
Existing = Literal["verify", "overwrite", "skip", "error"]


@attrs.frozen
class Expected:
    """What the downloaded file must be: its size and any of ``md5``, ``sha256``, ``dandi-etag``/``s3-etag``."""

    size: int | None = None
    digests: Mapping[str, str] = attrs.field(factory=dict)

    def etag(self) -> str | None:
        return next((self.digests[k] for k in ETAG_KEYS if self.digests.get(k)), None)

    def identity(self) -> dict[str, Any]:
        return {"size": self.size, "digests": dict(sorted(self.digests.items()))}


def partial_paths(dest: Path) -> tuple[Path, Path]:
    """The partial file and its journal for ``dest``."""
    partial = dest.with_name(f".{dest.name}.scibind-partial")
    return partial, partial.with_name(partial.name + ".json")


# what a transfer loop may continue after (anything else, e.g. a 404 or a checksum error, ends it)
CONTINUABLE = (
    errors.ConnectionError,
    errors.TimeoutError,
    errors.ServerError,
    errors.RateLimitedError,
)


class _Range:
    """Refuses a response whose body is not the bytes that were asked for; ``answered`` tells whether the
    response arrived (a failure before it came out of the retry transport, after it is mid-body)."""

    def __init__(self, start: int, ranged: bool) -> None:
        self.start = start
        self.ranged = ranged
        self.answered = False

    def __call__(self, response: httpx.Response) -> None:
        self.answered = True
        if not self.ranged:
            if response.status_code != 200:
                raise errors.TransferError(
                    f"unexpected status {response.status_code} for a download"
                )
            return
        if response.status_code != 206:
            raise _NoRangeSupport()
        content_range = response.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {self.start}-"):
            raise errors.TransferError(
                f"server sent {content_range!r} for a range starting at {self.start}"
            )


class _NoRangeSupport(errors.TransferError):
    def __init__(self) -> None:
        super().__init__("server ignored the Range header")


def _plan(expected: Expected, part_size: int, min_parallel: int) -> list[Part] | None:
    """Ranges to fetch, or None for one unranged stream (unknown or small size)."""
    size = expected.size
    if size is None:
        return None
    etag = expected.etag()
    if etag and "-" in etag:
        plan = multipart_plan(size)
        if str(len(plan)) == etag.rsplit("-", 1)[1]:
            return plan if len(plan) > 1 or size >= min_parallel else None
    if size < min_parallel:
        return None
    count = -(-size // part_size)
    return [Part(n + 1, n * part_size, min(part_size, size - n * part_size)) for n in range(count)]


def download_op(
    resolve: Callable[[], fx.Op[str]],
    dest: str | os.PathLike[str],
    expected: Expected,
    *,
    name: str | None = None,
    progress: ProgressCallback | None = None,
    parallel: int = 4,
    part_size: int = DEFAULT_PART_SIZE,
    min_parallel_size: int = 2 * DEFAULT_PART_SIZE,
    existing: Existing = "verify",
    retries: int | None = None,
    auth: bool = False,
) -> fx.Op[Path]:
    """Download to ``dest`` and return it. ``resolve()`` is an operation yielding the (presigned) URL.

    ``auth=True`` sends the client's credentials (for a download URL on the service's own origin, e.g.
    MyTardis); presigned URLs need none, so the default sends nothing.

    A stream cut mid-body continues from where the data stopped, as the client's ``RetryPolicy`` allows
    (see :mod:`scibind.transfers.continuation`); ``retries`` optionally caps the number of continuations
    (``None``: the policy alone decides).

    Raises :class:`~scibind.errors.ChecksumMismatchError` (partial data discarded) or
    :class:`~scibind.errors.TransferError`; after an interruption, calling again resumes.
    """
    target = Path(dest)
    label = name or target.name
    tracker = ProgressTracker(label, expected.size, progress, "downloading")
    if target.exists():
        if existing == "error":
            raise FileExistsError(target)
        if existing == "skip" or (existing == "verify" and (yield from _matches(target, expected))):
            tracker.emit("skipped", "already present")
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial, journal_path = partial_paths(target)
    journal = Journal(journal_path)
    if journal.data.get("expected") != expected.identity() or not partial.exists():
        journal.delete()
        partial.unlink(missing_ok=True)
        journal.update(expected=expected.identity(), parts={})
    url = [(yield from resolve())]
    plan = _plan(expected, part_size, min_parallel_size)
    tracker.emit("downloading")
    if plan is None:
        digests = yield from _single(url, resolve, partial, expected, tracker, retries, auth)
    else:
        try:
            digests = yield from _ranged(
                url, resolve, partial, plan, journal, tracker, parallel, retries, auth
            )
        except _NoRangeSupport:  # the server ignores Range: one plain stream from the start
            partial.write_bytes(b"")
            journal.update(parts={})
            tracker.add(-tracker.done)
            digests = yield from _single(url, resolve, partial, expected, tracker, retries, auth)
    tracker.emit("verifying")
    yield from _verify(partial, expected, digests)
    yield fx.Blocking(_commit, (partial, target))
    journal.delete()
    tracker.emit("done")
    return target


def _matches(path: Path, expected: Expected) -> fx.Op[bool]:
    if expected.size is not None and path.stat().st_size != expected.size:
        return False
    if not expected.digests:
        return expected.size is not None
    algorithm, value = _cheapest(expected)
    actual = yield fx.Blocking(file_digest, (path, algorithm))
    return bool(actual.lower() == value.lower())


def _cheapest(expected: Expected) -> tuple[str, str]:
    for key in ("md5", *ETAG_KEYS, "sha256", "sha1", "sha512"):
        if expected.digests.get(key):
            return ("dandi-etag" if key in ETAG_KEYS else key), expected.digests[key]
    key, value = next(iter(expected.digests.items()))
    return key, value


def _single(
    url: list[str],
    resolve: Callable[[], fx.Op[str]],
    partial: Path,
    expected: Expected,
    tracker: ProgressTracker,
    retries: int | None,
    auth: bool = False,
) -> fx.Op[dict[str, str]]:
    """One stream, hashing every requested digest inline; resumes from the partial file's length."""
    algorithms = [a for a in expected.digests if a in ("md5", "sha256", "sha1", "sha512")]
    hashers = {a: new_hasher(a) for a in algorithms}
    have = 0  # bytes in the partial file
    if partial.exists() and partial.stat().st_size:
        have = partial.stat().st_size
        for algorithm in list(hashers):
            hashers[algorithm] = yield fx.Blocking(_hash_prefix, (partial, have, algorithm))
        tracker.add(have)
    else:
        partial.write_bytes(b"")
    resume = yield from continuation(have, limit=retries, label=tracker.name)
    renewed = False
    while expected.size is None or have < expected.size:
        start = have
        check = _Range(start, bool(start))
        failure: Exception | None = None
        with open(partial, "ab") as f:

            def sink(chunk: bytes, f: Any = f, hashers: dict[str, Any] = hashers) -> None:
                nonlocal have
                f.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                have += len(chunk)
                tracker.add(len(chunk))

            try:
                yield fx.Stream(
                    "GET",
                    url[0],
                    sink,
                    headers={"Range": f"bytes={start}-"} if start else {},
                    auth=auth,
                    on_response=check,
                )
            except _NoRangeSupport:  # start over with one plain stream
                f.truncate(0)
                hashers = {a: new_hasher(a) for a in algorithms}
                tracker.add(-start)
                have = 0
                continue
            except errors.PermissionDeniedError:
                if renewed:
                    raise
                renewed = True
                url[0] = yield from resolve()
                continue
            except CONTINUABLE as exc:
                failure = exc
        if failure is not None:
            yield from resume.wait(failure, have, retried=not check.answered)
            continue
        if expected.size is None:
            break
        if have == start:  # the body ended at once: do not spin
            yield from resume.wait(errors.TransferError("download made no progress"), have)
    return {a: h.hexdigest() for a, h in hashers.items()}


def _hash_prefix(path: Path, size: int, algorithm: str) -> Any:
    h = new_hasher(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(min(4 << 20, size - f.tell())):
            h.update(chunk)
    return h


def _ranged(
    url: list[str],
    resolve: Callable[[], fx.Op[str]],
    partial: Path,
    plan: list[Part],
    journal: Journal,
    tracker: ProgressTracker,
    parallel: int,
    retries: int | None,
    auth: bool = False,
) -> fx.Op[dict[str, str]]:
    """Fetch ranges concurrently into a pre-sized partial file; returns the multipart ETag of the parts.

    The ranges share one :class:`Continuation`: progress of any range is the transfer's progress, and
    failures without progress are counted for the transfer as a whole."""
    size = plan[-1].end
    if not partial.exists() or partial.stat().st_size != size:
        with open(partial, "wb") as f:
            f.truncate(size)
        journal.update(parts={})
    done: dict[str, str] = dict(journal.data.get("parts") or {})
    digests: dict[int, bytes] = {}
    for part in plan:  # re-check ranges an earlier run finished
        recorded = done.get(str(part.number))
        if recorded:
            actual = yield fx.Blocking(_hash_range, (partial, part.offset, part.size))
            if actual.hex() == recorded:
                digests[part.number] = actual
                tracker.add(part.size)
    todo = [p for p in plan if p.number not in digests]
    resume = yield from continuation(0, limit=retries, label=tracker.name)
    held = dict.fromkeys((p.number for p in todo), 0)  # bytes of each range fetched in this run
    results = yield fx.Parallel(
        [
            _fetch_range(url, resolve, partial, p, tracker, resume, held, journal, auth)
            for p in todo
        ],
        limit=parallel,
    )
    for part, digest in zip(todo, results, strict=True):
        digests[part.number] = digest
    return {"s3-etag": MultipartETag(len(plan), digests).value}


def _fetch_range(
    url: list[str],
    resolve: Callable[[], fx.Op[str]],
    partial: Path,
    part: Part,
    tracker: ProgressTracker,
    resume: Continuation,
    held: dict[int, int],
    journal: Journal,
    auth: bool = False,
) -> fx.Op[bytes]:
    md5 = hashlib.md5()
    written = 0
    renewed = False
    with open(partial, "r+b") as f:
        while written < part.size:
            start = part.offset + written
            f.seek(start)

            def sink(chunk: bytes) -> None:
                nonlocal written
                if written + len(chunk) > part.size:
                    raise errors.TransferError(
                        f"server sent more than the {part.size} bytes asked for"
                    )
                f.write(chunk)
                md5.update(chunk)
                written += len(chunk)
                held[part.number] = written
                tracker.add(len(chunk))

            check = _Range(start, True)
            failure: Exception | None = None
            try:
                yield fx.Stream(
                    "GET",
                    url[0],
                    sink,
                    headers={"Range": f"bytes={start}-{part.end - 1}"},
                    auth=auth,
                    on_response=check,
                )
            except errors.PermissionDeniedError:
                if renewed:
                    raise
                renewed = True
                url[0] = yield from resolve()
                continue
            except CONTINUABLE as exc:
                failure = exc
            else:
                if written < part.size:  # body ended early without an error: ask for the rest
                    failure = errors.TransferError(f"range {part.number} ended early")
            if failure is not None:
                position = sum(held.values())
                yield from resume.wait(failure, position, retried=not check.answered)
    digest = md5.digest()
    journal.record("parts", str(part.number), digest.hex())
    return digest


def _verify(partial: Path, expected: Expected, digests: dict[str, str]) -> fx.Op[None]:
    """Size and every expected digest; computes by a pass over the file only what was not hashed inline."""
    try:
        size = partial.stat().st_size
        if expected.size is not None and size != expected.size:
            raise errors.ChecksumMismatchError(
                "size mismatch", expected=str(expected.size), actual=str(size)
            )
        for key, value in expected.digests.items():
            if key in ETAG_KEYS:
                actual = digests.get("s3-etag") or (
                    yield fx.Blocking(file_digest, (partial, "dandi-etag"))
                )
            elif key in digests:
                actual = digests[key]
            else:
                actual = yield fx.Blocking(file_digest, (partial, key))
            verify(key, value, actual)
    except errors.ChecksumMismatchError:
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + ".json").unlink(missing_ok=True)
        raise


def _commit(partial: Path, target: Path) -> None:
    with open(partial, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(partial, target)
