"""Checksums for transfers: md5, sha256, and S3 multipart ETags (DANDI's ``dandi-etag``).

An S3 multipart ETag is ``md5(md5(part1) + md5(part2) + ...)-N``. Its part sizes follow DANDI's rule
(64 MiB parts, more when a file would need 10,000 or more, at least 5 MiB each), so parts can be hashed in
parallel, uploaded in parallel, and downloaded in parallel with each worker hashing its own range.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from ..errors import ChecksumMismatchError, ConfigurationError

__all__ = [
    "DEFAULT_PART_SIZE",
    "MultipartETag",
    "Part",
    "file_digest",
    "hash_parts",
    "multipart_plan",
    "new_hasher",
    "verify",
]

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 64 * MiB
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB
READ_CHUNK = 4 * MiB


@attrs.frozen
class Part:
    """One part of a multipart object: 1-based ``number``, byte ``offset`` and ``size``."""

    number: int
    offset: int
    size: int

    @property
    def end(self) -> int:
        """Offset one past the last byte."""
        return self.offset + self.size


def multipart_plan(size: int, part_size: int = DEFAULT_PART_SIZE) -> list[Part]:
    """The parts of an object of ``size`` bytes, by DANDI's rule (same sizes as ``dandischema``'s DandiETag)."""
    if size < 0:
        raise ConfigurationError("size must be >= 0")
    if size == 0:
        return []
    if size > MAX_OBJECT_SIZE:
        raise ConfigurationError("object is larger than the S3 maximum (5 TiB)")
    if math.ceil(size / part_size) >= MAX_PARTS:
        part_size = math.ceil(size / MAX_PARTS)
    count, last = divmod(size, part_size)
    if last == 0:
        last = part_size
    else:
        count += 1
    if count == 1:
        return [Part(1, 0, last)]
    parts = [Part(n, (n - 1) * part_size, part_size) for n in range(1, count)]
    parts.append(Part(count, (count - 1) * part_size, last))
    return parts


@attrs.define
class MultipartETag:
    """Accumulates part md5 digests (in any order) into the final ``<hex>-<N>`` ETag."""

    parts: int
    digests: dict[int, bytes] = attrs.field(factory=dict)

    def add(self, number: int, digest: bytes) -> None:
        if not 1 <= number <= self.parts:
            raise ValueError(f"part {number} out of range 1..{self.parts}")
        self.digests[number] = digest

    @property
    def complete(self) -> bool:
        return len(self.digests) == self.parts

    @property
    def value(self) -> str:
        if not self.complete:
            raise ValueError(f"{self.parts - len(self.digests)} part digests missing")
        joined = b"".join(self.digests[n] for n in range(1, self.parts + 1))
        return f"{hashlib.md5(joined).hexdigest()}-{self.parts}"

    def part_etag(self, number: int) -> str:
        """The ETag S3 returns for one part (its md5, hex)."""
        return self.digests[number].hex()

    @classmethod
    def of(cls, digests: Sequence[bytes]) -> MultipartETag:
        return cls(len(digests), {i: d for i, d in enumerate(digests, 1)})


def new_hasher(algorithm: str) -> Any:
    """A hashlib object for ``md5``/``sha256``/``sha1``/``sha512`` (aliases like ``dandi:sha2-256`` accepted)."""
    name = {"dandi:sha2-256": "sha256", "sha2-256": "sha256", "md5sum": "md5"}.get(
        algorithm, algorithm
    )
    try:
        return hashlib.new(name)
    except ValueError:
        raise ConfigurationError(f"unsupported checksum algorithm {algorithm!r}") from None


def _hash_range(path: Path, offset: int, size: int, algorithm: str = "md5") -> bytes:
    h = new_hasher(algorithm)
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        remaining = size
        buf = bytearray(min(READ_CHUNK, max(size, 1)))
        view = memoryview(buf)
        while remaining > 0:
            n = f.readinto(view[: min(len(buf), remaining)])
            if not n:
                raise OSError(f"{path} is shorter than expected")
            h.update(view[:n])
            remaining -= n
    return h.digest()  # type: ignore[no-any-return]


def hash_parts(
    path: str | os.PathLike[str],
    parts: Iterable[Part],
    *,
    workers: int | None = None,
    on_part: Callable[[Part], None] | None = None,
) -> list[bytes]:
    """md5 digests of ``parts`` of a file, hashed in parallel threads (hashlib releases the GIL)."""
    p = Path(path)
    plan = list(parts)
    workers = workers or min(len(plan), os.cpu_count() or 2, 8) or 1

    def one(part: Part) -> bytes:
        digest = _hash_range(p, part.offset, part.size)
        if on_part is not None:
            on_part(part)
        return digest

    if workers <= 1 or len(plan) <= 1:
        return [one(part) for part in plan]
    with ThreadPoolExecutor(workers, thread_name_prefix="scibind-hash") as pool:
        return list(pool.map(one, plan))


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a whole file (``md5``/``sha256``/...), or an S3 multipart ETag for ``dandi-etag``."""
    p = Path(path)
    if algorithm in ("dandi-etag", "dandi:dandi-etag", "s3-etag"):
        return MultipartETag.of(hash_parts(p, multipart_plan(p.stat().st_size))).value
    return _hash_range(p, 0, p.stat().st_size, algorithm).hex()


def verify(what: str, expected: str, actual: str) -> None:
    """Raise :class:`ChecksumMismatchError` unless the digests match (case-insensitive)."""
    if expected.lower() != actual.lower():
        raise ChecksumMismatchError(f"{what} checksum mismatch", expected=expected, actual=actual)
