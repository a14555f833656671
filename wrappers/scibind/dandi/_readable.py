"""Seekable read-only files over HTTP Range requests on an asset's (presigned) storage URL.

:class:`RemoteFile` is an :class:`io.RawIOBase` for sync clients (wrapped in :class:`io.BufferedReader`);
:class:`AsyncRemoteFile` offers ``await read()``/``seek()``/``tell()`` for async clients. Both fetch the bytes
they are asked for with one ranged GET each, without credentials, and resolve the URL again once when a
presigned URL has expired.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from .. import errors
from .._core import effects as fx

__all__ = ["AsyncRemoteFile", "RangeSource", "RemoteFile"]

MAX_REQUEST = 64 * 1024 * 1024
"""Largest single ranged request (bigger reads are split)."""


class RangeSource:
    """Where the bytes are: ``resolve()`` is an operation giving the storage URL; ``size`` bytes long."""

    def __init__(self, resolve: Callable[[], fx.Op[str]], size: int, name: str) -> None:
        self.resolve = resolve
        self.size = size
        self.name = name
        self.url: str | None = None

    def read_op(self, start: int, length: int) -> fx.Op[bytes]:
        """The bytes ``start .. start+length`` (fewer at the end of the file)."""
        end = min(start + length, self.size) - 1
        if end < start:
            return b""
        renewed = False
        while True:
            if self.url is None:
                self.url = yield from self.resolve()
            url = self.url
            try:
                resp = yield fx.Request(
                    "GET", url, headers={"Range": f"bytes={start}-{end}"}, auth=False
                )
            except errors.PermissionDeniedError:  # expired presigned URL: get a new one, once
                if renewed:
                    raise
                renewed, self.url = True, None
                continue
            if resp.status_code == 206:
                if not resp.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
                    raise errors.TransferError(
                        f"storage sent {resp.headers.get('Content-Range')!r} for a range at {start}"
                    )
                return bytes(resp.content[: end - start + 1])
            if resp.status_code == 200:  # the server ignored Range: take our slice
                return bytes(resp.content[start : end + 1])
            raise errors.TransferError(f"unexpected status {resp.status_code} for a ranged read")


class RemoteFile(io.RawIOBase):
    """Raw, seekable, read-only file over ranged GETs (sync). Use through :class:`io.BufferedReader`."""

    def __init__(self, run: Callable[[fx.Op[bytes]], bytes], source: RangeSource) -> None:
        super().__init__()
        self._run = run
        self._source = source
        self._pos = 0
        self.name = source.name

    @property
    def size(self) -> int:
        return self._source.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._checkClosed()
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self._pos, MAX_REQUEST)
        if want <= 0:
            return 0
        data = self._run(self._source.read_op(self._pos, want))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        self._pos = _seek(self._pos, self.size, offset, whence)
        return self._pos

    def tell(self) -> int:
        self._checkClosed()
        return self._pos


def _seek(pos: int, size: int, offset: int, whence: int) -> int:
    if whence == io.SEEK_SET:
        new = offset
    elif whence == io.SEEK_CUR:
        new = pos + offset
    elif whence == io.SEEK_END:
        new = size + offset
    else:
        raise ValueError(f"invalid whence {whence}")
    if new < 0:
        raise ValueError("negative seek position")
    return new


class AsyncRemoteFile:
    """Seekable read-only file over ranged GETs for async clients, with a read-ahead buffer.

    ``await f.read(n)``, ``f.seek(pos)``, ``f.tell()``; use ``async with`` or ``await f.close()``.
    """

    def __init__(
        self,
        run: Callable[[fx.Op[bytes]], Awaitable[bytes]],
        source: RangeSource,
        buffer_size: int = 1 << 20,
    ) -> None:
        self._run = run
        self._source = source
        self._pos = 0
        self._buffer = b""
        self._buffer_start = 0
        self.buffer_size = buffer_size
        self.name = source.name
        self.closed = False

    @property
    def size(self) -> int:
        return self._source.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check()
        self._pos = _seek(self._pos, self.size, offset, whence)
        return self._pos

    def tell(self) -> int:
        self._check()
        return self._pos

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from the current position (all the rest for ``-1``)."""
        self._check()
        remaining = self.size - self._pos
        want = remaining if size is None or size < 0 else min(size, remaining)
        if want <= 0:
            return b""
        offset = self._pos - self._buffer_start
        if offset >= 0 and offset + want <= len(self._buffer):
            data = self._buffer[offset : offset + want]
        else:
            chunks: list[bytes] = []
            start, left = self._pos, want
            while left > 0:
                take = min(max(left, self.buffer_size), MAX_REQUEST)
                got = await self._run(self._source.read_op(start, take))
                if not got:
                    break
                self._buffer, self._buffer_start = got, start
                chunks.append(got[:left])
                start += len(got)
                left -= min(left, len(got))
            data = b"".join(chunks)
        self._pos += len(data)
        return data

    async def close(self) -> None:
        self.closed = True
        self._buffer = b""

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
