"""Request bodies that can be sent again from the start (so retries never send a truncated body)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, TypeVar

import httpx

__all__ = ["FileSliceStream", "open_off_loop", "with_stream"]

F = TypeVar("F", bound=IO[bytes])

CHUNK = 1024 * 1024


class FileSliceStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Stream ``length`` bytes of a file from ``offset``, re-opening and seeking on every iteration.

    Every pass over the stream sends exactly the same bytes, so the retry transport can repeat it
    (``rewindable = True``). ``on_chunk`` is called with each chunk as it is sent, ``on_start`` at the start of
    each pass (so progress can take back the bytes of a failed attempt).
    Works for sync and async clients; the file is read in ``chunk_size`` pieces, never loaded whole. Async
    iteration opens, seeks and reads in a worker thread, so the event loop never waits for the disk.
    """

    rewindable = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = CHUNK,
        on_chunk: Callable[[bytes], None] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.offset = offset
        self.length = self.path.stat().st_size - offset if length is None else length
        self.chunk_size = chunk_size
        self.on_chunk = on_chunk
        self.on_start = on_start

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        if self.on_start is not None:  # a new pass: a retry starts over
            self.on_start()
        with self._open() as f:
            remaining = self.length
            while remaining > 0:
                chunk = self._read(f, remaining)
                remaining -= len(chunk)
                if self.on_chunk is not None:
                    self.on_chunk(chunk)
                yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        import asyncio  # only on async paths (import time)

        if self.on_start is not None:
            self.on_start()
        f = await open_off_loop(self._open)
        try:
            remaining = self.length
            while remaining > 0:
                chunk = await asyncio.to_thread(self._read, f, remaining)
                remaining -= len(chunk)
                if self.on_chunk is not None:
                    self.on_chunk(chunk)
                yield chunk
        finally:
            f.close()

    def _open(self) -> BinaryIO:
        f = open(self.path, "rb")  # noqa: SIM115 (closed by the caller)
        try:
            if self.offset:
                f.seek(self.offset)
        except BaseException:
            f.close()
            raise
        return f

    def _read(self, f: BinaryIO, remaining: int) -> bytes:
        chunk = f.read(min(self.chunk_size, remaining))
        if not chunk:
            raise OSError(f"{self.path} shrank while it was being sent")
        return chunk

    def headers(self) -> dict[str, str]:
        """``Content-Length`` for this slice (httpx cannot infer it from a stream)."""
        return {"Content-Length": str(self.length)}


async def open_off_loop(opener: Callable[[], F]) -> F:
    """``opener()`` (opening a file) in a worker thread; the file is closed if the waiting task is cancelled."""
    from .._core.offloop import run_off_loop

    return await run_off_loop(opener, lambda f: f.close())


def with_stream(request: httpx.Request, stream: FileSliceStream) -> httpx.Request:
    """A copy of ``request`` whose body is ``stream`` (kept as is, so retries can rewind it)."""
    headers = request.headers.copy()
    headers["Content-Length"] = str(len(stream))
    headers.pop("Transfer-Encoding", None)
    return httpx.Request(
        request.method, request.url, headers=headers, stream=stream, extensions=request.extensions
    )
